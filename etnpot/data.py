"""Training data: reading DFT reference data into :class:`Configuration` objects.

Conventions after reading (whatever the source): energies are total energies in eV, forces
in eV/Å, stress in eV/Å^3 with ASE's sign (positive under tension), in ASE's Voigt order
``xx, yy, zz, yz, xz, xy``.

Readers
-------
* Anything ``ase.io.read`` reads (extxyz, ...): reference values from ``atoms.info`` /
  ``atoms.arrays`` under configurable keys, or from an attached single-point calculator.
* mlearn JSON (Zuo et al. 2020; ``*.json`` or ``*.json.xz``): a list of records with a pymatgen
  ``structure`` dict, ``outputs.energy`` (eV), ``outputs.forces`` (eV/Å) and
  ``outputs.virial_stress`` (kbar, VASP sign: positive = compressive).  **Shear-order quirk**:
  the six stress numbers are ``[xx, yy, zz, xy, yz, xz]`` for Li, Si and Ge but
  ``[xx, yy, zz, xy, xz, yz]`` for Mo, Cu and Ni (checked on the sheared Elastic cells; see
  the data README).  :func:`read_mlearn_json` maps them per element; the order can be forced
  with ``shear_order``.  ASE stress = ``-virial_stress / 1602.1766208`` (1 eV/Å^3 = 1602.1766208 kbar).
  Other sets in this pymatgen-style format store ``outputs.stress`` instead (VASP's kbar stress,
  compressive positive, six numbers in VASP's order ``xx, yy, zz, xy, yz, zx`` or a 3x3 matrix):
  read when there is no ``virial_stress`` (:func:`vasp_stress`).
* InP JSON (FitSNAP format, Cusentino et al. 2020): one configuration per file, a ``# Header``
  line then ``{"Dataset": {"Data": [...]}}`` with ``Stress`` as a 3x3 matrix in kbar (VASP
  sign).  A directory of such files, or the ``.tar.xz`` archive of them, is read in place
  (members are streamed; nothing is extracted); the folder name is the config type.

Pymatgen is not needed.  Every problem is reported with the file and configuration index.
"""
from __future__ import annotations

import io
import json
import logging
import lzma
import os
import tarfile
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from .defaults import VALIDATION_FRACTION

__all__ = ["Configuration", "read_dataset", "read_mlearn_json", "read_fitsnap_json", "fit_e0", "composition_system",
           "split_train_validation", "validation_indices", "batches_by_atoms", "vasp_stress", "DataError", "KBAR_PER_EV_A3"]

log = logging.getLogger(__name__)

KBAR_PER_EV_A3 = 1602.1766208
STRESS_LIMIT = 2.0  # eV/Å^3 (320 GPa): larger reference stresses are taken as a unit mistake
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
# mlearn shear order per element (index into its 6-vector for ASE's yz, xz, xy)
_MLEARN_XY_YZ_XZ = ("Li", "Si", "Ge")
_MLEARN_XY_XZ_YZ = ("Mo", "Cu", "Ni")


class DataError(ValueError):
    """Bad training data; the message names the file and configuration index."""


