"""Bad input refused before the fit spends time on it (docs/robustness.md, rows 31-): one test per
root cause; each failed on the code before these checks (a silent wrong result, lost data, a
hang or a traceback)."""
import json
import os
import zipfile

import numpy as np
import pytest
from ase.io import write

import etnpot
from etnpot.cli import main
from etnpot.config import ConfigError, load_config, validate_config
from etnpot.data import DataError, read_dataset
from etnpot.io import ModelFileError
from etnpot.workflow import run_fit

from fitdata import fit_toml, teacher_data


def _frames(data, energy="REF_energy", forces="REF_forces", stress="REF_stress", ctype=True):
    out = []
    for c in data:
        a = c.atoms.copy()
        if energy:
            a.info[energy] = c.energy
        if stress:
            a.info[stress] = c.stress
        if forces:
            a.arrays[forces] = c.forces
        if ctype:
            a.info["config_type"] = c.config_type
        out.append(a)
    return out


@pytest.fixture(scope="module")
def data():
    _, train, test = teacher_data(order=2, rank=2, n_train=10, n_test=3)
    return train, test


def _setup(tmp_path, data, toml=None, **keys):
    train, test = data
    write(tmp_path / "train.xyz", _frames(train, **keys), format="extxyz")
    write(tmp_path / "test.xyz", _frames(test, **keys), format="extxyz")
    (tmp_path / "fit.toml").write_text(toml if toml is not None else fit_toml(sweeps=1, test="test.xyz"))
    return tmp_path / "fit.toml"


def _fit(path, **kw):
    return run_fit(load_config(path), data_dir=str(os.path.dirname(path)), progress=False, out=lambda s: None, **kw)


def _no_key_lines(toml):
    return "\n".join(ln for ln in toml.splitlines() if not ln.endswith('_key = "REF_energy"') and
                     not ln.endswith('_key = "REF_forces"') and not ln.endswith('_key = "REF_stress"'))


# ---------------------------------------------------------------- 1: default keys, other conventions
def test_cause1_other_codes_keys_are_found_and_said(tmp_path, data, caplog):
    """MACE's REF_* keys with a config that keeps the default keys: read, and said in one line
    (before: a model fitted to no data, exit 0)."""
    toml = _no_key_lines(fit_toml(sweeps=1, test="test.xyz"))
    path = _setup(tmp_path, data, toml)
    with caplog.at_level("WARNING"):
        pot, report = _fit(path)
    assert "reading them from 'REF_energy'" in caplog.text and "reading them from 'REF_forces'" in caplog.text
    assert report["train"]["energy"]["rmse"] > 0 and report["test"]["forces"]["rmse"] > 0


def test_cause1_ace_force_key_and_ambiguous_keys(tmp_path, data):
    train, _ = data
    write(tmp_path / "a.xyz", _frames(train, forces="force"), format="extxyz")
    configs = read_dataset(tmp_path / "a.xyz", energy_key="REF_energy")
    assert all(c.forces is not None for c in configs)  # ACE's "force" (before: energies only, silently)
    frames = _frames(train)
    for a in frames:
        a.info["DFT_energy"] = a.info["REF_energy"] + 1.0  # two candidate keys that disagree
    write(tmp_path / "b.xyz", frames, format="extxyz")
    with pytest.raises(DataError, match=r"b.xyz: no energy under the key 'energy'.*\['REF_energy', 'DFT_energy'\]"):
        read_dataset(tmp_path / "b.xyz")


def test_cause1_no_reference_a_weight_needs_is_refused_with_the_keys(tmp_path, data):
    path = _setup(tmp_path, data, _no_key_lines(fit_toml(sweeps=1)), energy="E_dft", forces="F_dft", stress=None)
    with pytest.raises(DataError, match=r"no configuration has energy .*keys \[.*'E_dft'.*\]"):
        _fit(path)
    assert not (tmp_path / "model.etn").exists()
    # etnpot eval likewise: no table of dashes
    train, _ = data
    pot = etnpot.ETNPotential.build(["Si", "C"], r_cut=3.8, order=2, l_max=1, rank=2, n_basis=3)
    pot.save(tmp_path / "m.etn")
    assert main(["eval", str(tmp_path / "m.etn"), str(tmp_path / "train.xyz")]) == 2


