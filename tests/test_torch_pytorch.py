"""rnn_ref.torch.pytorch: variable-length batches, device helpers and FastLSTM.

- pad_batch / length_mask / last_valid / masked_mean: values worked out by hand, the padding
  never leaks (NaN in the padding, zero gradient there), inputs not modified, clear errors;
- run_packed through torch.nn.RNN/LSTM/GRU (one or two layers, bidirectional, lengths in any
  order, N = 1, T = 1): each sequence's outputs and final state equal running it alone;
- to_device / pick_device: nested containers keep their types and move to the ``meta`` device
  (a real second device without a GPU); the CPU fallback;
- FastLSTM: torch.nn.LSTM's state_dict keys and initialisation, strict loading both ways,
  float64 parity (out, h_n, c_n and every gradient, losses on all three) for the script and
  eager backends, torch.autograd.gradcheck of the hand-written backward, the compile fallback,
  bad input messages; on CUDA (skipped without a GPU): float32 parity with cuDNN, TF32 off;
- bench/bench_lstm_gpu.py --quick writes the JSON that book/appendix_gpu_bench.md reads.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from parity import TOL, assert_close, seeds, shapes_examples, sizes
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnn_ref.torch as rt
from rnn_ref.torch import pytorch as P
from rnn_ref.torch.pytorch import (
    FastLSTM,
    last_valid,
    length_mask,
    masked_mean,
    pad_batch,
    pick_device,
    run_packed,
    to_device,
)

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def test_public_names_are_reexported():
    assert set(P.__all__) == {
        "pad_batch",
        "length_mask",
        "last_valid",
        "run_packed",
        "masked_mean",
        "to_device",
        "pick_device",
        "FastLSTM",
    }
    for name in P.__all__:
        assert getattr(rt, name) is getattr(P, name)


# ---------------------------------------------------------------------------------------------
# pad_batch, length_mask, last_valid, masked_mean
# ---------------------------------------------------------------------------------------------


def test_pad_batch_known_values_1d_and_2d():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0, 5.0])
    padded, lengths = pad_batch([a, b], padding_value=-1.0)
    assert torch.equal(padded, torch.tensor([[1.0, 2.0, -1.0], [3.0, 4.0, 5.0]]))
    assert lengths.dtype == torch.int64 and lengths.tolist() == [2, 3]
    assert a.tolist() == [1.0, 2.0] and b.tolist() == [3.0, 4.0, 5.0]  # inputs untouched

    seqs = [torch.arange(6.0).reshape(3, 2), torch.tensor([[7.0, 8.0]])]
    padded, lengths = pad_batch(seqs)
    assert padded.shape == (2, 3, 2) and lengths.tolist() == [3, 1]
    assert torch.equal(padded[1], torch.tensor([[7.0, 8.0], [0.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(padded[0], seqs[0])


def test_pad_batch_single_sequence_and_dtype_kept():
    padded, lengths = pad_batch([torch.ones(1, 3, dtype=F64)])
    assert padded.shape == (1, 1, 3) and padded.dtype == F64 and lengths.tolist() == [1]


@pytest.mark.parametrize(
    ("seqs", "err", "match"),
    [
        ([], ValueError, "empty"),
        (torch.ones(2, 3), TypeError, "list of tensors"),
        ([torch.ones(2), [1.0]], TypeError, r"sequences\[1\] is a list"),
        ([torch.ones(2, 3), torch.ones(0, 3)], ValueError, r"sequences\[1\] is empty"),
        ([torch.ones(2, 3), torch.ones(2, 4)], ValueError, "trailing shape"),
        ([torch.ones(2), torch.ones(2, dtype=F64)], ValueError, "all must match"),
        ([torch.tensor(1.0)], ValueError, "scalar"),
    ],
)
def test_pad_batch_bad_input(seqs, err, match):
    with pytest.raises(err, match=match):
        pad_batch(seqs)


def test_length_mask_known_values():
    m = length_mask(torch.tensor([2, 3, 1]))
    assert m.dtype == torch.bool
    assert m.tolist() == [[True, True, False], [True, True, True], [True, False, False]]
    assert length_mask([1, 2], T=4).tolist() == [
        [True, False, False, False],
        [True, True, False, False],
    ]


@pytest.mark.parametrize(
    ("lengths", "T", "match"),
    [
        ([2, 3], 2, "smaller than max"),
        ([0, 2], None, ">= 1"),
        ([[1, 2]], None, "1-D"),
        ([1.5, 2.0], None, "integers"),
    ],
)
def test_length_mask_bad_input(lengths, T, match):
    with pytest.raises(ValueError, match=match):
        length_mask(torch.tensor(lengths), T)


def test_last_valid_known_values_and_gradient():
    out = torch.arange(2 * 3 * 2, dtype=F64).reshape(2, 3, 2).requires_grad_(True)
    got = last_valid(out, torch.tensor([2, 3]))
    assert got.tolist() == [[2.0, 3.0], [10.0, 11.0]]  # out[0, 1] and out[1, 2]
    got.sum().backward()
    want = torch.zeros(2, 3, 2, dtype=F64)
    want[0, 1], want[1, 2] = 1.0, 1.0
    assert torch.equal(out.grad, want)


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ([2, 4], "exceeds the T = 3"),
        ([0, 1], ">= 1"),
        ([1, 1, 1], "3 entries for a batch of N = 2"),
    ],
)
def test_last_valid_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        last_valid(torch.zeros(2, 3, 4), torch.tensor(lengths))


def test_last_valid_bad_outputs():
    with pytest.raises(ValueError, match=r"\(N, T, \.\.\.\)"):
        last_valid(torch.zeros(3), torch.tensor([1]))


def test_masked_mean_known_values_padding_ignored():
    v = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), 0.0]], requires_grad=True)
    mask = length_mask(torch.tensor([2, 1]), T=3)
    got = masked_mean(v, mask)
    assert got.item() == pytest.approx((1.0 + 2.0 + 4.0) / 3)
    got.backward()
    assert torch.equal(v.grad, torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]) / 3)


def test_masked_mean_trailing_dimensions():
    v = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[True, False, False], [True, True, False]])
    # selected: (0, 1), (6, 7), (8, 9)
    assert masked_mean(v, mask).item() == pytest.approx((0 + 1 + 6 + 7 + 8 + 9) / 6)
    assert masked_mean(v, torch.ones(2, 3, 2, dtype=torch.bool)).item() == pytest.approx(5.5)


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (torch.zeros(2, 3, dtype=torch.bool), "selects no element"),
        (torch.ones(2, 3), "must be bool"),
        (torch.ones(3, 2, dtype=torch.bool), "leading dimensions"),
    ],
)
def test_masked_mean_bad_input(mask, match):
    with pytest.raises(ValueError, match=match):
        masked_mean(torch.ones(2, 3), mask)


# ---------------------------------------------------------------------------------------------
# run_packed: each sequence's outputs and final state as if it ran alone
# ---------------------------------------------------------------------------------------------

KINDS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


@example(kind="LSTM", lengths=[1], D=1, H=1, layers=1, bidir=False, seed=0)
@example(kind="GRU", lengths=[1, 3, 2], D=3, H=2, layers=2, bidir=True, seed=1)
@example(kind="RNN", lengths=[4, 1], D=2, H=3, layers=1, bidir=False, seed=2)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    D=sizes,
    H=sizes,
    layers=st.integers(1, 2),
    bidir=st.booleans(),
    seed=seeds,
)
def test_run_packed_equals_each_sequence_alone(kind, lengths, D, H, layers, bidir, seed):
    torch.manual_seed(seed % 2**31)
    module = KINDS[kind](D, H, num_layers=layers, bidirectional=bidir, batch_first=True, dtype=F64)
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, D, generator=g, dtype=F64) for n in lengths]
    L = layers * (2 if bidir else 1)
    h0 = torch.randn(L, len(seqs), H, generator=g, dtype=F64)
    c0 = torch.randn(L, len(seqs), H, generator=g, dtype=F64)
    state = (h0, c0) if kind == "LSTM" else h0
    padded, lens = pad_batch(seqs)
    before = padded.clone()
    out, h_n = run_packed(module, padded, lens, state)
    assert torch.equal(padded, before)
    assert out.shape == (len(seqs), max(lengths), H * (2 if bidir else 1))
    assert torch.all(out[~length_mask(lens)] == 0)  # padding comes back as zeros
    for n, s in enumerate(seqs):
        s0 = (h0[:, n : n + 1], c0[:, n : n + 1]) if kind == "LSTM" else h0[:, n : n + 1]
        out_n, h_n_n = module(s[None], s0)
        assert_close(out[n, : len(s)], out_n[0], TOL, f"{kind} outputs of sequence {n}")
        if kind == "LSTM":
            assert_close(h_n[0][:, n], h_n_n[0][:, 0], TOL, f"h_n of sequence {n}")
            assert_close(h_n[1][:, n], h_n_n[1][:, 0], TOL, f"c_n of sequence {n}")
        else:
            assert_close(h_n[:, n], h_n_n[:, 0], TOL, f"{kind} h_n of sequence {n}")
        if not bidir:  # one direction: the last real output is the last layer's final state
            last = last_valid(out, lens)[n]
            top = h_n[0][-1, n] if kind == "LSTM" else h_n[-1, n]
            assert_close(last, top, TOL, f"last_valid of sequence {n}")


def test_run_packed_differs_from_running_over_padding():
    """Why it exists: the unpacked final state has run over the padding."""
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True, dtype=F64)
    padded, lens = pad_batch([torch.randn(5, 2, dtype=F64), torch.randn(2, 2, dtype=F64)])
    _, (h_packed, _) = run_packed(lstm, padded, lens)
    _, (h_plain, _) = lstm(padded)
    assert torch.allclose(h_packed[:, 0], h_plain[:, 0])  # full length: the same
    assert not torch.allclose(h_packed[:, 1], h_plain[:, 1])  # padded: not the same


def test_run_packed_gradient_ignores_padding():
    torch.manual_seed(0)
    gru = nn.GRU(2, 3, batch_first=True, dtype=F64)
    padded, lens = pad_batch([torch.randn(4, 2, dtype=F64), torch.randn(2, 2, dtype=F64)])
    padded.requires_grad_(True)
    out, h_n = run_packed(gru, padded, lens)
    (out.sum() + h_n.sum()).backward()
    assert torch.all(padded.grad[1, 2:] == 0) and torch.all(padded.grad[1, :2] != 0)


@pytest.mark.parametrize(
    ("module", "padded", "lengths", "err", "match"),
    [
        (nn.LSTM(2, 3), torch.zeros(2, 3, 2), [3, 1], ValueError, "batch_first=True"),
        (FastLSTM(2, 3), torch.zeros(2, 3, 2), [3, 1], TypeError, "torch.nn.RNN, LSTM or GRU"),
        (nn.GRU(2, 3, batch_first=True), torch.zeros(2, 3), [3, 1], ValueError, r"\(N, T, D\)"),
        (nn.GRU(2, 3, batch_first=True), torch.zeros(2, 3, 2), [4, 1], ValueError, "exceeds"),
        (nn.GRU(2, 3, batch_first=True), torch.zeros(2, 3, 2), [3], ValueError, "1 entries"),
    ],
)
def test_run_packed_bad_input(module, padded, lengths, err, match):
    with pytest.raises(err, match=match):
        run_packed(module, padded, torch.tensor(lengths))


# ---------------------------------------------------------------------------------------------
# to_device, pick_device
# ---------------------------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "x y")


def test_to_device_nested_to_meta():
    x = torch.ones(2, 3)
    batch = {
        "x": x,
        "list": [torch.zeros(1), "text", 3],
        "pair": Pair(torch.ones(1), (torch.ones(2), None)),
        "od": collections.OrderedDict(a=torch.ones(1)),
    }
    moved = to_device(batch, "meta")
    assert moved["x"].is_meta and moved["x"].shape == (2, 3) and moved["x"].dtype == x.dtype
    assert moved["list"][0].is_meta and moved["list"][1:] == ["text", 3]
    assert isinstance(moved["pair"], Pair) and moved["pair"].x.is_meta
    assert isinstance(moved["pair"].y, tuple) and moved["pair"].y[0].is_meta
    assert moved["pair"].y[1] is None
    assert type(moved["od"]) is collections.OrderedDict and moved["od"]["a"].is_meta
    assert x.device.type == "cpu"  # the original is untouched
    assert to_device(batch, "cpu")["x"] is x  # already there: no copy


def test_to_device_modules_packed_sequences_defaultdict():
    m = to_device(nn.Linear(2, 3), "meta")
    assert all(p.is_meta for p in m.parameters())
    packed = pack_padded_sequence(torch.ones(2, 3, 1), torch.tensor([3, 1]), batch_first=True)
    moved = to_device(packed, "meta")
    assert moved.data.is_meta and moved.batch_sizes.device.type == "cpu"
    dd = collections.defaultdict(list, a=torch.ones(1))
    assert to_device(dd, "meta")["a"].is_meta


def test_pick_device(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device() == torch.device("cuda")
    assert pick_device("cuda:0") == torch.device("cuda:0")
    assert pick_device("cuda:3") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device name"):
        pick_device("gpu please")


# ---------------------------------------------------------------------------------------------
# FastLSTM
# ---------------------------------------------------------------------------------------------


def lstm_inputs(seed, N, T, D, H, dtype=F64, device="cpu"):
    """x (N, T, D), h0, c0 (1, N, H), upstream gradients for out, h_n, c_n."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(N, T, D), (1, N, H), (1, N, H), (N, T, H), (1, N, H), (1, N, H)]
    return [torch.randn(*s, generator=g, dtype=dtype).to(device) for s in shapes]


