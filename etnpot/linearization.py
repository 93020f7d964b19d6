r"""Linearizations of an ETN potential: the rows of the fit's least-squares problems.

The energy is linear in every core ``T^{(k)}`` of the tensor train.  :func:`core_linear_map`
returns the rows of that linear map for energies, forces and stresses of a batch of
configurations (:func:`supercore_linear_map`: the merged cores ``k, k+1`` of a two-site step),
and :func:`feature_linear_map` the Gauss–Newton rows of the radial/species weights, in which
the energy is a polynomial.  Only the fit uses them.

Force rows come from forward-mode tangents: for atom ``i`` every pair ``(i, j)`` and direction
``a`` defines the tangent ``dF_i = dF_i/d(r_ij)_a``, carried through the environments of the
tensor train by the product rule (an extra batch axis of ``T = 3 x neighbours`` tangents,
:meth:`etnpot.tt.EquivariantTT.core_rows`).  Where the flat input has fewer than about 1.5 times
as many entries ``D`` as there are tangents, the Jacobian ``J = d Phi / dx`` is formed first
(:meth:`etnpot.tt.EquivariantTT.core_jacobian`) and the rows of all tangents follow from one
matrix product per atom, ``d Phi = dx J`` (counted per chunk; ``benchmarks/bench_rows.py``
measures both kernels).  With ``r_ij = r_j - r_i``, a pair's derivative row
``d Phi_i / d r_ij`` enters the force rows as ``F_i += d Phi_i/d r_ij`` and ``F_j -= d Phi_i/d r_ij``
(``F = -dE/dr``), and the virial rows as ``W_ab += (d Phi_i/d r_ij)_a (r_ij)_b``
(:func:`scatter_pair_rows`); stress rows are the symmetrized virial over the volume, in eV/Å^3,
positive under tension (ASE), Voigt order ``xx, yy, zz, yz, xz, xy``.

Memory is bounded by ``memory_mb``: atoms are processed in chunks whose tangent arrays fit in
it (:func:`atom_chunks`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from autoray import do

from .neighbors import Graph

__all__ = ["LinearMap", "core_linear_map", "supercore_linear_map", "feature_linear_map", "scatter_pair_rows",
           "atom_chunks"]

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


class LinearMap:
    """Rows of the linear map ``core k -> (energies, forces, stresses)`` of a batch.

    ``energy = energy_rows @ theta + energy_offset`` (eV, one row per configuration);
    ``forces = force_rows @ theta`` (eV/Å, shape ``(n_atoms, 3, P)``);
    ``stress = stress_rows @ theta`` (eV/Å^3, Voigt, ``(n_configs, 6, P)``; NaN rows for
    configurations without a 3-d periodic cell).
    """

    def __init__(self, graph, energy_rows, energy_offset, force_rows, stress_rows):
        self.graph = graph
        self.energy_rows = energy_rows
        self.energy_offset = energy_offset
        self.force_rows = force_rows
        self.stress_rows = stress_rows


def atom_chunks(n_atoms: int, bytes_per_atom: float, memory_mb: float, max_atoms: int):
    """``[(s0, s1), ...]``: ranges of at most ``max_atoms`` atoms whose arrays of
    ``bytes_per_atom`` each fit in ``memory_mb`` (at least one atom per chunk)."""
    size = max(1, min(int(max_atoms), int(memory_mb * 2**20 // max(bytes_per_atom, 1))))
    return [(s, min(n_atoms, s + size)) for s in range(0, n_atoms, size)]


class _PairLayout:
    """Where every pair of a graph sits in the padded per-atom tangent axis: atom ``i``'s pairs
    are ``first[i]:first[i+1]`` (the graph lists pairs sorted by ``i``); pair ``e`` is neighbour
    slot ``slot[e]`` of its atom, and its three directions are tangents ``3 slot + a``."""

    def __init__(self, g: Graph):
        self.first = np.searchsorted(g.i, np.arange(g.n_atoms + 1))
        self.nnb = np.diff(self.first)
        self.max_nb = int(self.nnb.max()) if g.n_atoms and self.nnb.size else 0

    def chunk(self, g, s0, s1):
        """``(p0, p1, nb, atom index in chunk, slot)`` of the pairs of atoms ``s0:s1``."""
        p0, p1 = int(self.first[s0]), int(self.first[s1])
        nb = int(self.nnb[s0:s1].max()) if s1 > s0 else 0
        return p0, p1, nb, g.i[p0:p1] - s0, np.arange(p0, p1) - self.first[g.i[p0:p1]]


def _tangent_blocks(basis, cache, layout_chunk, n):
    """Input tangents of a chunk of ``n`` atoms: for every ``l`` the block ``(n, 3 nb, 2l+1, C)``
    with ``dF_i[l] / d(r_ij)_a`` at tangent ``3 slot(ij) + a`` (zero for padding slots)."""
    p0, p1, nb, pi, slot = layout_chunk
    out = []
    for l in range(basis.l_max + 1):
        G = basis.pair_tangents(cache, l, pairs=slice(p0, p1))  # (Ec, 3, 2l+1, C)
        t = np.zeros((n, nb, 3) + G.shape[2:])
        t[pi, slot] = G
        out.append(t.reshape((n, nb * 3) + G.shape[2:]))
    return out


METHODS = ("auto", "jacobian", "tangents", "reference")


def _parallel_chunks(fn, ranges, threaded=True):
    """``(range, fn(range))`` for every range, in order, computed on as many threads as the BLAS
    library was allowed (each with one BLAS thread), at most that many chunks in flight.

    The per-atom products of the rows are small, so BLAS's own threads gain nothing on them
    (benchmarks/README.md, bench_fit.py: 1 and 2 threads take the same time); chunks of atoms
    are independent, and numpy releases the GIL in its products.  The caller accumulates the
    results in order, so the sums do not depend on the number of threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    n = max([int(i.get("num_threads") or 1) for i in threadpool_info() if i.get("user_api") == "blas"] or [1])
    if not threaded or n <= 1 or len(ranges) <= 1:
        for r in ranges:
            yield r, fn(r)
        return
    from concurrent.futures import ThreadPoolExecutor

    with threadpool_limits(1), ThreadPoolExecutor(max_workers=n) as ex:
        for i in range(0, len(ranges), n):
            window = ranges[i : i + n]
            yield from zip(window, ex.map(fn, window))


