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