def run_with_grads(module, x, h0, c0, dout, dhn, dcn):
    """Forward and backward of sum(dout * out) + sum(dhn * h_n) + sum(dcn * c_n)."""
    module.zero_grad()
    x, h0, c0 = (t.clone().requires_grad_(True) for t in (x, h0, c0))
    out, (hn, cn) = module(x, (h0, c0))
    ((out * dout).sum() + (hn * dhn).sum() + (cn * dcn).sum()).backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    return [out.detach(), hn.detach(), cn.detach(), x.grad, h0.grad, c0.grad], grads


NAMES = ("out", "h_n", "c_n", "dx", "dh0", "dc0")


def test_fastlstm_state_dict_and_init_are_torch_nn_lstm():
    torch.manual_seed(3)
    ref = nn.LSTM(4, 5, batch_first=True)
    torch.manual_seed(3)
    mine = FastLSTM(4, 5)
    assert list(mine.state_dict()) == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
    ]
    assert list(mine.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():  # same seed, same draws
        assert torch.equal(mine.state_dict()[k], v), k
    other = nn.LSTM(4, 5, batch_first=True)
    other.load_state_dict(FastLSTM(4, 5).state_dict(), strict=True)
    mine.load_state_dict(other.state_dict(), strict=True)
    nb = FastLSTM(4, 5, bias=False)
    assert list(nb.state_dict()) == list(nn.LSTM(4, 5, bias=False).state_dict())


def test_fastlstm_backend_attribute():
    assert FastLSTM(2, 3).backend in ("script", "eager")
    assert FastLSTM(2, 3, backend="eager").backend == "eager"
    m = FastLSTM(2, 3, backend="script")
    assert m.backend == "script" and "backend=script" in repr(m)
    with pytest.raises(ValueError, match="backend must be"):
        FastLSTM(2, 3, backend="cudnn")


@pytest.mark.parametrize("backend", ["script", "eager"])
@shapes_examples
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_fastlstm_matches_torch_nn_lstm_float64(backend, N, T, D, H, seed):
    torch.manual_seed(seed)
    ref = nn.LSTM(D, H, batch_first=True, dtype=F64)
    mine = FastLSTM(D, H, dtype=F64, backend=backend)
    mine.load_state_dict(ref.state_dict(), strict=True)
    data = lstm_inputs(seed, N, T, D, H)
    before = [t.clone() for t in data]
    got, g_got = run_with_grads(mine, *data)
    want, g_want = run_with_grads(ref, *data)
    for name, a, b in zip(NAMES, got, want, strict=True):
        assert_close(a, b, TOL, f"{backend} {name}")
    for name in g_want:
        assert_close(g_got[name], g_want[name], TOL, f"{backend} {name}.grad")
    for a, b in zip(data, before, strict=True):  # no input modified
        assert torch.equal(a, b)


def test_fastlstm_agrees_with_reference_lstm_no_bias_no_state():
    torch.manual_seed(0)
    ref = rt.LSTM(3, 4, bias=False, dtype=F64)
    mine = FastLSTM(3, 4, bias=False, dtype=F64)
    mine.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 6, 3, dtype=F64)
    out, (h, c) = mine(x)
    out_r, (h_r, c_r) = ref(x)
    assert h.shape == c.shape == (1, 2, 4)
    assert_close(out, out_r, TOL, "out")
    assert_close(h, h_r, TOL, "h_n")
    assert_close(c, c_r, TOL, "c_n")
    assert_close(h[0], out[:, -1], 0.0, "h_n is the last output")


