r"""Compiled pair kernels of the fast evaluation (numba), with the numpy code of
:mod:`etnpot.evaluation` as their reference.

The fast evaluation's per-pair work is small (28-42 pairs per atom, a few dozen products per
pair), so in numpy it is dominated by temporaries and index gymnastics: the padded layout that
places every pair's radial functions in the columns of its neighbour's species is zeros for
``S - 1`` of ``S`` species, and it costs more with every species.  Two loops over the pairs of a
chunk do the same work without temporaries:

**Features** (:func:`pair_features`).  For the pair ``e = (i, j)`` with ``z = z_j``,
``r = |r_ij|`` and ``s = (2 r - r_min - r_cut) / (r_cut - r_min)``,

.. math::

    Q_n(r) = T_n(s)\, f_{cut}(r), \qquad
    Q_n'(r) = \frac{2}{r_{cut} - r_{min}} T_n'(s)\, f_{cut}(r) + T_n(s)\, f_{cut}'(r), \qquad
    P_i[lm, z, n] \mathrel{+}= Y_{lm}(\hat r_{ij})\, Q_n(r),

(:mod:`etnpot.radial`: the Chebyshev recurrence and the quadratic cutoff) -- the moments
``P`` of :func:`etnpot.evaluation.features`, summed straight into the neighbour's species.  ``Q``
and ``Q'`` are kept per pair for the pull-back.

**Pull-back** (:func:`pair_gradients`).  With ``H_i[lm, z, n]`` the radial coefficients
contracted with ``dE/dF`` (computed per atom by a GEMM, as in the numpy path) and
``h = H_i[:, z_j, :]``,

.. math::

    \frac{\partial E}{\partial r_{ij}} = \hat r_{ij} \sum_{lm} Y_{lm}\, (h Q')_{lm}
        + \sum_{lm} \nabla Y_{lm}\, (h Q)_{lm}.

Both cost the same per pair whatever the number of species.

**Species mixing** (:func:`species_mix`, :func:`species_mix_t`).  With several species the
features are ``F_i[lm, c] = sum_(z, n) P_i[lm, z, n] W[l, z_i, (z, n), c]``, the radial
coefficients of the atom's own centre species, and the pull-back needs the transposed product
``H_i[lm, (z, n)] = sum_c g_i[lm, c] W[l, z_i, (z, n), c]``.  numpy does them as one GEMM per
centre species and ``l`` on the atoms of that species, gathered and scattered back by index.
One loop per ``l`` over the atoms of a chunk does the same products, ``K S N C`` per atom,
without that bookkeeping, as a vectorized dot product per output (the weights transposed so
that the sum runs over contiguous memory).  It is no BLAS, so for large ``S N C`` the
per-species GEMMs win again; :func:`etnpot.evaluation.mix_compiled` chooses by the shape from
the timings of ``benchmarks/bench_mix.py``.

Two more passes over the pairs replace numpy's temporaries in the MD step: the reused neighbour
list's vectors and cutoff filter (:func:`filter_pairs`, for :class:`etnpot.neighbors.VerletList`)
and the forces ``F_a = sum_(a,j) dE/dr_aj - sum_(i,a) dE/dr_ia`` (:func:`scatter_forces`, six
``bincount`` passes before).  They run on one thread (the
evaluation's default, see :attr:`etnpot.ETNPotential.threads`) and release the GIL.

:data:`MODE` chooses: ``"auto"`` (numba where it imports, else numpy), ``"numba"`` or
``"numpy"``; the environment variable ``ETNPOT_KERNELS`` sets it at import.  The results agree
with the numpy path to rounding (``tests/test_evaluation.py``); ``benchmarks/bench_eval.py``
times both.  The first call in a new environment compiles the kernels (a few seconds; the
compiled code is cached on disk).
"""
from __future__ import annotations

import logging
import os

import numpy as np

__all__ = ["MODE", "use_numba", "pair_lengths", "pair_features", "pair_gradients", "species_mix", "species_mix_t",
           "filter_pairs", "scatter_forces"]

log = logging.getLogger(__name__)

