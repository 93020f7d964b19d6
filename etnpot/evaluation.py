r"""Fast evaluation of a model: the same energies, forces and stresses as the block-sparse
reference (to rounding), with fewer and larger array operations.

Three parts, each the reference's mathematics re-associated (``benchmarks/bench_eval.py``
measures them; the split of the reference on the Zuo Si d4 model, 1,000 atoms, one thread, was
about 40 % features, 35 % tensor-train contraction, 15 % pull-back to the pairs, 6 % neighbour
list, the rest bookkeeping):

**1. Dense tensor train.**  Site ``s`` has the dense full core ``G_s`` of shape
``(D_l, D_f, D_r)`` (:meth:`EquivariantTT.full_core`: bond index ``(irrep, m, r)``, input index
``(f, m, c)``), and the same flat input ``x`` (``(n, D_f)``) enters every site.  Per atom the
transfer matrix of site ``s`` is one GEMM over all atoms, ``(n, D_f) @ (D_f, D_l D_r)``:

.. math::

    E_s[a, b] = \sum_j x_j\, G_s[a, j, b], \qquad
    L_1 = E_0,\; L_{s+1} = L_s E_s, \qquad R_{d-1} = E_{d-1},\; R_s = E_s R_{s+1}, \qquad
    E = L_{d-1} \cdot R_{d-1}

(``L_s``, ``R_s``: the left and right environments of bond ``s``, vectors per atom; the first
and last cores have ``D_l = 1`` resp. ``D_r = 1``, so ``E_0`` and ``E_{d-1}`` are vectors).
The energy is multilinear in the sites' inputs and the same ``x`` enters every site, so

.. math::

    \frac{\partial E}{\partial x_j} = \sum_s \sum_{a b} L_s[a]\, G_s[a, j, b]\, R_{s+1}[b]
      = \sum_s (L_s \otimes R_{s+1})\, G_s^{x\,T},

computed per middle site as ``Z_s R_{s+1}`` with ``Z_s = L_s G_s`` (one more GEMM
``(n, D_l) @ (D_l, D_f D_r)``; ``L_0 = R_d = 1``).  The products ``L_s E_s``, ``E_s R_{s+1}`` and
``Z_s R_{s+1}`` are batched matrix-vector products over atoms.  For a small
bond (Zuo Si: ``D = 27``, ``D_f = 55``) that is ``4 D_l D_f D_r`` flops per middle site in
BLAS-3, instead of a dozen broadcast products of ``3 x 5``-sized matrices per coupling path.
The dense core is mostly zeros (CG sparsity: 11 % filled for Zuo Si), so for big bonds the
block-sparse path wins; :func:`choose` counts both costs at load time.  (Measured against the
alternative ``L_{s+1} = (L_s \otimes x) A_s``, which never forms ``E_s``: 30 % slower, its
temporaries are ``D_l D_f`` per atom instead of ``D_l D_r``.)

**2. Features through the Chebyshev coefficients.**  The radial functions are
``R_{lc}(r; z_i, z_j) = sum_n W[z_i, z_j, l, c, n] Q_n(r)`` (:meth:`OneParticleBasis.pair_weights`,
scale included), so

.. math::

    F_i[l m c] = \sum_{z, n} W[z_i, z, l, c, n]\, P_i[l m, z, n], \qquad
    P_i[lm, z, n] = \sum_{j:\, z_j = z} Y_{lm}(\hat r_{ij})\, Q_n(r_{ij}),

one batched product per chunk in a padded layout of each atom's pairs (``(K, M) @ (M, S N)`` per
atom, ``M`` the largest neighbour count), and one small GEMM per centre species and ``l``.

**3. Pull-back through the same coefficients.**  With ``g_l = dE/dF_l`` per atom let
``H_i[lm, z, n] = sum_c g_l[i, m, c] W[z_i, z, l, c, n]`` (one small GEMM per centre species and
``l``).  For the pair ``e = (i, j)`` with ``z = z_j`` and ``h_e = H_i[:, z, :]`` (``(lm, n)``):

.. math::

    \frac{\partial E}{\partial r_{ij}} = \hat r_{ij} \sum_{lm} Y_{lm} \,(h_e\, Q'_e)_{lm}
        + \sum_{lm} \nabla Y_{lm}\, (h_e\, Q_e)_{lm},

which is :meth:`OneParticleBasis.pair_gradients` with the channel sum done per atom instead of
per pair, and ``h_e Q_e``, ``h_e Q'_e`` one batched product per chunk in the same padded layout.

The per-pair sums of parts 2 and 3 (``P_i`` and ``h_e Q_e``, ``h_e Q'_e``) run as compiled loops
over the pairs where numba imports (:mod:`etnpot.kernels`, the default), without the padded
layout, at the same cost per pair for any number of species; the padded numpy code described
above is their reference (``ETNPOT_KERNELS=numpy``).  So do the per-centre-species products
with ``W`` of parts 2 and 3 (:func:`mix`, :func:`mix_t`) for shapes where a compiled loop over the
atoms beats numpy's per-species GEMMs and their index bookkeeping (:func:`mix_compiled`).

Chunks hold :func:`chunk_atoms` atoms (256 for the larger models, up to 2,048 for the smallest),
so that the per-chunk temporaries stay within :data:`CHUNK_BYTES` while the fixed cost of a chunk
is shared by as many atoms as that allows.  The tensor
train runs on the potential's array library and dtype (``pot.to("torch")``, ``"float32"``)
through autoray; features and pair sums stay in numpy float64, as in the reference.
"""
from __future__ import annotations

