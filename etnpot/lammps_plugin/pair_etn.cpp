/* etnpot: pair_style etn, ETN (equivariant tensor-network) potentials in LAMMPS.
   SPDX-License-Identifier: BSD-3-Clause (see LICENSE in this folder).

   pair_style etn [threshold_save G FILE] [threshold_break G] [grade_every N]
   pair_coeff * * MODEL.etnlmp El1 El2 ...   (one element or NULL per atom type)

   Physics (units metal: eV, Angstrom).  E = sum_i E_i over the local atoms i; E_i depends on the
   pair vectors r_ij = r_j - r_i of the neighbours j within r_cut (full neighbour list, ghosts
   included).  With g_ij = dE_i/dr_ij (etn_model.h) the forces are f_i += g_ij and f_j -= g_ij;
   a ghost j's force is summed onto its owner by LAMMPS's reverse communication (newton on).
   Virial (LAMMPS sign, W_ab = sum_k r_ka f_kb): a pair gives W_ab = -(r_ij)_a (g_ij)_b,
   symmetrized per pair; per-atom virials give half of it to i and half to j (the same split as
   ETNCalculator's per-atom stresses), per-atom energies E_i to i. */
#include "pair_etn.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include "etn_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mpi.h>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace LAMMPS_NS;

PairETN::PairETN(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the virial is tallied per pair (symmetrized), see above
}

PairETN::~PairETN()
{
  if (copymode) return;
  memory->destroy(grade);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairETN::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
}

void PairETN::settings(int narg, char **arg)
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style etn requires 'units metal' (eV, Angstrom), got units {}", update->unit_style);
  threshold_save = threshold_break = -1.0;
  grade_every = 1;
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "threshold_save") == 0) {
      if (iarg + 3 > narg) error->all(FLERR, "pair_style etn threshold_save needs a grade and a file name");
      threshold_save = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      save_file = arg[iarg + 2];
      iarg += 3;
    } else if (strcmp(arg[iarg], "threshold_break") == 0) {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style etn threshold_break needs a grade");
      threshold_break = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      iarg += 2;
    } else if (strcmp(arg[iarg], "grade_every") == 0) {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style etn grade_every needs a number of steps");
      grade_every = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (grade_every < 1) error->all(FLERR, "pair_style etn grade_every must be >= 1");
      iarg += 2;
    } else {
      error->all(FLERR, "Unknown pair_style etn keyword {} (known: threshold_save, threshold_break, grade_every)",
                 arg[iarg]);
    }
  }
  if (comm->me == 0 && threshold_save >= 0 && !save_file.empty()) {
    FILE *fp = fopen(save_file.c_str(), "w");  // start the file of extrapolative frames afresh
    if (!fp) error->one(FLERR, "pair_style etn: cannot write {}", save_file);
    fclose(fp);
  }
}

void PairETN::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 3 + ntypes)
    error->all(FLERR, "pair_coeff * * MODEL El1 .. ElN for pair_style etn needs one element (or NULL) per atom type: "
               "{} types, got {} element(s)", ntypes, narg - 3);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_style etn: pair_coeff must be 'pair_coeff * * MODEL El1 .. ElN'");
  model_file = utils::get_potential_file_path(arg[2]);
  if (model_file.empty()) error->all(FLERR, "pair_style etn: model file {} not found", arg[2]);
  auto m = std::make_unique<etnpot::Model>();
  try {
    m->read(model_file);
  } catch (std::exception &e) {
    error->all(FLERR, "pair_style etn: {}", e.what());
  }
  tmap.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; t++) {
    const char *el = arg[2 + t];
    if (strcmp(el, "NULL") == 0) continue;
    int z = -1;
    for (int s = 0; s < (int) m->species.size(); s++)
      if (m->species[s] == el) z = s;
    if (z < 0) {
      std::string have;
      for (auto &s : m->species) have += " " + s;
      error->all(FLERR, "pair_style etn: species {} (atom type {}) is not in the model {} (its species:{})", el, t,
                 model_file, have);
    }
    tmap[t] = z;
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = 1; j <= ntypes; j++) setflag[i][j] = (tmap[i] >= 0 && tmap[j] >= 0) ? 1 : 0;
  cutoff = m->r_cut;
  model = std::move(m);
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style etn: {} ({} species, order {}, r_cut {} A, checksum {}, {})\n", model_file,
                   model->species.size(), model->order, cutoff, model->checksum,
                   model->has_grade() ? "extrapolation grades available" : "no grade data");
}

void PairETN::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style etn requires 'units metal' (eV, Angstrom), got units {}", update->unit_style);
  if (force->newton_pair == 0) error->all(FLERR, "pair_style etn requires newton pair on");
  if (!model) error->all(FLERR, "pair_style etn: no model (pair_coeff * * MODEL El1 ..)");
  if ((threshold_save >= 0 || threshold_break >= 0) && !model->has_grade())
    error->all(FLERR, "pair_style etn: threshold_save/threshold_break need extrapolation grades, but {} has no "
               "grade data (export a model with an active set: etnpot.grade.fit_active_set)", model_file);
  neighbor->add_request(this, NeighConst::REQ_FULL);
