"""Evaluation speed of etnpot against MTP (motep's engines), linear ACE, GAP and EMT, in one run.

    python benchmarks/bench_peers.py --peers .peers --models fitting/peers/models [--quick]

Every code evaluates energy+forces on the same rattled bulk cells through ``peer_timing.py``,
each in its own virtual environment (made by ``fitting/peers/install.sh``), one process per code
and model, one after another, so all share the same machine state. Peers run single-threaded
(``OMP_NUM_THREADS=1``, as motep's C engine and python-ace are); etnpot is measured both with one
BLAS thread and with all cores. The models are those fitted by the campaigns
(``fitting/zuo2020``, ``fitting/inp``) and by ``fitting/peers`` on the same splits, so the
accuracy of each is in those tables. Sizes run from 64 to 27,000 atoms (8,000 for GAP and the
slow MTP engines; ``benchmarks/bench_scaling.py`` takes etnpot alone to 1e5). Prints per-atom
times, the ratio of etnpot's time (one thread) to each code's at each size, and the scaling
exponent (slope of log time vs log atoms over the sizes >= 1,000 atoms); writes everything to
``--json``.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def mtp_with_species(src, n_species, out):
    """A copy of the MLIP ``.mtp`` file ``src`` (one species) for ``n_species`` species: the radial
    coefficients of the one pair repeated for every pair, the species constant for every species.
    The cost of an MTP evaluation does not depend on the values of its coefficients, so this
    times a ``n_species`` MTP of the same level (it is not a fitted model)."""
    lines = open(src).read().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip() == "radial_coeffs")
    n_funcs = int(next(ln for ln in lines if ln.strip().startswith("radial_funcs_count")).split("=")[1])
    block = lines[i + 2 : i + 2 + n_funcs]
    pairs = []
    for a in range(n_species):
        for b in range(n_species):
            pairs += [f"\t\t{a}-{b}"] + block
    body = lines[: i + 1] + pairs + lines[i + 2 + n_funcs :]
    for k, ln in enumerate(body):
        if ln.startswith("species_count"):
            body[k] = f"species_count = {n_species}"
        if ln.startswith("species_coeffs"):
            c = ln.split("{")[1].split("}")[0]
            body[k] = "species_coeffs = {" + ", ".join([c] * n_species) + "}"
    with open(out, "w") as fh:
        fh.write("\n".join(body) + "\n")
    return out


def runs(peers, models, quick):
    """(label, python, code, model, cell, sizes, threads) for every measurement."""
    main_py = sys.executable
    small = [64, 1000, 8000]
    large = small + ([] if quick else [27000])
    m = lambda name: os.path.join(models, name)
    z = lambda name: os.path.join(ROOT, "fitting", name)
    mtp = os.path.join(peers, "motep", "bin", "python")
    ace = os.path.join(peers, "ace", "bin", "python")
    gap = os.path.join(peers, "gap", "bin", "python")
    out = [
        ("ETN d3 r3 (847 p)", main_py, "etn", z("zuo2020/Si_d3_r3.etn"), "Si", large, 1),
        ("ETN d4 r3 (1468 p)", main_py, "etn", z("zuo2020/Si_d4_r3.etn"), "Si", large, 1),
        ("ETN d4 r3 (1468 p), 2 threads", main_py, "etn", z("zuo2020/Si_d4_r3.etn"), "Si", large, 2),
        ("ETN d4 r3 (1468 p), + stress", main_py, "etn+stress", z("zuo2020/Si_d4_r3.etn"), "Si", large, 1),
        ("MTP level 10, cext", mtp, "mtp-cext", m("Si_mtp10.mtp"), "Si", large, 1),
        ("MTP level 16, cext", mtp, "mtp-cext", m("Si_mtp16.mtp"), "Si", large, 1),
        ("MTP level 16, numba", mtp, "mtp-numba", m("Si_mtp16.mtp"), "Si", small, 1),
        ("MTP level 16, numpy", mtp, "mtp-numpy", m("Si_mtp16.mtp"), "Si", small[:2], 1),
        ("linear ACE 300", ace, "ace", m("Si_ace300.yace"), "Si", large, 1),
        ("linear ACE 945", ace, "ace", m("Si_ace1000.yace"), "Si", large, 1),
        ("GAP 500 sparse", gap, "gap", m("Si_gap500.xml"), "Si", small, 1),
        ("GAP 2000 sparse", gap, "gap", m("Si_gap2000.xml"), "Si", small, 1),
        ("ETN d3 r3 (847 p)", main_py, "etn", z("zuo2020/Cu_d3_r3.etn"), "Cu", large, 1),
        ("ASE EMT", main_py, "emt", None, "Cu", large, 1),
        ("ETN d3 r3 (InP)", main_py, "etn", z("inp/InP_d3_r3.etn"), "InP", large, 1),
        ("ETN d3 l1 r3 (InP)", main_py, "etn", z("inp/InP_d3_l1_r3.etn"), "InP", large, 1),
        ("ETN d3 l2 r3 b3 (InP, 902 p)", main_py, "etn", z("inp/InP_d3_l2_b3.etn"), "InP", large, 1),
        ("ETN d3 l1 r2 b4 (InP, 362 p)", main_py, "etn", z("inp/InP_d3_l1_r2_b4.etn"), "InP", large, 1),
        ("ETN d4 l2 r322 b3 (InP, 982 p)", main_py, "etn", z("inp/InP_d4_l2_r322_b3.etn"), "InP", large, 1),
        ("MTP level 10, cext", mtp, "mtp-cext", m("InP_mtp10.mtp"), "InP", large, 1),
        ("linear ACE 300", ace, "ace", m("InP_ace150.yace"), "InP", large, 1),
        ("linear ACE 1000", ace, "ace", m("InP_ace500.yace"), "InP", large, 1),
        ("GAP 1000 sparse", gap, "gap", m("InP_gap500.xml"), "InP", small, 1),
    ]
    # four species (issue 15): the alloy proxy's models (fitting/transfer/run.py --compress 6 12)
    # against a one-species model of the same ranks and a four-species MTP of level 16
    t = lambda name: z(f"transfer/models/{name}.etn")
    mtp4 = os.path.join(HERE, "results", "mtp16_4species.mtp")
    if os.path.exists(m("Si_mtp16.mtp")):
        mtp_with_species(m("Si_mtp16.mtp"), 4, mtp4)
    etn_l2 = os.path.join(HERE, "results", "timing_d3_l2_r3_4species.etn")
    if not os.path.exists(etn_l2):  # the l_max-2 model of the alloy set (4,864 parameters): its shape
        import etnpot                # sets the cost, so a random one of that shape times it

        etnpot.ETNPotential.random(["Cu", "Ag", "Au", "Ni"], r_cut=5.0, r_min=1.5, order=3, l_max=2, rank=3).save(etn_l2)
    out += [
        ("ETN d3 l1 r3, 4 species, 24 channels", main_py, "etn", t("resolved"), "CuAgAuNi", large, 1),
        ("ETN d3 l2 r3, 4 species, 24 channels (4864 p)", main_py, "etn", etn_l2, "CuAgAuNi", large, 1),
        ("ETN the same, compressed to 12 channels", main_py, "etn", t("resolved_c12"), "CuAgAuNi", large, 1),
        ("ETN the same, compressed to 6 channels", main_py, "etn", t("resolved_c6"), "CuAgAuNi", large, 1),
        ("MTP level 16, 4 species, cext", mtp, "mtp-cext", mtp4, "CuAgAuNi", large, 1),
        ("ETN d3 l1 r3, 1 species, 6 channels", main_py, "etn", t("one_species_timing"), "fcc38", large, 1),
        ("MTP level 16, 1 species, cext", mtp, "mtp-cext", m("Si_mtp16.mtp"), "fcc38", large, 1),
    ]
    return out


REFERENCE = {"Si": "ETN d4 r3 (1468 p)", "Cu": "ETN d3 r3 (847 p)", "InP": "ETN d3 r3 (InP)",
             "CuAgAuNi": "ETN the same, compressed to 6 channels", "fcc38": "ETN d3 l1 r3, 1 species, 6 channels"}


def measure(label, python, code, model, cell, sizes, threads, repeat, pythonpath=None):
    if model and not os.path.exists(model):
        print(f"  skipped {label}: {model} not found", flush=True)
        return []
    if not os.path.exists(python):
        print(f"  skipped {label}: no environment {python}", flush=True)
        return []
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = str(threads)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    stress = code.endswith("+stress")
    code = code.removesuffix("+stress")
    cmd = [python, os.path.join(HERE, "peer_timing.py"), "--code", code, "--cell", cell, "--repeat", str(repeat),
           "--threads", str(threads),
           "--atoms", *map(str, sizes)] + (["--model", model] if model else []) + (["--stress"] if stress else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        print(f"  FAILED {label}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return []
    rows = [json.loads(ln) | {"label": label, "threads": threads} for ln in proc.stdout.splitlines() if ln.startswith("{")]
    for r in rows:
        print(f"  {cell:4s} {label:32s} {r['n_atoms']:7d} atoms  {r['median_s'] * 1e6 / r['n_atoms']:9.1f} µs/atom"
              f"  (median {r['median_s']:.4g} s, CPU {r.get('median_cpu_s', float('nan')) * 1e6 / r['n_atoms']:.1f} "
              f"µs/atom, peak {r['peak_rss_mb']:.0f} MB)", flush=True)
    return rows


def exponent(rows):
    pts = [(r["n_atoms"], r["median_s"]) for r in rows if r["n_atoms"] >= 1000]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default=os.path.join(ROOT, ".peers"), help="folder of the peer venvs (install.sh)")
    ap.add_argument("--models", default=os.path.join(ROOT, "fitting", "peers", "models"), help="fitted peer models")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="sizes up to 8,000 atoms only")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "peers.json"))
    ap.add_argument("--cells", nargs="+", default=None, help="only these cells (Si, Cu, InP)")
    ap.add_argument("--only", nargs="+", default=None, help="only runs whose label contains one of these strings "
                    "(the cell's reference ETN run is always kept)")
    ap.add_argument("--rounds", type=int, default=1, help="measure every code this many times, interleaved; "
                    "report the median over rounds")
    ap.add_argument("--etn-path", default=None, help="PYTHONPATH for the etnpot runs (e.g. an export of an older "
                    "commit, to time it side by side as 'before')")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    raw = []
    for rnd in range(args.rounds):
        if args.rounds > 1:
            print(f"round {rnd + 1} of {args.rounds} (load average {os.getloadavg()[0]:.2f})", flush=True)
        for spec in runs(args.peers, args.models, args.quick):
            label, cell = spec[0], spec[4]
            if args.cells and cell not in args.cells:
                continue
            if args.only and label != REFERENCE[cell] and not any(o in label for o in args.only):
                continue
            raw += [r | {"round": rnd} for r in measure(*spec, repeat=args.repeat)]
            if args.etn_path and spec[2] == "etn" and label == REFERENCE[cell]:
                raw += [r | {"round": rnd} for r in measure(label + " (before)", *spec[1:], repeat=args.repeat,
                                                             pythonpath=args.etn_path)]
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    # with several rounds (every code once per round, interleaved, so that a change of the
    # machine's load hits all codes alike): the median over rounds of each code's median
    rows = []
    for key in dict.fromkeys((r["cell"], r["label"], r["n_atoms"]) for r in raw):
        rs = [r for r in raw if (r["cell"], r["label"], r["n_atoms"]) == key]
        agg = dict(rs[0])
        for q in ("median_s", "median_cpu_s"):
            vals = [r[q] for r in rs if r.get(q) is not None]
            agg[q] = float(np.median(vals)) if vals else None
        agg["rounds"] = [r["median_s"] for r in rs]
        rows.append(agg)
        if args.rounds > 1:
            print(f"  {key[0]:4s} {key[1]:32s} {key[2]:7d} atoms  median over {len(rs)} rounds "
                  f"{agg['median_s'] * 1e6 / key[2]:9.1f} µs/atom  (rounds: "
                  + ", ".join(f"{v * 1e6 / key[2]:.1f}" for v in agg["rounds"]) + ")")
    # ratio ETN time / peer time at each size (<= 1: etnpot is faster), against the ETN model of
    # each cell whose accuracy is comparable to the peers' (see fitting/peers/README.md)
    print("\nETN time / peer time (<= 1: etnpot faster), and scaling exponent over the sizes >= 1,000 atoms:")
    summary = []
    for cell in dict.fromkeys(r["cell"] for r in rows):
        ref = {r["n_atoms"]: r["median_s"] for r in rows if r["cell"] == cell and r["label"] == REFERENCE[cell]}
        for label in dict.fromkeys(r["label"] for r in rows if r["cell"] == cell):
            mine = [r for r in rows if r["cell"] == cell and r["label"] == label]
            ratios = {r["n_atoms"]: ref[r["n_atoms"]] / r["median_s"] for r in mine if r["n_atoms"] in ref}
            ref_cpu = {r["n_atoms"]: r.get("median_cpu_s") for r in rows if r["cell"] == cell and r["label"] == REFERENCE[cell]}
            cpu_ratios = {r["n_atoms"]: ref_cpu[r["n_atoms"]] / r["median_cpu_s"] for r in mine
                          if ref_cpu.get(r["n_atoms"]) and r.get("median_cpu_s")}
            e = exponent(mine)
            summary.append({"cell": cell, "label": label, "reference": REFERENCE[cell], "etn_over_peer": ratios,
                            "etn_over_peer_cpu": cpu_ratios,
                            "exponent": e, "peak_rss_mb": max(r["peak_rss_mb"] for r in mine)})
            print(f"  {cell:4s} {label:32s} " + "  ".join(f"{n}: {v:6.2f}" for n, v in ratios.items())
                  + (f"   exponent {e:.3f}" if e is not None else "")
                  + ("   CPU: " + "  ".join(f"{n}: {v:6.2f}" for n, v in cpu_ratios.items()) if cpu_ratios else ""))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"rows": rows, "summary": summary, "raw": raw}, fh, indent=1)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
