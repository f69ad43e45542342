"""Checks for the assignment ch01_sequences (sliding windows, one-hot, AR(p), MSE and MAE).

Each ``check_*`` takes the student's function, runs it on a fixed list of cases drawn from the
given seeds (the edge cases the contract names: p = 1, a series exactly p + horizon long,
horizon > 1, a (T, D) series, integer series, unused classes, 2-D errors, ...), compares with a
trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first
problem: which output, which case, how many entries are wrong and the largest error, never the
expected values. Inputs modified in place are caught by :func:`guarded_call`.

Under the class-scale grader the student's kernel only records results (``recording()``); the
expected values are computed in the grader's process when it replays them.
"""

from __future__ import annotations

import functools as _functools

import numpy as _np

from . import assert_close, guarded_call, trusted_reference
from ._cases import array_in_case
from ._cases import expected as _expected
from ._cases import pair as _pair
from ._guard import DelegationError, GradingError, recording, seal

_array = _functools.partial(array_in_case, prefix="")  # "(... case)" without "case: "

__all__ = [
    "check_sliding_windows",
    "check_one_hot",
    "check_predict_ar",
    "check_fit_ar",
    "check_mse",
    "check_mae",
]


def _close(name, actual, expected, **kw) -> None:
    if expected is not None:
        assert_close(name, actual, expected, **kw)


def _rngs(seeds, n):
    """One generator per case; the case index is mixed in so that equal seeds differ."""
    seeds = tuple(seeds) or (0,)
    return [_np.random.default_rng([int(seeds[k % len(seeds)]), k]) for k in range(n)]


def _seed(seeds, k) -> int:
    seeds = tuple(seeds) or (0,)
    return int(seeds[k % len(seeds)])


# --- sliding_windows --------------------------------------------------------------------------

# (label, make(rng) -> series, p, horizon)
_WINDOW_CASES = (
    ("a float series", lambda r: r.normal(size=12), 3, 1),
    ("p = 1", lambda r: r.normal(size=7), 1, 1),
    ("horizon = 3", lambda r: r.normal(size=15), 4, 3),
    ("a series exactly p + horizon long (one window)", lambda r: r.normal(size=5), 3, 2),
    ("a (T, D) series with D = 2", lambda r: r.normal(size=(9, 2)), 3, 2),
    ("an integer series (token indices)", lambda r: r.integers(0, 20, size=10), 2, 1),
)


def _check_windows_case(sliding_windows, series, p, horizon, ctx) -> None:
    expected = _expected("sliding_windows", series, p, horizon)
    result = guarded_call("sliding_windows", sliding_windows, series, p, horizon)
    X, y = _pair("sliding_windows", result, "X, y")
    X = _array("X", X, _np.shape(X), ctx)
    y = _array("y", y, _np.shape(y), ctx)
    if _np.issubdtype(series.dtype, _np.integer):
        for name, arr in (("X", X), ("y", y)):
            if not _np.issubdtype(arr.dtype, _np.integer):
                raise GradingError(
                    f"{name} has dtype {arr.dtype} for an integer series ({ctx}); keep the "
                    "series' dtype, so that token indices stay integers"
                )
    if expected is None:
        return
    eX, ey = expected
    extra = ("d",) if series.ndim == 2 else ()
    _array("X", X, eX.shape, ctx)
    _array("y", y, ey.shape, ctx)
    assert_close("X", X, eX, dims=("window", "step", *extra), atol=1e-12, rtol=0, context=ctx)
    assert_close("y", y, ey, dims=("window", *extra), atol=1e-12, rtol=0, context=ctx)


def check_sliding_windows(sliding_windows, seeds=(0, 1, 2, 3, 4, 5)) -> None:
    """X[i] = series[i : i + p], y[i] = series[i + p - 1 + horizon], M = T - p - horizon + 1."""
    for k, ((label, make, p, horizon), rng) in enumerate(
        zip(_WINDOW_CASES, _rngs(seeds, len(_WINDOW_CASES)), strict=True)
    ):
        series = make(rng)
        ctx = f"{label}, T={series.shape[0]}, p={p}, horizon={horizon}, seed={_seed(seeds, k)}"
        _check_windows_case(sliding_windows, series, p, horizon, ctx)