def test_cause1_virial_in_ev_is_read_as_ase_and_mace_do(tmp_path, data):
    train, _ = data
    frames = _frames(train, stress=None)
    for a, c in zip(frames, train):
        a.info["virials"] = (-c.stress * a.get_volume())  # W = -V sigma (eV)
    write(tmp_path / "v.xyz", frames, format="extxyz")
    got = read_dataset(tmp_path / "v.xyz", energy_key="REF_energy", forces_key="REF_forces")
    np.testing.assert_allclose([c.stress for c in got], [c.stress for c in train], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- 2: outputs checked first
@pytest.mark.parametrize("output, msg", [
    ('model = "nodir/m.etn"', r"\[output\] model = '.*nodir/m.etn': the folder .*nodir does not exist"),
    ('model = "train.xyz"', r"\[output\] model = '.*train.xyz' is an input of the fit"),
    ('model = "m.etn"\nreport = "m.etn"', r"\[output\] model and \[output\] report are the same file"),
])
def test_cause2_outputs_are_checked_before_the_fit(tmp_path, data, output, msg):
    path = _setup(tmp_path, data, fit_toml(sweeps=1) + f"[output]\n{output}\n")
    before = (tmp_path / "train.xyz").read_bytes()
    with pytest.raises(ConfigError, match=msg):
        _fit(path)
    assert (tmp_path / "train.xyz").read_bytes() == before


# ---------------------------------------------------------------- 3: inputs compared with each other
@pytest.mark.parametrize("edit, msg", [
    (lambda t: t.replace('train = ["train.xyz"]', 'train = ["train.xyz"]\ntest = ["copy.xyz"]'),
     r"the \[data\] test file .*copy.xyz is the same data as the train file"),
    (lambda t: t.replace('train = ["train.xyz"]', 'train = ["train.xyz", "copy.xyz"]'),
     r"\[data\] train lists the same data twice"),
    (lambda t: t + "[weights.config_types.Surfce]\nenergy = 10.0\n", r"config type 'Surfce'"),
    (lambda t: t.replace('species = ["Si", "C"]', 'species = ["Si", "C", "Ge"]'),
     r"\[model\] species \['Ge'\] occur in no training configuration"),
    (lambda t: t.replace("r_cut = 3.8", "r_cut = 0.5\nr_min = 0.1"), r"r_cut = 0.5 Å: no training configuration"),
])
def test_cause3_inputs_are_compared_with_each_other(tmp_path, data, edit, msg):
    path = _setup(tmp_path, data, edit(fit_toml(sweeps=1)))
    (tmp_path / "copy.xyz").write_bytes((tmp_path / "train.xyz").read_bytes())
    with pytest.raises(ConfigError, match=msg):
        _fit(path)
    assert not (tmp_path / "model.etn").exists()


def test_cause3_the_config_type_hint(tmp_path, data):
    train, _ = data
    types = sorted({c.config_type for c in train})
    typo = types[0][:-1] + "x"
    path = _setup(tmp_path, data, fit_toml(sweeps=1) + f"[weights.config_types.{typo}]\nenergy = 10.0\n")
    with pytest.raises(ConfigError, match=f"did you mean '{types[0]}'"):
        _fit(path)


# ---------------------------------------------------------------- 4: saved states are units
def test_cause4_failed_save_keeps_the_old_model_and_grade_pair(tmp_path, graded, monkeypatch):
    import etnpot.io as io

    graded = graded[0]
    graded.save(tmp_path / "m.etn")
    old = {p: (tmp_path / p).read_bytes() for p in ("m.etn", "m.etn.grade")}
    import copy

    other = graded.copy()  # the same model with another grade file (its tolerance differs)
    other.active_set = copy.copy(graded.active_set)
    other.active_set.tol = graded.active_set.tol * 2
    real = io.np.savez
    calls = []

    def failing(fh, **arrays):  # the second archive (the model, after its grade file) fails to write
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(fh, **arrays)

    monkeypatch.setattr(io.np, "savez", failing)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "m.etn")
    monkeypatch.setattr(io.np, "savez", real)
    assert {p: (tmp_path / p).read_bytes() for p in ("m.etn", "m.etn.grade")} == old
    assert sorted(os.listdir(tmp_path)) == ["m.etn", "m.etn.grade"]  # no temporary file left
    assert etnpot.load(tmp_path / "m.etn").active_set is not None


