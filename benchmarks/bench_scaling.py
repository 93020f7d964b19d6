"""Evaluation cost vs number of atoms: linear scaling and bounded memory (issue 5).

    python benchmarks/bench_scaling.py [--sizes 100 1000 10000 100000] [--threads 1 2]

fcc Cu, r_cut = 5 Å, energy + forces, for two ETN model sizes (small: d=3, l_max=2, rank 3;
reference: d=4, l_max=3, rank 8) and ASE's EMT as the peer measured in the same run.  Each
(model, size, threads) point runs in a fresh child process (peak RSS is its own): median of 3
calls after a warm-up.  Prints µs/atom, the scaling exponent (slope of log time vs log atoms
from 1e3 to 1e5) and the peak RSS, which must grow linearly at most (evaluation is chunked
over atoms).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

MODELS = {"small": dict(order=3, l_max=2, rank=3, n_basis=6), "reference": dict(order=4, l_max=3, rank=8, n_basis=8)}


def cell(n):
    from ase.build import bulk

    k = max(1, round((n / 4) ** (1 / 3)))
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((k, k, max(1, round(n / (4 * k * k)))))
    a.rattle(0.02, seed=0)
    return a


def child(model, n, threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        atoms = cell(n)
        if model == "EMT":
            from ase.calculators.emt import EMT

            atoms.calc = EMT()

            def call():
                atoms.calc.reset()
                atoms.get_forces()
        else:
            import etnpot

            pot = etnpot.ETNPotential.random(["Cu"], r_cut=5.0, seed=0, noise=0.3, **MODELS[model])
            pot.basis.normalize(pot.graph([cell(500)]))

            def call():
                pot.compute(atoms, forces=True, stress=False)

        call()
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            call()
            ts.append(time.perf_counter() - t)
    print(json.dumps({"model": model, "atoms": len(atoms), "threads": threads, "seconds": float(np.median(ts)),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    ap.add_argument("--models", nargs="+", default=["small", "reference", "EMT"])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), int(args.child[2]))
    rows = []
    for model in args.models:
        for th in args.threads:
            pts = []
            for n in args.sizes:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", model, str(n), str(th)],
                                     capture_output=True, text=True)
                if out.returncode:
                    sys.stderr.write(out.stderr[-2000:])
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(r)
                pts.append(r)
                print(f"{model:>9} {th} thread(s) {r['atoms']:>7} atoms: {r['seconds'] * 1e3:9.1f} ms "
                      f"({r['seconds'] / r['atoms'] * 1e6:7.1f} µs/atom), peak RSS {r['peak_mb']:7.0f} MB", flush=True)
            big = [p for p in pts if p["atoms"] >= 900]
            if len(big) >= 2:
                slope = np.polyfit(np.log([p["atoms"] for p in big]), np.log([p["seconds"] for p in big]), 1)[0]
                print(f"{model:>9} {th} thread(s): scaling exponent {slope:.3f} (from {big[0]['atoms']} to {big[-1]['atoms']} atoms)")
    ref = {(r["atoms"], r["threads"]): r["seconds"] for r in rows if r["model"] == "EMT"}
    for r in rows:
        if r["model"] != "EMT" and (r["atoms"], r["threads"]) in ref:
            print(f"ratio {r['model']}/EMT at {r['atoms']} atoms, {r['threads']} thread(s): "
                  f"{r['seconds'] / ref[(r['atoms'], r['threads'])]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
