"""Distributed assembly on a real dask.distributed LocalCluster (2 worker processes)."""
import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import etnpot  # noqa: E402
from etnpot import distributed as D  # noqa: E402
from etnpot.data import read_dataset  # noqa: E402
from etnpot.fit import ALSFitter, FitSettings  # noqa: E402

from fitdata import fit_toml, teacher_data  # noqa: E402

READER = dict(energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    from ase.io import write

    _, train, _ = teacher_data(order=2, rank=2, noise=0.3, n_train=24, n_test=1)
    frames = []
    for c in train:
        a = c.atoms.copy()
        a.info.update(REF_energy=c.energy, REF_stress=c.stress, config_type=c.config_type)
        a.arrays["REF_forces"] = c.forces
        frames.append(a)
    path = tmp_path_factory.mktemp("data") / "train.xyz"
    write(path, frames, format="extxyz")
    return str(path)


def _fit(data, client=None, sweeps=2):
    """The workers run BLAS single-threaded (dask's default); so does the client here, so that
    local and distributed floating-point operations are the same (multi-threaded BLAS may round
    differently, which ill-conditioned local solves amplify to ~1e-9 relative)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit_inner(data, client, sweeps)


def _fit_inner(data, client, sweeps):
    pot = etnpot.ETNPotential.random(["Si", "C"], r_cut=3.8, order=3, l_max=2, rank=2, seed=3, n_basis=4,
                                     init="constant", noise=1e-2)
    f = ALSFitter(pot, data, settings=FitSettings(sweeps=sweeps, ridge=1e-6, chunk_atoms=12, radial_steps=1,
                                                  lm_steps=1, tol=0, patience=99), client=client, progress=False)
    f.run()
    return pot


def _assert_same(a, b, rtol=0.0):  # bit for bit, as claimed
    for k in range(a.order):
        x, y = a.tt.core_vector(k), b.tt.core_vector(k)
        assert np.abs(x - y).max() <= rtol * np.abs(x).max(), k
    np.testing.assert_allclose(a.e0, b.e0, rtol=rtol)
    np.testing.assert_allclose(a.feature_parameter_vector(), b.feature_parameter_vector(), rtol=rtol, atol=0.0)


def test_distributed_fit_equals_local(client, data_file):
    local = _fit(read_dataset(data_file, **READER))
    chunks, _ = D.file_chunks(client, [data_file], chunk_atoms=12, reader=READER)
    assert len(chunks) >= 4  # a tree reduction, not a sequential one
    dist = _fit(chunks, client)
    _assert_same(local, dist)


def test_worker_killed_mid_sweep_is_survived(client, data_file):
    local = _fit(read_dataset(data_file, **READER))
    chunks, _ = D.file_chunks(client, [data_file], chunk_atoms=12, reader=READER)
    pids = client.run(os.getpid)
    killed = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for addr, keys in client.processing().items():
                if any("least_squares" in str(k) for k in keys) and addr in pids:
                    os.kill(pids[addr], signal.SIGKILL)
                    killed.append(addr)
                    return
            time.sleep(0.005)

    th = threading.Thread(target=killer)
    th.start()
    dist = _fit(chunks, client)
    th.join()
    assert killed, "no worker was killed: the test did not exercise recovery"
    _assert_same(local, dist)
    client.wait_for_workers(2, timeout=60)


def test_file_chunks_split_validation(client, data_file):
    tr, va = D.file_chunks(client, [data_file], chunk_atoms=100, reader=READER, validation_fraction=0.25, seed=1)
    idx_t = [i for c in tr for i in c.indices]
    idx_v = [i for c in va for i in c.indices]
    assert len(idx_v) == 6 and len(idx_t) == 18 and not set(idx_t) & set(idx_v)


def test_file_chunks_hold_the_local_split_and_chunks(client, data_file):
    """One split (data.validation_indices) and one batching (data.batches_by_atoms): the distributed
    chunks hold the same configurations, in the same groups, as the local split and memory chunks
    of the same file. Local and distributed fits are identical only while this holds."""
    from etnpot.chunks import make_memory_chunks
    from etnpot.data import split_train_validation

    tr, va = D.file_chunks(client, [data_file], chunk_atoms=20, reader=READER, validation_fraction=0.3, seed=4)
    local = read_dataset(data_file, **READER)
    for i, c in enumerate(local):
        c.info["index"] = i
    ltr, lva = split_train_validation(local, 0.3, seed=4)
    assert len(lva) == 7 and len(make_memory_chunks(ltr, 20)) > 2
    for chunks, configs in ((tr, ltr), (va, lva)):
        assert [list(ch.indices) for ch in chunks] == [[c.info["index"] for c in m.configurations()]
                                                       for m in make_memory_chunks(configs, 20)]


def test_cli_fit_with_distributed_section(tmp_path, data_file):
    """`etnpot fit` with a [distributed] section (a LocalCluster started by the workflow) gives the
    same model as without it."""
    import json
    import shutil

    from threadpoolctl import threadpool_limits

    from etnpot.cli import main

    import ase.io

    shutil.copy(data_file, tmp_path / "train.xyz")
    # every other configuration as the reported set (the training file itself is refused as a test file)
    ase.io.write(tmp_path / "test.xyz", ase.io.read(data_file, ":")[::2], format="extxyz")
    base = fit_toml(order=2, l_max=1, rank=2, sweeps=2, validation_fraction=0.25, test="test.xyz",
                    extra="chunk_atoms = 16\n[weights]\nstress = 10.0\n")
    reports = []
    for name, extra in (("local", ""), ("dist", '\n[distributed]\nscheduler = "local"\nn_workers = 2\n')):
        (tmp_path / f"{name}.toml").write_text(base + f'[output]\nmodel = "{name}.etn"\nreport = "{name}.json"\n' + extra)
        with threadpool_limits(1):
            assert main(["fit", str(tmp_path / f"{name}.toml"), "-q", "--data-dir", str(tmp_path)]) == 0
        reports.append(json.loads((tmp_path / f"{name}.json").read_text()))
    a, b = reports
    assert a["test"]["n_configs"] == b["test"]["n_configs"] == 12
    for key in ("energy", "forces", "stress"):
        assert abs(a["test"][key]["rmse"] - b["test"][key]["rmse"]) <= 1e-10 * a["test"][key]["rmse"]
