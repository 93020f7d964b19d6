"""Neighbour graphs of one or many configurations, as flat pair arrays.

A :class:`Graph` concatenates the atoms of several configurations (atom ``k`` of
configuration ``c`` gets a global index) and lists every directed pair ``(i, j)`` with
``|r_ij| < r_cut`` where ``r_ij = r_j + S·cell - r_i`` (``j`` may be a periodic image, also of
``i`` itself when the cell is smaller than the cutoff).  Pairs are sorted by ``i``.  The
neighbour search is vesin's (a cell-list code measured 15x faster than
``ase.neighborlist.neighbor_list`` on 4,000 Cu atoms, with the same pairs:
``benchmarks/bench_deps.py``); it handles
periodic, mixed and open boundaries and cutoffs larger than the cell.

Between MD steps the pairs change little: a :class:`VerletList` keeps the pairs within
``r_cut + skin`` with their integer cell shifts and rebuilds them only when some atom has moved
more than ``skin / 2`` since the last build (then no pair can have crossed from beyond
``r_cut + skin`` to inside ``r_cut``), or when the cell, the periodicity, the number of atoms or
the atomic numbers changed.  Every call recomputes the vectors of the kept pairs from the current
positions and filters them to ``r_cut`` (vectorized), so the graph has exactly the pairs and
vectors of a fresh :func:`build_graph` (summation order within an atom's pairs aside).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as _kernels

__all__ = ["Graph", "build_graph", "VerletList"]


@dataclass
class Graph:
    """Flat pair arrays of a batch of configurations.

    Attributes
    ----------
    species : (n_atoms,) int, index into the model's species list.
    atom_config : (n_atoms,) int, configuration of each atom.
    i, j : (n_pairs,) int, global atom indices of each directed pair (sorted by ``i``).
    vectors : (n_pairs, 3) float, ``r_ij = r_j - r_i`` (with the periodic shift), Å.
    pair_config : (n_pairs,) int, configuration of each pair.
    n_configs : int.
    volumes : (n_configs,) float, cell volume in Å^3 (``nan`` if not 3-d periodic).
    n_atoms_per_config : (n_configs,) int.
    """

    species: np.ndarray
    atom_config: np.ndarray
    i: np.ndarray
    j: np.ndarray
    vectors: np.ndarray
    pair_config: np.ndarray
    n_configs: int
    volumes: np.ndarray
    n_atoms_per_config: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def n_pairs(self) -> int:
        return len(self.i)

    def atom_slice(self, config: int) -> slice:
        start = int(self.n_atoms_per_config[:config].sum())
        return slice(start, start + int(self.n_atoms_per_config[config]))


def _pairs(atoms, r_cut: float, shifts: bool = False):
    import vesin

    if shifts:  # (i, j, integer cell shifts S): r_ij = r_j - r_i + S cell
        if len(atoms) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
        i, j, S = vesin.ase_neighbor_list("ijS", atoms, float(r_cut))
        return i, j, S
    if len(atoms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    i, j, D = vesin.ase_neighbor_list("ijD", atoms, float(r_cut))
    return i.astype(np.int64), j.astype(np.int64), np.asarray(D, dtype=np.float64)


def _check(atoms, c: int, pos=None) -> None:
    """Raise for non-finite positions or a non-finite or degenerate periodic cell."""
    pos = atoms.get_positions() if pos is None else pos
    if not np.all(np.isfinite(pos)):
        bad = np.argwhere(~np.isfinite(pos))[0]
        raise ValueError(f"configuration {c}: non-finite position of atom {bad[0]}")
    if any(atoms.pbc):
        cell = atoms.cell.array[np.asarray(atoms.pbc)]
        if not np.all(np.isfinite(atoms.cell.array)):
            raise ValueError(f"configuration {c}: non-finite cell")
        sv = np.linalg.svd(cell, compute_uv=False)
        if sv.size < int(np.sum(atoms.pbc)) or sv.min() < 1e-8 * max(sv.max(), 1e-300) or sv.max() == 0:
            raise ValueError(f"configuration {c}: the periodic cell is degenerate (its periodic vectors are "
                             f"(nearly) linearly dependent or zero; cell = {atoms.cell.array.tolist()}, "
                             f"pbc = {atoms.pbc.tolist()})")


def _volume(atoms) -> float:
    return abs(atoms.cell.volume) if atoms.cell.rank == 3 and all(atoms.pbc) else np.nan


def build_graph(atoms_list, r_cut: float, species_index) -> Graph:
    """Build the pair graph of ``atoms_list`` (an ``ase.Atoms`` or a list of them).

    ``species_index(numbers, config_index) -> array of species indices`` maps atomic numbers
    to the model's species (and raises for unknown species, naming the configuration).
    """
    from ase import Atoms

    if isinstance(atoms_list, Atoms):
        atoms_list = [atoms_list]
    species, atom_cfg, I, J, D, pair_cfg, vols, counts = [], [], [], [], [], [], [], []
    offset = 0
    for c, atoms in enumerate(atoms_list):
        _check(atoms, c)
        n = len(atoms)
        sp = np.asarray(species_index(atoms.numbers, c), dtype=np.int64)
        i, j, d = _pairs(atoms, r_cut)
        species.append(sp)
        atom_cfg.append(np.full(n, c, dtype=np.int64))
        I.append(i + offset)
        J.append(j + offset)
        D.append(d)
        pair_cfg.append(np.full(len(i), c, dtype=np.int64))
        vols.append(_volume(atoms))
        counts.append(n)
        offset += n
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    return Graph(
        species=cat(species, np.int64),
        atom_config=cat(atom_cfg, np.int64),
        i=cat(I, np.int64),
        j=cat(J, np.int64),
        vectors=np.concatenate(D).reshape(-1, 3) if D else np.zeros((0, 3)),
        pair_config=cat(pair_cfg, np.int64),
        n_configs=len(atoms_list),
        volumes=np.asarray(vols, dtype=np.float64),
        n_atoms_per_config=np.asarray(counts, dtype=np.int64),
    )


class VerletList:
    """Neighbour graphs of one configuration along a trajectory, with the pair search reused.

    ``graph(atoms, species_index)`` returns the :class:`Graph` of ``atoms`` with cutoff ``r_cut``.
    The pair search (vesin) runs with ``r_cut + skin`` and is redone only when

    * some atom moved more than ``skin / 2`` since the last search (positions as given: an atom
      wrapped back into the cell counts as moved by a cell vector), or a position is not finite;
    * the cell, the periodic directions, the number of atoms or the atomic numbers changed.

    Otherwise the pair vectors ``r_j - r_i + S·cell`` of the kept pairs are recomputed from the
    current positions and the pairs filtered to ``|r_ij| < r_cut``.  Two atoms that each moved less
    than ``skin / 2`` changed their distance by less than ``skin``, so no pair inside ``r_cut``
    is missed: the graph has the same pairs and vectors as :func:`build_graph` (to rounding of the
    vectors; pairs are sorted by ``i``, their order within an atom may differ).  ``skin = 0``
    returns :func:`build_graph`'s graph, searched at every call.  ``n_builds`` counts the searches, ``n_calls`` the graphs returned.
    """

    def __init__(self, r_cut: float, skin: float = 1.0):
        if not float(r_cut) > 0:
            raise ValueError(f"r_cut must be > 0, got {r_cut}")
        if not float(skin) >= 0:
            raise ValueError(f"skin must be >= 0, got {skin}")
        self.r_cut, self.skin = float(r_cut), float(skin)
        self.n_builds = self.n_calls = 0
        self._key = None

    def reset(self) -> None:
        """Forget the kept pairs: the next call searches."""
        self._key = None

    def _stale(self, atoms, pos) -> bool:
        if self._key is None or self.skin == 0:
            return True
        n, numbers, cell, pbc = self._key
        if len(pos) != n or not np.array_equal(atoms.pbc, pbc) or not np.array_equal(atoms.cell.array, cell) \
                or not np.array_equal(atoms.numbers, numbers):
            return True
        if n == 0:
            return False
        d = pos - self._pos
        moved = float(np.max(np.einsum("ia,ia->i", d, d)))
        return not moved <= (0.5 * self.skin) ** 2  # also True for NaN

    def graph(self, atoms, species_index) -> Graph:
        self.n_calls += 1
        if self.skin == 0:  # nothing to reuse: the plain search, exactly build_graph's graph
            self.n_builds += 1
            return build_graph(atoms, self.r_cut, species_index)
        pos = atoms.get_positions()
        if self._stale(atoms, pos):
            _check(atoms, 0, pos)
            sp = np.asarray(species_index(atoms.numbers, 0), dtype=np.int64)
            i, j, S = _pairs(atoms, self.r_cut + self.skin, shifts=True)
            # kept compactly (the list is ~1.7x the pairs within r_cut): int32 indices and, per
            # pair, the index of its cell shift in a table of the distinct shifts' vectors
            K = int(np.abs(S).max()) if len(S) else 0
            code = ((S[:, 0].astype(np.int64) + K) * (2 * K + 1) + S[:, 1] + K) * (2 * K + 1) + S[:, 2] + K
            del S
            codes, shift_id = np.unique(code, return_inverse=True)
            Su = np.stack([codes // (2 * K + 1) ** 2, codes // (2 * K + 1) % (2 * K + 1), codes % (2 * K + 1)], 1) - K
            self._shifts = np.einsum("ea,ab->eb", Su.astype(np.float64), atoms.cell.array)  # (distinct, 3)
            idx = np.int32 if len(pos) < 2**31 else np.int64
            self._i, self._j = i.astype(idx), j.astype(idx)
            self._shift_id = shift_id.astype(np.int32 if len(codes) < 2**31 else np.int64).ravel()
            self._species, self._volume, self._pos = sp, _volume(atoms), pos
            self._key = (len(pos), atoms.numbers.copy(), atoms.cell.array.copy(), atoms.pbc.copy())
            self.n_builds += 1
        if _kernels.use_numba():  # one compiled pass: vectors and filter (etnpot.kernels.filter_pairs)
            I, J, D = _kernels.filter_pairs(pos, self._i, self._j, self._shifts, self._shift_id, self.r_cut)
        else:
            i, j = self._i, self._j
            D = pos[j]
            D -= pos[i]
            D += np.take(self._shifts, self._shift_id, axis=0)  # (np.take: 3x faster than fancy indexing here)
            keep = np.flatnonzero(np.einsum("ea,ea->e", D, D) < self.r_cut * self.r_cut)
            I, J, D = i[keep].astype(np.int64), j[keep].astype(np.int64), D[keep]
        n = len(pos)
        return Graph(species=self._species, atom_config=np.zeros(n, np.int64), i=I, j=J, vectors=D,
                     pair_config=np.zeros(len(I), np.int64), n_configs=1,
                     volumes=np.array([self._volume]), n_atoms_per_config=np.array([n], np.int64))
