/* etnpot: the ETN model evaluated in C++ for pair_style etn (no LAMMPS dependency).
   SPDX-License-Identifier: BSD-3-Clause (see LICENSE in this folder).

   Reads the flat text file written by `etnpot export` (format "ETNPOT-LAMMPS 1", documented in
   etnpot/lammps_export.py) and evaluates, for one centre atom i with neighbours j:

     Q_n(r)  = T_n(s) fc(r),  s = (2r - r_min - r_cut)/(r_cut - r_min),  fc = ((r_cut - r)/(r_cut - r_min))^2
     Y_lm    real spherical harmonics, sphericart's convention (orthonormal, m = -l..l,
             Y_1 = sqrt(3/4pi) (y, z, x)/r): Y_lm = N_lm Q_l^|m|(z) {cos,sin}(|m| phi) sin^|m| theta,
             with no Condon-Shortley phase
     F[l,m,c] = sum_j sum_n W[z_i, z_j, l, c, n] Q_n(r_ij) Y_lm(r_ij)  - delta_l0 shift[z_i, c]
             (W = the model's pair weights, feature scale included), and for l = 0 the species
             indicator channels F[0,0,C+s] = delta(z_i, s)
     x = flat F (blocks l = 0..l_max, each row-major (m, c))
     E_i = e0[z_i] + L_d, through the tensor train's dense cores G_s (D_l, D_f, D_r):
           L_0 = 1,  L_{s+1}[b] = sum_{a,j} L_s[a] x_j G_s[a,j,b]
   and the reverse pass  dE/dx_j = sum_s sum_ab L_s[a] G_s[a,j,b] R_{s+1}[b]  (L_0 = R_d = 1,
   R_s = E_s R_{s+1}), then through the features to the pair gradients
     g_ij = dE_i/dr_ij = rhat sum_lm Y_lm (h Q')_lm + sum_lm grad Y_lm (h Q)_lm,
     h[lm, n] = sum_c dE/dF[l,m,c] W[z_i, z_j, l, c, n].
   The cores are stored as their nonzero entries (the CG-coupled dense cores are mostly zeros).
   Units: eV, Angstrom. */
#ifndef ETNPOT_ETN_MODEL_H
#define ETNPOT_ETN_MODEL_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace etnpot {

static const int ETN_FORMAT_VERSION = 1;

/* One core's nonzeros G[a, j, b] = v, in three orders so that every contraction is a gather
   into a register accumulator (a scatter-add into the same few outputs would wait on memory):
   by output index b (forward L_{s+1}[b]), by a (backward R_s[a]) and by j (input gradient). */
struct Sparse3 {
  std::vector<int> start;  // CSR offsets over the sorting index
  std::vector<int> u, w;   // the other two indices of each entry
  std::vector<double> v;
};

struct Core {
  int Dl = 0, Df = 0, Dr = 0;
  std::vector<int> jstart;  // Df + 1: entries of input index j are [jstart[j], jstart[j+1])
  std::vector<int> a, b;    // left and right bond index of each entry
  std::vector<double> v;
  Sparse3 byb, bya;         // byb: u = a, w = j;  bya: u = j, w = b

  void index() {
    auto build = [&](Sparse3 &s, int n, const std::vector<int> &key, const std::vector<int> &u,
                     const std::vector<int> &w) {
      s.start.assign(n + 1, 0);
      for (int k : key) s.start[k + 1]++;
      for (int i = 0; i < n; i++) s.start[i + 1] += s.start[i];
      std::vector<int> pos(s.start.begin(), s.start.end() - 1);
      s.u.resize(key.size()); s.w.resize(key.size()); s.v.resize(key.size());
      for (size_t e = 0; e < key.size(); e++) {
        int q = pos[key[e]]++;
        s.u[q] = u[e]; s.w[q] = w[e]; s.v[q] = v[e];
      }
    };
    std::vector<int> j(v.size());
    for (int jj = 0; jj < Df; jj++)
      for (int e = jstart[jj]; e < jstart[jj + 1]; e++) j[e] = jj;
    build(byb, Dr, b, a, j);
    build(bya, Dl, a, j, b);
  }
};

