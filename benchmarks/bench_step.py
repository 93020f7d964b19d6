"""MD-step time of committed models with a given etnpot (this checkout or an export of an older
commit), for before/after comparisons of the evaluation, and an optional profile of the step.

    python benchmarks/bench_step.py [--etn-path DIR] [--atoms 8000] [--steps 15] [--profile] [--set species]
    python benchmarks/bench_step.py --set all --chunks 256 512 1024 2048 [--rounds 3]

For the InP 362-parameter model (zincblende InP) and the Zuo Si d4 model (diamond Si) (with
``--set species``: the four-species alloy proxy's models of ``fitting/transfer/models``, the
species-resolved one with 24 channels and the one compressed to 6, on a random CuAgAuNi fcc
cell, and the one-species model of the same ranks on the same lattice, ``fcc38``), a
rattled cell of about ``--atoms`` atoms with an :class:`etnpot.ETNCalculator` (neighbour list
reused, stress not asked): every step moves each atom by 0.001 Å (Gaussian) and asks for the
forces, as an MD step does.  Prints the median wall µs/atom of ``--steps`` steps after two
warm-up steps, one BLAS thread.  ``--etn-path`` puts another etnpot first on ``sys.path`` (run
the two alternately, pinned to one core, and compare the medians).  ``--profile`` prints the
``cProfile`` functions with the most own time over 20 steps of the InP model.  ``--chunks``
times each model with each fixed number of atoms per chunk, with the automatic choice
(:func:`etnpot.evaluation.chunk_atoms`, "auto") and with the settings of the code before it
("old": 256 atoms and numpy's per-species GEMMs for the species mixing, ``MIX_COMPILED_MAX`` 0),
interleaved over ``--rounds`` rounds in one process (so that the machine's drift hits every
variant alike), and prints the median over the rounds of each variant's median step and the
ratio auto / old.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = {"default": [("fitting/inp/InP_d3_l1_r2_b4.etn", "InP"), ("fitting/zuo2020/Si_d4_r3.etn", "Si")],
          "species": [("fitting/transfer/models/one_species_timing.etn", "fcc38"),
                      ("fitting/transfer/models/resolved_c6.etn", "CuAgAuNi"),
                      ("fitting/transfer/models/resolved.etn", "CuAgAuNi")]}
MODELS["all"] = MODELS["default"] + [("fitting/inp/InP_d3_l1_r3.etn", "InP"), ("fitting/inp/InP_d3_l2_b3.etn", "InP"),
                                     ("fitting/zuo2020/Cu_d3_r3.etn", "Cu")] + MODELS["species"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etn-path", default=None, help="directory holding the etnpot package to time")
    ap.add_argument("--atoms", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--set", choices=sorted(MODELS), default="default", help="which models to time")
    ap.add_argument("--chunks", type=int, nargs="*", default=None, help="fixed atoms per chunk to compare")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --chunks")
    args = ap.parse_args()
    if args.etn_path:
        sys.path.insert(0, os.path.abspath(args.etn_path))
    sys.path.insert(1, HERE)
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    import etnpot
    from peer_timing import make_cell

    print(f"etnpot from {os.path.dirname(etnpot.__file__)}")
    if args.chunks is not None:
        return compare_chunks(args, np, time, threadpool_limits, etnpot, make_cell)
    for path, cell in MODELS[args.set][:1] if args.profile else MODELS[args.set]:
        pot = etnpot.load(os.path.join(ROOT, path))
        atoms = make_cell(cell, args.atoms)
        atoms.calc = etnpot.ETNCalculator(pot, extrapolation="off")
        rng = np.random.default_rng(0)

        def step():
            atoms.positions += 0.001 * rng.standard_normal(atoms.positions.shape)
            atoms.get_forces()

        with threadpool_limits(1):
            step(), step()
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                for _ in range(20):
                    step()
                prof.disable()
                print(f"{os.path.basename(path)}, {len(atoms)} atoms, 20 steps:")
                pstats.Stats(prof).sort_stats("tottime").print_stats(12)
                continue
            ts = []
            for _ in range(args.steps):
                t = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t)
        print(f"{os.path.basename(path)} {len(atoms)} atoms: median {np.median(ts) / len(atoms) * 1e6:.2f} µs/atom "
              f"(min {np.min(ts) / len(atoms) * 1e6:.2f})", flush=True)


def compare_chunks(args, np, time, threadpool_limits, etnpot, make_cell):
    from etnpot import evaluation

    if not hasattr(evaluation, "chunk_atoms"):
        raise SystemExit("--chunks needs an etnpot whose evaluation chooses its chunk (evaluation.chunk_atoms)")
    auto = evaluation.chunk_atoms
    mix_on, mix_off = dict(evaluation.MIX_COMPILED_MAX), {False: 0, True: 0}
    for path, cell in MODELS[args.set]:
        pot = etnpot.load(os.path.join(ROOT, path))
        pot.chunk_size = max([pot.chunk_size] + list(args.chunks))  # the cap must not hide a fixed size
        atoms = make_cell(cell, args.atoms)
        atoms.calc = etnpot.ETNCalculator(pot, extrapolation="off")
        rng = np.random.default_rng(0)
        res = {}
        with threadpool_limits(1):
            for _ in range(args.rounds):
                for c in ["auto", "old"] + list(args.chunks):
                    evaluation.chunk_atoms = auto if c == "auto" else (lambda pot, ppa, c=256 if c == "old" else c: c)
                    evaluation.MIX_COMPILED_MAX = mix_off if c == "old" else mix_on
                    ts = []
                    for k in range(args.steps + 2):
                        atoms.positions += 0.001 * rng.standard_normal(atoms.positions.shape)
                        t = time.perf_counter()
                        atoms.get_forces()
                        if k >= 2:
                            ts.append(time.perf_counter() - t)
                    res.setdefault(c, []).append(np.median(ts) / len(atoms) * 1e6)
        evaluation.chunk_atoms, evaluation.MIX_COMPILED_MAX = auto, mix_on
        from etnpot.neighbors import build_graph

        g = build_graph([atoms], pot.basis.r_cut, pot.species_index)
        chosen = auto(pot, len(g.i) / g.n_atoms)
        print(f"{os.path.basename(path)} {len(atoms)} atoms, µs/atom (median of {args.rounds} rounds' medians): "
              + ", ".join(f"{c}{' (' + str(chosen) + ')' if c == 'auto' else ''} {np.median(v):.2f}"
                          for c, v in res.items())
              + f"; auto / old {np.median(np.array(res['auto']) / np.array(res['old'])):.2f} (median of the rounds' ratios)",
              flush=True)


if __name__ == "__main__":
    main()
