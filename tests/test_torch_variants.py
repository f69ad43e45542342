"""Multi-layer and bidirectional recurrent networks against torch.nn, and the RRNN in torch.

- rnn_ref.numpy's stacked / bidirectional / multilayer wrappers against torch.nn.RNN, LSTM and
  GRU with num_layers = 1..3 and bidirectional on and off: outputs, h_n (and c_n) and every
  gradient (x, h0, c0, each layer's and direction's weights) from torch autograd, weights moved
  by rnn_ref.convert.from_torch(module, layer, reverse) (float64, to 1e-10);
- rnn_ref.torch.RNN / LSTM / GRU with num_layers and bidirectional: the same state_dict keys and
  shapes as torch.nn's, load each other's with strict=True, same initial weights from the same
  seed, and the same outputs, final states and gradients;
- the RRNN: rnn_ref.torch.rrnn_forward / RRNN against rnn_ref.numpy.rrnn_forward, and
  rnn_ref.numpy.rrnn_backward against torch autograd;
- on CUDA (skipped without a GPU): module parity in float64 and float32 with TF32 off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from parity import TOL, assert_close
from torch import nn

import rnn_ref.numpy as rnp
from rnn_ref.convert import from_torch
from rnn_ref.torch import GRU, LSTM, RNN, RRNN, rrnn_forward, rrnn_step

PAIRS = {"rnn": (nn.RNN, RNN), "lstm": (nn.LSTM, LSTM), "gru": (nn.GRU, GRU)}
CELLS = pytest.mark.parametrize("cell", list(PAIRS))
sizes = st.integers(1, 3)
seeds = st.integers(0, 2**31 - 1)


def examples(f):
    """Edge cases every property sees: N = 1, T = 1, H != D, and L = 1..3."""
    f = example(N=1, T=1, D=3, H=2, L=1, seed=0)(f)
    f = example(N=1, T=1, D=1, H=2, L=3, seed=1)(f)
    f = example(N=2, T=4, D=2, H=3, L=2, seed=2)(f)
    return f


def make(cell, D, H, L, bidirectional, seed, ours=False, bias=True, dtype=torch.float64):
    torch.manual_seed(seed)
    kw = {"num_layers": L, "bidirectional": bidirectional, "bias": bias, "dtype": dtype}
    if ours:
        return PAIRS[cell][1](D, H, **kw)
    return PAIRS[cell][0](D, H, batch_first=True, **kw)


def inputs(cell, seed, N, T, D, H, K, dirs, dtype=torch.float64):
    """x (N, T, D), initial state(s) (K, N, H), upstream gradients for out and h_n (and c_n)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    x = randn(N, T, D)
    h0 = (randn(K, N, H), randn(K, N, H)) if cell == "lstm" else randn(K, N, H)
    return x, h0, randn(N, T, dirs * H), randn(K, N, H), randn(K, N, H)


def run_with_grads(module, cell, x, h0, dout, dhn, dcn):
    """Forward and backward of sum(dout * out) + sum(dhn * h_n) (+ sum(dcn * c_n) for lstm)."""
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    states = [s.clone().requires_grad_(True) for s in (h0 if cell == "lstm" else (h0,))]
    out, hn = module(x, tuple(states) if cell == "lstm" else states[0])
    finals = hn if cell == "lstm" else (hn,)
    loss = (out * dout).sum() + (finals[0] * dhn).sum()
    if cell == "lstm":
        loss = loss + (finals[1] * dcn).sum()
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    return out.detach(), [f.detach() for f in finals], x.grad, [s.grad for s in states], grads


def torch_name(kind, layer, reverse):
    return f"{kind}_l{layer}" + ("_reverse" if reverse else "")


def check_param_grads(cell, grads_np, torch_grads, layer, reverse, what):
    """rnn_ref grads of one layer/direction vs torch's (each bias gets the whole bias grad for
    rnn and lstm, whose b is the sum of torch's two)."""
    kx, kh = ("W_xh", "W_hh") if cell == "rnn" else ("W_x", "W_h")
    assert_close(grads_np[kx], torch_grads[torch_name("weight_ih", layer, reverse)], TOL, what + kx)
    assert_close(grads_np[kh], torch_grads[torch_name("weight_hh", layer, reverse)], TOL, what + kh)
    if cell == "gru":
        pairs = (("b_x", "bias_ih"), ("b_h", "bias_hh"))
    else:
        b = "b_h" if cell == "rnn" else "b"
        pairs = ((b, "bias_ih"), (b, "bias_hh"))
    for key, tname in pairs:
        assert_close(grads_np[key], torch_grads[torch_name(tname, layer, reverse)], TOL, what + key)


