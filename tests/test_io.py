import json
import os
import zipfile

import numpy as np
import pytest

import etnpot
from etnpot.io import ModelFileError

from conftest import rattled_triclinic


def test_round_trip_bit_identical(pot4, tmp_path):
    path = tmp_path / "m.etn"
    h = pot4.save(path)
    pot2 = etnpot.load(path)
    atoms = rattled_triclinic(31)
    a, b = pot4.compute(atoms), pot2.compute(atoms)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert pot2.num_parameters == pot4.num_parameters and pot2.species == pot4.species
    hdr = etnpot.read_header(path)
    assert hdr["format"] == "etnpot" and hdr["format_version"] == etnpot.FORMAT_VERSION
    assert hdr["units"]["energy"] == "eV" and hdr["species"] == ["Si", "C"] and hdr["content_sha256"] == h
    # saving the loaded model again gives the same content
    assert pot2.save(tmp_path / "again.etn") == h


def _rewrite(src, dst, mutate_header=None, drop=None, replace=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    if mutate_header:
        mutate_header(header)
    if drop:
        arrays.pop(drop)
    if replace:
        arrays.update(replace)
    with open(dst, "wb") as fh:
        np.savez(fh, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)


def test_newer_format_version_is_refused(small_pot, tmp_path):
    src, dst = tmp_path / "a.etn", tmp_path / "b.etn"
    small_pot.save(src)
    _rewrite(src, dst, mutate_header=lambda h: h.update(format_version=99))
    with pytest.raises(ModelFileError, match="format version 99 is not supported"):
        etnpot.load(dst)


def test_tampered_array_is_detected(small_pot, tmp_path):
    src, dst = tmp_path / "a.etn", tmp_path / "b.etn"
    small_pot.save(src)
    _rewrite(src, dst, replace={"e0": np.array([1.0, 2.0])})
    with pytest.raises(ModelFileError, match="hash mismatch"):
        etnpot.load(dst)


def test_truncated_and_foreign_files(small_pot, tmp_path):
    src = tmp_path / "a.etn"
    small_pot.save(src)
    data = src.read_bytes()
    (tmp_path / "trunc.etn").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        etnpot.load(tmp_path / "trunc.etn")
    (tmp_path / "text.etn").write_text("hello")
    with pytest.raises(ModelFileError):
        etnpot.load(tmp_path / "text.etn")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(ModelFileError, match="no header"):
        etnpot.load(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError):
        etnpot.load(tmp_path / "missing.etn")


def test_overwrite_is_atomic(small_pot, tmp_path):
    path = tmp_path / "m.etn"
    small_pot.save(path)
    before = path.read_bytes()

    bad = small_pot.copy()
    bad.metadata["x"] = object()  # not JSON serializable: the write fails before the rename
    with pytest.raises(TypeError):
        bad.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.etn"]  # no temporary file left
    assert zipfile.is_zipfile(path)


def test_saved_file_has_the_users_mode(small_pot, tmp_path):
    import stat

    umask = os.umask(0o022)
    try:
        small_pot.save(tmp_path / "m.etn")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "m.etn").st_mode) == 0o644


def test_numpy_values_in_metadata_save_and_load(small_pot, tmp_path):
    """Metadata holding numpy scalars and arrays (e.g. a fit history of np.float32 errors) is saved
    as JSON numbers and lists, and the file's hash checks on load."""
    pot = small_pot.copy()
    pot.metadata["history"] = {"rmse": np.float32(0.125), "sweep": np.int64(3), "ok": np.bool_(True),
                               "per_type": np.array([1.5, 2.5])}
    h = pot.save(tmp_path / "m.etn")
    back = etnpot.load(tmp_path / "m.etn")
    assert back.metadata["history"] == {"rmse": 0.125, "sweep": 3, "ok": True, "per_type": [1.5, 2.5]}
    assert back.save(tmp_path / "again.etn") == h


DATA = os.path.join(os.path.dirname(__file__), "data")


