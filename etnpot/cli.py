"""Command line: ``etnpot fit CONFIG.toml``, ``etnpot eval MODEL DATA...``, ``etnpot info MODEL``, ``etnpot demo``,
``etnpot grade MODEL FILES...`` / ``etnpot select MODEL CANDIDATES... -n N --output F`` (active learning),
``etnpot lammps IN.lmp --model MODEL --species A B`` (LAMMPS MD with the model, :mod:`etnpot.lammps`),
``etnpot prune MODEL --tolerance T`` (drop coupling paths, :mod:`etnpot.prune`),
``etnpot compress MODEL --channels C`` (fewer radial channels, :mod:`etnpot.compress`),
``etnpot export MODEL [OUT]`` and ``etnpot lammps-plugin`` (``pair_style etn``, :mod:`etnpot.lammps_export`).

``main(argv)`` runs in-process (tests call it); the console script ``etnpot`` calls it.
"""
from __future__ import annotations

import argparse
import json
import re
import logging
import sys

from . import defaults as D

__all__ = ["main"]


def _say(text) -> None:
    """Print a line that may hold text from a file (a model's provenance): control characters
    (terminal escape sequences) are shown as ``\\xNN``, never sent to the terminal."""
    print(re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m.group()):02x}", str(text)))


def _cmd_info(args) -> int:
    from .io import load, read_header

    header = read_header(args.model)
    pot = load(args.model)
    if args.json:
        print(json.dumps({"header": header, "num_parameters": pot.num_parameters,
                          "parameter_counts": pot.parameter_counts()}, indent=2, sort_keys=True))
        return 0
    b = pot.basis
    _say(f"model          {args.model}")
    _say(f"format         etnpot v{header['format_version']} (written by etnpot {header['etnpot_version']})")
    _say(f"content hash   {header['content_sha256']}")
    from ase import Atoms

    iso = [float(pot.compute(Atoms(s), forces=False, stress=False)["energy"][0]) for s in pot.species]
    _say(f"species        {' '.join(pot.species)}")
    _say(f"isolated atom  {', '.join(f'{s} {e:.6g}' for s, e in zip(pot.species, iso))} eV  (E0 plus the TT's per-species "
          f"constant; E0 alone = {', '.join(f'{e:.6g}' for e in pot.e0)} eV is only a gauge)")
    _say(f"symmetry       {'O(3)' if pot.o3 else 'SO(3)'}")
    _say(f"features       l_max={b.l_max} n_basis={b.radial.n_basis} channels={b.n_channels} "
          f"species_rank={b.species_rank} r_min={b.radial.r_min:g} r_cut={b.radial.r_cut:g} Å")
    _say(f"tensor train   order={pot.order}")
    for k, bond in enumerate(pot.tt.bonds[1:-1], start=1):
        _say(f"  bond {k}       {bond}")
    _say(f"parameters     {pot.describe_parameters()}")
    _say(f"extrapolation  {'active set of rank ' + str(pot.active_set.rank) + ' (core ' + str(pot.active_set.core) + ')' if pot.active_set is not None else 'no active set (no grades)'}")
    md = header.get("metadata") or {}
    prov = md.get("provenance")
    if prov:
        for split in ("train", "validation", "test"):
            for item in prov.get("data", {}).get(split, []):
                _say(f"data ({split:<10}) {item['path']}  sha256 {item['sha256'][:16]}…" +
                      (f"  {item['n_configs']} configurations" if "n_configs" in item else ""))
        cfg = prov.get("config", {})
        for sec in ("model", "fit", "weights"):
            if sec in cfg:
                _say(f"config [{sec}]".ljust(15) + " " + ", ".join(f"{k}={v}" for k, v in cfg[sec].items() if v is not None))
    fit = md.get("fit")
    if fit:
        _say(f"fit            {len(fit.get('history', []))} sweeps, best sweep {fit.get('best_sweep')}, "
              f"{fit.get('n_train')} training / {fit.get('n_validation')} validation configurations")
        for h in fit.get("history", []):
            v = h.get("validation") or {}
            ve = v.get("energy") or {}
            vf = v.get("forces") or {}
            _say(f"  sweep {h['sweep']:>3} {h['direction']:<5} objective {h['train_loss']:.6g}" +
                  (f"  validation E {ve['rmse']:.3f} meV/atom, F {vf['rmse']:.4f} eV/Å" if ve and vf else ""))
    for key in sorted(set(md) - {"hyperparameters", "provenance", "fit"}):
        _say(f"{key:<14} {json.dumps(md[key], default=str)[:200]}")
    return 0


