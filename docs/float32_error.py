"""Measure the float32 error of evaluation: ``pot.to("numpy", "float32")`` against float64.

Run from the repository root: ``python docs/float32_error.py``.  For every committed Zuo fit
(``fitting/zuo2020/*.etn`` that git tracks: fits in progress are left out) on a rattled 2x2x2
cubic cell of its element, and for the random test model of ``tests/conftest.py::pot4``, it
prints the contraction the model evaluates with (``etnpot.evaluation.contraction``) and the
differences float32 - float64 of

* the total energy relative to the total energy (E0 included, as returned by ``compute``),
* the per-atom energies (meV/atom, largest), and relative to the spread of the site energies,
* the forces: largest |dF| in eV/Å and relative to the largest |F|,
* the stress: largest |dsigma| in GPa.

The output is committed as ``docs/float32_error.txt``; the table is in ``docs/design-facts.md``
("float32 evaluation error").
"""
import os
import subprocess
import sys

import numpy as np
from ase import units
from ase.build import bulk
from ase.data import atomic_numbers, reference_states

import etnpot
from etnpot.evaluation import contraction

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def cell_for(symbol, seed=1):
    ref = reference_states[atomic_numbers[symbol]]
    atoms = bulk(symbol, ref["symmetry"], a=ref["a"], cubic=True).repeat(2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def errors(pot, atoms):
    a = pot.compute(atoms)
    b = pot.copy().to("numpy", "float32").compute(atoms)
    site = a["energies"] - pot.e0[pot.species_index(atoms.numbers)]
    return {
        "E_rel": abs(b["energy"][0] - a["energy"][0]) / abs(a["energy"][0]),
        "Ei_meV": 1000 * np.abs(b["energies"] - a["energies"]).max(),
        "Ei_rel_spread": np.abs(b["energies"] - a["energies"]).max() / max(np.ptp(site), 1e-300),
        "F_eVA": np.abs(b["forces"] - a["forces"]).max(),
        "F_rel": np.abs(b["forces"] - a["forces"]).max() / np.abs(a["forces"]).max(),
        "S_GPa": np.abs(b["stress"] - a["stress"]).max() / units.GPa,
    }


def main():
    rows = []
    paths = subprocess.run(["git", "ls-files", "fitting/zuo2020/*.etn"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for path in sorted(paths):
        pot = etnpot.load(os.path.join(ROOT, path))
        rows.append((os.path.basename(path), contraction(pot), len(cell_for(pot.species[0])),
                     errors(pot, cell_for(pot.species[0]))))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import rattled_triclinic

    pot4 = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=4, l_max=3,
                                      rank={0: 3, 1: 2, 2: 2, 3: 1, "1e": 1}, seed=2, n_basis=4)
    pot4.basis.normalize(pot4.graph([rattled_triclinic(6)]))
    rows.append(("random pot4 (tests)", contraction(pot4), 4, errors(pot4, rattled_triclinic(4))))
    keys = list(rows[0][3])
    print("| model | contraction | atoms | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, how, n, e in rows:
        print(f"| {name} | {how} | {n} | " + " | ".join(f"{e[k]:.1e}" for k in keys) + " |")


if __name__ == "__main__":
    main()
