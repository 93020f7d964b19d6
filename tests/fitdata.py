"""Small synthetic data sets for fitting tests: labelled by a known ETN (teacher)."""
import numpy as np
from ase.build import bulk

import etnpot
from etnpot.data import Configuration


def diverse_cells(n, seed=0):
    """Strained, rattled two-species diamond cells of varied density and composition."""
    r = np.random.default_rng(seed)
    out = []
    for s in range(n):
        a = bulk("Si", "diamond", a=r.uniform(3.9, 4.8)).repeat((2, 1, 1))
        a.set_cell(a.cell @ (np.eye(3) + 0.08 * r.normal(size=(3, 3))), scale_atoms=True)
        a.rattle(0.25, seed=int(r.integers(1 << 30)))
        sym = np.array(a.get_chemical_symbols(), dtype=object)
        sym[r.random(len(a)) < r.uniform(0.1, 0.9)] = "C"
        a.set_chemical_symbols(list(sym))
        out.append(a)
    return out


def label(pot, atoms_list):
    res = pot.compute(atoms_list)
    data, pos = [], 0
    for k, a in enumerate(atoms_list):
        data.append(Configuration(a, float(res["energy"][k]), res["forces"][pos : pos + len(a)].copy(),
                                  res["stress"][k].copy(), config_type="even" if k % 2 == 0 else "odd"))
        pos += len(a)
    return data


def teacher_data(order, rank, noise=0.5, n_train=20, n_test=6, init="constant", seed=1):
    """A two-species teacher with 4 species-blind channels (few parameters: 20 small cells determine it)."""
    teacher = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=order, l_max=2, rank=rank, seed=seed,
                                         n_basis=4, n_channels=4, init=init, noise=noise)
    train_atoms, test_atoms = diverse_cells(n_train, seed=seed), diverse_cells(n_test, seed=seed + 100)
    teacher.basis.normalize(teacher.graph(train_atoms))
    teacher.e0[:] = [-3.0, -5.0]
    return teacher, label(teacher, train_atoms), label(teacher, test_atoms)


def student_for(teacher, order, rank, noise, seed=7):
    s = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=order, l_max=2, rank=rank, seed=seed, n_basis=4, n_channels=4,
                                   init="constant", noise=noise)
    s.basis = teacher.copy().basis  # same features: the teacher lies in the student's model space
    return s


def rel_errors(pot, data):
    from etnpot.metrics import error_table

    t = error_table(pot, data)
    e_scale = 1000 * np.std([c.energy / len(c) for c in data])
    f_scale = np.sqrt(np.mean(np.concatenate([c.forces.ravel() for c in data]) ** 2))
    return t["energy"]["rmse"] / e_scale, t["forces"]["rmse"] / f_scale


def fit_toml(order=2, l_max=2, rank=2, sweeps=2, validation_fraction=0.2, test=None, extra=""):
    """A fit configuration (TOML text) for the extxyz files written by the tests (REF_* keys)."""
    test_line = f'test = ["{test}"]\n' if test else ""
    return f"""
[data]
train = ["train.xyz"]
{test_line}validation_fraction = {validation_fraction}
energy_key = "REF_energy"
forces_key = "REF_forces"
stress_key = "REF_stress"
[model]
species = ["Si", "C"]
r_cut = 3.8
order = {order}
l_max = {l_max}
rank = {rank}
n_basis = 4
[fit]
sweeps = {sweeps}
{extra}"""