def _cmd_fit(args) -> int:
    from .config import load_config
    from .workflow import run_fit

    cfg = load_config(args.config)
    if args.output:
        cfg["output"]["model"] = args.output
    run_fit(cfg, data_dir=args.data_dir, resume=args.resume, progress=not args.quiet, out=print,
            allow_changes=args.allow_changes)
    return 0


def _cmd_eval(args) -> int:
    import os

    import numpy as np

    from .io import load
    from .metrics import error_table, format_error_table, predict
    from .workflow import read_files

    from .data import DataError
    from .preflight import check_outputs, reference_counts

    check_outputs({"--json": args.json, "--output": args.output}, list(args.data) + [args.model], "etnpot eval")
    pot = load(args.model)
    configs, _ = read_files(args.data, None, energy_key=args.energy_key, forces_key=args.forces_key,
                            stress_key=args.stress_key)
    counts = reference_counts(configs)
    if not any(counts.values()):
        keys = sorted({k for c in configs for k in c.info.get("reference_keys", ())})
        msg = (f"{', '.join(args.data)}: no reference energy, forces or stress (keys {args.energy_key!r}, "
               f"{args.forces_key!r}, {args.stress_key!r}); the files have the keys {keys}: name yours with "
               "--energy-key / --forces-key / --stress-key")
        if not args.output:
            raise DataError(msg + ", or write predictions only with --output")
        logging.getLogger(__name__).warning("%s; writing predictions only", msg)
    environments = bool(pot.metadata.get("species_environments")) and len(pot.species) > 1
    unseen = []  # per batch: unseen species environments per configuration, on the predictions' graphs

    def count_unseen(batch, g):
        from .environments import unseen_environments

        unseen.append(np.bincount(g.atom_config[unseen_environments(pot, g)], minlength=len(batch)))

    pred = predict(pot, configs, on_graph=count_unseen if environments else None)
    table = error_table(pot, configs, pred)
    print(format_error_table(table, f"{args.model} on {', '.join(args.data)}"))
    if environments:
        per_config = np.concatenate(unseen) if unseen else np.zeros(0, int)
        n_new, cells = int(per_config.sum()), int(np.count_nonzero(per_config))
        print(f"species environments never seen in training: {n_new} atoms in {cells} of {len(configs)} "
              "configurations" + (" (the model extrapolates there)" if n_new else ""))
        table["unseen_species_environments"] = {"atoms": n_new, "configurations": cells}
    if args.plot is not None:
        from .plots import parity

        path = args.plot or os.path.splitext(args.model)[0] + "_eval_parity.png"
        if parity(path, {"data": (configs, pred)}, f"{args.model} on {', '.join(args.data)}"):
            print(f"parity plot   {path}")
        else:
            print("no parity plot: matplotlib is not installed (pip install 'etnpot[plot]')", file=sys.stderr)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(table, fh, indent=2)
        os.replace(tmp, args.json)
    if args.output:
        import ase.io

        frames = []
        for c, p in zip(configs, pred):
            a = c.atoms.copy()
            a.info["config_type"] = c.config_type
            if c.energy is not None:
                a.info["REF_energy"] = c.energy
            if c.forces is not None:
                a.arrays["REF_forces"] = np.asarray(c.forces)
            if c.stress is not None:
                a.info["REF_stress"] = np.asarray(c.stress)
            a.info[f"{args.prefix}energy"] = p["energy"]
            a.arrays[f"{args.prefix}forces"] = p["forces"]
            if p["stress"] is not None:
                a.info[f"{args.prefix}stress"] = p["stress"]
            frames.append(a)
        ase.io.write(args.output, frames, format="extxyz")
    return 0


def _graded_model(path):
    """The model of ``path`` and its active set, or a ValueError that says how to get one."""
    from .grade import checked_active_set
    from .io import load

    pot = load(path)
    try:
        checked_active_set(pot)
    except ValueError as e:
        raise ValueError(f"{path} has no grade data ({e}); models written by etnpot fit have it (unless [fit] "
                         "active_set = false); for a model fitted in Python, or pruned or compressed, run "
                         "etnpot.grade.fit_active_set(model, training_configurations) and save it") from None
    return pot


def _read_structures(paths):
    """``[(path, index, atoms)]`` of every structure in ``paths`` (any format ASE reads)."""
    import os

    import ase.io

    out = []
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p}")
        out += [(p, k, a) for k, a in enumerate(ase.io.read(p, index=":"))]
    return out


