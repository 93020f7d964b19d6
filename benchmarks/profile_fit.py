"""Where the time of an ALS fit goes: one sweep on Zuo Si, split by phase (cProfile).

    python benchmarks/profile_fit.py [--configs 80] [--order 4] [--rank 3]

Fits the first ``--configs`` training configurations of the Zuo Si campaign config (energy +
forces) for one sweep and prints the cumulative time of each phase: neighbour lists, features,
the energy rows of the design (environments and site designs), the force rows (forward-mode
tangents of the environments and the design), the streamed QR (TSQR) and the solves.
"""
import argparse
import cProfile
import os
import pstats
import time

from etnpot import ETNPotential
from etnpot.config import load_config
from etnpot.fit import ALSFitter, FitSettings, Weights
from etnpot.workflow import read_splits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = [  # (label, file suffix, function name): cumulative times
    ("neighbour lists", "etnpot/neighbors.py", "build_graph"),
    ("features", "etnpot/features.py", "compute"),
    ("design rows, total", "etnpot/linearization.py", "_linear_map"),
    ("  force rows: core_rows (design + tangents)", "etnpot/tt.py", "core_rows"),
    ("  pair tangents of the features", "etnpot/linearization.py", "_tangent_blocks"),
    ("  row scatter to forces/stress", "etnpot/linearization.py", "scatter_pair_rows"),
    ("streamed QR (TSQR add)", "etnpot/lstsq.py", "add"),
    ("local solves", "etnpot/lstsq.py", "solve"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=80)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--l-max", type=int, default=2)
    ap.add_argument("--rank", type=int, default=3)
    args = ap.parse_args()
    train = read_splits(load_config(os.path.join(ROOT, "fitting", "zuo2020", "Si_d4_r3.toml")))[0][: args.configs]
    pot = ETNPotential.random(["Si"], r_cut=5.0, order=args.order, l_max=args.l_max, rank=args.rank, n_basis=6,
                              r_min=1.5, seed=0)
    fitter = ALSFitter(pot, train, None, Weights(energy=3e4, forces=1, stress=0),
                       FitSettings(sweeps=1, ridge=1e-8, radial_steps=0), progress=False)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fitter.run()
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    print(f"{len(train)} configurations, {sum(len(c) for c in train)} atoms, order {args.order}, rank {args.rank}: "
          f"one sweep {total:.1f} s")
    for label, path, name in PHASES:
        cum = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(path) and fn == name)
        print(f"  {label:36s} {cum:7.1f} s  {100 * cum / total:5.1f} %")


if __name__ == "__main__":
    main()
