"""Checks for the assignment ch05_lstm (the LSTM and its peephole variant, forward and backward).

Each ``check_*`` takes the student's function(s), runs them on random cases (random shapes that
include N = 1, T = 1 and H != D, a non-zero initial state (h0, c0)), compares with a trusted copy
of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first problem: which output
or gradient, which time step, which gate's rows of a weight gradient (blocks i, f, g, o), and
the largest error, never an expected value. The seeds are arguments, so a hidden test cell fixes
them and grading is repeatable.

The backward checks are layered, so a learner sees which part to fix: the step backward first
checks the step forward whose cache it consumes; the sequence backward first checks the step
backward (one case) and the sequence forward. Backward functions run with torch autograd
forbidden as well as the reference implementations.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._guard import GradingError, recording, seal

__all__ = [
    "check_step_forward",
    "check_step_backward",
    "check_forward",
    "check_backward",
    "check_peephole_step_forward",
    "check_peephole_step_backward",
]

GATES = ("i", "f", "g", "o")  # row blocks of W_x, W_h and b, PyTorch's order
PEEPHOLES = ("w_ci", "w_cf", "w_co")
ATOL, RTOL = 1e-6, 1e-5  # assert_close's defaults, repeated to locate the wrong gate rows

# (N, T, D, H): batch, time, input, hidden; the edge cases the contract names (N = 1, T = 1,
# H != D, D = 1), kept small so the notebook runs in seconds.
CASES = ((3, 4, 5, 2), (1, 3, 2, 4), (2, 1, 3, 3), (4, 2, 1, 5))


def _ref():
    """The trusted reference, or None in a student's kernel under the class-scale grader, which
    computes expected values in its own process when it replays the recorded results."""
    return None if recording() else trusted_reference("rnn_ref.numpy")


def _case(seed: int, N: int, T: int, D: int, H: int, peephole: bool = False):
    rng = _np.random.default_rng(seed)
    params = {
        "W_x": rng.normal(0, 1.0 / _np.sqrt(D), (4 * H, D)),
        "W_h": rng.normal(0, 1.0 / _np.sqrt(H), (4 * H, H)),
        "b": rng.normal(0, 0.5, 4 * H),
    }
    if peephole:
        params.update({k: rng.normal(0, 0.7, H) for k in PEEPHOLES})
    x = rng.normal(0, 1, (N, T, D))
    # Non-zero initial states, so code that ignores h0 or c0 is caught.
    h0 = rng.normal(0, 0.5, (N, H))
    c0 = rng.normal(0, 1.0, (N, H))
    dhs = rng.normal(0, 1, (N, T, H))
    dc = rng.normal(0, 1, (N, H))  # upstream gradient of c, for the step backward
    return x, h0, c0, params, dhs, dc


def _copy(params: dict) -> dict:
    return {k: v.copy() for k, v in params.items()}


def _ctx(seed, **shape) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _pair(fn_name: str, value, what: str):
    if not (isinstance(value, tuple | list) and len(value) == 2):
        got = (
            f"a {type(value).__name__} of {len(value)}"
            if isinstance(value, tuple | list)
            else type(value).__name__
        )
        raise GradingError(f"{fn_name} should return {what}; got {got}")
    return value


def _step_out(fn_name: str, result):
    """((h, c), cache) from a step forward's result, with the structure checked."""
    state, cache = _pair(fn_name, result, "((h, c), cache), a tuple of two")
    h, c = _pair(fn_name, state, "((h, c), cache): its first element must be the pair (h, c)")
    return h, c, cache


def _seq_out(fn_name: str, result):
    hs, cache = _pair(fn_name, result, "(hs, cache), a tuple of two")
    return hs, cache


