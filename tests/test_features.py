"""One-particle features (etnpot/features.py): species-resolved channels, equivariance with its
negative control, derivatives against finite differences, normalization."""
import numpy as np
import pytest
from ase import Atoms

import etnpot
from etnpot.so3 import random_rotation, wigner_D

from conftest import random_cluster, rattled_triclinic


def test_default_features_tell_neighbour_species_apart():
    """Several species: the default raw channels are one per (Chebyshev function, neighbour
    species), so a centre with only C neighbours has zero Si-neighbour channels and vice versa.
    Negative control: with n_channels = n_basis the channels are species-blind (identical)."""
    a = Atoms("SiC2", positions=[[0, 0, 0], [1.9, 0, 0], [0, 1.9, 0]])  # Si has only C neighbours
    b = Atoms("Si3", positions=[[0, 0, 0], [1.9, 0, 0], [0, 1.9, 0]])  # Si has only Si neighbours
    pot = etnpot.ETNPotential.build(["Si", "C"], r_cut=3.0, order=2, l_max=1, rank=1, n_basis=4)
    assert pot.basis.n_channels == 8
    (fa, *_), _ = pot.basis.compute(pot.graph([a]))
    (fb, *_), _ = pot.basis.compute(pot.graph([b]))
    si_ch, c_ch = slice(0, 4), slice(4, 8)  # channel k N + n: neighbour species k (0 = Si, 1 = C)
    assert np.allclose(fa[0, 0, si_ch], 0) and np.abs(fa[0, 0, c_ch]).max() > 0.1
    assert np.allclose(fb[0, 0, c_ch], 0) and np.abs(fb[0, 0, si_ch]).max() > 0.1
    blind = etnpot.ETNPotential.build(["Si", "C"], r_cut=3.0, order=2, l_max=1, rank=1, n_basis=4, n_channels=4)
    (ga, *_), _ = blind.basis.compute(blind.graph([a]))
    (gb, *_), _ = blind.basis.compute(blind.graph([b]))
    assert np.allclose(ga[0, 0, :4], gb[0, 0, :4])


@pytest.fixture(scope="module")
def basis_and_graph():
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=4.0, order=2, l_max=3, rank=1, seed=3, n_basis=4)
    pot.basis.species_weights += 0.3 * np.random.default_rng(1).normal(size=pot.basis.species_weights.shape)
    pot.basis.radial_weights += 0.3 * np.random.default_rng(2).normal(size=pot.basis.radial_weights.shape)
    pot.basis.normalize(pot.graph([rattled_triclinic(40)]))
    return pot


def test_features_rotate_with_wigner_D(basis_and_graph, rng):
    """F_l(R x) = D^l(R) F_l(x) for proper and improper R (natural parity is in D); negative
    control: the l >= 1 blocks are not invariant, so the test compares non-trivial numbers."""
    pot = basis_and_graph
    atoms = random_cluster(41, n=8)
    F, _ = pot.basis.compute(pot.graph([atoms]))
    for reflect in (False, True):
        R = random_rotation(rng, reflection=reflect)
        moved = atoms.copy()
        moved.positions = atoms.positions @ R.T
        G, _ = pot.basis.compute(pot.graph([moved]))
        for l in range(pot.basis.l_max + 1):
            np.testing.assert_allclose(G[l], np.einsum("mn,ink->imk", wigner_D(l, R), F[l]), atol=1e-12)
            if l >= 1:
                assert np.abs(G[l] - F[l]).max() > 1e-2


def test_pair_tangents_and_pair_gradients_fd(basis_and_graph, rng):
    """dF_i/dr_ij (pair_tangents) and the chain rule to the pairs (pair_gradients) against central
    finite differences in the pair vectors."""
    pot = basis_and_graph
    g = pot.graph([random_cluster(42, n=6)])
    F, cache = pot.basis.compute(g)
    weights = [rng.normal(size=f.shape) for f in F]  # a linear functional: E = sum_l <w_l, F_l>
    gp = pot.basis.pair_gradients(weights, cache)
    h = 1e-6
    for e in range(0, g.n_pairs, 3):
        for a in range(3):
            fd = []
            for sgn in (1, -1):
                v = g.vectors.copy()
                v[e, a] += sgn * h
                gg = type(g)(**{**g.__dict__, "vectors": v})
                fd.append(pot.basis.compute(gg)[0])
            i = g.i[e]
            for l in range(pot.basis.l_max + 1):
                d = (fd[0][l] - fd[1][l]) / (2 * h)
                np.testing.assert_allclose(pot.basis.pair_tangents(cache, l)[e, a], d[i], atol=1e-7)
            dE = sum(np.sum(w * (p - m)) for w, p, m in zip(weights, fd[0], fd[1])) / (2 * h)
            np.testing.assert_allclose(gp[e, a], dE, rtol=1e-6, atol=1e-7)


def test_normalization_centres_and_scales(basis_and_graph):
    """After normalize: the l = 0 radial channels have zero mean per centre species, and every
    (l, channel) has unit RMS over atoms and m on the data it was set from."""
    pot = basis_and_graph
    g = pot.graph([rattled_triclinic(40)])
    F, _ = pot.basis.compute(g)
    C = pot.basis.n_channels
    for s in range(2):
        np.testing.assert_allclose(F[0][g.species == s, 0, :C].mean(0), 0, atol=1e-12)
    for l, f in enumerate(F):
        rms = np.sqrt(np.mean(f[:, :, :C] ** 2, axis=(0, 1)))
        np.testing.assert_allclose(rms, 1.0, rtol=1e-10)
    # the species-indicator channels are the constants, untouched
    np.testing.assert_array_equal(F[0][:, 0, C:], np.eye(2)[g.species])
