"""etnpot.prune: contributions of coupling paths, dropping them, the refit, the CLI."""
import numpy as np
import pytest

import etnpot
from etnpot.prune import drop_zero_paths, path_contributions, prune

from fitdata import teacher_data


@pytest.fixture(scope="module")
def fitted():
    """A teacher model and its own labels: the model is exact on its data."""
    teacher, train, test = teacher_data(order=3, rank=2, n_train=10, n_test=4)
    return teacher, train, test


def _pred(pot, data):
    return pot.compute([c.atoms for c in data])


def test_tolerance_zero_changes_nothing(fitted):
    pot, train, val = fitted
    p = pot.copy()
    before = _pred(p, val)
    rep = prune(p, val, 0.0, train=train)
    after = _pred(p, val)
    assert rep["dropped"] == [] and rep["num_parameters"] == pot.num_parameters
    for key in ("energy", "forces", "stress"):
        assert np.array_equal(before[key], after[key])


def test_contribution_is_the_change_of_the_predictions(fitted):
    """c_p equals the relative change of the forces (or energies) when the block is zeroed."""
    pot, _, val = fitted
    c = path_contributions(pot, val)
    assert len(c) == sum(len(core) for core in pot.tt.cores) and min(c.values()) >= 0
    (k, p), cp = max(c.items(), key=lambda kv: kv[1])
    q = pot.copy()
    q.tt.cores[k][p] = np.zeros_like(q.tt.cores[k][p])
    a, b = _pred(pot, val), _pred(q, val)
    n = np.array([len(x.atoms) for x in val])
    e0 = np.array([pot.e0[pot.species_index(x.atoms.numbers)].sum() for x in val])
    rel_f = np.sqrt(np.mean((a["forces"] - b["forces"]) ** 2)) / np.sqrt(np.mean(a["forces"] ** 2))
    rel_e = np.sqrt(np.mean(((a["energy"] - b["energy"]) / n) ** 2)) / np.sqrt(np.mean(((a["energy"] - e0) / n) ** 2))
    assert cp == pytest.approx(max(rel_e, rel_f), rel=1e-8)


def test_pruning_drops_paths_and_refits(fitted):
    pot, train, val = fitted
    p = pot.copy()
    c = path_contributions(p, val)
    tol = float(np.quantile(list(c.values()), 0.3))  # drop about a third of the paths
    rep = prune(p, val, tol, train=train)
    n_drop = sum(1 for v in c.values() if v < tol)
    assert len(rep["dropped"]) == n_drop > 0
    assert rep["num_parameters"] < rep["num_parameters_before"] == pot.num_parameters
    assert p.num_parameters == rep["num_parameters"]
    for key in rep["dropped"]:  # the dropped paths stay out of the cores
        k = int(key.split(":")[0].split()[1])
        assert key.split(": ")[1] not in [p.tt.path_str(q) for q in p.tt.cores[k]]
    # refitted: no worse on validation than the same paths dropped without the refit (the
    # objective's validation loss decides, as early stopping does)
    from etnpot.metrics import error_table

    cut = pot.copy()
    for (k, q), v in c.items():
        if v < tol:
            del cut.tt.cores[k][q]
    assert rep["validation_loss"] <= rep["validation_loss_without_refit"]
    assert rep["errors_after"]["forces"]["rmse"] <= 1.01 * error_table(cut, val)["forces"]["rmse"]
    # a saved pruned model reloads with zero blocks (same predictions); drop_zero_paths restores it
    q = p.copy()
    assert q.num_parameters >= p.num_parameters
    drop_zero_paths(q)
    assert q.num_parameters == p.num_parameters
    np.testing.assert_allclose(_pred(q, val)["forces"], _pred(p, val)["forces"], rtol=1e-10, atol=1e-12)


def test_negative_tolerance_rejected(fitted):
    pot, _, val = fitted
    with pytest.raises(ValueError, match="tolerance"):
        prune(pot.copy(), val, -1.0)


def test_tolerance_that_empties_a_core_is_refused(fitted):
    """A tolerance above every contribution of a core would leave the model identically zero: a
    clear error, and the model is left as it was."""
    pot, train, val = fitted
    p = pot.copy()
    before = _pred(p, val)
    top = max(path_contributions(p, val).values())
    with pytest.raises(ValueError, match="identically zero"):
        prune(p, val, 2 * top, train=train)
    assert np.array_equal(_pred(p, val)["energy"], before["energy"])


def test_module_function_exported():
    assert etnpot.prune is prune


def test_cli_prune(tmp_path, capsys):
    """``etnpot prune MODEL --tolerance T --config TOML``: data from the fit's configuration,
    the pruned model saved, the report printed and written as JSON."""
    import json

    from etnpot.cli import main
    from test_cli_fit import write_small_data

    from fitdata import fit_toml

    write_small_data(tmp_path)
    (tmp_path / "fit.toml").write_text(fit_toml(order=2, rank=2, sweeps=1, validation_fraction=0.3))
    pot, train, val = teacher_data(order=2, rank=2, n_train=8, n_test=3)
    pot.save(tmp_path / "m.etn")
    out = tmp_path / "p.etn"
    assert main(["prune", str(tmp_path / "m.etn"), "--tolerance", "0", "--config", str(tmp_path / "fit.toml"),
                 "--data-dir", str(tmp_path), "--output", str(out), "--json", str(tmp_path / "r.json"), "-q"]) == 0
    text = capsys.readouterr().out
    assert "dropped 0 coupling paths" in text and "validation after" in text and "µs" in text
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["num_parameters"] == rep["num_parameters_before"] == pot.num_parameters
    q = etnpot.load(out)
    np.testing.assert_array_equal(q.compute([c.atoms for c in val])["forces"], pot.compute([c.atoms for c in val])["forces"])
