r"""Growing a model: function-preserving enlargements and a fit that grows its own model.

Four enlargements of an :class:`~etnpot.ETNPotential` each return a **new** potential that
predicts exactly what the old one predicted (the new parameters are zero, or carry a constant
factor 1), so a fit can be warm-started from it:

* :func:`grow_rank`: one more multiplicity (TT rank) of one irrep, or of every irrep, on every
  inner bond.  The blocks touching the bond are zero-padded: the new bond slots carry zero, so
  the contraction is unchanged.  Multiplicities stay capped at the TT rank bound
  (:meth:`~etnpot.tt.EquivariantTT.trim`); a bond already at its bound does not grow.
* :func:`grow_l_max`: features of degree ``l_max + 1`` (a new input block ``F[l_max+1]``) and,
  when the bonds follow ``l_max`` (``bond_l_max`` not set), the irrep ``l_max + 1`` on the inner
  bonds.  Every path through the new input or the new bond irrep has a zero block, so the value
  does not depend on them.  The new feature block's scale is set from the training data (the
  same RMS rule as :meth:`~etnpot.features.OneParticleBasis.set_normalization`); the old
  blocks keep theirs.
* :func:`grow_basis`: one more Chebyshev function ``Q_N`` and one new radial channel per
  species-embedding slot ``k`` (``R_{l,C+k} = A[l,k] Q_N / s``, the raw-channel rule of
  :mod:`etnpot.features`).  The old channels have zero weight on ``Q_N``, so they are unchanged;
  the cores get zero blocks on the new channels (the ``l = 0`` block keeps its species-indicator
  channels last: their slices move behind the new channels).  Shift and scale of the new
  channels come from the training data.
* :func:`grow_order`: one more site at the right end.  The old last core now ends in slot 0 of
  the scalar irrep of a new inner bond; the new core maps that slot to the scalar output through
  the species-indicator channels, ``T[0, C + s, 0] = 1`` for every species ``s``.  The indicators
  are ``delta(z_i, s)`` -- neither shifted nor scaled by the normalization
  (:meth:`~etnpot.features.OneParticleBasis.compute` appends them after centring, and ``scale``
  divides only the radial channels) -- so they sum to 1 for every atom and the new site
  multiplies every site energy by exactly 1 (the constant path of
  ``ETNPotential.random(init="constant")``).

:func:`grow` is the driver: from a (fitted) starting model it tries the enlargements in a fixed
order, cheapest first, fits each warm-started (ALS sweeps with ``normalize=False`` and the current
``E0``, so the fit starts from exactly the old predictions), and keeps a step only when the
validation data loss -- the fit objective's own data term, which combines the energy, force and
stress errors with the fit's weights -- drops by more than ``tol`` (relative).  After a kept
step it starts again from the cheapest enlargement; it stops at the target validation errors,
when no enlargement is kept, or at the parameter or time budget.  Configuration: the ``[grow]``
section of a fit configuration, or :class:`GrowSettings` from Python.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from . import chunks as C
from .features import OneParticleBasis
from .potential import ETNPotential
from .so3 import Irrep, Irreps, natural_irrep
from .tt import EquivariantTT

__all__ = ["GrowSettings", "CannotGrow", "grow_rank", "grow_l_max", "grow_basis", "grow_order", "grow",
           "grow_step", "plot_growth", "STEPS"]

log = logging.getLogger(__name__)

#: the enlargements :func:`grow` tries, cheapest first (``"rank:1o"``: the rank of one irrep)
STEPS = ("rank", "l_max", "n_basis", "order")


class CannotGrow(ValueError):
    """An enlargement that is not possible for this model (e.g. every bond at its rank bound)."""


# ------------------------------------------------------------------ helpers
def _max_bond(tt: EquivariantTT) -> dict:
    """Per irrep, the largest multiplicity over the inner bonds."""
    out: dict = {}
    for b in tt.bonds[1:-1]:
        for ir, m in b:
            out[ir] = max(out.get(ir, 0), m)
    return out


def _new_potential(pot: ETNPotential, basis: OneParticleBasis, tt: EquivariantTT, step: str) -> ETNPotential:
    """A potential of the same species, E0 and options with ``basis`` and ``tt``; the recorded
    hyper-parameters describe the new structure (``rank``: per irrep the largest multiplicity of
    the inner bonds, which :meth:`ETNPotential.build` with the same ``order``/``l_max`` trims to
    these bonds), and ``metadata["grown"]`` lists the enlargements."""
    import copy

    meta = copy.deepcopy(pot.metadata)
    meta.pop("fit", None)  # the history of the fit of another model
    hyper = meta.setdefault("hyperparameters", {})
    hyper.update(order=tt.order, l_max=basis.l_max, n_basis=basis.radial.n_basis, n_channels=basis.n_channels)
    mb = _max_bond(tt)
    if mb:
        hyper["rank"] = {str(ir): int(m) for ir, m in sorted(mb.items())}
    meta["grown"] = list(meta.get("grown", [])) + [step]
    out = ETNPotential(pot.species, basis, tt, pot.e0, pot.o3, meta)
    out.backend, out.dtype, out.threads, out.chunk_size = pot.backend, pot.dtype, pot.threads, pot.chunk_size
    return out  # no active set: the grade of the old model does not describe the new one


def _copy_basis(b: OneParticleBasis) -> OneParticleBasis:
    nb = OneParticleBasis(b.n_species, b.l_max, b.radial.n_basis, b.n_channels, b.species_rank,
                          b.radial.r_min, b.radial.r_cut)
    for name in ("species_weights", "radial_weights", "shift", "scale"):
        setattr(nb, name, getattr(b, name).copy())
    return nb


def _embed_cores(tt: EquivariantTT, inputs, bonds, channel_map=None) -> EquivariantTT:
    """A tensor train over ``inputs``/``bonds`` (each at least as large as ``tt``'s) whose blocks
    hold ``tt``'s blocks in their leading slots and zeros elsewhere.  ``channel_map[f]``: the new
    channel index of every old channel of input ``f`` (default: the same index)."""
    new = EquivariantTT(inputs, bonds)
    for k in range(min(tt.order, new.order)):
        for p, T in tt.cores[k].items():
            if p not in new.cores[k]:
                if np.any(T):
                    raise AssertionError(f"core {k} path {tt.path_str(p)} has no place in the enlarged train")
                continue
            N = new.cores[k][p]
            if T.shape[0] > N.shape[0] or T.shape[2] > N.shape[2]:
                raise AssertionError(f"core {k} path {tt.path_str(p)}: a bond shrank")
            cols = np.arange(T.shape[1]) if channel_map is None or p[1] not in channel_map else channel_map[p[1]]
            N[: T.shape[0], cols, : T.shape[2]] = T
    return new


def _as_chunks(data, chunk_atoms: int = 3000):
    data = list(data or [])
    if data and all(isinstance(d, (C.MemoryChunk, C.FileChunk)) for d in data):
        return data
    return C.make_memory_chunks(data, chunk_atoms)


def _normalization_of(pot: ETNPotential, train) -> OneParticleBasis:
    """A copy of ``pot``'s basis with the normalization set from the training data ``train``
    (configurations or chunks); the caller copies the entries of the new blocks/channels."""
    chunks = _as_chunks(train)
    if not chunks:
        raise ValueError("growing the features needs training data (for the normalization of the new features)")
    m = C.tree_reduce((C.feature_moments(ch, pot) for ch in chunks), C.merge)
    b = _copy_basis(pot.basis)
    b.set_normalization(m)
    return b


# ------------------------------------------------------------------ the enlargements
def grow_rank(pot: ETNPotential, irrep=None, by: int = 1) -> ETNPotential:
    """A copy of ``pot`` with the multiplicity of ``irrep`` (e.g. ``"1o"``; ``None``: every irrep of
    the inner bonds) raised by ``by`` on every inner bond, zero-padded, capped at the TT rank bound.
    The new bond slots meet only zero blocks, so predictions do not change.  Raises
    :class:`CannotGrow` if no bond can grow (order 1, or every bond at its bound)."""
    if int(by) < 1:
        raise ValueError(f"by must be an integer >= 1, got {by!r}")
    tt = pot.tt
    if tt.order < 2:
        raise CannotGrow("an order-1 model has no inner bond to grow")
    if irrep is None:
        irreps = sorted(_max_bond(tt))
    else:
        ir = Irrep.parse(irrep)
        irreps = [ir if pot.o3 else Irrep(ir.l, 0)]  # an SO(3) model's irreps carry no parity
    bonds = list(tt.bonds)
    for k in range(1, tt.order):
        mult = dict(bonds[k])
        for ir in irreps:
            mult[ir] = mult.get(ir, 0) + int(by)
        bonds[k] = Irreps(mult)
    new_tt = _embed_cores(tt, tt.inputs, bonds).trim()
    if [str(b) for b in new_tt.bonds] == [str(b) for b in tt.bonds]:
        raise CannotGrow(f"rank{'' if irrep is None else ' of ' + str(irreps[0])}: no inner bond can grow (each is at "
                         "its rank bound, or no coupling path reaches the irrep)")
    return _new_potential(pot, _copy_basis(pot.basis), new_tt, "rank" if irrep is None else f"rank:{irrep}")


def grow_l_max(pot: ETNPotential, train, bond_irrep: bool | None = None) -> ETNPotential:
    """A copy of ``pot`` with features up to degree ``l_max + 1``; the new block's radial and
    species weights start at the raw channels (as in :class:`OneParticleBasis`) and its scale is
    set from ``train`` (configurations or chunks).  ``bond_irrep`` (default: when the model's
    ``bond_l_max`` is not set) also puts the irrep ``l_max + 1`` on the inner bonds, with the
    multiplicity of the irrep ``l_max``.  All new paths have zero blocks."""
    b = pot.basis
    L = b.l_max + 1
    nb = OneParticleBasis(b.n_species, L, b.radial.n_basis, b.n_channels, b.species_rank, b.radial.r_min,
                          b.radial.r_cut)
    nb.species_weights[:L] = b.species_weights
    nb.radial_weights[:L] = b.radial_weights
    nb.shift = b.shift.copy()
    nb.scale[:L] = b.scale
    tt = pot.tt
    inputs = list(tt.inputs) + [(natural_irrep(L, pot.o3), nb.channels(L))]
    if bond_irrep is None:
        bond_irrep = pot.metadata.get("hyperparameters", {}).get("bond_l_max") is None
    bonds = list(tt.bonds)
    if bond_irrep and tt.order > 1:
        top = _max_bond(tt).get(natural_irrep(b.l_max, pot.o3), 1)
        new_ir = natural_irrep(L, pot.o3)
        for k in range(1, tt.order):
            bonds[k] = Irreps({**dict(bonds[k]), new_ir: max(bonds[k].mult(new_ir), top)})
    new_tt = _embed_cores(tt, inputs, bonds).trim()
    new = _new_potential(pot, nb, new_tt, "l_max")
    new.basis.scale[L] = _normalization_of(new, train).scale[L]
    return new


def grow_basis(pot: ETNPotential, train) -> ETNPotential:
    """A copy of ``pot`` with one more Chebyshev function ``Q_N`` and one new radial channel per
    species-embedding slot ``k`` (radial weight 1 on ``(Q_N, k)``); shift and scale of the new
    channels from ``train``.  The cores get zero blocks on the new channels."""
    b = pot.basis
    L, Cn, N, K, S = b.l_max + 1, b.n_channels, b.radial.n_basis, b.species_rank, b.n_species
    nb = OneParticleBasis(S, b.l_max, N + 1, Cn + K, K, b.radial.r_min, b.radial.r_cut)
    nb.species_weights = b.species_weights.copy()
    nb.radial_weights = np.zeros((L, Cn + K, N + 1, K))
    nb.radial_weights[:, :Cn, :N, :] = b.radial_weights
    for k in range(K):
        nb.radial_weights[:, Cn + k, N, k] = 1.0
    nb.shift = np.zeros((S, Cn + K))
    nb.shift[:, :Cn] = b.shift
    nb.scale = np.ones((L, Cn + K))
    nb.scale[:, :Cn] = b.scale
    tt = pot.tt
    inputs, cmap = [], {}
    for f, (ir, ch) in enumerate(tt.inputs):
        if ir.l != f:
            raise AssertionError(f"input {f} has degree {ir.l}: expected the inputs ordered by l")
        inputs.append((ir, nb.channels(ir.l)))
        # radial channels keep their index; the l = 0 indicator channels move behind the new channels
        cmap[f] = np.concatenate([np.arange(Cn), Cn + K + np.arange(ch - Cn)]) if f == 0 else np.arange(ch)
    new_tt = _embed_cores(tt, inputs, tt.bonds, cmap).trim()
    new = _new_potential(pot, nb, new_tt, "n_basis")
    ref = _normalization_of(new, train)
    new.basis.scale[:, Cn:] = ref.scale[:, Cn:]
    new.basis.shift[:, Cn:] = ref.shift[:, Cn:]
    return new


def grow_order(pot: ETNPotential) -> ETNPotential:
    """A copy of ``pot`` with one more tensor-train site (order ``d + 1``) that multiplies every
    site energy by the sum of the species indicators, i.e. by 1.  The inner bonds are padded to
    the largest inner bond (what :meth:`ETNPotential.build` gives for ``d + 1`` sites, after
    :meth:`~etnpot.tt.EquivariantTT.trim`); the new bond holds at least one scalar slot."""
    tt = pot.tt
    scalar = tt.bonds[0][0][0]
    target = _max_bond(tt)
    target[scalar] = max(target.get(scalar, 0), 1)
    inner = [Irreps({ir: max(b.mult(ir), m) for ir, m in target.items()}) for b in tt.bonds[1:-1]]
    bonds = [tt.bonds[0]] + inner + [Irreps(target), tt.bonds[-1]]
    new_tt = _embed_cores(tt, tt.inputs, bonds)
    last = new_tt.order - 1
    p = (scalar, 0, scalar)
    C_ = pot.basis.n_channels
    if tt.inputs[0][0].l != 0 or tt.inputs[0][1] != C_ + pot.basis.n_species:
        raise AssertionError("input 0 must be the l = 0 block with the species-indicator channels last")
    new_tt.cores[last][p][0, C_ : C_ + pot.basis.n_species, 0] = 1.0
    return _new_potential(pot, _copy_basis(pot.basis), new_tt.trim(), "order")


def grow_step(pot: ETNPotential, step: str, train) -> ETNPotential:
    """The enlargement named ``step``: ``"rank"``, ``"rank:<irrep>"``, ``"l_max"``, ``"n_basis"`` or
    ``"order"``."""
    if step == "rank":
        return grow_rank(pot)
    if step.startswith("rank:"):
        return grow_rank(pot, step.split(":", 1)[1])
    if step == "l_max":
        return grow_l_max(pot, train)
    if step == "n_basis":
        return grow_basis(pot, train)
    if step == "order":
        return grow_order(pot)
    raise ValueError(f"unknown growth step {step!r}; known: {', '.join(STEPS)} or rank:<irrep>")


# ------------------------------------------------------------------ settings
@dataclass
class GrowSettings:
    """The ``[grow]`` section.  Targets use the units of the error tables: energy RMSE in
    meV/atom, force RMSE in eV/Å (validation set).  Growth stops when every given target is met,
    when no step improves the validation loss by more than ``tol`` (relative), or before a step
    that would exceed ``max_parameters`` or start after ``max_seconds`` (wall time of the growth,
    the starting fit included when :func:`grow` runs it)."""

    target_forces_rmse: float | None = None
    target_energy_rmse: float | None = None
    max_parameters: int | None = None
    max_seconds: float | None = None
    tol: float = 0.01
    sweeps: int = 3  # ALS sweeps of each warm-started step
    steps: list = field(default_factory=lambda: list(STEPS))

    def __post_init__(self):
        for key in ("target_forces_rmse", "target_energy_rmse", "max_seconds"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise ValueError(f"[grow] {key} must be a number > 0, got {v!r}")
        v = self.max_parameters
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ValueError(f"[grow] max_parameters must be an integer >= 1, got {v!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or not 0 <= self.tol < 1:
            raise ValueError(f"[grow] tol must be a number in [0, 1), got {self.tol!r}")
        if isinstance(self.sweeps, bool) or not isinstance(self.sweeps, int) or self.sweeps < 1:
            raise ValueError(f"[grow] sweeps must be an integer >= 1, got {self.sweeps!r}")
        steps = [self.steps] if isinstance(self.steps, str) else list(self.steps)
        if not steps:
            raise ValueError("[grow] steps must list at least one step")
        for s in steps:
            if not isinstance(s, str) or not (s in STEPS or (s.startswith("rank:") and _is_irrep(s[5:]))):
                raise ValueError(f"[grow] steps: unknown step {s!r}; known: {', '.join(STEPS)} or rank:<irrep> "
                                 "(e.g. rank:1o)")
        self.steps = steps

    @classmethod
    def from_dict(cls, d: dict) -> "GrowSettings":
        """From a ``[grow]`` table; unknown keys are errors that name the key (with a suggestion)."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                raise ValueError(f"unknown key '{key}' in [grow]" +
                                 (f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(known)}"))
        return cls(**d)

    def check_start(self, pot: ETNPotential) -> None:
        """The budget must admit the starting model: an error naming ``max_parameters`` otherwise."""
        if self.max_parameters is not None and self.max_parameters < pot.num_parameters:
            raise ValueError(f"[grow] max_parameters = {self.max_parameters} is below the starting model's "
                             f"{pot.num_parameters} parameters")

    def targets_met(self, table: dict | None) -> bool:
        """Whether the validation error ``table`` meets every given target (``False`` if none is given)."""
        if table is None or (self.target_forces_rmse is None and self.target_energy_rmse is None):
            return False
        for key, target in (("forces", self.target_forces_rmse), ("energy", self.target_energy_rmse)):
            if target is not None and (table.get(key) is None or table[key]["rmse"] > target):
                return False
        return True


def _is_irrep(text: str) -> bool:
    try:
        Irrep.parse(text)
        return True
    except (ValueError, TypeError):
        return False


# ------------------------------------------------------------------ the driver
def _evaluate(pot, train, validation, weights, settings, client=None):
    """``(validation loss, validation error table)`` of ``pot`` (the fit objective's data term)."""
    from .objective import Objective

    obj = Objective(pot, train, validation, weights, settings.ridge, settings.chunk_atoms, settings.memory_mb, client)
    return obj.validation_loss(), obj.errors(obj.validation)


def _entry(step, pot, loss, table, seconds, kept):
    return {"step": step, "num_parameters": int(pot.num_parameters), "validation": table,
            "validation_loss": float(loss), "seconds": float(seconds), "kept": bool(kept),
            "order": pot.order, "l_max": pot.basis.l_max, "n_basis": pot.basis.radial.n_basis,
            "bonds": [str(b) for b in pot.tt.bonds[1:-1]]}


def grow(pot: ETNPotential, train, validation, weights=None, settings=None, grow_settings=None, *,
         fit_start: bool = True, progress: bool = True, e0="fit", client=None, start_seconds: float = 0.0):
    """Grow ``pot`` step by step (see the module docstring); returns ``(model, growth)``.

    ``model`` is the last kept model (a new object unless no step was kept and ``fit_start`` is
    false); ``growth`` has one entry per tried step, the starting model first (``"step":
    "start"``): ``num_parameters``, ``validation`` (error table), ``validation_loss``, ``seconds``
    (of that step's enlargement and fit), ``kept``, and the structure (order, l_max, n_basis,
    bonds).  ``fit_start``: fit ``pot`` (in place) with ``settings`` first (with ``e0`` and the
    normalization from ``train``); otherwise ``pot`` is taken as fitted.  ``train``/``validation``:
    configurations or chunks; validation data are required (they decide which steps are kept).
    ``client``: a Dask client for the fits and evaluations (the normalization of new features is
    computed in this process).  ``start_seconds``: time already spent fitting ``pot`` (when
    ``fit_start`` is false): counted in the start entry and in ``max_seconds``.
    """
    from tqdm.auto import tqdm

    from .fit import ALSFitter, FitSettings
    from .objective import Weights

    weights = weights or Weights()
    settings = settings or FitSettings()
    gs = grow_settings if isinstance(grow_settings, GrowSettings) else GrowSettings.from_dict(dict(grow_settings or {}))
    gs.check_start(pot)
    if not validation:
        raise ValueError("growing a model needs validation data: they decide which steps are kept")
    t_start = time.perf_counter() - float(start_seconds)
    train, validation = _as_chunks(train, settings.chunk_atoms), _as_chunks(validation, settings.chunk_atoms)
    if fit_start:
        ALSFitter(pot, train, validation, weights, settings, e0=e0, progress=progress, client=client).run()
    loss, table = _evaluate(pot, train, validation, weights, settings, client)
    growth = [_entry("start", pot, loss, table, time.perf_counter() - t_start, True)]
    log.info("grow: start, %d parameters, validation loss %.5g%s", pot.num_parameters, loss, _fmt(table))
    step_settings = dataclasses.replace(settings, sweeps=gs.sweeps)
    current, best = pot, loss
    bar = tqdm(desc="ETN grow", disable=not progress, leave=False, unit="step")
    reason = None
    try:
        while reason is None:
            if gs.targets_met(_last_kept(growth)["validation"]):
                reason = "targets met"
                break
            kept_one, over_budget = False, False
            for step in gs.steps:
                if gs.max_seconds is not None and time.perf_counter() - t_start > gs.max_seconds:
                    reason = f"time budget max_seconds = {gs.max_seconds:g} spent"
                    break
                t0 = time.perf_counter()
                try:
                    cand = grow_step(current, step, train)
                except CannotGrow as e:
                    log.info("grow: %s not possible (%s)", step, e)
                    continue
                if gs.max_parameters is not None and cand.num_parameters > gs.max_parameters:
                    log.info("grow: %s would need %d parameters > max_parameters = %d", step, cand.num_parameters,
                             gs.max_parameters)
                    over_budget = True
                    continue
                fitter = ALSFitter(cand, train, validation, weights, step_settings, e0="keep", normalize=False,
                                   progress=False, client=client)
                fitter.fit_e0 = e0 == "fit"  # refine E0 in the solves as the starting fit does; the start is exact
                fitter.run()
                c_loss, c_table = _evaluate(cand, train, validation, weights, settings, client)
                kept = c_loss < best * (1.0 - gs.tol)
                if gs.max_parameters is not None and cand.num_parameters > gs.max_parameters:
                    kept = False  # two-site DMRG (settings.two_site) may have raised the ranks past the budget
                    over_budget = True
                growth.append(_entry(step, cand, c_loss, c_table, time.perf_counter() - t0, kept))
                bar.update(1)
                log.info("grow: %s -> %d parameters, validation loss %.5g (best %.5g)%s: %s", step,
                         cand.num_parameters, c_loss, best, _fmt(c_table), "kept" if kept else "not kept")
                if kept:
                    current, best, kept_one = cand, c_loss, True
                    break
            if reason is None and not kept_one:
                reason = ("no step within max_parameters = %d improves the validation loss by more than tol"
                          % gs.max_parameters if over_budget else "no step improves the validation loss by more than tol")
    finally:
        bar.close()
    log.info("grow: stopped (%s) at %d parameters after %d tried steps, %.1f s", reason, current.num_parameters,
             len(growth) - 1, time.perf_counter() - t_start)
    current.metadata["growth"] = {"stopped": reason, "steps": [
        {k: v for k, v in g.items() if k != "seconds"} for g in growth]}  # no wall times: reproducible files
    return current, growth


def _last_kept(growth):
    return [g for g in growth if g["kept"]][-1]


def _fmt(table):
    if not table or not table.get("energy") or not table.get("forces"):
        return ""
    return f", validation E {table['energy']['rmse']:.3f} meV/atom F {table['forces']['rmse']:.4f} eV/Å"


def plot_growth(growth, path) -> str | None:
    """Validation force and energy RMSE against the number of parameters (kept steps joined by a
    line, rejected ones as open markers), written to ``path``; ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no growth plot")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, unit in ((axes[0], "forces", "eV/Å"), (axes[1], "energy", "meV/atom")):
        pts = [(g["num_parameters"], g["validation"][key]["rmse"], g["kept"], g["step"]) for g in growth
               if g["validation"] and g["validation"].get(key)]
        kept = [(n, e) for n, e, k, _ in pts if k]
        if kept:
            ax.plot(*zip(*kept), "o-", label="kept")
        rej = [(n, e) for n, e, k, _ in pts if not k]
        if rej:
            ax.plot(*zip(*rej), "o", mfc="none", label="not kept")
        for n, e, _, s in pts:
            ax.annotate(s, (n, e), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("parameters")
        ax.set_ylabel(f"validation {key} RMSE ({unit})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
