"""Parity of rnn_ref's LSTM (NumPy and torch backends) with torch.nn.LSTM, and of the NumPy
peephole LSTM with an independent autograd implementation.

- rnn_ref.numpy.lstm forward and backward against torch.nn.LSTM's outputs, h_n, c_n and autograd
  gradients (x, h0, c0 and all weights), parameters moved by rnn_ref.convert.from_torch
  (float64, to 1e-10);
- rnn_ref.torch.LSTM loads torch.nn.LSTM's state_dict with strict=True and vice versa, and gives
  the same outputs and gradients (losses on hs, h_n and c_n); lstm_forward equals looping
  lstm_step;
- the peephole LSTM (there is none in torch.nn) against autograd on a torch version written here;
- on CUDA (skipped without a GPU): the same parity in float64 and float32 with TF32 off.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given
from parity import (
    TOL,
    assert_close,
    assert_state_dicts_load_both_ways,
    seeds,
    shapes_examples,
    sizes,
)
from torch import nn

import rnn_ref.numpy as rnp
from rnn_ref.convert import from_torch
from rnn_ref.torch import LSTM, lstm_forward, lstm_step


def torch_lstm(D, H, seed, bias=True, dtype=torch.float64, cls=None):
    """A torch.nn.LSTM (or ``cls``) with torch's default initialisation, seeded."""
    torch.manual_seed(seed)
    if cls is None:
        return nn.LSTM(D, H, bias=bias, batch_first=True, dtype=dtype)
    return cls(D, H, bias=bias, dtype=dtype)


