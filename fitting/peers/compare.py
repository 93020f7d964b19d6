"""One table (and plot) of etnpot against the peers fitted on the same split.

    python fitting/peers/compare.py Si fitting/zuo2020/Si_d3_r3.report.json fitting/zuo2020/Si_d4_r3.report.json

Reads the etnpot fit reports given on the command line and every ``results/<SYSTEM>_*.json``
written by ``fit_mtp.py``, ``fit_ace.py`` and ``fit_gap.py``; writes ``results/<SYSTEM>.md``,
``results/<SYSTEM>.json`` and, with matplotlib, ``results/<SYSTEM>.png`` (test force RMSE and
energy MAE against the parameter count). Errors are on the fixed test split: energy per atom
in meV/atom, force components in eV/Å.
"""
import argparse
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def etn_row(path):
    r = json.load(open(path))
    t = r["test"]
    return {"code": "etnpot", "model": os.path.basename(r["model"]).removesuffix(".etn"),
            "num_parameters": r["num_parameters"], "fit_seconds": r["fit_seconds"],
            "test": {"energy_mae_mev": t["energy"]["mae"], "energy_rmse_mev": t["energy"]["rmse"],
                     "forces_mae": t["forces"]["mae"], "forces_rmse": t["forces"]["rmse"]}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("system", help="prefix of the peer result files, e.g. Si or InP")
    ap.add_argument("reports", nargs="+", help="etnpot fit reports (*.report.json)")
    args = ap.parse_args()
    rows = [etn_row(p) for p in args.reports]
    for p in sorted(glob.glob(os.path.join(HERE, "results", f"{args.system}_*.json"))):
        r = json.load(open(p))
        row = {k: r[k] for k in ("code", "model", "num_parameters", "fit_seconds", "test")} | {"peak_rss_gb": r.get("peak_rss_gb")}
        if r.get("n_train_available", r["n_train"]) != r["n_train"]:
            row["model"] += f", trained on {r['n_train']} of {r['n_train_available']} configurations"
        rows.append(row)
    rows.sort(key=lambda r: (r["code"] != "etnpot", r["code"], r["num_parameters"]))
    lines = [f"# {args.system}: etnpot and peers on the same split (test errors)", "",
             "| code | model | parameters | fit time (s) | peak memory (GB) | E MAE / RMSE (meV/atom) | F MAE / RMSE (eV/Å) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["test"]
        mem = f"{r['peak_rss_gb']:.2f}" if r.get("peak_rss_gb") else "-"
        lines.append(f"| {r['code']} | {r['model']} | {r['num_parameters']:,} | {r['fit_seconds']:.0f} | {mem} | "
                     f"{t['energy_mae_mev']:.2f} / {t['energy_rmse_mev']:.2f} | {t['forces_mae']:.4f} / {t['forces_rmse']:.4f} |")
    base = os.path.join(HERE, "results", args.system)
    with open(base + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(base + ".json", "w") as fh:
        json.dump(rows, fh, indent=1)
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for code in dict.fromkeys(r["code"] for r in rows):
        mine = sorted((r for r in rows if r["code"] == code), key=lambda r: r["num_parameters"])
        x = [r["num_parameters"] for r in mine]
        axes[0].plot(x, [r["test"]["forces_rmse"] for r in mine], "o-", label=code)
        axes[1].plot(x, [r["test"]["energy_mae_mev"] for r in mine], "o-", label=code)
    for ax, lab in zip(axes, ("test force RMSE (eV/Å)", "test energy MAE (meV/atom)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{args.system}: accuracy vs parameters, same split")
    fig.tight_layout()
    fig.savefig(base + ".png", dpi=120)
    print(f"wrote {base}.md, .json, .png")


if __name__ == "__main__":
    main()
