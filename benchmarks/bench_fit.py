"""Fit speed: the same ALS fit with the code of an earlier commit and with the current code, side by side.

    python benchmarks/bench_fit.py --before 2316529                      # Zuo Si d4 r3 and InP d3 l1 r3
    python benchmarks/bench_fit.py --before 2316529 --cases si --configs 60 --sweeps 1   # a quick look
    python benchmarks/bench_fit.py --before 2316529 --cases si --threads 1 2             # thread scaling
    python benchmarks/bench_fit.py --before 2316529 --cases si --skip-before --workers 1 2   # Dask workers

For every case (a campaign config under ``fitting/``: ``si`` = ``zuo2020/Si_d4_r3.toml``, ``inp`` =
``inp/InP_d3_l1_r3.toml``) and every code version, one fresh Python process reads the split of the
config, fits ``--sweeps`` sweeps of the cores only (no radial or LM steps, energy and force rows,
the config's weights and ridge) on ``--threads`` BLAS threads, and reports: wall time of the fit,
peak memory (resident set of the process), time per phase (design rows + their QR, the solves,
validation and objective evaluations), and the test RMSE of energy (meV/atom) and forces (eV/Å).
The earlier commit is checked out into a temporary git worktree and imported from there, so both
versions run on the same machine in the same run.  Besides the wall time, the process's CPU time
(user + system) and minor page faults are reported: on a shared machine the CPU time is the
fairer comparison, and the wall-time ratio the one a user sees on an idle one.  Then the ratio ``before / now`` is printed, and
the recorded results are appended to ``benchmarks/results/fit.json``.

With ``--ace`` and a python-ace virtual environment (``fitting/peers/install.sh``, ``$PEERS/ace``),
the linear ACE fit of ``fitting/peers/fit_ace.py`` runs on the exported split of the same config.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"si": "fitting/zuo2020/Si_d4_r3.toml", "inp": "fitting/inp/InP_d3_l1_r3.toml"}

DRIVER = r"""
import json, os, resource, sys, time
from threadpoolctl import threadpool_limits
cfg_path, n_configs, sweeps, threads, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import etnpot, etnpot.chunks as C, etnpot.lstsq as LS, etnpot.fit as FIT
from etnpot.config import load_config
from etnpot.workflow import read_splits
from etnpot.metrics import error_table
phases = {}
def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
timed(C, "least_squares", "rows + QR")
timed(LS.LeastSquares, "add", "QR")
timed(LS.LeastSquares, "solve", "solves")
timed(C, "data_loss", "objective")
timed(FIT.ALSFitter, "errors", "validation")
cfg = load_config(cfg_path)
train, valid, test = read_splits(cfg)
if n_configs > 0:
    train = train[:n_configs]
m, f, w = cfg["model"], cfg["fit"], cfg["weights"]
keys = ("r_cut", "r_min", "order", "l_max", "rank", "n_basis", "n_channels", "species_rank", "o3", "bond_l_max")
kw = {k: m[k] for k in keys if m.get(k) is not None}
pot = etnpot.ETNPotential.random(m["species"], init=f["init"], noise=f["init_noise"], seed=f["seed"], **kw)
settings = FIT.FitSettings(sweeps=sweeps, ridge=f["ridge"], radial_steps=0, lm_steps=0, tol=-1.0, seed=f["seed"])
weights = FIT.Weights(energy=w["energy"], forces=w["forces"], stress=0.0)
with threadpool_limits(threads):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    client = None
    if workers:  # a LocalCluster of single-threaded worker processes (etnpot.distributed)
        from etnpot.distributed import start_client
        client = start_client("local", workers)
    fitter = FIT.ALSFitter(pot, train, valid, weights=weights, settings=settings, progress=False, client=client)
    fitter.run()
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    tab = error_table(pot, test)
phases["rows"] = phases.pop("rows + QR", 0.0) - phases.get("QR", 0.0)
print("RESULT " + json.dumps({
    "seconds": seconds, "cpu_user": r1.ru_utime - r0.ru_utime, "cpu_system": r1.ru_stime - r0.ru_stime,
    "minor_faults": r1.ru_minflt - r0.ru_minflt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "phases": phases, "num_parameters": pot.num_parameters, "n_train": len(train),
    "n_train_atoms": sum(len(c.atoms) for c in train),
    "test": {"energy_rmse": tab["energy"]["rmse"], "energy_mae": tab["energy"]["mae"],
             "forces_rmse": tab["forces"]["rmse"], "forces_mae": tab["forces"]["mae"]}}))