@dataclass
class Configuration:
    """One reference configuration.

    ``energy`` (eV, total), ``forces`` ``(N, 3)`` eV/Å and ``stress`` ``(6,)`` eV/Å^3 (ASE sign
    and Voigt order) may each be ``None`` (not available).  ``weight`` multiplies every row of
    this configuration in the fit; ``config_type`` selects per-type weights and error tables.
    """

    atoms: Atoms
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    weight: float = 1.0
    config_type: str = "default"
    source: str = ""
    info: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.atoms)

    def validate(self) -> "Configuration":
        where = self.source or "configuration"
        n = len(self.atoms)
        if n == 0:
            raise DataError(f"{where}: configuration has no atoms")
        pos = self.atoms.positions
        if not np.all(np.isfinite(pos)):
            raise DataError(f"{where}: non-finite atomic positions (atom {int(np.argwhere(~np.isfinite(pos))[0, 0])})")
        if not np.all(np.isfinite(self.atoms.cell.array)):
            raise DataError(f"{where}: non-finite cell")
        if any(self.atoms.pbc) and self.atoms.cell.rank < sum(self.atoms.pbc):
            raise DataError(f"{where}: periodic cell is degenerate (rank {self.atoms.cell.rank})")
        if n > 1:  # coincident atoms (zero distance, periodic images included): named here, by file and index
            from .neighbors import _pairs

            i, j, d = _pairs(self.atoms, 0.01)
            close = np.flatnonzero(np.einsum("ea,ea->e", d, d) == 0.0) if len(i) else []
            if len(close):
                e = close[0]
                raise DataError(f"{where}: atoms {int(i[e])} and {int(j[e])} coincide (zero distance" +
                                (", a periodic image" if i[e] == j[e] else "") + ")")
        if self.energy is not None:
            try:
                e = np.asarray(self.energy, dtype=float)
            except (TypeError, ValueError):
                raise DataError(f"{where}: energy must be one finite number, got {self.energy!r}") from None
            if e.shape != () or not np.isfinite(e):
                raise DataError(f"{where}: energy must be one finite number, got {self.energy!r}")
            self.energy = float(e)
        if self.forces is not None:
            try:
                f = np.asarray(self.forces, dtype=float)
            except (TypeError, ValueError):
                raise DataError(f"{where}: forces must be numbers, got {str(self.forces)[:60]!r}") from None
            if f.shape != (n, 3):
                raise DataError(f"{where}: forces have shape {f.shape}, expected ({n}, 3)")
            if not np.all(np.isfinite(f)):
                raise DataError(f"{where}: non-finite forces (atom {int(np.argwhere(~np.isfinite(f))[0, 0])})")
            self.forces = f
        if self.stress is not None:
            try:
                s = np.asarray(self.stress, dtype=float)
            except (TypeError, ValueError):
                raise DataError(f"{where}: stress must be numbers, got {str(self.stress)[:60]!r}") from None
            if s.shape == (3, 3):
                s = np.array([s[a, b] for a, b in VOIGT])
            elif s.shape == (9,):
                s = np.array([s.reshape(3, 3)[a, b] for a, b in VOIGT])
            if s.shape != (6,):
                raise DataError(f"{where}: stress has shape {s.shape}, expected (6,) Voigt or (3, 3)")
            if not np.all(np.isfinite(s)):
                raise DataError(f"{where}: non-finite stress")
            if not (self.atoms.cell.rank == 3 and all(self.atoms.pbc)):
                raise DataError(f"{where}: stress given for a cell that is not 3-d periodic")
            if np.abs(s).max() > STRESS_LIMIT:
                raise DataError(f"{where}: stress up to {np.abs(s).max():.4g} eV/Å^3 ({np.abs(s).max() * 160.2:.4g} GPa) "
                                "is not physical: it looks like kbar or GPa. Stress must be in eV/Å^3 with ASE's sign "
                                "(1 GPa = 0.00624 eV/Å^3; from VASP kbar: multiply by -1/1602.18)")
            self.stress = s
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise DataError(f"{where}: weight must be finite and >= 0, got {self.weight}")
        return self


# ------------------------------------------------------------------ readers


def _open_text(path):
    if str(path).endswith(".xz"):
        return lzma.open(path, "rt")
    return open(path, "r")


def vasp_stress(value, where="stress") -> np.ndarray:
    """ASE stress (eV/Å^3, positive under tension, Voigt ``xx, yy, zz, yz, xz, xy``) from a VASP
    stress in kbar (positive under compression): a 3x3 matrix, or six numbers in VASP's order
    ``xx, yy, zz, xy, yz, zx``.  ``where`` names the value in errors."""
    v = np.asarray(value, dtype=float)
    if v.shape == (3, 3):
        s = np.array([v[a, b] for a, b in VOIGT])
    elif v.shape == (6,):
        s = v[[0, 1, 2, 4, 5, 3]]
    else:
        raise DataError(f"{where}: stress has shape {v.shape}, expected a 3x3 matrix or six numbers "
                        "(VASP order xx yy zz xy yz zx, kbar)")
    return -s / KBAR_PER_EV_A3


def _mlearn_shear(element: str, shear_order):
    if shear_order is not None:
        order = shear_order
    elif element in _MLEARN_XY_YZ_XZ:
        order = "xy,yz,xz"
    elif element in _MLEARN_XY_XZ_YZ:
        order = "xy,xz,yz"
    else:
        return None
    names = [s.strip() for s in order.split(",")]
    # positions 3, 4, 5 of the file's vector -> which ASE component
    return [("yz", "xz", "xy").index(nm) for nm in names]


