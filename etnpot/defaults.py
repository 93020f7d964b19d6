"""Every default of a fit, defined once.

The values are those of ``etnpot fit`` (the campaigns in ``fitting/`` validated them).  The
other homes of a default are derived from here: the ``[model]``, ``[fit]``, ``[weights]`` and
``[data]`` defaults of :mod:`etnpot.config`, the field defaults of :class:`etnpot.fit.Weights`
and :class:`etnpot.fit.FitSettings`, the signature defaults of :meth:`etnpot.ETNPotential.build`
and :meth:`~etnpot.ETNPotential.random`, and :func:`etnpot.data.split_train_validation`.  So a
fit from Python with default objects and ``etnpot fit`` with only the data given fit the same
model (``tests/test_defaults.py``); ``etnpot fit`` may also fit other candidates beside it and
keep the best on validation (``SIZE_TO_DATA``, ``TRY_ORDER4``: :mod:`etnpot.sizing`).

The mappings are read-only; copy them (``dict(MODEL)``) to change a value.
"""
from types import MappingProxyType

__all__ = ["MODEL", "INIT", "FIT", "WEIGHTS", "E0", "ACTIVE_SET", "VALIDATION_FRACTION", "COMPRESS", "MIN_ROWS_PER_PARAMETER",
           "SIZE_TO_DATA", "TRY_ORDER4", "EXTRAPOLATION"]

#: hyper-parameters of the model (:meth:`etnpot.ETNPotential.build`); ``None`` means derived:
#: ``r_min = 0.3 r_cut``, ``n_channels`` and ``species_rank`` from the species, ``bond_l_max = l_max``
MODEL = MappingProxyType({
    "r_cut": 5.0,
    "r_min": None,
    "order": 3,
    "l_max": 2,
    "rank": 3,
    "n_basis": 6,
    "n_channels": None,
    "species_rank": None,
    "o3": True,
    "bond_l_max": None,
})

#: how the fit's starting model is drawn (``ETNPotential.random(..., init=, noise=)``; config keys
#: ``[fit] init`` and ``init_noise``).  ``random()`` on its own keeps ``init="random", noise=1``: a
#: generic random model, for tests.
INIT = MappingProxyType({"init": "constant", "noise": 1e-3})

#: settings of the ALS/DMRG fit (:class:`etnpot.fit.FitSettings`, config section ``[fit]``)
FIT = MappingProxyType({
    "sweeps": 6,
    "ridge": 1e-8,
    "two_site": False,
    "max_rank": None,
    "cutoff": 0.0,
    "max_supercore": 20000,
    "lm_steps": 0,
    "max_lm_params": 8000,
    # 0: the raw (species-resolved) channels are not refitted.  A radial step's rows cost 95x a
    # middle core's on four species (benchmarks/bench_radial.py, output in
    # benchmarks/results/bench_radial_20261201.txt), and one step per sweep made the Zuo Si fit
    # 2.7x longer for the same validation error (fitting/zuo2020/Si_rad.report.json); no chosen
    # model in fitting/ uses them.  Switch them on for few species, or with the embedding.
    "radial_steps": 0,
    "max_radial_params": 600,
    # tie of the species-resolved channels to their species mean (etnpot.steps.species_tie_penalty),
    # per training configuration like the ridge; 0: off; "auto": SPECIES_TIE_MANY for three or more
    # species with species-resolved channels where some three species never meet in the training
    # data (etnpot.fit.species_tie_for), else off
    "species_tie": "auto",
    "tol": 1e-4,
    "patience": 2,
    "chunk_atoms": 3000,
    "memory_mb": 256.0,
    "seed": 0,
})

#: the species tie of ``species_tie = "auto"`` for three or more species.  On the alloy proxy of
#: fitting/transfer (four EMT metals trained on elements and binaries; medians over four draws of
#: the data, fitting/transfer/seeds.md) it lowered the quaternary test RMSE from 15.1 to 7.0
#: meV/atom and from 0.144 to 0.091 eV/Å, for held-out binary errors of 2.58 / 0.053 against
#: 2.35 / 0.050 untied; 1 kept the binaries (2.44 / 0.049) and transferred less (10.0 / 0.099),
#: 3 and 10 cost 30-80 % in domain.  Like the ridge it is per training configuration.  Where every
#: three species meet in the training data it only costs: on a five-species set of five-component
#: cells (fitting/transfer/sizing_tie2_ae820c0.txt) it moved the sized model's test force RMSE from
#: 0.073 to 0.095 eV/Å at 4,800 atoms, so "auto" leaves it off there.
SPECIES_TIE_MANY = 2.0

#: loss weights (:class:`etnpot.fit.Weights`, config section ``[weights]``): energy per
#: (eV/atom)^-2, forces per (eV/Å)^-2, stress per (eV/Å^3)^-2
WEIGHTS = MappingProxyType({"energy": 30000.0, "forces": 1.0, "stress": 0.0})

#: per-species reference energies: ``"fit"`` (least squares on composition, refined in the fit)
E0 = "fit"

#: compute the extrapolation grade's active set after a (local) fit
ACTIVE_SET = True

#: share of the training configurations held out for validation when none is given
VALIDATION_FRACTION = 0.1

#: ``etnpot compress`` / :func:`etnpot.compress`: ALS sweeps of the refit after the projection
COMPRESS = MappingProxyType({"sweeps": 2})

#: the fit warns when the training data give fewer rows than this per tensor-train parameter
#: (the chosen Zuo fits have 5.7-102, fitting/sizing/zuo_rows.py: Mo l_max 4, at 5.7, already fits its training forces twice as
#: well as its validation forces; a five-species example with 1.19 fitted its training energies
#: 500 times better than its validation energies: fitting/sizing/README.md)
MIN_ROWS_PER_PARAMETER = 5

#: ``etnpot fit`` also fits smaller models (l_max lowered) where the training data give fewer than
#: MIN_ROWS_PER_PARAMETER rows per parameter, and keeps the best on validation (etnpot.sizing;
#: config key ``[fit] size_to_data``)
SIZE_TO_DATA = True

#: ``etnpot fit`` also fits order 4 beside an order-3 model of rank r with several species (the
#: scalar bond channels at rank r, the others at r - 1) and keeps the better on validation
#: (etnpot.sizing.order4_alternative; config key ``[fit] try_order4``: "auto", true, false).  On
#: InP at <= 1,000 parameters order 4 cut the validation energy MAE by 53 % and the force MAE by
#: 21 % (fitting/inp/README.md), and it won on a five-species EMT set at 4,800 training atoms (not
#: at 1,600; fitting/sizing/README.md);
#: on a four-metal set of elements and binaries order 4 lost in domain
#: (fitting/transfer/README.md): a choice on validation, not a new default order.
TRY_ORDER4 = "auto"

#: extrapolation warnings of the ASE calculator and the LAMMPS coupling (:class:`etnpot.grade.ExtrapolationMonitor`):
#: warn above ``grade_threshold`` (the grade is 1 at most on the training data), once per
#: calculator when first crossed; after that one summary every ``summary_interval`` evaluations
#: (ASE calls, LAMMPS steps) in which it was crossed again (0: no summaries, only the first warning
#: and the end-of-run total)
EXTRAPOLATION = MappingProxyType({"grade_threshold": 5.0, "summary_interval": 100})