import weakref

import numpy as np
from autoray import do, get_dtype_name

from . import kernels as _kernels
from . import radial as _radial
from .so3 import real_sph_harm

__all__ = ["DenseTT", "dense_tt", "choose", "contraction", "compute_graph", "cost_counts", "features",
           "pair_gradients", "chunk_atoms", "CHUNK"]

CHUNK = 256  # atoms per chunk of the fast path at the least (pot.chunk_size can cap it lower)
CHUNK_BYTES = 16 << 20  # temporaries per chunk (chunk_atoms): those of 256 atoms of the Zuo Si d4 model
CHUNK_MAX = 2048  # most atoms per chunk

# ---------------------------------------------------------------------------- dense tensor train


class DenseTT:
    """The dense form of an :class:`~etnpot.tt.EquivariantTT` on one array library and dtype.

    ``Gx[s]``: core ``s`` as ``(D_f, D_l D_r)`` (the transfer-matrix map ``x -> E_s``), ``GxT[s]``
    its transpose, ``GL[s]`` as ``(D_l, D_f D_r)``, all contiguous: views of the tensor train's own cache of dense cores
    (:meth:`~etnpot.tt.EquivariantTT._dense`, refreshed when a core block is replaced)."""

    def __init__(self, tt, like):
        if any(m != 1 for _, m in tt.bonds[-1]) or tt.bonds[-1].dim != 1:
            raise ValueError(f"the dense evaluation needs an invariant last bond, got {tt.bonds[-1]}")
        self.order = tt.order
        self.Gx, self.GL, self.GxT, self.shapes = [], [], [], []
        for s in range(tt.order):
            shape, forms = tt._dense(s, like)
            self.shapes.append(shape)
            self.Gx.append(forms[0])
            self.GL.append(forms[1])
            self.GxT.append(forms[4])

    def value_and_grad(self, x, grad=True, envs=False):
        """Value ``(n,)`` and ``dE/dx`` ``(n, D_f)`` (``None`` if not ``grad``) of flat inputs ``x``
        ``(n, D_f)``; with ``envs`` also the flat left and right environments ``{s: L_s}`` and
        ``{s: R_s}`` for ``s = 1..d-1``.

        The input gradient of a middle site is ``Z_s R_{s+1}`` with ``Z_s = L_s G_s`` (one GEMM
        ``(n, D_l) @ (D_l, D_f D_r)``, then a batched matrix-vector product), not
        ``(L_s (x) R_{s+1}) G_s^{x T}``: the same flops without the outer product, 20 % faster."""
        n, d = x.shape[0], self.order
        if d == 1:  # one site: E = x . G[0, :, 0]
            v = (x @ self.Gx[0])[:, 0]
            g = do("ones", (n, 1), like=x, dtype=get_dtype_name(x)) * self.GxT[0] if grad or envs else None
            return (v, g, {}, {}) if envs else (v, g)
        L, E = {1: x @ self.Gx[0]}, {}
        for s in range(1, d - 1):
            Dl, Df, Dr = self.shapes[s]
            E[s] = (x @ self.Gx[s]).reshape(n, Dl, Dr)
            L[s + 1] = (L[s][:, None, :] @ E[s])[:, 0, :]
        R = {d - 1: x @ self.Gx[d - 1]}  # the last core is (D_l, D_f, 1): R_{d-1} = E_{d-1}
        v = do("sum", L[d - 1] * R[d - 1], axis=1)
        if not (grad or envs):
            return v, None
        g = L[d - 1] @ self.GxT[d - 1]
        for s in range(d - 2, 0, -1):
            Dl, Df, Dr = self.shapes[s]
            Z = (L[s] @ self.GL[s]).reshape(n, Df, Dr)
            g = g + (Z @ R[s + 1][:, :, None])[:, :, 0]
            R[s] = (E[s] @ R[s + 1][:, :, None])[:, :, 0]
        g = g + R[1] @ self.GxT[0]
        return (v, g, L, R) if envs else (v, g)


