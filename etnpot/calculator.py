"""ASE calculator for an ETN potential.

``atoms.calc = ETNCalculator(potential)`` gives ``energy``, ``free_energy`` (equal: no
electronic entropy), per-atom ``energies``, ``forces`` and, for 3-d periodic cells, ``stress``
and per-atom ``stresses`` (eV, Å, eV/Å^3, ASE's sign: positive under tension).  Asking for the
stress of a cell that is not periodic in three directions raises
``PropertyNotImplementedError``.  Caching is ASE's: results are reused until the atoms change.
"""
from __future__ import annotations

from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

__all__ = ["ETNCalculator"]


class ETNCalculator(Calculator):
    """ASE calculator wrapping an :class:`~etnpot.ETNPotential` (or a path to a saved model)."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses"]
    nolabel = True

    def __init__(self, potential, **kwargs):
        super().__init__(**kwargs)
        if isinstance(potential, (str, bytes)) or hasattr(potential, "__fspath__"):
            from .io import load

            potential = load(potential)
        self.potential = potential
        self.n_calls = 0  # number of actual evaluations (tests use it to check caching)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        periodic = self.atoms.cell.rank == 3 and all(self.atoms.pbc)
        want_stress = any(p in ("stress", "stresses") for p in properties)
        if want_stress and not periodic:
            raise PropertyNotImplementedError(
                "stress is defined only for cells periodic in all three directions "
                f"(pbc={self.atoms.pbc.tolist()}, cell rank={self.atoms.cell.rank})")
        res = self.potential.compute(self.atoms, forces=True, stress=periodic)
        self.n_calls += 1
        self.results = {
            "energy": float(res["energy"][0]),
            "free_energy": float(res["energy"][0]),
            "energies": res["energies"],
            "forces": res["forces"],
        }
        if periodic:
            self.results["stress"] = res["stress"][0]
            self.results["stresses"] = res["stresses"]
