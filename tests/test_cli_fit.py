"""`etnpot fit` from a TOML config, `etnpot eval --json` contract, config errors with suggestions."""
import json

import numpy as np
import pytest

from etnpot.cli import main
from etnpot.config import ConfigError, validate_config

from fitdata import teacher_data


def write_small_data(tmp_path):
    from ase.io import write

    teacher, train, test = teacher_data(order=2, rank=2, n_train=8, n_test=3)
    for name, data in (("train.xyz", train), ("test.xyz", test)):
        frames = []
        for c in data:
            a = c.atoms.copy()
            a.info["REF_energy"] = c.energy
            a.info["REF_stress"] = c.stress
            a.info["config_type"] = c.config_type
            a.arrays["REF_forces"] = c.forces
            frames.append(a)
        write(tmp_path / name, frames, format="extxyz")


CONFIG = """
[data]
train = ["train.xyz"]
test = ["test.xyz"]
validation_fraction = 0.2
energy_key = "REF_energy"
forces_key = "REF_forces"
stress_key = "REF_stress"

[model]
r_cut = 3.8
order = 2
l_max = 2
rank = 2
n_basis = 4

[fit]
sweeps = 2
ridge = 1e-8

[weights]
energy = 1000.0
forces = 1.0
stress = 10.0

[output]
model = "m.etn"
checkpoint = "m.ckpt"
report = "report.json"
"""


