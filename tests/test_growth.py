"""etnpot.growth: function-preserving enlargements, the growth driver, and the [grow] section."""
import json
from importlib import resources

import numpy as np
import pytest

import etnpot
from etnpot.config import ConfigError, validate_config
from etnpot.fit import FitSettings, Weights
from etnpot.growth import (CannotGrow, GrowSettings, grow, grow_basis, grow_l_max, grow_order, grow_rank,
                           plot_growth)

from conftest import rattled_triclinic
from fitdata import diverse_cells, label

STEPS = {
    "rank": lambda p, d: grow_rank(p),
    "rank:1o": lambda p, d: grow_rank(p, "1o"),
    "l_max": lambda p, d: grow_l_max(p, d),
    "n_basis": lambda p, d: grow_basis(p, d),
    "order": lambda p, d: grow_order(p),
}


@pytest.fixture(scope="module")
def model_and_data():
    """A random two-species model (all core entries nonzero, perturbed species weights, feature
    normalization and E0 set) and a few labelled cells for the normalization of new features."""
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=3, l_max=2, rank=2, seed=3, n_basis=4, noise=0.5)
    cells = diverse_cells(6, seed=5)
    pot.basis.normalize(pot.graph(cells))
    pot.e0[:] = [-1.0, -2.0]
    return pot, label(pot, cells)


def _predict(pot, cells):
    r = pot.compute(cells)
    return r["energy"], r["forces"], r["stress"]


@pytest.mark.parametrize("step", list(STEPS))
def test_enlargement_keeps_predictions(model_and_data, step):
    pot, data = model_and_data
    cells = [rattled_triclinic(11), rattled_triclinic(12)]
    before = _predict(pot, cells)
    n_before = pot.num_parameters
    new = STEPS[step](pot, data)
    assert new is not pot and new.tt is not pot.tt and new.basis is not pot.basis
    assert new.num_parameters > n_before
    assert pot.num_parameters == n_before  # the old model is untouched
    for a, b in zip(before, _predict(new, cells)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    # control: giving the new (zero) parameters values does change the predictions
    pert = new.copy()
    rng = np.random.default_rng(0)
    for core in pert.tt.cores:
        for p, T in core.items():
            zero = T == 0.0
            T[zero] = 0.3 * rng.normal(size=int(zero.sum()))
    after = _predict(pert, cells)
    assert np.abs(after[0] - before[0]).max() > 1e-4
    assert np.abs(after[1] - before[1]).max() > 1e-4
    # the grown model saves and loads (its recorded hyper-parameters describe it)
    h = new.metadata["hyperparameters"]
    assert (h["order"], h["l_max"], h["n_basis"], h["n_channels"]) == (
        new.order, new.basis.l_max, new.basis.radial.n_basis, new.basis.n_channels)
    assert new.metadata["grown"] == [step]


@pytest.mark.parametrize("step", ["rank", "l_max", "n_basis", "order"])
def test_warm_start_is_exact(model_and_data, step):
    """The fit of a grown model (normalize=False, E0 kept) starts at the old model's objective."""
    from etnpot.fit import ALSFitter

    pot, data = model_and_data
    new = STEPS[step](pot, data)
    other = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=2, l_max=1, rank=2, seed=9, n_basis=3, noise=0.5)
    other.basis.normalize(other.graph([c.atoms for c in data]))
    data = label(other, [c.atoms for c in data])  # not the model's own labels: a nonzero objective
    kw = dict(weights=Weights(energy=100.0, forces=1.0, stress=1.0), settings=FitSettings(ridge=0.0), e0="keep",
              normalize=False, progress=False)
    old_fit, new_fit = ALSFitter(pot.copy(), data[:4], data[4:], **kw), ALSFitter(new, data[:4], data[4:], **kw)
    assert old_fit.objective() > 1e-3
    assert new_fit.objective() == pytest.approx(old_fit.objective(), rel=1e-10, abs=1e-12)
    assert new_fit.loss.validation_loss() == pytest.approx(old_fit.loss.validation_loss(), rel=1e-10, abs=1e-12)


