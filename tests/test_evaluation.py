"""The fast evaluation (etnpot.evaluation) equals the block-sparse reference path to 1e-10 relative
in float64, on random models of every shape used in the fitting campaigns, with the dense and
the block-sparse contraction, across chunk boundaries, with grades, on torch and in float32."""
import numpy as np
import pytest
from ase import Atoms

import etnpot
from etnpot import evaluation

from conftest import random_cluster, rattled_triclinic

KEYS = ("energy", "energies", "forces", "stress", "stresses")

SHAPES = {  # the campaigns: Zuo (one species, d3/d4, l_max 2, rank 3/4), InP (l_max 1/2, two species)
    "d3_l2_r3": dict(species=["Si"], order=3, l_max=2, rank=3),
    "d4_l2_r3": dict(species=["Si"], order=4, l_max=2, rank=3),
    "d4_l2_r4": dict(species=["Mo"], order=4, l_max=2, rank=4),
    "d3_l1_r3_InP": dict(species=["In", "P"], order=3, l_max=1, rank=3),
    "d3_l2_r3_InP": dict(species=["In", "P"], order=3, l_max=2, rank=3),
    "d4_l1_r4_InP": dict(species=["In", "P"], order=4, l_max=1, rank=4),
    "unnatural_parity": dict(species=["Si", "C"], order=4, l_max=2, rank={0: 2, 1: 2, "1e": 1}),
    "species_rank_1": dict(species=["Si", "C", "Ge"], order=3, l_max=2, rank=2, species_rank=1, n_channels=5),
    "so3": dict(species=["Si"], order=3, l_max=2, rank=2, o3=False),
    "d2": dict(species=["Si", "C"], order=2, l_max=2, rank=3),
    "d1": dict(species=["Si"], order=1, l_max=1, rank=1),
}


def _configs(species):
    a = rattled_triclinic(3, repeat=(2, 2, 1))
    a.set_chemical_symbols([species[k % len(species)] for k in range(len(a))])
    lone = Atoms(species[:1], positions=[[0.0, 0.0, 0.0]])  # an atom without neighbours
    return [a, random_cluster(4, n=7, species=(species[0], species[-1])), lone]


def _model(name):
    kw = dict(SHAPES[name])
    species = kw.pop("species")
    pot = etnpot.ETNPotential.random(species, r_cut=4.0, seed=7, n_basis=kw.pop("n_basis", 5), noise=0.7, **kw)
    pot.basis.normalize(pot.graph(_configs(species)[:1]))
    pot.e0[:] = -0.3 * np.arange(1, len(species) + 1)
    return pot


def _close(a, b, keys=KEYS, rtol=1e-10):
    for key in keys:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        x, y = np.where(np.isnan(x), 0, x), np.where(np.isnan(y), 0, y)
        scale = max(np.abs(x).max(), 1e-300)
        assert np.abs(x - y).max() <= rtol * scale, (key, np.abs(x - y).max() / scale)
    assert a["min_pair_distance"] == pytest.approx(b["min_pair_distance"], rel=1e-15) and a["close_pairs"] == b["close_pairs"]


def _run(pot, configs, mode, chunk=None):
    p = pot.copy()
    p.evaluation = mode
    if chunk:
        p.chunk_size = chunk
    return p.compute(configs)


@pytest.fixture(params=["numba", "numpy"])
def kernel(request, monkeypatch):
    """The fast path with the compiled pair kernels (etnpot.kernels) and with their numpy reference."""
    monkeypatch.setattr(etnpot.kernels, "MODE", request.param)
    return request.param


