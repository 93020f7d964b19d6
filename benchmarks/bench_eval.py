"""Evaluation speed of the committed fits (issue 15): µs/atom of energy + forces, all variants in one run.

    python benchmarks/bench_eval.py [--sizes 1000 8000 27000] [--repeat 3] [--split] [--prune 0.7 1 2 6]

For the Zuo Si d4 model (fitting/zuo2020/Si_d4_r3.etn, diamond Si) and the InP d3 l_max 1 model
(fitting/inp/InP_d3_l1_r3.etn, zincblende InP), rattled cubic cells of 1,000 / 8,000 / 27,000
atoms, the median of ``--repeat`` calls (after a warm-up) of ``pot.compute(atoms, forces=True,
stress=False)`` (neighbour list included) for

* ``reference``: the block-sparse path (``pot.evaluation = "reference"``), 1 thread;
* ``fast``: :mod:`etnpot.evaluation` (contraction chosen per model, compiled pair kernels), 1 thread;
* ``fast numpy``: the same with the pair kernels' numpy reference (``ETNPOT_KERNELS=numpy``);
* ``fast f32``: the same with ``pot.to("numpy", "float32")``, 1 thread;
* ``fast 2thr``: the fast path with 2 BLAS threads;

and ASE's EMT on fcc Cu of the same sizes (the in-process peer; the MTP, ACE and GAP peers run
in their own virtual environments through benchmarks/bench_peers.py).  Ratios are printed side by side from the same run.  The 1-thread variants and EMT
are timed in wall time; run it on an idle machine.  (``--cpu`` times the 1-thread variants in
CPU time of this process, which other processes' preemption does not inflate, but which can
count the spinning of OpenBLAS's second thread under ``threadpool_limits(1)`` when the process
may use both cores; pinned to one core, ``taskset -c 1``, it cannot.)  ``--split`` prints the time of
each part of both paths at the first size; ``--prune`` the tolerance / µs-per-atom /
validation-error trade-off of :func:`etnpot.prune` on the Si model (needs the Zuo data:
``ETNPOT_DATA``).
"""
import argparse
import os
import platform
import time

import numpy as np
from ase.build import bulk
from threadpoolctl import threadpool_limits

import etnpot
from etnpot import evaluation

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {"Si d4 (Zuo)": os.path.join(HERE, "..", "fitting", "zuo2020", "Si_d4_r3.etn"),
          "InP d3 l1": os.path.join(HERE, "..", "fitting", "inp", "InP_d3_l1_r3.etn")}


def cell(kind, n):
    if kind == "Cu":
        k = round((n / 4) ** (1 / 3) / 2 ** (1 / 3))
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((k, k, round(n / (4 * k * k))))
    else:
        k = round((n / 8) ** (1 / 3))
        a = bulk(kind, "zincblende" if kind == "InP" else "diamond", a=5.87 if kind == "InP" else 5.43,
                 cubic=True).repeat((k, k, k))
    a.rattle(0.02, seed=0)
    return a


STAT = np.median  # --min: np.min


def median_time(fn, repeat, cpu=False):
    """Median (``--min``: smallest) wall seconds of ``fn`` (``cpu=True``: CPU seconds of this
    process, which a loaded machine inflates far less than wall time: preemption does not count).
    The minimum is the cost with the least interference from other work on the machine."""
    clock = time.process_time if cpu else time.perf_counter
    fn()
    ts = []
    for _ in range(repeat):
        t = clock()
        fn()
        ts.append(clock() - t)
    return float(STAT(ts))


def variants(path):
    """``(label, model, BLAS threads, pair kernels)`` of every timed variant."""
    ref = etnpot.load(path)
    ref.evaluation = "reference"
    fast = etnpot.load(path)
    f32 = etnpot.load(path).to("numpy", "float32")
    return [("reference", ref, 1, "numpy"), ("fast", fast, 1, "auto"), ("fast numpy", fast, 1, "numpy"),
            ("fast f32", f32, 1, "auto"), ("fast 2thr", fast, 2, "auto")]