def _back_out(fn_name: str, result, prev: tuple[str, str], keys):
    """dx, (d_prev_h, d_prev_c), grads from a backward's result, with the structure checked."""
    what = f"(dx, ({prev[0]}, {prev[1]}), grads)"
    if not (isinstance(result, tuple | list) and len(result) == 3):
        got = (
            f"a {type(result).__name__} of {len(result)}"
            if isinstance(result, tuple | list)
            else type(result).__name__
        )
        raise GradingError(f"{fn_name} should return {what}, a tuple of three; got {got}")
    dx, dstate, grads = result
    dh, dc = _pair(fn_name, dstate, f"{what}: its second element must be a pair")
    if not isinstance(grads, dict):
        raise GradingError(
            f"{fn_name} should return grads as a dict with keys {sorted(keys)}, "
            f"got a {type(grads).__name__}"
        )
    missing = [k for k in keys if k not in grads]
    if missing:
        raise GradingError(f"{fn_name}: grads is missing {', '.join(map(repr, missing))}")
    return dx, dh, dc, grads


def _gate_label(wrong, H: int) -> str:
    """Which gate blocks (rows [0:H], [H:2H], ...) hold the wrong entries of a (4H, ...) array."""
    per_gate = wrong.reshape(4, H, -1).any(axis=(1, 2))
    names = [g for g, bad in zip(GATES, per_gate, strict=True) if bad]
    rows = ", ".join(f"[{k * H}:{(k + 1) * H}]" for k, bad in enumerate(per_gate) if bad)
    if len(names) == 1:
        return f"in the rows of gate {names[0]} (rows {rows})"
    return f"in the rows of gates {', '.join(names)} (rows {rows})"


def _close(name, actual, expected, *, dims, context, H=None, backward_time=False) -> None:
    """assert_close, with two additions to the message: for a (4H, ...) gradient, the gate
    blocks whose rows are wrong; for a backward output over time, the last wrong time step
    (the backward pass starts there)."""
    if expected is None:  # recording in the student's kernel: the grader judges later
        return
    try:
        assert_close(name, actual, expected, dims=dims, atol=ATOL, rtol=RTOL, context=context)
    except GradingError as e:
        msg = str(e)
        head = f"{name} is wrong at "
        if not msg.startswith(head):  # NaN, wrong shape, not an array: already clear
            raise
        arr = _np.asarray(actual, dtype=_np.float64)
        exp = _np.asarray(expected, dtype=_np.float64)
        wrong = _np.abs(arr - exp) > ATOL + RTOL * _np.abs(exp)
        if H is not None:
            msg = f"{name} is wrong {_gate_label(wrong, H)}, at " + msg[len(head) :]
        if backward_time and "t" in dims:
            last = int(_np.argwhere(wrong)[:, dims.index("t")].max())
            msg += (
                f"; the last wrong time step is t={last} (the backward pass starts at the "
                "last step, so look there first)"
            )
        raise GradingError(msg) from None


def _close_all(checks, context) -> None:
    """Compare several outputs; report the first wrong one and name the others that are wrong."""
    failures = []
    for name, actual, expected, kw in checks:
        try:
            _close(name, actual, expected, context=context, **kw)
        except GradingError as e:
            failures.append((name, str(e)))
    if failures:
        msg = failures[0][1]
        if len(failures) > 1:
            msg += "; also wrong: " + ", ".join(n for n, _ in failures[1:])
        raise GradingError(msg)


def _grad_checks(grads, expected, keys, H, dims_in):
    """(name, actual, expected, kw) for each parameter gradient, gate-located where it can be."""
    out = []
    for k in keys:
        exp = None if expected is None else expected[k]
        if k == "W_x":
            kw = {"dims": ("row", dims_in), "H": H}
        elif k == "W_h":
            kw = {"dims": ("row", "col"), "H": H}
        elif k == "b":
            kw = {"dims": ("row",), "H": H}
        else:  # a peephole weight (H,)
            kw = {"dims": ("h",)}
        out.append((f"d{k}", grads[k], exp, kw))
    return out


def _forward_first(fn_name: str, part: str, pairs, context) -> None:
    """The forward a backward depends on must be right first."""
    try:
        _close_all(pairs, context)
    except GradingError as e:
        raise GradingError(
            f"your {fn_name} is wrong, so the cache it gives the backward pass cannot be "
            f"trusted: fix the forward first ({part}). {e}"
        ) from None