def _swap2(a):
    return do("transpose", a, (1, 0))


def dense_tt(tt, like) -> DenseTT:
    """The :class:`DenseTT` of ``tt`` on the array library and dtype of ``like`` (its matrices
    come from the tensor train's cache, so building it costs a few look-ups)."""
    return DenseTT(tt, like)


def cost_counts(tt) -> dict:
    """Cost per atom of value + input gradient, counted, for both contractions.

    ``dense``: flops of the GEMMs and batched contractions above.  ``sparse``: flops of the
    block-sparse reference (forward, backward and input gradient of every path, as
    :func:`etnpot.tt.path_forward` & co. order them) and its count of small matrix products per
    atom (each a BLAS call on a few-by-few matrix, whose call cost dominates for small blocks)."""
    dense = 0
    for s in range(tt.order):
        Dl, Df, Dr = _dense_shape(tt, s)
        if 0 < s < tt.order - 1:
            dense += 4 * Dl * Df * Dr + 6 * Dl * Dr
        else:
            dense += 4 * Dl * Df * Dr
    flops, calls = 0, 0
    for k in range(tt.order):
        for p, T in tt.cores[k].items():
            ma, mf, mb = (p[0].dim, tt.inputs[p[1]][0].dim, p[2].dim)
            R, Cf, S = T.shape
            flops += 2 * (R * ma * mf * mb + R * mb * mf * Cf + mb * R * Cf * S)  # forward
            flops += 2 * (mb * S * R * Cf + mb * R * Cf * mf + R * mf * mb * ma)  # backward
            flops += 2 * (mb * S * R * Cf + ma * R * mb * Cf + mf * ma * mb * Cf)  # input gradient
            calls += 3 * 3  # three products with a batch of per-atom matrices per contraction
    return {"dense_flops": dense, "sparse_flops": flops, "sparse_calls": calls}


def _dense_shape(tt, s):
    Df = sum(ir.dim * c for ir, c in tt.inputs)
    return tt.bonds[s].dim, Df, tt.bonds[s + 1].dim


# seconds per flop in the dense GEMMs, per flop in the broadcast products of small blocks, and
# per small-matrix product per atom; fitted to one core of the development machine, where with
# these constants the choice was right on all five shapes timed (256 atoms, min of 9; dense vs
# block-sparse µs/atom): d3 l2 r3 6 vs 19, d4 l2 r4 38 vs 62, d4 l2 r6 77 vs 90 (dense);
# d4 l3 r4 260 vs 221, d4 l3 r8 907 vs 244 (sparse)
DENSE_S_PER_FLOP = 1 / 20e9
SPARSE_S_PER_FLOP = 1 / 4e9
SPARSE_S_PER_CALL = 0.15e-6


