"""Checks for the assignment ch06_gru (the GRU, forward and backward, both reset placements).

Each ``check_*`` takes the student's function(s), runs them on random cases (random shapes
that include N = 1, T = 1 and H != D, a non-zero initial state, random upstream gradients),
compares with a trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming
the first problem. The seeds are arguments, so a hidden test cell fixes them and grading is
repeatable.

The checks are layered, as the parts of the assignment are: a backward is called with the
cache of the student's own forward, so its check first checks that forward and, if it is
wrong, says "fix the forward first" instead of blaming the backward. A wrong parameter
gradient is reported by gate block (``dW_h is wrong in the rows of gate n``), since the gate
a mistake lives in is what a learner needs to find it. Backward functions run with autograd
forbidden.

Parameters, as in :mod:`rnn_ref.numpy.gru`: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x`` (3H,),
``b_h`` (3H,), row blocks in the order r, z, n. Reset "after" (PyTorch):
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); reset "before" (Cho et al. 2014):
n = tanh(W_in x + b_in + W_hn (r * h) + b_hn); both h' = (1 - z) * n + z * h.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._cases import pair as _pair
from ._guard import GradingError, recording, seal

__all__ = [
    "check_step_forward",
    "check_step_backward",
    "check_forward",
    "check_backward",
    "check_step_forward_before",
    "check_step_backward_before",
]

# (N, T, D, H): batch, time, input, hidden; the edge cases the contract names (N = 1, T = 1,
# H != D), kept small so a hidden test cell runs in well under a second.
CASES = ((3, 4, 4, 5), (1, 3, 3, 2), (2, 1, 5, 5), (4, 2, 1, 3))
GATES = ("r", "z", "n")
KEYS = ("W_x", "W_h", "b_x", "b_h")
# Axis names of each parameter gradient's gate block, for the messages.
_DIMS = {"W_x": ("h", "d"), "W_h": ("h", "h_prev"), "b_x": ("h",), "b_h": ("h",)}

# Captured now, before any student cell can rebind them.
_isfinite, _abs, _any = _np.isfinite, _np.abs, _np.any


def _reference():
    return trusted_reference("rnn_ref.numpy")


def _case(seed: int, N: int, T: int, D: int, H: int):
    """Inputs, a non-zero h0 (so ignoring it is caught), parameters and upstream gradients."""
    rng = _np.random.default_rng(seed)
    params = {
        "W_x": rng.normal(0, 1.0 / _np.sqrt(D), (3 * H, D)),
        "W_h": rng.normal(0, 1.0 / _np.sqrt(H), (3 * H, H)),
        "b_x": rng.normal(0, 0.5, 3 * H),
        "b_h": rng.normal(0, 0.5, 3 * H),
    }
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (N, H))
    dhs = rng.normal(0, 1, (N, T, H))
    return x, h0, params, dhs


def _ctx(seed, **shape) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _triple(fn_name, result, what):
    if not (isinstance(result, tuple) and len(result) == 3):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise GradingError(f"{fn_name} should return ({what}, grads), a tuple of three; got {got}")
    return result


def _grads_dict(fn_name, grads, params) -> dict:
    """The student's grads as a dict with the keys and shapes of params (else GradingError)."""
    if not isinstance(grads, dict):
        raise GradingError(
            f"{fn_name} should return grads as a dict with the keys of params "
            f"(W_x, W_h, b_x, b_h); got a {type(grads).__name__}"
        )
    missing = [k for k in KEYS if k not in grads]
    if missing:
        raise GradingError(
            f"{fn_name}: grads is missing {', '.join(missing)}; it needs the keys of params "
            f"(W_x, W_h, b_x, b_h), got {sorted(str(k) for k in grads)}"
        )
    return {k: assert_array(f"d{k}", grads[k], params[k].shape) for k in KEYS}


def _check_forward_first(fwd_name, bwd_name, out_name, out, expected, dims, ctx) -> None:
    """A backward is only judged on top of a correct forward."""
    if expected is None:
        return
    try:
        assert_close(out_name, out, expected, dims=dims, context=ctx)
    except GradingError as e:
        raise GradingError(
            f"{bwd_name} cannot be checked because {fwd_name} is wrong; fix the forward first "
            f"({bwd_name} is called with your forward's cache). {e}"
        ) from None


