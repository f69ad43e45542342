"""rnn_ref.numpy.gradients: Jacobian products through time, gradient clipping, initialisation.

Known cases (identity at lag 0, W_hh = 0, the linear regime), finite differences of
dh_T/dh_{T-k}, agreement with rnn_backward and with torch.nn.utils.clip_grad_norm_, no
in-place modification of inputs, and error messages.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnn_ref.numpy import rnn_backward, rnn_forward
from rnn_ref.numpy.gradients import (
    _hidden_final,
    clip_by_norm,
    clip_by_value,
    identity_init,
    jacobian_norms,
    jacobian_product,
    orthogonal_init,
    scaled_init,
)


def seq(rng, N, T, D, H, make, scale=0.5):
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    return x, h0, make(rng, D, H, scale=scale)


def fd_jacobian(x, h0, params, nonlinearity, eps=1e-6):
    """Central differences of h_T with respect to h0: column j perturbs h0[:, j]."""
    N, H = h0.shape
    J = np.empty((N, H, H))
    for j in range(H):
        hp, hm = h0.copy(), h0.copy()
        hp[:, j] += eps
        hm[:, j] -= eps
        J[:, :, j] = (
            _hidden_final(x, hp, params, nonlinearity) - _hidden_final(x, hm, params, nonlinearity)
        ) / (2 * eps)
    return J


# ---------------------------------------------------------------------------------------------
# Jacobian norms and products
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_lag_zero_is_identity(rng, make_rnn_params, nonlinearity):
    x, h0, p = seq(rng, 1, 5, 3, 4, make_rnn_params)
    norms = jacobian_norms(x, h0, p, nonlinearity)
    assert norms.shape == (5,)
    assert norms[0] == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_array_equal(
        jacobian_product(x, h0, p, k=0, nonlinearity=nonlinearity)[0], np.eye(4)
    )


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_zero_recurrent_weights_give_zero_norms(rng, make_rnn_params, nonlinearity):
    x, h0, p = seq(rng, 1, 6, 3, 4, make_rnn_params)
    p["W_hh"] = np.zeros((4, 4))
    norms = jacobian_norms(x, h0, p, nonlinearity)
    assert norms[0] == pytest.approx(1.0)
    np.testing.assert_array_equal(norms[1:], 0.0)


def test_linear_regime_follows_matrix_powers(rng):
    # Tiny inputs, state and bias: a_t ~ 1e-9, tanh'(a_t) = 1 - O(1e-18), so J_t = W_hh.
    H, T = 5, 12
    W_hh = rng.standard_normal((H, H)) * 0.9 / np.sqrt(H)
    p = {"W_xh": rng.standard_normal((H, 2)), "W_hh": W_hh, "b_h": np.zeros(H)}
    x = 1e-9 * rng.standard_normal((1, T, 2))
    h0 = 1e-9 * rng.standard_normal((1, H))
    norms = jacobian_norms(x, h0, p)
    expected = [np.linalg.norm(np.linalg.matrix_power(W_hh, k), 2) for k in range(T)]
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_full_jacobian_matches_finite_differences(rng, make_rnn_params, assert_grad, nonlinearity):
    x, h0, p = seq(rng, 2, 4, 3, 3, make_rnn_params, scale=1.0)
    P = jacobian_product(x, h0, p, nonlinearity=nonlinearity)  # k = T: dh_T / dh_0
    assert P.shape == (2, 3, 3)
    assert_grad(P, fd_jacobian(x, h0, p, nonlinearity), f"dh_T/dh_0 ({nonlinearity})")


def test_intermediate_lag_matches_finite_differences(rng, make_rnn_params, assert_grad):
    # dh_T/dh_{T-k}: rerun the forward from h_{T-k} over the last k inputs.
    N, T, D, H, k = 1, 6, 2, 3, 3
    x, h0, p = seq(rng, N, T, D, H, make_rnn_params, scale=1.0)
    hs, _ = rnn_forward(x, h0, p)
    P = jacobian_product(x, h0, p, k=k)
    assert_grad(P, fd_jacobian(x[:, T - k :], hs[:, T - k - 1], p, "tanh"), "dh_T/dh_{T-k}")


@given(
    N=st.integers(1, 3), T=st.integers(1, 5), H=st.integers(1, 4), seed=st.integers(0, 2**32 - 1)
)
def test_product_agrees_with_rnn_backward(make_rnn_params, assert_grad, N, T, H, seed):
    # Backpropagating dh_T alone gives dh0 = dh_T @ (dh_T/dh_0), row by row.
    rng = np.random.default_rng(seed)
    x, h0, p = seq(rng, N, T, 2, H, make_rnn_params)
    dhs = np.zeros((N, T, H))
    dhs[:, -1] = rng.standard_normal((N, H))
    _, cache = rnn_forward(x, h0, p)
    _, dh0, _ = rnn_backward(dhs, cache)
    P = jacobian_product(x, h0, p)
    assert_grad(np.einsum("ni,nij->nj", dhs[:, -1], P), dh0, "dh0")


def test_batch_norms_are_the_mean_of_single_norms(rng, make_rnn_params):
    x, h0, p = seq(rng, 3, 5, 2, 4, make_rnn_params, scale=1.0)
    single = [jacobian_norms(x[n : n + 1], h0[n : n + 1], p) for n in range(3)]
    np.testing.assert_allclose(jacobian_norms(x, h0, p), np.mean(single, axis=0), rtol=1e-12)


def test_contractive_tanh_norms_decrease(rng):
    # W_hh = 0.5 Q (all singular values 0.5) and tanh' <= 1: ||P_k|| <= 0.5 ||P_{k-1}||.
    H, T = 6, 30
    p = {
        "W_xh": rng.standard_normal((H, 3)),
        "W_hh": 0.5 * orthogonal_init(H, rng),
        "b_h": np.zeros(H),
    }
    norms = jacobian_norms(rng.standard_normal((1, T, 3)), rng.standard_normal((1, H)), p)
    assert np.all(np.diff(norms) < 0)
    assert np.all(norms <= 0.5 ** np.arange(T) * (1 + 1e-12))
    # A generic (non-normal) matrix of spectral radius 0.5 decays too, eventually.
    p["W_hh"] = scaled_init(H, 0.5, rng)
    norms = jacobian_norms(rng.standard_normal((1, 60, 3)), rng.standard_normal((1, H)), p)
    assert norms[-1] < 1e-10 < norms[1]


def test_expanding_relu_norms_increase(rng):
    # A positive W_hh with spectral radius 1.5, positive h0 and bias, zero inputs: every unit
    # stays active (relu' = 1), so the product is W_hh^k and ||W_hh^k|| >= rho^k = 1.5^k.
    H, T = 5, 15
    W_hh = np.abs(rng.standard_normal((H, H)))
    W_hh *= 1.5 / np.max(np.abs(np.linalg.eigvals(W_hh)))
    p = {"W_xh": rng.standard_normal((H, 2)), "W_hh": W_hh, "b_h": np.full(H, 0.1)}
    norms = jacobian_norms(np.zeros((1, T, 2)), np.abs(rng.standard_normal((1, H))), p, "relu")
    assert np.all(np.diff(norms) > 0)
    assert np.all(norms >= 1.5 ** np.arange(T) * (1 - 1e-9))
    # IRNN with scale 1.5: exactly 1.5^k.
    p["W_hh"] = identity_init(H, 1.5)
    norms = jacobian_norms(np.zeros((1, T, 2)), np.ones((1, H)), p, "relu")
    np.testing.assert_allclose(norms, 1.5 ** np.arange(T), rtol=1e-12)


def test_jacobian_functions_do_not_modify_inputs(rng, make_rnn_params, assert_unchanged):
    x, h0, p = seq(rng, 2, 4, 3, 3, make_rnn_params)
    before = copy.deepcopy((x, h0, p))
    jacobian_norms(x, h0, p, "relu")
    jacobian_product(x, h0, p, k=2)
    assert_unchanged(before, (x, h0, p))


def test_jacobian_errors(rng, make_rnn_params):
    x, h0, p = seq(rng, 1, 4, 3, 2, make_rnn_params)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        jacobian_norms(x, h0, p, "sigmoid")
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        jacobian_norms(x[0], h0, p)
    with pytest.raises(ValueError, match="batch size"):
        jacobian_norms(x, np.zeros((2, 2)), p)
    with pytest.raises(ValueError, match=r"params\['W_hh'\] must have shape \(2, 2\)"):
        jacobian_norms(x, h0, {**p, "W_hh": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="T = 0"):
        jacobian_norms(np.zeros((1, 0, 3)), h0, p)
    with pytest.raises(ValueError, match=r"k must be in 0 \.\. T = 4"):
        jacobian_product(x, h0, p, k=5)
    with pytest.raises(TypeError, match="k must be an integer"):
        jacobian_product(x, h0, p, k=1.0)


# ---------------------------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------------------------


def random_grads(rng, scale=1.0):
    return {
        "W_xh": scale * rng.standard_normal((4, 3)),
        "W_hh": scale * rng.standard_normal((4, 4)),
        "b_h": scale * rng.standard_normal(4),
    }


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 5.0, 100.0])
def test_clip_by_norm_matches_torch(rng, max_norm):
    grads = random_grads(rng, scale=2.0)
    clipped, total = clip_by_norm(grads, max_norm)
    tensors = {
        k: torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for k, v in grads.items()
    }
    for k, t in tensors.items():
        t.grad = torch.from_numpy(grads[k].copy())
    torch_total = torch.nn.utils.clip_grad_norm_(list(tensors.values()), max_norm)
    assert total == pytest.approx(torch_total.item(), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(clipped[k], tensors[k].grad.numpy(), rtol=1e-6, atol=1e-12)
    if total > max_norm:
        norm_after = np.sqrt(sum(np.sum(v**2) for v in clipped.values()))
        assert norm_after == pytest.approx(max_norm, rel=1e-5)


def test_clip_by_norm_leaves_small_gradients_and_inputs_unchanged(rng, assert_unchanged):
    grads = random_grads(rng, scale=0.01)
    before = copy.deepcopy(grads)
    clipped, total = clip_by_norm(grads, 10.0)
    assert total == pytest.approx(np.sqrt(sum(np.sum(v**2) for v in grads.values())), rel=1e-12)
    assert_unchanged(before, clipped)
    assert all(clipped[k] is not grads[k] for k in grads)
    clip_by_norm({**grads, "W_big": np.full((3, 3), 100.0)}, 1.0)  # clipped: scales grads' arrays
    assert_unchanged(before, grads)
    big = random_grads(rng, 100.0)
    before_big = copy.deepcopy(big)
    clip_by_norm(big, 1.0)
    assert_unchanged(before_big, big)


def test_clip_by_value_matches_np_clip(rng, assert_unchanged):
    grads = random_grads(rng, scale=2.0)
    before = copy.deepcopy(grads)
    clipped = clip_by_value(grads, 0.5)
    for k in grads:
        np.testing.assert_array_equal(clipped[k], np.clip(grads[k], -0.5, 0.5))
    assert_unchanged(before, grads)


def test_clip_errors(rng):
    grads = random_grads(rng)
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
            clip_by_norm(grads, bad)
    with pytest.raises(ValueError, match="clip_value must be a positive finite number"):
        clip_by_value(grads, 0.0)
    with pytest.raises(TypeError, match="grads must be a dict"):
        clip_by_norm([np.ones(3)], 1.0)
    with pytest.raises(TypeError, match=r"grads\['a'\] must hold numbers"):
        clip_by_value({"a": np.array(["x"])}, 1.0)


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("H", [1, 2, 7, 32])
def test_orthogonal_init(H):
    Q = orthogonal_init(H, np.random.default_rng(0))
    assert Q.shape == (H, H)
    np.testing.assert_allclose(Q.T @ Q, np.eye(H), atol=1e-12)
    np.testing.assert_array_equal(Q, orthogonal_init(H, np.random.default_rng(0)))
    np.testing.assert_array_equal(Q, orthogonal_init(H, 0))
    if H > 1:
        assert not np.array_equal(Q, orthogonal_init(H, 1))
    W = orthogonal_init(H, 0, gain=2.0)
    np.testing.assert_allclose(W.T @ W, 4.0 * np.eye(H), atol=1e-12)


def test_orthogonal_init_sign_correction_makes_diag_r_positive():
    # With the correction, Q is the unique QR factor of A whose R has a positive diagonal.
    A = np.random.default_rng(3).standard_normal((5, 5))
    Q = orthogonal_init(5, np.random.default_rng(3))
    R = Q.T @ A
    np.testing.assert_allclose(np.tril(R, -1), 0.0, atol=1e-12)
    assert np.all(np.diag(R) > 0)


def test_identity_init():
    np.testing.assert_array_equal(identity_init(3), np.eye(3))
    np.testing.assert_array_equal(identity_init(4, scale=0.5), 0.5 * np.eye(4))


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.5])
def test_scaled_init_spectral_radius(radius):
    W = scaled_init(8, radius, np.random.default_rng(1))
    assert W.shape == (8, 8)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(radius, rel=1e-10)
    np.testing.assert_array_equal(W, scaled_init(8, radius, 1))


def test_init_errors():
    with pytest.raises(ValueError, match="H must be at least 1"):
        orthogonal_init(0, 0)
    with pytest.raises(TypeError, match="H must be an integer"):
        identity_init(2.5)
    with pytest.raises(ValueError, match="spectral_radius must be a positive finite number"):
        scaled_init(3, -1.0, 0)
