"""Rotation-group tools: irreps, real spherical harmonics, real Clebsch–Gordan tensors.

Conventions (stated here once and used everywhere)
--------------------------------------------------
* **Real spherical harmonics** are those of :mod:`sphericart`: orthonormal on the unit
  sphere, ``Y_00 = 1/sqrt(4 pi)``, components ordered ``m = -l..l``; for ``l = 1`` they are
  ``sqrt(3/(4 pi)) * (y, z, x) / r``.  They are evaluated at the *direction* of a vector
  (``Y(r) = Y(r/|r|)``) and the gradients are Cartesian gradients with respect to the
  un-normalized vector.
* **Wigner matrices** ``D^l(R)`` are defined by ``Y_l(R x) = D^l(R) Y_l(x)`` in that basis
  (real orthogonal matrices).  Parity: ``Y_l(-x) = (-1)^l Y_l(x)``.
* **Clebsch–Gordan tensors** ``C[m1, m2, m3]`` of a path ``(l1, l2, l3)`` couple
  ``V_l1 (x) V_l2 -> V_l3``: ``z_m3 = sum C[m1, m2, m3] x_m1 y_m2`` transforms with ``D^l3``
  when ``x`` and ``y`` transform with ``D^l1`` and ``D^l2``.  They are normalized like the
  standard (complex) CG coefficients, ``sum_{m1 m2} C[m1, m2, m] C[m1, m2, m'] = delta(m, m')``,
  so ``||C||_F^2 = 2 l3 + 1``.  They are built from the exact Racah formula in the complex
  basis and carried into sphericart's real basis by a unitary fitted to sphericart itself,
  so no convention can disagree.  Paths with odd ``l1 + l2 + l3`` exist (e.g. the cross
  product ``1 x 1 -> 1``); they change sign under inversion.

Irreps carry a parity label for O(3): ``"1o"`` is a vector, ``"1e"`` a pseudo-vector; the
spherical harmonics of degree ``l`` have the natural parity ``(-1)^l``.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Irrep",
    "Irreps",
    "real_sph_harm",
    "clebsch_gordan",
    "wigner_D",
    "random_rotation",
]


@dataclass(frozen=True, order=True)
class Irrep:
    """An irreducible representation of SO(3) (``p = 0``) or O(3) (``p = +1/-1``).

    ``str(Irrep(1, -1)) == "1o"``, ``str(Irrep(2, 1)) == "2e"``, ``str(Irrep(3, 0)) == "3"``.
    """

    l: int
    p: int = 0

    def __post_init__(self):
        if self.l < 0:
            raise ValueError(f"irrep degree l must be >= 0, got {self.l}")
        if self.p not in (-1, 0, 1):
            raise ValueError(f"irrep parity must be -1, 0 or 1, got {self.p}")

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    @classmethod
    def parse(cls, text: str | "Irrep") -> "Irrep":
        if isinstance(text, Irrep):
            return text
        m = re.fullmatch(r"\s*(\d+)\s*([eo]?)\s*", str(text))
        if not m:
            raise ValueError(f"cannot parse irrep {text!r}; expected e.g. '0e', '1o' or '2'")
        l = int(m.group(1))
        p = {"e": 1, "o": -1, "": 0}[m.group(2)]
        return cls(l, p)

    def __str__(self) -> str:
        return f"{self.l}{ {1: 'e', -1: 'o', 0: ''}[self.p] }".replace(" ", "")


def natural_irrep(l: int, o3: bool) -> Irrep:
    """The irrep of the degree-``l`` spherical harmonics: parity ``(-1)^l`` for O(3)."""
    return Irrep(l, (-1) ** l if o3 else 0)


def path_allowed(a: Irrep, f: Irrep, b: Irrep) -> bool:
    """Whether ``a (x) f -> b`` is an equivariant coupling: the triangle rule and, for O(3)
    irreps, parity ``p_a p_f = p_b`` (SO(3) irreps, parity 0, couple by the triangle rule alone)."""
    if not abs(a.l - f.l) <= b.l <= a.l + f.l:
        return False
    if a.p == 0 and f.p == 0 and b.p == 0:
        return True
    return a.p * f.p == b.p


class Irreps(tuple):
    """A direct sum of irreps with multiplicities: ``Irreps("8x0e + 4x1o")``.

    Behaves as a tuple of ``(Irrep, multiplicity)`` pairs with distinct irreps, sorted.
    ``dim`` is ``sum mult * (2l + 1)``.
    """

    def __new__(cls, spec=()):
        if isinstance(spec, Irreps):
            return spec
        items: dict[Irrep, int] = {}
        if isinstance(spec, str):
            for term in filter(None, (t.strip() for t in spec.split("+"))):
                m = re.fullmatch(r"(?:(\d+)\s*x\s*)?(\w+)", term)
                if not m:
                    raise ValueError(f"cannot parse irreps term {term!r} in {spec!r}")
                mult = int(m.group(1) or 1)
                ir = Irrep.parse(m.group(2))
                items[ir] = items.get(ir, 0) + mult
        elif isinstance(spec, dict):
            for k, v in spec.items():
                ir = Irrep.parse(k) if not isinstance(k, int) else Irrep(k)
                items[ir] = items.get(ir, 0) + int(v)
        else:
            for ir, mult in spec:
                ir = Irrep.parse(ir)
                items[ir] = items.get(ir, 0) + int(mult)
        for ir, mult in items.items():
            if mult < 0:
                raise ValueError(f"multiplicity of irrep {ir} must be >= 0, got {mult}")
        return super().__new__(cls, tuple(sorted((ir, m) for ir, m in items.items() if m > 0)))

    @property
    def dim(self) -> int:
        return sum(m * ir.dim for ir, m in self)

    def mult(self, ir: Irrep) -> int:
        return dict(self).get(ir, 0)

    def __str__(self) -> str:
        return " + ".join(f"{m}x{ir}" for ir, m in self) or "0"

    def __repr__(self) -> str:
        return f"Irreps('{self}')"

    def to_dict(self) -> dict[str, int]:
        return {str(ir): m for ir, m in self}


# ---------------------------------------------------------------- spherical harmonics


@functools.lru_cache(maxsize=None)
def _sphericart(l_max: int):
    import sphericart

    return sphericart.SphericalHarmonics(l_max)


def real_sph_harm(l_max: int, vectors, gradients: bool = False):
    """Real spherical harmonics of the directions of ``vectors`` (shape ``(n, 3)``).

    Returns ``Y`` of shape ``(n, (l_max+1)^2)`` (column ``l^2 + l + m``), and with
    ``gradients=True`` also ``dY`` of shape ``(n, 3, (l_max+1)^2)``: ``dY[e, a, k] =
    dY_k(v_e)/dv_e[a]``, the Cartesian gradient with respect to the un-normalized vector.
    """
    if l_max < 0:
        raise ValueError(f"l_max must be >= 0, got {l_max}")
    v = np.ascontiguousarray(vectors, dtype=np.float64).reshape(-1, 3)
    sh = _sphericart(int(l_max))
    if gradients:
        if len(v) == 0:
            k = (l_max + 1) ** 2
            return np.zeros((0, k)), np.zeros((0, 3, k))
        Y, dY = sh.compute_with_gradients(v)
        return Y, dY
    if len(v) == 0:
        return np.zeros((0, (l_max + 1) ** 2))
    return sh.compute(v)


def _complex_sph_harm(l: int, vectors) -> np.ndarray:
    """Complex Y_l^m (Condon–Shortley phase), columns m = -l..l, via SciPy."""
    from scipy.special import sph_harm_y

    v = np.asarray(vectors, dtype=np.float64)
    r = np.linalg.norm(v, axis=1)
    theta = np.arccos(np.clip(v[:, 2] / r, -1.0, 1.0))
    phi = np.arctan2(v[:, 1], v[:, 0])
    ms = np.arange(-l, l + 1)
    return sph_harm_y(l, ms[None, :], theta[:, None], phi[:, None])


@functools.lru_cache(maxsize=None)
def _real_from_complex(l: int) -> np.ndarray:
    """Unitary ``V`` with ``Y_real = V @ Y_complex`` (fitted on sample points)."""
    pts = np.random.default_rng(12345).normal(size=(4 * (2 * l + 1) + 8, 3))
    Yr = real_sph_harm(l, pts)[:, l * l : (l + 1) ** 2]
    Yc = _complex_sph_harm(l, pts)
    Vt, *_ = np.linalg.lstsq(Yc, Yr.astype(complex), rcond=None)
    V = Vt.T
    err = np.abs(V @ V.conj().T - np.eye(2 * l + 1)).max()
    if err > 1e-10:  # pragma: no cover - would mean sphericart changed its normalization
        raise RuntimeError(f"real/complex SH basis change for l={l} is not unitary ({err:.1e})")
    return V


def _complex_cg(l1: int, l2: int, l3: int) -> np.ndarray:
    """Standard complex CG ``<l1 m1 l2 m2 | l3 m3>`` by Racah's formula, shape (2l1+1, 2l2+1, 2l3+1)."""
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    f = lambda k: math.factorial(k)  # exact integers: no cancellation error for l <= ~20
    pref0 = (2 * l3 + 1) * f(l3 + l1 - l2) * f(l3 - l1 + l2) * f(l1 + l2 - l3) / f(l1 + l2 + l3 + 1)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) > l3:
                continue
            pref = pref0 * f(l3 + m3) * f(l3 - m3) * f(l1 - m1) * f(l1 + m1) * f(l2 - m2) * f(l2 + m2)
            s = 0
            kmin = max(0, l2 - l3 - m1, l1 - l3 + m2)
            kmax = min(l1 + l2 - l3, l1 - m1, l2 + m2)
            for k in range(kmin, kmax + 1):
                den = f(k) * f(l1 + l2 - l3 - k) * f(l1 - m1 - k) * f(l2 + m2 - k) * f(l3 - l2 + m1 + k) * f(l3 - l1 - m2 + k)
                s += (-1) ** k / den
            out[m1 + l1, m2 + l2, m3 + l3] = math.sqrt(pref) * s
    return out


