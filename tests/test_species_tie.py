"""The species tie (``[fit] species_tie``): a penalty on the species deviations of the
species-resolved channel coefficients (etnpot.steps.species_tie_penalty)."""
import numpy as np
import pytest

import etnpot
from etnpot.steps import species_tie_penalty

from fitdata import diverse_cells, label


def _model(seed=0):
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.5, order=3, l_max=1, rank=2, seed=seed, n_basis=2)
    rng = np.random.default_rng(seed)
    pot.basis.scale[:] = rng.uniform(0.5, 2.0, size=pot.basis.scale.shape)  # unequal channel scales
    return pot


def _full_tensor(tt):
    W = np.ones((1, 1))
    for k in range(tt.order):
        G = tt.full_core(k)
        W = np.einsum("xa,aib->xib", W, G).reshape(-1, G.shape[2])
    return W[:, 0].reshape([tt.full_core(k).shape[1] for k in range(tt.order)])


def _site_tie_norm(pot, k):
    """||D_k W||^2 from the dense coefficient tensor: the operator on the flat input (f, m, c)."""
    ops = pot.basis.species_tie_operators()
    flat = [np.kron(np.eye(ir.dim), ops[f]) for f, (ir, _) in enumerate(pot.tt.inputs)]
    n = sum(b.shape[0] for b in flat)
    Dflat = np.zeros((n, n))
    pos = 0
    for b in flat:
        Dflat[pos:pos + b.shape[0], pos:pos + b.shape[0]] = b
        pos += b.shape[0]
    W = np.moveaxis(_full_tensor(pot.tt), k, 0)
    return float(np.sum(np.tensordot(Dflat, W, axes=(1, 0)) ** 2))


def _centre(tt, k, sites=1):
    for j in range(k):
        tt.orthogonalize_left(j)
    for j in range(tt.order - 1, k + sites - 1, -1):
        tt.orthogonalize_right(j)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_penalty_is_the_tie_of_the_whole_tensor(k):
    pot = _model()
    _centre(pot.tt, k)
    G = species_tie_penalty(pot, k, 1, 2.5, 0)
    x = pot.tt.core_vector(k)
    assert np.sum((G @ x) ** 2) == pytest.approx(2.5 * _site_tie_norm(pot, k), rel=1e-10)


def test_supercore_penalty_sums_both_sites():
    pot = _model(1)
    _centre(pot.tt, 1, sites=2)
    G = species_tie_penalty(pot, 1, 2, 1.0, 3)
    x = np.concatenate([pot.tt.merged_vector(1), np.ones(3)])  # dE0 columns are not penalized
    want = _site_tie_norm(pot, 1) + _site_tie_norm(pot, 2)
    assert np.sum((G @ x) ** 2) == pytest.approx(want, rel=1e-10)


def test_negative_control_off_centre_gauge_differs():
    """Outside the mixed-canonical gauge the centre-core formula is not the tensor's tie: the check
    above can fail."""
    pot = _model(2)
    G = species_tie_penalty(pot, 1, 1, 1.0, 0)  # no orthogonalization
    x = pot.tt.core_vector(1)
    assert abs(np.sum((G @ x) ** 2) / _site_tie_norm(pot, 1) - 1.0) > 1e-3


def test_species_blind_coefficients_are_not_penalized():
    pot = _model(3)
    b = pot.basis
    ops = b.species_tie_operators()
    S, N = b.n_species, b.radial.n_basis
    for l, D in enumerate(ops):
        t = np.zeros(b.channels(l))
        t[: S * N] = np.tile(np.arange(1.0, N + 1), S) * b.scale[l]  # equal unscaled coefficient per species
        t[S * N:] = 7.0  # species indicators (l = 0): free
        assert np.allclose(D @ t, 0.0, atol=1e-12)
        t[0] += 1.0
        assert np.linalg.norm(D @ t) > 0.1


def test_one_species_and_zero_strength_are_no_ops():
    pot = etnpot.ETNPotential.random(["Si"], r_cut=3.5, order=2, l_max=1, rank=2, n_basis=3)
    assert species_tie_penalty(pot, 0, 1, 1.0, 1) is None
    assert species_tie_penalty(_model(), 0, 1, 0.0, 1) is None


def test_embedding_channels_are_an_error_naming_the_key():
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.5, order=2, l_max=1, rank=2, n_basis=3, n_channels=3,
                                     species_rank=1)
    data = label(pot, diverse_cells(4))
    with pytest.raises(ValueError, match="species_tie"):
        etnpot.ALSFitter(pot, data, settings=etnpot.FitSettings(sweeps=1, species_tie=1e-3), progress=False)
    with pytest.raises(ValueError, match="species_tie"):
        etnpot.ALSFitter(_model(), data, settings=etnpot.FitSettings(sweeps=1, species_tie=-1.0), progress=False)


def _deviation(pot):
    """The tie of every site, relative to the squared norm of the whole coefficient tensor (so
    that a penalty that only shrank the tensor, as a ridge does, would not pass)."""
    return sum(_site_tie_norm(pot, k) for k in range(pot.order)) / float(np.sum(_full_tensor(pot.tt) ** 2))


