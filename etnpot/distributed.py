"""Distributed fitting on Dask: the per-chunk work of :mod:`etnpot.chunks` as a map-reduce.

Each local problem of the fit is a sum over configurations.  In the streamed QR form of
:mod:`etnpot.lstsq` the partial results (one ``P x P`` triangular factor per chunk) merge
associatively.  So the workers compute them chunk by chunk, loading their
:class:`~etnpot.chunks.FileChunk` from shared storage (paths, never data shipped from the client).
They then reduce the results pairwise in a tree, and the client receives a single ``P x P``
factor whatever the number of configurations.  The solve, the gauge (QR) moves and the
bookkeeping stay on the client.  A worker that dies mid-task loses only recomputable task
results: the scheduler reruns its chunks elsewhere and the result is the same.  This module
is imported only when a client is given (extra ``etnpot[distributed]``).

Usage::

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(n_workers=2))
    chunks = etnpot.distributed.file_chunks(client, ["train.xyz"], chunk_atoms=3000)
    ALSFitter(pot, chunks, client=client).run()
"""
from __future__ import annotations

import logging

from . import chunks as C
from .data import batches_by_atoms, validation_indices

__all__ = ["map_reduce", "file_chunks", "count_configurations", "start_client"]

log = logging.getLogger(__name__)


def map_reduce(client, fn, chunks, args=(), reduce=True):
    """``fn(chunk, *args)`` for every chunk on the workers; merged by a tree reduction on the
    workers (``reduce=True``) or gathered as a list."""
    futures = [client.submit(fn, c, *args, pure=False) for c in chunks]
    if not reduce:
        return client.gather(futures)
    # the same pairing as the local fit (chunks.tree_reduce): identical floating-point sums
    top = C.tree_reduce(futures, lambda a, b: client.submit(C.merge, a, b, pure=False))
    return top.result()


def count_configurations(path, reader=None):
    """Atoms per configuration of a data file (run on a worker: the client never reads the data)."""
    return [len(c.atoms) for c in C.read_cached(str(path), tuple(sorted((reader or {}).items())))]


def file_chunks(client, paths, chunk_atoms=3000, reader=None, validation_fraction=0.0, seed=0):
    """:class:`~etnpot.chunks.FileChunk` lists for ``paths`` (counted on the workers), grouped by
    ``chunk_atoms``; with ``validation_fraction`` a seeded random share of the configurations goes
    to a second list: returns ``(train_chunks, validation_chunks)``."""
    counts = client.gather([client.submit(count_configurations, p, reader, pure=False) for p in paths])
    index = [(pi, i) for pi, c in enumerate(counts) for i in range(len(c))]  # reading order, as the local fit
    val = validation_indices(len(index), validation_fraction, seed)

    def group(validation: bool):
        out = []
        for pi, path in enumerate(paths):
            ids = [i for g, (pj, i) in enumerate(index) if pj == pi and (g in val) == validation]
            out += [C.FileChunk(path, batch, reader)
                    for batch in batches_by_atoms(ids, chunk_atoms, lambda i, pi=pi: counts[pi][i])]
        return out

    return group(False), group(True)


def start_client(scheduler: str, n_workers: int = 2):
    """A Dask client: ``scheduler = "local"`` starts a LocalCluster of ``n_workers`` single-threaded
    worker processes; otherwise it is the scheduler's address (``tcp://host:8786``)."""
    from dask.distributed import Client, LocalCluster

    if int(n_workers) < 1:  # a LocalCluster of no workers waits for ever
        raise ValueError(f"[distributed] n_workers must be >= 1, got {n_workers}")
    if scheduler == "local":
        cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        return Client(cluster)
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as e:
        raise ValueError(f"[distributed] scheduler = {scheduler!r}: cannot connect within {CONNECT_TIMEOUT_S} s "
                         f"({type(e).__name__}: {e}); start the scheduler, or use \"local\"") from None


#: seconds to wait for a Dask scheduler before the fit gives up (before any data is read)
CONNECT_TIMEOUT_S = 30