struct Grade {  // phi[p] = sum v L_k[a] x[j] R_{k+1}[b];  grade = max_c |sum_p phi[p] M[p, c]|
  int core = -1, P = 0, rank = 0;
  std::vector<int> a, j, b, p;
  std::vector<double> v, M;  // M: P x rank, row-major
};

// FNV-1a, 64 bit: the export's checksum of the body (corruption, truncation)
inline uint64_t fnv1a64(const std::string &s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) { h ^= ch; h *= 1099511628211ULL; }
  return h;
}

class Model {
 public:
  std::vector<std::string> species;
  std::vector<double> e0;
  double r_min = 0, r_cut = 0;
  int S = 0, N = 0, lmax = 0, C = 0, Df = 0, order = 0;
  std::vector<double> W;      // (S, S, L, C, N)
  std::vector<double> shift;  // (S, C)
  std::vector<Core> cores;
  Grade grade;
  std::string checksum;

  bool has_grade() const { return grade.core >= 0; }
  int K() const { return (lmax + 1) * (lmax + 1); }

  void read(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open ETN model file " + path);
    std::string magic, ver, sumline;
    if (!std::getline(in, magic)) throw std::runtime_error(path + ": empty file");
    std::istringstream m(magic);
    std::string tag;
    int version = -1;
    m >> tag >> version;
    if (tag == "PK\003\004" || magic.compare(0, 2, "PK") == 0)
      throw std::runtime_error(path + " is an etnpot .etn model (a zip archive); pair_style etn reads the "
                               "file written by 'etnpot export MODEL.etn OUT'");
    if (tag != "ETNPOT-LAMMPS")
      throw std::runtime_error(path + ": not an ETN LAMMPS model file (first line '" + magic.substr(0, 40) +
                               "', expected 'ETNPOT-LAMMPS " + std::to_string(ETN_FORMAT_VERSION) + "')");
    if (version != ETN_FORMAT_VERSION)
      throw std::runtime_error(path + ": ETN LAMMPS model format version " + std::to_string(version) +
                               " is not supported by this plugin (reads version " +
                               std::to_string(ETN_FORMAT_VERSION) + "); re-export with a matching etnpot");
    std::getline(in, sumline);
    std::istringstream sl(sumline);
    std::string kw, alg, want;
    sl >> kw >> alg >> want;
    if (kw != "checksum" || alg != "fnv1a64") throw std::runtime_error(path + ": no checksum line");
    std::stringstream rest;
    rest << in.rdbuf();
    std::string body = rest.str();
    char got[17];
    std::snprintf(got, sizeof got, "%016llx", (unsigned long long) fnv1a64(body));
    if (want != got)
      throw std::runtime_error(path + ": checksum mismatch (file corrupt or modified): header says " + want +
                               ", content gives " + got);
    checksum = want;
    parse(path, body);
  }

 private:
  struct Tok {
    std::istringstream s;
    std::string path;
    explicit Tok(const std::string &b, const std::string &p) : s(b), path(p) {}
    std::string word() { std::string w; if (!(s >> w)) throw std::runtime_error(path + ": truncated"); return w; }
    void expect(const std::string &k) {
      std::string w = word();
      if (w != k) throw std::runtime_error(path + ": expected '" + k + "', found '" + w + "'");
    }
    long integer() { return std::stol(word()); }
    double real() { return std::strtod(word().c_str(), nullptr); }
    void reals(std::vector<double> &v, size_t n) {
      size_t k = (size_t) integer();
      if (k != n) throw std::runtime_error(path + ": array of " + std::to_string(k) + " values, expected " + std::to_string(n));
      v.resize(n);
      for (auto &x : v) x = real();
    }
  };