# --- one_hot ----------------------------------------------------------------------------------

_TEXT = "the cat sat on the mat"
_CHARS = sorted(set(_TEXT))

# (label, make(rng) -> indices, V)
_ONE_HOT_CASES = (
    ("a sequence with unused classes (indices < 4, V = 7)", lambda r: r.integers(0, 4, 9), 7),
    ("a batch (N, T) = (3, 4)", lambda r: r.integers(0, 5, (3, 4)), 5),
    ("one token, V = 1", lambda r: _np.zeros(1, dtype=_np.int64), 1),
    ("int32 indices", lambda r: r.integers(0, 6, 8).astype(_np.int32), 6),
    (
        f"the characters of {_TEXT!r}",
        lambda r: _np.array([_CHARS.index(c) for c in _TEXT]),
        len(_CHARS),
    ),
)


def check_one_hot(one_hot, seeds=(10, 11, 12, 13, 14)) -> None:
    """out[..., j] = 1.0 where indices == j, else 0.0; out has shape indices.shape + (V,)."""
    for k, ((label, make, V), rng) in enumerate(
        zip(_ONE_HOT_CASES, _rngs(seeds, len(_ONE_HOT_CASES)), strict=True)
    ):
        idx = make(rng)
        ctx = f"{label}, indices of shape {idx.shape}, V={V}, seed={_seed(seeds, k)}"
        expected = _expected("one_hot", idx, V)
        out = guarded_call("one_hot", one_hot, idx, V)
        if expected is None:
            continue
        dims = ("n", "t", "v") if idx.ndim == 2 else ("t", "v")
        _array("the one-hot array", out, expected.shape, ctx)
        assert_close("the one-hot array", out, expected, dims=dims, atol=0, rtol=0, context=ctx)


# --- predict_ar -------------------------------------------------------------------------------

# (label, make(rng) -> x, p): x is windows (M, p) or a series (T,)
_PREDICT_CASES = (
    ("windows (M, p) = (6, 3)", lambda r: r.normal(size=(6, 3)), 3),
    ("windows with p = 1", lambda r: r.normal(size=(5, 1)), 1),
    ("a series (T,) = (10,), p = 2: T - p + 1 predictions", lambda r: r.normal(size=10), 2),
    ("an integer series, p = 3", lambda r: r.integers(0, 50, 8), 3),
    ("a series exactly p = 4 long: one prediction", lambda r: r.normal(size=4), 4),
)


def check_predict_ar(predict_ar, seeds=(20, 21, 22, 23, 24), sliding_windows=None) -> None:
    """pred = c + sum_k coef[k - 1] * x_{t-k}, windows oldest first; a series gives every window.

    If the student's ``sliding_windows`` is given and wrong, a failure says so (their
    ``predict_ar`` may use it).
    """
    hint = _windows_hint(sliding_windows)
    try:
        for k, ((label, make, p), rng) in enumerate(
            zip(_PREDICT_CASES, _rngs(seeds, len(_PREDICT_CASES)), strict=True)
        ):
            x = make(rng)
            coef = rng.normal(0, 0.6, p)
            intercept = float(rng.normal())
            ctx = f"{label}, seed={_seed(seeds, k)}"
            expected = _expected("predict_ar", x, coef, intercept)
            pred = guarded_call("predict_ar", predict_ar, x, coef, intercept)
            if expected is not None:
                _array("the predictions", pred, expected.shape, ctx)
                assert_close("the predictions", pred, expected, dims=("window",), context=ctx)
    except DelegationError:
        raise
    except GradingError as e:
        raise GradingError(f"{e}{hint()}") from None


# --- fit_ar -----------------------------------------------------------------------------------


