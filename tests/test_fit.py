"""The fit: recovery of models in the model space, monotone ALS, DMRG truncation, checkpoints, determinism."""
import numpy as np
import pytest

import etnpot
from etnpot.fit import ALSFitter, FitSettings, Weights

from fitdata import rel_errors, student_for, teacher_data


def test_recovers_known_pair_polynomial():
    """A degree-1 polynomial in the features (a species-dependent pair potential) lies in an
    order-3 model's space; from the constant-path initialization one sweep recovers it exactly."""
    teacher, train, test = teacher_data(order=1, rank=1, n_train=10, n_test=4)
    student = student_for(teacher, order=3, rank=2, noise=0.0)
    ALSFitter(student, train, settings=FitSettings(sweeps=1, ridge=0.0, radial_steps=0), normalize=False, progress=False).run()
    for data in (train, test):
        e, f = rel_errors(student, data)
        assert e < 1e-9 and f < 1e-9, (e, f)


def test_dmrg_recovers_order2_teacher_exactly():
    """Two-site DMRG with rank adaptation: an order-2 teacher (three-body polynomial) is recovered to
    machine precision on training and held-out configurations; the ranks adapt per irrep."""
    teacher, train, test = teacher_data(order=2, rank=2, n_train=16, n_test=4)
    student = student_for(teacher, order=2, rank=2, noise=1e-3)
    f = ALSFitter(student, train, settings=FitSettings(sweeps=2, ridge=0.0, two_site=True, cutoff=1e-12, radial_steps=0),
                  normalize=False, progress=False)
    f.run()
    for data in (train, test):
        e, fr = rel_errors(student, data)
        assert e < 1e-9 and fr < 1e-9, (e, fr)
    assert f.history[0]["steps"][0]["sites"] == 2


def test_teacher_student_same_ranks_order3():
    """A fresh model of the teacher's ranks (order 3, several irreps) fitted by one-site ALS with
    Levenberg–Marquardt refinement.  Recovery is to ~1e-3 relative (forces) within the test's budget, not to
    machine precision: from a fresh start the shared-feature TT fit converges only linearly."""
    teacher, train, test = teacher_data(order=3, rank=2, noise=0.05, n_train=16, n_test=4)
    student = student_for(teacher, order=3, rank=2, noise=1e-4)
    before = rel_errors(student, train)
    ALSFitter(student, train, settings=FitSettings(sweeps=3, ridge=0.0, lm_steps=1, tol=0, radial_steps=0),
              normalize=False, progress=False).run()
    after = rel_errors(student, train)
    held = rel_errors(student, test)
    assert after[0] < 1e-4 and after[1] < 5e-3 and held[1] < 3e-2, (after, held)
    assert after[1] < 1e-2 * before[1]


def test_objective_never_increases_over_micro_steps():
    teacher, train, _ = teacher_data(order=3, rank=2, noise=0.3, n_train=8, n_test=1)
    student = student_for(teacher, order=3, rank=2, noise=0.1)
    f = ALSFitter(student, train, settings=FitSettings(ridge=1e-4), normalize=False, progress=False)
    f._right_canonical()
    tt = student.tt
    objs = [f.objective()]
    for sweep in range(2):
        ks = range(3) if sweep % 2 == 0 else range(2, -1, -1)
        for k in ks:
            f.micro_step(k)
            objs.append(f.objective())
            if sweep % 2 == 0 and k < 2:
                tt.orthogonalize_left(k)
            elif sweep % 2 == 1 and k > 0:
                tt.orthogonalize_right(k)
    objs = np.array(objs)
    assert np.all(np.diff(objs) <= 1e-12 * objs[:-1]), objs


def test_ridge_on_centre_equals_full_tensor_norm():
    teacher, train, _ = teacher_data(order=3, rank=2, n_train=2, n_test=1)
    tt = teacher.tt.copy()
    full = tt.norm_squared()
    for k in range(2, 0, -1):
        tt.orthogonalize_right(k)
    c = tt.core_vector(0)
    np.testing.assert_allclose(np.sum(tt.core_weights(0) * c * c), full, rtol=1e-10)


