"""Time energy+forces of one ASE calculator on bulk cells; run inside any code's environment.

This file imports only numpy and ASE at module level, so the same harness runs in etnpot's
environment and in each peer's own virtual environment (motep, python-ace, quippy), which is
how ``bench_peers.py`` measures every code in one run on identical cells::

    python peer_timing.py --code mtp-cext --model Si_mtp16.mtp --cell Si --atoms 1000 8000

Each cell is a rattled (0.03 Å) supercell; every repetition moves all atoms by a further
0.001 Å so that no code can return cached results, as in an MD step. Prints one JSON line per
cell size: median, min and max wall seconds of energy+forces over ``--repeat`` calls after a
warm-up, the median CPU seconds of this process (preemption by other jobs does not count), and
the peak RSS of this process.
"""
import argparse
import json
import resource
import time

import numpy as np
from ase.build import bulk

CELLS = {  # conventional cubic cells, DFT-ish lattice constants (Å)
    "Si": lambda: bulk("Si", "diamond", a=5.468, cubic=True),
    "Cu": lambda: bulk("Cu", "fcc", a=3.621, cubic=True),
    "InP": lambda: bulk("InP", "zincblende", a=5.96, cubic=True),
    # the four-species alloy proxy of fitting/transfer (EMT lattice constants averaged: 3.80 Å);
    # "fcc38" is the same lattice with one species, for a one-species model of the same ranks
    "CuAgAuNi": lambda: bulk("Cu", "fcc", a=3.80, cubic=True),
    "fcc38": lambda: bulk("Cu", "fcc", a=3.80, cubic=True),
}
MIXED = {"CuAgAuNi": ["Cu", "Ag", "Au", "Ni"]}  # random occupation, equal fractions


def make_cell(name, n_atoms):
    base = CELLS[name]()
    k = max(1, round((n_atoms / len(base)) ** (1 / 3)))
    atoms = base.repeat((k, k, k))
    if name in MIXED:
        atoms.set_chemical_symbols(list(np.random.default_rng(0).choice(MIXED[name], size=len(atoms))))
    atoms.rattle(0.03, seed=0)
    return atoms


def make_calculator(code, model, threads=1, species=()):
    if code == "etn":
        import etnpot

        pot = etnpot.load(model)
        pot.threads = threads  # etnpot caps its BLAS threads itself (default 1)
        return etnpot.ETNCalculator(pot, extrapolation="off")
    if code.startswith("mtp-"):
        from motep.calculator import make_calculator as make_mtp
        from motep.io.mlip.mtp import read_mtp

        mtp = read_mtp(model)
        mtp.species = species  # the .mtp file numbers species 0..S-1; fit_mtp.py trained on sorted atomic numbers
        return make_mtp(mtp, engine=code.split("-", 1)[1])
    if code == "ace":
        from pyace import PyACECalculator

        return PyACECalculator(model)
    if code == "gap":
        from quippy.potential import Potential

        return Potential(param_filename=model)
    if code == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    raise ValueError(f"unknown code {code!r}")


def time_calc(calc, atoms, repeat, stress=False):
    rng = np.random.default_rng(1)
    atoms.calc = calc
    ts, cs = [], []
    for k in range(repeat + 1):
        atoms.positions += 0.001 * rng.standard_normal(atoms.positions.shape)
        t, c = time.perf_counter(), time.process_time()
        atoms.get_potential_energy()
        atoms.get_forces()
        if stress:
            atoms.get_stress()
        if k:  # the first call is a warm-up (neighbour lists, compilation, caches)
            ts.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
    return float(np.median(ts)), float(np.min(ts)), float(np.max(ts)), float(np.median(cs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="etn, mtp-cext, mtp-numpy, mtp-numba, ace, gap or emt")
    ap.add_argument("--model", default=None)
    ap.add_argument("--cell", required=True, choices=sorted(CELLS))
    ap.add_argument("--atoms", type=int, nargs="+", required=True, help="approximate cell sizes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="etnpot's BLAS threads (the others follow OMP_NUM_THREADS)")
    ap.add_argument("--stress", action="store_true", help="also ask for the stress (motep's calculator computes it "
                    "at every call anyway; etnpot's only once asked)")
    args = ap.parse_args()
    species = sorted({int(z) for z in make_cell(args.cell, 64).numbers})
    for n in args.atoms:
        # a fresh calculator per cell: motep's keeps the neighbour list of the first system
        calc = make_calculator(args.code, args.model, args.threads, species)
        atoms = make_cell(args.cell, n)
        med, lo, hi, cpu = time_calc(calc, atoms, args.repeat, args.stress)
        print(json.dumps({"code": args.code, "model": args.model, "cell": args.cell, "n_atoms": len(atoms),
                          "median_s": med, "min_s": lo, "max_s": hi, "median_cpu_s": cpu, "stress": args.stress,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}), flush=True)


if __name__ == "__main__":
    main()