def test_fastlstm_state_layout_nh():
    torch.manual_seed(0)
    mine = FastLSTM(3, 4, dtype=F64)
    x, h0, c0 = (
        torch.randn(2, 5, 3, dtype=F64),
        torch.randn(2, 4, dtype=F64),
        torch.randn(2, 4, dtype=F64),
    )
    out, (h, c) = mine(x, (h0, c0))
    out1, (h1, c1) = mine(x, (h0[None], c0[None]))
    assert h.shape == (2, 4) and h1.shape == (1, 2, 4)
    assert torch.equal(out, out1) and torch.equal(h, h1[0]) and torch.equal(c, c1[0])


@pytest.mark.parametrize("backend", ["script", "eager"])
def test_fastlstm_gradcheck(backend):
    """torch.autograd.gradcheck of the hand-written backward against finite differences."""
    torch.manual_seed(1)
    m = FastLSTM(3, 2, dtype=F64, backend=backend)
    x, h0, c0 = (
        torch.randn(*s, dtype=F64, requires_grad=True) for s in ((2, 4, 3), (1, 2, 2), (1, 2, 2))
    )
    W_x, W_h, b_ih = m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0

    def f(x, h0, c0, *_):
        out, (h, c) = m(x, (h0, c0))
        return out, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, W_x, W_h, b_ih))
    # the recurrence Function alone, with W_h a direct input
    A = torch.randn(4, 2, 8, dtype=F64, requires_grad=True)  # time-major (T, N, 4H)
    W = torch.randn(8, 2, dtype=F64, requires_grad=True)
    pair = P._loops(backend)
    assert torch.autograd.gradcheck(
        lambda A, h, c, W: P._LSTMRecurrence.apply(A, h, c, W, pair), (A, h0[0], c0[0], W)
    )


