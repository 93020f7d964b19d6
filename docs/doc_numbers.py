"""Numbers that README.md, docs/ and the fitting READMEs derive from committed files.

Run from the repository root: ``python docs/doc_numbers.py > docs/doc_numbers.txt``.  It reads
only files that git tracks (the campaign reports, the committed models, benchmark results), so
untracked fits in progress do not enter, and evaluates nothing but the cost counts of the models
(a few seconds).  It prints

* the Zuo lever ratios that the README quotes: l_max 3 against each element's reference (the
  order-4, l_max 2 base where one was fitted, else the order-3 model, as ``levers.md``), and
  l_max 4 against l_max 3, on validation MAE, with the ratios of the reports' ``fit_seconds``;
* the Ge test split without its surface configuration (l_max 3 and 4, r_cut 5 and 6 Å), and the
  validation sizes;
* the peak memory that reports record (``peak_rss_mb``);
* the size of every committed model file, and of the grade files beside the chosen Zuo models
  where they exist in the checkout (they are not committed);
* which contraction ``etnpot.evaluation.choose`` picks for every committed model, with the bond
  dimensions and the counted flops;
* the four-species ETN / MTP time ratios of ``benchmarks/results/peers_alloy*.json``.
"""
import json
import os
import subprocess

import etnpot
from etnpot.evaluation import choose, cost_counts

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ZUO = "fitting/zuo2020"
CHOSEN = ["Ni_l4", "Cu_d3_r3", "Li_l3", "Mo_l4e1e5", "Si_l3rc6", "Ge_l4rc6"]  # fitting/zuo2020/results.md


def tracked(pattern):
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, check=True, capture_output=True, text=True)
    return sorted(out.stdout.split())


def report(name):
    path = f"{ZUO}/{name}.report.json"
    if path not in tracked(path):
        return None
    with open(os.path.join(ROOT, path)) as f:
        return json.load(f)


def mae(r, part="validation"):
    return r[part]["energy"]["mae"], r[part]["forces"]["mae"]


def levers():
    print("## Zuo: l_max 3 and l_max 4 on validation MAE (fitting/zuo2020/*.report.json)\n")
    print("| element | variant | against | E MAE ratio | F MAE ratio | fit_seconds ratio |")
    print("|---|---|---|---|---|---|")
    for el in ["Ni", "Cu", "Li", "Mo", "Si", "Ge"]:
        ref_name = f"{el}_base" if report(f"{el}_base") else f"{el}_d3_r3"
        for variant, against in ((f"{el}_l3", ref_name), (f"{el}_l4", f"{el}_l3")):
            r, a = report(variant), report(against)
            if r is None:
                print(f"| {el} | {variant} | {against} | not fitted (no committed report) | | |")
                continue
            (e, f), (e0, f0) = mae(r), mae(a)
            seconds = r["fit_seconds"]  # the whole fit, a resumed one included (etnpot.workflow)
            if r.get("fit_seconds_before_resume"):
                before = r["fit_seconds_before_resume"]
                variant += f" ({before:.0f} s + {seconds - before:.0f} s resumed)"
            print(f"| {el} | {variant} | {against} | {e / e0:.3f} | {f / f0:.3f} | "
                  f"{seconds:.0f} / {a['fit_seconds']:.0f} s = {seconds / a['fit_seconds']:.2f} |")
    print()


def ge_test():
    print("## Ge, test split: the share of the one surface configuration (Ge_*.report.json)\n")
    for name in ("Ge_l3", "Ge_l4", "Ge_l3rc6", "Ge_l4rc6"):
        t = report(name)["test"]
        n, e = t["n_configs"], t["energy"]["mae"]
        s = t["by_config_type"]["Surface"]
        rest = (n * e - s["n_configs"] * s["energy"]["mae"]) / (n - s["n_configs"])
        print(f"{name}: energy MAE {e:.3f} meV/atom over {n} configurations; the surface configuration "
              f"({s['n_configs']}) {s['energy']['mae']:.2f}, adding {(e - rest):.2f}; the other "
              f"{n - s['n_configs']} average {rest:.3f}")
    for a, b in (("Ge_l3", "Ge_l4"), ("Ge_l4", "Ge_l4rc6")):
        ta, tb = report(a)["test"], report(b)["test"]
        print(f"test energy MAE by config type, {a} -> {b}: " + ", ".join(
            f"{k} {ta['by_config_type'][k]['energy']['mae']:.2f} -> {v['energy']['mae']:.2f}"
            for k, v in tb["by_config_type"].items()))
    print("validation configurations: " + ", ".join(
        f"{el} {report(el + '_d3_r3')['validation']['n_configs']}" for el in ["Ni", "Cu", "Li", "Mo", "Si", "Ge"]))
    print()


def memory():
    print("## Peak memory recorded in the reports (peak_rss_mb)\n")
    for path in tracked("fitting/*.report.json"):
        with open(os.path.join(ROOT, path)) as f:
            r = json.load(f)
        if "peak_rss_mb" in r:
            print(f"{path}: {r['peak_rss_mb'] / 1000:.2f} GB")
    print()


def sizes():
    print("## Model files (committed .etn; grade files of the chosen Zuo models where present, not committed)\n")
    for path in tracked("*.etn"):
        print(f"{path}: {os.path.getsize(os.path.join(ROOT, path)) / 1000:.1f} kB")
    for name in CHOSEN:
        grade = os.path.join(ROOT, ZUO, name + ".etn.grade")
        print(f"{ZUO}/{name}.etn.grade: " + (f"{os.path.getsize(grade) / 1e6:.1f} MB" if os.path.exists(grade) else "absent"))
    print()


def contractions():
    print("## Contraction chosen per committed model (etnpot.evaluation.choose)\n")
    print("| model | parameters | inner bond dimensions | dense flops/atom | block-sparse flops/atom | calls | chosen |")
    print("|---|---|---|---|---|---|---|")
    for path in tracked("fitting/*.etn"):
        pot = etnpot.load(os.path.join(ROOT, path))
        tt = pot.tt
        c = cost_counts(tt)
        dims = sorted({b.dim for b in tt.bonds[1:-1]})
        print(f"| {path} | {pot.num_parameters} | {', '.join(map(str, dims))} | {c['dense_flops']:,} | "
              f"{c['sparse_flops']:,} | {c['sparse_calls']} | {choose(tt)} |")
    print()


def alloy_ratios():
    print("## Four species: ETN / MTP level 16 (4 species) time, same run (benchmarks/results/peers_alloy*.json)\n")
    for path in ("benchmarks/results/peers_alloy.json", "benchmarks/results/peers_alloy_l2.json"):
        with open(os.path.join(ROOT, path)) as f:
            rows = json.load(f)["rows"]
        per = {(r["label"], r["n_atoms"]): r["median_s"] / r["n_atoms"] * 1e6 for r in rows if r["cell"] == "CuAgAuNi"}
        mtp = {n: t for (label, n), t in per.items() if label.startswith("MTP level 16, 4")}
        for label in dict.fromkeys(label for label, _ in per if not label.startswith("MTP")):
            ratios = [per[(label, n)] / mtp[n] for n in sorted(mtp) if n >= 864 and (label, n) in per]
            print(f"{path}: {label}: " + " / ".join(f"{x:.2f}" for x in ratios) + " (864 / 8,788 / 27,436 atoms)")
    print()


def main():
    levers()
    ge_test()
    memory()
    sizes()
    contractions()
    alloy_ratios()


if __name__ == "__main__":
    main()
