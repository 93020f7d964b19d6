r"""Fitting an ETN potential: alternating least squares (one-site) and two-site DMRG sweeps.

The objective (per training configuration ``c`` with ``N_c`` atoms and weight ``w_c``)

.. math::

    \mathcal L = \frac{1}{n_{\rm conf}} \sum_c w_c \Big[ w_E \Big(\frac{E_c - E^{\rm ref}_c}{N_c}\Big)^2
        + w_F \sum_{i\alpha} (F_{ci\alpha} - F^{\rm ref}_{ci\alpha})^2
        + w_S \sum_{v=1}^{6} (\sigma_{cv} - \sigma^{\rm ref}_{cv})^2 \Big]
        + \gamma\, \|W\|_F^2

(energies in eV, forces eV/Å, stress eV/Å^3; ``w_E, w_F, w_S`` may differ per config type)
where ``W`` is the full coefficient tensor of the tensor train.  With all cores but ``k`` fixed
the model is linear in core ``k`` (:meth:`~etnpot.ETNPotential.core_linear_map`) and in the
per-species energies ``E0``, so the local problem is a weighted ridge regression, solved
exactly from normal equations assembled by streaming over chunks of configurations (memory
bounded by the parameters, not the data).  In the mixed-canonical gauge around core ``k``
(cores to its left left-orthogonal, to its right right-orthogonal, kept by QR moves of the
orthogonality centre) ``||W||^2 = sum_p (2 l_b + 1) ||T_p||^2``, so the ridge on the centre
core *is* the ridge on the full tensor, and every exact local solve can only lower
``\mathcal L``.  ``E0`` is an unregularized extra column in every local solve.

A **two-site step** merges cores ``k, k+1`` into a supercore, solves for it the same way and
splits it by an SVD per middle irrep (:meth:`~etnpot.tt.EquivariantTT.split_merged`): ranks
then adapt per irrep under ``max_rank`` and a discarded-weight ``cutoff``.  It costs far more
(the supercore has ~ channels x rank times more parameters), so it is used for rank
adaptation on small models; ``max_supercore`` guards the size.

The radial/species parameters (``B``, ``A`` of :mod:`etnpot.features`) enter the energy
polynomially (degree ``order``), not linearly.  They start at the raw-Chebyshev channels (which
FEASIBILITY.md found to beat unsupervised mixing) and, with ``radial_steps > 0``, are refined
between sweeps by Levenberg–Marquardt steps on exact Gauss–Newton rows
(:meth:`~etnpot.ETNPotential.feature_linear_map`), accepted only when the objective decreases:
a supervised, nonlinear step where the model is nonlinear, linear solves where it is linear.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import chunks as C
from .data import Configuration, e0_from_system
from .io import load, save
from .memory import keep_freed_memory

__all__ = ["FitSettings", "Weights", "ALSFitter", "fit"]

log = logging.getLogger(__name__)


@dataclass
class Weights:
    """Loss weights: energy per (eV/atom)^-2, forces per (eV/Å)^-2 and stress per (eV/Å^3)^-2
    (per component).  ``config_types`` overrides them per config type, e.g.
    ``{"Surface": {"energy": 10.0}}``."""

    energy: float = 1000.0
    forces: float = 1.0
    stress: float = 100.0
    config_types: dict = field(default_factory=dict)

    def for_type(self, ctype: str):
        d = {"energy": self.energy, "forces": self.forces, "stress": self.stress}
        d.update(self.config_types.get(ctype, {}))
        return d["energy"], d["forces"], d["stress"]


@dataclass
class FitSettings:
    """Settings of an ALS/DMRG fit (all have defaults)."""

    sweeps: int = 6
    ridge: float = 1e-7
    two_site: bool = False
    max_rank: object = None  # int, {irrep: int}, or a list (one entry per sweep): the rank schedule
    cutoff: float = 0.0
    max_supercore: int = 20000
    lm_steps: int = 0  # Levenberg–Marquardt steps on all cores after each sweep
    radial_steps: int = 1  # Levenberg–Marquardt steps on the radial/species weights after each sweep
    max_lm_params: int = 8000
    tol: float = 1e-4  # stop when the validation (else training) loss improves by less than this, relatively
    patience: int = 2
    chunk_atoms: int = 3000
    memory_mb: float = 256.0
    seed: int = 0


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
    progress : show a progress bar.
    """

    def __init__(self, potential, train, validation=None, weights=None, settings=None, e0="fit",
                 normalize=True, checkpoint=None, progress=True, client=None):
        keep_freed_memory()  # the same large temporaries every chunk: reuse them (etnpot.memory)
        self.pot = potential
        self.weights = weights or Weights()
        self.settings = settings or FitSettings()
        self.checkpoint = os.fspath(checkpoint) if checkpoint else None
        self.progress = progress
        self.client = client
        self._chunks = self._as_chunks(train)
        self._valid_chunks = self._as_chunks(validation or [])
        if not self._chunks:
            raise ValueError("the training set is empty")
        counts = self._map(C.n_configs, self._chunks, reduce=False)
        self.n_conf = int(sum(counts))
        if self.n_conf == 0:
            raise ValueError("the training set is empty")
        for name, chunks in (("training", self._chunks), ("validation", self._valid_chunks)):
            offset = 0
            for ch, bad in zip(chunks, self._map(C.unknown_species, chunks, self.pot.species, reduce=False)):
                if bad:
                    i, src, syms = bad[0]
                    raise ValueError(f"{name} configuration {offset + i}" + (f" ({src})" if src else "") +
                                     f": species {syms} not in the model's species {self.pot.species}")
                offset += C.n_configs(ch)
        self.fit_e0 = e0 == "fit"
        if e0 == "fit":
            self.pot.e0 = e0_from_system(self._map(C.e0_system, self._chunks, self.pot.species))
        elif e0 is not None and e0 != "keep":
            self.pot.e0 = np.array([float(dict(e0)[s]) for s in self.pot.species])
        if normalize:
            self.pot.basis.set_normalization(self._map(C.feature_moments, self._chunks, self.pot))
        self.history: list[dict] = []
        self.sweep_index = 0
        self.best = None  # (score, sweep, model copy)
        self._stall = 0
        self._lm_mu = 1e-3
        self._radial_mu = 1e-3
        self._centre, self._centre_solved = 0, False

    # ------------------------------------------------------------ data (map-reduce over chunks)
    def _as_chunks(self, data):
        data = list(data)
        if data and all(isinstance(d, (C.MemoryChunk, C.FileChunk)) for d in data):
            return data
        if any(not isinstance(d, Configuration) for d in data):
            raise TypeError("training/validation data must be Configuration objects or chunks (etnpot.chunks)")
        return C.make_memory_chunks(data, self.settings.chunk_atoms)

    def _map(self, fn, chunks, *args, reduce=True):
        """Apply ``fn(chunk, *args)`` to every chunk and merge the results (``reduce``) or list them:
        inline, or on the Dask workers of ``client`` (:mod:`etnpot.distributed`)."""
        if not chunks:
            return None if reduce else []
        if self.client is not None:
            from .distributed import map_reduce

            return map_reduce(self.client, fn, chunks, args, reduce=reduce)
        if not reduce:
            return [fn(c, *args) for c in chunks]
        return C.tree_reduce((fn(c, *args) for c in chunks), C.merge)  # streamed

    def errors(self, data) -> dict | None:
        """Error table (:func:`etnpot.metrics.error_table` layout) of the current model on ``data``
        (configurations or chunks), computed chunk by chunk (on the workers, with a client)."""
        from .metrics import table_from_sums

        chunks = data if (data and isinstance(data[0], (C.MemoryChunk, C.FileChunk))) else self._as_chunks(data or [])
        if not chunks:
            return None
        return table_from_sums(self._map(C.error_sums, chunks, self.pot))

    # ------------------------------------------------------------ local problems
    def _want_stress(self):
        return self.weights.stress > 0 or any("stress" in v for v in self.weights.config_types.values())

    def _least_squares(self, what, k=0):
        return self._map(C.least_squares, self._chunks, self.pot, self.weights, what, k, self.fit_e0,
                         self._want_stress(), self.settings.memory_mb)

    def assemble(self, k: int, sites: int = 1):
        """The local problem of core ``k`` (or supercore ``k, k+1``) as a streamed
        :class:`~etnpot.lstsq.LeastSquares` (unknowns ``[core, dE0]``; ``loss/n_conf`` is the
        data part of the objective)."""
        return self._least_squares("core" if sites == 1 else "supercore", k)

    def assemble_all(self):
        """Gauss–Newton problem for all cores at once (columns ``[core 0, ..., core d-1, dE0]``,
        targets the current residuals).  Because the energy is multilinear in the cores, the
        Jacobian is the row-wise concatenation of the per-core linear maps."""
        return self._least_squares("cores")

    def radial_step(self, max_tries: int = 8) -> dict:
        """One Levenberg–Marquardt step on the radial and species weights of the features (and
        E0), the part of the model that is not linear: the energy is a polynomial of degree
        ``order`` in them.  Gauss–Newton rows from :meth:`~etnpot.ETNPotential.feature_linear_map`;
        accepted only if the objective decreases."""
        t0 = time.perf_counter()
        pot = self.pot
        ls = self._least_squares("features")
        before = self.objective()
        v0, e00 = pot.feature_parameter_vector(), pot.e0.copy()
        nv = len(v0)
        cn = np.linalg.norm(ls.R, axis=0)
        D = np.where(cn > 0, cn, 1.0)
        mu = self._radial_mu
        info = {"kind": "radial", "params": nv, "loss_before": before, "loss": before, "accepted": False}
        for _ in range(max_tries):
            delta = np.linalg.lstsq(np.vstack([ls.R, np.diag(np.sqrt(mu) * D)]),
                                    np.concatenate([ls.z, np.zeros(ls.n)]), rcond=None)[0]
            pot.set_feature_parameter_vector(v0 + delta[:nv])
            if ls.n > nv:
                pot.e0 = e00 + delta[nv:]
            after = self.objective()
            if after < before:
                info.update(loss=after, accepted=True, mu=mu)
                self._radial_mu = max(mu / 3.0, 1e-12)
                break
            pot.set_feature_parameter_vector(v0)
            pot.e0 = e00.copy()
            mu *= 4.0
        else:
            self._radial_mu = mu
        info["seconds"] = time.perf_counter() - t0
        log.debug("radial step: objective %.6g -> %.6g (mu %.2e)", before, info["loss"], mu)
        return info

    def data_loss(self) -> float:
        """The data part of the objective at the current model (per training configuration)."""
        return self._map(C.data_loss, self._chunks, self.pot, self.weights, self._want_stress()) / self.n_conf

    def objective(self) -> float:
        """Data loss plus ``ridge * ||W||^2`` (the full tensor's norm, gauge independent)."""
        reg = self.settings.ridge * self.pot.tt.norm_squared() if self.settings.ridge else 0.0
        return self.data_loss() + reg

    def lm_step(self, max_tries: int = 8) -> dict:
        """One Levenberg–Marquardt step on all cores (and E0) jointly; accepted only if the
        objective decreases.  The TT is brought back to right-canonical form afterwards."""
        t0 = time.perf_counter()
        tt = self.pot.tt
        sizes = [tt.core_size(k) for k in range(tt.order)]
        ls = self.assemble_all()
        before = self.objective()
        theta = np.concatenate([tt.core_vector(k) for k in range(tt.order)])
        ridge = self.settings.ridge * self.n_conf
        nS = ls.n - len(theta)
        # damped Gauss-Newton: min ||J d - r||^2 + ridge ||theta + d||^2 + mu ||D d||^2, with D the
        # column norms of J (Marquardt scaling); the ridge here is on the cores' reduced norms
        cn = np.linalg.norm(ls.R, axis=0)
        D = np.where(cn > 0, cn, 1.0)
        mu = self._lm_mu
        saved = (tt.copy(), self.pot.e0.copy())
        info = {"kind": "lm", "loss_before": before, "loss": before, "accepted": False}
        for _ in range(max_tries):
            rows = [ls.R, np.diag(np.sqrt(mu) * D)]
            rhs = [ls.z, np.zeros(ls.n)]
            if ridge > 0:
                rows.append(np.hstack([np.sqrt(ridge) * np.eye(len(theta)), np.zeros((len(theta), nS))]))
                rhs.append(-np.sqrt(ridge) * theta)
            delta = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
            pos = 0
            for k, n in enumerate(sizes):
                tt.set_core_vector(k, theta[pos : pos + n] + delta[pos : pos + n])
                pos += n
            if nS:
                self.pot.e0 = saved[1] + delta[pos:]
            after = self.objective()
            if after < before:
                info.update(loss=after, accepted=True, mu=mu)
                self._lm_mu = max(mu / 3.0, 1e-12)
                break
            self.pot.tt, self.pot.e0 = saved[0].copy(), saved[1].copy()
            tt = self.pot.tt
            mu *= 4.0
        else:
            self._lm_mu = mu
        self._right_canonical()
        info["seconds"] = time.perf_counter() - t0
        log.debug("LM step: objective %.6g -> %.6g (mu %.2e)", before, info["loss"], mu)
        return info

    def micro_step(self, k: int, sites: int = 1, direction: str = "right", max_rank=None) -> dict:
        """Solve the local problem of core ``k`` (or supercore ``k, k+1``) exactly and write it back.

        The orthogonality centre must be at ``k`` (or on ``k, k+1``).
        """
        t0 = time.perf_counter()
        tt = self.pot.tt
        ls = self.assemble(k, sites)
        P = tt.core_size(k) if sites == 1 else tt.merged_size(k)
        wcore = tt.core_weights(k) if sites == 1 else tt.merged_weights(k)
        S = ls.n - P
        # ridge per configuration: the data part is summed over configurations
        reg = np.concatenate([self.settings.ridge * self.n_conf * wcore, np.zeros(S)])
        x0 = np.concatenate([tt.core_vector(k) if sites == 1 else tt.merged_vector(k), np.zeros(S)])
        loss = lambda x: (ls.loss(x) + float(np.sum(reg * x * x))) / self.n_conf
        before = loss(x0)
        x, cond = ls.solve(reg, x0=x0)
        after = loss(x)
        info = {"core": k, "sites": sites, "params": P, "loss_before": before, "loss": after, "cond": cond}
        if S:
            self.pot.e0 = self.pot.e0 + x[P:]
        if sites == 1:
            tt.set_core_vector(k, x[:P])
        else:
            info.update(tt.split_merged(k, x[:P], direction=direction, max_rank=max_rank, cutoff=self.settings.cutoff))
            info["bond"] = str(tt.bonds[k + 1])
        info["seconds"] = time.perf_counter() - t0
        log.debug("core %s: loss %.6g -> %.6g (cond %.2e, %d params, %.1f s)", k, before, after, cond, P, info["seconds"])
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
        v = rec.get("validation")
        if v and v.get("forces"):
            return rec["validation_loss"]
        return rec["train_loss"]


    def _loss_of_table(self, tab):
        if not tab:
            return None
        w = self.weights
        e = (tab["energy"]["rmse"] / 1000.0) ** 2 * w.energy if tab["energy"] else 0.0
        f = tab["forces"]["rmse"] ** 2 * w.forces if tab["forces"] else 0.0
        return e + f

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

        per = max(1, d - (1 if self.settings.two_site else 0)) + self.settings.lm_steps + self.settings.radial_steps
        bar = tqdm(total=max((sweeps - self.sweep_index) * per, 0), desc="ETN fit", disable=not self.progress,
                   leave=False)
        try:
            while self.sweep_index < sweeps:
                s = self.sweep_index
                direction = "right" if self._centre == 0 else "left"
                mr = self.settings.max_rank
                if isinstance(mr, (list, tuple)):
                    mr = mr[min(s, len(mr) - 1)]
                t0 = time.perf_counter()
                steps = self.sweep(direction, first=not self._centre_solved, max_rank=mr, bar=bar)
                self._centre, self._centre_solved = (d - 1 if direction == "right" else 0), True
                if self.settings.lm_steps and self.pot.tt.num_parameters <= self.settings.max_lm_params:
                    for _ in range(self.settings.lm_steps):
                        steps.append(self.lm_step())
                        bar.update(1)
                    self._centre, self._centre_solved = 0, False
                for _ in range(self.settings.radial_steps):
                    steps.append(self.radial_step())
                    bar.update(1)
                    self._centre_solved = False  # the features moved: the centre core is no longer optimal
                rec = {"sweep": s, "direction": direction, "steps": steps, "train_loss": self.objective(),
                       "bonds": [str(b) for b in tt.bonds[1:-1]], "num_parameters": self.pot.num_parameters,
                       "seconds": time.perf_counter() - t0}
                rec["validation"] = self.errors(self._valid_chunks)
                rec["validation_loss"] = self._loss_of_table(rec["validation"])
                self.history.append(rec)
                self.sweep_index += 1
                score = self._score(rec)
                improved = self.best is None or score < self.best[0] * (1 - self.settings.tol)
                if self.best is None or score < self.best[0]:
                    self.best = (score, s, self.pot.copy())
                self._stall = 0 if improved else self._stall + 1
                v = rec["validation"]
                log.info("sweep %d (%s): objective %.5g%s, bonds %s, %.1f s", s, direction, rec["train_loss"],
                         f", validation E {v['energy']['rmse']:.3f} meV/atom F {v['forces']['rmse']:.4f} eV/Å"
                         if v and v["energy"] and v["forces"] else "", rec["bonds"], rec["seconds"])
                self._write_checkpoint()
                if self._stall >= self.settings.patience:
                    log.info("early stop: no relative improvement > %g for %d sweeps", self.settings.tol, self._stall)
                    break
                tt = self.pot.tt
        finally:
            bar.close()
        if self.best is not None and self.best[1] != self.history[-1]["sweep"]:
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
                "n_train": self.n_conf, "n_validation": int(sum(self._map(C.n_configs, self._valid_chunks, reduce=False))),
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
                 "history": json.loads(json.dumps(self.summary()["history"], default=float))}
        self.pot.metadata["fit_state"] = state
        save(self.pot, self.checkpoint)
        if self.best is not None:
            save(self.best[2], self.checkpoint + ".best")
        del self.pot.metadata["fit_state"]

    @classmethod
    def resume(cls, checkpoint, train, validation=None, weights=None, settings=None, progress=True,
               client=None, expect: dict | None = None) -> "ALSFitter":
        """Continue an interrupted fit from its checkpoint (same data, weights and settings).

        ``expect``: hyper-parameters the checkpoint's model must have (e.g. the config's
        ``[model]`` section); a mismatch is an error naming the differences.
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
        f.fit_e0 = state.get("fit_e0", True)
        f.sweep_index = state["sweep_index"]
        f._centre, f._centre_solved, f._lm_mu = state["centre"], state["centre_solved"], state["lm_mu"]
        f._radial_mu = state.get("radial_mu", 1e-3)
        f._stall = state["stall"]
        f.history = state["history"]
        if state["best_score"] is not None:
            best_path = os.fspath(checkpoint) + ".best"
            best = load(best_path) if os.path.exists(best_path) else pot.copy()
            best.metadata.pop("fit_state", None)
            f.best = (state["best_score"], state["best_sweep"], best)
        return f


def fit(potential, train, validation=None, weights=None, settings=None, **kwargs):
    """Fit ``potential`` in place (see :class:`ALSFitter`); returns the fitter (history, summary)."""
    f = ALSFitter(potential, train, validation, weights, settings, **kwargs)
    f.run()
    return f