#ifdef _OPENMP
  nthreads = omp_get_max_threads();
#endif
}

double PairETN::init_one(int, int) { return cutoff; }

void *PairETN::extract(const char *str, int &dim)
{
  dim = 0;
  if (strcmp(str, "grade_flag") == 0) return (void *) &grade_flag;
  return nullptr;
}

void *PairETN::extract_peratom(const char *str, int &ncol)
{
  ncol = 0;
  if (strcmp(str, "grade") == 0) return (void *) grade;
  return nullptr;
}

double PairETN::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) (pgrad.size() + pdel.size()) * sizeof(double);
  bytes += (double) (pj.size() + pcount.size() + pstart.size()) * sizeof(int);
  bytes += (double) nmax_grade * sizeof(double);
  return bytes;
}

void PairETN::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  double **x = atom->x, **f = atom->f;
  int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int inum = list->inum;
  int *ilist = list->ilist, *numneigh = list->numneigh, **firstneigh = list->firstneigh;
  const double rc2 = cutoff * cutoff;

  // grades: on the steps fix pair asks for them, and every grade_every steps with a threshold set
  const bool thresholds = threshold_save >= 0 || threshold_break >= 0;
  const bool want_grades = model->has_grade() &&
      (grade_flag || (thresholds && update->ntimestep % grade_every == 0));
  if (want_grades && atom->nmax > nmax_grade) {
    memory->destroy(grade);
    nmax_grade = atom->nmax;
    memory->create(grade, nmax_grade, "pair:etn:grade");
  }
  if (want_grades) for (int i = 0; i < nlocal; i++) grade[i] = 0.0;

  pstart.resize(inum + 1);
  pcount.assign(inum, 0);
  pstart[0] = 0;
  for (int ii = 0; ii < inum; ii++) pstart[ii + 1] = pstart[ii] + numneigh[ilist[ii]];
  const size_t npairs = pstart[inum];
  if (pj.size() < npairs) { pj.resize(npairs); pgrad.resize(3 * npairs); pdel.resize(3 * npairs); }
  std::vector<double> esite(inum, 0.0);
  int failed = 0;

  // 1) site energies and pair gradients, in blocks of Evaluator::BLOCK atoms (the tensor train is
  //    contracted for a block at once); threads over blocks: no shared writes
  const int B = etnpot::Evaluator::BLOCK;
  const int nblocks = (inum + B - 1) / B;
#pragma omp parallel
  {
    etnpot::Evaluator ev(*model);
    std::vector<int> zjbuf[etnpot::Evaluator::BLOCK];
#pragma omp for schedule(dynamic, 2)
    for (int blk = 0; blk < nblocks; blk++) {
      int zi[etnpot::Evaluator::BLOCK], nn[etnpot::Evaluator::BLOCK], idx[etnpot::Evaluator::BLOCK];
      const double *dl[etnpot::Evaluator::BLOCK];
      const int *zl[etnpot::Evaluator::BLOCK];
      double *gl[etnpot::Evaluator::BLOCK], en[etnpot::Evaluator::BLOCK], gr[etnpot::Evaluator::BLOCK];
      int nb = 0;
      for (int ii = blk * B; ii < std::min(inum, (blk + 1) * B); ii++) {
        const int i = ilist[ii];
        const int z0 = tmap[type[i]];
        if (z0 < 0) continue;
        const int jnum = numneigh[i];
        const int *jlist = firstneigh[i];
        int *pjs = &pj[pstart[ii]];
        double *del = &pdel[3 * (size_t) pstart[ii]];
        std::vector<int> &zj = zjbuf[nb];
        zj.resize(jnum);
        int n = 0;
        for (int jj = 0; jj < jnum; jj++) {
          int j = jlist[jj] & NEIGHMASK;
          int z = tmap[type[j]];
          if (z < 0) continue;
          double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
          double r2 = dx * dx + dy * dy + dz * dz;
          if (r2 >= rc2) continue;
          if (r2 == 0.0) { failed = 1; continue; }
          pjs[n] = j; zj[n] = z;
          del[3 * n] = dx; del[3 * n + 1] = dy; del[3 * n + 2] = dz;
          n++;
        }
        pcount[ii] = n;
        zi[nb] = z0; nn[nb] = n; idx[nb] = ii; dl[nb] = del; zl[nb] = zj.data();
        gl[nb] = &pgrad[3 * (size_t) pstart[ii]];
        nb++;
      }
      if (nb == 0) continue;
      ev.block(nb, zi, nn, dl, zl, gl, en, want_grades ? gr : nullptr);
      for (int k = 0; k < nb; k++) {
        esite[idx[k]] = en[k];
        if (want_grades) grade[ilist[idx[k]]] = gr[k];
      }
    }
  }
  if (failed) error->one(FLERR, "pair_style etn: two atoms at zero distance");

  // 2) forces, energies and virials, in one thread
  for (int ii = 0; ii < inum; ii++) {
    const int i = ilist[ii];
    if (tmap[type[i]] < 0) continue;
    if (eflag_global) eng_vdwl += esite[ii];
    if (eflag_atom) eatom[i] += esite[ii];
    const int *pjs = &pj[pstart[ii]];
    const double *g = &pgrad[3 * (size_t) pstart[ii]], *d = &pdel[3 * (size_t) pstart[ii]];
    for (int e = 0; e < pcount[ii]; e++) {
      const int j = pjs[e];
      const double *ge = g + 3 * e, *de = d + 3 * e;
      f[i][0] += ge[0]; f[i][1] += ge[1]; f[i][2] += ge[2];
      f[j][0] -= ge[0]; f[j][1] -= ge[1]; f[j][2] -= ge[2];
      if (vflag_either) {
        double v[6] = {-de[0] * ge[0], -de[1] * ge[1], -de[2] * ge[2], -0.5 * (de[0] * ge[1] + de[1] * ge[0]),
                       -0.5 * (de[0] * ge[2] + de[2] * ge[0]), -0.5 * (de[1] * ge[2] + de[2] * ge[1])};
        if (vflag_global)
          for (int k = 0; k < 6; k++) virial[k] += v[k];
        if (vflag_atom)
          for (int k = 0; k < 6; k++) { vatom[i][k] += 0.5 * v[k]; vatom[j][k] += 0.5 * v[k]; }
      }
    }
  }
  if (want_grades && thresholds) check_extrapolation(nlocal);
}

