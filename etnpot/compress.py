r"""Channel compression: fewer radial channels for the same tensor train, chosen from a fitted model.

Every core ``k`` contracts the same feature blocks ``F[l]`` (``(2l+1) x C`` per atom) with its
blocks ``T_p[r, c, s]`` over the channel index ``c``.  If the channel directions that the cores
use span a subspace ``U_l`` (``C x C'``, orthonormal columns), then

.. math::

    \sum_c F[l]_{mc}\, T_p[r, c, s] = \sum_{c'} F'[l]_{mc'}\, T'_p[r, c', s],\qquad
    F'[l] = F[l]\, U_l,\quad T'_p = U_l^T T_p,

exactly.  ``F'`` is again a one-particle basis of :mod:`etnpot.features`: with
``F[l]_{mc} = G[l]_{mc} / s_{lc} - \delta_{l0} \mu_c(z_i)`` (``G`` the pair sum of
``B A Q``), the new radial weights are ``B'[l, c', n, k] = \sum_c U_l[c, c'] B[l, c, n, k] /
s_{lc}``, the new scale is 1 and the new shift ``\mu'(z) = \mu(z) U_0``.  The species
indicator channels of ``l = 0`` are kept as they are.

The evaluation cost of the features and of the contraction over ``c`` grows with ``C`` (with
species-resolved channels ``C = N S``: four species cost four times one), so a model compressed
to ``C' = N`` channels costs what a one-species model of the same ranks costs
(``benchmarks/bench_compress.py``).

``U_l`` is chosen by the weight the cores put on each channel direction: every core is brought
to the orthogonality centre in turn (then ``||T^{(k)}||`` is the norm of the whole coefficient
tensor, :meth:`etnpot.tt.EquivariantTT.core_weights`), the channel unfoldings ``T_p[c, (r, s)]
sqrt(2 l_b + 1)`` of all its paths of input ``l`` are stacked side by side over all cores, and
their ``C'`` leading left singular vectors are kept.  With training data
(:func:`compress` does this by default) the unfoldings are first multiplied by
``Sigma_l^{1/2}``, the square root of the features' second moments: the kept directions are
then those that carry the most of ``F T`` on those data, not only of ``T`` (channels of
neighbour species are strongly correlated, so the two differ), and ``F' = F Sigma^{-1/2} V``.
The discarded share of the squared singular values is reported.  Truncation changes the predictions; :func:`compress` then refits
the cores with a few ALS sweeps and keeps the model with the lowest validation loss.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from . import defaults as D
from .features import OneParticleBasis
from .tt import EquivariantTT

log = logging.getLogger(__name__)

__all__ = ["feature_covariances", "channel_subspaces", "compress_channels", "compress"]


def _centred_copies(tt):
    """The tensor train with its orthogonality centre at each core in turn (copies)."""
    t = tt.copy()
    for k in range(t.order - 1, 0, -1):
        t.orthogonalize_right(k)
    for k in range(t.order):
        yield k, t
        if k < t.order - 1:
            t.orthogonalize_left(k)


def feature_covariances(pot, atoms_list, chunk_atoms: int = D.FIT["chunk_atoms"]) -> list:
    """Per ``l``: the second moments ``Sigma_l = sum_{i, m} F[l]_{i m c} F[l]_{i m c'} / n`` of the
    model's (normalized) radial channels over the atoms of ``atoms_list``, ``C x C``."""
    from .data import batches_by_atoms

    C = pot.basis.n_channels
    sig = [np.zeros((C, C)) for _ in range(pot.basis.l_max + 1)]
    n = 0
    for batch in batches_by_atoms([getattr(a, "atoms", a) for a in atoms_list], chunk_atoms):
        g = pot.graph(batch)
        blocks, _ = pot.basis.compute(g)
        for l, F in enumerate(blocks):
            X = F[:, :, :C].reshape(-1, C)
            sig[l] += X.T @ X
        n += g.n_atoms
    return [s / max(n, 1) for s in sig]


def channel_subspaces(pot, n_channels: int, covariances=None):
    """Per ``l``: ``(A_l, B_l, discarded)`` with ``F' = F A_l`` the new channels (``C x
    n_channels``), ``T' = B_l^T T`` the new core blocks, and the share of the squared singular
    values left out (0 when the compression is exact).

    Without ``covariances`` the channel unfoldings ``M_l`` of the cores are split by an SVD and
    ``A_l = B_l = U_l``.  With the feature second moments ``Sigma_l`` (:func:`feature_covariances`)
    the SVD is that of ``Sigma_l^{1/2} M_l = V S Z^T``: the truncation then minimizes the mean
    squared change of the first-order contributions ``F T`` over those data, and ``A_l =
    Sigma_l^{-1/2} V_k``, ``B_l = Sigma_l^{1/2} V_k`` (``F A B^T T = F T`` at full rank for every
    ``F`` in the span of the data's features)."""
    C = pot.basis.n_channels
    L = pot.basis.l_max + 1
    cols = [[] for _ in range(L)]
    for k, t in _centred_copies(pot.tt):
        for (a, f, b), T in t.cores[k].items():
            if T.size:
                cols[f].append(np.sqrt(2.0 * b.l + 1.0) * np.moveaxis(T[:, :C, :], 1, 0).reshape(C, -1))
    out = []
    for l in range(L):
        M = np.concatenate(cols[l], axis=1) if cols[l] else np.zeros((C, 0))
        if covariances is None:
            half = inv_half = np.eye(C)
        else:
            lam, Q = np.linalg.eigh(0.5 * (covariances[l] + covariances[l].T))
            lam = np.clip(lam, 0.0, None)
            keep = lam > 1e-12 * max(float(lam.max()), 1e-300)
            half = (Q * np.sqrt(lam)) @ Q.T
            inv_half = (Q[:, keep] / np.sqrt(lam[keep])) @ Q[:, keep].T
        U, s, _ = np.linalg.svd(half @ M, full_matrices=True)
        total = float(np.sum(s ** 2))
        kept = float(np.sum(s[:n_channels] ** 2))
        V = U[:, :n_channels]
        out.append((inv_half @ V, half @ V, (total - kept) / total if total > 0 else 0.0))
    return out


def compress_channels(pot, n_channels: int, data=None):
    """A new :class:`~etnpot.ETNPotential` with ``n_channels`` radial channels per ``l`` (the
    model's own basis with the channel maps of :func:`channel_subspaces` folded in), and the
    discarded shares per ``l``.  ``pot`` is not changed.  With ``n_channels`` at least the rank
    the cores use, the predictions are the same (to rounding).  ``data`` (configurations or
    atoms): choose the channels in the metric of these data's features (recommended: the
    training data)."""
    b = pot.basis
    C, S = b.n_channels, b.n_species
    n_channels = int(n_channels)
    if not 1 <= n_channels <= C:
        raise ValueError(f"n_channels must be between 1 and the model's {C} channels, got {n_channels}")
    subs = channel_subspaces(pot, n_channels, None if data is None else feature_covariances(pot, data))
    nb = OneParticleBasis(S, b.l_max, b.radial.n_basis, n_channels, b.species_rank, b.radial.r_min, b.radial.r_cut)
    nb.species_weights = b.species_weights.copy()
    for l, (A, _, _) in enumerate(subs):
        nb.radial_weights[l] = np.einsum("cd,cnk->dnk", A / b.scale[l][:, None], b.radial_weights[l])
    nb.scale[:] = 1.0
    nb.shift = b.shift @ subs[0][0]
    inputs = [(ir, nb.channels(l)) for l, (ir, _) in enumerate(pot.tt.inputs)]
    cores = []
    for core in pot.tt.cores:
        new = {}
        for p, T in core.items():
            B = subs[p[1]][1]
            head = np.einsum("cd,rcs->rds", B, T[:, :C, :])
            new[p] = np.concatenate([head, T[:, C:, :]], axis=1)  # species indicators (l = 0) unchanged
        cores.append(new)
    out = type(pot)(pot.species, nb, EquivariantTT(inputs, pot.tt.bonds, cores), pot.e0.copy(), pot.o3,
                    dict(pot.metadata))
    out.metadata["compress"] = {"n_channels_before": C, "n_channels": n_channels,
                                "discarded": [float(d) for _, _, d in subs], "data_metric": data is not None}
    return out, [float(d) for _, _, d in subs]


def compress(pot, n_channels: int, train, validation, weights=None, settings=None, timing_atoms=None,
             progress: bool = False, data_metric: bool = True):
    """Compress ``pot``'s channels to ``n_channels`` (in the metric of the training features,
    unless ``data_metric=False``) and refit its cores on ``train`` with ``settings.sweeps`` ALS
    sweeps (default :data:`etnpot.defaults.COMPRESS`), early stopping on ``validation``.

    Returns ``(model, report)``; ``pot`` is not changed.  The report holds the parameter counts,
    the discarded shares per ``l``, the validation error tables before, right after the
    projection and after the refit, the seconds of the refit, and with ``timing_atoms`` the
    evaluation time per atom (µs, energy + forces) before and after.
    """
    from .fit import ALSFitter, FitSettings
    from .metrics import error_table
    from .objective import Weights
    from .prune import eval_time_per_atom

    validation = list(validation)
    if not validation:
        raise ValueError("compress needs validation configurations (to choose the refitted model)")
    settings = settings or FitSettings(sweeps=D.COMPRESS["sweeps"])
    new, discarded = compress_channels(pot, n_channels, train if data_metric else None)
    report = {"n_channels_before": pot.basis.n_channels, "n_channels": int(n_channels), "discarded": discarded,
              "num_parameters_before": pot.num_parameters, "num_parameters": new.num_parameters,
              "errors_before": error_table(pot, validation), "errors_projected": error_table(new, validation)}
    t0 = time.perf_counter()
    fitter = ALSFitter(new, train, validation, weights or Weights(), settings, e0="keep", normalize=False,
                       progress=progress)
    projected = new.copy()
    loss_projected = fitter.loss.validation_loss()
    fitter.run()
    if fitter.loss.validation_loss() > loss_projected:  # keep the better of the two, as early stopping does
        log.info("compress: the refit raised the validation loss; the projected model is kept")
        new.tt, new.e0, new.basis = projected.tt, projected.e0, projected.basis  # radial steps may have moved the basis
    report["refit_seconds"] = time.perf_counter() - t0
    report["errors_after"] = error_table(new, validation)
    new.active_set = None
    if timing_atoms is not None:
        report["us_per_atom_before"] = 1e6 * eval_time_per_atom(pot, timing_atoms)
        report["us_per_atom_after"] = 1e6 * eval_time_per_atom(new, timing_atoms)
    log.info("compressed %d -> %d channels: %d -> %d parameters", report["n_channels_before"], n_channels,
             report["num_parameters_before"], report["num_parameters"])
    return new, report