  void parse(const std::string &path, const std::string &body) {
    Tok t(body, path);
    t.expect("species");
    S = (int) t.integer();
    species.resize(S);
    for (auto &s : species) s = t.word();
    t.expect("e0");
    t.reals(e0, S);
    t.expect("radial");
    r_min = t.real(); r_cut = t.real(); N = (int) t.integer();
    t.expect("l_max"); lmax = (int) t.integer();
    t.expect("n_channels"); C = (int) t.integer();
    const int L = lmax + 1;
    t.expect("pair_weights"); t.reals(W, (size_t) S * S * L * C * N);
    t.expect("shift"); t.reals(shift, (size_t) S * C);
    Df = 0;
    for (int l = 0; l <= lmax; l++) Df += (2 * l + 1) * (C + (l == 0 ? S : 0));
    t.expect("order"); order = (int) t.integer();
    cores.resize(order);
    for (int s = 0; s < order; s++) {
      Core &c = cores[s];
      t.expect("core");
      if (t.integer() != s) throw std::runtime_error(path + ": cores out of order");
      c.Dl = (int) t.integer(); c.Df = (int) t.integer(); c.Dr = (int) t.integer();
      if (c.Df != Df) throw std::runtime_error(path + ": core input dimension does not match the features");
      if ((s == 0 && c.Dl != 1) || (s == order - 1 && c.Dr != 1) ||
          (s > 0 && c.Dl != cores[s - 1].Dr))
        throw std::runtime_error(path + ": inconsistent core shapes");
      long nnz = t.integer();
      c.jstart.assign(Df + 1, 0);
      c.a.resize(nnz); c.b.resize(nnz); c.v.resize(nnz);
      int last = 0;
      for (long e = 0; e < nnz; e++) {
        int j = (int) t.integer();
        c.a[e] = (int) t.integer(); c.b[e] = (int) t.integer(); c.v[e] = t.real();
        if (j < last || j >= Df || c.a[e] >= c.Dl || c.b[e] >= c.Dr || c.a[e] < 0 || c.b[e] < 0)
          throw std::runtime_error(path + ": core entry out of range or unsorted");
        last = j;
        c.jstart[j + 1]++;
      }
      for (int j = 0; j < Df; j++) c.jstart[j + 1] += c.jstart[j];
      c.index();
    }
    t.expect("grade");
    std::string g = t.word();
    if (g == "core") {
      grade.core = (int) t.integer(); grade.P = (int) t.integer(); grade.rank = (int) t.integer();
      long nnz = t.integer();
      grade.a.resize(nnz); grade.j.resize(nnz); grade.b.resize(nnz); grade.p.resize(nnz); grade.v.resize(nnz);
      for (long e = 0; e < nnz; e++) {
        grade.a[e] = (int) t.integer(); grade.j[e] = (int) t.integer(); grade.b[e] = (int) t.integer();
        grade.p[e] = (int) t.integer(); grade.v[e] = t.real();
        if (grade.p[e] < 0 || grade.p[e] >= grade.P) throw std::runtime_error(path + ": grade entry out of range");
      }
      t.expect("grade_matrix");
      t.reals(grade.M, (size_t) grade.P * grade.rank);
    } else if (g != "none") {
      throw std::runtime_error(path + ": bad grade section");
    }
    t.expect("end");
  }
};

/* Real spherical harmonics and their Cartesian gradients with respect to the un-normalized
   vector v.  On the unit vector n the solid harmonic R_lm(v) = |v|^l Y_lm(v) is the polynomial
   N_lm Q_l^|m|(z, r^2) c_m(x, y) (m > 0), N_l0 Q_l^0 (m = 0), N_lm Q_l^|m| s_|m|(x, y) (m < 0), with
   c_m + i s_m = (x + i y)^m and Q_m^m = (2m-1)!!, Q_{m+1}^m = (2m+1) z Q_m^m,
   Q_l^m = ((2l-1) z Q_{l-1}^m - (l+m-1) r^2 Q_{l-2}^m)/(l-m).  Gradients of the polynomials are
   carried through the same recursions (forward mode); since Y(v) = R(v)/|v|^l,
   grad Y(v) = (grad R(n) - l Y(n) n) / |v|. */
