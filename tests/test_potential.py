"""The potential: forces and stress as exact derivatives, symmetries, extensivity, the per-core linear map."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import etnpot
from etnpot.potential import VOIGT
from etnpot.so3 import random_rotation

from conftest import random_cluster, rattled_triclinic


def energy(pot, atoms):
    return pot.compute(atoms, forces=False, stress=False)["energy"][0]


def fd_forces(pot, atoms, h=1e-5):
    f = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[i, a] += h
            m.positions[i, a] -= h
            f[i, a] = -(energy(pot, p) - energy(pot, m)) / (2 * h)
    return f


def fd_stress(pot, atoms, h=1e-5):
    s = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = np.zeros((3, 3))
            e[a, b] = h
            p, m = atoms.copy(), atoms.copy()
            p.set_cell(atoms.cell @ (np.eye(3) + e), scale_atoms=True)
            m.set_cell(atoms.cell @ (np.eye(3) - e), scale_atoms=True)
            s[a, b] = (energy(pot, p) - energy(pot, m)) / (2 * h)
    s /= atoms.get_volume()
    return np.array([0.5 * (s[a, b] + s[b, a]) for a, b in VOIGT])


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_forces_fd_periodic_triclinic(request, which):
    pot = request.getfixturevalue(which)
    atoms = rattled_triclinic(3)
    res = pot.compute(atoms)
    f = fd_forces(pot, atoms)
    assert np.abs(res["forces"]).max() > 1e-3
    np.testing.assert_allclose(res["forces"], f, atol=1e-7 * max(1, np.abs(f).max()))


def test_forces_fd_cluster(small_pot):
    atoms = random_cluster(4)
    res = small_pot.compute(atoms, stress=False)
    np.testing.assert_allclose(res["forces"], fd_forces(small_pot, atoms), atol=1e-7)
    np.testing.assert_allclose(res["forces"].sum(0), 0, atol=1e-12)


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_stress_is_strain_derivative(request, which):
    pot = request.getfixturevalue(which)
    atoms = rattled_triclinic(4)
    res = pot.compute(atoms)
    np.testing.assert_allclose(res["stress"][0], fd_stress(pot, atoms), atol=1e-8 * max(1, np.abs(res["stress"]).max()))
    np.testing.assert_allclose(res["stresses"].sum(0), res["stress"][0], atol=1e-13)


def test_sum_rules(small_pot):
    atoms = rattled_triclinic(7, repeat=(2, 2, 1))
    res = small_pot.compute(atoms)
    np.testing.assert_allclose(res["forces"].sum(0), 0, atol=1e-11)
    np.testing.assert_allclose(res["energies"].sum(), res["energy"][0], rtol=1e-13)


def test_supercell_extensivity(small_pot):
    atoms = rattled_triclinic(8)
    e1 = small_pot.compute(atoms)
    big = atoms.repeat((2, 2, 2))
    e8 = small_pot.compute(big)
    np.testing.assert_allclose(e8["energy"][0], 8 * e1["energy"][0], rtol=1e-11)
    np.testing.assert_allclose(e8["stress"][0], e1["stress"][0], atol=1e-12)
    np.testing.assert_allclose(e8["forces"][: len(atoms)], e1["forces"], atol=1e-11)


def test_cell_smaller_than_cutoff():
    """Periodic images of the atom itself: one-atom fcc cell (a/sqrt2 ~ 2.6 Å) vs a big supercell."""
    pot = etnpot.ETNPotential.random(["Cu"], r_cut=5.0, order=3, l_max=2, rank=2, seed=3)
    prim = bulk("Cu", "fcc", a=3.7)
    big = prim.repeat((4, 4, 4))
    e1, e64 = pot.compute(prim), pot.compute(big)
    np.testing.assert_allclose(e64["energy"][0], 64 * e1["energy"][0], rtol=1e-11)
    np.testing.assert_allclose(e64["stress"][0], e1["stress"][0], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_rotation_reflection_permutation_invariance(request, which, rng):
    pot = request.getfixturevalue(which)
    atoms = random_cluster(5, n=10)
    res = pot.compute(atoms, stress=False)
    for trial in range(6):
        R = random_rotation(rng, reflection=bool(trial % 2))
        perm = rng.permutation(len(atoms))
        moved = atoms[perm]
        moved.positions = moved.positions @ R.T + rng.normal(size=3)
        r2 = pot.compute(moved, stress=False)
        np.testing.assert_allclose(r2["energy"], res["energy"], rtol=1e-11)
        np.testing.assert_allclose(r2["energies"], res["energies"][perm], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r2["forces"], res["forces"][perm] @ R.T, atol=1e-10)


def test_periodic_invariance_under_rotated_cell(small_pot, rng):
    atoms = rattled_triclinic(9)
    e = small_pot.compute(atoms)
    R = random_rotation(rng, reflection=True)
    b = atoms.copy()
    b.set_cell(atoms.cell @ R.T, scale_atoms=True)
    e2 = small_pot.compute(b)
    np.testing.assert_allclose(e2["energy"], e["energy"], rtol=1e-11)
    np.testing.assert_allclose(e2["forces"], e["forces"] @ R.T, atol=1e-10)


def test_negative_control_so3_model_feels_reflection(rng):
    """An SO(3)-only model (odd coupling paths allowed) is rotation- but not reflection-invariant."""
    pot = etnpot.ETNPotential.random(["Si"], r_cut=4.0, order=3, l_max=2, rank=3, seed=5, o3=False)
    atoms = random_cluster(6, n=8, species=("Si", "Si"))
    e = energy(pot, atoms)
    rot = atoms.copy()
    rot.positions = atoms.positions @ random_rotation(rng).T
    assert abs(energy(pot, rot) - e) < 1e-10 * max(1, abs(e))
    ref = atoms.copy()
    ref.positions = -atoms.positions
    assert abs(energy(pot, ref) - e) > 1e-6 * max(1, abs(e))


def test_batch_equals_single(small_pot):
    a, b, c = rattled_triclinic(1), random_cluster(2), rattled_triclinic(2, repeat=(1, 2, 1))
    batch = small_pot.compute([a, b, c])
    for k, at in enumerate([a, b, c]):
        single = small_pot.compute(at)
        np.testing.assert_allclose(batch["energy"][k], single["energy"][0], rtol=1e-12)
        if k != 1:
            np.testing.assert_allclose(batch["stress"][k], single["stress"][0], atol=1e-13)
    assert np.isnan(batch["stress"][1]).all()
    np.testing.assert_allclose(batch["forces"][len(a) : len(a) + len(b)], small_pot.compute(b)["forces"], atol=1e-12)


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_core_linear_map_is_exact(request, which):
    pot = request.getfixturevalue(which)
    configs = [rattled_triclinic(10), random_cluster(11), rattled_triclinic(12, repeat=(1, 1, 2))]
    ref = pot.compute(configs)
    for k in range(pot.order):
        lm = pot.core_linear_map(k, configs, memory_mb=0.5)  # tiny budget: exercises the atom chunking
        th = pot.tt.core_vector(k)
        np.testing.assert_allclose(lm.energy_rows @ th + lm.energy_offset, ref["energy"], rtol=1e-11)
        np.testing.assert_allclose(lm.force_rows @ th, ref["forces"], atol=1e-11)
        per = np.isfinite(ref["stress"][:, 0])
        np.testing.assert_allclose((lm.stress_rows @ th)[per], ref["stress"][per], atol=1e-12)


def test_linear_map_with_other_core_values(small_pot, rng):
    """Rows predict the model for *any* core: set a random core, compare with direct evaluation."""
    configs = [rattled_triclinic(13)]
    k = 1
    lm = small_pot.core_linear_map(k, configs)
    other = small_pot.copy()
    th = rng.normal(size=other.tt.core_size(k))
    other.tt.set_core_vector(k, th)
    ref = other.compute(configs)
    np.testing.assert_allclose(lm.energy_rows @ th + lm.energy_offset, ref["energy"], rtol=1e-11)
    np.testing.assert_allclose(lm.force_rows @ th, ref["forces"], atol=1e-10)
    np.testing.assert_allclose(lm.stress_rows[0] @ th, ref["stress"][0], atol=1e-11)


def test_unknown_species_is_named(small_pot):
    atoms = Atoms("SiGe", positions=[[0, 0, 0], [2.0, 0, 0]])
    with pytest.raises(ValueError, match=r"configuration 1, atom 1: species 'Ge'"):
        small_pot.compute([random_cluster(1), atoms])


def test_isolated_atom_and_empty(small_pot):
    one = Atoms("C", positions=[[0, 0, 0]])
    r = small_pot.compute(one, stress=False)
    assert r["forces"].shape == (1, 3) and np.all(r["forces"] == 0)
    # no neighbours: the site energy is the TT's constant term (degree 0), plus E0
    r2 = small_pot.compute(Atoms("C", positions=[[5, 5, 5]]), stress=False)
    np.testing.assert_allclose(r["energy"], r2["energy"], rtol=1e-14)


def test_parameter_count_and_hyperparameters():
    pot = etnpot.ETNPotential.random(["Cu", "Au"], r_cut=5.0, order=4, l_max=3, rank=8, seed=0)
    counts = pot.parameter_counts()
    assert pot.num_parameters == sum(counts.values()) and counts["cores"] == pot.tt.num_parameters
    # (l_max+1) K S^2 species weights; (l_max+1) C N K radial weights with C = N S channels by default
    assert counts["species_weights"] == 4 * 2 * 2 * 2 and counts["radial_weights"] == 4 * 16 * 8 * 2
    assert pot.metadata["hyperparameters"]["rank"] == 8 and pot.metadata["hyperparameters"]["n_channels"] == 16


@pytest.mark.parametrize("kwargs, msg", [
    (dict(rank=0), "rank"), (dict(l_max=-1), "l_max"), (dict(order=0), "order"),
    (dict(r_cut=2.0, r_min=2.5), "r_min"), (dict(rank={"1x": 2}), "parse"),
])
def test_bad_hyperparameters(kwargs, msg):
    base = dict(species=["Cu"], r_cut=5.0, order=3, l_max=2, rank=2)
    base.update(kwargs)
    with pytest.raises(ValueError, match=msg):
        etnpot.ETNPotential.build(**base)


def test_feature_parameter_jacobian_fd(pot4):
    """Gauss–Newton rows for the radial/species weights equal central finite differences."""
    pot = pot4.copy()
    pot.basis.species_weights += 0.2 * np.random.default_rng(3).normal(size=pot.basis.species_weights.shape)
    configs = [rattled_triclinic(14), random_cluster(15)]
    lm = pot.feature_linear_map(configs, memory_mb=0.5)
    v0 = pot.feature_parameter_vector()
    d = np.random.default_rng(4).normal(size=v0.size)
    h = 1e-6
    res = []
    for sgn in (1, -1):
        p = pot.copy()
        p.set_feature_parameter_vector(v0 + sgn * h * d)
        res.append(p.compute(configs))
    for key, rows in (("energy", lm.energy_rows), ("forces", lm.force_rows)):
        fd = (res[0][key] - res[1][key]) / (2 * h)
        np.testing.assert_allclose(rows @ d, fd, atol=1e-6 * max(1.0, np.abs(fd).max()))
    fd = (res[0]["stress"][0] - res[1]["stress"][0]) / (2 * h)
    np.testing.assert_allclose(lm.stress_rows[0] @ d, fd, atol=1e-6 * max(1.0, np.abs(fd).max()))
    np.testing.assert_allclose(lm.energy_offset, pot.compute(configs)["energy"], rtol=1e-12)


@pytest.mark.parametrize("setting, value", [("chunk_size", 5), ("threads", 1)])
def test_evaluation_settings_do_not_change_results(small_pot, setting, value):
    """Evaluation runs chunk by chunk of atoms (bounded memory) and may cap BLAS threads; any chunk
    size and thread cap gives the same result."""
    configs = [rattled_triclinic(16, repeat=(2, 2, 2)), random_cluster(17), rattled_triclinic(18)]
    whole = small_pot.compute(configs)
    pot = small_pot.copy()
    setattr(pot, setting, value)
    other = pot.compute(configs)
    for key in whole:
        np.testing.assert_allclose(other[key], whole[key], rtol=1e-12, atol=1e-14)


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
