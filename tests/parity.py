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
