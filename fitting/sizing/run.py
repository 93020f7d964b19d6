"""The README's recipe on thin data: a five-species EMT alloy set fitted as a new user would.

    python fitting/sizing/run.py [--atoms 1600 4800] [--each] [--out fitting/sizing/results.json]

For each training size, random fcc cells of Cu/Ag/Au/Ni/Pd labelled by ASE's EMT
(benchmarks/make_alloy_set.py: 32-atom cells, random occupation, strain and rattle; training
seed 0 for 1,600 atoms and 3 otherwise, test set of 1,600 atoms with seed 7) are fitted with
``etnpot fit`` and a config that names only the data, the species and the extxyz keys: the
defaults, including ``[fit] size_to_data`` (etnpot.sizing), which on thin data also fits lower
l_max and keeps the best on validation.  With ``--each`` every l_max (1 and 2) is also fitted on
its own with ``size_to_data = false``, so that the test errors of both candidates are reported
(the choice itself uses validation only).  Each fit runs in its own ``etnpot fit`` process on one
BLAS thread; the summary table goes to stdout and ``--out`` (JSON).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPECIES = ["Cu", "Ag", "Au", "Ni", "Pd"]

CONFIG = """[data]
train = ["{train}"]
test = ["test.xyz"]
energy_key = "REF_energy"
forces_key = "REF_forces"
stress_key = "REF_stress"
[model]
species = {species}
{model}
[fit]
size_to_data = {size}
{try_order4}[output]
model = "{name}.etn"
report = "{name}.json"
"""


def make_set(n_atoms, seed, path):
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "make_alloy_set.py"), "--atoms", str(n_atoms),
                        "--species", *SPECIES, "--seed", str(seed), "--out", path], check=True)


def fit(workdir, name, train, model="", size="true"):
    """Fit one config; ``size = "false"`` fits the named model alone (no smaller candidates and no
    order-4 alternative, ``try_order4 = false``), else the defaults choose among the candidates."""
    cfg = os.path.join(workdir, name + ".toml")
    try_order4 = "try_order4 = false\n" if size == "false" else ""
    with open(cfg, "w") as fh:
        fh.write(CONFIG.format(train=train, species=json.dumps(SPECIES), model=model, size=size, name=name,
                               try_order4=try_order4))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    t = time.perf_counter()
    subprocess.run(["etnpot", "fit", cfg, "-q"], check=True, env=env, cwd=workdir)
    with open(os.path.join(workdir, name + ".json")) as fh:
        report = json.load(fh)
    report["wall_seconds"] = time.perf_counter() - t
    return report


def row(label, rep):
    v, t = rep["validation"], rep["test"]
    return (f"| {label} | {rep['num_parameters']:,} | {v['energy']['rmse']:.2f} / {v['forces']['rmse']:.3f} | "
            f"{t['energy']['rmse']:.2f} / {t['forces']['rmse']:.3f} | {t['energy']['mae']:.2f} / {t['forces']['mae']:.3f} | "
            f"{rep['wall_seconds']:.0f} s |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--atoms", type=int, nargs="+", default=[1600, 4800])
    ap.add_argument("--each", action="store_true", help="also fit l_max 1 and 2 on their own (size_to_data = false)")
    ap.add_argument("--workdir", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    make_set(1600, 7, os.path.join(args.workdir, "test.xyz"))
    results, lines = {}, ["| training atoms, model | parameters | validation RMSE E / F | test RMSE E / F | "
                          "test MAE E / F | wall |", "|---|---|---|---|---|---|"]
    for n in args.atoms:
        train = f"train{n}.xyz"
        make_set(n, 0 if n == 1600 else 3, os.path.join(args.workdir, train))
        rep = fit(args.workdir, f"default{n}", train)
        results[f"default{n}"] = rep
        choice = rep.get("model_choice") or []
        kept = next((f"order {c.get('order', 3)}, l_max {c['l_max']}" for c in choice if c["kept"]), None)
        lines.append(row(f"{n:,}, defaults (kept {kept if kept is not None else 'the configured model'})", rep))
        for c in choice:
            lines.append(f"| {n:,}, candidate order {c.get('order', 3)}, l_max {c['l_max']}, rank {c.get('rank', 3)}"
                         f"{' (kept)' if c['kept'] else ''} | "
                         f"{c['num_parameters']:,} ({c['rows_per_parameter']:.2f} rows each) | "
                         f"{c['validation']['energy']['rmse']:.2f} / {c['validation']['forces']['rmse']:.3f} | | | "
                         f"{c['seconds']:.0f} s |")
        if args.each:
            for l_max in (1, 2):
                rep = fit(args.workdir, f"l{l_max}_{n}", train, model=f"l_max = {l_max}", size="false")
                results[f"l{l_max}_{n}"] = rep
                lines.append(row(f"{n:,}, l_max {l_max} alone", rep))
    print("\n".join(lines))
    with open(args.out, "w") as fh:
        json.dump({"table": lines, "reports": results}, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
