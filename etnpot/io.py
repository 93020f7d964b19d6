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


def _temp_prefix(path: str) -> str:
    return "." + os.path.basename(path) + ".etnpot-"


def _remove_stale_temps(path: str) -> None:
    """Remove the temporary files that an interrupted save to ``path`` left (named after it)."""
    d = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    for name in os.listdir(d):
        if name.startswith(prefix) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(d, name))
                log.info("removed %s, left by an interrupted save", os.path.join(d, name))
            except OSError:
                pass


def _stage(path: str, header: dict, arrays: dict) -> tuple[str, str]:
    """Hash and write one archive to a temporary file beside ``path``; returns ``(temp, hash)``.
    Nothing is left behind if the write fails."""
    header["content_sha256"] = _digest(header, arrays)
    blob = np.frombuffer(json.dumps(header, sort_keys=True, default=_json_default).encode(), dtype=np.uint8)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=d)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; a model file gets the user's usual mode
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, header=blob, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp, header["content_sha256"]


def _write(path: str, header: dict, arrays: dict) -> str:
    """Hash and write one archive atomically; returns the content hash."""
    _remove_stale_temps(path)
    tmp, digest = _stage(path, header, arrays)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest


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
    # the model and its grade file are one unit: both are written in full to temporary files first, so
    # a failed write leaves the previous pair as it was; then renamed (grade first) within microseconds.
    # A pair cut between the renames is told apart on load by the fingerprint (a warning, no grades).
    _remove_stale_temps(path)
    _remove_stale_temps(side)
    staged = []
    try:
        if aset is not None:
            staged.append((_stage(side, {"format": "etnpot-grade", "format_version": GRADE_FORMAT_VERSION,
                                         "etnpot_version": __version__, "fingerprint": aset.fingerprint},
                                  aset.to_arrays())[0], side))
        tmp, digest = _stage(path, header, arrays)
        staged.append((tmp, path))
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    if aset is None and os.path.exists(side):
        os.unlink(side)
        log.info("removed %s: the model saved to %s has no active set", side, path)
    return digest


def read_header(path) -> dict:
    """The JSON header of a model file (raises :class:`ModelFileError` if unreadable)."""
    header, _ = _read(path)
    return header


#: the most that a model or grade file may make the reader allocate, per byte of the file: our
#: archives are stored uncompressed (numpy.savez), so their arrays are as large as the file
MAX_INFLATION = 4


def _check_archive(path: str, kind: str, what: str) -> None:
    """Before anything is inflated: a zip archive whose members' declared sizes, and the array
    shapes their ``.npy`` headers declare, fit the file (a bound on what reading may allocate)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        raise ModelFileError(f"{path}: not an {kind} {what} (not a NumPy .npz archive)")
    size = os.path.getsize(path)
    bound = MAX_INFLATION * size + (1 << 16)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if sum(i.file_size for i in infos) > bound:
            raise ModelFileError(f"{path}: its members would inflate to {sum(i.file_size for i in infos)} bytes from a "
                                 f"{size}-byte file: refused (not written by etnpot)")
        for i in infos:
            with zf.open(i) as m:
                version = np.lib.format.read_magic(m)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(m) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(m))
            if dtype.hasobject:
                raise ModelFileError(f"{path}: member {i.filename} holds Python objects: refused (not written by etnpot)")
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > i.file_size:
                raise ModelFileError(f"{path}: member {i.filename} declares an array {shape} larger than its data")


def _read(path, kind="etnpot", max_version=FORMAT_VERSION, what="model file"):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        _check_archive(path, kind, what)
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ModelFileError(f"{path}: not an {kind} {what} (no header)")
            header = json.loads(bytes(z["header"]).decode())
            arrays = {k: z[k] for k in z.files if k != "header"}
    except ModelFileError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # zipfile, numpy and json raise many types for damaged files
        raise ModelFileError(f"{path}: not a readable {kind} {what} (corrupt or truncated?): "
                             f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from e
    if not isinstance(header, dict) or header.get("format") != kind:
        raise ModelFileError(f"{path}: not an {kind} {what} (format={header.get('format') if isinstance(header, dict) else None!r})")
    v = header.get("format_version")
    if not isinstance(v, int) or v > max_version or v < 1:
        raise ModelFileError(f"{path}: {what} format version {v!r} is not supported by etnpot "
                             f"{__version__} (reads versions 1..{max_version}); upgrade etnpot")
    want = header.get("content_sha256")
    try:
        got = _digest(header, arrays)
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable {kind} {what}: {type(e).__name__}: {e}") from e
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
        aset = ActiveSet.from_arrays(arrays, fp)
    except Exception as e:
        raise ModelFileError(f"{side}: inconsistent grade file: {e!r}") from e
    _check_grade_shapes(side, aset, pot)
    return aset


def _check_grade_shapes(side, aset, pot) -> None:
    """The active set's arrays must fit the model's core they were computed for."""
    try:
        n = pot.tt.core_size(aset.core)
    except Exception as e:
        raise ModelFileError(f"{side}: grade file for core {aset.core!r}, which the model does not have") from e
    for name, a in vars(aset).items():
        if isinstance(a, np.ndarray) and a.ndim >= 1 and not np.all(np.isfinite(a)) and a.dtype.kind == "f":
            raise ModelFileError(f"{side}: grade array {name} holds non-finite numbers")
    b, inv = aset.basis, aset.inverse
    if b.ndim != 2 or b.shape[0] != n or inv.shape != (b.shape[1], b.shape[1]):
        raise ModelFileError(f"{side}: grade arrays of shapes basis {b.shape}, inverse {inv.shape} do not fit the "
                             f"model's core {aset.core} of {n} parameters (expected ({n}, r) and (r, r))")


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
        for name, arr in list(arrays.items()):
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)) and not name.startswith("grade_"):
                raise ModelFileError(f"{path}: array {name} holds non-finite numbers (NaN or inf)")
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
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # a header that hashes but does not describe a model (RecursionError, ...)
        raise ModelFileError(f"{path}: inconsistent etnpot model file: {type(e).__name__}: {str(e)[:200]}") from e