def choose(tt) -> str:
    """``"dense"`` or ``"sparse"``: the contraction with the smaller counted cost per atom."""
    c = cost_counts(tt)
    t_dense = c["dense_flops"] * DENSE_S_PER_FLOP
    t_sparse = c["sparse_flops"] * SPARSE_S_PER_FLOP + c["sparse_calls"] * SPARSE_S_PER_CALL
    return "dense" if t_dense <= t_sparse else "sparse"


# ---------------------------------------------------------------------------- features and pull-back


def chebyshev(radial, r):
    """``Q, dQ`` of :class:`~etnpot.radial.ChebyshevBasis` in the layout ``(n_basis, E)`` (rows
    contiguous: the recurrence runs on whole rows)."""
    N, w = radial.n_basis, radial.r_cut - radial.r_min
    s = (2.0 * r - radial.r_min - radial.r_cut) / w
    ds = 2.0 / w
    T, dT = np.empty((N, len(r))), np.empty((N, len(r)))
    T[0], dT[0] = 1.0, 0.0
    if N > 1:
        T[1], dT[1] = s, ds
    for k in range(2, N):
        np.multiply(2.0 * s, T[k - 1], out=T[k])
        T[k] -= T[k - 2]
        np.multiply(2.0 * s, dT[k - 1], out=dT[k])
        dT[k] += 2.0 * ds * T[k - 1]
        dT[k] -= dT[k - 2]
    fc, dfc = _radial.cutoff_function(r, radial.r_min, radial.r_cut)  # looked up at call time
    dT *= fc
    dT += T * dfc
    T *= fc
    return T, dT


class PairData:
    """What the pull-back needs from the forward pass of one chunk."""

    __slots__ = ("i", "rows", "M", "r", "rhat", "Y", "dY", "QQ", "D", "zj", "QdQ")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def padded_rows(i, n):
    """``(rows, M)``: the pairs of atoms ``0..n-1`` (``i`` sorted) in a padded layout of ``M`` slots
    per atom (``M`` = the largest neighbour count, at least 1): pair ``e`` goes to row
    ``i_e M + (e - first pair of i_e)``."""
    E = len(i)
    cnt = np.bincount(i, minlength=n)
    M = max(int(cnt.max()) if E else 0, 1)
    return np.arange(E) + (M * np.arange(n) - (np.cumsum(cnt) - cnt))[i], M


def features(basis, g, s0, s1, p0, p1, W=None):
    """Feature blocks of atoms ``s0:s1`` (pairs ``p0:p1``), equal to :meth:`OneParticleBasis.compute`,
    and the :class:`PairData` of :func:`pair_gradients`.  ``W``: ``basis.pair_weights()``
    rearranged by :func:`weights` (pass it to avoid recomputing it per chunk).

    The pairs of each atom are laid out in ``M`` padded slots (:func:`padded_rows`), so that
    ``P_i = Y_i^T [Q_i]_z`` is one batched product per chunk, ``(K, M) @ (M, S N)`` per atom,
    the radial functions placed in the columns of the neighbour's species (zeros elsewhere and in
    empty slots).  (Was: one sparse incidence product per radial function; 20 % slower, most of
    it SciPy's per-matrix checks.)  Where numba imports (:func:`etnpot.kernels.use_numba`), one
    compiled loop over the pairs sums the same moments without the padding
    (:func:`etnpot.kernels.pair_features`); the padded numpy code is its reference."""
    W = weights(basis) if W is None else W
    S, L, N = basis.n_species, basis.l_max + 1, basis.radial.n_basis
    K = L * L
    n, E = s1 - s0, p1 - p0
    D = g.vectors[p0:p1]
    numba = _kernels.use_numba()
    r = _kernels.pair_lengths(D) if numba else np.sqrt(np.einsum("ea,ea->e", D, D))
    if E and r.min() == 0.0:
        e = p0 + int(np.argmin(r))
        raise ValueError(f"configuration {g.pair_config[e]}: atoms {g.i[e]} and {g.j[e]} (global indices) "
                         "coincide (zero distance)")
    Y, dY = real_sph_harm(basis.l_max, D, gradients=True)
    i = g.i[p0:p1] - s0
    if numba:  # the same moments from one compiled loop over the pairs
        zj = g.species[g.j[p0:p1]]
        P4, QdQ = _kernels.pair_features(D, r, i, zj, basis.radial.r_min, basis.radial.r_cut, Y, n, S, N)
        P = P4.reshape(n, K, S * N)
        pd = PairData(i=i, rows=None, M=None, r=r, rhat=None, Y=Y, dY=dY, QQ=None, D=D, zj=zj, QdQ=QdQ)
    else:
        P, pd = _padded_moments(basis, g, p0, p1, D, r, Y, dY, i, n)
    centre = g.species[s0:s1]
    compiled = numba and mix_compiled(S, N, W.shape[3])
    blocks = [mix(P[:, l * l:(l + 1) ** 2], W[l], centre, compiled) for l in range(L)]
    F0 = blocks[0] - basis.shift[centre][:, None, :]
    ind = np.zeros((n, 1, S))
    ind[np.arange(n), 0, centre] = 1.0
    blocks[0] = np.concatenate([F0, ind], axis=2)
    return blocks, pd


