"""Command line: ``etnpot info MODEL``, ``etnpot demo``.

``main(argv)`` runs in-process (tests call it); the console script ``etnpot`` calls it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

__all__ = ["main"]


def _cmd_info(args) -> int:
    from .io import load, read_header

    header = read_header(args.model)
    pot = load(args.model)
    if args.json:
        print(json.dumps({"header": header, "num_parameters": pot.num_parameters,
                          "parameter_counts": pot.parameter_counts()}, indent=2, sort_keys=True))
        return 0
    b = pot.basis
    print(f"model          {args.model}")
    print(f"format         etnpot v{header['format_version']} (written by etnpot {header['etnpot_version']})")
    print(f"content hash   {header['content_sha256']}")
    print(f"species        {' '.join(pot.species)}   E0 = {', '.join(f'{e:.6g}' for e in pot.e0)} eV")
    print(f"symmetry       {'O(3)' if pot.o3 else 'SO(3)'}")
    print(f"features       l_max={b.l_max} n_basis={b.radial.n_basis} channels={b.n_channels} "
          f"species_rank={b.species_rank} r_min={b.radial.r_min:g} r_cut={b.radial.r_cut:g} Å")
    print(f"tensor train   order={pot.order}")
    for k, bond in enumerate(pot.tt.bonds[1:-1], start=1):
        print(f"  bond {k}       {bond}")
    print(f"parameters     {pot.num_parameters}  " + ", ".join(f"{k}={v}" for k, v in pot.parameter_counts().items()))
    md = header.get("metadata") or {}
    for key in sorted(md):
        if key != "hyperparameters":
            print(f"{key:<14} {json.dumps(md[key], default=str)[:200]}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(out=args.output)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="etnpot", description="Equivariant tensor-network interatomic potentials")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the header and counts as JSON")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("demo", help="the main job on the embedded default (no arguments needed)")
    p.add_argument("--output", default="etnpot-demo.etn", help="where to save the model")
    p.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"etnpot {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
