"""The prune trade-off on a committed fit: tolerance -> parameters, µs/atom, validation errors.

    python benchmarks/prune_curve.py [--config fitting/zuo2020/Si_d4_r3.toml] [--model fitting/zuo2020/Si_d4_r3.etn]
                                     [--drop 0 1 3 5 8 9 10 | --tolerances T ...] [--atoms 1000 8000] [--repeat 5]
                                     [--json benchmarks/results/prune_curve_Si.json]

The data splits are the fit config's (:func:`etnpot.workflow.read_splits`: the validation set
carved from the training files with ``[fit] seed`` exactly as the fit did).  For every tolerance a
fresh copy of the model goes through :func:`etnpot.prune` with that validation set (which path
contributions are measured on, and which decides whether the one-sweep refit on the training set
is kept), the config's weights and ridge.  Reported per tolerance: coupling paths, parameters, the
bonds, the contraction the model evaluates with, the median CPU µs/atom of energy + forces
(``pot.compute`` on a rattled diamond/zincblende cell, neighbour list included, one BLAS
thread) at each ``--atoms`` size and with the block-sparse contraction forced at the smallest
(dropped paths save work only there: the dense contraction multiplies the full cores, in which
a dropped path is zeros), the counted flops of both contractions, and the validation RMSEs.
``--drop k ...`` picks the tolerances from the validation contributions so that ``k`` paths go.  Test-set errors are computed too and
written to the JSON for the record, but are printed last and never used to choose anything.
The contributions of all paths of the unpruned model are printed (quantiles) so the
tolerances can be read against them.  Needs the data under ``ETNPOT_DATA``.
"""
import argparse
import json
import os
import platform
import time

import numpy as np
from ase.build import bulk
from threadpoolctl import threadpool_limits

import etnpot
from etnpot import evaluation
from etnpot.config import load_config
from etnpot.metrics import error_table
from etnpot.objective import Weights
from etnpot.prune import eval_time_per_atom, path_contributions, prune
from etnpot.workflow import read_splits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cell(species, n):
    if list(species) == ["Si"]:
        base = bulk("Si", "diamond", a=5.43, cubic=True)
    elif sorted(species) == ["In", "P"]:
        base = bulk("InP", "zincblende", a=5.87, cubic=True)
    else:
        raise ValueError(f"no timing cell for species {species}")
    k = max(1, round((n / len(base)) ** (1 / 3)))
    atoms = base.repeat((k, k, k))
    atoms.rattle(0.02, seed=0)
    return atoms


