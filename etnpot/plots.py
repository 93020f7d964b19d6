"""The pictures: parity plots of energies and forces, validation error per sweep.

matplotlib is optional (``pip install 'etnpot[plot]'``) and imported only here, lazily: without
it every function logs one line and returns ``None``.  Axes say "reference" (whatever code
labelled the data) and "ETN"; the legends carry each set's RMSE.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["pyplot", "parity", "convergence", "readable_log_axis"]

log = logging.getLogger(__name__)

#: the most configurations of one set drawn in a parity plot (a random subset beyond: the RMSE
#: in the legend is still that of the whole set where it is given)
MAX_CONFIGS = 2000

_COLOURS = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no plots (pip install 'etnpot[plot]')")
        return None
    return plt


def readable_log_axis(axis) -> None:
    """Plain numbers at 1, 2, 5 x 10^k on a log axis, no minor labels (matplotlib's defaults label
    the minor ticks of a short log range, and they overlap)."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def _rmse(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")


def parity(path, sets, title=None, seed=0):
    """Energy (meV/atom differences in the legend) and force-component parity plots of ``sets``
    (``{name: (configurations, predictions)}``, predictions as :func:`etnpot.metrics.predict`
    gives them) written to ``path``; returns ``path`` (``None`` without matplotlib or data)."""
    plt = pyplot()
    if plt is None:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    drawn = False
    rng = np.random.default_rng(seed)
    for name, (configs, preds) in sets.items():
        if not configs:
            continue
        idx = np.arange(len(configs))
        if len(idx) > MAX_CONFIGS:
            idx = np.sort(rng.choice(idx, MAX_CONFIGS, replace=False))
        cs, ps = [configs[i] for i in idx], [preds[i] for i in idx]
        e = [(c.energy / len(c.atoms), p["energy"] / len(c.atoms)) for c, p in zip(cs, ps) if c.energy is not None]
        f = [(np.ravel(c.forces), np.ravel(p["forces"])) for c, p in zip(cs, ps) if c.forces is not None]
        sub = f" ({len(idx)} of {len(configs)})" if len(idx) < len(configs) else ""
        colour = _COLOURS.get(name)
        if e:
            x, y = np.array(e).T
            axes[0].scatter(x, y, s=8, alpha=0.6, color=colour,
                            label=f"{name}{sub}: RMSE {1000 * _rmse(x, y):.3g} meV/atom")
            drawn = True
        if f:
            x, y = np.concatenate([a for a, _ in f]), np.concatenate([b for _, b in f])
            axes[1].scatter(x, y, s=3, alpha=0.4, color=colour, label=f"{name}{sub}: RMSE {_rmse(x, y):.3g} eV/Å")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, what in zip(axes, ("energy (eV/atom)", "force component (eV/Å)")):
        if not ax.collections:
            ax.set_visible(False)
            continue
        lo, hi = ax.get_xlim()
        lo2, hi2 = ax.get_ylim()
        lo, hi = min(lo, lo2), max(hi, hi2)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, zorder=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(f"reference {what}")
        ax.set_ylabel(f"ETN {what}")
        ax.legend(fontsize=7, loc="upper left", markerscale=2)
        ax.grid(alpha=0.3)
    return _save(plt, fig, path, title)


def convergence(path, history, best_sweep=None, title=None):
    """Validation energy and force RMSE per sweep (``history``: the fit's per-sweep records with
    ``"validation"`` error tables) written to ``path``; ``None`` without matplotlib or validation."""
    pts = [(h["sweep"] + 1, h["validation"]) for h in history if h.get("validation")]
    pts = [(s, v["energy"]["rmse"] if v.get("energy") else np.nan, v["forces"]["rmse"] if v.get("forces") else np.nan)
           for s, v in pts]
    if not pts:
        return None
    plt = pyplot()
    if plt is None:
        return None
    from matplotlib.ticker import MaxNLocator

    s, e, f = (np.array(c, float) for c in zip(*pts))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, y, what in ((axes[0], e, "validation energy RMSE (meV/atom)"), (axes[1], f, "validation force RMSE (eV/Å)")):
        ax.plot(s, y, "o-")
        if best_sweep is not None and 0 <= best_sweep < len(history):
            ax.axvline(best_sweep + 1, color="0.6", ls=":", label=f"kept: sweep {best_sweep + 1}")
            ax.legend(fontsize=7)
        ax.set_xlabel("sweep")
        ax.set_ylabel(what)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.grid(alpha=0.3)
    return _save(plt, fig, path, title)


def _save(plt, fig, path, title=None) -> str:
    """Title, lay out, write and close a figure; returns the path written."""
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return str(path)