@functools.lru_cache(maxsize=None)
def _clebsch_gordan_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    Cc = _complex_cg(l1, l2, l3)
    V1, V2, V3 = (_real_from_complex(l) for l in (l1, l2, l3))
    # z_real = V3 z_c, x_c = V1^H x_real  =>  C_real[a,b,c] = sum V1*[a,i] V2*[b,j] V3[c,k] Cc[i,j,k]
    Cr = np.einsum("ai,bj,ck,ijk->abc", V1.conj(), V2.conj(), V3, Cc)
    k = np.unravel_index(np.argmax(np.abs(Cr)), Cr.shape)
    Cr = Cr * (abs(Cr[k]) / Cr[k])  # remove the global phase: the real coupling is unique up to it
    if np.abs(Cr.imag).max() > 1e-10:  # pragma: no cover
        raise RuntimeError(f"real CG for path {(l1, l2, l3)} is not real")
    C = np.ascontiguousarray(Cr.real)
    C[np.abs(C) < 1e-14] = 0.0
    C.setflags(write=False)
    return C


def clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real CG tensor ``C[m1, m2, m3]`` of the path ``(l1, l2, l3)`` (a cached, read-only array).

    Raises ``ValueError`` if the triangle rule ``|l1 - l2| <= l3 <= l1 + l2`` fails.
    """
    l1, l2, l3 = int(l1), int(l2), int(l3)
    if min(l1, l2, l3) < 0 or not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"path {(l1, l2, l3)} violates the triangle rule")
    return _clebsch_gordan_cached(l1, l2, l3)


# ---------------------------------------------------------------- rotations (for tests and checks)


def random_rotation(rng, reflection: bool = False) -> np.ndarray:
    """A Haar-random rotation matrix; with ``reflection=True`` an improper one (det -1)."""
    rng = np.random.default_rng(rng)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return -q if reflection else q


def wigner_D(l: int, R) -> np.ndarray:
    """Real Wigner matrix of ``R`` (3x3 orthogonal) in the basis of :func:`real_sph_harm`.

    Defined by ``Y_l(R x) = D Y_l(x)``; for an improper ``R`` it includes the parity ``(-1)^l``.
    """
    R = np.asarray(R, dtype=np.float64)
    pts = np.random.default_rng(54321).normal(size=(4 * (2 * l + 1) + 8, 3))
    sl = slice(l * l, (l + 1) ** 2)
    Y = real_sph_harm(l, pts)[:, sl]
    YR = real_sph_harm(l, pts @ R.T)[:, sl]
    Dt, *_ = np.linalg.lstsq(Y, YR, rcond=None)
    return Dt.T
