r"""The ETN interatomic potential: features + equivariant tensor train + per-species energies.

.. math::

    E = \sum_i \big[ E_0(z_i) + E_i \big], \qquad E_i = \mathrm{TT}\big(F_i, F_i, \dots, F_i\big),

with the one-particle features ``F_i`` of :mod:`etnpot.features` fed to every site of the
equivariant tensor train of :mod:`etnpot.tt` (``order`` sites: ``E_i`` is a polynomial of degree
``order`` in ``F_i``, body order ``order + 1``).

Forces and stress (eV, Å; ASE's sign conventions).  With ``r_ij = r_j - r_i`` for every
pair and ``g_ij = dE/dr_ij`` (one reverse sweep of the tensor train gives ``dE_i/dF_i``, one
pass over pairs applies ``dF_i/dr_ij``):

.. math::

    \mathbf f_k = -\frac{\partial E}{\partial \mathbf r_k}
       = \sum_{(i,j):\, i = k} g_{ij} - \sum_{(i,j):\, j = k} g_{ij}, \qquad
    \sigma_{ab} = \frac{1}{V}\frac{\partial E}{\partial \varepsilon_{ab}}
       = \frac{1}{V} \sum_{(i,j)} (g_{ij})_a (r_{ij})_b ,

the latter because a homogeneous strain maps every pair vector ``r_ij -> (1 + eps) r_ij``
(periodic images included).  ``sigma`` is in eV/Å^3, positive under tension (ASE), returned
in Voigt order ``xx, yy, zz, yz, xz, xy``.  Per-atom stresses give half of every pair's term to
each of its two atoms, so they sum to the stress.

The energy is linear in every core ``T^{(k)}``; the rows of that linear map (the fit's building
block) live in :mod:`etnpot.linearization`.
"""
from __future__ import annotations

import logging

import numpy as np

from . import linearization
from .defaults import MODEL as DEFAULT_MODEL
from .features import OneParticleBasis
from .neighbors import Graph, build_graph
from .so3 import Irrep, Irreps, natural_irrep
from .linearization import VOIGT, LinearMap
from .tt import EquivariantTT

__all__ = ["ETNPotential", "LinearMap"]

log = logging.getLogger(__name__)