def _noiseless_cycle(r):
    # x_t = 0.5 + 2 cos(w) x_{t-1} - x_{t-2}: a sinusoid of period 11 around a mean, for ever.
    w = 2 * _np.pi / 11
    x = [1.0 + r.normal(), 1.0 + r.normal()]
    for _ in range(28):
        x.append(0.5 + 2 * _np.cos(w) * x[-1] - x[-2])
    return _np.array(x)


def _noiseless_flip(r):
    # x_t = 3 - x_{t-1}: the series alternates between x_0 and 3 - x_0.
    x = [float(r.normal())]
    for _ in range(11):
        x.append(3.0 - x[-1])
    return _np.array(x)


def _noisy_ar(r, coef, c, T):
    p = len(coef)
    x = _np.zeros(T + 50)
    e = r.normal(size=T + 50)
    for t in range(p, T + 50):
        x[t] = c + _np.dot(coef, x[t - p : t][::-1]) + e[t]
    return x[50:]  # drop the start-up, where x has not forgotten its zero start


# (label, make(rng) -> series, p, exact (coef, intercept) of a noiseless series or None)
_FIT_CASES = (
    (
        "a noiseless AR(2) series (a cycle of period 11): the exact coefficients",
        _noiseless_cycle,
        2,
        ((2 * _np.cos(2 * _np.pi / 11), -1.0), 0.5),
    ),
    ("a noiseless AR(1) series x_t = 3 - x_{t-1}", _noiseless_flip, 1, ((-1.0,), 3.0)),
    ("a noisy AR(1) series, T = 40", lambda r: _noisy_ar(r, [0.7], 0.5, 40), 1, None),
    (
        "a noisy AR(3) series around 10, T = 80",
        lambda r: _noisy_ar(r, [0.5, 0.2, -0.3], 6, 80),
        3,
        None,
    ),
    ("the shortest series, T = 2p + 1 = 5", lambda r: r.normal(size=5), 2, None),
    ("an integer series (counts), T = 30", lambda r: r.poisson(20, 30), 2, None),
    ("p = 5, T = 200", lambda r: _noisy_ar(r, [0.4, 0.1, 0.0, -0.2, 0.1], 1.0, 200), 5, None),
)


def _rss(series, p, coef, intercept) -> float:
    ref = trusted_reference("rnn_ref.numpy")
    X, y = ref.sliding_windows(_np.asarray(series, dtype=_np.float64), p)
    return float(_np.sum((y - ref.predict_ar(X, coef, intercept)) ** 2))


def check_fit_ar(fit_ar, seeds=(30, 31, 32, 33, 34, 35, 36), sliding_windows=None) -> None:
    """Least-squares AR(p) with an intercept: exact on noiseless AR series; elsewhere the same
    fitted values and coefficients as the reference, to a tolerance that any stable
    least-squares solver meets (``np.linalg.lstsq``, ``solve`` on the normal equations, QR).

    If the student's ``sliding_windows`` is given and wrong, a failure says so (their
    ``fit_ar`` may use it).
    """
    hint = _windows_hint(sliding_windows)
    try:
        for k, ((label, make, p, exact), rng) in enumerate(
            zip(_FIT_CASES, _rngs(seeds, len(_FIT_CASES)), strict=True)
        ):
            series = make(rng)
            ctx = f"{label}, p={p}, seed={_seed(seeds, k)}"
            expected = None if recording() else (exact or _expected("fit_ar", series, p))
            result = guarded_call("fit_ar", fit_ar, series, p)
            coef, intercept = _pair("fit_ar", result, "coef, intercept")
            coef = _array("coef", coef, (p,), ctx)
            intercept = _array("intercept", intercept, (), ctx)
            if expected is None:
                continue
            e_coef, e_intercept = _np.asarray(expected[0], dtype=_np.float64), expected[1]
            for name, value in (("coef", coef), ("intercept", intercept)):
                if not _np.all(_np.isfinite(_np.asarray(value, dtype=_np.float64))):
                    raise GradingError(f"{name} contains NaN or infinity ({ctx})")
            # The fit first: is the sum of squared residuals the least-squares minimum?
            rss, best = (
                _rss(series, p, coef, float(intercept)),
                _rss(series, p, e_coef, e_intercept),
            )
            scale = float(_np.sum((series - _np.mean(series)) ** 2))
            if rss > best + 1e-9 * (1.0 + scale):
                if best <= 1e-12 * (1.0 + scale):
                    above = " of 0 (the series follows an exact AR recursion)"
                else:
                    above = f" ({100 * (rss / best - 1):.3g}% above it)"
                raise GradingError(
                    f"fit_ar does not minimise the sum of squared one-step errors ({ctx}): "
                    f"yours is {rss:.6g}, larger than the least-squares minimum{above}. "
                    "Is the intercept column in the design matrix, and is coef[k - 1] the "
                    "weight of x_{t-k}?"
                )
            tol = (
                {"atol": 1e-7, "rtol": 1e-6} if exact is not None else {"atol": 1e-6, "rtol": 1e-5}
            )
            assert_close("coef", coef, e_coef, dims=("lag",), context=ctx, **tol)
            assert_close("intercept", intercept, e_intercept, context=ctx, **tol)
    except DelegationError:
        raise
    except GradingError as e:
        raise GradingError(f"{e}{hint()}") from None