def test_enlargement_structure(model_and_data, tmp_path):
    pot, data = model_and_data
    L = grow_l_max(pot, data)
    assert L.basis.l_max == 3 and L.tt.inputs[-1] == (etnpot.so3.Irrep(3, -1), pot.basis.n_channels)
    assert all(b.mult(etnpot.so3.Irrep(3, -1)) >= 1 for b in L.tt.bonds[1:-1])
    np.testing.assert_array_equal(L.basis.scale[:3], pot.basis.scale)
    assert L.basis.scale[3].min() > 0 and not np.allclose(L.basis.scale[3], 1.0)  # set from the data
    B = grow_basis(pot, data)
    K = pot.basis.species_rank
    assert B.basis.radial.n_basis == 5 and B.basis.n_channels == pot.basis.n_channels + K
    assert B.tt.inputs[0][1] == B.basis.n_channels + 2  # the indicator channels stay last
    assert not np.allclose(B.basis.scale[:, -K:], 1.0) and np.any(B.basis.shift[:, -K:] != 0)
    O = grow_order(pot)
    assert O.order == 4 and O.tt.bonds[-1] == pot.tt.bonds[-1]
    R = grow_rank(pot)
    assert all(R.tt.bonds[k].mult(ir) >= m for k in range(1, 3) for ir, m in pot.tt.bonds[k])
    # composed steps stay exact and a saved grown model predicts identically
    G = grow_order(grow_basis(grow_l_max(R, data), data))
    cells = [rattled_triclinic(13)]
    for a, b in zip(_predict(pot, cells), _predict(G, cells)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    G.save(tmp_path / "g.etn")
    for a, b in zip(_predict(G, cells), _predict(etnpot.load(tmp_path / "g.etn"), cells)):
        np.testing.assert_array_equal(a, b)
    assert G.metadata["grown"] == ["rank", "l_max", "n_basis", "order"]


def test_cannot_grow():
    one = etnpot.ETNPotential.random(["Si"], r_cut=4.0, order=1, l_max=1, rank=2, n_basis=3)
    with pytest.raises(CannotGrow, match="order-1"):
        grow_rank(one)
    # order 2, one channel: the single bond is capped at the input channels of the last core
    tiny = etnpot.ETNPotential.random(["Si"], r_cut=4.0, order=2, l_max=0, rank=8, n_basis=1)
    with pytest.raises(CannotGrow, match="rank bound"):
        grow_rank(tiny)
    so3 = etnpot.ETNPotential.random(["Si"], r_cut=4.0, order=3, l_max=2, rank=1, n_basis=3, o3=False)
    assert grow_rank(so3, "1e").tt.bonds[1].mult(etnpot.so3.Irrep(1, 0)) == 2  # SO(3): parity ignored


@pytest.mark.parametrize("grow_cfg, key", [
    ({"target_forces_rmse": -0.1}, "target_forces_rmse"),
    ({"target_energy_rmse": -1}, "target_energy_rmse"),
    ({"max_seconds": 0}, "max_seconds"),
    ({"max_parameters": 1.5}, "max_parameters"),
    ({"tol": 2.0}, "tol"),
    ({"steps": ["rank", "depth"]}, "steps"),
    ({"max_paramters": 100}, "max_paramters"),  # unknown key, named, with a suggestion
])
def test_bad_grow_values_name_the_key(grow_cfg, key):
    with pytest.raises(ConfigError, match=key):
        validate_config({"data": {"train": ["x.xyz"]}, "grow": grow_cfg})
    with pytest.raises(ValueError, match=key):
        GrowSettings.from_dict(grow_cfg)
    assert "did you mean 'max_parameters'" in str(pytest.raises(ValueError, GrowSettings.from_dict,
                                                                 {"max_paramters": 1}).value)


def test_budget_below_start_is_an_error(model_and_data):
    pot, data = model_and_data
    with pytest.raises(ValueError, match=rf"max_parameters = 100 is below the starting model's {pot.num_parameters}"):
        grow(pot, data, data, grow_settings={"max_parameters": 100}, progress=False)
    with pytest.raises(ValueError, match="validation"):
        grow(pot, data, [], grow_settings={}, progress=False)


def test_growth_stops_at_target_and_time(model_and_data):
    pot, data = model_and_data  # the data are the model's own labels: zero validation error
    model, growth = grow(pot, data[:4], data[4:], grow_settings={"target_forces_rmse": 1e-6}, fit_start=False,
                         progress=False)
    assert model is pot and len(growth) == 1 and growth[0]["kept"]
    assert pot.metadata["growth"]["stopped"] == "targets met"
    other = pot.copy()
    other.e0 += 0.1  # a nonzero error, but no time left
    model, growth = grow(other, data[:4], data[4:], grow_settings={"max_seconds": 1e-6}, fit_start=False,
                         progress=False, start_seconds=1.0)
    assert model is other and len(growth) == 1 and growth[0]["seconds"] >= 1.0
    assert other.metadata["growth"]["stopped"].startswith("time budget max_seconds")


def test_targets_met():
    gs = GrowSettings(target_forces_rmse=0.1, target_energy_rmse=5.0)
    t = {"energy": {"rmse": 4.0}, "forces": {"rmse": 0.09}}
    assert gs.targets_met(t)
    assert not gs.targets_met({"energy": {"rmse": 6.0}, "forces": {"rmse": 0.09}})
    assert not GrowSettings().targets_met(t)  # no target: growth goes on


def _si_config(tmp_path, grow_cfg):
    data = str(resources.files("etnpot") / "data" / "Si_train.json.xz")
    return {"data": {"train": [data], "validation_fraction": 0.25},
            "model": {"species": ["Si"], "r_cut": 5.0, "r_min": 1.5, "order": 2, "l_max": 1, "rank": 2, "n_basis": 4},
            "fit": {"sweeps": 2, "radial_steps": 0, "active_set": False},
            "output": {"model": str(tmp_path / "m.etn"), "report": str(tmp_path / "report.json")},
            "grow": grow_cfg}


def test_fit_grows_the_si_model(tmp_path):
    """etnpot fit with [grow] on the embedded Si subset: at least two kept steps; the saved model is
    the last kept step; every kept step lowers the validation loss by more than tol."""
    from etnpot.workflow import run_fit

    pot, report = run_fit(_si_config(tmp_path, {"max_parameters": 140, "sweeps": 1, "tol": 0.01}), progress=False,
                          out=lambda s: None)
    rep = json.loads((tmp_path / "report.json").read_text())
    growth = rep["growth"]
    assert growth[0]["step"] == "start" and growth[0]["kept"]
    for g in growth:
        assert set(g) >= {"num_parameters", "validation", "seconds", "kept"}
        assert g["validation"]["forces"]["rmse"] > 0 and g["validation"]["energy"]["rmse"] > 0
        assert g["num_parameters"] <= 140
    kept = [g for g in growth if g["kept"]]
    assert len(kept) >= 3  # the start and at least two growth steps
    for a, b in zip(kept, kept[1:]):
        assert b["validation_loss"] < a["validation_loss"] * (1 - 0.01)
    saved = etnpot.load(tmp_path / "m.etn")
    assert saved.num_parameters == kept[-1]["num_parameters"] == rep["num_parameters"] == pot.num_parameters
    assert rep["validation"]["forces"]["rmse"] == pytest.approx(kept[-1]["validation"]["forces"]["rmse"], rel=1e-12)
    assert kept[-1]["validation"]["forces"]["rmse"] < growth[0]["validation"]["forces"]["rmse"]
    assert rep["growth_plot"] and (tmp_path / "m_growth.png").stat().st_size > 0
    assert saved.metadata["growth"]["stopped"].startswith("no step within max_parameters = 140")
    # a budget below the starting model is an error before any fit
    with pytest.raises(ValueError, match="max_parameters = 50 is below the starting model's 71"):
        run_fit(_si_config(tmp_path, {"max_parameters": 50}), progress=False, out=lambda s: None)


def test_plot_growth(tmp_path):
    pytest.importorskip("matplotlib")
    t = lambda f: {"energy": {"rmse": 10 * f, "mae": f}, "forces": {"rmse": f, "mae": f}}
    growth = [{"step": "start", "num_parameters": 10, "validation": t(0.3), "kept": True},
              {"step": "rank", "num_parameters": 20, "validation": t(0.31), "kept": False},
              {"step": "l_max", "num_parameters": 30, "validation": t(0.2), "kept": True}]
    assert plot_growth(growth, tmp_path / "g.png") == str(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