# ---------------------------------------------------------------------------------------------
# rnn_ref.numpy wrappers vs torch.nn, weights through from_torch
# ---------------------------------------------------------------------------------------------


@CELLS
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, L=sizes, seed=seeds)
def test_numpy_multilayer_matches_torch_nn(cell, bidirectional, N, T, D, H, L, seed):
    dirs = 2 if bidirectional else 1
    ref = make(cell, D, H, L, bidirectional, seed)
    if bidirectional:
        layers = [(from_torch(ref, k, False), from_torch(ref, k, True)) for k in range(L)]
    else:
        layers = [from_torch(ref, k) for k in range(L)]
    x, h0, dout, dhn, dcn = inputs(cell, seed, N, T, D, H, L * dirs, dirs)
    dcn = torch.zeros_like(dcn)  # lstm_backward has no gradient for c_T (see its docstring)
    out_t, finals_t, dx_t, dstates_t, g_t = run_with_grads(ref, cell, x, h0, dout, dhn, dcn)

    h0_np = tuple(s.numpy() for s in h0) if cell == "lstm" else h0.numpy()
    out, h_n, cache = rnp.multilayer_forward(x.numpy(), h0_np, layers, cell, bidirectional)
    assert_close(out, out_t, TOL, "out")
    for name, a, b in zip(
        ("h_n", "c_n"), h_n if cell == "lstm" else (h_n,), finals_t, strict=False
    ):
        assert_close(a, b, TOL, name)
    dx, dh0, grads = rnp.multilayer_backward(dout.numpy(), cache, dhn.numpy())
    assert_close(dx, dx_t, TOL, "dx")
    for name, a, b in zip(
        ("dh0", "dc0"), dh0 if cell == "lstm" else (dh0,), dstates_t, strict=False
    ):
        assert_close(a, b, TOL, name)
    assert len(grads) == L
    for k in range(L):
        for d in range(dirs):
            g = grads[k][d] if bidirectional else grads[k]
            check_param_grads(cell, g, g_t, k, bool(d), f"layer {k} dir {d} d")


@CELLS
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, L=sizes, seed=seeds)
def test_numpy_stacked_matches_torch_nn(cell, N, T, D, H, L, seed):
    ref = make(cell, D, H, L, False, seed)
    layers = [from_torch(ref, k) for k in range(L)]
    x, h0, dout, _, _ = inputs(cell, seed, N, T, D, H, L, 1)
    zero = torch.zeros(L, N, H, dtype=torch.float64)
    out_t, _, dx_t, dstates_t, g_t = run_with_grads(ref, cell, x, h0, dout, zero, zero)
    if cell == "lstm":
        states = [(h0[0][k].numpy(), h0[1][k].numpy()) for k in range(L)]
    else:
        states = [h0[k].numpy() for k in range(L)]
    hs, cache = rnp.stacked_forward(x.numpy(), states, layers, cell)
    assert_close(hs, out_t, TOL, "hs")
    dx, dstates, grads = rnp.stacked_backward(dout.numpy(), cache)
    assert_close(dx, dx_t, TOL, "dx")
    for k in range(L):
        got = dstates[k] if cell == "lstm" else (dstates[k],)
        for i, a in enumerate(got):
            assert_close(a, dstates_t[i][k], TOL, f"dstates[{k}][{i}]")
        check_param_grads(cell, grads[k], g_t, k, False, f"layer {k} d")


@CELLS
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, L=st.just(1), seed=seeds)
def test_numpy_bidirectional_matches_torch_nn(cell, N, T, D, H, L, seed):
    ref = make(cell, D, H, 1, True, seed)
    params = (from_torch(ref, 0, False), from_torch(ref, 0, True))
    x, h0, dout, _, _ = inputs(cell, seed, N, T, D, H, 2, 2)
    zero = torch.zeros(2, N, H, dtype=torch.float64)
    out_t, _, dx_t, dstates_t, g_t = run_with_grads(ref, cell, x, h0, dout, zero, zero)
    if cell == "lstm":
        states = tuple((h0[0][d].numpy(), h0[1][d].numpy()) for d in (0, 1))
    else:
        states = (h0[0].numpy(), h0[1].numpy())
    hs, cache = rnp.bidirectional_forward(x.numpy(), states, params, cell)
    assert_close(hs, out_t, TOL, "hs")
    dx, dstates, grads = rnp.bidirectional_backward(dout.numpy(), cache)
    assert_close(dx, dx_t, TOL, "dx")
    for d in (0, 1):
        got = dstates[d] if cell == "lstm" else (dstates[d],)
        for i, a in enumerate(got):
            assert_close(a, dstates_t[i][d], TOL, f"direction {d} dstate[{i}]")
        check_param_grads(cell, grads[d], g_t, 0, bool(d), f"direction {d} d")