def _padded_moments(basis, g, p0, p1, D, r, Y, dY, i, n):
    """The numpy path of :func:`features`: ``P`` ``(n, K, S N)`` through the padded layout, and
    the :class:`PairData` of the pull-back."""
    S, N, K = basis.n_species, basis.radial.n_basis, (basis.l_max + 1) ** 2
    Qt, dQt = chebyshev(basis.radial, r)  # (N, E)
    rows, M = padded_rows(i, n)
    # QQ[i, slot, 0 or 1, z N + n]: Q_n and Q_n' of the pair in the columns of its neighbour's species
    QQ = np.zeros((n * M, 2, S * N))
    if S == 1:
        QQ[rows, 0] = Qt.T
        QQ[rows, 1] = dQt.T
    else:
        zj = g.species[g.j[p0:p1]]
        q = QQ.reshape(n * M, 2, S, N)
        q[rows, 0, zj] = Qt.T
        q[rows, 1, zj] = dQt.T
    Yp = np.zeros((n * M, K))
    Yp[rows] = Y
    P = Yp.reshape(n, M, K).transpose(0, 2, 1) @ QQ.reshape(n, M, 2 * S * N)[:, :, :S * N]  # (n, K, S N)
    rhat = D / np.where(r > 0, r, 1.0)[:, None]
    return P, PairData(i=i, rows=rows, M=M, r=r, rhat=rhat, Y=Y, dY=dY, QQ=QQ, D=D, zj=None, QdQ=None)


# the largest S N C (species x Chebyshev functions x channels) for which the compiled species
# mixing is used, forward and transposed: compiled/numpy time per chunk in
# benchmarks/results/bench_mix_20261201.txt (idle) was, forward, 0.34-0.76 up to S N C = 144,
# 0.91-1.06 at 576 (even) and 1.15-1.16 above; transposed 0.30-0.74 up to 576, 0.98 at 900 and
# 1.59 at 1,024
MIX_COMPILED_MAX = {False: 300, True: 600}


def mix_compiled(n_species, n_basis, n_channels, transpose=False) -> bool:
    """Whether :func:`mix` (``transpose``: :func:`mix_t`) takes the compiled loop, given that
    numba imports: for shapes up to :data:`MIX_COMPILED_MAX`."""
    return n_species * n_basis * n_channels <= MIX_COMPILED_MAX[bool(transpose)]


def mix(P, Wl, centre, compiled):
    """``F[a] = P[a] @ Wl[centre[a]]``: the moments ``P`` ``(n, 2l+1, S N)`` of one ``l`` times
    each atom's own centre species' radial coefficients ``Wl`` ``(S, S N, C)``.  One species:
    one GEMM.  Several: one GEMM per centre species on its atoms, gathered and scattered by
    index, or with ``compiled`` the loop over the atoms of :func:`etnpot.kernels.species_mix`,
    which skips that bookkeeping but is no BLAS (``benchmarks/bench_mix.py`` times both)."""
    if len(Wl) == 1:
        return P @ Wl[0]
    if compiled:
        return _kernels.species_mix(P, Wl, centre)
    out = np.empty(P.shape[:2] + (Wl.shape[2],))
    for z in range(len(Wl)):
        sel = np.flatnonzero(centre == z)
        out[sel] = P[sel] @ Wl[z]  # (n_z, 2l+1, S N) @ (S N, C)
    return out