def test_cause4_temp_files_of_an_interrupted_save_are_removed(tmp_path, small_pot):
    (tmp_path / ".m.etn.etnpot-abc.tmp").write_bytes(b"half a model")
    small_pot.save(tmp_path / "m.etn")
    assert sorted(os.listdir(tmp_path)) == ["m.etn"]


def test_cause4_and_5_checkpoint_pair_and_resume_checks(tmp_path, data):
    path = _setup(tmp_path, data, fit_toml(sweeps=2, extra="tol = 0.0\npatience = 99\n") +
                  '[output]\nmodel = "m.etn"\n')
    pot, _ = _fit(path)
    assert (tmp_path / "m.ckpt").exists() and (tmp_path / "m.ckpt.best").exists()  # on by default
    assert (tmp_path / "m.report.json").exists() and "sweep" in (tmp_path / "m.log").read_text()
    # a finished fit resumes to the same model, without another sweep
    again, rep = _fit(path, resume=True)
    for k in range(pot.order):
        np.testing.assert_array_equal(pot.tt.core_vector(k), again.tt.core_vector(k))
    assert len(rep["history"]) == 2
    # changed weights: refused, or accepted and recorded with allow_changes
    (tmp_path / "w.toml").write_text(path.read_text() + "[weights]\nforces = 2.0\n")
    with pytest.raises(ValueError, match=r"m.ckpt: the fit would not be the one checkpointed: .*weights \(forces 1.0 -> 2.0"):
        _fit(tmp_path / "w.toml", resume=True)
    changed, _ = _fit(tmp_path / "w.toml", resume=True, allow_changes=True)
    assert any("weights" in c for c in changed.metadata["resumed_with_changes"])
    # other training data: refused
    train, _ = data
    write(tmp_path / "train.xyz", _frames(train[:-1]), format="extxyz")
    with pytest.raises(ValueError, match="changed since: training data"):
        _fit(path, resume=True)
    write(tmp_path / "train.xyz", _frames(train), format="extxyz")
    # a checkpoint without its .best, or with another fit's .best: refused, naming the file
    best = (tmp_path / "m.ckpt.best").read_bytes()
    etnpot.ETNPotential.build(["Si", "C"], r_cut=3.8, order=2, l_max=2, rank=2, n_basis=4).save(tmp_path / "m.ckpt.best")
    with pytest.raises(ValueError, match=r"m.ckpt.best does not belong to the checkpoint"):
        _fit(path, resume=True)
    os.unlink(tmp_path / "m.ckpt.best")
    with pytest.raises(ValueError, match=r"its best model .*m.ckpt.best is missing"):
        _fit(path, resume=True)
    (tmp_path / "m.ckpt.best").write_bytes(best)
    # --resume without a checkpoint names the file it looked for
    os.unlink(tmp_path / "m.ckpt")
    with pytest.raises(ConfigError, match=r"--resume: no checkpoint at .*m.ckpt"):
        _fit(path, resume=True)


