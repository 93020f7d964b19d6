"""Rank/accuracy trade-off: fit a grid of models and compare parameters, errors and speed.

``etnpot scan CONFIG.toml`` (or :func:`scan`) takes a fit configuration with a ``[scan]``
section listing values for model hyper-parameters, e.g. ::

    [scan]
    order = [2, 3, 4]
    rank = [2, 4]
    l_max = [2]
    "fit.ridge" = [1e-8, 1e-5]            # fit settings and weights too: fit.ridge, fit.sweeps,
                                          # fit.species_tie, weights.energy, weights.forces, weights.stress
    select = "validation.forces.rmse"     # the error used for the Pareto front and the choice
    output = "scan"                       # folder for the table, the plots and the models
    folds = 3                             # optional: k-fold cross-validation (below)

It fits every combination (the Cartesian product), then writes ``scan.md``/``scan.json``: the
parameter count, bond ranks, validation and test RMSE/MAE of energy (meV/atom), forces (eV/Å)
and stress (GPa), the fit time, and the evaluation time per atom (energy + forces, median of 3).
It marks the Pareto front (no other model has fewer parameters *and* a lower error) and chooses
the front's most accurate model.

With ``folds = K`` every combination is fitted ``K`` times, once per validation fold of a
k-fold split of the training data stratified by config type (``[data] validation_fold``,
:func:`etnpot.data.fold_indices`); the validation and test errors of a row are the means over
the folds (``"folds"`` holds each fold's validation table), so the choice rests on every
training configuration instead of one 10 % split, whose few configurations can miss a whole
config type (Zuo Mo: no surface among its 19).  The row's model file, parameters, bonds and
evaluation time are those of fold 0's model, trained on ``(K-1)/K`` of the training data: refit
the chosen combination on all of it (``etnpot fit``) for use.  A scan fits every row with
``size_to_data`` and ``try_order4`` off (the scan itself is the sizing).  With matplotlib installed (``etnpot[plot]``) it also draws the
error against the parameters (front marked), the error against the evaluation cost, and parity
plots of the chosen model.
"""
from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import time

import numpy as np

__all__ = ["scan", "pareto_front", "mean_error_table"]

log = logging.getLogger(__name__)

SCAN_KEYS = ("order", "l_max", "rank", "n_basis", "n_channels", "species_rank", "r_cut", "bond_l_max")
# fit settings and weights that may be scanned too, named "<section>.<key>"
SCAN_FIT_KEYS = ("fit.ridge", "fit.sweeps", "fit.species_tie", "weights.energy", "weights.forces", "weights.stress")


def pareto_front(params, errors) -> list[int]:
    """Indices of the models that no other model beats in both parameters and error."""
    idx = []
    for i, (p, e) in enumerate(zip(params, errors)):
        if not any((p2 <= p and e2 <= e) and (p2 < p or e2 < e) for p2, e2 in zip(params, errors)):
            idx.append(i)
    return sorted(idx, key=lambda i: params[i])


def mean_error_table(tables):
    """The mean over ``tables`` (error tables of :func:`etnpot.metrics.error_table`, one per
    fold) of each RMSE and MAE of energy, forces and stress, overall and per config type (over
    the folds that hold the type); ``n_configs`` summed."""
    def mean(ts):
        out = {"n_configs": sum(t.get("n_configs", 0) for t in ts)}
        for key in ("energy", "forces", "stress"):
            parts = [t.get(key) for t in ts]
            out[key] = None if any(p is None for p in parts) else {
                m: float(np.mean([p[m] for p in parts])) for m in ("rmse", "mae")}
        return out

    out = mean(tables)
    types = sorted({k for t in tables for k in (t.get("by_config_type") or {})})
    out["by_config_type"] = {k: mean([t["by_config_type"][k] for t in tables if k in (t.get("by_config_type") or {})])
                             for k in types}
    return out


def _get(d, path):
    for part in path.split("."):
        if d is None:
            return None
        d = d.get(part)
    return d