def _symbols_to_numbers(species):
    from ase.data import atomic_numbers, chemical_symbols

    out = []
    for s in species:
        if isinstance(s, (int, np.integer)):
            if not 0 < int(s) < len(chemical_symbols):
                raise ValueError(f"unknown atomic number {s}")
            out.append(int(s))
        elif s in atomic_numbers and s != "X":
            out.append(atomic_numbers[s])
        else:
            raise ValueError(f"unknown chemical symbol {s!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"species listed twice: {species}")
    return out


def bond_irreps(rank, l_max: int, o3: bool) -> Irreps:
    """Inner-bond irreps from ``rank``: an int (that multiplicity for every natural-parity irrep
    ``l <= l_max``) or a mapping ``{l or "1o": multiplicity}`` (int keys mean natural parity)."""
    if isinstance(rank, (int, np.integer)):
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        return Irreps({natural_irrep(l, o3): int(rank) for l in range(l_max + 1)})
    if isinstance(rank, str):
        irr = Irreps(rank)
    else:
        items = {}
        for key, m in dict(rank).items():
            ir = natural_irrep(int(key), o3) if isinstance(key, (int, np.integer)) else Irrep.parse(key)
            if not o3 and ir.p != 0:
                ir = Irrep(ir.l, 0)
            if int(m) < 0:
                raise ValueError(f"rank of irrep {key} must be >= 0, got {m}")
            items[ir] = items.get(ir, 0) + int(m)
        irr = Irreps(items)
    if irr.dim == 0:
        raise ValueError(f"rank {rank!r} gives an empty bond")
    for ir, _ in irr:
        if o3 and ir.p == 0:
            raise ValueError(f"O(3) model needs parity-labelled bond irreps (e.g. '1o'), got {ir}")
    return irr


class ETNPotential:
    """An equivariant tensor-network potential.

    Build one with :meth:`build` (zero cores) or :meth:`random`; fit it with :mod:`etnpot`'s
    fitting tools; evaluate it with :meth:`compute` or through :class:`~etnpot.ETNCalculator`.
    """

    def __init__(self, species, basis: OneParticleBasis, tt: EquivariantTT, e0=None, o3: bool = True,
                 metadata=None):
        self.species = [str(s) for s in species]
        self.numbers = _symbols_to_numbers(self.species)
        self.basis = basis
        self.tt = tt
        self.o3 = bool(o3)
        self.e0 = np.zeros(len(self.species)) if e0 is None else np.asarray(e0, dtype=np.float64).copy()
        if self.e0.shape != (len(self.species),):
            raise ValueError(f"e0 must have one value per species ({len(self.species)}), got shape {self.e0.shape}")
        self.metadata = dict(metadata or {})
        self.active_set = None  # extrapolation grade (etnpot.grade.fit_active_set)
        self.backend = "numpy"  # array library of the contractions: numpy, cupy, torch, jax (via autoray)
        self.dtype = "float64"  # or "float32": faster; forces within 5e-3 of the largest force on order-4 fits (docs/float32_error.py)
        # BLAS threads during evaluation: 1 by default. The contractions are many small batched
        # products: a second thread gains < 10 % on an idle machine and stalls them 2-3x on a
        # busy one (benchmarks/README.md); None leaves the BLAS library's own setting.
        self.threads = 1
        self.chunk_size = 2048  # atoms per tensor-train batch: bounds the memory of evaluation
        self._z2s = np.full(120, -1, dtype=np.int64)
        self._z2s[self.numbers] = np.arange(len(self.numbers))

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, species, r_cut=DEFAULT_MODEL["r_cut"], order=DEFAULT_MODEL["order"], l_max=DEFAULT_MODEL["l_max"],
              rank=DEFAULT_MODEL["rank"], *, n_basis=DEFAULT_MODEL["n_basis"], n_channels=DEFAULT_MODEL["n_channels"],
              species_rank=DEFAULT_MODEL["species_rank"], r_min=DEFAULT_MODEL["r_min"], o3=DEFAULT_MODEL["o3"],
              bond_l_max=DEFAULT_MODEL["bond_l_max"]) -> "ETNPotential":
        """A model with the given hyper-parameters and all-zero cores (``E = sum E0``).

        Parameters
        ----------
        species : chemical symbols (or atomic numbers).
        r_cut, r_min : cutoff and inner distance of the radial basis, Å (``r_min`` default
            ``0.3 r_cut``).
        order : number of TT sites d = polynomial degree in the features (body order d + 1).
        l_max : highest degree of the spherical harmonics in the features.
        rank : TT rank: an int (same multiplicity for every natural-parity irrep
            ``l <= bond_l_max``) or a mapping ``{l or "1e": multiplicity}``.
        n_basis, n_channels : Chebyshev functions and radial channels (default ``n_basis`` for
            one species, ``n_basis * len(species)`` for several: one raw channel per Chebyshev
            function and neighbour species, so that the features tell neighbours of different
            species apart even when the radial and species weights are never fitted).
        species_rank : rank of the species-pair embedding (default ``len(species)``).
        o3 : full O(3) invariance (parity-labelled irreps, default) or SO(3) only.
        """
        species = list(species)
        if len(species) == 0:
            raise ValueError("species must not be empty")
        for name, val, lo in [("order", order, 1), ("l_max", l_max, 0)]:
            if int(val) != val or int(val) < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {val!r}")
        order, l_max = int(order), int(l_max)
        if not float(r_cut) > 0:
            raise ValueError(f"r_cut must be > 0, got {r_cut}")
        r_min = 0.3 * float(r_cut) if r_min is None else float(r_min)
        if not 0 <= r_min < float(r_cut):
            raise ValueError(f"need 0 <= r_min < r_cut, got r_min={r_min}, r_cut={r_cut}")
        species_rank = len(species) if species_rank is None else species_rank
        if n_channels is None:
            n_channels = n_basis * len(species) if len(species) > 1 and species_rank == len(species) else n_basis
        basis = OneParticleBasis(len(species), l_max, n_basis, n_channels, species_rank, r_min, r_cut)
        inputs = [(natural_irrep(l, o3), basis.channels(l)) for l in range(l_max + 1)]
        inner = bond_irreps(rank, l_max if bond_l_max is None else int(bond_l_max), o3)
        scalar = Irreps("1x0e" if o3 else "1x0")
        bonds = [scalar] + [inner] * (order - 1) + [scalar]
        tt = EquivariantTT(inputs, bonds).trim()
        hyper = dict(r_cut=float(r_cut), r_min=r_min, order=order, l_max=l_max, rank=_jsonable_rank(rank),
                     n_basis=int(n_basis), n_channels=int(n_channels), species_rank=int(species_rank),
                     o3=bool(o3), bond_l_max=bond_l_max)
        pot = cls(species, basis, tt, o3=o3)
        pot.metadata["hyperparameters"] = hyper
        return pot

    @classmethod
    def random(cls, species, r_cut=DEFAULT_MODEL["r_cut"], order=DEFAULT_MODEL["order"], l_max=DEFAULT_MODEL["l_max"],
               rank=DEFAULT_MODEL["rank"], seed=0, *, init="random",
               noise=1.0, **kwargs) -> "ETNPotential":
        """A model with random cores (for tests, and the fit's initialization).

        ``init="random"``: every block Gaussian, scaled by ``noise / sqrt(fan-in)``.
        ``init="constant"``: the *constant-path* initialization, in which slot 0 of every
        ``0e`` bond carries the number 1 through the constant channel (the TT starts as a
        low-degree polynomial) plus Gaussian noise of size ``noise``.  Species and radial
        weights get a small random perturbation so that the species compression is not degenerate.
        """
        pot = cls.build(species, r_cut, order, l_max, rank, **kwargs)
        rng = np.random.default_rng(seed)
        tt = pot.tt
        for k in range(tt.order):
            for p, T in tt.cores[k].items():
                fan_in = max(1, T.shape[0] * T.shape[1])
                T[...] = rng.normal(size=T.shape) * noise / np.sqrt(fan_in * max(1, len(tt.cores[k])) ** 0.5)
            if init == "constant":
                zero = Irrep(0, 1 if pot.o3 else 0)
                p = (zero, 0, zero)
                if p in tt.cores[k]:
                    tt.cores[k][p][0, pot.basis.n_channels, 0] += 1.0  # species-0 indicator ~ constant
                    for s in range(1, len(pot.species)):
                        tt.cores[k][p][0, pot.basis.n_channels + s, 0] += 1.0
            elif init != "random":
                raise ValueError(f"init must be 'random' or 'constant', got {init!r}")
        b = pot.basis
        if b.species_rank > 1 or b.n_species > 1:
            b.species_weights += 0.1 * rng.normal(size=b.species_weights.shape)
        pot.metadata["init"] = dict(kind=init, seed=int(seed), noise=float(noise))
        return pot

    # ------------------------------------------------------------ bookkeeping
    @property
    def r_cut(self) -> float:
        return self.basis.r_cut

    @property
    def order(self) -> int:
        return self.tt.order

    @property
    def num_parameters(self) -> int:
        """Free parameters: TT cores + species embedding + radial mixing + per-species E0.

        (The feature normalization constants are set from data, not fitted, and not counted.)
        """
        return self.tt.num_parameters + self.basis.num_parameters + len(self.e0)

    def _features_refitted(self) -> bool:
        """Whether the fit recorded in the model refitted the radial/species weights (``radial_steps``)."""
        from .defaults import FIT

        settings = (self.metadata.get("fit") or {}).get("settings") or {}
        return bool(settings.get("radial_steps", FIT["radial_steps"]))

    @property
    def fitted_parameters(self) -> int:
        """The parameters a fit solves for: the tensor-train cores and the per-species E0, and the
        radial/species feature weights where the fit refits them (``[fit] radial_steps > 0``,
        read from the fit recorded in the model; off by default).  The rest of
        :attr:`num_parameters` is fixed at the start of the fit.  Rows per parameter
        (:mod:`etnpot.sizing`) count these."""
        return self.tt.num_parameters + len(self.e0) + (self.basis.num_parameters if self._features_refitted() else 0)

    def parameter_counts(self) -> dict:
        """The one parameter count: ``total`` (= :attr:`num_parameters`), its split into ``fitted``
        (:attr:`fitted_parameters`) and ``fixed``, and the parts (``cores``, ``e0``,
        ``species_weights``, ``radial_weights``)."""
        fitted = self.fitted_parameters
        return {"total": self.num_parameters, "fitted": fitted, "fixed": self.num_parameters - fitted,
                "cores": self.tt.num_parameters, "e0": len(self.e0), "species_weights": self.basis.species_weights.size,
                "radial_weights": self.basis.radial_weights.size}

    def describe_parameters(self) -> str:
        """The parameter count as every output prints it, e.g. ``1,641 parameters (939 fitted:
        cores and E0; 702 fixed: radial/species weights)``."""
        c = self.parameter_counts()
        what = "cores, E0 and radial/species weights" if self._features_refitted() else "cores and E0"
        return (f"{c['total']:,} parameters ({c['fitted']:,} fitted: {what}"
                + (f"; {c['fixed']:,} fixed: radial/species weights)" if c["fixed"] else ")"))

    def species_index(self, numbers, config=0) -> np.ndarray:
        numbers = np.asarray(numbers, dtype=np.int64)
        bad = (numbers < 0) | (numbers >= len(self._z2s))
        idx = np.where(bad, -1, self._z2s[np.clip(numbers, 0, len(self._z2s) - 1)])
        if (idx < 0).any():
            from ase.data import chemical_symbols

            k = int(np.argmax(idx < 0))
            z = int(numbers[k])
            sym = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
            raise ValueError(f"configuration {config}, atom {k}: species {sym!r} is not in the model's "
                             f"species {self.species}")
        return idx

    def graph(self, atoms_list) -> Graph:
        return build_graph(atoms_list, self.r_cut, self.species_index)

    def __repr__(self) -> str:
        h = self.metadata.get("hyperparameters", {})
        return (f"ETNPotential(species={self.species}, order={self.order}, l_max={self.basis.l_max}, "
                f"r_cut={self.r_cut}, bonds=[{'; '.join(str(b) for b in self.tt.bonds[1:-1])}], "
                f"num_parameters={self.num_parameters}{', o3' if self.o3 else ', so3'}{'' if h else ''})")

    def copy(self) -> "ETNPotential":
        b = self.basis
        nb = OneParticleBasis(b.n_species, b.l_max, b.radial.n_basis, b.n_channels, b.species_rank,
                              b.radial.r_min, b.radial.r_cut)
        for name in ("species_weights", "radial_weights", "shift", "scale"):
            setattr(nb, name, getattr(b, name).copy())
        import copy as _copy

        out = ETNPotential(self.species, nb, self.tt.copy(), self.e0, self.o3, _copy.deepcopy(self.metadata))
        out.active_set = _copy.deepcopy(self.active_set)
        return out

    def save(self, path) -> str:
        """Write this model to ``path`` (see :func:`etnpot.io.save`); returns the content hash."""
        from .io import save

        return save(self, path)

    # ------------------------------------------------------------ array backend
    def to(self, backend: str = "numpy", dtype: str = "float64") -> "ETNPotential":
        """Run the tensor-train contractions (evaluation and the design of the fit) on another
        array library: ``"numpy"`` (default), ``"cupy"`` (NVIDIA GPUs), ``"torch"``, ``"jax"``, ...
        dispatched by autoray (the array's type decides the device).  Features, neighbour lists
        and the pair sums stay in numpy.  Returns ``self``."""
        import importlib

        if backend != "numpy":
            importlib.import_module(backend)  # a clear ImportError if the library is missing
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.backend, self.dtype = backend, dtype
        return self

    def _dev(self, a):
        """Move a numpy array to the contraction backend (no-op for numpy float64)."""
        if self.backend == "numpy":
            return a if self.dtype == "float64" else a.astype(self.dtype)
        from autoray import do

        return do("asarray", np.array(a, dtype=self.dtype), like=self.backend)  # a writable copy

    def _host(self, a):
        if isinstance(a, np.ndarray):
            return a.astype(np.float64, copy=False)
        from autoray import to_numpy

        return np.asarray(to_numpy(a), dtype=np.float64)

    # ------------------------------------------------------------ evaluation
    def atom_ranges(self, n, size=None):
        """``[(s0, s1), ...]``: the ``n`` atoms of a batch in ranges of ``chunk_size`` (or ``size``)."""
        size = self.chunk_size if size is None else max(1, int(size))
        return [(s, min(n, s + size)) for s in range(0, max(n, 1), size)] if n else []

    def compute(self, atoms_list, forces=True, stress=True, grades=False) -> dict:
        """Energies, forces and stresses of one ``ase.Atoms`` or a list of them (batched), or of a
        prebuilt neighbour :class:`~etnpot.neighbors.Graph` of them (:meth:`graph`), which callers
        that evaluate the same configurations repeatedly (the fit) keep.

        Returns a dict: ``energy`` ``(n_configs,)`` eV, ``energies`` ``(n_atoms,)`` eV (per atom,
        E0 included), and if asked ``forces`` ``(n_atoms, 3)`` eV/Å, ``stress`` ``(n_configs, 6)``
        and ``stresses`` ``(n_atoms, 6)`` eV/Å^3 (NaN where the cell is not 3-d periodic), and
        with ``grades=True`` the per-atom ``extrapolation_grades`` (needs an active set, see
        :mod:`etnpot.grade`).  Always: ``min_pair_distance`` (Å, ``inf`` without pairs) and
        ``close_pairs``, the number of atom pairs closer than the inner distance ``r_min``.
        Atoms of all configurations are concatenated in order.
        """
        g = atoms_list if isinstance(atoms_list, Graph) else self.graph(atoms_list)
        if self.threads is None:
            return self._compute_graph(g, forces, stress, grades)
        with _threadpool_controller().limit(limits=int(self.threads)):
            return self._compute_graph(g, forces, stress, grades)

    def _compute_graph(self, g: Graph, forces=True, stress=True, grades=False) -> dict:
        """Evaluate chunk by chunk of ``chunk_size`` atoms (features, contraction, pair pull-back),
        so memory is bounded by the chunk, not the system: cost and memory are linear in atoms.
        The grades reuse the chunk's features and environments (one contraction pass).

        Unless ``self.evaluation == "reference"`` this runs :func:`etnpot.evaluation.compute_graph`
        (the same numbers to rounding: dense or block-sparse contraction chosen per model, features
        and pull-back through the Chebyshev coefficients, small chunks); the code below is the
        block-sparse reference that the fast path is tested against."""
        from . import evaluation

        if evaluation.contraction(self) != "reference":
            return evaluation.compute_graph(self, g, forces, stress, grades)
        need_grad = forces or stress
        aset = None
        if grades:
            from .grade import checked_active_set

            aset = checked_active_set(self)
            grade = np.zeros(g.n_atoms)
        site = np.zeros(g.n_atoms)
        f = np.zeros((g.n_atoms, 3)) if forces else None
        vir_cfg = np.zeros((g.n_configs, 6)) if stress else None
        vir_atom = np.zeros((g.n_atoms, 6)) if stress else None
        r_min, d_min, n_close = self.basis.radial.r_min, np.inf, 0
        first = np.searchsorted(g.i, np.arange(0, g.n_atoms + 1))
        for s0, s1 in self.atom_ranges(g.n_atoms):
            blocks, cache = self.basis.compute(g, slice(s0, s1))
            if len(cache.r):
                d_min = min(d_min, float(cache.r.min()))
                n_close += int(np.count_nonzero(cache.r < r_min))
            x = [self._dev(b) for b in blocks]
            if need_grad:
                v, gx, L, R = self.tt.value_grad_envs(x)
            else:
                L = self.tt.left_environments(x)
                R = self.tt.right_environments(x, downto=aset.core + 1) if aset is not None else None
                v = self.tt.value(x) if aset is None else L[-1][self.tt.bonds[-1][0][0]][..., 0, 0]
            site[s0:s1] = self._host(v)
            if aset is not None:
                k = aset.core
                grade[s0:s1] = aset.grades(self._host(self.tt.site_design(k, L[k], x, R[k + 1])))
            if not need_grad:
                continue
            gp = self.basis.pair_gradients([self._host(gl) for gl in gx], cache)  # dE/dr_ij of these pairs
            p0, p1 = first[s0], first[s1]
            gi, gj = g.i[p0:p1], g.j[p0:p1]
            if forces:
                for a in range(3):
                    f[:, a] += np.bincount(gi, gp[:, a], minlength=g.n_atoms) - np.bincount(gj, gp[:, a], minlength=g.n_atoms)
            if stress:
                Dv = g.vectors[p0:p1]
                vir = np.stack([0.5 * (gp[:, a] * Dv[:, b] + gp[:, b] * Dv[:, a]) for a, b in VOIGT], axis=1)
                for c in range(6):
                    vir_cfg[:, c] += np.bincount(g.pair_config[p0:p1], vir[:, c], minlength=g.n_configs)
                    vir_atom[:, c] += 0.5 * (np.bincount(gi, vir[:, c], minlength=g.n_atoms) +
                                             np.bincount(gj, vir[:, c], minlength=g.n_atoms))
        energies = site + self.e0[g.species]
        out = {"energies": energies, "energy": np.bincount(g.atom_config, energies, minlength=g.n_configs),
               "min_pair_distance": d_min, "close_pairs": n_close // 2}  # every pair is listed in both directions
        if forces:
            out["forces"] = f
        if stress:
            out["stress"] = vir_cfg / g.volumes[:, None]
            out["stresses"] = vir_atom / g.volumes[g.atom_config][:, None]
        if aset is not None:
            out["extrapolation_grades"] = grade
        return out

    # ------------------------------------------------------------ linearizations (etnpot.linearization)
    def core_linear_map(self, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        """Rows of the linear map from core ``k`` to energies, forces and stresses
        (:func:`etnpot.linearization.core_linear_map`)."""
        return linearization.core_linear_map(self, k, atoms_list, forces, stress, memory_mb)

    def supercore_linear_map(self, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        """The same for the supercore of cores ``k, k+1`` (:func:`etnpot.linearization.supercore_linear_map`)."""
        return linearization.supercore_linear_map(self, k, atoms_list, forces, stress, memory_mb)

    def feature_linear_map(self, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        """Gauss–Newton rows of the radial/species weights (:func:`etnpot.linearization.feature_linear_map`)."""
        return linearization.feature_linear_map(self, atoms_list, forces, stress, memory_mb)

    # ------------------------------------------------------------ the radial/species parameters
    def feature_parameter_vector(self) -> np.ndarray:
        """``[radial_weights.ravel(), species_weights.ravel()]``: the parameters of the features."""
        return np.concatenate([self.basis.radial_weights.ravel(), self.basis.species_weights.ravel()])

    def set_feature_parameter_vector(self, v) -> None:
        b = self.basis
        nB = b.radial_weights.size
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (nB + b.species_weights.size,):
            raise ValueError(f"expected {nB + b.species_weights.size} feature parameters, got shape {v.shape}")
        b.radial_weights = v[:nB].reshape(b.radial_weights.shape).copy()
        b.species_weights = v[nB:].reshape(b.species_weights.shape).copy()

_CONTROLLER = [None, -1]


def _threadpool_controller():
    """A cached ``threadpoolctl.ThreadpoolController``: ``threadpool_limits(n)`` looks up the loaded
    BLAS/OpenMP libraries at every call (0.6 ms, 1 µs/atom of a 512-atom MD step); the cache is
    renewed when modules were imported since (they may have loaded another library)."""
    import sys

    if _CONTROLLER[0] is None or _CONTROLLER[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _CONTROLLER[0] = ThreadpoolController()
        _CONTROLLER[1] = len(sys.modules)
    return _CONTROLLER[0]


def _jsonable_rank(rank):
    if isinstance(rank, (int, np.integer)):
        return int(rank)
    if isinstance(rank, str):
        return rank
    return {str(k): int(v) for k, v in dict(rank).items()}
