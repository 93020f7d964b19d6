"""Where the dense tensor-train contraction stands against the GEMM rate, and two ways to skip
the zeros of its dense cores (issue 15).

    python benchmarks/bench_contraction.py [--repeat 15]

For the middle core of the Zuo Si d4 and the InP d3 l_max 2 fits, on a 256-atom chunk (the
fast path's chunk for these two models, ``evaluation.chunk_atoms``) and one BLAS thread (run with ``OPENBLAS_NUM_THREADS=1``), medians of
``--repeat`` wall times of:

* ``DenseTT.value_and_grad`` of the whole train, and the GFlop/s of its transfer GEMM
  ``E = x G_x`` (``2 n D_f D_l D_r`` flops);
* ``union``: the same GEMM on only the columns ``(a, b)`` that some input couples (the all-zero
  columns of ``G_x`` dropped);
* ``blocked``: one GEMM per input irrep on the columns that irrep couples, added into ``E``
  (41-43 % of the dense flops: ``docs``/``benchmarks/README.md``, "Third pass").
"""
import argparse
import os

import numpy as np

import etnpot
from bench_deps import median_time  # a warm-up call, then the median wall time
from etnpot import evaluation
from etnpot.memory import keep_freed_memory

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {"Si d4 (Zuo)": os.path.join(HERE, "..", "fitting", "zuo2020", "Si_d4_r3.etn"),
          "InP d3 l2": os.path.join(HERE, "..", "fitting", "inp", "InP_d3_r3.etn")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    keep_freed_memory()  # as the evaluation does: large temporaries reused, not page-faulted in
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; load average {os.getloadavg()[0]:.2f}")
    for name, path in MODELS.items():
        tt = etnpot.load(path).tt
        pos = np.cumsum([0] + [ir.dim * c for ir, c in tt.inputs])
        n = evaluation.CHUNK
        x = np.random.default_rng(0).standard_normal((n, int(pos[-1])))
        dense = evaluation.dense_tt(tt, x)
        (Dl, Df, Dr), forms = tt._dense(1, x)
        Gx = forms[0]
        nz = Gx != 0
        union_cols = np.flatnonzero(nz.any(axis=0))
        Gu = np.ascontiguousarray(Gx[:, union_cols])
        blocks = []
        for f in range(len(pos) - 1):
            rows = slice(pos[f], pos[f + 1])
            cols = np.flatnonzero(nz[rows].any(axis=0))
            blocks.append((rows, cols, np.ascontiguousarray(Gx[rows][:, cols])))

        def blocked():
            E = np.zeros((n, Dl * Dr))
            for rows, cols, G in blocks:
                E[:, cols] += x[:, rows] @ G
            return E

        assert np.allclose(blocked(), x @ Gx)
        t_all = median_time(lambda: dense.value_and_grad(x), args.repeat)
        t_gemm = median_time(lambda: x @ Gx, args.repeat)
        t_union = median_time(lambda: x @ Gu, args.repeat)
        t_blocked = median_time(blocked, args.repeat)
        flops = 2 * n * Df * Dl * Dr
        blk_flops = sum(2 * n * (r.stop - r.start) * len(c) for r, c, _ in blocks)
        print(f"{name}: middle core {Dl} x {Df} x {Dr}, {nz.mean():.0%} filled; "
              f"whole value_and_grad {t_all / n * 1e6:.2f} µs/atom")
        print(f"  transfer GEMM E = x Gx: {t_gemm * 1e6:.0f} µs per chunk, {flops / t_gemm / 1e9:.1f} GFlop/s")
        print(f"  union of coupled columns ({len(union_cols)}/{Dl * Dr}): {t_union * 1e6:.0f} µs "
              f"({t_gemm / t_union:.2f}x)")
        print(f"  one GEMM per input irrep ({blk_flops / flops:.0%} of the flops): {t_blocked * 1e6:.0f} µs "
              f"({t_gemm / t_blocked:.2f}x)")


if __name__ == "__main__":
    main()
