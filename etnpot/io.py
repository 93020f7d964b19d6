"""Saving and loading models: one self-describing, versioned file, no pickle.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

* ``header``: UTF-8 JSON with ``format = "etnpot"``, ``format_version``, ``etnpot_version``,
  ``units``, ``species``, the hyper-parameters, the bond irreps and the list of core paths,
  free-form ``metadata`` (fit history, provenance), ``active_set`` (``null``, or the rank,
  core and fingerprint of the extrapolation grade's active set) and ``content_sha256``, a hash
  of every array and of the header itself (without the hash), checked on load;
* the arrays: ``e0``, ``species_weights``, ``radial_weights``, ``shift``, ``scale`` and one
  ``core{k}__{a}__{f}__{b}`` block per core path.

The active set of the extrapolation grade (:mod:`etnpot.grade`) is far larger than the model
(``P x r`` numbers against ~``P``), so it lives in a *grade file* beside the model,
``<model>.grade`` (:func:`grade_path`): the same kind of archive (``format = "etnpot-grade"``)
with ``grade_matrix`` (float32) and ``grade_meta``.  :func:`load` attaches it when present
and computed for this model; the model file alone is the deployable potential.

Versions: 1 embedded the active set in full float64 (``grade_basis``, ``grade_inverse``,
``grade_active``); 2 (current) writes the grade file.  Both are read.

Files are written to a temporary file in the same directory and renamed over the target, so an
existing file is never left half-written.  ``load(save(m))`` predicts bit-identically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile

import numpy as np

from ._version import __version__
from .features import OneParticleBasis
from .grade import ActiveSet, model_fingerprint
from .potential import ETNPotential
from .so3 import Irrep, Irreps
from .tt import EquivariantTT

__all__ = ["save", "load", "read_header", "grade_path", "ModelFileError", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
GRADE_FORMAT_VERSION = 1
GRADE_SUFFIX = ".grade"


class ModelFileError(ValueError):
    """A model file that cannot be read: corrupt, truncated, foreign or too new."""


def grade_path(path) -> str:
    """The grade file (active set) that belongs to the model file ``path``: ``path + ".grade"``."""
    return os.fspath(path) + GRADE_SUFFIX


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _digest(header: dict, arrays: dict) -> str:
    h = hashlib.sha256()
    # the same JSON encoding as the file's header (numpy scalars and arrays in metadata become numbers
    # and lists), so that the hash of the header written equals the hash of the header read back
    h.update(json.dumps({k: v for k, v in header.items() if k != "content_sha256"}, sort_keys=True,
                        default=_json_default).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _path_key(k, p):
    a, f, b = p
    return f"core{k}__{a}__{f}__{b}"


def _write(path: str, header: dict, arrays: dict) -> str:
    """Hash and write one archive atomically; returns the content hash."""
    header["content_sha256"] = _digest(header, arrays)
    blob = np.frombuffer(json.dumps(header, sort_keys=True, default=_json_default).encode(), dtype=np.uint8)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".etnpot-", suffix=".tmp", dir=d)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; a model file gets the user's usual mode
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, header=blob, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return header["content_sha256"]


def save(potential, path) -> str:
    """Write ``potential`` to ``path`` (conventionally ``*.etn``) atomically; returns the content hash.

    If the model has an active set, computed for its current parameters, it is written to
    :func:`grade_path` ``(path)``; otherwise a grade file left there by an earlier model is removed."""
    path = os.fspath(path)
    pot = potential
    b = pot.basis
    arrays = {"e0": pot.e0, "species_weights": b.species_weights, "radial_weights": b.radial_weights,
              "shift": b.shift, "scale": b.scale}
    paths = []
    for k, core in enumerate(pot.tt.cores):
        for p, T in core.items():
            arrays[_path_key(k, p)] = T
            paths.append([k, str(p[0]), int(p[1]), str(p[2])])
    aset = getattr(pot, "active_set", None)
    if aset is not None and aset.fingerprint != model_fingerprint(pot):
        log.warning("%s: the model's active set was computed for other parameters (they changed since): "
                    "not saved; call etnpot.grade.fit_active_set again for extrapolation grades", path)
        aset = None
    header = {
        "format": "etnpot",
        "format_version": FORMAT_VERSION,
        "etnpot_version": __version__,
        "units": {"energy": "eV", "length": "Angstrom", "stress": "eV/Angstrom^3"},
        "species": pot.species,
        "o3": pot.o3,
        "basis": {"n_species": b.n_species, "l_max": b.l_max, "n_basis": b.radial.n_basis,
                  "n_channels": b.n_channels, "species_rank": b.species_rank,
                  "r_min": b.radial.r_min, "r_cut": b.radial.r_cut},
        "inputs": [[str(ir), c] for ir, c in pot.tt.inputs],
        "bonds": [str(bd) for bd in pot.tt.bonds],
        "paths": paths,
        "metadata": pot.metadata,
        "active_set": None if aset is None else {"fingerprint": aset.fingerprint, "rank": aset.rank,
                                                  "core": aset.core},
    }
    side = grade_path(path)
    if aset is not None:
        _write(side, {"format": "etnpot-grade", "format_version": GRADE_FORMAT_VERSION, "etnpot_version": __version__,
                      "fingerprint": aset.fingerprint}, aset.to_arrays())
    digest = _write(path, header, arrays)
    if aset is None and os.path.exists(side):
        os.unlink(side)
        log.info("removed %s: the model saved to %s has no active set", side, path)
    return digest


def read_header(path) -> dict:
    """The JSON header of a model file (raises :class:`ModelFileError` if unreadable)."""
    header, _ = _read(path)
    return header


def _read(path, kind="etnpot", max_version=FORMAT_VERSION, what="model file"):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ModelFileError(f"{path}: not an {kind} {what} (no header)")
            header = json.loads(bytes(z["header"]).decode())
            arrays = {k: z[k] for k in z.files if k != "header"}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not a readable {kind} {what} (corrupt or truncated?): {e}") from e
    if not isinstance(header, dict) or header.get("format") != kind:
        raise ModelFileError(f"{path}: not an {kind} {what} (format={header.get('format') if isinstance(header, dict) else None!r})")
    v = header.get("format_version")
    if not isinstance(v, int) or v > max_version or v < 1:
        raise ModelFileError(f"{path}: {what} format version {v!r} is not supported by etnpot "
                             f"{__version__} (reads versions 1..{max_version}); upgrade etnpot")
    want = header.get("content_sha256")
    got = _digest(header, arrays)
    if want != got:
        raise ModelFileError(f"{path}: content hash mismatch (file modified or corrupt): header says {want}, data give {got}")
    return header, arrays


def _grade_file(path, pot, info):
    """The active set from the grade file of the model ``path`` (``None``, with a warning, if it is
    missing or was computed for other parameters)."""
    side = grade_path(path)
    if not os.path.exists(side):
        log.warning("%s was saved with an active set (rank %s) in %s, which is missing: no extrapolation grades",
                    path, info.get("rank"), side)
        return None
    header, arrays = _read(side, "etnpot-grade", GRADE_FORMAT_VERSION, "grade file")
    fp = header.get("fingerprint")
    if fp != info.get("fingerprint") or fp != model_fingerprint(pot):
        log.warning("%s belongs to another model (fingerprint %.12s, the model's is %.12s): ignored, "
                    "no extrapolation grades", side, fp, model_fingerprint(pot))
        return None
    try:
        return ActiveSet.from_arrays(arrays, fp)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ModelFileError(f"{side}: inconsistent grade file: {e!r}") from e


def load(path):
    """Load a model written by :func:`save` (and its grade file, if any); returns an
    :class:`~etnpot.ETNPotential`."""
    path = os.fspath(path)
    header, arrays = _read(path)
    try:
        bh = header["basis"]
        basis = OneParticleBasis(bh["n_species"], bh["l_max"], bh["n_basis"], bh["n_channels"], bh["species_rank"],
                                 bh["r_min"], bh["r_cut"])
        for name in ("species_weights", "radial_weights", "shift", "scale"):
            arr = arrays[name]
            if arr.shape != getattr(basis, name).shape:
                raise ModelFileError(f"{path}: array {name} has shape {arr.shape}, expected {getattr(basis, name).shape}")
            setattr(basis, name, arr.astype(np.float64))
        inputs = [(Irrep.parse(ir), c) for ir, c in header["inputs"]]
        bonds = [Irreps(b) for b in header["bonds"]]
        cores = [dict() for _ in range(len(bonds) - 1)]
        for k, a, f, b in header["paths"]:
            p = (Irrep.parse(a), int(f), Irrep.parse(b))
            cores[k][p] = arrays[_path_key(k, p)]
        tt = EquivariantTT(inputs, bonds, cores)
        pot = ETNPotential(header["species"], basis, tt, arrays["e0"], header["o3"], header.get("metadata", {}))
        info = header.get("active_set")
        if info and header["format_version"] == 1:  # embedded, full float64
            pot.active_set = ActiveSet.from_arrays(arrays, info["fingerprint"])
        elif info:
            pot.active_set = _grade_file(path, pot, info)
        return pot
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: inconsistent etnpot model file: {e!r}") from e