def read_mlearn_json(path, shear_order=None, config_type_key="group") -> list[Configuration]:
    """Read an mlearn (Zuo et al. 2020) JSON file (``.json`` or ``.json.xz``)."""
    path = os.fspath(path)
    try:
        with _open_text(path) as fh:
            records = json.load(fh)
    except (OSError, EOFError, lzma.LZMAError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read mlearn JSON: {e}") from e
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of records (mlearn format)")
    out = []
    for idx, rec in enumerate(records):
        where = f"{path}[{idx}]"
        try:
            st = rec["structure"]
            cell = np.array(st["lattice"]["matrix"], dtype=float)
            sites = st["sites"]
            pos = np.array([s["xyz"] for s in sites], dtype=float)
            sym = [s["species"][0]["element"] for s in sites]
            outp = rec["outputs"]
            energy = outp.get("energy")
            forces = outp.get("forces")
            vs = outp.get("virial_stress")
            vasp = outp.get("stress") if vs is None else None
        except (KeyError, TypeError, IndexError) as e:
            raise DataError(f"{where}: missing key {e} in mlearn record") from e
        try:
            atoms = Atoms(sym, positions=pos, cell=cell, pbc=True)
        except (KeyError, ValueError) as e:
            raise DataError(f"{where}: bad structure: {e}") from e
        stress = None
        if vs is not None:
            v = np.asarray(vs, dtype=float)
            if v.shape != (6,):
                raise DataError(f"{where}: virial_stress has shape {v.shape}, expected (6,)")
            element = rec.get("element") or (sym[0] if len(set(sym)) == 1 else None)
            perm = _mlearn_shear(str(element), shear_order)
            if perm is None:
                raise DataError(f"{where}: unknown mlearn shear order for element {element!r}; pass shear_order='xy,yz,xz' or 'xy,xz,yz'")
            s = np.empty(6)
            s[:3] = v[:3]
            for pos_in_file, comp in zip((3, 4, 5), perm):
                s[3 + comp] = v[pos_in_file]
            stress = -s / KBAR_PER_EV_A3
        elif vasp is not None:
            stress = vasp_stress(vasp, f"{where}: outputs.stress")
        c = Configuration(atoms, energy, forces, stress, 1.0, str(rec.get(config_type_key, "default")), where,
                          {"description": rec.get("description", "")})
        out.append(c.validate())
    return out


def _parse_fitsnap(text: str, where: str, config_type: str) -> Configuration:
    lines = text.split("\n", 1)
    body = lines[1] if lines and lines[0].lstrip().startswith("#") else text
    try:
        d = json.loads(body)["Dataset"]["Data"][0]
        sym = d["AtomTypes"]
        pos = np.array(d["Positions"], dtype=float)
        cell = np.array(d["Lattice"], dtype=float)
        energy = d.get("Energy")
        forces = d.get("Forces")
        stress = d.get("Stress")
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
        raise DataError(f"{where}: not a FitSNAP JSON configuration ({e!r})") from e
    try:
        atoms = Atoms(sym, positions=pos, cell=cell, pbc=True)
    except (KeyError, ValueError) as e:
        raise DataError(f"{where}: bad structure: {e}") from e
    if stress is not None:
        stress = vasp_stress(stress, f"{where}: Stress")
    return Configuration(atoms, energy, forces, stress, 1.0, config_type, where).validate()


def read_fitsnap_json(path) -> list[Configuration]:
    """Read FitSNAP-style JSON (the InP set): one file, a directory tree, or a ``.tar(.xz)`` of them.

    Configurations are sorted by ``<group>/<file>``; the config type is the group folder.
    """
    path = os.fspath(path)
    items = []
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in files:
                if f.endswith(".json"):
                    full = os.path.join(root, f)
                    items.append((os.path.relpath(full, path), full))
        items.sort()
        out = [_parse_fitsnap(open(full).read(), full, _group(rel)) for rel, full in items]
        for (rel, _), c in zip(items, out):
            c.info["name"] = rel.replace(os.sep, "/")
        return out
    if ".tar" in os.path.basename(path):
        try:
            with tarfile.open(path, "r:*") as tar:
                members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")),
                                 key=lambda m: _strip_top(m.name))
                out = []
                for m in members:
                    text = tar.extractfile(m).read().decode()
                    out.append(_parse_fitsnap(text, f"{path}:{m.name}", _group(_strip_top(m.name))))
                    out[-1].info["name"] = _strip_top(m.name)
                return out
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as e:
            raise DataError(f"{path}: cannot read archive: {e}") from e
    with _open_text(path) as fh:
        return [_parse_fitsnap(fh.read(), path, os.path.basename(os.path.dirname(os.path.abspath(path))))]