def test_fit_eval_info_round_trip(tmp_path, capsys):
    write_small_data(tmp_path)
    (tmp_path / "fit.toml").write_text(CONFIG)
    assert main(["fit", str(tmp_path / "fit.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test errors" in out and (tmp_path / "m.etn").exists() and (tmp_path / "m.ckpt").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["num_parameters"] > 0 and report["test"]["n_configs"] == 3
    # the convergence record: one entry per sweep, the restored sweep's validation errors are the report's
    assert [h["sweep"] for h in report["history"]] == list(range(len(report["history"]))) and report["history"]
    best = report["history"][report["best_sweep"]]
    assert best["validation_loss"] == min(h["validation_loss"] for h in report["history"])
    assert best["validation"]["forces"]["rmse"] == pytest.approx(report["validation"]["forces"]["rmse"], rel=1e-10)
    assert 10 < report["peak_rss_mb"] < 1e5  # this process's peak memory, MB
    js = tmp_path / "eval.json"
    assert main(["eval", str(tmp_path / "m.etn"), str(tmp_path / "test.xyz"), "--energy-key", "REF_energy",
                 "--forces-key", "REF_forces", "--stress-key", "REF_stress", "--json", str(js),
                 "--output", str(tmp_path / "pred.xyz")]) == 0
    table = json.loads(js.read_text())
    assert table["n_configs"] == 3
    # two species: the fit recorded the species environments, and eval reports the new ones
    assert set(table["unseen_species_environments"]) == {"atoms", "configurations"}
    assert "species environments never seen in training" in capsys.readouterr().out
    for key in ("energy", "forces", "stress"):
        assert set(table[key]) == {"rmse", "mae"}
    assert set(table["by_config_type"]) == {"even", "odd"}
    assert table["energy"]["mae"] == pytest.approx(report["test"]["energy"]["mae"], rel=1e-12)
    from ase.io import read

    frames = read(tmp_path / "pred.xyz", ":")
    assert "ETN_energy" in frames[0].info and "ETN_forces" in frames[0].arrays
    assert main(["info", str(tmp_path / "m.etn")]) == 0
    assert "fit" in capsys.readouterr().out


def test_eval_mlearn_json_without_stress_weights(tmp_path):
    from etnpot import ETNPotential
    from importlib import resources

    pot = ETNPotential.random(["Si"], r_cut=4.0, order=2, l_max=1, rank=1, seed=0)
    pot.save(tmp_path / "m.etn")
    path = resources.files("etnpot") / "data" / "Si_test.json.xz"
    js = tmp_path / "e.json"
    assert main(["eval", str(tmp_path / "m.etn"), str(path), "--json", str(js)]) == 0
    t = json.loads(js.read_text())
    assert t["n_configs"] == 25 and t["stress"] is not None and "Elastic" in t["by_config_type"]


@pytest.mark.parametrize("cfg, msg", [
    ({"data": {"train": ["x"]}, "modle": {}}, r"unknown section \[modle\]; did you mean \[model\]"),
    ({"data": {"train": ["x"], "tran": []}}, "unknown key 'tran' in \\[data\\]; did you mean 'train'"),
    ({"data": {"train": ["x"]}, "fit": {"sweps": 3}}, "did you mean 'sweeps'"),
    ({"data": {"train": []}}, "at least one file"),
    ({"data": {"train": ["x"]}, "model": {"order": 0}}, "order must be an integer >= 1"),
    ({"data": {"train": ["x"]}, "model": {"l_max": -1}}, "l_max must be an integer >= 0"),
    ({"data": {"train": ["x"]}, "model": {"r_cut": 3.0, "r_min": 3.5}}, "r_min < r_cut"),
    ({"data": {"train": ["x"]}, "weights": {"forces": -1}}, "forces must be a number >= 0"),
])
def test_config_errors(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_config(cfg)


def test_fit_cli_reports_missing_data(tmp_path, capsys):
    (tmp_path / "fit.toml").write_text(CONFIG)
    assert main(["fit", str(tmp_path / "fit.toml"), "-q", "--data-dir", str(tmp_path)]) == 2
    assert "data file not found" in capsys.readouterr().err


def test_data_next_to_the_config_is_found_where_a_data_root_exists(tmp_path, monkeypatch, capsys):
    """A config naming "train.xyz" beside it fits even when $ETNPOT_DATA (or ../shared/data) is a
    data root without that file: relative paths are looked up under the root, then beside the config."""
    root = tmp_path / "shared_data"
    root.mkdir()
    monkeypatch.setenv("ETNPOT_DATA", str(root))
    work = tmp_path / "mysystem"
    work.mkdir()
    write_small_data(work)
    (work / "fit.toml").write_text(CONFIG.replace("sweeps = 2", "sweeps = 1"))
    assert main(["fit", str(work / "fit.toml"), "-q"]) == 0
    assert (work / "m.etn").exists()
    (work / "fit.toml").write_text(CONFIG.replace('"train.xyz"', '"missing.xyz"'))
    assert main(["fit", str(work / "fit.toml"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "missing.xyz" in err and str(root) in err and str(work) in err  # both places named


def test_fixed_test_split_by_names(tmp_path):
    """[data] test_list holds out named configurations (<group>/<file>) of the training files as test."""
    from etnpot.config import validate_config
    from etnpot.workflow import read_splits, run_fit

    d = tmp_path / "JSON"
    rng = np.random.default_rng(0)
    for g in ("EOS", "Shear"):
        (d / g).mkdir(parents=True)
        for k in range(3):
            a = 2.6 + 0.05 * k + (0.1 if g == "Shear" else 0)
            cfg = {"Dataset": {"Data": [{"AtomTypes": ["In", "P"], "NumAtoms": 2,
                                         "Lattice": [[0, a, a], [a, 0, a], [a, a, 0]],
                                         "Positions": [[0, 0, 0], (np.array([a, a, a]) / 2 + 0.05 * rng.normal(size=3)).tolist()],
                                         "Energy": -7.0 - 0.1 * k, "Forces": [[0.1, 0, 0], [-0.1, 0, 0]],
                                         "Stress": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}]}}
            (d / g / f"c{k}.json").write_text("# Header\n" + json.dumps(cfg))
    (tmp_path / "split.txt").write_text("# test configurations\nEOS/c1.json\nShear/c2.json\n")
    cfg = validate_config({"data": {"train": ["JSON"], "test_list": "split.txt", "validation_fraction": 0.0},
                           "model": {"species": ["In", "P"], "order": 1, "l_max": 1, "rank": 1, "n_basis": 3},
                           "fit": {"sweeps": 1, "active_set": False},
                           "output": {"model": str(tmp_path / "m.etn")}})
    _, report = run_fit(cfg, data_dir=str(tmp_path), progress=False)
    assert report["test"]["n_configs"] == 2 and report["train"]["n_configs"] == 4
    # read_splits hands other codes (the peer fits) exactly the configurations run_fit used
    train, validation, test = read_splits(cfg, data_dir=str(tmp_path))
    assert sorted(c.info["name"] for c in test) == ["EOS/c1.json", "Shear/c2.json"]
    assert len(train) == 4 and not validation and not {c.info["name"] for c in train} & {"EOS/c1.json", "Shear/c2.json"}
    cfg_v = {**cfg, "data": {**cfg["data"], "validation_fraction": 0.25}}
    train_v, validation_v, _ = read_splits(cfg_v, data_dir=str(tmp_path))
    assert len(train_v) == 3 and len(validation_v) == 1
    (tmp_path / "split.txt").write_text("EOS/missing.json\n")
    with pytest.raises(ValueError, match="1 listed test configurations are not in the training files"):
        run_fit(cfg, data_dir=str(tmp_path), progress=False)


@pytest.mark.parametrize("change, msg", [
    ("r_min = 1.0", "r_min = 1.14 in the checkpoint, 1.0 requested"),
    ("n_channels = 3", "n_channels = 8 in the checkpoint, 3 requested"),
    ("species_rank = 1", "species_rank = 2 in the checkpoint, 1 requested"),
    ("bond_l_max = 1", r"bonds \[.*2x2e.*\] in the checkpoint, \[.*\] requested"),
])
def test_resume_refuses_a_checkpoint_of_other_hyperparameters(tmp_path, change, msg):
    """--resume compares the resolved hyper-parameters: a checkpoint fitted with defaults (r_min =
    0.3 r_cut, n_channels and species_rank from the species, bond_l_max = l_max) is refused when
    the config asks for another value, and accepted when the config spells out the defaults."""
    from etnpot.config import load_config
    from etnpot.workflow import run_fit

    write_small_data(tmp_path)
    cfg = CONFIG.replace("sweeps = 2", "sweeps = 1")
    (tmp_path / "a.toml").write_text(cfg)
    run = lambda toml, resume=True: run_fit(load_config(tmp_path / toml), data_dir=str(tmp_path), resume=resume,
                                            progress=False, out=lambda s: None)
    run("a.toml", resume=False)  # a fresh fit that writes m.ckpt
    assert (tmp_path / "m.ckpt").exists()
    (tmp_path / "b.toml").write_text(cfg.replace("[model]", f"[model]\n{change}"))
    with pytest.raises(ValueError, match="checkpoint of a different model: .*" + msg):
        run("b.toml")
    # the defaults written out are the same model
    explicit = "r_min = 1.14\nn_channels = 8\nspecies_rank = 2\nbond_l_max = 2"
    (tmp_path / "c.toml").write_text(cfg.replace("[model]", f"[model]\n{explicit}"))
    run("c.toml")


def test_distributed_fit_refuses_a_test_list(tmp_path):
    """A fixed test list is applied by the local reader only: a distributed fit would train on the
    listed test configurations, so it is refused before any worker starts."""
    from etnpot.workflow import run_fit

    cfg = {"data": {"train": [str(tmp_path / "train.xyz")], "test_list": "split.txt"},
           "distributed": {"scheduler": "local"}}
    with pytest.raises(ConfigError, match=r"test_list is not supported with \[distributed\]"):
        run_fit(cfg, progress=False)


def test_thin_data_fit_smaller_models_and_keep_the_best_on_validation(tmp_path, capsys):
    """[fit] size_to_data: the small teacher set gives fewer than 5 rows per parameter of the
    l_max 2 model, so the fit also fits l_max 1 and keeps the lower validation loss; the saved
    model is the kept candidate, and switching it off fits the config's model only."""
    from etnpot import load
    from etnpot.sizing import smaller_models, training_rows
    from etnpot.data import read_dataset
    from etnpot.objective import Weights

    write_small_data(tmp_path)
    train = read_dataset(str(tmp_path / "train.xyz"), energy_key="REF_energy", forces_key="REF_forces",
                         stress_key="REF_stress")
    rows = training_rows(train, Weights(energy=1.0, forces=1.0, stress=10.0))
    assert rows == len(train) * 7 + 3 * sum(len(c.atoms) for c in train)
    model = dict(r_cut=3.8, order=2, l_max=3, rank=2, n_basis=4)
    species = sorted({s for c in train for s in c.atoms.get_chemical_symbols()})
    assert [m["l_max"] for m in smaller_models(species, model, rows)] == [2, 1]
    assert smaller_models(species, model, 10 ** 9) == []

    cfg = tmp_path / "fit.toml"
    cfg.write_text(CONFIG.replace("sweeps = 2", "sweeps = 1"))
    assert main(["fit", str(cfg), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    choice = report["model_choice"]
    assert [c["l_max"] for c in choice] == [2, 1]
    assert sum(c["kept"] for c in choice) == 1
    kept = next(c for c in choice if c["kept"])
    assert kept["validation_loss"] == min(c["validation_loss"] for c in choice)
    assert all(c["rows_per_parameter"] < 5 for c in choice[:1])
    pot = load(str(tmp_path / "m.etn"))
    assert pot.num_parameters == kept["num_parameters"] == report["num_parameters"]
    assert pot.metadata["hyperparameters"]["l_max"] == kept["l_max"]

    cfg.write_text(CONFIG.replace("sweeps = 2", "sweeps = 1\nsize_to_data = false"))
    assert main(["fit", str(cfg), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert "model_choice" not in report and load(str(tmp_path / "m.etn")).metadata["hyperparameters"]["l_max"] == 2
    with pytest.raises(ConfigError, match="size_to_data"):
        validate_config({"data": {"train": ["x.xyz"]}, "fit": {"size_to_data": "yes"}})
    cfg.write_text(CONFIG.replace("validation_fraction = 0.2", "validation_fold = [1, 50]"))
    capsys.readouterr()
    assert main(["fit", str(cfg), "-q"]) == 2  # more folds than configurations: an error naming the key
    assert "validation_fold" in capsys.readouterr().err


def test_a_resumed_fit_reports_the_time_of_the_whole_fit(tmp_path):
    """The checkpoint records the fit's wall seconds so far; the report of a resumed fit adds
    them (``fit_seconds_before_resume``) to this run's."""
    import etnpot

    write_small_data(tmp_path)
    cfg = tmp_path / "fit.toml"
    cfg.write_text(CONFIG.replace("sweeps = 2", "sweeps = 1\nsize_to_data = false"))
    assert main(["fit", str(cfg), "-q"]) == 0
    first = json.loads((tmp_path / "report.json").read_text())
    assert first["fit_seconds_before_resume"] == 0.0
    saved = etnpot.load(str(tmp_path / "m.ckpt")).metadata["fit_state"]["seconds"]
    assert 0 < saved <= first["fit_seconds"]
    cfg.write_text(CONFIG.replace("sweeps = 2", "sweeps = 3\nsize_to_data = false"))
    assert main(["fit", str(cfg), "-q", "--resume"]) == 0
    resumed = json.loads((tmp_path / "report.json").read_text())
    assert resumed["fit_seconds_before_resume"] == saved and resumed["fit_seconds"] > saved


def test_order4_alternative_is_offered_only_for_the_default_shape_of_several_species():
    """``[fit] try_order4``: "auto" offers order 4 (non-scalar ranks one less) beside an order-3 model with
    an integer rank and several species; ``True`` for one species too; never for other orders,
    ranks given per irrep, or ``False``.  With thin data the alternative is sized like the model."""
    from etnpot.sizing import candidates, order4_alternative, smaller_models

    m = dict(r_cut=5.0, order=3, l_max=2, rank=3, n_basis=4)
    alt = dict(m, order=4, rank={"0e": 3, "1o": 2, "2e": 2})  # the scalar channels keep the rank, the others lose one
    assert order4_alternative(["In", "P"], m) == alt
    assert order4_alternative(["Si"], m) is None and order4_alternative(["Si"], m, True) == alt
    assert order4_alternative(["In", "P"], m, False) is None
    assert order4_alternative(["In", "P"], dict(m, bond_l_max=1))["rank"] == {"0e": 3, "1o": 2}
    assert order4_alternative(["In", "P"], dict(m, o3=False))["rank"] == {"0": 3, "1": 2, "2": 2}  # SO(3): no parities
    for other in (dict(m, order=2), dict(m, order=4), dict(m, rank={"0e": 3, "1o": 2}), dict(m, rank=1)):
        assert order4_alternative(["In", "P"], other, True) is None
    assert candidates(["In", "P"], m, 10 ** 9) == [alt]
    thin = candidates(["In", "P"], m, 100)
    assert [(c["order"], c["l_max"], c["rank"]) for c in thin] == [(3, 1, 3), (4, 2, alt["rank"]), (4, 1, {"0e": 3, "1o": 2})]
    assert candidates(["In", "P"], m, 100, size_to_data=False) == [alt]
    assert candidates(["In", "P"], m, 100, try_order4=False) == [dict(m, l_max=1)]
    # a rank given per irrep loses the irreps above a lowered l_max (names or degrees)
    per_irrep = smaller_models(["In", "P"], dict(m, rank={"0e": 2, "1o": 2, "2e": 1}), 100)
    assert [c["rank"] for c in per_irrep] == [{"0e": 2, "1o": 2}]


def test_try_order4_fits_both_orders_and_keeps_the_better_on_validation(tmp_path, capsys):
    """A config that leaves order and rank to the defaults (two species): ``etnpot fit`` also fits
    order 4 (ranks 3, 2 for l = 0, 1), keeps the lower validation loss and saves that model; naming ``order``
    (or ``try_order4 = false``) fits the configured model only; a bad value names the key."""
    from etnpot import load

    write_small_data(tmp_path)
    base = CONFIG.replace("order = 2\n", "").replace("rank = 2\n", "").replace("l_max = 2", "l_max = 1")
    base = base.replace("sweeps = 2", "sweeps = 1\nsize_to_data = false")
    cfg = tmp_path / "fit.toml"
    cfg.write_text(base)
    assert main(["fit", str(cfg), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    choice = report["model_choice"]
    assert [(c["order"], c["rank"]) for c in choice] == [(3, 3), (4, {"0e": 3, "1o": 2})]
    kept = next(c for c in choice if c["kept"])
    assert sum(c["kept"] for c in choice) == 1 and kept["validation_loss"] == min(c["validation_loss"] for c in choice)
    pot = load(str(tmp_path / "m.etn"))
    assert (pot.order, pot.num_parameters) == (kept["order"], kept["num_parameters"]) == (pot.order, report["num_parameters"])
    assert report["validation"] == kept["validation"]  # the saved model is the kept candidate
    assert str(pot.tt.bonds[1]) == ("3x0e + 2x1o" if kept["order"] == 4 else "3x0e + 3x1o")
    # the provenance names the kept model, so that a refit from it fits the same shape
    prov = pot.metadata["provenance"]["config"]["model"]
    assert (prov["order"], prov["rank"]) == (kept["order"], kept["rank"])
    for text in (base.replace("l_max = 1", "l_max = 1\norder = 3"), base.replace("l_max = 1", "l_max = 1\nrank = 3"),
                 base.replace("sweeps = 1", "sweeps = 1\ntry_order4 = false")):
        cfg.write_text(text)
        assert main(["fit", str(cfg), "-q"]) == 0
        report = json.loads((tmp_path / "report.json").read_text())
        assert "model_choice" not in report and load(str(tmp_path / "m.etn")).order == 3
    cfg.write_text(base.replace("sweeps = 1", "sweeps = 1\ntry_order4 = \"yes\""))
    capsys.readouterr()
    assert main(["fit", str(cfg), "-q"]) == 2
    assert "try_order4" in capsys.readouterr().err


def test_progress_bars_name_their_fit_and_no_terminal_gives_a_line_per_sweep(tmp_path, capsys, monkeypatch):
    """On a terminal each bar says which candidate and model it fits; without one (stderr a pipe
    or file) the fit writes one line per sweep, with no carriage returns."""
    import etnpot.fit

    write_small_data(tmp_path)
    cfg = tmp_path / "fit.toml"
    cfg.write_text(CONFIG.replace("sweeps = 2", "sweeps = 2\npatience = 5"))  # thin data: l_max 2 and l_max 1
    monkeypatch.setattr(etnpot.fit, "use_bars", lambda: True)
    assert main(["fit", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert "order 2, l_max 2:" in err and "candidate 2/2: order 2, l_max 1:" in err
    monkeypatch.setattr(etnpot.fit, "use_bars", lambda: False)
    assert main(["fit", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ": sweep " in ln]
    assert [ln.split(", objective")[0] for ln in lines] == [
        "order 2, l_max 2: sweep 1/2", "order 2, l_max 2: sweep 2/2",
        "candidate 2/2: order 2, l_max 1: sweep 1/2", "candidate 2/2: order 2, l_max 1: sweep 2/2"]
    assert all("validation E" in ln for ln in lines)
    assert main(["fit", str(cfg), "-q"]) == 0
    assert ": sweep " not in capsys.readouterr().err


def test_use_bars_is_false_without_a_terminal(monkeypatch):
    import io
    import sys

    from etnpot.fit import use_bars

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert use_bars() is False


def test_fit_and_eval_write_parity_and_convergence_plots(tmp_path, capsys):
    """With matplotlib, `etnpot fit` writes MODEL_parity.png (train, validation, test) and
    MODEL_convergence.png; `etnpot eval --plot` a parity plot of the data it evaluates."""
    pytest.importorskip("matplotlib")
    write_small_data(tmp_path)
    (tmp_path / "fit.toml").write_text(CONFIG.replace("sweeps = 2", "sweeps = 3\nsize_to_data = false"))
    assert main(["fit", str(tmp_path / "fit.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["plots"] == [str(tmp_path / "m_parity.png"), str(tmp_path / "m_convergence.png")]
    for p in report["plots"]:
        assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = str(tmp_path / "eval.png")
    assert main(["eval", str(tmp_path / "m.etn"), str(tmp_path / "test.xyz"), "--energy-key", "REF_energy",
                 "--forces-key", "REF_forces", "--stress-key", "REF_stress", "--plot", out]) == 0
    assert f"parity plot   {out}" in capsys.readouterr().out and (tmp_path / "eval.png").exists()


def test_parity_legend_carries_the_rmse_and_axes_say_reference():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from etnpot import plots
    from etnpot.data import Configuration
    from fitdata import diverse_cells

    cells = diverse_cells(3, seed=4)
    confs = [Configuration(a, -4.0 * len(a), np.zeros((len(a), 3))) for a in cells]
    preds = [{"energy": c.energy + 0.001 * len(c.atoms), "forces": np.full((len(c.atoms), 3), 0.1)} for c in confs]
    captured = {}
    orig = plt.Figure.savefig

    def keep(fig, *a, **k):
        captured["fig"] = fig
        return orig(fig, *a, **k)

    plt.Figure.savefig = keep
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            assert plots.parity(d + "/p.png", {"test": (confs, preds)}) == d + "/p.png"
    finally:
        plt.Figure.savefig = orig
    ax_e, ax_f = captured["fig"].axes
    assert ax_e.get_xlabel() == "reference energy (eV/atom)" and ax_f.get_ylabel() == "ETN force component (eV/Å)"
    assert [t.get_text() for t in ax_e.get_legend().get_texts()] == ["test: RMSE 1 meV/atom"]
    assert [t.get_text() for t in ax_f.get_legend().get_texts()] == ["test: RMSE 0.1 eV/Å"]