def test_tie_pulls_the_fit_towards_species_blind_coefficients():
    """Relative to the tensor's norm (not only by shrinking it), at the price of a higher data loss."""
    teacher = _model(4)
    data = label(teacher, diverse_cells(12, seed=5))
    fits = {}
    for tie in (0.0, 10.0):
        pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.5, order=3, l_max=1, rank=2, n_basis=2,
                                         init="constant", noise=1e-3, seed=9)
        fitter = etnpot.ALSFitter(pot, data, settings=etnpot.FitSettings(sweeps=2, species_tie=tie), progress=False)
        fitter.run()
        fits[tie] = (_deviation(pot), fitter.data_loss())
    assert fits[10.0][0] < 0.01 * fits[0.0][0]
    assert fits[10.0][1] > fits[0.0][1]


def test_config_key_is_validated():
    from etnpot.config import ConfigError, validate_config

    cfg = validate_config({"data": {"train": ["t.xyz"]}, "fit": {"species_tie": 0.1}})
    assert cfg["fit"]["species_tie"] == 0.1
    assert validate_config({"data": {"train": ["t.xyz"]}})["fit"]["species_tie"] == "auto"  # the default
    for bad in (-1.0, "x"):
        with pytest.raises(ConfigError, match="species_tie"):
            validate_config({"data": {"train": ["t.xyz"]}, "fit": {"species_tie": bad}})


def test_tie_follows_the_channels_after_a_grown_radial_basis():
    """[grow] adds a Chebyshev function as new channels at the end: the tie groups channels by the
    function they carry, not by their index."""
    from etnpot.growth import grow_basis

    pot = _model(5)
    cells = diverse_cells(3, seed=5)
    pot.basis.normalize(pot.graph(cells))
    grown = grow_basis(pot, label(pot, cells)).basis
    layout = grown.channel_layout()
    assert layout is not None and grown.n_channels == 6
    for l, D in enumerate(grown.species_tie_operators()):
        n_of, k_of = layout[l]
        t = np.zeros(grown.channels(l))
        t[:grown.n_channels] = (1.0 + n_of) * grown.scale[l]  # the same unscaled coefficient for every species
        assert np.allclose(D @ t, 0.0, atol=1e-12)
        t[int(np.flatnonzero((n_of == 2) & (k_of == 0))[0])] += 1.0  # a species deviation on the new function
        assert np.linalg.norm(D @ t) > 0.1


def test_mixed_channels_have_no_layout():
    pot = _model(6)
    pot.basis.radial_weights[0, 0] = pot.basis.radial_weights[0, 1]  # two channels carry the same (n, k)
    assert pot.basis.channel_layout() is None and not pot.basis.species_resolved()
    with pytest.raises(ValueError, match="species_tie"):
        pot.basis.species_tie_operators()


def test_auto_tie_is_on_for_three_or_more_resolved_species_only():
    """``species_tie = "auto"`` (the default) ties the channels of three or more species with
    species-resolved channels (defaults.SPECIES_TIE_MANY) where the training data never show some
    three species together, and nothing else: one or two species, a species embedding (no
    resolved channels, where a number would be an error), or data where every three meet."""
    from etnpot import defaults
    from etnpot.fit import species_tie_for, unseen_species_triples

    four = etnpot.ETNPotential.random(["Cu", "Ag", "Au", "Ni"], order=2, l_max=1, rank=2)
    assert species_tie_for(four.basis, "auto") == defaults.SPECIES_TIE_MANY > 0  # unknown data: tie
    assert species_tie_for(four.basis, "auto", unseen_triples=True) == defaults.SPECIES_TIE_MANY
    assert species_tie_for(four.basis, "auto", unseen_triples=False) == 0.0
    assert species_tie_for(four.basis, 0.25, unseen_triples=False) == 0.25
    for pot in (etnpot.ETNPotential.random(["In", "P"], order=2, l_max=1, rank=2),
                etnpot.ETNPotential.random(["Cu"], order=2, l_max=1, rank=2),
                etnpot.ETNPotential.random(["Cu", "Ag", "Au", "Ni"], order=2, l_max=1, rank=2, n_channels=6,
                                           species_rank=2)):
        assert species_tie_for(pot.basis, "auto") == 0.0
    for bad in ("on", -1.0):
        with pytest.raises(ValueError, match="species_tie"):
            species_tie_for(four.basis, bad)
    three = etnpot.ETNPotential.random(["Si", "C", "Ge"], r_cut=3.5, order=2, l_max=1, rank=2, n_basis=2)
    binaries = label(three, diverse_cells(3))  # Si and C only: Ge never meets them
    assert unseen_species_triples(three, binaries) is True
    assert etnpot.ALSFitter(three, binaries, settings=etnpot.FitSettings(sweeps=1),
                            progress=False).species_tie == defaults.SPECIES_TIE_MANY  # the default is "auto"
    ternary = diverse_cells(3, seed=1)
    for a in ternary:  # every cell holds all three species, close enough to be neighbours
        a.symbols[0], a.symbols[1], a.symbols[2] = "Si", "C", "Ge"
    ternary = label(three, ternary)
    assert unseen_species_triples(three, ternary) is False
    assert etnpot.ALSFitter(three, ternary, settings=etnpot.FitSettings(sweeps=1), progress=False).species_tie == 0.0
    assert etnpot.ALSFitter(_model(), label(_model(), diverse_cells(3)), settings=etnpot.FitSettings(sweeps=1),
                            progress=False).species_tie == 0.0
