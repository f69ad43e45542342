"""rnn_ref.numpy.variants: stacked, bidirectional and multi-layer wrappers over the rnn, lstm and
gru cells, and the RRNN of seed 004 §3.3.

Known values worked by hand; properties over random shapes (hypothesis, with N = 1, T = 1 and
H != D among the examples): a one-layer stack is the cell, the two halves of a bidirectional
output are the cell run forward and on the reversed sequence, multi-layer = stacked /
bidirectional composed, time reversal swaps the directions, the RRNN's hidden states are a
plain RNN's (its "auxiliary recurrence" does not recur); numerical gradient checks in float64 of
every output of every backward; no input modified; error messages. Parity with torch.nn's
multi-layer, bidirectional modules and with torch autograd is in test_torch_variants.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    gru_forward,
    lstm_forward,
    numerical_gradient,
    rnn_forward,
)
from rnn_ref.numpy.variants import (
    bidirectional_backward,
    bidirectional_forward,
    multilayer_backward,
    multilayer_forward,
    rrnn_backward,
    rrnn_forward,
    rrnn_init,
    rrnn_step_backward,
    rrnn_step_forward,
    stacked_backward,
    stacked_forward,
)

CELLS = ["rnn", "lstm", "gru"]
FORWARD = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward}
sizes = st.integers(1, 3)
seeds = st.integers(0, 2**32 - 1)


def sig(a):
    return 1.0 / (1.0 + math.exp(-a))


def cell_params(rng, cell, D, H, scale=0.5):
    """Random params of one cell: weights N(0, scale²/fan_in), biases N(0, scale²)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    W_x = rng.standard_normal((G * H, D)) * scale / np.sqrt(D)
    W_h = rng.standard_normal((G * H, H)) * scale / np.sqrt(H)
    b = rng.standard_normal(G * H) * scale
    if cell == "rnn":
        return {"W_xh": W_x, "W_hh": W_h, "b_h": b}
    if cell == "lstm":
        return {"W_x": W_x, "W_h": W_h, "b": b}
    return {"W_x": W_x, "W_h": W_h, "b_x": b, "b_h": rng.standard_normal(G * H) * scale}


