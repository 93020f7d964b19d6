"""The speed-ups quoted for two dependencies (pyproject.toml comments, etnpot/neighbors.py).

    python benchmarks/bench_deps.py [--repeat 7] [--vectors 100000] [--atoms 4000]

* **sphericart vs SciPy**: real spherical harmonics *with Cartesian gradients* of ``--vectors``
  random vectors, for l_max = 3 (the reference model) and 6.  SciPy's path is the fastest it
  offers: ``scipy.special.sph_harm_y_all`` (all degrees at once, ``diff_n=1`` for the angular
  derivatives), combined into sphericart's real basis and chained to Cartesian gradients.  Both
  results are checked to agree (1e-10) before timing.
* **vesin vs ASE**: the full neighbour list (``"ijD"``) of a rattled fcc Cu supercell of about
  ``--atoms`` atoms with r_cut = 5 Å, ``vesin.ase_neighbor_list`` (what etnpot uses) against
  ``ase.neighborlist.neighbor_list``; the pair sets are checked to be equal before timing.

Prints the median of ``--repeat`` runs (after one warm-up) and the ratio.  Single-threaded BLAS.
"""
import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


# ---------------------------------------------------------------- spherical harmonics
def scipy_real_sh_with_gradients(l_max, v, signs):
    """Real SH (sphericart's basis, up to the column signs ``signs``) and Cartesian gradients
    ``(n, 3, (l_max+1)^2)`` from SciPy's complex ``sph_harm_y_all``."""
    from scipy.special import sph_harm_y_all

    r = np.linalg.norm(v, axis=1)
    x, y, z = v.T / r
    theta = np.arccos(np.clip(z, -1, 1))
    phi = np.arctan2(y, x)
    Yc, dYc = sph_harm_y_all(l_max, l_max, theta, phi, diff_n=1)  # (L+1, 2L+1, n), (L+1, 2L+1, n, 2)
    n = len(v)
    K = (l_max + 1) ** 2
    Y = np.empty((n, K))
    dth = np.empty((n, K))
    dph = np.empty((n, K))
    s2 = np.sqrt(2.0)
    for l in range(l_max + 1):
        for m in range(-l, l + 1):
            k = l * l + l + m
            c = Yc[l, abs(m)]
            dc_t, dc_p = dYc[l, abs(m), :, 0], dYc[l, abs(m), :, 1]
            if m == 0:
                Y[:, k], dth[:, k], dph[:, k] = c.real, dc_t.real, dc_p.real
            elif m > 0:
                Y[:, k], dth[:, k], dph[:, k] = s2 * c.real, s2 * dc_t.real, s2 * dc_p.real
            else:
                Y[:, k], dth[:, k], dph[:, k] = s2 * c.imag, s2 * dc_t.imag, s2 * dc_p.imag
    Y *= signs
    dth *= signs
    dph *= signs
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    grad_t = np.stack([ct * cp, ct * sp, -st], axis=1) / r[:, None]  # d theta / d v
    grad_p = np.stack([-sp, cp, np.zeros_like(sp)], axis=1) / (r * st)[:, None]  # d phi / d v
    dY = grad_t[:, :, None] * dth[:, None, :] + grad_p[:, :, None] * dph[:, None, :]
    return Y, dY


def bench_sh(n_vectors, repeat):
    import sphericart

    rng = np.random.default_rng(0)
    v = rng.normal(size=(n_vectors, 3))
    rows = []
    for l_max in (3, 6):
        sh = sphericart.SphericalHarmonics(l_max)
        Ys, dYs = sh.compute_with_gradients(v)
        # fix the per-column sign convention on the data, then demand agreement
        Y1, _ = scipy_real_sh_with_gradients(l_max, v[:50], np.ones((l_max + 1) ** 2))
        signs = np.sign(np.sum(Y1 * Ys[:50], axis=0))
        Yp, dYp = scipy_real_sh_with_gradients(l_max, v, signs)
        assert np.abs(Yp - Ys).max() < 1e-10 and np.abs(dYp - dYs).max() < 1e-10 * max(1, np.abs(dYs).max())
        t_sc = median_time(lambda: sh.compute_with_gradients(v), repeat)
        t_sp = median_time(lambda: scipy_real_sh_with_gradients(l_max, v, signs), repeat)
        rows.append((f"real SH + gradients, l_max {l_max}, {n_vectors:,} vectors", t_sc, t_sp, "sphericart", "scipy"))
    return rows


# ---------------------------------------------------------------- neighbour lists
def bench_nl(n_atoms, repeat, r_cut=5.0):
    import vesin
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    rep = max(1, round((n_atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(rep)
    atoms.rattle(0.05, seed=0)
    iv, jv, Dv = vesin.ase_neighbor_list("ijD", atoms, r_cut)
    ia, ja, Da = neighbor_list("ijD", atoms, r_cut)
    key = lambda i, j, D: np.lexsort(np.round(np.c_[i, j, D], 8).T[::-1])
    ov, oa = key(iv, jv, Dv), key(ia, ja, Da)
    assert len(iv) == len(ia) and np.array_equal(iv[ov], ia[oa]) and np.array_equal(jv[ov], ja[oa])
    assert np.abs(Dv[ov] - Da[oa]).max() < 1e-10
    t_v = median_time(lambda: vesin.ase_neighbor_list("ijD", atoms, r_cut), repeat)
    t_a = median_time(lambda: neighbor_list("ijD", atoms, r_cut), repeat)
    return [(f"neighbour list ijD, fcc Cu {len(atoms):,} atoms, r_cut {r_cut} Å ({len(iv):,} pairs)", t_v, t_a,
             "vesin", "ase")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--atoms", type=int, default=4000)
    args = ap.parse_args()
    rows = bench_sh(args.vectors, args.repeat) + bench_nl(args.atoms, args.repeat)
    print("| task | ours | time | peer | time | peer / ours |")
    print("|---|---|---|---|---|---|")
    for name, t_ours, t_peer, ours, peer in rows:
        print(f"| {name} | {ours} | {1e3 * t_ours:.1f} ms | {peer} | {1e3 * t_peer:.1f} ms | {t_peer / t_ours:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