def scan(cfg: dict, data_dir=None, progress: bool = False, out=None) -> list[dict]:
    """Fit the grid of ``cfg["scan"]`` (see the module docstring); returns one row per model.
    Progress lines go to ``out`` (default: the log at INFO level)."""
    from .workflow import run_fit

    out = out or log.info
    grid = dict(cfg.get("scan") or {})
    select = grid.pop("select", "validation.forces.rmse")
    outdir = grid.pop("output", "scan")
    folds = grid.pop("folds", None)
    if folds is not None:
        if not (type(folds) is int and folds >= 2):
            raise ValueError(f"[scan] folds must be an integer >= 2, got {folds!r}")
        if cfg["data"].get("validation") or (cfg.get("distributed") or {}).get("scheduler"):
            raise ValueError("[scan] folds carve the validation folds from the training data: remove [data] "
                             "validation files and [distributed]")
    unknown = set(grid) - set(SCAN_KEYS) - set(SCAN_FIT_KEYS)
    if unknown:
        raise ValueError(f"[scan] can vary {', '.join(SCAN_KEYS + SCAN_FIT_KEYS)}; unknown: {sorted(unknown)}")
    cdir = os.path.dirname(cfg["_path"]) if cfg.get("_path") else os.getcwd()
    outdir = outdir if os.path.isabs(outdir) else os.path.join(cdir, outdir)
    os.makedirs(outdir, exist_ok=True)
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in grid.values()]
    reference, first_file = _reference_data(cfg, data_dir)  # for the cost timing and the parity plot
    cost_atoms = [c.atoms for c in reference[: min(50, first_file)]]
    rows = []
    for combo in itertools.product(*values):
        c = copy.deepcopy({k: v for k, v in cfg.items() if k != "scan"})
        setting = dict(zip(keys, combo))
        for key, v in setting.items():
            section, _, name = key.rpartition(".")
            c.setdefault(section or "model", {})[name] = v
        c.setdefault("fit", {}).update(size_to_data=False, try_order4=False)  # each row is the model it names
        name = "_".join(f"{k.rpartition('.')[2]}{v}" for k, v in setting.items()) or "model"
        t0 = time.perf_counter()
        fitted = []
        for k in range(folds or 1):
            suffix = f"_fold{k}" if folds else ""
            c["output"] = {"model": os.path.join(outdir, f"{name}{suffix}.etn"), "checkpoint": None, "report": None}
            if folds:
                c.setdefault("data", {})["validation_fold"] = [k, folds]
            fitted.append((run_fit(c, data_dir=data_dir, progress=progress, out=lambda s: None), c["output"]["model"]))
        fit_s = time.perf_counter() - t0
        (pot, report), model_path = fitted[0]
        row = {"name": name, **setting, "parameters": pot.num_parameters,
               "bonds": [str(b) for b in pot.tt.bonds[1:-1]], "fit_seconds": fit_s,
               "validation": report["validation"], "test": report["test"], "model": model_path}
        if folds:
            row["folds"] = [r["validation"] for (_, r), _ in fitted]
            row["validation"] = mean_error_table(row["folds"])
            if report["test"]:  # every fold's model on the same test set
                row["test"] = mean_error_table([r["test"] for (_, r), _ in fitted]) | {"n_configs": report["test"]["n_configs"]}
        row["eval_us_per_atom"] = _eval_cost(pot, cost_atoms)
        row["selected_error"] = _get(row, select)
        rows.append(row)
        out(f"{name}: {row['parameters']} parameters, {select} = {row['selected_error']}, fit {fit_s:.1f} s, "
            f"{row['eval_us_per_atom']:.1f} µs/atom")
    if rows and all(r["selected_error"] is None for r in rows):
        raise ValueError(f"[scan] select = {select!r} names no error of the fits (e.g. 'validation.forces.rmse', "
                         "'validation.by_config_type.Surface.energy.mae')")
    errs = [r["selected_error"] if r["selected_error"] is not None else np.inf for r in rows]
    front = pareto_front([r["parameters"] for r in rows], errs)
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    chosen = min(front, key=lambda i: errs[i]) if front else None
    if chosen is not None:
        rows[chosen]["chosen"] = True
    _write(rows, select, outdir)
    _plots(rows, select, outdir, chosen, reference, "test" if cfg["data"]["test"] else "training")
    out(f"scan table: {os.path.join(outdir, 'scan.md')}")
    return rows