def _read_archive_member(spec, **kwargs):
    archive, member = spec.split("::", 1)
    if not os.path.exists(archive):
        raise FileNotFoundError(f"data archive not found: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            text = tar.extractfile(member).read().decode()
    except KeyError as e:
        raise DataError(f"{archive}: no member {member!r}") from e
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: cannot read archive: {e}") from e
    kwargs.setdefault("format", "extxyz")
    configs = read_ase(io.StringIO(text), **kwargs)
    for i, c in enumerate(configs):
        c.source = f"{spec}[{i}]"
    return configs


def _strip_top(name: str) -> str:
    parts = name.split("/")
    return "/".join(parts[1:]) if len(parts) > 2 else name


def _group(rel: str) -> str:
    parts = rel.replace(os.sep, "/").split("/")
    return parts[-2] if len(parts) >= 2 else "default"


def read_ase(path, index=":", energy_key="energy", forces_key="forces", stress_key="stress",
             config_type_key="config_type", weight_key="weight", format=None) -> list[Configuration]:
    """Read with ``ase.io.read``; reference values from ``info``/``arrays`` keys or a calculator."""
    import ase.io

    path = path if hasattr(path, "read") else os.fspath(path)
    try:
        frames = ase.io.read(path, index=index, format=format)
    except Exception as e:  # ase raises many types for unreadable files
        raise DataError(f"{getattr(path, 'name', path)}: ase.io.read failed: {e}") from e
    if isinstance(frames, Atoms):
        frames = [frames]
    name = getattr(path, "name", "<stream>") if hasattr(path, "read") else path
    if not frames:
        raise DataError(f"{name}: no configurations")
    keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    for kind in keys:
        keys[kind] = _reference_key(frames, kind, keys[kind], name)
    available = tuple(sorted(set().union(*[set(f.info) | set(f.arrays) - {"numbers", "positions"} |
                                           set(getattr(f.calc, "results", {}) if f.calc is not None else {})
                                           for f in frames])))
    out = []
    for idx, at in enumerate(frames):
        where = f"{name}[{idx}]"
        energy = _reference(at, keys["energy"], "info", where)
        forces = _reference(at, keys["forces"], "arrays", where)
        stress = _reference(at, keys["stress"], "info", where)
        if keys["stress"] in VIRIAL_KEYS and stress is not None:  # virial W (eV) -> ASE stress = -W / V
            stress = _virial_to_stress(stress, at, where)
        ctype = str(at.info.get(config_type_key, "default")) if config_type_key else "default"
        try:
            weight = float(at.info.get(weight_key, 1.0)) if weight_key else 1.0
        except (TypeError, ValueError):
            raise DataError(f"{where}: {weight_key} must be a number, got {at.info.get(weight_key)!r}") from None
        atoms = Atoms(at.numbers, positions=at.positions, cell=at.cell, pbc=at.pbc)
        out.append(Configuration(atoms, energy, forces, stress, weight, ctype, where,
                                 {"reference_keys": available}).validate())
    for kind, key, attr, where_keys in (("energy", keys["energy"], "energy", "info"),
                                        ("forces", keys["forces"], "forces", "arrays"),
                                        ("stress", keys["stress"], "stress", "info")):
        if key is not None and key != kind and key not in ALTERNATIVE_KEYS[kind] and \
                all(getattr(c, attr) is None for c in out):
            raise DataError(f"{name}: no configuration has the {kind} key {key!r} in atoms.{where_keys}; "
                            f"available keys: {list(available)}")
    return out


#: Keys of reference values in other codes' conventions, tried in this order when the configured
#: key is the default and no configuration has it (MACE's REF_*, DFT_*, ACE's ``force``, ASE's
#: ``free_energy``, MACE's ``virials``; ``virial`` and ``virials`` are in eV, as ASE and MACE read them).
ALTERNATIVE_KEYS = {
    "energy": ("REF_energy", "DFT_energy", "dft_energy", "ref_energy", "energy_dft", "TotEnergy", "Energy",
               "free_energy"),
    "forces": ("REF_forces", "DFT_forces", "dft_forces", "ref_forces", "force", "forces_dft", "Forces"),
    "stress": ("REF_stress", "DFT_stress", "dft_stress", "ref_stress", "Stress", "virial", "virials", "REF_virials",
               "REF_virial", "DFT_virial"),
}
VIRIAL_KEYS = ("virial", "virials", "REF_virials", "REF_virial", "DFT_virial")


def _lookup(at, key, kind):
    if key is None:
        return None
    if kind == "info" and key in at.info:
        return at.info[key]
    if kind == "arrays" and key in at.arrays:
        return at.arrays[key]
    res = getattr(at.calc, "results", {}) if at.calc is not None else {}
    return res.get(key)


def _reference(at, key, kind, where):
    v = _lookup(at, key, kind)
    if v is None or isinstance(v, np.ndarray):
        return v
    if isinstance(v, str):
        raise DataError(f"{where}: {key} must be numbers, got the text {v!r}")
    return v


def _reference_key(frames, kind: str, key, name) -> str | None:
    """The key that the references of ``kind`` are read from: ``key`` where some frame has it or
    where it is not the default; else the one of :data:`ALTERNATIVE_KEYS` that the frames have
    (logged in one line), or ``key`` where they have none.  Several alternatives with different
    values are ambiguous: a :class:`DataError` lists them."""
    where_kind = "arrays" if kind == "forces" else "info"
    if key is None or key != kind or any(_lookup(f, key, where_kind) is not None for f in frames):
        return key
    found = [k for k in ALTERNATIVE_KEYS[kind] if any(_lookup(f, k, where_kind) is not None for f in frames)]
    if not found:
        return key
    if len(found) > 1:
        first = next(f for f in frames if _lookup(f, found[0], where_kind) is not None)
        vals = [_lookup(first, k, where_kind) for k in found]
        same = all(v is not None and np.shape(v) == np.shape(vals[0]) and np.allclose(np.asarray(v, float),
                   np.asarray(vals[0], float)) for v in vals[1:]) and not any(k in VIRIAL_KEYS for k in found)
        if not same:
            raise DataError(f"{name}: no {kind} under the key {kind!r}, and several other keys could hold them with "
                            f"different values: {found}; name the right one with [data] {kind}_key "
                            f"(etnpot eval: --{kind}-key)")
    log.warning("%s: no %s under the key %r; reading them from %r (set [data] %s_key = %r to say so)", name, kind,
                kind, found[0], kind, found[0])
    return found[0]


def _virial_to_stress(virial, at, where) -> np.ndarray:
    """ASE stress (eV/Å^3, positive under tension) from a virial ``W`` in eV: ``sigma = -W / V``."""
    w = np.asarray(virial, dtype=float)
    if w.shape == (9,):
        w = w.reshape(3, 3)
    if w.shape not in ((3, 3), (6,)):
        raise DataError(f"{where}: virial has shape {w.shape}, expected 3x3, 9 or 6 numbers")
    if not (at.cell.rank == 3 and all(at.pbc)):
        raise DataError(f"{where}: virial given for a cell that is not 3-d periodic")
    if w.shape == (3, 3):
        w = np.array([w[a, b] for a, b in VOIGT])
    return -w / at.get_volume()


def read_dataset(path, **kwargs) -> list[Configuration]:
    """Read a data set, choosing the reader from the file: mlearn JSON, FitSNAP JSON (file,
    directory or ``.tar.xz``), or anything ``ase.io`` reads (keyword arguments of :func:`read_ase`).

    ``"archive.tar.gz::member.xyz"`` reads one extxyz member of a tar archive in place (e.g. the
    ACEData conversion of the Zuo et al. data, whose force column is named ``force``).
    """
    path = os.fspath(path)
    if "::" in path:
        return _read_archive_member(path, **kwargs)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}")
    base = os.path.basename(path)
    if os.path.isdir(path) or ".tar" in base:
        return read_fitsnap_json(path)
    if base.endswith(".json") or base.endswith(".json.xz"):
        with _open_text(path) as fh:
            head = fh.read(64).lstrip()
        if head.startswith("["):
            return read_mlearn_json(path, **{k: v for k, v in kwargs.items() if k in ("shear_order",)})
        return read_fitsnap_json(path)
    return read_ase(path, **kwargs)


