"""The main job on an embedded default: ``etnpot demo`` (no arguments, offline)."""
from __future__ import annotations

import time

import numpy as np

__all__ = ["run_demo"]


def run_demo(out: str = "etnpot-demo.etn") -> int:
    from ase import units
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet

    from . import ETNCalculator, ETNPotential, load

    pot = ETNPotential.random(["Cu"], r_cut=5.0, order=4, l_max=3, rank=8, seed=0, noise=0.3)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 6, 7))
    atoms.rattle(0.02, seed=0)
    pot.basis.normalize(pot.graph([atoms]))
    print(pot)
    atoms.calc = ETNCalculator(pot)
    times = []
    for _ in range(5):
        atoms.calc.reset()
        t = time.perf_counter()
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        times.append(time.perf_counter() - t)
    print(f"{len(atoms)}-atom fcc Cu: E = {e:.6f} eV, max|F| = {np.abs(f).max():.4f} eV/Å, "
          f"stress = {np.array2string(s / units.GPa, precision=4)} GPa")
    print(f"energy+forces+stress: median {np.median(times) * 1e3:.1f} ms over 5 runs "
          f"({np.median(times) / len(atoms) * 1e6:.1f} µs/atom)")
    pot.save(out)
    again = load(out)
    same = again.compute(atoms)["energy"][0] == e
    print(f"saved {out}; reloaded model predicts bit-identically: {same}")
    small = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    small.calc = ETNCalculator(again)
    e0 = small.get_total_energy()
    VelocityVerlet(small, 0.05 * units.fs).run(10)
    print(f"10 NVE steps on {len(small)} atoms: total energy change {small.get_total_energy() - e0:.2e} eV")
    print("(a random, unfitted model: `etnpot fit` makes a real one)")
    return 0 if same else 1
