"""Fit a moment tensor potential (MTP) with motep on an exported split, and test it.

Run in the motep virtual environment (see install.sh)::

    fit_mtp.py --data /tmp/peers/Si --level levels/16.mtp --out Si_mtp16

``--level`` is an untrained MLIP ``.mtp`` file of the wanted level (the ``untrained_mtps/NN.mtp``
files of MLIP-2, https://gitlab.com/ashapeev/mlip-2; they are not redistributed here). The
protocol: random radial coefficients, a linear least-squares solve of the moment coefficients
(a good start), ``--maxiter`` L-BFGS-B iterations on all parameters with MLIP's weights (energy 1,
force 0.01, per atom, per configuration; stress not fitted, as in the etnpot fits it is compared
with), then a final linear least-squares solve of the moment coefficients. Writes ``OUT.json`` (parameters, fit time, peak memory, test errors) and
``OUT.mtp``.

motep 0.2.0 writes ``radial_funcs_count`` after the radial coefficients, so its reader cannot
read its own trained file; the line is moved up here after writing.
"""
import argparse
import json
import resource
import time

from ase.io import read

from common import test_errors

from motep.calculator import make_calculator
from motep.io.mlip.mtp import read_mtp, write_mtp
from motep.train.trainer import Trainer


def fix_mtp_file(path):
    """Move ``radial_funcs_count`` above ``radial_coeffs`` (motep 0.2.0 writes it after)."""
    lines = open(path).read().splitlines(keepends=True)
    i = next(k for k, ln in enumerate(lines) if ln.strip().startswith("radial_funcs_count"))
    j = next((k for k, ln in enumerate(lines) if ln.strip().startswith("radial_coeffs")), None)
    if j is not None and j < i:
        lines.insert(j, lines.pop(i))
        open(path, "w").writelines(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.xyz and test.xyz (export_splits.py)")
    ap.add_argument("--level", required=True, help="untrained MLIP .mtp file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--r-cut", type=float, default=5.0)
    ap.add_argument("--r-min", type=float, default=1.5)
    ap.add_argument("--maxiter", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", default="cext")
    args = ap.parse_args()

    train = read(f"{args.data}/train.xyz", ":")
    test = read(f"{args.data}/test.xyz", ":")
    species = sorted({int(z) for a in train for z in a.numbers})
    mtp = read_mtp(args.level)
    mtp.species = species
    mtp.min_dist, mtp.max_dist = args.r_min, args.r_cut
    mtp.radial_basis.min, mtp.radial_basis.max = args.r_min, args.r_cut
    steps = [{"method": "LLS"},
             {"method": "minimize", "kwargs": {"method": "L-BFGS-B", "options": {"maxiter": args.maxiter}}},
             {"method": "LLS"}]
    loss = {"energy_weight": 1.0, "forces_weight": 0.01, "stress_weight": 0.0}
    t0 = time.perf_counter()
    Trainer(mtp, seed=args.seed, engine=args.engine, loss=loss, steps=steps).train(train)
    fit_seconds = time.perf_counter() - t0
    write_mtp(f"{args.out}.mtp", mtp)
    fix_mtp_file(f"{args.out}.mtp")
    calc = lambda: make_calculator(mtp, engine=args.engine)
    n_params = int(mtp.alpha_scalar_moments + mtp.species_count + mtp.radial_coeffs.size)
    res = {"code": "MTP (motep 0.2.0)", "model": f"level {args.level.rsplit('/', 1)[-1].removesuffix('.mtp')}, "
           f"{args.maxiter} L-BFGS-B iterations", "num_parameters": n_params, "maxiter": args.maxiter,
           "fit_seconds": fit_seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
           "n_train": len(train), "test": test_errors(test, calc), "train": test_errors(train, calc)}
    json.dump(res, open(f"{args.out}.json", "w"), indent=2, default=float)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
