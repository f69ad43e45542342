"""rnn_ref.numpy.rnn: the vanilla RNN step and sequence, forward and backward.

Known values worked by hand, properties over random shapes (hypothesis), numerical gradient
checks in float64, dtype, no in-place modification of inputs, and error messages.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    numerical_gradient,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

# Small shapes, with N = 1, T = 1 and H != D among them (the @example lines make sure).
sizes = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)


def shapes_examples(f):
    """Apply the edge-case @examples every shape property must see."""
    f = example(N=1, T=1, D=1, H=1, seed=0)(f)
    f = example(N=1, T=1, D=3, H=2, seed=1)(f)
    f = example(N=2, T=4, D=2, H=3, seed=2)(f)
    return f


def step_data(make, seed, N, D, H, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    h_prev = rng.standard_normal((N, H)).astype(dtype)
    dh = rng.standard_normal((N, H)).astype(dtype)
    return x, h_prev, make(rng, D, H, dtype=dtype), dh


def seq_data(make, seed, N, T, D, H, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    return x, h0, make(rng, D, H, dtype=dtype), dhs


# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def test_step_forward_backward_scalar_known_values():
    # D = H = N = 1: x = 2, h_prev = 0.2, W_xh = 0.5, W_hh = -1, b_h = 0.1
    # a = 0.5 * 2 + (-1) * 0.2 + 0.1 = 0.9,  h = tanh(0.9) = 0.7162978701990245
    x, h_prev = np.array([[2.0]]), np.array([[0.2]])
    params = {"W_xh": np.array([[0.5]]), "W_hh": np.array([[-1.0]]), "b_h": np.array([0.1])}
    h, cache = rnn_step_forward(x, h_prev, params)
    np.testing.assert_allclose(h, [[0.7162978701990245]], rtol=1e-14)
    # dh = 1: da = 1 - h² = 1 - 0.5130826388516585 = 0.4869173611483415
    # dx = da W_xh = 0.24345868057417075,  dh_prev = da W_hh = -0.4869173611483415
    # dW_xh = da x = 0.973834722296683,  dW_hh = da h_prev = 0.09738347222966831,  db_h = da
    dx, dh_prev, grads = rnn_step_backward(np.array([[1.0]]), cache)
    np.testing.assert_allclose(dx, [[0.24345868057417075]], rtol=1e-14)
    np.testing.assert_allclose(dh_prev, [[-0.4869173611483415]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_xh"], [[0.973834722296683]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_hh"], [[0.09738347222966831]], rtol=1e-14)
    np.testing.assert_allclose(grads["b_h"], [0.4869173611483415], rtol=1e-14)


def test_zero_weights_give_tanh_of_bias():
    # W_xh = W_hh = 0 and b_h = atanh(0.5) = ln(3)/2: every h_t = tanh(b_h) = 0.5 whatever x, h0.
    N, T, D, H = 2, 3, 4, 2
    rng = np.random.default_rng(0)
    params = {
        "W_xh": np.zeros((H, D)),
        "W_hh": np.zeros((H, H)),
        "b_h": np.full(H, 0.5 * math.log(3.0)),
    }
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    hs, cache = rnn_forward(x, h0, params)
    np.testing.assert_allclose(hs, 0.5, rtol=1e-14)
    # Backward with dhs = 1: da_t = 1 * (1 - 0.25) = 0.75 at every step (no recurrent term,
    # since W_hh = 0), so dx = 0, dh0 = 0, db_h = N * T * 0.75 = 4.5,
    # dW_xh = 0.75 * sum_{n,t} x_{n,t}, dW_hh = 0.75 * sum_{n,t} h_{n,t-1}.
    dx, dh0, grads = rnn_backward(np.ones((N, T, H)), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dh0, 0.0)
    np.testing.assert_allclose(grads["b_h"], [4.5, 4.5], rtol=1e-14)
    np.testing.assert_allclose(
        grads["W_xh"], np.tile(0.75 * x.sum(axis=(0, 1)), (H, 1)), rtol=1e-13
    )
    h_prev_sum = h0.sum(axis=0) + 0.5 * N * (T - 1)  # h0, then h_1 .. h_{T-1} all 0.5
    np.testing.assert_allclose(grads["W_hh"], np.tile(0.75 * h_prev_sum, (H, 1)), rtol=1e-13)


def test_two_step_sequence_known_values():
    # D = H = N = 1, T = 2, W_xh = W_hh = 1, b_h = 0, h0 = 0, x = (0.9, 0):
    # h1 = tanh(0.9) = 0.7162978701990245,  h2 = tanh(h1) = 0.614610880037512
    x = np.array([[[0.9], [0.0]]])
    params = {"W_xh": np.array([[1.0]]), "W_hh": np.array([[1.0]]), "b_h": np.array([0.0])}
    hs, cache = rnn_forward(x, np.zeros((1, 1)), params)
    np.testing.assert_allclose(hs[0, :, 0], [0.7162978701990245, 0.614610880037512], rtol=1e-14)
    # Loss = h2 (dhs = (0, 1)):
    # da2 = 1 - h2² = 0.6222534661395152; dh1 = da2 W_hh; da1 = da2 (1 - h1²) = 0.3029860156980616
    # dx = (da1, da2) W_xh; dh0 = da1 W_hh; db_h = da1 + da2 = 0.9252394818375768
    # dW_xh = da1 * 0.9 + da2 * 0 = 0.2726874141282555; dW_hh = da1 h0 + da2 h1 = 0.4457188325196955
    dx, dh0, grads = rnn_backward(np.array([[[0.0], [1.0]]]), cache)
    np.testing.assert_allclose(dx[0, :, 0], [0.3029860156980616, 0.6222534661395152], rtol=1e-14)
    np.testing.assert_allclose(dh0, [[0.3029860156980616]], rtol=1e-14)
    np.testing.assert_allclose(grads["b_h"], [0.9252394818375768], rtol=1e-14)
    np.testing.assert_allclose(grads["W_xh"], [[0.2726874141282555]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_hh"], [[0.4457188325196955]], rtol=1e-14)


def test_weights_are_out_by_in():
    # W_xh (H, D) is applied as x @ W_xh.T: with H = 2, D = 3, x = e_2 picks column 2 of W_xh.
    W_xh = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    params = {"W_xh": W_xh, "W_hh": np.zeros((2, 2)), "b_h": np.zeros(2)}
    h, _ = rnn_step_forward(np.array([[0.0, 0.0, 1.0]]), np.zeros((1, 2)), params)
    np.testing.assert_allclose(h, np.tanh([[0.3, 0.6]]), rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Properties over shapes
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_forward_equals_looped_step_forward(make_rnn_params, N, T, D, H, seed):
    x, h0, params, _ = seq_data(make_rnn_params, seed, N, T, D, H)
    hs, _ = rnn_forward(x, h0, params)
    assert hs.shape == (N, T, H)
    h = h0
    for t in range(T):
        h, _ = rnn_step_forward(x[:, t], h, params)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-13, atol=1e-15, err_msg=f"step {t}")


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_backward_equals_looped_step_backward(make_rnn_params, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(make_rnn_params, seed, N, T, D, H)
    _, cache = rnn_forward(x, h0, params)
    dx, dh0, grads = rnn_backward(dhs, cache)

    caches, h = [], h0
    for t in range(T):
        h, c = rnn_step_forward(x[:, t], h, params)
        caches.append(c)
    dx_loop = np.zeros_like(x)
    grads_loop = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        dx_loop[:, t], dh_next, g = rnn_step_backward(dhs[:, t] + dh_next, caches[t])
        for k in grads_loop:
            grads_loop[k] += g[k]

    np.testing.assert_allclose(dx, dx_loop, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, dh_next, rtol=1e-12, atol=1e-14)
    assert grads.keys() == {"W_xh", "W_hh", "b_h"}
    for k in grads:
        assert grads[k].shape == params[k].shape, k
        np.testing.assert_allclose(grads[k], grads_loop[k], rtol=1e-12, atol=1e-14, err_msg=k)


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_no_input_modified(make_rnn_params, assert_unchanged, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(make_rnn_params, seed, N, T, D, H)

    # step forward / backward
    args = (x[:, 0].copy(), h0, params)
    before = copy.deepcopy(args)
    h, cache = rnn_step_forward(*args)
    assert_unchanged(before, args)
    assert not np.shares_memory(h, args[0]) and not np.shares_memory(h, h0)
    dh = dhs[:, 0].copy()
    dh_before, cache_before = dh.copy(), copy.deepcopy(cache)
    first = rnn_step_backward(dh, cache)
    assert_unchanged(dh_before, dh)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, rnn_step_backward(dh, cache))  # so it can run twice
    assert_unchanged(before, args)

    # sequence forward / backward
    args = (x, h0, params)
    before = copy.deepcopy(args)
    hs, cache = rnn_forward(*args)
    assert_unchanged(before, args)
    assert not np.shares_memory(hs, x) and not np.shares_memory(hs, h0)
    dhs_before, cache_before = dhs.copy(), copy.deepcopy(cache)
    first = rnn_backward(dhs, cache)
    assert_unchanged(dhs_before, dhs)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, rnn_backward(dhs, cache))
    assert_unchanged(before, args)


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_hidden_states_strictly_inside_minus_one_one(N, T, D, H, seed):
    # |a| <= D + H + 1 <= 9 with entries in [-1, 1]: tanh(9) = 0.99999997 < 1 in float64.
    rng = np.random.default_rng(seed)

    def u(*shape):
        return rng.uniform(-1.0, 1.0, shape)

    hs, _ = rnn_forward(u(N, T, D), u(N, H), {"W_xh": u(H, D), "W_hh": u(H, H), "b_h": u(H)})
    assert np.all(np.abs(hs) < 1.0)


def test_saturated_hidden_states_stay_finite_and_bounded(rng):
    # Huge pre-activations saturate tanh to exactly +-1; nothing overflows to inf or nan,
    # and the backward gives (exactly) zero gradient through saturated units.
    N, T, D, H = 2, 3, 4, 3
    params = {"W_xh": 1e6 * rng.standard_normal((H, D)), "W_hh": np.eye(H), "b_h": np.zeros(H)}
    hs, cache = rnn_forward(rng.standard_normal((N, T, D)), np.zeros((N, H)), params)
    assert np.all(np.abs(hs) <= 1.0)
    assert np.all(np.isfinite(hs))
    dx, dh0, grads = rnn_backward(np.ones((N, T, H)), cache)
    for g in (dx, dh0, *grads.values()):
        assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# Numerical gradient checks (float64)
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(N=sizes, T=st.just(1), D=sizes, H=sizes, seed=seeds)
def test_step_backward_numerical_gradients(make_rnn_params, assert_grad, N, T, D, H, seed):
    x, h_prev, params, dh = step_data(make_rnn_params, seed, N, D, H)
    _, cache = rnn_step_forward(x, h_prev, params)
    dx, dh_prev, grads = rnn_step_backward(dh, cache)

    def fwd(x_=x, h_=h_prev, **over):
        return rnn_step_forward(x_, h_, {**params, **over})[0]

    assert_grad(dx, numerical_gradient(lambda v: fwd(x_=v), x, dh), "dx")
    assert_grad(dh_prev, numerical_gradient(lambda v: fwd(h_=v), h_prev, dh), "dh_prev")
    for k in ("W_xh", "W_hh", "b_h"):
        num = numerical_gradient(lambda v, k=k: fwd(**{k: v}), params[k], dh)
        assert_grad(grads[k], num, f"d{k}")


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_sequence_backward_numerical_gradients(make_rnn_params, assert_grad, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(make_rnn_params, seed, N, T, D, H)
    _, cache = rnn_forward(x, h0, params)
    dx, dh0, grads = rnn_backward(dhs, cache)

    def fwd(x_=x, h_=h0, **over):
        return rnn_forward(x_, h_, {**params, **over})[0]

    assert_grad(dx, numerical_gradient(lambda v: fwd(x_=v), x, dhs), "dx")
    assert_grad(dh0, numerical_gradient(lambda v: fwd(h_=v), h0, dhs), "dh0")
    for k in ("W_xh", "W_hh", "b_h"):
        num = numerical_gradient(lambda v, k=k: fwd(**{k: v}), params[k], dhs)
        assert_grad(grads[k], num, f"d{k}")


def test_gradient_reaches_early_steps(rng, make_rnn_params, assert_grad):
    # Only the last step has a loss: the gradient of x_1 must still be nonzero (it flows back
    # through W_hh) and match the numerical one.
    N, T, D, H = 2, 5, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = make_rnn_params(rng, D, H, scale=1.0)
    dhs = np.zeros((N, T, H))
    dhs[:, -1] = rng.standard_normal((N, H))
    _, cache = rnn_forward(x, h0, params)
    dx, dh0, _ = rnn_backward(dhs, cache)
    assert np.abs(dx[:, 0]).max() > 1e-4
    num = numerical_gradient(lambda v: rnn_forward(v, h0, params)[0], x, dhs)
    assert_grad(dx, num, "dx")


# ---------------------------------------------------------------------------------------------
# dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(make_rnn_params, dtype):
    N, T, D, H = 3, 4, 5, 2
    x, h0, params, dhs = seq_data(make_rnn_params, 7, N, T, D, H, dtype=dtype)
    h, cache = rnn_step_forward(x[:, 0], h0, params)
    assert h.dtype == dtype
    dx, dh_prev, grads = rnn_step_backward(dhs[:, 0], cache)
    assert dx.dtype == dh_prev.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    hs, cache = rnn_forward(x, h0, params)
    assert hs.dtype == dtype
    dx, dh0, grads = rnn_backward(dhs, cache)
    assert dx.dtype == dh0.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    if dtype == np.float32:  # and float32 agrees with float64 to float32 precision
        x64, h064, p64, dhs64 = seq_data(make_rnn_params, 7, N, T, D, H)
        hs64, cache64 = rnn_forward(x64, h064, p64)
        np.testing.assert_allclose(hs, hs64, rtol=1e-5, atol=1e-6)
        dx64, dh064, grads64 = rnn_backward(dhs64, cache64)
        np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dh0, dh064, rtol=1e-4, atol=1e-5)
        for k in grads:
            np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_integer_inputs_are_promoted_to_float():
    params = {"W_xh": np.ones((1, 2)), "W_hh": np.zeros((1, 1)), "b_h": np.zeros(1)}
    h, _ = rnn_step_forward(np.array([[1, -1]]), np.array([[0]]), params)
    assert h.dtype == np.float64
    np.testing.assert_allclose(h, [[0.0]])


# ---------------------------------------------------------------------------------------------
# Errors name the culprit
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def good(make_rnn_params, rng):
    N, T, D, H = 2, 3, 4, 5
    return {
        "x": rng.standard_normal((N, T, D)),
        "h0": rng.standard_normal((N, H)),
        "params": make_rnn_params(rng, D, H),
    }


def test_step_forward_errors(good):
    x, h0, p = good["x"][:, 0], good["h0"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(2, 3, 4\)"):
        rnn_step_forward(good["x"], h0, p)
    with pytest.raises(ValueError, match=r"h_prev must have 2 dimensions, got shape \(5,\)"):
        rnn_step_forward(x, h0[0], p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h_prev has 1"):
        rnn_step_forward(x, h0[:1], p)
    with pytest.raises(KeyError, match=r"params is missing 'W_hh'"):
        rnn_step_forward(x, h0, {"W_xh": p["W_xh"], "b_h": p["b_h"]})
    with pytest.raises(
        ValueError, match=r"params\['W_xh'\] must have shape \(5, 4\), got \(4, 5\)"
    ):
        rnn_step_forward(x, h0, {**p, "W_xh": p["W_xh"].T})
    with pytest.raises(ValueError, match=r"params\['b_h'\] must have shape \(5,\), got \(1, 5\)"):
        rnn_step_forward(x, h0, {**p, "b_h": p["b_h"][None]})
    with pytest.raises(TypeError, match=r"params must be a dict"):
        rnn_step_forward(x, h0, list(p.values()))
    with pytest.raises(TypeError, match=r"x must hold numbers"):
        rnn_step_forward(np.array([["a"] * 4] * 2), h0, p)


def test_sequence_forward_errors(good):
    x, h0, p = good["x"], good["h0"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, got shape \(2, 4\)"):
        rnn_forward(x[:, 0], h0, p)
    with pytest.raises(ValueError, match=r"h0 must have 2 dimensions"):
        rnn_forward(x, h0[None], p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h0 has 3"):
        rnn_forward(x, np.zeros((3, 5)), p)
    with pytest.raises(ValueError, match=r"T = 0"):
        rnn_forward(x[:, :0], h0, p)
    with pytest.raises(KeyError, match=r"params is missing 'b_h'"):
        rnn_forward(x, h0, {"W_xh": p["W_xh"], "W_hh": p["W_hh"]})
    with pytest.raises(
        ValueError, match=r"params\['W_hh'\] must have shape \(5, 5\), got \(5, 4\)"
    ):
        rnn_forward(x, h0, {**p, "W_hh": p["W_hh"][:, :4]})
    # an input size that disagrees with W_xh is reported on W_xh
    with pytest.raises(ValueError, match=r"params\['W_xh'\] must have shape \(5, 3\)"):
        rnn_forward(x[:, :, :3], h0, p)


def test_backward_errors(good):
    x, h0, p = good["x"], good["h0"], good["params"]
    _, cache = rnn_step_forward(x[:, 0], h0, p)
    with pytest.raises(ValueError, match=r"dh must have the shape of h, \(2, 5\), got \(2, 4\)"):
        rnn_step_backward(np.ones((2, 4)), cache)
    with pytest.raises(ValueError, match=r"dh must have 2 dimensions"):
        rnn_step_backward(np.ones((2, 1, 5)), cache)
    _, cache = rnn_forward(x, h0, p)
    with pytest.raises(
        ValueError, match=r"dhs must have the shape of hs, \(2, 3, 5\), got \(2, 2, 5\)"
    ):
        rnn_backward(np.ones((2, 2, 5)), cache)
    with pytest.raises(ValueError, match=r"dhs must have 3 dimensions"):
        rnn_backward(np.ones((2, 5)), cache)
