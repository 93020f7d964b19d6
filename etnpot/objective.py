r"""The objective of an ETN fit: data, loss, the assembly of local problems, and error tables.

.. math::

    \mathcal L = \frac{1}{n_{\rm conf}} \sum_c w_c \Big[ w_E \Big(\frac{E_c - E^{\rm ref}_c}{N_c}\Big)^2
        + w_F \sum_{i\alpha} (F_{ci\alpha} - F^{\rm ref}_{ci\alpha})^2
        + w_S \sum_{v=1}^{6} (\sigma_{cv} - \sigma^{\rm ref}_{cv})^2 \Big]
        + \gamma\, \|W\|_F^2

per training configuration ``c`` with ``N_c`` atoms and weight ``w_c`` (energies in eV, forces
eV/Å, stress eV/Å^3; ``w_E, w_F, w_S`` may differ per config type; ``W`` is the full coefficient
tensor of the tensor train, whose norm is gauge independent).  The same data loss, per
configuration, scores the validation set, so early stopping and the restore of the best sweep
rank models by the quantity the fit minimizes.

The data are touched only through the per-chunk functions of :mod:`etnpot.chunks`, mapped over
the chunks inline or on Dask workers (:mod:`etnpot.distributed`) and reduced in the same tree
order either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from . import chunks as C
from . import defaults as D
from .data import Configuration

__all__ = ["Weights", "Objective"]


@dataclass
class Weights:
    """Loss weights: energy per (eV/atom)^-2, forces per (eV/Å)^-2 and stress per (eV/Å^3)^-2
    (per component).  ``config_types`` overrides them per config type, e.g.
    ``{"Surface": {"energy": 10.0}}``."""

    energy: float = D.WEIGHTS["energy"]  # etnpot.defaults
    forces: float = D.WEIGHTS["forces"]
    stress: float = D.WEIGHTS["stress"]
    config_types: dict = field(default_factory=dict)

    def __post_init__(self):
        for key in ("energy", "forces", "stress"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and v >= 0 and v == v):
                raise ValueError(f"weights.{key} must be a number >= 0, got {v!r}")
        for ctype, over in dict(self.config_types).items():
            for key, v in dict(over).items():
                if key not in ("energy", "forces", "stress"):
                    raise ValueError(f"weights.config_types.{ctype}: unknown key {key!r} (energy, forces, stress)")
                if not (isinstance(v, (int, float)) and v >= 0 and v == v):
                    raise ValueError(f"weights.config_types.{ctype}.{key} must be a number >= 0, got {v!r}")

    def for_type(self, ctype: str):
        d = {"energy": self.energy, "forces": self.forces, "stress": self.stress}
        d.update(self.config_types.get(ctype, {}))
        return d["energy"], d["forces"], d["stress"]

    def wants_stress(self) -> bool:
        return self.stress > 0 or any(v.get("stress", 0) > 0 for v in self.config_types.values())


class Objective:
    """The loss of ``potential`` on training (and validation) data, and its local problems.

    ``train``/``validation``: configurations or chunks (:mod:`etnpot.chunks`); ``client``: a
    Dask client to map the chunk functions on (``None``: inline).
    """

    def __init__(self, potential, train, validation, weights: Weights, ridge: float, chunk_atoms: int,
                 memory_mb: float, client=None, species_tie: float = 0.0):
        self.pot = potential
        self.weights = weights
        self.ridge = float(ridge)
        self.species_tie = float(species_tie)  # used by the local solves (etnpot.steps.species_tie_penalty)
        self.memory_mb = float(memory_mb)
        self.client = client
        self.chunk_atoms = int(chunk_atoms)
        self.train = self.as_chunks(train)
        self.validation = self.as_chunks(validation or [])
        if not self.train:
            raise ValueError("the training set is empty")
        self.n_conf = int(sum(self.map(C.n_configs, self.train, reduce=False)))
        if self.n_conf == 0:
            raise ValueError("the training set is empty")
        self.n_valid = int(sum(self.map(C.n_configs, self.validation, reduce=False)))
        for name, chunks in (("training", self.train), ("validation", self.validation)):
            offset = 0
            for ch, bad in zip(chunks, self.map(C.unknown_species, chunks, self.pot.species, reduce=False)):
                if bad:
                    i, src, syms = bad[0]
                    raise ValueError(f"{name} configuration {offset + i}" + (f" ({src})" if src else "") +
                                     f": species {syms} not in the model's species {self.pot.species}")
                offset += C.n_configs(ch)

    # ------------------------------------------------------------ data (map-reduce over chunks)
    def as_chunks(self, data):
        data = list(data)
        if data and all(isinstance(d, (C.MemoryChunk, C.FileChunk)) for d in data):
            return data
        if any(not isinstance(d, Configuration) for d in data):
            raise TypeError("training/validation data must be Configuration objects or chunks (etnpot.chunks)")
        return C.make_memory_chunks(data, self.chunk_atoms)

    def map(self, fn, chunks, *args, reduce=True):
        """Apply ``fn(chunk, *args)`` to every chunk and merge the results (``reduce``) or list them:
        inline, or on the Dask workers of ``client``."""
        if not chunks:
            return None if reduce else []
        if self.client is not None:
            from .distributed import map_reduce

            return map_reduce(self.client, fn, chunks, args, reduce=reduce)
        if not reduce:
            return [fn(c, *args) for c in chunks]
        return C.tree_reduce((fn(c, *args) for c in chunks), C.merge)  # streamed

    # ------------------------------------------------------------ loss
    def data_loss(self, chunks=None) -> float:
        """The data part of the objective per configuration (on the training set by default)."""
        chunks = self.train if chunks is None else chunks
        n = {id(self.train): self.n_conf, id(self.validation): self.n_valid}.get(id(chunks))
        if n is None:
            n = int(sum(self.map(C.n_configs, chunks, reduce=False)))
        return self.map(C.data_loss, chunks, self.pot, self.weights, self.weights.wants_stress()) / max(n, 1)

    def __call__(self) -> float:
        """Data loss plus ``ridge * ||W||^2`` (the full tensor's norm, gauge independent)."""
        reg = self.ridge * self.pot.tt.norm_squared() if self.ridge else 0.0
        return self.data_loss() + reg

    def validation_loss(self) -> float | None:
        """The data loss per configuration on the validation set (``None`` without one)."""
        return self.data_loss(self.validation) if self.validation else None

    def errors(self, data) -> dict | None:
        """Error table (:func:`etnpot.metrics.error_table` layout) of the current model on ``data``
        (configurations or chunks), computed chunk by chunk (on the workers, with a client)."""
        from .metrics import table_from_sums

        chunks = data if (data and isinstance(data[0], (C.MemoryChunk, C.FileChunk))) else self.as_chunks(data or [])
        if not chunks:
            return None
        return table_from_sums(self.map(C.error_sums, chunks, self.pot))

    # ------------------------------------------------------------ local problems
    def assemble(self, what: str, k: int = 0, fit_e0: bool = True):
        """A local problem as a streamed :class:`~etnpot.lstsq.LeastSquares`: ``"core"`` ``k``,
        ``"supercore"`` ``k, k+1``, ``"cores"`` (all cores at once, Gauss–Newton on the
        residuals; the energy is multilinear, so the Jacobian is the concatenation of the
        per-core linear maps) or ``"features"`` (radial/species weights, Gauss–Newton).  The
        unknowns are ``[parameters, dE0]`` (``dE0`` only with ``fit_e0``); ``loss/n_conf`` is the
        data part of the objective."""
        return self.map(C.least_squares, self.train, self.pot, self.weights, what, k, fit_e0,
                        self.weights.wants_stress(), self.memory_mb)