def split(pot, atoms, repeat, cpu):
    """Seconds per atom of each part, both paths, 1 thread; the fast path's parts are timed on its
    own chunks (``evaluation.chunk_atoms`` atoms; ``evaluation.CHUNK`` in an older etnpot), "other"
    is its total (graph given) less the parts."""
    g = pot.graph(atoms)
    n = len(atoms)
    out = {"neighbour list, new search (vesin)": median_time(lambda: pot.graph(atoms), repeat, cpu) / n}
    try:
        from etnpot.neighbors import VerletList
    except ImportError:  # an older etnpot (PYTHONPATH) without the reused list
        VerletList = None
    if VerletList is not None:
        nl = VerletList(pot.r_cut, 1.0)
        nl.graph(atoms, pot.species_index)
        out["neighbour list, reused (skin 1 Å: vectors + filter)"] = median_time(
            lambda: nl.graph(atoms, pot.species_index), repeat, cpu) / n
    blocks, cache = pot.basis.compute(g)
    v, gx, _, _ = pot.tt.value_grad_envs(blocks)
    out["reference: features"] = median_time(lambda: pot.basis.compute(g), repeat, cpu) / n
    out["reference: contraction"] = median_time(lambda: pot.tt.value_grad_envs(blocks), repeat, cpu) / n
    out["reference: pull-back"] = median_time(lambda: pot.basis.pair_gradients(gx, cache), repeat, cpu) / n
    p = pot.copy()
    p.evaluation = "reference"
    out["reference: total (graph given)"] = median_time(lambda: p._compute_graph(g, True, False), repeat, cpu) / n
    W = evaluation.weights(pot.basis)
    first = np.searchsorted(g.i, np.arange(g.n_atoms + 1))
    size = evaluation.CHUNK
    if hasattr(evaluation, "chunk_atoms"):  # the size the evaluation itself takes
        size = min(evaluation.chunk_atoms(pot, len(g.i) / max(n, 1)), int(pot.chunk_size))
    chunks = [(s, min(n, s + size), int(first[s]), int(first[min(n, s + size)])) for s in range(0, n, size)]
    feats = [evaluation.features(pot.basis, g, *c, W) for c in chunks]
    xs = [np.concatenate([b.reshape(len(b), -1) for b in f[0]], axis=1) for f in feats]
    dt = evaluation.dense_tt(pot.tt, xs[0])
    grads = [dt.value_and_grad(x)[1] for x in xs]
    pos = np.cumsum([0] + [ir.dim * c for ir, c in pot.tt.inputs])
    gxs = [[gf[:, pos[f]:pos[f + 1]].reshape(fb[0][f].shape) for f in range(len(pos) - 1)] for gf, fb in zip(grads, feats)]
    gp = np.concatenate([evaluation.pair_gradients(pot.basis, gx, f[1], g.species[c[0]:c[1]], W)
                         for gx, f, c in zip(gxs, feats, chunks)])
    evaluation.compute_graph(pot, g, True, False)  # keep_freed_memory, caches
    fast = {"features": median_time(lambda: [evaluation.features(pot.basis, g, *c, W) for c in chunks], repeat, cpu) / n,
            "contraction (dense)": median_time(lambda: [dt.value_and_grad(x) for x in xs], repeat, cpu) / n,
            "pull-back": median_time(lambda: [evaluation.pair_gradients(pot.basis, gx, f[1], g.species[c[0]:c[1]], W)
                                              for gx, f, c in zip(gxs, feats, chunks)], repeat, cpu) / n,
            "forces: pair sums (bincount)": median_time(lambda: [np.bincount(g.i, gp[:, a], minlength=n) -
                                                                 np.bincount(g.j, gp[:, a], minlength=n)
                                                                 for a in range(3)], repeat, cpu) / n}
    total = median_time(lambda: evaluation.compute_graph(pot, g, True, False), repeat, cpu) / n
    out.update({f"fast: {k}": v for k, v in fast.items()})
    out["fast: other (Python, copies, bookkeeping)"] = total - sum(fast.values())
    out["fast: total (graph given)"] = total
    calc = etnpot.ETNCalculator(pot, extrapolation="off")
    a = atoms.copy()
    a.calc = calc
    rng = np.random.default_rng(0)

    def step():  # an MD-like step: every atom moved a little, the neighbour list reused
        a.positions += 0.001 * rng.standard_normal(a.positions.shape)
        a.get_forces()

    out["ETNCalculator step (forces; list reused, stress not asked)"] = median_time(step, repeat, cpu) / n
    return out


