"""Helpers shared by the parity tests of rnn_ref's torch-facing code (RNN, LSTM, GRU)."""

from __future__ import annotations

import torch
from hypothesis import example
from hypothesis import strategies as st

sizes = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)
TOL = 1e-10  # float64: NumPy's and torch's sums differ only by rounding (~1e-15)


def shapes_examples(f):
    """The edge cases every parity property must see: N = 1, T = 1, H != D."""
    f = example(N=1, T=1, D=1, H=1, seed=0)(f)
    f = example(N=1, T=1, D=3, H=2, seed=1)(f)
    f = example(N=2, T=5, D=2, H=4, seed=2)(f)
    return f


def assert_close(actual, expected, tol, name):
    actual = actual.detach().cpu() if isinstance(actual, torch.Tensor) else torch.as_tensor(actual)
    expected = expected.detach().cpu() if isinstance(expected, torch.Tensor) else expected
    torch.testing.assert_close(
        actual,
        torch.as_tensor(expected, dtype=actual.dtype),
        rtol=tol,
        atol=tol,
        msg=lambda m: f"{name}: {m}",
    )


def _flat(result) -> list:
    """(out, h_n) or (out, (h_n, c_n)) -> [out, h_n(, c_n)]."""
    out, state = result
    return [out, *(state if isinstance(state, tuple) else (state,))]


def assert_state_dicts_load_both_ways(make, cls, x, state, tol=TOL):
    """``make(seed, cls=None)`` builds a float64 module (torch.nn's when ``cls`` is None).

    torch.nn's weights load into ``cls`` and ``cls``'s into torch.nn with ``strict=True`` (same
    keys and shapes), and then both give the same outputs and final states on ``(x, state)``.
    """
    name = cls.__name__
    ref, mine = make(1), make(2, cls=cls)
    assert mine.state_dict().keys() == ref.state_dict().keys()
    for k, v in ref.state_dict().items():
        assert mine.state_dict()[k].shape == v.shape, k
    mine.load_state_dict(ref.state_dict(), strict=True)
    first = _flat(mine(x, state))
    names = ("outputs", "h_n", "c_n")[: len(first)]
    for what, a, b in zip(names, first, _flat(ref(x, state)), strict=True):
        assert_close(a, b, tol, f"{what} after {name}.load_state_dict(nn.{name})")
    mine2, ref2 = make(4, cls=cls), make(5)  # new weights, copied into a torch.nn module
    ref2.load_state_dict(mine2.state_dict(), strict=True)
    second = _flat(mine2(x, state))
    for what, a, b in zip(names, second, _flat(ref2(x, state)), strict=True):
        assert_close(a, b, tol, f"{what} after nn.{name}.load_state_dict({name})")
    assert not torch.allclose(second[0], first[0])  # it really is other weights