def _wrong_gate_blocks(name, actual, expected, H, dims):
    """[(gate, message)] for the gate blocks of a parameter gradient that are wrong."""
    bad = []
    for k, gate in enumerate(GATES):
        rows = slice(k * H, (k + 1) * H)
        try:
            assert_close(f"{name} (gate {gate} block)", actual[rows], expected[rows], dims=dims)
        except GradingError as e:
            bad.append((gate, str(e)))
    return bad


def _judge_backward(fn_name, outputs, grads, expected_grads, H, ctx, hint=None, advice="") -> None:
    """Compare every output; one message naming all that is wrong, details of the first.

    ``outputs``: [(name, actual, expected, dims)]; ``grads``/``expected_grads``: dicts keyed
    like params; ``hint(name, actual, expected)`` may add a sentence about one output;
    ``advice`` ends the message of any failure.
    """
    failures = []  # (what is wrong, details)
    for name, actual, expected, dims in outputs:
        try:
            assert_close(name, actual, expected, dims=dims)
        except GradingError as e:
            extra = hint(name, actual, expected) if hint else ""
            failures.append((f"{name} is wrong", str(e) + extra))
    for key in KEYS:
        bad = _wrong_gate_blocks(f"d{key}", grads[key], expected_grads[key], H, _DIMS[key])
        if bad:
            part = "rows" if key.startswith("W") else "entries"
            names = [g for g, _ in bad]
            gates = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            plural = "s" if len(bad) > 1 else ""
            failures.append((f"d{key} is wrong in the {part} of gate{plural} {gates}", bad[0][1]))
    if failures:
        summary = "; ".join(what for what, _ in failures)
        raise GradingError(f"{fn_name}: {summary} ({ctx}). First: {failures[0][1]}{advice}")


# --- forward checks -------------------------------------------------------------------------


def _check_step_forward(fn, fn_name, reset, seeds) -> None:
    for seed, (N, _T, D, H) in zip(seeds, CASES, strict=False):
        x, h_prev, params, _ = _case(seed, N, 1, D, H)
        x = x[:, 0]
        expected = None
        if not recording():
            expected = _reference().gru_step_forward(x, h_prev, params, reset=reset)[0]
        h, _ = _pair(fn_name, guarded_call(fn_name, fn, x, h_prev, params), "h, cache")
        h = assert_array("h", h, (N, H))
        if expected is not None:
            assert_close("h", h, expected, dims=("n", "h"), context=_ctx(seed, N=N, D=D, H=H))


def check_step_forward(gru_step_forward, seeds=(0, 1, 2, 3)) -> None:
    """One step, PyTorch's placement: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    _check_step_forward(gru_step_forward, "gru_step_forward", "after", seeds)


def check_step_forward_before(gru_step_forward_before, seeds=(4, 5, 6, 7)) -> None:
    """One step, Cho et al.'s placement: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)."""
    _check_step_forward(gru_step_forward_before, "gru_step_forward_before", "before", seeds)


