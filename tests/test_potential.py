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


def test_sum_rules(small_pot):
    atoms = rattled_triclinic(7, repeat=(2, 2, 1))
    res = small_pot.compute(atoms)
    assert np.abs(res["forces"]).max() > 1e-3
    np.testing.assert_allclose(res["forces"].sum(0), 0, atol=1e-11)


def test_per_atom_energies_are_local_site_energies(small_pot):
    """Per-atom energies, checked without the sum that defines the total: atom i's energy changes
    when an atom within r_cut of i moves and stays exactly the same otherwise; each equals
    E0(z_i) plus the tensor train evaluated directly on i's features; and the total's change equals
    the change of the moved atom's neighbourhood only."""
    atoms = random_cluster(30, n=10)
    atoms.positions[-1] += [6.0, 0, 0]  # one atom with a distant part of the cluster
    res = small_pot.compute(atoms, stress=False)
    g = small_pot.graph([atoms])
    blocks, _ = small_pot.basis.compute(g)
    direct = small_pot.tt.value(blocks) + small_pot.e0[g.species]
    np.testing.assert_allclose(res["energies"], direct, rtol=1e-12, atol=1e-12)
    k = 0
    moved = atoms.copy()
    moved.positions[k] += [0.05, -0.03, 0.02]
    r2 = small_pot.compute(moved, stress=False)
    d = np.minimum(atoms.get_all_distances()[k], moved.get_all_distances()[k])
    near = d < small_pot.r_cut - 0.1  # includes k itself
    far = d > small_pot.r_cut + 0.1
    assert near.sum() > 2 and far.sum() >= 1 and np.all(near | far)
    assert np.all(np.abs(r2["energies"][near] - res["energies"][near]) > 1e-8)
    np.testing.assert_array_equal(r2["energies"][far], res["energies"][far])
    np.testing.assert_allclose(r2["energy"][0] - res["energy"][0],
                               np.sum(r2["energies"][near] - res["energies"][near]), rtol=1e-10)


def test_per_atom_energies_and_stresses_tile_in_a_supercell(small_pot):
    """Translation symmetry per atom: the images of an atom in a supercell have its energy and its
    stress (negative control: the atoms of the cell are not all alike, so this can fail)."""
    atoms = rattled_triclinic(8)
    one, big = small_pot.compute(atoms), small_pot.compute(atoms.repeat((2, 1, 2)))
    n = len(atoms)
    assert np.ptp(one["energies"]) > 1e-3 and np.abs(np.diff(one["stresses"], axis=0)).max() > 1e-4
    for c in range(4):
        np.testing.assert_allclose(big["energies"][c * n:(c + 1) * n], one["energies"], rtol=1e-12, atol=1e-12)
        # the per-atom stress is per the supercell's volume: 4 times smaller
        np.testing.assert_allclose(4 * big["stresses"][c * n:(c + 1) * n], one["stresses"], rtol=1e-10, atol=1e-13)


def test_per_atom_stresses_from_finite_differences_of_site_energies(small_pot):
    """Per-atom stresses without the total they sum to: with g_ij = dE_i/dr_j (central finite
    differences of atom i's energy when atom j alone moves; r_ij = r_j - r_i appears once in i's
    environment because the box is larger than twice the cutoff), atom k's stress is
    (1/V) sum over pairs containing k of half the pair's symmetrized g_ij (x) r_ij (docs of
    etnpot.potential)."""
    atoms = random_cluster(31, n=7)
    atoms.set_cell([21.0, 22.0, 23.0])
    atoms.pbc = True
    atoms.positions += 10.0
    res = small_pot.compute(atoms)
    n, h = len(atoms), 1e-5
    G = np.zeros((n, n, 3))  # G[i, j] = dE_i / dr_j
    for j in range(n):
        for a in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[j, a] += h
            m.positions[j, a] -= h
            G[:, j, a] = (small_pot.compute(p, stress=False)["energies"]
                          - small_pot.compute(m, stress=False)["energies"]) / (2 * h)
    D = atoms.positions[None, :, :] - atoms.positions[:, None, :]  # D[i, j] = r_j - r_i
    inside = (np.linalg.norm(D, axis=-1) < small_pot.r_cut) & ~np.eye(n, dtype=bool)
    W = np.zeros((n, 3, 3))
    for i, j in zip(*np.nonzero(inside)):
        t = np.outer(G[i, j], D[i, j])
        t = 0.5 * (t + t.T) / atoms.get_volume()
        W[i] += 0.5 * t
        W[j] += 0.5 * t
    ref = np.stack([W[:, a, b] for a, b in VOIGT], axis=1)
    assert np.abs(ref).max() > 1e-5
    np.testing.assert_allclose(res["stresses"], ref, atol=1e-8 * np.abs(ref).max())
    np.testing.assert_allclose(res["stress"][0], ref.sum(0), atol=1e-8 * np.abs(ref).max())


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