def inputs(seed, N, T, D, H, dtype=torch.float64):
    """x (N, T, D), h0 and c0 (1, N, H), upstream gradients for hs, h_n and c_n."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return (
        randn(N, T, D),
        randn(1, N, H),
        randn(1, N, H),
        randn(N, T, H),
        randn(1, N, H),
        randn(1, N, H),
    )


def run_with_grads(module, x, h0, c0, dout, dhn, dcn):
    """Forward and backward of sum(dout * hs) + sum(dhn * h_n) + sum(dcn * c_n)."""
    module.zero_grad()
    x, h0, c0 = (t.clone().requires_grad_(True) for t in (x, h0, c0))
    out, (hn, cn) = module(x, (h0, c0))
    ((out * dout).sum() + (hn * dhn).sum() + (cn * dcn).sum()).backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    return out.detach(), hn.detach(), cn.detach(), x.grad, h0.grad, c0.grad, grads


NAMES = ("out", "h_n", "c_n", "dx", "dh0", "dc0")


# ---------------------------------------------------------------------------------------------
# rnn_ref.numpy vs torch.nn.LSTM, weights through from_torch
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_numpy_matches_torch_nn_lstm(N, T, D, H, seed):
    ref = torch_lstm(D, H, seed)
    params = from_torch(ref)
    assert params.keys() == {"W_x", "W_h", "b"}
    assert all(v.dtype == np.float64 for v in params.values())
    x, h0, c0, dout, dhn, _ = inputs(seed, N, T, D, H)
    # lstm_backward takes gradients for hs only (h_n = h_T joins the last step's); a loss on c_n
    # is tested on rnn_ref.torch.LSTM below.
    out, hn, cn, dx_t, dh0_t, dc0_t, g = run_with_grads(
        ref, x, h0, c0, dout, dhn, torch.zeros(1, N, H, dtype=torch.float64)
    )

    hs, cache = rnp.lstm_forward(x.numpy(), (h0[0].numpy(), c0[0].numpy()), params)
    assert_close(hs, out, TOL, "hs")
    assert_close(hs[:, -1], hn[0], TOL, "h_n")
    assert_close(cache[4][:, -1], cn[0], TOL, "c_n (the cache's last cell state)")
    dhs = dout.numpy().copy()
    dhs[:, -1] += dhn[0].numpy()
    dx, (dh0, dc0), grads = rnp.lstm_backward(dhs, cache)
    assert_close(dx, dx_t, TOL, "dx")
    assert_close(dh0, dh0_t[0], TOL, "dh0")
    assert_close(dc0, dc0_t[0], TOL, "dc0")
    assert_close(grads["W_x"], g["weight_ih_l0"], TOL, "dW_x vs weight_ih_l0.grad")
    assert_close(grads["W_h"], g["weight_hh_l0"], TOL, "dW_h vs weight_hh_l0.grad")
    # b = bias_ih + bias_hh, so each of torch's two biases receives the whole of db
    assert_close(grads["b"], g["bias_ih_l0"], TOL, "db vs bias_ih_l0.grad")
    assert_close(grads["b"], g["bias_hh_l0"], TOL, "db vs bias_hh_l0.grad")

    # the step function agrees with torch's first step
    (h1, c1), _ = rnp.lstm_step_forward(x[:, 0].numpy(), (h0[0].numpy(), c0[0].numpy()), params)
    _, (h1_t, c1_t) = ref(x[:, :1], (h0, c0))
    assert_close(h1, h1_t[0], TOL, "step h")
    assert_close(c1, c1_t[0], TOL, "step c")


def test_numpy_step_matches_torch_autograd_with_loss_on_c():
    N, D, H = 3, 4, 5
    ref = torch_lstm(D, H, 0)
    params = from_torch(ref)
    x, h0, c0, dout, dhn, dcn = inputs(0, N, 1, D, H)
    out, hn, cn, dx_t, dh0_t, dc0_t, g = run_with_grads(ref, x, h0, c0, dout, dhn, dcn)
    (h, c), cache = rnp.lstm_step_forward(x[:, 0].numpy(), (h0[0].numpy(), c0[0].numpy()), params)
    assert_close(h, hn[0], TOL, "h")
    assert_close(c, cn[0], TOL, "c")
    dx, (dh_prev, dc_prev), grads = rnp.lstm_step_backward(
        ((dout[:, 0] + dhn[0]).numpy(), dcn[0].numpy()), cache
    )
    assert_close(dx, dx_t[:, 0], TOL, "dx")
    assert_close(dh_prev, dh0_t[0], TOL, "dh_prev")
    assert_close(dc_prev, dc0_t[0], TOL, "dc_prev (with a loss on c)")
    assert_close(grads["W_x"], g["weight_ih_l0"], TOL, "dW_x")
    assert_close(grads["W_h"], g["weight_hh_l0"], TOL, "dW_h")
    assert_close(grads["b"], g["bias_ih_l0"], TOL, "db")


def test_numpy_matches_torch_nn_lstm_without_bias():
    N, T, D, H = 2, 3, 4, 5
    ref = torch_lstm(D, H, 0, bias=False)
    params = from_torch(ref)
    np.testing.assert_array_equal(params["b"], np.zeros(4 * H))
    x, h0, c0, dout, _, _ = inputs(0, N, T, D, H)
    zero = torch.zeros(1, N, H, dtype=torch.float64)
    out, _, _, dx_t, dh0_t, dc0_t, g = run_with_grads(ref, x, h0, c0, dout, zero, zero)
    hs, cache = rnp.lstm_forward(x.numpy(), (h0[0].numpy(), c0[0].numpy()), params)
    dx, (dh0, dc0), grads = rnp.lstm_backward(dout.numpy(), cache)
    assert_close(hs, out, TOL, "hs")
    assert_close(dx, dx_t, TOL, "dx")
    assert_close(dh0, dh0_t[0], TOL, "dh0")
    assert_close(dc0, dc0_t[0], TOL, "dc0")
    assert_close(grads["W_x"], g["weight_ih_l0"], TOL, "dW_x")
    assert_close(grads["W_h"], g["weight_hh_l0"], TOL, "dW_h")


# ---------------------------------------------------------------------------------------------
# Peephole LSTM vs an independent autograd implementation
# ---------------------------------------------------------------------------------------------


def torch_peephole_lstm(x, h, c, p):
    """Gers & Schmidhuber's peephole LSTM written directly from the equations, for autograd:
    i = s(W_xi x + W_hi h + b_i + w_ci c_prev), f likewise with w_cf, g = tanh(...),
    c = f c_prev + i g, o = s(W_xo x + W_ho h + b_o + w_co c) (the NEW c), h = o tanh(c)."""
    H = h.shape[1]
    blocks = [slice(k * H, (k + 1) * H) for k in range(4)]
    hs = []
    for t in range(x.shape[1]):
        pre = [x[:, t] @ p["W_x"][s].T + h @ p["W_h"][s].T + p["b"][s] for s in blocks]
        i = torch.sigmoid(pre[0] + p["w_ci"] * c)
        f = torch.sigmoid(pre[1] + p["w_cf"] * c)
        g = torch.tanh(pre[2])
        c = f * c + i * g
        o = torch.sigmoid(pre[3] + p["w_co"] * c)
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, dim=1), c


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_numpy_peephole_matches_autograd(N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    params = {
        "W_x": rng.standard_normal((4 * H, D)) / np.sqrt(D),
        "W_h": rng.standard_normal((4 * H, H)) / np.sqrt(H),
        "b": rng.standard_normal(4 * H) * 0.5,
        **{k: rng.standard_normal(H) for k in ("w_ci", "w_cf", "w_co")},
    }
    x, h0, c0, dout, _, _ = inputs(seed, N, T, D, H)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, h0t, c0t = (t.clone().requires_grad_(True) for t in (x, h0[0], c0[0]))
    out, cn = torch_peephole_lstm(xt, h0t, c0t, tp)
    (out * dout).sum().backward()

    hs, cache = rnp.lstm_peephole_forward(x.numpy(), (h0[0].numpy(), c0[0].numpy()), params)
    assert_close(hs, out, TOL, "peephole hs")
    assert_close(cache[4][:, -1], cn, TOL, "peephole c_T")
    dx, (dh0, dc0), grads = rnp.lstm_peephole_backward(dout.numpy(), cache)
    assert_close(dx, xt.grad, TOL, "peephole dx")
    assert_close(dh0, h0t.grad, TOL, "peephole dh0")
    assert_close(dc0, c0t.grad, TOL, "peephole dc0")
    assert grads.keys() == params.keys()
    for k in params:
        assert_close(grads[k], tp[k].grad, TOL, f"peephole d{k}")


# ---------------------------------------------------------------------------------------------
# rnn_ref.torch: functional forms
# ---------------------------------------------------------------------------------------------


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_torch_lstm_forward_equals_looped_step(N, T, D, H, seed):
    ref = torch_lstm(D, H, seed)
    params = {k: torch.from_numpy(v) for k, v in from_torch(ref).items()}
    x, h0, c0, _, _, _ = inputs(seed, N, T, D, H)
    hs = lstm_forward(x, (h0[0], c0[0]), params)
    assert hs.shape == (N, T, H)
    h, c = h0[0], c0[0]
    for t in range(T):
        h, c = lstm_step(x[:, t], (h, c), params)
        assert_close(hs[:, t], h, 1e-13, f"step {t}")
    assert_close(hs, ref(x, (h0, c0))[0], TOL, "torch lstm_forward vs nn.LSTM")
    hs_np, _ = rnp.lstm_forward(x.numpy(), (h0[0].numpy(), c0[0].numpy()), from_torch(ref))
    assert_close(hs, hs_np, TOL, "torch lstm_forward vs numpy lstm_forward")


def test_torch_lstm_forward_errors():
    p = {"W_x": torch.zeros(12, 2), "W_h": torch.zeros(12, 3), "b": torch.zeros(12)}
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"x must be \(N, T, D\), got shape \(4, 2\)"):
        lstm_forward(torch.zeros(4, 2), (z, z), p)
    with pytest.raises(ValueError, match=r"c0 must be \(N, H\) with N = 4, got shape \(5, 3\)"):
        lstm_forward(torch.zeros(4, 1, 2), (z, torch.zeros(5, 3)), p)
    with pytest.raises(TypeError, match=r"pair \(h0, c0\)"):
        lstm_forward(torch.zeros(4, 1, 2), z, p)
    with pytest.raises(ValueError, match="T = 0"):
        lstm_forward(torch.zeros(4, 0, 2), (z, z), p)


# ---------------------------------------------------------------------------------------------
# rnn_ref.torch.LSTM vs torch.nn.LSTM
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_state_dicts_load_both_ways_with_same_outputs(bias):
    N, T, D, H = 3, 4, 2, 5
    x, h0, c0, _, _, _ = inputs(3, N, T, D, H)
    make = functools.partial(torch_lstm, D, H, bias=bias)
    assert_state_dicts_load_both_ways(make, LSTM, x, (h0, c0))


@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_lstm_module_gradients_match_torch(N, T, D, H, seed):
    ref = torch_lstm(D, H, seed)
    mine = LSTM(D, H, dtype=torch.float64)
    mine.load_state_dict(ref.state_dict(), strict=True)
    data = inputs(seed, N, T, D, H)
    got = run_with_grads(mine, *data)
    want = run_with_grads(ref, *data)
    for name, a, b in zip(NAMES, got[:6], want[:6], strict=True):
        assert_close(a, b, TOL, name)
    assert got[6].keys() == want[6].keys()
    for name in want[6]:
        assert_close(got[6][name], want[6][name], TOL, f"{name}.grad")


def test_lstm_module_defaults_and_conversion():
    N, T, D, H = 2, 3, 4, 5
    mine = torch_lstm(D, H, 0, cls=LSTM)
    assert mine.mode == "LSTM"
    x = inputs(0, N, T, D, H)[0]
    out, (hn, cn) = mine(x)  # hx defaults to zeros
    assert out.shape == (N, T, H) and hn.shape == cn.shape == (1, N, H)
    assert out.dtype == torch.float64
    zeros = torch.zeros(1, N, H, dtype=torch.float64)
    assert_close(out, mine(x, (zeros, zeros))[0], 0.0, "hx=None")
    assert_close(hn[0], out[:, -1], 0.0, "h_n is the last output")
    p = from_torch(mine)
    assert_close(p["b"], mine.bias_ih_l0 + mine.bias_hh_l0, 0.0, "b")
    assert_close(p["W_x"], mine.weight_ih_l0, 0.0, "W_x")
    assert_close(mine.params()["b"], p["b"], 0.0, "params()['b']")
    hs_np, cache = rnp.lstm_forward(x.numpy(), (np.zeros((N, H)),) * 2, p)
    assert_close(out, hs_np, TOL, "LSTM vs numpy")
    assert_close(cn[0], cache[4][:, -1], TOL, "c_n vs numpy")
    bound = 1 / np.sqrt(H)  # initialised like torch.nn.LSTM: U(-1/sqrt(H), 1/sqrt(H))
    assert all(q.abs().max() <= bound for q in mine.parameters())
    assert mine.weight_ih_l0.shape == (4 * H, D) and mine.weight_hh_l0.shape == (4 * H, H)
    assert "bias=False" in repr(LSTM(D, H, bias=False))


def test_lstm_module_float32_matches_torch_on_cpu():
    N, T, D, H = 4, 6, 5, 7
    ref = torch_lstm(D, H, 0, dtype=torch.float32)
    mine = LSTM(D, H, dtype=torch.float32)
    mine.load_state_dict(ref.state_dict(), strict=True)
    data = inputs(0, N, T, D, H, dtype=torch.float32)
    got, want = run_with_grads(mine, *data), run_with_grads(ref, *data)
    assert got[0].dtype == torch.float32
    for name, a, b in zip(NAMES, got[:6], want[:6], strict=True):
        assert_close(a, b, 1e-5, f"float32 {name}")
    for name in want[6]:
        assert_close(got[6][name], want[6][name], 1e-5, f"float32 {name}.grad")


def test_lstm_module_errors():
    mine = LSTM(3, 2)
    with pytest.raises(ValueError, match=r"x must be \(N, T, 3\), got shape \(1, 2, 4\)"):
        mine(torch.zeros(1, 2, 4))
    z = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match=r"c0 must be \(1, 1, 2\), got shape \(1, 2\)"):
        mine(torch.zeros(1, 2, 3), (z, torch.zeros(1, 2)))
    with pytest.raises(TypeError, match=r"hx must be a pair"):
        mine(torch.zeros(1, 2, 3), z)
    with pytest.raises(ValueError, match=r"sizes must be positive"):
        LSTM(0, 2)


# ---------------------------------------------------------------------------------------------
# CUDA (skipped when torch.cuda.is_available() is False)
# ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_cuda_parity_with_tf32_off(dtype, tol):
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        N, T, D, H = 4, 8, 8, 16
        ref = torch_lstm(D, H, 0, dtype=dtype)
        mine = LSTM(D, H, dtype=dtype)
        mine.load_state_dict(ref.state_dict(), strict=True)
        ref, mine = ref.to("cuda"), mine.to("cuda")
        assert all(p.is_cuda for p in mine.parameters())
        data = [t.to("cuda") for t in inputs(0, N, T, D, H, dtype=dtype)]
        got, want = run_with_grads(mine, *data), run_with_grads(ref, *data)
        assert got[0].is_cuda and got[0].dtype == dtype
        for name, a, b in zip(NAMES, got[:6], want[:6], strict=True):
            assert_close(a, b, tol, f"cuda {dtype} {name}")
        for name in want[6]:
            assert_close(got[6][name], want[6][name], tol, f"cuda {dtype} {name}.grad")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
