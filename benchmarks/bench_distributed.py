"""Distributed fitting benchmark: the six Zuo et al. (2020) training sets pooled as one six-species fit.

    python benchmarks/bench_distributed.py [--data-dir DIR] [--workers 1 2] [--fractions 0.25 1.0] [--sweeps 1]

For every data fraction and number of workers, a fresh child process (so that its peak memory is
its own) starts a dask LocalCluster of single-threaded worker processes, builds FileChunks that
the *workers* count and read (the client never loads the data), sets E0 and the feature
normalization (reductions over the chunks) and runs ALS sweeps.  The table reports setup and
sweep wall times, the speedup over 1 worker and the client's peak RSS, which must not grow with
the number of configurations.

Data: mlearn JSON (Li, Mo, Si, Ge) and, for Cu and Ni whose training JSON is not in the snapshot,
the ACEData extended-XYZ conversion (extracted from ZuoEtAl2020.tar.gz into --workdir).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import time

ELEMENTS = ["Ni", "Cu", "Li", "Mo", "Si", "Ge"]


def data_files(data_dir, workdir):
    files = []
    tarpath = os.path.join(data_dir, "mlearn", "ACEData_minibenchmarks", "ZuoEtAl2020.tar.gz")
    for el in ELEMENTS:
        js = os.path.join(data_dir, "mlearn", "data", el, "training.json.xz")
        if os.path.exists(js):
            files.append((js, {}))
            continue
        out = os.path.join(workdir, f"{el}_train.xyz")
        if not os.path.exists(out):
            with tarfile.open(tarpath) as tar:
                member = tar.extractfile(f"ZuoEtAl2020/{el}_train.xyz")
                with open(out + ".tmp", "wb") as fh:
                    fh.write(member.read())
            os.replace(out + ".tmp", out)
        files.append((out, {"forces_key": "force"}))  # ACEData names the per-atom column "force"
    return files


def child(args):
    import etnpot
    from etnpot.chunks import FileChunk
    from etnpot.distributed import count_configurations, start_client
    from etnpot.fit import ALSFitter, FitSettings

    files = data_files(args.data_dir, args.workdir)
    client = start_client("local", args.n_workers)
    t0 = time.perf_counter()
    chunks, n_conf, n_atoms = [], 0, 0
    counts = client.gather([client.submit(count_configurations, p, r, pure=False) for p, r in files])
    for (path, reader), cnt in zip(files, counts):
        take = max(1, int(round(args.fraction * len(cnt))))
        cur, atoms = [], 0
        for i in range(take):
            cur.append(i)
            atoms += cnt[i]
            if atoms >= args.chunk_atoms:
                chunks.append(FileChunk(path, cur, reader))
                cur, atoms = [], 0
        if cur:
            chunks.append(FileChunk(path, cur, reader))
        n_conf += take
        n_atoms += sum(cnt[:take])
    pot = etnpot.ETNPotential.random(ELEMENTS, r_cut=5.0, r_min=1.5, order=args.order, l_max=args.l_max,
                                     rank=args.rank, n_basis=args.n_basis, species_rank=3, seed=0,
                                     init="constant", noise=1e-3)
    fitter = ALSFitter(pot, chunks, settings=FitSettings(sweeps=args.sweeps, ridge=1e-8, radial_steps=0,
                                                         chunk_atoms=args.chunk_atoms), client=client,
                       progress=False)
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    fitter.run()
    t_fit = time.perf_counter() - t1
    client.close()
    print(json.dumps({"fraction": args.fraction, "n_workers": args.n_workers, "n_configs": n_conf,
                      "n_atoms": int(n_atoms), "chunks": len(chunks), "parameters": pot.num_parameters,
                      "setup_s": t_setup, "fit_s": t_fit, "sweeps": len(fitter.history),
                      "objective": fitter.history[-1]["train_loss"],
                      "client_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data-dir", default=os.environ.get("ETNPOT_DATA", os.path.join(here, "..", "..", "shared", "data")))
    ap.add_argument("--workdir", default=os.path.join(os.path.expanduser("~"), ".cache", "etnpot-bench"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--sweeps", type=int, default=1)
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--l-max", type=int, default=1)
    ap.add_argument("--rank", type=int, default=2)
    ap.add_argument("--n-basis", type=int, default=4)
    ap.add_argument("--chunk-atoms", type=int, default=4000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--n-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    if args.child:
        return child(args)
    rows = []
    for frac in args.fractions:
        base = None
        for nw in args.workers:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--fraction", str(frac), "--n-workers", str(nw),
                   "--data-dir", args.data_dir, "--workdir", args.workdir, "--sweeps", str(args.sweeps),
                   "--order", str(args.order), "--l-max", str(args.l_max), "--rank", str(args.rank),
                   "--n-basis", str(args.n_basis), "--chunk-atoms", str(args.chunk_atoms)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                sys.stderr.write(out.stderr[-3000:])
                raise SystemExit(out.returncode)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r["fit_s"]
            r["speedup"] = base / r["fit_s"]
            rows.append(r)
            print(f"fraction {frac:4.2f}: {r['n_configs']:5d} configs, {r['n_atoms']:6d} atoms, {r['chunks']:3d} chunks, "
                  f"{nw} worker(s): setup {r['setup_s']:6.1f} s, {r['sweeps']} sweep(s) {r['fit_s']:7.1f} s "
                  f"(speedup {r['speedup']:.2f}), client peak RSS {r['client_peak_mb']:.0f} MB", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