class SphHarm {
 public:
  explicit SphHarm(int lmax = 0) { init(lmax); }
  void init(int lmax_) {
    lmax = lmax_;
    int L = lmax + 1;
    norm.assign(L * L, 0.0);
    for (int l = 0; l <= lmax; l++)
      for (int m = 0; m <= l; m++) {
        double f = 1.0;  // (l-m)!/(l+m)!
        for (int k = l - m + 1; k <= l + m; k++) f /= k;
        double nlm = std::sqrt((2 * l + 1) / (4.0 * M_PI) * f);
        if (m > 0) nlm *= std::sqrt(2.0);
        norm[l * L + m] = nlm;
      }
    Q.assign(L * L * 4, 0.0);
    cs.assign(L * 8, 0.0);
    dfact.assign(L, 1.0);  // (2m-1)!!
    for (int m = 1; m <= lmax; m++) dfact[m] = dfact[m - 1] * (2 * m - 1);
  }
  // Y[(l^2 + l + m)], dY[3 * (l^2 + l + m) + a]
  void compute(const double *v, double *Y, double *dY) {
    const int L = lmax + 1;
    double r = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), ir = 1.0 / r;
    double n[3] = {v[0] * ir, v[1] * ir, v[2] * ir};
    double x = n[0], y = n[1], z = n[2];
    // c_m, s_m and gradients: cs[m*8 + 0..3] = c, dc/dx, dc/dy, dc/dz; 4..7 = s, ds/d.
    cs[0] = 1; cs[1] = cs[2] = cs[3] = 0; cs[4] = 0; cs[5] = cs[6] = cs[7] = 0;
    for (int m = 1; m <= lmax; m++) {
      const double *p = &cs[(m - 1) * 8];
      double *q = &cs[m * 8];
      q[0] = x * p[0] - y * p[4];
      q[4] = x * p[4] + y * p[0];
      for (int a = 1; a < 4; a++) {
        q[a] = x * p[a] - y * p[4 + a];
        q[4 + a] = x * p[4 + a] + y * p[a];
      }
      q[1] += p[0]; q[2] -= p[4];  // d/dx, d/dy of x c - y s
      q[5] += p[4]; q[6] += p[0];  // of x s + y c
    }
    // Q_l^m (value and gradient), r^2 = 1 on n but its gradient 2n enters
    auto Qp = [&](int l, int m) { return &Q[(l * L + m) * 4]; };
    for (int m = 0; m <= lmax; m++) {
      double *q = Qp(m, m);
      q[0] = dfact[m]; q[1] = q[2] = q[3] = 0;
      if (m + 1 <= lmax) {
        double *q1 = Qp(m + 1, m);
        q1[0] = (2 * m + 1) * z * q[0];
        q1[1] = 0; q1[2] = 0; q1[3] = (2 * m + 1) * q[0];
      }
      for (int l = m + 2; l <= lmax; l++) {
        const double *a = Qp(l - 1, m), *b = Qp(l - 2, m);
        double *o = Qp(l, m);
        double c1 = (2 * l - 1) / double(l - m), c2 = (l + m - 1) / double(l - m);
        o[0] = c1 * z * a[0] - c2 * b[0];
        for (int d = 0; d < 3; d++) o[1 + d] = c1 * (z * a[1 + d]) - c2 * (2 * n[d] * b[0] + b[1 + d]);
        o[3] += c1 * a[0];
      }
    }
    for (int l = 0; l <= lmax; l++) {
      for (int m = -l; m <= l; m++) {
        int am = m < 0 ? -m : m;
        const double *q = Qp(l, am);
        const double *t = &cs[am * 8 + (m < 0 ? 4 : 0)];
        double N = norm[l * L + am];
        double val = N * q[0] * t[0];
        double g[3];
        for (int d = 0; d < 3; d++) g[d] = N * (q[1 + d] * t[0] + q[0] * t[1 + d]);
        int k = l * l + l + m;
        Y[k] = val;
        if (dY)
          for (int d = 0; d < 3; d++) dY[3 * k + d] = (g[d] - l * val * n[d]) * ir;
      }
    }
  }

 private:
  int lmax = 0;
  std::vector<double> norm, Q, cs, dfact;
};

/* Per-thread work space and the evaluation of blocks of up to BLOCK centre atoms: the features
   and the pull-back to the pairs run atom by atom, the tensor-train contractions for the whole
   block at once with the atoms as the innermost (SIMD) index, x[j * BLOCK + k] for atom k. */
class Evaluator {
 public:
  static const int BLOCK = 8;

