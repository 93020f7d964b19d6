"""The fast rows of the fit (etnpot.linearization) against the block-sparse reference."""
import numpy as np
import pytest

import etnpot
from etnpot import linearization as LIN
from etnpot.lstsq import LeastSquares

from fitdata import diverse_cells


@pytest.fixture(scope="module")
def model_and_cells():
    """Order 4, two species, an unnatural-parity bond irrep (1e) next to the natural ones."""
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=4, l_max=2, rank={0: 2, 1: 2, 2: 1, "1e": 1},
                                     n_basis=3, seed=3)
    cells = diverse_cells(3, seed=5)
    pot.basis.normalize(pot.graph(cells))
    assert any(ir.p == 1 and ir.l == 1 for ir, _ in pot.tt.bonds[2])  # 1e survived trimming
    return pot, cells


@pytest.mark.parametrize("method", ["jacobian", "tangents", "auto"])
def test_fast_rows_equal_the_reference_rows_for_every_core(model_and_cells, method):
    pot, cells = model_and_cells
    for k in range(pot.order):
        ref = LIN.core_linear_map(pot, k, cells, method="reference")
        fast = LIN.core_linear_map(pot, k, cells, method=method, memory_mb=0.2)  # several chunks
        for a, b in ((ref.energy_rows, fast.energy_rows), (ref.force_rows, fast.force_rows),
                     (ref.stress_rows, fast.stress_rows)):
            scale = np.abs(a).max()
            assert scale > 0
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * scale)


def test_fast_and_reference_local_solutions_agree(model_and_cells):
    """The same ridge problem from both sets of rows gives the same local solution to 1e-8."""
    pot, cells = model_and_cells
    for k in range(pot.order):
        sols = []
        for method in ("reference", "auto"):
            lm = LIN.core_linear_map(pot, k, cells, method=method)
            A = np.vstack([lm.energy_rows / 8.0, lm.force_rows.reshape(-1, lm.force_rows.shape[-1])])
            y = np.random.default_rng(1).normal(size=A.shape[0])
            ls = LeastSquares(A.shape[1])
            ls.add(A, y)
            # a ridge of 1e-6 of the mean squared column norm keeps the problem's condition moderate
            sols.append(ls.solve(np.full(A.shape[1], 1e-6 * np.sum(A * A) / A.shape[1]))[0])
        assert np.linalg.norm(sols[1] - sols[0]) <= 1e-8 * np.linalg.norm(sols[0])


def test_rows_are_the_derivative_of_the_model(model_and_cells):
    """Negative control for the comparisons above: rows of the wrong core differ from the reference."""
    pot, cells = model_and_cells
    a = LIN.core_linear_map(pot, 1, cells, method="reference").force_rows
    b = LIN.core_linear_map(pot, 2, cells, method="auto").force_rows
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-3 * np.abs(a).max()


def test_unknown_method_is_an_error(model_and_cells):
    pot, cells = model_and_cells
    with pytest.raises(ValueError, match="method"):
        LIN.core_linear_map(pot, 0, cells, method="fast")


def test_rows_do_not_depend_on_the_number_of_threads(model_and_cells):
    """Chunks run on a thread pool as large as the BLAS thread count; the sums are taken in
    order, so the rows are bit for bit those of one thread."""
    from threadpoolctl import threadpool_limits

    pot, cells = model_and_cells
    with threadpool_limits(1):
        one = LIN.core_linear_map(pot, 1, cells, memory_mb=0.2)
    with threadpool_limits(2):
        two = LIN.core_linear_map(pot, 1, cells, memory_mb=0.2)
    assert np.array_equal(one.force_rows, two.force_rows) and np.array_equal(one.energy_rows, two.energy_rows)
