"""`etnpot scan`: a grid of fits, the Pareto front, the table and the plots."""
import json

import numpy as np

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


def test_scan_varies_fit_settings_and_weights(tmp_path):
    """Dotted [scan] keys set [fit]/[weights] entries: a huge ridge must change (worsen) the fit."""
    write_small_data(tmp_path)
    cfg = CONFIG.replace("order = 2\nl_max = 2\nrank = 2", "order = 1\nl_max = 1\nrank = 1").replace("sweeps = 2", "sweeps = 1")
    cfg += '\n[scan]\n"fit.ridge" = [1e-10, 1e4]\n"weights.energy" = [100.0]\nselect = "test.forces.rmse"\noutput = "s"\n'
    (tmp_path / "scan.toml").write_text(cfg)
    assert main(["scan", str(tmp_path / "scan.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "s" / "scan.json").read_text())
    assert [r["name"] for r in rows] == ["ridge1e-10_energy100.0", "ridge10000.0_energy100.0"]
    assert [r["fit.ridge"] for r in rows] == [1e-10, 1e4]
    assert rows[1]["test"]["energy"]["rmse"] > rows[0]["test"]["energy"]["rmse"]