# ---------------------------------------------------------------- 6: caches keyed by what they cache
def test_cause6_a_core_edited_in_place_cannot_leave_the_fast_path_stale(small_pot):
    from conftest import rattled_triclinic

    pot = small_pot.copy()
    atoms = rattled_triclinic()
    atoms.calc = etnpot.ETNCalculator(pot)
    e0 = atoms.get_potential_energy()
    p = next(iter(pot.tt.cores[1]))
    with pytest.raises(ValueError, match="read-only"):
        pot.tt.cores[1][p] *= 3  # refused, not silently ignored by the cache
    pot.tt.cores[1][p] = 3 * pot.tt.cores[1][p]  # replacing the block is seen
    fresh = atoms.copy()
    fresh.calc = etnpot.ETNCalculator(pot)
    e1 = fresh.get_potential_energy()
    pot.evaluation = "reference"  # the block-sparse reference path, which builds no cache
    ref = float(pot.compute(atoms, forces=False, stress=False)["energy"][0])
    assert e1 != e0 and np.isclose(e1, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- 7: LAMMPS refuses what it cannot honour
@pytest.mark.parametrize("fix, extra, msg", [
    ("fix etn all external pf/array 1", "", "mode 'pf/array'"),
    ("fix etn all external pf/callback 10 1", "", "'pf/callback 10 1'"),
    ("fix etn all external pf/callback 1 1", "pair_style lj/cut 3.0\n", "'pair_style lj/cut 3.0' would add"),
])
def test_cause7_lammps_input_the_coupling_cannot_honour(tmp_path, small_pot, fix, extra, msg):
    from etnpot.lammps import run_input

    small_pot.save(tmp_path / "m.etn")
    (tmp_path / "in.lmp").write_text(f"units metal\n{extra}region b block 0 5 0 5 0 5\ncreate_box 2 b\n{fix}\nrun 1\n")
    with pytest.raises(ValueError, match=msg):
        run_input(tmp_path / "in.lmp", tmp_path / "m.etn", ["Si", "C"])


# ---------------------------------------------------------------- 8: loading checks before it works
def test_cause8_loading_checks_before_it_allocates(tmp_path, small_pot, graded):
    graded = graded[0]
    bomb = tmp_path / "bomb.etn"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.npy", b"\0" * (64 << 20))
    with pytest.raises(ModelFileError, match="would inflate"):
        etnpot.load(bomb)
    (tmp_path / "t.etn").write_text("not a model\n")
    with pytest.raises(ModelFileError, match=r"t.etn: not an etnpot model file \(not a NumPy .npz archive\)") as e:
        etnpot.load(tmp_path / "t.etn")
    assert "pickle" not in str(e.value)
    # NaN parameters: refused (the hash is recomputed, so only the NaN check can catch it)
    import etnpot.io as io

    bad = small_pot.copy()
    p = next(iter(bad.tt.cores[0]))
    bad.tt.cores[0][p] = np.full_like(bad.tt.cores[0][p], np.nan)
    io.save(bad, tmp_path / "nan.etn")
    with pytest.raises(ModelFileError, match="non-finite"):
        etnpot.load(tmp_path / "nan.etn")
    # a grade file of the wrong shape: refused on load, not inside a matmul later
    graded.save(tmp_path / "g.etn")
    h, arrays = io._read(tmp_path / "g.etn.grade", "etnpot-grade", io.GRADE_FORMAT_VERSION, "grade file")
    arrays = {k: (v[:-1] if k == "grade_matrix" else v) for k, v in arrays.items()}
    h.pop("content_sha256")
    io._write(str(tmp_path / "g.etn.grade"), h, arrays)
    with pytest.raises(ModelFileError, match="do not fit the model's core"):
        etnpot.load(tmp_path / "g.etn")


# ---------------------------------------------------------------- 9: messages with a place
@pytest.mark.parametrize("section, key, value, msg", [
    ("fit", "tol", "0.1", r"\[fit\] tol must be a number >= 0, got '0.1' \(a string"),
    ("model", "rank", 2.5, r"\[model\] rank must be an integer >= 1"),
    ("fit", "seed", "a", r"\[fit\] seed must be an integer"),
    ("fit", "e0", "fitt", r'\[fit\] e0 must be .*did you mean "fit"'),
    ("fit", "e0", {"Si": -1.0}, r"\[fit\] e0 must give every species .*missing \['C'\]"),
    ("fit", "patience", -1, r"\[fit\] patience must be an integer >= 0"),
    ("data", "validation_fraction", 1.5, r"\[data\] validation_fraction must be a number with 0 <= fraction < 1"),
    ("model", "species", "SiC", r'write species = \["Si", "C"\]'),
    ("distributed", "n_workers", 0, r"\[distributed\] n_workers must be an integer >= 1"),
])
def test_cause9_config_values_are_checked_with_the_key(section, key, value, msg):
    cfg = {"data": {"train": ["x.xyz"]}, "model": {"species": ["Si", "C"]}}
    cfg.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=msg):
        validate_config(cfg)


