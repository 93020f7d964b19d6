"""Measure the design facts that etnpot's code and README rely on (docs/design-facts.md).

    python docs/design_facts.py [--sweeps 4]

Fact 1, raw radial channels vs unsupervised mixing: the same small ETN (d=3, l_max=2, rank 3,
6 radial channels) is fitted by one-site ALS alone (no radial steps, so the channels stay as
chosen) to the embedded mlearn Si subset, with

* raw channels: the 6 Chebyshev functions Q_0..Q_5 themselves (etnpot's default), and
* PCA channels: 10 Chebyshev functions mixed into the 6 directions of largest variance of the
  training features (per l; the fit's normalization then whitens them).

Both fits use the same data, weights, ridge, seeds and sweeps; the script prints the test errors.
"""
import argparse
import time

import numpy as np

import etnpot
from etnpot.data import split_train_validation
from etnpot.demo import embedded_data
from etnpot.fit import ALSFitter, FitSettings, Weights
from etnpot.metrics import error_table


def pca_channels(pot, train, n_keep):
    """Set ``pot``'s radial weights to the top-``n_keep`` principal directions (per l) of the raw
    Chebyshev features of the training atoms."""
    b = pot.basis
    N = b.radial.n_basis
    raw = etnpot.ETNPotential.build(["Si"], r_cut=b.r_cut, r_min=b.radial.r_min, order=1, l_max=b.l_max, rank=1,
                                    n_basis=N)
    blocks, _ = raw.basis.compute(raw.graph([c.atoms for c in train]))
    W = np.zeros_like(b.radial_weights)  # (L, C, N, K)
    for l, F in enumerate(blocks):
        X = F[:, :, :N].reshape(-1, N)
        if l == 0:
            X = X - X.mean(axis=0)
        evals, evecs = np.linalg.eigh(X.T @ X)
        top = evecs[:, np.argsort(evals)[::-1][:n_keep]]  # (N, n_keep)
        W[l, :, :, 0] = top.T
    b.radial_weights = W


def fit(kind, train, valid, test, sweeps):
    n_basis = 6 if kind == "raw" else 10
    pot = etnpot.ETNPotential.random(["Si"], r_cut=5.0, r_min=1.5, order=3, l_max=2, rank=3, n_basis=n_basis,
                                     n_channels=6, seed=0, init="constant", noise=1e-3)
    if kind == "pca":
        pca_channels(pot, train, 6)
    t = time.perf_counter()
    ALSFitter(pot, train, valid, weights=Weights(energy=3e4, forces=1.0, stress=0.0),
              settings=FitSettings(sweeps=sweeps, ridge=1e-8, radial_steps=0, lm_steps=0, patience=10),
              progress=False).run()
    dt = time.perf_counter() - t
    e = error_table(pot, test)
    print(f"{kind:<4} channels: {pot.num_parameters} parameters, fit {dt:6.1f} s, test E MAE/RMSE "
          f"{e['energy']['mae']:.3f}/{e['energy']['rmse']:.3f} meV/atom, F MAE/RMSE "
          f"{e['forces']['mae']:.4f}/{e['forces']['rmse']:.4f} eV/Å", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweeps", type=int, default=4)
    args = ap.parse_args()
    train_all, test = embedded_data()
    train, valid = split_train_validation(train_all, 0.1, seed=0)
    for kind in ("raw", "pca"):
        fit(kind, train, valid, test, args.sweeps)


if __name__ == "__main__":
    main()
