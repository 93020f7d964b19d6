r"""Sparse coupling paths selected by the fit: drop the paths that the predictions do not need.

The energy is linear in every core, ``E = Phi^{(k)} T^{(k)} + offset``, and a core is a sum
over its coupling paths ``p = (a, f, b)`` (:mod:`etnpot.tt`), so the change of the predictions
when the block ``T_p`` of core ``k`` alone is removed is exactly

.. math::

    \Delta E_c = -\Phi^{(k)}_{c,p}\, T_p, \qquad \Delta \mathbf f = -\Phi^{(k),\mathrm{forces}}_{p}\, T_p

(the rows of :func:`etnpot.linearization.core_linear_map` on the validation configurations).
The **contribution** of path ``p`` is the larger of two relative sizes,

.. math::

    c_p = \max\Big( \frac{\mathrm{rms}_c(\Delta E_c / N_c)}{\mathrm{rms}_c((E_c - E^0_c)/N_c)},\;
                    \frac{\mathrm{rms}(\Delta \mathbf f)}{\mathrm{rms}(\mathbf f)} \Big),

relative to the model's own validation predictions (``E^0_c``: the per-species constants; a
denominator that is zero is left out).  :func:`prune` drops every path with ``c_p <
tolerance`` (all at once, contributions measured on the unpruned model), then every bond irrep
that no remaining path reaches from both sides, and refits the remaining cores with one ALS
sweep (:class:`etnpot.fit.ALSFitter`, ``normalize=False``, ``e0="keep"``).  With
``tolerance = 0`` nothing is dropped and nothing refitted: the model is unchanged.

A dropped path is absent from the core's dict, so the fit and the block-sparse contraction skip
it.  Model files store every allowed path of the bonds: a saved pruned model reloads with the
dropped blocks as zero blocks (the same predictions; :func:`drop_zero_paths` removes them again).
Dropped bond irreps shrink the bonds themselves, which is what makes the *dense* contraction
(:mod:`etnpot.evaluation`) faster; dropped paths alone only speed up the block-sparse one.
"""
from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["path_contributions", "prune", "drop_zero_paths", "eval_time_per_atom"]


def path_contributions(pot, validation) -> dict:
    """``{(k, path): c_p}`` for every path of every core (see the module docstring)."""
    from .metrics import predict

    atoms = [c.atoms if hasattr(c, "atoms") else c for c in validation]
    n_at = np.array([len(a) for a in atoms], dtype=float)
    pred = predict(pot, atoms)
    e_tt = np.array([p["energy"] for p in pred]) - np.array(
        [pot.e0[pot.species_index(a.numbers)].sum() for a in atoms])
    f = np.concatenate([p["forces"] for p in pred]).ravel()
    e_scale = np.sqrt(np.mean((e_tt / n_at) ** 2))
    f_scale = np.sqrt(np.mean(f ** 2)) if f.size else 0.0
    out = {}
    for k in range(pot.order):
        lm = pot.core_linear_map(k, atoms, forces=True, stress=False)
        Er = np.asarray(lm.energy_rows) / n_at[:, None]
        Fr = np.asarray(lm.force_rows).reshape(-1, Er.shape[1])
        pos = 0
        for p, T in pot.tt.cores[k].items():
            cols = slice(pos, pos + T.size)
            pos += T.size
            terms = []
            if e_scale > 0:
                terms.append(np.sqrt(np.mean((Er[:, cols] @ T.ravel()) ** 2)) / e_scale)
            if f_scale > 0:
                terms.append(np.sqrt(np.mean((Fr[:, cols] @ T.ravel()) ** 2)) / f_scale)
            out[(k, p)] = float(max(terms)) if terms else 0.0
    return out


def _drop_unreachable_irreps(tt) -> None:
    """Remove bond irreps that no remaining path enters from the left or leaves to the right
    (repeated until nothing changes); paths touching them go with them (``set_bond``)."""
    changed = True
    while changed:
        changed = False
        for k in range(1, tt.order):
            ins = {p[2] for p in tt.cores[k - 1]}
            outs = {p[0] for p in tt.cores[k]}
            mult = {ir: (m if ir in ins and ir in outs else 0) for ir, m in tt.bonds[k]}
            if any(m == 0 for m in mult.values()):
                tt.set_bond(k, {ir: m for ir, m in mult.items() if m})
                changed = True


def drop_zero_paths(pot) -> int:
    """Remove all-zero blocks (e.g. of a pruned model after :func:`etnpot.load`); returns how many."""
    n = 0
    for core in pot.tt.cores:
        for p in [p for p, T in core.items() if not np.any(T)]:
            del core[p]
            n += 1
    _drop_unreachable_irreps(pot.tt)
    return n


