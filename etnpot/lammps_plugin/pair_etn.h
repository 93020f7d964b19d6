/* etnpot: pair_style etn, ETN (equivariant tensor-network) potentials in LAMMPS.
   SPDX-License-Identifier: BSD-3-Clause (see LICENSE in this folder). */
#ifdef PAIR_CLASS
// clang-format off
PairStyle(etn,PairETN);
// clang-format on
#else

#ifndef LMP_PAIR_ETN_H
#define LMP_PAIR_ETN_H

#include "pair.h"

#include <memory>
#include <string>
#include <vector>

namespace etnpot { class Model; class Evaluator; }

namespace LAMMPS_NS {

class PairETN : public Pair {
 public:
  PairETN(class LAMMPS *);
  ~PairETN() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void *extract(const char *, int &) override;
  void *extract_peratom(const char *, int &) override;
  double memory_usage() override;

 protected:
  void allocate();
  void check_extrapolation(int nlocal);
  void save_frame(double gmax);

  std::unique_ptr<etnpot::Model> model;
  std::string model_file;
  std::vector<int> tmap;  // LAMMPS type -> model species (-1: NULL)
  double cutoff = 0.0;
  int nthreads = 1;
  // pair buffers: per local atom the pairs kept within the cutoff
  std::vector<double> pgrad, pdel;
  std::vector<int> pj, pcount, pstart;
  // extrapolation
  int grade_flag = 0;  // set by fix pair (trigger "grade_flag") for one step
  int grade_every = 1;
  double threshold_save = -1.0, threshold_break = -1.0;
  std::string save_file;
  double *grade = nullptr;
  int nmax_grade = 0;
  int grades_valid = 0;
  double max_grade_last = 0.0;
};

}    // namespace LAMMPS_NS

#endif
#endif