def test_forces_and_stress_fd_on_a_cell_smaller_than_the_cutoff():
    """Two atoms in a triclinic cell of edges ~3 Å with r_cut = 4.5 Å: every atom sees periodic
    images of itself and of the other; forces and stress are still the exact derivatives."""
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=4.5, order=3, l_max=2, rank=2, seed=4, n_basis=4)
    atoms = rattled_triclinic(32, repeat=(1, 1, 1))
    assert len(atoms) == 2 and atoms.cell.lengths().max() < pot.r_cut
    pot.basis.normalize(pot.graph([rattled_triclinic(33, repeat=(2, 2, 2))]))
    res = pot.compute(atoms)
    g = pot.graph([atoms])
    assert np.any(g.i == g.j)  # self-image pairs present
    f = fd_forces(pot, atoms)
    assert np.abs(f).max() > 1e-3
    np.testing.assert_allclose(res["forces"], f, atol=1e-7 * max(1, np.abs(f).max()))
    s = fd_stress(pot, atoms)
    np.testing.assert_allclose(res["stress"][0], s, atol=1e-8 * max(1, np.abs(s).max()))


def _crossing(pot, delta):
    """A cluster in which atom 3 sits at distance r_cut + delta from atom 0 (and away from the
    cutoff of every other atom)."""
    pos = np.array([[0.0, 0.0, 0.0], [1.9, 0.3, 0.0], [-0.4, 1.8, 0.5], [0.0, 0.0, 0.0]])
    u = np.array([0.2, -0.5, 0.84])
    pos[3] = (pot.r_cut + delta) * u / np.linalg.norm(u)
    atoms = Atoms("SiCSiC", positions=pos)
    d = atoms.get_all_distances()
    others = [d[i, j] for i in range(4) for j in range(i + 1, 4) if (i, j) != (0, 3)]
    assert min(abs(np.array(others) - pot.r_cut)) > 0.05
    return atoms


def test_energy_and_forces_continuous_as_a_neighbour_crosses_r_cut(small_pot, monkeypatch):
    """The quadratic cutoff: the energy changes by O(delta^2) and the forces by O(delta) as a
    neighbour crosses r_cut (and not at all beyond it).  Negative control: with the cutoff
    factor replaced by a step, the same test sees a jump."""
    def jumps(pot):
        out = []
        for delta in (1e-2, 1e-3):
            a, b = pot.compute(_crossing(pot, -delta), stress=False), pot.compute(_crossing(pot, delta), stress=False)
            out.append((abs(a["energy"][0] - b["energy"][0]), np.abs(a["forces"] - b["forces"]).max()))
        beyond = [pot.compute(_crossing(pot, d), stress=False) for d in (1e-3, 0.04)]
        return np.array(out), abs(beyond[0]["energy"][0] - beyond[1]["energy"][0])

    (e1, f1), (e2, f2) = (j := jumps(small_pot))[0]
    assert e1 > 1e-8 and f1 > 1e-6  # the neighbour does interact just inside r_cut
    assert e2 < 0.03 * e1 and f2 < 0.3 * f1  # O(delta^2) and O(delta): no jump
    assert j[1] == 0.0  # beyond r_cut the neighbour is invisible
    import etnpot.kernels
    import etnpot.radial as radial

    monkeypatch.setattr(etnpot.kernels, "MODE", "numpy")  # the compiled kernels have the cutoff built in
    monkeypatch.setattr(radial, "cutoff_function", lambda r, r_min, r_cut: (np.where(r < r_cut, 1.0, 0.0), 0.0 * r))
    (e1b, f1b), (e2b, f2b) = jumps(small_pot)[0]
    assert e2b > 0.3 * e1b and e2b > 1e-4  # a jump: it does not shrink with delta


