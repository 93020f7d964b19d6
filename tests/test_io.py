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