def test_dmrg_truncation_respects_max_rank_and_reports_discarded_weight():
    teacher, train, _ = teacher_data(order=3, rank=2, noise=0.3, n_train=10, n_test=1)
    student = student_for(teacher, order=3, rank=2, noise=0.1)
    f = ALSFitter(student, train, settings=FitSettings(sweeps=1, ridge=1e-6, two_site=True, max_rank=1, radial_steps=0),
                  normalize=False, progress=False)
    f.run()
    for bond in student.tt.bonds[1:-1]:
        assert all(m <= 1 for _, m in bond)
    steps = f.history[0]["steps"]
    assert all("discarded" in s for s in steps) and max(s["discarded"] for s in steps) > 0
    # and a larger cap lets a rank grow above the starting one
    g = ALSFitter(student, train, settings=FitSettings(sweeps=1, ridge=1e-6, two_site=True, max_rank=4, radial_steps=0),
                  e0="keep", normalize=False, progress=False)
    g.run()
    assert max(m for b in student.tt.bonds[1:-1] for _, m in b) > 1


def _small_fit(tmp_path, name, sweeps, checkpoint=True, resume_from=None):
    teacher, train, test = teacher_data(order=3, rank=2, noise=0.3, n_train=8, n_test=2)
    settings = FitSettings(sweeps=sweeps, ridge=1e-6, tol=0, patience=99)
    ckpt = str(tmp_path / f"{name}.ckpt") if checkpoint else None
    if resume_from:
        f = ALSFitter.resume(resume_from, train, test, settings=settings, progress=False)
    else:
        pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=3, l_max=2, rank=2, seed=3, n_basis=4,
                                         init="constant", noise=1e-2)
        f = ALSFitter(pot, train, test, settings=settings, checkpoint=ckpt, progress=False)
    f.run()
    return f


def test_resume_equals_uninterrupted(tmp_path):
    full = _small_fit(tmp_path, "full", sweeps=4)
    _small_fit(tmp_path, "part", sweeps=2)  # "interrupted" after 2 sweeps: its checkpoint holds sweep 2
    resumed = _small_fit(tmp_path, "part", sweeps=4, resume_from=str(tmp_path / "part.ckpt"))
    h1 = full.pot.save(tmp_path / "a.etn")
    h2 = resumed.pot.save(tmp_path / "b.etn")
    for k in range(3):
        np.testing.assert_array_equal(full.pot.tt.core_vector(k), resumed.pot.tt.core_vector(k))
    np.testing.assert_array_equal(full.pot.e0, resumed.pot.e0)
    assert h1 == h2


def test_same_seed_bit_identical_file(tmp_path):
    a = _small_fit(tmp_path, "x", sweeps=2, checkpoint=False)
    b = _small_fit(tmp_path, "y", sweeps=2, checkpoint=False)
    assert a.pot.save(tmp_path / "x.etn") == b.pot.save(tmp_path / "y.etn")
    assert (tmp_path / "x.etn").read_bytes() == (tmp_path / "y.etn").read_bytes()


def test_history_validation_and_early_stopping():
    teacher, train, test = teacher_data(order=2, rank=2, noise=0.3, n_train=10, n_test=3)
    student = student_for(teacher, order=2, rank=2, noise=0.1)
    f = ALSFitter(student, train, test, settings=FitSettings(sweeps=30, ridge=1e-3, tol=0.5, patience=1, radial_steps=0),
                  normalize=False, progress=False)
    hist = f.run()
    assert 1 < len(hist) < 30  # stopped early
    assert all(h["validation"]["forces"]["rmse"] >= 0 for h in hist)
    assert student.metadata["fit"]["best_sweep"] is not None


def test_config_type_weights_change_the_fit():
    teacher, train, _ = teacher_data(order=2, rank=2, noise=0.3, n_train=10, n_test=1)
    fits = []
    for w in ({}, {"odd": {"forces": 0.0, "energy": 0.0}}):
        s = student_for(teacher, order=2, rank=1, noise=0.1)
        ALSFitter(s, train, weights=Weights(config_types=w), settings=FitSettings(sweeps=2, radial_steps=0),
                  normalize=False, progress=False).run()
        fits.append(s.tt.core_vector(0))
    assert np.abs(fits[0] - fits[1]).max() > 1e-6


def test_unknown_species_in_training_data_is_named():
    teacher, train, _ = teacher_data(order=1, rank=1, n_train=3, n_test=1)
    pot = etnpot.ETNPotential.random(["Si"], r_cut=3.8, order=2, l_max=1, rank=1)
    with pytest.raises(ValueError, match=r"training configuration 0\b.*\['C'\]"):
        ALSFitter(pot, train, progress=False)


