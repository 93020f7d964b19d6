r"""Streaming, numerically stable linear least squares (TSQR).

The local problems of the fit are ``min_x ||A x - y||^2 + sum_i reg_i x_i^2`` with ``A`` far
too tall to hold (rows: every energy, force and stress component of the training set).
Instead of the normal equations ``A^T A`` (which square the condition number: local ETN
problems reach cond(A) ~ 1e7, so normal equations would lose all digits), the rows are
reduced chunk by chunk to a triangular factor:

.. math::

    \begin{bmatrix} R \\ A_c \end{bmatrix} = Q \begin{bmatrix} R' \\ 0 \end{bmatrix},\qquad
    z' = Q^T \begin{bmatrix} z \\ y_c \end{bmatrix},\qquad
    \rho' = \rho + \|z\|^2 + \|y_c\|^2 - \|z'\|^2 = \rho + r'^2,

so that ``||A x - y||^2 = ||R x - z||^2 + rho`` for every ``x``.  One QR of the augmented
matrix ``[[R, z], [A_c, y_c]]`` gives all three: its triangular factor is ``[[R', z'], [0, r']]``,
and ``Q`` is never formed (LAPACK ``geqrf`` only, about half the work of forming ``Q`` and
applying it).  Memory is ``P^2`` (the
parameters), not the data; the reduction is associative, so chunks can be combined in any
order (e.g. on several workers).  The ridge problem is then solved by an SVD of
``[R; diag(sqrt(reg))]``, which also gives the minimum-norm solution of rank-deficient
problems (expected: the same features enter every core, and products commute).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["LeastSquares"]


class LeastSquares:
    """Accumulate rows ``(A, y)``; solve ``min ||A x - y||^2 + sum reg x^2`` stably."""

    def __init__(self, n: int):
        self.n = int(n)
        self.R = np.zeros((0, self.n))
        self.z = np.zeros(0)
        self.rho = 0.0
        self.n_rows = 0

    def add(self, A, y) -> None:
        A = np.asarray(A, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if A.shape[1] != self.n or A.shape[0] != y.shape[0]:
            raise ValueError(f"rows of shape {A.shape} / {y.shape} do not fit a system of {self.n} unknowns")
        if A.shape[0] == 0:
            return
        self.n_rows += A.shape[0]
        # QR of the augmented [[R, z], [A, y]]: only the triangular factor is formed (no Q), and
        # its last column carries the reduced targets and the residual of the rows seen so far
        k0, n = self.R.shape[0], self.n
        S = np.empty((k0 + A.shape[0], n + 1))
        S[:k0, :n], S[:k0, n], S[k0:, :n], S[k0:, n] = self.R, self.z, A, y
        Ra = scipy.linalg.qr(S, mode="r", overwrite_a=True, check_finite=False)[0]
        k = min(Ra.shape[0], n)
        if Ra.shape[0] > n:
            self.rho += float(Ra[n, n] ** 2)
        self.R, self.z = Ra[:k, :n].copy(), Ra[:k, n].copy()

    def merge(self, other: "LeastSquares") -> "LeastSquares":
        """Combine two accumulators (same unknowns): the reduction is associative."""
        self.add(other.R, other.z)
        self.rho += other.rho
        self.n_rows += other.n_rows - other.R.shape[0]
        return self

    def loss(self, x) -> float:
        """``||A x - y||^2`` for any ``x`` (ridge not included)."""
        r = self.R @ x - self.z
        return float(r @ r + max(self.rho, 0.0))

    def solve(self, reg=None, rcond: float = 1e-13, x0=None, penalty=None):
        """Minimizer of ``||A x - y||^2 + sum reg x^2 + ||G x||^2`` (minimum norm if not unique;
        ``penalty``: the matrix ``G``, dense or sparse, or ``None``) and the condition number of
        the (scaled) problem.

        Singular values below ``rcond`` (relative, after column scaling) are dropped.  With
        ``x0``, the result is guaranteed not to be worse than ``x0``: if the minimum-norm
        solution is (because of the dropped directions), the update ``x - x0`` is solved for
        instead, which keeps ``x0``'s component in the dropped directions.
        """
        R, z = self.R, self.z
        if reg is not None:
            reg = np.asarray(reg, dtype=np.float64)
            pos = reg > 0
            if pos.any():
                D = np.zeros((int(pos.sum()), self.n))
                D[np.arange(D.shape[0]), np.flatnonzero(pos)] = np.sqrt(reg[pos])
                R = np.vstack([R, D])
                z = np.concatenate([z, np.zeros(D.shape[0])])
        if penalty is not None:
            G = penalty.toarray() if hasattr(penalty, "toarray") else np.asarray(penalty, dtype=np.float64)
            if G.shape[1] != self.n:
                raise ValueError(f"penalty of shape {G.shape} does not fit a system of {self.n} unknowns")
            R = np.vstack([R, G])
            z = np.concatenate([z, np.zeros(G.shape[0])])
            if R.shape[0] > self.n:  # back to n x n before the SVD (||R x - z|| unchanged up to a constant)
                Ra = scipy.linalg.qr(np.column_stack([R, z]), mode="r", check_finite=False)[0]
                k = min(Ra.shape[0], self.n)
                R, z = Ra[:k, : self.n], Ra[:k, self.n]
        # column (Jacobi) scaling: make every unknown's column unit-norm before the SVD
        cn = np.linalg.norm(R, axis=0)
        scale = np.where(cn > 1e-300, cn, 1.0)
        U, s, Vt = np.linalg.svd(R / scale[None, :], full_matrices=False)
        keep = s > rcond * (s[0] if s.size else 0.0)
        pinv = lambda rhs: Vt[keep].T @ ((U[:, keep].T @ rhs) / s[keep])
        x = pinv(z) / scale
        cond = float(s[0] / s[keep][-1]) if keep.any() else float("inf")
        if x0 is not None:
            x0 = np.asarray(x0, dtype=np.float64)
            obj = lambda v: float(np.sum((R @ v - z) ** 2))
            if obj(x) > obj(x0):
                x = x0 + pinv(z - R @ x0) / scale
        return x, cond
