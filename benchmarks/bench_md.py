"""NVE stability of fitted models: energy drift and extrapolation warnings in 10 ps of MD.

    python benchmarks/bench_md.py [--ps 10] [--dt 1.0] [--models Si:fitting/zuo2020/Si_d4_r3.etn ...]

For each model: a >= 500-atom crystal (diamond Si 4x4x4 = 512 atoms, fcc Cu 5x5x5 = 500 atoms)
is given Maxwell-Boltzmann velocities at 2T (equipartition brings it to about T) and run with
velocity Verlet for ``--ps`` picoseconds.  Two temperatures: 300 K and 0.8 of the melting
temperature (Si 1687 K, Cu 1358 K).  Reported: the total-energy drift (slope of a linear fit,
meV/atom/ps), the largest deviation from the start, the mean temperature, the fraction of sampled
steps (every 10th) whose maximum extrapolation grade exceeds the threshold, and ms per step.
Models without an active set get one from their training data (``--data-dir``).

    python benchmarks/bench_md.py --timing [--steps 200] [--skins 0 0.5 1 2] [--repeats 4 8]

times velocity Verlet (1 fs, no grades) on the Si model with the calculator's neighbour-list skin
``0`` (a new search every step, the path before the reused list) and the others: CPU and wall
ms per step after 10 warm-up steps (the skins' runs advance in turns of 25 steps; medians over
the turns), and how many searches were made, at 300 K and 1,350 K, on diamond cells of
8 * repeat^3 atoms.  Positions and forces are compared at the last step against
the skin-0 run (the trajectories are the same to rounding; its growth over the steps is printed).
"""
import argparse
import inspect
import json
import os
import time

import numpy as np
from ase import units
from ase.build import bulk
from etnpot.md import thermalize
from ase.md.verlet import VelocityVerlet
from threadpoolctl import threadpool_limits

import etnpot
from etnpot.grade import extrapolation_grades, fit_active_set

T_MELT = {"Si": 1687.0, "Cu": 1358.0}
CELLS = {"Si": lambda: bulk("Si", "diamond", a=5.43, cubic=True).repeat(4),
         "Cu": lambda: bulk("Cu", "fcc", a=3.62, cubic=True).repeat(5)}
TRAIN = {"Si": "mlearn/data/Si/training.json.xz",
         "Cu": "mlearn/ACEData_minibenchmarks/ZuoEtAl2020.tar.gz::ZuoEtAl2020/Cu_train.xyz"}