def invariance_errors(pot, atoms, rng, trials=6):
    """Largest deviations of (energy, per-atom energies, forces) from O(3) x permutation x
    translation invariance/equivariance over random proper and improper rotations."""
    res = pot.compute(atoms, stress=False)
    err = np.zeros(3)
    for trial in range(trials):
        R = random_rotation(rng, reflection=bool(trial % 2))
        perm = rng.permutation(len(atoms))
        moved = atoms[perm]
        moved.positions = moved.positions @ R.T + rng.normal(size=3)
        r2 = pot.compute(moved, stress=False)
        err = np.maximum(err, [abs(r2["energy"][0] - res["energy"][0]) / max(1.0, abs(res["energy"][0])),
                               np.abs(r2["energies"] - res["energies"][perm]).max(),
                               np.abs(r2["forces"] - res["forces"][perm] @ R.T).max()])
    return err


def broken_cg(pot, path_filter):
    """A copy of ``pot`` whose CG tensor is permuted (m_b reversed) on the paths ``path_filter``
    accepts: a model that is *not* equivariant, for negative controls."""
    bad = pot.copy()
    good = bad.tt.cg
    hit = [p for k in range(bad.order) for p in bad.tt.cores[k] if path_filter(p)]
    assert hit, "no path to break"
    bad.tt.cg = lambda p: good(p)[:, :, ::-1] if path_filter(p) else good(p)
    return bad


def _l2_output(p):
    return p[2].l == 2


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_rotation_reflection_permutation_invariance(request, which, rng):
    pot = request.getfixturevalue(which)
    err = invariance_errors(pot, random_cluster(5, n=10), rng)
    assert np.all(err < [1e-11, 1e-10, 1e-10]), err


@pytest.mark.parametrize("which", ["small_pot", "pot4"])
def test_negative_control_permuted_cg_breaks_invariance(request, which, rng):
    """The same test catches a broken model: one CG tensor (the paths into l = 2) permuted."""
    pot = broken_cg(request.getfixturevalue(which), _l2_output)
    err = invariance_errors(pot, random_cluster(5, n=10), rng)
    assert err[0] > 1e-6 and err[2] > 1e-4, err


def _voigt_to_matrix(v):
    xx, yy, zz, yz, xz, xy = np.moveaxis(np.asarray(v), -1, 0)
    return np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)], -2)


def rotated_cell_errors(pot, atoms, rng, trials=4):
    """Largest deviations under a rotated (and reflected) periodic cell: energy invariant, forces
    F -> F R^T, stress and per-atom stresses sigma -> R sigma R^T."""
    e = pot.compute(atoms)
    S, Sa = _voigt_to_matrix(e["stress"][0]), _voigt_to_matrix(e["stresses"])
    err = np.zeros(4)
    for trial in range(trials):
        R = random_rotation(rng, reflection=bool(trial % 2))
        b = atoms.copy()
        b.set_cell(atoms.cell @ R.T, scale_atoms=True)
        e2 = pot.compute(b)
        err = np.maximum(err, [abs(e2["energy"][0] - e["energy"][0]) / max(1.0, abs(e["energy"][0])),
                               np.abs(e2["forces"] - e["forces"] @ R.T).max(),
                               np.abs(_voigt_to_matrix(e2["stress"][0]) - R @ S @ R.T).max(),
                               np.abs(_voigt_to_matrix(e2["stresses"]) - R @ Sa @ R.T).max()])
    return err


def test_periodic_cell_rotation_energy_forces_stress_equivariant(small_pot, rng):
    atoms = rattled_triclinic(9)
    res = small_pot.compute(atoms)
    # the stress is far from isotropic, so sigma -> R sigma R^T is not trivially sigma
    S = _voigt_to_matrix(res["stress"][0])
    assert np.abs(S - np.trace(S) / 3 * np.eye(3)).max() > 1e-3
    err = rotated_cell_errors(small_pot, atoms, rng)
    assert np.all(err < [1e-11, 1e-10, 1e-11, 1e-11]), err


def test_negative_control_permuted_cg_breaks_stress_equivariance(small_pot, rng):
    err = rotated_cell_errors(broken_cg(small_pot, _l2_output), rattled_triclinic(9), rng)
    assert err[0] > 1e-6 and err[1] > 1e-4 and err[2] > 1e-4 and err[3] > 1e-4, err


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


