"""Ratios of two codes' times from a ``bench_peers.py --rounds K`` JSON, round by round.

    python benchmarks/round_ratios.py benchmarks/results/peers_inp_fifth.json --against "MTP level 10"
    python benchmarks/round_ratios.py benchmarks/results/peers_species_fifth.json --against "1 species"

For every label and cell size: the median over the rounds of the label's µs/atom, and the median
(min-max) over the rounds of its time divided by the time of the ``--against`` label (the first
label containing that string) *in the same round*.  Codes measured in the same round saw the same
state of the machine, so this ratio drifts less than the ratio of two medians taken over rounds.
"""
import argparse
import collections
import json

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--against", required=True, help="a string of the reference label")
    args = ap.parse_args()
    raw = json.load(open(args.json))["raw"]
    t = collections.defaultdict(dict)  # (round, size) -> label -> µs/atom
    for r in raw:
        t[(r["round"], r["n_atoms"])][r["label"]] = r["median_s"] / r["n_atoms"] * 1e6
    labels = list(dict.fromkeys(r["label"] for r in raw))
    ref = next(lab for lab in labels if args.against in lab)
    sizes = sorted({r["n_atoms"] for r in raw if r["label"] == ref})
    rounds = sorted({r["round"] for r in raw})
    print(f"reference: {ref}; {len(rounds)} rounds")
    print("| label | " + " | ".join(f"{n:,} atoms: µs/atom, ratio" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for lab in labels:
        cells = []
        for n in sizes:
            rows = [t[(k, n)] for k in rounds if lab in t[(k, n)] and ref in t[(k, n)]]
            if not rows:
                cells.append("")
                continue
            us = np.median([r[lab] for r in rows])
            q = [r[lab] / r[ref] for r in rows]
            cells.append(f"{us:.1f}, {np.median(q):.2f} ({min(q):.2f}-{max(q):.2f})")
        print(f"| {lab} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
