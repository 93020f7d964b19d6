r"""Equivariant tensor trains: a chain of CG-coupled cores over irrep-labelled bonds.

This module knows nothing about atoms.  A tensor train of ``order`` = d cores maps one input
``x`` (a list of blocks ``x[f]`` of shape ``(..., 2 l_f + 1, channels_f)``, one per input irrep
``f``) to a scalar, a polynomial of degree d in ``x``:

::

      bond 0        bond 1        bond 2              bond d
     (1x0e) --[T1]-- (irreps) --[T2]-- (irreps) ... --[Td]-- (1x0e)
               |               |                      |
               x               x                      x

Bond ``k`` carries a direct sum of irreps ``a`` with multiplicities (the TT ranks) ``R_k(a)``;
its vector is the list of blocks ``u[a]`` of shape ``(..., 2 l_a + 1, R_k(a))``.  Core ``k``
holds one *reduced* block ``T_p`` of shape ``(R_k(a), channels_f, R_{k+1}(b))`` for every
allowed coupling path ``p = (a, f, b)`` (triangle rule ``|l_a - l_f| <= l_b <= l_a + l_f`` and,
for O(3), parity ``p_a p_f = p_b``); the full core is ``C^p ⊗ T_p`` with the real CG tensor
``C^p`` of :mod:`etnpot.so3` (Wigner–Eckart).  The left-to-right contraction

.. math::

    u^{(k+1)}[b]_{m_b s} = \sum_{p=(a,f,b)} \sum_{m_a m_f r c}
        C^p_{m_a m_f m_b}\, u^{(k)}[a]_{m_a r}\, x[f]_{m_f c}\, T^{(k)}_p[r, c, s],
    \qquad u^{(0)} = 1,\quad \text{value} = u^{(d)}[0e]

is invariant (every ``u^{(k)}[a]`` transforms with ``D^{l_a}``; the last bond is the trivial
irrep).  With natural-parity inputs and O(3) bond irreps it is also reflection invariant.

Each path is a trilinear form ``tau_p(u, x, w) = sum C u x w T``; the four contractions used
everywhere are its partial derivatives: :func:`path_forward` (d/dw), :func:`path_backward`
(d/du), :func:`path_input_grad` (d/dx) and :func:`path_design` (d/dT).  Each is written with an
explicit contraction order as matrix products (generic einsum path finders pick orders far
too costly when the batch index is shared by every factor).  Leading batch dimensions
broadcast, so tangents ride along as an extra batch axis.  Arrays may be numpy or any
array library that autoray dispatches (cupy, torch, jax): the array type decides the device.

The value is linear in every core: ``value = <T^{(k)}, Phi^{(k)}(x)>`` with ``Phi^{(k)} =
path_design(L^{(k)}, x, R^{(k+1)})`` where ``L^{(k)}`` is the left environment (the forward
contraction of cores ``< k``) and ``R^{(k+1)} = d value / d u^{(k+1)}`` the right environment.
"""
from __future__ import annotations

import numpy as np
from autoray import do, infer_backend

from .so3 import Irrep, Irreps, clebsch_gordan

__all__ = ["EquivariantTT", "path_forward", "path_backward", "path_input_grad", "path_design"]

TRIVIAL = Irreps("1x0e")
SCALARS = (Irreps("1x0e"), Irreps("1x0"))  # the invariant boundary bond of an O(3) / SO(3) chain


def _swap(x):
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return do("transpose", x, perm)


def _perm_last3(x, perm3):
    n = x.ndim - 3
    return do("transpose", x, tuple(range(n)) + tuple(n + p for p in perm3))


def path_forward(u, x, T, C):
    """``out[..., m_b, s] = sum C[m_a,m_f,m_b] u[..., m_a, r] x[..., m_f, c] T[r, c, s]``."""
    ma, mf, mb = C.shape
    R, Cf, S = T.shape
    Y = _swap(u) @ C.reshape(ma, mf * mb)  # (..., R, mf*mb)
    Y = _swap(Y.reshape(Y.shape[:-1] + (mf, mb)))  # (..., R, mb, mf)
    Z = Y.reshape(Y.shape[:-3] + (R * mb, mf)) @ x  # (..., R*mb, Cf)
    lead = Z.shape[:-2]
    Z = _perm_last3(Z.reshape(lead + (R, mb, Cf)), (1, 0, 2))  # (..., mb, R, Cf)
    return Z.reshape(lead + (mb, R * Cf)) @ T.reshape(R * Cf, S)


