// Time of the C++ ETN evaluation per site (etnpot/lammps_plugin/etn_model.h) without LAMMPS:
// one centre of fcc Cu (a = 3.62 A, slightly displaced shells) with its neighbours within 5 A,
// evaluated with gradients one atom at a time (site) and 8 at a time (block).
//
//   etnpot export fitting/zuo2020/Cu_d3_r3.etn /tmp/cu.etnlmp
//   g++ -O3 -std=c++17 -Ietnpot/lammps_plugin benchmarks/bench_etn_site.cpp -o /tmp/bench_site
//   /tmp/bench_site /tmp/cu.etnlmp
//
// For the version before the block contraction, compile against `git show
// a6de8b8:etnpot/lammps_plugin/etn_model.h` with -DNO_BLOCK.
#include "etn_model.h"

#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: %s MODEL.etnlmp\n", argv[0]); return 2; }
  etnpot::Model m;
  m.read(argv[1]);
  std::vector<double> del;
  std::vector<int> zj;
  const double a = 3.62, o[4][3] = {{0, 0, 0}, {.5, .5, 0}, {.5, 0, .5}, {0, .5, .5}};
  for (int i = -2; i <= 2; i++)
    for (int j = -2; j <= 2; j++)
      for (int k = -2; k <= 2; k++)
        for (int b = 0; b < 4; b++) {
          double x = (i + o[b][0]) * a + 0.01 * ((i * 7 + j * 3 + k) % 5), y = (j + o[b][1]) * a, z = (k + o[b][2]) * a;
          double r2 = x * x + y * y + z * z;
          if (r2 > 0 && r2 < m.r_cut * m.r_cut) { del.push_back(x); del.push_back(y); del.push_back(z); zj.push_back(0); }
        }
  const int n = (int) zj.size(), reps = 20000;
  etnpot::Evaluator ev(m);
  std::vector<double> g(3 * n * 8);
  auto t0 = std::chrono::steady_clock::now();
  double e = 0;
  for (int it = 0; it < reps; it++) e += ev.site(0, n, del.data(), zj.data(), g.data(), nullptr);
  auto t1 = std::chrono::steady_clock::now();
  std::printf("%d neighbours; site: %.2f us per atom\n", n, std::chrono::duration<double>(t1 - t0).count() / reps * 1e6);
#ifndef NO_BLOCK
  int zi[8] = {0}, ns[8];
  const double *dp[8];
  const int *zp[8];
  double *gp[8], en[8];
  for (int k = 0; k < 8; k++) { ns[k] = n; dp[k] = del.data(); zp[k] = zj.data(); gp[k] = &g[3 * n * k]; }
  t0 = std::chrono::steady_clock::now();
  for (int it = 0; it < reps / 8; it++) ev.block(8, zi, ns, dp, zp, gp, en, nullptr);
  t1 = std::chrono::steady_clock::now();
  std::printf("block of 8: %.2f us per atom\n", std::chrono::duration<double>(t1 - t0).count() / (reps / 8 * 8) * 1e6);
#endif
  return e == 0.0;  // keeps the loop
}
