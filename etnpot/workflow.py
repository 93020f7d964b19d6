"""From a configuration to a saved, validated model: the job behind ``etnpot fit``."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

from . import defaults
from .config import ConfigError, resolve_data_root, validate_config
from .data import DataError, read_dataset, split_folds, split_train_validation
from .fit import ALSFitter, FitSettings, Weights
from .growth import GrowSettings, grow, plot_growth
from .metrics import format_error_table
from .objective import Objective
from .potential import ETNPotential, _jsonable_rank

__all__ = ["fit_potential", "run_fit", "read_files", "file_sha256"]

log = logging.getLogger(__name__)


def _peak_rss_mb():
    """Peak resident memory of this process so far, in MB of 10^6 bytes (``None`` where
    ``resource`` is missing).  With Dask workers it is the client's only."""
    try:
        import resource
        import sys

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / 1e6 if sys.platform == "darwin" else kb / 1e3  # bytes on macOS, kB on Linux
    except ImportError:  # pragma: no cover (Windows)
        return None


def file_sha256(path) -> str:
    h = hashlib.sha256()
    if os.path.isdir(path):
        for root, _, files in sorted(os.walk(path)):
            for f in sorted(files):
                with open(os.path.join(root, f), "rb") as fh:
                    h.update(fh.read())
        return h.hexdigest()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_path(p, root=None, cdir=None) -> str:
    """Where the data file ``p`` of a configuration is: as given if absolute; else the first that
    exists of ``root/p`` (the data root, :func:`etnpot.config.resolve_data_root`) and ``cdir/p``
    (the configuration's folder); else ``root/p`` (or ``cdir/p``, or ``p``) for the error message.
    So a config next to its data works even where a shared data root exists."""
    if os.path.isabs(p):
        return p
    cands = [os.path.join(b, p) for b in (root, cdir) if b]
    return next((c for c in cands if os.path.exists(c.split("::")[0])), cands[0] if cands else p)


def read_files(paths, root=None, cdir=None, **keys):
    """Read and concatenate data files (relative paths under ``root``, else ``cdir``: :func:`data_path`)."""
    out, prov = [], []
    for p in paths:
        full = data_path(p, root, cdir)
        if not os.path.exists(full.split("::")[0]):
            where = " and ".join(b for b in (root, cdir) if b)
            raise FileNotFoundError(f"data file not found: {p}" + (f" (looked under {where})" if where else ""))
        configs = read_dataset(full, **{k: v for k, v in keys.items() if v is not None})
        out += configs
        prov.append({"path": os.path.abspath(full), "sha256": file_sha256(full.split("::")[0]), "n_configs": len(configs)})
    return out, prov


def output_paths(o: dict, cdir: str) -> dict:
    """The files a fit writes, ``{config key: path or None}``, from ``[output]``: ``"auto"`` names
    the checkpoint, report and log after the model (``m.etn`` -> ``m.ckpt``, ``m.report.json``,
    ``m.log``); ``false`` writes none."""
    model = _rel(o["model"], cdir)
    stem = model[:-4] if model.endswith(".etn") else model
    auto = {"checkpoint": stem + ".ckpt", "report": stem + ".report.json", "log": stem + ".log"}
    out = {"[output] model": model, "[output] model (its grade file)": model + ".grade"}
    for key in ("checkpoint", "report", "log"):
        v = o.get(key)
        out[f"[output] {key}"] = auto[key] if v == "auto" else (_rel(v, cdir) if v else None)
    if out["[output] checkpoint"]:
        out["[output] checkpoint (its best model)"] = out["[output] checkpoint"] + ".best"
    return out


def fit_potential(config=None, *, data_dir=None, resume: bool = False, allow_changes: bool = False,
                  progress: bool = True, **sections):
    """What ``etnpot fit CONFIG.toml`` runs, from Python: the checks, the fit, the candidates, the
    active set and species environments, the model file, checkpoint, report and log.

    ``config``: a TOML file's path, a dict of sections, or ``None``; ``sections`` (``data=``,
    ``model=``, ``fit=``, ``weights=``, ``output=``, ...) add to or override its sections key by
    key, e.g. ``fit_potential(data={"train": ["train.xyz"]}, model={"species": ["Si"]})``.
    Relative paths are taken relative to the TOML file (else the working directory).  Returns
    ``(potential, report)``; the same inputs give the same model file as the command line.
    """
    from .config import load_config

    if config is None:
        cfg = {}
    elif isinstance(config, dict):
        cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    else:
        cfg = load_config(config)
    for name, values in sections.items():
        if not isinstance(values, dict):
            raise ConfigError(f"fit_potential: {name}= must be a dict of [{name}] keys, got {type(values).__name__}")
        cfg[name] = {**cfg.get(name, {}), **values}
        if name == "model":
            cfg["_model_given"] = sorted(set(cfg.get("_model_given", [])) | set(values))
    return run_fit(cfg, data_dir=data_dir, resume=resume, progress=progress, allow_changes=allow_changes)