def run(pot, element, T, ps, dt, threshold, seed=0):
    atoms = CELLS[element]()
    atoms.calc = etnpot.ETNCalculator(pot, extrapolation="off")
    thermalize(atoms, 2 * T, rng=seed)
    dyn = VelocityVerlet(atoms, dt * units.fs)
    n_steps = int(round(ps * 1000 / dt))
    times, etot, temps, flagged, sampled = [], [], [], 0, 0
    t0 = time.perf_counter()
    for step in range(0, n_steps + 1, 10):
        if step:
            dyn.run(10)
        etot.append(atoms.get_total_energy() / len(atoms))
        temps.append(atoms.get_temperature())
        times.append(step * dt / 1000.0)
        if pot.active_set is not None:
            g = extrapolation_grades(pot, atoms).max()
            flagged += g > threshold
            sampled += 1
        if not np.isfinite(etot[-1]) or abs(etot[-1] - etot[0]) > 1.0:
            break  # blow-up
    wall = time.perf_counter() - t0
    etot = np.array(etot)
    slope = np.polyfit(times, etot, 1)[0] * 1000.0 if len(times) > 2 else float("nan")
    return {"element": element, "T_target": T, "atoms": len(atoms), "ps": times[-1], "steps": len(times) * 10 - 10,
            "drift_meV_per_atom_per_ps": float(slope), "max_dev_meV_per_atom": float(np.abs(etot - etot[0]).max() * 1000),
            "mean_T": float(np.mean(temps[len(temps) // 5:])), "extrapolation_fraction": flagged / max(sampled, 1),
            "ms_per_step": wall / max(1, len(times) * 10 - 10) * 1000, "blew_up": bool(times[-1] < ps - 1e-9)}


def timing(path, steps, skins, repeats, dt=1.0, block=25):
    """ms/step of velocity Verlet for each skin.  The runs of one cell and temperature advance
    side by side, ``block`` steps at a time in turn, so that a change of the machine's load hits
    every skin alike; per skin the median over blocks of CPU ms/step is reported."""
    rows = []
    pot = etnpot.load(path)
    # an etnpot without the reused list (an older commit on PYTHONPATH) searches every step
    reuse = "skin" in inspect.signature(etnpot.ETNCalculator).parameters
    for rep in repeats:
        for T in (300.0, 0.8 * T_MELT["Si"]):
            runs = []
            for skin in skins:
                atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(rep)
                calc = etnpot.ETNCalculator(pot, extrapolation="off", **({"skin": skin} if reuse else {}))
                atoms.calc = calc
                thermalize(atoms, 2 * T, rng=0)
                dyn = VelocityVerlet(atoms, dt * units.fs)
                dyn.run(10)
                builds = (lambda c=calc: c.neighbors.n_builds) if reuse else (lambda c=calc: c.n_calls)
                runs.append({"skin": skin, "atoms": atoms, "dyn": dyn, "builds": builds, "b0": builds(),
                             "cpu": [], "wall": []})
            for _ in range(max(1, steps // block)):
                for r in runs:
                    c0, w0 = time.process_time(), time.perf_counter()
                    r["dyn"].run(block)
                    r["cpu"].append((time.process_time() - c0) / block * 1e3)
                    r["wall"].append((time.perf_counter() - w0) / block * 1e3)
            ref = runs[0]["atoms"].positions, runs[0]["atoms"].get_forces()
            for r in runs:
                atoms = r["atoms"]
                f = atoms.get_forces()
                dx = float(np.abs(atoms.positions - ref[0]).max())
                df = float(np.abs(f - ref[1]).max() / np.abs(ref[1]).max())
                n_steps = block * len(r["cpu"])
                row = {"atoms": len(atoms), "T_target": T, "skin": r["skin"], "steps": n_steps,
                       "cpu_ms_per_step": float(np.median(r["cpu"])), "wall_ms_per_step": float(np.median(r["wall"])),
                       "cpu_ms_per_step_blocks": r["cpu"], "searches": r["builds"]() - r["b0"],
                       "etnpot": os.path.dirname(etnpot.__file__), "max_position_diff_A": dx,
                       "max_force_diff_rel": df}
                rows.append(row)
                print(f"{len(atoms):>6} atoms {T:>6.0f} K skin {r['skin']:>4g} Å: {row['cpu_ms_per_step']:8.2f} CPU "
                      f"ms/step ({row['wall_ms_per_step']:8.2f} wall; medians of {len(r['cpu'])} blocks of {block}), "
                      f"{row['searches']:>4} searches in {n_steps} steps; vs skin {skins[0]:g}: positions {dx:.1e} Å, "
                      f"forces {df:.1e} relative", flush=True)
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--ps", type=float, default=10.0)
    ap.add_argument("--dt", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--data-dir", default=os.environ.get("ETNPOT_DATA", os.path.join(here, "..", "..", "shared", "data")))
    ap.add_argument("--models", nargs="+", default=[f"Si:{here}/../fitting/zuo2020/Si_d4_r3.etn",
                                                    f"Cu:{here}/../fitting/zuo2020/Cu_d3_r3.etn"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--timing", action="store_true", help="ms/step against the neighbour-list skin (Si model)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--skins", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    ap.add_argument("--repeats", type=int, nargs="+", default=[4, 8])
    args = ap.parse_args()
    if args.timing:
        print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
        with threadpool_limits(1):
            rows = timing(args.models[0].split(":", 1)[1], args.steps, args.skins, args.repeats, args.dt)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
        return
    rows = []
    for spec in args.models:
        element, path = spec.split(":", 1)
        pot = etnpot.load(path)
        if pot.active_set is None:
            from etnpot.data import read_dataset

            kw = {"forces_key": "force"} if "::" in TRAIN[element] else {}
            fit_active_set(pot, read_dataset(os.path.join(args.data_dir, TRAIN[element]), **kw))
        for T in (300.0, 0.8 * T_MELT[element]):
            r = run(pot, element, T, args.ps, args.dt, args.threshold)
            rows.append(r)
            print(f"{element} {os.path.basename(path)} T={T:.0f} K: {r['atoms']} atoms, {r['ps']:.1f} ps, "
                  f"drift {r['drift_meV_per_atom_per_ps']:+.4f} meV/atom/ps (max dev {r['max_dev_meV_per_atom']:.3f}), "
                  f"<T> {r['mean_T']:.0f} K, grade>{args.threshold:g} in {100 * r['extrapolation_fraction']:.1f} % of "
                  f"sampled steps, {r['ms_per_step']:.1f} ms/step{' BLOW-UP' if r['blew_up'] else ''}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
