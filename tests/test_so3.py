"""Real spherical harmonics and Clebsch–Gordan tensors: equivariance, parity, normalization, gradients."""
import numpy as np
import pytest

from etnpot.so3 import Irrep, Irreps, _complex_cg, clebsch_gordan, random_rotation, real_sph_harm, wigner_D

LMAX = 6


def test_sph_harm_rotate_with_wigner_D(rng):
    pts = rng.normal(size=(40, 3))  # not the points D was fitted on
    for _ in range(3):
        R = random_rotation(rng)
        Y, YR = real_sph_harm(LMAX, pts), real_sph_harm(LMAX, pts @ R.T)
        for l in range(LMAX + 1):
            D = wigner_D(l, R)
            sl = slice(l * l, (l + 1) ** 2)
            np.testing.assert_allclose(YR[:, sl], Y[:, sl] @ D.T, atol=1e-12)
            np.testing.assert_allclose(D @ D.T, np.eye(2 * l + 1), atol=1e-12)
            if l >= 1:  # negative control: another rotation's D does not fit
                assert np.abs(YR[:, sl] - Y[:, sl] @ wigner_D(l, random_rotation(rng)).T).max() > 1e-2


def test_wigner_D_is_a_representation(rng):
    R1, R2 = random_rotation(rng), random_rotation(rng)
    for l in range(LMAX + 1):
        np.testing.assert_allclose(wigner_D(l, R1 @ R2), wigner_D(l, R1) @ wigner_D(l, R2), atol=1e-11)
        if l >= 1:  # negative control: the order matters (rotations do not commute)
            assert np.abs(wigner_D(l, R1 @ R2) - wigner_D(l, R2) @ wigner_D(l, R1)).max() > 1e-3


def test_parity(rng):
    pts = rng.normal(size=(20, 3))
    Y, Ym = real_sph_harm(LMAX, pts), real_sph_harm(LMAX, -pts)
    for l in range(LMAX + 1):
        sl = slice(l * l, (l + 1) ** 2)
        np.testing.assert_allclose(Ym[:, sl], (-1) ** l * Y[:, sl], atol=1e-13)


def test_orthonormal_on_sphere():
    # Lebedev-free check: Monte Carlo would be noisy; use a product Gauss-Legendre x uniform grid
    x, w = np.polynomial.legendre.leggauss(20)
    phi = np.linspace(0, 2 * np.pi, 41)[:-1]
    ct, ph = np.meshgrid(x, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    pts = np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3)
    wts = (w[:, None] * np.full(len(phi), 2 * np.pi / len(phi))[None]).ravel()
    Y = real_sph_harm(LMAX, pts)
    np.testing.assert_allclose((Y * wts[:, None]).T @ Y, np.eye((LMAX + 1) ** 2), atol=1e-12)


def test_sph_harm_gradients_fd(rng):
    v = rng.normal(size=(6, 3))
    _, dY = real_sph_harm(LMAX, v, gradients=True)
    h = 1e-6
    for a in range(3):
        e = np.zeros(3)
        e[a] = h
        fd = (real_sph_harm(LMAX, v + e) - real_sph_harm(LMAX, v - e)) / (2 * h)
        np.testing.assert_allclose(dY[:, a], fd, atol=1e-8)


def _paths(lmax):
    return [(a, b, c) for a in range(lmax + 1) for b in range(lmax + 1) for c in range(abs(a - b), min(a + b, lmax) + 1)]


@pytest.mark.parametrize("reflect", [False, True])
def test_cg_intertwines(rng, reflect):
    R = random_rotation(rng, reflection=reflect)
    D = {l: wigner_D(l, R) for l in range(LMAX + 1)}
    for l1, l2, l3 in _paths(LMAX):
        C = clebsch_gordan(l1, l2, l3)
        x, y = rng.normal(size=2 * l1 + 1), rng.normal(size=2 * l2 + 1)
        z = np.einsum("abc,a,b->c", C, x, y)
        zr = np.einsum("abc,a,b->c", C, D[l1] @ x, D[l2] @ y)
        # under an improper rotation the coupled vector picks up (-1)^(l1+l2) vs D^l3's (-1)^l3
        sign = (-1) ** (l1 + l2 + l3) if reflect else 1
        np.testing.assert_allclose(zr, sign * (D[l3] @ z), atol=1e-11, err_msg=str((l1, l2, l3)))


def test_cg_negative_control(rng):
    """A wrong coupling (the 3rd index permuted) must fail the intertwining test."""
    R = random_rotation(rng)
    C = clebsch_gordan(2, 2, 2)[:, :, ::-1]
    x, y = rng.normal(size=5), rng.normal(size=5)
    z = np.einsum("abc,a,b->c", C, x, y)
    zr = np.einsum("abc,a,b->c", C, wigner_D(2, R) @ x, wigner_D(2, R) @ y)
    assert np.abs(zr - wigner_D(2, R) @ z).max() > 1e-3


def test_cg_orthonormal_and_selection_rules():
    for l1, l2, l3 in _paths(LMAX):
        C = clebsch_gordan(l1, l2, l3)
        np.testing.assert_allclose(np.einsum("abc,abd->cd", C, C), np.eye(2 * l3 + 1), atol=1e-12)
        assert C.flags.writeable is False
    with pytest.raises(ValueError, match="triangle"):
        clebsch_gordan(1, 1, 3)


def test_complex_cg_matches_sympy():
    sympy_cg = pytest.importorskip("sympy.physics.quantum.cg").CG
    for l1, l2, l3 in [(1, 1, 0), (1, 1, 2), (2, 1, 2), (3, 2, 4), (2, 2, 1), (3, 3, 3)]:
        C = _complex_cg(l1, l2, l3)
        for m1 in range(-l1, l1 + 1):
            for m2 in range(-l2, l2 + 1):
                m3 = m1 + m2
                if abs(m3) > l3:
                    continue
                exact = float(sympy_cg(l1, m1, l2, m2, l3, m3).doit())
                assert abs(C[m1 + l1, m2 + l2, m3 + l3] - exact) < 1e-13


def test_irreps_parsing():
    ir = Irreps("8x0e + 4x1o + 2x1o + 1e")
    assert str(ir) == "8x0e + 6x1o + 1x1e" and ir.dim == 8 + 18 + 3
    assert Irreps({"2e": 3}).mult(Irrep(2, 1)) == 3
    assert str(Irrep.parse("3o")) == "3o"
    with pytest.raises(ValueError):
        Irreps("4xq")
    with pytest.raises(ValueError):
        Irrep(-1)
