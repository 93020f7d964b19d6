"""The species mixing of the fast evaluation, compiled against numpy, per model shape.

    python benchmarks/bench_mix.py [--repeat 31] [--rounds 3]

With several species the features of one ``l`` are ``F[a] = P[a] @ W_l[z_a]`` (each atom times
its own centre species' radial coefficients) and the pull-back needs ``H[a] = G[a] @ W_l[z_a]^T``
(:func:`etnpot.evaluation.mix`, :func:`~etnpot.evaluation.mix_t`).  numpy does them as one GEMM
per centre species on its atoms, gathered and scattered by index; the compiled loops
(:func:`etnpot.kernels.species_mix`, ``species_mix_t``) skip that bookkeeping without BLAS.  For
random data of the shapes below (one chunk of atoms, equal species fractions, every ``l`` of the
model) this prints the median µs per chunk of both directions over ``--repeat`` calls, the
medians over ``--rounds`` interleaved rounds, and the ratio compiled / numpy; one BLAS thread.
:func:`etnpot.evaluation.mix_compiled` decides by ``S N C`` which one the evaluation uses
(its thresholds come from this script's output, ``benchmarks/results/bench_mix_20261201.txt``).
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from etnpot import evaluation

# (name, species S, l_max, Chebyshev functions N, channels C, atoms per chunk)
SHAPES = [("InP 362 p (S2 l1 N4 C8)", 2, 1, 4, 8, 1024),
          ("InP l_max 2 (S2 l2 N6 C12)", 2, 2, 6, 12, 256),
          ("4 species compressed (S4 l1 N6 C6)", 4, 1, 6, 6, 512),
          ("4 species l_max 1 (S4 l1 N6 C24)", 4, 1, 6, 24, 256),
          ("4 species default l_max 2 (S4 l2 N6 C24)", 4, 2, 6, 24, 256),
          ("5 species default l_max 2 (S5 l2 N6 C30)", 5, 2, 6, 30, 256),
          ("4 species l_max 3, N8 (S4 l3 N8 C32)", 4, 3, 8, 32, 256)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=31)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("shape | chosen (mix/mix_t) | mix compiled / numpy (µs per chunk) | mix_t compiled / numpy | ratios")
    for name, S, lmax, N, C, n in SHAPES:
        centre = rng.integers(0, S, n)
        data = []
        for l in range(lmax + 1):
            W = rng.normal(size=(S, S * N, C))
            data.append((rng.normal(size=(n, 2 * l + 1, S * N)), W, rng.normal(size=(n, 2 * l + 1, C + (S if l == 0 else 0)))))

        def run(compiled, t):
            for P, W, G in data:
                (evaluation.mix(P, W, centre, compiled) if t == 0 else evaluation.mix_t(G, W, centre, compiled))

        res = {}
        with threadpool_limits(1):
            for k in (0, 1):
                for c in (True, False):
                    run(c, k)  # compile / warm up
            for _ in range(args.rounds):
                for k in (0, 1):
                    for c in (True, False):
                        ts = []
                        for _ in range(args.repeat):
                            t0 = time.perf_counter()
                            run(c, k)
                            ts.append(time.perf_counter() - t0)
                        res.setdefault((k, c), []).append(np.median(ts) * 1e6)
        m = {key: float(np.median(v)) for key, v in res.items()}
        chosen = "/".join("compiled" if evaluation.mix_compiled(S, N, C, t) else "numpy" for t in (False, True))
        print(f"{name}, {n} atoms | {chosen} | {m[0, True]:.0f} / {m[0, False]:.0f} | {m[1, True]:.0f} / {m[1, False]:.0f} | "
              f"{m[0, True] / m[0, False]:.2f}, {m[1, True] / m[1, False]:.2f}", flush=True)


if __name__ == "__main__":
    main()