# ---------------------------------------------------------------------------------------------
# rnn_ref.torch modules with num_layers and bidirectional vs torch.nn
# ---------------------------------------------------------------------------------------------


@CELLS
@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_state_dicts_equal_and_load_both_ways(cell, L, bidirectional, bias):
    N, T, D, H = 2, 3, 4, 3
    ref = make(cell, D, H, L, bidirectional, 7, bias=bias)
    mine = make(cell, D, H, L, bidirectional, 7, ours=True, bias=bias)
    sd_ref, sd_mine = ref.state_dict(), mine.state_dict()
    # same keys, in the same order, same shapes; the same seed gives the same initial weights
    assert list(sd_mine) == list(sd_ref)
    for k in sd_ref:
        assert sd_mine[k].shape == sd_ref[k].shape, k
        assert torch.equal(sd_mine[k], sd_ref[k]), k
    if bidirectional:
        assert "weight_hh_l0_reverse" in sd_ref
    x = inputs(cell, 0, N, T, D, H, 1, 1)[0]

    other = make(cell, D, H, L, bidirectional, 8, ours=True, bias=bias)
    other.load_state_dict(sd_ref, strict=True)
    ref2 = make(cell, D, H, L, bidirectional, 9, bias=bias)
    ref2.load_state_dict(make(cell, D, H, L, bidirectional, 10, ours=True, bias=bias).state_dict())
    mine2 = make(cell, D, H, L, bidirectional, 10, ours=True, bias=bias)
    for a, b, what in ((other, ref, "ours <- torch.nn"), (mine2, ref2, "torch.nn <- ours")):
        with torch.no_grad():
            (out_a, s_a), (out_b, s_b) = a(x), b(x)
        assert_close(out_a, out_b, TOL, f"{what}: out")
        if cell != "lstm":
            s_a, s_b = (s_a,), (s_b,)
        for i, (u, v) in enumerate(zip(s_a, s_b, strict=True)):
            assert_close(u, v, TOL, f"{what}: final state {i}")
        assert out_a.shape == (N, T, (2 if bidirectional else 1) * H)


@CELLS
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, L=sizes, seed=seeds)
def test_module_outputs_and_gradients_match_torch_nn(cell, bidirectional, N, T, D, H, L, seed):
    dirs = 2 if bidirectional else 1
    ref = make(cell, D, H, L, bidirectional, seed)
    mine = make(cell, D, H, L, bidirectional, seed + 1, ours=True)
    mine.load_state_dict(ref.state_dict(), strict=True)
    data = inputs(cell, seed, N, T, D, H, L * dirs, dirs)
    got, want = run_with_grads(mine, cell, *data), run_with_grads(ref, cell, *data)
    assert_close(got[0], want[0], TOL, "out")
    for i, (a, b) in enumerate(zip(got[1], want[1], strict=True)):
        assert_close(a, b, TOL, f"final state {i}")
    assert_close(got[2], want[2], TOL, "dx")
    for i, (a, b) in enumerate(zip(got[3], want[3], strict=True)):
        assert_close(a, b, TOL, f"d initial state {i}")
    assert got[4].keys() == want[4].keys()
    for name in want[4]:
        assert_close(got[4][name], want[4][name], TOL, f"{name}.grad")


@CELLS
def test_module_params_and_from_torch_per_layer(cell):
    D, H, L = 3, 2, 2
    mine = make(cell, D, H, L, True, 0, ours=True)
    for k in range(L):
        for rev in (False, True):
            p = from_torch(mine, k, rev)
            q = mine.params(k, rev)
            assert p.keys() == q.keys()
            for key in p:
                assert_close(q[key], p[key], 0.0, f"params({k}, {rev})[{key}]")
            D_k = D if k == 0 else 2 * H
            assert p["W_xh" if cell == "rnn" else "W_x"].shape[1] == D_k


