"""The equivariant tensor train on its own (no atoms): invariance, linearity, gauge, export."""
import numpy as np
import pytest

from etnpot.so3 import Irrep, Irreps, random_rotation, wigner_D
from etnpot.tt import EquivariantTT


def make_tt(rng, o3=True, last="1x0e", bonds=None, order=3):
    inputs = [(Irrep(l, (-1) ** l if o3 else 0), c) for l, c in [(0, 3), (1, 2), (2, 2)]]
    if bonds is None:
        inner = "2x0e + 2x1o + 1x2e + 1x1e" if o3 else "2x0 + 2x1 + 1x2"
        bonds = ["1x0e" if o3 else "1x0"] + [inner] * (order - 1) + [last if o3 else last.rstrip("e")]
    tt = EquivariantTT(inputs, [Irreps(b) for b in bonds]).trim()
    for k in range(tt.order):
        tt.set_core_vector(k, rng.normal(size=tt.core_size(k)))
    return tt


def inputs_for(tt, rng, n=7):
    return [rng.normal(size=(n, ir.dim, c)) for ir, c in tt.inputs]


def transform(tt, x, R):
    return [np.einsum("ij,njc->nic", wigner_D(ir.l, R), xb) for (ir, _), xb in zip(tt.inputs, x)]


@pytest.mark.parametrize("reflect", [False, True])
def test_value_invariant(rng, reflect):
    tt = make_tt(rng)
    x = inputs_for(tt, rng)
    v = tt.value(x)
    for _ in range(10):
        R = random_rotation(rng, reflection=reflect)
        np.testing.assert_allclose(tt.value(transform(tt, x, R)), v, rtol=1e-11, atol=1e-11)


def test_negative_control_l1_output_not_invariant_but_equivariant(rng):
    tt = make_tt(rng, last="1x1o")
    x = inputs_for(tt, rng)
    out = tt.output(x)
    R = random_rotation(rng)
    rot = tt.output(transform(tt, x, R))
    assert np.abs(rot - out).max() > 1e-3  # not invariant: the test above can fail
    np.testing.assert_allclose(rot, out @ wigner_D(1, R).T, atol=1e-11)  # but equivariant


def test_negative_control_so3_not_reflection_invariant(rng):
    tt = make_tt(rng, o3=False)
    x = inputs_for(tt, rng)
    v = tt.value(x)
    np.testing.assert_allclose(tt.value(transform(tt, x, random_rotation(rng))), v, rtol=1e-11)
    assert np.abs(tt.value(transform(tt, x, random_rotation(rng, reflection=True))) - v).max() > 1e-6


