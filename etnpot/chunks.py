"""Chunks of training data and everything a fit computes from them.

The fit touches the data only through the functions of this module.  Each takes one chunk and
returns a small, mergeable result: a :class:`~etnpot.lstsq.LeastSquares` accumulator of a
local problem, a loss sum, the E0 normal equations, feature moments, or error sums.  So the
same code runs inline, one chunk after the other, or as a map-reduce on Dask workers
(:mod:`etnpot.distributed`), where a :class:`FileChunk` is loaded by the worker from shared
storage and is never shipped from the client.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from .lstsq import LeastSquares

__all__ = ["MemoryChunk", "FileChunk", "read_cached", "make_memory_chunks", "least_squares", "data_loss", "e0_system",
           "feature_moments", "error_sums", "n_configs", "merge", "weighted_rows"]


class MemoryChunk:
    """Configurations held in memory (the local fit)."""

    def __init__(self, configs):
        self._configs = list(configs)
        self._cache = {}

    def configurations(self):
        return self._configs

    def __getstate__(self):  # never ship cached graphs
        return {"_configs": self._configs, "_cache": {}}


class FileChunk:
    """Configurations ``indices`` of the data file ``path`` (read with :func:`etnpot.data.read_dataset`
    and ``reader`` keyword arguments), loaded where the chunk is used and cached per process."""

    def __init__(self, path, indices, reader=None):
        self.path = os.fspath(path)
        self.indices = tuple(int(i) for i in indices)
        self.reader = dict(reader or {})
        self._cache = {}

    def configurations(self):
        allc = read_cached(self.path, tuple(sorted(self.reader.items())))
        return [allc[i] for i in self.indices]

    def __getstate__(self):
        return {"path": self.path, "indices": self.indices, "reader": self.reader, "_cache": {}}

    def __repr__(self):
        return f"FileChunk({self.path!r}, {len(self.indices)} configurations)"


@functools.lru_cache(maxsize=8)
def read_cached(path, reader_items):
    """All configurations of the data file ``path``, read once per process (``reader_items``: the
    reader's keyword arguments as a sorted tuple of pairs, hashable)."""
    from .data import read_dataset

    return read_dataset(path, **dict(reader_items))


def make_memory_chunks(configs, chunk_atoms: int):
    """:class:`MemoryChunk` s of about ``chunk_atoms`` atoms (:func:`etnpot.data.batches_by_atoms`)."""
    from .data import batches_by_atoms

    return [MemoryChunk(batch) for batch in batches_by_atoms(configs, chunk_atoms)]


# ------------------------------------------------------------------ prepared data


_PREPARED: dict = {}  # per process: prepared file chunks (a worker keeps its chunks between tasks)


def _prepared(chunk, pot, weights):
    """Graph and targets of a chunk, cached (per model species/cutoff and weights): on the chunk
    object for memory chunks, per process for file chunks (which arrive as fresh copies)."""
    key = (tuple(pot.species), pot.r_cut, repr(weights))
    if isinstance(chunk, FileChunk):
        cache = _PREPARED.setdefault((chunk.path, chunk.indices, tuple(sorted(chunk.reader.items()))), {})
        if len(_PREPARED) > 256:  # bounded: forget the oldest chunks
            for old in list(_PREPARED)[:-256]:
                del _PREPARED[old]
    else:
        cache = chunk._cache
    if key not in cache:
        cache.clear()
        ch = chunk.configurations()
        cache[key] = (pot.graph([c.atoms for c in ch]), _targets(ch, pot, weights))
    return cache[key]


def _targets(ch, pot, weights):
    S = len(pot.species)
    t = {"E": [], "Ew": [], "N": [], "counts": [], "F": [], "Fw": [], "S": [], "Sw": []}
    for c in ch:
        we, wf, ws = weights.for_type(c.config_type)
        n = len(c.atoms)
        t["N"].append(n)
        t["counts"].append(np.bincount(pot.species_index(c.atoms.numbers), minlength=S))
        t["E"].append(c.energy if c.energy is not None else 0.0)
        t["Ew"].append(c.weight * we if c.energy is not None else 0.0)
        t["F"].append(c.forces if c.forces is not None else np.zeros((n, 3)))
        t["Fw"].append(np.full(3 * n, c.weight * wf if c.forces is not None else 0.0))
        t["S"].append(c.stress if c.stress is not None else np.zeros(6))
        t["Sw"].append(np.full(6, c.weight * ws if c.stress is not None else 0.0))
    return {"E": np.array(t["E"]), "Ew": np.array(t["Ew"]), "N": np.array(t["N"], float),
            "counts": np.array(t["counts"], float).reshape(len(ch), S), "F": np.concatenate(t["F"]).ravel(),
            "Fw": np.concatenate(t["Fw"]), "S": np.concatenate(t["S"]), "Sw": np.concatenate(t["Sw"])}


def weighted_rows(maps, t, fit_e0, want_stress, theta0=None, current=None):
    """Weighted rows ``A`` (columns: the blocks of ``maps``, then dE0 if ``fit_e0``) and targets
    ``y`` of a chunk.  With ``theta0`` (the vector of ``maps[0]``) or ``current`` (predictions,
    ``maps[0].energy_offset`` being the current energy) the targets are the residuals of a
    Gauss-Newton step."""
    S = t["counts"].shape[1]
    N = t["N"]
    lm0 = maps[0]
    blocks_e = np.hstack([lm.energy_rows / N[:, None] for lm in maps])
    blocks_f = np.hstack([lm.force_rows.reshape(-1, lm.force_rows.shape[-1]) for lm in maps])
    ye = (t["E"] - lm0.energy_offset) / N
    yf = t["F"].copy()
    if theta0 is not None:
        ye = ye - (lm0.energy_rows @ theta0) / N
        yf = yf - lm0.force_rows.reshape(-1, len(theta0)) @ theta0
    if current is not None:
        yf = yf - current["forces"].ravel()
    parts = [(blocks_e, ye, t["Ew"]), (blocks_f, yf, t["Fw"])]
    if want_stress:
        s_cols = np.hstack([np.nan_to_num(lm.stress_rows.reshape(-1, lm.stress_rows.shape[-1])) for lm in maps])
        ys = t["S"].copy()
        if current is not None:
            ys = ys - np.nan_to_num(current["stress"].ravel())
        if theta0 is not None:
            ys = ys - np.nan_to_num(lm0.stress_rows.reshape(-1, len(theta0)) @ theta0)
        parts.append((s_cols, ys, t["Sw"]))
    A = np.vstack([p[0] for p in parts])
    if fit_e0:
        e0c = np.zeros((A.shape[0], S))
        e0c[: len(N)] = t["counts"] / N[:, None]
        A = np.hstack([A, e0c])
    y = np.concatenate([p[1] for p in parts])
    sw = np.sqrt(np.concatenate([p[2] for p in parts]))
    keep = sw > 0
    return A[keep] * sw[keep, None], y[keep] * sw[keep]


# ------------------------------------------------------------------ per-chunk computations


def least_squares(chunk, pot, weights, what, k, fit_e0, want_stress, memory_mb=256.0) -> LeastSquares:
    """The rows of one chunk for a local problem, reduced to a :class:`LeastSquares`.

    ``what``: ``"core"`` (core ``k``), ``"supercore"`` (cores ``k, k+1``), ``"cores"`` (all
    cores, Gauss-Newton residuals) or ``"features"`` (radial/species weights, Gauss-Newton).
    """
    g, t = _prepared(chunk, pot, weights)
    kw = dict(forces=True, stress=want_stress, memory_mb=memory_mb)
    if what == "core":
        A, y = weighted_rows([pot.core_linear_map(k, g, **kw)], t, fit_e0, want_stress)
    elif what == "supercore":
        A, y = weighted_rows([pot.supercore_linear_map(k, g, **kw)], t, fit_e0, want_stress)
    elif what == "cores":
        maps = [pot.core_linear_map(kk, g, **kw) for kk in range(pot.order)]
        A, y = weighted_rows(maps, t, fit_e0, want_stress, theta0=pot.tt.core_vector(0))
    elif what == "features":
        cur = pot.compute(g, forces=True, stress=want_stress)
        A, y = weighted_rows([pot.feature_linear_map(g, **kw)], t, fit_e0, want_stress, current=cur)
    else:
        raise ValueError(f"unknown local problem {what!r}")
    ls = LeastSquares(A.shape[1])
    ls.add(A, y)
    return ls


def data_loss(chunk, pot, weights, want_stress) -> float:
    """The chunk's share of the data loss (summed over its configurations)."""
    g, t = _prepared(chunk, pot, weights)
    res = pot.compute(g, forces=True, stress=want_stress)
    total = float(np.sum(t["Ew"] * ((res["energy"] - t["E"]) / t["N"]) ** 2))
    total += float(np.sum(t["Fw"] * (res["forces"].ravel() - t["F"]) ** 2))
    if want_stress:
        total += float(np.sum(t["Sw"] * np.nan_to_num(res["stress"].ravel() - t["S"]) ** 2))
    return total


def e0_system(chunk, species):
    """The chunk's share of the composition least squares for E0 (:func:`etnpot.data.composition_system`)."""
    from .data import composition_system

    return composition_system(chunk.configurations(), species)


def feature_moments(chunk, pot):
    ch = chunk.configurations()
    return pot.basis.moments(pot.graph([c.atoms for c in ch]))


def error_sums(chunk, pot):
    from .metrics import error_sums as _es

    return _es(pot, chunk.configurations())


def n_configs(chunk) -> int:
    return len(chunk.indices) if isinstance(chunk, FileChunk) else len(chunk.configurations())


def species_of(chunk) -> list:
    return sorted({s for c in chunk.configurations() for s in c.atoms.get_chemical_symbols()})


def unknown_species(chunk, species):
    """``[(index in chunk, source, [unknown symbols])]`` for configurations with species not in ``species``."""
    known = set(species)
    out = []
    for i, c in enumerate(chunk.configurations()):
        bad = set(c.atoms.get_chemical_symbols()) - known
        if bad:
            out.append((i, c.source, sorted(bad)))
    return out


def tree_reduce(items, merge_fn):
    """Reduce an iterable pairwise as a balanced binary tree, streaming (a binary counter: at most
    log2(n) partial results are held).  Local and distributed fits use this same pairing, so their
    floating-point sums are identical, not merely close."""
    stack = []  # (level, item)
    for item in items:
        level = 0
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            item = merge_fn(left, item)
            level += 1
        stack.append((level, item))
    if not stack:
        return None
    _, out = stack.pop()
    while stack:
        _, left = stack.pop()
        out = merge_fn(left, out)
    return out


def merge(a, b):
    """Merge two partial results of the same kind (the reduction of the map-reduce)."""
    from .metrics import merge_error_sums

    if isinstance(a, LeastSquares):  # a new object: a task input must never be mutated (recomputation)
        out = LeastSquares(a.n)
        out.R, out.z, out.rho, out.n_rows = a.R.copy(), a.z.copy(), a.rho, a.n_rows
        return out.merge(b)
    if isinstance(a, dict) and "n_atoms" in a:  # feature moments
        return {k: a[k] + b[k] for k in a}
    if isinstance(a, dict):
        return merge_error_sums(a, b)
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b
