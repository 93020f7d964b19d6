"""Checks of a fit's inputs and outputs that run before the first sweep.

A fit can take hours; a typo found at its end costs the night.  So everything that can be
checked from the configuration and the data is checked here, once, before the fit spends time:

* :func:`check_outputs` (before the data are read): every output's folder exists and is
  writable; no output is an input (the training data, the config) or another output.
* :func:`check_inputs` (after reading): the validation and test files are not training files
  (by content hash), no file is listed twice, the reference data that a weight asks for exist
  (else the keys the files do have are listed), config-type weights name types of the data
  (with "did you mean"), every species of the model occurs in the training data, at least one
  training pair lies inside ``r_cut``, and configurations present twice are named.

Every message names the file, the configuration index as the user counts it
(``train.xyz[5]``), the species or the config key.  None of this runs per evaluation.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import os

import numpy as np

from .config import ConfigError
from .data import DataError

__all__ = ["check_outputs", "check_inputs", "reference_counts", "configuration_hash"]

log = logging.getLogger(__name__)

KINDS = ("energy", "forces", "stress")


def _same(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: dict, inputs: list, source: str = "config") -> None:
    """``outputs``: ``{config key: path}`` of every file the fit will write (``None``: not
    written); ``inputs``: the paths it reads.  Raises :class:`ConfigError` naming the key."""
    given = {k: os.fspath(p) for k, p in outputs.items() if p}
    for key, path in given.items():
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ConfigError(f"{source}: {key} = {path!r}: the folder {folder} does not exist (create it first)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"{source}: {key} = {path!r}: the folder {folder} is not writable")
        if os.path.isdir(path):
            raise ConfigError(f"{source}: {key} = {path!r} is a folder, not a file name")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise ConfigError(f"{source}: {key} = {path!r}: the file exists and is not writable")
        for inp in inputs:
            if inp and _same(path, inp.split("::")[0]):
                raise ConfigError(f"{source}: {key} = {path!r} is an input of the fit ({inp}): writing it would "
                                  "overwrite the input; choose another file name")
    keys = list(given)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            if _same(given[keys[a]], given[keys[b]]):
                raise ConfigError(f"{source}: {keys[a]} and {keys[b]} are the same file ({given[keys[a]]}); "
                                  "each output needs its own name")


def configuration_hash(c) -> str:
    """A hash of what a configuration is: species, positions (to 1e-8 Å), cell and periodicity."""
    h = hashlib.sha1()
    at = c.atoms
    h.update(np.ascontiguousarray(at.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.ascontiguousarray(at.positions, dtype=float), 8).tobytes())
    h.update(np.round(np.ascontiguousarray(at.cell.array, dtype=float), 8).tobytes())
    h.update(np.asarray(at.pbc, dtype=bool).tobytes())
    return h.hexdigest()


def reference_counts(configs) -> dict:
    """How many configurations carry each kind of reference value."""
    return {"energy": sum(c.energy is not None for c in configs),
            "forces": sum(c.forces is not None for c in configs),
            "stress": sum(c.stress is not None for c in configs)}


def _keys_of(configs) -> str:
    keys = sorted({k for c in configs for k in c.info.get("reference_keys", ())})
    return f"; the files have the keys {keys}" if keys else ""


def check_references(configs, weights, what: str = "training data", key_names: dict | None = None) -> dict:
    """Refuse when no configuration carries a kind of reference that a weight > 0 asks for
    (listing the keys the files have); log how many do when only some do.  Returns the counts."""
    counts = reference_counts(configs)
    n = len(configs)
    key_names = key_names or {}
    asked = {k: getattr(weights, k) > 0 or any(v.get(k, 0) > 0 for v in weights.config_types.values()) for k in KINDS}
    for kind in KINDS:
        if not asked[kind]:
            continue
        if counts[kind] == 0 and kind != "stress":
            key = key_names.get(kind, kind)
            raise DataError(f"{what}: no configuration has {kind} (key {key!r}), but [weights] {kind} > 0"
                            f"{_keys_of(configs)}; set [data] {kind}_key to the key of your {kind}, or [weights] "
                            f"{kind} = 0 to fit without them")
        if counts[kind] == 0:
            raise DataError(f"{what}: [weights] stress > 0, but no configuration has a stress (key "
                            f"{key_names.get('stress', 'stress')!r}){_keys_of(configs)}; set [data] stress_key, or "
                            "[weights] stress = 0")
        if counts[kind] < n:
            log.warning("%s: %d of %d configurations have %s; the others are fitted without them", what,
                        counts[kind], n, kind)
    if not asked["stress"] and counts["stress"]:
        log.warning("%s: %d of %d configurations have stresses, but [weights] stress = 0: they are not fitted "
                    "(set [weights] stress, e.g. 1000, to fit them)", what, counts["stress"], n)
    if not any(asked[k] and counts[k] for k in KINDS):
        raise DataError(f"{what}: no reference energy, force or stress to fit{_keys_of(configs)}")
    return counts


def check_inputs(train, validation, test, prov: dict, species, weights, r_cut: float, source="config",
                 key_names: dict | None = None) -> None:
    """The checks of the module docstring on the data read.  ``prov``: ``{"train": [...],
    "validation": [...], "test": [...]}`` of ``{"path", "sha256"}`` per file."""
    seen = {}
    for split in ("train", "validation", "test"):
        for p in prov.get(split, []):
            sha = p.get("sha256")
            if sha is None:
                continue
            if sha in seen:
                other_split, other = seen[sha]
                if other_split == split:
                    raise ConfigError(f"{source}: [data] {split} lists the same data twice ({other} and {p['path']}): "
                                      "every configuration would be counted twice")
                raise ConfigError(f"{source}: the [data] {split} file {p['path']} is the same data as the "
                                  f"{other_split} file {other}: a {split} set must be held out from training")
            seen[sha] = (split, p["path"])
    check_references(train, weights, "training data", key_names)
    # config-type weights name types of the data
    types = sorted({c.config_type for c in train})
    for name in weights.config_types:
        if name not in types:
            hint = difflib.get_close_matches(name, types, n=1)
            raise ConfigError(f"{source}: [weights.config_types.{name}]: no training configuration has config type "
                              f"{name!r}" + (f"; did you mean {hint[0]!r}?" if hint else f"; the types are {types}"))
    # species of the model that the training data never contain
    present = set()
    for c in train:
        present.update(np.unique(c.atoms.numbers).tolist())
    from ase.data import atomic_numbers

    missing = [s for s in species if atomic_numbers[s] not in present]
    if missing:
        raise ConfigError(f"{source}: [model] species {missing} occur in no training configuration: their energies "
                          "and interactions cannot be fitted; remove them from [model] species or add data")
    # at least one pair inside the cutoff
    from .neighbors import _pairs

    if not any(len(_pairs(c.atoms, r_cut)[0]) for c in train):
        dmin = _shortest_distance(train[: min(len(train), 50)])
        raise ConfigError(f"{source}: [model] r_cut = {r_cut} Å: no training configuration has two atoms closer "
                          f"than r_cut (shortest distance in the first configurations {dmin:.3g} Å): the model would "
                          "have no interaction")
    # configurations present twice
    where = {}
    dups = []
    for split, configs in (("train", train), ("validation", validation), ("test", test)):
        for c in configs:
            h = configuration_hash(c)
            if h in where:
                dups.append((where[h], f"{c.source or '?'} ({split})"))
            else:
                where[h] = f"{c.source or '?'} ({split})"
    if dups:
        shown = "; ".join(f"{b} repeats {a}" for a, b in dups[:5])
        log.warning("%d configuration(s) occur twice (same species, positions and cell): %s%s", len(dups), shown,
                    "; ..." if len(dups) > 5 else "")


def _shortest_distance(configs) -> float:
    best = np.inf
    for c in configs:
        if len(c.atoms) > 1:
            d = c.atoms.get_all_distances(mic=any(c.atoms.pbc))
            d = d[~np.eye(len(d), dtype=bool)]
            best = min(best, float(d.min()))
    return best