def eval_time_per_atom(pot, atoms, repeat: int = 5, clock=time.perf_counter) -> float:
    """Median seconds per atom of energy + forces of ``atoms`` (one warm-up call first), by
    ``clock`` (wall time; ``time.process_time`` for the CPU time of this process)."""
    pot.compute(atoms, forces=True, stress=False)
    ts = []
    for _ in range(repeat):
        t = clock()
        pot.compute(atoms, forces=True, stress=False)
        ts.append(clock() - t)
    return float(np.median(ts)) / len(atoms)


def prune(pot, validation, tolerance: float, train=None, weights=None, ridge: float = 1e-8,
          timing_atoms=None, progress: bool = False) -> dict:
    """Drop the coupling paths of ``pot`` (modified in place) whose contribution to the
    predictions on ``validation`` is below ``tolerance``, and refit the remaining cores with one
    ALS sweep on ``train`` (on ``validation`` when no training data is given).

    Returns a report: ``dropped`` (``"core k: (a,f->b)"`` strings), ``contributions`` of the
    dropped paths, ``num_parameters`` before and after, ``bonds`` after, the validation error
    tables ``errors_before`` / ``errors_after`` (:func:`etnpot.metrics.error_table`, when the
    configurations carry references) and, with ``timing_atoms`` (an ``ase.Atoms``), the
    evaluation time per atom before and after (``us_per_atom_before`` / ``_after``).
    """
    from .fit import ALSFitter, FitSettings
    from .metrics import error_table
    from .objective import Weights

    tolerance = float(tolerance)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    validation = list(validation)
    has_refs = bool(validation) and hasattr(validation[0], "energy")
    report = {"tolerance": tolerance, "num_parameters_before": pot.num_parameters,
              "bonds_before": [str(b) for b in pot.tt.bonds[1:-1]]}
    if has_refs:
        report["errors_before"] = error_table(pot, validation)
    if timing_atoms is not None:
        report["us_per_atom_before"] = 1e6 * eval_time_per_atom(pot, timing_atoms)
    contrib = path_contributions(pot, validation)
    drop = {kp: c for kp, c in contrib.items() if c < tolerance}
    report["dropped"] = [f"core {k}: {pot.tt.path_str(p)}" for k, p in drop]
    report["contributions"] = {f"core {k}: {pot.tt.path_str(p)}": c for (k, p), c in drop.items()}
    if drop:
        emptied = sorted({k for k, _ in drop if all((k, p) in drop for p in pot.tt.cores[k])})
        if emptied:
            raise ValueError(f"tolerance {tolerance:g} drops every coupling path of core(s) {emptied}: the pruned "
                             "model would be identically zero (E = sum E0); use a smaller tolerance")
        tt = pot.tt.copy()  # the model is left as it was if the pruned one is degenerate
        for k, p in drop:
            del tt.cores[k][p]
        _drop_unreachable_irreps(tt)
        if any(not core for core in tt.cores):
            raise ValueError(f"tolerance {tolerance:g} leaves a core without coupling paths once the bond irreps "
                             "that no path reaches are removed: the pruned model would be identically zero; use a "
                             "smaller tolerance")
        pot.tt = tt
        saved_fit = pot.metadata.get("fit")
        fitter = ALSFitter(pot, train if train is not None else validation, validation,
                           weights or Weights(), FitSettings(sweeps=1, ridge=ridge), e0="keep",
                           normalize=False, progress=progress)
        cut = pot.copy()
        loss_cut = fitter.loss.validation_loss()
        fitter.run(1)
        loss_refit = fitter.loss.validation_loss()
        if loss_cut is not None and loss_refit > loss_cut:  # keep the better of the two, as early stopping does
            log.info("prune: the refit raised the validation loss (%.6g -> %.6g); the model without refit is kept",
                     loss_cut, loss_refit)
            pot.tt, pot.e0 = cut.tt, cut.e0
        report["validation_loss_without_refit"] = loss_cut
        report["validation_loss"] = fitter.loss.validation_loss()
        drop_zero_paths(pot)  # a restored copy carries the dropped paths back as zero blocks
        pot.metadata["fit"] = saved_fit
        pot.metadata["prune"] = {"tolerance": tolerance, "dropped": report["dropped"]}
    report["num_parameters"] = pot.num_parameters
    report["bonds"] = [str(b) for b in pot.tt.bonds[1:-1]]
    if has_refs:
        report["errors_after"] = error_table(pot, validation)
    if timing_atoms is not None:
        report["us_per_atom_after"] = 1e6 * eval_time_per_atom(pot, timing_atoms)
    return report
