r"""The steps of an ETN fit, each of which can only lower the objective (:mod:`etnpot.objective`).

* :func:`local_solve`: the exact ridge solution of one core (or of the supercore of two
  neighbouring cores, split back by a truncated SVD per irrep: two-site DMRG).  In the
  mixed-canonical gauge around core ``k`` (cores to its left left-orthogonal, to its right
  right-orthogonal) ``||W||^2 = sum_p (2 l_b + 1) ||T_p||^2``, so the ridge on the centre core
  is the ridge on the full tensor and the exact local solve can only lower the objective.
  ``E0`` is an unregularized extra column.
* :func:`lm_step`: a Levenberg–Marquardt step on all cores at once.
* :func:`radial_step`: a Levenberg–Marquardt step on the radial/species weights of the features,
  in which the energy is a polynomial of degree ``order`` (Gauss–Newton rows of
  :func:`etnpot.linearization.feature_linear_map`).

Both nonlinear steps use :func:`damped_gauss_newton`: damped, Marquardt-scaled steps, accepted
only if the objective decreases.
"""
from __future__ import annotations

import logging
import time

import numpy as np

__all__ = ["local_solve", "species_tie_penalty", "lm_step", "radial_step", "damped_gauss_newton"]

log = logging.getLogger(__name__)


def damped_gauss_newton(ls, params, apply, restore, objective, before, mu, ridge=0.0, max_tries=8):
    r"""One Levenberg–Marquardt step from a streamed Gauss–Newton problem ``ls`` (columns: the
    parameters, then possibly ``dE0``; targets: the residuals).

    Solves ``min ||J d - r||^2 + ridge ||params + d||^2 + mu ||D d||^2`` with ``D`` the column
    norms of ``J`` (Marquardt scaling), calls ``apply(d)``, and keeps the step if ``objective()``
    decreased below ``before``; otherwise ``restore()`` and ``mu *= 4``, up to ``max_tries``.
    Returns ``(accepted, objective after, mu to use next)``: ``mu / 3`` after an accepted step.
    """
    n_par = len(params)
    nS = ls.n - n_par
    cn = np.linalg.norm(ls.R, axis=0)
    D = np.where(cn > 0, cn, 1.0)
    for _ in range(max_tries):
        rows, rhs = [ls.R, np.diag(np.sqrt(mu) * D)], [ls.z, np.zeros(ls.n)]
        if ridge > 0:
            rows.append(np.hstack([np.sqrt(ridge) * np.eye(n_par), np.zeros((n_par, nS))]))
            rhs.append(-np.sqrt(ridge) * params)
        delta = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
        apply(delta)
        after = objective()
        if after < before:
            return True, after, max(mu / 3.0, 1e-12)
        restore()
        mu *= 4.0
    return False, before, mu


def species_tie_penalty(pot, k, sites, strength, n_extra):
    r"""The matrix ``G`` of the species tie ``||G x||^2 = strength * ||D_k W||^2`` of the local
    problem of core ``k`` (or of both sites of a supercore), or ``None`` when there is nothing to
    tie (``strength`` 0, or one species).

    ``D_k`` applies :meth:`etnpot.features.OneParticleBasis.species_tie_operators` to the input
    channels of site ``k``: the deviation of each neighbour species' coefficients from their
    mean.  In the mixed-canonical gauge around ``k``, ``||D_k W||^2`` of the whole coefficient
    tensor is ``sum w (D x)^2`` over the centre core, with the weights ``2 l_b + 1`` of
    :meth:`etnpot.tt.EquivariantTT.core_weights`, so the tie is gauge independent.  It pulls the
    coefficients of neighbour-species combinations that the training data never show (three
    distinct neighbour species in a model trained on binaries) towards the species-blind mean,
    which the data do constrain.  ``n_extra`` zero columns are appended (``dE0``).

    The tie is a penalty of each local problem, not one global objective: the deviations at the
    other sites also depend on the centre core in the full tensor, and they are not in this
    solve.  Each solve can only lower its own local objective (data + ridge + its site's tie);
    the objective the fit reports and stops on stays the data loss plus the ridge.
    """
    if strength <= 0 or pot.basis.n_species == 1:
        return None
    import scipy.sparse as sp

    tt = pot.tt
    M = tt.input_operator(k, pot.basis.species_tie_operators(), sites)
    w = tt.core_weights(k) if sites == 1 else np.concatenate([tt.merged_weights(k)] * 2)
    G = sp.diags(np.sqrt(strength * w)) @ M
    return sp.hstack([G, sp.csr_matrix((G.shape[0], n_extra))], format="csr") if n_extra else G.tocsr()


