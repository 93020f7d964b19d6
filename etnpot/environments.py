r"""Species environments: which combinations of species the training data showed.

With several species, a model's coefficients for a combination of neighbour species that no
training atom had (three species around one atom, in a model fitted on elements and binaries)
are not determined by the data: the fit leaves them at whatever the tensor train's structure
makes of them, and the errors there can be large (``fitting/transfer/README.md``).  The
extrapolation grade measures this only indirectly.  This module makes it explicit.

The **species environment** of atom ``i`` is its own species ``z_i`` and the *set* of species
among its neighbours within ``r_cut``, encoded as the integer

.. math::

    \sigma_i = z_i\, 2^S + \sum_{s \in \{z_j : r_{ij} < r_\mathrm{cut}\}} 2^s

(``S`` species, indices in the model's order).  :func:`record_species_environments` stores the
set of ``sigma`` met in the training data in the model's metadata (``"species_environments"``;
``etnpot fit`` does it for fits on one machine, and :func:`etnpot.grade.fit_active_set` too), and
:func:`unseen_environments` flags the atoms of new structures whose ``sigma`` is not in it.
:class:`etnpot.ETNCalculator` warns about them (unless ``extrapolation="off"``), with or without
an active set.  Models with one species, or without the record (saved before it existed, or
fitted on Dask workers), skip the check.
"""
from __future__ import annotations

import numpy as np

from . import defaults as D

__all__ = ["environment_codes", "record_species_environments", "unseen_environment_codes", "unseen_environments",
           "describe_environment"]

KEY = "species_environments"


def environment_codes(graph, n_species: int, r_cut: float) -> np.ndarray:
    """``sigma_i`` of every atom of ``graph`` (int64), pairs beyond ``r_cut`` ignored."""
    n, S = graph.n_atoms, int(n_species)
    if S > 57:  # codes < S 2^S must fit a signed 64-bit integer
        raise ValueError(f"species environments are encoded in 64-bit integers: at most 57 species, got {S}")
    r2 = np.einsum("ea,ea->e", graph.vectors, graph.vectors)
    keep = r2 < r_cut * r_cut
    present = np.zeros(n * S, dtype=bool)
    present[graph.i[keep] * S + graph.species[graph.j[keep]]] = True
    mask = present.reshape(n, S).astype(np.int64) @ (np.int64(1) << np.arange(S, dtype=np.int64))
    return (graph.species.astype(np.int64) << S) | mask


# the last few results of record_species_environments, keyed by the configurations' content
# (numbers, positions, cell, periodicity: a hash of each), the species and the cutoff: one `etnpot
# fit` asks for the same training data several times (every fitter of a size choice or a growth
# step, the workflow, the active set), and each answer costs a neighbour pass over all of it,
# against one pass over the arrays for the key
_RECORDED: list = []
_RECORDED_MAX = 4


def _fingerprint(atoms) -> tuple:
    return (hash(np.ascontiguousarray(atoms.numbers).tobytes()), hash(np.ascontiguousarray(atoms.positions).tobytes()),
            hash(np.asarray(atoms.cell).tobytes()), tuple(bool(p) for p in atoms.pbc))


def record_species_environments(potential, configs, chunk_atoms: int = D.FIT["chunk_atoms"]) -> list:
    """Store (and return) the sorted species environments of the atoms of ``configs``
    (configurations or ``ase.Atoms``) in ``potential.metadata["species_environments"]``.  The
    same structures (by content) with the same species and cutoff reuse a recent answer: the
    environments depend on nothing else."""
    from .data import batches_by_atoms

    configs = list(configs)
    key = (tuple(potential.species), float(potential.r_cut),
           tuple(_fingerprint(getattr(c, "atoms", c)) for c in configs))
    for k, codes in _RECORDED:
        if k == key:
            potential.metadata[KEY] = list(codes)
            return list(codes)
    seen = set()
    if len(potential.species) > 1:
        for batch in batches_by_atoms(configs, chunk_atoms, lambda c: len(getattr(c, "atoms", c))):
            g = potential.graph([c.atoms if hasattr(c, "atoms") else c for c in batch])
            seen.update(int(v) for v in np.unique(environment_codes(g, len(potential.species), potential.r_cut)))
    codes = sorted(seen)
    _RECORDED.append((key, codes))
    del _RECORDED[:-_RECORDED_MAX]
    potential.metadata[KEY] = list(codes)
    return list(codes)


def unseen_environment_codes(potential, graph):
    """``(indices, codes)``: the atoms of ``graph`` whose species environment the training data
    never showed, and their environment codes (both empty for one species, or for a model without
    the record)."""
    known = potential.metadata.get(KEY)
    if not known or len(potential.species) == 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes = environment_codes(graph, len(potential.species), potential.r_cut)
    idx = np.flatnonzero(~np.isin(codes, np.asarray(known, dtype=np.int64)))
    return idx, codes[idx]


def unseen_environments(potential, graph) -> np.ndarray:
    """Indices of the atoms of ``graph`` whose species environment the training data never showed
    (:func:`unseen_environment_codes` without the codes)."""
    return unseen_environment_codes(potential, graph)[0]


def describe_environment(code: int, species) -> str:
    """``"Ni with neighbours Ag, Au, Cu"`` for an environment code."""
    S = len(species)
    centre, mask = int(code) >> S, int(code) & ((1 << S) - 1)
    neigh = sorted(species[s] for s in range(S) if mask >> s & 1)
    return f"{species[centre]} with neighbours {', '.join(neigh) if neigh else '(none)'}"