/* the largest grade over all ranks; above threshold_save the frame is appended to the extxyz file,
   above threshold_break the run stops with an error naming the step and the grade */
void PairETN::check_extrapolation(int nlocal)
{
  struct { double v; int id; } mine = {0.0, 0}, all;
  for (int i = 0; i < nlocal; i++)
    if (grade[i] > mine.v) { mine.v = grade[i]; mine.id = (int) atom->tag[i]; }
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE_INT, MPI_MAXLOC, world);
  max_grade_last = all.v;
  if (threshold_save >= 0 && all.v > threshold_save) save_frame(all.v);
  if (threshold_break >= 0 && all.v > threshold_break)
    error->all(FLERR, "pair_style etn: extrapolation grade {:.6g} > threshold_break {:g} at step {} (atom ID {})",
               all.v, threshold_break, update->ntimestep, all.id);
}

void PairETN::save_frame(double gmax)
{
  const int nlocal = atom->nlocal, nprocs = comm->nprocs;
  std::vector<double> buf(6 * (size_t) nlocal);
  for (int i = 0; i < nlocal; i++) {
    double *b = &buf[6 * (size_t) i];
    b[0] = (double) atom->tag[i]; b[1] = (double) atom->type[i];
    b[2] = atom->x[i][0] - domain->boxlo[0]; b[3] = atom->x[i][1] - domain->boxlo[1];
    b[4] = atom->x[i][2] - domain->boxlo[2]; b[5] = grade[i];
  }
  int n = 6 * nlocal;
  std::vector<int> counts(nprocs), displs(nprocs);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  std::vector<double> all;
  if (comm->me == 0) {
    int tot = 0;
    for (int p = 0; p < nprocs; p++) { displs[p] = tot; tot += counts[p]; }
    all.resize(tot);
  }
  MPI_Gatherv(buf.data(), n, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0, world);
  if (comm->me != 0) return;
  int natoms = (int) all.size() / 6;
  std::vector<int> order(natoms);
  for (int k = 0; k < natoms; k++) order[k] = k;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return all[6 * a] < all[6 * b]; });
  FILE *fp = fopen(save_file.c_str(), "a");
  if (!fp) error->one(FLERR, "pair_style etn: cannot write {}", save_file);
  // lattice vectors of the LAMMPS cell: a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz)
  fprintf(fp, "%d\nLattice=\"%.17g 0 0 %.17g %.17g 0 %.17g %.17g %.17g\" Properties=species:S:1:pos:R:3:id:I:1:grade:R:1 "
          "step=%lld max_grade=%.17g pbc=\"%s %s %s\"\n", natoms, domain->xprd, domain->xy, domain->yprd, domain->xz,
          domain->yz, domain->zprd, (long long) update->ntimestep, gmax, domain->xperiodic ? "T" : "F",
          domain->yperiodic ? "T" : "F", domain->zperiodic ? "T" : "F");
  for (int k : order) {
    const double *b = &all[6 * (size_t) k];
    int z = tmap[(int) b[1]];
    fprintf(fp, "%s %.17g %.17g %.17g %d %.17g\n", z >= 0 ? model->species[z].c_str() : "X", b[2], b[3], b[4],
            (int) b[0], b[5]);
  }
  fclose(fp);
}
