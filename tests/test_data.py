"""Data readers: units, stress sign and order, config types, and errors that name file and index."""
import json
import lzma

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from etnpot.data import DataError, KBAR_PER_EV_A3, fit_e0, read_dataset, split_train_validation
from etnpot.demo import embedded_data


def mlearn_record(element="Si", vs=(1, 2, 3, 4, 5, 6), energy=-10.0, forces=None, group="Elastic"):
    pos = [[0, 0, 0], [1.3, 1.3, 1.3]]
    return {"structure": {"lattice": {"matrix": [[0, 2.7, 2.7], [2.7, 0, 2.7], [2.7, 2.7, 0]]},
                          "sites": [{"xyz": p, "species": [{"element": element}]} for p in pos]},
            "outputs": {"energy": energy, "forces": forces if forces is not None else [[0.1, 0, 0], [-0.1, 0, 0]],
                        "virial_stress": list(vs)},
            "element": element, "group": group, "num_atoms": 2}


def write_json(path, records, xz=False):
    opener = lzma.open if xz else open
    with opener(path, "wt") as fh:
        json.dump(records, fh)
    return path


@pytest.mark.parametrize("element, ase_shear", [("Si", (5, 6, 4)), ("Ge", (5, 6, 4)), ("Li", (5, 6, 4)),
                                                 ("Mo", (6, 5, 4)), ("Cu", (6, 5, 4)), ("Ni", (6, 5, 4))])
def test_mlearn_units_sign_and_shear_order(tmp_path, element, ase_shear):
    p = write_json(tmp_path / "d.json.xz", [mlearn_record(element)], xz=True)
    c = read_dataset(p)[0]
    # ASE Voigt: xx yy zz yz xz xy; file: xx yy zz xy (yz xz | xz yz); kbar, compressive positive
    expect = -np.array([1, 2, 3, *ase_shear], float) / KBAR_PER_EV_A3
    np.testing.assert_allclose(c.stress, expect)
    assert c.energy == -10.0 and c.config_type == "Elastic" and c.forces.shape == (2, 3)


def test_embedded_subset_reads():
    train, test = embedded_data()
    assert len(train) == 44 and len(test) == 25
    assert {c.config_type for c in train} == {"Elastic", "Surface", "Vacancy", "AIMD-NVT"}


def test_fitsnap_json_file_dir_and_archive(tmp_path):
    import tarfile

    d = tmp_path / "JSON" / "EOS"
    d.mkdir(parents=True)
    cfg = {"Dataset": {"Data": [{"AtomTypes": ["In", "P"], "NumAtoms": 2, "Lattice": [[4, 0, 0], [0, 4, 0], [0, 0, 4]],
                                 "Positions": [[0, 0, 0], [1, 1, 1]], "Energy": -7.5, "Forces": [[0, 0, 1], [0, 0, -1]],
                                 "Stress": [[10, 1, 2], [1, 20, 3], [2, 3, 30]]}]}}
    (d / "a.json").write_text("# Header\n" + json.dumps(cfg))
    for src in (d / "a.json", tmp_path / "JSON"):
        c = read_dataset(src)[0]
        np.testing.assert_allclose(c.stress, -np.array([10, 20, 30, 3, 2, 1]) / KBAR_PER_EV_A3)
        assert c.config_type == "EOS" and c.energy == -7.5
    with tarfile.open(tmp_path / "JSON.tar.xz", "w:xz") as tar:
        tar.add(tmp_path / "JSON", arcname="JSON")
    c = read_dataset(tmp_path / "JSON.tar.xz")[0]
    assert c.config_type == "EOS" and c.source.endswith("JSON/EOS/a.json")


