"""CPU time per atom of the two kernels that form a middle core's force rows, on model shapes of
the campaigns: the Jacobian (``EquivariantTT.core_jacobian`` then ``dx @ J``) against the
tangents (``EquivariantTT.core_rows``), for ``T`` pair-direction tangents per atom.

    python benchmarks/bench_rows.py

Random inputs (the cost does not depend on the values); medians of 5 repeats of a 40-atom chunk,
process CPU time on one BLAS thread (set OPENBLAS_NUM_THREADS=1), so a busy machine inflates
the numbers less than wall time would.  ``etnpot.linearization`` chooses the Jacobian when the
flat input has fewer than 1.5 T entries, from these measurements.
"""
import time

import numpy as np

import etnpot
from etnpot.memory import keep_freed_memory

CASES = [(["Si"], 4, 2, 3, 105), (["Si"], 4, 2, 3, 60), (["Cu", "Ag", "Au", "Ni"], 3, 1, 3, 126),
         (["Cu", "Ag", "Au", "Ni"], 3, 1, 3, 80), (["In", "P"], 3, 2, 3, 105), (["In", "P"], 3, 1, 3, 105)]


def bench(species, order, l_max, rank, T, n=40, repeats=5):
    pot = etnpot.ETNPotential.random(species, r_cut=5.0, order=order, l_max=l_max, rank=rank, seed=1)
    tt = pot.tt
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(n, ir.dim, c)) for ir, c in tt.inputs]
    dx = [rng.normal(size=(n, T, ir.dim, c)) for ir, c in tt.inputs]
    dxflat = np.concatenate([b.reshape(n, T, -1) for b in dx], axis=2)
    jac = lambda: dxflat @ tt.core_jacobian(1, x)[1]
    tan = lambda: tt.core_rows(1, x, dx)[1]
    np.testing.assert_allclose(jac(), tan(), rtol=0, atol=1e-10 * np.abs(tan()).max())
    out = []
    for f in (jac, tan):
        f()
        ts = []
        for _ in range(repeats):
            t = time.process_time()
            f()
            ts.append(time.process_time() - t)
        out.append(np.median(ts) / n * 1e3)
    return dxflat.shape[2], tt.core_size(1), out


def main():
    keep_freed_memory()
    print("| species | order | l_max | rank | D_f | T | P | Jacobian ms/atom | tangents ms/atom | D_f / T |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for species, order, l_max, rank, T in CASES:
        Df, P, (j, t) = bench(species, order, l_max, rank, T)
        print(f"| {' '.join(species)} | {order} | {l_max} | {rank} | {Df} | {T} | {P} | {j:.2f} | {t:.2f} | {Df / T:.2f} |")


if __name__ == "__main__":
    main()
