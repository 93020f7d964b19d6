import json

from etnpot.cli import main


def test_info(small_pot, tmp_path, capsys):
    path = tmp_path / "m.etn"
    small_pot.save(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Si C" in out and f"parameters     {small_pot.num_parameters}" in out and "content hash" in out
    assert main(["info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_parameters"] == small_pot.num_parameters


def test_info_bad_file(tmp_path, capsys):
    (tmp_path / "x.etn").write_text("nope")
    assert main(["info", str(tmp_path / "x.etn")]) == 2
    assert "error" in capsys.readouterr().err