#: ``"auto"``, ``"numba"`` or ``"numpy"`` (see the module docstring)
MODE = os.environ.get("ETNPOT_KERNELS", "auto")

try:  # numba is a dependency; an environment where it does not import falls back to numpy
    import numba as _numba
except Exception as exc:  # pragma: no cover - exercised only where numba is broken or absent
    _numba, _IMPORT_ERROR = None, exc
else:
    _IMPORT_ERROR = None


def use_numba() -> bool:
    """Whether the fast evaluation uses the compiled kernels now (:data:`MODE`)."""
    if MODE not in ("auto", "numba", "numpy"):
        raise ValueError(f"etnpot.kernels.MODE (ETNPOT_KERNELS) must be 'auto', 'numba' or 'numpy', got {MODE!r}")
    if MODE == "numpy":
        return False
    if _numba is None:
        if MODE == "numba":
            raise ImportError(f"ETNPOT_KERNELS=numba, but numba does not import: {_IMPORT_ERROR}")
        return False
    return True


def _features_kernel(D, r, i, zj, r_min, r_cut, Y, P, QdQ):  # pragma: no cover - compiled
    E, K, N = D.shape[0], Y.shape[1], P.shape[3]
    w = r_cut - r_min
    ds = 2.0 / w
    T = np.empty(N)
    dT = np.empty(N)
    for e in range(E):
        re = r[e]
        s = (2.0 * re - r_min - r_cut) / w
        x = (r_cut - re) / w if re < r_cut else 0.0
        fc, dfc = x * x, -2.0 * x / w
        T[0], dT[0] = 1.0, 0.0
        if N > 1:
            T[1], dT[1] = s, ds
        for n in range(2, N):
            T[n] = 2.0 * s * T[n - 1] - T[n - 2]
            dT[n] = 2.0 * s * dT[n - 1] + 2.0 * ds * T[n - 1] - dT[n - 2]
        for n in range(N):
            QdQ[e, 0, n] = T[n] * fc
            QdQ[e, 1, n] = dT[n] * fc + T[n] * dfc
        a, z = i[e], zj[e]
        for k in range(K):
            y = Y[e, k]
            for n in range(N):
                P[a, k, z, n] += y * QdQ[e, 0, n]


def _gradients_kernel(D, r, i, zj, Y, dY, QdQ, H, out):  # pragma: no cover - compiled
    E, K, N = D.shape[0], Y.shape[1], QdQ.shape[2]
    for e in range(E):
        a, z = i[e], zj[e]
        s, g0, g1, g2 = 0.0, 0.0, 0.0, 0.0
        for k in range(K):
            hq, hdq = 0.0, 0.0
            for n in range(N):
                h = H[a, k, z, n]
                hq += h * QdQ[e, 0, n]
                hdq += h * QdQ[e, 1, n]
            s += Y[e, k] * hdq
            g0 += dY[e, 0, k] * hq
            g1 += dY[e, 1, k] * hq
            g2 += dY[e, 2, k] * hq
        inv = 1.0 / r[e] if r[e] > 0.0 else 1.0
        out[e, 0] = D[e, 0] * inv * s + g0
        out[e, 1] = D[e, 1] * inv * s + g1
        out[e, 2] = D[e, 2] * inv * s + g2


def _lengths_kernel(D, r):  # pragma: no cover - compiled
    for e in range(D.shape[0]):
        r[e] = np.sqrt(D[e, 0] * D[e, 0] + D[e, 1] * D[e, 1] + D[e, 2] * D[e, 2])


def _mix_kernel(P, WT, centre, out):  # pragma: no cover - compiled (with reassociation: a vectorized dot)
    n, M, J = P.shape
    C = WT.shape[1]
    for a in range(n):
        z = centre[a]
        for m in range(M):
            for c in range(C):
                acc = 0.0
                for j in range(J):
                    acc += P[a, m, j] * WT[z, c, j]
                out[a, m, c] = acc