def _windows_hint(sliding_windows):
    """Run the student's sliding_windows on one small case (always, so the recorded results
    stay in order); return a function giving the hint to add to a later failure."""
    if sliding_windows is None:
        return lambda: ""
    series = _np.arange(8.0) * 1.5 - 2.0
    ok = True
    try:
        expected = _expected("sliding_windows", series, 3, 1)
        result = guarded_call("sliding_windows", sliding_windows, series, 3, 1)
        if expected is not None:
            X, y = _pair("sliding_windows", result, "X, y")
            assert_close("X", X, expected[0])
            assert_close("y", y, expected[1])
    except GradingError:
        ok = False
    if ok:
        return lambda: ""
    return lambda: (
        ". Note: your sliding_windows fails its own tests; if your code uses it, fix "
        "sliding_windows first"
    )


# --- mse and mae ------------------------------------------------------------------------------


def _cancelling(r):
    y_hat = r.normal(size=6)
    d = _np.abs(r.normal(size=3)) + 0.5
    return y_hat + _np.concatenate([d, -d]), y_hat  # errors +d and -d: their mean is 0


# (label, make(rng) -> (y_true, y_pred))
_LOSS_CASES = (
    ("1-D arrays, length 8", lambda r: (r.normal(size=8), r.normal(size=8))),
    ("errors that cancel: mean(y_true - y_pred) = 0", _cancelling),
    ("2-D arrays (M, D) = (5, 3)", lambda r: (r.normal(size=(5, 3)), r.normal(size=(5, 3)))),
    ("integer arrays", lambda r: (r.integers(-5, 6, 7), r.integers(-5, 6, 7))),
    ("a single value", lambda r: (r.normal(size=1), r.normal(size=1))),
)


def _check_loss(fn_name, fn, seeds) -> None:
    for k, ((label, make), rng) in enumerate(
        zip(_LOSS_CASES, _rngs(seeds, len(_LOSS_CASES)), strict=True)
    ):
        y_true, y_pred = make(rng)
        ctx = f"{label}, seed={_seed(seeds, k)}"
        expected = _expected(fn_name, y_true, y_pred)
        value = guarded_call(fn_name, fn, y_true, y_pred)
        value = _array(f"the {fn_name.upper()}", value, (), ctx)
        _close(f"the {fn_name.upper()}", value, expected, atol=1e-9, rtol=1e-9, context=ctx)


def check_mse(mse, seeds=(40, 41, 42, 43, 44)) -> None:
    """mean((y_true - y_pred) ** 2) over all entries, a scalar."""
    _check_loss("mse", mse, seeds)


def check_mae(mae, seeds=(50, 51, 52, 53, 54)) -> None:
    """mean(|y_true - y_pred|) over all entries, a scalar."""
    _check_loss("mae", mae, seeds)


seal(__name__)
