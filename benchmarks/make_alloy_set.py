"""A synthetic multicomponent training set: random fcc alloys labelled by ASE's EMT.

    python benchmarks/make_alloy_set.py --atoms 100000 --species Cu Ag Au Ni --out /tmp/alloy.xyz

Cells of ``--cell`` x ``--cell`` x ``--cell`` conventional fcc cells (4 atoms each) with random
occupation by ``--species``, the lattice constant of Vegard's law from the elements' EMT fcc
constants, a random strain of up to ``--strain`` and a rattle of ``--rattle`` Å, until
``--atoms`` atoms are reached.  Energies (eV), forces (eV/Å) and stress (eV/Å^3, ASE sign) are
EMT's, written as extended XYZ with ``REF_energy``, ``REF_forces`` and ``REF_stress``.  With
``--max-species N`` each cell draws at most N of the species (e.g. 2: elements and binaries).
The data are cheap and reproducible (``--seed``), which makes them the proxy for fit-speed
measurements on a 100,000-atom, four-species set (benchmarks/README.md) that no data here offer.
"""
import argparse

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

A_EMT = {"Al": 4.05, "Cu": 3.61, "Ag": 4.09, "Au": 4.08, "Ni": 3.52, "Pd": 3.89, "Pt": 3.92}


def alloy_cells(n_atoms, species, cell=2, strain=0.03, rattle=0.1, max_species=None, seed=0):
    rng = np.random.default_rng(seed)
    out, total = [], 0
    calc = EMT()
    while total < n_atoms:
        k = len(species) if max_species is None else int(rng.integers(1, max_species + 1))
        chosen = list(rng.choice(species, size=min(k, len(species)), replace=False))
        frac = rng.dirichlet(np.ones(len(chosen)))
        a0 = float(sum(f * A_EMT[s] for f, s in zip(frac, chosen)))
        atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat((cell, cell, cell))
        atoms.set_chemical_symbols(list(rng.choice(chosen, size=len(atoms), p=frac)))
        eps = strain * rng.uniform(-1, 1, size=(3, 3))
        atoms.set_cell(atoms.cell @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.rattle(rattle, seed=int(rng.integers(1 << 30)))
        atoms.calc = calc
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms)
        atoms.info.update(REF_energy=e, REF_stress=s, config_type=f"{len(chosen)}-component")
        atoms.arrays["REF_forces"] = f
        out.append(atoms)
        total += len(atoms)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=100000)
    ap.add_argument("--species", nargs="+", default=["Cu", "Ag", "Au", "Ni"])
    ap.add_argument("--cell", type=int, default=2)
    ap.add_argument("--strain", type=float, default=0.03)
    ap.add_argument("--rattle", type=float, default=0.1)
    ap.add_argument("--max-species", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cells = alloy_cells(args.atoms, args.species, args.cell, args.strain, args.rattle, args.max_species, args.seed)
    write(args.out, cells, format="extxyz")
    print(f"{len(cells)} configurations, {sum(len(c) for c in cells)} atoms -> {args.out}")


if __name__ == "__main__":
    main()