def _mix_t_kernel(G, WT, centre, out):  # pragma: no cover - compiled
    n, M, J = out.shape
    C = WT.shape[1]
    for a in range(n):
        z = centre[a]
        for m in range(M):
            for j in range(J):
                out[a, m, j] = 0.0
            for c in range(C):
                g = G[a, m, c]
                for j in range(J):  # contiguous in WT[z, c]: vectorized
                    out[a, m, j] += g * WT[z, c, j]


def _filter_kernel(pos, i, j, shifts, shift_id, rc2, I, J, D):  # pragma: no cover - compiled
    m = 0
    for e in range(i.shape[0]):
        a, b, s = i[e], j[e], shift_id[e]
        dx = pos[b, 0] - pos[a, 0] + shifts[s, 0]
        dy = pos[b, 1] - pos[a, 1] + shifts[s, 1]
        dz = pos[b, 2] - pos[a, 2] + shifts[s, 2]
        if dx * dx + dy * dy + dz * dz < rc2:
            I[m], J[m] = a, b
            D[m, 0], D[m, 1], D[m, 2] = dx, dy, dz
            m += 1
    return m


def _scatter_kernel(i, j, gp, F):  # pragma: no cover - compiled
    for e in range(i.shape[0]):
        a, b = i[e], j[e]
        for c in range(3):
            F[a, c] += gp[e, c]
            F[b, c] -= gp[e, c]


def _compile(fn, fastmath=False):
    """``numba.njit`` with the compiled code cached on disk; without a writable cache directory
    (numba raises at decoration) the same without the cache.  ``fastmath``: LLVM's flags, here
    only reassociation (a sum in another order: the same to rounding), never the NaN/inf ones."""
    try:
        return _numba.njit(cache=True, nogil=True, fastmath=fastmath)(fn)
    except RuntimeError as exc:  # pragma: no cover - read-only installs without a user cache
        log.info("numba cannot cache the pair kernels (%s); compiling them at every start", exc)
        return _numba.njit(nogil=True, fastmath=fastmath)(fn)


if _numba is not None:
    _features_kernel = _compile(_features_kernel)
    _gradients_kernel = _compile(_gradients_kernel)
    _filter_kernel = _compile(_filter_kernel)
    _lengths_kernel = _compile(_lengths_kernel)
    _mix_kernel = _compile(_mix_kernel, fastmath={"reassoc", "contract"})
    _mix_t_kernel = _compile(_mix_t_kernel)
    _scatter_kernel = _compile(_scatter_kernel)


def pair_features(D, r, i, zj, r_min, r_cut, Y, n_atoms, n_species, n_basis):
    """``(P, QdQ)``: the moments ``P`` ``(n_atoms, K, S, N)`` of the pairs with vectors ``D``
    ``(E, 3)`` (lengths ``r``, centres ``i`` in ``0..n_atoms-1``, neighbour species ``zj``,
    harmonics ``Y`` ``(E, K)``), and ``QdQ`` ``(E, 2, N)``: ``Q_n`` and ``Q_n'`` per pair."""
    E, K = Y.shape
    P = np.zeros((n_atoms, K, n_species, n_basis))
    QdQ = np.empty((E, 2, n_basis))
    if E:  # the compiled loop does not check its indices: a bad one would write out of bounds
        if not (0 <= i.min() and i.max() < n_atoms and 0 <= zj.min() and zj.max() < n_species):
            raise IndexError(f"pair indices out of range: centres {i.min()}..{i.max()} of {n_atoms} atoms, "
                             f"neighbour species {zj.min()}..{zj.max()} of {n_species}")
        _features_kernel(D, r, np.ascontiguousarray(i, dtype=np.int64), np.ascontiguousarray(zj, dtype=np.int64),
                         float(r_min), float(r_cut), Y, P, QdQ)
    return P, QdQ


def pair_gradients(D, r, i, zj, Y, dY, QdQ, H):
    """``dE/dr_ij`` ``(E, 3)`` of the pairs of :func:`pair_features` from ``H`` ``(n, K, S, N)``."""
    out = np.empty((len(r), 3))
    if len(r):
        _gradients_kernel(D, r, np.ascontiguousarray(i, dtype=np.int64), np.ascontiguousarray(zj, dtype=np.int64),
                          Y, dY, QdQ, H, out)
    return out