def _reference_data(cfg, data_dir):
    """The test files (else the training files), read once: ``(configurations, count of the first file)``."""
    from .config import resolve_data_root
    from .workflow import read_files

    d = cfg["data"]
    cdir = os.path.dirname(cfg["_path"]) if cfg.get("_path") else None
    root = resolve_data_root(data_dir, d["root"], cdir)
    configs, prov = read_files(d["test"] or d["train"], root, cdir, energy_key=d["energy_key"],
                               forces_key=d["forces_key"], stress_key=d["stress_key"])
    return configs, prov[0]["n_configs"]


def _eval_cost(pot, atoms) -> float:
    """Energy + forces time per atom (µs), median of 3."""
    n = sum(len(a) for a in atoms)
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        pot.compute(atoms, forces=True, stress=False)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) / max(n, 1) * 1e6)


def _fmt(s, key):
    return f"{s[key]:.4g}" if s else "-"


def _write(rows, select, outdir):
    with open(os.path.join(outdir, "scan.json"), "w") as fh:
        json.dump(rows, fh, indent=1, default=float)
    head = ("| model | parameters | bonds | val E RMSE / MAE | val F RMSE / MAE | test E RMSE / MAE | test F RMSE / MAE "
            "| test S RMSE | fit (s) | eval (µs/atom) | Pareto |")
    lines = [f"Errors: energy meV/atom, forces eV/Å, stress GPa. Pareto front and choice by `{select}`.", "", head,
             "|" + "---|" * 11]
    for r in rows:
        v, t = r["validation"] or {}, r["test"] or {}
        lines.append(f"| {r['name']}{' **(chosen)**' if r.get('chosen') else ''} | {r['parameters']} | "
                     f"{'; '.join(r['bonds'])} | {_fmt(v.get('energy'), 'rmse')} / {_fmt(v.get('energy'), 'mae')} | "
                     f"{_fmt(v.get('forces'), 'rmse')} / {_fmt(v.get('forces'), 'mae')} | "
                     f"{_fmt(t.get('energy'), 'rmse')} / {_fmt(t.get('energy'), 'mae')} | "
                     f"{_fmt(t.get('forces'), 'rmse')} / {_fmt(t.get('forces'), 'mae')} | {_fmt(t.get('stress'), 'rmse')} | "
                     f"{r['fit_seconds']:.1f} | {r['eval_us_per_atom']:.1f} | {'yes' if r['pareto'] else ''} |")
    with open(os.path.join(outdir, "scan.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _plots(rows, select, outdir, chosen, configs, which):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: no plots (pip install 'etnpot[plot]')")
        return
    errs = np.array([r["selected_error"] if r["selected_error"] is not None else np.nan for r in rows], float)
    params = np.array([r["parameters"] for r in rows])
    cost = np.array([r["eval_us_per_atom"] for r in rows])
    front = [i for i, r in enumerate(rows) if r["pareto"]]
    for xs, xlabel, fname in ((params, "parameters", "error_vs_parameters.png"),
                              (cost, "evaluation cost (µs/atom, energy + forces)", "error_vs_cost.png")):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.scatter(xs, errs, c="tab:blue", label="models")
        if fname.startswith("error_vs_parameters") and front:
            order = sorted(front, key=lambda i: params[i])
            ax.plot(params[order], errs[order], "o-", c="tab:red", label="Pareto front")
        for i, r in enumerate(rows):
            ax.annotate(r["name"], (xs[i], errs[i]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        from .plots import readable_log_axis

        readable_log_axis(ax.xaxis)  # the default labels of a short log range overlap
        ax.set_xlabel(xlabel)
        ax.set_ylabel(select)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname), dpi=150)
        plt.close(fig)
    if chosen is None:
        return
    from .io import load
    from .metrics import predict

    from .plots import parity

    pot = load(rows[chosen]["model"])
    parity(os.path.join(outdir, "parity.png"), {which: (configs, predict(pot, configs))},
           f"{rows[chosen]['name']} on {which} data")