def path_backward(w, x, T, C):
    """``out[..., m_a, r] = sum C[m_a,m_f,m_b] x[..., m_f, c] w[..., m_b, s] T[r, c, s]``."""
    ma, mf, mb = C.shape
    R, Cf, S = T.shape
    V = w @ _swap(T.reshape(R * Cf, S))  # (..., mb, R*Cf)
    Z = V.reshape(V.shape[:-2] + (mb * R, Cf)) @ _swap(x)  # (..., mb*R, mf)
    lead = Z.shape[:-2]
    Z = _perm_last3(Z.reshape(lead + (mb, R, mf)), (1, 2, 0))  # (..., R, mf, mb)
    Z = Z.reshape(lead + (R, mf * mb)) @ do("transpose", C, (1, 2, 0)).reshape(mf * mb, ma)
    return _swap(Z)


def path_input_grad(u, w, T, C):
    """``out[..., m_f, c] = sum C[m_a,m_f,m_b] u[..., m_a, r] w[..., m_b, s] T[r, c, s]``."""
    ma, mf, mb = C.shape
    R, Cf, S = T.shape
    V = w @ _swap(T.reshape(R * Cf, S))  # (..., mb, R*Cf)
    V = _perm_last3(V.reshape(V.shape[:-1] + (R, Cf)), (1, 0, 2))  # (..., R, mb, Cf)
    Z = u @ V.reshape(V.shape[:-3] + (R, mb * Cf))  # (..., ma, mb*Cf)
    Z = Z.reshape(Z.shape[:-2] + (ma * mb, Cf))
    return do("transpose", C, (1, 0, 2)).reshape(mf, ma * mb) @ Z


def path_design(u, x, w, C):
    """``out[..., r, c, s] = sum C[m_a,m_f,m_b] u[..., m_a, r] x[..., m_f, c] w[..., m_b, s]``."""
    ma, mf, mb = C.shape
    R, Cf, S = u.shape[-1], x.shape[-1], w.shape[-1]
    CX = do("transpose", C, (0, 2, 1)).reshape(ma * mb, mf) @ x  # (..., ma*mb, Cf)
    CX = CX.reshape(CX.shape[:-2] + (ma, mb * Cf))
    Z = _swap(u) @ CX  # (..., R, mb*Cf)
    lead = Z.shape[:-2]
    Z = _swap(Z.reshape(lead + (R, mb, Cf)))  # (..., R, Cf, mb)
    out = Z.reshape(lead + (R * Cf, mb)) @ w
    return out.reshape(out.shape[:-2] + (R, Cf, S))


def _add(acc, key, val):
    acc[key] = val if key not in acc else acc[key] + val


