r"""Checks for the assignment ch03_bptt (backpropagation through time, gradient checking,
truncated BPTT).

The model is the vanilla RNN of chapter 2, :math:`h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)`,
with the output layer :math:`y_t = W_{hy} h_t + b_y` and a masked softmax cross-entropy.

Each ``check_*`` takes the student's function, runs it on random cases (shapes that include
N = 1, T = 1 and H != D, a non-zero initial state, padding masks), compares with a trusted copy
of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first problem: which
output, which gradient, which time step, the largest error; never an expected value. The seeds
are arguments (one per case, extra cases are skipped when fewer seeds are given), so a hidden
test cell fixes them and grading is repeatable.

The inputs the student's backward functions receive (the caches) are built here, by a private
forward pass in the notebook's documented cache format, because in the class-scale grader's
sandbox the reference package cannot be read: the reference is used only for expected values,
and only when not :func:`recording`. The checks are layered: :func:`check_backward` first
checks the student's ``rnn_step_backward`` (which ``rnn_backward`` builds on) and
:func:`check_truncated_bptt` first checks the student's ``rnn_backward``, so the message says
which part to fix first.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._guard import DelegationError, GradingError, recording, seal

__all__ = [
    "check_step_backward",
    "check_backward",
    "check_rel_error",
    "check_numerical_gradient",
    "check_truncated_bptt",
]

RNN_KEYS = ("W_xh", "W_hh", "b_h")
MODEL_KEYS = (*RNN_KEYS, "W_hy", "b_y")

# (N, T, D, H, V): batch, time, input, hidden, vocabulary; the edge cases the contract names.
CASES = ((3, 5, 4, 6, 7), (1, 4, 3, 2, 5), (2, 1, 5, 5, 3), (4, 3, 1, 7, 2))

# (N, T, D, H, V, k, mask) for truncated BPTT. mask: None, "random" (padding at the end of each
# sequence, random lengths) or "tail" (every sequence shorter than the last chunk's start, so
# that chunk has no unmasked step at all).
TBPTT_CASES = (
    (3, 7, 4, 5, 6, 3, None),  # T not a multiple of k
    (1, 5, 3, 2, 4, 1, None),  # N = 1, k = 1: only the local gradient of each step
    (2, 4, 2, 3, 5, 4, "random"),  # k = T: one chunk, exactly full BPTT
    (2, 3, 5, 4, 3, 10, None),  # k > T: one chunk too
    (3, 8, 3, 4, 5, 3, "tail"),  # the last chunk is all padding
    (2, 1, 3, 4, 3, 2, None),  # T = 1
    (4, 9, 2, 6, 4, 2, "random"),
)


# --- helpers ----------------------------------------------------------------------------------


def _reference(fn_name: str, *args, **kwargs):
    """The reference's output, or None in a student's kernel under the class-scale grader,
    which computes it in its own process when it replays the recorded results."""
    if recording():
        return None
    return getattr(trusted_reference("rnn_ref.numpy"), fn_name)(*args, **kwargs)


def _close(name, actual, expected, **kw) -> None:
    if expected is not None:
        assert_close(name, actual, expected, **kw)


def _ctx(seed, **shape) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _params(rng, D: int, H: int, V: int | None = None) -> dict:
    p = {
        "W_xh": rng.normal(0, 1.0 / _np.sqrt(D), (H, D)),
        "W_hh": rng.normal(0, 1.0 / _np.sqrt(H), (H, H)),
        "b_h": rng.normal(0, 0.5, H),
    }
    if V is not None:
        p["W_hy"] = rng.normal(0, 1.0 / _np.sqrt(H), (V, H))
        p["b_y"] = rng.normal(0, 0.5, V)
    return p


def _forward(x, h0, params):
    """The notebook's ``rnn_forward``: hs (N, T, H) and the cache (x, h0, hs, W_xh, W_hh)."""
    N, T, _ = x.shape
    hs = _np.empty((N, T, h0.shape[1]))
    h = h0
    for t in range(T):
        h = _np.tanh(x[:, t] @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        hs[:, t] = h
    return hs, (x, h0, hs, params["W_xh"], params["W_hh"])


def _copy(cache: tuple) -> tuple:
    # The student gets a private copy: a backward pass that overwrites its cache in place must
    # not change what the reference is computed from.
    return tuple(_np.array(a, copy=True) for a in cache)


def _unpack3(fn_name: str, result, what: str) -> tuple:
    if not (isinstance(result, tuple | list) and len(result) == 3):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple | list) else type(result)
        got = got if isinstance(got, str) else got.__name__
        raise GradingError(f"{fn_name} should return ({what}), a tuple of three; got {got}")
    return tuple(result)


