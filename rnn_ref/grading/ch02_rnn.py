"""Checks for the assignment ch02_rnn (the vanilla RNN forward pass, output layer and loss).

Each ``check_*`` takes the student's function, runs it on random cases (random shapes that
include N = 1, T = 1 and H != D, a non-zero initial state, masks with padding), compares with
a trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first
problem. The seeds are arguments, so a hidden test cell fixes them and grading is repeatable.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._guard import GradingError, recording, seal

__all__ = ["check_step_forward", "check_forward", "check_output_forward", "check_loss_forward"]

# (N, T, D, H, V): batch, time, input, hidden, vocabulary; the edge cases the contract names.
CASES = ((3, 5, 4, 6, 7), (1, 4, 3, 2, 5), (2, 1, 5, 5, 3), (4, 3, 1, 7, 2))


def _expected(fn_name: str, *args):
    """The reference's output, or None in a student's kernel under the class-scale grader,
    which computes it in its own process when it replays the recorded results."""
    if recording():
        return None
    return getattr(trusted_reference("rnn_ref.numpy"), fn_name)(*args)[0]


def _close(name, actual, expected, **kw) -> None:
    if expected is not None:
        assert_close(name, actual, expected, **kw)


def _case(seed: int, N: int, T: int, D: int, H: int, V: int):
    rng = _np.random.default_rng(seed)
    s = 1.0 / _np.sqrt(H)
    params = {
        "W_xh": rng.normal(0, 1.0 / _np.sqrt(D), (H, D)),
        "W_hh": rng.normal(0, s, (H, H)),
        "b_h": rng.normal(0, 0.5, H),
        "W_hy": rng.normal(0, s, (V, H)),
        "b_y": rng.normal(0, 0.5, V),
    }
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (N, H))  # non-zero, so an implementation that ignores h0 is caught
    return rng, x, h0, params


def _out(fn_name, result, what):
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise GradingError(f"{fn_name} should return ({what}, cache), a tuple of two; got {got}")
    return result[0]


def _ctx(seed, **shape):
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def check_step_forward(rnn_step_forward, seeds=(0, 1, 2, 3)) -> None:
    """h = tanh(x W_xh^T + h_prev W_hh^T + b_h) on every case; inputs untouched."""
    for seed, (N, _T, D, H, V) in zip(seeds, CASES, strict=False):
        _, x, h_prev, params = _case(seed, N, 1, D, H, V)
        x = x[:, 0]
        expected = _expected("rnn_step_forward", x, h_prev, params)
        result = guarded_call("rnn_step_forward", rnn_step_forward, x, h_prev, params)
        h = _out("rnn_step_forward", result, "h")
        _close("h", h, expected, dims=("n", "h"), context=_ctx(seed, N=N, D=D, H=H))


def check_forward(rnn_forward, seeds=(10, 11, 12, 13)) -> None:
    """hs for all time steps from a non-zero h0, on every case (T = 1 and N = 1 included)."""
    for seed, (N, T, D, H, V) in zip(seeds, CASES, strict=False):
        _, x, h0, params = _case(seed, N, T, D, H, V)
        expected = _expected("rnn_forward", x, h0, params)
        result = guarded_call("rnn_forward", rnn_forward, x, h0, params)
        hs = _out("rnn_forward", result, "hs")
        ctx = _ctx(seed, N=N, T=T, D=D, H=H)
        _close("hs", hs, expected, dims=("n", "t", "h"), context=ctx)


def check_output_forward(temporal_affine_forward, seeds=(20, 21, 22, 23)) -> None:
    """ys[:, t] = hs[:, t] W_hy^T + b_y at every step; inputs untouched."""
    for seed, (N, T, D, H, V) in zip(seeds, CASES, strict=False):
        rng, _, _, params = _case(seed, N, T, D, H, V)
        hs = _np.tanh(rng.normal(0, 1, (N, T, H)))
        out_params = {"W_hy": params["W_hy"], "b_y": params["b_y"]}
        expected = _expected("temporal_affine_forward", hs, out_params)
        result = guarded_call("temporal_affine_forward", temporal_affine_forward, hs, out_params)
        ys = _out("temporal_affine_forward", result, "ys")
        ctx = _ctx(seed, N=N, T=T, H=H, V=V)
        _close("ys", ys, expected, dims=("n", "t", "v"), context=ctx)


def check_loss_forward(softmax_loss_forward, seeds=(30, 31, 32, 33)) -> None:
    """Mean cross-entropy over unmasked steps: with a padding mask, without one (None), with
    logits large enough to overflow a naive exp, and uniform logits (loss = ln V)."""
    for seed, (N, T, _D, _H, V) in zip(seeds, CASES, strict=False):
        rng = _np.random.default_rng(seed)
        ys = rng.normal(0, 2, (N, T, V))
        targets = rng.integers(0, V, (N, T))
        lengths = rng.integers(1, T + 1, N)  # every sequence keeps at least one step
        mask = _np.arange(T)[None, :] < lengths[:, None]
        targets = _np.where(mask, targets, -1)  # padding holds -1, which must not be read
        cases = [
            ("with a padding mask", ys, targets, mask),
            ("with mask=None", ys, _np.where(mask, targets, 0), None),
            ("with large logits (|y| ~ 1000)", ys * 500.0, targets, mask),
            ("with all-equal logits", _np.zeros_like(ys), targets, mask),
        ]
        for label, y, c, m in cases:
            expected = _expected("softmax_loss_forward", y, c, m)
            result = guarded_call("softmax_loss_forward", softmax_loss_forward, y, c, m)
            loss = assert_array("loss", _out("softmax_loss_forward", result, "loss"), ())
            ctx = f"{label}, N={N}, T={T}, V={V}, seed={seed}"
            _close("loss", loss, expected, context=ctx)


seal(__name__)