def _cmd_grade(args) -> int:
    import ase.io
    import numpy as np

    from .environments import unseen_environments

    pot = _graded_model(args.model)
    frames = []
    for path in args.files:
        structs = _read_structures([path])
        worst, n_over, c_over, n_unseen, c_unseen, n_atoms = (0.0, None), 0, 0, 0, 0, 0
        for _, k, atoms in structs:
            res = pot.compute([atoms], forces=False, stress=False, grades=True)
            g = np.asarray(res["extrapolation_grades"], dtype=np.float64)
            flag = np.zeros(len(atoms), dtype=bool)
            flag[unseen_environments(pot, pot.graph([atoms]))] = True
            a = atoms.copy()
            a.calc = None
            a.arrays["extrapolation_grade"] = g
            a.arrays[f"{args.prefix}energies"] = np.asarray(res["energies"], dtype=np.float64)
            a.arrays["unseen_species"] = flag
            a.info["max_extrapolation_grade"] = float(g.max()) if len(g) else 0.0
            a.info[f"{args.prefix}energy"] = float(res["energy"][0])
            a.info["source"] = f"{path}@{k}"
            frames.append(a)
            n_atoms += len(a)
            if len(g) and g.max() > worst[0]:
                worst = (float(g.max()), k)
            over = int(np.count_nonzero(g > args.threshold))
            n_over, c_over = n_over + over, c_over + bool(over)
            n_unseen, c_unseen = n_unseen + int(flag.sum()), c_unseen + bool(flag.any())
        print(f"{path}: {len(structs)} structures, {n_atoms} atoms; largest grade {worst[0]:.3g}"
              + (f" (structure {worst[1]})" if worst[1] is not None else "")
              + f"; {n_over} atoms in {c_over} structures above {args.threshold:g}; {n_unseen} atoms in {c_unseen} "
              "structures in unseen species environments")
    if args.output:
        ase.io.write(args.output, frames, format="extxyz")
        print(f"wrote {args.output} (per atom: extrapolation_grade, {args.prefix}energies, unseen_species)")
    return 0


def _cmd_select(args) -> int:
    import ase.io

    from .grade import select_configurations

    pot = _graded_model(args.model)
    structs = _read_structures(args.candidates)
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    grades = pot.compute([a for _, _, a in structs], forces=False, stress=False, grades=True)["extrapolation_grades"]
    pos, worst = 0, []
    for _, _, a in structs:
        worst.append(float(grades[pos:pos + len(a)].max()) if len(a) else 0.0)
        pos += len(a)
    chosen = select_configurations(pot, [a for _, _, a in structs], args.n, threshold=args.threshold)
    print(f"{len(structs)} candidates, {sum(g > args.threshold for g in worst)} with a grade above "
          f"{args.threshold:g}; chose {len(chosen)} (each extends the training active set the most, given the "
          "ones before):")
    frames = []
    for rank, i in enumerate(chosen, start=1):
        path, k, a = structs[i]
        print(f"  {rank:>3}. {path} structure {k} ({len(a)} atoms, largest grade {worst[i]:.3g})")
        a = a.copy()
        a.calc = None
        a.info["source"] = f"{path}@{k}"
        a.info["max_extrapolation_grade"] = worst[i]
        frames.append(a)
    if len(chosen) < args.n:
        print(f"only {len(chosen)} of the candidates extend the active set beyond the threshold {args.threshold:g}")
    ase.io.write(args.output, frames, format="extxyz")
    print(f"wrote {args.output}: label these (reference energies and forces) and add them to the training data")
    return 0


def _cmd_scan(args) -> int:
    from .config import load_config
    from .scan import scan

    cfg = load_config(args.config)
    if not cfg.get("scan"):
        raise ValueError(f"{args.config}: no [scan] section (e.g. order = [2, 3], rank = [2, 4])")
    scan(cfg, data_dir=args.data_dir, progress=not args.quiet, out=print)
    return 0


def _cmd_lammps(args) -> int:
    from .lammps import run_input

    try:
        cb = run_input(args.input, args.model, args.species, fix_id=args.fix_id, skin=args.skin,
                       log_file=args.log, screen=not args.quiet, variables=args.var or (),
                       extrapolation="off" if args.no_grades else "warn", grade_threshold=args.grade_threshold,
                       allow_pair_style=args.with_pair_style, summary_interval=args.summary_interval)
    except RuntimeError as e:  # the model failed during the run (LAMMPS stopped via fix halt)
        print(f"etnpot lammps: error: {e}", file=sys.stderr)
        return 1
    logging.getLogger(__name__).info("etnpot lammps: %d evaluations, %d pair-list builds, %.1f s in the model",
                                     cb.n_calls, cb.n_rebuilds, cb.timings["model"])
    return 0


