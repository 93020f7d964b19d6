"""The main job on the embedded default: ``etnpot demo`` (no arguments, offline).

Fits a small ETN potential to the embedded subset of the mlearn Si data (BSD-3, see
``etnpot/data/README.md``), prints the test error table and the fit time, saves the model and
runs a short NVE molecular dynamics with it through ASE.
"""
from __future__ import annotations

import time
from importlib import resources

import numpy as np

__all__ = ["run_demo", "embedded_data"]


def embedded_data():
    """``(train, test)`` configurations of the embedded Si subset."""
    from .data import read_mlearn_json

    base = resources.files("etnpot") / "data"
    with resources.as_file(base / "Si_train.json.xz") as tr, resources.as_file(base / "Si_test.json.xz") as te:
        return read_mlearn_json(tr), read_mlearn_json(te)


def run_demo(out: str = "etnpot-demo.etn", sweeps: int = 4, md_steps: int = 200, progress: bool = True) -> int:
    from ase import units
    from ase.build import bulk
    from .md import thermalize
    from ase.md.verlet import VelocityVerlet

    from . import ETNCalculator, ETNPotential, load
    from .data import split_train_validation
    from .fit import ALSFitter, FitSettings, Weights
    from .metrics import error_table, format_error_table

    train_all, test = embedded_data()
    train, valid = split_train_validation(train_all, 0.1, seed=0)
    print(f"embedded data: mlearn Si subset, {len(train)} train / {len(valid)} validation / {len(test)} test "
          f"configurations ({sum(len(c) for c in train)} training atoms)")
    pot = ETNPotential.random(["Si"], r_cut=5.0, r_min=1.5, order=3, l_max=2, rank=3, n_basis=6, seed=0,
                              init="constant", noise=1e-3)
    print(f"model: {pot}")
    t0 = time.perf_counter()
    fitter = ALSFitter(pot, train, valid, weights=Weights(energy=3e4, forces=1.0, stress=0.0),
                       settings=FitSettings(sweeps=sweeps, ridge=1e-8, radial_steps=1), progress=progress)
    fitter.run()
    fit_time = time.perf_counter() - t0
    print(f"fit: {len(fitter.history)} sweeps in {fit_time:.1f} s")
    print(format_error_table(error_table(pot, test), "\ntest errors (mlearn Si test split)"))
    pot.save(out)
    again = load(out)
    print(f"\nsaved {out} ({again.num_parameters} parameters)")

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    atoms.calc = ETNCalculator(again)
    thermalize(atoms, 600, rng=0)
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    e0 = atoms.get_total_energy()
    t1 = time.perf_counter()
    temps = []
    for _ in range(md_steps // 10):
        dyn.run(10)
        temps.append(atoms.get_temperature())
    md_time = time.perf_counter() - t1
    drift = (atoms.get_total_energy() - e0) / len(atoms) * 1000
    print(f"NVE MD, {len(atoms)} atoms, {md_steps} steps of 1 fs from 600 K: mean T {np.mean(temps):.0f} K, "
          f"total-energy change {drift:+.3f} meV/atom, {md_time / md_steps * 1000:.1f} ms/step")
    return 0