def mix_t(G, Wl, centre, compiled):
    """``H[a] = G[a, :, :C] @ Wl[centre[a]].T``, the transpose of :func:`mix` for the pull-back
    (``G`` ``(n, 2l+1, C')``, ``C' >= C``: the species-indicator columns of ``l = 0`` are
    ignored), through :func:`etnpot.kernels.species_mix_t` with ``compiled``."""
    C = Wl.shape[2]
    if len(Wl) == 1:
        return G[:, :, :C] @ Wl[0].T
    if compiled:
        return _kernels.species_mix_t(G, Wl, centre)
    out = np.empty(G.shape[:2] + (Wl.shape[1],))
    for z in range(len(Wl)):
        sel = np.flatnonzero(centre == z)
        out[sel] = G[sel][:, :, :C] @ Wl[z].T  # (n_z, 2l+1, C) @ (C, S N)
    return out


def weights(basis):
    """``W[l][z_i]``: ``(S N, C)``, the radial coefficients ``pair_weights()[z_i, z, l, c, n]``
    with rows ``(z, n)``; ``W`` is one contiguous array ``(L, S, S N, C)``."""
    Wp = basis.pair_weights()  # (S, S, L, C, N)
    S, _, L, C, N = Wp.shape
    return np.ascontiguousarray(Wp.transpose(2, 0, 1, 4, 3).reshape(L, S, S * N, C))


def pair_gradients(basis, grad_blocks, pd: PairData, centre, W=None) -> np.ndarray:
    """``dE/dr_ij`` ``(E, 3)`` from ``g_l = dE/dF_l`` per atom (numpy float64 blocks), equal to
    :meth:`OneParticleBasis.pair_gradients`.  ``h Q`` and ``h Q'`` of every pair come from one
    batched product per chunk in the padded layout of :func:`features`, ``(2M, S N) @ (S N, K)``
    per atom (was: one ``(K, N) @ (N, 2)`` product per pair, 1.9x slower)."""
    W = weights(basis) if W is None else W
    S, L, N = basis.n_species, basis.l_max + 1, basis.radial.n_basis
    K = L * L
    n = grad_blocks[0].shape[0]
    H = np.empty((n, K, S * N))
    compiled = pd.QdQ is not None and mix_compiled(S, N, W.shape[3], transpose=True)
    for l in range(L):
        H[:, l * l:(l + 1) ** 2] = mix_t(grad_blocks[l], W[l], centre, compiled)
    if pd.QdQ is not None:  # the compiled loop over the pairs (etnpot.kernels)
        return _kernels.pair_gradients(pd.D, pd.r, pd.i, pd.zj, pd.Y, pd.dY, pd.QdQ, H.reshape(n, K, S, N))
    T = pd.QQ.reshape(n, 2 * pd.M, S * N) @ H.transpose(0, 2, 1)  # (n, 2M, K): rows (slot, Q or Q')
    h = T.reshape(n * pd.M, 2, K)[pd.rows]  # (E, 2, K): h Q and h Q' per pair
    out = pd.rhat * np.einsum("ek,ek->e", pd.Y, h[:, 1])[:, None]
    out += np.einsum("eak,ek->ea", pd.dY, h[:, 0])
    return out


# ---------------------------------------------------------------------------- the driver


def contraction(pot) -> str:
    """The contraction that ``pot`` evaluates with: ``pot.evaluation`` (``"auto"`` when unset,
    ``"dense"``, ``"sparse"`` or ``"reference"``), ``"auto"`` resolved by :func:`choose` (cached
    until a core block is replaced).  ``"reference"`` is the whole reference path of
    :meth:`ETNPotential._compute_graph`; ``"sparse"`` the fast features and pull-back with the
    block-sparse contraction."""
    mode = getattr(pot, "evaluation", "auto")
    if mode not in ("auto", "dense", "sparse", "reference"):
        raise ValueError(f"evaluation must be 'auto', 'dense', 'sparse' or 'reference', got {mode!r}")
    if mode != "auto":
        return mode
    tt = pot.tt
    key = [tuple(c.values()) for c in tt.cores]
    hit = _CHOICE.get(tt)
    if hit is None or len(hit[0]) != len(key) or any(
            len(a) != len(b) or any(u is not v for u, v in zip(a, b)) for a, b in zip(hit[0], key)):
        hit = _CHOICE[tt] = (key, choose(tt))
    return hit[1]


