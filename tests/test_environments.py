"""Species environments (etnpot.environments): the combinations of species seen in training, and
the flag on atoms whose combination is new."""
import warnings

import numpy as np
import pytest
from ase.build import bulk

import etnpot
from etnpot.environments import (describe_environment, environment_codes, record_species_environments,
                                 unseen_environments)
from etnpot.grade import ExtrapolationError, ExtrapolationWarning, fit_active_set

SPECIES = ["Cu", "Ag", "Au"]


def _cell(symbols, seed=0):
    a = bulk("Cu", "fcc", a=3.9, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(seed)
    a.set_chemical_symbols(list(rng.choice(symbols, size=len(a))))
    a.rattle(0.05, seed=seed)
    return a


def _model():
    return etnpot.ETNPotential.random(SPECIES, r_cut=4.0, order=2, l_max=1, rank=2, n_basis=3)


def test_codes_by_hand():
    pot = _model()
    a = bulk("Cu", "fcc", a=3.9, cubic=True)  # 4 atoms: one Ag among Cu
    a.set_chemical_symbols(["Ag", "Cu", "Cu", "Cu"])
    codes = environment_codes(pot.graph([a]), 3, pot.r_cut)
    # the Ag atom (index 1) sees Cu and its own periodic images (Ag); every Cu atom sees Ag and Cu
    assert codes[0] == (1 << 3) | 0b011
    assert all(c == (0 << 3) | 0b011 for c in codes[1:])
    assert describe_environment(codes[0], SPECIES) == "Ag with neighbours Ag, Cu"


def test_cutoff_is_respected():
    pot = _model()
    a = bulk("Cu", "fcc", a=3.9, cubic=True)
    a.set_chemical_symbols(["Ag", "Cu", "Cu", "Cu"])
    near = environment_codes(pot.graph([a]), 3, 2.0)  # no neighbour within 2 Å
    assert list(near) == [1 << 3, 0, 0, 0]


def test_binaries_seen_ternaries_flagged_with_negative_control():
    pot = _model()
    train = [_cell(["Cu", "Ag"], s) for s in range(3)] + [_cell(["Ag", "Au"], s) for s in range(3, 6)]
    record_species_environments(pot, train)
    assert pot.metadata["species_environments"]
    seen_binary = _cell(["Cu", "Ag"], 11)
    assert len(unseen_environments(pot, pot.graph([seen_binary]))) == 0  # the check can pass...
    ternary = _cell(["Cu", "Ag", "Au"], 12)
    flagged = unseen_environments(pot, pot.graph([ternary]))
    assert len(flagged) > 0  # ...and fail
    # training had {Cu, Ag} and {Ag, Au}: exactly the atoms whose centre and neighbours hold both Cu and Au are new
    codes = environment_codes(pot.graph([ternary]), 3, pot.r_cut)
    both = np.array([((int(c) & 0b111) | (1 << (int(c) >> 3))) & 0b101 == 0b101 for c in codes])
    np.testing.assert_array_equal(np.flatnonzero(both), flagged)
    cu_au = _cell(["Cu", "Au"], 13)  # a binary that training never had is flagged too
    assert len(unseen_environments(pot, pot.graph([cu_au]))) > 0


def test_one_species_and_old_models_are_not_checked():
    pot = _model()
    assert len(unseen_environments(pot, pot.graph([_cell(SPECIES)]))) == 0  # no record: no check
    one = etnpot.ETNPotential.random(["Cu"], r_cut=4.0, order=2, l_max=1, rank=2, n_basis=3)
    assert record_species_environments(one, [_cell(["Cu"])]) == []
    assert len(unseen_environments(one, one.graph([_cell(["Cu"])]))) == 0


def test_calculator_warns_and_raises(tmp_path):
    pot = _model()
    train = [_cell(["Cu", "Ag"], s) for s in range(4)]
    fit_active_set(pot, train)  # records the environments too
    pot.save(tmp_path / "m.etn")
    pot = etnpot.load(tmp_path / "m.etn")  # the record survives the model file
    assert pot.metadata["species_environments"]
    a = _cell(["Cu", "Ag", "Au"], 20)
    a.calc = etnpot.ETNCalculator(pot, grade_threshold=1e9)
    with pytest.warns(ExtrapolationWarning, match="combination of species that the training data never showed"):
        a.get_potential_energy()
    assert a.calc.results["unseen_species_environments"] > 0
    b = _cell(["Cu", "Ag"], 21)
    b.calc = etnpot.ETNCalculator(pot, grade_threshold=1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        b.get_potential_energy()
    assert b.calc.results["unseen_species_environments"] == 0
    a.calc = etnpot.ETNCalculator(pot, extrapolation="raise", grade_threshold=1e9)
    with pytest.raises(ExtrapolationError, match="Au"):
        a.get_potential_energy()


def test_check_without_active_set_and_off_switch():
    pot = _model()
    record_species_environments(pot, [_cell(["Cu", "Ag"], s) for s in range(3)])
    assert pot.active_set is None  # e.g. a compressed or pruned model
    a = _cell(["Cu", "Ag", "Au"], 30)
    a.calc = etnpot.ETNCalculator(pot)
    with pytest.warns(ExtrapolationWarning, match="never showed"):
        a.get_potential_energy()
    a.calc = etnpot.ETNCalculator(pot, extrapolation="off")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        a.get_potential_energy()
    assert "unseen_species_environments" not in a.calc.results


def test_too_many_species_is_an_error():
    pot = _model()
    with pytest.raises(ValueError, match="at most 57 species"):
        environment_codes(pot.graph([_cell(["Cu"])]), 58, pot.r_cut)


def test_eval_counts_unseen_environments_per_configuration(tmp_path, capsys):
    """`etnpot eval` counts the atoms and configurations with unseen species environments on the
    graphs of its predictions: the same counts as unseen_environments on each configuration."""
    import json

    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from etnpot.cli import main

    pot = _model()
    record_species_environments(pot, [_cell(["Cu", "Ag"], s) for s in range(3)])
    pot.save(str(tmp_path / "m.etn"))
    cells = [_cell(["Cu", "Ag"], 20), _cell(["Cu", "Ag", "Au"], 21), _cell(["Cu", "Au"], 22)]
    for a in cells:
        a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((len(a), 3)))
    write(tmp_path / "d.xyz", cells, format="extxyz")
    expect = [len(unseen_environments(pot, pot.graph([a]))) for a in cells]
    assert expect[0] == 0 and expect[1] > 0 and expect[2] > 0
    assert main(["eval", str(tmp_path / "m.etn"), str(tmp_path / "d.xyz"), "--json", str(tmp_path / "e.json")]) == 0
    table = json.loads((tmp_path / "e.json").read_text())
    assert table["unseen_species_environments"] == {"atoms": sum(expect), "configurations": 2}


def test_recording_the_same_structures_again_reuses_the_answer(monkeypatch):
    """A second record of the same structures (species, cutoff) does no neighbour pass; changed
    content (a moved atom far enough to change a neighbour set, a new species) is recomputed."""
    pot = _model()
    train = [_cell(["Cu", "Ag"], s) for s in range(2)]
    first = record_species_environments(pot, train)
    calls = []
    real = pot.graph
    monkeypatch.setattr(pot, "graph", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert record_species_environments(pot, [a.copy() for a in train]) == first and calls == []
    assert pot.metadata["species_environments"] == first
    changed = [a.copy() for a in train]
    changed[0].symbols[0] = "Au"  # a new species in one cell: a new answer
    again = record_species_environments(pot, changed)
    assert calls and again != first
    other = _model()  # another model of the same species and cutoff gets the record too
    assert record_species_environments(other, train) == first and other.metadata["species_environments"] == first