def test_fastlstm_compile_falls_back_to_eager(monkeypatch):
    def broken(fn, *args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.delitem(P._LOOPS, "compile", raising=False)
    torch.manual_seed(0)
    ref = nn.LSTM(3, 4, batch_first=True, dtype=F64)
    m = FastLSTM(3, 4, dtype=F64, backend="compile")
    m.load_state_dict(ref.state_dict())
    assert m.backend == "compile"  # torch.compile is lazy: nothing has failed yet
    x = torch.randn(2, 3, 3, dtype=F64)
    out, _ = m(x)
    assert m.backend == "eager" and "no compiler here" in m.backend_note
    assert_close(out, ref(x)[0], TOL, "out after fallback")
    P._LOOPS.pop("compile", None)  # leave no broken pair behind for other tests


@pytest.mark.slow
def test_fastlstm_compile_real():
    """torch.compile of the step functions (tens of seconds on a CPU: needs a C++ compiler)."""
    torch.manual_seed(0)
    ref = nn.LSTM(3, 4, batch_first=True, dtype=F64)
    m = FastLSTM(3, 4, dtype=F64, backend="compile")
    m.load_state_dict(ref.state_dict())
    data = lstm_inputs(0, 2, 3, 3, 4)
    got, g_got = run_with_grads(m, *data)
    want, g_want = run_with_grads(ref, *data)
    for name, a, b in zip(NAMES, got, want, strict=True):
        assert_close(a, b, TOL, f"{m.backend} {name}")
    for name in g_want:
        assert_close(g_got[name], g_want[name], TOL, f"{m.backend} {name}.grad")


@pytest.mark.parametrize(
    ("x", "hx", "err", "match"),
    [
        (torch.zeros(2, 3), None, ValueError, r"x must be \(N, T, 3\)"),
        (torch.zeros(2, 3, 4), None, ValueError, r"x must be \(N, T, 3\)"),
        (torch.zeros(2, 0, 3), None, ValueError, "T = 0"),
        (torch.zeros(2, 3, 3, dtype=torch.float32), None, ValueError, "float32 on cpu but"),
        (torch.zeros(2, 3, 3, dtype=F64), torch.zeros(1, 2, 4, dtype=F64), TypeError, "pair"),
        (
            torch.zeros(2, 3, 3, dtype=F64),
            (torch.zeros(1, 3, 4, dtype=F64), None),
            ValueError,
            r"h0 must be \(1, 2, 4\) or \(2, 4\)",
        ),
        (
            torch.zeros(2, 3, 3, dtype=F64),
            (None, torch.zeros(2, 4)),
            ValueError,
            "c0 is torch.float32",
        ),
        (
            torch.zeros(2, 3, 3, dtype=F64),
            (torch.zeros(1, 2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64)),
            ValueError,
            "same layout",
        ),
        ([[0.0]], None, TypeError, "torch.Tensor"),
    ],
)
def test_fastlstm_bad_input(x, hx, err, match):
    m = FastLSTM(3, 4, dtype=F64)
    with pytest.raises(err, match=match):
        m(x, hx)


def test_fastlstm_bad_sizes():
    with pytest.raises(ValueError, match="sizes must be positive"):
        FastLSTM(0, 4)


@pytest.mark.cuda
@pytest.mark.parametrize("backend", ["script", "eager"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_cuda_fastlstm_matches_cudnn_tf32_off(backend, dtype, tol):
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        N, T, D, H = 4, 8, 8, 16
        torch.manual_seed(0)
        ref = nn.LSTM(D, H, batch_first=True, dtype=dtype).to("cuda")
        mine = FastLSTM(D, H, dtype=dtype, backend=backend).to("cuda")
        mine.load_state_dict(ref.state_dict(), strict=True)
        assert all(p.is_cuda for p in mine.parameters())
        data = lstm_inputs(0, N, T, D, H, dtype=dtype, device="cuda")
        for _ in range(3):  # TorchScript's profiling executor optimises after a few calls
            got, g_got = run_with_grads(mine, *data)
        want, g_want = run_with_grads(ref, *data)
        assert got[0].is_cuda and got[0].dtype == dtype
        for name, a, b in zip(NAMES, got, want, strict=True):
            assert_close(a, b, tol, f"cuda {dtype} {name}")
        for name in g_want:
            assert_close(g_got[name], g_want[name], tol, f"cuda {dtype} {name}.grad")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.cuda
def test_cuda_run_packed_and_helpers():
    dev = pick_device("cuda")
    assert dev.type == "cuda"
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True).to(dev)
    padded, lens = pad_batch([torch.randn(4, 2), torch.randn(2, 2)])
    batch = to_device({"x": padded, "lengths": lens}, dev)
    out, (h, _) = run_packed(lstm, batch["x"], batch["lengths"])
    assert out.is_cuda and h.is_cuda
    assert_close(last_valid(out, batch["lengths"]), h[0], 1e-6, "last_valid on cuda")
    m = masked_mean(out.sum(-1), length_mask(batch["lengths"]))
    assert m.is_cuda


# ---------------------------------------------------------------------------------------------
# The benchmark script writes what the appendix reads
# ---------------------------------------------------------------------------------------------


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "lstm_test.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_lstm_gpu.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["device_kind"] in ("cpu", "cuda")
    impls = {r["implementation"] for r in res["results"]}
    assert impls == {"rnn_ref.torch.LSTM", "FastLSTM", "torch.nn.LSTM"}
    for r in res["results"]:
        assert r["median_ms"] > 0 and r["max_abs_diff_vs_torch_nn"] < 1e-4
        if r["implementation"] == "torch.nn.LSTM":
            assert r["ratio_vs_torch_nn"] == 1.0
    assert "torch.nn.LSTM" in proc.stdout