def _model_data(args):
    """The model of ``args.model``, the training and validation splits of its fit configuration
    (``--config`` or the one recorded in the model), that fit's loss weights and ridge, and a cell
    of >= 1,000 atoms (from the largest validation cell) to time the evaluation on."""
    import numpy as np

    from .config import load_config
    from .io import load
    from .objective import Weights
    from .workflow import read_splits

    pot = load(args.model)
    if args.config:
        cfg = load_config(args.config)
    else:
        cfg = ((pot.metadata.get("provenance") or {}).get("config"))
        if not cfg:
            raise ValueError(f"{args.model} records no fit configuration: give --config")
    train, validation, _ = read_splits(cfg, data_dir=args.data_dir)
    if not validation:
        raise ValueError("the configuration gives no validation split (validation_fraction or validation files)")
    w = cfg.get("weights") or {}
    weights = Weights(**{k: w[k] for k in ("energy", "forces", "stress", "config_types") if k in w})
    big = max(validation, key=lambda c: len(c.atoms)).atoms
    reps = int(np.ceil((1000 / len(big)) ** (1 / 3))) if all(big.pbc) else 1
    ridge = float((cfg.get("fit") or {}).get("ridge", D.FIT["ridge"]))
    return pot, train, validation, weights, ridge, big.repeat((reps, reps, reps))


def _cmd_export(args) -> int:
    from .lammps_export import export

    out = args.output or (args.model[:-4] if args.model.endswith(".etn") else args.model) + ".etnlmp"
    print(export(args.model, out))
    return 0


