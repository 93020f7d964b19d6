"""Radial basis: Chebyshev polynomials on ``[r_min, r_cut]`` times a smooth cutoff.

    Q_n(r) = T_n(s(r)) * f_cut(r),      s(r) = (2 r - r_min - r_cut) / (r_cut - r_min),
    f_cut(r) = ((r_cut - r) / (r_cut - r_min))^2   for r < r_cut, else 0.

``T_n`` are Chebyshev polynomials of the first kind (``T_0 = 1, T_1 = s,
T_{n+1} = 2 s T_n - T_{n-1}``); their derivatives follow the same recurrence.  This is the
MTP radial basis (Shapeev 2016; motep's ``RBChebyshev``), chosen because (i) it is the basis
with which a plain ALS-fitted ETN already matched MTP's energy error on Zuo Si, and raw
Chebyshev channels beat whitened mixtures (docs/design-facts.md, facts 1 and 2), (ii) the polynomials are well conditioned on
``[r_min, r_cut]`` and (iii) the quadratic cutoff makes energy *and* forces continuous at
``r_cut``.  Below ``r_min`` the polynomials are simply extrapolated (as MTP does); ``r_min``
is the distance below which the model has seen no data.

Units: distances in Å; derivatives in 1/Å.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ChebyshevBasis", "cutoff_function"]


def cutoff_function(r, r_min: float, r_cut: float):
    """``f_cut(r) = ((r_cut - r)/(r_cut - r_min))^2`` for ``r < r_cut``, else 0; and ``df/dr``."""
    r = np.asarray(r, dtype=np.float64)
    w = r_cut - r_min
    x = np.where(r < r_cut, (r_cut - r) / w, 0.0)
    return x * x, -2.0 * x / w


class ChebyshevBasis:
    """``n_basis`` functions ``Q_n(r) = T_n(s(r)) f_cut(r)``, ``n = 0..n_basis-1``.

    Parameters
    ----------
    n_basis : number of Chebyshev polynomials (>= 1).
    r_min, r_cut : inner and outer distance in Å, ``0 <= r_min < r_cut``.
    """

    def __init__(self, n_basis: int, r_min: float, r_cut: float):
        if int(n_basis) < 1:
            raise ValueError(f"n_basis must be >= 1, got {n_basis}")
        if not (0.0 <= float(r_min) < float(r_cut)):
            raise ValueError(f"need 0 <= r_min < r_cut, got r_min={r_min}, r_cut={r_cut}")
        self.n_basis = int(n_basis)
        self.r_min = float(r_min)
        self.r_cut = float(r_cut)

    def __call__(self, r):
        """Values and derivatives: arrays ``Q, dQ`` of shape ``(len(r), n_basis)``."""
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        w = self.r_cut - self.r_min
        s = (2.0 * r - self.r_min - self.r_cut) / w
        ds = 2.0 / w
        T = np.empty((len(r), self.n_basis))
        dT = np.empty_like(T)
        T[:, 0], dT[:, 0] = 1.0, 0.0
        if self.n_basis > 1:
            T[:, 1], dT[:, 1] = s, ds
        for n in range(2, self.n_basis):
            T[:, n] = 2.0 * s * T[:, n - 1] - T[:, n - 2]
            dT[:, n] = 2.0 * (ds * T[:, n - 1] + s * dT[:, n - 1]) - dT[:, n - 2]
        fc, dfc = cutoff_function(r, self.r_min, self.r_cut)
        return T * fc[:, None], dT * fc[:, None] + T * dfc[:, None]