  explicit Evaluator(const Model &m) : mod(m), sh(m.lmax), slot(BLOCK) {
    const int B = BLOCK;
    X.assign((size_t) m.Df * B, 0.0); GX.assign(X.size(), 0.0);
    P.resize((size_t) m.K() * m.S * m.N); H.resize(P.size());
    Lenv.resize(m.order + 1); Renv.resize(m.order + 1);
    for (int s = 0; s < m.order; s++) {
      Lenv[s].assign((size_t) m.cores[s].Dl * B, 0.0);
      Renv[s + 1].assign((size_t) m.cores[s].Dr * B, 0.0);
    }
    last.assign(B, 0.0);
    if (m.has_grade()) phi.resize(m.grade.P);
  }

  /* Site energy (e0 included) of one centre of species zi with n neighbours (vectors r_ij = r_j - r_i
     in del[3e..], species zj[e], all with |r_ij| < r_cut); pair gradients dE_i/dr_ij into grad[3e..]
     (if not null); the extrapolation grade into *grade_out (if not null, needs grade data). */
  double site(int zi, int n, const double *del, const int *zj, double *grad, double *grade_out) {
    double e;
    block(1, &zi, &n, &del, &zj, &grad, &e, grade_out);
    return e;
  }

  /* The same for nb <= BLOCK centres at once (arrays of per-atom pointers); grad[k] may be null
     (no gradients for any atom then), grade may be null. */
  void block(int nb, const int *zi, const int *n, const double *const *del, const int *const *zj,
             double *const *grad, double *energy, double *grade) {
    const Model &m = mod;
    const int B = BLOCK;
    for (int k = 0; k < nb; k++) { zjp[k] = zj[k]; features(k, zi[k], n[k], del[k], zj[k]); }
    for (int k = nb; k < B; k++)
      for (int j = 0; j < m.Df; j++) X[(size_t) j * B + k] = 0.0;
    const bool need_grad = grad[0] != nullptr;
    contract(need_grad || grade);
    for (int k = 0; k < nb; k++) {
      energy[k] = last[k] + m.e0[zi[k]];
      if (grade) grade[k] = grade_of(k);
    }
    if (!need_grad) return;
    input_gradient();
    for (int k = 0; k < nb; k++) pull(k, zi[k], n[k], del[k], grad[k]);
  }

  // spherical harmonics alone (for the convention test)
  void sph(const double *v, double *Y, double *dY) { sh.compute(v, Y, dY); }

 private:
  struct Slot { std::vector<double> pr, Yv, dYv, Qv, dQv; std::vector<int> zj; };

  // the features of atom k of the block into X[:, k], and its pair data into slot k
  void features(int k, int zi, int n, const double *del, const int *zj) {
    const Model &m = mod;
    const int L = m.lmax + 1, K = L * L, S = m.S, N = m.N, C = m.C, B = BLOCK;
    Slot &sl = slot[k];
    sl.pr.resize(n); sl.Yv.resize((size_t) n * K); sl.dYv.resize((size_t) n * K * 3);
    sl.Qv.resize((size_t) n * N); sl.dQv.resize((size_t) n * N);
    std::fill(P.begin(), P.end(), 0.0);
    const double w = m.r_cut - m.r_min, ds = 2.0 / w;
    for (int e = 0; e < n; e++) {
      const double *d = del + 3 * e;
      double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      sl.pr[e] = r;
      sh.compute(d, &sl.Yv[(size_t) e * K], &sl.dYv[(size_t) e * K * 3]);
      // Chebyshev T_n(s) and dT/dr, times the cutoff ((r_cut - r)/w)^2
      double s = (2.0 * r - m.r_min - m.r_cut) / w;
      double xc = (m.r_cut - r) / w, fc = xc * xc, dfc = -2.0 * xc / w;
      double *Q = &sl.Qv[(size_t) e * N], *dQ = &sl.dQv[(size_t) e * N];
      double T0 = 1, T1 = s, dT0 = 0, dT1 = ds;
      for (int q = 0; q < N; q++) {
        double T, dT;
        if (q == 0) { T = T0; dT = dT0; }
        else if (q == 1) { T = T1; dT = dT1; }
        else {
          T = 2 * s * T1 - T0; dT = 2 * (ds * T1 + s * dT1) - dT0;
          T0 = T1; T1 = T; dT0 = dT1; dT1 = dT;
        }
        Q[q] = T * fc; dQ[q] = dT * fc + T * dfc;
      }
      const double *Y = &sl.Yv[(size_t) e * K];
      double *Pz = &P[(size_t) zj[e] * N];
      for (int lm = 0; lm < K; lm++) {
        double *row = Pz + (size_t) lm * S * N;
        for (int q = 0; q < N; q++) row[q] += Y[lm] * Q[q];
      }
    }
    // F[l, m, c] = sum_{z, n} W[zi, z, l, c, n] P[lm, z, n]
    int off = 0;
    for (int l = 0; l < L; l++) {
      const int Cl = C + (l == 0 ? S : 0);
      for (int mm = 0; mm < 2 * l + 1; mm++) {
        const double *Prow = &P[(size_t) (l * l + mm) * S * N];
        for (int c = 0; c < C; c++) {
          double acc = 0;
          for (int z = 0; z < S; z++) {
            const double *Wr = &m.W[((((size_t) zi * S + z) * L + l) * C + c) * N];
            for (int q = 0; q < N; q++) acc += Wr[q] * Prow[z * N + q];
          }
          if (l == 0) acc -= m.shift[(size_t) zi * C + c];
          X[(size_t) (off + mm * Cl + c) * B + k] = acc;
        }
        if (l == 0)
          for (int z = 0; z < S; z++) X[(size_t) (off + C + z) * B + k] = (z == zi) ? 1.0 : 0.0;
      }
      off += (2 * l + 1) * Cl;
    }
  }

