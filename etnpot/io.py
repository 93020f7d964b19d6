"""Saving and loading models: one self-describing, versioned file, no pickle.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

* ``header``: UTF-8 JSON with ``format = "etnpot"``, ``format_version``, ``etnpot_version``,
  ``units``, ``species``, the hyper-parameters, the bond irreps and the list of core paths,
  free-form ``metadata`` (fit history, provenance), and ``content_sha256``, a hash of every
  array and of the header itself (without the hash), checked on load;
* the arrays: ``e0``, ``species_weights``, ``radial_weights``, ``shift``, ``scale`` and one
  ``core{k}__{a}__{f}__{b}`` block per core path.

It is written to a temporary file in the same directory and renamed over the target, so an
existing file is never left half-written.  ``load(save(m))`` predicts bit-identically.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from ._version import __version__
from .features import OneParticleBasis
from .grade import ActiveSet
from .potential import ETNPotential
from .so3 import Irrep, Irreps
from .tt import EquivariantTT

__all__ = ["save", "load", "ModelFileError", "FORMAT_VERSION"]

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: corrupt, truncated, foreign or too new."""


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


def save(potential, path) -> str:
    """Write ``potential`` to ``path`` (conventionally ``*.etn``) atomically; returns the content hash."""
    path = os.fspath(path)
    pot = potential
    b = pot.basis
    arrays = {"e0": pot.e0, "species_weights": b.species_weights, "radial_weights": b.radial_weights,
              "shift": b.shift, "scale": b.scale}
    if getattr(pot, "active_set", None) is not None:
        arrays.update(pot.active_set.to_arrays())
    paths = []
    for k, core in enumerate(pot.tt.cores):
        for p, T in core.items():
            arrays[_path_key(k, p)] = T
            paths.append([k, str(p[0]), int(p[1]), str(p[2])])
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
        "active_set": {"fingerprint": pot.active_set.fingerprint} if getattr(pot, "active_set", None) is not None else None,
    }
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


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def read_header(path) -> dict:
    """The JSON header of a model file (raises :class:`ModelFileError` if unreadable)."""
    header, _ = _read(path)
    return header


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ModelFileError(f"{path}: not an etnpot model file (no header)")
            header = json.loads(bytes(z["header"]).decode())
            arrays = {k: z[k] for k in z.files if k != "header"}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not a readable etnpot model file (corrupt or truncated?): {e}") from e
    if not isinstance(header, dict) or header.get("format") != "etnpot":
        raise ModelFileError(f"{path}: not an etnpot model file (format={header.get('format') if isinstance(header, dict) else None!r})")
    v = header.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION or v < 1:
        raise ModelFileError(f"{path}: model file format version {v!r} is not supported by etnpot "
                             f"{__version__} (reads versions 1..{FORMAT_VERSION}); upgrade etnpot")
    want = header.get("content_sha256")
    got = _digest(header, arrays)
    if want != got:
        raise ModelFileError(f"{path}: content hash mismatch (file modified or corrupt): header says {want}, data give {got}")
    return header, arrays


def load(path):
    """Load a model written by :func:`save`; returns an :class:`~etnpot.ETNPotential`."""
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
        if header.get("active_set"):
            pot.active_set = ActiveSet.from_arrays(arrays, header["active_set"]["fingerprint"])
        return pot
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: inconsistent etnpot model file: {e!r}") from e