def test_cause9_data_errors_name_file_and_index(tmp_path, data):
    train, _ = data
    frames = _frames(train)
    frames[2].info["REF_energy"] = "abc"
    frames[5].positions[1] = frames[5].positions[0]
    write(tmp_path / "e.xyz", frames[:3], format="extxyz")
    with pytest.raises(DataError, match=r"e.xyz\[2\]: REF_energy must be numbers, got the text 'abc'"):
        read_dataset(tmp_path / "e.xyz", energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")
    write(tmp_path / "c.xyz", frames[3:], format="extxyz")
    with pytest.raises(DataError, match=r"c.xyz\[2\]: atoms 0 and 1 coincide"):
        read_dataset(tmp_path / "c.xyz", energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")


def test_cause9_cli_errors_are_one_line_and_info_escapes_control_characters(tmp_path, small_pot, capsys):
    (tmp_path / "bad.toml").write_text('[data]\ntrain = ["x.xyz"]\n[fit]\ntol = "0.1"\n')
    assert main(["fit", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tol must be a number" in err and "Traceback" not in err
    pot = small_pot.copy()
    pot.metadata["provenance"] = {"data": {"train": [{"path": "\x1b[2J\x1b]0;pwned\x07", "sha256": "0" * 64}]}}
    pot.save(tmp_path / "m.etn")
    assert main(["info", str(tmp_path / "m.etn")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_cause9_unreachable_scheduler_is_one_clear_error(monkeypatch):
    import etnpot.distributed as dist

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ValueError, match=r"scheduler = 'tcp://127.0.0.1:9': cannot connect within 1 s"):
        dist.start_client("tcp://127.0.0.1:9", 1)


# ---------------------------------------------------------------- Python and the command line
def test_fit_potential_from_python_writes_the_cli_s_model_file(tmp_path, data):
    """etnpot.fit_potential runs what `etnpot fit` runs (checks, candidates, active set, species
    environments, report): the same config gives the same model file, byte for byte."""
    path = _setup(tmp_path, data, fit_toml(sweeps=1, test="test.xyz") + '[output]\nmodel = "m.etn"\n')
    assert main(["fit", str(path), "-q", "--data-dir", str(tmp_path)]) == 0
    cli = {p: (tmp_path / p).read_bytes() for p in ("m.etn", "m.etn.grade")}
    for p in ("m.etn", "m.etn.grade", "m.ckpt", "m.ckpt.best", "m.report.json", "m.log"):
        os.unlink(tmp_path / p)
    pot, report = etnpot.fit_potential(path, data_dir=str(tmp_path), progress=False)
    assert {p: (tmp_path / p).read_bytes() for p in ("m.etn", "m.etn.grade")} == cli
    assert pot.active_set is not None and "species_environments" in pot.metadata
    assert json.loads((tmp_path / "m.report.json").read_text())["num_parameters"] == report["num_parameters"]
    # keyword sections override the file's
    other, _ = etnpot.fit_potential(path, data_dir=str(tmp_path), progress=False, model={"l_max": 1},
                                    fit={"size_to_data": False}, output={"model": "k.etn"})
    assert other.basis.l_max == 1 and (tmp_path / "k.etn").exists()