  /* forward: L_0 = 1, L_{s+1}[b] = sum_{a,j} L_s[a] x_j G_s[a, j, b] (L_d = E - e0); with back,
     R_d = 1, R_s[a] = sum_{j,b} x_j G_s[a, j, b] R_{s+1}[b] */
  void contract(bool back) {
    const Model &m = mod;
    const int d = m.order, B = BLOCK;
    for (int k = 0; k < B; k++) Lenv[0][k] = 1.0;
    for (int s = 0; s < d; s++) {
      const Core &c = m.cores[s];
      double *Ln = s + 1 < d ? Lenv[s + 1].data() : last.data();
      const double *Ls = Lenv[s].data();
      const Sparse3 &q = c.byb;
      for (int bb = 0; bb < c.Dr; bb++) {
        double acc[BLOCK] = {0};
        for (int e = q.start[bb]; e < q.start[bb + 1]; e++) {
          const double v = q.v[e], *la = Ls + (size_t) q.u[e] * B, *xj = &X[(size_t) q.w[e] * B];
          for (int k = 0; k < BLOCK; k++) acc[k] += v * la[k] * xj[k];
        }
        for (int k = 0; k < BLOCK; k++) Ln[(size_t) bb * B + k] = acc[k];
      }
    }
    if (!back) return;
    double *Rd = Renv[d].data();
    for (int k = 0; k < B; k++) Rd[k] = 1.0;
    for (int s = d - 1; s >= 0; s--) {
      const Core &c = m.cores[s];
      double *Rs = s > 0 ? Renv[s].data() : nullptr;
      if (!Rs) continue;  // R_0 is the energy again: not needed
      const double *Rn = Renv[s + 1].data();
      const Sparse3 &q = c.bya;
      for (int aa = 0; aa < c.Dl; aa++) {
        double acc[BLOCK] = {0};
        for (int e = q.start[aa]; e < q.start[aa + 1]; e++) {
          const double v = q.v[e], *xj = &X[(size_t) q.u[e] * B], *rb = Rn + (size_t) q.w[e] * B;
          for (int k = 0; k < BLOCK; k++) acc[k] += v * xj[k] * rb[k];
        }
        for (int k = 0; k < BLOCK; k++) Rs[(size_t) aa * B + k] = acc[k];
      }
    }
  }