def test_extxyz_with_custom_keys(tmp_path):
    a = Atoms("Si2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]], cell=[3, 3, 3], pbc=True)
    a.info["REF_energy"] = -9.0
    a.info["REF_stress"] = np.arange(6) * 0.01
    a.info["config_type"] = "bulk"
    a.arrays["REF_forces"] = np.array([[0.5, 0, 0], [-0.5, 0, 0]])
    write(tmp_path / "d.xyz", [a, a], format="extxyz")
    cs = read_dataset(tmp_path / "d.xyz", energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")
    assert len(cs) == 2 and cs[1].energy == -9.0 and cs[0].config_type == "bulk"
    np.testing.assert_allclose(cs[0].forces[0], [0.5, 0, 0])
    np.testing.assert_allclose(cs[0].stress, np.arange(6) * 0.01)


@pytest.mark.parametrize("mutate, msg", [
    (lambda r: r["outputs"].update(energy=float("nan")), "energy must be one finite number"),
    (lambda r: r["outputs"].update(forces=[[0, 0, 0]]), r"forces have shape \(1, 3\), expected \(2, 3\)"),
    (lambda r: r["outputs"]["forces"][1].__setitem__(0, float("inf")), "non-finite forces"),
    (lambda r: r.pop("structure"), "missing key 'structure'"),
    (lambda r: r["outputs"].update(virial_stress=[1, 2, 3]), "virial_stress has shape"),
    (lambda r: r["structure"]["sites"][0]["species"][0].update(element="Xx"), "bad structure"),
])
def test_bad_mlearn_records_name_file_and_index(tmp_path, mutate, msg):
    good = mlearn_record()
    bad = mlearn_record()
    mutate(bad)
    p = write_json(tmp_path / "bad.json", [good, bad])
    with pytest.raises(DataError, match=msg) as e:
        read_dataset(p)
    assert "bad.json[1]" in str(e.value)


def test_fit_e0_least_squares():
    train, _ = embedded_data()
    e0 = fit_e0(train, ["Si"])
    assert -5.5 < e0[0] < -5.0
    tr, va = split_train_validation(train, 0.25, seed=1)
    assert len(tr) + len(va) == len(train) and len(va) == 11
    tr2, va2 = split_train_validation(train, 0.25, seed=1)
    assert [c.source for c in va] == [c.source for c in va2]


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_dataset("/nonexistent/x.json")


def test_pymatgen_json_with_vasp_stress(tmp_path):
    """Pymatgen-style records with ``outputs.stress`` (VASP kbar, compressive positive; six numbers in
    VASP order xx yy zz xy yz zx, or 3x3) instead of mlearn's virial_stress are read with ASE's sign
    and Voigt order; virial_stress wins where both are given."""
    six = mlearn_record("Al")
    del six["outputs"]["virial_stress"]
    six["outputs"]["stress"] = [1, 2, 3, 4, 5, 6]  # xx yy zz xy yz zx
    full = mlearn_record("Al")
    del full["outputs"]["virial_stress"]
    full["outputs"]["stress"] = [[1, 4, 6], [4, 2, 5], [6, 5, 3]]
    both = mlearn_record("Si")
    both["outputs"]["stress"] = [9, 9, 9, 9, 9, 9]
    bad = mlearn_record("Al")
    del bad["outputs"]["virial_stress"]
    bad["outputs"]["stress"] = [1, 2, 3]
    a, b, c = read_dataset(write_json(tmp_path / "p.json", [six, full, both]))
    expect = -np.array([1, 2, 3, 5, 6, 4], float) / KBAR_PER_EV_A3  # ASE: xx yy zz yz xz xy
    np.testing.assert_allclose(a.stress, expect)
    np.testing.assert_allclose(b.stress, expect)
    np.testing.assert_allclose(c.stress, -np.array([1, 2, 3, 5, 6, 4], float) / KBAR_PER_EV_A3)  # Si virial_stress
    with pytest.raises(DataError, match=r"bad\.json\[0\]: outputs\.stress: stress has shape \(3,\)"):
        read_dataset(write_json(tmp_path / "bad.json", [bad]))


def test_batches_by_atoms_and_validation_indices():
    from etnpot.data import batches_by_atoms, validation_indices

    assert list(batches_by_atoms([3, 3, 3, 10, 1], 5, n_atoms=lambda n: n)) == [[3, 3], [3, 10], [1]]
    assert list(batches_by_atoms([], 5)) == []
    assert validation_indices(1, 0.5) == set() and validation_indices(10, 0.0) == set()
    v = validation_indices(20, 0.25, seed=3)
    assert len(v) == 5 and v == validation_indices(20, 0.25, seed=3) and v != validation_indices(20, 0.25, seed=4)