def cpu_us_per_atom(pot, atoms, repeat):
    return eval_time_per_atom(pot, atoms, repeat, clock=time.process_time) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "fitting", "zuo2020", "Si_d4_r3.toml"))
    ap.add_argument("--model", default=os.path.join(ROOT, "fitting", "zuo2020", "Si_d4_r3.etn"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--tolerances", type=float, nargs="+", default=None)
    ap.add_argument("--drop", type=int, nargs="+", default=[0, 1, 3, 5, 8, 9, 10],
                    help="instead of tolerances: drop this many paths (the tolerance is the geometric mean of the "
                    "k-th and (k+1)-th smallest validation contributions of the unpruned model)")
    ap.add_argument("--atoms", type=int, nargs="+", default=[1000, 8000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "prune_curve_Si.json"))
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    cfg = load_config(args.config)
    train, val, test = read_splits(cfg, data_dir=args.data_dir)
    w = Weights(**{k: v for k, v in cfg["weights"].items() if k in ("energy", "forces", "stress", "config_types")})
    ridge = float(cfg["fit"]["ridge"])
    base = etnpot.load(args.model)
    print(f"{os.path.relpath(args.model, ROOT)}: {base.num_parameters} parameters; splits of "
          f"{os.path.relpath(args.config, ROOT)}: {len(train)} training, {len(val)} validation "
          f"(validation_fraction {cfg['data'].get('validation_fraction')}, seed {cfg['fit']['seed']}), {len(test)} test")
    contrib = np.array(sorted(path_contributions(base, val).values()))
    qs = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]
    print(f"path contributions ({len(contrib)} paths), quantiles {qs}: "
          + " ".join(f"{v:.3g}" for v in np.quantile(contrib, qs)), flush=True)
    print("sorted: " + " ".join(f"{v:.3g}" for v in contrib), flush=True)
    if args.tolerances is None:
        tols = [0.0 if k == 0 else float(np.sqrt(contrib[k - 1] * contrib[k])) for k in args.drop if k < len(contrib)]
    else:
        tols = args.tolerances
    cells = {len(c): c for c in (cell(base.species, n) for n in args.atoms)}
    rows = []
    head = (f"{'tolerance':>9} {'paths':>5} {'params':>6} {'contr.':>6} "
            + " ".join(f"{'µs/at ' + str(len(a)):>10}" for a in cells.values()) + f" {'sparse':>7}"
            + f" {'val E meV/at':>12} {'val F eV/Å':>10} {'refit':>6}  bonds")
    print(head, flush=True)
    with threadpool_limits(1):
        for tol in tols:
            pot = etnpot.load(args.model)
            t0 = time.perf_counter()
            try:
                rep = prune(pot, val, tol, train=train, weights=w, ridge=ridge)
            except ValueError as exc:  # a tolerance that would leave a core without paths
                print(f"{tol:>9g}  refused: {exc}", flush=True)
                rows.append({"tolerance": tol, "refused": str(exc)})
                continue
            t_prune = time.perf_counter() - t0
            us = {len(a): cpu_us_per_atom(pot, a, args.repeat) for a in cells.values()}
            pot.evaluation = "sparse"  # the block-sparse contraction skips dropped paths; the dense one does not
            small = min(cells)
            us_sparse = cpu_us_per_atom(pot, cells[small], args.repeat)
            pot.evaluation = "auto"
            ev = rep.get("errors_after") or error_table(pot, val)
            te = error_table(pot, test)
            kept_refit = ("validation_loss" in rep and rep["validation_loss"] != rep["validation_loss_without_refit"])
            row = {"tolerance": tol, "paths": sum(len(c) for c in pot.tt.cores), "num_parameters": pot.num_parameters,
                   "bonds": [str(b) for b in pot.tt.bonds[1:-1]], "contraction": evaluation.contraction(pot),
                   "cpu_us_per_atom": us, "cpu_us_per_atom_sparse_contraction": {small: us_sparse},
                   "dense_flops_per_atom": evaluation.cost_counts(pot.tt)["dense_flops"],
                   "sparse_flops_per_atom": evaluation.cost_counts(pot.tt)["sparse_flops"], "dropped": len(rep["dropped"]), "refit_kept": kept_refit,
                   "validation": {q: ev[q] for q in ("energy", "forces")},
                   "test_reported_only": {q: te[q] for q in ("energy", "forces")}, "prune_seconds": t_prune}
            rows.append(row)
            print(f"{tol:>9g} {row['paths']:>5} {row['num_parameters']:>6} {row['contraction'][:6]:>6} "
                  + " ".join(f"{v:>10.1f}" for v in us.values()) + f" {us_sparse:>7.1f}"
                  + f" {ev['energy']['rmse']:>12.3f} {ev['forces']['rmse']:>10.4f} {str(kept_refit) if tol else '-':>6}  "
                  + "; ".join(row["bonds"]), flush=True)
    print("\ntest errors (reported only, not used for any choice):")
    for r in (r for r in rows if "refused" not in r):
        print(f"  tolerance {r['tolerance']:g}: E {r['test_reported_only']['energy']['rmse']:.3f} meV/atom, "
              f"F {r['test_reported_only']['forces']['rmse']:.4f} eV/Å")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"model": os.path.relpath(args.model, ROOT), "config": os.path.relpath(args.config, ROOT),
                   "n_train": len(train), "n_validation": len(val), "n_test": len(test),
                   "contribution_quantiles": dict(zip(map(str, qs), np.quantile(contrib, qs).tolist())),
                   "contributions_sorted": contrib.tolist(),
                   "rows": rows}, fh, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