def test_the_compiled_kernels_are_used_where_numba_imports(monkeypatch):
    """numba is a dependency, so the default evaluation takes the compiled path (a broken numba
    would fall back to numpy silently; this test makes CI say so), and a bad mode is an error."""
    monkeypatch.setattr(etnpot.kernels, "MODE", "auto")
    assert etnpot.kernels.use_numba()
    pot = _model("d3_l1_r3_InP")
    g = pot.graph(_configs(pot.species))
    assert evaluation.features(pot.basis, g, 0, 4, 0, int(np.searchsorted(g.i, 4)))[1].QdQ is not None
    monkeypatch.setattr(etnpot.kernels, "MODE", "fortran")
    with pytest.raises(ValueError, match="ETNPOT_KERNELS"):
        etnpot.kernels.use_numba()


@pytest.mark.parametrize("name", list(SHAPES))
def test_fast_equals_reference(name, kernel):
    pot = _model(name)
    configs = _configs(pot.species)
    ref = _run(pot, configs, "reference")
    assert np.abs(ref["forces"]).max() > 0
    for mode in ("dense", "sparse", "auto"):
        _close(ref, _run(pot, configs, mode))
    _close(ref, _run(pot, configs, "dense", chunk=3))  # chunks that split configurations


@pytest.mark.parametrize("name", ["d3_l1_r3_InP", "species_rank_1"])
def test_compiled_pair_kernels_with_numpy_species_mixing(name, monkeypatch):
    """With the compiled pair kernels but the species mixing above its compiled size
    (``MIX_COMPILED_MAX``), the fast path still equals the reference."""
    monkeypatch.setattr(etnpot.kernels, "MODE", "numba")
    monkeypatch.setattr(evaluation, "MIX_COMPILED_MAX", {False: 0, True: 0})
    pot = _model(name)
    configs = _configs(pot.species)
    ref = _run(pot, configs, "reference")
    _close(ref, _run(pot, configs, "dense", chunk=3))


