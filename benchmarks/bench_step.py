"""MD-step time of committed models with a given etnpot (this checkout or an export of an older
commit), for before/after comparisons of the evaluation, and an optional profile of the step.

    python benchmarks/bench_step.py [--etn-path DIR] [--atoms 8000] [--steps 15] [--profile]

For the InP 362-parameter model (zincblende InP) and the Zuo Si d4 model (diamond Si), a
rattled cell of about ``--atoms`` atoms with an :class:`etnpot.ETNCalculator` (neighbour list
reused, stress not asked): every step moves each atom by 0.001 Å (Gaussian) and asks for the
forces, as an MD step does.  Prints the median wall µs/atom of ``--steps`` steps after two
warm-up steps, one BLAS thread.  ``--etn-path`` puts another etnpot first on ``sys.path`` (run
the two alternately, pinned to one core, and compare the medians).  ``--profile`` prints the
``cProfile`` functions with the most own time over 20 steps of the InP model.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = [("fitting/inp/InP_d3_l1_r2_b4.etn", "InP"), ("fitting/zuo2020/Si_d4_r3.etn", "Si")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etn-path", default=None, help="directory holding the etnpot package to time")
    ap.add_argument("--atoms", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.etn_path:
        sys.path.insert(0, os.path.abspath(args.etn_path))
    sys.path.insert(1, HERE)
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    import etnpot
    from peer_timing import make_cell

    print(f"etnpot from {os.path.dirname(etnpot.__file__)}")
    for path, cell in MODELS[:1] if args.profile else MODELS:
        pot = etnpot.load(os.path.join(ROOT, path))
        atoms = make_cell(cell, args.atoms)
        atoms.calc = etnpot.ETNCalculator(pot, extrapolation="off")
        rng = np.random.default_rng(0)

        def step():
            atoms.positions += 0.001 * rng.standard_normal(atoms.positions.shape)
            atoms.get_forces()

        with threadpool_limits(1):
            step(), step()
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                for _ in range(20):
                    step()
                prof.disable()
                print(f"{os.path.basename(path)}, {len(atoms)} atoms, 20 steps:")
                pstats.Stats(prof).sort_stats("tottime").print_stats(12)
                continue
            ts = []
            for _ in range(args.steps):
                t = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t)
        print(f"{os.path.basename(path)} {len(atoms)} atoms: median {np.median(ts) / len(atoms) * 1e6:.2f} µs/atom "
              f"(min {np.min(ts) / len(atoms) * 1e6:.2f})", flush=True)


if __name__ == "__main__":
    main()
