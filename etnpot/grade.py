r"""Extrapolation grade of atomic environments (D-optimality / maxvol, as in MTP and ACE).

The fitted site energy is linear in every core: ``E_i = <T^{(k)}, Phi_i^{(k)}>``.  The rows
``Phi_i^{(k)}`` of one core (the centre core ``k = order // 2`` by default) are the fitted TT's
*linearized features* of atom ``i``: they depend on the environment through all the other
cores.  Following Podryabinkin & Shapeev (Comput. Mater. Sci. 140, 171 (2017)), an *active
set* of ``r`` training environments is chosen with maximal volume (|det|) of their rows,
projected on the ``r``-dimensional span of all training rows (the structural null space of the
shared-feature TT is removed first).  The grade of any environment ``x`` is

.. math::

    \gamma(x) = \max_j \big| (x V)\, A^{-1} \big|_j ,

the largest coefficient needed to write its row as a combination of the active rows.  For the
training environments ``gamma <= 1`` (up to the maxvol tolerance); ``gamma > 1`` means
extrapolation, and values of a few and more mean the potential is being used far from its
data.  Active learning picks the candidates with the largest grades and adds them to the active
set (:func:`select_configurations`).

The active set is computed by streamed maxvol passes (Sherman-Morrison updates of ``A^{-1}``)
over chunks of atoms, so memory is bounded by ``r^2`` plus one chunk.

What is kept is compact: only the product ``W = V A^{-1}`` (``P x r``), in float32
(:meth:`ActiveSet.compact`).  That is the same active set written in the coordinates of its own
active rows (``A -> A A^{-1} = I``): grades and further maxvol updates are unchanged up to the
rounding of ``W`` (measured on the committed models: see ``fitting/rewrite_models.py``).
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.linalg as sla

from . import defaults as D
from .defaults import FIT as DEFAULT_FIT

__all__ = ["ActiveSet", "fit_active_set", "extrapolation_grades", "select_configurations", "descriptors",
           "model_fingerprint", "checked_active_set", "ExtrapolationWarning", "ExtrapolationError",
           "ExtrapolationMonitor"]

log = logging.getLogger(__name__)


class ExtrapolationWarning(UserWarning):
    """The potential is evaluated outside its training data (grade above the threshold)."""


class ExtrapolationError(RuntimeError):
    """Raised instead of :class:`ExtrapolationWarning` when the calculator is told to."""


class ExtrapolationMonitor:
    """Rate-limited extrapolation and unseen-species warnings of one calculator (ASE or LAMMPS).

    :meth:`observe` is called once per evaluation with that evaluation's largest grade and its
    count of atoms in unseen species environments, and returns the messages to warn with now:
    the first evaluation above ``grade_threshold`` (and the first with unseen species
    environments) gives one full message; after that, one summary every ``summary_interval``
    evaluations in which either happened again (how many evaluations, the largest grade and
    the step it was met at); ``summary_interval = 0`` gives no summaries.  :meth:`flush` gives
    the summary of the evaluations since the last one, :meth:`summary` the totals as a dict.
    ``step`` is what the messages call the evaluation (ASE: the calculator's evaluation count,
    LAMMPS: the timestep)."""

    def __init__(self, grade_threshold: float = D.EXTRAPOLATION["grade_threshold"],
                 summary_interval: int = D.EXTRAPOLATION["summary_interval"]):
        if int(summary_interval) < 0:
            raise ValueError(f"summary_interval must be >= 0 evaluations, got {summary_interval!r}")
        self.grade_threshold = float(grade_threshold)
        self.summary_interval = int(summary_interval)
        self.n_evaluations = 0
        self.n_over = 0  # evaluations with a grade above the threshold
        self.n_unseen = 0  # evaluations with atoms in unseen species environments
        self.max_grade, self.max_grade_step = 0.0, None
        self._warned_grade = self._warned_unseen = False
        self._window = None  # events since the last message: see _new_window
        self._window_start = 0  # evaluation count when the window opened

    def _new_window(self):
        return {"over": 0, "unseen": 0, "max_grade": 0.0, "step": None, "atom": None, "max_unseen": 0,
                "first": None, "last": None}

    def observe(self, step, grade=None, atom=None, unseen: int = 0, unseen_detail: str = "") -> list:
        """Record one evaluation; returns the messages (strings) to warn with now."""
        self.n_evaluations += 1
        msgs = []
        over = grade is not None and grade > self.grade_threshold
        if grade is not None and grade > self.max_grade:
            self.max_grade, self.max_grade_step = float(grade), step
        tail = (f"; later ones are summarised every {self.summary_interval} evaluations" if self.summary_interval
                else "; later ones are counted (summary at the end)")
        w = self._window
        if over:
            self.n_over += 1
            if not self._warned_grade:
                self._warned_grade = True
                msgs.append(f"step {step}: extrapolation grade {grade:.3g} > {self.grade_threshold:g}"
                            + (f" (atom {atom})" if atom is not None else "")
                            + f": the potential is used outside its training data{tail}")
                over = False  # reported on its own, not again in a summary
        if unseen:
            self.n_unseen += 1
            if not self._warned_unseen:
                self._warned_unseen = True
                msgs.append(f"step {step}: {unseen} atom(s) in a combination of species that the training data "
                            f"never showed{' (' + unseen_detail + ')' if unseen_detail else ''}: the potential "
                            f"extrapolates there{tail}")
                unseen = 0
        if over or unseen:
            if w is None:
                w = self._window = self._new_window()
            w["first"] = step if w["first"] is None else w["first"]
            w["last"] = step
            if over:
                w["over"] += 1
                if grade > w["max_grade"]:
                    w["max_grade"], w["step"], w["atom"] = float(grade), step, atom
            if unseen:
                w["unseen"] += 1
                w["max_unseen"] = max(w["max_unseen"], int(unseen))
        if self.summary_interval and self.n_evaluations - self._window_start >= self.summary_interval:
            msgs += self.flush()
        return msgs

    def flush(self) -> list:
        """The summary of the evaluations since the last message (empty if nothing happened)."""
        w, n = self._window, self.n_evaluations - self._window_start
        self._window, self._window_start = None, self.n_evaluations
        if w is None:
            return []
        parts = []
        if w["over"]:
            parts.append(f"extrapolation grade > {self.grade_threshold:g} in {w['over']} of {n} evaluations, the "
                         f"largest {w['max_grade']:.3g} at step {w['step']}"
                         + (f" (atom {w['atom']})" if w["atom"] is not None else ""))
        if w["unseen"]:
            parts.append(f"unseen species environments in {w['unseen']} of {n} evaluations (up to "
                         f"{w['max_unseen']} atoms)")
        return [f"steps {w['first']}-{w['last']}: " + "; ".join(parts)]

    def summary(self) -> dict:
        """Totals since the calculator was made."""
        return {"evaluations": self.n_evaluations, "over_threshold": self.n_over, "grade_threshold": self.grade_threshold,
                "max_grade": self.max_grade, "max_grade_step": self.max_grade_step,
                "unseen_species_evaluations": self.n_unseen}


class ActiveSet:
    """What the grade needs: the core, the projection ``V`` (``P x r``) and ``A^{-1}`` (``r x r``)."""

    def __init__(self, core: int, basis: np.ndarray, inverse: np.ndarray, active: np.ndarray, tol: float,
                 fingerprint: str = ""):
        self.core = int(core)
        self.fingerprint = str(fingerprint)  # of the model parameters it was computed for
        self.basis = np.asarray(basis, dtype=np.float64)
        self.inverse = np.asarray(inverse, dtype=np.float64)
        self.active = np.asarray(active, dtype=np.float64)  # the active rows (projected), r x r
        self.tol = float(tol)

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    def grades(self, phi) -> np.ndarray:
        return np.abs((np.asarray(phi) @ self.basis) @ self.inverse).max(axis=1) if len(phi) else np.zeros(0)

    def update(self, Y, tol=None) -> int:
        """Maxvol swaps with the projected rows ``Y`` until none has a coefficient above ``1 + tol``;
        returns the number of swaps."""
        tol = self.tol if tol is None else tol
        swaps = 0
        B = Y @ self.inverse  # coefficients of the rows in the active basis, updated in place below
        for _ in range(10 * max(1, self.rank)):
            i, j = np.unravel_index(np.argmax(np.abs(B)), B.shape)
            c = B[i, j]
            if abs(c) <= 1.0 + tol:
                break
            # replace active row j by Y[i]. With b = B[i] - e_j (= (Y[i] - A[j]) A^{-1}),
            # Sherman-Morrison: A'^{-1} = A^{-1} - A^{-1}[:, j] b / c, hence B' = B - B[:, j] b / c:
            # O(n r) per swap instead of recomputing Y A^{-1}, O(n r^2)
            b = B[i].copy()
            b[j] -= 1.0
            self.inverse -= np.outer(self.inverse[:, j], b) / c
            B -= np.outer(B[:, j], b) / c
            self.active[j] = Y[i]
            swaps += 1
        return swaps

    def compact(self) -> "ActiveSet":
        """The same active set in the coordinates of its active rows: projection ``V A^{-1}``
        rounded to float32, ``A^{-1} = A = I``.  Grades change only by that rounding (a float32
        ``W`` is stored exactly, so a compact set survives saving and loading bit for bit)."""
        W = (self.basis @ self.inverse).astype(np.float32)
        eye = np.eye(self.rank)
        return ActiveSet(self.core, W, eye, eye.copy(), self.tol, self.fingerprint)

    def to_arrays(self) -> dict:
        """The arrays of a saved active set: ``grade_matrix`` (``V A^{-1}``, float32, ``P x r``)
        and ``grade_meta`` (core index, tolerance)."""
        return {"grade_matrix": (self.basis @ self.inverse).astype(np.float32),
                "grade_meta": np.array([self.core, self.tol])}

    @classmethod
    def from_arrays(cls, arrays, fingerprint="") -> "ActiveSet":
        """Inverse of :meth:`to_arrays`; also reads the full float64 layout of model files of
        format version 1 (``grade_basis``, ``grade_inverse``, ``grade_active``)."""
        meta = arrays["grade_meta"]
        if "grade_matrix" in arrays:
            W = arrays["grade_matrix"]
            return cls(int(meta[0]), W, np.eye(W.shape[1]), np.eye(W.shape[1]), float(meta[1]), fingerprint)
        return cls(int(meta[0]), arrays["grade_basis"], arrays["grade_inverse"], arrays["grade_active"], float(meta[1]),
                   fingerprint)


def model_fingerprint(potential) -> str:
    """A hash of everything the grade depends on: cores, feature parameters and normalization."""
    import hashlib

    h = hashlib.sha256()
    for k in range(potential.order):
        h.update(np.ascontiguousarray(potential.tt.core_vector(k)).tobytes())
    b = potential.basis
    for a in (b.species_weights, b.radial_weights, b.shift, b.scale):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def descriptors(potential, atoms_list, core=None) -> np.ndarray:
    """Per-atom linearized features ``Phi_i^{(core)}`` (``n_atoms x P``) of the fitted TT."""
    pot = potential
    k = pot.order // 2 if core is None else int(core)
    g = atoms_list if hasattr(atoms_list, "vectors") else pot.graph(atoms_list)
    blocks, _ = pot.basis.compute(g)
    out = np.zeros((g.n_atoms, pot.tt.core_size(k)))
    for s0, s1 in pot.atom_ranges(g.n_atoms):
        x = [b[s0:s1] for b in blocks]
        L = pot.tt.left_environments(x, upto=k)
        R = pot.tt.right_environments(x, downto=k + 1)
        out[s0:s1] = pot.tt.site_design(k, L[k], x, R[k + 1])
    return out


def _atom_batches(potential, configs, chunk_atoms, core):
    """Descriptors of ``configs`` (Configurations or ``ase.Atoms``), batch by batch of ``chunk_atoms``."""
    from .data import batches_by_atoms

    for batch in batches_by_atoms(configs, chunk_atoms):
        yield descriptors(potential, [c.atoms if hasattr(c, "atoms") else c for c in batch], core)


def fit_active_set(potential, configs, core=None, rcond: float = 1e-7, tol: float = 1e-3,
                   chunk_atoms: int = DEFAULT_FIT["chunk_atoms"], max_passes: int = 5) -> ActiveSet:
    """Select the maxvol active set of the training environments ``configs`` and attach it to
    ``potential`` (``potential.active_set``).  Returns it.  Also records the species environments
    of ``configs`` (:func:`etnpot.environments.record_species_environments`)."""
    from .lstsq import LeastSquares

    k = potential.order // 2 if core is None else int(core)
    P = potential.tt.core_size(k)
    # 1) the span of the training rows, streamed: R of a QR of all rows, then its SVD
    ls = LeastSquares(P)
    for phi in _atom_batches(potential, configs, chunk_atoms, k):
        ls.add(phi, np.zeros(len(phi)))
    _, s, Vt = np.linalg.svd(ls.R, full_matrices=False)
    r = int(np.sum(s > rcond * s[0])) if s.size and s[0] > 0 else 0
    if r == 0:
        raise ValueError("the training environments span no direction: cannot define a grade")
    V = Vt[:r].T  # (P, r)
    # 2) initial active rows: pivoted QR on the first batches until r independent rows
    pool = []
    for phi in _atom_batches(potential, configs, chunk_atoms, k):
        pool.append(phi @ V)
        Y = np.vstack(pool)
        _, _, piv = sla.qr(Y.T, mode="economic", pivoting=True)
        A = Y[piv[:r]]
        if len(Y) >= r and abs(np.linalg.slogdet(A)[0]) > 0:
            break
    aset = ActiveSet(k, V, np.linalg.inv(A), A.copy(), tol, model_fingerprint(potential))
    # 3) maxvol passes until a whole pass makes no swap
    for p in range(max_passes):
        swaps = sum(aset.update(phi @ V) for phi in _atom_batches(potential, configs, chunk_atoms, k))
        log.info("maxvol pass %d: %d swaps (rank %d)", p, swaps, r)
        if swaps == 0:
            break
    aset = aset.compact()
    potential.active_set = aset
    from .environments import record_species_environments

    record_species_environments(potential, configs, chunk_atoms)  # the species combinations seen (etnpot.environments)
    return aset


def extrapolation_grades(potential, atoms_list) -> np.ndarray:
    """Per-atom grades (all atoms of ``atoms_list`` concatenated); needs ``potential.active_set``."""
    return potential.compute(atoms_list, forces=False, stress=False, grades=True)["extrapolation_grades"]


def checked_active_set(potential) -> ActiveSet:
    """The model's active set, after checking that it exists and was computed for the model's
    current parameters (raises ``ValueError`` otherwise)."""
    aset = getattr(potential, "active_set", None)
    if aset is None:
        raise ValueError("this model has no active set: call etnpot.grade.fit_active_set(model, training_data)")
    if aset.fingerprint != model_fingerprint(potential):
        raise ValueError("the model's parameters changed after its active set was computed: "
                         "call etnpot.grade.fit_active_set again")
    return aset


def select_configurations(potential, candidates, n: int, threshold: float = 1.0):
    """Active learning: indices of up to ``n`` candidate configurations (``ase.Atoms`` or
    Configurations) that most extend the active set, greedily (each choice is added to the active
    set before the next is scored).  Only candidates with a grade above ``threshold`` are chosen;
    the potential's active set is not modified."""
    import copy

    aset = copy.deepcopy(checked_active_set(potential))
    atoms_of = lambda c: c.atoms if hasattr(c, "atoms") else c
    rows = [descriptors(potential, [atoms_of(c)], aset.core) @ aset.basis for c in candidates]
    chosen = []
    for _ in range(int(n)):
        best, best_g = None, threshold
        for i, Y in enumerate(rows):
            if i in chosen or not len(Y):
                continue
            g = np.abs(Y @ aset.inverse).max()
            if g > best_g:
                best, best_g = i, g
        if best is None:
            break
        chosen.append(best)
        aset.update(rows[best])
    return chosen
