"""Channel compression (etnpot.compress): exact at full rank, fewer parameters and a refit when
truncated, model files that round-trip, and the CLI."""
import json

import numpy as np
import pytest

import etnpot
from etnpot.compress import channel_subspaces, compress, compress_channels

from fitdata import diverse_cells, label


def _species_resolved(seed=1, l_max=2):
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.5, order=3, l_max=l_max, rank=2, n_basis=3, seed=seed)
    cells = diverse_cells(4, seed=seed)
    pot.basis.normalize(pot.graph(cells))
    return pot, cells


@pytest.mark.parametrize("seed", [1, 2])
def test_full_rank_compression_predicts_the_same(seed):
    pot, cells = _species_resolved(seed)
    ref = pot.compute(cells)
    new, discarded = compress_channels(pot, pot.basis.n_channels)
    assert max(discarded) < 1e-12
    got = new.compute(cells)
    for key in ("energy", "forces", "stress"):
        scale = np.abs(ref[key]).max()
        assert np.abs(got[key] - ref[key]).max() <= 1e-10 * scale


def test_rank_deficient_cores_compress_exactly():
    """Cores that use only 2 channel directions per l compress to 2 channels without any change."""
    pot, cells = _species_resolved(3)
    rng = np.random.default_rng(0)
    C = pot.basis.n_channels
    V = [np.linalg.qr(rng.normal(size=(C, 2)))[0] for _ in range(pot.basis.l_max + 1)]
    for core in pot.tt.cores:
        for p, T in core.items():
            P = V[p[1]] @ V[p[1]].T
            T[:, :C, :] = np.einsum("cd,rds->rcs", P, T[:, :C, :])
    ref = pot.compute(cells)
    new, discarded = compress_channels(pot, 2)
    assert max(discarded) < 1e-20
    assert new.num_parameters < pot.num_parameters
    got = new.compute(cells)
    assert np.abs(got["forces"] - ref["forces"]).max() <= 1e-10 * np.abs(ref["forces"]).max()


def test_negative_control_truncation_changes_predictions():
    pot, cells = _species_resolved(4)
    new, discarded = compress_channels(pot, 2)
    assert min(discarded) > 1e-3
    ref, got = pot.compute(cells), new.compute(cells)
    assert np.abs(got["forces"] - ref["forces"]).max() > 1e-3 * np.abs(ref["forces"]).max()


def test_compressed_model_round_trips(tmp_path):
    pot, cells = _species_resolved(5)
    new, _ = compress_channels(pot, 4)
    new.save(tmp_path / "c.etn")
    back = etnpot.load(tmp_path / "c.etn")
    assert back.basis.n_channels == 4 and back.metadata["compress"]["n_channels_before"] == 6
    np.testing.assert_array_equal(back.compute(cells)["forces"], new.compute(cells)["forces"])


def test_bad_channel_count_is_an_error():
    pot, _ = _species_resolved(6)
    for bad in (0, pot.basis.n_channels + 1):
        with pytest.raises(ValueError, match="n_channels"):
            compress_channels(pot, bad)


def test_subspaces_are_orthonormal():
    pot, _ = _species_resolved(7)
    for A, B, d in channel_subspaces(pot, 3):
        np.testing.assert_allclose(A.T @ A, np.eye(3), atol=1e-12)
        np.testing.assert_array_equal(A, B)
        assert 0 <= d <= 1


@pytest.mark.parametrize("seed", [1, 2])
def test_full_rank_compression_in_the_data_metric_predicts_the_same(seed):
    pot, cells = _species_resolved(seed)
    ref = pot.compute(cells)
    new, discarded = compress_channels(pot, pot.basis.n_channels, data=cells)
    assert max(discarded) < 1e-12 and new.metadata["compress"]["data_metric"]
    got = new.compute(cells)
    for key in ("energy", "forces"):
        assert np.abs(got[key] - ref[key]).max() <= 1e-9 * np.abs(ref[key]).max()


def test_data_metric_truncation_keeps_more_of_the_predictions():
    """Truncated to 3 of 6 channels, the data-metric choice changes the predictions on those data
    less than the plain SVD of the cores."""
    pot, cells = _species_resolved(4, l_max=1)
    ref = pot.compute(cells)["forces"]
    plain, _ = compress_channels(pot, 3)
    data, _ = compress_channels(pot, 3, data=cells)
    err = lambda p: np.sqrt(np.mean((p.compute(cells)["forces"] - ref) ** 2))
    assert err(data) < err(plain)


def test_compress_refit_moves_towards_a_compressible_teacher():
    """A teacher whose cores use 3 channel directions per l, perturbed in all 6: compressed to 3
    channels and refitted on the teacher's data, the model comes closer to the teacher than the
    projection alone (halfway at least) and stays within 1 % of its forces."""
    teacher = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.5, order=2, l_max=1, rank=2, n_basis=3, seed=8,
                                         noise=0.5, init="constant")
    cells = diverse_cells(30, seed=9)
    teacher.basis.normalize(teacher.graph(cells))
    C = teacher.basis.n_channels
    rng = np.random.default_rng(1)
    V = [np.linalg.qr(rng.normal(size=(C, 3)))[0] for _ in range(2)]
    for core in teacher.tt.cores:
        for p, T in core.items():
            T[:, :C, :] = np.einsum("cd,rds->rcs", V[p[1]] @ V[p[1]].T, T[:, :C, :])
    data = label(teacher, cells)
    train, valid = data[:-6], data[-6:]
    student = teacher.copy()
    for core in student.tt.cores:
        for T in core.values():
            T += 1e-3 * rng.normal(size=T.shape)
    new, rep = compress(student, 3, train, valid, settings=etnpot.FitSettings(sweeps=3, ridge=0.0))
    assert rep["num_parameters"] < rep["num_parameters_before"]
    f_ref = np.sqrt(np.mean(np.concatenate([c.forces for c in valid]) ** 2))
    assert rep["errors_after"]["forces"]["rmse"] < 0.01 * f_ref
    assert rep["errors_after"]["forces"]["rmse"] < 0.6 * rep["errors_projected"]["forces"]["rmse"]
    assert rep["errors_after"]["energy"]["rmse"] < 0.6 * rep["errors_projected"]["energy"]["rmse"]


def test_cli_compress(tmp_path, capsys):
    from etnpot.cli import main
    from test_cli_fit import write_small_data

    from fitdata import fit_toml, teacher_data

    write_small_data(tmp_path)
    (tmp_path / "fit.toml").write_text(fit_toml(order=2, rank=2, sweeps=1, validation_fraction=0.3))
    pot, _, val = teacher_data(order=2, rank=2, n_train=8, n_test=3)
    pot.save(tmp_path / "m.etn")
    out = tmp_path / "c.etn"
    assert main(["compress", str(tmp_path / "m.etn"), "--channels", "2", "--sweeps", "1", "--config",
                 str(tmp_path / "fit.toml"), "--data-dir", str(tmp_path), "--output", str(out), "--json",
                 str(tmp_path / "r.json"), "-q"]) == 0
    text = capsys.readouterr().out
    assert "channels       4 -> 2" in text and "µs" in text and "validation projected" in text
    rep = json.loads((tmp_path / "r.json").read_text())
    assert etnpot.load(out).num_parameters == rep["num_parameters"] < pot.num_parameters
    assert main(["compress", str(tmp_path / "m.etn"), "--channels", "9", "--config", str(tmp_path / "fit.toml"),
                 "--data-dir", str(tmp_path), "-q"]) == 2
