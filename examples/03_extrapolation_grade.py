"""Extrapolation grades of the committed Si fit: training environments, the test split, strained crystals.

The active set is built from the embedded mlearn Si training subset (run from the repository root).
"""
import numpy as np
from ase.build import bulk

import etnpot
from etnpot.demo import embedded_data
from etnpot.grade import extrapolation_grades, fit_active_set

pot = etnpot.load("fitting/zuo2020/Si_d3_r3.etn")
train, test = embedded_data()
aset = fit_active_set(pot, train)
print(f"active set of rank {aset.rank} (core {aset.core})")
g = extrapolation_grades(pot, [c.atoms for c in train])
print(f"training environments: max grade {g.max():.4f}")
g = extrapolation_grades(pot, [c.atoms for c in test])
print(f"test split: median {np.median(g):.3f}, max {g.max():.2f}")
for scale in (0.8, 1.0, 1.25, 1.5):
    atoms = bulk("Si", "diamond", a=5.43 * scale, cubic=True)
    atoms.rattle(0.01, seed=0)
    print(f"diamond Si with lattice constant x{scale:.2f}: max grade {extrapolation_grades(pot, atoms).max():.3g}")
