"""One set of defaults (etnpot/defaults.py): the config, the dataclasses and the model constructors
agree, and a fit from Python with default objects equals ``etnpot fit`` given only the data."""
import dataclasses
import inspect

import numpy as np
import pytest

import etnpot
from etnpot import defaults as D
from etnpot.config import DEFAULTS, validate_config
from etnpot.fit import ALSFitter, FitSettings, Weights

from fitdata import teacher_data


def test_every_home_of_a_default_agrees():
    assert {k: v for k, v in DEFAULTS["model"].items() if k != "species"} == dict(D.MODEL)
    assert {k: DEFAULTS["fit"][k] for k in D.FIT} == dict(D.FIT)
    assert (DEFAULTS["fit"]["init"], DEFAULTS["fit"]["init_noise"]) == (D.INIT["init"], D.INIT["noise"])
    assert DEFAULTS["fit"]["e0"] == D.E0 and DEFAULTS["fit"]["active_set"] == D.ACTIVE_SET
    assert DEFAULTS["fit"]["size_to_data"] == D.SIZE_TO_DATA and DEFAULTS["fit"]["try_order4"] == D.TRY_ORDER4
    assert {k: DEFAULTS["weights"][k] for k in D.WEIGHTS} == dict(D.WEIGHTS)
    assert DEFAULTS["data"]["validation_fraction"] == D.VALIDATION_FRACTION
    assert dataclasses.asdict(FitSettings()) == dict(D.FIT)  # the same fields, the same values
    w = Weights()
    assert (w.energy, w.forces, w.stress, w.config_types) == (*D.WEIGHTS.values(), {})
    params = inspect.signature(etnpot.ETNPotential.build).parameters
    assert {k: params[k].default for k in D.MODEL} == dict(D.MODEL)
    params = inspect.signature(etnpot.ETNPotential.random).parameters  # passes the others on to build
    assert {k: params[k].default for k in ("r_cut", "order", "l_max", "rank")} == {k: D.MODEL[k] for k in
                                                                                   ("r_cut", "order", "l_max", "rank")}
    assert inspect.signature(ALSFitter).parameters["e0"].default == D.E0
    from etnpot.data import split_train_validation
    from etnpot.grade import fit_active_set
    from etnpot.metrics import predict

    assert inspect.signature(split_train_validation).parameters["fraction"].default == D.VALIDATION_FRACTION
    for fn in (fit_active_set, predict):  # the CLI passes [fit] chunk_atoms: the same batches from Python
        assert inspect.signature(fn).parameters["chunk_atoms"].default == D.FIT["chunk_atoms"], fn.__name__


def test_defaults_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        D.WEIGHTS["energy"] = 1.0


def test_python_fit_with_default_objects_equals_the_cli_fit_given_only_data(tmp_path):
    """The same data fitted by ``run_fit`` from a config that names only the training file, and
    from Python with ``Weights()``, ``FitSettings()``, ``ETNPotential.random(species,
    **defaults.INIT)`` and the default split: identical cores and predictions.  To be fast, both
    fit one sweep of a tiny model (order, l_max, rank, n_basis given; the other hyper-parameters
    are the defaults)."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from etnpot.data import read_dataset, split_train_validation
    from etnpot.workflow import run_fit

    _, train, test = teacher_data(order=2, rank=2, n_train=10, n_test=2)
    frames = []
    for c in train:
        a = c.atoms.copy()
        a.calc = SinglePointCalculator(a, energy=c.energy, forces=c.forces, stress=c.stress)
        frames.append(a)
    write(tmp_path / "train.xyz", frames, format="extxyz")
    tiny = {"order": 2, "l_max": 1, "rank": 2, "n_basis": 3}
    cfg = validate_config({"data": {"train": [str(tmp_path / "train.xyz")]}, "fit": {"sweeps": 1}, "model": tiny,
                           "output": {"model": str(tmp_path / "cli.etn")}})
    cli, _ = run_fit(cfg, progress=False, out=lambda s: None)

    data = read_dataset(tmp_path / "train.xyz")
    tr, va = split_train_validation(data, seed=FitSettings().seed)
    pot = etnpot.ETNPotential.random(["C", "Si"], **tiny, **D.INIT)
    ALSFitter(pot, tr, va, Weights(), FitSettings(sweeps=1), progress=False).run()

    assert pot.metadata["hyperparameters"] == cli.metadata["hyperparameters"]
    for k in range(pot.order):
        np.testing.assert_array_equal(pot.tt.core_vector(k), cli.tt.core_vector(k))
    atoms = [c.atoms for c in test]
    a, b = pot.compute(atoms), cli.compute(atoms)
    for key in ("energy", "forces", "stress"):
        np.testing.assert_array_equal(a[key], b[key])


def test_top_level_names_do_not_shadow_submodules():
    """``import etnpot.fit as F`` must give the module (a function of the same name exported at
    the top level would be returned instead)."""
    import importlib
    import types

    import etnpot

    for name in ("fit", "objective", "steps", "linearization", "growth", "prune", "evaluation", "data", "metrics"):
        mod = importlib.import_module(f"etnpot.{name}")
        if name in vars(etnpot) and not isinstance(vars(etnpot)[name], types.ModuleType):
            assert name == "prune", name  # etnpot.prune is the function; its module is etnpot.prune via importlib
        assert mod.__name__ == f"etnpot.{name}"
    import etnpot.fit as F

    assert isinstance(F, types.ModuleType) and hasattr(F, "ALSFitter")
