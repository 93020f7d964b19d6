"""Fit a linear ACE potential with python-ace (pyace) on an exported split, and test it.

Run in the python-ace virtual environment (see install.sh)::

    fit_ace.py --data /tmp/peers/Si --functions 1000 --out Si_ace1000

The basis is pacemaker's default shape (orders 1-6: nradmax 15/6/4/3/2/2, lmax 0/3/3/2/2/1; for
several species orders 1-4, the most python-ace's coupling tables allow;
Chebyshev-exp-cos radial basis, cutoff ``--r-cut``) cut to ``--functions`` functions per
element, with a linear embedding (Finnis-Sinclair ``fs_parameters = [1, 1]``), so the energy is
linear in the coefficients. The design matrix is built by python-ace's ``LinearACEDataset``;
energy rows (per atom, less a least-squares per-species reference energy) are scaled by
``sqrt(--energy-weight)`` against unit-weight force rows, as in the etnpot fits, and the ridge
problem is solved with scikit-learn's ``Ridge`` (python-ace's ``LinearACEFit`` default model).
Writes ``OUT.json`` (parameters, fit time, peak memory, test errors), ``OUT.yaml`` (B-basis)
and ``OUT.yace`` (the C-tilde form that evaluates fastest).

python-ace is under an academic licence: it is run here as a benchmark, never copied.
"""
import argparse
import json
import resource
import time

import numpy as np
import pandas as pd
from ase.io import read
from sklearn.linear_model import Ridge

from pyace.generalfit import construct_bbasisconfiguration
from pyace.linearacefit import LinearACEDataset


def frame(images, e0):
    df = pd.DataFrame({"ase_atoms": images})
    df["energy"] = [a.get_potential_energy() for a in images]
    df["energy_corrected"] = [a.get_potential_energy() - sum(e0[s] for s in a.get_chemical_symbols()) for a in images]
    df["forces"] = [a.get_forces() for a in images]
    return df


def fit_e0(images, elements):
    counts = np.array([[a.get_chemical_symbols().count(s) for s in elements] for a in images], float)
    energies = np.array([a.get_potential_energy() for a in images])
    return dict(zip(elements, np.linalg.lstsq(counts, energies, rcond=None)[0]))


def errors(ds, coef):
    """Per-atom energy and force-component errors of a dataset for coefficients ``coef``."""
    pred = ds.get_design_matrix() @ coef
    de = ds.get_energies_per_atom(pred) - ds.get_energies_per_atom()
    df = ds.get_forces(pred) - ds.get_forces()
    return {"energy_mae_mev": 1e3 * np.abs(de).mean(), "energy_rmse_mev": 1e3 * np.sqrt((de**2).mean()),
            "forces_mae": np.abs(df).mean(), "forces_rmse": np.sqrt((df**2).mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.xyz and test.xyz (export_splits.py)")
    ap.add_argument("--functions", type=int, required=True, help="ACE functions per element")
    ap.add_argument("--out", required=True)
    ap.add_argument("--r-cut", type=float, default=5.0)
    ap.add_argument("--energy-weight", type=float, default=30000.0, help="weight of per-atom energy rows (eV^-2 scale)")
    ap.add_argument("--ridge", type=float, default=1e-5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    train = read(f"{args.data}/train.xyz", ":")
    test = read(f"{args.data}/test.xyz", ":")
    from ase.data import atomic_numbers
    elements = sorted({s for a in train for s in a.get_chemical_symbols()}, key=atomic_numbers.get)
    e0 = fit_e0(train, elements)
    config = {
        "deltaSplineBins": 0.001,
        "elements": elements,
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": args.r_cut, "dcut": 0.01,
                          "NameOfCutoffFunction": "cos"}},
        "functions": {"number_of_functions_per_element": args.functions,
                      # python-ace precomputes multi-species couplings only up to order 4
                      "ALL": ({"nradmax_by_orders": [15, 6, 4, 3, 2, 2], "lmax_by_orders": [0, 3, 3, 2, 2, 1]}
                              if len(elements) == 1 else
                              {"nradmax_by_orders": [15, 6, 4, 3], "lmax_by_orders": [0, 3, 3, 2]})},
    }
    t0 = time.perf_counter()
    bconf = construct_bbasisconfiguration(config)
    ds = LinearACEDataset(bconf, frame(train, e0))
    a = ds.get_design_matrix(max_workers=args.workers)
    y = ds.get_target_vector()
    w = np.ones(len(y))
    w[: len(train)] = np.sqrt(args.energy_weight)
    a *= w[:, None]  # weighted rows in place (the matrix is the largest object), undone below
    model = Ridge(alpha=args.ridge, fit_intercept=False, solver="auto").fit(a, y * w)
    a /= w[:, None]
    fit_seconds = time.perf_counter() - t0
    coef = model.coef_
    basis = ds.get_bbasis(model)
    basis.save(f"{args.out}.yaml")
    basis.to_ACECTildeBasisSet().save_yaml(f"{args.out}.yace")  # the fast C-tilde form, for evaluation
    test_ds = LinearACEDataset(basis, frame(test, e0))
    test_ds.get_design_matrix(max_workers=args.workers)
    res = {"code": "linear ACE (python-ace 0.4.0rc1)", "model": f"{args.functions} functions/element",
           "num_parameters": int(coef.size), "fit_seconds": fit_seconds,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "n_train": len(train),
           "e0": e0, "test": errors(test_ds, coef), "train": errors(ds, coef)}
    json.dump(res, open(f"{args.out}.json", "w"), indent=2, default=float)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
