r"""Fitting an ETN potential: sweeps of alternating least squares (one-site) and two-site DMRG.

The fitter owns the schedule: sweeps that move the orthogonality centre along the tensor train
(QR moves per irrep, :mod:`etnpot.tt`), the exact local solves on the way, optional
Levenberg–Marquardt steps on all cores and on the radial/species weights after each sweep, the
history, early stopping on the validation loss (the restore of the best sweep), and atomic
checkpoints with an exact resume.  The objective, its data and the assembly of the local
problems live in :mod:`etnpot.objective`; the steps in :mod:`etnpot.steps`; the rows of the
linearized model in :mod:`etnpot.linearization`; the streamed QR least squares (TSQR, never
normal equations) in :mod:`etnpot.lstsq`.

A **two-site step** merges cores ``k, k+1`` into a supercore, solves for it the same way and
splits it by an SVD per middle irrep (:meth:`~etnpot.tt.EquivariantTT.split_merged`): ranks
then adapt per irrep under ``max_rank`` and a discarded-weight ``cutoff``.  It costs far more
(the supercore has ~ channels x rank times more parameters), so it is used for rank
adaptation on small models; ``max_supercore`` guards the size.

The radial/species parameters (``B``, ``A`` of :mod:`etnpot.features`) enter the energy
polynomially (degree ``order``), not linearly.  They start at the raw-Chebyshev channels and,
with ``radial_steps > 0``, are refined between sweeps by Levenberg–Marquardt steps, accepted
only when the objective decreases: a supervised, nonlinear step where the model is nonlinear,
linear solves where it is linear.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import chunks as C
from . import defaults as D
from . import steps
from .data import e0_from_system
from .io import load, save
from .memory import keep_freed_memory
from .objective import Objective, Weights

__all__ = ["FitSettings", "Weights", "ALSFitter", "fit"]  # Weights lives in etnpot.objective

log = logging.getLogger(__name__)
#: one line per sweep where there is no terminal for a progress bar (the CLI shows this logger's INFO)
progress_log = logging.getLogger("etnpot.progress")


def use_bars() -> bool:
    """Progress bars only on a terminal (or in a notebook, where tqdm.auto draws widgets): redirected
    to a file, a bar is kilobytes of carriage returns; the fit logs a line per sweep to
    ``etnpot.progress`` instead."""
    import sys

    from tqdm.auto import tqdm

    try:
        return sys.stderr.isatty() or any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
    except (AttributeError, ValueError):
        return False


@dataclass
class FitSettings:
    """Settings of an ALS/DMRG fit (all have defaults: :data:`etnpot.defaults.FIT`)."""

    sweeps: int = D.FIT["sweeps"]
    ridge: float = D.FIT["ridge"]
    two_site: bool = D.FIT["two_site"]
    max_rank: object = D.FIT["max_rank"]  # int, {irrep: int}, or a list (one entry per sweep): the rank schedule
    cutoff: float = D.FIT["cutoff"]
    max_supercore: int = D.FIT["max_supercore"]
    lm_steps: int = D.FIT["lm_steps"]  # Levenberg–Marquardt steps on all cores after each sweep
    radial_steps: int = D.FIT["radial_steps"]  # Levenberg–Marquardt steps on the radial/species weights after each sweep
    max_radial_params: int = D.FIT["max_radial_params"]  # radial steps are skipped (with a warning) above this
    max_lm_params: int = D.FIT["max_lm_params"]
    species_tie: float | str = D.FIT["species_tie"]  # penalty on species deviations of the channel coefficients
    tol: float = D.FIT["tol"]  # stop when the validation (else training) loss improves by less than this, relatively
    patience: int = D.FIT["patience"]
    chunk_atoms: int = D.FIT["chunk_atoms"]
    memory_mb: float = D.FIT["memory_mb"]
    seed: int = D.FIT["seed"]


def species_tie_for(basis, value, unseen_triples=None) -> float:
    """The species tie a fit of ``basis`` uses for ``[fit] species_tie = value``: a number >= 0 as
    given; ``"auto"`` :data:`etnpot.defaults.SPECIES_TIE_MANY` for three or more species with
    species-resolved channels whose training data never show some three of the species together
    (``unseen_triples``: :func:`unseen_species_triples`; ``None``, unknown, counts as yes), else 0.
    Where every three species meet in the training data the tie only costs accuracy; where some
    never do, it decides what the model does with them."""
    if value == "auto":
        many = basis.n_species >= 3 and basis.channel_layout() is not None
        return float(D.SPECIES_TIE_MANY) if many and unseen_triples is not False else 0.0
    if isinstance(value, str) or not float(value) >= 0:
        raise ValueError(f"species_tie must be a number >= 0 or 'auto', got {value!r}")
    return float(value)


def unseen_species_triples(potential, train, chunk_atoms=D.FIT["chunk_atoms"]):
    """Whether some three species of ``potential`` never meet in one species environment (an atom
    and its neighbours within ``r_cut``) of the training configurations; records the environments
    (:func:`etnpot.environments.record_species_environments`).  ``None`` where the data are not
    configurations here (chunks on workers)."""
    import itertools

    from .environments import record_species_environments

    if not all(hasattr(c, "atoms") for c in train):
        return None
    S = len(potential.species)
    together = {(c & ((1 << S) - 1)) | (1 << (c >> S)) for c in record_species_environments(potential, train, chunk_atoms)}
    return any(not any(t & m == t for m in together)
               for t in (sum(1 << s for s in trio) for trio in itertools.combinations(range(S), 3)))


class ALSFitter:
    """Alternating-least-squares fit of ``potential`` (modified in place) to ``train``.

    Parameters
    ----------
    potential : an :class:`~etnpot.ETNPotential` (its cores are the starting point: use
        ``ETNPotential.random(..., init="constant")`` for the constant-path initialization).
    train, validation : lists of :class:`~etnpot.data.Configuration`.
    weights : :class:`Weights`.
    settings : :class:`FitSettings`.
    e0 : ``"fit"`` (least squares on composition, then refined in every local solve), or a
        mapping ``{symbol: eV}`` (kept fixed).
    normalize : set the feature normalization from the training data first.
    checkpoint : path of a checkpoint file written atomically after every sweep.
    progress : show a progress bar (on a terminal; else one line per sweep on the
        ``etnpot.progress`` logger); its label is :attr:`label` (default ``"order d, l_max l"``).
    """

    def __init__(self, potential, train, validation=None, weights=None, settings=None, e0=D.E0,
                 normalize=True, checkpoint=None, progress=True, client=None):
        keep_freed_memory()  # the same large temporaries every chunk: reuse them (etnpot.memory)
        self._t_start = time.perf_counter()
        #: wall seconds of the fit before this process (a resumed fit: up to its last checkpoint)
        self.seconds_before = 0.0
        self.pot = potential
        self.weights = weights or Weights()
        self.settings = settings or FitSettings()
        self.checkpoint = os.fspath(checkpoint) if checkpoint else None
        self.progress = progress
        #: what the progress bar / sweep lines say this fit is (the CLI prefixes "candidate k/n: ")
        self.label = f"order {potential.order}, l_max {potential.basis.l_max}"
        self.client = client
        auto = self.settings.species_tie == "auto"
        tie_applies = auto and species_tie_for(potential.basis, "auto") > 0  # 3+ species, resolved channels
        # whether some three species never meet in the training data (None: not known here)
        unseen = unseen_species_triples(potential, train, self.settings.chunk_atoms) if tie_applies else None
        #: the species tie of this fit (``settings.species_tie`` with ``"auto"`` resolved)
        self.species_tie = species_tie_for(potential.basis, self.settings.species_tie, unseen)
        if auto and potential.basis.n_species >= 3:
            why = ({True: "some three species never meet in the training data",
                    False: "every three species meet in the training data",
                    None: "the training data are on workers, not checked"}[unseen] if tie_applies
                   else "no species-resolved channels")
            log.info("species tie %g (species_tie = 'auto': %s)", self.species_tie, why)
        if self.species_tie > 0 and potential.basis.n_species > 1:
            potential.basis.species_tie_operators()  # raises, naming species_tie, without resolved channels
        self.loss = Objective(potential, train, validation, self.weights, self.settings.ridge,
                              self.settings.chunk_atoms, self.settings.memory_mb, client,
                              species_tie=self.species_tie)
        self.fit_e0 = e0 == "fit"
        if e0 == "fit":
            self.pot.e0 = e0_from_system(self.loss.map(C.e0_system, self.loss.train, self.pot.species))
        elif e0 is not None and e0 != "keep":
            self.pot.e0 = np.array([float(dict(e0)[s]) for s in self.pot.species])
        if normalize:
            moments = self.loss.map(C.feature_moments, self.loss.train, self.pot)
            self.pot.basis.set_normalization(moments)
            self._warn_if_underdetermined(int(moments["n_atoms"]))
        self.history: list[dict] = []
        #: what the fit's result depends on besides the model (a resume must see the same)
        self.inputs = {"weights": json.loads(json.dumps(asdict(self.weights), default=str)),
                       "settings": json.loads(json.dumps({k: v for k, v in asdict(self.settings).items()
                                                          if k not in RESUMABLE_SETTINGS}, default=str)),
                       "train": data_fingerprint(train), "validation": data_fingerprint(validation or [])}
        self.stopped = False  # early stop reached: no further sweep, also after a resume
        self.sweep_index = 0
        self.best = None  # (score, sweep, model copy)
        self._stall = 0
        self._lm_mu = 1e-3
        self._radial_mu = 1e-3
        self._centre, self._centre_solved = 0, False

    def _warn_if_underdetermined(self, n_atoms: int) -> None:
        """Log a warning when the training data give fewer than :data:`etnpot.defaults.MIN_ROWS_PER_PARAMETER`
        rows (energies, force components, stress components with a weight) per parameter of the
        tensor train: such a model can fit the training set almost exactly and the validation
        errors far worse (a five-species model of 3,675 tensor-train parameters on 1,600 atoms, 1.19
        rows each: training E RMSE 0.02 meV/atom, validation 9.6; ``etnpot fit`` then also fits
        smaller models, :mod:`etnpot.sizing`)."""
        from .sizing import rows as count_rows

        rows = count_rows(self.loss.n_conf, n_atoms, self.weights)
        n_conf = self.loss.n_conf
        P = self.pot.fitted_parameters
        if rows < D.MIN_ROWS_PER_PARAMETER * P:
            log.warning("the model (order %d, l_max %d) has %s and the training data give %d rows (%d configurations, "
                        "%d atoms): fewer than %d per fitted parameter, so expect it to fit the training set far better "
                        "than new data; add data, or lower l_max, order or rank (etnpot fit's size_to_data tries lower "
                        "l_max; etnpot scan compares them)", self.pot.order, self.pot.basis.l_max,
                        self.pot.describe_parameters(), rows, n_conf, n_atoms, D.MIN_ROWS_PER_PARAMETER)

    # ------------------------------------------------------------ the objective and the steps
    def errors(self, data) -> dict | None:
        """Error table of the current model on ``data`` (:meth:`etnpot.objective.Objective.errors`)."""
        return self.loss.errors(data)

    def data_loss(self) -> float:
        """The data part of the objective at the current model (per training configuration)."""
        return self.loss.data_loss()

    def objective(self) -> float:
        """Data loss plus ``ridge * ||W||^2`` (the full tensor's norm, gauge independent)."""
        return self.loss()

    def assemble(self, k: int, sites: int = 1):
        """The local problem of core ``k`` (or supercore ``k, k+1``) as a streamed
        :class:`~etnpot.lstsq.LeastSquares` (unknowns ``[core, dE0]``)."""
        return self.loss.assemble("core" if sites == 1 else "supercore", k, self.fit_e0)

    def assemble_all(self):
        """Gauss–Newton problem for all cores at once (columns ``[core 0, ..., core d-1, dE0]``)."""
        return self.loss.assemble("cores", 0, self.fit_e0)

    def micro_step(self, k: int, sites: int = 1, direction: str = "right", max_rank=None) -> dict:
        """Solve the local problem of core ``k`` (or supercore ``k, k+1``) exactly (:func:`etnpot.steps.local_solve`)."""
        return steps.local_solve(self.pot, self.loss, k, sites, direction, max_rank, self.settings.cutoff, self.fit_e0)

    def lm_step(self, max_tries: int = 8) -> dict:
        """One Levenberg–Marquardt step on all cores (:func:`etnpot.steps.lm_step`); the tensor
        train is brought back to right-canonical form afterwards."""
        info, self._lm_mu = steps.lm_step(self.pot, self.loss, self._lm_mu, self.fit_e0, max_tries)
        self._right_canonical()
        return info

    def radial_step(self, max_tries: int = 8) -> dict:
        """One Levenberg–Marquardt step on the radial/species weights (:func:`etnpot.steps.radial_step`)."""
        info, self._radial_mu = steps.radial_step(self.pot, self.loss, self._radial_mu, self.fit_e0, max_tries)
        return info

    # ------------------------------------------------------------ sweeps
    def _right_canonical(self):
        for k in range(self.pot.order - 1, 0, -1):
            self.pot.tt.orthogonalize_right(k)

    def sweep(self, direction: str, first: bool = False, max_rank=None, bar=None) -> list[dict]:
        """One sweep. ``"right"``: the centre moves 0 -> d-1; ``"left"``: d-1 -> 0.

        The core at the start is not solved again unless ``first`` (it was solved last), but the
        centre always moves through it, so every solve happens in the mixed-canonical gauge.
        """
        d = self.pot.order
        tt = self.pot.tt
        steps = []
        two = self.settings.two_site and d > 1
        if two:
            for k in (range(0, d - 1) if direction == "right" else range(d - 2, -1, -1)):
                if tt.merged_size(k) <= self.settings.max_supercore:
                    info = self.micro_step(k, 2, direction, max_rank)
                else:
                    log.warning("supercore %d,%d has %d parameters > max_supercore=%d: one-site step instead",
                                k, k + 1, tt.merged_size(k), self.settings.max_supercore)
                    kk = k if direction == "right" else k + 1
                    info = self.micro_step(kk, 1)
                    tt.orthogonalize_left(kk) if direction == "right" else tt.orthogonalize_right(kk)
                steps.append(info)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{info['loss']:.4g}")
            return steps
        order = range(d) if direction == "right" else range(d - 1, -1, -1)
        for i, k in enumerate(order):
            if i > 0 or first or d == 1:
                info = self.micro_step(k, 1)
                steps.append(info)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{info['loss']:.4g}")
            if direction == "right" and k < d - 1:
                tt.orthogonalize_left(k)
            elif direction == "left" and k > 0:
                tt.orthogonalize_right(k)
        return steps

    def _score(self, rec):
        """Early stopping and the best sweep rank by the validation data loss (the objective's
        own data term on the validation set), else by the training objective."""
        return rec["train_loss"] if rec.get("validation_loss") is None else rec["validation_loss"]

    def run(self, sweeps=None) -> list[dict]:
        """Sweep until ``sweeps`` are done or the (validation) loss stops improving.

        Returns the history: per sweep the micro-steps, the training objective, and the
        validation error table.  The best model by validation loss is restored at the end.
        """
        sweeps = self.settings.sweeps if sweeps is None else sweeps
        tt = self.pot.tt
        d = self.pot.order
        if self.sweep_index == 0:
            self._right_canonical()
            self._centre, self._centre_solved = 0, False
        from tqdm.auto import tqdm

        lm_steps = self.settings.lm_steps
        if lm_steps and self.pot.tt.num_parameters > self.settings.max_lm_params:
            log.warning("lm_steps = %d skipped: the cores have %d parameters > max_lm_params = %d (the all-core "
                        "Gauss-Newton problem is dense in them); raise max_lm_params to run them",
                        lm_steps, self.pot.tt.num_parameters, self.settings.max_lm_params)
            lm_steps = 0
        radial_steps = self.settings.radial_steps
        n_feat = self.pot.feature_parameter_vector().size
        if radial_steps and n_feat > self.settings.max_radial_params:
            log.warning("radial_steps = %d skipped: the features have %d radial/species parameters > max_radial_params "
                        "= %d (their Gauss-Newton rows cost ~100x a core's with four species-resolved species; "
                        "benchmarks/bench_radial.py); raise max_radial_params to run them",
                        radial_steps, n_feat, self.settings.max_radial_params)
            radial_steps = 0
        per = max(1, d - (1 if self.settings.two_site else 0)) + lm_steps + radial_steps
        bars = self.progress and use_bars()
        bar = tqdm(total=max((sweeps - self.sweep_index) * per, 0), desc=self.label, disable=not bars, leave=False)
        try:
            while self.sweep_index < sweeps and not self.stopped:
                s = self.sweep_index
                direction = "right" if self._centre == 0 else "left"
                mr = self.settings.max_rank
                if isinstance(mr, (list, tuple)):
                    mr = mr[min(s, len(mr) - 1)]
                t0 = time.perf_counter()
                steps = self.sweep(direction, first=not self._centre_solved, max_rank=mr, bar=bar)
                self._centre, self._centre_solved = (d - 1 if direction == "right" else 0), True
                if lm_steps:
                    for _ in range(lm_steps):
                        steps.append(self.lm_step())
                        bar.update(1)
                    self._centre, self._centre_solved = 0, False
                for _ in range(radial_steps):
                    steps.append(self.radial_step())
                    bar.update(1)
                    self._centre_solved = False  # the features moved: the centre core is no longer optimal
                rec = {"sweep": s, "direction": direction, "steps": steps, "train_loss": self.objective(),
                       "bonds": [str(b) for b in tt.bonds[1:-1]], "num_parameters": self.pot.num_parameters,
                       "seconds": time.perf_counter() - t0}
                rec["validation"] = self.errors(self.loss.validation)
                rec["validation_loss"] = self.loss.validation_loss()
                self.history.append(rec)
                self.sweep_index += 1
                score = self._score(rec)
                improved = self.best is None or score < self.best[0] * (1 - self.settings.tol)
                if self.best is None or score < self.best[0]:
                    self.best = (score, s, self.pot.copy())
                self._stall = 0 if improved else self._stall + 1
                self.stopped = self._stall >= self.settings.patience
                v = rec["validation"]
                log.info("sweep %d (%s): objective %.5g%s, bonds %s, %.1f s", s, direction, rec["train_loss"],
                         f", validation E {v['energy']['rmse']:.3f} meV/atom F {v['forces']['rmse']:.4f} eV/Å"
                         if v and v["energy"] and v["forces"] else "", rec["bonds"], rec["seconds"])
                if self.progress and not bars:
                    progress_log.info("%s: sweep %d/%d, objective %.5g%s, %.1f s", self.label, s + 1, sweeps,
                                      rec["train_loss"], f", validation E {v['energy']['rmse']:.3f} meV/atom, F "
                                      f"{v['forces']['rmse']:.4f} eV/Å" if v and v["energy"] and v["forces"] else "",
                                      rec["seconds"])
                self._write_checkpoint()
                if self._stall >= self.settings.patience:
                    log.info("early stop: no relative improvement > %g for %d sweeps", self.settings.tol, self._stall)
                    break
                tt = self.pot.tt
        finally:
            bar.close()
        if self.best is not None and self.history and self.best[1] != self.history[-1]["sweep"]:
            log.info("restoring the best model (sweep %d)", self.best[1])
            self._restore_best()
        self.pot.metadata["fit"] = self.summary()
        return self.history

    def _restore_best(self) -> None:
        """Put the best sweep's parameters back: cores, E0 and the feature (radial/species) weights,
        which radial steps change too.  The feature normalization is fixed during a fit."""
        best = self.best[2].copy()
        self.pot.tt, self.pot.e0 = best.tt, best.e0
        self.pot.basis.radial_weights = best.basis.radial_weights
        self.pot.basis.species_weights = best.basis.species_weights

    def summary(self) -> dict:
        return {"settings": asdict(self.settings),
                "weights": asdict(self.weights),
                "n_train": self.loss.n_conf, "n_validation": self.loss.n_valid,
                "best_sweep": self.best[1] if self.best else None,
                # no wall-clock times here: the saved model must be bit-identical for the same seed
                "history": [{k: v for k, v in h.items() if k not in ("steps", "seconds")} | {"steps": [
                    {kk: vv for kk, vv in st.items() if kk in ("kind", "core", "sites", "params", "loss", "cond", "discarded", "bond", "accepted")}
                    for st in h["steps"]]} for h in self.history]}

    # ------------------------------------------------------------ checkpoints
    def _write_checkpoint(self):
        if not self.checkpoint:
            return
        state = {"sweep_index": self.sweep_index, "stall": self._stall, "centre": self._centre,
                 "centre_solved": self._centre_solved, "lm_mu": self._lm_mu, "radial_mu": self._radial_mu,
                 "fit_e0": self.fit_e0, "best_score": self.best[0] if self.best else None, "best_sweep": self.best[1] if self.best else None,
                 "history": json.loads(json.dumps(self.summary()["history"], default=float)),
                 "seconds": self.seconds_before + time.perf_counter() - self._t_start}
        state["stopped"] = self.stopped
        state["inputs"] = self.inputs
        # the checkpoint and its best model are one unit: the best model is written first, and the
        # checkpoint records its content hash, so a resume refuses a pair that does not belong together
        # (a death between the two renames, a checkpoint copied without its .best)
        state["best_sha256"] = save(self.best[2], self.checkpoint + ".best") if self.best is not None else None
        self.pot.metadata["fit_state"] = state
        try:
            save(self.pot, self.checkpoint)
        finally:
            del self.pot.metadata["fit_state"]

    @classmethod
    def resume(cls, checkpoint, train, validation=None, weights=None, settings=None, progress=True,
               client=None, expect: dict | None = None, allow_changes: bool = False) -> "ALSFitter":
        """Continue an interrupted fit from its checkpoint (same data, weights and settings).

        ``expect``: hyper-parameters the checkpoint's model must have (e.g. the config's
        ``[model]`` section); a mismatch is an error naming the differences.  Other training or
        validation data (by content), weights or fit settings (all but ``sweeps``, the cap, which
        a resume may raise) are an error too, unless ``allow_changes``: then they are logged and
        recorded in the model's metadata (``"resumed_with_changes"``).  A fit that had stopped
        early resumes to the same model without another sweep.
        """
        pot = load(checkpoint)
        state = pot.metadata.pop("fit_state", None)
        if state is None:
            raise ValueError(f"{checkpoint}: not an etnpot fit checkpoint (no fit_state)")
        if expect is not None:
            have = pot.metadata.get("hyperparameters", {})
            diff = {k: (have.get(k), v) for k, v in expect.items() if k in have and have.get(k) != v}
            if diff:
                raise ValueError(f"{checkpoint}: checkpoint of a different model: " +
                                 ", ".join(f"{k} = {a!r} in the checkpoint, {b!r} requested" for k, (a, b) in diff.items()) +
                                 "; remove it or fit without --resume")
        f = cls(pot, train, validation, weights, settings, e0="keep", normalize=False, checkpoint=checkpoint,
                progress=progress, client=client)
        before = state.get("inputs")
        if before is not None:
            changed = [f"{what} ({_first_difference(before[what], f.inputs[what])})" if isinstance(before[what], dict)
                       else what for what in ("train", "validation", "weights", "settings")
                       if before.get(what) != f.inputs[what] and before.get(what) is not None]
            if changed and not allow_changes:
                raise ValueError(f"{checkpoint}: the fit would not be the one checkpointed: changed since: " +
                                 "; ".join(c.replace("train", "training data").replace("validation", "validation data", 1)
                                           if c in ("train", "validation") else c for c in changed) +
                                 "; fit without --resume, or resume with --allow-changes to accept and record them")
            if changed:
                log.warning("%s: resuming with changes (recorded in the model): %s", checkpoint, "; ".join(changed))
                pot.metadata["resumed_with_changes"] = changed
        f.stopped = bool(state.get("stopped", False))
        f.fit_e0 = state.get("fit_e0", True)
        f.sweep_index = state["sweep_index"]
        f._centre, f._centre_solved, f._lm_mu = state["centre"], state["centre_solved"], state["lm_mu"]
        f._radial_mu = state.get("radial_mu", 1e-3)
        f._stall = state["stall"]
        f.history = state["history"]
        f.seconds_before = float(state.get("seconds", 0.0))  # checkpoints before this key: unknown, 0
        if state["best_score"] is not None:
            best_path = os.fspath(checkpoint) + ".best"
            if not os.path.exists(best_path):
                raise ValueError(f"{checkpoint}: its best model {best_path} is missing (a checkpoint is two files, "
                                 "copy both); fit without --resume")
            if state.get("best_sha256") is not None:
                from .io import read_header

                if read_header(best_path).get("content_sha256") != state["best_sha256"]:
                    raise ValueError(f"{best_path} does not belong to the checkpoint {checkpoint} (written by another "
                                     "save, or the save was cut between the two files); fit without --resume")
            best = load(best_path)
            best.metadata.pop("fit_state", None)
            f.best = (state["best_score"], state["best_sweep"], best)
        return f


#: fit settings a resume may change: the sweep cap (a finished fit resumed with more sweeps goes on)
RESUMABLE_SETTINGS = ("sweeps",)


def data_fingerprint(configs) -> str | None:
    """A hash of the reference data: every configuration's structure, references and weight
    (``None`` for data that are not local :class:`~etnpot.data.Configuration` objects)."""
    import hashlib

    h = hashlib.sha256()
    for c in configs:
        if not hasattr(c, "atoms"):
            return None
        at = c.atoms
        for a in (at.numbers, at.positions, at.cell.array, at.pbc):
            h.update(np.ascontiguousarray(a).tobytes())
        for v in (c.energy, c.forces, c.stress):
            h.update(b"-" if v is None else np.ascontiguousarray(v, dtype=float).tobytes())
        h.update(f"{c.weight!r} {c.config_type}".encode())
    return h.hexdigest()


def _first_difference(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:3])


def fit(potential, train, validation=None, weights=None, settings=None, **kwargs):
    """Fit ``potential`` in place (see :class:`ALSFitter`); returns the fitter (history, summary)."""
    f = ALSFitter(potential, train, validation, weights, settings, **kwargs)
    f.run()
    return f
