"""Helpers for molecular dynamics with ASE."""
from __future__ import annotations

import numpy as np

__all__ = ["thermalize"]


def thermalize(atoms, temperature_K: float, rng=None, stationary: bool = True) -> None:
    """Maxwell–Boltzmann momenta at ``temperature_K`` (ASE's ``thermalize_momenta`` where available,
    ``MaxwellBoltzmannDistribution`` on older ASE), without centre-of-mass drift."""
    rng = np.random.default_rng(rng)
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    if stationary:
        from ase.md.velocitydistribution import Stationary

        Stationary(atoms)