# ------------------------------------------------------------------ helpers


def composition_system(configs, species):
    """``(C^T C, C^T E)`` of the least squares ``E_c ~ sum_s n_cs E0_s`` over the configurations
    with energies (``n_cs``: atoms of species ``s`` in configuration ``c``).  Sums of systems add
    up, so the fit reduces them over chunks."""
    S = len(species)
    CtC, CtE = np.zeros((S, S)), np.zeros(S)
    for c in configs:
        if c.energy is None:
            continue
        sym = c.atoms.get_chemical_symbols()
        row = np.array([sym.count(s) for s in species], float)
        CtC += np.outer(row, row)
        CtE += row * c.energy
    return CtC, CtE


def e0_from_system(system) -> np.ndarray:
    """Per-species reference energies (eV) from :func:`composition_system` (minimum norm if the
    compositions do not determine them, e.g. a single composition of two species)."""
    CtC, CtE = system
    return np.linalg.lstsq(CtC, CtE, rcond=None)[0]


def fit_e0(configs, species) -> np.ndarray:
    """Per-species reference energies by least squares on composition, in eV."""
    return e0_from_system(composition_system(configs, list(species)))


def validation_indices(n: int, fraction: float, seed: int = 0) -> set:
    """Which of ``n`` configurations (numbered in reading order) are held out for validation: a
    seeded random ``fraction`` of them (at least one; none if ``n < 2`` or ``fraction <= 0``).
    The one definition of the split, for the local fit (:func:`split_train_validation`) and the
    distributed one (:func:`etnpot.distributed.file_chunks`), so that both fit the same data."""
    if n < 2 or fraction <= 0:
        return set()
    nv = max(1, int(round(fraction * n)))
    return set(np.random.default_rng(seed).permutation(n)[:nv].tolist())