def test_radial_and_lm_steps_lower_the_objective():
    """The nonlinear steps (radial/species weights; all cores jointly) are accepted only when the
    objective decreases: check they do decrease it on a misfit student."""
    teacher, train, _ = teacher_data(order=2, rank=2, noise=0.3, n_train=8, n_test=1)
    student = student_for(teacher, order=2, rank=2, noise=0.1)
    student.basis.radial_weights *= 1.0 + 0.1 * np.random.default_rng(0).normal(size=student.basis.radial_weights.shape)
    f = ALSFitter(student, train, settings=FitSettings(sweeps=1, ridge=1e-8, radial_steps=0), normalize=False, progress=False)
    f.run()
    for step in (f.radial_step, f.lm_step):
        info = step()
        assert info["accepted"] and info["loss"] < info["loss_before"], info


def test_restoring_the_best_sweep_restores_every_fitted_parameter():
    """Early stopping restores the best sweep: the cores, E0 *and* the radial/species weights
    (which the radial steps change), so the restored model predicts exactly as the best one did."""
    teacher, train, test = teacher_data(order=2, rank=2, noise=0.3, n_train=6, n_test=2)
    student = student_for(teacher, order=2, rank=2, noise=0.1)
    f = ALSFitter(student, train, test, settings=FitSettings(sweeps=1), normalize=False, progress=False)
    f.run()
    best = f.best[2]
    student.tt.set_core_vector(0, student.tt.core_vector(0) * 1.1)  # later sweeps moved every part
    student.e0 = student.e0 + 0.1
    student.basis.radial_weights = student.basis.radial_weights * 1.05
    f._restore_best()
    atoms = [c.atoms for c in test]
    a, b = student.compute(atoms), best.compute(atoms)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_negative_or_unknown_weights_are_errors_that_name_the_key():
    import pytest as _pytest

    from etnpot.fit import Weights

    with _pytest.raises(ValueError, match="weights.stress"):
        Weights(stress=-1.0)
    with _pytest.raises(ValueError, match="weights.config_types.Surface.energy"):
        Weights(config_types={"Surface": {"energy": -5.0}})
    with _pytest.raises(ValueError, match="unknown key 'force'"):
        Weights(config_types={"Surface": {"force": 1.0}})
    assert Weights(energy=0.0).energy == 0.0


def test_radial_steps_above_max_radial_params_are_skipped_with_a_warning(caplog):
    """A radial step on many feature parameters would cost ~100 core solves: it is skipped,
    said in the log, and not counted as a step of the sweep."""
    import logging

    teacher, train, _ = teacher_data(order=2, rank=2, n_train=4, n_test=1)
    s = student_for(teacher, 2, 2, noise=1e-2)
    n_feat = s.feature_parameter_vector().size
    f = ALSFitter(s, train, settings=FitSettings(sweeps=1, radial_steps=1, max_radial_params=n_feat - 1),
                  normalize=False, progress=False)
    with caplog.at_level(logging.WARNING, logger="etnpot.fit"):
        f.run()
    assert any("max_radial_params" in r.message for r in caplog.records)
    assert not any(st.get("kind") == "radial" for st in f.history[0]["steps"])
    g = ALSFitter(student_for(teacher, 2, 2, noise=1e-2), train, progress=False, normalize=False,
                  settings=FitSettings(sweeps=1, radial_steps=1, max_radial_params=n_feat))
    g.run()
    assert any(st.get("kind") == "radial" for st in g.history[0]["steps"])  # the control: at the limit it runs


def test_underdetermined_fit_warns_and_a_well_determined_one_does_not(caplog):
    import logging

    from etnpot import defaults as D
    from fitdata import diverse_cells, label

    teacher = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=2, l_max=2, rank=2, n_basis=4, n_channels=4)
    data = label(teacher, diverse_cells(24, seed=3))
    for n, warns in ((2, True), (24, False)):
        pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=2, l_max=2, rank=2, n_basis=4, n_channels=4)
        rows = n + 3 * sum(len(c.atoms) for c in data[:n])
        assert (rows < D.MIN_ROWS_PER_PARAMETER * pot.tt.num_parameters) == warns  # the two cases straddle the bound
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="etnpot.fit"):
            etnpot.ALSFitter(pot, data[:n], settings=etnpot.FitSettings(sweeps=1), progress=False)
        assert any("rows" in r.message and "parameters" in r.message for r in caplog.records) == warns