def local_solve(pot, objective, k, sites=1, direction="right", max_rank=None, cutoff=0.0, fit_e0=True) -> dict:
    """Solve the local problem of core ``k`` (or supercore ``k, k+1``) exactly and write it back.
    The orthogonality centre must be at ``k`` (or on ``k, k+1``)."""
    t0 = time.perf_counter()
    tt = pot.tt
    ls = objective.assemble("core" if sites == 1 else "supercore", k, fit_e0)
    P = tt.core_size(k) if sites == 1 else tt.merged_size(k)
    wcore = tt.core_weights(k) if sites == 1 else tt.merged_weights(k)
    S = ls.n - P
    n_conf = objective.n_conf
    # ridge per configuration: the data part is summed over configurations
    reg = np.concatenate([objective.ridge * n_conf * wcore, np.zeros(S)])
    x0 = np.concatenate([tt.core_vector(k) if sites == 1 else tt.merged_vector(k), np.zeros(S)])
    G = species_tie_penalty(pot, k, sites, objective.species_tie * n_conf, S)
    loss = lambda x: (ls.loss(x) + float(np.sum(reg * x * x)) + (0.0 if G is None else float(np.sum((G @ x) ** 2)))) / n_conf
    before = loss(x0)
    x, cond = ls.solve(reg, x0=x0, penalty=G)
    after = loss(x)
    info = {"core": k, "sites": sites, "params": P, "loss_before": before, "loss": after, "cond": cond}
    if S:
        pot.e0 = pot.e0 + x[P:]
    if sites == 1:
        tt.set_core_vector(k, x[:P])
    else:
        info.update(tt.split_merged(k, x[:P], direction=direction, max_rank=max_rank, cutoff=cutoff))
        info["bond"] = str(tt.bonds[k + 1])
    info["seconds"] = time.perf_counter() - t0
    log.debug("core %s: loss %.6g -> %.6g (cond %.2e, %d params, %.1f s)", k, before, after, cond, P, info["seconds"])
    return info


def lm_step(pot, objective, mu, fit_e0=True, max_tries=8):
    """One Levenberg–Marquardt step on all cores (and E0) jointly; returns ``(info, next mu)``.
    The ridge is on the cores' reduced norms.  The caller restores the canonical form."""
    t0 = time.perf_counter()
    tt = pot.tt
    sizes = [tt.core_size(k) for k in range(tt.order)]
    ls = objective.assemble("cores", 0, fit_e0)
    theta = np.concatenate([tt.core_vector(k) for k in range(tt.order)])
    saved = (tt.copy(), pot.e0.copy())

    def apply(delta):
        pos = 0
        for k, n in enumerate(sizes):
            pot.tt.set_core_vector(k, theta[pos : pos + n] + delta[pos : pos + n])
            pos += n
        if ls.n > pos:
            pot.e0 = saved[1] + delta[pos:]

    def restore():
        pot.tt, pot.e0 = saved[0].copy(), saved[1].copy()

    before = objective()
    ok, after, mu_next = damped_gauss_newton(ls, theta, apply, restore, objective, before, mu,
                                             ridge=objective.ridge * objective.n_conf, max_tries=max_tries)
    info = {"kind": "lm", "loss_before": before, "loss": after, "accepted": ok, "mu": mu,
            "seconds": time.perf_counter() - t0}
    log.debug("LM step: objective %.6g -> %.6g (mu %.2e)", before, after, mu)
    return info, mu_next


def radial_step(pot, objective, mu, fit_e0=True, max_tries=8):
    """One Levenberg–Marquardt step on the radial and species weights of the features (and E0);
    returns ``(info, next mu)``."""
    t0 = time.perf_counter()
    ls = objective.assemble("features", 0, fit_e0)
    v0, e00 = pot.feature_parameter_vector(), pot.e0.copy()
    nv = len(v0)

    def apply(delta):
        pot.set_feature_parameter_vector(v0 + delta[:nv])
        if ls.n > nv:
            pot.e0 = e00 + delta[nv:]

    def restore():
        pot.set_feature_parameter_vector(v0)
        pot.e0 = e00.copy()

    before = objective()
    ok, after, mu_next = damped_gauss_newton(ls, v0, apply, restore, objective, before, mu, max_tries=max_tries)
    info = {"kind": "radial", "params": nv, "loss_before": before, "loss": after, "accepted": ok, "mu": mu,
            "seconds": time.perf_counter() - t0}
    log.debug("radial step: objective %.6g -> %.6g (mu %.2e)", before, after, mu)
    return info, mu_next
