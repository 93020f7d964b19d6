"""Fit configurations: a TOML file (``etnpot fit CONFIG.toml``) or the same dict from Python.

Sections and keys (all but ``data.train`` optional)::

    [data]
    root = "mlearn/data"                  # base of relative paths (see resolve_data_root); else beside the config
    train = ["Si/training.json.xz"]       # mlearn / FitSNAP JSON, extxyz, anything ase.io reads
    validation = []                       # if empty: carved from train (validation_fraction)
    validation_fraction = 0.1
    validation_fold = [0, 5]              # instead of the fraction: fold 0 of 5 (k-fold, stratified by config type; etnpot scan's folds)
    test = ["Si/test.json.xz"]            # only reported, never used to fit or tune
    test_list = "InP_JPCA2020/test_split.txt"   # or: names (<group>/<file>) of train configurations held out as test
    energy_key = "energy"; forces_key = "forces"; stress_key = "stress"; config_type_key = "config_type"

    [model]
    species = ["Si"]                      # default: all species found in the data
    r_cut = 5.0; r_min = 1.5; order = 3; l_max = 2; rank = 3   # rank: int or {l or "1e" = int}
    n_basis = 6; n_channels = 6; species_rank = 1; o3 = true

    [fit]
    sweeps = 6; ridge = 1e-8; two_site = false; max_rank = 8; cutoff = 0.0; lm_steps = 0; radial_steps = 0; max_radial_params = 600
    tol = 1e-4; patience = 2; chunk_atoms = 3000; seed = 0; species_tie = "auto"  # etnpot.defaults.SPECIES_TIE_MANY where 3+ species never meet in training
    init = "constant"; init_noise = 1e-3; e0 = "fit"   # or {Si = -5.4}
    active_set = true                     # compute the extrapolation grade's active set (local fits)
    size_to_data = true                   # thin data (< 5 rows per parameter): also fit lower l_max, keep the best on validation
    try_order4 = "auto"                   # several species, default order 3: also fit order 4 (non-scalar ranks - 1), keep the best on validation

    [weights]
    energy = 30000.0; forces = 1.0; stress = 0.0
    [weights.config_types.Surface]
    energy = 1000.0

    [output]
    model = "model.etn"                   # checkpoint, report, log: "auto" (named after the model) or false
    checkpoint = "auto"; report = "auto"; log = "auto"

    [grow]                                # optional: grow the fitted [model] step by step (etnpot.growth)
    target_forces_rmse = 0.1              # eV/Å, validation; target_energy_rmse in meV/atom
    max_parameters = 5000; max_seconds = 600
    tol = 0.01; sweeps = 3; steps = ["rank", "l_max", "n_basis", "order"]

    [distributed]                         # optional: assemble the local problems on Dask workers
    scheduler = "tcp://host:8786"         # or "local" (a LocalCluster of n_workers processes)
    n_workers = 2

Unknown or misspelled keys are errors, with a suggestion.
"""
from __future__ import annotations

import difflib
import logging
import os
import sys

from . import defaults as D

__all__ = ["load_config", "validate_config", "resolve_data_root", "ConfigError", "DEFAULTS"]

log = logging.getLogger(__name__)

# the values of [model], [fit] and [weights] (and the validation fraction) come from etnpot.defaults,
# the one definition shared with the Python API
DEFAULTS = {
    "data": {"root": None, "train": [], "validation": [], "validation_fraction": D.VALIDATION_FRACTION,
             "validation_fold": None, "test": [],
             "test_list": None, "energy_key": "energy", "forces_key": "forces", "stress_key": "stress",
             "config_type_key": "config_type", "shear_order": None},
    "model": {"species": None, **D.MODEL},
    "fit": {**D.FIT, "init": D.INIT["init"], "init_noise": D.INIT["noise"], "e0": D.E0, "active_set": D.ACTIVE_SET,
            "size_to_data": D.SIZE_TO_DATA, "try_order4": D.TRY_ORDER4},
    "weights": {**D.WEIGHTS, "config_types": {}},
    # "auto": named after the model (m.etn -> m.ckpt, m.report.json, m.log); false: not written
    "output": {"model": "model.etn", "checkpoint": "auto", "report": "auto", "log": "auto"},
    "distributed": {"scheduler": "", "n_workers": 2},
    "scan": None,  # free-form: checked by etnpot.scan (model keys with lists of values)
    "grow": None,  # free-form: checked by etnpot.growth.GrowSettings
}


