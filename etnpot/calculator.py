"""ASE calculator for an ETN potential.

``atoms.calc = ETNCalculator(potential)`` gives ``energy``, ``free_energy`` (equal: no
electronic entropy), per-atom ``energies``, ``forces`` and, for 3-d periodic cells, ``stress``
and per-atom ``stresses`` (eV, Å, eV/Å^3, ASE's sign: positive under tension; computed from the
first call that asks for either on, so that MD that never asks does not pay for them).  Asking for the
stress of a cell that is not periodic in three directions raises
``PropertyNotImplementedError``.  Caching is ASE's: results are reused until the atoms change.

Between calls (MD steps, relaxation steps) the neighbour search is reused: a
:class:`~etnpot.neighbors.VerletList` with a ``skin`` (default 1 Å) searches pairs within
``r_cut + skin`` and searches again only when an atom has moved more than ``skin / 2`` or the
cell, periodicity, atom count or atomic numbers changed; each call recomputes and filters the
kept pairs' vectors to ``r_cut``.  The results are those of a fresh search (to rounding).
``skin=0`` searches at every call.

Extrapolation (grades above ``grade_threshold``, atoms in species combinations the training data
never showed) is warned about once, at the first evaluation where it happens; after that a
summary every ``summary_interval`` evaluations (:class:`etnpot.grade.ExtrapolationMonitor`), and
:meth:`ETNCalculator.extrapolation_summary` gives the totals.
"""
from __future__ import annotations

import warnings

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from . import defaults as D

__all__ = ["ETNCalculator"]


class ETNCalculator(Calculator):
    """ASE calculator wrapping an :class:`~etnpot.ETNPotential` (or a path to a saved model)."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses",
                              "extrapolation_grades"]
    nolabel = True

    def __init__(self, potential, extrapolation: str = "warn",
                 grade_threshold: float = D.EXTRAPOLATION["grade_threshold"], skin: float = 1.0,
                 summary_interval: int = D.EXTRAPOLATION["summary_interval"], **kwargs):
        """``extrapolation``: ``"warn"`` (an :class:`~etnpot.grade.ExtrapolationWarning` the first
        time an atom's grade exceeds ``grade_threshold`` or an atom's species environment is
        unseen, then a summary every ``summary_interval`` evaluations in which it happened again;
        0: no summaries), ``"raise"`` (an :class:`~etnpot.grade.ExtrapolationError`) or ``"off"``
        (no grades computed).  ``skin``: Å beyond the cutoff kept in the reused neighbour list (0:
        search every call)."""
        super().__init__(**kwargs)
        if isinstance(potential, (str, bytes)) or hasattr(potential, "__fspath__"):
            from .io import load

            potential = load(potential)
        if extrapolation not in ("warn", "raise", "off"):
            raise ValueError(f"extrapolation must be 'warn', 'raise' or 'off', got {extrapolation!r}")
        self.potential = potential
        self.extrapolation = extrapolation
        self.grade_threshold = float(grade_threshold)
        from .grade import ExtrapolationMonitor

        self.monitor = ExtrapolationMonitor(self.grade_threshold, summary_interval)
        self.n_calls = 0  # number of actual evaluations (tests use it to check caching)
        self.skin = float(skin)
        self.neighbors = None  # the VerletList, made at the first call (and again if r_cut, skin or species change)
        self._nl_key = None
        self._stress_wanted = False

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        periodic = self.atoms.cell.rank == 3 and all(self.atoms.pbc)
        want_stress = any(p in ("stress", "stresses") for p in properties)
        if want_stress and not periodic:
            raise PropertyNotImplementedError(
                "stress is defined only for cells periodic in all three directions "
                f"(pbc={self.atoms.pbc.tolist()}, cell rank={self.atoms.cell.rank})")
        if "extrapolation_grades" in properties and (self.extrapolation == "off" or self.potential.active_set is None):
            raise PropertyNotImplementedError("extrapolation grades need a model with an active set "
                                              "(etnpot.grade.fit_active_set) and extrapolation != 'off'")
        grades = self.extrapolation != "off" and self.potential.active_set is not None
        # the stress costs ~10 % of a step: computed once asked for, and from then on at every call
        # (an MD driver that never asks, e.g. velocity Verlet, never pays for it)
        self._stress_wanted = self._stress_wanted or want_stress
        stress = periodic and self._stress_wanted
        graph = self._graph()
        res = self.potential.compute(graph, forces=True, stress=stress, grades=grades)
        self.n_calls += 1
        self.results = {
            "energy": float(res["energy"][0]),
            "free_energy": float(res["energy"][0]),
            "energies": res["energies"],
            "forces": res["forces"],
        }
        if stress:
            self.results["stress"] = res["stress"][0]
            self.results["stresses"] = res["stresses"]
        if res["close_pairs"]:
            # no training data inside r_min: the radial polynomials are extrapolated there
            warnings.warn(f"{res['close_pairs']} atom pair(s) closer than the model's inner distance r_min = "
                          f"{self.potential.basis.radial.r_min:g} Å (shortest {res['min_pair_distance']:.3f} Å): "
                          "the potential is extrapolated there", RuntimeWarning, stacklevel=2)
        if self.extrapolation == "off":
            return
        from .environments import describe_environment, unseen_environment_codes
        from .grade import ExtrapolationError, ExtrapolationWarning

        msgs = []
        worst = atom = None
        if grades:
            g = res["extrapolation_grades"]
            self.results["extrapolation_grades"] = g
            worst = float(g.max()) if len(g) else 0.0
            atom = int(np.argmax(g)) if len(g) else None
            if worst > self.grade_threshold:
                msgs.append(f"extrapolation grade {worst:.3g} > {self.grade_threshold:g} (atom {atom}): "
                            "the potential is used outside its training data")
        unseen, codes = unseen_environment_codes(self.potential, graph)
        self.results["unseen_species_environments"] = len(unseen)
        detail = (f"atom {int(unseen[0])}: {describe_environment(codes[0], self.potential.species)}"
                  if len(unseen) else "")
        if len(unseen):
            msgs.append(f"{len(unseen)} atom(s) in a combination of species that the training data never showed "
                        f"({detail}): the potential extrapolates there")
        if msgs and self.extrapolation == "raise":
            raise ExtrapolationError("; ".join(msgs))
        for msg in self.monitor.observe(self.n_calls, worst, atom, len(unseen), detail):
            warnings.warn(msg, ExtrapolationWarning, stacklevel=2)

    def extrapolation_summary(self, flush: bool = False) -> dict:
        """Totals of the extrapolation checks so far (:meth:`etnpot.grade.ExtrapolationMonitor.summary`);
        ``flush``: also warn with the summary of the evaluations since the last message."""
        if flush:
            from .grade import ExtrapolationWarning

            for msg in self.monitor.flush():
                warnings.warn(msg, ExtrapolationWarning, stacklevel=2)
        return self.monitor.summary()

    def _graph(self):
        from .neighbors import VerletList

        key = (self.potential.r_cut, self.skin, tuple(self.potential.species))  # the kept species indices
        if self.neighbors is None or self._nl_key != key:
            self.neighbors, self._nl_key = VerletList(self.potential.r_cut, self.skin), key
        return self.neighbors.graph(self.atoms, self.potential.species_index)
