"""The reused (Verlet) neighbour list gives the graph of a fresh search, and searches again when it must."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import etnpot
from etnpot.neighbors import VerletList, build_graph

from conftest import random_cluster, rattled_triclinic

Z2S = {14: 0, 6: 1}


def species_index(numbers, config=0):
    return np.array([Z2S[int(z)] for z in numbers], dtype=np.int64)


def canonical(g):
    """Pairs (i, j, vector) in a canonical order (vectors rounded for the sort key only)."""
    key = np.round(g.vectors, 8)
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0], g.j, g.i))
    return g.i[order], g.j[order], g.vectors[order]


def assert_same_graph(a, b):
    assert a.n_pairs == b.n_pairs
    assert np.all(np.diff(a.i) >= 0)  # sorted by i, as the evaluation needs
    for x, y in zip(canonical(a)[:2], canonical(b)[:2]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(canonical(a)[2], canonical(b)[2], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.species, b.species)
    np.testing.assert_array_equal(a.n_atoms_per_config, b.n_atoms_per_config)
    np.testing.assert_array_equal(a.volumes, b.volumes)


def small_cell():
    """A cell smaller than the cutoff: atoms see several images of each other and of themselves."""
    a = bulk("Si", "diamond", a=3.6)
    a.set_cell(a.cell @ (np.eye(3) + 0.05 * np.random.default_rng(1).normal(size=(3, 3))), scale_atoms=True)
    a.numbers[1] = 6
    return a


def mixed_pbc():
    a = rattled_triclinic(3, repeat=(2, 2, 1))
    a.pbc = [True, False, True]
    return a


@pytest.fixture(params=["numba", "numpy"])
def kernel(request, monkeypatch):
    """The reused list's vectors and filter from the compiled pass (etnpot.kernels.filter_pairs)
    and from its numpy reference."""
    monkeypatch.setattr(etnpot.kernels, "MODE", request.param)
    return request.param


@pytest.mark.parametrize("make", [lambda: rattled_triclinic(1, repeat=(2, 2, 2)), small_cell, mixed_pbc,
                                  lambda: random_cluster(2, n=14)], ids=["triclinic", "small cell", "mixed pbc", "cluster"])
def test_trajectory_equals_fresh_search(make, kernel):
    atoms = make()
    r_cut, skin = 3.3, 0.6
    nl = VerletList(r_cut, skin)
    rng = np.random.default_rng(0)
    for step in range(30):
        assert_same_graph(nl.graph(atoms, species_index), build_graph(atoms, r_cut, species_index))
        atoms.positions += rng.normal(scale=0.04, size=atoms.positions.shape)
    assert 1 < nl.n_builds < nl.n_calls == 30  # reused, and searched again as the atoms moved


def test_search_again_exactly_when_needed():
    atoms = rattled_triclinic(4, repeat=(2, 2, 1))
    r_cut, skin = 3.3, 0.5
    nl = VerletList(r_cut, skin)

    def check(builds):
        assert_same_graph(nl.graph(atoms, species_index), build_graph(atoms, r_cut, species_index))
        assert nl.n_builds == builds

    check(1)
    atoms.positions[3] += [0.24, 0, 0]  # less than skin / 2 from the reference
    check(1)
    atoms.positions[3] += [0.02, 0, 0]  # now more than skin / 2
    check(2)
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)  # cell change
    check(3)
    check(3)
    atoms.numbers[0] = 6 if atoms.numbers[0] == 14 else 14  # species change
    check(4)
    atoms += Atoms("Si", positions=[[0.3, 0.2, 0.1]])  # atom count change
    check(5)
    atoms.pbc = [True, True, False]  # periodicity change
    check(6)
    atoms.wrap()
    atoms.positions += atoms.cell[0]  # the same structure translated by a cell vector: moved
    check(7)
    nl.reset()
    check(8)
    bad = atoms.copy()
    bad.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite position"):
        nl.graph(bad, species_index)
    zero = VerletList(r_cut, 0.0)
    for _ in range(3):
        zero.graph(atoms[:5], species_index)
    assert zero.n_builds == 3
    with pytest.raises(ValueError):
        VerletList(r_cut, -0.1)
    empty = VerletList(r_cut, skin).graph(Atoms(), species_index)
    assert empty.n_atoms == 0 and empty.n_pairs == 0


def relative_close(a, b, tol=1e-10):
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= tol * scale


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_calculator_md_equals_rebuilt_path(small_pot):
    """Velocity Verlet with the reused list gives the trajectory of a search at every step (1e-10
    relative); a cell change, a species change and an atom-count change mid-run are followed."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    runs = []
    for skin in (0.0, 0.8):
        atoms = rattled_triclinic(8, repeat=(2, 2, 1))
        atoms.set_velocities(np.random.default_rng(3).normal(scale=0.02, size=(len(atoms), 3)))
        calc = etnpot.ETNCalculator(small_pot, extrapolation="off", skin=skin)
        atoms.calc = calc
        out = []

        def record():
            out.append((atoms.get_potential_energy(), atoms.get_forces().copy(), atoms.get_stress().copy()))

        dyn = VelocityVerlet(atoms, 0.05 * units.fs)  # a random model has large forces
        dyn.attach(record, interval=1)
        dyn.run(40)
        atoms.set_cell(atoms.cell * 1.02, scale_atoms=True)
        record()
        atoms.numbers[:3] = [6, 14, 6]
        record()
        del atoms[4]
        record()
        dyn.run(5)
        runs.append((out, calc.neighbors.n_builds, calc.neighbors.n_calls))
    (ref, nb0, nc0), (reuse, nb1, nc1) = runs
    assert nb0 == nc0 == nc1 and nb1 < nc1 / 3  # the skin spared most searches
    assert len(ref) == len(reuse)
    for (e0, f0, s0), (e1, f1, s1) in zip(ref, reuse):
        relative_close(e1, e0)
        relative_close(f1, f0)
        relative_close(s1, s0)
    # and the rebuilt path is the potential's own
    atoms = rattled_triclinic(8, repeat=(2, 2, 1))
    res = small_pot.compute(atoms)
    atoms.calc = etnpot.ETNCalculator(small_pot, extrapolation="off")
    relative_close(atoms.get_forces(), res["forces"])


def test_compiled_filter_equals_numpy_filter_bit_for_bit(monkeypatch):
    """The compiled pass does the numpy code's arithmetic in its order: the same pairs, in the same
    order, with the same vectors to the last bit."""
    atoms = rattled_triclinic(1, repeat=(2, 2, 2))
    graphs = {}
    for mode in ("numba", "numpy"):
        monkeypatch.setattr(etnpot.kernels, "MODE", mode)
        nl = VerletList(3.3, 0.6)
        a = atoms.copy()
        nl.graph(a, species_index)
        a.positions += np.random.default_rng(3).normal(scale=0.05, size=a.positions.shape)
        graphs[mode] = nl.graph(a, species_index)
        assert nl.n_builds == 1  # the second graph came from the kept list
    for name in ("i", "j", "vectors", "pair_config"):
        np.testing.assert_array_equal(getattr(graphs["numba"], name), getattr(graphs["numpy"], name))
    assert graphs["numba"].i.dtype == graphs["numpy"].i.dtype == np.int64
