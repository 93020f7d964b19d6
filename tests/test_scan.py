"""`etnpot scan`: a grid of fits, the Pareto front, the table and the plots."""
import json

import numpy as np
import pytest

from etnpot.cli import main
from etnpot.scan import pareto_front

from test_cli_fit import CONFIG, write_small_data


def test_pareto_front():
    params = [10, 20, 30, 40, 15]
    errors = [5.0, 3.0, 3.5, 1.0, 6.0]
    assert pareto_front(params, errors) == [0, 1, 3]


def test_scan_cli(tmp_path, capsys):
    write_small_data(tmp_path)
    cfg = CONFIG.replace("order = 2\nl_max = 2\nrank = 2", "order = 2\nl_max = 1\nrank = 1")
    cfg = cfg.replace("sweeps = 2", "sweeps = 1")
    cfg += '\n[scan]\norder = [1, 2]\nrank = [1, 2]\nselect = "test.forces.rmse"\noutput = "scan"\n'
    (tmp_path / "scan.toml").write_text(cfg)
    assert main(["scan", str(tmp_path / "scan.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "scan" / "scan.json").read_text())
    assert len(rows) == 4 and sum(r.get("chosen", False) for r in rows) == 1
    assert all(r["parameters"] > 0 and r["eval_us_per_atom"] > 0 for r in rows)
    front = [r for r in rows if r["pareto"]]
    errs = [r["selected_error"] for r in front]
    assert front and all(np.diff([r["parameters"] for r in front]) >= 0) and errs == sorted(errs, reverse=True)
    table = (tmp_path / "scan" / "scan.md").read_text()
    assert "(chosen)" in table and table.count("\n| order") == 4
    for png in ("error_vs_parameters.png", "error_vs_cost.png", "parity.png"):
        assert (tmp_path / "scan" / png).stat().st_size > 1000


def test_scan_rejects_unknown_keys(tmp_path, capsys):
    write_small_data(tmp_path)
    (tmp_path / "s.toml").write_text(CONFIG + "\n[scan]\nsweeps = [1, 2]\n")
    assert main(["scan", str(tmp_path / "s.toml"), "-q", "--data-dir", str(tmp_path)]) == 2
    assert "[scan] can vary" in capsys.readouterr().err


def _small_scan(tmp_path, scan_section, output):
    """``etnpot scan`` of a one-sweep order-1 model on the small teacher data with ``[scan]``
    ``scan_section``; returns the rows of ``output/scan.json`` and the config text."""
    write_small_data(tmp_path)
    cfg = CONFIG.replace("order = 2\nl_max = 2\nrank = 2", "order = 1\nl_max = 1\nrank = 1").replace("sweeps = 2", "sweeps = 1")
    cfg += "\n[scan]\n" + scan_section
    (tmp_path / "scan.toml").write_text(cfg)
    assert main(["scan", str(tmp_path / "scan.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    return json.loads((tmp_path / output / "scan.json").read_text()), cfg


def test_scan_varies_fit_settings_and_weights(tmp_path):
    """Dotted [scan] keys set [fit]/[weights] entries: a huge ridge must change (worsen) the fit."""
    rows, _ = _small_scan(tmp_path, '"fit.ridge" = [1e-10, 1e4]\n"weights.energy" = [100.0]\nselect = "test.forces.rmse"\n'
                             'output = "s"\n', "s")
    assert [r["name"] for r in rows] == ["ridge1e-10_energy100.0", "ridge10000.0_energy100.0"]
    assert [r["fit.ridge"] for r in rows] == [1e-10, 1e4]
    assert rows[1]["test"]["energy"]["rmse"] > rows[0]["test"]["energy"]["rmse"]


def test_scan_varies_the_species_tie(tmp_path):
    """``"fit.species_tie"`` is a scan key like the ridge: its value reaches the row and the fit."""
    rows, _ = _small_scan(tmp_path, '"fit.species_tie" = [0.0, "auto"]\noutput = "t"\n', "t")
    assert [r["fit.species_tie"] for r in rows] == [0.0, "auto"]


def test_scan_with_folds_averages_the_validation_folds(tmp_path):
    """[scan] folds = 2: every combination is fitted once per fold; the row's validation errors
    are the means of the folds' tables, whose validation sets partition the training data."""
    from etnpot.config import ConfigError, validate_config
    from etnpot.data import read_dataset

    rows, cfg = _small_scan(tmp_path, 'rank = [1, 2]\nfolds = 2\noutput = "cv"\n', "cv")
    n_train = len(read_dataset(str(tmp_path / "train.xyz")))
    assert len(rows) == 2
    for r in rows:
        assert len(r["folds"]) == 2 and sum(f["n_configs"] for f in r["folds"]) == n_train
        for q in ("energy", "forces"):
            assert np.isclose(r["validation"][q]["rmse"], np.mean([f[q]["rmse"] for f in r["folds"]]))
        assert all((tmp_path / "cv" / f"{r['name']}_fold{k}.etn").exists() for k in range(2))
    (tmp_path / "bad.toml").write_text(cfg.replace("folds = 2", "folds = 1"))
    assert main(["scan", str(tmp_path / "bad.toml"), "-q", "--data-dir", str(tmp_path)]) == 2
    for bad in ([2, 2], [0], "0/5", [True, 2]):
        with pytest.raises(ConfigError, match="validation_fold"):
            validate_config({"data": {"train": ["x.xyz"], "validation_fold": bad}})


def test_folds_partition_the_data_stratified_by_config_type():
    """fold_indices: disjoint folds covering every configuration, sizes within one, every config
    type with at least `folds` members in every fold, the same folds for the same seed.  Negative
    control: a plain random split of the same data leaves a type out of a fold."""
    from etnpot.data import fold_indices

    types = ["AIMD"] * 108 + ["Elastic"] * 56 + ["Vacancy"] * 21 + ["Surface"] * 9  # Zuo Mo's training set
    folds = [fold_indices(types, k, 3, seed=0) for k in range(3)]
    assert set().union(*folds) == set(range(len(types))) and sum(len(f) for f in folds) == len(types)
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 1
    for f in folds:
        assert {types[i] for i in f} == {"AIMD", "Elastic", "Vacancy", "Surface"}
        assert sum(types[i] == "Surface" for i in f) == 3
    assert folds[1] == fold_indices(types, 1, 3, seed=0) and folds[1] != fold_indices(types, 1, 3, seed=1)
    rare = types[:-6]  # three surfaces: one in each stratified fold, while unstratified folds miss them
    assert [sum(rare[i] == "Surface" for i in fold_indices(rare, k, 3)) for k in range(3)] == [1, 1, 1]
    plain = np.array_split(np.random.default_rng(0).permutation(len(rare)), 3)
    assert min(sum(rare[i] == "Surface" for i in p) for p in plain) == 0
    with pytest.raises(ValueError, match="folds"):
        fold_indices(types, 3, 3)
