"""Rewrite the committed models in the current file format (load + save) and measure what the
compact active set (``V A^-1`` in float32, in a grade file beside the model) changes.

For every ``fitting/zuo2020/*.etn`` and ``fitting/inp/*.etn``: the grades of (up to ``--probe``)
test configurations of its config, by the stored active set and by the compact one; then the
model is saved over itself (``<model>.etn`` + ``<model>.etn.grade``) and the sizes are printed.

    python fitting/rewrite_models.py [--probe 40] [--dry-run]
"""
import argparse
import glob
import logging
import os

import numpy as np

import etnpot
from etnpot.config import load_config
from etnpot.grade import descriptors
from etnpot.io import grade_path
from etnpot.workflow import read_splits

log = logging.getLogger("rewrite_models")
HERE = os.path.dirname(os.path.abspath(__file__))


def size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def grade_change(pot, model_path, n_probe):
    """``(n_atoms, max grade, max |dg|, max |dg| / g)`` of the stored vs the compact active set."""
    cfg = load_config(model_path[: -len(".etn")] + ".toml")
    _, _, test = read_splits(cfg)
    atoms = [c.atoms for c in test[:n_probe]]
    aset = pot.active_set
    phi = descriptors(pot, atoms, aset.core)
    g0, g1 = aset.grades(phi), aset.compact().grades(phi)
    d = np.abs(g1 - g0)
    return len(phi), float(g0.max()), float(d.max()), float((d / np.maximum(g0, 1e-12)).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe", type=int, default=40, help="test configurations graded per model")
    ap.add_argument("--dry-run", action="store_true", help="measure only, write nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = sorted(glob.glob(os.path.join(HERE, "zuo2020", "*.etn")) + glob.glob(os.path.join(HERE, "inp", "*.etn")))
    print(f"{'model':<22}{'params':>7}{'version':>8}{'before':>10}{'after':>9}{'grade file':>11}"
          f"{'atoms':>7}{'max g':>8}{'max |dg|':>10}{'max |dg|/g':>11}")
    for path in paths:
        before = size(path) + size(grade_path(path))
        version = etnpot.read_header(path)["format_version"]
        pot = etnpot.load(path)
        measured = ""
        if pot.active_set is not None:
            n, gmax, dmax, rmax = grade_change(pot, path, args.probe)
            measured = f"{n:>7}{gmax:>8.3f}{dmax:>10.2e}{rmax:>11.2e}"
            pot.active_set = pot.active_set.compact()
        if not args.dry_run:
            pot.save(path)
        print(f"{os.path.relpath(path, HERE):<22}{pot.num_parameters:>7}{version:>8}{before / 1e6:>9.2f}M"
              f"{size(path) / 1e6:>8.3f}M{size(grade_path(path)) / 1e6:>10.2f}M{measured}")


if __name__ == "__main__":
    main()