def test_matches_dense_and_quimb(rng):
    import quimb.tensor as qtn

    tt = make_tt(rng)
    x = inputs_for(tt, rng, n=3)
    xf = tt.flat_input(x)
    G = [tt.full_core(k) for k in range(tt.order)]
    dense = np.einsum("nx,axb,ny,byc,nz,czd->n", xf, G[0], xf, G[1], xf, G[2])
    np.testing.assert_allclose(tt.value(x), dense, rtol=1e-12)
    net = tt.to_quimb() & qtn.Tensor(np.ones(1), inds=("b0",)) & qtn.Tensor(np.ones(1), inds=(f"b{tt.order}",))
    for k in range(tt.order):
        net = net & qtn.Tensor(xf[0], inds=(f"x{k}",))
    np.testing.assert_allclose(net.contract(all), tt.value(x)[0], rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_linear_in_every_core(rng, order):
    tt = make_tt(rng, order=order)
    x = inputs_for(tt, rng)
    v = tt.value(x)
    for k in range(tt.order):
        Phi = tt.design(k, x)
        np.testing.assert_allclose(Phi @ tt.core_vector(k), v, rtol=1e-11, atol=1e-12)
        a, b = tt.copy(), tt.copy()
        X, Y = rng.normal(size=tt.core_size(k)), rng.normal(size=tt.core_size(k))
        a.set_core_vector(k, X)
        b.set_core_vector(k, 2.0 * X - 3.0 * Y)
        c = tt.copy()
        c.set_core_vector(k, Y)
        np.testing.assert_allclose(b.value(x), 2.0 * a.value(x) - 3.0 * c.value(x), rtol=1e-10, atol=1e-10)


def test_input_gradient_fd(rng):
    tt = make_tt(rng)
    x = inputs_for(tt, rng)
    _, g = tt.value_and_input_grad(x)
    h = 1e-6
    for f in range(len(x)):
        d = rng.normal(size=x[f].shape)
        xp = [b.copy() for b in x]
        xm = [b.copy() for b in x]
        xp[f] += h * d
        xm[f] -= h * d
        fd = (tt.value(xp) - tt.value(xm)) / (2 * h)
        np.testing.assert_allclose(np.einsum("nij,nij->n", g[f], d), fd, rtol=1e-6, atol=1e-7)


def test_orthogonalization_keeps_value_and_orthogonality(rng):
    tt = make_tt(rng, order=4)
    x = inputs_for(tt, rng)
    v = tt.value(x)
    left = tt.copy()
    for k in range(tt.order - 1):
        left.orthogonalize_left(k)
        G = left.full_core(k).reshape(-1, left.full_core(k).shape[2])
        np.testing.assert_allclose(G.T @ G, np.eye(G.shape[1]), atol=1e-12)
    np.testing.assert_allclose(left.value(x), v, rtol=1e-11)
    right = tt.copy()
    for k in range(tt.order - 1, 0, -1):
        right.orthogonalize_right(k)
        G = right.full_core(k)
        G = G.reshape(G.shape[0], -1)
        np.testing.assert_allclose(G @ G.T, np.eye(G.shape[0]), atol=1e-12)
    np.testing.assert_allclose(right.value(x), v, rtol=1e-11)
    # mixed-canonical gauge around core 0: weighted centre norm == norm of the whole tensor
    c = right.core_vector(0)
    np.testing.assert_allclose(np.sum(right.core_weights(0) * c * c), right.norm_squared(), rtol=1e-11)
    np.testing.assert_allclose(right.norm_squared(), tt.norm_squared(), rtol=1e-11)


def test_rank_bound_trim(rng):
    inputs = [(Irrep(0, 1), 2), (Irrep(1, -1), 1)]
    tt = EquivariantTT(inputs, [Irreps("1x0e"), Irreps("9x0e + 9x1o + 4x1e"), Irreps("1x0e")]).trim()
    # bond 1 can carry at most 2 scalars and 1 vector coming from a single site; 1e is unreachable
    assert tt.bonds[1] == Irreps("2x0e + 1x1o")


def test_bad_structure():
    with pytest.raises(ValueError, match="first bond"):
        EquivariantTT([(Irrep(0, 1), 1)], [Irreps("2x0e"), Irreps("1x0e")])
    tt = EquivariantTT([(Irrep(0, 1), 1)], [Irreps("1x0e"), Irreps("1x0e")])
    with pytest.raises(ValueError, match="parameters"):
        tt.set_core_vector(0, np.zeros(5))


# ---------------------------------------------------------------- two-site split (DMRG)
def full_tensor(tt):
    """The whole coefficient tensor (dense, one input index per site) from the dense cores."""
    W = np.ones((1, 1))
    for k in range(tt.order):
        G = tt.full_core(k)
        W = np.tensordot(W, G, axes=([W.ndim - 1], [0]))
    return W.reshape(W.shape[1:-1])


def mixed_canonical(tt, k0, k1):
    """Cores left of k0 left-orthogonal, right of k1 right-orthogonal."""
    for k in range(k0):
        tt.orthogonalize_left(k)
    for k in range(tt.order - 1, k1, -1):
        tt.orthogonalize_right(k)
    return tt


def test_split_merged_without_truncation_is_exact(rng):
    """Splitting the supercore (any vector, not only a product of two cores) and merging again
    gives the vector back; the value is unchanged; in both directions."""
    tt = make_tt(rng, order=4)
    x = inputs_for(tt, rng)
    for direction in ("right", "left"):
        for k in range(tt.order - 1):
            a = tt.copy()
            v = a.merged_vector(k)
            info = a.split_merged(k, v, direction=direction)
            np.testing.assert_allclose(a.merged_vector(k), v, atol=1e-12 * np.abs(v).max())
            np.testing.assert_allclose(a.value(x), tt.value(x), rtol=1e-10)
            assert info["discarded"] < 1e-24
            b = tt.copy()
            w = rng.normal(size=b.merged_size(k))
            b.split_merged(k, w, direction=direction)
            np.testing.assert_allclose(b.merged_vector(k), w, atol=1e-12 * np.abs(w).max())


@pytest.mark.parametrize("direction", ["right", "left"])
def test_split_merged_factors_are_orthogonal_in_the_full_core_sense(rng, direction):
    """direction="right": core k is left-orthogonal (G^T G = 1 with G = full core (bond k x input, bond k+1));
    direction="left": core k+1 is right-orthogonal (G G^T = 1 with G = (bond k+1, input x bond k+2))."""
    tt = make_tt(rng, order=4)
    for k in range(tt.order - 1):
        a = tt.copy()
        a.split_merged(k, rng.normal(size=a.merged_size(k)), direction=direction)
        if direction == "right":
            G = a.full_core(k).reshape(-1, a.full_core(k).shape[2])
            np.testing.assert_allclose(G.T @ G, np.eye(G.shape[1]), atol=1e-12)
        else:
            G = a.full_core(k + 1)
            G = G.reshape(G.shape[0], -1)
            np.testing.assert_allclose(G @ G.T, np.eye(G.shape[0]), atol=1e-12)
    # negative control: a plain random core is neither
    G = tt.full_core(1)
    assert np.abs(G.reshape(-1, G.shape[2]).T @ G.reshape(-1, G.shape[2]) - np.eye(G.shape[2])).max() > 1e-2


@pytest.mark.parametrize("max_rank, cutoff", [(1, 0.0), ({"0e": 1, "1o": 2}, 0.0), (None, 0.3)])
def test_split_merged_discarded_weight_is_the_full_tensors_relative_change(rng, max_rank, cutoff):
    """In the mixed-canonical gauge around cores k, k+1 the returned discarded weight equals
    ||W_after - W_before||^2 / ||W_before||^2 of the dense full tensor, and it is not zero."""
    tt = make_tt(rng, order=3)
    for k in range(tt.order - 1):
        a = mixed_canonical(tt.copy(), k, k + 1)
        W0 = full_tensor(a)
        info = a.split_merged(k, a.merged_vector(k), max_rank=max_rank, cutoff=cutoff)
        W1 = full_tensor(a)
        rel = np.sum((W1 - W0) ** 2) / np.sum(W0 ** 2)
        assert rel > 1e-6, rel
        np.testing.assert_allclose(info["discarded"], rel, rtol=1e-9)
        if cutoff:
            assert info["discarded"] <= cutoff**2
        if isinstance(max_rank, int):
            assert all(m <= max_rank for _, m in a.bonds[k + 1])


@pytest.mark.parametrize("k", [1, 2])
def test_ridge_on_a_middle_core_equals_the_full_tensor_norm(rng, k):
    """Mixed-canonical gauge around a middle core k (cores < k left-, cores > k right-orthogonal):
    ridge * sum(core_weights(k) core_vector(k)^2) == ridge * ||full tensor||^2, also computed
    from the dense tensor.  Negative control: without the gauge the two differ."""
    ridge = 1e-3
    tt = make_tt(rng, order=4)
    W2 = np.sum(full_tensor(tt) ** 2)
    np.testing.assert_allclose(tt.norm_squared(), W2, rtol=1e-10)
    c = tt.core_vector(k)
    assert abs(np.sum(tt.core_weights(k) * c * c) - W2) > 1e-2 * W2  # the gauge is needed
    a = mixed_canonical(tt.copy(), k, k)
    c = a.core_vector(k)
    np.testing.assert_allclose(ridge * np.sum(a.core_weights(k) * c * c), ridge * a.norm_squared(), rtol=1e-10)
    np.testing.assert_allclose(a.norm_squared(), W2, rtol=1e-10)
