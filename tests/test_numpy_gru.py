"""rnn_ref.numpy.gru: the GRU step and sequence, forward and backward, both reset placements.

Known values worked by hand, properties over random shapes (hypothesis), numerical gradient
checks in float64 of every output of every backward for reset "after" (PyTorch) and "before"
(Cho et al. 2014), how the two placements differ and when they coincide, dtype, no in-place
modification of inputs, and error messages. Parity with torch.nn.GRU is in test_torch_gru.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import numerical_gradient
from rnn_ref.numpy.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward

RESETS = ["after", "before"]
KEYS = ("W_x", "W_h", "b_x", "b_h")

# Small shapes, with N = 1, T = 1 and H != D among them (the @example lines make sure).
sizes = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)


def shapes_examples(f):
    """Apply the edge-case @examples every shape property must see."""
    f = example(N=1, T=1, D=1, H=1, seed=0)(f)
    f = example(N=1, T=1, D=3, H=2, seed=1)(f)
    f = example(N=2, T=4, D=2, H=3, seed=2)(f)
    return f


def random_gru_params(rng, D, H, dtype=np.float64, scale=0.5):
    """``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,), N(0, scale²/fan_in) weights."""
    p = {
        "W_x": rng.standard_normal((3 * H, D)) * scale / np.sqrt(D),
        "W_h": rng.standard_normal((3 * H, H)) * scale / np.sqrt(H),
        "b_x": rng.standard_normal(3 * H) * scale,
        "b_h": rng.standard_normal(3 * H) * scale,
    }
    return {k: v.astype(dtype) for k, v in p.items()}


def step_data(seed, N, D, H, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    h_prev = rng.standard_normal((N, H)).astype(dtype)
    dh = rng.standard_normal((N, H)).astype(dtype)
    return x, h_prev, random_gru_params(rng, D, H, dtype=dtype), dh


def seq_data(seed, N, T, D, H, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    return x, h0, random_gru_params(rng, D, H, dtype=dtype), dhs


# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def scalar_case():
    # D = H = N = 1, x = 1, h_prev = 0.5. Rows are blocks r, z, n.
    # r, z rows of W_x, W_h are 0 and b_x = (ln 3, -ln 3, 0): r = σ(ln 3) = 3/4, z = σ(-ln 3) = 1/4.
    # n block: W_in = 0.5, W_hn = 2, b_in = 0, b_hn = 0.4.
    params = {
        "W_x": np.array([[0.0], [0.0], [0.5]]),
        "W_h": np.array([[0.0], [0.0], [2.0]]),
        "b_x": np.array([math.log(3.0), -math.log(3.0), 0.0]),
        "b_h": np.array([0.0, 0.0, 0.4]),
    }
    return np.array([[1.0]]), np.array([[0.5]]), params


# after:  W_hn h + b_hn = 1.4,  n = tanh(0.5 + r 1.4) = tanh(1.55)
# before: W_hn (r h) + b_hn = 2 * 0.375 + 0.4 = 1.15,  n = tanh(0.5 + 1.15) = tanh(1.65)
# both:   h = (1 - z) n + z h_prev = 0.75 n + 0.125
# Backward with dh = 1: dan = (1 - z)(1 - n²) = 0.75 (1 - n²); daz = (h_prev - n) z (1 - z)
#   = (0.5 - n) 3/16; dar = dr r (1 - r) = dr 3/16 with dr = dan * 1.4 (after) or
#   dr = (dan W_hn) h_prev = dan (before).
# dx = 0.5 dan (only the n row of W_x is nonzero); dh_prev = z + 1.5 dan in both placements
#   (after: dan r W_hn; before: (dan W_hn) r); dW_x = db_x = (dar, daz, dan) since x = 1;
#   dW_h = (dar h_prev, daz h_prev, 0.375 dan) (after: dan r h_prev; before: dan (r h_prev));
#   db_h = (dar, daz, dan r) after, (dar, daz, dan) before.
KNOWN = {
    "after": {
        "n": 0.9137854901178277,
        "h": 0.8103391175883707,
        "dan": 0.12374705853759105,
        "daz": -0.0775847793970927,
        "dar": 0.03248360286611765,
        "dx": 0.061873529268795524,
        "dh_prev": 0.43562058780638657,
        "dW_h": [0.016241801433058825, -0.03879238969854635, 0.04640514695159664],
        "db_hn": 0.09281029390319329,
    },
    "before": {
        "n": 0.9288576214547276,
        "h": 0.8216432160910457,
        "dan": 0.10291763929909944,
        "daz": -0.08041080402276143,
        "dar": 0.019297057368581144,
        "dx": 0.05145881964954972,
        "dh_prev": 0.40437645894864915,
        "dW_h": [0.009648528684290572, -0.04020540201138072, 0.03859411473716229],
        "db_hn": 0.10291763929909944,
    },
}


@pytest.mark.parametrize("reset", RESETS)
def test_step_forward_backward_scalar_known_values(reset):
    x, h_prev, params = scalar_case()
    k = KNOWN[reset]
    h, cache = gru_step_forward(x, h_prev, params, reset=reset)
    np.testing.assert_allclose(h, [[k["h"]]], rtol=1e-13)
    dx, dh_prev, grads = gru_step_backward(np.array([[1.0]]), cache)
    np.testing.assert_allclose(dx, [[k["dx"]]], rtol=1e-13)
    np.testing.assert_allclose(dh_prev, [[k["dh_prev"]]], rtol=1e-13)
    gates = [k["dar"], k["daz"], k["dan"]]
    np.testing.assert_allclose(grads["W_x"], np.array(gates)[:, None], rtol=1e-13)
    np.testing.assert_allclose(grads["b_x"], gates, rtol=1e-13)
    np.testing.assert_allclose(grads["W_h"], np.array(k["dW_h"])[:, None], rtol=1e-13)
    np.testing.assert_allclose(grads["b_h"], [k["dar"], k["daz"], k["db_hn"]], rtol=1e-13)


def test_sequence_of_one_step_matches_known_values():
    x, h_prev, params = scalar_case()
    for reset in RESETS:
        hs, cache = gru_forward(x[:, None], h_prev, params, reset=reset)
        np.testing.assert_allclose(hs, [[[KNOWN[reset]["h"]]]], rtol=1e-13, err_msg=reset)
        dx, dh0, _ = gru_backward(np.ones((1, 1, 1)), cache)
        np.testing.assert_allclose(dx, [[[KNOWN[reset]["dx"]]]], rtol=1e-13, err_msg=reset)
        np.testing.assert_allclose(dh0, [[KNOWN[reset]["dh_prev"]]], rtol=1e-13, err_msg=reset)


@pytest.mark.parametrize("reset", RESETS)
def test_update_gate_one_copies_the_state(reset):
    # z = σ(1000) = 1 exactly: h_t = h_{t-1} = h0 whatever x, and the whole gradient flows to h0
    # (dh0 = sum_t dhs[:, t]); nothing reaches x or the parameters.
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 3, 4, 2
    params = random_gru_params(rng, D, H)
    params["b_x"][H : 2 * H] = 1000.0
    x, h0, dhs = (rng.standard_normal(s) for s in ((N, T, D), (N, H), (N, T, H)))
    hs, cache = gru_forward(x, h0, params, reset=reset)
    # (h = n + z (h_prev - n) is h_prev up to one rounding)
    np.testing.assert_allclose(hs, np.broadcast_to(h0[:, None], (N, T, H)), rtol=0, atol=1e-15)
    dx, dh0, grads = gru_backward(dhs, cache)
    np.testing.assert_allclose(dh0, dhs.sum(axis=1), rtol=1e-14)
    np.testing.assert_array_equal(dx, 0.0)
    for key in KEYS:
        np.testing.assert_array_equal(grads[key], 0.0, err_msg=key)


@pytest.mark.parametrize("reset", RESETS)
def test_update_gate_zero_gives_the_candidate(reset):
    # z = σ(-1000) = 0 exactly and r = σ(-1000) = 0: h' = n = tanh(W_in x + b_in + c) with c = 0
    # (after: 0 * (W_hn h + b_hn)) or c = b_hn (before: W_hn (0 * h) + b_hn).
    rng = np.random.default_rng(1)
    N, D, H = 3, 2, 4
    params = random_gru_params(rng, D, H)
    params["b_x"][: 2 * H] = -1000.0
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    h, _ = gru_step_forward(x, h_prev, params, reset=reset)
    c = 0.0 if reset == "after" else params["b_h"][2 * H :]
    want = np.tanh(x @ params["W_x"][2 * H :].T + params["b_x"][2 * H :] + c)
    np.testing.assert_allclose(h, want, rtol=1e-14)


def test_weights_are_out_by_in_with_blocks_r_z_n():
    # W_x (3H, D) is applied as x @ W_x.T, rows in blocks r, z, n. With H = 1, D = 2, x = e_1,
    # r and z read column 1 of their rows: r = σ(W_x[0, 1]), z = σ(W_x[1, 1]), and with
    # W_h = 0, b = 0: n = tanh(W_x[2, 1]), h' = (1 - z) n + z h_prev.
    W_x = np.array([[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]])
    params = {"W_x": W_x, "W_h": np.zeros((3, 1)), "b_x": np.zeros(3), "b_h": np.zeros(3)}
    h_prev = np.array([[0.7]])
    h, _ = gru_step_forward(np.array([[0.0, 1.0]]), h_prev, params)
    z = 1 / (1 + math.exp(0.4))
    np.testing.assert_allclose(h, [[(1 - z) * math.tanh(0.6) + z * 0.7]], rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# The two reset placements
# ---------------------------------------------------------------------------------------------


def test_reset_placements_differ_for_random_weights():
    x, h0, params, dhs = seq_data(3, 2, 4, 3, 5)
    hs_a, cache_a = gru_forward(x, h0, params, reset="after")
    hs_b, cache_b = gru_forward(x, h0, params, reset="before")
    assert np.abs(hs_a - hs_b).max() > 1e-3
    ga, gb = gru_backward(dhs, cache_a)[2], gru_backward(dhs, cache_b)[2]
    assert np.abs(ga["W_h"] - gb["W_h"]).max() > 1e-3
    # the default is PyTorch's placement
    np.testing.assert_array_equal(gru_forward(x, h0, params)[0], hs_a)


@pytest.mark.parametrize("T", [1, 4])
def test_reset_placements_coincide_when_r_is_one(T):
    # b_ir = 1000: r = σ(1000 + ...) = 1 exactly, so r * (W_hn h + b_hn) = W_hn (r * h) + b_hn:
    # the outputs and every gradient agree (r (1 - r) = 0 kills dr in both).
    x, h0, params, dhs = seq_data(4, 2, T, 3, 5)
    params["b_x"][:5] = 1000.0
    hs_a, cache_a = gru_forward(x, h0, params, reset="after")
    hs_b, cache_b = gru_forward(x, h0, params, reset="before")
    np.testing.assert_allclose(hs_a, hs_b, rtol=1e-14, atol=1e-15)
    out_a, out_b = gru_backward(dhs, cache_a), gru_backward(dhs, cache_b)
    np.testing.assert_allclose(out_a[0], out_b[0], rtol=1e-12, atol=1e-15, err_msg="dx")
    np.testing.assert_allclose(out_a[1], out_b[1], rtol=1e-12, atol=1e-15, err_msg="dh0")
    for key in KEYS:
        np.testing.assert_allclose(
            out_a[2][key], out_b[2][key], rtol=1e-12, atol=1e-15, err_msg=key
        )


def test_swapped_update_convention_is_negated_z_blocks():
    # Texts writing h' = z n + (1 - z) h describe the same model with the z blocks negated,
    # since 1 - σ(a) = σ(-a). Computed here independently, step by step.
    x, h0, params, _ = seq_data(5, 2, 3, 3, 4)
    H = 4

    def sig(a):
        return 1 / (1 + np.exp(-a))

    W_x, W_h, b_x, b_h = (params[k] for k in KEYS)
    h, hs = h0, []
    for t in range(x.shape[1]):
        gx, gh = x[:, t] @ W_x.T + b_x, h @ W_h.T + b_h
        r, z = sig(gx[:, :H] + gh[:, :H]), sig(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = z * n + (1 - z) * h  # the swapped convention
        hs.append(h)
    negated = {k: v.copy() for k, v in params.items()}
    for k in KEYS:
        negated[k][H : 2 * H] *= -1
    np.testing.assert_allclose(gru_forward(x, h0, negated)[0], np.stack(hs, 1), rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# Properties over shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", RESETS)
@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_forward_equals_looped_step_forward(reset, N, T, D, H, seed):
    x, h0, params, _ = seq_data(seed, N, T, D, H)
    hs, _ = gru_forward(x, h0, params, reset=reset)
    assert hs.shape == (N, T, H)
    h = h0
    for t in range(T):
        h, _ = gru_step_forward(x[:, t], h, params, reset=reset)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-13, atol=1e-15, err_msg=f"step {t}")


@pytest.mark.parametrize("reset", RESETS)
@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_backward_equals_looped_step_backward(reset, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(seed, N, T, D, H)
    _, cache = gru_forward(x, h0, params, reset=reset)
    dx, dh0, grads = gru_backward(dhs, cache)

    caches, h = [], h0
    for t in range(T):
        h, c = gru_step_forward(x[:, t], h, params, reset=reset)
        caches.append(c)
    dx_loop = np.zeros_like(x)
    grads_loop = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        dx_loop[:, t], dh_next, g = gru_step_backward(dhs[:, t] + dh_next, caches[t])
        for k in grads_loop:
            grads_loop[k] += g[k]

    np.testing.assert_allclose(dx, dx_loop, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, dh_next, rtol=1e-12, atol=1e-14)
    assert grads.keys() == set(KEYS)
    for k in grads:
        assert grads[k].shape == params[k].shape, k
        np.testing.assert_allclose(grads[k], grads_loop[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("reset", RESETS)
@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_no_input_modified(assert_unchanged, reset, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(seed, N, T, D, H)

    # step forward / backward
    args = (x[:, 0].copy(), h0, params)
    before = copy.deepcopy(args)
    h, cache = gru_step_forward(*args, reset=reset)
    assert_unchanged(before, args)
    assert not np.shares_memory(h, args[0]) and not np.shares_memory(h, h0)
    dh = dhs[:, 0].copy()
    dh_before, cache_before = dh.copy(), copy.deepcopy(cache)
    first = gru_step_backward(dh, cache)
    assert_unchanged(dh_before, dh)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, gru_step_backward(dh, cache))  # so it can run twice
    assert_unchanged(before, args)

    # sequence forward / backward
    args = (x, h0, params)
    before = copy.deepcopy(args)
    hs, cache = gru_forward(*args, reset=reset)
    assert_unchanged(before, args)
    assert not np.shares_memory(hs, x) and not np.shares_memory(hs, h0)
    dhs_before, cache_before = dhs.copy(), copy.deepcopy(cache)
    first = gru_backward(dhs, cache)
    assert_unchanged(dhs_before, dhs)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, gru_backward(dhs, cache))
    assert_unchanged(before, args)


def test_saturated_gates_stay_finite(rng):
    # Huge pre-activations saturate σ to exactly 0 or 1 and tanh to ±1 without overflow
    # (a naive 1 / (1 + exp(-a)) warns at a = -1e6); the backward stays finite.
    N, T, D, H = 2, 3, 4, 3
    params = random_gru_params(rng, D, H)
    params["W_x"] = params["W_x"] * 1e6
    for reset in RESETS:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            hs, cache = gru_forward(rng.standard_normal((N, T, D)), np.zeros((N, H)), params, reset)
            dx, dh0, grads = gru_backward(np.ones((N, T, H)), cache)
        assert np.all(np.abs(hs) <= 1.0)
        for g in (hs, dx, dh0, *grads.values()):
            assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# Numerical gradient checks (float64), every output of every backward, both placements
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", RESETS)
@shapes_examples
@given(N=sizes, T=st.just(1), D=sizes, H=sizes, seed=seeds)
def test_step_backward_numerical_gradients(assert_grad, reset, N, T, D, H, seed):
    x, h_prev, params, dh = step_data(seed, N, D, H)
    _, cache = gru_step_forward(x, h_prev, params, reset=reset)
    dx, dh_prev, grads = gru_step_backward(dh, cache)

    def fwd(x_=x, h_=h_prev, **over):
        return gru_step_forward(x_, h_, {**params, **over}, reset=reset)[0]

    assert_grad(dx, numerical_gradient(lambda v: fwd(x_=v), x, dh), f"{reset}: dx")
    assert_grad(dh_prev, numerical_gradient(lambda v: fwd(h_=v), h_prev, dh), f"{reset}: dh_prev")
    for k in KEYS:
        num = numerical_gradient(lambda v, k=k: fwd(**{k: v}), params[k], dh)
        assert_grad(grads[k], num, f"{reset}: d{k}")


@pytest.mark.parametrize("reset", RESETS)
@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_sequence_backward_numerical_gradients(assert_grad, reset, N, T, D, H, seed):
    x, h0, params, dhs = seq_data(seed, N, T, D, H)
    _, cache = gru_forward(x, h0, params, reset=reset)
    dx, dh0, grads = gru_backward(dhs, cache)

    def fwd(x_=x, h_=h0, **over):
        return gru_forward(x_, h_, {**params, **over}, reset=reset)[0]

    assert_grad(dx, numerical_gradient(lambda v: fwd(x_=v), x, dhs), f"{reset}: dx")
    assert_grad(dh0, numerical_gradient(lambda v: fwd(h_=v), h0, dhs), f"{reset}: dh0")
    for k in KEYS:
        num = numerical_gradient(lambda v, k=k: fwd(**{k: v}), params[k], dhs)
        assert_grad(grads[k], num, f"{reset}: d{k}")


@pytest.mark.parametrize("reset", RESETS)
def test_gradient_reaches_early_steps(rng, assert_grad, reset):
    # Only the last step has a loss: the gradient of x_1 must still be nonzero and correct.
    N, T, D, H = 2, 6, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = random_gru_params(rng, D, H, scale=1.0)
    dhs = np.zeros((N, T, H))
    dhs[:, -1] = rng.standard_normal((N, H))
    _, cache = gru_forward(x, h0, params, reset=reset)
    dx, _, _ = gru_backward(dhs, cache)
    assert np.abs(dx[:, 0]).max() > 1e-4
    num = numerical_gradient(lambda v: gru_forward(v, h0, params, reset=reset)[0], x, dhs)
    assert_grad(dx, num, "dx")


# ---------------------------------------------------------------------------------------------
# dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(reset, dtype):
    N, T, D, H = 3, 4, 5, 2
    x, h0, params, dhs = seq_data(7, N, T, D, H, dtype=dtype)
    h, cache = gru_step_forward(x[:, 0], h0, params, reset=reset)
    assert h.dtype == dtype
    dx, dh_prev, grads = gru_step_backward(dhs[:, 0], cache)
    assert dx.dtype == dh_prev.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    hs, cache = gru_forward(x, h0, params, reset=reset)
    assert hs.dtype == dtype
    dx, dh0, grads = gru_backward(dhs, cache)
    assert dx.dtype == dh0.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    if dtype == np.float32:  # and float32 agrees with float64 to float32 precision
        x64, h064, p64, dhs64 = seq_data(7, N, T, D, H)
        hs64, cache64 = gru_forward(x64, h064, p64, reset=reset)
        np.testing.assert_allclose(hs, hs64, rtol=1e-5, atol=1e-6)
        dx64, dh064, grads64 = gru_backward(dhs64, cache64)
        np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dh0, dh064, rtol=1e-4, atol=1e-5)
        for k in grads:
            np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_integer_inputs_are_promoted_to_float():
    params = {"W_x": np.zeros((3, 2)), "W_h": np.zeros((3, 1)), "b_x": np.zeros(3)}
    params["b_h"] = np.zeros(3)
    h, _ = gru_step_forward(np.array([[1, -1]]), np.array([[2]]), params)
    assert h.dtype == np.float64
    np.testing.assert_allclose(h, [[1.0]])  # r = z = 1/2, n = 0: h = 0.5 * 2


# ---------------------------------------------------------------------------------------------
# Errors name the culprit
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def good(rng):
    N, T, D, H = 2, 3, 4, 5
    return {
        "x": rng.standard_normal((N, T, D)),
        "h0": rng.standard_normal((N, H)),
        "params": random_gru_params(rng, D, H),
    }


def test_step_forward_errors(good):
    x, h0, p = good["x"][:, 0], good["h0"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(2, 3, 4\)"):
        gru_step_forward(good["x"], h0, p)
    with pytest.raises(ValueError, match=r"h_prev must have 2 dimensions, got shape \(5,\)"):
        gru_step_forward(x, h0[0], p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h_prev has 1"):
        gru_step_forward(x, h0[:1], p)
    with pytest.raises(KeyError, match=r"params is missing 'b_h'"):
        gru_step_forward(x, h0, {k: p[k] for k in ("W_x", "W_h", "b_x")})
    with pytest.raises(TypeError, match=r"params must be a dict"):
        gru_step_forward(x, h0, list(p.values()))
    with pytest.raises(TypeError, match=r"x must hold numbers"):
        gru_step_forward(np.array([["a"] * 4] * 2), h0, p)
    with pytest.raises(ValueError, match=r"reset must be 'after' \(PyTorch\) or 'before'"):
        gru_step_forward(x, h0, p, reset="cho")


def test_three_h_mismatch_is_explained(good):
    x, h0, p = good["x"], good["h0"], good["params"]
    # an RNN-sized W_h (H, H) instead of (3H, H)
    with pytest.raises(
        ValueError,
        match=r"params\['W_h'\] must have shape \(15, 5\), got \(5, 5\); a GRU stacks the gate "
        r"blocks r, z, n row-wise: W_x \(3H, D\), W_h \(3H, H\).*D = 4 \(from x\) and H = 5",
    ):
        gru_forward(x, h0, {**p, "W_h": p["W_h"][:5]})
    # an LSTM-sized W_x (4H, D)
    with pytest.raises(
        ValueError, match=r"params\['W_x'\] must have shape \(15, 4\), got \(20, 4\)"
    ):
        gru_step_forward(x[:, 0], h0, {**p, "W_x": np.zeros((20, 4))})
    # one merged bias, as for the RNN and LSTM, is not enough
    with pytest.raises(ValueError, match=r"params\['b_h'\] must have shape \(15,\), got \(5,\)"):
        gru_forward(x, h0, {**p, "b_h": np.zeros(5)})
    # W_x transposed
    with pytest.raises(
        ValueError, match=r"params\['W_x'\] must have shape \(15, 4\), got \(4, 15\)"
    ):
        gru_forward(x, h0, {**p, "W_x": p["W_x"].T})
    # an input size that disagrees with W_x is reported on W_x
    with pytest.raises(ValueError, match=r"params\['W_x'\] must have shape \(15, 3\)"):
        gru_forward(x[:, :, :3], h0, p)


def test_sequence_forward_errors(good):
    x, h0, p = good["x"], good["h0"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, got shape \(2, 4\)"):
        gru_forward(x[:, 0], h0, p)
    with pytest.raises(ValueError, match=r"h0 must have 2 dimensions"):
        gru_forward(x, h0[None], p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h0 has 3"):
        gru_forward(x, np.zeros((3, 5)), p)
    with pytest.raises(ValueError, match=r"T = 0"):
        gru_forward(x[:, :0], h0, p)
    with pytest.raises(KeyError, match=r"params is missing 'W_x'"):
        gru_forward(x, h0, {k: p[k] for k in ("W_h", "b_x", "b_h")})
    with pytest.raises(ValueError, match=r"reset must be"):
        gru_forward(x, h0, p, reset=None)


def test_backward_errors(good):
    x, h0, p = good["x"], good["h0"], good["params"]
    _, cache = gru_step_forward(x[:, 0], h0, p)
    with pytest.raises(ValueError, match=r"dh must have the shape of h, \(2, 5\), got \(2, 4\)"):
        gru_step_backward(np.ones((2, 4)), cache)
    with pytest.raises(ValueError, match=r"dh must have 2 dimensions"):
        gru_step_backward(np.ones((2, 1, 5)), cache)
    _, cache = gru_forward(x, h0, p)
    with pytest.raises(
        ValueError, match=r"dhs must have the shape of hs, \(2, 3, 5\), got \(2, 2, 5\)"
    ):
        gru_backward(np.ones((2, 2, 5)), cache)
    with pytest.raises(ValueError, match=r"dhs must have 3 dimensions"):
        gru_backward(np.ones((2, 5)), cache)
