"""Errors of a model against reference data: RMSE and MAE of energy per atom, forces, stress.

Units of the reported numbers: energy in meV/atom, forces in eV/Å (over Cartesian
components), stress in GPa (over the six Voigt components).  ``by_config_type`` holds the
same table for each config type.  The dict layout is the ``etnpot eval --json`` contract.
"""
from __future__ import annotations

import numpy as np

__all__ = ["predict", "error_table", "format_error_table"]

EV_A3_TO_GPA = 160.21766208


def predict(potential, configs, chunk_atoms: int = 4000):
    """Predictions for a list of :class:`~etnpot.data.Configuration` (or ``ase.Atoms``), batched.

    Returns a list of dicts ``{"energy", "forces", "stress"}`` (stress ``None`` if not periodic).
    """
    out = []
    batch, n = [], 0
    atoms_of = lambda c: c.atoms if hasattr(c, "atoms") else c

    def flush():
        if not batch:
            return
        res = potential.compute([atoms_of(c) for c in batch], forces=True, stress=True)
        pos = 0
        for k, c in enumerate(batch):
            na = len(atoms_of(c))
            st = res["stress"][k]
            out.append({"energy": float(res["energy"][k]), "forces": res["forces"][pos : pos + na],
                        "stress": None if np.isnan(st).any() else st})
            pos += na
        batch.clear()

    for c in configs:
        batch.append(c)
        n += len(atoms_of(c))
        if n >= chunk_atoms:
            flush()
            n = 0
    flush()
    return out


def _stats(x):
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return None
    return {"rmse": float(np.sqrt(np.mean(x * x))), "mae": float(np.mean(np.abs(x)))}


def error_table(potential, configs, predictions=None) -> dict:
    """RMSE/MAE of E (meV/atom), F (eV/Å), stress (GPa), overall and per config type."""
    configs = list(configs)
    pred = predictions if predictions is not None else predict(potential, configs)
    groups: dict[str, dict[str, list]] = {}

    def add(ctype, key, vals):
        for g in ("__all__", ctype):
            groups.setdefault(g, {"energy": [], "forces": [], "stress": [], "n": 0})[key].append(vals)

    for c, p in zip(configs, pred):
        for g in ("__all__", c.config_type):
            groups.setdefault(g, {"energy": [], "forces": [], "stress": [], "n": 0})["n"] += 1
        if c.energy is not None:
            add(c.config_type, "energy", np.atleast_1d(1000.0 * (p["energy"] - c.energy) / len(c.atoms)))
        if c.forces is not None:
            add(c.config_type, "forces", (p["forces"] - c.forces).ravel())
        if c.stress is not None and p["stress"] is not None:
            add(c.config_type, "stress", EV_A3_TO_GPA * (p["stress"] - c.stress))

    def table(g):
        d = groups[g]
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)
        return {"n_configs": d["n"], "energy": _stats(cat(d["energy"])), "forces": _stats(cat(d["forces"])),
                "stress": _stats(cat(d["stress"]))}

    out = table("__all__") if configs else {"n_configs": 0, "energy": None, "forces": None, "stress": None}
    out["by_config_type"] = {g: table(g) for g in sorted(groups) if g != "__all__"}
    return out


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
