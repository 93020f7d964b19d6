"""InP at <= 1,000 parameters by channel compression (issue 12, item 5).

    python fitting/inp/compress.py [--model InP_d3_r3.etn] [--channels 5] [--sweeps 2]

Loads the fitted l_max-2 model (12 species-resolved channels, 1,928 parameters), compresses its
channels with :func:`etnpot.compress` (an SVD of the cores' channel use folded into the radial
weights, then ``--sweeps`` ALS sweeps on the training split with early stopping on validation),
and reports validation and test errors of the result on the config's fixed split.  Writes
``InP_d3_r3_cN.etn`` (without grade file) and ``InP_d3_r3_cN.report.json`` next to this script.
"""
import argparse
import json
import os
import time

import etnpot
from etnpot.config import load_config
from etnpot.metrics import error_table
from etnpot.workflow import read_splits

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(HERE, "InP_d3_r3.etn"))
    ap.add_argument("--config", default=os.path.join(HERE, "InP_d3_r3.toml"))
    ap.add_argument("--channels", type=int, default=5)
    ap.add_argument("--sweeps", type=int, default=2)
    args = ap.parse_args()
    cfg = load_config(args.config)
    train, valid, test = read_splits(cfg)
    pot = etnpot.load(args.model)
    t0 = time.perf_counter()
    new, rep = etnpot.compress(pot, args.channels, train, valid, etnpot.Weights(**{k: cfg["weights"][k] for k in
                                                                                 ("energy", "forces", "stress")}),
                               etnpot.FitSettings(sweeps=args.sweeps, ridge=cfg["fit"]["ridge"]), progress=False)
    rep["seconds"] = time.perf_counter() - t0
    rep["test_before"] = error_table(pot, test)
    rep["test"] = error_table(new, test)
    rep["command"] = f"python fitting/inp/compress.py --channels {args.channels} --sweeps {args.sweeps}"
    stem = os.path.splitext(os.path.basename(args.model))[0] + f"_c{args.channels}"
    new.save(os.path.join(HERE, stem + ".etn"))
    with open(os.path.join(HERE, stem + ".report.json"), "w") as fh:
        json.dump(rep, fh, indent=1, default=float)
    for name in ("errors_before", "errors_projected", "errors_after", "test_before", "test"):
        t = rep[name]
        print(f"{name:18s} E MAE {t['energy']['mae']:.3f} RMSE {t['energy']['rmse']:.3f} meV/atom, "
              f"F MAE {t['forces']['mae']:.4f} RMSE {t['forces']['rmse']:.4f} eV/Å")
    print(f"parameters {rep['num_parameters_before']} -> {rep['num_parameters']}, {rep['seconds']:.0f} s")


if __name__ == "__main__":
    main()
