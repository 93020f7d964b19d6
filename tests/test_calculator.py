import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

import etnpot

from conftest import random_cluster, rattled_triclinic


def test_properties_and_ase_numerical_derivatives(small_pot):
    atoms = rattled_triclinic(21)
    atoms.calc = etnpot.ETNCalculator(small_pot)
    e = atoms.get_potential_energy()
    assert atoms.get_potential_energy(force_consistent=True) == e
    f = atoms.get_forces()
    np.testing.assert_allclose(f, calculate_numerical_forces(atoms, eps=1e-5), atol=1e-7)
    s = atoms.get_stress()
    np.testing.assert_allclose(s, calculate_numerical_stress(atoms, eps=1e-5), atol=1e-8)
    # the per-atom arrays are the potential's, atom for atom (they are checked against finite
    # differences and locality in test_potential.py; to rounding: the calculator's reused
    # neighbour list orders an atom's pairs differently); ASE's own stress conversion agrees
    ref = small_pot.compute(atoms)
    np.testing.assert_allclose(atoms.get_potential_energies(), ref["energies"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(atoms.get_stresses(), ref["stresses"], rtol=1e-12, atol=1e-16)
    np.testing.assert_array_equal(atoms.get_stress(voigt=False), atoms.calc.results["stress"][[0, 5, 4, 5, 1, 3, 4, 3, 2]].reshape(3, 3))
    assert np.ptp(ref["energies"]) > 1e-3


def test_caching(small_pot):
    atoms = rattled_triclinic(22)
    calc = etnpot.ETNCalculator(small_pot)
    atoms.calc = calc
    atoms.get_potential_energy()
    n = calc.n_calls
    atoms.get_forces()
    atoms.get_potential_energy()
    assert calc.n_calls == n  # nothing changed: cached
    atoms.positions[0, 0] += 0.01
    e2 = atoms.get_potential_energy()
    assert calc.n_calls == n + 1
    atoms.set_atomic_numbers(atoms.numbers[::-1])
    assert atoms.get_potential_energy() != e2 and calc.n_calls == n + 2


def test_stress_of_molecule_raises(small_pot):
    atoms = random_cluster(3)
    atoms.calc = etnpot.ETNCalculator(small_pot)
    atoms.get_forces()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_calculator_from_file(small_pot, tmp_path):
    path = tmp_path / "m.etn"
    small_pot.save(path)
    atoms = rattled_triclinic(23)
    atoms.calc = etnpot.ETNCalculator(str(path))
    e = atoms.get_potential_energy()
    assert e == pytest.approx(small_pot.compute(atoms)["energy"][0], rel=1e-13, abs=0)


def test_verlet_conserves_energy(small_pot):
    """Forces consistent with the energy along a trajectory: NVE drift is O(dt^2).

    (A random, unfitted polynomial has large forces, so the step is small and the run short;
    stability of fitted models is tested with the fitting code.)"""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    drifts = []
    for dt in (0.02, 0.01):
        atoms = rattled_triclinic(24, repeat=(2, 2, 1))
        atoms.calc = etnpot.ETNCalculator(small_pot)
        e0 = atoms.get_total_energy()
        VelocityVerlet(atoms, dt * units.fs).run(int(round(0.4 / dt)))
        assert atoms.get_kinetic_energy() > 1e-3  # it moved
        drifts.append(abs(atoms.get_total_energy() - e0))
    assert drifts[1] < 0.5 * drifts[0] and drifts[1] < 1e-3


def test_stress_only_once_asked(small_pot):
    """Forces-only steps skip the stress; the first request computes it (equal to a fresh
    evaluation), and later steps keep computing it."""
    atoms = rattled_triclinic(25)
    calc = etnpot.ETNCalculator(small_pot)
    atoms.calc = calc
    atoms.get_forces()
    assert "stress" not in calc.results and calc.n_calls == 1
    ref = small_pot.compute(atoms)
    np.testing.assert_allclose(atoms.get_stress(), ref["stress"][0], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(atoms.get_stresses(), ref["stresses"], rtol=1e-12, atol=1e-16)
    assert calc.n_calls == 2
    atoms.positions[0, 0] += 0.01
    atoms.get_forces()
    assert "stress" in calc.results and calc.n_calls == 3


def test_extrapolation_warned_once_then_summarised(graded):
    """300 evaluations above the threshold: one full warning at the first, then one summary per
    ``summary_interval`` evaluations naming the count, the largest grade and its step (today's
    calculator warned at every evaluation)."""
    import warnings

    from etnpot.grade import ExtrapolationWarning

    pot, train = graded
    atoms = train[0].atoms.copy()
    atoms.positions *= 0.93
    atoms.calc = etnpot.ETNCalculator(pot, grade_threshold=0.5, summary_interval=100)
    worst = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for k in range(300):
            atoms.positions[0, 0] += 0.001 * (-1) ** k
            atoms.get_potential_energy()
            worst.append(atoms.calc.results["extrapolation_grades"].max())
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExtrapolationWarning)]
    assert min(worst) > 0.5  # every evaluation crosses the threshold
    assert len(msgs) == 4, msgs
    assert msgs[0].startswith("step 1: extrapolation grade") and "summarised every 100" in msgs[0]
    # first window: evaluations 2..100 (the first was warned about on its own)
    assert msgs[1].startswith("steps 2-100: extrapolation grade > 0.5 in 99 of 100 evaluations")
    best = 1 + int(np.argmax(worst[1:100])) + 1
    assert f"largest {max(worst[1:100]):.3g} at step {best}" in msgs[1]
    assert msgs[3].startswith("steps 201-300:") and "in 100 of 100" in msgs[3]
    s = atoms.calc.extrapolation_summary()
    assert s["evaluations"] == 300 and s["over_threshold"] == 300
    assert s["max_grade"] == pytest.approx(max(worst)) and s["max_grade_step"] == 1 + int(np.argmax(worst))


def test_extrapolation_summary_interval_zero_and_flush(graded):
    import warnings

    from etnpot.grade import ExtrapolationWarning

    pot, train = graded
    atoms = train[0].atoms.copy()
    atoms.positions *= 0.93
    atoms.calc = etnpot.ETNCalculator(pot, grade_threshold=0.5, summary_interval=0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for k in range(20):
            atoms.positions[1, 1] += 0.001 * (-1) ** k
            atoms.get_potential_energy()
        atoms.calc.extrapolation_summary(flush=True)
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExtrapolationWarning)]
    assert len(msgs) == 2 and msgs[1].startswith("steps 2-20: extrapolation grade > 0.5 in 19 of 20 evaluations")
    with pytest.raises(ValueError, match="summary_interval"):
        etnpot.ETNCalculator(pot, summary_interval=-1)
