r"""One-particle features: the ETN's per-atom equivariant inputs.

For atom ``i`` with species ``z_i`` and neighbours ``j`` (pairs of a :class:`~etnpot.neighbors.Graph`)

.. math::

    F_i[l, m, c] = \sum_j R_{lc}(r_{ij}; z_i, z_j)\, Y_{lm}(\hat r_{ij}) \;-\; \delta_{l0}\,\mu_c(z_i),
    \qquad c < C,

    R_{lc}(r; z_i, z_j) = \frac{1}{s_{lc}} \sum_{n,k} B[l, c, n, k]\, A[l, k, z_i, z_j]\, Q_n(r),

with ``Q_n`` the Chebyshev radial basis (:mod:`etnpot.radial`), ``A`` a species-pair embedding
of rank ``K`` (``(l_max+1) K S^2`` numbers instead of a dense radial table per species pair:
the low-rank species compression of Hodapp & Shapeev) and ``B`` the radial mixing.  They start
as *raw channels*: ``R_{lc} = Q_c`` for one species, and for ``S`` species with ``K = S`` and
``C = N S`` channels ``R_{l, kN+n}(r; z_i, z_j) = Q_n(r) delta(z_j, k)``, one channel per radial
function and neighbour species (without this, a fit that never moves ``A`` and ``B`` sees
species-blind neighbours).  The
``l = 0`` block carries ``S`` extra **species-indicator channels** ``F_i[0, 0, C + s] =
delta(z_i, s)``: constants per centre species, so that a tensor train over ``F`` represents every
polynomial of degree ``<= order`` (not only the homogeneous ones) with species-dependent
coefficients.  ``mu`` (per centre species, ``l = 0`` only: centring a vector would break
equivariance) and ``s`` are fixed normalization constants set from training data by
:meth:`OneParticleBasis.normalize`; thanks to the constant channels the centring is an exact
reparametrization that only improves conditioning.

Feature blocks are returned per ``l`` as arrays of shape ``(n_atoms, 2l+1, n_channels(l))``.
Derivatives with respect to the pair vector ``r_ij`` (Å) use

.. math::

    \frac{\partial F_i[l m c]}{\partial r_{ij}} = R'_{lc}(r)\, Y_{lm}\, \hat r_{ij} + R_{lc}(r)\, \nabla Y_{lm}(r_{ij}).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .neighbors import Graph
from .radial import ChebyshevBasis
from .so3 import real_sph_harm

__all__ = ["OneParticleBasis", "PairCache"]


@dataclass
class PairCache:
    """Per-pair quantities kept between the forward pass and the derivative passes."""

    i: np.ndarray  # (E,) centre atom
    r: np.ndarray  # (E,)
    rhat: np.ndarray  # (E, 3)
    Y: np.ndarray  # (E, (L+1)^2)
    dY: np.ndarray  # (E, 3, (L+1)^2)
    R: np.ndarray  # (E, L+1, C)
    dR: np.ndarray  # (E, L+1, C)
    incidence: sp.csr_matrix  # (N, E): 1 where pair e belongs to centre atom i


class OneParticleBasis:
    """The featurizer: parameters ``species_weights`` (A), ``radial_weights`` (B) and
    normalization constants ``shift`` (mu) and ``scale`` (s).

    Parameters
    ----------
    n_species : S.
    l_max : highest degree of the spherical harmonics.
    n_basis : number of Chebyshev radial functions.
    n_channels : radial channels per ``l`` (C).
    species_rank : rank K of the species-pair embedding.
    r_min, r_cut : radial basis range, Å.
    """

    def __init__(self, n_species, l_max, n_basis, n_channels, species_rank, r_min, r_cut):
        for name, val, lo in [("n_species", n_species, 1), ("l_max", l_max, 0), ("n_basis", n_basis, 1),
                              ("n_channels", n_channels, 1), ("species_rank", species_rank, 1)]:
            if int(val) != val or int(val) < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {val!r}")
        self.n_species = int(n_species)
        self.l_max = int(l_max)
        self.n_channels = int(n_channels)
        self.species_rank = int(species_rank)
        self.radial = ChebyshevBasis(n_basis, r_min, r_cut)
        L, C, N, K, S = self.l_max + 1, self.n_channels, self.radial.n_basis, self.species_rank, self.n_species
        self.species_weights = np.zeros((L, K, S, S))
        self.radial_weights = np.zeros((L, C, N, K))
        if S > 1 and K == S and C >= N * S:
            # species-resolved raw channels: channel c = k N + n is Q_n(r) summed over the
            # neighbours of species k (A[l, k, a, b] = delta_kb), the per-pair radial resolution
            # of MTP/ACE without any nonlinear fit of A and B
            for k in range(S):
                self.species_weights[:, k, :, k] = 1.0
                for n in range(N):
                    self.radial_weights[:, k * N + n, n, k] = 1.0
        else:
            # species-blind raw Chebyshev channels (the only choice for one species)
            self.species_weights[:, 0] = 1.0
            for c in range(min(C, N)):
                self.radial_weights[:, c, c, 0] = 1.0
        self.shift = np.zeros((S, C))
        self.scale = np.ones((L, C))

    # ------------------------------------------------------------ layout
    @property
    def r_cut(self) -> float:
        return self.radial.r_cut

    def channels(self, l: int) -> int:
        """Number of channels of the degree-``l`` block (``C + S`` for ``l = 0``)."""
        return self.n_channels + (self.n_species if l == 0 else 0)

    @property
    def num_parameters(self) -> int:
        return self.species_weights.size + self.radial_weights.size

    def species_resolved(self) -> bool:
        """Whether the channels are species-resolved raw channels (several species, ``K = S``,
        ``C = N S``): every channel carries one Chebyshev function of one neighbour-species slot,
        and every (function, slot) pair has exactly one channel (:meth:`channel_layout`)."""
        return self.channel_layout() is not None

    def channel_layout(self):
        """``(n[c], k[c])`` per ``l`` (arrays over the channels): the Chebyshev function and the
        species slot that channel ``c`` carries, read from the largest radial weight
        ``radial_weights[l, c]``; ``None`` unless every ``(n, k)`` pair is carried by exactly one
        channel of every ``l`` (the species-resolved layout ``c = k N + n`` of a new model, or
        the same channels in another order, e.g. after ``[grow]`` added a Chebyshev function)."""
        S, N, K, C = self.n_species, self.radial.n_basis, self.species_rank, self.n_channels
        if S == 1 or K != S or C != N * S:
            return None
        out = []
        for l in range(self.l_max + 1):
            flat = np.abs(self.radial_weights[l].reshape(C, N * K)).argmax(axis=1)
            n, k = flat // K, flat % K
            if len(set(zip(n.tolist(), k.tolist()))) != C:
                return None
            out.append((n, k))
        return out

    def species_tie_operators(self) -> list:
        r"""Per ``l``: the matrix ``D_l`` (channels x channels) that maps the coefficients of the
        species-resolved channels to their deviation from the species mean,

        .. math::

            (D_l t)_c = \bar s_{l n_c}\Big(\frac{t_c}{s_{lc}}
                - \frac1S \sum_{c' : n_{c'} = n_c} \frac{t_{c'}}{s_{lc'}}\Big),

        with ``n_c`` the Chebyshev function of channel ``c`` (:meth:`channel_layout`), taken on
        the unscaled coefficients ``t / s`` (those of ``Q_n`` summed over the neighbours of one
        species) and brought back to the scale of the features by the group's mean scale
        ``\bar s_{ln}``.  ``D_l t = 0`` means that core treats every neighbour species alike.
        The species-indicator channels of ``l = 0`` are not tied (zero rows)."""
        layout = self.channel_layout()
        if layout is None:
            raise ValueError("species_tie needs the species-resolved raw channels (several species, "
                             f"n_channels = n_basis * n_species = {self.radial.n_basis * self.n_species}, "
                             f"species_rank = n_species, one channel per function and species); this basis has "
                             f"n_channels={self.n_channels}, species_rank={self.species_rank}, {self.n_species} species")
        S = self.n_species
        out = []
        for l, (n_of, _) in enumerate(layout):
            D = np.zeros((self.channels(l), self.channels(l)))
            for n in range(self.radial.n_basis):
                idx = np.flatnonzero(n_of == n)  # the S channels of function n, one per species
                inv = 1.0 / self.scale[l, idx]
                D[np.ix_(idx, idx)] = self.scale[l, idx].mean() * (np.eye(S) - np.full((S, S), 1.0 / S)) * inv[None, :]
            out.append(D)
        return out

    # ------------------------------------------------------------ radial functions
    def pair_weights(self) -> np.ndarray:
        """``W[z_i, z_j, l, c, n]``: the radial function of each species pair in the Q_n basis."""
        W = np.einsum("lcnk,lkab->ablcn", self.radial_weights, self.species_weights)
        return W / self.scale[None, None, :, :, None]

    def pair_radial(self, r, zi, zj):
        """``R[e, l, c]`` and ``dR/dr`` for pairs of species ``(zi[e], zj[e])`` at distances ``r[e]``."""
        Q, dQ = self.radial(r)
        W = self.pair_weights()
        S, L, C = self.n_species, self.l_max + 1, self.n_channels
        E = len(r)
        if S == 1:  # one pair type: plain matrix products, no gathering
            Wt = W[0, 0].reshape(L * C, -1).T
            return (Q @ Wt).reshape(E, L, C), (dQ @ Wt).reshape(E, L, C)
        # sort the pairs by type once: contiguous slices, one gather and one scatter in all
        ptype = zi * S + zj
        order = np.argsort(ptype, kind="stable")
        bounds = np.searchsorted(ptype[order], np.arange(S * S + 1))
        Qs, dQs = Q[order], dQ[order]
        Rs, dRs = np.empty((E, L * C)), np.empty((E, L * C))
        for t in range(S * S):
            sl = slice(bounds[t], bounds[t + 1])
            if sl.start == sl.stop:
                continue
            Wt = W[t // S, t % S].reshape(L * C, -1).T  # (N, L*C)
            np.matmul(Qs[sl], Wt, out=Rs[sl])
            np.matmul(dQs[sl], Wt, out=dRs[sl])
        R, dR = np.empty_like(Rs), np.empty_like(dRs)
        R[order], dR[order] = Rs, dRs
        return R.reshape(E, L, C), dR.reshape(E, L, C)

    # ------------------------------------------------------------ features
    def compute(self, graph: Graph, atoms: slice | None = None):
        """Feature blocks ``[F_0, ..., F_lmax]`` (``F_l``: ``(n_atoms, 2l+1, channels(l))``) and
        the :class:`PairCache` for derivatives.

        With ``atoms = slice(s0, s1)`` only those centre atoms and their pairs (a contiguous range,
        pairs being sorted by centre) are computed: evaluation runs chunk by chunk in bounded
        memory.  ``cache.i`` then indexes atoms within the slice.
        """
        if atoms is None:
            s0, s1, p0, p1 = 0, graph.n_atoms, 0, graph.n_pairs
        else:
            s0, s1 = atoms.start, atoms.stop
            p0, p1 = (int(v) for v in np.searchsorted(graph.i, [s0, s1]))
        D = graph.vectors[p0:p1]
        r = np.linalg.norm(D, axis=1)
        if len(r) and r.min() == 0.0:
            e = p0 + int(np.argmin(r))
            raise ValueError(
                f"configuration {graph.pair_config[e]}: atoms {graph.i[e]} and {graph.j[e]} (global indices) "
                "coincide (zero distance)")
        Y, dY = real_sph_harm(self.l_max, D, gradients=True)
        ii = graph.i[p0:p1] - s0
        zi, zj = graph.species[graph.i[p0:p1]], graph.species[graph.j[p0:p1]]
        R, dR = self.pair_radial(r, zi, zj)
        n, E = s1 - s0, p1 - p0
        centre = graph.species[s0:s1]
        inc = sp.csr_matrix((np.ones(E), (ii, np.arange(E))), shape=(n, E))
        cache = PairCache(ii, r, D / np.where(r > 0, r, 1.0)[:, None], Y, dY, R, dR, inc)
        blocks = []
        for l in range(self.l_max + 1):
            Yl = Y[:, l * l : (l + 1) ** 2]
            f = (Yl[:, :, None] * R[:, l, None, :]).reshape(E, (2 * l + 1) * self.n_channels)
            Fl = np.asarray(inc @ f).reshape(n, 2 * l + 1, self.n_channels)
            if l == 0:
                Fl = Fl - self.shift[centre][:, None, :]
                ind = np.zeros((n, 1, self.n_species))
                ind[np.arange(n), 0, centre] = 1.0
                Fl = np.concatenate([Fl, ind], axis=2)
            blocks.append(Fl)
        return blocks, cache

    def pair_gradients(self, grad_blocks, cache: PairCache) -> np.ndarray:
        """Chain rule to the pairs: given ``g_l = dE/dF_l`` per atom, return ``dE/dr_ij`` ``(E, 3)``."""
        out = np.zeros((len(cache.r), 3))
        C = self.n_channels
        for l, g in enumerate(grad_blocks):
            ge = np.asarray(g)[cache.i][:, :, :C]  # (E, 2l+1, C)
            h0 = np.einsum("emc,ec->em", ge, cache.R[:, l])
            h1 = np.einsum("emc,ec->em", ge, cache.dR[:, l])
            sl = slice(l * l, (l + 1) ** 2)
            out += cache.rhat * np.einsum("em,em->e", cache.Y[:, sl], h1)[:, None]
            out += np.einsum("eam,em->ea", cache.dY[:, :, sl], h0)
        return out

    def pair_tangents(self, cache: PairCache, l: int, pairs=None) -> np.ndarray:
        """``dF_i[l]/dr_ij`` for each pair: shape ``(E, 3, 2l+1, channels(l))`` (zero on indicator channels)."""
        sel = slice(None) if pairs is None else pairs
        sl = slice(l * l, (l + 1) ** 2)
        Y, dY, R, dR, rh = cache.Y[sel, sl], cache.dY[sel][:, :, sl], cache.R[sel, l], cache.dR[sel, l], cache.rhat[sel]
        G = rh[:, :, None, None] * (Y[:, None, :, None] * dR[:, None, None, :]) + dY[:, :, :, None] * R[:, None, None, :]
        if l == 0:
            G = np.concatenate([G, np.zeros(G.shape[:3] + (self.n_species,))], axis=3)
        return G

    # ------------------------------------------------------------ normalization
    def moments(self, graph: Graph) -> dict:
        """Sums over the atoms of ``graph`` from which :meth:`set_normalization` computes the
        normalization; sums of several graphs add up (so it can be reduced over chunks)."""
        saved = self.shift.copy(), self.scale.copy()
        self.shift[:] = 0.0
        self.scale[:] = 1.0
        try:
            blocks, _ = self.compute(graph)
        finally:
            self.shift[:], self.scale[:] = saved
        C, S = self.n_channels, self.n_species
        onehot = np.zeros((graph.n_atoms, S))
        onehot[np.arange(graph.n_atoms), graph.species] = 1.0
        x0 = blocks[0][:, 0, :C]
        return {"count": onehot.sum(0), "sum0": onehot.T @ x0, "sumsq0": onehot.T @ (x0 * x0),
                "sumsq": np.array([np.sum(F[:, :, :C] ** 2, axis=(0, 1)) for F in blocks]),
                "n_atoms": graph.n_atoms}

    def set_normalization(self, m: dict) -> None:
        """Set ``shift`` (per-species mean of the ``l = 0`` channels) and ``scale`` (RMS per
        ``(l, c)``, after centring for ``l = 0``) from :meth:`moments` (possibly summed)."""
        n = max(float(m["n_atoms"]), 1.0)
        cnt = np.maximum(m["count"], 1.0)[:, None]
        mean = m["sum0"] / cnt  # (S, C), unscaled
        rms = np.sqrt(m["sumsq"] / (n * (2 * np.arange(self.l_max + 1) + 1))[:, None])
        centred = np.sum(m["sumsq0"] - m["count"][:, None] * mean * mean, axis=0) / n
        rms[0] = np.sqrt(np.clip(centred, 0.0, None))
        self.scale[:] = np.where(rms > 1e-12, rms, 1.0)
        self.shift[:] = np.where(m["count"][:, None] > 0, mean, 0.0) / self.scale[0][None, :]

    def normalize(self, graph: Graph) -> None:
        """Set ``shift`` and ``scale`` from the atoms of ``graph`` so that every feature is O(1)."""
        self.set_normalization(self.moments(graph))