def test_chunks_count_the_pairs_of_the_sites_only(monkeypatch):
    """``site_terms`` sizes its chunks from the pairs per *site* (LAMMPS's ghost atoms, listed
    after the sites, have none of their own), and ``pot.chunk_size`` still caps the chunk."""
    pot = _model("d3_l1_r3_InP")
    g = etnpot.neighbors.build_graph(_configs(pot.species)[:1], pot.basis.r_cut, pot.species_index)
    n_sites = g.n_atoms // 2
    seen, calls = [], []
    real_chunk, real_features = evaluation.chunk_atoms, evaluation.features
    monkeypatch.setattr(evaluation, "chunk_atoms", lambda p, ppa: seen.append(ppa) or real_chunk(p, ppa))
    monkeypatch.setattr(evaluation, "features", lambda *a: calls.append(a[2:4]) or real_features(*a))
    evaluation.site_terms(pot, g, n_sites)
    assert seen == [pytest.approx(np.searchsorted(g.i, n_sites) / n_sites)]
    assert len(calls) == 1
    pot.chunk_size = 5
    calls.clear()
    evaluation.site_terms(pot, g, n_sites)
    assert [c[1] - c[0] for c in calls] == [5] * (n_sites // 5) + ([n_sites % 5] if n_sites % 5 else [])


def test_dense_transfer_equals_block_sparse_contraction(rng):
    """DenseTT on its own: value and input gradient of the block-sparse tensor train."""
    pot = _model("unnatural_parity")
    x = [rng.normal(size=(11, ir.dim, c)) for ir, c in pot.tt.inputs]
    v, g = pot.tt.value_and_input_grad(x)
    v2, g2 = evaluation.dense_tt(pot.tt, x[0]).value_and_grad(pot.tt.flat_input(x))
    np.testing.assert_allclose(v2, v, rtol=1e-12, atol=1e-12 * np.abs(v).max())
    gf = pot.tt.flat_input(g)
    np.testing.assert_allclose(g2, gf, rtol=1e-12, atol=1e-12 * np.abs(gf).max())


def test_dense_cache_follows_the_cores():
    pot = _model("d3_l2_r3")
    configs = _configs(pot.species)[:1]
    pot.evaluation = "dense"
    e1 = pot.compute(configs)["energy"]
    for k, core in enumerate(pot.tt.cores):  # replace blocks, as the fit does
        for p in core:
            core[p] = 2.0 * core[p]
    e2 = pot.compute(configs)["energy"]
    ref = _run(pot, configs, "reference")["energy"]
    np.testing.assert_allclose(e2, ref, rtol=1e-10)
    assert not np.allclose(e1, e2)


def test_choice_by_cost_count():
    """Small bonds (the campaigns) contract densely; big bonds (l_max 3, rank 8) block-sparse."""
    assert evaluation.choose(_model("d4_l2_r3").tt) == "dense"
    big = etnpot.ETNPotential.random(["Cu"], r_cut=5.0, order=4, l_max=3, rank=8, seed=0)
    assert evaluation.choose(big.tt) == "sparse"
    p = _model("d3_l2_r3")
    p.evaluation = "bogus"
    with pytest.raises(ValueError, match="evaluation must be"):
        p.compute(_configs(p.species)[:1])


def test_grades_on_the_fast_path():
    from etnpot.grade import fit_active_set

    pot = _model("d4_l2_r3")
    configs = _configs(pot.species)
    fit_active_set(pot, [rattled_triclinic(s, species=("Si", "Si")) for s in range(3)])
    ref = pot.copy()
    ref.active_set = pot.active_set
    ref.evaluation = "reference"
    a = ref.compute(configs, grades=True)
    for mode in ("dense", "sparse"):
        pot.evaluation = mode
        b = pot.compute(configs, grades=True)
        np.testing.assert_allclose(b["extrapolation_grades"], a["extrapolation_grades"], rtol=1e-8, atol=1e-10)
        b = pot.compute(configs, forces=False, stress=False, grades=True)
        np.testing.assert_allclose(b["extrapolation_grades"], a["extrapolation_grades"], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b["energies"], a["energies"], rtol=1e-10)


def test_torch_and_float32_dense():
    torch = pytest.importorskip("torch")
    pot = _model("d4_l2_r3")
    configs = _configs(pot.species)
    ref = _run(pot, configs, "reference")
    pt = pot.copy().to("torch")
    pt.evaluation = "dense"
    _close(ref, pt.compute(configs))
    assert isinstance(evaluation.dense_tt(pt.tt, torch.zeros(1, dtype=torch.float64)).Gx[1], torch.Tensor)
    p32 = pot.copy().to("numpy", "float32")
    p32.evaluation = "dense"
    b = p32.compute(configs)
    assert evaluation.dense_tt(p32.tt, np.zeros(1, np.float32)).Gx[1].dtype == np.float32
    err = np.abs(b["forces"] - ref["forces"]).max() / np.abs(ref["forces"]).max()
    assert 0 < err < 1e-5, err


@pytest.mark.parametrize("name", ["d4_l2_r3", "d3_l1_r3_InP", "species_rank_1"])
def test_padded_pair_layout(name, kernel):
    """The features and pull-back lay each atom's pairs out in as many slots as the most
    coordinated atom of the chunk has neighbours: a crowded atom beside sparse ones, and atoms
    without neighbours inside a chunk (not only at its end), give the reference's numbers."""
    pot = _model(name)
    rng = np.random.default_rng(5)
    crowd = rng.normal(size=(14, 3))
    crowd *= (2.3 + rng.uniform(0, 1.2, size=(14, 1))) / np.linalg.norm(crowd, axis=1, keepdims=True)
    pos = np.concatenate([[[0.0, 0.0, 0.0]], crowd, [[30.0, 0, 0], [0, 30.0, 0]], [[30.0, 2.4, 0]]])
    order = rng.permutation(len(pos))  # the crowded centre and the lonely atoms anywhere in the chunks
    sym = [pot.species[k % len(pot.species)] for k in range(len(pos))]
    atoms = Atoms(sym, positions=pos[order])
    ref = _run(pot, [atoms], "reference")
    assert np.abs(ref["forces"]).max() > 0
    for chunk in (None, 5, 1):
        _close(ref, _run(pot, [atoms], "dense", chunk=chunk))


def test_compiled_force_scatter_equals_bincount():
    """``kernels.scatter_forces`` sums ``dE/dr_ij`` into both ends of every pair as the numpy
    ``bincount`` path does (to rounding), and rejects an index out of range."""
    rng = np.random.default_rng(0)
    i, j = np.sort(rng.integers(0, 50, 600)), rng.integers(0, 50, 600)
    gp = rng.normal(size=(600, 3))
    ref = np.stack([np.bincount(i, gp[:, a], minlength=53) - np.bincount(j, gp[:, a], minlength=53)
                    for a in range(3)], axis=1)
    np.testing.assert_allclose(etnpot.kernels.scatter_forces(i, j, gp, 53), ref, rtol=0, atol=1e-12)
    with pytest.raises(IndexError, match="out of range"):
        etnpot.kernels.scatter_forces(i, j, gp, 40)


def test_compiled_species_mixing_equals_its_definition():
    """``kernels.species_mix`` multiplies each atom's moments by its own centre species'
    weights and ``species_mix_t`` is its transpose (extra gradient columns, the species
    indicators, ignored); both reject a centre species out of range.  ``pair_lengths`` is the
    norm of each pair vector."""
    rng = np.random.default_rng(1)
    n, M, S, J, C = 37, 3, 4, 10, 5
    P, W, G = rng.normal(size=(n, M, J)), rng.normal(size=(S, J, C)), rng.normal(size=(n, M, C + S))
    centre = rng.integers(0, S, n)
    np.testing.assert_allclose(etnpot.kernels.species_mix(P, W, centre),
                               np.einsum("amj,ajc->amc", P, W[centre]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(etnpot.kernels.species_mix_t(G, W, centre),
                               np.einsum("amc,ajc->amj", G[:, :, :C], W[centre]), rtol=1e-12, atol=1e-12)
    # a strided view (one l of the moments of all l), as the evaluation passes it
    Pall = rng.normal(size=(n, 9, J))
    np.testing.assert_allclose(etnpot.kernels.species_mix(Pall[:, 1:4], W, centre),
                               np.einsum("amj,ajc->amc", Pall[:, 1:4], W[centre]), rtol=1e-12, atol=1e-12)
    with pytest.raises(IndexError, match="centre species out of range"):
        etnpot.kernels.species_mix(P, W, np.full(n, S))
    with pytest.raises(ValueError, match="channels"):
        etnpot.kernels.species_mix_t(G[:, :, :C - 1], W, centre)
    D = rng.normal(size=(50, 3))
    np.testing.assert_allclose(etnpot.kernels.pair_lengths(D), np.linalg.norm(D, axis=1), rtol=1e-15)


def test_chunk_size_follows_the_models_temporaries(monkeypatch):
    """``chunk_atoms`` gives small models larger chunks (their fixed per-chunk cost is a large
    share of their time), large models the smallest, always a power of two in
    [CHUNK, CHUNK_MAX]; with a tiny byte budget every model gets CHUNK."""
    small = etnpot.ETNPotential.random(["In", "P"], r_cut=5.0, order=3, l_max=1, rank=2, n_basis=4, seed=0)
    large = etnpot.ETNPotential.random(["Si"], r_cut=5.0, order=4, l_max=2, rank=3, n_basis=6, seed=0)
    cs, cl = evaluation.chunk_atoms(small, 27.0), evaluation.chunk_atoms(large, 28.0)
    assert cl == evaluation.CHUNK and cs > cl
    for c in (cs, cl):
        assert evaluation.CHUNK <= c <= evaluation.CHUNK_MAX and c & (c - 1) == 0
    assert evaluation.chunk_atoms(small, 0.0) >= cs  # fewer pairs, no smaller chunk
    monkeypatch.setattr(evaluation, "CHUNK_BYTES", 1)
    assert evaluation.chunk_atoms(small, 27.0) == evaluation.CHUNK