class EquivariantTT:
    """A tensor train of ``len(bonds) - 1`` equivariant cores.

    Parameters
    ----------
    inputs : list of ``(Irrep, channels)``, the input blocks ``x[f]``.
    bonds : list of :class:`Irreps`, ``bonds[0] == bonds[-1] == 1x0e``.
    cores : optional list of ``{(a, f, b): array (R_k(a), channels_f, R_{k+1}(b))}``; zeros if omitted.
    """

    def __init__(self, inputs, bonds, cores=None):
        self.inputs = [(Irrep.parse(ir), int(c)) for ir, c in inputs]
        self.bonds = [Irreps(b) for b in bonds]
        if len(self.bonds) < 2:
            raise ValueError("a tensor train needs at least one core (two bonds)")
        if self.bonds[0] not in SCALARS:
            raise ValueError(f"the first bond must be 1x0e (O(3)) or 1x0 (SO(3)), got {self.bonds[0]}")
        if any(m != 1 for _, m in self.bonds[-1]) or len(self.bonds[-1]) != 1:
            raise ValueError(f"the last bond must be a single irrep of multiplicity 1, got {self.bonds[-1]}")
        self.cores = []
        for k in range(self.order):
            given = cores[k] if cores is not None else {}
            core = {}
            for p in self.paths(k):
                shape = self.block_shape(p, k)
                if p in given:
                    arr = np.asarray(given[p], dtype=np.float64)
                    if arr.shape != shape:
                        raise ValueError(f"core {k} path {self.path_str(p)}: shape {arr.shape}, expected {shape}")
                    core[p] = arr.copy()
                else:
                    core[p] = np.zeros(shape)
            extra = set(given) - set(core)
            if extra:
                raise ValueError(f"core {k}: paths not allowed by the bonds: {[self.path_str(p) for p in extra]}")
            self.cores.append(core)

    # ------------------------------------------------------------ structure
    @property
    def order(self) -> int:
        return len(self.bonds) - 1

    def paths(self, k: int):
        """Allowed paths ``(a, f, b)`` of core ``k``, in a fixed (sorted) order."""
        out = []
        for a, _ in self.bonds[k]:
            for f, (fi, _) in enumerate(self.inputs):
                for b, _ in self.bonds[k + 1]:
                    if _allowed(a, fi, b):
                        out.append((a, f, b))
        return out

    def block_shape(self, p, k):
        a, f, b = p
        return (self.bonds[k].mult(a), self.inputs[f][1], self.bonds[k + 1].mult(b))

    def cg(self, p):
        a, f, b = p
        return clebsch_gordan(a.l, self.inputs[f][0].l, b.l)

    def path_str(self, p) -> str:
        a, f, b = p
        return f"({a},{self.inputs[f][0]}->{b})"

    def core_size(self, k: int) -> int:
        return sum(int(np.prod(T.shape)) for T in self.cores[k].values())

    @property
    def num_parameters(self) -> int:
        return sum(self.core_size(k) for k in range(self.order))

    def core_vector(self, k: int) -> np.ndarray:
        """Core ``k`` flattened in path order (the column order of :meth:`design`)."""
        return np.concatenate([T.ravel() for T in self.cores[k].values()]) if self.cores[k] else np.zeros(0)

    def set_core_vector(self, k: int, v) -> None:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.core_size(k),):
            raise ValueError(f"core {k} has {self.core_size(k)} parameters, got a vector of shape {v.shape}")
        pos = 0
        for p, T in self.cores[k].items():
            n = T.size
            self.cores[k][p] = v[pos : pos + n].reshape(T.shape).copy()
            pos += n

    def copy(self) -> "EquivariantTT":
        return EquivariantTT(self.inputs, self.bonds, self.cores)

    # ------------------------------------------------------------ contractions
    def _arrays(self, k, like):
        """(path, T, C) triples of core ``k`` on the array library of ``like``."""
        conv = (lambda a: a) if infer_backend(like) == "numpy" else (lambda a: do("asarray", a, like=like))
        return [(p, conv(T), conv(self.cg(p))) for p, T in self.cores[k].items()]

    def site_forward(self, k, u, x):
        """Bond ``k+1`` vector from bond ``k`` vector ``u`` (dict irrep -> block) and input ``x``."""
        out = {}
        for (a, f, b), T, C in self._arrays(k, x[0]):
            if a in u:
                _add(out, b, path_forward(u[a], x[f], T, C))
        return out

    def site_backward(self, k, w, x):
        """Right environment of bond ``k`` from that of bond ``k+1`` (``w``) and input ``x``."""
        out = {}
        for (a, f, b), T, C in self._arrays(k, x[0]):
            if b in w:
                _add(out, a, path_backward(w[b], x[f], T, C))
        return out

    def site_input_grad(self, k, u, w, like):
        """``d value / d x`` through core ``k`` only: dict f -> block."""
        out = {}
        for (a, f, b), T, C in self._arrays(k, like):
            if a in u and b in w:
                _add(out, f, path_input_grad(u[a], w[b], T, C))
        return out

    def site_design(self, k, u, x, w):
        """Design of core ``k``: ``(..., P_k)`` with ``value = design @ core_vector(k)``."""
        cols = []
        for p, T, C in self._arrays(k, x[0]):
            a, f, b = p
            if a in u and b in w:
                d = path_design(u[a], x[f], w[b], C)
                cols.append(d.reshape(d.shape[:-3] + (-1,)))
            else:  # an irrep that no path reaches: its block does not enter the value
                lead = np.broadcast_shapes(x[f].shape[:-2], *(e.shape[:-2] for e in (*u.values(), *w.values())))
                cols.append(do("zeros", tuple(lead) + (int(np.prod(T.shape)),), like=x[f]))
        return do("concatenate", cols, axis=-1)

    def left_environments(self, x, upto=None):
        """``[L^{(0)}, ..., L^{(upto)}]`` (default ``upto = order``); ``L^{(0)} = 1``."""
        upto = self.order if upto is None else upto
        envs = [{self.bonds[0][0][0]: _ones_like(x[0], x[0].shape[:-2])}]
        for k in range(upto):
            envs.append(self.site_forward(k, envs[-1], x))
        return envs

    def right_environments(self, x, downto=0):
        """``{k: R^{(k)}}`` for ``k = order .. downto``; ``R^{(order)} = 1``."""
        envs = {self.order: {self.bonds[-1][0][0]: _ones_like(x[0], x[0].shape[:-2])}}
        for k in range(self.order - 1, downto - 1, -1):
            envs[k] = self.site_backward(k, envs[k + 1], x)
        return envs

    def output(self, x):
        """The last bond's vector ``(..., 2l+1)``: equivariant, and invariant when the last bond is 0e."""
        ir = self.bonds[-1][0][0]
        u = self.left_environments(x)[-1]
        if ir not in u:
            return do("zeros", tuple(x[0].shape[:-2]) + (ir.dim,), like=x[0])
        return u[ir][..., 0]

    def value(self, x):
        """The scalar ``(...,)`` of every batch entry (needs the last bond to be 1x0e)."""
        if self.bonds[-1] not in SCALARS:
            raise ValueError(f"value() needs an invariant last bond 1x0e, got {self.bonds[-1]}; use output()")
        return self.output(x)[..., 0]

    def value_and_input_grad(self, x):
        """Value and ``d value / d x`` (list of blocks like ``x``): one forward, one reverse sweep."""
        if self.bonds[-1] not in SCALARS:
            raise ValueError(f"value_and_input_grad() needs an invariant last bond 1x0e, got {self.bonds[-1]}")
        L = self.left_environments(x)
        R = self.right_environments(x, downto=1)
        grad = [do("zeros_like", xf) for xf in x]
        for k in range(self.order):
            for f, g in self.site_input_grad(k, L[k], R[k + 1], x[0]).items():
                grad[f] = grad[f] + g
        last = L[-1].get(self.bonds[-1][0][0])
        val = last[..., 0, 0] if last is not None else do("zeros", tuple(x[0].shape[:-2]), like=x[0])
        return val, grad

    def design(self, k, x):
        """``Phi^{(k)}(x)``, shape ``(..., P_k)``: the value is ``Phi @ core_vector(k)``."""
        L = self.left_environments(x, upto=k)[k]
        R = self.right_environments(x, downto=k + 1)[k + 1]
        return self.site_design(k, L, x, R)

    # ------------------------------------------------------------ gauge
    def orthogonalize_left(self, k: int) -> None:
        """Make core ``k`` left-orthogonal by a QR per outgoing irrep; absorb R into core ``k+1``.

        For every irrep ``b`` of bond ``k+1`` the blocks of paths ending in ``b`` are stacked
        into a matrix with rows ``(path, r, c)`` and columns ``s``; with the CG normalization
        ``sum_{m_a m_f} C C = 1`` the full core is left-orthogonal iff these have orthonormal
        columns.  A bond rank shrinks if a matrix has fewer rows than columns.  The represented
        function does not change.
        """
        if not 0 <= k < self.order - 1:
            raise ValueError(f"orthogonalize_left needs 0 <= k < {self.order - 1}, got {k}")
        new_mult, Rfac = {}, {}
        for b, _ in self.bonds[k + 1]:
            ps = [p for p in self.cores[k] if p[2] == b]
            if not ps:  # unreachable irrep: it carries nothing, drop it
                new_mult[b], Rfac[b] = 0, np.zeros((0, self.bonds[k + 1].mult(b)))
                continue
            M = np.concatenate([self.cores[k][p].reshape(-1, self.cores[k][p].shape[2]) for p in ps], axis=0)
            Q, Rm = np.linalg.qr(M)
            pos = 0
            for p in ps:
                n = self.cores[k][p].shape[0] * self.cores[k][p].shape[1]
                self.cores[k][p] = Q[pos : pos + n].reshape(self.cores[k][p].shape[:2] + (Q.shape[1],))
                pos += n
            new_mult[b], Rfac[b] = Q.shape[1], Rm
        for p in list(self.cores[k + 1]):
            a = p[0]
            self.cores[k + 1][p] = np.einsum("rs,sct->rct", Rfac[a], self.cores[k + 1][p])
        self._set_bond(k + 1, new_mult)

    def orthogonalize_right(self, k: int) -> None:
        """Make core ``k`` right-orthogonal (LQ per incoming irrep); absorb the factor into core ``k-1``.

        Right orthogonality of the full core needs ``sum_p (2l_b+1)/(2l_a+1) T_p T_p^T = 1`` for
        the paths leaving irrep ``a`` (because ``sum_{m_f m_b} C C = (2l_b+1)/(2l_a+1)``).
        """
        if not 0 < k < self.order:
            raise ValueError(f"orthogonalize_right needs 0 < k < {self.order}, got {k}")
        new_mult, Lfac = {}, {}
        for a, _ in self.bonds[k]:
            ps = [p for p in self.cores[k] if p[0] == a]
            if not ps:
                new_mult[a], Lfac[a] = 0, np.zeros((self.bonds[k].mult(a), 0))
                continue
            w = [np.sqrt((2 * p[2].l + 1) / (2 * a.l + 1)) for p in ps]
            M = np.concatenate([wi * self.cores[k][p].reshape(self.cores[k][p].shape[0], -1) for wi, p in zip(w, ps)], axis=1)
            Q, Rm = np.linalg.qr(M.T)  # M = Rm^T Q^T
            pos = 0
            for wi, p in zip(w, ps):
                shp = self.cores[k][p].shape
                n = shp[1] * shp[2]
                self.cores[k][p] = (Q[pos : pos + n].T / wi).reshape((Q.shape[1],) + shp[1:])
                pos += n
            new_mult[a], Lfac[a] = Q.shape[1], Rm.T
        for p in list(self.cores[k - 1]):
            b = p[2]
            self.cores[k - 1][p] = np.einsum("rcs,st->rct", self.cores[k - 1][p], Lfac[b])
        self._set_bond(k, new_mult)

    def trim(self) -> "EquivariantTT":
        """Drop bond irreps that no path connects to both ends and cap every multiplicity at
        the largest rank the neighbouring cores can carry (the TT rank bound); returns self."""
        changed = True
        while changed:
            changed = False
            for k in range(1, self.order):
                mult = {}
                for ir, m in self.bonds[k]:
                    left = sum(self.bonds[k - 1].mult(a) * self.inputs[f][1] for a, f, b in self.paths(k - 1) if b == ir)
                    right = sum(self.bonds[k + 1].mult(b) * self.inputs[f][1] for a, f, b in self.paths(k) if a == ir)
                    mult[ir] = min(m, left, right)
                    changed |= mult[ir] != m
                if changed:
                    for kk in (k - 1, k):
                        self.cores[kk] = {p: T for p, T in self.cores[kk].items()}
                    self._resize_bond(k, mult)
        return self

    def _resize_bond(self, k, mult):
        """Truncate/zero-pad the blocks touching bond ``k`` to new multiplicities."""
        self.bonds[k] = Irreps(mult)
        for kk in (k - 1, k):
            new = {}
            for p in self.paths(kk):
                shape = self.block_shape(p, kk)
                old = self.cores[kk].get(p)
                T = np.zeros(shape)
                if old is not None:
                    sl = tuple(slice(0, min(s, o)) for s, o in zip(shape, old.shape))
                    T[sl] = old[sl]
                new[p] = T
            self.cores[kk] = new

    def _set_bond(self, k, mult):
        self.bonds[k] = Irreps({ir: m for ir, m in mult.items()})
        for kk in (k - 1, k):
            self.cores[kk] = {p: T for p, T in self.cores[kk].items()
                              if self.bonds[kk].mult(p[0]) and self.bonds[kk + 1].mult(p[2])}

    def core_weights(self, k: int) -> np.ndarray:
        """Per-parameter weights ``w`` with ``||full core k||_F^2 = sum w * core_vector(k)^2``.

        ``sum_{m_a m_f m_b} (C^p)^2 = 2 l_b + 1``, so the weight of every entry of ``T_p`` is
        ``2 l_b + 1``.  In the mixed-canonical gauge around core ``k`` (cores left of it
        left-orthogonal, right of it right-orthogonal) this is also the squared norm of the
        whole coefficient tensor: a ridge penalty ``sum w x^2`` on the centre core equals a
        ridge on the full tensor.
        """
        return np.concatenate([np.full(T.size, 2.0 * p[2].l + 1.0) for p, T in self.cores[k].items()]) \
            if self.cores[k] else np.zeros(0)

    def norm_squared(self) -> float:
        """Squared Frobenius norm of the full (dense) coefficient tensor, by a transfer-matrix sweep.

        Uses ``sum_{m_a m_f} C_{m_a m_f m_b} C_{m_a m_f m_b'} = delta``-type identities per path
        implicitly through the dense full cores (small models only: for tests and checks).
        """
        E = np.ones((1, 1))
        for k in range(self.order):
            G = self.full_core(k)  # (Dl, n_in, Dr)
            E = np.einsum("ab,aic,bid->cd", E, G, G)
        return float(E[0, 0])

    # ------------------------------------------------------------ dense views and export
    def _offsets(self, irreps):
        off, pos = {}, 0
        for ir, m in irreps:
            off[ir] = pos
            pos += ir.dim * m
        return off, pos

    def full_core(self, k: int) -> np.ndarray:
        """Dense core ``(dim bond k, dim input, dim bond k+1)``; bond index ``(irrep, m, r)``,
        input index ``(f, m, c)``, both row-major."""
        la, Da = self._offsets(self.bonds[k])
        lb, Db = self._offsets(self.bonds[k + 1])
        fo, Df = [], 0
        for ir, c in self.inputs:
            fo.append(Df)
            Df += ir.dim * c
        G = np.zeros((Da, Df, Db))
        for p, T in self.cores[k].items():
            a, f, b = p
            C = self.cg(p)
            blk = np.einsum("xyz,rcs->xrycz s".replace(" ", ""), C, T)
            ma, mf, mb = C.shape
            R, Cf, S = T.shape
            G[la[a] : la[a] + ma * R, fo[f] : fo[f] + mf * Cf, lb[b] : lb[b] + mb * S] += blk.reshape(ma * R, mf * Cf, mb * S)
        return G

    def to_quimb(self):
        """The dense cores as a ``quimb.tensor.TensorNetwork`` (indices ``b{k}`` for bonds,
        ``x{k}`` for the input of site ``k``; tags ``I{k}``).  Contracting it with the input vector
        on every ``x{k}`` gives :meth:`value`."""
        import quimb.tensor as qtn

        ts = []
        for k in range(self.order):
            G = self.full_core(k)
            ts.append(qtn.Tensor(G, inds=(f"b{k}", f"x{k}", f"b{k+1}"), tags={f"I{k}", "ETN"}))
        return qtn.TensorNetwork(ts)

    def flat_input(self, x) -> np.ndarray:
        """Concatenate input blocks into the flat vector used by :meth:`full_core`."""
        return np.concatenate([np.asarray(b).reshape(b.shape[:-2] + (-1,)) for b in x], axis=-1)


def _ones_like(ref, lead):
    return do("ones", tuple(lead) + (1, 1), like=ref) if infer_backend(ref) != "numpy" else np.ones(tuple(lead) + (1, 1))


def _allowed(a: Irrep, fi: Irrep, b: Irrep) -> bool:
    if not abs(a.l - fi.l) <= b.l <= a.l + fi.l:
        return False
    if a.p == 0 and fi.p == 0 and b.p == 0:
        return True
    return a.p * fi.p == b.p
