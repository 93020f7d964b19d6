import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import etnpot


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


def rattled_triclinic(seed=0, species=("Si", "C"), repeat=(2, 1, 1)):
    """A strained, rattled, triclinic periodic cell with two species (ASE test_emt_stress style)."""
    r = np.random.default_rng(seed)
    a = bulk("Si", "diamond", a=4.3).repeat(repeat)
    a.set_cell(a.cell @ (np.eye(3) + 0.04 * r.normal(size=(3, 3))), scale_atoms=True)
    a.rattle(0.08, seed=seed + 1)
    sym = np.array(a.get_chemical_symbols(), dtype=object)
    sym[r.permutation(len(a))[: len(a) // 3]] = species[1]
    a.set_chemical_symbols(list(sym))
    return a


def random_cluster(seed=0, n=9, species=("Si", "C")):
    r = np.random.default_rng(seed)
    pos = r.uniform(-2.6, 2.6, size=(n, 3))
    # push apart so no pair is unphysically close
    for _ in range(200):
        d = pos[:, None] - pos[None]
        dist = np.linalg.norm(d, axis=-1) + np.eye(n) * 10
        if dist.min() > 1.7:
            break
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        pos[i] += 0.3 * d[i, j] / dist[i, j]
    return Atoms([species[k % 2] for k in range(n)], positions=pos)


@pytest.fixture(scope="session")
def small_pot():
    """Two species, O(3), d=3, l_max=2, rank 3, with feature normalization set on data."""
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=4.0, order=3, l_max=2, rank=3, seed=1, n_basis=5,
                                     species_rank=2)
    pot.basis.normalize(pot.graph([rattled_triclinic(5)]))
    pot.e0[:] = [-0.5, -1.25]
    return pot


@pytest.fixture(scope="session")
def pot4():
    """Order 4 with l_max=3 and unequal ranks (several irreps, including an unnatural-parity one)."""
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=4, l_max=3,
                                     rank={0: 3, 1: 2, 2: 2, 3: 1, "1e": 1}, seed=2, n_basis=4)
    pot.basis.normalize(pot.graph([rattled_triclinic(6)]))
    return pot


@pytest.fixture(scope="module")
def graded():
    """A small two-species model with an active set fitted on its training cells (grade tests)."""
    from etnpot.grade import fit_active_set
    from fitdata import teacher_data

    teacher, train, _ = teacher_data(order=2, rank=2, n_train=12, n_test=1)
    pot = teacher.copy()
    fit_active_set(pot, train)
    return pot, train