def pair_lengths(D):
    """``|D_e|`` ``(E,)`` of the pair vectors ``D`` ``(E, 3)`` (numpy's
    ``sqrt(einsum("ea,ea->e", D, D))`` to rounding, without its per-call cost)."""
    r = np.empty(len(D))
    _lengths_kernel(np.ascontiguousarray(D), r)
    return r


def _check_centre(centre, n_atoms, n_species):
    if len(centre) != n_atoms:
        raise IndexError(f"{len(centre)} centre species for {n_atoms} atoms")
    if n_atoms and not (0 <= centre.min() and centre.max() < n_species):
        raise IndexError(f"centre species out of range: {len(centre)} atoms, species {centre.min()}..{centre.max()} "
                         f"of {n_species}")


def species_mix(P, W, centre):
    """``F`` ``(n, M, C)``: ``F[a, m, c] = sum_j P[a, m, j] W[centre[a], j, c]``, each atom's
    moments ``P`` ``(n, M, J)`` times the weights ``W`` ``(S, J, C)`` of its own centre species."""
    n, M, J = P.shape
    if W.shape[1] != J:
        raise ValueError(f"species_mix: moments of width {J}, weights of {W.shape[1]} rows")
    _check_centre(centre, n, W.shape[0])
    out = np.empty((n, M, W.shape[2]))
    _mix_kernel(P, np.ascontiguousarray(W.transpose(0, 2, 1)), np.ascontiguousarray(centre, dtype=np.int64), out)
    return out


def species_mix_t(G, W, centre):
    """``H`` ``(n, M, J)``: ``H[a, m, j] = sum_c G[a, m, c] W[centre[a], j, c]`` for ``c < C``
    (``G`` ``(n, M, C')`` with ``C' >= C``: extra columns, such as the species-indicator
    channels of ``l = 0``, are ignored); the transpose of :func:`species_mix`."""
    n, M = G.shape[:2]
    S, J, C = W.shape
    if G.shape[2] < C:
        raise ValueError(f"species_mix_t: G has {G.shape[2]} channels, the weights {C}")
    _check_centre(centre, n, S)
    out = np.empty((n, M, J))
    _mix_t_kernel(G, np.ascontiguousarray(W.transpose(0, 2, 1)), np.ascontiguousarray(centre, dtype=np.int64), out)
    return out


def filter_pairs(pos, i, j, shifts, shift_id, r_cut):
    """``(I, J, D)``: the pairs ``(i, j)`` of a kept neighbour list whose vectors
    ``D = pos[j] - pos[i] + shifts[shift_id]`` are shorter than ``r_cut``, in their order, with
    those vectors (:class:`etnpot.neighbors.VerletList`; the same arithmetic as its numpy code,
    so the same vectors to the last bit).  The indices must be in range: they come from the
    list's own search of the same atoms."""
    E = len(i)
    I, J, D = np.empty(E, np.int64), np.empty(E, np.int64), np.empty((E, 3))
    m = _filter_kernel(pos, i, j, shifts, shift_id, float(r_cut) ** 2, I, J, D) if E else 0
    return I[:m], J[:m], D[:m]


def scatter_forces(i, j, gp, n_atoms):
    """``F`` ``(n_atoms, 3)``: ``F_a = sum over pairs (a, j) of gp - sum over pairs (i, a) of gp``
    (``gp = dE/dr_ij``), the forces of :func:`etnpot.evaluation.compute_graph` in one pass over the
    pairs instead of six ``bincount`` passes (equal to rounding)."""
    F = np.zeros((n_atoms, 3))
    if len(i):
        if not (0 <= min(i.min(), j.min()) and max(i.max(), j.max()) < n_atoms):
            raise IndexError(f"pair indices out of range for {n_atoms} atoms")
        _scatter_kernel(np.ascontiguousarray(i, dtype=np.int64), np.ascontiguousarray(j, dtype=np.int64),
                        np.ascontiguousarray(gp), F)
    return F
