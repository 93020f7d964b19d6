"""Errors of a model against reference data: RMSE and MAE of energy per atom, forces, stress.

Units of the reported numbers: energy in meV/atom, forces in eV/Å (over Cartesian
components), stress in GPa (over the six Voigt components).  ``by_config_type`` holds the
same table for each config type.  The dict layout is the ``etnpot eval --json`` contract.
"""
from __future__ import annotations

import numpy as np

from .data import batches_by_atoms
from .defaults import FIT as DEFAULT_FIT

__all__ = ["predict", "error_table", "error_sums", "merge_error_sums", "table_from_sums", "format_error_table"]

EV_A3_TO_GPA = 160.21766208


def predict(potential, configs, chunk_atoms: int = DEFAULT_FIT["chunk_atoms"], on_graph=None):
    """Predictions for a list of :class:`~etnpot.data.Configuration` (or ``ase.Atoms``), batched.

    Returns a list of dicts ``{"energy", "forces", "stress"}`` (stress ``None`` if not periodic).
    ``on_graph(batch, graph)``, if given, is called with every batch and its neighbour graph, for
    other per-atom work on the same pairs (``etnpot eval`` counts unseen species environments).
    """
    out = []
    for batch in batches_by_atoms(configs, chunk_atoms):
        atoms = [c.atoms if hasattr(c, "atoms") else c for c in batch]
        g = potential.graph(atoms)
        if on_graph is not None:
            on_graph(batch, g)
        res = potential.compute(g, forces=True, stress=True)
        pos = 0
        for k, a in enumerate(atoms):
            st = res["stress"][k]
            out.append({"energy": float(res["energy"][k]), "forces": res["forces"][pos : pos + len(a)],
                        "stress": None if np.isnan(st).any() else st})
            pos += len(a)
    return out


def error_sums(potential, configs, predictions=None) -> dict:
    """Sums of errors per config type (``{type: {"n": .., "energy": [n, sum e^2, sum |e|], ...}}``);
    sums of several sets add up with :func:`merge_error_sums` (for chunked or distributed data).
    Energy errors in meV/atom, forces in eV/Å, stress in GPa."""
    configs = list(configs)
    pred = predictions if predictions is not None else predict(potential, configs)
    out: dict = {}
    for c, p in zip(configs, pred):
        d = out.setdefault(c.config_type, {"n": 0, "energy": [0, 0.0, 0.0], "forces": [0, 0.0, 0.0],
                                           "stress": [0, 0.0, 0.0]})
        d["n"] += 1
        errs = {}
        if c.energy is not None:
            errs["energy"] = np.atleast_1d(1000.0 * (p["energy"] - c.energy) / len(c.atoms))
        if c.forces is not None:
            errs["forces"] = (p["forces"] - c.forces).ravel()
        if c.stress is not None and p["stress"] is not None:
            errs["stress"] = EV_A3_TO_GPA * (p["stress"] - c.stress)
        for key, e in errs.items():
            d[key][0] += e.size
            d[key][1] += float(np.sum(e * e))
            d[key][2] += float(np.sum(np.abs(e)))
    return out


def merge_error_sums(a: dict, b: dict) -> dict:
    out = {k: {"n": v["n"], **{q: list(v[q]) for q in ("energy", "forces", "stress")}} for k, v in a.items()}
    for k, v in b.items():
        d = out.setdefault(k, {"n": 0, "energy": [0, 0.0, 0.0], "forces": [0, 0.0, 0.0], "stress": [0, 0.0, 0.0]})
        d["n"] += v["n"]
        for q in ("energy", "forces", "stress"):
            d[q] = [x + y for x, y in zip(d[q], v[q])]
    return out


def table_from_sums(sums: dict) -> dict:
    """The :func:`error_table` layout from :func:`error_sums`."""
    def stats(t):
        n, s2, s1 = t
        return {"rmse": float(np.sqrt(s2 / n)), "mae": float(s1 / n)} if n else None

    def table(groups):
        tot = {"n": 0, "energy": [0, 0.0, 0.0], "forces": [0, 0.0, 0.0], "stress": [0, 0.0, 0.0]}
        for v in groups:
            tot["n"] += v["n"]
            for q in ("energy", "forces", "stress"):
                tot[q] = [x + y for x, y in zip(tot[q], v[q])]
        return {"n_configs": tot["n"], **{q: stats(tot[q]) for q in ("energy", "forces", "stress")}}

    out = table(sums.values())
    out["by_config_type"] = {k: table([sums[k]]) for k in sorted(sums)}
    return out


def error_table(potential, configs, predictions=None) -> dict:
    """RMSE/MAE of E (meV/atom), F (eV/Å), stress (GPa), overall and per config type."""
    return table_from_sums(error_sums(potential, configs, predictions))


def format_error_table(table: dict, title: str = "") -> str:
    """A plain-text table of :func:`error_table`'s result."""
    fmt = lambda s, f: f"{s[f]:10.4f}" if s else f"{'-':>10}"
    lines = [title] if title else []
    lines.append(f"{'config type':<16}{'n':>5}  {'E RMSE':>10}{'E MAE':>10}  {'F RMSE':>10}{'F MAE':>10}  {'S RMSE':>10}{'S MAE':>10}")
    lines.append(f"{'':<16}{'':>5}  {'(meV/atom)':>20}  {'(eV/Å)':>20}  {'(GPa)':>20}")
    rows = [("all", table)] + list(table.get("by_config_type", {}).items())
    for name, t in rows:
        lines.append(f"{name[:16]:<16}{t['n_configs']:>5}  {fmt(t['energy'], 'rmse')}{fmt(t['energy'], 'mae')}  "
                     f"{fmt(t['forces'], 'rmse')}{fmt(t['forces'], 'mae')}  {fmt(t['stress'], 'rmse')}{fmt(t['stress'], 'mae')}")
    return "\n".join(lines)
