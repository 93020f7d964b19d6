/* etnpot: a small C interface to etn_model.h for the tests (ctypes), without LAMMPS.
   SPDX-License-Identifier: BSD-3-Clause (see LICENSE in this folder). */
#include "etn_model.h"

#include <cstring>

extern "C" {

void etn_sph(int lmax, int n, const double *v, double *Y, double *dY) {
  etnpot::SphHarm sh(lmax);
  int K = (lmax + 1) * (lmax + 1);
  for (int e = 0; e < n; e++) sh.compute(v + 3 * e, Y + (size_t) e * K, dY + (size_t) e * K * 3);
}

void *etn_load(const char *path, char *err, int errlen) {
  auto *m = new etnpot::Model;
  try {
    m->read(path);
  } catch (std::exception &e) {
    std::strncpy(err, e.what(), errlen - 1);
    err[errlen - 1] = 0;
    delete m;
    return nullptr;
  }
  return m;
}

void etn_free(void *m) { delete static_cast<etnpot::Model *>(m); }

/* site energy of one centre (grad: 3 n values, may be null; grade: may be null) */
double etn_site(void *m, int zi, int n, const double *del, const int *zj, double *grad, double *grade) {
  etnpot::Evaluator ev(*static_cast<etnpot::Model *>(m));
  return ev.site(zi, n, del, zj, grad, grade);
}
}
