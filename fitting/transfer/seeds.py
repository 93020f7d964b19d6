"""The transfer proxy's errors over several draws of the data: the table of fitting/transfer/README.md.

    python fitting/transfer/run.py --variants resolved tie0.01 tie0.1 tie1 tie3 tie10 embedding --data-seed K \
        --save '' --out fitting/transfer/seeds/resolved_seedK.json      # K = 1, 2, 3 (0: results.json)
    python fitting/transfer/seeds.py > fitting/transfer/seeds.md

Each draw is a new random training set (elements and binaries) and new test cells (held-out
binaries, ternaries, quaternaries) of the same kind (``--data-seed``); draw 0 is the committed
``results.json``.  Per variant: every draw's test RMSE and the medians over the draws, with the
quaternary / binary ratios of the issue's target (<= 3).
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ["resolved", "tie0.01", "tie0.1", "tie1", "tie2", "tie3", "tie10", "embedding", "d4r2", "d4r2_tie2", "d4r32_tie2"]


def draws():
    out = {0: os.path.join(HERE, "results.json")}
    for k in range(1, 10):
        p = os.path.join(HERE, "seeds", f"resolved_seed{k}.json")
        if os.path.exists(p):
            out[k] = p
    return {k: json.load(open(p))["results"] for k, p in out.items()}


def main():
    res = draws()
    print("Test RMSE, energy meV/atom / forces eV/Å, of the alloy proxy's variants over draws "
          f"{', '.join(map(str, res))} of the data (`fitting/transfer/seeds.py`).\n")
    print("| variant | draw | binary (in domain) | ternary | quaternary | quaternary / binary (E, F) |")
    print("|---|---|---|---|---|---|")
    for v in VARIANTS:
        rows = [(k, r[v]) for k, r in res.items() if v in r]
        if not rows:
            continue
        a = []
        for k, r in rows:
            b, t, q = r["binary"], r["ternary"], r["quaternary"]
            a.append([b["energy_rmse"], b["forces_rmse"], t["energy_rmse"], t["forces_rmse"], q["energy_rmse"],
                      q["forces_rmse"]])
            print(f"| {v} | {k} | {b['energy_rmse']:.2f} / {b['forces_rmse']:.3f} | {t['energy_rmse']:.2f} / "
                  f"{t['forces_rmse']:.3f} | {q['energy_rmse']:.2f} / {q['forces_rmse']:.3f} | "
                  f"{q['energy_rmse'] / b['energy_rmse']:.2f}, {q['forces_rmse'] / b['forces_rmse']:.2f} |")
        a = np.array(a)
        m = np.median(a, axis=0)
        print(f"| **{v}** | **median of {len(rows)}** | **{m[0]:.2f} / {m[1]:.3f}** | **{m[2]:.2f} / {m[3]:.3f}** | "
              f"**{m[4]:.2f} / {m[5]:.3f}** | **{np.median(a[:, 4] / a[:, 0]):.2f}, {np.median(a[:, 5] / a[:, 1]):.2f}** |")


if __name__ == "__main__":
    main()