"""


def run_version(src, cfg, n_configs, sweeps, threads, workers=0):
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.setdefault("ETNPOT_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))
    p = subprocess.run([sys.executable, "-c", DRIVER, cfg, str(n_configs), str(sweeps), str(threads), str(workers)],
                       env=env, cwd=src, capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"fit with {src} failed:\n{p.stderr[-3000:]}")


def run_ace(cfg, functions=945):
    peers = os.environ.get("PEERS", os.path.join(ROOT, ".peers"))
    py = os.path.join(peers, "ace", "bin", "python")
    if not os.path.exists(py):
        return None, f"no python-ace environment at {os.path.dirname(os.path.dirname(py))} (fitting/peers/install.sh)"
    out = tempfile.mkdtemp(prefix="bench_fit_ace_")
    subprocess.run([sys.executable, os.path.join(ROOT, "fitting", "peers", "export_splits.py"), cfg, out], check=True)
    t0 = time.perf_counter()
    subprocess.run([py, os.path.join(ROOT, "fitting", "peers", "fit_ace.py"), "--data", out, "--functions",
                    str(functions), "--out", os.path.join(out, "ace")], check=True)
    with open(os.path.join(out, "ace.json")) as fh:
        res = json.load(fh)
    res["wall_seconds"] = time.perf_counter() - t0
    return res, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git commit of the code to compare with (e.g. 2316529)")
    ap.add_argument("--cases", nargs="+", default=["si", "inp"], choices=sorted(CASES))
    ap.add_argument("--configs", type=int, default=0, help="use only the first N training configurations (0: all)")
    ap.add_argument("--sweeps", type=int, default=2)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--skip-before", action="store_true", help="time the current code only")
    ap.add_argument("--workers", type=int, nargs="+", default=[],
                    help="also time the current code on local Dask clusters of these many workers (1 BLAS thread each)")
    ap.add_argument("--ace", action="store_true", help="also fit linear ACE where its environment exists")
    args = ap.parse_args()
    wt = tempfile.mkdtemp(prefix="etnpot_before_")
    if not args.skip_before:
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, args.before], check=True,
                       capture_output=True)
    records = []
    try:
        load = os.getloadavg()
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load[0]:.2f}")
        for case in args.cases:
            cfg = os.path.join(ROOT, CASES[case])
            for threads in args.threads:
                res = {}
                for label, src in ([] if args.skip_before else [("before", wt)]) + [("now", ROOT)]:
                    r = run_version(src, cfg, args.configs, args.sweeps, threads)
                    res[label] = r
                    ph = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(r["phases"].items()))
                    print(f"{case} {label:6s} threads={threads}: {r['seconds']:7.1f} s wall, CPU {r['cpu_user']:.1f} s user + "
                          f"{r['cpu_system']:.1f} s system, {r['minor_faults']} minor faults, peak {r['peak_mb']:6.0f} MB, "
                          f"{r['n_train']} configs / {r['n_train_atoms']} atoms, {r['num_parameters']} parameters; "
                          f"test RMSE E {r['test']['energy_rmse']:.3f} meV/atom F {r['test']['forces_rmse']:.4f} eV/Å; "
                          f"{ph}", flush=True)
                if "before" in res:
                    b, n = res["before"], res["now"]
                    cpu = lambda r: r["cpu_user"] + r["cpu_system"]
                    print(f"{case} threads={threads}: before/now wall {b['seconds'] / n['seconds']:.2f}x, "
                          f"CPU {cpu(b) / cpu(n):.2f}x, "
                          f"test RMSE now/before E {n['test']['energy_rmse'] / b['test']['energy_rmse']:.4f} "
                          f"F {n['test']['forces_rmse'] / b['test']['forces_rmse']:.4f}", flush=True)
                records.append({"case": case, "config": CASES[case], "threads": threads, "sweeps": args.sweeps,
                                "configs": args.configs, "before_commit": args.before, "load_at_start": load[0], **res})
            for workers in args.workers:
                r = run_version(ROOT, cfg, args.configs, args.sweeps, 1, workers)
                print(f"{case} now    workers={workers}: {r['seconds']:7.1f} s wall, peak (client) {r['peak_mb']:6.0f} MB; "
                      f"test RMSE E {r['test']['energy_rmse']:.3f} meV/atom F {r['test']['forces_rmse']:.4f} eV/Å", flush=True)
                records.append({"case": case, "config": CASES[case], "workers": workers, "sweeps": args.sweeps,
                                "configs": args.configs, "now": r})
            if args.ace:
                ace, why = run_ace(cfg)
                print(f"{case} linear ACE: " + (why or f"{ace['wall_seconds']:.1f} s wall, {json.dumps(ace.get('test', {}))}"))
                records[-1]["ace"] = ace or why
    finally:
        if not args.skip_before:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt], capture_output=True)
    path = os.path.join(ROOT, "benchmarks", "results", "fit.json")
    old = json.load(open(path)) if os.path.exists(path) else []
    with open(path, "w") as fh:
        json.dump(old + [{"date": time.strftime("%Y-%m-%d %H:%M"), "records": records}], fh, indent=1)


if __name__ == "__main__":
    main()
