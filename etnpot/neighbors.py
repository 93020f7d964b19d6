"""Neighbour graphs of one or many configurations, as flat pair arrays.

A :class:`Graph` concatenates the atoms of several configurations (atom ``k`` of
configuration ``c`` gets a global index) and lists every directed pair ``(i, j)`` with
``|r_ij| < r_cut`` where ``r_ij = r_j + S·cell - r_i`` (``j`` may be a periodic image, also of
``i`` itself when the cell is smaller than the cutoff).  Pairs are sorted by ``i``.  The
neighbour search is vesin's (a cell-list code measured 15x faster than
``ase.neighborlist.neighbor_list`` on 4,000 Cu atoms, with the same pairs:
``benchmarks/bench_deps.py``); it handles
periodic, mixed and open boundaries and cutoffs larger than the cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Graph", "build_graph"]


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


def _pairs(atoms, r_cut: float):
    import vesin

    if len(atoms) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3))
    i, j, D = vesin.ase_neighbor_list("ijD", atoms, float(r_cut))
    return i.astype(np.int64), j.astype(np.int64), np.asarray(D, dtype=np.float64)


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
        pos = atoms.get_positions()
        if not np.all(np.isfinite(pos)):
            bad = np.argwhere(~np.isfinite(pos))[0]
            raise ValueError(f"configuration {c}: non-finite position of atom {bad[0]}")
        n = len(atoms)
        if any(atoms.pbc):
            cell = atoms.cell.array[np.asarray(atoms.pbc)]
            if not np.all(np.isfinite(atoms.cell.array)):
                raise ValueError(f"configuration {c}: non-finite cell")
            sv = np.linalg.svd(cell, compute_uv=False)
            if sv.size < int(np.sum(atoms.pbc)) or sv.min() < 1e-8 * max(sv.max(), 1e-300) or sv.max() == 0:
                raise ValueError(f"configuration {c}: the periodic cell is degenerate (its periodic vectors are "
                                 f"(nearly) linearly dependent or zero; cell = {atoms.cell.array.tolist()}, "
                                 f"pbc = {atoms.pbc.tolist()})")
        sp = np.asarray(species_index(atoms.numbers, c), dtype=np.int64)
        i, j, d = _pairs(atoms, r_cut)
        species.append(sp)
        atom_cfg.append(np.full(n, c, dtype=np.int64))
        I.append(i + offset)
        J.append(j + offset)
        D.append(d)
        pair_cfg.append(np.full(len(i), c, dtype=np.int64))
        vols.append(abs(atoms.cell.volume) if atoms.cell.rank == 3 and all(atoms.pbc) else np.nan)
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
