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

The energy is linear in every core ``T^{(k)}``; :meth:`ETNPotential.core_linear_map` returns the
rows of that linear map for energies, forces and stresses, the building block of the ALS fit.
Force rows come from forward-mode tangents: for atom ``i`` every pair ``(i, j)`` and direction
``a`` defines the tangent ``dF_i = dF_i/d(r_ij)_a``, carried through the left and right
environments by the product rule (an extra batch axis of :mod:`etnpot.tt`'s contractions).
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from .features import OneParticleBasis
from .neighbors import Graph, build_graph
from .so3 import Irrep, Irreps, natural_irrep
from .tt import EquivariantTT, path_backward, path_forward

__all__ = ["ETNPotential", "LinearMap"]

log = logging.getLogger(__name__)

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


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


class LinearMap:
    """Rows of the linear map ``core k -> (energies, forces, stresses)`` of a batch.

    ``energy = energy_rows @ theta + energy_offset`` (eV, one row per configuration);
    ``forces = force_rows @ theta`` (eV/Å, shape ``(n_atoms, 3, P)``);
    ``stress = stress_rows @ theta`` (eV/Å^3, Voigt, ``(n_configs, 6, P)``; NaN rows for
    configurations without a 3-d periodic cell).
    """

    def __init__(self, graph, energy_rows, energy_offset, force_rows, stress_rows):
        self.graph = graph
        self.energy_rows = energy_rows
        self.energy_offset = energy_offset
        self.force_rows = force_rows
        self.stress_rows = stress_rows


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
        self.dtype = "float64"  # or "float32" (faster; ~1e-6 relative error, see README)
        # BLAS threads during evaluation: 1 by default. The contractions are many small batched
        # products: a second thread gains < 10 % on an idle machine and stalls them 2-3x on a
        # busy one (benchmarks/README.md); None leaves the BLAS library's own setting.
        self.threads = 1
        self.chunk_size = 2048  # atoms per tensor-train batch: bounds the memory of evaluation
        self._z2s = np.full(120, -1, dtype=np.int64)
        self._z2s[self.numbers] = np.arange(len(self.numbers))

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, species, r_cut=5.0, order=4, l_max=3, rank=8, *, n_basis=8, n_channels=None,
              species_rank=None, r_min=None, o3=True, bond_l_max=None) -> "ETNPotential":
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
    def random(cls, species, r_cut=5.0, order=4, l_max=3, rank=8, seed=0, *, init="random",
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

    def parameter_counts(self) -> dict:
        return {"cores": self.tt.num_parameters, "species_weights": self.basis.species_weights.size,
                "radial_weights": self.basis.radial_weights.size, "e0": len(self.e0)}

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
    def _chunks(self, n, size=None):
        size = self.chunk_size if size is None else max(1, int(size))
        return [(s, min(n, s + size)) for s in range(0, max(n, 1), size)] if n else []

    def compute(self, atoms_list, forces=True, stress=True, grades=False) -> dict:
        """Energies, forces and stresses of one ``ase.Atoms`` or a list of them (batched).

        Returns a dict: ``energy`` ``(n_configs,)`` eV, ``energies`` ``(n_atoms,)`` eV (per atom,
        E0 included), and if asked ``forces`` ``(n_atoms, 3)`` eV/Å, ``stress`` ``(n_configs, 6)``
        and ``stresses`` ``(n_atoms, 6)`` eV/Å^3 (NaN where the cell is not 3-d periodic), and
        with ``grades=True`` the per-atom ``extrapolation_grades`` (needs an active set, see
        :mod:`etnpot.grade`).  Always: ``min_pair_distance`` (Å, ``inf`` without pairs) and
        ``close_pairs``, the number of atom pairs closer than the inner distance ``r_min``.
        Atoms of all configurations are concatenated in order.
        """
        g = self.graph(atoms_list)
        if self.threads is None:
            return self._compute_graph(g, forces, stress, grades)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(int(self.threads)):
            return self._compute_graph(g, forces, stress, grades)

    def _compute_graph(self, g: Graph, forces=True, stress=True, grades=False) -> dict:
        """Evaluate chunk by chunk of ``chunk_size`` atoms (features, contraction, pair pull-back),
        so memory is bounded by the chunk, not the system: cost and memory are linear in atoms.
        The grades reuse the chunk's features and environments (one contraction pass)."""
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
        for s0, s1 in self._chunks(g.n_atoms):
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

    # ------------------------------------------------------------ the linear map of one core
    def core_linear_map(self, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        """Rows of the linear map from core ``k`` (``tt.core_vector(k)``) to energies, forces, stresses.

        Exact: ``energy_rows @ theta + energy_offset`` is the energy for any ``theta``, and so on.
        ``memory_mb`` bounds the tangent arrays (atoms are processed in chunks).
        """
        if not 0 <= k < self.order:
            raise ValueError(f"core index must be in [0, {self.order}), got {k}")
        return self._linear_map(k, 1, atoms_list, forces, stress, memory_mb)

    def supercore_linear_map(self, k: int, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        """Like :meth:`core_linear_map` for the merged supercore of cores ``k, k+1``
        (``tt.merged_vector(k)``): the linear problem of a two-site DMRG step."""
        if not 0 <= k < self.order - 1:
            raise ValueError(f"supercore index must be in [0, {self.order - 1}), got {k}")
        return self._linear_map(k, 2, atoms_list, forces, stress, memory_mb)

    def _linear_map(self, k, sites, atoms_list, forces, stress, memory_mb):
        g = atoms_list if isinstance(atoms_list, Graph) else self.graph(atoms_list)
        blocks, cache = self.basis.compute(g)
        tt = self.tt
        P = tt.core_size(k) if sites == 1 else tt.merged_size(k)
        E_rows = np.zeros((g.n_configs, P))
        F_rows = np.zeros((g.n_atoms, 3, P)) if forces else None
        S_rows = np.zeros((g.n_configs, 6, P)) if stress else None
        offset = np.bincount(g.atom_config, self.e0[g.species], minlength=g.n_configs)
        first = np.searchsorted(g.i, np.arange(g.n_atoms + 1))  # pairs of atom a: first[a]:first[a+1]
        nnb = np.diff(first)
        maxnb = int(nnb.max()) if g.n_atoms and nnb.size else 0
        per_atom = max(1, 3 * maxnb) * P * 8 * 4 if (forces or stress) else P * 8 * 4
        chunk = max(1, int(memory_mb * 2**20 // per_atom))
        for s0, s1 in self._chunks(g.n_atoms, min(chunk, self.chunk_size)):
            x = [self._dev(b[s0:s1]) for b in blocks]
            L = tt.left_environments(x, upto=k)
            R = tt.right_environments(x, downto=k + sites)
            if sites == 1:
                phi = self._host(tt.site_design(k, L[k], x, R[k + 1]))  # (n, P)
            else:
                phi = self._host(tt.two_site_design(k, L[k], x, x, R[k + 2]))
            cfg = g.atom_config[s0:s1]
            E_rows += sp.csr_matrix((np.ones(s1 - s0), (cfg, np.arange(s1 - s0))), shape=(g.n_configs, s1 - s0)) @ phi
            if not (forces or stress):
                continue
            p0, p1 = first[s0], first[s1]
            if p1 == p0:
                continue
            nb = int(nnb[s0:s1].max())
            pi = g.i[p0:p1] - s0
            slot = np.arange(p0, p1) - first[g.i[p0:p1]]
            dx = []
            for l in range(self.basis.l_max + 1):
                G = self.basis.pair_tangents(cache, l, pairs=slice(p0, p1))  # (Ec, 3, 2l+1, C)
                t = np.zeros((s1 - s0, nb, 3) + G.shape[2:])
                t[pi, slot] = G
                dx.append(self._dev(t.reshape((s1 - s0, nb * 3) + G.shape[2:])))
            dphi = self._host(self._design_tangent(k, sites, x, dx, L, R))  # (n, 3 nb, P)
            dpe = dphi.reshape(s1 - s0, nb, 3, P)[pi, slot]  # (Ec, 3, P): dPhi_i/d r_ij
            _scatter_pair_rows(g, p0, p1, dpe, F_rows, S_rows)
        if stress:
            S_rows /= g.volumes[:, None, None]
        return LinearMap(g, E_rows, offset, F_rows, S_rows)

    def _env_tangents(self, x, dx, L, R, upto, downto):
        """Tangents of the environments for input tangents ``dx`` (blocks ``(n, T, 2l+1, C)``):
        ``dL[s]`` for ``s = 0..upto`` and ``dR[s]`` for ``s = order..downto`` (dicts irrep -> block,
        empty where zero), by forward-mode product rule through the cores."""
        tt = self.tt
        xb = [b[:, None] for b in x]
        lift = lambda env: {a: v[:, None] for a, v in env.items()}
        dL = {0: {}}
        for s in range(upto):
            nxt, u, du = {}, lift(L[s]), dL[s]
            for (a, f, b), T, C in tt._arrays(s, x[0]):
                for val in ((path_forward(du[a], xb[f], T, C) if a in du else None),
                            (path_forward(u[a], dx[f], T, C) if a in u else None)):
                    if val is not None:
                        nxt[b] = nxt[b] + val if b in nxt else val
            dL[s + 1] = nxt
        dR = {tt.order: {}}
        for s in range(tt.order - 1, downto - 1, -1):
            nxt, w, dw = {}, lift(R[s + 1]), dR[s + 1]
            for (a, f, b), T, C in tt._arrays(s, x[0]):
                for val in ((path_backward(dw[b], xb[f], T, C) if b in dw else None),
                            (path_backward(w[b], dx[f], T, C) if b in w else None)):
                    if val is not None:
                        nxt[a] = nxt[a] + val if a in nxt else val
            dR[s] = nxt
        return dL, dR

    def _design_tangent(self, k, sites, x, dx, L, R):
        """``d Phi / dt`` of core ``k`` (or of the supercore ``k, k+1``) for input tangents ``dx``
        (blocks ``(n, T, 2l+1, C)``), by the product rule over the environments and the input slots."""
        tt = self.tt
        xb = [b[:, None] for b in x]
        lift = lambda env: {a: v[:, None] for a, v in env.items()}
        dL, dR = self._env_tangents(x, dx, L, R, k, k + sites)
        u, du, w, dw = lift(L[k]), dL[k], lift(R[k + sites]), dR[k + sites]
        if sites == 1:
            out = tt.site_design(k, u, dx, w)
            if du:
                out = out + tt.site_design(k, du, xb, w)
            if dw:
                out = out + tt.site_design(k, u, xb, dw)
            return out
        out = tt.two_site_design(k, u, dx, xb, w) + tt.two_site_design(k, u, xb, dx, w)
        if du:
            out = out + tt.two_site_design(k, du, xb, xb, w)
        if dw:
            out = out + tt.two_site_design(k, u, xb, xb, dw)
        return out

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

    def feature_linear_map(self, atoms_list, forces=True, stress=True, memory_mb: float = 256.0) -> LinearMap:
        r"""Jacobian rows of energies, forces and stresses with respect to
        :meth:`feature_parameter_vector` (radial weights ``B``, species weights ``A``) at the
        current parameters: the Gauss–Newton linearization (the energy is a polynomial of degree
        ``order`` in them, not linear).

        With the pair radial table ``W_ab[l,c,n] = sum_k B[l,c,n,k] A[l,k,a,b] / s_lc`` and
        ``g_i = dE_i/dF_i`` (one reverse sweep), ``dE/dW_ab[l,c,n] = sum_{pairs e=(i,j), z_i=a, z_j=b}
        sum_m g_i[l,m,c] Y_lm(e) Q_n(r_e)``; force and stress rows differentiate this along every
        pair-vector tangent, which needs the tangent of ``g_i`` (forward tangents of all left and
        right environments) and of ``Y Q``.  ``energy_offset`` is the current energy.
        """
        g = atoms_list if isinstance(atoms_list, Graph) else self.graph(atoms_list)
        b = self.basis
        blocks, cache = b.compute(g)
        tt = self.tt
        S, Lp, C, N = b.n_species, b.l_max + 1, b.n_channels, b.radial.n_basis
        PW = S * S * Lp * C * N
        # chain rule W -> (B, A): dW[ab,l,c,n] / dB[l,c,n,k] = A[l,k,a,b]/s, dW/dA[l,k,a,b] = B[l,c,n,k]/s
        sc = 1.0 / b.scale  # (L, C)
        eL, eC, eN, eS = np.eye(Lp), np.eye(C), np.eye(N), np.eye(S)
        dW_dB = np.einsum("lkab,lc,lL,cD,nM->ablcnLDMk", b.species_weights, sc, eL, eC, eN)
        dW_dA = np.einsum("lcnk,lc,lL,aA,bB->ablcnLkAB", b.radial_weights, sc, eL, eS, eS)
        chain = np.concatenate([dW_dB.reshape(PW, -1), dW_dA.reshape(PW, -1)], axis=1)  # (PW, P_feat)
        Pf = chain.shape[1]
        Q, dQ = b.radial(cache.r)
        ptype = g.species[g.i] * S + g.species[g.j]
        E_rows = np.zeros((g.n_configs, Pf))
        F_rows = np.zeros((g.n_atoms, 3, Pf)) if forces else None
        S_rows = np.zeros((g.n_configs, 6, Pf)) if stress else None
        energy = np.zeros(g.n_configs)
        first = np.searchsorted(g.i, np.arange(g.n_atoms + 1))
        nnb = np.diff(first)
        maxnb = int(nnb.max()) if g.n_atoms and nnb.size else 0
        per_atom = max(1, 3 * maxnb) * (PW + sum(2 * l + 1 for l in range(Lp)) * (C + S)) * 8 * 6
        chunk = max(1, int(memory_mb * 2**20 // per_atom))
        for s0, s1 in self._chunks(g.n_atoms, min(chunk, self.chunk_size)):
            x = [bl[s0:s1] for bl in blocks]
            L = tt.left_environments(x)
            R = tt.right_environments(x, downto=0)
            energy += np.bincount(g.atom_config[s0:s1], L[-1][tt.bonds[-1][0][0]][:, 0, 0] if tt.bonds[-1][0][0] in L[-1]
                                  else np.zeros(s1 - s0), minlength=g.n_configs)
            grad = [np.zeros_like(xl) for xl in x]
            for s in range(tt.order):
                for f, gf in tt.site_input_grad(s, L[s], R[s + 1], x[0]).items():
                    grad[f] = grad[f] + gf
            p0, p1 = first[s0], first[s1]
            if p1 == p0:
                continue
            Ec = p1 - p0
            pe = slice(p0, p1)
            ie = g.i[pe] - s0
            # energy: per pair G_e[l,c] = sum_m g_i[l,m,c] Y_lm(e); row += G_e (x) Q_e in the pair's W block
            Ge = np.concatenate([np.einsum("emc,em->ec", grad[l][ie][:, :, :C], cache.Y[pe, l * l:(l + 1) ** 2])[:, None]
                                 for l in range(Lp)], axis=1)  # (Ec, L, C)
            contrib = np.zeros((Ec, S * S, Lp, C, N))
            contrib[np.arange(Ec), ptype[pe]] = Ge[:, :, :, None] * Q[pe][:, None, None, :]
            Mc = sp.csr_matrix((np.ones(Ec), (g.pair_config[pe], np.arange(Ec))), shape=(g.n_configs, Ec))
            E_rows += (Mc @ contrib.reshape(Ec, PW)) @ chain
            if not (forces or stress):
                continue
            nb = int(nnb[s0:s1].max())
            slot = np.arange(p0, p1) - first[g.i[pe]]
            dx = []
            for l in range(Lp):
                Gt = b.pair_tangents(cache, l, pairs=pe)
                t = np.zeros((s1 - s0, nb, 3) + Gt.shape[2:])
                t[ie, slot] = Gt
                dx.append(t.reshape((s1 - s0, nb * 3) + Gt.shape[2:]))
            dL, dR = self._env_tangents(x, dx, L, R, tt.order - 1, 1)
            lift = lambda env: {a: v[:, None] for a, v in env.items()}
            dg = [np.zeros((s1 - s0, 3 * nb) + xl.shape[1:]) for xl in x]
            for s in range(tt.order):
                for src in ((dL[s], lift(R[s + 1])), (lift(L[s]), dR[s + 1])):
                    if src[0] and src[1]:
                        for f, gf in tt.site_input_grad(s, src[0], src[1], x[0]).items():
                            dg[f] = dg[f] + gf
            # term 1: sum_{e in i} sum_m dg_i[t,l,m,c] Y_lm(e) Q_n(e) in block (z_i, z_j(e))
            rows = np.zeros((s1 - s0, 3 * nb, S * S, Lp, C, N))
            for l in range(Lp):
                Yl = cache.Y[pe, l * l:(l + 1) ** 2]  # (Ec, 2l+1)
                # Phi_i^{(type)}[l, m, n] = sum_{e in i, type} Y_lm Q_n
                Phi = np.zeros((s1 - s0, S * S, 2 * l + 1, N))
                np.add.at(Phi, (ie, ptype[pe]), Yl[:, :, None] * Q[pe][:, None, :])
                rows[:, :, :, l] += np.einsum("itmc,ipmn->itpcn", dg[l][..., :C], Phi)
            # term 2: the pair's own Y Q moves: g_i[l,m,c] d(Y_lm Q_n)/dr_e[a] in its (e, a) tangent slot
            own = np.zeros((Ec, 3, Lp, C, N))
            for l in range(Lp):
                sl = slice(l * l, (l + 1) ** 2)
                gi = grad[l][ie][:, :, :C]  # (Ec, m, C)
                dYQ = (cache.rhat[pe][:, :, None, None] * cache.Y[pe, sl][:, None, :, None] * dQ[pe][:, None, None, :]
                       + cache.dY[pe][:, :, sl][:, :, :, None] * Q[pe][:, None, None, :])  # (Ec, 3, m, N)
                own[:, :, l] = np.einsum("emc,eamn->eacn", gi, dYQ)
            rows_r = rows.reshape(s1 - s0, nb, 3, S * S, Lp, C, N)
            rows_r[ie, slot, :, ptype[pe]] += own
            dpe = rows_r[ie, slot].reshape(Ec, 3, PW) @ chain  # (Ec, 3, Pf): dJ_i/d r_e
            _scatter_pair_rows(g, p0, p1, dpe, F_rows, S_rows)
        if stress:
            S_rows /= g.volumes[:, None, None]
        offset = energy + np.bincount(g.atom_config, self.e0[g.species], minlength=g.n_configs)
        return LinearMap(g, E_rows, offset, F_rows, S_rows)


def _scatter_pair_rows(g, p0, p1, dpe, F_rows, S_rows):
    """Add per-pair derivative rows ``dpe[e, a, :] = d(rows)/d(r_e)_a`` of pairs ``p0:p1`` to force
    rows (``F_i += dpe``, ``F_j -= dpe`` since ``r_ij = r_j - r_i``) and to virial/stress rows
    (``W[c, a, b] += dpe[e, a] r_e[b]`` for the pairs of configuration ``c``, symmetrized, Voigt;
    divided by the volume by the caller).  Either target may be ``None``."""
    Ec = p1 - p0
    P = dpe.shape[-1]
    flat = dpe.reshape(Ec, 3 * P)
    if F_rows is not None:
        M = sp.csr_matrix((np.concatenate([np.ones(Ec), -np.ones(Ec)]),
                           (np.concatenate([g.i[p0:p1], g.j[p0:p1]]), np.tile(np.arange(Ec), 2))), shape=(g.n_atoms, Ec))
        F_rows += (M @ flat).reshape(g.n_atoms, 3, P)
    if S_rows is not None:
        W = np.empty((g.n_configs, 3, 3, P))  # one sparse product per Cartesian b
        for b in range(3):
            Mb = sp.csr_matrix((g.vectors[p0:p1, b], (g.pair_config[p0:p1], np.arange(Ec))), shape=(g.n_configs, Ec))
            W[:, :, b, :] = (Mb @ flat).reshape(g.n_configs, 3, P)
        S_rows += np.stack([0.5 * (W[:, a, b] + W[:, b, a]) for a, b in VOIGT], axis=1)


def _jsonable_rank(rank):
    if isinstance(rank, (int, np.integer)):
        return int(rank)
    if isinstance(rank, str):
        return rank
    return {str(k): int(v) for k, v in dict(rank).items()}