_CHOICE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def chunk_atoms(pot, pairs_per_atom: float) -> int:
    """Atoms per chunk of :func:`site_terms`: as many as keep the chunk's temporaries within
    :data:`CHUNK_BYTES`, a power of two from :data:`CHUNK` to :data:`CHUNK_MAX`.

    Counted per atom (float64): the dense tensor train's per-site ``E_s`` (``D_l D_r``), ``Z_s``
    (``D_f D_r``) and environments, the input and its gradient (``2 D_f``), the moments and their
    pull-back ``H`` (``2 K S N``); per pair the vector, length, harmonics and their gradients
    (``4 K``), ``Q`` and ``Q'`` (``2 N``) and indices.  That is the compiled path's footprint; the
    numpy reference's padded arrays and the extrapolation grade's site designs are not counted.
    Every chunk has a fixed cost of numpy and Python calls whatever its size, a large share of a
    small model's time, while a big model's temporaries leave the cache when the chunk grows
    (Zuo Si d4: 62 kB per atom, 256 atoms; the 362-parameter InP model: 13 kB, 1,024 atoms).
    ``benchmarks/bench_step.py --set all --chunks 512`` times this choice against 256 atoms with
    numpy's species mixing (the code before), interleaved in one process: MD step time 0.78 for
    that InP model, 0.89 for InP l_max 1 (930 p), 0.90-1.00 for the others
    (``benchmarks/results/step_chunks_20261201.txt``)."""
    tt, b = pot.tt, pot.basis
    K, S, N = (b.l_max + 1) ** 2, b.n_species, b.radial.n_basis
    floats = 2 * K * S * N
    for s in range(tt.order):
        Dl, Df, Dr = _dense_shape(tt, s)
        floats += Dl * Dr + Df * Dr + Dl + Dr
    floats += 2 * Df + pairs_per_atom * (4 + 4 * K + 2 * N + 5)
    size = CHUNK
    while 2 * size <= CHUNK_MAX and 2 * size * floats * 8 <= CHUNK_BYTES:
        size *= 2
    return size


