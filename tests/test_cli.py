import json

from etnpot.cli import main


def test_info(small_pot, tmp_path, capsys):
    path = tmp_path / "m.etn"
    small_pot.save(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Si C" in out and f"parameters     {small_pot.num_parameters:,} parameters" in out and "content hash" in out
    assert main(["info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_parameters"] == small_pot.num_parameters


def test_info_bad_file(tmp_path, capsys):
    (tmp_path / "x.etn").write_text("nope")
    assert main(["info", str(tmp_path / "x.etn")]) == 2
    assert "error" in capsys.readouterr().err


def test_one_parameter_count(small_pot, tmp_path, capsys):
    """info, the JSON and the fit's messages use one count: the total, split into fitted (cores and
    E0 unless the fit refits the features) and fixed."""
    c = small_pot.parameter_counts()
    assert c["total"] == small_pot.num_parameters == c["fitted"] + c["fixed"]
    assert c["fitted"] == small_pot.fitted_parameters == small_pot.tt.num_parameters + len(small_pot.e0)
    path = tmp_path / "m.etn"
    small_pot.save(path)
    assert main(["info", str(path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("parameters"))
    assert line.split(None, 1)[1] == small_pot.describe_parameters()
    assert f"{c['total']:,} parameters ({c['fitted']:,} fitted" in line and f"{c['fixed']:,} fixed" in line
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameter_counts"]["fitted"] == c["fitted"]
    refit = small_pot.copy()
    refit.metadata["fit"] = {"settings": {"radial_steps": 1}}
    assert refit.parameter_counts()["fixed"] == 0 and "fixed" not in refit.describe_parameters()


def test_version(capsys):
    import pytest

    from etnpot import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"etnpot {__version__}"


def test_closed_pipe_gives_no_traceback(small_pot, tmp_path):
    """`etnpot info --json m.etn | head`: the reader closes the pipe before etnpot writes."""
    import os
    import subprocess
    import sys

    path = tmp_path / "m.etn"
    small_pot.save(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                                       os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-m", "etnpot", "info", "--json", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # like head after its lines, here before the first
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert p.returncode == 0