  // dE/dx_j = sum_s sum_{ab} L_s[a] G_s[a, j, b] R_{s+1}[b]
  void input_gradient() {
    const Model &m = mod;
    const int B = BLOCK;
    std::fill(GX.begin(), GX.end(), 0.0);
    for (int s = 0; s < m.order; s++) {
      const Core &c = m.cores[s];
      const double *Ls = Lenv[s].data(), *Rn = Renv[s + 1].data();
      for (int j = 0; j < m.Df; j++) {
        double acc[BLOCK] = {0};
        for (int e = c.jstart[j]; e < c.jstart[j + 1]; e++) {
          const double v = c.v[e], *la = Ls + (size_t) c.a[e] * B, *rb = Rn + (size_t) c.b[e] * B;
          for (int k = 0; k < BLOCK; k++) acc[k] += v * la[k] * rb[k];
        }
        double *g = &GX[(size_t) j * B];
        for (int k = 0; k < BLOCK; k++) g[k] += acc[k];
      }
    }
  }

  // the pull-back of atom k: H[lm, z, n] = sum_c dE/dF[l, m, c] W[zi, z, l, c, n], then per pair
  // g = rhat sum_lm Y_lm (h Q')_lm + sum_lm grad Y_lm (h Q)_lm
  void pull(int k, int zi, int n, const double *del, double *grad) {
    const Model &m = mod;
    const int L = m.lmax + 1, K = L * L, S = m.S, N = m.N, C = m.C, B = BLOCK;
    const Slot &sl = slot[k];
    int off = 0;
    for (int l = 0; l < L; l++) {
      const int Cl = C + (l == 0 ? S : 0);
      for (int mm = 0; mm < 2 * l + 1; mm++) {
        double *Hrow = &H[(size_t) (l * l + mm) * S * N];
        for (int z = 0; z < S; z++)
          for (int q = 0; q < N; q++) {
            double acc = 0;
            for (int c = 0; c < C; c++)
              acc += GX[(size_t) (off + mm * Cl + c) * B + k] * m.W[((((size_t) zi * S + z) * L + l) * C + c) * N + q];
            Hrow[z * N + q] = acc;
          }
      }
      off += (2 * l + 1) * Cl;
    }
    (void) sl;
    for (int e = 0; e < n; e++) {
      const double *Y = &sl.Yv[(size_t) e * K], *dY = &sl.dYv[(size_t) e * K * 3];
      const double *Q = &sl.Qv[(size_t) e * N], *dQ = &sl.dQv[(size_t) e * N];
      const double *Hz = &H[(size_t) zjs(k, e) * N];
      double radial = 0, g[3] = {0, 0, 0};
      for (int lm = 0; lm < K; lm++) {
        const double *h = Hz + (size_t) lm * S * N;
        double hQ = 0, hdQ = 0;
        for (int q = 0; q < N; q++) { hQ += h[q] * Q[q]; hdQ += h[q] * dQ[q]; }
        radial += Y[lm] * hdQ;
        g[0] += dY[3 * lm] * hQ; g[1] += dY[3 * lm + 1] * hQ; g[2] += dY[3 * lm + 2] * hQ;
      }
      const double *dv = del + 3 * e;
      double ir = 1.0 / sl.pr[e];
      for (int a = 0; a < 3; a++) grad[3 * e + a] = dv[a] * ir * radial + g[a];
    }
  }

  int zjs(int k, int e) const { return zjp[k][e]; }

  double grade_of(int k) {
    const Grade &g = mod.grade;
    const int B = BLOCK;
    std::fill(phi.begin(), phi.end(), 0.0);
    const double *L = Lenv[g.core].data(), *R = Renv[g.core + 1].data();
    for (size_t e = 0; e < g.v.size(); e++)
      phi[g.p[e]] += g.v[e] * L[(size_t) g.a[e] * B + k] * X[(size_t) g.j[e] * B + k] * R[(size_t) g.b[e] * B + k];
    double best = 0;
    for (int c = 0; c < g.rank; c++) {
      double acc = 0;
      for (int p = 0; p < g.P; p++) acc += phi[p] * g.M[(size_t) p * g.rank + c];
      best = std::max(best, std::fabs(acc));
    }
    return best;
  }

  const Model &mod;
  SphHarm sh;
  std::vector<Slot> slot;
  const int *zjp[BLOCK] = {nullptr};
  std::vector<double> X, GX, P, H, phi, last;
  std::vector<std::vector<double>> Lenv, Renv;
};

}  // namespace etnpot
#endif