# ---------------------------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------------------------


def _check_step_forward(fn, fn_name, peephole, seeds) -> None:
    for seed, (N, _T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, c0, params, _, _ = _case(seed, N, 1, D, H, peephole)
        x = x[:, 0]
        ref = _ref()
        eh = ec = None
        if ref is not None:
            (eh, ec), _ = getattr(ref, fn_name)(x, (h0, c0), params)
        result = guarded_call(fn_name, fn, x.copy(), (h0.copy(), c0.copy()), _copy(params))
        h, c, _ = _step_out(fn_name, result)
        assert_array("h", h, (N, H))
        assert_array("c", c, (N, H))
        # c first: h = o * tanh(c) is wrong whenever c is.
        checks = [("c", c, ec, {"dims": ("n", "h")}), ("h", h, eh, {"dims": ("n", "h")})]
        _close_all(checks, _ctx(seed, N=N, D=D, H=H))


def _check_step_backward(fwd, bwd, fwd_name, bwd_name, peephole, part, seeds) -> None:
    keys = ("W_x", "W_h", "b", *(PEEPHOLES if peephole else ()))
    for seed, (N, _T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, c0, params, dhs, dc = _case(seed, N, 1, D, H, peephole)
        x, dh = x[:, 0], dhs[:, 0]
        ctx = _ctx(seed, N=N, D=D, H=H)
        ref = _ref()
        eh = ec = exp = None
        if ref is not None:
            (eh, ec), rcache = getattr(ref, fwd_name)(x, (h0, c0), params)
            exp = getattr(ref, bwd_name)((dh, dc), rcache)
        result = guarded_call(fwd_name, fwd, x.copy(), (h0.copy(), c0.copy()), _copy(params))
        h, c, cache = _step_out(fwd_name, result)
        pairs = [("c", c, ec, {"dims": ("n", "h")}), ("h", h, eh, {"dims": ("n", "h")})]
        _forward_first(fwd_name, part, pairs, ctx)

        result = guarded_call(bwd_name, bwd, (dh.copy(), dc.copy()), cache, autograd=True)
        dx, dh_prev, dc_prev, grads = _back_out(bwd_name, result, ("dh_prev", "dc_prev"), keys)
        e_dx, (e_dh, e_dc), e_grads = exp if exp is not None else (None, (None, None), None)
        # Parameter gradients first: their gate rows say which gate's derivative is wrong.
        checks = _grad_checks(grads, e_grads, keys, H, "d")
        checks += [
            ("dx", dx, e_dx, {"dims": ("n", "d")}),
            ("dh_prev", dh_prev, e_dh, {"dims": ("n", "h")}),
            ("dc_prev", dc_prev, e_dc, {"dims": ("n", "h")}),
        ]
        for name, actual, *_ in checks:
            shape = {"dx": (N, D), "dh_prev": (N, H), "dc_prev": (N, H)}.get(name)
            if shape is None:
                shape = params[name[1:]].shape
            assert_array(name, actual, shape)
        _close_all(checks, ctx)


def check_step_forward(lstm_step_forward, seeds=(0, 1, 2, 3)) -> None:
    """(h, c) of one LSTM step from a non-zero (h_prev, c_prev), gate order i, f, g, o."""
    _check_step_forward(lstm_step_forward, "lstm_step_forward", False, seeds)


def check_step_backward(lstm_step_forward, lstm_step_backward, seeds=(10, 11, 12, 13)) -> None:
    """dx, dh_prev, dc_prev and dW_x, dW_h, db of one step, from the student's own forward
    cache (checked first) and random upstream gradients (dh, dc)."""
    _check_step_backward(
        lstm_step_forward,
        lstm_step_backward,
        "lstm_step_forward",
        "lstm_step_backward",
        False,
        "Part 1",
        seeds,
    )


def check_peephole_step_forward(lstm_peephole_step_forward, seeds=(40, 41, 42, 43)) -> None:
    """(h, c) of one peephole step: i, f look at c_prev, o at the new c."""
    _check_step_forward(lstm_peephole_step_forward, "lstm_peephole_step_forward", True, seeds)


def check_peephole_step_backward(
    lstm_peephole_step_forward, lstm_peephole_step_backward, seeds=(50, 51, 52, 53)
) -> None:
    """As :func:`check_step_backward` for the peephole cell, with dw_ci, dw_cf, dw_co."""
    _check_step_backward(
        lstm_peephole_step_forward,
        lstm_peephole_step_backward,
        "lstm_peephole_step_forward",
        "lstm_peephole_step_backward",
        True,
        "Part 5",
        seeds,
    )


# ---------------------------------------------------------------------------------------------
# Whole sequence
# ---------------------------------------------------------------------------------------------


def check_forward(lstm_forward, seeds=(20, 21, 22, 23)) -> None:
    """hs for all time steps from a non-zero (h0, c0), on every case (T = 1 and N = 1 included)."""
    for seed, (N, T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, c0, params, _, _ = _case(seed, N, T, D, H)
        ref = _ref()
        expected = None if ref is None else ref.lstm_forward(x, (h0, c0), params)[0]
        result = guarded_call("lstm_forward", lstm_forward, x, (h0.copy(), c0.copy()), params)
        hs, _ = _seq_out("lstm_forward", result)
        assert_array("hs", hs, (N, T, H))
        ctx = _ctx(seed, N=N, T=T, D=D, H=H)
        _close("hs", hs, expected, dims=("n", "t", "h"), context=ctx)


def check_backward(
    lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward, seeds=(30, 31, 32, 33)
) -> None:
    """dx at every step, dh0, dc0 and dW_x, dW_h, db summed over time, for random upstream
    gradients dhs at every step. Checks first the step backward (one case) and the sequence
    forward that lstm_backward builds on."""
    try:
        check_step_backward(lstm_step_forward, lstm_step_backward, seeds=(seeds[0],))
    except GradingError as e:  # DelegationError keeps its type
        raise type(e)(
            f"lstm_backward builds on your lstm_step_backward (Part 2), whose check fails; fix "
            f"that first: {e}"
        ) from None
    keys = ("W_x", "W_h", "b")
    for seed, (N, T, D, H) in zip(seeds, CASES, strict=False):
        x, h0, c0, params, dhs, _ = _case(seed, N, T, D, H)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H)
        ref = _ref()
        e_hs = exp = None
        if ref is not None:
            e_hs, rcache = ref.lstm_forward(x, (h0, c0), params)
            exp = ref.lstm_backward(dhs, rcache)
        result = guarded_call("lstm_forward", lstm_forward, x, (h0.copy(), c0.copy()), params)
        hs, cache = _seq_out("lstm_forward", result)
        _forward_first("lstm_forward", "Part 3", [("hs", hs, e_hs, {"dims": ("n", "t", "h")})], ctx)

        result = guarded_call("lstm_backward", lstm_backward, dhs, cache, autograd=True)
        dx, dh0, dc0, grads = _back_out("lstm_backward", result, ("dh0", "dc0"), keys)
        assert_array("dx", dx, (N, T, D))
        assert_array("dh0", dh0, (N, H))
        assert_array("dc0", dc0, (N, H))
        for k in keys:
            assert_array(f"d{k}", grads[k], params[k].shape)
        e_dx, (e_dh0, e_dc0), e_grads = exp if exp is not None else (None, (None, None), None)
        # dx first: its time steps show where the backward pass over time goes wrong.
        checks = [
            ("dx", dx, e_dx, {"dims": ("n", "t", "d"), "backward_time": True}),
            ("dh0", dh0, e_dh0, {"dims": ("n", "h")}),
            ("dc0", dc0, e_dc0, {"dims": ("n", "h")}),
        ]
        checks += _grad_checks(grads, e_grads, keys, H, "d")
        _close_all(checks, ctx)


seal(__name__)
