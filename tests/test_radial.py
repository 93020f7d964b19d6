import numpy as np
import pytest

from etnpot.radial import ChebyshevBasis, cutoff_function


def test_radial_derivatives_fd():
    b = ChebyshevBasis(8, 1.2, 5.0)
    r = np.linspace(0.8, 5.3, 61)
    Q, dQ = b(r)
    h = 1e-6
    fd = (b(r + h)[0] - b(r - h)[0]) / (2 * h)
    np.testing.assert_allclose(dQ, fd, atol=1e-7)


def test_cutoff_smooth_at_rcut():
    b = ChebyshevBasis(6, 1.0, 4.5)
    Q, dQ = b(np.array([4.5 - 1e-9, 4.5, 4.6]))
    assert np.abs(Q).max() < 1e-15 and np.abs(dQ).max() < 1e-7
    f, df = cutoff_function(np.array([1.0, 4.5]), 1.0, 4.5)
    assert f[0] == 1.0 and f[1] == 0.0 and df[1] == 0.0


def test_first_functions_are_chebyshev():
    b = ChebyshevBasis(3, 0.0, 2.0)
    r = np.array([0.5])
    Q, _ = b(r)
    fc = ((2.0 - 0.5) / 2.0) ** 2
    s = (2 * 0.5 - 2.0) / 2.0
    np.testing.assert_allclose(Q[0], [fc, s * fc, (2 * s * s - 1) * fc])


@pytest.mark.parametrize("args", [(0, 1.0, 5.0), (4, 5.0, 5.0), (4, -1.0, 5.0), (4, 3.0, 2.0)])
def test_bad_parameters(args):
    with pytest.raises(ValueError):
        ChebyshevBasis(*args)
