"""Evaluation time of an ETN model (issue 2 reference setting), with ASE's EMT as the peer in the same run.

    python benchmarks/bench_model.py [--repeat 5] [--order 4] [--l-max 3] [--rank 8]

Prints the median wall time of energy+forces (and +stress) for a 1,000-atom fcc Cu cell and a
1,000-atom diamond Si cell at r_cut = 5 Å, and the ratio to EMT (Cu) measured alongside.
"""
import argparse
import os
import platform
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

import etnpot


def median_time(fn, repeat):
    fn()  # warm-up (caches, thread pools)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(np.min(ts)), float(np.max(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--l-max", type=int, default=3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--r-cut", type=float, default=5.0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}")
    cells = {
        "Cu fcc": bulk("Cu", "fcc", a=3.61, cubic=True).repeat((5, 5, 10)),
        "Si diamond": bulk("Si", "diamond", a=5.43, cubic=True).repeat((5, 5, 5)),
    }
    emt_cu = None
    for name, atoms in cells.items():
        atoms.rattle(0.02, seed=0)
        sym = atoms.get_chemical_symbols()[0]
        pot = etnpot.ETNPotential.random([sym], r_cut=args.r_cut, order=args.order, l_max=args.l_max, rank=args.rank,
                                         seed=0, noise=0.3)
        pot.basis.normalize(pot.graph([atoms]))
        g = pot.graph([atoms])
        ef = median_time(lambda: pot.compute(atoms, forces=True, stress=False), args.repeat)
        efs = median_time(lambda: pot.compute(atoms, forces=True, stress=True), args.repeat)
        print(f"{name}: {len(atoms)} atoms, {g.n_pairs / len(atoms):.1f} neighbours/atom, "
              f"{pot.num_parameters} parameters ({pot.parameter_counts()})")
        print(f"  ETN energy+forces        median {ef[0] * 1e3:8.1f} ms  (min {ef[1] * 1e3:.1f}, max {ef[2] * 1e3:.1f}) "
              f"= {ef[0] / len(atoms) * 1e6:.1f} µs/atom")
        print(f"  ETN energy+forces+stress median {efs[0] * 1e3:8.1f} ms")
        if sym == "Cu":
            a2 = atoms.copy()
            a2.calc = EMT()

            def emt():
                a2.calc.reset()
                a2.get_forces()

            emt_cu = median_time(emt, args.repeat)
            print(f"  ASE EMT (peer, same run)  median {emt_cu[0] * 1e3:8.1f} ms  -> ETN/EMT = {ef[0] / emt_cu[0]:.2f}")


if __name__ == "__main__":
    main()
