"""Fit a small ETN to the embedded mlearn Si subset and print the test errors (about a minute)."""
import logging

import etnpot
from etnpot.data import split_train_validation
from etnpot.demo import embedded_data
from etnpot.fit import ALSFitter, FitSettings, Weights
from etnpot.metrics import error_table, format_error_table

logging.basicConfig(level=logging.INFO)
train_all, test = embedded_data()
train, valid = split_train_validation(train_all, 0.1, seed=0)
pot = etnpot.ETNPotential.random(["Si"], r_cut=5.0, r_min=1.5, order=3, l_max=2, rank=3, n_basis=6,
                                 init="constant", noise=1e-3)
ALSFitter(pot, train, valid, weights=Weights(energy=3e4, forces=1.0), settings=FitSettings(sweeps=3)).run()
print(format_error_table(error_table(pot, test), "test errors"))
pot.save("si_small.etn")
