"""Array-backend dispatch of the contractions (autoray): a second array library (torch, CPU build)
gives the same numbers as numpy, and the contractions really run on it."""
import numpy as np
import pytest

from etnpot.fit import ALSFitter, FitSettings

from conftest import random_cluster, rattled_triclinic
from fitdata import student_for, teacher_data

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def pair(pot4):
    return pot4, pot4.copy().to("torch")


def test_contractions_run_on_the_backend(pair):
    _, pt = pair
    blocks, _ = pt.basis.compute(pt.graph([rattled_triclinic(1)]))
    x = [pt._dev(b) for b in blocks]
    assert all(isinstance(b, torch.Tensor) for b in x)
    v, g = pt.tt.value_and_input_grad(x)
    assert isinstance(v, torch.Tensor) and all(isinstance(gi, torch.Tensor) for gi in g)
    L = pt.tt.left_environments(x, upto=2)
    R = pt.tt.right_environments(x, downto=3)
    assert isinstance(pt.tt.site_design(2, L[2], x, R[3]), torch.Tensor)


def test_same_numbers_as_numpy(pair):
    pn, pt = pair
    configs = [rattled_triclinic(2), random_cluster(3)]
    a, b = pn.compute(configs), pt.compute(configs)
    for key in ("energy", "energies", "forces", "stresses"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-10, atol=1e-12)
    for k in (0, 2):
        la, lb = pn.core_linear_map(k, configs), pt.core_linear_map(k, configs)
        np.testing.assert_allclose(lb.energy_rows, la.energy_rows, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lb.force_rows, la.force_rows, rtol=1e-10, atol=1e-12)
    sa, sb = pn.supercore_linear_map(1, configs[:1]), pt.supercore_linear_map(1, configs[:1])
    np.testing.assert_allclose(sb.force_rows, sa.force_rows, rtol=1e-10, atol=1e-12)


def test_float32_error_is_small(pot4):
    configs = [rattled_triclinic(4)]
    a = pot4.compute(configs)
    b = pot4.copy().to("numpy", "float32").compute(configs)
    assert np.abs(b["forces"] - a["forces"]).max() < 1e-5 * np.abs(a["forces"]).max()
    assert abs(b["energy"][0] - a["energy"][0]) < 1e-5 * abs(a["energy"][0])


def test_fit_on_torch_equals_fit_on_numpy():
    """The same fit on either library predicts the same (the cores agree to ~1e-7: last-bit
    differences of the two libraries' matrix products, amplified by ill-conditioned local solves)."""
    teacher, train, test = teacher_data(order=2, rank=2, noise=0.3, n_train=6, n_test=2)
    pots = []
    for backend in ("numpy", "torch"):
        s = student_for(teacher, order=2, rank=2, noise=0.1).to(backend)
        ALSFitter(s, train, settings=FitSettings(sweeps=2, radial_steps=0), normalize=False, progress=False).run()
        pots.append(s)
    a, b = (p.to("numpy").compute([c.atoms for c in test]) for p in pots)
    np.testing.assert_allclose(b["energy"], a["energy"], rtol=1e-9)
    np.testing.assert_allclose(b["forces"], a["forces"], atol=1e-6 * np.abs(a["forces"]).max())


def test_unknown_backend_is_a_clear_error(pot4):
    with pytest.raises(ImportError):
        pot4.copy().to("no_such_array_library")
    with pytest.raises(ValueError, match="dtype"):
        pot4.copy().to("numpy", "float16")
