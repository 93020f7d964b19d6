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


def _float32_errors(pot, atoms, monkeypatch):
    """(relative total-energy error, largest force error / largest force) of float32 against
    float64, after checking that the float32 run really contracts in float32."""
    a = pot.compute(atoms)
    p32 = pot.copy().to("numpy", "float32")
    seen = []
    from etnpot import evaluation

    real_sparse, real_dense = p32.tt.value_grad_envs, evaluation.DenseTT.value_and_grad
    monkeypatch.setattr(p32.tt, "value_grad_envs", lambda x: seen.append((x[0].dtype, real_sparse(x)[0].dtype)) or real_sparse(x))

    def dense_spy(self, x, *args, **kwargs):
        out = real_dense(self, x, *args, **kwargs)
        seen.append((x.dtype, out[0].dtype))
        return out

    monkeypatch.setattr(evaluation.DenseTT, "value_and_grad", dense_spy)
    b = p32.compute(atoms)
    assert seen and all(d == (np.float32, np.float32) for d in seen), seen
    assert b["forces"].dtype == np.float64  # results are returned in float64
    e = abs(b["energy"][0] - a["energy"][0]) / abs(a["energy"][0])
    f = np.abs(b["forces"] - a["forces"]).max() / np.abs(a["forces"]).max()
    return e, f


def test_float32_error_random_model(pot4, monkeypatch):
    """The cast happens (float32 contractions, a non-zero error) and the error is that of float32
    rounding on a random model: ~1e-7 relative (docs/float32_error.py)."""
    e, f = _float32_errors(pot4, rattled_triclinic(4), monkeypatch)
    assert 0 < e < 1e-6 and 0 < f < 1e-6, (e, f)


def test_float32_error_on_the_worst_committed_fit(monkeypatch):
    """The README's bound, measured by docs/float32_error.py on the committed fits: the worst is
    the order-4 Mo fit (relative total energy 4e-6, forces 3e-3 of the largest force)."""
    import os

    from ase.build import bulk

    import etnpot

    pot = etnpot.load(os.path.join(os.path.dirname(__file__), "..", "fitting", "zuo2020", "Mo_d4_r4.etn"))
    atoms = bulk("Mo", "bcc", a=3.15, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    e, f = _float32_errors(pot, atoms, monkeypatch)
    assert 0 < e < 1e-5 and 1e-5 < f < 5e-3, (e, f)


def test_fit_on_torch_equals_fit_on_numpy():
    """The same fit on either library predicts the same (the cores agree to ~1e-7: last-bit
    differences of the two libraries' matrix products, amplified by ill-conditioned local solves)."""
    teacher, train, test = teacher_data(order=2, rank=2, noise=0.3, n_train=6, n_test=2)
    pots = []
    for backend in ("numpy", "torch"):
        s = student_for(teacher, order=2, rank=2, noise=0.1).to(backend)
        # ridge pinned: with the default 1e-8 the local solves amplify the libraries' last-bit differences
        # to ~3e-9 relative in energy (1e-10 with 1e-7); the test is about the dispatch, not the ridge
        ALSFitter(s, train, settings=FitSettings(sweeps=2, radial_steps=0, ridge=1e-7), normalize=False,
                  progress=False).run()
        pots.append(s)
    a, b = (p.to("numpy").compute([c.atoms for c in test]) for p in pots)
    np.testing.assert_allclose(b["energy"], a["energy"], rtol=1e-9)
    np.testing.assert_allclose(b["forces"], a["forces"], atol=1e-6 * np.abs(a["forces"]).max())


def test_unknown_backend_is_a_clear_error(pot4):
    with pytest.raises(ImportError):
        pot4.copy().to("no_such_array_library")
    with pytest.raises(ValueError, match="dtype"):
        pot4.copy().to("numpy", "float16")
