"""Streamed least squares (etnpot/lstsq.py): agreement with numpy, associativity of merges,
ridge, and the conditioning claim: it recovers a known model where normal equations do not."""
import numpy as np
import pytest

from etnpot.lstsq import LeastSquares


def test_lstsq_matches_numpy_and_merges(rng):
    A, y = rng.normal(size=(300, 20)), rng.normal(size=300)
    A[:, 5] = A[:, 4]  # rank deficient
    ls = LeastSquares(20)
    for s in range(0, 300, 70):
        ls.add(A[s : s + 70], y[s : s + 70])
    x, _ = ls.solve()
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(x, ref, atol=1e-10)
    np.testing.assert_allclose(ls.loss(x), np.sum((A @ x - y) ** 2), rtol=1e-10)
    a, b = LeastSquares(20), LeastSquares(20)
    a.add(A[:150], y[:150])
    b.add(A[150:], y[150:])
    np.testing.assert_allclose(a.merge(b).solve()[0], ref, atol=1e-10)
    reg = np.full(20, 0.5)
    xr, _ = ls.solve(reg)
    np.testing.assert_allclose(xr, np.linalg.solve(A.T @ A + np.diag(reg), A.T @ y), atol=1e-10)


def _ill_conditioned(rng, n_rows=400, n=12, cond=1e9):
    """A tall matrix with singular values log-spaced from 1 to 1/cond and a known model x."""
    U, _ = np.linalg.qr(rng.normal(size=(n_rows, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = (U * np.logspace(0, -np.log10(cond), n)) @ V.T
    x = rng.normal(size=n)
    return A, x, A @ x


def test_streamed_qr_recovers_a_known_model_that_normal_equations_lose(rng):
    """cond(A) = 1e9, as local ETN problems reach (README, "Streamed, stable least squares"): the
    streamed QR recovers x to ~cond * eps; the normal equations (cond^2 = 1e18 > 1/eps) do not."""
    A, x, y = _ill_conditioned(rng)
    ls = LeastSquares(A.shape[1])
    for s in range(0, len(A), 64):
        ls.add(A[s : s + 64], y[s : s + 64])
    xq, cond = ls.solve()
    assert 1e8 < cond < 1e10
    err_qr = np.linalg.norm(xq - x) / np.linalg.norm(x)
    xn = np.linalg.solve(A.T @ A, A.T @ y)
    err_ne = np.linalg.norm(xn - x) / np.linalg.norm(x)
    assert err_qr < 1e-5, err_qr
    assert err_ne > 1e-2, err_ne
    assert err_ne > 1e3 * err_qr


def test_merge_order_does_not_matter(rng):
    """The reduction is associative: ((a b) c) and (a (b c)) give the same solution and loss."""
    A, y = rng.normal(size=(90, 7)), rng.normal(size=90)
    parts = []
    for s in range(0, 90, 30):
        ls = LeastSquares(7)
        ls.add(A[s : s + 30], y[s : s + 30])
        parts.append(ls)
    import copy

    a, b, c = (copy.deepcopy(p) for p in parts)
    left = a.merge(b).merge(c)
    a, b, c = (copy.deepcopy(p) for p in parts)
    right = a.merge(b.merge(c))
    xl, xr = left.solve()[0], right.solve()[0]
    np.testing.assert_allclose(xl, xr, atol=1e-12)
    assert left.n_rows == right.n_rows == 90
    np.testing.assert_allclose(left.loss(xl), np.sum((A @ xl - y) ** 2), rtol=1e-10)


def test_x0_keeps_the_dropped_directions():
    """With rank-deficient rows the minimum-norm solution drops x0's null-space component; with
    x0 the solution is never worse than x0 and keeps that component."""
    A = np.array([[1.0, 1.0], [2.0, 2.0]])
    y = np.array([2.0, 4.0])
    ls = LeastSquares(2)
    ls.add(A, y)
    x, _ = ls.solve()
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-12)
    x0 = np.array([3.0, -1.0])  # already optimal, not minimum-norm
    x1, _ = ls.solve(x0=x0)
    assert ls.loss(x1) <= ls.loss(x0) + 1e-12


def test_bad_shapes():
    with pytest.raises(ValueError, match="do not fit"):
        LeastSquares(3).add(np.zeros((2, 4)), np.zeros(2))
