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
from autoray import do, get_dtype_name, infer_backend

from .so3 import Irrep, Irreps, clebsch_gordan, path_allowed

__all__ = ["EquivariantTT", "path_forward", "path_backward", "path_input_grad", "path_design"]

TRIVIAL = Irreps("1x0e")
SCALARS = (Irreps("1x0e"), Irreps("1x0"))  # the invariant boundary bond of an O(3) / SO(3) chain


def _zeros(shape, like):
    return do("zeros", tuple(shape), like=like, dtype=get_dtype_name(like))


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


def path_left_partial(u, x, C):
    """``out[..., r, m_b, c] = sum C[m_a,m_f,m_b] u[..., m_a, r] x[..., m_f, c]`` (core block left open)."""
    ma, mf, mb = C.shape
    Cf = x.shape[-1]
    CX = do("transpose", C, (0, 2, 1)).reshape(ma * mb, mf) @ x  # (..., ma*mb, Cf)
    CX = CX.reshape(CX.shape[:-2] + (ma, mb * Cf))
    Z = _swap(u) @ CX  # (..., R, mb*Cf)
    return Z.reshape(Z.shape[:-1] + (mb, Cf))


def path_input_partial(u, w, C):
    """``out[..., m_f, r, s] = sum C[m_a,m_f,m_b] u[..., m_a, r] w[..., m_b, s]`` (input slot left open)."""
    ma, mf, mb = C.shape
    R, S = u.shape[-1], w.shape[-1]
    Q = (_swap(u) @ C.reshape(ma, mf * mb)).reshape(u.shape[:-2] + (R * mf, mb)) @ w  # (..., R mf, S)
    return _perm_last3(Q.reshape(Q.shape[:-2] + (R, mf, S)), (1, 0, 2))


