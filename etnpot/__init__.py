"""etnpot: equivariant tensor-network (ETN) interatomic potentials.

Polynomial, non-neural machine-learned potentials (Hodapp & Shapeev, Mach. Learn.: Sci.
Technol. 2024): per-atom equivariant one-particle features contracted with a tensor train of
Clebsch–Gordan-coupled cores; fitted by alternating least squares; used through ASE.

Public API::

    pot, report = etnpot.fit_potential("fit.toml")   # what `etnpot fit fit.toml` runs

    pot = etnpot.ETNPotential.random(species=["Cu", "Au"], r_cut=5.0, order=4, l_max=3, rank=8, seed=0)
    atoms.calc = etnpot.ETNCalculator(pot)
    pot.save("m.etn"); pot2 = etnpot.load("m.etn")

    train, valid = etnpot.split_train_validation(etnpot.read_dataset("train.xyz"), 0.1)
    etnpot.ALSFitter(pot, train, valid, weights=etnpot.Weights(), settings=etnpot.FitSettings()).run()
    print(etnpot.format_error_table(etnpot.error_table(pot, valid)))
"""
import logging

from ._version import __version__
from .calculator import ETNCalculator
from .compress import compress, compress_channels
from .data import read_dataset, split_train_validation
from .fit import ALSFitter, FitSettings  # not fit(): it would shadow the module etnpot.fit
from .metrics import error_table, format_error_table
from .objective import Weights
from .io import FORMAT_VERSION, ModelFileError, load, read_header, save
from .potential import ETNPotential, LinearMap
from .prune import prune
from .so3 import Irrep, Irreps
from .tt import EquivariantTT
from .workflow import fit_potential

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "fit_potential",
    "ETNPotential",
    "ETNCalculator",
    "EquivariantTT",
    "LinearMap",
    "prune",
    "compress",
    "compress_channels",
    "ALSFitter",
    "FitSettings",
    "Weights",
    "read_dataset",
    "split_train_validation",
    "error_table",
    "format_error_table",
    "Irrep",
    "Irreps",
    "save",
    "load",
    "read_header",
    "ModelFileError",
    "FORMAT_VERSION",
    "__version__",
]
