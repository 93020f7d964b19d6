"""Write the train / validation / test split of an etnpot campaign config as extended XYZ.

The peers (MTP, linear ACE, GAP) are fitted in their own virtual environments, which do not
have etnpot; this script, run with etnpot, hands them exactly the configurations that the
etnpot fit of the same config uses (same validation carve, same fixed test split)::

    python fitting/peers/export_splits.py fitting/zuo2020/Si_d3_r3.toml /tmp/peers/Si

Energies are total (eV), forces eV/Å, stress eV/Å^3 with ASE's sign (the GAP driver turns it
into a virial); each frame carries ``config_type`` for per-group errors.
"""
import argparse
import os

from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from etnpot.config import load_config
from etnpot.workflow import read_splits


def to_atoms(conf):
    atoms = conf.atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=conf.energy, forces=conf.forces, stress=conf.stress)
    atoms.info["config_type"] = conf.config_type
    return atoms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="an etnpot campaign TOML (its [data] section is used)")
    ap.add_argument("outdir")
    ap.add_argument("--data-dir", default=None, help="data root (default: $ETNPOT_DATA, then ../shared/data)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    os.makedirs(args.outdir, exist_ok=True)
    for name, configs in zip(("train", "validation", "test"), read_splits(cfg, args.data_dir)):
        path = os.path.join(args.outdir, f"{name}.xyz")
        write(path, [to_atoms(c) for c in configs], format="extxyz")
        print(f"{path}: {len(configs)} configurations, {sum(len(c) for c in configs)} atoms")


if __name__ == "__main__":
    main()
