"""Fit a GAP (SOAP + two-body, sparse GP) with QUIP's gap_fit on an exported split, and test it.

Run in the quippy-ase virtual environment (see install.sh; its wheel ships ``gap_fit``)::

    fit_gap.py --data /tmp/peers/Si --sparse 2000 --out Si_gap2000

The descriptor settings follow the usual GAP recipe for elemental and binary solids: a two-body
term (``distance_2b``, 20 sparse points per species pair) plus SOAP (``n_max = l_max = 8`` by
default, ``--sparse`` CUR-selected sparse points per species, cutoff ``--r-cut``), regularisation
``default_sigma = {E per atom 2 meV, F 0.05 eV/Å}``; stress is not fitted (as in the etnpot
fits). gap_fit expects the virial, not ASE's stress; no virial is written here since stress is
not fitted. The parameter count is the number of sparse points (one coefficient each).
``--train-fraction`` fits on a random subset where gap_fit's memory (it stores every descriptor
derivative) exceeds the machine. Writes
``OUT.json`` (parameters, fit time, peak memory of gap_fit, test errors) and ``OUT.xml``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from ase.io import read, write

from common import test_errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.xyz and test.xyz (export_splits.py)")
    ap.add_argument("--sparse", type=int, required=True, help="SOAP sparse points per species")
    ap.add_argument("--out", required=True)
    ap.add_argument("--r-cut", type=float, default=5.0)
    ap.add_argument("--n-max", type=int, default=8)
    ap.add_argument("--l-max", type=int, default=8)
    ap.add_argument("--train-fraction", type=float, default=1.0,
                    help="fit on this random fraction of the training configurations (gap_fit keeps every "
                         "descriptor derivative in memory: 55 GB for all of InP)")
    args = ap.parse_args()

    train = read(f"{args.data}/train.xyz", ":")
    n_all = len(train)
    if args.train_fraction < 1.0:
        keep = np.random.default_rng(0).choice(n_all, max(1, round(args.train_fraction * n_all)), replace=False)
        train = [train[i] for i in sorted(keep)]
    test = read(f"{args.data}/test.xyz", ":")
    zs = sorted({int(z) for a in train for z in a.numbers})
    # gap_fit reads energy/forces from info/arrays keys of its own naming
    frames = []
    for a in train:
        b = a.copy()
        b.info = {"dft_energy": a.get_potential_energy(), "config_type": a.info.get("config_type", "default")}
        b.arrays["dft_forces"] = a.get_forces()
        frames.append(b)
    fit_file = os.path.abspath(f"{args.out}.train.xyz")
    write(fit_file, frames, format="extxyz")
    nz = len(zs)
    species = "{{" + " ".join(map(str, zs)) + "}}"  # nested in gap={...}: doubled braces
    two_body = [f"distance_2b cutoff={args.r_cut} Z1={z1} Z2={z2} covariance_type=ard_se delta=0.5 theta_uniform=1.0 "
                "sparse_method=uniform n_sparse=20" for i, z1 in enumerate(zs) for z2 in zs[i:]]
    soap = (f"soap cutoff={args.r_cut} cutoff_transition_width=1.0 n_max={args.n_max} l_max={args.l_max} atom_sigma=0.5 "
            f"zeta=4 delta=0.2 covariance_type=dot_product n_species={nz} species_Z={species} "
            f"n_sparse={args.sparse} sparse_method=cur_points")
    soap_per_z = [soap + f" Z={z}" for z in zs]
    gap = "{" + " : ".join(two_body + soap_per_z) + "}"
    cmd = [os.path.join(os.path.dirname(sys.executable), "gap_fit"), f"at_file={fit_file}", f"gap={gap}",
           "default_sigma={0.002 0.05 0.0 0.0}", "energy_parameter_name=dft_energy",
           "force_parameter_name=dft_forces", "virial_parameter_name=none_here", "e0_method=average",
           "sparse_jitter=1e-8", f"gp_file={os.path.abspath(args.out)}.xml", "rnd_seed=1"]
    t0 = time.perf_counter()
    with open(f"{args.out}.gap_fit.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    fit_seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    os.remove(fit_file)
    from quippy.potential import Potential

    pot = Potential(param_filename=f"{args.out}.xml")
    n_params = 20 * nz * (nz + 1) // 2 + args.sparse * nz
    res = {"code": "GAP (quippy-ase 0.10.3 gap_fit)", "model": f"SOAP n_max={args.n_max} l_max={args.l_max}, "
           f"{args.sparse} sparse/species + 2b", "num_parameters": n_params, "fit_seconds": fit_seconds,
           "peak_rss_gb": peak, "n_train": len(train), "n_train_available": n_all, "test": test_errors(test, lambda: pot)}
    json.dump(res, open(f"{args.out}.json", "w"), indent=2, default=float)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