def test_parameter_count_by_hand_for_a_tiny_model():
    """One species, order 2, l_max 1, rank 1, 2 Chebyshev functions, counted by hand.

    Inputs: l = 0 has 2 radial + 1 species-indicator channels (0e), l = 1 has 2 channels (1o).
    Bond 1 is 1x0e + 1x1o.  Core 0: (0e,0e->0e) 1x3x1 + (0e,1o->1o) 1x2x1 = 5.  Core 1:
    (0e,0e->0e) 1x3x1 + (1o,1o->0e) 1x2x1 = 5.  Species weights (L K S S) 2x1x1x1 = 2, radial
    weights (L C N K) 2x2x2x1 = 8, E0 1: 10 + 2 + 8 + 1 = 21."""
    pot = etnpot.ETNPotential.build(["Cu"], r_cut=4.0, order=2, l_max=1, rank=1, n_basis=2)
    assert pot.num_parameters == 21
    # fitted: the cores and E0 (the feature weights are fixed unless radial steps refit them)
    assert pot.parameter_counts() == {"cores": 10, "species_weights": 2, "radial_weights": 8, "e0": 1,
                                      "fitted": 11, "fixed": 10, "total": 21}
    assert [pot.tt.core_size(k) for k in range(2)] == [5, 5]


@pytest.mark.parametrize("kwargs", [dict(species=["Cu"], order=2, l_max=1, rank=1, n_basis=2),
                                    dict(species=["Si", "C"], order=3, l_max=2, rank={0: 1, 1: 1, 2: 1, "1e": 1},
                                         n_basis=1, n_channels=1, species_rank=1)])
def test_every_core_parameter_is_a_degree_of_freedom_of_the_dense_core(kwargs):
    """Independent of the block bookkeeping: the linear map core_vector(k) -> dense full core
    (CG (x) blocks) has full column rank, so no parameter is a duplicate or sits in a block that
    the dense core does not see, and the count is the dimension of the cores' span."""
    tt = etnpot.ETNPotential.build(r_cut=4.0, **kwargs).tt
    for k in range(tt.order):
        P = tt.core_size(k)
        cols = []
        for j in range(P):
            e = np.zeros(P)
            e[j] = 1.0
            tt.set_core_vector(k, e)
            cols.append(tt.full_core(k).ravel())
        assert np.linalg.matrix_rank(np.array(cols).T) == P


def test_species_and_radial_parameter_counts_and_hyperparameters():
    pot = etnpot.ETNPotential.random(["Cu", "Au"], r_cut=5.0, order=4, l_max=3, rank=8, seed=0, n_basis=8)
    counts = pot.parameter_counts()
    # (l_max+1) K S^2 species weights; (l_max+1) C N K radial weights with C = N S channels by default
    assert counts["species_weights"] == 4 * 2 * 2 * 2 and counts["radial_weights"] == 4 * 16 * 8 * 2
    assert pot.num_parameters == counts["cores"] + 4 * 2 * 2 * 2 + 4 * 16 * 8 * 2 + 2
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


@pytest.mark.parametrize("setting, value", [("chunk_size", 5), ("threads", 2), ("threads", None)])
def test_evaluation_settings_do_not_change_results(small_pot, setting, value, monkeypatch):
    """Evaluation runs chunk by chunk of atoms (bounded memory) and may cap BLAS threads; any chunk
    size and thread cap gives the same result.  The setting differs from the default, and the
    thread cap is seen to reach threadpoolctl (1 by default, 2 here, not called for None)."""
    import threadpoolctl

    assert getattr(small_pot, setting) != value
    limits = calls = []
    real = threadpoolctl.ThreadpoolController.limit
    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "limit",
                        lambda self, *a, limits=None, **k: calls.append(limits) or real(self, *a, limits=limits, **k))
    configs = [rattled_triclinic(16, repeat=(2, 2, 2)), random_cluster(17), rattled_triclinic(18)]
    whole = small_pot.compute(configs)
    assert limits == [1]
    pot = small_pot.copy()
    setattr(pot, setting, value)
    other = pot.compute(configs)
    assert limits == [1, {"threads": value, "chunk_size": 1}[setting]] if value is not None else limits == [1]
    for key in whole:
        np.testing.assert_allclose(other[key], whole[key], rtol=1e-12, atol=1e-14)