def _grads(fn_name: str, grads, keys) -> dict:
    if not isinstance(grads, dict):
        raise GradingError(
            f"{fn_name} should return grads as a dict with the keys {', '.join(keys)}; "
            f"got a {type(grads).__name__}"
        )
    missing = [k for k in keys if k not in grads]
    if missing:
        raise GradingError(
            f"{fn_name}: grads has no key {missing[0]!r} (expected the keys {', '.join(keys)})"
        )
    return grads


def _close_grads(grads, expected, params, keys, ctx) -> None:
    for key in keys:
        g = assert_array(f'grads["{key}"]', grads[key], params[key].shape)
        dims = ("v", "h") if key == "W_hy" else ("h", "j") if key.startswith("W") else ("i",)
        _close(
            f'grads["{key}"]',
            g,
            None if expected is None else expected[key],
            dims=dims,
            context=ctx,
        )


def _builds_on(what: str, check, *args) -> None:
    """Run ``check``; if it fails, say that ``what`` (a function the checked one builds on) is
    wrong and must be fixed first."""
    prefix = f"this part builds on your {what}, which is wrong; fix it first: "
    try:
        check(*args)
    except DelegationError as e:
        raise DelegationError(prefix + str(e)) from None
    except GradingError as e:
        raise GradingError(prefix + str(e)) from None


# --- part 1: one step backward ----------------------------------------------------------------


def _step_case(rnn_step_backward, seed: int, N: int, D: int, H: int) -> None:
    rng = _np.random.default_rng(seed)
    params = _params(rng, D, H)
    x = rng.normal(0, 1, (N, D))
    h_prev = rng.normal(0, 0.5, (N, H))  # h != h_prev, so using one for the other shows
    h = _np.tanh(x @ params["W_xh"].T + h_prev @ params["W_hh"].T + params["b_h"])
    cache = (x, h_prev, h, params["W_xh"], params["W_hh"])
    dh = rng.normal(0, 1, (N, H))
    expected = _reference("rnn_step_backward", dh, _copy(cache))
    result = guarded_call("rnn_step_backward", rnn_step_backward, dh, _copy(cache), autograd=True)
    dx, dh_prev, grads = _unpack3("rnn_step_backward", result, "dx, dh_prev, grads")
    grads = _grads("rnn_step_backward", grads, RNN_KEYS)
    ctx = _ctx(seed, N=N, D=D, H=H)
    exp = (None, None, None) if expected is None else expected
    dx = assert_array("dx", dx, (N, D))
    _close("dx", dx, exp[0], dims=("n", "d"), context=ctx)
    dh_prev = assert_array("dh_prev", dh_prev, (N, H))
    _close("dh_prev", dh_prev, exp[1], dims=("n", "h"), context=ctx)
    _close_grads(grads, exp[2], params, RNN_KEYS, ctx)


def check_step_backward(rnn_step_backward, seeds=(0, 1, 2, 3)) -> None:
    """dx, dh_prev and the three weight gradients of one step, on every case (N = 1, H != D)."""
    for seed, (N, _T, D, H, _V) in zip(seeds, CASES, strict=False):
        _step_case(rnn_step_backward, seed, N, D, H)


# --- part 2: backward over the sequence -------------------------------------------------------


def _sequence_case(rnn_backward, seed: int, N: int, T: int, D: int, H: int) -> None:
    rng = _np.random.default_rng(seed)
    params = _params(rng, D, H)
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (N, H))  # non-zero, so dW_hh's first term is not 0
    _, cache = _forward(x, h0, params)
    dhs = rng.normal(0, 1, (N, T, H))
    expected = _reference("rnn_backward", dhs, _copy(cache))
    result = guarded_call("rnn_backward", rnn_backward, dhs, _copy(cache), autograd=True)
    dx, dh0, grads = _unpack3("rnn_backward", result, "dx, dh0, grads")
    grads = _grads("rnn_backward", grads, RNN_KEYS)
    ctx = _ctx(seed, N=N, T=T, D=D, H=H)
    exp = (None, None, None) if expected is None else expected
    dx = assert_array("dx", dx, (N, T, D))
    _close("dx", dx, exp[0], dims=("n", "t", "d"), context=ctx)
    dh0 = assert_array("dh0", dh0, (N, H))
    _close("dh0", dh0, exp[1], dims=("n", "h"), context=ctx)
    _close_grads(grads, exp[2], params, RNN_KEYS, ctx)


def check_backward(rnn_backward, rnn_step_backward=None, seeds=(10, 11, 12, 13)) -> None:
    """dx (naming the first wrong time step), dh0 and the weight gradients summed over time, on
    every case (T = 1 and N = 1 included). If ``rnn_step_backward`` is given it is checked
    first, on one step, and a failure there is reported as such."""
    if rnn_step_backward is not None:
        seed = seeds[0] + 1000 if seeds else 1000
        _builds_on("rnn_step_backward", _step_case, rnn_step_backward, seed, 2, 3, 4)
    for seed, (N, T, D, H, _V) in zip(seeds, CASES, strict=False):
        _sequence_case(rnn_backward, seed, N, T, D, H)


# --- part 3: numerical gradient and relative error -------------------------------------------


def check_rel_error(rel_error, seeds=(20, 21)) -> None:
    """``max |a - b| / max(1e-8, |a| + |b|)`` on random arrays (vectors, matrices, 3-D), close
    arrays, arrays of zeros, entries so small that the 1e-8 floor decides, integer arrays."""
    for seed in seeds:
        rng = _np.random.default_rng(seed)
        a = rng.normal(0, 1, (3, 4))
        cases = [
            ("two random matrices", a, rng.normal(0, 1, (3, 4))),
            ("a matrix and a close copy", a, a * (1 + 1e-6 * rng.normal(0, 1, a.shape))),
            ("3-D arrays", rng.normal(0, 2, (2, 3, 2)), rng.normal(0, 2, (2, 3, 2))),
            ("two arrays of zeros", _np.zeros(5), _np.zeros(5)),
            ("entries below 1e-8", rng.normal(0, 1e-10, 4), rng.normal(0, 1e-10, 4)),
            ("integer arrays", rng.integers(-3, 4, 6), rng.integers(-3, 4, 6)),
            ("one entry", _np.array([2.0]), _np.array([-1.0])),
        ]
        for label, x, y in cases:
            expected = _reference("rel_error", x, y)
            value = guarded_call("rel_error", rel_error, x, y)
            value = assert_array("rel_error", value, ())
            _close(
                "rel_error", value, expected, atol=1e-12, rtol=1e-9, context=f"{label}, seed={seed}"
            )


def _quadratic(rng, n: int):
    """f(x) = ½ vᵀ A v + bᵀ v with v = x flattened; A not symmetric (gradient ½(A + Aᵀ)v + b)."""
    A = rng.normal(0, 1, (n, n))
    b = rng.normal(0, 1, n)

    def f(x):
        v = _np.reshape(x, -1)
        return 0.5 * v @ A @ v + b @ v

    return f


def _tanh_layer(rng, n: int):
    """f(x) = Σ c ⊙ tanh(W v + d), a scalar through a tanh layer, as in an RNN loss."""
    W = rng.normal(0, 1, (4, n))
    c = rng.normal(0, 1, 4)
    d = rng.normal(0, 0.5, 4)

    def f(x):
        return float(c @ _np.tanh(W @ _np.reshape(x, -1) + d))

    return f


def _zero_d(rng, shape):
    """A function that returns a 0-d array, Σ w ⊙ sin(x) + x₀ x₋₁ (couples two entries)."""
    w = rng.normal(0, 1, shape)

    def f(x):
        v = _np.reshape(x, -1)
        return _np.array(_np.sum(w * _np.sin(x)) + v[0] * v[-1])

    return f


def _pairs():
    """For an x whose last axis holds pairs: f = Σ x[..., 0] x[..., 1] + Σ x³ / 3 (the entries
    of a pair are coupled, so an entry left perturbed spoils its partner's derivative)."""

    def f(x):
        return _np.sum(x[..., 0] * x[..., 1]) + _np.sum(x**3) / 3

    return f


def check_numerical_gradient(numerical_gradient, seeds=(30, 31)) -> None:
    """Centred differences of scalar functions (a quadratic, a tanh layer, one returning a 0-d
    array, one that needs x's shape) at multi-dimensional points, with the default step and with
    a given ``h``; the point x must be unchanged afterwards (checked by guarded_call)."""
    for seed in seeds:
        rng = _np.random.default_rng(seed)
        cases = [
            ("a quadratic, x of shape (2, 3)", _quadratic(rng, 6), (2, 3), None),
            ("a tanh layer, x of shape (5,)", _tanh_layer(rng, 5), (5,), None),
            ("a function returning a 0-d array", _zero_d(rng, (3, 2)), (3, 2), None),
            ("a function of x[..., 0] * x[..., 1]", _pairs(), (2, 2, 2), None),
            ("a tanh layer with h = 1e-2", _tanh_layer(rng, 3), (3, 1), 1e-2),
        ]
        for label, f, shape, h in cases:
            x = rng.normal(0, 1, shape)
            args = (f, x) if h is None else (f, x, h)
            expected = _reference("numerical_gradient", f, x.copy(), h=1e-5 if h is None else h)
            grad = guarded_call("numerical_gradient", numerical_gradient, *args)
            grad = assert_array("the numerical gradient", grad, shape)
            ctx = f"{label}, seed={seed}"
            try:
                _close("the numerical gradient", grad, expected, atol=1e-8, rtol=1e-7, context=ctx)
            except GradingError as e:
                raise GradingError(
                    f"{e}. Hints: an error of the order of h (1e-5) is what a one-sided "
                    "difference gives; errors that appear only after the first entries suggest "
                    "x is not restored after each perturbation"
                ) from None


# --- part 4: truncated BPTT -------------------------------------------------------------------


def _tbptt_case(seed, N, T, D, H, V, k, masking):
    rng = _np.random.default_rng(seed)
    params = _params(rng, D, H, V)
    x = rng.normal(0, 1, (N, T, D))
    h0 = rng.normal(0, 0.5, (N, H))  # non-zero, so restarting each chunk from h0 shows
    targets = rng.integers(0, V, (N, T))
    mask = None
    if masking is not None:
        if masking == "tail":  # no sequence reaches the last chunk
            last_start = ((T - 1) // k) * k
            lengths = rng.integers(1, last_start + 1, N)
        else:
            lengths = rng.integers(1, T + 1, N)
        mask = _np.arange(T)[None, :] < lengths[:, None]
        targets = _np.where(mask, targets, -1)  # padding holds -1, which must not be read
    return x, h0, targets, params, mask


def check_truncated_bptt(truncated_bptt_grads, rnn_backward=None, seeds=tuple(range(40, 47))):
    """Loss, the five gradients and the last hidden state for chunk lengths k >= T (full BPTT),
    k < T, k = 1, T not a multiple of k, with and without padding masks (including a chunk that
    is all padding), from a non-zero h0. If ``rnn_backward`` is given it is checked first."""
    if rnn_backward is not None:
        seed = seeds[0] + 1000 if seeds else 1000
        _builds_on("rnn_backward", _sequence_case, rnn_backward, seed, 2, 3, 3, 4)
    for seed, (N, T, D, H, V, k, masking) in zip(seeds, TBPTT_CASES, strict=False):
        x, h0, targets, params, mask = _tbptt_case(seed, N, T, D, H, V, k, masking)
        args = (x, h0, targets, params, k) if mask is None else (x, h0, targets, params, k, mask)
        expected = _reference("truncated_bptt_grads", *args)
        result = guarded_call("truncated_bptt_grads", truncated_bptt_grads, *args, autograd=True)
        loss, grads, h_T = _unpack3("truncated_bptt_grads", result, "loss, grads, h_T")
        grads = _grads("truncated_bptt_grads", grads, MODEL_KEYS)
        kind = "full BPTT" if k >= T else "truncated"
        padding = {
            None: "no mask",
            "random": "a padding mask",
            "tail": "the last chunk all padding",
        }
        ctx = f"k={k}, T={T} ({kind}), {padding[masking]}, " + _ctx(seed, N=N, D=D, H=H, V=V)
        exp = (None, None, None) if expected is None else expected
        loss = assert_array("loss", loss, ())
        _close("loss", loss, exp[0], context=ctx)
        h_T = assert_array("h_T", h_T, (N, H))
        _close("h_T", h_T, exp[2], dims=("n", "h"), context=ctx)
        _close_grads(grads, exp[1], params, MODEL_KEYS, ctx)


seal(__name__)