def site_terms(pot, g, n_sites, need_grad=True, grades=False, dense=None):
    """Site energies (E0 excluded) of the first ``n_sites`` atoms of the graph ``g`` and, with
    ``need_grad``, the pair gradients ``dE_i/dr_ij`` of their pairs (the graph lists pairs sorted
    by ``i``; atoms from ``n_sites`` on are neighbours only, e.g. LAMMPS's ghost atoms).  Returns
    ``(site (n_sites,), gp (pairs of the sites, 3) or None, grades (n_sites,) or None, shortest
    pair distance, number of pairs closer than r_min (each counted from both ends))``.  Chunks
    of :func:`chunk_atoms` atoms (``pot.chunk_size`` if smaller)."""
    from .memory import keep_freed_memory

    keep_freed_memory()  # the chunk temporaries are reused instead of page-faulted in every chunk
    tt, basis = pot.tt, pot.basis
    dense = contraction(pot) == "dense" if dense is None else dense
    aset = None
    if grades:
        from .grade import checked_active_set

        aset = checked_active_set(pot)
        grade = np.zeros(n_sites)
    site = np.zeros(n_sites)
    gp = np.zeros((int(np.searchsorted(g.i, n_sites)), 3)) if need_grad else None
    r_min, d_min, n_close = basis.radial.r_min, np.inf, 0
    W = weights(basis)
    first = np.searchsorted(g.i, np.arange(0, n_sites + 1))
    # pairs per site: LAMMPS's ghost atoms (from n_sites on) have no pairs of their own
    size = max(1, min(chunk_atoms(pot, first[n_sites] / max(n_sites, 1)), int(pot.chunk_size)))
    pos = np.cumsum([0] + [ir.dim * c for ir, c in tt.inputs])
    for s0 in range(0, n_sites, size):
        s1 = min(n_sites, s0 + size)
        p0, p1, n = int(first[s0]), int(first[s1]), s1 - s0
        blocks, pd = features(basis, g, s0, s1, p0, p1, W)
        if p1 > p0:
            d_min = min(d_min, float(pd.r.min()))
            n_close += int(np.count_nonzero(pd.r < r_min))
        gx = None
        if dense:
            x = pot._dev(np.concatenate([b.reshape(n, -1) for b in blocks], axis=1))
            res = dense_tt(tt, x).value_and_grad(x, grad=need_grad, envs=aset is not None)
            v, gflat = res[0], res[1]
            if need_grad:
                gflat = pot._host(gflat)
                gx = [gflat[:, pos[f]:pos[f + 1]].reshape(blocks[f].shape) for f in range(len(blocks))]
            if aset is not None:
                L = {s: tt._split_flat(s, e) for s, e in res[2].items()}
                R = {s: tt._split_flat(s, e) for s, e in res[3].items()}
                xb = [pot._dev(b) for b in blocks]
                one = do("ones", (n, 1, 1), like=xb[0], dtype=get_dtype_name(xb[0]))
                L[0], R[tt.order] = {tt.bonds[0][0][0]: one}, {tt.bonds[-1][0][0]: one}
        else:
            xb = [pot._dev(b) for b in blocks]
            if need_grad:
                v, gxd, L, R = tt.value_grad_envs(xb)
                gx = [pot._host(b) for b in gxd]
            else:
                L = tt.left_environments(xb)
                R = tt.right_environments(xb, downto=aset.core + 1) if aset is not None else None
                v = L[-1][tt.bonds[-1][0][0]][..., 0, 0]
        site[s0:s1] = pot._host(v)
        if aset is not None:
            k = aset.core
            grade[s0:s1] = aset.grades(pot._host(tt.site_design(k, L[k], xb, R[k + 1])))
        if need_grad:
            gp[p0:p1] = pair_gradients(basis, gx, pd, g.species[s0:s1], W)
    return site, gp, (grade if aset is not None else None), d_min, n_close


def compute_graph(pot, g, forces=True, stress=True, grades=False, dense=None) -> dict:
    """:meth:`ETNPotential._compute_graph` through the fast parts: the same dict, the same numbers
    to rounding.  Site terms from :func:`site_terms`; forces and virials are one weighted
    ``bincount`` per component over all pairs (a bincount per chunk over all atoms would cost
    ``O(atoms^2 / chunk)``)."""
    from .linearization import VOIGT

    need_grad = forces or stress
    site, gp, grade, d_min, n_close = site_terms(pot, g, g.n_atoms, need_grad, grades, dense)
    energies = site + pot.e0[g.species]
    out = {"energies": energies, "energy": np.bincount(g.atom_config, energies, minlength=g.n_configs),
           "min_pair_distance": d_min, "close_pairs": n_close // 2}  # every pair is listed in both directions
    if forces and _kernels.use_numba():  # one compiled pass over the pairs (etnpot.kernels)
        out["forces"] = _kernels.scatter_forces(g.i, g.j, gp, g.n_atoms)
    elif forces:
        out["forces"] = np.stack([np.bincount(g.i, gp[:, a], minlength=g.n_atoms) -
                                  np.bincount(g.j, gp[:, a], minlength=g.n_atoms) for a in range(3)], axis=1)
    if stress:
        D = g.vectors
        vir = np.stack([0.5 * (gp[:, a] * D[:, b] + gp[:, b] * D[:, a]) for a, b in VOIGT], axis=1)
        cfg = np.stack([np.bincount(g.pair_config, vir[:, c], minlength=g.n_configs) for c in range(6)], axis=1)
        atom = np.stack([0.5 * (np.bincount(g.i, vir[:, c], minlength=g.n_atoms) +
                                np.bincount(g.j, vir[:, c], minlength=g.n_atoms)) for c in range(6)], axis=1)
        out["stress"] = cfg / g.volumes[:, None]
        out["stresses"] = atom / g.volumes[g.atom_config][:, None]
    if grade is not None:
        out["extrapolation_grades"] = grade
    return out