def check_forward(gru_forward, seeds=(10, 11, 12, 13)) -> None:
    """hs for all time steps from a non-zero h0 (T = 1 and N = 1 included)."""
    for seed, (N, T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, params, _ = _case(seed, N, T, D, H)
        expected = None if recording() else _reference().gru_forward(x, h0, params)[0]
        hs, _ = _pair(
            "gru_forward", guarded_call("gru_forward", gru_forward, x, h0, params), "hs, cache"
        )
        hs = assert_array("hs", hs, (N, T, H))
        if expected is not None:
            ctx = _ctx(seed, N=N, T=T, D=D, H=H)
            assert_close("hs", hs, expected, dims=("n", "t", "h"), context=ctx)


# --- backward checks ------------------------------------------------------------------------


def _check_step_backward(fwd, bwd, fwd_name, bwd_name, reset, seeds) -> None:
    for seed, (N, _T, D, H) in zip(seeds, CASES, strict=False):
        x, h_prev, params, dhs = _case(seed, N, 1, D, H)
        x, dh = x[:, 0], dhs[:, 0]
        ctx = _ctx(seed, N=N, D=D, H=H)
        h_ref = dx_ref = dh_prev_ref = grads_ref = None
        if not recording():
            ref = _reference()
            h_ref, cache_ref = ref.gru_step_forward(x, h_prev, params, reset=reset)
            dx_ref, dh_prev_ref, grads_ref = ref.gru_step_backward(dh, cache_ref)

        h, cache = _pair(fwd_name, guarded_call(fwd_name, fwd, x, h_prev, params), "h, cache")
        h = assert_array("h", h, (N, H))
        _check_forward_first(fwd_name, bwd_name, "h", h, h_ref, ("n", "h"), ctx)

        result = guarded_call(bwd_name, bwd, dh, cache, autograd=True)
        dx, dh_prev, grads = _triple(bwd_name, result, "dx, dh_prev")
        dx = assert_array("dx", dx, (N, D))
        dh_prev = assert_array("dh_prev", dh_prev, (N, H))
        grads = _grads_dict(bwd_name, grads, params)
        if grads_ref is not None:
            outputs = [
                ("dx", dx, dx_ref, ("n", "d")),
                ("dh_prev", dh_prev, dh_prev_ref, ("n", "h")),
            ]
            _judge_backward(bwd_name, outputs, grads, grads_ref, H, ctx)


def check_step_backward(gru_step_forward, gru_step_backward, seeds=(20, 21, 22, 23)) -> None:
    """dx, dh_prev and the four parameter gradients of one step (reset "after"), given the
    cache of the student's own forward, which is checked first."""
    _check_step_backward(
        gru_step_forward, gru_step_backward, "gru_step_forward", "gru_step_backward", "after", seeds
    )


def check_step_backward_before(
    gru_step_forward_before, gru_step_backward_before, seeds=(24, 25, 26, 27)
) -> None:
    """The same for Cho et al.'s placement (reset "before")."""
    _check_step_backward(
        gru_step_forward_before,
        gru_step_backward_before,
        "gru_step_forward_before",
        "gru_step_backward_before",
        "before",
        seeds,
    )


def _last_step_right(name, actual, expected) -> str:
    """A hint when dx is right at the last step only: the recurrent gradient is missing."""
    if name != "dx" or expected.shape[1] < 2:
        return ""
    err = _abs(_np.asarray(actual, dtype=float) - expected)
    wrong = ~_isfinite(err) | (err > 1e-6 + 1e-5 * _abs(expected))
    if not _any(wrong[:, -1]) and _any(wrong[:, :-1]):
        return (
            " (dx is right at the last time step and wrong before it, so look at what reaches "
            "h_t from step t + 1: that step's dh_prev, and adding it to dhs[:, t])"
        )
    return ""


def check_backward(gru_forward, gru_backward, seeds=(30, 31, 32, 33)) -> None:
    """Backpropagation through time with an upstream gradient at every step: dx (the message
    names the first wrong time step), dh0 and the parameter gradients summed over time, given
    the cache of the student's own gru_forward, which is checked first."""
    for seed, (N, T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, params, dhs = _case(seed, N, T, D, H)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H)
        hs_ref = dx_ref = dh0_ref = grads_ref = None
        if not recording():
            ref = _reference()
            hs_ref, cache_ref = ref.gru_forward(x, h0, params)
            dx_ref, dh0_ref, grads_ref = ref.gru_backward(dhs, cache_ref)

        result = guarded_call("gru_forward", gru_forward, x, h0, params)
        hs, cache = _pair("gru_forward", result, "hs, cache")
        hs = assert_array("hs", hs, (N, T, H))
        _check_forward_first("gru_forward", "gru_backward", "hs", hs, hs_ref, ("n", "t", "h"), ctx)

        result = guarded_call("gru_backward", gru_backward, dhs, cache, autograd=True)
        dx, dh0, grads = _triple("gru_backward", result, "dx, dh0")
        dx = assert_array("dx", dx, (N, T, D))
        dh0 = assert_array("dh0", dh0, (N, H))
        grads = _grads_dict("gru_backward", grads, params)
        if grads_ref is not None:
            outputs = [("dx", dx, dx_ref, ("n", "t", "d")), ("dh0", dh0, dh0_ref, ("n", "h"))]
            advice = (
                ". If your gru_backward calls your gru_step_backward, get part 2's tests "
                "passing first."
            )
            _judge_backward(
                "gru_backward", outputs, grads, grads_ref, H, ctx, _last_step_right, advice
            )


seal(__name__)
