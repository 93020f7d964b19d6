"""Build a random ETN model, attach it to ASE atoms, compute energy, forces and stress, save and reload."""
import numpy as np
from ase.build import bulk

import etnpot

pot = etnpot.ETNPotential.random(species=["Cu", "Au"], r_cut=5.0, order=4, l_max=3, rank=4, seed=0)
print(pot)
atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
atoms.numbers[::4] = 79
atoms.rattle(0.05, seed=1)
atoms.calc = etnpot.ETNCalculator(pot)
print("E =", atoms.get_potential_energy(), "eV")
print("max |F| =", np.abs(atoms.get_forces()).max(), "eV/Å")
print("stress =", atoms.get_stress(), "eV/Å^3")
pot.save("random.etn")
print("reloaded:", etnpot.load("random.etn").compute(atoms)["energy"][0])