def test_module_defaults_repr_and_default_state():
    m = GRU(3, 2, num_layers=2, bidirectional=True, dtype=torch.float64)
    assert m.num_layers == 2 and m.bidirectional and m.num_directions == 2 and m.batch_first
    assert repr(m) == "GRU(3, 2, num_layers=2, bidirectional=True)"
    assert repr(LSTM(3, 2, bias=False)) == "LSTM(3, 2, bias=False)"
    assert (
        repr(GRU(3, 2, reset="before", num_layers=3)) == "GRU(3, 2, num_layers=3, reset='before')"
    )
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    out, h_n = m(x)
    assert out.shape == (2, 4, 4) and h_n.shape == (4, 2, 2)
    assert_close(out, m(x, torch.zeros(4, 2, 2, dtype=torch.float64))[0], 0.0, "h0=None")
    # GRU(reset="before") stacks too, and equals the numpy GRU layer by layer
    cho = GRU(3, 2, reset="before", num_layers=2, dtype=torch.float64)
    out, _ = cho(x)
    inp = x.numpy()
    for k in range(2):
        inp, _ = rnp.gru_forward(inp, np.zeros((2, 2)), from_torch(cho, k), reset="before")
    assert_close(out, inp, TOL, "reset='before', 2 layers")


@CELLS
def test_module_errors(cell):
    cls = PAIRS[cell][1]
    m = cls(3, 2, num_layers=2, bidirectional=True)
    x = torch.zeros(1, 5, 3)
    bad = torch.zeros(2, 1, 2)
    with pytest.raises(ValueError, match=r"h0 must be \(4, 1, 2\), got shape \(2, 1, 2\)"):
        m(x, (bad, bad) if cell == "lstm" else bad)
    with pytest.raises(ValueError, match=r"x must be \(N, T, 3\)"):
        m(torch.zeros(1, 5, 4))
    with pytest.raises(ValueError, match=r"num_layers must be a positive integer, got 0"):
        cls(3, 2, num_layers=0)
    with pytest.raises(ValueError, match=r"batch-first only"):
        cls(3, 2, batch_first=False)
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\), got 2"):
        m.params(2)
    with pytest.raises(ValueError, match=r"reverse=True needs a bidirectional module"):
        cls(3, 2).params(0, True)
    with pytest.raises(RuntimeError, match=r"Missing key.*weight_ih_l1_reverse"):
        m.load_state_dict(PAIRS[cell][0](3, 2, num_layers=2).state_dict(), strict=True)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight_ih_l1"):
        cls(3, 2, num_layers=2).load_state_dict(PAIRS[cell][0](3, 3, num_layers=2).state_dict())


# ---------------------------------------------------------------------------------------------
# RRNN: torch vs numpy, numpy backward vs torch autograd
# ---------------------------------------------------------------------------------------------


def rrnn_case(seed, N, T, D, H, R, O):
    rng = np.random.default_rng(seed)
    params = {k: 2.0 * v for k, v in rnp.rrnn_init(D, H, R, O, rng).items()}
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    return x, h0, params, rng.standard_normal((N, T, H)), rng.standard_normal((N, T, O))


@given(N=sizes, T=sizes, D=sizes, H=sizes, R=sizes, O=sizes, seed=seeds)
@example(N=1, T=1, D=3, H=2, R=1, O=1, seed=0)
@example(N=2, T=4, D=2, H=3, R=2, O=3, seed=1)
def test_rrnn_numpy_matches_torch_forward_and_autograd(N, T, D, H, R, O, seed):
    x, h0, params, dhs, dos = rrnn_case(seed, N, T, D, H, R, O)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    hs_t, os_t = rrnn_forward(xt, h0t, tp)
    ((hs_t * torch.from_numpy(dhs)).sum() + (os_t * torch.from_numpy(dos)).sum()).backward()

    (hs, os), cache = rnp.rrnn_forward(x, h0, params)
    assert_close(hs, hs_t, TOL, "hs")
    assert_close(os, os_t, TOL, "os")
    dx, dh0, grads = rnp.rrnn_backward((dhs, dos), cache)
    assert_close(dx, xt.grad, TOL, "dx")
    assert_close(dh0, h0t.grad, TOL, "dh0")
    assert grads.keys() == params.keys()
    for k in params:
        assert_close(grads[k], tp[k].grad, TOL, f"d{k}")

    (h1, o1), _ = rnp.rrnn_step_forward(x[:, 0], h0, params)
    h1_t, o1_t = rrnn_step(xt[:, 0].detach(), h0t.detach(), {k: v.detach() for k, v in tp.items()})
    assert_close(h1, h1_t, TOL, "step h")
    assert_close(o1, o1_t, TOL, "step o")