class ConfigError(ValueError):
    """A fit configuration with unknown keys or bad values."""


def _toml_load(path):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e


def validate_config(cfg: dict, source: str = "config") -> dict:
    """Check keys against :data:`DEFAULTS` (with suggestions) and fill in defaults."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: expected a table of sections")
    out = {}
    for section in cfg:
        if section not in DEFAULTS:
            hint = difflib.get_close_matches(section, DEFAULTS, n=1)
            raise ConfigError(f"{source}: unknown section [{section}]" + (f"; did you mean [{hint[0]}]?" if hint else
                                                                          f"; known: {', '.join(DEFAULTS)}"))
    for section, defaults in DEFAULTS.items():
        if defaults is None:  # a free-form section
            if section in cfg:
                out[section] = dict(cfg[section])
            continue
        given = cfg.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key in given:
            if key not in defaults:
                hint = difflib.get_close_matches(key, defaults, n=1)
                raise ConfigError(f"{source}: unknown key '{key}' in [{section}]" +
                                  (f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(defaults)}"))
        merged = dict(defaults)
        merged.update(given)
        out[section] = merged
    # the [model] keys the config names itself (the rest are defaults): [fit] try_order4 = "auto"
    # only offers order 4 where neither order nor rank was asked for
    out["_model_given"] = sorted(cfg.get("model", {}))
    _check_types(out, source)
    for key in ("train", "validation", "test"):
        v = out["data"][key]
        out["data"][key] = [v] if isinstance(v, str) else list(v)
    if not out["data"]["train"]:
        raise ConfigError(f"{source}: [data] train must list at least one file")
    vf = out["data"]["validation_fold"]
    if vf is not None:
        if not (isinstance(vf, list) and len(vf) == 2 and all(type(v) is int for v in vf) and vf[1] >= 2
                and 0 <= vf[0] < vf[1]):
            raise ConfigError(f"{source}: [data] validation_fold must be [fold, folds] with 0 <= fold < folds and "
                              f"folds >= 2, got {vf!r}")
        if out["data"]["validation"]:
            raise ConfigError(f"{source}: [data] validation_fold and validation files exclude each other")
    m = out["model"]
    if m["r_min"] is not None and not (0 <= m["r_min"] < m["r_cut"]):
        raise ConfigError(f"{source}: [model] need 0 <= r_min < r_cut, got r_min={m['r_min']}, r_cut={m['r_cut']}")
    if "grow" in out:
        from .growth import GrowSettings

        try:
            GrowSettings.from_dict(out["grow"])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from e
    return out


# The type and range of every key that has one (the free-form sections are checked where they are used).
# A rule is (what it must be, test); the message names the section, the key, the rule and the value.
_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
_opt = lambda test: (lambda v: v is None or test(v))
_RULES = {
    "data": {"root": ("a path", _opt(lambda v: isinstance(v, str))),
             **{k: ("a file or a list of files", lambda v: isinstance(v, str) or
                    (isinstance(v, list) and all(isinstance(x, str) for x in v))) for k in ("train", "validation", "test")},
             "validation_fold": ("[fold, folds] with 0 <= fold < folds and folds >= 2",
                                 _opt(lambda v: isinstance(v, list) and len(v) == 2 and all(_int(x) for x in v)
                                      and v[1] >= 2 and 0 <= v[0] < v[1])),
             "validation_fraction": ("a number with 0 <= fraction < 1", lambda v: _num(v) and 0 <= v < 1),
             "test_list": ("a path", _opt(lambda v: isinstance(v, str))),
             **{k: ("a key name (a string)", lambda v: isinstance(v, str) and v != "")
                for k in ("energy_key", "forces_key", "stress_key", "config_type_key")},
             "shear_order": ('"xy,yz,xz" or "xy,xz,yz"', _opt(lambda v: v in ("xy,yz,xz", "xy,xz,yz")))},
    "model": {**{k: (f"an integer >= {lo}", (lambda lo: lambda v: _int(v) and v >= lo)(lo))
                 for k, lo in (("order", 1), ("l_max", 0), ("n_basis", 1))},
              "r_cut": ("a number > 0", lambda v: _num(v) and v > 0),
              "species": ('a list of chemical symbols, e.g. ["Si", "C"]', _opt(lambda v: isinstance(v, list))),
              "r_min": ("a number >= 0", _opt(lambda v: _num(v) and v >= 0)),
              "rank": ('an integer >= 1 or a table of them ({0 = 4, "1o" = 2})',
                       lambda v: (_int(v) and v >= 1) or (isinstance(v, dict) and len(v) > 0 and
                                                          all(_int(x) and x >= 1 for x in v.values()))),
              "n_channels": ("an integer >= 1", _opt(lambda v: _int(v) and v >= 1)),
              "species_rank": ("an integer >= 1", _opt(lambda v: _int(v) and v >= 1)),
              "o3": ("true or false", lambda v: isinstance(v, bool)),
              "bond_l_max": ("an integer >= 0", _opt(lambda v: _int(v) and v >= 0))},
    "fit": {"sweeps": ("an integer >= 1", lambda v: _int(v) and v >= 1),
            "ridge": ("a number >= 0", lambda v: _num(v) and v >= 0),
            "species_tie": ('a number >= 0 or "auto"', lambda v: v == "auto" or (_num(v) and v >= 0)),
            "size_to_data": ("true or false", lambda v: isinstance(v, bool)),
            "try_order4": ('"auto", true or false', lambda v: isinstance(v, bool) or v == "auto"),
            "two_site": ("true or false", lambda v: isinstance(v, bool)),
            "max_rank": ("an integer >= 1, a table of them or a list (one per sweep)",
                         _opt(lambda v: (_int(v) and v >= 1) or isinstance(v, (dict, list)))),
            "cutoff": ("a number >= 0", lambda v: _num(v) and v >= 0),
            **{k: ("an integer >= 0", lambda v: _int(v) and v >= 0)
               for k in ("lm_steps", "radial_steps", "max_radial_params", "max_lm_params", "max_supercore", "patience")},
            "tol": ("a number >= 0", lambda v: _num(v) and v >= 0),
            "chunk_atoms": ("an integer >= 1", lambda v: _int(v) and v >= 1),
            "memory_mb": ("a number > 0", lambda v: _num(v) and v > 0),
            "seed": ("an integer >= 0", lambda v: _int(v) and v >= 0),
            "init": ('"constant" or "random"', lambda v: v in ("constant", "random")),
            "init_noise": ("a number >= 0", lambda v: _num(v) and v >= 0),
            "e0": ('"fit" or a table {symbol = eV} for every species',
                   lambda v: v == "fit" or (isinstance(v, dict) and all(_num(x) for x in v.values()))),
            "active_set": ("true or false", lambda v: isinstance(v, bool))},
    "weights": {**{k: ("a number >= 0", lambda v: _num(v) and v >= 0) for k in ("energy", "forces", "stress")},
                "config_types": ("a table of tables ([weights.config_types.NAME] energy = ...)",
                                 lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()))},
    "output": {k: ("a file path, or false for none", (lambda v: isinstance(v, str) and v != "") if k == "model" else
                   _opt(lambda v: v is False or (isinstance(v, str) and v != "")))
               for k in ("model", "checkpoint", "report", "log")},
    "distributed": {"scheduler": ('an address ("tcp://host:8786"), "local", or "" for none', lambda v: isinstance(v, str)),
                    "n_workers": ("an integer >= 1", lambda v: _int(v) and v >= 1)},
}


def _check_types(cfg: dict, source: str) -> None:
    """Every key against its rule in :data:`_RULES`; the first violation is a :class:`ConfigError`."""
    for section, rules in _RULES.items():
        for key, (what, ok) in rules.items():
            v = cfg[section][key]
            if not ok(v):
                hint = ""
                if isinstance(v, str) and what.startswith(("a number", "an integer")):
                    hint = " (a string: write the number without quotes)"
                elif key == "species" and isinstance(v, str):
                    hint = f' (a string is not a list: write species = {[*_symbols(v)]!r})'.replace("'", '"')
                elif isinstance(v, str) and '"' in what:
                    close = difflib.get_close_matches(v, [w.strip('"') for w in what.split('"')[1::2]], n=1)
                    hint = f'; did you mean "{close[0]}"?' if close else ""
                raise ConfigError(f"{source}: [{section}] {key} must be {what}, got {v!r}{hint}")
    e0 = cfg["fit"]["e0"]
    species = cfg["model"]["species"]
    if species is not None:
        from ase.data import atomic_numbers

        bad = [s for s in species if not isinstance(s, str) or s not in atomic_numbers or s == "X"]
        if bad:
            raise ConfigError(f"{source}: [model] species: {bad[0]!r} is not a chemical symbol")
        if len(set(species)) != len(species):
            raise ConfigError(f"{source}: [model] species lists {sorted({s for s in species if species.count(s) > 1})} "
                              "more than once")
        if isinstance(e0, dict) and set(e0) != set(species):
            missing, extra = sorted(set(species) - set(e0)), sorted(set(e0) - set(species))
            raise ConfigError(f"{source}: [fit] e0 must give every species of [model] species {species}: " +
                              "; ".join(([f"missing {missing}"] if missing else []) +
                                        ([f"not in the model: {extra}"] if extra else [])))
    for name, w in cfg["weights"]["config_types"].items():
        for k, v in w.items():
            if k not in ("energy", "forces", "stress"):
                hint = difflib.get_close_matches(k, ("energy", "forces", "stress"), n=1)
                raise ConfigError(f"{source}: unknown key '{k}' in [weights.config_types.{name}]" +
                                  (f"; did you mean '{hint[0]}'?" if hint else "; known: energy, forces, stress"))
            if not (_num(v) and v >= 0):
                raise ConfigError(f"{source}: [weights.config_types.{name}] {k} must be a number >= 0, got {v!r}")


def _symbols(text: str) -> list:
    """``"SiC"`` -> ``["Si", "C"]`` (for the hint of a species string)."""
    import re

    return re.findall(r"[A-Z][a-z]?", text)


def load_config(path) -> dict:
    """Read and validate a TOML fit configuration; relative output paths are taken relative to it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path}")
    cfg = validate_config(_toml_load(path), path)
    cfg["_path"] = os.path.abspath(path)
    return cfg


def resolve_data_root(explicit=None, config_root=None, config_dir=None) -> str | None:
    """Where data paths are looked up, first match wins: ``explicit`` (a command-line option),
    ``$ETNPOT_DATA``, then ``../shared/data`` (relative to the working directory, then to this
    package's checkout); a relative ``[data] root`` is appended to that base (or taken relative
    to the config file if no base exists)."""
    candidates = [explicit, os.environ.get("ETNPOT_DATA")]
    here = os.path.dirname(os.path.abspath(__file__))
    candidates += [os.path.join(os.getcwd(), "..", "shared", "data"), os.path.join(here, "..", "..", "shared", "data")]
    base = next((os.path.abspath(c) for c in candidates if c and os.path.isdir(c)), None)
    if config_root:
        if os.path.isabs(config_root):
            return config_root
        if base and os.path.isdir(os.path.join(base, config_root)):
            return os.path.join(base, config_root)
        if config_dir:
            return os.path.join(config_dir, config_root)
    return base
