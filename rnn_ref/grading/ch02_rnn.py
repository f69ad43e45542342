"""Checks for the assignment ch02_rnn (the vanilla RNN forward pass, output layer and loss).

Each ``check_*`` takes the student's function, runs it on random cases (random shapes that
include N = 1, T = 1 and H != D, a non-zero initial state, masks with padding), compares with
a trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first
problem. The seeds are arguments, so a hidden test cell fixes them and grading is repeatable.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, assert_unchanged, guarded_call, trusted_reference
from ._guard import GradingError, seal

__all__ = ["check_step_forward", "check_forward", "check_output_forward", "check_loss_forward"]

# (N, T, D, H, V): batch, time, input, hidden, vocabulary; the edge cases the contract names.
CASES = ((3, 5, 4, 6, 7), (1, 4, 3, 2, 5), (2, 1, 5, 5, 3), (4, 3, 1, 7, 2))


def _ref():
    return trusted_reference("rnn_ref.numpy")


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


def _copies(**arrays):
    return {
        k: ({kk: _np.array(vv) for kk, vv in v.items()} if isinstance(v, dict) else _np.array(v))
        for k, v in arrays.items()
    }


def _unchanged(fn_name, before, after):
    flat_b, flat_a = {}, {}
    for k in before:
        if isinstance(before[k], dict):
            for kk in before[k]:
                flat_b[f"params[{kk!r}]"], flat_a[f"params[{kk!r}]"] = before[k][kk], after[k][kk]
        else:
            flat_b[k], flat_a[k] = before[k], after[k]
    assert_unchanged(fn_name, flat_b, flat_a)


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
        expected, _ = _ref().rnn_step_forward(x, h_prev, params)
        before = _copies(x=x, h_prev=h_prev, params=params)
        result = guarded_call("rnn_step_forward", rnn_step_forward, x, h_prev, params)
        h = _out("rnn_step_forward", result, "h")
        _unchanged("rnn_step_forward", before, {"x": x, "h_prev": h_prev, "params": params})
        assert_close("h", h, expected, dims=("n", "h"), context=_ctx(seed, N=N, D=D, H=H))


def check_forward(rnn_forward, seeds=(10, 11, 12, 13)) -> None:
    """hs for all time steps from a non-zero h0, on every case (T = 1 and N = 1 included)."""
    for seed, (N, T, D, H, V) in zip(seeds, CASES, strict=False):
        _, x, h0, params = _case(seed, N, T, D, H, V)
        expected, _ = _ref().rnn_forward(x, h0, params)
        before = _copies(x=x, h0=h0, params=params)
        result = guarded_call("rnn_forward", rnn_forward, x, h0, params)
        hs = _out("rnn_forward", result, "hs")
        _unchanged("rnn_forward", before, {"x": x, "h0": h0, "params": params})
        assert_close(
            "hs", hs, expected, dims=("n", "t", "h"), context=_ctx(seed, N=N, T=T, D=D, H=H)
        )


def check_output_forward(temporal_affine_forward, seeds=(20, 21, 22, 23)) -> None:
    """ys[:, t] = hs[:, t] W_hy^T + b_y at every step; inputs untouched."""
    for seed, (N, T, D, H, V) in zip(seeds, CASES, strict=False):
        rng, _, _, params = _case(seed, N, T, D, H, V)
        hs = _np.tanh(rng.normal(0, 1, (N, T, H)))
        out_params = {"W_hy": params["W_hy"], "b_y": params["b_y"]}
        expected, _ = _ref().temporal_affine_forward(hs, out_params)
        before = _copies(hs=hs, params=out_params)
        result = guarded_call("temporal_affine_forward", temporal_affine_forward, hs, out_params)
        ys = _out("temporal_affine_forward", result, "ys")
        _unchanged("temporal_affine_forward", before, {"hs": hs, "params": out_params})
        assert_close(
            "ys", ys, expected, dims=("n", "t", "v"), context=_ctx(seed, N=N, T=T, H=H, V=V)
        )


def _loss_value(result):
    loss = _out("softmax_loss_forward", result, "loss")
    arr = assert_array("loss", loss, ())
    return arr


def check_loss_forward(softmax_loss_forward, seeds=(30, 31, 32, 33)) -> None:
    """Mean cross-entropy over unmasked steps: with a padding mask, without one (None), with
    logits large enough to overflow a naive exp, and uniform logits (loss = ln V)."""
    ref = _ref()
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
            expected, _ = ref.softmax_loss_forward(y, c, m)
            before = _copies(ys=y, targets=c) if m is None else _copies(ys=y, targets=c, mask=m)
            result = guarded_call("softmax_loss_forward", softmax_loss_forward, y, c, m)
            loss = _loss_value(result)
            after = {"ys": y, "targets": c} if m is None else {"ys": y, "targets": c, "mask": m}
            _unchanged("softmax_loss_forward", before, after)
            assert_close(
                "loss", loss, expected, context=f"{label}, N={N}, T={T}, V={V}, seed={seed}"
            )


seal(__name__)