def path_right_partial(x, w, C):
    """``out[..., m_a, c, s] = sum C[m_a,m_f,m_b] x[..., m_f, c] w[..., m_b, s]``."""
    ma, mf, mb = C.shape
    S = w.shape[-1]
    CW = C.reshape(ma * mf, mb) @ w  # (..., ma*mf, S)
    CW = CW.reshape(CW.shape[:-2] + (ma, mf, S))
    # out[m_a, c, s] = sum_mf x[mf, c] CW[m_a, mf, s]
    return _swap(x)[..., None, :, :] @ CW  # (..., ma, Cf, S)


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
                    if path_allowed(a, fi, b):
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

    def __getstate__(self):  # device copies are not shipped (e.g. to Dask workers)
        return {k: v for k, v in self.__dict__.items() if k not in ("_device_cache", "_dense_cache")}

    def copy(self) -> "EquivariantTT":
        return EquivariantTT(self.inputs, self.bonds, self.cores)

    # ------------------------------------------------------------ contractions
    def _arrays(self, k, like):
        """(path, T, C) triples of core ``k`` on the array library (and dtype) of ``like``.

        Blocks are converted once and cached until the core block changes (the cache is keyed by
        the block object, which every update of a core replaces)."""
        backend, dtype = infer_backend(like), get_dtype_name(like)
        if backend == "numpy" and dtype == "float64":
            return [(p, T, self.cg(p)) for p, T in self.cores[k].items()]
        cache = self.__dict__.setdefault("_device_cache", {})
        conv = lambda a: do("asarray", np.array(a, dtype=dtype), like=backend)  # a writable copy
        out = []
        for p, T in self.cores[k].items():
            key = (k, p, backend, dtype)
            hit = cache.get(key)
            if hit is None or hit[0] is not T:
                hit = (T, conv(T), conv(self.cg(p)))
                cache[key] = hit
                _freeze((T,))
            out.append((p, hit[1], hit[2]))
        return out

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
                lead = np.broadcast_shapes(tuple(x[f].shape[:-2]), *(tuple(e.shape[:-2]) for e in (*u.values(), *w.values())))
                cols.append(_zeros(tuple(lead) + (int(np.prod(T.shape)),), x[f]))
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
            return _zeros(tuple(x[0].shape[:-2]) + (ir.dim,), x[0])
        return u[ir][..., 0]

    def value(self, x):
        """The scalar ``(...,)`` of every batch entry (needs the last bond to be 1x0e)."""
        if self.bonds[-1] not in SCALARS:
            raise ValueError(f"value() needs an invariant last bond 1x0e, got {self.bonds[-1]}; use output()")
        return self.output(x)[..., 0]

    def value_and_input_grad(self, x):
        """Value and ``d value / d x`` (list of blocks like ``x``): one forward, one reverse sweep."""
        val, grad, _, _ = self.value_grad_envs(x)
        return val, grad

    def value_grad_envs(self, x):
        """Value, input gradient, and the left and right environments computed on the way
        (``L[k]`` for ``k = 0..order``, ``R[k]`` for ``k = 1..order``), for callers that also need a
        core's design (e.g. the extrapolation grade) without contracting again."""
        if self.bonds[-1] not in SCALARS:
            raise ValueError(f"value_and_input_grad() needs an invariant last bond 1x0e, got {self.bonds[-1]}")
        L = self.left_environments(x)
        R = self.right_environments(x, downto=1)
        grad = [do("zeros_like", xf) for xf in x]
        for k in range(self.order):
            for f, g in self.site_input_grad(k, L[k], R[k + 1], x[0]).items():
                grad[f] = grad[f] + g
        last = L[-1].get(self.bonds[-1][0][0])
        val = last[..., 0, 0] if last is not None else _zeros(tuple(x[0].shape[:-2]), x[0])
        return val, grad, L, R

    def design(self, k, x):
        """``Phi^{(k)}(x)``, shape ``(..., P_k)``: the value is ``Phi @ core_vector(k)``."""
        L = self.left_environments(x, upto=k)[k]
        R = self.right_environments(x, downto=k + 1)[k + 1]
        return self.site_design(k, L, x, R)

    # ------------------------------------------------------------ two-site (DMRG) view
    def pair_paths(self, k: int):
        """Blocks of the supercore of cores ``k, k+1``: path pairs ``(p1, p2)`` sharing the middle irrep."""
        return [(p1, p2) for p1 in self.cores[k] for p2 in self.cores[k + 1] if p1[2] == p2[0]]

    def merged_blocks(self, k: int) -> dict:
        """Supercore ``S_{p1 p2}[r, c1, c2, t] = sum_s T^k_{p1}[r, c1, s] T^{k+1}_{p2}[s, c2, t]``."""
        return {(p1, p2): np.einsum("rcs,sdt->rcdt", self.cores[k][p1], self.cores[k + 1][p2])
                for p1, p2 in self.pair_paths(k)}

    def merged_vector(self, k: int) -> np.ndarray:
        blocks = self.merged_blocks(k)
        return np.concatenate([B.ravel() for B in blocks.values()]) if blocks else np.zeros(0)

    def merged_size(self, k: int) -> int:
        n = 0
        for p1, p2 in self.pair_paths(k):
            T1, T2 = self.cores[k][p1], self.cores[k + 1][p2]
            n += T1.shape[0] * T1.shape[1] * T2.shape[1] * T2.shape[2]
        return n

    def merged_weights(self, k: int) -> np.ndarray:
        """Weights ``2 l_b + 1`` with ``||full supercore||^2 = sum w S^2`` (see :meth:`core_weights`)."""
        out = []
        for p1, p2 in self.pair_paths(k):
            T1, T2 = self.cores[k][p1], self.cores[k + 1][p2]
            out.append(np.full(T1.shape[0] * T1.shape[1] * T2.shape[1] * T2.shape[2], 2.0 * p2[2].l + 1.0))
        return np.concatenate(out) if out else np.zeros(0)

    def two_site_design(self, k, u, x1, x2, w):
        """Design of the supercore of cores ``k, k+1`` (inputs ``x1`` at site k, ``x2`` at k+1)."""
        like = x1[0]
        arr1 = {p: (T, C) for p, T, C in self._arrays(k, like)}
        arr2 = {p: (T, C) for p, T, C in self._arrays(k + 1, like)}
        left, right, cols = {}, {}, []
        for p1, p2 in self.pair_paths(k):
            (a, f1, _), (_, f2, b) = p1, p2
            R, C1 = self.cores[k][p1].shape[:2]
            C2, S = self.cores[k + 1][p2].shape[1:]
            if a not in u or b not in w:
                lead = np.broadcast_shapes(tuple(x1[f1].shape[:-2]), tuple(x2[f2].shape[:-2]))
                cols.append(_zeros(tuple(lead) + (R * C1 * C2 * S,), like))
                continue
            if p1 not in left:
                A = path_left_partial(u[a], x1[f1], arr1[p1][1])  # (..., R, mm, C1)
                A = _swap(A)  # (..., R, C1, mm)
                left[p1] = A.reshape(A.shape[:-3] + (R * C1, A.shape[-1]))
            if p2 not in right:
                B = path_right_partial(x2[f2], w[b], arr2[p2][1])  # (..., mm, C2, S)
                right[p2] = B.reshape(B.shape[:-2] + (C2 * S,))
            d = left[p1] @ right[p2]  # (..., R*C1, C2*S)
            cols.append(d.reshape(d.shape[:-2] + (-1,)))
        return do("concatenate", cols, axis=-1)

    # ------------------------------------------------------------ tangents (forward mode)
    def env_tangents(self, x, dx, L, R, upto, downto):
        """Tangents of the environments for input tangents ``dx`` (blocks ``(n, T, 2l+1, C)``, one
        batch axis ``T`` of tangent directions): ``dL[s]`` for ``s = 0..upto`` and ``dR[s]`` for
        ``s = order..downto`` (dicts irrep -> block, empty where zero), by the product rule
        through the cores.  Block-sparse reference; :meth:`core_rows` is the fast path of one core."""
        xb = [b[:, None] for b in x]
        lift = lambda env: {a: v[:, None] for a, v in env.items()}
        dL = {0: {}}
        for s in range(upto):
            nxt, u, du = {}, lift(L[s]), dL[s]
            for (a, f, b), T, C in self._arrays(s, x[0]):
                for val in ((path_forward(du[a], xb[f], T, C) if a in du else None),
                            (path_forward(u[a], dx[f], T, C) if a in u else None)):
                    if val is not None:
                        _add(nxt, b, val)
            dL[s + 1] = nxt
        dR = {self.order: {}}
        for s in range(self.order - 1, downto - 1, -1):
            nxt, w, dw = {}, lift(R[s + 1]), dR[s + 1]
            for (a, f, b), T, C in self._arrays(s, x[0]):
                for val in ((path_backward(dw[b], xb[f], T, C) if b in dw else None),
                            (path_backward(w[b], dx[f], T, C) if b in w else None)):
                    if val is not None:
                        _add(nxt, a, val)
            dR[s] = nxt
        return dL, dR

    def design_tangent(self, k, sites, x, dx, L, R):
        """``d Phi / dt`` of core ``k`` (or of the supercore ``k, k+1``) for input tangents ``dx``
        (blocks ``(n, T, 2l+1, C)``), by the product rule over the environments and the input
        slots: ``(n, T, P)``.  Block-sparse reference (and the two-site path)."""
        xb = [b[:, None] for b in x]
        lift = lambda env: {a: v[:, None] for a, v in env.items()}
        dL, dR = self.env_tangents(x, dx, L, R, k, k + sites)
        u, du, w, dw = lift(L[k]), dL[k], lift(R[k + sites]), dR[k + sites]
        if sites == 1:
            out = self.site_design(k, u, dx, w)
            if du:
                out = out + self.site_design(k, du, xb, w)
            if dw:
                out = out + self.site_design(k, u, xb, dw)
            return out
        out = self.two_site_design(k, u, dx, xb, w) + self.two_site_design(k, u, xb, dx, w)
        if du:
            out = out + self.two_site_design(k, du, xb, xb, w)
        if dw:
            out = out + self.two_site_design(k, u, xb, xb, dw)
        return out

    def _dense(self, s, like):
        """Full core ``s`` on the array library of ``like`` in the five matrix shapes that the
        dense transfer products use: ``(Df, Dl*Dr)``, ``(Dl, Df*Dr)``, ``(Dr, Df*Dl)``,
        ``(Df, Dr*Dl)`` and ``(Dl*Dr, Df)`` (contiguous, so that every product is one BLAS call
        per batch entry; the fit's rows use the first four, the evaluation
        (:class:`etnpot.evaluation.DenseTT`) the first and the last).
        Cached until a block of the core is replaced (keyed by the block objects)."""
        backend, dtype = infer_backend(like), get_dtype_name(like)
        cache = self.__dict__.setdefault("_dense_cache", {})
        blocks = tuple(self.cores[s].values())
        hit = cache.get((s, backend, dtype))
        if hit is None or len(hit[0]) != len(blocks) or any(a is not b for a, b in zip(hit[0], blocks)):
            G = self.full_core(s)
            Dl, Df, Dr = G.shape
            forms = (G.transpose(1, 0, 2).reshape(Df, Dl * Dr), G.reshape(Dl, Df * Dr),
                     G.transpose(2, 1, 0).reshape(Dr, Df * Dl), G.transpose(1, 2, 0).reshape(Df, Dr * Dl),
                     G.transpose(0, 2, 1).reshape(Dl * Dr, Df))
            if backend != "numpy" or dtype != "float64":
                forms = tuple(do("asarray", np.array(f, dtype=dtype), like=backend) for f in forms)
            hit = (blocks, (Dl, Df, Dr), forms)
            cache[(s, backend, dtype)] = hit
            _freeze(blocks)
        return hit[1], hit[2]

    def _split_flat(self, k, flat):
        """Blocks ``{irrep: (..., 2l+1, R)}`` of bond ``k`` from its flat vector ``(..., dim)``."""
        out, pos = {}, 0
        for ir, m in self.bonds[k]:
            n = ir.dim * m
            out[ir] = flat[..., pos : pos + n].reshape(tuple(flat.shape[:-1]) + (ir.dim, m))
            pos += n
        return out

    def _dense_environments(self, k, xflat, dxflat=None):
        """Flat environments ``L^{(k)}`` ``(n, D_l)``, ``R^{(k+1)}`` ``(n, D_r)`` and their tangents
        ``(n, T, D)`` for the flat input tangents ``dxflat`` ``(n, T, D_f)`` (``None``: the identity,
        ``T = D_f``, i.e. the Jacobians ``dL/dx``, ``dR/dx``); tangents are ``None`` at the ends."""
        n = xflat.shape[0]
        Lf, dLf = _ones_like(xflat, (n,))[:, 0], None  # (n, 1)
        for s in range(k):
            (Dl, Df, Dr), (Gx, GL, _, _, _) = self._dense(s, xflat)
            F = (Lf @ GL).reshape(n, Df, Dr)
            nd = F if dxflat is None else dxflat @ F
            dLf = nd if dLf is None else dLf @ (xflat @ Gx).reshape(n, Dl, Dr) + nd
            Lf = (xflat[:, None, :] @ F)[:, 0]
        Rf, dRf = _ones_like(xflat, (n,))[:, 0], None
        for s in range(self.order - 1, k, -1):
            (Dl, Df, Dr), (_, _, GR, GxT, _) = self._dense(s, xflat)
            H = (Rf @ GR).reshape(n, Df, Dl)
            nd = H if dxflat is None else dxflat @ H
            dRf = nd if dRf is None else dRf @ (xflat @ GxT).reshape(n, Dr, Dl) + nd
            Rf = (xflat[:, None, :] @ H)[:, 0]
        return Lf, dLf, Rf, dRf

    def core_jacobian(self, k, x):
        r"""Design ``Phi^{(k)}`` ``(n, P_k)`` and its Jacobian ``J = d Phi / dx`` ``(n, D_f, P_k)``
        with respect to the flat input (the row order of :meth:`full_core`'s input index).

        ``Phi = sum_p C^p (L (x) x (x) R)`` is linear in each of its three slots, so

        .. math::

            J = \frac{dL}{dx} K_L + K_x + \frac{dR}{dx} K_R ,

        where ``dL/dx`` ``(D_f, D_l)`` and ``dR/dx`` ``(D_f, D_r)`` come from the dense environment
        recursions with the identity as tangents, and the per-atom matrices ``K_L`` ``(D_l, P)``,
        ``K_x`` ``(D_f, P)`` and ``K_R`` ``(D_r, P)`` hold, per path ``p = (a, f, b)``, the other two
        slots contracted with the CG tensor: ``K_L[(m_a, r'), (r, c, s)] = delta_{r r'}
        sum C x_f[m_f, c] R_b[m_b, s]`` and the like.  So ``J`` is two large products per atom,
        whatever the number of paths; the small per-path work only fills ``K``.  The matrices are
        filled by strided slice assignment (numpy, cupy, torch).
        """
        n = x[0].shape[0]
        xflat = do("concatenate", [b.reshape(n, -1) for b in x], axis=1)
        Lf, JL, Rf, JR = self._dense_environments(k, xflat)
        u, w = self._split_flat(k, Lf), self._split_flat(k + 1, Rf)
        phi = self.site_design(k, u, x, w)
        P = self.core_size(k)
        Dl, Dr, Df = Lf.shape[1], Rf.shape[1], xflat.shape[1]
        roff, pos = {}, 0
        for ir, m in self.bonds[k]:
            roff[ir], pos = pos, pos + ir.dim * m
        coff, pos = {}, 0
        for ir, m in self.bonds[k + 1]:
            coff[ir], pos = pos, pos + ir.dim * m
        foff, pos = [], 0
        for ir, c in self.inputs:
            foff.append(pos)
            pos += ir.dim * c
        KL = _zeros((n, Dl, P), xflat) if JL is not None else None
        KR = _zeros((n, Dr, P), xflat) if JR is not None else None
        J = _zeros((n, Df, P), xflat)
        cp = 0
        for p, Tb, C in self._arrays(k, x[0]):
            a, f, b = p
            R, Cf, S = Tb.shape
            ma, mf, mb = C.shape
            blk = R * Cf * S
            if a in u and b in w:
                # the input slot: J[(f, m_f, c), (r, c, s)] = Q[m_f, r, s], Q = sum C L w
                Q = path_input_partial(u[a], w[b], C)  # (n, mf, R, S)
                r0 = foff[f]
                for r in range(R):
                    for c in range(Cf):
                        col = cp + (r * Cf + c) * S
                        J[:, r0 + c : r0 + mf * Cf : Cf, col : col + S] = Q[:, :, r, :]
                if KL is not None:  # K_L[(m_a, r), (r, c, s)] = N[m_a, c, s], N = sum C x w
                    N = path_right_partial(x[f], w[b], C).reshape(n, ma, Cf * S)
                    ra = roff[a]
                    for r in range(R):
                        KL[:, ra + r : ra + ma * R : R, cp + r * Cf * S : cp + (r + 1) * Cf * S] = N
                if KR is not None:  # K_R[(m_b, s), (r, c, s)] = M[r, c, m_b], M = sum C L x
                    M = do("transpose", path_left_partial(u[a], x[f], C), (0, 2, 1, 3)).reshape(n, mb, R * Cf)
                    rb = coff[b]
                    for s_ in range(S):
                        KR[:, rb + s_ : rb + mb * S : S, cp + s_ : cp + blk : S] = M
            cp += blk
        if KL is not None:
            J = J + JL @ KL
        if KR is not None:
            J = J + JR @ KR
        return phi, J

    def core_rows(self, k, x, dx):
        r"""Design ``Phi^{(k)}`` of core ``k`` ``(n, P_k)`` and its tangents ``(n, T, P_k)`` for
        inputs ``x`` (blocks ``(n, 2l+1, C)``) and input tangents ``dx`` (blocks ``(n, T, 2l+1, C)``).

        The fast path of :meth:`design_tangent` (one site), the same numbers.  The environments
        and their tangents run through the *dense* cores ``G_s`` (``(D_l, D_f, D_r)``, see
        :meth:`full_core`): per batch entry the transfer matrix ``E_s = sum_j x_j G_s[:, j, :]``
        and the input transfer ``F_s = sum_a L_s[a] G_s[a, :, :]`` give

        .. math::

            L_{s+1} = L_s E_s, \qquad dL_{s+1} = dL_s E_s + dx\, F_s,

        (and the mirror image for ``R``), so every tangent step is two matrix products per batch
        entry with the ``T`` tangents as rows.  The design of core ``k`` is block-sparse: per
        path ``p = (a, f, b)`` each of the three product-rule terms (``dL``, ``dx`` or ``dR`` in
        its slot) is one product per batch entry with the tangents folded into the rows.
        """
        n = x[0].shape[0]
        T = dx[0].shape[1]
        xflat = do("concatenate", [b.reshape(n, -1) for b in x], axis=1)
        dxflat = do("concatenate", [b.reshape(n, T, -1) for b in dx], axis=2)
        Lf, dLf, Rf, dRf = self._dense_environments(k, xflat, dxflat)
        u, w = self._split_flat(k, Lf), self._split_flat(k + 1, Rf)
        du = self._split_flat(k, dLf) if dLf is not None else {}
        dw = self._split_flat(k + 1, dRf) if dRf is not None else {}
        phi = self.site_design(k, u, x, w)
        tr = lambda a, perm: do("transpose", a, perm)
        # the tangent environments with the tangents folded into the rows, once per irrep
        du_rows = {a: _swap(v).reshape(n, T * v.shape[-1], v.shape[-2]) for a, v in du.items()}  # (n, T R, m)
        dw_cols = {b: tr(v, (0, 2, 1, 3)).reshape(n, v.shape[-2], T * v.shape[-1]) for b, v in dw.items()}  # (n, m, T S)
        blocks = []
        for p, Tb, C in self._arrays(k, x[0]):
            a, f, b = p
            R, Cf, S = Tb.shape
            ma, mf, mb = C.shape
            if a not in u or b not in w:  # an irrep that no path reaches: no entry of the value
                blocks.append(_zeros((n, T, R * Cf * S), x[0]))
                continue
            # the input slot: out[t, r, c, s] = sum_mf dx[t, mf, c] Q[mf, r, s], Q = sum C L w
            Q = path_input_partial(u[a], w[b], C).reshape(n, mf, R * S)
            out = tr((_swap(dx[f]).reshape(n, T * Cf, mf) @ Q).reshape(n, T, Cf, R, S), (0, 1, 3, 2, 4))
            if a in du:  # the left environment's slot: sum_ma dL[t, ma, r] N[ma, c, s], N = sum C x w
                N = path_right_partial(x[f], w[b], C).reshape(n, ma, Cf * S)
                out = out + (du_rows[a] @ N).reshape(n, T, R, Cf, S)
            if b in dw:  # the right environment's slot: sum_mb M[r, c, mb] dR[t, mb, s], M = sum C L x
                M = _swap(path_left_partial(u[a], x[f], C)).reshape(n, R * Cf, mb)
                out = out + tr((M @ dw_cols[b]).reshape(n, R, Cf, T, S), (0, 3, 1, 2, 4))
            blocks.append(out.reshape(n, T, R * Cf * S))
        return phi, do("concatenate", blocks, axis=-1)

    def split_merged(self, k: int, vec, direction: str = "right", max_rank=None, cutoff: float = 0.0) -> dict:
        """Split a supercore vector back into cores ``k, k+1`` by a truncated SVD per middle irrep.

        For every middle irrep ``m`` the blocks form a matrix with rows ``(p1, r, c1)`` and
        columns ``(p2, c2, t)``; columns are scaled by ``sqrt((2l_b+1)/(2l_m+1))`` so that the
        factors come out left-/right-orthogonal in the full-core sense and ``(2l_m+1) sigma^2``
        is a singular value's share of the full tensor's squared norm.  Singular values are
        dropped (smallest share first, across irreps) while the dropped share stays below
        ``cutoff^2`` of the total; each irrep keeps at most ``max_rank`` (int or ``{irrep: int}``).
        ``direction="right"`` leaves core ``k`` left-orthogonal (centre moves to ``k+1``);
        ``"left"`` leaves core ``k+1`` right-orthogonal (centre stays at ``k``).
        Returns ``{"discarded": relative discarded weight, "ranks": {irrep: rank}}``.
        """
        vec = np.asarray(vec, dtype=np.float64)
        pairs = self.pair_paths(k)
        blocks, pos = {}, 0
        for pp in pairs:
            T1, T2 = self.cores[k][pp[0]], self.cores[k + 1][pp[1]]
            shape = (T1.shape[0], T1.shape[1], T2.shape[1], T2.shape[2])
            n = int(np.prod(shape))
            blocks[pp] = vec[pos : pos + n].reshape(shape)
            pos += n
        if pos != vec.size:
            raise ValueError(f"supercore of cores {k},{k+1} has {pos} entries, got {vec.size}")
        mids = sorted({pp[0][2] for pp in pairs})
        svds, shares = {}, []
        for m in mids:
            p1s = sorted({pp[0] for pp in pairs if pp[0][2] == m})
            p2s = sorted({pp[1] for pp in pairs if pp[1][0] == m})
            rsz = [self.cores[k][p].shape[0] * self.cores[k][p].shape[1] for p in p1s]
            csz = [self.cores[k + 1][p].shape[1] * self.cores[k + 1][p].shape[2] for p in p2s]
            M = np.zeros((sum(rsz), sum(csz)))
            scale = np.concatenate([np.full(n, np.sqrt((2 * p[2].l + 1) / (2 * m.l + 1))) for p, n in zip(p2s, csz)])
            r0 = 0
            for p1, nr in zip(p1s, rsz):
                c0 = 0
                for p2, nc in zip(p2s, csz):
                    if (p1, p2) in blocks:
                        M[r0 : r0 + nr, c0 : c0 + nc] = blocks[(p1, p2)].reshape(nr, nc)
                    c0 += nc
                r0 += nr
            U, sv, Vt = np.linalg.svd(M * scale[None, :], full_matrices=False)
            svds[m] = (p1s, p2s, rsz, csz, scale, U, sv, Vt)
            shares += [((2 * m.l + 1) * s * s, m, i) for i, s in enumerate(sv)]
        total = sum(sh for sh, _, _ in shares) or 1.0
        cap = {}
        for m in mids:
            if max_rank is None:
                cap[m] = len(svds[m][6])
            elif isinstance(max_rank, dict):
                cap[m] = int(max_rank.get(m, max_rank.get(str(m), len(svds[m][6]))))
            else:
                cap[m] = int(max_rank)
        smax = max((float(svds[m][6][0]) for m in mids if svds[m][6].size), default=0.0)
        keep = {m: min(cap[m], int(np.sum(svds[m][6] > 1e-13 * smax))) for m in mids}
        discarded = sum((2 * m.l + 1) * float(np.sum(svds[m][6][keep[m]:] ** 2)) for m in mids)
        for sh, m, i in sorted(shares):  # drop further small singular values within the cutoff
            if i >= keep[m] or keep[m] <= 1:
                continue
            if i == keep[m] - 1 and discarded + sh <= cutoff**2 * total:
                keep[m] -= 1
                discarded += sh
        for m in mids:  # never drop an irrep to zero while it carries weight
            keep[m] = max(keep[m], 1 if svds[m][6].size and svds[m][6][0] > 0 else 0)
        new1, new2 = {}, {}
        for m in mids:
            p1s, p2s, rsz, csz, scale, U, sv, Vt = svds[m]
            r = keep[m]
            U, sv, Vt = U[:, :r], sv[:r], Vt[:r]
            if direction == "right":
                left, right = U, (sv[:, None] * Vt) / scale[None, :]
            elif direction == "left":
                left, right = U * sv[None, :], Vt / scale[None, :]
            else:
                raise ValueError(f"direction must be 'right' or 'left', got {direction!r}")
            r0 = 0
            for p1, nr in zip(p1s, rsz):
                sh = self.cores[k][p1].shape
                new1[p1] = left[r0 : r0 + nr].reshape(sh[0], sh[1], r)
                r0 += nr
            c0 = 0
            for p2, nc in zip(p2s, csz):
                sh = self.cores[k + 1][p2].shape
                new2[p2] = right[:, c0 : c0 + nc].reshape(r, sh[1], sh[2])
                c0 += nc
        self.cores[k] = {p: new1[p] for p in self.cores[k] if p in new1}
        self.cores[k + 1] = {p: new2[p] for p in self.cores[k + 1] if p in new2}
        self.set_bond(k + 1, keep)
        return {"discarded": discarded / total, "ranks": {str(m): keep[m] for m in mids}}

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
        self.set_bond(k + 1, new_mult)

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
        self.set_bond(k, new_mult)

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

    def set_bond(self, k, mult):
        """Set the multiplicities of bond ``k`` to ``mult`` (``{irrep: m}``, irreps left out are
        dropped) and drop the blocks of paths that touch a dropped irrep; kept blocks must
        already have the new shapes."""
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

    def input_operator(self, k: int, ops, sites: int = 1):
        """Sparse matrix of the map that applies ``ops[f]`` (``channels_f x channels_f``, or
        ``None`` for zero) to the input-channel index of every block of core ``k`` (columns in
        :meth:`core_vector` order).  With ``sites=2`` it acts on the supercore of cores ``k, k+1``
        (:meth:`merged_vector` order) and stacks the map on the first input over the map on the
        second, so that ``||M x||^2`` sums both sites.  Used for penalties on the input channels
        (a gauge-independent norm at the orthogonality centre, see :meth:`core_weights`)."""
        import scipy.sparse as sp

        def op(f):
            n = self.inputs[f][1]
            return sp.csr_matrix((n, n)) if ops[f] is None else sp.csr_matrix(np.asarray(ops[f], dtype=np.float64))

        if sites == 1:
            blocks = [sp.kron(sp.kron(sp.identity(T.shape[0]), op(p[1])), sp.identity(T.shape[2]))
                      for p, T in self.cores[k].items()]
            return sp.block_diag(blocks, format="csr") if blocks else sp.csr_matrix((0, 0))
        first, second = [], []
        for p1, p2 in self.pair_paths(k):
            r, c1 = self.cores[k][p1].shape[:2]
            c2, t = self.cores[k + 1][p2].shape[1:]
            first.append(sp.kron(sp.kron(sp.identity(r), op(p1[1])), sp.identity(c2 * t)))
            second.append(sp.kron(sp.kron(sp.identity(r * c1), op(p2[1])), sp.identity(t)))
        if not first:
            return sp.csr_matrix((0, 0))
        return sp.vstack([sp.block_diag(first), sp.block_diag(second)], format="csr")

    def norm_squared(self) -> float:
        """Squared Frobenius norm of the full coefficient tensor (any gauge), by a transfer-matrix
        sweep over the dense full cores: ``E <- G^T (E G)`` with matrix products only."""
        E = np.ones((1, 1))
        for k in range(self.order):
            G = self.full_core(k)  # (Dl, n_in, Dr)
            Dl, n, Dr = G.shape
            EG = (E @ G.reshape(Dl, n * Dr)).reshape(Dl * n, Dr)
            E = G.reshape(Dl * n, Dr).T @ EG
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
    if infer_backend(ref) == "numpy":
        return np.ones(tuple(lead) + (1, 1), dtype=ref.dtype)
    return do("ones", tuple(lead) + (1, 1), like=ref, dtype=get_dtype_name(ref))


def _freeze(blocks) -> None:
    """Make core blocks that a cache was built from read-only: the caches are keyed by the block
    objects, so an edit in place (``tt.cores[k][p] *= 3``) would leave them stale.  Such an edit
    now raises numpy's "assignment destination is read-only"; replace the block instead
    (``tt.cores[k][p] = 3 * tt.cores[k][p]``), which every update of a core does."""
    for T in blocks:
        if isinstance(T, np.ndarray):
            T.setflags(write=False)
