"""The bad-input catalogue (docs/robustness.md): every case gives a correct result or a clear error
naming the problem, and loses nothing the user already had."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError

import etnpot
from etnpot.config import ConfigError, validate_config
from etnpot.data import Configuration, DataError, read_dataset
from etnpot.fit import ALSFitter, FitSettings
from etnpot.grade import ExtrapolationError, ExtrapolationWarning
from etnpot.io import ModelFileError

from conftest import random_cluster, rattled_triclinic
from fitdata import diverse_cells, fit_toml, teacher_data

pytestmark = pytest.mark.filterwarnings("ignore:.*inner distance:RuntimeWarning")


# ---------------------------------------------------------------- structures
def test_01_unknown_species_in_structure(small_pot):
    a = Atoms("SiGe", positions=[[0, 0, 0], [2.2, 0, 0]])
    before = a.positions.copy()
    with pytest.raises(ValueError, match=r"atom 1: species 'Ge' is not in the model's species \['Si', 'C'\]"):
        small_pot.compute(a)
    np.testing.assert_array_equal(a.positions, before)


def test_02_atoms_closer_than_r_min_warn_and_stay_consistent(small_pot, graded):
    """Correct (extrapolated radial polynomials, forces the exact derivative), a RuntimeWarning that
    names r_min and the shortest distance, and a grade that flags the close pair."""
    from ase.calculators.fd import calculate_numerical_forces

    r_min = small_pot.basis.radial.r_min
    d = 0.9 * r_min
    a = Atoms("SiCSi", positions=[[0, 0, 0], [d, 0, 0], [0.3, 2.1, 0.4]])
    a.calc = etnpot.ETNCalculator(small_pot)
    with pytest.warns(RuntimeWarning, match=rf"1 atom pair\(s\) closer than the model's inner distance "
                                            rf"r_min = {r_min:g} Å \(shortest {d:.3f} Å\)"):
        f = a.get_forces()
    assert np.isfinite(a.get_potential_energy()) and np.abs(f).max() > 1e-3
    np.testing.assert_allclose(f, calculate_numerical_forces(a, eps=1e-5), atol=1e-7 * max(1.0, np.abs(f).max()))
    np.testing.assert_allclose(f.sum(0), 0, atol=1e-10)
    pot, train = graded
    close = train[0].atoms.copy()
    r_min = pot.basis.radial.r_min
    close.positions[1] = close.positions[0] + [0.8 * r_min, 0, 0]
    g = etnpot.grade.extrapolation_grades(pot, [close])
    assert g[:2].min() > 2 and g.max() > 4  # the pair's two atoms, against <= 1 + 1e-3 in training
    assert pot.compute(close)["close_pairs"] == 1


def test_03_coincident_atoms(small_pot):
    a = Atoms("SiC", positions=[[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="atoms 0 and 1 .* coincide"):
        small_pot.compute(a)


def test_04_atom_without_neighbours_is_its_constant_term(small_pot):
    lone = Atoms("CSi", positions=[[0, 0, 0], [20, 20, 20]])
    r = small_pot.compute(lone, stress=False)
    e_c = small_pot.compute(Atoms("C"), stress=False)["energy"][0]
    e_si = small_pot.compute(Atoms("Si"), stress=False)["energy"][0]
    np.testing.assert_allclose(r["energy"][0], e_c + e_si, rtol=1e-13)
    assert np.all(r["forces"] == 0)


def test_05_single_atom_periodic_cell():
    pot = etnpot.ETNPotential.random(["Cu"], r_cut=4.5, order=3, l_max=2, rank=2, seed=1)
    one = bulk("Cu", "fcc", a=3.6)
    assert len(one) == 1
    big = one.repeat((3, 3, 3))
    np.testing.assert_allclose(pot.compute(big)["energy"][0], 27 * pot.compute(one)["energy"][0], rtol=1e-11)


def test_06_cell_much_smaller_than_cutoff():
    pot = etnpot.ETNPotential.random(["Cu"], r_cut=8.0, order=2, l_max=2, rank=2, seed=1)
    tiny = bulk("Cu", "sc", a=2.4)  # cutoff = 3.3 cell lengths
    big = tiny.repeat((4, 4, 4))
    r1, r64 = pot.compute(tiny), pot.compute(big)
    np.testing.assert_allclose(r64["energy"][0], 64 * r1["energy"][0], rtol=1e-10)
    np.testing.assert_allclose(r64["stress"][0], r1["stress"][0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", [np.zeros((3, 3)), [[2, 0, 0], [4, 0, 0], [0, 0, 3]]])
def test_07_degenerate_periodic_cell(small_pot, cell):
    a = Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=cell, pbc=True)
    with pytest.raises(ValueError, match="periodic cell is degenerate"):
        small_pot.compute(a)


@pytest.mark.parametrize("pbc, rank", [(False, 0), ([True, True, False], 3)])
def test_08_stress_of_a_non_periodic_system(small_pot, pbc, rank):
    a = random_cluster(2)
    if rank:
        a.set_cell([12.0, 13.0, 14.0])
    a.pbc = pbc
    a.calc = etnpot.ETNCalculator(small_pot)
    f = a.get_forces()  # energy and forces are defined
    assert np.isfinite(a.get_potential_energy()) and f.shape == (len(a), 3)
    flags = str(list(np.broadcast_to(pbc, 3).tolist()))
    with pytest.raises(PropertyNotImplementedError,
                       match=rf"periodic in all three directions \(pbc={re.escape(flags)}, cell rank={rank}\)"):
        a.get_stress()
    with pytest.raises(PropertyNotImplementedError, match="periodic in all three directions"):
        a.calc.get_property("stresses", a)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_09_non_finite_positions(small_pot, bad):
    a = rattled_triclinic(1)
    a.positions[3, 1] = bad
    with pytest.raises(ValueError, match="configuration 0: non-finite position of atom 3"):
        small_pot.compute(a)


# ---------------------------------------------------------------- data
def _write_xyz(path, frames):
    from ase.io import write

    write(path, frames, format="extxyz")
    return path


def _frame(energy=-1.0, forces=None, stress=None, n=2):
    a = Atoms("Si" * n, positions=np.arange(3 * n).reshape(n, 3) * 0.9, cell=[6, 6, 6], pbc=True)
    if energy is not None:
        a.info["E"] = energy
    if forces is not None:
        a.arrays["F"] = np.asarray(forces, float)
    if stress is not None:
        a.info["S"] = np.asarray(stress, float)
    return a


def test_10_nan_energy(tmp_path):
    p = _write_xyz(tmp_path / "d.xyz", [_frame(), _frame(energy=np.nan)])
    with pytest.raises(DataError, match=r"d.xyz\[1\]: energy must be one finite number"):
        read_dataset(p, energy_key="E", forces_key=None, stress_key=None)


def test_11_non_finite_forces(tmp_path):
    p = _write_xyz(tmp_path / "d.xyz", [_frame(forces=[[0, 0, 0], [np.inf, 0, 0]])])
    with pytest.raises(DataError, match=r"d.xyz\[0\]: non-finite forces \(atom 1\)"):
        read_dataset(p, energy_key="E", forces_key="F", stress_key=None)


def test_12_forces_of_the_wrong_shape(tmp_path):
    c = Configuration(Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]]), -1.0, np.zeros((3, 3)), source="x.xyz[4]")
    with pytest.raises(DataError, match=r"x.xyz\[4\]: forces have shape \(3, 3\), expected \(2, 3\)"):
        c.validate()
    # the same through a reader, which names the file and the record itself
    rec = lambda forces: {"structure": {"lattice": {"matrix": np.diag([6.0, 6.0, 6.0]).tolist()},
                                        "sites": [{"xyz": [0, 0, 0], "species": [{"element": "Si"}]},
                                                  {"xyz": [1, 1, 1], "species": [{"element": "Si"}]}]},
                          "outputs": {"energy": -1.0, "forces": forces, "virial_stress": None}}
    ok = np.zeros((2, 3)).tolist()
    (tmp_path / "d.json").write_text(json.dumps([rec(ok)] * 4 + [rec(np.zeros((3, 3)).tolist())]))
    with pytest.raises(DataError, match=r"d.json\[4\]: forces have shape \(3, 3\), expected \(2, 3\)"):
        read_dataset(tmp_path / "d.json")


@pytest.mark.parametrize("kind, kw, where", [("energy", dict(energy_key="REF_E"), "info"),
                                             ("forces", dict(forces_key="REF_F"), "arrays"),
                                             ("stress", dict(stress_key="REF_S"), "info")])
def test_13_missing_keys_are_named(tmp_path, kind, kw, where):
    p = _write_xyz(tmp_path / "d.xyz", [_frame(forces=np.zeros((2, 3)), stress=np.zeros(6))])
    keys = dict(energy_key="E", forces_key="F", stress_key="S")
    keys.update(kw)
    with pytest.raises(DataError, match=rf"d.xyz: no configuration has the {kind} key 'REF_.' in atoms.{where}; "
                                        r"available keys: \['E', 'F', 'S'\]"):
        read_dataset(p, **keys)


def test_13_a_key_missing_from_some_configurations_means_not_available_there(tmp_path):
    p = _write_xyz(tmp_path / "d.xyz", [_frame(forces=np.ones((2, 3)), stress=np.zeros(6)),
                                        _frame(energy=None, forces=None, stress=None)])
    a, b = read_dataset(p, energy_key="E", forces_key="F", stress_key="S")
    assert a.energy == -1.0 and np.all(a.forces == 1.0) and a.stress is not None
    assert b.energy is None and b.forces is None and b.stress is None


def test_14_empty_data_set(tmp_path):
    (tmp_path / "empty.xyz").write_text("")
    with pytest.raises(DataError, match="empty.xyz"):
        read_dataset(tmp_path / "empty.xyz")
    pot = etnpot.ETNPotential.random(["Si"], r_cut=4.0, order=2, l_max=1, rank=1)
    with pytest.raises(ValueError, match="training set is empty"):
        ALSFitter(pot, [], progress=False)


def test_15_data_set_with_one_configuration():
    from etnpot.data import split_train_validation

    teacher, train, _ = teacher_data(order=1, rank=1, n_train=1, n_test=1)
    tr, va = split_train_validation(train, 0.5)
    assert len(tr) == 1 and va == []  # no validation split is carved from one configuration
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=2, l_max=1, rank=1, n_basis=4, init="constant",
                                     noise=1e-3)
    before = abs(pot.compute(train[0].atoms)["energy"][0] - train[0].energy)
    f = ALSFitter(pot, tr, va, settings=FitSettings(sweeps=1, radial_steps=0), progress=False)
    f.run()
    res = pot.compute(train[0].atoms)
    assert np.isfinite(res["energy"][0]) and len(f.history) == 1
    assert abs(res["energy"][0] - train[0].energy) < 1e-3 * before  # it fitted the one configuration


@pytest.mark.parametrize("stress, biggest", [([120.0, 95.0, 100.0, 3.0, 1.0, 2.0], "120 eV/Å^3 (1.922e+04 GPa)"),
                                            ([25.0, 24.0, 26.0, 0.0, 0.0, 0.0], "26 eV/Å^3 (4165 GPa)")])
def test_16_stress_in_unexpected_units(tmp_path, stress, biggest):
    """kbar (VASP) or GPa numbers given as eV/Å^3: an error with the largest value, and the conversion."""
    p = _write_xyz(tmp_path / "d.xyz", [_frame(stress=np.array(stress))])
    with pytest.raises(DataError, match=rf"d.xyz\[0\]: stress up to {re.escape(biggest)} is not physical: it looks "
                                        r"like kbar or GPa. Stress must be in eV/Å\^3 with ASE's sign \(1 GPa = "
                                        r"0.00624 eV/Å\^3; from VASP kbar: multiply by -1/1602.18\)"):
        read_dataset(p, energy_key="E", forces_key=None, stress_key="S")


def test_17_unknown_species_in_a_data_set():
    _, train, _ = teacher_data(order=1, rank=1, n_train=3, n_test=1)
    pot = etnpot.ETNPotential.random(["Si"], r_cut=3.8, order=2, l_max=1, rank=1)
    with pytest.raises(ValueError, match=r"training configuration 0\b.*\['C'\]"):
        ALSFitter(pot, train, progress=False)


# ---------------------------------------------------------------- model files
def test_18_truncated_model_file_leaves_nothing_changed(small_pot, tmp_path):
    p = tmp_path / "m.etn"
    small_pot.save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        etnpot.load(p)
    assert p.stat().st_size == len(data) // 3  # the file is left as it was


def test_19_foreign_and_newer_model_files(small_pot, tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ModelFileError, match="not an etnpot model file"):
        etnpot.load(tmp_path / "other.npz")
    # a newer format version
    import io as _io

    p = tmp_path / "m.etn"
    small_pot.save(p)
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    h = json.loads(bytes(arrays.pop("header")).decode())
    h["format_version"] = etnpot.FORMAT_VERSION + 1
    buf = _io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(h).encode(), np.uint8), **arrays)
    (tmp_path / "new.etn").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="upgrade etnpot"):
        etnpot.load(tmp_path / "new.etn")


def test_20_writing_over_an_existing_model_is_atomic(small_pot, tmp_path):
    p = tmp_path / "m.etn"
    small_pot.save(p)
    old = p.read_bytes()
    broken = small_pot.copy()
    broken.metadata["bad"] = {1, 2}  # not JSON: the write fails before the rename
    with pytest.raises(TypeError):
        broken.save(p)
    assert p.read_bytes() == old and sorted(x.name for x in tmp_path.iterdir()) == ["m.etn"]


# ---------------------------------------------------------------- configs and hyper-parameters
@pytest.mark.parametrize("cfg, msg", [
    ({"data": {"train": ["x"]}, "fitt": {}}, r"did you mean \[fit\]"),
    ({"data": {"train": ["x"]}, "model": {"lmax": 2}}, "did you mean 'l_max'"),
])
def test_21_config_with_unknown_or_misspelled_keys(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_config(cfg)


@pytest.mark.parametrize("kw, msg", [(dict(rank=0), "rank must be >= 1, got 0"),
                                     (dict(l_max=-1), "l_max must be an integer >= 0, got -1"),
                                     (dict(r_cut=3.0, r_min=3.0), r"need 0 <= r_min < r_cut, got r_min=3.0, r_cut=3.0"),
                                     (dict(order=0), "order must be an integer >= 1, got 0")])
def test_22_nonsensical_hyperparameters(kw, msg):
    base = dict(species=["Cu"], r_cut=5.0, order=3, l_max=2, rank=2)
    base.update(kw)
    with pytest.raises(ValueError, match=msg):
        etnpot.ETNPotential.build(**base)


@pytest.mark.parametrize("section, key, value, msg", [
    ("weights", "forces", -1.0, r"\[weights\] forces must be a number >= 0, got -1.0"),
    ("model", "order", 0, r"\[model\] order must be an integer >= 1, got 0"),
    ("model", "r_min", 6.0, r"\[model\] need 0 <= r_min < r_cut, got r_min=6.0, r_cut=5.0"),
    ("fit", "ridge", -1e-3, r"\[fit\] ridge must be a number >= 0"),
])
def test_22_nonsensical_values_in_a_config(section, key, value, msg):
    cfg = {"data": {"train": ["x"]}, "model": {"r_cut": 5.0}, section: {key: value}}
    if section == "model":
        cfg["model"][key] = value
    with pytest.raises(ConfigError, match=msg):
        validate_config(cfg)


def test_22_negative_configuration_weight():
    c = Configuration(Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]]), -1.0, weight=-2.0, source="x.xyz[3]")
    with pytest.raises(DataError, match=r"x.xyz\[3\]: weight must be finite and >= 0, got -2.0"):
        c.validate()


# ---------------------------------------------------------------- fitting and checkpoints
def _config(order, sweeps, name):
    return fit_toml(order=order, sweeps=sweeps, extra=f'tol = 0.0\npatience = 99\n[output]\nmodel = "{name}.etn"\ncheckpoint = "{name}.ckpt"\n')


def _data(tmp_path, n=40):
    teacher, train, _ = teacher_data(order=2, rank=2, n_train=n, n_test=1)
    frames = []
    for c in train:
        a = c.atoms.copy()
        a.info.update(REF_energy=c.energy, REF_stress=c.stress)
        a.arrays["REF_forces"] = c.forces
        frames.append(a)
    _write_xyz(tmp_path / "train.xyz", frames)


@pytest.mark.slow
def test_23_fit_interrupted_by_a_signal_resumes_to_the_same_model(tmp_path):
    _data(tmp_path)
    for name in ("full", "cut"):
        (tmp_path / f"{name}.toml").write_text(_config(3, 24, name))  # a long window for the signal
    cmd = lambda name, *extra: [sys.executable, "-m", "etnpot", "fit", f"{name}.toml", "-q", "--data-dir",
                                str(tmp_path), *extra]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    assert subprocess.run(cmd("full"), cwd=tmp_path, env=env, capture_output=True).returncode == 0
    # the signal comes from inside the fit, right after the third checkpoint: deterministic, also on a
    # loaded machine where a signal timed from outside could arrive after the fit had ended
    child = ("import os, signal, sys\n"
             "import etnpot.fit as F\n"
             "write = F.ALSFitter._write_checkpoint\n"
             "def hook(self):\n"
             "    write(self)\n"
             "    if self.sweep_index == 3:\n"
             "        os.kill(os.getpid(), signal.SIGINT)\n"
             "F.ALSFitter._write_checkpoint = hook\n"
             "from etnpot.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", child, *cmd("cut")[3:]], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"etnpot fit: interrupted; a checkpoint (if configured) holds the last completed sweep" in err
    assert not (tmp_path / "cut.etn").exists()
    done = etnpot.load(tmp_path / "cut.ckpt").metadata["fit_state"]["sweep_index"]  # the checkpoint is intact
    assert done == 3  # and really from the middle of the fit
    res = subprocess.run(cmd("cut", "--resume"), cwd=tmp_path, env=env, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    a, b = etnpot.load(tmp_path / "full.etn"), etnpot.load(tmp_path / "cut.etn")
    for k in range(a.order):
        np.testing.assert_array_equal(a.tt.core_vector(k), b.tt.core_vector(k))


def test_24_checkpoint_from_a_different_model(tmp_path):
    from etnpot.cli import main

    _data(tmp_path, n=8)
    (tmp_path / "a.toml").write_text(_config(2, 1, "m"))
    assert main(["fit", str(tmp_path / "a.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
    (tmp_path / "b.toml").write_text(_config(3, 1, "m"))
    with pytest.raises(ValueError, match=r"checkpoint of a different model: order = 2 in the checkpoint, 3 requested"):
        from etnpot.config import load_config
        from etnpot.workflow import run_fit

        run_fit(load_config(tmp_path / "b.toml"), data_dir=str(tmp_path), resume=True, progress=False, out=lambda s: None)


# ---------------------------------------------------------------- extrapolation
def test_25_training_environments_grade_at_most_one(graded):
    pot, train = graded
    g = etnpot.grade.extrapolation_grades(pot, [c.atoms for c in train])
    assert g.max() <= 1.0 + 2e-3


def test_26_strained_crystals_grade_high_and_warn_or_raise(graded):
    """Grades far above 1 (above the default threshold 5) for a crystal compressed to 0.7 and one
    stretched to 1.6 of its size; a warning or an error naming the grade and the atom."""
    pot, train = graded
    squeezed = diverse_cells(1, seed=5)[0]
    squeezed.set_cell(squeezed.cell * 0.7, scale_atoms=True)
    squeezed.calc = etnpot.ETNCalculator(pot)  # default: warn above 5
    with pytest.warns(ExtrapolationWarning, match=r"extrapolation grade \S+ > 5 \(atom \d+\)"):
        squeezed.get_potential_energy()
    assert squeezed.calc.results["extrapolation_grades"].max() > 5
    stretched = diverse_cells(1, seed=6)[0]
    stretched.set_cell(stretched.cell * 1.6, scale_atoms=True)
    assert etnpot.grade.extrapolation_grades(pot, [stretched]).max() > 5
    stretched.calc = etnpot.ETNCalculator(pot, extrapolation="raise")
    with pytest.raises(ExtrapolationError, match=r"extrapolation grade \S+ > 5 \(atom \d+\)"):
        stretched.get_forces()
    # in-distribution structures raise nothing, even with a threshold of 2
    ok = train[0].atoms.copy()
    ok.calc = etnpot.ETNCalculator(pot, extrapolation="raise", grade_threshold=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        ok.get_potential_energy()


def test_27_active_set_survives_save_load_and_detects_stale_models(graded, tmp_path):
    pot, train = graded
    pot.save(tmp_path / "g.etn")
    again = etnpot.load(tmp_path / "g.etn")
    atoms = [c.atoms for c in train[:3]]
    np.testing.assert_array_equal(etnpot.grade.extrapolation_grades(again, atoms),
                                  etnpot.grade.extrapolation_grades(pot, atoms))
    again.tt.set_core_vector(0, again.tt.core_vector(0) * 1.01)
    with pytest.raises(ValueError, match="changed after its active set was computed"):
        etnpot.grade.extrapolation_grades(again, atoms)


def test_28_active_learning_selects_the_out_of_distribution_candidates(graded):
    pot, train = graded
    cands = [c.atoms.copy() for c in train[:4]]
    far = diverse_cells(2, seed=9)
    for a, s in zip(far, (0.7, 1.5)):
        a.set_cell(a.cell * s, scale_atoms=True)
    picked = etnpot.grade.select_configurations(pot, cands + far, n=2, threshold=1.5)
    assert sorted(picked) == [4, 5]


def test_29_short_nve_with_a_fitted_model_is_stable():
    """Short version of benchmarks/bench_md.py: the committed Si fit, 64 atoms, 0.2 ps of NVE at 600 K."""
    from ase import units
    from etnpot.md import thermalize
    from ase.md.verlet import VelocityVerlet

    path = os.path.join(os.path.dirname(__file__), "..", "fitting", "zuo2020", "Si_d3_r3.etn")
    pot = etnpot.load(path)
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    atoms.calc = etnpot.ETNCalculator(pot)
    thermalize(atoms, 600, rng=1)
    e0 = atoms.get_total_energy()
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    energies = []
    for _ in range(20):
        dyn.run(10)
        energies.append(atoms.get_total_energy())
    dev = np.abs(np.array(energies) - e0).max() / len(atoms)
    assert dev < 2e-3, dev  # < 2 meV/atom over 0.2 ps, no blow-up
    assert 100 < atoms.get_temperature() < 900


@pytest.mark.slow
def test_30_same_data_config_seed_give_a_bit_identical_model_file(tmp_path):
    """Fit twice with the same data, config and seed: the model files are byte for byte equal
    (the content hash too); `etnpot info` shows the hash with the provenance."""
    import shutil

    from etnpot.cli import main

    _data(tmp_path, n=8)
    (tmp_path / "a.toml").write_text(_config(2, 2, "a"))
    run = lambda: main(["fit", str(tmp_path / "a.toml"), "-q", "--data-dir", str(tmp_path)])
    assert run() == 0
    shutil.copy(tmp_path / "a.etn", tmp_path / "first.etn")
    assert run() == 0
    assert (tmp_path / "a.etn").read_bytes() == (tmp_path / "first.etn").read_bytes()
    h = etnpot.read_header(tmp_path / "a.etn")
    assert h["metadata"]["provenance"]["data"]["train"][0]["sha256"] and h["etnpot_version"] == etnpot.__version__
