"""rnn_ref.numpy.lstm: the LSTM (and peephole LSTM) step and sequence, forward and backward.

Known values worked by hand, properties over random shapes (hypothesis), numerical gradient
checks in float64 of every output of every backward, dtype, no in-place modification of inputs,
and error messages. Parity with torch.nn.LSTM is in test_torch_lstm.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    lstm_backward,
    lstm_forward,
    lstm_peephole_backward,
    lstm_peephole_forward,
    lstm_peephole_step_backward,
    lstm_peephole_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    numerical_gradient,
)

sizes = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
PEEPHOLE_KEYS = ("w_ci", "w_cf", "w_co")

# (step forward, step backward, sequence forward, sequence backward, parameter keys)
VARIANTS = {
    "plain": (
        lstm_step_forward,
        lstm_step_backward,
        lstm_forward,
        lstm_backward,
        ("W_x", "W_h", "b"),
    ),
    "peephole": (
        lstm_peephole_step_forward,
        lstm_peephole_step_backward,
        lstm_peephole_forward,
        lstm_peephole_backward,
        ("W_x", "W_h", "b", *PEEPHOLE_KEYS),
    ),
}
variants = st.sampled_from(sorted(VARIANTS))


def shapes_examples(f):
    """Apply the edge-case @examples every shape property must see (N = 1, T = 1, H != D)."""
    for variant in ("plain", "peephole"):
        f = example(variant=variant, N=1, T=1, D=1, H=1, seed=0)(f)
        f = example(variant=variant, N=1, T=1, D=3, H=2, seed=1)(f)
        f = example(variant=variant, N=2, T=4, D=2, H=3, seed=2)(f)
    return f


def random_lstm_params(rng, D, H, dtype=np.float64, peephole=False, scale=0.5):
    """W_x (4H, D), W_h (4H, H), b (4H,) (and w_ci, w_cf, w_co (H,)), small enough that the
    gates stay unsaturated."""
    p = {
        "W_x": rng.standard_normal((4 * H, D)) * scale / np.sqrt(D),
        "W_h": rng.standard_normal((4 * H, H)) * scale / np.sqrt(H),
        "b": rng.standard_normal(4 * H) * scale,
    }
    if peephole:
        p.update({k: rng.standard_normal(H) * scale for k in PEEPHOLE_KEYS})
    return {k: v.astype(dtype) for k, v in p.items()}


def seq_data(variant, seed, N, T, D, H, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dcs = rng.standard_normal((N, T, H)).astype(dtype)
    params = random_lstm_params(rng, D, H, dtype, peephole=variant == "peephole")
    return x, (h0, c0), params, dhs, dcs


# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def test_step_forward_backward_scalar_known_values():
    # N = D = H = 1, x = 1, h_prev = 0, c_prev = 0.4, b = 0, W_h = 1 (irrelevant: h_prev = 0),
    # W_x = (ln 3, 0, ln 2, ln 3) in gate order i, f, g, o, so
    #   i = sigmoid(ln 3) = 3/4, f = sigmoid(0) = 1/2, g = tanh(ln 2) = 3/5, o = 3/4,
    #   c = f c_prev + i g = 0.2 + 0.45 = 0.65,  h = o tanh(c) = 0.75 tanh(0.65).
    ln2, ln3 = math.log(2.0), math.log(3.0)
    params = {
        "W_x": np.array([[ln3], [0.0], [ln2], [ln3]]),
        "W_h": np.ones((4, 1)),
        "b": np.zeros(4),
    }
    (h, c), cache = lstm_step_forward(
        np.array([[1.0]]), (np.zeros((1, 1)), np.array([[0.4]])), params
    )
    tc = math.tanh(0.65)
    np.testing.assert_allclose(c, [[0.65]], rtol=1e-14)
    np.testing.assert_allclose(h, [[0.75 * tc]], rtol=1e-14)
    # dh = 1, dc = 0:
    #   da_o = dh tanh(c) o (1 - o) = 0.1875 tc;  dc_total = dh o (1 - tc²) = 0.75 (1 - tc²)
    #   da_i = dc_total g i (1 - i) = 0.1125 dc_total
    #   da_f = dc_total c_prev f (1 - f) = 0.1 dc_total
    #   da_g = dc_total i (1 - g²) = 0.48 dc_total;  dc_prev = dc_total f
    #   dx = da · W_x;  dh_prev = sum(da) (W_h = 1);  dW_x = da x = da;  dW_h = da h_prev = 0
    dct = 0.75 * (1 - tc * tc)
    da = np.array([0.1125 * dct, 0.1 * dct, 0.48 * dct, 0.1875 * tc])
    dx, (dh_prev, dc_prev), grads = lstm_step_backward((np.ones((1, 1)), np.zeros((1, 1))), cache)
    np.testing.assert_allclose(dx, [[da @ params["W_x"][:, 0]]], rtol=1e-14)
    np.testing.assert_allclose(dh_prev, [[da.sum()]], rtol=1e-14)
    np.testing.assert_allclose(dc_prev, [[0.5 * dct]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_x"], da[:, None], rtol=1e-14)
    np.testing.assert_array_equal(grads["W_h"], np.zeros((4, 1)))
    np.testing.assert_allclose(grads["b"], da, rtol=1e-14)


def test_zero_weights_give_half_gates_and_tanh_of_bias():
    # W_x = W_h = 0, b = (0, 0, b_g, 0): i = f = o = sigmoid(0) = 1/2, g = tanh(b_g) whatever x,
    # so c_t = c_{t-1}/2 + g/2, i.e. c_t = 2^-t c0 + (1 - 2^-t) g, and h_t = tanh(c_t) / 2.
    N, T, D, H = 2, 4, 3, 2
    rng = np.random.default_rng(0)
    b = np.zeros(4 * H)
    b[2 * H : 3 * H] = [0.3, -1.2]
    params = {"W_x": np.zeros((4 * H, D)), "W_h": np.zeros((4 * H, H)), "b": b}
    x, h0, c0 = (rng.standard_normal(s) for s in ((N, T, D), (N, H), (N, H)))
    hs, cache = lstm_forward(x, (h0, c0), params)
    g = np.tanh([0.3, -1.2])
    for t in range(1, T + 1):
        c_t = 0.5**t * c0 + (1 - 0.5**t) * g
        np.testing.assert_allclose(hs[:, t - 1], 0.5 * np.tanh(c_t), rtol=1e-14, err_msg=f"t={t}")
    # No weights: nothing flows back to x or h0 (dc0 is not zero: c0 reaches every c_t).
    dx, (dh0, dc0), grads = lstm_backward(np.ones((N, T, H)), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dh0, 0.0)
    assert np.all(np.abs(dc0) > 0)


def test_gate_blocks_are_in_order_i_f_g_o():
    # Saturate one block at a time with b = +-40 and read the effect on (h, c) from c_prev = 1.
    c_prev, h_prev, x = np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))

    def run(b):
        p = {"W_x": np.zeros((4, 1)), "W_h": np.zeros((4, 1)), "b": np.array(b, float)}
        return lstm_step_forward(x, (h_prev, c_prev), p)[0]

    # f = 0 (block 1), i = 1 (block 0), g = tanh(0.5) (block 2): c = tanh(0.5)
    _, c = run([40, -40, 0.5, 0])
    np.testing.assert_allclose(c, [[math.tanh(0.5)]], rtol=1e-14)
    # o = 0 (block 3): h = 0 whatever c
    h, _ = run([0, 0, 0, -40])
    np.testing.assert_allclose(h, [[0.0]], atol=1e-16)


def test_peephole_output_gate_looks_at_new_cell():
    # W = 0, b = 0, w_ci = w_cf = 0, w_co = 1, c_prev = 2 ln 3: i = f = 1/2, g = 0, so
    # c = c_prev / 2 = ln 3 and o = sigmoid(w_co c) = sigmoid(ln 3) = 3/4 (looking at c_prev would
    # give sigmoid(2 ln 3) = 9/10); h = o tanh(ln 3) = 0.75 * 0.8 = 0.6.
    H = 1
    p = {
        "W_x": np.zeros((4, 1)),
        "W_h": np.zeros((4, 1)),
        "b": np.zeros(4),
        "w_ci": np.zeros(H),
        "w_cf": np.zeros(H),
        "w_co": np.ones(H),
    }
    c_prev = np.array([[2 * math.log(3.0)]])
    (h, c), _ = lstm_peephole_step_forward(np.zeros((1, 1)), (np.zeros((1, 1)), c_prev), p)
    np.testing.assert_allclose(c, [[math.log(3.0)]], rtol=1e-14)
    np.testing.assert_allclose(h, [[0.6]], rtol=1e-14)
    # and the input and forget gates look at c_prev: w_ci = w_cf = 1/c_prev * ln 3 gives
    # i = f = 3/4 and b_g = ln 2 gives g = 3/5: c = 0.75 c_prev + 0.45
    p.update(w_ci=np.array([0.5]), w_cf=np.array([0.5]), b=np.array([0, 0, math.log(2.0), 0]))
    (h, c), _ = lstm_peephole_step_forward(np.zeros((1, 1)), (np.zeros((1, 1)), c_prev), p)
    np.testing.assert_allclose(c, 0.75 * c_prev + 0.45, rtol=1e-14)


@pytest.mark.parametrize("T", [1, 3])
def test_peephole_with_zero_peepholes_is_the_plain_lstm(T):
    x, state, params, dhs, _ = seq_data("plain", 3, 2, T, 3, 4)
    zeros = {k: np.zeros(4) for k in PEEPHOLE_KEYS}
    hs, cache = lstm_forward(x, state, params)
    hs_p, cache_p = lstm_peephole_forward(x, state, {**params, **zeros})
    np.testing.assert_array_equal(hs_p, hs)
    dx, dstate, grads = lstm_backward(dhs, cache)
    dx_p, dstate_p, grads_p = lstm_peephole_backward(dhs, cache_p)
    np.testing.assert_array_equal(dx_p, dx)
    np.testing.assert_array_equal(dstate_p[0], dstate[0])
    np.testing.assert_array_equal(dstate_p[1], dstate[1])
    for k in grads:
        np.testing.assert_array_equal(grads_p[k], grads[k], err_msg=k)
    assert set(grads_p) == {*grads, *PEEPHOLE_KEYS}


# ---------------------------------------------------------------------------------------------
# Properties over shapes (both variants)
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(variant=variants, N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_forward_equals_looped_step_forward(variant, N, T, D, H, seed):
    step_fwd, _, fwd, _, _ = VARIANTS[variant]
    x, state, params, _, _ = seq_data(variant, seed, N, T, D, H)
    hs, cache = fwd(x, state, params)
    assert hs.shape == (N, T, H)
    h, c = state
    for t in range(T):
        (h, c), _ = step_fwd(x[:, t], (h, c), params)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-13, atol=1e-15, err_msg=f"h step {t}")
        np.testing.assert_allclose(cache[4][:, t], c, rtol=1e-13, atol=1e-15, err_msg=f"c {t}")


@shapes_examples
@given(variant=variants, N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_backward_equals_looped_step_backward(variant, N, T, D, H, seed):
    step_fwd, step_bwd, fwd, bwd, keys = VARIANTS[variant]
    x, state, params, dhs, _ = seq_data(variant, seed, N, T, D, H)
    _, cache = fwd(x, state, params)
    dx, (dh0, dc0), grads = bwd(dhs, cache)

    caches, s = [], state
    for t in range(T):
        s, ca = step_fwd(x[:, t], s, params)
        caches.append(ca)
    dx_loop = np.zeros_like(x)
    grads_loop = {k: np.zeros_like(v) for k, v in params.items()}
    dh, dc = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx_loop[:, t], (dh, dc), g = step_bwd((dhs[:, t] + dh, dc), caches[t])
        for k in grads_loop:
            grads_loop[k] += g[k]

    np.testing.assert_allclose(dx, dx_loop, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, dh, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dc0, dc, rtol=1e-12, atol=1e-14)
    assert grads.keys() == set(keys)
    for k in grads:
        assert grads[k].shape == params[k].shape, k
        np.testing.assert_allclose(grads[k], grads_loop[k], rtol=1e-12, atol=1e-14, err_msg=k)


@shapes_examples
@given(variant=variants, N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_no_input_modified(assert_unchanged, variant, N, T, D, H, seed):
    step_fwd, step_bwd, fwd, bwd, _ = VARIANTS[variant]
    x, state, params, dhs, dcs = seq_data(variant, seed, N, T, D, H)

    args = (x[:, 0].copy(), state, params)
    before = copy.deepcopy(args)
    (h, c), cache = step_fwd(*args)
    assert_unchanged(before, args)
    for out in (h, c):
        assert not any(np.shares_memory(out, a) for a in (args[0], *state))
    dstate = (dhs[:, 0].copy(), dcs[:, 0].copy())
    dstate_before, cache_before = copy.deepcopy(dstate), copy.deepcopy(cache)
    first = step_bwd(dstate, cache)
    assert_unchanged(dstate_before, dstate)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, step_bwd(dstate, cache))  # so it can run twice
    assert_unchanged(before, args)

    args = (x, state, params)
    before = copy.deepcopy(args)
    hs, cache = fwd(*args)
    assert_unchanged(before, args)
    assert not any(np.shares_memory(hs, a) for a in (x, *state))
    dhs_before, cache_before = dhs.copy(), copy.deepcopy(cache)
    first = bwd(dhs, cache)
    assert_unchanged(dhs_before, dhs)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, bwd(dhs, cache))
    assert_unchanged(before, args)


def test_saturated_gates_stay_finite_without_overflow(rng):
    # Huge pre-activations: the sigmoid is 0.5 (1 + tanh(a/2)), so exp never overflows, gates
    # are exactly 0 or 1, |h| <= 1, and every gradient is finite.
    N, T, D, H = 2, 3, 4, 3
    for variant in VARIANTS:
        _, _, fwd, bwd, _ = VARIANTS[variant]
        params = random_lstm_params(rng, D, H, peephole=variant == "peephole")
        params["W_x"] = params["W_x"] * 1e6
        with np.errstate(all="raise"):
            hs, cache = fwd(rng.standard_normal((N, T, D)), (np.zeros((N, H)),) * 2, params)
            dx, dstate, grads = bwd(np.ones((N, T, H)), cache)
        assert np.all(np.abs(hs) <= 1.0)
        for g in (dx, *dstate, *grads.values()):
            assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# Numerical gradient checks (float64), every output of every backward
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(variant=variants, N=sizes, T=st.just(1), D=sizes, H=sizes, seed=seeds)
def test_step_backward_numerical_gradients(assert_grad, variant, N, T, D, H, seed):
    step_fwd, step_bwd, _, _, keys = VARIANTS[variant]
    x, (h0, c0), params, dhs, dcs = seq_data(variant, seed, N, T, D, H)
    x, dh, dc = x[:, 0], dhs[:, 0], dcs[:, 0]
    _, cache = step_fwd(x, (h0, c0), params)
    dx, (dh_prev, dc_prev), grads = step_bwd((dh, dc), cache)

    def loss(x_=x, h_=h0, c_=c0, **over):  # sum(dh * h) + sum(dc * c)
        (h, c), _ = step_fwd(x_, (h_, c_), {**params, **over})
        return np.sum(dh * h) + np.sum(dc * c)

    assert_grad(dx, numerical_gradient(lambda v: loss(x_=v), x), "dx")
    assert_grad(dh_prev, numerical_gradient(lambda v: loss(h_=v), h0), "dh_prev")
    assert_grad(dc_prev, numerical_gradient(lambda v: loss(c_=v), c0), "dc_prev")
    for k in keys:
        assert_grad(grads[k], numerical_gradient(lambda v, k=k: loss(**{k: v}), params[k]), k)


@shapes_examples
@given(variant=variants, N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_sequence_backward_numerical_gradients(assert_grad, variant, N, T, D, H, seed):
    _, _, fwd, bwd, keys = VARIANTS[variant]
    x, (h0, c0), params, dhs, _ = seq_data(variant, seed, N, T, D, H)
    _, cache = fwd(x, (h0, c0), params)
    dx, (dh0, dc0), grads = bwd(dhs, cache)

    def f(x_=x, h_=h0, c_=c0, **over):
        return fwd(x_, (h_, c_), {**params, **over})[0]

    assert_grad(dx, numerical_gradient(lambda v: f(x_=v), x, dhs), "dx")
    assert_grad(dh0, numerical_gradient(lambda v: f(h_=v), h0, dhs), "dh0")
    assert_grad(dc0, numerical_gradient(lambda v: f(c_=v), c0, dhs), "dc0")
    for k in keys:
        assert_grad(grads[k], numerical_gradient(lambda v, k=k: f(**{k: v}), params[k], dhs), k)


def test_gradient_reaches_early_steps_through_the_cell(rng, assert_grad):
    # A loss on the last step only: the gradient of x_1 must be nonzero and correct.
    N, T, D, H = 2, 6, 3, 4
    x, h0, c0 = (rng.standard_normal(s) for s in ((N, T, D), (N, H), (N, H)))
    params = random_lstm_params(rng, D, H, scale=1.0)
    dhs = np.zeros((N, T, H))
    dhs[:, -1] = rng.standard_normal((N, H))
    _, cache = lstm_forward(x, (h0, c0), params)
    dx, _, _ = lstm_backward(dhs, cache)
    assert np.abs(dx[:, 0]).max() > 1e-4
    num = numerical_gradient(lambda v: lstm_forward(v, (h0, c0), params)[0], x, dhs)
    assert_grad(dx, num, "dx")


# ---------------------------------------------------------------------------------------------
# dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(variant, dtype):
    step_fwd, step_bwd, fwd, bwd, _ = VARIANTS[variant]
    N, T, D, H = 3, 4, 5, 2
    x, state, params, dhs, dcs = seq_data(variant, 7, N, T, D, H, dtype=dtype)
    (h, c), cache = step_fwd(x[:, 0], state, params)
    assert h.dtype == c.dtype == dtype
    dx, (dh, dc), grads = step_bwd((dhs[:, 0], dcs[:, 0]), cache)
    assert dx.dtype == dh.dtype == dc.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    hs, cache = fwd(x, state, params)
    assert hs.dtype == dtype
    dx, (dh0, dc0), grads = bwd(dhs, cache)
    assert dx.dtype == dh0.dtype == dc0.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    if dtype == np.float32:  # and float32 agrees with float64 to float32 precision
        x64, state64, p64, dhs64, _ = seq_data(variant, 7, N, T, D, H)
        hs64, cache64 = fwd(x64, state64, p64)
        np.testing.assert_allclose(hs, hs64, rtol=1e-5, atol=1e-6)
        dx64, (dh064, dc064), grads64 = bwd(dhs64, cache64)
        for a, b, name in ((dx, dx64, "dx"), (dh0, dh064, "dh0"), (dc0, dc064, "dc0")):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
        for k in grads:
            np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-4, atol=1e-5, err_msg=k)


# ---------------------------------------------------------------------------------------------
# Errors name the culprit
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def good(rng):
    N, T, D, H = 2, 3, 4, 5
    return {
        "x": rng.standard_normal((N, T, D)),
        "state": (rng.standard_normal((N, H)), rng.standard_normal((N, H))),
        "params": random_lstm_params(rng, D, H, peephole=True),
    }


def test_step_forward_errors(good):
    x, (h0, c0), p = good["x"][:, 0], good["state"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(2, 3, 4\)"):
        lstm_step_forward(good["x"], (h0, c0), p)
    with pytest.raises(TypeError, match=r"\(h_prev, c_prev\) must be a pair of arrays"):
        lstm_step_forward(x, h0, p)
    with pytest.raises(ValueError, match=r"c_prev must have 2 dimensions"):
        lstm_step_forward(x, (h0, c0[0]), p)
    with pytest.raises(ValueError, match=r"h_prev and c_prev must have the same shape"):
        lstm_step_forward(x, (h0, c0[:, :3]), p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h_prev has 1"):
        lstm_step_forward(x, (h0[:1], c0[:1]), p)
    with pytest.raises(KeyError, match=r"params is missing 'W_h'"):
        lstm_step_forward(x, (h0, c0), {"W_x": p["W_x"], "b": p["b"]})
    with pytest.raises(KeyError, match=r"params is missing 'w_ci'"):
        lstm_peephole_step_forward(x, (h0, c0), {k: p[k] for k in ("W_x", "W_h", "b")})
    # 4H rows: a W_x with 3H rows (a GRU's) is refused with the expected shape
    with pytest.raises(
        ValueError, match=r"params\['W_x'\] must have shape \(20, 4\), got \(15, 4\)"
    ):
        lstm_step_forward(x, (h0, c0), {**p, "W_x": p["W_x"][:15]})
    with pytest.raises(ValueError, match=r"params\['b'\] must have shape \(20,\), got \(5,\)"):
        lstm_step_forward(x, (h0, c0), {**p, "b": p["b"][:5]})
    with pytest.raises(ValueError, match=r"params\['w_cf'\] must have shape \(5,\), got \(1, 5\)"):
        lstm_peephole_step_forward(x, (h0, c0), {**p, "w_cf": p["w_cf"][None]})
    with pytest.raises(TypeError, match=r"params must be a dict"):
        lstm_step_forward(x, (h0, c0), list(p.values()))


def test_sequence_errors(good):
    x, (h0, c0), p = good["x"], good["state"], good["params"]
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, got shape \(2, 4\)"):
        lstm_forward(x[:, 0], (h0, c0), p)
    with pytest.raises(ValueError, match=r"x has batch size 2 but h0 has 3"):
        lstm_forward(x, (np.zeros((3, 5)), np.zeros((3, 5))), p)
    with pytest.raises(ValueError, match=r"h0 and c0 must have the same shape"):
        lstm_forward(x, (h0, c0[:, :2]), p)
    with pytest.raises(ValueError, match=r"T = 0"):
        lstm_forward(x[:, :0], (h0, c0), p)
    with pytest.raises(
        ValueError, match=r"params\['W_h'\] must have shape \(20, 5\), got \(5, 20\)"
    ):
        lstm_forward(x, (h0, c0), {**p, "W_h": p["W_h"].T})
    with pytest.raises(ValueError, match=r"params\['W_x'\] must have shape \(20, 3\)"):
        lstm_forward(x[:, :, :3], (h0, c0), p)  # an input size that disagrees with W_x


def test_backward_errors(good):
    x, (h0, c0), p = good["x"], good["state"], good["params"]
    _, cache = lstm_step_forward(x[:, 0], (h0, c0), p)
    with pytest.raises(ValueError, match=r"dh and dc must have the shape of h and c, \(2, 5\)"):
        lstm_step_backward((np.ones((2, 4)), np.ones((2, 4))), cache)
    with pytest.raises(TypeError, match=r"\(dh, dc\) must be a pair"):
        lstm_step_backward(np.ones((2, 5)), cache)
    _, cache = lstm_forward(x, (h0, c0), p)
    with pytest.raises(
        ValueError, match=r"dhs must have the shape of hs, \(2, 3, 5\), got \(2, 2, 5\)"
    ):
        lstm_backward(np.ones((2, 2, 5)), cache)
    with pytest.raises(ValueError, match=r"dhs must have 3 dimensions"):
        lstm_backward(np.ones((2, 5)), cache)
    with pytest.raises(ValueError, match=r"use lstm_peephole_backward"):
        lstm_backward(np.ones((2, 3, 5)), lstm_peephole_forward(x, (h0, c0), p)[1])
    with pytest.raises(ValueError, match=r"use lstm_backward"):
        lstm_peephole_backward(np.ones((2, 3, 5)), cache)