def fold_indices(config_types, fold: int, folds: int, seed: int = 0) -> set:
    """Which configurations form validation fold ``fold`` of ``folds`` (k-fold cross-validation),
    stratified by config type: the configurations of each type (``config_types``, in reading
    order) are shuffled (seeded) and dealt to the folds in turn, each type starting where the
    previous one stopped, so that every fold holds its share of every type (a type with at least
    ``folds`` configurations appears in every fold) and the folds differ in size by at most one."""
    if not (isinstance(folds, int) and folds >= 2 and isinstance(fold, int) and 0 <= fold < folds):
        raise ValueError(f"need folds >= 2 and 0 <= fold < folds, got fold {fold!r} of {folds!r}")
    config_types = list(config_types)
    if len(config_types) < folds:
        raise ValueError(f"{len(config_types)} configurations cannot be split into {folds} folds")
    rng = np.random.default_rng(seed)
    out, start = set(), 0
    for t in sorted(set(config_types)):
        members = [i for i, c in enumerate(config_types) if c == t]
        members = [members[k] for k in rng.permutation(len(members))]
        out |= {i for pos, i in enumerate(members) if (start + pos) % folds == fold}
        start = (start + len(members)) % folds
    return out


def split_folds(configs, fold: int, folds: int, seed: int = 0):
    """``(train, validation)`` of k-fold cross-validation: validation is fold ``fold`` of
    ``folds`` (:func:`fold_indices`, stratified by config type), train the rest."""
    configs = list(configs)
    return _split_out(configs, fold_indices([c.config_type for c in configs], fold, folds, seed))


def _split_out(configs: list, held: set):
    """``(the configurations not in held, those in held)`` (indices into ``configs``), in order."""
    return [c for i, c in enumerate(configs) if i not in held], [c for i, c in enumerate(configs) if i in held]


def split_train_validation(configs, fraction=VALIDATION_FRACTION, seed=0):
    """Random split (deterministic per seed, :func:`validation_indices`): returns ``(train, validation)``."""
    configs = list(configs)
    return _split_out(configs, validation_indices(len(configs), fraction, seed))


def batches_by_atoms(items, chunk_atoms: int, n_atoms=len):
    """Consecutive groups (lists) of ``items``, each closed as soon as it holds ``chunk_atoms``
    atoms or more (``n_atoms(item)`` atoms per item; the last group may hold fewer).  The one
    batching of configurations by size: fit chunks, grades, predictions, distributed chunks."""
    batch, n = [], 0
    for item in items:
        batch.append(item)
        n += n_atoms(item)
        if n >= chunk_atoms:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch
