"""Checks for the assignment ch07_variants (stacked and bidirectional wrappers, torch's h_n
layout, and the "RRNN" of seed 004 as its equations are written).

Each ``check_*`` takes the student's function, runs it on random cases (random shapes that
include N = 1, T = 1, H != D, one layer and three, non-zero initial states), compares with a
trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first problem.
The seeds are arguments, so a hidden test cell fixes them and grading is repeatable.

The wrappers of parts 1-3 take the cell to wrap as an argument, ``forward(x, h0, params) ->
(hs, cache)``. The checks pass the vanilla RNN or the GRU (PyTorch's convention) written below:
a copy of what the notebook's set-up cell gives, private to this module, so a wrapper is judged
on its own, whatever else the notebook holds. Where a classic mistake can be recognised (the
reverse direction left in reversed time order, every layer reading x, h_n in direction-major
order, the RRNN carrying h' instead of h), the message says so.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._cases import pair as _pair
from ._guard import GradingError, recording, seal

__all__ = [
    "check_stacked_forward",
    "check_bidirectional_forward",
    "check_deep_bidirectional_forward",
    "check_rrnn_step_forward",
    "check_rrnn_forward",
]

# (N, T, D, H, L, cell): batch, time, input, hidden, layers, the cell the wrapper wraps.
# The first has D == H, so a layer that reads x instead of its input still runs and the
# message can say what it did.
WRAPPER_CASES = (
    (2, 4, 3, 3, 2, "gru"),
    (3, 5, 4, 6, 2, "rnn"),
    (1, 4, 3, 2, 3, "gru"),
    (2, 1, 5, 5, 2, "rnn"),
    (4, 3, 2, 3, 1, "gru"),
)
# (N, T, D, H, R, O): batch, time, input, hidden, auxiliary and output sizes of the RRNN.
RRNN_CASES = ((3, 4, 4, 5, 3, 2), (1, 3, 3, 2, 4, 1), (2, 1, 2, 4, 4, 3), (4, 2, 1, 3, 2, 5))

_tanh, _exp, _abs, _where = _np.tanh, _np.exp, _np.abs, _np.where


def _reference():
    return trusted_reference("rnn_ref.numpy")


# --- the cells handed to the student's wrappers ----------------------------------------------


def _sigmoid(a):
    e = _exp(-_abs(a))
    return _where(a >= 0, 1 / (1 + e), e / (1 + e))


def _rnn_forward(x, h0, params):
    """h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h); x (N, T, D), h0 (N, H) -> (hs (N, T, H), None)."""
    N, T, _ = x.shape
    hs = _np.empty((N, T, h0.shape[1]))
    h = h0
    for t in range(T):
        h = _tanh(x[:, t] @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        hs[:, t] = h
    return hs, None


def _gru_forward(x, h0, params):
    """The GRU in PyTorch's convention (blocks r, z, n); same shapes as _rnn_forward."""
    N, T, _ = x.shape
    H = h0.shape[1]
    hs = _np.empty((N, T, H))
    h = h0
    for t in range(T):
        gx = x[:, t] @ params["W_x"].T + params["b_x"]
        gh = h @ params["W_h"].T + params["b_h"]
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = _tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs[:, t] = h
    return hs, None


CELLS = {"rnn": _rnn_forward, "gru": _gru_forward}
_NAMES = {"rnn": "the vanilla RNN's rnn_forward", "gru": "the GRU's gru_forward"}


# --- random cases ---------------------------------------------------------------------------


def _cell_params(rng, cell: str, D: int, H: int) -> dict:
    if cell == "rnn":
        return {
            "W_xh": rng.normal(0, 1.0 / _np.sqrt(D), (H, D)),
            "W_hh": rng.normal(0, 1.0 / _np.sqrt(H), (H, H)),
            "b_h": rng.normal(0, 0.5, H),
        }
    return {
        "W_x": rng.normal(0, 1.0 / _np.sqrt(D), (3 * H, D)),
        "W_h": rng.normal(0, 1.0 / _np.sqrt(H), (3 * H, H)),
        "b_x": rng.normal(0, 0.5, 3 * H),
        "b_h": rng.normal(0, 0.5, 3 * H),
    }


def _wrapper_case(seed, N, T, D, H, L, cell, bidirectional):
    """x, h0 (L * dirs, N, H) non-zero (so ignoring it is caught), and the layers: a list of
    params dicts, or of (forward, reverse) pairs of dicts when bidirectional."""
    rng = _np.random.default_rng(seed)
    dirs = 2 if bidirectional else 1
    layers = []
    for layer in range(L):
        d_in = D if layer == 0 else dirs * H
        if bidirectional:
            layers.append(tuple(_cell_params(rng, cell, d_in, H) for _ in range(2)))
        else:
            layers.append(_cell_params(rng, cell, d_in, H))
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (L * dirs, N, H))
    return x, h0, layers


def _ctx(seed, **shape) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _multilayer(x, h0, layers, cell, bidirectional):
    """The reference's (out, h_n) in torch.nn's layout, or None while only recording."""
    if recording():
        return None, None
    out, h_n, _ = _reference().multilayer_forward(
        x, h0, layers, cell=cell, bidirectional=bidirectional
    )
    return out, h_n


def _matches(actual, expected) -> bool:
    return (
        expected is not None
        and actual.shape == expected.shape
        and bool(_np.all(_abs(actual - expected) <= 1e-6 + 1e-5 * _abs(expected)))
    )


def _judge(fn_name, outputs, ctx, hint=None, **case) -> None:
    """``outputs``: [(name, actual, expected, dims)]. Every wrong output is named, with the
    details of the first; ``hint(**case)``, called only on a failure, may add a sentence that
    names a recognised mistake."""
    failures = []
    for name, actual, expected, dims in outputs:
        if expected is None:
            continue
        try:
            assert_close(name, actual, expected, dims=dims)
        except GradingError as e:
            failures.append((name, str(e)))
    if not failures:
        return
    wrong = " and ".join(name for name, _ in failures)
    msg = f"{fn_name}: {wrong} {'is' if len(failures) == 1 else 'are'} wrong ({ctx})."
    sentence = hint(**case) if hint else ""
    if sentence:
        msg += " " + sentence
    raise GradingError(f"{msg} First: {failures[0][1]}")


# --- part 1: stacked ------------------------------------------------------------------------


def _stacked_hint(x, h0, layers, cell, out, h_n, out_ref) -> str:
    L, H, D = len(layers), h0.shape[2], x.shape[2]
    if D == H and L > 1:
        alt = None
        for layer in range(L):
            alt, _ = CELLS[cell](x, h0[layer], layers[layer])
        if _matches(out, alt):
            return (
                "Your top layer computes what it would if every layer read x: layer l > 0 "
                "must read the states hs of layer l - 1."
            )
    if L > 1 and _matches(h_n, out_ref[:, -1][None].repeat(L, 0)):
        return "Every row of your h_n is the top layer's last state: h_n[l] is layer l's."
    return ""


def check_stacked_forward(stacked_forward, seeds=(0, 1, 2, 3, 4)) -> None:
    """out (N, T, H): the top layer's states; h_n (L, N, H): every layer's last state. Layer 0
    reads x, layer l > 0 reads the states of layer l - 1; the cell is the RNN or the GRU."""
    for seed, (N, T, D, H, L, cell) in zip(seeds, WRAPPER_CASES, strict=False):
        x, h0, layers = _wrapper_case(seed, N, T, D, H, L, cell, False)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H, L=L) + f", cell={cell}"
        out_ref, h_n_ref = _multilayer(x, h0, layers, cell, False)
        result = guarded_call("stacked_forward", stacked_forward, x, h0, layers, CELLS[cell])
        out, h_n = _pair("stacked_forward", result, "out, h_n")
        out = assert_array("out", out, (N, T, H))
        h_n = assert_array("h_n", h_n, (L, N, H))
        outputs = [("out", out, out_ref, _DIMS), ("h_n", h_n, h_n_ref, ("l", "n", "h"))]
        _judge(
            "stacked_forward", outputs, ctx, _stacked_hint,
            x=x, h0=h0, layers=layers, cell=cell, out=out, h_n=h_n, out_ref=out_ref,
        )  # fmt: skip


# --- part 2: bidirectional ------------------------------------------------------------------


def _bidirectional_hint(out, h_n, out_ref) -> str:
    T, H = out.shape[1], h_n.shape[2]
    rev, rev_ref = out[:, :, H:], out_ref[:, :, H:]
    if T > 1 and _matches(rev, rev_ref[:, ::-1]):
        return (
            "The reverse half of out is in reversed time order: out[:, t, H:] must be the "
            "reverse direction's state at position t (after reading x_T, ..., x_t), so flip "
            "its outputs back before concatenating."
        )
    if T > 1 and _matches(h_n[1], rev_ref[:, -1]):
        return (
            "Your h_n[1] is the reverse direction's state at the last position, which it "
            "computes first; its last state is the one at position 0."
        )
    if _matches(rev, out_ref[:, :, :H]):
        return (
            "The reverse half of out equals the forward half: the reverse direction must "
            "read the sequence backwards, with its own parameters params[1]."
        )
    return ""


def check_bidirectional_forward(bidirectional_forward, seeds=(10, 11, 12, 13, 14)) -> None:
    """out (N, T, 2H): out[:, t, :H] the forward state after x_1..x_t, out[:, t, H:] the
    reverse state after x_T..x_t (aligned with x's positions); h_n (2, N, H): each
    direction's last state (the reverse direction's is the one at t = 0)."""
    for seed, (N, T, D, H, _L, cell) in zip(seeds, WRAPPER_CASES, strict=False):
        x, h0, layers = _wrapper_case(seed, N, T, D, H, 1, cell, True)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H) + f", cell={cell}"
        out_ref, h_n_ref = _multilayer(x, h0, layers, cell, True)
        result = guarded_call(
            "bidirectional_forward", bidirectional_forward, x, h0, layers[0], CELLS[cell]
        )
        out, h_n = _pair("bidirectional_forward", result, "out, h_n")
        out = assert_array("out", out, (N, T, 2 * H))
        h_n = assert_array("h_n", h_n, (2, N, H))
        outputs = [
            ("out[..., :H] (forward direction)", out[:, :, :H], _half(out_ref, H, 0), _DIMS),
            ("out[..., H:] (reverse direction)", out[:, :, H:], _half(out_ref, H, 1), _DIMS),
            ("h_n", h_n, h_n_ref, ("direction", "n", "h")),
        ]
        _judge(
            "bidirectional_forward", outputs, ctx, _bidirectional_hint,
            out=out, h_n=h_n, out_ref=out_ref,
        )  # fmt: skip


_DIMS = ("n", "t", "h")


def _half(out, H, k):
    return None if out is None else out[:, :, k * H : (k + 1) * H]


# --- part 3: deep and bidirectional, torch's layout -----------------------------------------


def _deep_hint(x, h0, layers, cell, out, h_n, h_n_ref) -> str:
    L = len(layers)
    if L < 2:
        return ""
    order = [2 * layer + d for d in range(2) for layer in range(L)]  # direction-major
    inverse = _np.argsort(order)
    out_dm, _, _ = _reference().multilayer_forward(
        x, h0[inverse], layers, cell=cell, bidirectional=True
    )
    if _matches(h_n, h_n_ref[order]) or _matches(out, out_dm):
        return (
            "Your h_n (or your reading of h0) is in direction-major order (all forward layers, "
            "then all reverse ones); torch.nn's order is layer-major, index 2 * l + d, so "
            "h_n[1] is layer 0's reverse direction."
        )
    return ""


def check_deep_bidirectional_forward(
    deep_bidirectional_forward, seeds=(20, 21, 22, 23, 24)
) -> None:
    """L bidirectional layers; layer l > 0 reads the (N, T, 2H) output of layer l - 1; h0 and
    h_n are (2L, N, H) in torch.nn's order, index 2 * l + d (d = 0 forward, 1 reverse)."""
    for seed, (N, T, D, H, L, cell) in zip(seeds, WRAPPER_CASES, strict=False):
        x, h0, layers = _wrapper_case(seed, N, T, D, H, L, cell, True)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H, L=L) + f", cell={cell}"
        out_ref, h_n_ref = _multilayer(x, h0, layers, cell, True)
        result = guarded_call(
            "deep_bidirectional_forward", deep_bidirectional_forward, x, h0, layers, CELLS[cell]
        )
        out, h_n = _pair("deep_bidirectional_forward", result, "out, h_n")
        out = assert_array("out", out, (N, T, 2 * H))
        h_n = assert_array("h_n", h_n, (2 * L, N, H))
        outputs = [("out", out, out_ref, _DIMS), ("h_n", h_n, h_n_ref, ("l*2+d", "n", "h"))]
        _judge(
            "deep_bidirectional_forward", outputs, ctx, _deep_hint,
            x=x, h0=h0, layers=layers, cell=cell, out=out, h_n=h_n, h_n_ref=h_n_ref,
        )  # fmt: skip


# --- parts 4 and 5: the RRNN of seed 004 ----------------------------------------------------

# The reference's keys (rnn_ref.numpy.rrnn_init): W_xhp, W_hhp, b_hp are the seed's W_{x'h},
# W_{h'h}, b_{h'}; W_hpo multiplies h' and W_ho multiplies h in o_t.
RRNN_KEYS = (
    "W_xh", "W_hh", "b_h", "W_xr", "W_rr", "b_r",
    "W_xhp", "W_hhp", "W_rh", "b_hp", "W_hpo", "W_ho", "b_o",
)  # fmt: skip


def _rrnn_shapes(D, H, R, O) -> dict:
    return {
        "W_xh": (H, D), "W_hh": (H, H), "b_h": (H,),
        "W_xr": (R, D), "W_rr": (R, H), "b_r": (R,),
        "W_xhp": (H, D), "W_hhp": (H, H), "W_rh": (H, R), "b_hp": (H,),
        "W_hpo": (O, H), "W_ho": (O, H), "b_o": (O,),
    }  # fmt: skip


def _rrnn_case(seed, N, T, D, H, R, O):
    """Inputs, a non-zero h0 and parameters large enough that every term matters."""
    rng = _np.random.default_rng(seed)
    params = {
        k: rng.normal(0, 1.0 / _np.sqrt(s[1]) if len(s) == 2 else 0.5, s)
        for k, s in _rrnn_shapes(D, H, R, O).items()
    }
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (N, H))
    return x, h0, params


def _rrnn_hprime(x, h_prev, p):
    """h' of one step, for the hints only."""
    r = _sigmoid(x @ p["W_xr"].T + h_prev @ p["W_rr"].T + p["b_r"])
    a = x @ p["W_xhp"].T + h_prev @ p["W_hhp"].T + (r @ p["W_rh"].T) * h_prev + p["b_hp"]
    return _tanh(a)


def _rrnn_step_hint(x, h_prev, params, h, h_ref) -> str:
    if _matches(h, _rrnn_hprime(x, h_prev, params)):
        return (
            "Your h is h': the state the seed's equations return (and carry) is h_t, the "
            "first equation's; h'_t only enters the output o_t."
        )
    if _matches(h, h_ref):
        return (
            "h is right, so the mistake is in r, h' or o. Check the activations (f = tanh for "
            "h', g = sigmoid for r and o), that W_rh multiplies r_t before the elementwise "
            "product with h_prev, and which weight multiplies which state in o_t (W_hpo "
            "multiplies h', W_ho multiplies h)."
        )
    return ""


def _rrnn_hint(hs, hs_ref) -> str:
    if _matches(hs, hs_ref):
        return (
            "hs is right and os is not: if your rrnn_forward calls your rrnn_step_forward, "
            "get part 4's tests passing first."
        )
    if hs.shape[1] > 1 and _matches(hs[:, :1], hs_ref[:, :1]):
        return (
            "hs is right at the first step and wrong after it: check what you carry to the "
            "next step (the seed's equations carry h_t, not h'_t) and that every step starts "
            "from the previous step's state."
        )
    return ""


def check_rrnn_step_forward(rrnn_step_forward, seeds=(30, 31, 32, 33)) -> None:
    """One step of seed 004 §3.3 with f = tanh, g = sigmoid: h = tanh(W_hh h_prev + W_xh x +
    b_h), r = sigmoid(W_rr h_prev + W_xr x + b_r), h' = tanh(W_hhp h_prev + W_xhp x +
    (W_rh r) * h_prev + b_hp), o = sigmoid(W_hpo h' + W_ho h + b_o); returns ((h, o), cache)."""
    for seed, (N, _T, D, H, R, O) in zip(seeds, RRNN_CASES, strict=False):
        x, h_prev, params = _rrnn_case(seed, N, 1, D, H, R, O)
        x = x[:, 0]
        ctx = _ctx(seed, N=N, D=D, H=H, R=R, O=O)
        h_ref = o_ref = None
        if not recording():
            (h_ref, o_ref), _ = _reference().rrnn_step_forward(x, h_prev, params)
        result = guarded_call("rrnn_step_forward", rrnn_step_forward, x, h_prev, params)
        ho, _ = _pair("rrnn_step_forward", result, "(h, o), cache")
        h, o = _pair("rrnn_step_forward", ho, "h, o") if isinstance(ho, tuple) else (ho, None)
        if o is None:
            raise GradingError(
                "rrnn_step_forward should return ((h, o), cache): its first element a pair"
            )
        h = assert_array("h", h, (N, H))
        o = assert_array("o", o, (N, O))
        outputs = [("h", h, h_ref, ("n", "h")), ("o", o, o_ref, ("n", "o"))]
        _judge(
            "rrnn_step_forward", outputs, ctx, _rrnn_step_hint,
            x=x, h_prev=h_prev, params=params, h=h, h_ref=h_ref,
        )  # fmt: skip


def check_rrnn_forward(rrnn_forward, seeds=(40, 41, 42, 43)) -> None:
    """hs (N, T, H) and os (N, T, O) over a sequence from a non-zero h0: ((hs, os), cache);
    the state carried from step to step is h_t."""
    for seed, (N, T, D, H, R, O) in zip(seeds, RRNN_CASES, strict=False):
        x, h0, params = _rrnn_case(seed, N, T, D, H, R, O)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H, R=R, O=O)
        hs_ref = os_ref = None
        if not recording():
            (hs_ref, os_ref), _ = _reference().rrnn_forward(x, h0, params)
        result = guarded_call("rrnn_forward", rrnn_forward, x, h0, params)
        pair, _ = _pair("rrnn_forward", result, "(hs, os), cache")
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise GradingError(
                "rrnn_forward should return ((hs, os), cache): its first element a pair"
            )
        hs = assert_array("hs", pair[0], (N, T, H))
        os_ = assert_array("os", pair[1], (N, T, O))

        outputs = [("hs", hs, hs_ref, ("n", "t", "h")), ("os", os_, os_ref, ("n", "t", "o"))]
        _judge("rrnn_forward", outputs, ctx, _rrnn_hint, hs=hs, hs_ref=hs_ref)


seal(__name__)
