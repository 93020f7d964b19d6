"""Sizing the model to the data: smaller candidates where the training data are thin.

A fit needs several rows (energies, force components, stress components) per tensor-train
parameter (the tensor train's; the raw radial channels are not fitted by default).  With few data
and many species the default model has few rows per parameter: a five-species EMT alloy set of
1,600 atoms gives 4,365 training rows against the default l_max 2 model's 3,675 fitted parameters
(6,755 with the fixed radial weights), and that model fitted its training energies to 0.02
meV/atom and its validation energies to 9.6 (``python fitting/sizing/run.py``).  Where the training data give fewer than
:data:`etnpot.defaults.MIN_ROWS_PER_PARAMETER` rows per parameter, ``etnpot fit`` therefore also
fits the same model with ``l_max`` lowered one step at a time, until the ratio is met or
``l_max`` is 1, and keeps the candidate with the lowest validation loss (the fit's own early-
stopping score: the same weights, the same validation set).  The choice is made on validation
only; the larger model is kept where it validates better.  ``[fit] size_to_data = false``
switches it off; a ``[grow]`` section or a distributed fit does not use it.  A resumed fit
resumes the configured model from its checkpoint, then fits the smaller candidates afresh, so it
saves the model of an uninterrupted fit.

**Order 4 at a lower rank** (:func:`order4_alternative`, ``[fit] try_order4``).  The centre
atom's species enters the features only through the species-indicator channels of ``l = 0``
(:mod:`etnpot.features`), which take one site of the tensor train.  At order 3 a term with three
neighbour densities has no site left for it, so its coefficient is shared by every centre
species; at order 4 it is not.  Order 4 with the scalar bond channels at rank ``r`` and the
others at ``r - 1`` has 5-8 % more parameters than order 3 at rank ``r`` at ``l_max`` 2 and
11-17 % more at ``l_max`` 1 (all parameters, two to five species, six Chebyshev functions).  It was the better on validation on InP (two species, at <= 1,000 parameters,
``fitting/inp/README.md``) and on a five-species EMT set at 4,800 training atoms (it lost at
1,600, where order 3 at l_max 1 was kept; ``fitting/sizing/README.md``); on a
four-metal set of elements and binaries order 4 was worse in domain
(``fitting/transfer/README.md``).  So with ``try_order4 = "auto"`` (the default) a fit whose
config names several species and leaves ``order`` and ``rank`` to the defaults also fits that alternative (sized to the
data like the model) and keeps the candidate with the lowest validation loss.  ``true`` does it
for one species too, and whatever the config names; ``false`` never.  Like ``size_to_data`` it
needs a validation set, and a ``[grow]`` section or a distributed fit does not use it.
"""
from __future__ import annotations

import logging

from . import defaults as D

log = logging.getLogger(__name__)

__all__ = ["rows", "training_rows", "smaller_models", "order4_alternative", "candidates"]


def rows(n_conf: int, n_atoms: int, weights) -> int:
    """Rows of the least-squares problem of ``n_conf`` configurations with ``n_atoms`` atoms in
    all: one per energy, three per atom for forces, six per configuration for stress, each only
    with a weight > 0 (an upper bound where some configurations have no stress)."""
    return n_conf * (weights.energy > 0) + 3 * n_atoms * (weights.forces > 0) + 6 * n_conf * (weights.stress > 0)


def training_rows(configs, weights) -> int:
    """:func:`rows` of the configurations ``configs``."""
    return rows(len(configs), sum(len(c.atoms) for c in configs), weights)


def smaller_models(species, model: dict, n_rows: int, min_rows: float = D.MIN_ROWS_PER_PARAMETER) -> list[dict]:
    """The ``[model]`` keyword arguments of the smaller candidates for ``n_rows`` training rows:
    ``model`` with ``l_max`` lowered by one while the model has fewer than ``min_rows`` rows per
    fitted parameter (cores and E0: ``ETNPotential.fitted_parameters``), down to ``l_max = 1``; empty where ``model`` already has
    enough."""
    from .potential import ETNPotential

    out, m = [], dict(model)
    m.setdefault("l_max", D.MODEL["l_max"])
    n_params = ETNPotential.build(species, **m).fitted_parameters
    while m["l_max"] > 1 and n_rows < min_rows * n_params:
        m = dict(m, l_max=m["l_max"] - 1)
        if m.get("bond_l_max") is not None:
            m["bond_l_max"] = min(m["bond_l_max"], m["l_max"])
        top = m["l_max"] if m.get("bond_l_max") is None else m["bond_l_max"]
        m["rank"] = _rank_up_to(m.get("rank", D.MODEL["rank"]), top)
        try:
            n_params = ETNPotential.build(species, **m).fitted_parameters
        except (ValueError, KeyError) as exc:  # e.g. a rank given per irrep that the lower l_max does not have
            log.info("size_to_data: no l_max %d candidate (%s)", m["l_max"], exc)
            break
        out.append(m)
    return out


def order4_alternative(species, model: dict, mode=D.TRY_ORDER4):
    """The ``[model]`` keyword arguments of the order-4 alternative to ``model``: order 4, the
    scalar (``l = 0``) bond channels at ``model``'s rank ``r`` and every other irrep at ``r - 1``
    (``{"0e": r, "1o": r - 1, ...}`` up to the bond's ``l_max``, named as a config names them),
    or ``None`` where ``mode`` (``"auto"``, ``True``, ``False``) does not ask for one: ``"auto"``
    needs several species, ``True`` any number; both need an order-3 model with an integer rank
    >= 2.  (Whether the config named its order or rank, which switches ``"auto"`` off, is
    decided by ``etnpot fit``: :func:`etnpot.workflow.run_fit`.)"""
    from .so3 import natural_irrep

    if mode is False or (mode == "auto" and len(species) < 2):
        return None
    rank = model.get("rank", D.MODEL["rank"])
    if model.get("order", D.MODEL["order"]) != 3 or isinstance(rank, bool) or not isinstance(rank, int) or rank < 2:
        return None
    l_max = model.get("l_max", D.MODEL["l_max"])
    top = l_max if model.get("bond_l_max") is None else model["bond_l_max"]
    o3 = model.get("o3", D.MODEL["o3"])
    return dict(model, order=4, rank={str(natural_irrep(l, o3)): rank if l == 0 else rank - 1 for l in range(top + 1)})


def _rank_up_to(rank, l_max: int):
    """``rank`` without the irreps of degree above ``l_max`` where it is given per irrep."""
    if not isinstance(rank, dict):
        return rank
    from .so3 import Irrep

    degree = lambda key: int(key) if isinstance(key, int) or str(key).isdigit() else Irrep.parse(key).l
    return {k: v for k, v in rank.items() if degree(k) <= l_max}


def candidates(species, model: dict, n_rows: int, try_order4=D.TRY_ORDER4,
               min_rows: float = D.MIN_ROWS_PER_PARAMETER, size_to_data: bool = True) -> list[dict]:
    """Every candidate besides ``model`` itself: its smaller versions for thin data (with
    ``size_to_data``), then the order-4 alternative (:func:`order4_alternative`) and its smaller
    versions."""
    out = smaller_models(species, model, n_rows, min_rows) if size_to_data else []
    alt = order4_alternative(species, model, try_order4)
    if alt is not None:
        out += [alt] + (smaller_models(species, alt, n_rows, min_rows) if size_to_data else [])
    return out