def run_fit(cfg: dict, data_dir=None, resume: bool = False, progress: bool = True, out=None,
            allow_changes: bool = False):
    """Run the fit described by ``cfg`` (see :mod:`etnpot.config`); returns ``(potential, report)``.

    Writes the model, and by default (``[output]`` ``"auto"``) a checkpoint after every sweep, the
    JSON report and a log file named after the model.  Every input and output is checked before
    the first sweep (:mod:`etnpot.preflight`).  ``resume``: continue from the checkpoint (an error
    if there is none, or if the data, weights or fit settings differ from the checkpoint's, unless
    ``allow_changes``, which records the changes in the model's provenance).  The error tables go
    to ``out`` (a callable taking a string; default: the log at INFO level).

    ``[fit] try_order4 = "auto"`` applies where ``[model]`` does not name ``order`` or ``rank``:
    for a config from :func:`etnpot.config.load_config`, what its file named (recorded as
    ``cfg["_model_given"]`` when it was read: set ``order`` or ``rank`` in the file, or
    ``try_order4 = false``, rather than in the dict afterwards); for a plain dict, its keys.
    """
    prepared = _prepare(cfg, data_dir)
    cfg, cdir, root = prepared
    outputs = output_paths(cfg["output"], cdir)
    d = cfg["data"]
    source = cfg.get("_path") or "config"
    inputs = [data_path(p, root, cdir) for p in d["train"] + d["validation"] + d["test"]]
    if d["test_list"]:
        inputs.append(data_path(d["test_list"], root, cdir))
    if cfg.get("_path"):
        inputs.append(cfg["_path"])
    from .preflight import check_outputs

    ckpt = outputs["[output] checkpoint"]
    if resume and not ckpt:
        raise ConfigError(f"{source}: --resume needs a checkpoint, and [output] checkpoint = false")
    if resume and not os.path.exists(ckpt):
        raise ConfigError(f"{source}: --resume: no checkpoint at {ckpt} (fit without --resume to start)")
    check_outputs(outputs, inputs, source)
    handler = None
    if outputs["[output] log"]:
        handler = logging.FileHandler(outputs["[output] log"], mode="a" if resume else "w", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        pkg = logging.getLogger("etnpot")
        old_level = pkg.level
        pkg.addHandler(handler)
        if pkg.getEffectiveLevel() > logging.INFO:
            pkg.setLevel(logging.INFO)
    try:
        return _run_fit(prepared, outputs, resume, progress, out, allow_changes)
    finally:
        if handler is not None:
            pkg.removeHandler(handler)
            pkg.setLevel(old_level)
            handler.close()


def _run_fit(prepared, outputs: dict, resume: bool, progress: bool, out, allow_changes: bool):
    """The fit of :func:`run_fit`, its inputs checked and its outputs named."""
    out = out or log.info
    cfg, cdir, root = prepared
    d, m, f, w = cfg["data"], cfg["model"], cfg["fit"], cfg["weights"]
    keys = _reader_keys(d)
    full = lambda paths: [data_path(p, root, cdir) for p in paths]
    dist = cfg["distributed"]
    client = None
    t0 = time.perf_counter()
    if dist["scheduler"]:
        # distributed: the workers count and read the files; the client never holds the data
        from .distributed import file_chunks, start_client

        if d["validation_fold"] is not None:
            raise ConfigError(f"{cfg.get('_path') or 'config'}: [data] validation_fold is not supported with "
                              "[distributed]; use validation_fraction or validation files")
        if d["test_list"]:  # the workers' chunks would keep the listed test configurations in training
            raise ConfigError(f"{cfg.get('_path') or 'config'}: [data] test_list is not supported with [distributed]; "
                              "give the test configurations as [data] test files")
        client = start_client(dist["scheduler"], dist["n_workers"])
        log.info("dask client: %s", client)
        for p in full(d["train"] + d["validation"] + d["test"]):
            if not os.path.exists(p):
                raise FileNotFoundError(f"data file not found: {p}")
        vfrac = 0.0 if d["validation"] else d["validation_fraction"]
        train, validation = file_chunks(client, full(d["train"]), f["chunk_atoms"], keys, vfrac, f["seed"])
        if d["validation"]:
            validation, _ = file_chunks(client, full(d["validation"]), f["chunk_atoms"], keys)
        test = file_chunks(client, full(d["test"]), f["chunk_atoms"], keys)[0] if d["test"] else []
        prov = lambda paths: [{"path": os.path.abspath(p), "sha256": file_sha256(p)} for p in full(paths)]
        prov_train, prov_val, prov_test = prov(d["train"]), prov(d["validation"]), prov(d["test"])
        species = m["species"]
        if not species:
            from .distributed import map_reduce
            from .chunks import species_of

            found = set()
            for s in map_reduce(client, species_of, train, reduce=False):
                found |= set(s)
            species = _by_atomic_number(found)
    else:
        (train, validation, test), (prov_train, prov_val, prov_test) = _read_local_splits(cfg, root, cdir)
        species = m["species"] or _by_atomic_number({s for c in train for s in c.atoms.get_chemical_symbols()})
        from .preflight import check_inputs

        check_inputs(train, validation, test, {"train": prov_train, "validation": prov_val, "test": prov_test},
                     species, Weights(energy=w["energy"], forces=w["forces"], stress=w["stress"],
                                      config_types=w["config_types"]), m["r_cut"], cfg.get("_path") or "config",
                     {k: d[f"{k}_key"] for k in ("energy", "forces", "stress")})
    log.info("data: %d train, %d validation, %d test %s (%.1f s)", len(train), len(validation), len(test),
             "chunks" if client else "configurations", time.perf_counter() - t0)
    out_model = outputs["[output] model"]
    ckpt = outputs["[output] checkpoint"]
    settings = FitSettings(**{k: f[k] for k in defaults.FIT})
    weights = Weights(energy=w["energy"], forces=w["forces"], stress=w["stress"], config_types=w["config_types"])
    grow_settings = GrowSettings.from_dict(cfg["grow"]) if cfg.get("grow") is not None else None
    t_fit = time.perf_counter()
    if resume:
        log.info("resuming from checkpoint %s", ckpt)
        built = ETNPotential.build(species, **_model_kwargs(m))
        fitter = ALSFitter.resume(ckpt, train, validation, weights, settings, progress=progress, client=client,
                                  expect=_resolved_hyperparameters(built), allow_changes=allow_changes)
        pot = fitter.pot
        for what, have, want in (("species", pot.species, list(species)),
                                 ("bonds", [str(b) for b in pot.tt.bonds], [str(b) for b in built.tt.bonds])):
            if have != want:
                raise ValueError(f"{ckpt}: checkpoint of a different model: {what} {have} in the checkpoint, {want} "
                                 "requested; remove it or fit without --resume")
    else:
        pot = ETNPotential.random(species, seed=f["seed"], init=f["init"], noise=f["init_noise"], **_model_kwargs(m))
        fitter = ALSFitter(pot, train, validation, weights, settings, e0=f["e0"], checkpoint=ckpt,
                           progress=progress, client=client)
    if grow_settings is not None:
        grow_settings.check_start(pot)  # before the fit: a budget below the starting model is an error
    seconds_before = fitter.seconds_before  # a resumed fit: its time up to the checkpoint
    fitter.run()
    model_choice, kept_model = None, m
    try_order4 = f["try_order4"]
    if try_order4 == "auto" and {"order", "rank"} & set(cfg["_model_given"]):
        try_order4 = False  # the config asked for its order or rank: fit that model
    if (f["size_to_data"] or try_order4 is not False) and grow_settings is None and client is None:
        if validation:
            pot, fitter, model_choice, kept_model = _choose_model(
                pot, fitter, species, m, f, train, validation, weights, settings, progress,
                seconds_before + time.perf_counter() - t_fit, try_order4)
        else:
            log.warning("size_to_data and try_order4 need a validation set to choose on; none here, so only the "
                        "configured model is fitted")
    elif try_order4 is True:
        log.warning("try_order4 is not used with [grow] or [distributed]: only the configured model is fitted")
    errors = fitter.errors
    growth = None
    if grow_settings is not None:  # [grow]: the fitted model is the start; the last kept step is saved
        pot, growth = grow(pot, fitter.loss.train, fitter.loss.validation, weights, settings, grow_settings,
                           fit_start=False, progress=progress, e0=f["e0"], client=client,
                           start_seconds=time.perf_counter() - t_fit)
        errors = Objective(pot, fitter.loss.train, fitter.loss.validation, weights, settings.ridge,
                           settings.chunk_atoms, settings.memory_mb, client).errors
    fit_seconds = time.perf_counter() - t_fit
    if f["active_set"] and client is None:
        from .grade import fit_active_set

        t_g = time.perf_counter()
        aset = fit_active_set(pot, train, chunk_atoms=f["chunk_atoms"])
        log.info("active set for the extrapolation grade: rank %d (%.1f s)", aset.rank, time.perf_counter() - t_g)
    elif f["active_set"]:
        log.info("distributed fit: no active set computed (run etnpot.grade.fit_active_set on the training data)")
    if client is None and "species_environments" not in pot.metadata:  # fit_active_set records them too
        from .environments import record_species_environments

        record_species_environments(pot, train, f["chunk_atoms"])
    elif client is not None:
        log.info("distributed fit: species environments not recorded (etnpot.environments.record_species_environments)")
    config = {k: v for k, v in cfg.items() if not k.startswith("_")}
    config["model"] = dict(kept_model, rank=_jsonable_rank(kept_model["rank"]))
    pot.metadata["provenance"] = {"config": config,  # [model]: the model kept (size_to_data, try_order4)
                                  "data": {"train": prov_train, "validation": prov_val, "test": prov_test}}
    pot.save(out_model)
    report = {"model": out_model, "num_parameters": pot.num_parameters, "fit_seconds": seconds_before + fit_seconds,
              "fit_seconds_before_resume": seconds_before,
              "train": errors(train), "validation": errors(validation) if validation else None,
              "test": errors(test) if test else None,
              # per sweep: the training objective and the validation loss and errors (convergence)
              "history": json.loads(json.dumps([{k: h[k] for k in ("sweep", "train_loss", "validation_loss", "validation",
                                                                   "num_parameters") if k in h}
                                                 for h in fitter.history], default=float)),
              "best_sweep": fitter.best[1] if fitter.best else None,
              "peak_rss_mb": _peak_rss_mb()}
    if model_choice is not None:
        report["model_choice"] = model_choice
    if growth is not None:
        report["growth"] = growth
        report["growth_plot"] = plot_growth(growth, os.path.splitext(out_model)[0] + "_growth.png")
    if client is None:  # the pictures, where matplotlib is installed (etnpot.plots)
        report["plots"] = _fit_plots(pot, fitter, train, validation, test, report, os.path.splitext(out_model)[0])
    out(f"fitted {pot} in {fit_seconds:.1f} s; saved {out_model}\n{pot.describe_parameters()}")
    if model_choice is not None:
        out(format_candidates(model_choice))
    for name in ("train", "validation", "test"):
        if report[name]:
            out(format_error_table(report[name], f"\n{name} errors"))
    if outputs["[output] report"]:
        path = outputs["[output] report"]
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(report, fh, indent=2, default=float)
        os.replace(tmp, path)
    if client is not None:
        client.close()
    return pot, report


def format_candidates(choice: list) -> str:
    """The table of the candidate models a fit tried (the report's ``"model_choice"``) and why it
    kept the one it kept."""
    rows = ["\ncandidates (kept: the lowest validation loss, the fit's objective on the validation set)",
            f"  {'order':>5} {'l_max':>5} {'rank':<18} {'parameters':>10} {'val E meV/atom':>14} {'val F eV/Å':>10} "
            f"{'val loss':>10} {'seconds':>8}  kept"]
    for c in choice:
        v = c.get("validation") or {}
        e, f = (v.get("energy") or {}).get("rmse"), (v.get("forces") or {}).get("rmse")
        rows.append(f"  {c['order']:>5} {c['l_max']:>5} {str(c['rank']):<18} {c['num_parameters']:>10} "
                    f"{'-' if e is None else f'{e:.3f}':>14} {'-' if f is None else f'{f:.4f}':>10} "
                    f"{c['validation_loss']:>10.4g} {c['seconds']:>8.1f}  {'yes' if c.get('kept') else ''}")
    return "\n".join(rows)


def _fit_plots(pot, fitter, train, validation, test, report, stem) -> list:
    """``STEM_parity.png`` (train, validation, test) and ``STEM_convergence.png`` (validation error
    per sweep); the paths written (none without matplotlib)."""
    from . import plots
    from .metrics import predict

    if plots.pyplot() is None:
        return []
    sets = {}
    for name, configs in (("train", train), ("validation", validation), ("test", test)):
        if configs:
            sub = configs if len(configs) <= plots.MAX_CONFIGS else configs[:: -(-len(configs) // plots.MAX_CONFIGS)]
            sets[name] = (sub, predict(pot, sub))
    written = [plots.parity(stem + "_parity.png", sets, f"{os.path.basename(stem)}: {pot.describe_parameters()}"),
               plots.convergence(stem + "_convergence.png", report["history"], report["best_sweep"],
                                 os.path.basename(stem))]
    return [w for w in written if w]


def _choose_model(pot, fitter, species, m, f, train, validation, weights, settings, progress, seconds, try_order4):
    """:mod:`etnpot.sizing`: fit the candidates besides the configured model (smaller ones where
    the training data are thin, ``[fit] size_to_data``; the order-4 alternative, ``[fit]
    try_order4``, ``"auto"`` resolved by the caller; no checkpoints) and keep the one with the lowest validation loss.  Returns
    ``(pot, fitter, model_choice, kept)``; ``model_choice`` (the report's entry, one per fitted
    candidate) is ``None`` where there is no candidate; ``kept`` is the ``[model]`` section of the
    kept model (``m`` itself where no other candidate was kept)."""
    from .sizing import candidates, training_rows

    rows = training_rows(train, weights)
    others = candidates(species, _model_kwargs(m), rows, try_order4=try_order4, size_to_data=f["size_to_data"])
    if try_order4 is True and not any(kw["order"] != m["order"] for kw in others):
        log.warning("try_order4: no order-4 alternative to order %s with rank %r (it needs order 3 and an integer "
                    "rank >= 2)", m["order"], m["rank"])
    if not others:
        return pot, fitter, None, m

    def entry(kw, p, ftr, secs):
        return {"order": kw["order"], "l_max": kw["l_max"], "rank": _jsonable_rank(kw["rank"]),
                "num_parameters": p.num_parameters, "fitted_parameters": p.fitted_parameters,
                "rows_per_parameter": rows / p.fitted_parameters, "validation": ftr.errors(validation),
                "validation_loss": ftr.best[0], "seconds": secs}

    label = lambda kw: f"order {kw['order']}, l_max {kw['l_max']}, rank {kw['rank']}"
    log.info("the training data give %d rows, %.2f per fitted parameter of the configured model: fitting %s as well "
             "and keeping the best on validation ([fit] size_to_data, try_order4)", rows, rows / pot.fitted_parameters,
             "; ".join(label(kw) for kw in others))
    choice, fitted = [entry(_model_kwargs(m), pot, fitter, seconds)], [(pot, fitter)]
    for n, kw in enumerate(others, start=2):
        t = time.perf_counter()
        p = ETNPotential.random(species, seed=f["seed"], init=f["init"], noise=f["init_noise"], **kw)
        ftr = ALSFitter(p, train, validation, weights, settings, e0=f["e0"], progress=progress)
        ftr.label = f"candidate {n}/{len(others) + 1}: {ftr.label}"  # 1 is the configured model, fitted first
        ftr.run()
        choice.append(entry(kw, p, ftr, time.perf_counter() - t))
        fitted.append((p, ftr))
    best = min(range(len(choice)), key=lambda k: choice[k]["validation_loss"])
    for k, c in enumerate(choice):
        c["kept"] = k == best
        log.info("%s: %s, validation loss %.6g%s", label(c), fitted[k][0].describe_parameters(), c["validation_loss"],
                 " (kept)" if k == best else "")
    kept = dict(m, **([_model_kwargs(m)] + others)[best])
    return fitted[best][0], fitted[best][1], json.loads(json.dumps(choice, default=float)), kept


def read_splits(cfg: dict, data_dir=None):
    """The train, validation and test configurations a fit of ``cfg`` uses, read locally.

    The same split as :func:`run_fit` (validation carved from training with ``[fit] seed``;
    a fixed test list removed from training first), so that other codes, e.g. the peer
    fits in ``fitting/peers``, can be trained and tested on exactly the same data.
    Returns ``(train, validation, test)``, lists of :class:`etnpot.data.Configuration`.
    """
    cfg, cdir, root = _prepare(cfg, data_dir)
    return _read_local_splits(cfg, root, cdir)[0]


def _prepare(cfg: dict, data_dir):
    """The validated config (without ``[scan]``), the folder relative paths refer to, and the data root."""
    given = cfg.get("_model_given", sorted(cfg.get("model") or {}))  # a validated config keeps what its file named
    cfg = validate_config({k: v for k, v in cfg.items() if not k.startswith("_") and k != "scan"}) | {
        "_path": cfg.get("_path"), "_model_given": given}
    cdir = os.path.dirname(cfg["_path"]) if cfg.get("_path") else os.getcwd()
    return cfg, cdir, resolve_data_root(data_dir, cfg["data"]["root"], cdir)


def _read_local_splits(cfg, root, cdir=None):
    """``((train, validation, test), provenance)`` read in this process; validation carved with ``[fit] seed``."""
    d = cfg["data"]
    keys = _reader_keys(d)
    read = lambda paths: read_files(paths, root, cdir, **keys)
    train, prov_train = read(d["train"])
    if d["test_list"]:
        # a fixed test split given by configuration names (e.g. InP's test_split.txt)
        lst = data_path(d["test_list"], root, cdir)
        with open(lst) as fh:
            names = {ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")}
        held = [c for c in train if c.info.get("name") in names]
        if len(held) != len(names):
            raise DataError(f"{lst}: {len(names) - len(held)} listed test configurations are not in the training files")
        train = [c for c in train if c.info.get("name") not in names]
        test_from_list, prov_test_list = held, [{"path": os.path.abspath(lst), "sha256": file_sha256(lst)}]
    else:
        test_from_list, prov_test_list = [], []
    if d["validation"]:
        validation, prov_val = read(d["validation"])
    elif d["validation_fold"] is not None:
        try:
            train, validation = split_folds(train, *d["validation_fold"], seed=cfg["fit"]["seed"])
        except ValueError as e:
            raise DataError(f"[data] validation_fold = {d['validation_fold']}: {e} (the training configurations "
                            "left after test_list)") from e
        prov_val = []
    else:
        train, validation = split_train_validation(train, d["validation_fraction"], seed=cfg["fit"]["seed"])
        prov_val = []
    test, prov_test = read(d["test"]) if d["test"] else ([], [])
    test, prov_test = test + test_from_list, prov_test + prov_test_list
    if not train:
        raise DataError("the training set is empty")
    return (train, validation, test), (prov_train, prov_val, prov_test)


def _model_kwargs(m: dict) -> dict:
    """The :meth:`ETNPotential.build` keyword arguments named by a config's ``[model]`` section."""
    return {k: m[k] for k in ("r_cut", "order", "l_max", "rank", "n_basis", "n_channels", "species_rank", "r_min",
                              "o3", "bond_l_max")}


def _resolved_hyperparameters(built) -> dict:
    """The hyper-parameters that the model ``built`` from ``[model]`` records, with the defaults
    resolved (``r_min``, ``n_channels``, ``species_rank``: a checkpoint records the values, a config
    may leave them out), in JSON form (as read back from a checkpoint).  ``bond_l_max`` is left
    out: it is recorded as given (``None`` meaning ``l_max``), so the bonds are compared instead."""
    hyper = json.loads(json.dumps(built.metadata["hyperparameters"]))
    hyper.pop("bond_l_max", None)
    return hyper


def _reader_keys(d: dict) -> dict:
    """The reader keyword arguments named by a config's ``[data]`` section."""
    keys = dict(energy_key=d["energy_key"], forces_key=d["forces_key"], stress_key=d["stress_key"],
                config_type_key=d["config_type_key"])
    if d["shear_order"]:
        keys["shear_order"] = d["shear_order"]
    return keys


def _by_atomic_number(symbols) -> list:
    from ase.data import atomic_numbers

    return sorted(symbols, key=lambda s: atomic_numbers[s])


def _rel(p, base):
    return p if os.path.isabs(p) else os.path.join(base, p)