def test_rrnn_module_matches_numpy():
    N, T, D, H, R, O = 2, 5, 3, 4, 2, 3
    torch.manual_seed(0)
    m = RRNN(D, H, R, O, dtype=torch.float64)
    assert list(m.state_dict()) == list(rnp.rrnn_init(D, H, R, O, 0))
    assert repr(m) == "RRNN(3, 4, 2, 3)"
    assert all(p.abs().max() <= 1 / np.sqrt(H) for p in m.parameters())
    x, h0, params, _, _ = rrnn_case(1, N, T, D, H, R, O)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=True)
    os, h_n = m(torch.from_numpy(x), torch.from_numpy(h0)[None])
    (hs_np, os_np), _ = rnp.rrnn_forward(x, h0, params)
    assert os.shape == (N, T, O) and h_n.shape == (1, N, H)
    assert_close(os, os_np, TOL, "os")
    assert_close(h_n[0], hs_np[:, -1], TOL, "h_n")
    os0, _ = m(torch.from_numpy(x))
    assert_close(os0, rnp.rrnn_forward(x, np.zeros((N, H)), params)[0][1], TOL, "h0=None")


def test_rrnn_torch_errors():
    m = RRNN(3, 2, 2, 1)
    with pytest.raises(ValueError, match=r"x must be \(N, T, 3\)"):
        m(torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"h0 must be \(1, 1, 2\), got shape \(1, 2\)"):
        m(torch.zeros(1, 2, 3), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"sizes must be positive"):
        RRNN(3, 2, 0, 1)
    p = m.params()
    with pytest.raises(KeyError, match=r"missing \['W_rh'\]"):
        rrnn_forward(
            torch.zeros(1, 2, 3), torch.zeros(1, 2), {k: v for k, v in p.items() if k != "W_rh"}
        )
    with pytest.raises(ValueError, match=r"params\['W_xr'\] must have shape \(2, 3\)"):
        rrnn_forward(torch.zeros(1, 2, 3), torch.zeros(1, 2), dict(p, W_xr=torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"T = 0"):
        rrnn_forward(torch.zeros(1, 0, 3), torch.zeros(1, 2), p)
    with pytest.raises(ValueError, match=r"x must be \(N, D\) and h_prev \(N, H\)"):
        rrnn_step(torch.zeros(1, 2, 3), torch.zeros(1, 2), p)


# ---------------------------------------------------------------------------------------------
# CUDA (skipped when torch.cuda.is_available() is False)
# ---------------------------------------------------------------------------------------------


@pytest.mark.cuda
@CELLS
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_cuda_multilayer_bidirectional_parity_with_tf32_off(cell, dtype, tol):
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        N, T, D, H, L = 4, 6, 5, 8, 2
        ref = make(cell, D, H, L, True, 0, dtype=dtype).to("cuda")
        mine = make(cell, D, H, L, True, 1, ours=True, dtype=dtype).to("cuda")
        mine.load_state_dict(ref.state_dict(), strict=True)
        data = inputs(cell, 0, N, T, D, H, 2 * L, 2, dtype=dtype)
        data = [tuple(s.cuda() for s in t) if isinstance(t, tuple) else t.cuda() for t in data]
        got, want = run_with_grads(mine, cell, *data), run_with_grads(ref, cell, *data)
        assert got[0].is_cuda and got[0].dtype == dtype
        assert_close(got[0], want[0], tol, f"cuda {dtype} out")
        assert_close(got[2], want[2], tol, f"cuda {dtype} dx")
        for a, b in zip(got[1] + got[3], want[1] + want[3], strict=True):
            assert_close(a, b, tol, f"cuda {dtype} state or its gradient")
        for name in want[4]:
            assert_close(got[4][name], want[4][name], tol, f"cuda {dtype} {name}.grad")
        m = RRNN(D, H, 3, 2, dtype=dtype).to("cuda")
        os, h_n = m(data[0])
        assert os.is_cuda and os.shape == (N, T, 2) and h_n.shape == (1, N, H)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
