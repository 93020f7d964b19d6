"""Extrapolation grade (etnpot/grade.py): the maxvol active set, grades from the evaluation pass,
rotation invariance of the grade (with a broken-CG control)."""
import numpy as np

from etnpot.grade import ActiveSet, descriptors, extrapolation_grades, fit_active_set
from etnpot.so3 import random_rotation

from fitdata import diverse_cells


def test_grades_from_the_evaluation_pass_equal_the_descriptor_route(graded):
    """The calculator grades atoms in the same pass as energies and forces (reusing features and
    environments); that equals grading the linearized features computed on their own."""
    pot, train = graded
    atoms = [c.atoms for c in train[:3]] + diverse_cells(1, seed=11)
    ref = pot.active_set.grades(descriptors(pot, atoms, pot.active_set.core))
    for forces in (True, False):
        got = pot.compute(atoms, forces=forces, stress=False, grades=True)["extrapolation_grades"]
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


def test_maxvol_update_keeps_the_inverse_and_dominance():
    """After ActiveSet.update (incremental Sherman-Morrison updates of Y A^-1) every row's
    coefficients are bounded by 1 + tol and the stored inverse is the inverse of the active rows."""
    rng = np.random.default_rng(0)
    r = 12
    A = rng.normal(size=(r, r))
    aset = ActiveSet(0, np.eye(r), np.linalg.inv(A), A.copy(), 1e-3, "")
    Y = rng.normal(size=(500, r)) * rng.uniform(0.1, 5, size=(500, 1))
    assert np.abs(Y @ np.linalg.inv(A)).max() > 2  # the test can fail: rows far outside the start set
    assert aset.update(Y) > 0
    np.testing.assert_allclose(aset.inverse, np.linalg.inv(aset.active), rtol=1e-8, atol=1e-10)
    assert np.abs(Y @ np.linalg.inv(aset.active)).max() <= 1 + 1e-3 + 1e-9


def test_active_rows_grade_exactly_one_and_training_rows_at_most_one(graded):
    """The active rows are the basis: each has coefficient vector e_j (grade 1); every training
    environment needs coefficients of at most 1 + tol."""
    pot, train = graded
    aset = pot.active_set
    np.testing.assert_allclose(np.abs(aset.active @ aset.inverse), np.eye(aset.rank), atol=1e-8)
    g = extrapolation_grades(pot, [c.atoms for c in train])
    assert g.max() <= 1 + aset.tol + 1e-9 and g.max() > 0.5


def test_grade_is_rotation_invariant_with_a_broken_cg_control(graded, rng):
    """Grades come from invariant linearized features: rotating a structure leaves them; with a
    permuted CG tensor (a non-equivariant model, active set refitted) they change."""
    pot, train = graded
    atoms = diverse_cells(1, seed=12)[0]
    atoms.pbc = False

    def change(p):
        g = extrapolation_grades(p, [atoms])
        moved = atoms.copy()
        moved.positions = atoms.positions @ random_rotation(rng, reflection=True).T
        return np.abs(extrapolation_grades(p, [moved]) - g).max() / g.max()

    assert change(pot) < 1e-8
    bad = pot.copy()
    good = bad.tt.cg
    bad.tt.cg = lambda p: good(p)[:, :, ::-1] if p[2].l == 2 else good(p)
    fit_active_set(bad, train)
    assert change(bad) > 1e-4


def _grade_files(graded, tmp_path):
    import ase.io

    pot, train = graded
    pot.save(tmp_path / "m.etn")
    hot = diverse_cells(4, seed=31)
    for a in hot[:2]:
        a.positions *= 0.9  # compressed: outside the training data
    ase.io.write(tmp_path / "md.xyz", [c.atoms for c in train[:2]] + hot, format="extxyz")
    return pot, ase.io.read(tmp_path / "md.xyz", ":")  # as the commands read them


def test_grade_cli_writes_per_atom_arrays_and_a_summary(graded, tmp_path, capsys):
    import ase.io

    from etnpot.cli import main
    from etnpot.environments import unseen_environments

    pot, structs = _grade_files(graded, tmp_path)
    assert main(["grade", str(tmp_path / "m.etn"), str(tmp_path / "md.xyz"), "--output", str(tmp_path / "g.xyz"),
                 "--threshold", "1.5"]) == 0
    out = capsys.readouterr().out
    back = ase.io.read(tmp_path / "g.xyz", ":")
    assert len(back) == len(structs)
    worst = 0.0
    for a, ref in zip(back, structs):
        res = pot.compute([ref], forces=False, stress=False, grades=True)
        np.testing.assert_allclose(a.arrays["extrapolation_grade"], res["extrapolation_grades"], rtol=1e-6)  # extxyz: 8 digits
        np.testing.assert_allclose(a.arrays["ETN_energies"], res["energies"], rtol=1e-6)
        flags = np.zeros(len(ref), bool)
        flags[unseen_environments(pot, pot.graph([ref]))] = True
        np.testing.assert_array_equal(a.arrays["unseen_species"], flags)
        worst = max(worst, res["extrapolation_grades"].max())
    assert worst > 1.5  # the compressed cells are outside
    assert f"md.xyz: {len(structs)} structures" in out and f"largest grade {worst:.3g}" in out


def test_select_cli_picks_what_select_configurations_picks(graded, tmp_path, capsys):
    import ase.io

    from etnpot.cli import main
    from etnpot.grade import select_configurations

    pot, structs = _grade_files(graded, tmp_path)
    assert main(["select", str(tmp_path / "m.etn"), str(tmp_path / "md.xyz"), "-n", "2",
                 "--output", str(tmp_path / "new.xyz")]) == 0
    want = select_configurations(pot, structs, 2)
    assert len(want) == 2
    got = ase.io.read(tmp_path / "new.xyz", ":")
    assert [a.info["source"] for a in got] == [f"{tmp_path / 'md.xyz'}@{i}" for i in want]
    for a, i in zip(got, want):
        np.testing.assert_allclose(a.positions, structs[i].positions)
    assert "chose 2" in capsys.readouterr().out


def test_grade_and_select_refuse_a_model_without_grade_data(graded, tmp_path, capsys):
    from etnpot.cli import main

    pot, _ = _grade_files(graded, tmp_path)
    bare = pot.copy()
    bare.active_set = None
    bare.save(tmp_path / "bare.etn")
    for cmd in (["grade", str(tmp_path / "bare.etn"), str(tmp_path / "md.xyz")],
                ["select", str(tmp_path / "bare.etn"), str(tmp_path / "md.xyz"), "-n", "1", "--output",
                 str(tmp_path / "x.xyz")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "has no grade data" in err and "fit_active_set" in err
