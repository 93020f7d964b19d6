"""Order 4 with small ranks against the default order 3 on the five-species set of ``run.py``.

    python fitting/sizing/order4.py [--atoms 4800] [--only NAME ...] [--out fitting/sizing/order4.json] [--table]

Each variant is fitted on its own (``size_to_data = false``) on ``run.py``'s training set and
test set, in its own ``etnpot fit`` process on one BLAS thread, with the config of ``run.py``
(the data, the species and the extxyz keys) plus the variant's model lines.  Order 4 puts the
centre species' indicator channel at one site and three neighbour densities at the others, so
its four-body terms depend on the centre species; at order 3 they cannot.  The choice between
variants uses validation only; the test errors are reported.  The order-3 rows are ``run.py
--each``'s fits of the same configs (``results.json``) unless ``d3_l1``/``d3_l2`` are refitted here.
"""
import argparse
import json
import os

from run import HERE, fit, make_set, row

VARIANTS = {
    "d3_l1": "l_max = 1",
    "d3_l2": "l_max = 2",
    "d4_l1_r2": "order = 4\nl_max = 1\nrank = 2",
    "d4_l2_r2": "order = 4\nl_max = 2\nrank = 2",
    "d4_l1_r32": 'order = 4\nl_max = 1\nrank = {"0e" = 3, "1o" = 2}',
    "d4_l2_r322": 'order = 4\nl_max = 2\nrank = {"0e" = 3, "1o" = 2, "2e" = 2}',
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--atoms", type=int, default=4800)
    ap.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    ap.add_argument("--workdir", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.path.join(HERE, "order4.json"))
    ap.add_argument("--table", action="store_true", help="fit nothing: print the table of --out")
    args = ap.parse_args()
    if args.table:
        args.only = []
    os.makedirs(args.workdir, exist_ok=True)
    make_set(1600, 7, os.path.join(args.workdir, "test.xyz"))
    train = f"train{args.atoms}.xyz"
    make_set(args.atoms, 0 if args.atoms == 1600 else 3, os.path.join(args.workdir, train))
    results = {}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            results = json.load(fh)["reports"]
    for name in args.only:
        results[f"{name}_{args.atoms}"] = fit(args.workdir, f"{name}_{args.atoms}", train, model=VARIANTS[name], size="false")
    # the order-3 fits of run.py --each are the same configs (d3_l1, d3_l2): reuse them unless refitted here
    with open(os.path.join(HERE, "results.json")) as fh:
        earlier = json.load(fh)["reports"]
    for key, rep in earlier.items():
        if key.startswith(("l1_", "l2_")) and f"d3_{key}" not in results:
            results[f"d3_{key} (results.json)"] = rep
    lines = ["| variant, training atoms | parameters | validation RMSE E / F | test RMSE E / F | test MAE E / F | wall |",
             "|---|---|---|---|---|---|"] + [row(k, rep) for k, rep in sorted(results.items(), key=lambda kv: (
                 int(kv[0].split("_")[-1].split()[0]), kv[0]))]
    print("\n".join(lines))
    with open(args.out, "w") as fh:
        json.dump({"table": lines, "reports": results}, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