def test_format_version_1_file_still_loads(tmp_path):
    """tests/data/model_v1.etn was written by format version 1 (active set embedded in float64), with
    the predictions and grades of a probe structure in its metadata; it loads and predicts them, and
    saved again (current version, grade file) its grades change only by the float32 rounding."""
    path = os.path.join(DATA, "model_v1.etn")
    assert etnpot.read_header(path)["format_version"] == 1
    pot = etnpot.load(path)
    ref = pot.metadata["reference"]
    probe = rattled_triclinic(3)
    res = pot.compute(probe, grades=True)
    np.testing.assert_allclose(res["energy"][0], ref["energy"], rtol=1e-12)
    np.testing.assert_allclose(res["forces"], ref["forces"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res["extrapolation_grades"], ref["grades"], rtol=1e-9)
    pot.save(tmp_path / "v2.etn")
    assert etnpot.read_header(tmp_path / "v2.etn")["format_version"] == etnpot.FORMAT_VERSION
    again = etnpot.load(tmp_path / "v2.etn")
    g = again.compute(probe, forces=False, stress=False, grades=True)["extrapolation_grades"]
    np.testing.assert_allclose(g, ref["grades"], rtol=1e-5)
    assert np.abs(g - ref["grades"]).max() > 0  # the test can fail: the float32 rounding is visible


def test_active_set_lives_in_a_grade_file(tmp_path, caplog):
    """The model file stays small; the grade file beside it is attached on load when present and
    made for this model, and a stale one is ignored (with a warning) or removed by the next save."""
    import logging

    from etnpot.grade import fit_active_set
    from etnpot.io import grade_path
    from fitdata import diverse_cells

    pot = etnpot.load(os.path.join(DATA, "model_v1.etn"))
    bare = pot.copy()
    bare.active_set = None
    fit_active_set(pot, diverse_cells(4, seed=9))
    m = tmp_path / "m.etn"
    pot.save(m)
    side = grade_path(m)
    assert os.path.exists(side) and side == str(m) + ".grade"
    bare.save(tmp_path / "bare.etn")
    assert abs(os.path.getsize(m) - os.path.getsize(tmp_path / "bare.etn")) < 1000  # the active set is not in it
    atoms = diverse_cells(2, seed=11)
    g = etnpot.grade.extrapolation_grades(etnpot.load(m), atoms)
    np.testing.assert_array_equal(g, etnpot.grade.extrapolation_grades(pot, atoms))  # compact sets round-trip exactly
    # a grade file of another model is ignored
    other = pot.copy()
    other.tt.set_core_vector(0, other.tt.core_vector(0) * 1.01)
    fit_active_set(other, diverse_cells(4, seed=9))
    other.save(tmp_path / "o.etn")
    os.replace(grade_path(tmp_path / "o.etn"), side)
    with caplog.at_level(logging.WARNING, logger="etnpot.io"):
        assert etnpot.load(m).active_set is None
    assert "belongs to another model" in caplog.text
    # a missing grade file: the model loads, without grades
    os.unlink(side)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="etnpot.io"):
        assert etnpot.load(m).active_set is None
    assert "which is missing" in caplog.text
    # saving a model without an active set removes a grade file left by an earlier one
    pot.save(m)
    assert os.path.exists(side)
    bare.save(m)
    assert not os.path.exists(side) and etnpot.load(m).active_set is None
    # an active set made stale by a change of parameters is not saved
    stale = pot.copy()
    stale.tt.set_core_vector(1, stale.tt.core_vector(1) * 1.01)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="etnpot.io"):
        stale.save(tmp_path / "stale.etn")
    assert "computed for other parameters" in caplog.text and not os.path.exists(grade_path(tmp_path / "stale.etn"))
    assert etnpot.read_header(tmp_path / "stale.etn")["active_set"] is None
    # a corrupt grade file is an error that names it
    pot.save(m)
    open(side, "r+b").write(b"junk")
    with pytest.raises(ModelFileError, match=r"m\.etn\.grade"):
        etnpot.load(m)


def test_committed_models_are_small_and_current():
    """The deployed models (fitting/**/*.etn) are of the current format and at most 1 MB per 3,000
    stored numbers (the active set lives in the grade file beside them)."""
    import glob

    root = os.path.join(os.path.dirname(__file__), "..", "fitting")
    paths = glob.glob(os.path.join(root, "zuo2020", "*.etn")) + glob.glob(os.path.join(root, "inp", "*.etn"))
    assert len(paths) >= 10
    for path in paths:
        header = etnpot.read_header(path)
        assert header["format_version"] == etnpot.FORMAT_VERSION, path
        with np.load(path) as z:  # the model's numbers (an embedded active set would not count)
            n = sum(z[k].size for k in z.files if k != "header" and not k.startswith("grade_"))
        assert os.path.getsize(path) <= 1_000_000 * max(1.0, n / 3000), (path, n, os.path.getsize(path))