def cell_state(rng, cell, N, H):
    if cell == "lstm":
        return (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
    return rng.standard_normal((N, H))


def state_arrays(state):
    """The arrays of a state, as a list (one for rnn/gru, two for lstm)."""
    return list(state) if isinstance(state, tuple) else [state]


def rebuild(state, arrays):
    return tuple(arrays) if isinstance(state, tuple) else arrays[0]


def rrnn_data(seed, N, T, D, H, R, O):
    rng = np.random.default_rng(seed)
    params = rrnn_init(D, H, R, O, rng)
    # larger than the init's U(-1/sqrt H, 1/sqrt H), so every term matters in the checks
    params = {k: 2.0 * v for k, v in params.items()}
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    dhs = rng.standard_normal((N, T, H))
    dos = rng.standard_normal((N, T, O))
    return x, h0, params, dhs, dos


def examples(f):
    """Edge cases every property sees: N = 1, T = 1, H != D."""
    f = example(N=1, T=1, D=1, H=1, seed=0)(f)
    f = example(N=1, T=1, D=3, H=2, seed=1)(f)
    f = example(N=2, T=4, D=2, H=3, seed=2)(f)
    return f


# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def scalar_rnn(w_x, w_h=0.0, b=0.0):
    return {"W_xh": np.array([[w_x]]), "W_hh": np.array([[w_h]]), "b_h": np.array([b])}


def test_stacked_known_values():
    # two scalar tanh layers, T = 1, h0 = 0: h1 = tanh(0.5 x), h2 = tanh(2 h1 + 0.1)
    x = np.array([[[0.8]]])
    layers = [scalar_rnn(0.5), scalar_rnn(2.0, b=0.1)]
    hs, cache = stacked_forward(x, [np.zeros((1, 1))] * 2, layers)
    h1 = math.tanh(0.4)
    h2 = math.tanh(2 * h1 + 0.1)
    np.testing.assert_allclose(hs, [[[h2]]], rtol=1e-15)
    # backward with dhs = 1: da2 = 1 - h2², dh1 = 2 da2, da1 = dh1 (1 - h1²), dx = 0.5 da1
    dx, dstates, grads = stacked_backward(np.ones((1, 1, 1)), cache)
    da2 = 1 - h2**2
    da1 = 2 * da2 * (1 - h1**2)
    np.testing.assert_allclose(dx, [[[0.5 * da1]]], rtol=1e-14)
    np.testing.assert_allclose(grads[1]["W_xh"], [[da2 * h1]], rtol=1e-14)
    np.testing.assert_allclose(grads[0]["W_xh"], [[da1 * 0.8]], rtol=1e-14)
    np.testing.assert_allclose(grads[1]["b_h"], [da2], rtol=1e-14)
    assert len(dstates) == 2 and all(d.shape == (1, 1) and d[0, 0] == 0 for d in dstates)


def test_bidirectional_known_values():
    # D = H = 1, T = 2, h0 = 0, W_xh = W_hh = 1, b = 0, x = (x0, x1) = (0.3, -0.7).
    # forward:  h_0 = tanh(x0),            h_1 = tanh(x1 + tanh(x0))
    # reverse (reads x1 then x0; stored at the position it has just read):
    #           position 1 = tanh(x1),     position 0 = tanh(x0 + tanh(x1))
    x0, x1 = 0.3, -0.7
    x = np.array([[[x0], [x1]]])
    p = scalar_rnn(1.0, 1.0)
    hs, _ = bidirectional_forward(x, (np.zeros((1, 1)),) * 2, (p, p))
    want = [
        [math.tanh(x0), math.tanh(x0 + math.tanh(x1))],
        [math.tanh(x1 + math.tanh(x0)), math.tanh(x1)],
    ]
    np.testing.assert_allclose(hs, [want], rtol=1e-15)


def test_multilayer_h_n_known_values():
    # The same bidirectional layer as above as a 1-layer multilayer: h_n[0] is the forward
    # direction's last output (position 1), h_n[1] the reverse one's (position 0).
    x = np.array([[[0.3], [-0.7]]])
    p = scalar_rnn(1.0, 1.0)
    out, h_n, _ = multilayer_forward(x, None, [(p, p)], "rnn", bidirectional=True)
    assert out.shape == (1, 2, 2) and h_n.shape == (2, 1, 1)
    assert h_n[0, 0, 0] == out[0, 1, 0]
    assert h_n[1, 0, 0] == out[0, 0, 1]


def rrnn_scalar_params():
    # D = H = R = O = 1; every weight a distinct number so a swapped term would show.
    v = {
        "W_xh": 0.5, "W_hh": -0.8, "b_h": 0.1,
        "W_xr": 0.7, "W_rr": 0.4, "b_r": -0.2,
        "W_xhp": -0.3, "W_hhp": 0.6, "W_rh": 1.5, "b_hp": 0.05,
        "W_hpo": 1.2, "W_ho": -0.9, "b_o": 0.3,
    }  # fmt: skip
    return {k: np.array([[w]]) if k.startswith("W") else np.array([w]) for k, w in v.items()}, v


def test_rrnn_step_known_values():
    params, v = rrnn_scalar_params()
    x, hp_ = 2.0, -0.5  # x_t and h_{t-1}
    h = math.tanh(v["W_hh"] * hp_ + v["W_xh"] * x + v["b_h"])
    r = sig(v["W_rr"] * hp_ + v["W_xr"] * x + v["b_r"])
    hprime = math.tanh(v["W_hhp"] * hp_ + v["W_xhp"] * x + v["W_rh"] * r * hp_ + v["b_hp"])
    # the seed's W_ho multiplies h' (code W_hpo), its W_ho' multiplies h (code W_ho)
    o = sig(v["W_hpo"] * hprime + v["W_ho"] * h + v["b_o"])
    (h_got, o_got), cache = rrnn_step_forward(np.array([[x]]), np.array([[hp_]]), params)
    np.testing.assert_allclose(h_got, [[h]], rtol=1e-15)
    np.testing.assert_allclose(o_got, [[o]], rtol=1e-15)
    # backward with dh = 0, do = 1, by the chain rule on the scalars above
    dx, dh_prev, grads = rrnn_step_backward((np.zeros((1, 1)), np.ones((1, 1))), cache)
    da_o = o * (1 - o)
    da_hp = da_o * v["W_hpo"] * (1 - hprime**2)
    da_h = da_o * v["W_ho"] * (1 - h**2)
    da_r = da_hp * hp_ * v["W_rh"] * r * (1 - r)
    np.testing.assert_allclose(grads["b_o"], [da_o], rtol=1e-14)
    np.testing.assert_allclose(grads["W_hpo"], [[da_o * hprime]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_ho"], [[da_o * h]], rtol=1e-14)
    np.testing.assert_allclose(grads["W_rh"], [[da_hp * hp_ * r]], rtol=1e-14)
    np.testing.assert_allclose(grads["b_r"], [da_r], rtol=1e-14)
    np.testing.assert_allclose(
        dx, [[da_h * v["W_xh"] + da_r * v["W_xr"] + da_hp * v["W_xhp"]]], rtol=1e-14
    )
    np.testing.assert_allclose(
        dh_prev,
        [[da_h * v["W_hh"] + da_r * v["W_rr"] + da_hp * (v["W_hhp"] + v["W_rh"] * r)]],
        rtol=1e-14,
    )


def test_rrnn_init_shapes_and_range():
    p = rrnn_init(2, 3, 4, 5, np.random.default_rng(0))
    want = {
        "W_xh": (3, 2), "W_hh": (3, 3), "b_h": (3,),
        "W_xr": (4, 2), "W_rr": (4, 3), "b_r": (4,),
        "W_xhp": (3, 2), "W_hhp": (3, 3), "W_rh": (3, 4), "b_hp": (3,),
        "W_hpo": (5, 3), "W_ho": (5, 3), "b_o": (5,),
    }  # fmt: skip
    assert {k: v.shape for k, v in p.items()} == want
    assert all(v.dtype == np.float64 and np.abs(v).max() <= 1 / np.sqrt(3) for v in p.values())
    q = rrnn_init(2, 3, 4, 5, 0)  # a seed works too, and is reproducible
    assert all(np.array_equal(q[k], rrnn_init(2, 3, 4, 5, 0)[k]) for k in q)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_one_layer_stack_is_the_cell(cell, N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    p, s = cell_params(rng, cell, D, H), cell_state(rng, cell, N, H)
    hs, _ = stacked_forward(x, [s], [p], cell)
    np.testing.assert_array_equal(hs, FORWARD[cell](x, s, p)[0])


@pytest.mark.parametrize("cell", CELLS)
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_bidirectional_halves_are_the_cell_forward_and_on_reversed_input(cell, N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    pf, pr = cell_params(rng, cell, D, H), cell_params(rng, cell, D, H + 1)
    sf, sr = cell_state(rng, cell, N, H), cell_state(rng, cell, N, H + 1)
    hs, _ = bidirectional_forward(x, (sf, sr), (pf, pr), cell)
    assert hs.shape == (N, T, 2 * H + 1)  # the two directions may even differ in size
    np.testing.assert_allclose(hs[..., :H], FORWARD[cell](x, sf, pf)[0], rtol=0, atol=1e-15)
    rev = FORWARD[cell](x[:, ::-1], sr, pr)[0][:, ::-1]
    np.testing.assert_allclose(hs[..., H:], rev, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_time_reversal_swaps_the_directions(cell, N, T, D, H, seed):
    # Reversing x and swapping the two directions' parameters and states reverses the output
    # in time and swaps its halves.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    pf, pr = cell_params(rng, cell, D, H), cell_params(rng, cell, D, H)
    sf, sr = cell_state(rng, cell, N, H), cell_state(rng, cell, N, H)
    hs, _ = bidirectional_forward(x, (sf, sr), (pf, pr), cell)
    hs2, _ = bidirectional_forward(x[:, ::-1], (sr, sf), (pr, pf), cell)
    swapped = np.concatenate([hs2[..., H:], hs2[..., :H]], axis=2)[:, ::-1]
    np.testing.assert_allclose(swapped, hs, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L", [1, 2, 3])
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_multilayer_is_stacked_and_bidirectional_composed(cell, L, N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    # unidirectional: multilayer_forward = stacked_forward with the states of torch's layout
    layers = [cell_params(rng, cell, D if k == 0 else H, H) for k in range(L)]
    states = [cell_state(rng, cell, N, H) for _ in range(L)]
    h0 = rebuild(states[0], [np.stack(a) for a in zip(*map(state_arrays, states), strict=True)])
    out, h_n, _ = multilayer_forward(x, h0, layers, cell)
    np.testing.assert_array_equal(out, stacked_forward(x, states, layers, cell)[0])
    np.testing.assert_array_equal(state_arrays(h_n)[0][-1], out[:, -1])
    # bidirectional: layer by layer, bidirectional_forward of the previous layer's output
    bi = [tuple(cell_params(rng, cell, D if k == 0 else 2 * H, H) for _ in "fr") for k in range(L)]
    out, h_n, _ = multilayer_forward(x, None, bi, cell, bidirectional=True)
    assert out.shape == (N, T, 2 * H)
    assert all(a.shape == (2 * L, N, H) for a in state_arrays(h_n))
    inp = x
    zero = cell_state(rng, cell, N, H)
    zero = rebuild(zero, [np.zeros((N, H)) for _ in state_arrays(zero)])
    for k in range(L):
        inp, _ = bidirectional_forward(inp, (zero, zero), bi[k], cell)
        h_last = state_arrays(h_n)[0]
        np.testing.assert_array_equal(h_last[2 * k], inp[:, -1, :H])
        np.testing.assert_array_equal(h_last[2 * k + 1], inp[:, 0, H:])
    np.testing.assert_allclose(out, inp, rtol=0, atol=1e-15)


@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_rrnn_hidden_states_are_a_plain_rnn(N, T, D, H, seed):
    # Read literally, the seed's RRNN never feeds r_t or h'_t back: its h_t is the tanh RNN's.
    x, h0, params, _, _ = rrnn_data(seed, N, T, D, H, R=H + 1, O=2)
    (hs, os), _ = rrnn_forward(x, h0, params)
    assert hs.shape == (N, T, H) and os.shape == (N, T, 2)
    rnn_hs, _ = rnn_forward(x, h0, {k: params[k] for k in ("W_xh", "W_hh", "b_h")})
    np.testing.assert_allclose(hs, rnn_hs, rtol=0, atol=1e-15)
    assert np.all((os > 0) & (os < 1))
    # so the "auxiliary" parameters change the outputs but never the hidden states
    other = dict(params, W_rr=-params["W_rr"], W_rh=params["W_rh"] + 1, W_hhp=-params["W_hhp"])
    (hs2, os2), _ = rrnn_forward(x, h0, other)
    np.testing.assert_array_equal(hs2, hs)
    assert not np.allclose(os2, os)


@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_rrnn_forward_is_the_step_looped(N, T, D, H, seed):
    x, h, params, dhs, dos = rrnn_data(seed, N, T, D, H, R=2, O=3)
    (hs, os), cache = rrnn_forward(x, h, params)
    caches = []
    for t in range(T):
        (h, o), c = rrnn_step_forward(x[:, t], h, params)
        caches.append(c)
        np.testing.assert_allclose(hs[:, t], h, rtol=0, atol=1e-15)
        np.testing.assert_allclose(os[:, t], o, rtol=0, atol=1e-15)
    # and backward is the step backward looped, the gradients summed
    dx, dh0, grads = rrnn_backward((dhs, dos), cache)
    dh = np.zeros_like(h)
    total = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(T - 1, -1, -1):
        dx_t, dh, g = rrnn_step_backward((dhs[:, t] + dh, dos[:, t]), caches[t])
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-12, atol=1e-14)
        for k in total:
            total[k] += g[k]
    np.testing.assert_allclose(dh0, dh, rtol=1e-12, atol=1e-14)
    for k in total:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-12, atol=1e-14, err_msg=k)


# ---------------------------------------------------------------------------------------------
# Numerical gradient checks (float64)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("N", "T", "D", "sizes_"), [(1, 1, 3, (2, 4)), (2, 3, 2, (3, 1, 2))])
def test_stacked_backward_numerically(assert_grad, cell, N, T, D, sizes_):
    rng = np.random.default_rng(0)
    Hs = list(sizes_)  # sizes differ per layer
    ins = [D, *Hs[:-1]]
    layers = [cell_params(rng, cell, i, h) for i, h in zip(ins, Hs, strict=True)]
    states = [cell_state(rng, cell, N, h) for h in Hs]
    x = rng.standard_normal((N, T, D))
    hs, cache = stacked_forward(x, states, layers, cell)
    assert hs.shape == (N, T, Hs[-1])
    dhs = rng.standard_normal(hs.shape)
    dx, dstates, grads = stacked_backward(dhs, cache)

    def run(x=x, states=states, layers=layers):
        return stacked_forward(x, states, layers, cell)[0]

    assert_grad(dx, numerical_gradient(lambda a: run(x=a), x, dhs), "dx")
    for k in range(len(Hs)):
        for i, a in enumerate(state_arrays(states[k])):

            def f(a, k=k, i=i):
                s = state_arrays(states[k])
                s[i] = a
                return run(states=[*states[:k], rebuild(states[k], s), *states[k + 1 :]])

            got = state_arrays(dstates[k])[i]
            assert_grad(got, numerical_gradient(f, a, dhs), f"dstate[{k}][{i}]")
        for name, w in layers[k].items():

            def g(w, k=k, name=name):
                return run(layers=[*layers[:k], dict(layers[k], **{name: w}), *layers[k + 1 :]])

            assert_grad(grads[k][name], numerical_gradient(g, w, dhs), f"layer {k} d{name}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("N", "T", "D", "H"), [(1, 1, 3, 2), (2, 4, 2, 3)])
def test_bidirectional_backward_numerically(assert_grad, cell, N, T, D, H):
    rng = np.random.default_rng(1)
    params = (cell_params(rng, cell, D, H), cell_params(rng, cell, D, H))
    states = (cell_state(rng, cell, N, H), cell_state(rng, cell, N, H))
    x = rng.standard_normal((N, T, D))
    hs, cache = bidirectional_forward(x, states, params, cell)
    dhs = rng.standard_normal(hs.shape)
    dx, dstates, grads = bidirectional_backward(dhs, cache)
    assert dx.shape == x.shape and len(dstates) == 2 and len(grads) == 2

    def run(x=x, states=states, params=params):
        return bidirectional_forward(x, states, params, cell)[0]

    assert_grad(dx, numerical_gradient(lambda a: run(x=a), x, dhs), "dx")
    for d in (0, 1):
        for i, a in enumerate(state_arrays(states[d])):

            def f(a, d=d, i=i):
                s = state_arrays(states[d])
                s[i] = a
                new = list(states)
                new[d] = rebuild(states[d], s)
                return run(states=tuple(new))

            got = state_arrays(dstates[d])[i]
            assert_grad(got, numerical_gradient(f, a, dhs), f"direction {d} dstate[{i}]")
        for name, w in params[d].items():

            def g(w, d=d, name=name):
                new = list(params)
                new[d] = dict(params[d], **{name: w})
                return run(params=tuple(new))

            assert_grad(grads[d][name], numerical_gradient(g, w, dhs), f"direction {d} d{name}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("N", "T", "D", "H", "L"), [(1, 1, 3, 2, 2), (2, 3, 2, 3, 3)])
def test_multilayer_backward_numerically(assert_grad, cell, bidirectional, N, T, D, H, L):
    rng = np.random.default_rng(2)
    dirs = 2 if bidirectional else 1

    def layer(k):
        D_k = D if k == 0 else dirs * H
        if bidirectional:
            return (cell_params(rng, cell, D_k, H), cell_params(rng, cell, D_k, H))
        return cell_params(rng, cell, D_k, H)

    layers = [layer(k) for k in range(L)]
    n_states = 2 if cell == "lstm" else 1
    h0 = [rng.standard_normal((L * dirs, N, H)) for _ in range(n_states)]
    x = rng.standard_normal((N, T, D))
    out, h_n, cache = multilayer_forward(x, rebuild_h0(h0), layers, cell, bidirectional)
    dout = rng.standard_normal(out.shape)
    dh_n = rng.standard_normal((L * dirs, N, H))
    dx, dh0, grads = multilayer_backward(dout, cache, dh_n)

    def loss(x=x, h0=h0, layers=layers):
        o, hn, _ = multilayer_forward(x, rebuild_h0(h0), layers, cell, bidirectional)
        return np.sum(o * dout) + np.sum(state_arrays(hn)[0] * dh_n)

    assert_grad(dx, numerical_gradient(lambda a: loss(x=a), x), "dx")
    for i in range(n_states):

        def f(a, i=i):
            return loss(h0=[a if j == i else h0[j] for j in range(n_states)])

        assert_grad(state_arrays(dh0)[i], numerical_gradient(f, h0[i]), f"dh0[{i}]")
    for k in range(L):
        for d in range(dirs):
            p = layers[k][d] if bidirectional else layers[k]
            g_k = grads[k][d] if bidirectional else grads[k]
            for name, w in p.items():

                def g(w, k=k, d=d, name=name):
                    new = copy.copy(layers)
                    if bidirectional:
                        pair = list(layers[k])
                        pair[d] = dict(pair[d], **{name: w})
                        new[k] = tuple(pair)
                    else:
                        new[k] = dict(layers[k], **{name: w})
                    return loss(layers=new)

                assert_grad(g_k[name], numerical_gradient(g, w), f"layer {k} dir {d} d{name}")
    # without dh_n: the same as dh_n = 0
    dx0, _, _ = multilayer_backward(dout, cache)
    np.testing.assert_array_equal(dx0, multilayer_backward(dout, cache, 0 * dh_n)[0])


def rebuild_h0(arrays):
    return tuple(arrays) if len(arrays) == 2 else arrays[0]


@pytest.mark.parametrize(("N", "D", "H", "R", "O"), [(1, 3, 2, 1, 4), (3, 2, 3, 2, 1)])
def test_rrnn_step_backward_numerically(assert_grad, N, D, H, R, O):
    x, h_prev, params, dhs, dos = rrnn_data(3, N, 1, D, H, R, O)
    x, dh, do = x[:, 0], dhs[:, 0], dos[:, 0]
    _, cache = rrnn_step_forward(x, h_prev, params)
    dx, dh_prev, grads = rrnn_step_backward((dh, do), cache)
    assert grads.keys() == params.keys()

    def loss(x=x, h_prev=h_prev, params=params):
        (h, o), _ = rrnn_step_forward(x, h_prev, params)
        return np.sum(h * dh) + np.sum(o * do)

    assert_grad(dx, numerical_gradient(lambda a: loss(x=a), x), "dx")
    assert_grad(dh_prev, numerical_gradient(lambda a: loss(h_prev=a), h_prev), "dh_prev")
    for k, w in params.items():
        num = numerical_gradient(lambda a, k=k: loss(params=dict(params, **{k: a})), w)
        assert_grad(grads[k], num, f"d{k}")


@pytest.mark.parametrize(("N", "T", "D", "H", "R", "O"), [(1, 1, 3, 2, 1, 4), (2, 4, 2, 3, 2, 2)])
def test_rrnn_backward_numerically(assert_grad, N, T, D, H, R, O):
    x, h0, params, dhs, dos = rrnn_data(4, N, T, D, H, R, O)
    _, cache = rrnn_forward(x, h0, params)
    dx, dh0, grads = rrnn_backward((dhs, dos), cache)
    assert grads.keys() == params.keys()

    def loss(x=x, h0=h0, params=params):
        (hs, os), _ = rrnn_forward(x, h0, params)
        return np.sum(hs * dhs) + np.sum(os * dos)

    assert_grad(dx, numerical_gradient(lambda a: loss(x=a), x), "dx")
    assert_grad(dh0, numerical_gradient(lambda a: loss(h0=a), h0), "dh0")
    for k, w in params.items():
        num = numerical_gradient(lambda a, k=k: loss(params=dict(params, **{k: a})), w)
        assert_grad(grads[k], num, f"d{k}")


# ---------------------------------------------------------------------------------------------
# No input modified
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_no_input_modified(assert_unchanged, cell):
    rng = np.random.default_rng(5)
    N, T, D, H = 2, 3, 2, 3
    x = rng.standard_normal((N, T, D))
    layers = [cell_params(rng, cell, D, H), cell_params(rng, cell, H, H)]
    states = [cell_state(rng, cell, N, H) for _ in range(2)]
    args = (x, states, layers)
    before = copy.deepcopy(args)
    hs, cache = stacked_forward(*args, cell)
    dhs = rng.standard_normal(hs.shape)
    dhs_before = dhs.copy()
    stacked_backward(dhs, cache)
    assert_unchanged(before, args)
    assert_unchanged(dhs_before, dhs)

    pair = ((layers[0], cell_params(rng, cell, D, H)), (states[0], states[1]))
    before = copy.deepcopy(pair)
    hs, cache = bidirectional_forward(x, pair[1], pair[0], cell)
    dhs = rng.standard_normal(hs.shape)
    dhs_before = dhs.copy()
    bidirectional_backward(dhs, cache)
    assert_unchanged(before, pair)
    assert_unchanged(dhs_before, dhs)

    h0 = rng.standard_normal((4, N, H))
    h0 = (h0, h0 + 1) if cell == "lstm" else h0
    bi = [pair[0], (cell_params(rng, cell, 2 * H, H), cell_params(rng, cell, 2 * H, H))]
    before = copy.deepcopy((x, h0, bi))
    out, _, cache = multilayer_forward(x, h0, bi, cell, bidirectional=True)
    dout, dh_n = rng.standard_normal(out.shape), rng.standard_normal((4, N, H))
    grads_before = copy.deepcopy((dout, dh_n))
    first = multilayer_backward(dout, cache, dh_n)
    assert_unchanged(before, (x, h0, bi))
    assert_unchanged(grads_before, (dout, dh_n))
    assert_unchanged(first, multilayer_backward(dout, cache, dh_n))  # so it can run twice


def test_rrnn_no_input_modified(assert_unchanged):
    x, h0, params, dhs, dos = rrnn_data(6, 2, 3, 2, 3, 2, 2)
    before = copy.deepcopy((x, h0, params, dhs, dos))
    (hs, os), cache = rrnn_forward(x, h0, params)
    first = rrnn_backward((dhs, dos), cache)
    assert_unchanged(first, rrnn_backward((dhs, dos), cache))
    (h, o), c = rrnn_step_forward(x[:, 0], h0, params)
    rrnn_step_backward((dhs[:, 0], dos[:, 0]), c)
    assert_unchanged(before, (x, h0, params, dhs, dos))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_wrapper_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 3))
    p0, p1 = cell_params(rng, "rnn", 3, 2), cell_params(rng, "rnn", 2, 2)
    z = np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"cell must be one of 'rnn', 'lstm', 'gru', got 'elman'"):
        stacked_forward(x, [z], [p0], cell="elman")
    with pytest.raises(ValueError, match=r"cell must be one of"):
        bidirectional_forward(x, (z, z), (p0, p0), cell="LSTM")
    with pytest.raises(ValueError, match=r"cell must be one of"):
        multilayer_forward(x, None, [p0], cell=None)
    with pytest.raises(ValueError, match=r"states must have 2 entries \(one initial state per"):
        stacked_forward(x, [z], [p0, p1])
    with pytest.raises(ValueError, match=r"layers is empty"):
        stacked_forward(x, [], [])
    with pytest.raises(TypeError, match=r"layers must be a list"):
        stacked_forward(x, [z], p0)
    # layer 1 built for the wrong input size: the message names the layer and the parameter
    with pytest.raises(ValueError, match=r"layer 1: params\['W_xh'\] must have shape \(2, 2\)"):
        stacked_forward(x, [z, z], [p0, cell_params(rng, "rnn", 3, 2)])
    with pytest.raises(ValueError, match=r"layer 0: x has batch size 1 but h0 has 2"):
        stacked_forward(x, [np.zeros((2, 2))], [p0])
    with pytest.raises(ValueError, match=r"x must have 3 dimensions"):
        stacked_forward(x[0], [z], [p0])
    with pytest.raises(TypeError, match=r"states must be a pair \(forward, reverse\)"):
        bidirectional_forward(x, z, (p0, p0))
    with pytest.raises(TypeError, match=r"params must be a pair \(forward, reverse\)"):
        bidirectional_forward(x, (z, z), p0)
    with pytest.raises(KeyError, match=r"reverse: params is missing 'b_h'"):
        bidirectional_forward(x, (z, z), (p0, {"W_xh": p0["W_xh"], "W_hh": p0["W_hh"]}))
    with pytest.raises(TypeError, match=r"layer 0: \(h0, c0\) must be a pair"):
        stacked_forward(x, [z], [cell_params(rng, "lstm", 3, 2)], cell="lstm")


def test_multilayer_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 3))
    p0, p1 = cell_params(rng, "gru", 3, 2), cell_params(rng, "gru", 2, 2)
    with pytest.raises(ValueError, match=r"h0 must be .* = \(2, 1, 2\), got \(1, 1, 2\)"):
        multilayer_forward(x, np.zeros((1, 1, 2)), [p0, p1], "gru")
    with pytest.raises(ValueError, match=r"h0 must be .* = \(4, 1, 2\), got \(2, 1, 2\)"):
        multilayer_forward(x, np.zeros((2, 1, 2)), [(p0, p0), (p1, p1)], "gru", True)
    with pytest.raises(TypeError, match=r"layers\[1\] \(bidirectional\) must be a pair"):
        multilayer_forward(x, None, [(p0, p0), p1], "gru", bidirectional=True)
    with pytest.raises(TypeError, match=r"layers\[0\] must be a params dict"):
        multilayer_forward(x, None, [(p0, p0)], "gru")
    # layer 1 of a bidirectional stack reads 2H = 4 features, not 2
    with pytest.raises(ValueError, match=r"layer 1, forward: params\['W_x'\] must have shape"):
        multilayer_forward(x, None, [(p0, p0), (p1, p1)], "gru", bidirectional=True)
    with pytest.raises(ValueError, match=r"layers is empty"):
        multilayer_forward(x, None, [], "gru")
    lstm = cell_params(rng, "lstm", 3, 2)
    with pytest.raises(TypeError, match=r"h0 of an lstm must be a pair \(h0, c0\)"):
        multilayer_forward(x, np.zeros((1, 1, 2)), [lstm], "lstm")
    with pytest.raises(ValueError, match=r"c0 must be"):
        multilayer_forward(x, (np.zeros((1, 1, 2)), np.zeros((1, 2, 2))), [lstm], "lstm")
    out, _, cache = multilayer_forward(x, None, [lstm], "lstm")
    with pytest.raises(TypeError, match=r"a loss on c_n is not supported"):
        multilayer_backward(out, cache, (np.zeros((1, 1, 2)),) * 2)
    with pytest.raises(ValueError, match=r"dh_n must have the shape of h_n, \(1, 1, 2\)"):
        multilayer_backward(out, cache, np.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match=r"dout must have the shape of the output, \(1, 2, 2\)"):
        multilayer_backward(out[:, :1], cache)
    with pytest.raises(ValueError, match=r"cache must come from multilayer_forward"):
        multilayer_backward(out, stacked_forward(x, [np.zeros((1, 2))], [p0], "gru")[1])
    with pytest.raises(ValueError, match=r"cache must come from stacked_forward"):
        stacked_backward(out, cache)
    with pytest.raises(ValueError, match=r"cache must come from bidirectional_forward"):
        bidirectional_backward(out, cache)
    hs, cache = bidirectional_forward(x, (np.zeros((1, 2)),) * 2, (p0, p0), "gru")
    with pytest.raises(ValueError, match=r"dhs must have the shape of the output, \(1, 2, 4\)"):
        bidirectional_backward(hs[..., :2], cache)


def test_rrnn_errors():
    x, h0, params, dhs, dos = rrnn_data(0, 1, 2, 3, 2, 2, 1)
    with pytest.raises(KeyError, match=r"params is missing 'W_rh'"):
        rrnn_forward(x, h0, {k: v for k, v in params.items() if k != "W_rh"})
    with pytest.raises(
        ValueError, match=r"params\['W_rh'\] must have shape \(2, 2\), got \(2, 3\)"
    ):
        rrnn_forward(x, h0, dict(params, W_rh=np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"params\['W_xr'\] must have shape \(2, 3\)"):
        rrnn_forward(x, h0, dict(params, W_xr=np.zeros((3, 3))))
    with pytest.raises(ValueError, match=r"params\['W_ho'\] must have shape \(any, 2\)"):
        rrnn_forward(x, h0, dict(params, W_ho=np.zeros((1, 3))))
    with pytest.raises(ValueError, match=r"x has batch size 1 but h0 has 2"):
        rrnn_forward(x, np.zeros((2, 2)), params)
    with pytest.raises(ValueError, match=r"T = 0"):
        rrnn_forward(x[:, :0], h0, params)
    with pytest.raises(ValueError, match=r"x must have 2 dimensions"):
        rrnn_step_forward(x, h0, params)
    with pytest.raises(TypeError, match=r"params must be a dict"):
        rrnn_forward(x, h0, list(params.values()))
    _, cache = rrnn_forward(x, h0, params)
    with pytest.raises(TypeError, match=r"dout must be a pair \(dhs, dos\)"):
        rrnn_backward(dhs, cache)
    with pytest.raises(ValueError, match=r"dos must have the shape of os, \(1, 2, 1\)"):
        rrnn_backward((dhs, dhs), cache)
    _, cache = rrnn_step_forward(x[:, 0], h0, params)
    with pytest.raises(ValueError, match=r"dh must have the shape of h, \(1, 2\)"):
        rrnn_step_backward((dos[:, 0], dos[:, 0]), cache)
    with pytest.raises(ValueError, match=r"R must be a positive integer, got 0"):
        rrnn_init(1, 2, 0, 1)