def _cmd_lammps_plugin(args) -> int:
    from .lammps_export import build_plugin

    try:
        print(build_plugin(force=args.rebuild, openmp=not args.no_openmp))
    except RuntimeError as e:
        print(f"etnpot lammps-plugin: error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_compress(args) -> int:
    import os

    from .compress import compress
    from .fit import FitSettings

    pot, train, validation, weights, ridge, timing = _model_data(args)
    new, rep = compress(pot, args.channels, train, validation, weights, FitSettings(sweeps=args.sweeps, ridge=ridge),
                        timing_atoms=timing, progress=not args.quiet)
    out = args.output or os.path.splitext(args.model)[0] + f"_c{args.channels}.etn"
    new.save(out)
    print(f"channels       {rep['n_channels_before']} -> {rep['n_channels']} (discarded share per l: "
          + ", ".join(f"{d:.2g}" for d in rep["discarded"]) + ")")
    _print_smaller_model(rep, timing, [("errors_before", "validation before"), ("errors_projected", "validation projected"),
                                       ("errors_after", f"validation after {args.sweeps} sweeps")],
                         f"{out} (no extrapolation grades: run etnpot fit to get them)", args.json)
    return 0


def _print_smaller_model(rep, timing, tables, saved, json_path):
    """The common end of ``compress`` and ``prune``: parameters, time per atom, the validation
    tables ``[(key, title)]``, where the model went, and the report as JSON (written atomically)."""
    import os

    from .metrics import format_error_table

    print(f"parameters     {rep['num_parameters_before']} -> {rep['num_parameters']}")
    print(f"time per atom  {rep['us_per_atom_before']:.1f} -> {rep['us_per_atom_after']:.1f} µs (energy + forces, "
          f"{len(timing)} atoms, this machine)")
    for key, title in tables:
        print(format_error_table(rep[key], title))
    print(f"saved          {saved}")
    if json_path:
        tmp = json_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(rep, fh, indent=2, default=str)
        os.replace(tmp, json_path)


def _cmd_prune(args) -> int:
    import os

    from .prune import prune

    pot, train, validation, weights, ridge, timing = _model_data(args)
    rep = prune(pot, validation, args.tolerance, train=train, weights=weights, ridge=ridge, timing_atoms=timing,
                progress=not args.quiet)
    out = args.output or os.path.splitext(args.model)[0] + "_pruned.etn"
    pot.save(out)
    print(f"tolerance      {rep['tolerance']:g}: dropped {len(rep['dropped'])} coupling paths")
    for name, c in rep["contributions"].items():
        print(f"  {name:<28} contribution {c:.3g}")
    print(f"bonds          {'; '.join(rep['bonds'])}")
    _print_smaller_model(rep, timing, [("errors_before", "validation before"), ("errors_after", "validation after")],
                         out, args.json)
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(out=args.output, progress=not args.quiet)


def _model_data_arguments(p, output_help):
    """The options of the commands that rework a fitted model on its fit's data (:func:`_model_data`)."""
    p.add_argument("--config", default=None, help="the fit's TOML (default: the configuration recorded in the model)")
    p.add_argument("--data-dir", default=None, help="base directory of relative data paths")
    p.add_argument("--output", default=None, help=output_help)
    p.add_argument("--json", default=None, help="write the report as JSON here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _silence_stdout():
    """Point stdout at /dev/null, so that the interpreter's final flush to a closed pipe raises
    nothing (Python's documented recipe for SIGPIPE)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (e.g. captured by tests)
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="etnpot", description="Equivariant tensor-network interatomic potentials")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"etnpot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the header and counts as JSON")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("fit", help="fit a model from a TOML configuration")
    p.add_argument("config")
    p.add_argument("--data-dir", default=None, help="base directory of relative data paths (else $ETNPOT_DATA, ../shared/data)")
    p.add_argument("--output", default=None, help="model file (overrides [output] model)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint named in [output]")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: accept changed data, weights or fit settings (recorded in the model)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fit)
    p = sub.add_parser("scan", help="fit a grid of models: parameters vs error vs speed (rank/accuracy trade-off)")
    p.add_argument("config")
    p.add_argument("--data-dir", default=None, help="base directory of relative data paths")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_scan)
    p = sub.add_parser("eval", help="errors of a model on data (and predictions to extxyz)")
    p.add_argument("model")
    p.add_argument("data", nargs="+", help="mlearn/FitSNAP JSON (.json, .json.xz, dir, .tar.xz) or extxyz")
    p.add_argument("--json", default=None, help="write the error table as JSON here")
    p.add_argument("--output", default=None, help="write predictions (and references) to this extxyz file")
    p.add_argument("--prefix", default="ETN_", help="key prefix of predictions in the extxyz output")
    p.add_argument("--plot", nargs="?", const="", default=None, metavar="PNG",
                   help="parity plot of energies and forces (default name MODEL_eval_parity.png; needs matplotlib)")
    p.add_argument("--energy-key", default="energy")
    p.add_argument("--forces-key", default="forces")
    p.add_argument("--stress-key", default="stress")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("grade", help="per-atom extrapolation grades, energies and unseen-species flags of structures")
    p.add_argument("model")
    p.add_argument("files", nargs="+", help="structures (any format ASE reads, e.g. an MD trajectory)")
    p.add_argument("--output", default=None, help="write the structures with the per-atom arrays to this extxyz file")
    p.add_argument("--threshold", type=float, default=D.EXTRAPOLATION["grade_threshold"],
                   help=f"count atoms above this grade (default {D.EXTRAPOLATION['grade_threshold']:g})")
    p.add_argument("--prefix", default="ETN_", help="key prefix of the predicted energies (default ETN_)")
    p.set_defaults(func=_cmd_grade)
    p = sub.add_parser("select", help="choose the N candidate structures that most extend the training active set "
                                      "(active learning: label these next)")
    p.add_argument("model")
    p.add_argument("candidates", nargs="+", help="candidate structures (any format ASE reads)")
    p.add_argument("-n", type=int, required=True, help="how many to choose")
    p.add_argument("--output", required=True, help="extxyz file of the chosen structures")
    p.add_argument("--threshold", type=float, default=1.0,
                   help="choose only structures with a grade above this (default 1: outside the active set's span)")
    p.set_defaults(func=_cmd_select)
    p = sub.add_parser("lammps", help="run a LAMMPS input whose potential is 'fix etn all external pf/callback 1 1' "
                                      "(also under mpiexec -n N)")
    p.add_argument("input", help="LAMMPS input file (units metal; no pair_style; the fix line in its place)")
    p.add_argument("--model", required=True, help="ETN model file (.etn)")
    p.add_argument("--species", nargs="+", required=True, help="chemical symbol of LAMMPS type 1, 2, ...")
    p.add_argument("--fix-id", default="etn", help="ID of the fix external (default etn)")
    p.add_argument("--skin", type=float, default=1.0, help="neighbour skin in Å (sets LAMMPS's neighbor)")
    p.add_argument("--log", default="log.lammps", help="LAMMPS log file ('none': no log)")
    p.add_argument("--var", nargs=2, action="append", metavar=("NAME", "VALUE"), help="LAMMPS -var NAME VALUE")
    p.add_argument("--grade-threshold", type=float, default=D.EXTRAPOLATION["grade_threshold"],
                   help=f"warn above this extrapolation grade (default {D.EXTRAPOLATION['grade_threshold']:g})")
    p.add_argument("--summary-interval", type=int, default=D.EXTRAPOLATION["summary_interval"],
                   help="after the first extrapolation warning, one summary per this many steps "
                        f"(default {D.EXTRAPOLATION['summary_interval']}; 0: only at the end)")
    p.add_argument("--no-grades", action="store_true", help="do not compute extrapolation grades")
    p.add_argument("--with-pair-style", action="store_true",
                   help="allow a pair_style in the input: its energy is added to the model's (e.g. ZBL)")
    p.add_argument("-q", "--quiet", action="store_true", help="no LAMMPS screen output")
    p.set_defaults(func=_cmd_lammps)
    p = sub.add_parser("export", help="write the file that pair_style etn reads (pair_coeff * * OUT El1 El2 ...)")
    p.add_argument("model", help="ETN model file (.etn; its .grade file is included when present)")
    p.add_argument("output", nargs="?", default=None, help="output file (default MODEL with .etnlmp)")
    p.set_defaults(func=_cmd_export)
    p = sub.add_parser("lammps-plugin", help="build pair_style etn against the installed LAMMPS (cached) and print "
                                             "the path for 'plugin load'")
    p.add_argument("--rebuild", action="store_true", help="compile again even if a cached build exists")
    p.add_argument("--no-openmp", action="store_true", help="build without OpenMP threads")
    p.set_defaults(func=_cmd_lammps_plugin)
    p = sub.add_parser("prune", help="drop coupling paths whose contribution to the validation predictions is "
                                     "below a tolerance, refit, report parameters, time and errors")
    p.add_argument("model")
    p.add_argument("--tolerance", type=float, required=True,
                   help="relative contribution (to the validation energies or forces) below which a path is dropped")
    _model_data_arguments(p, "pruned model file (default MODEL_pruned.etn)")
    p.set_defaults(func=_cmd_prune)
    p = sub.add_parser("compress", help="fewer radial channels (species compression), refit, report parameters, "
                                        "time and errors")
    p.add_argument("model")
    p.add_argument("--channels", type=int, required=True, help="radial channels per l after the compression")
    p.add_argument("--sweeps", type=int, default=D.COMPRESS["sweeps"], help="ALS sweeps of the refit "
                   f"(default {D.COMPRESS['sweeps']})")
    _model_data_arguments(p, "compressed model file (default MODEL_cN.etn)")
    p.set_defaults(func=_cmd_compress)
    p = sub.add_parser("demo", help="the main job on the embedded default (no arguments needed)")
    p.add_argument("--output", default="etnpot-demo.etn", help="where to save the model")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for h in logging.getLogger().handlers:  # the screen keeps its level while a fit's log file records INFO
        h.setLevel(level)
    progress = logging.getLogger("etnpot.progress")  # a fit's line per sweep where stderr is no terminal
    for h in [h for h in progress.handlers if getattr(h, "_etnpot_cli", False)]:
        progress.removeHandler(h)  # an earlier main() in this process: its stderr may be another
    h = logging.StreamHandler(sys.stderr)
    h._etnpot_cli = True
    h.setFormatter(logging.Formatter("%(message)s"))
    progress.addHandler(h)
    progress.setLevel(logging.INFO)
    progress.propagate = False
    import warnings

    from .grade import ExtrapolationWarning

    plain = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):  # no source line between LAMMPS's thermo lines
        if issubclass(category, ExtrapolationWarning):
            return f"WARNING etnpot: {message}\n"
        return plain(message, category, filename, lineno, line)

    warnings.formatwarning = one_line
    try:
        rc = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at the interpreter's exit
        return rc
    except BrokenPipeError:  # the reader went away (etnpot info --json m.etn | head): not an error of etnpot
        _silence_stdout()
        return 0
    except (FileNotFoundError, ValueError, KeyboardInterrupt) as e:
        if isinstance(e, KeyboardInterrupt):
            print(f"etnpot {args.command}: interrupted; a checkpoint (if configured) holds the last completed sweep",
                  file=sys.stderr)
            return 130
        print(f"etnpot {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