def core_linear_map(pot, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0,
                    method: str = "auto") -> LinearMap:
    """Rows of the linear map from core ``k`` (``tt.core_vector(k)``) to energies, forces, stresses.

    Exact: ``energy_rows @ theta + energy_offset`` is the energy for any ``theta``, and so on.
    ``memory_mb`` bounds the tangent arrays (atoms are processed in chunks).  ``method``: how the
    force rows are formed, all giving the same numbers: ``"jacobian"`` (``dPhi/dx`` then one
    product per atom), ``"tangents"`` (dense transfer matrices, one tangent per pair direction),
    ``"reference"`` (the block-sparse product rule of
    :meth:`~etnpot.tt.EquivariantTT.design_tangent`), or ``"auto"``: the cheaper of the first two
    by counting (inputs against tangents).
    """
    if not 0 <= k < pot.order:
        raise ValueError(f"core index must be in [0, {pot.order}), got {k}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return _linear_map(pot, k, 1, atoms_list, forces, stress, memory_mb, method)


def supercore_linear_map(pot, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
    """Like :func:`core_linear_map` for the merged supercore of cores ``k, k+1``
    (``tt.merged_vector(k)``): the linear problem of a two-site DMRG step."""
    if not 0 <= k < pot.order - 1:
        raise ValueError(f"supercore index must be in [0, {pot.order - 1}), got {k}")
    return _linear_map(pot, k, 2, atoms_list, forces, stress, memory_mb)


def _linear_map(pot, k, sites, atoms_list, forces, stress, memory_mb, method="auto"):
    g = atoms_list if isinstance(atoms_list, Graph) else pot.graph(atoms_list)
    blocks, cache = pot.basis.compute(g)
    tt = pot.tt
    P = tt.core_size(k) if sites == 1 else tt.merged_size(k)
    E_rows = np.zeros((g.n_configs, P))
    F_rows = np.zeros((g.n_atoms, 3, P)) if forces else None
    S_rows = np.zeros((g.n_configs, 6, P)) if stress else None
    offset = np.bincount(g.atom_config, pot.e0[g.species], minlength=g.n_configs)
    lay = _PairLayout(g)
    want_rows = forces or stress
    n_inputs = sum(ir.dim * c for ir, c in tt.inputs)
    # the largest array of a chunk is (atoms, tangents or inputs, P): at most a quarter of the
    # budget, and at most 24 MB, so that it is reused from the heap (etnpot.memory), not mapped anew
    per_atom = (max(1, 3 * lay.max_nb, n_inputs) if want_rows else 1) * P * 8

    def rows_of(r):  # the rows of one chunk of atoms (no shared state: runs on a worker thread)
        s0, s1 = r
        n = s1 - s0
        x = [pot._dev(b[s0:s1]) for b in blocks]
        ch = lay.chunk(g, s0, s1)
        pairs = want_rows and ch[1] > ch[0]
        if pairs:
            dx = [pot._dev(t) for t in _tangent_blocks(pot.basis, cache, ch, n)]
            T = dx[0].shape[1]
            # the Jacobian's product costs T x D_f x P but runs at BLAS speed; the tangent kernels
            # cost ~T x P x (bond dims) in small products: the Jacobian wins up to D_f ~ 1.5 T
            # (benchmarks/bench_rows.py: Si, InP, a four-species alloy)
            use_jacobian = method == "jacobian" or (method == "auto" and n_inputs < 1.5 * T)
            if sites == 1 and method == "reference":
                L = tt.left_environments(x, upto=k)
                R = tt.right_environments(x, downto=k + 1)
                phi = tt.site_design(k, L[k], x, R[k + 1])
                dphi = tt.design_tangent(k, 1, x, dx, L, R)
            elif sites == 1 and use_jacobian:
                # fewer inputs than tangents: the Jacobian J = dPhi/dx, then every tangent's row
                # in one product per atom, dPhi = dx J
                phi, J = tt.core_jacobian(k, x)
                dxflat = do("concatenate", [t.reshape(n, T, -1) for t in dx], axis=2)
                dphi = dxflat @ J
            elif sites == 1:
                phi, dphi = tt.core_rows(k, x, dx)
            else:
                L = tt.left_environments(x, upto=k)
                R = tt.right_environments(x, downto=k + 2)
                phi = tt.two_site_design(k, L[k], x, x, R[k + 2])
                dphi = tt.design_tangent(k, 2, x, dx, L, R)
            phi, dphi = pot._host(phi), pot._host(dphi)
        else:
            L = tt.left_environments(x, upto=k)
            R = tt.right_environments(x, downto=k + sites)
            phi = pot._host(tt.site_design(k, L[k], x, R[k + 1]) if sites == 1 else
                            tt.two_site_design(k, L[k], x, x, R[k + 2]))
        return phi, (dphi if pairs else None), ch

    ranges = atom_chunks(g.n_atoms, per_atom, min(memory_mb / 4, 24.0), pot.chunk_size)
    for (s0, s1), (phi, dphi, ch) in _parallel_chunks(rows_of, ranges, pot.backend == "numpy"):
        n = s1 - s0
        cfg = g.atom_config[s0:s1]
        E_rows += sp.csr_matrix((np.ones(n), (cfg, np.arange(n))), shape=(g.n_configs, n)) @ phi
        if dphi is not None:
            p0, p1, nb, pi, slot = ch
            # dphi[i, 3 slot + a] = dPhi_i/d(r_ij)_a; padding slots are never addressed
            scatter_pair_rows(g, p0, p1, dphi.reshape(n * nb, 3, P), F_rows, S_rows, rows=pi * nb + slot)
    if stress:
        S_rows /= g.volumes[:, None, None]
    return LinearMap(g, E_rows, offset, F_rows, S_rows)


def feature_linear_map(pot, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
    r"""Jacobian rows of energies, forces and stresses with respect to
    :meth:`~etnpot.ETNPotential.feature_parameter_vector` (radial weights ``B``, species weights
    ``A``) at the current parameters: the Gauss–Newton linearization (the energy is a polynomial
    of degree ``order`` in them, not linear).

    With the pair radial table ``W_ab[l,c,n] = sum_k B[l,c,n,k] A[l,k,a,b] / s_lc`` and
    ``g_i = dE_i/dF_i`` (one reverse sweep), ``dE/dW_ab[l,c,n] = sum_{pairs e=(i,j), z_i=a, z_j=b}
    sum_m g_i[l,m,c] Y_lm(e) Q_n(r_e)``; force and stress rows differentiate this along every
    pair-vector tangent, which needs the tangent of ``g_i`` (forward tangents of all left and
    right environments) and of ``Y Q``.  ``energy_offset`` is the current energy.
    """
    g = atoms_list if isinstance(atoms_list, Graph) else pot.graph(atoms_list)
    b = pot.basis
    blocks, cache = b.compute(g)
    tt = pot.tt
    S, Lp, C, N = b.n_species, b.l_max + 1, b.n_channels, b.radial.n_basis
    PW = S * S * Lp * C * N
    # chain rule W -> (B, A): dW[ab,l,c,n] / dB[l,c,n,k] = A[l,k,a,b]/s, dW/dA[l,k,a,b] = B[l,c,n,k]/s
    sc = 1.0 / b.scale  # (L, C)
    eL, eC, eN, eS = np.eye(Lp), np.eye(C), np.eye(N), np.eye(S)
    dW_dB = np.einsum("lkab,lc,lL,cD,nM->ablcnLDMk", b.species_weights, sc, eL, eC, eN)
    dW_dA = np.einsum("lcnk,lc,lL,aA,bB->ablcnLkAB", b.radial_weights, sc, eL, eS, eS)
    chain = np.concatenate([dW_dB.reshape(PW, -1), dW_dA.reshape(PW, -1)], axis=1)  # (PW, P_feat)
    Pf = chain.shape[1]
    Q, dQ = b.radial(cache.r)
    ptype = g.species[g.i] * S + g.species[g.j]
    E_rows = np.zeros((g.n_configs, Pf))
    F_rows = np.zeros((g.n_atoms, 3, Pf)) if forces else None
    S_rows = np.zeros((g.n_configs, 6, Pf)) if stress else None
    energy = np.zeros(g.n_configs)
    lay = _PairLayout(g)
    per_atom = max(1, 3 * lay.max_nb) * (PW + sum(2 * l + 1 for l in range(Lp)) * (C + S)) * 8 * 6
    lift = lambda env: {a: v[:, None] for a, v in env.items()}
    for s0, s1 in atom_chunks(g.n_atoms, per_atom, memory_mb, pot.chunk_size):
        n = s1 - s0
        x = [bl[s0:s1] for bl in blocks]
        L = tt.left_environments(x)
        R = tt.right_environments(x, downto=0)
        last = tt.bonds[-1][0][0]
        energy += np.bincount(g.atom_config[s0:s1], L[-1][last][:, 0, 0] if last in L[-1] else np.zeros(n),
                              minlength=g.n_configs)
        grad = [np.zeros_like(xl) for xl in x]
        for s in range(tt.order):
            for f, gf in tt.site_input_grad(s, L[s], R[s + 1], x[0]).items():
                grad[f] = grad[f] + gf
        ch = lay.chunk(g, s0, s1)
        p0, p1, nb, ie, slot = ch
        if p1 == p0:
            continue
        Ec = p1 - p0
        pe = slice(p0, p1)
        # energy: per pair G_e[l,c] = sum_m g_i[l,m,c] Y_lm(e); row += G_e (x) Q_e in the pair's W block
        Ge = np.concatenate([np.einsum("emc,em->ec", grad[l][ie][:, :, :C], cache.Y[pe, l * l:(l + 1) ** 2])[:, None]
                             for l in range(Lp)], axis=1)  # (Ec, L, C)
        contrib = np.zeros((Ec, S * S, Lp, C, N))
        contrib[np.arange(Ec), ptype[pe]] = Ge[:, :, :, None] * Q[pe][:, None, None, :]
        Mc = sp.csr_matrix((np.ones(Ec), (g.pair_config[pe], np.arange(Ec))), shape=(g.n_configs, Ec))
        E_rows += (Mc @ contrib.reshape(Ec, PW)) @ chain
        if not (forces or stress):
            continue
        dx = _tangent_blocks(b, cache, ch, n)
        dL, dR = tt.env_tangents(x, dx, L, R, tt.order - 1, 1)
        dg = [np.zeros((n, 3 * nb) + xl.shape[1:]) for xl in x]
        for s in range(tt.order):
            for src in ((dL[s], lift(R[s + 1])), (lift(L[s]), dR[s + 1])):
                if src[0] and src[1]:
                    for f, gf in tt.site_input_grad(s, src[0], src[1], x[0]).items():
                        dg[f] = dg[f] + gf
        # term 1: sum_{e in i} sum_m dg_i[t,l,m,c] Y_lm(e) Q_n(e) in block (z_i, z_j(e))
        rows = np.zeros((n, 3 * nb, S * S, Lp, C, N))
        for l in range(Lp):
            Yl = cache.Y[pe, l * l:(l + 1) ** 2]  # (Ec, 2l+1)
            # Phi_i^{(type)}[l, m, n] = sum_{e in i, type} Y_lm Q_n
            Phi = np.zeros((n, S * S, 2 * l + 1, N))
            np.add.at(Phi, (ie, ptype[pe]), Yl[:, :, None] * Q[pe][:, None, :])
            rows[:, :, :, l] += np.einsum("itmc,ipmn->itpcn", dg[l][..., :C], Phi)
        # term 2: the pair's own Y Q moves: g_i[l,m,c] d(Y_lm Q_n)/dr_e[a] in its (e, a) tangent slot
        own = np.zeros((Ec, 3, Lp, C, N))
        for l in range(Lp):
            sl = slice(l * l, (l + 1) ** 2)
            gi = grad[l][ie][:, :, :C]  # (Ec, m, C)
            dYQ = (cache.rhat[pe][:, :, None, None] * cache.Y[pe, sl][:, None, :, None] * dQ[pe][:, None, None, :]
                   + cache.dY[pe][:, :, sl][:, :, :, None] * Q[pe][:, None, None, :])  # (Ec, 3, m, N)
            own[:, :, l] = np.einsum("emc,eamn->eacn", gi, dYQ)
        rows_r = rows.reshape(n, nb, 3, S * S, Lp, C, N)
        rows_r[ie, slot, :, ptype[pe]] += own
        dpe = rows_r[ie, slot].reshape(Ec, 3, PW) @ chain  # (Ec, 3, Pf): dJ_i/d r_e
        scatter_pair_rows(g, p0, p1, dpe, F_rows, S_rows)
    if stress:
        S_rows /= g.volumes[:, None, None]
    offset = energy + np.bincount(g.atom_config, pot.e0[g.species], minlength=g.n_configs)
    return LinearMap(g, E_rows, offset, F_rows, S_rows)


def scatter_pair_rows(g, p0, p1, dpe, F_rows, S_rows, rows=None):
    """Add per-pair derivative rows ``dpe[e, a, :] = d(rows)/d(r_e)_a`` of pairs ``p0:p1`` to force
    rows (``F_i += dpe``, ``F_j -= dpe`` since ``r_ij = r_j - r_i``) and to virial/stress rows
    (``W[c, a, b] += dpe[e, a] r_e[b]`` for the pairs of configuration ``c``, symmetrized, Voigt;
    divided by the volume by the caller).  Either target may be ``None``.  ``rows``: where pair
    ``p0 + e`` sits in ``dpe`` (default ``e``), so that a padded per-atom layout needs no gather."""
    Ec = p1 - p0
    P = dpe.shape[-1]
    flat = dpe.reshape(dpe.shape[0], 3 * P)
    cols = np.arange(Ec) if rows is None else np.asarray(rows)
    if F_rows is not None and Ec:
        # only the atoms these pairs touch (their configurations' atoms), not the whole batch
        gi, gj = g.i[p0:p1], g.j[p0:p1]
        lo, hi = int(min(gi.min(), gj.min())), int(max(gi.max(), gj.max())) + 1
        M = sp.csr_matrix((np.concatenate([np.ones(Ec), -np.ones(Ec)]),
                           (np.concatenate([gi, gj]) - lo, np.tile(cols, 2))), shape=(hi - lo, flat.shape[0]))
        F_rows[lo:hi] += (M @ flat).reshape(hi - lo, 3, P)
    if S_rows is not None:
        W = np.empty((g.n_configs, 3, 3, P))  # one sparse product per Cartesian b
        for b in range(3):
            Mb = sp.csr_matrix((g.vectors[p0:p1, b], (g.pair_config[p0:p1], cols)), shape=(g.n_configs, flat.shape[0]))
            W[:, :, b, :] = (Mb @ flat).reshape(g.n_configs, 3, P)
        S_rows += np.stack([0.5 * (W[:, a, b] + W[:, b, a]) for a, b in VOIGT], axis=1)