def prune_curve(tolerances, repeat):
    from etnpot.config import load_config
    from etnpot.objective import Weights
    from etnpot.prune import prune
    from etnpot.workflow import read_splits

    toml = os.path.join(HERE, "..", "fitting", "zuo2020", "Si_d4_r3.toml")
    cfg = load_config(toml)
    train, val, _ = read_splits(cfg)
    w = Weights(**{k: v for k, v in cfg["weights"].items() if k in ("energy", "forces", "stress")})
    atoms = cell("Si", 1000)
    print(f"\nprune trade-off, Si d4 (Zuo validation split, {len(val)} configurations; refit: one ALS sweep on "
          f"{len(train)} training configurations); 1 thread, CPU µs/atom at {len(atoms)} atoms")
    print(f"{'tolerance':>10} {'paths':>6} {'params':>7} {'contraction':>11} {'µs/atom':>8} {'E RMSE meV/at':>14} "
          f"{'F RMSE eV/Å':>12}  bonds")
    with threadpool_limits(1):
        for tol in [0.0] + list(tolerances):
            pot = etnpot.load(MODELS["Si d4 (Zuo)"])
            rep = prune(pot, val, tol, train=train, weights=w, ridge=cfg["fit"]["ridge"])
            us = median_time(lambda: pot.compute(atoms, forces=True, stress=False), repeat, True) / len(atoms) * 1e6
            e, f = rep["errors_after"]["energy"]["rmse"], rep["errors_after"]["forces"]["rmse"]
            print(f"{tol:>10g} {sum(len(c) for c in pot.tt.cores):>6} {rep['num_parameters']:>7} "
                  f"{evaluation.contraction(pot):>11} {us:>8.1f} {e:>14.3f} {f:>12.4f}  {'; '.join(rep['bonds'])}",
                  flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000, 27000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--cpu", action="store_true", help="CPU time of the 1-thread variants (default: wall time of "
                    "every variant; CPU time is robust to other load, but where the process may use both cores it "
                    "also counts OpenBLAS's idle second thread, which can spin under threadpool_limits(1))")
    ap.add_argument("--prune", type=float, nargs="*", default=None)
    ap.add_argument("--min", action="store_true", help="the smallest of --repeat times instead of the median")
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="names of MODELS to run")
    args = ap.parse_args()
    global STAT
    STAT = np.min if args.min else np.median
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    from ase.calculators.emt import EMT

    for name, path in ((m, MODELS[m]) for m in args.models):
        vs = variants(path)
        kind = "InP" if "InP" in name else "Si"
        print(f"\n{name}: {os.path.relpath(path)}, {vs[0][1].num_parameters} parameters, contraction "
              f"{evaluation.contraction(vs[1][1])} ({evaluation.cost_counts(vs[1][1].tt)})")
        if args.split:
            atoms = cell(kind, args.sizes[0])
            with threadpool_limits(1):
                for kernels in ("auto", "numpy"):
                    etnpot.kernels.MODE = kernels
                    for part, t in split(vs[1][1], atoms, args.repeat, args.cpu).items():
                        print(f"  split ({kernels} pair kernels) {part:<32} {t * 1e6:8.1f} µs/atom")
                etnpot.kernels.MODE = "auto"
        head = f"{'atoms':>7} " + " ".join(f"{v[0]:>11}" for v in vs) + f" {'EMT Cu':>9}  ratios: " + \
            " ".join(f"ref/{v[0]}" for v in vs[1:]) + " fast/EMT"
        print(head + ("   (µs/atom; CPU time, 2thr: wall)" if args.cpu else "   (µs/atom, wall)"))
        for n in args.sizes:
            atoms = cell(kind, n)
            ts = []
            for label, pot, th, kernels in vs:
                etnpot.kernels.MODE = kernels
                with threadpool_limits(th):
                    pot.threads = th
                    ts.append(median_time(lambda: pot.compute(atoms, forces=True, stress=False), args.repeat,
                                          args.cpu and th == 1) / len(atoms))
            etnpot.kernels.MODE = "auto"
            cu = cell("Cu", n)
            cu.calc = EMT()

            def emt():
                cu.calc.reset()
                cu.get_forces()

            with threadpool_limits(1):
                t_emt = median_time(emt, args.repeat, args.cpu) / len(cu)
            print(f"{len(atoms):>7} " + " ".join(f"{t * 1e6:>11.1f}" for t in ts) + f" {t_emt * 1e6:>9.1f}  ratios: " +
                  " ".join(f"{ts[0] / t:>{len(v[0]) + 4}.2f}" for t, v in zip(ts[1:], vs[1:])) +
                  f" {ts[1] / t_emt:>8.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.prune is not None:
        prune_curve(args.prune, args.repeat)


if __name__ == "__main__":
    main()
