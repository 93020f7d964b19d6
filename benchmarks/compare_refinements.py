"""What the nonlinear refinement steps buy: ALS alone vs + radial steps vs + all-core LM steps.

    python benchmarks/compare_refinements.py [--sweeps 4]

Fits the same small ETN (d=3, l_max=2, rank 3) to the embedded mlearn Si subset three ways and
prints the fit time and the test errors on the embedded test split.
"""
import argparse
import time

import etnpot
from etnpot.data import split_train_validation
from etnpot.demo import embedded_data
from etnpot.fit import ALSFitter, FitSettings, Weights
from etnpot.metrics import error_table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweeps", type=int, default=4)
    args = ap.parse_args()
    train_all, test = embedded_data()
    train, valid = split_train_validation(train_all, 0.1, seed=0)
    for name, radial, lm in (("ALS only", 0, 0), ("ALS + radial steps", 1, 0), ("ALS + all-core LM steps", 0, 1)):
        pot = etnpot.ETNPotential.random(["Si"], r_cut=5.0, r_min=1.5, order=3, l_max=2, rank=3, n_basis=6, seed=0,
                                         init="constant", noise=1e-3)
        t = time.perf_counter()
        ALSFitter(pot, train, valid, weights=Weights(energy=3e4, forces=1.0, stress=0.0),
                  settings=FitSettings(sweeps=args.sweeps, ridge=1e-8, radial_steps=radial, lm_steps=lm, patience=10),
                  progress=False).run()
        dt = time.perf_counter() - t
        e = error_table(pot, test)
        print(f"{name:<25} fit {dt:6.1f} s   test E MAE/RMSE {e['energy']['mae']:.3f}/{e['energy']['rmse']:.3f} meV/atom"
              f"   F MAE/RMSE {e['forces']['mae']:.4f}/{e['forces']['rmse']:.4f} eV/Å", flush=True)


if __name__ == "__main__":
    main()
