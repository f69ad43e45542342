"""Checks for the assignment ch11_timeseries (train-only scaling, split-safe windows, the
seasonal naive forecast, MASE, sMAPE, a recursive multi-step forecast, the pinball loss).

Each ``check_*`` takes the student's function(s), runs them on a fixed list of cases drawn from
the given seeds (the edge cases the contract names: a (T, D) series with a constant training
column, a period that starts exactly at ``p``, ``H = 1``, ``H > m``, ``m = 1``, zero
denominators in sMAPE, quantile sets of one and three, a nonlinear one-step model, ...),
compares with a trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming
the first problem (which output, which case, how many entries are wrong, the largest error,
and where a common mistake explains it, which one), never the expected values.

The recursive forecast receives a model: an :class:`OneStepModel`, a small nonlinear function
of the window defined here with NumPy only (no ``rnn_ref.numpy``, which is forbidden while the
student's code runs and unreadable in the class-scale grader's sandbox). It is a plain
deterministic object, so the student's kernel (which only records the forecasts) and the
grader's replay (which computes the expected forecasts with the same model) agree.

Under the class-scale grader the student's kernel only records results (``recording()``); the
expected values are computed in the grader's process when it replays them.
"""

from __future__ import annotations

import functools as _functools

import numpy as _np

from . import assert_close, guarded_call, trusted_reference
from ._cases import array_in_case
from ._cases import expected as _expected
from ._guard import GradingError, recording, restore_numpy, seal

_array = _functools.partial(array_in_case, prefix="")  # "(... case)" without "case: "

__all__ = [
    "OneStepModel",
    "check_scaling",
    "check_split_windows",
    "check_seasonal_naive",
    "check_mase",
    "check_smape",
    "check_recursive_forecast",
    "check_pinball_loss",
]

# Captured now, before any student cell can rebind them.
_tanh, _asarray, _float64, _allclose = _np.tanh, _np.asarray, _np.float64, _np.allclose


def _ref():
    return trusted_reference("rnn_ref.numpy")


def _tuple(fn_name: str, result, what: str):
    n = len(what.split(","))
    if not (isinstance(result, tuple | list) and len(result) == n):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple | list) else None
        raise GradingError(
            f"{fn_name} should return ({what}), a tuple of {n}; got {got or type(result).__name__}"
        )
    return tuple(result)


def _rng(seed: int, k: int):
    """One generator per case; the case index is mixed in so that equal seeds differ."""
    return _np.random.default_rng([int(seed), k])


def _cases(seeds, cases):
    """(k, case, rng, seed) for each case, the seeds used in turn."""
    seeds = tuple(seeds) or (0,)
    for k, case in enumerate(cases):
        seed = int(seeds[k % len(seeds)])
        yield k, case, _rng(seed, k), seed


def _same(a, b) -> bool:
    """Do the student's values equal what a known mistake gives (to explain a failure)?"""
    try:
        a, b = _asarray(a, dtype=_float64), _asarray(b, dtype=_float64)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(_allclose(a, b, atol=1e-9, rtol=1e-7))


def _scalar(name: str, value, expected, ctx: str, hints=()) -> None:
    """A float result: right, or wrong with the first matching hint ``(mistake_value, text)``."""
    value = _array(name, value, (), ctx)
    if expected is None:
        return
    try:
        assert_close(name, value, expected, atol=1e-9, rtol=1e-9, context=ctx)
    except GradingError as e:
        for wrong, text in hints:
            if _same(value, wrong):
                raise GradingError(f"{e}. {text}") from None
        raise


# ------------------------------------------------------------------------------------------
# Part 1a: train-only scaling
# ------------------------------------------------------------------------------------------


def _const_col(r):
    x = r.normal(50, 10, (30, 3))
    x[:, 1] = 0.1  # constant in the training period (and not exactly representable)
    return x


def _level_shift(r):
    # A series whose level and spread change after the training period: fitting on the whole
    # series gives different statistics, so the mistake shows.
    return _np.concatenate([r.normal(10, 1, 24), r.normal(25, 4, 12)])


# (label, make(rng) -> series, n_val, n_test)
_SCALE_CASES = (
    ("a (T,) series whose level rises after the training period", _level_shift, 6, 6),
    ("a (T, D) series with D = 3, column 1 constant in training", _const_col, 5, 5),
    ("no validation period (n_val = 0)", lambda r: r.gamma(2.0, 3.0, 20), 0, 4),
    ("a training period of one step (std 0 -> 1)", lambda r: r.normal(size=5), 2, 2),
    ("an integer series", lambda r: r.integers(0, 100, 25), 5, 5),
    ("a (T, D) series with D = 1", lambda r: r.normal(-3, 0.2, (18, 1)), 4, 4),
)


def _scale_splits_expected(series, n_val, n_test):
    ref = _ref()
    train, val, test = ref.chronological_split(series.shape[0], n_val, n_test)
    mean, std = ref.fit_scaler(series[train])
    return tuple(ref.scale(series[s], mean, std) for s in (train, val, test))


def check_scaling(fit_scaler, scale, scale_splits, seeds=(0, 1, 2, 3, 4, 5)) -> None:
    """``fit_scaler`` (mean and population std per column, std 1.0 for a constant column),
    ``scale`` ((x - mean) / std with given statistics) and ``scale_splits`` (the three periods
    scaled with the statistics of the training period only), on each case."""
    restore_numpy()
    for _, (label, make, n_val, n_test), rng, seed in _cases(seeds, _SCALE_CASES):
        series = make(rng)
        T = series.shape[0]
        n_train = T - n_val - n_test
        ctx = f"{label}, T={T}, n_val={n_val}, n_test={n_test}, seed={seed}"
        want_shape = () if series.ndim == 1 else (series.shape[1],)
        train = series[:n_train]

        # fit_scaler on the training period.
        expected = _expected("fit_scaler", train)
        result = _tuple("fit_scaler", guarded_call("fit_scaler", fit_scaler, train), "mean, std")
        mean = _array("mean", result[0], want_shape, ctx)
        std = _array("std", result[1], want_shape, ctx)
        if expected is not None:
            dims = ("d",) if series.ndim == 2 else None
            assert_close("mean", mean, expected[0], dims=dims, atol=1e-9, rtol=1e-9, context=ctx)
            try:
                assert_close("std", std, expected[1], dims=dims, atol=1e-9, rtol=1e-9, context=ctx)
            except GradingError as e:
                hint = ""
                if n_train > 1 and _same(std, _np.std(_asarray(train, float), axis=0, ddof=1)):
                    hint = ". It is the sample std (ddof=1); use the population std (ddof=0)"
                elif not _np.all(_np.isfinite(std)) or _np.any(_np.abs(std) < 1e-12):
                    hint = ". A column that is constant in training must get std 1.0"
                raise GradingError(f"{e}{hint}") from None

        # scale the test period with fixed statistics, computed here the same way in the
        # kernel and at replay (not the learner's: a wrong fit_scaler must not fail scale too).
        stats = _plain_stats(train)
        x_test = series[n_train + n_val :]
        expected = _expected("scale", x_test, *stats)
        z = guarded_call("scale", scale, x_test, *stats)
        z = _array("z", z, x_test.shape, ctx + ", scale of the test period")
        if expected is not None:
            dims = ("t", "d") if series.ndim == 2 else ("t",)
            assert_close("z", z, expected, dims=dims, context=ctx + ", scale of the test period")

        # scale_splits: the whole pipeline.
        result = guarded_call("scale_splits", scale_splits, series, n_val, n_test)
        parts = _tuple("scale_splits", result, "z_train, z_val, z_test")
        names = ("z_train", "z_val", "z_test")
        lengths = (n_train, n_val, n_test)
        parts = [
            _array(name, part, (n,) + series.shape[1:], ctx)
            for name, part, n in zip(names, parts, lengths, strict=True)
        ]
        if recording():
            continue
        expected = _scale_splits_expected(series, n_val, n_test)
        leaked = _whole_series_scaling(series, lengths)
        dims = ("t", "d") if series.ndim == 2 else ("t",)
        for name, part, want, bad in zip(names, parts, expected, leaked, strict=True):
            if part.size == 0:
                continue
            try:
                assert_close(name, part, want, dims=dims, context=ctx + ", scale_splits")
            except GradingError as e:
                hint = ""
                if _same(part, bad):
                    hint = (
                        ". It is scaled with the mean and std of the whole series: fit the "
                        "scaler on the training period only"
                    )
                raise GradingError(f"{e}{hint}") from None


def _plain_stats(train):
    """Mean and population std (1 where constant) of ``train``, in plain NumPy: the fixed
    statistics handed to the learner's ``scale``, identical in the kernel and at replay."""
    x = _asarray(train, dtype=_float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = _np.where(_np.all(x == x[:1], axis=0), 1.0, std)
    return _asarray(mean, dtype=_float64), _asarray(std, dtype=_float64)


def _whole_series_scaling(series, lengths):
    """The three periods scaled with the whole series' statistics: the leak, for a hint."""
    mean, std = _plain_stats(series)
    z = (_asarray(series, dtype=_float64) - mean) / std
    a, b, _ = lengths
    return z[:a], z[a : a + b], z[a + b :]


# ------------------------------------------------------------------------------------------
# Part 1b: split-safe windows
# ------------------------------------------------------------------------------------------

# (label, T, D, p, H, start, stop)
_WINDOW_CASES = (
    ("the test period of a split: inputs reach back into validation", 40, None, 5, 3, 32, 40),
    ("the training period (start = 0 < p)", 30, None, 4, 2, 0, 20),
    ("a period that starts exactly at p", 25, None, 6, 2, 6, 15),
    ("H = 1", 20, None, 3, 1, 10, 15),
    ("a validation period in the middle: nothing from [stop, T)", 36, None, 4, 4, 20, 28),
    ("a (T, D) series with D = 2", 30, 2, 3, 2, 20, 30),
    ("exactly one window fits (stop - start = H)", 20, None, 5, 4, 12, 16),
    ("p = 1", 12, None, 1, 3, 5, 12),
)


def check_split_windows(split_windows, seeds=(10, 11, 12, 13, 14, 15, 16, 17)) -> None:
    """X[i] = x[t - p : t], Y[i] = x[t : t + H] for t = max(start, p), ..., stop - H."""
    restore_numpy()
    for _, (label, T, D, p, H, start, stop), rng, seed in _cases(seeds, _WINDOW_CASES):
        x = rng.normal(size=(T,) if D is None else (T, D))
        ctx = f"{label}, T={T}, p={p}, H={H}, start={start}, stop={stop}, seed={seed}"
        expected = _expected("split_windows", x, p, H, start, stop)
        result = guarded_call("split_windows", split_windows, x, p, H, start, stop)
        X, Y = _tuple("split_windows", result, "X, Y")
        X = _array("X", X, _np.shape(X), ctx)
        Y = _array("Y", Y, _np.shape(Y), ctx)
        if expected is None:
            continue
        eX, eY = expected
        if X.shape != eX.shape or Y.shape != eY.shape:
            M = eX.shape[0]
            got = X.shape[0] if X.ndim else None
            hint = ""
            if got is not None and got != M:
                hint = (
                    f"; you return {got} windows. The first target is at t = max(start, p), the "
                    "last window's targets end at stop - 1"
                )
            _array("X", X, eX.shape, ctx + hint)
            _array("Y", Y, eY.shape, ctx + hint)
        extra = ("d",) if D is not None else ()
        assert_close("X", X, eX, dims=("window", "step", *extra), atol=0, rtol=0, context=ctx)
        assert_close("Y", Y, eY, dims=("window", "h", *extra), atol=0, rtol=0, context=ctx)


# ------------------------------------------------------------------------------------------
# Part 2: the seasonal naive forecast
# ------------------------------------------------------------------------------------------

# (label, T, m, H)
_SNAIVE_CASES = (
    ("H > m (the last season repeated)", 20, 4, 11),
    ("H = 1", 15, 5, 1),
    ("m = 1 (persistence)", 8, 1, 5),
    ("H = m", 12, 6, 6),
    ("a history exactly one season long", 7, 7, 10),
    ("H = 2m + 1", 30, 3, 7),
    ("the daily period of half-hourly data, m = 48, H = 96", 200, 48, 96),
)


def check_seasonal_naive(seasonal_naive_forecast, seeds=(20, 21, 22, 23, 24, 25, 26)) -> None:
    """yhat_{T+h} = y_{T+h-m(floor((h-1)/m)+1)}, h = 1..H: the last observed season repeated."""
    restore_numpy()
    for _, (label, T, m, H), rng, seed in _cases(seeds, _SNAIVE_CASES):
        history = rng.normal(size=T)
        ctx = f"{label}, T={T}, m={m}, H={H}, seed={seed}"
        expected = _expected("seasonal_naive_forecast", history, m, H)
        pred = guarded_call("seasonal_naive_forecast", seasonal_naive_forecast, history, m, H)
        pred = _array("the forecast", pred, (H,), ctx)
        if expected is None:
            continue
        try:
            assert_close("the forecast", pred, expected, dims=("h",), atol=0, rtol=0, context=ctx)
        except GradingError as e:
            hint = ""
            if H > m and _same(pred[:m], expected[:m]):
                hint = (
                    ". The first season is right: beyond h = m, go back whole seasons to the "
                    "last observed one (never past T)"
                )
            raise GradingError(f"{e}{hint}") from None


# ------------------------------------------------------------------------------------------
# Part 3: MASE
# ------------------------------------------------------------------------------------------


def _seasonal(r, T, m, level=20.0):
    t = _np.arange(T)
    return level + 3 * _np.sin(2 * _np.pi * t / m) + r.normal(0, 0.5, T)


# (label, make(rng) -> (y_true, y_pred, y_train), m)
_MASE_CASES = (
    (
        "a seasonal series, H = 12",
        lambda r: (
            _seasonal(r, 12, 12),
            _seasonal(r, 12, 12),
            _seasonal(r, 60, 12),
        ),
        12,
    ),
    (
        "m = 1 (scaled by the naive forecast)",
        lambda r: (r.normal(size=5), r.normal(size=5), _np.cumsum(r.normal(size=30))),
        1,
    ),
    (
        "rolling-origin forecasts (K, H) = (3, 4)",
        lambda r: (r.normal(size=(3, 4)), r.normal(size=(3, 4)), _seasonal(r, 20, 4)),
        4,
    ),
    (
        "a test period far above the training level (the scale must not use it)",
        lambda r: (
            _seasonal(r, 8, 4, 200.0),
            _seasonal(r, 8, 4, 195.0),
            _seasonal(r, 24, 4),
        ),
        4,
    ),
    (
        "a single forecast, T = m + 1 (one term in the scale)",
        lambda r: (r.normal(size=1), r.normal(size=1), r.normal(size=4)),
        3,
    ),
    (
        "integer arrays",
        lambda r: (r.integers(0, 9, 6), r.integers(0, 9, 6), r.integers(0, 9, 20)),
        2,
    ),
)


def check_mase(mase, seeds=(30, 31, 32, 33, 34, 35)) -> None:
    """MAE of the forecast over the in-sample MAE of the seasonal naive forecast on y_train:
    mean|y - yhat| / mean_{t > m} |y_t - y_{t-m}|."""
    restore_numpy()
    for _, (label, make, m), rng, seed in _cases(seeds, _MASE_CASES):
        y_true, y_pred, y_train = make(rng)
        ctx = f"{label}, len(y_train)={len(y_train)}, m={m}, seed={seed}"
        expected = _expected("mase", y_true, y_pred, y_train, m)
        value = guarded_call("mase", mase, y_true, y_pred, y_train, m)
        hints = ()
        if expected is not None:
            yt, yp, tr = (_asarray(a, dtype=_float64) for a in (y_true, y_pred, y_train))
            mae = float(_np.mean(_np.abs(yt - yp)))
            hints = (
                (
                    mae / float(_np.mean(_np.abs(tr[1:] - tr[:-1]))),
                    "The scale uses lag 1; use lag m, the seasonal naive forecast's error",
                ),
                (
                    mae / (float(_np.sum(_np.abs(tr[m:] - tr[:-m]))) / len(tr)),
                    "The scale divides by T; average over the T - m differences",
                ),
            )
            flat = yt.reshape(-1)
            if flat.size > m:
                test_scale = float(_np.mean(_np.abs(flat[m:] - flat[:-m])))
                if test_scale > 0:
                    hints += (
                        (
                            mae / test_scale,
                            "The scale comes from y_true; it must come from the training "
                            "series y_train",
                        ),
                    )
        _scalar("the MASE", value, expected, ctx, hints)


# ------------------------------------------------------------------------------------------
# Part 4: sMAPE
# ------------------------------------------------------------------------------------------


def _with_zeros(r):
    y = r.normal(size=8)
    yhat = r.normal(size=8)
    y[[1, 5]] = 0.0
    yhat[[1, 5]] = 0.0  # two 0/0 terms, which count 0
    yhat[3] = 0.0  # a zero forecast of a non-zero value: the term is 2
    return y, yhat


# (label, make(rng) -> (y_true, y_pred))
_SMAPE_CASES = (
    (
        "positive values (demand in MW)",
        lambda r: (r.uniform(2e4, 4e4, 10), r.uniform(2e4, 4e4, 10)),
    ),
    ("zero denominators: y = yhat = 0 in two places", _with_zeros),
    (
        "negative values (the denominator has absolute values)",
        lambda r: (r.normal(-5, 2, 9), r.normal(3, 2, 9)),
    ),
    ("2-D arrays (K, H) = (3, 5)", lambda r: (r.uniform(1, 9, (3, 5)), r.uniform(1, 9, (3, 5)))),
    ("everything 0: a perfect forecast", lambda r: (_np.zeros(4), _np.zeros(4))),
    ("integer arrays", lambda r: (r.integers(1, 20, 7), r.integers(1, 20, 7))),
)


def check_smape(smape, seeds=(40, 41, 42, 43, 44, 45)) -> None:
    """200/n * sum |y - yhat| / (|y| + |yhat|), a 0/0 term counting 0, in percent."""
    restore_numpy()
    for _, (label, make), rng, seed in _cases(seeds, _SMAPE_CASES):
        y_true, y_pred = make(rng)
        ctx = f"{label}, seed={seed}"
        expected = _expected("smape", y_true, y_pred)
        value = guarded_call("smape", smape, y_true, y_pred)
        hints = ()
        if expected is not None:
            a, b = _asarray(y_true, dtype=_float64), _asarray(y_pred, dtype=_float64)
            num, den = _np.abs(a - b), a + b
            with _np.errstate(all="ignore"):
                no_abs = 200 * _np.mean(_np.where(num == 0, 0.0, num / den))
            hints = (
                (
                    expected / 2,
                    "It is half the M4 sMAPE: the factor is 200/n (a mean in the "
                    "denominator, (|y| + |yhat|)/2), in percent",
                ),
                (expected * 2, "It is twice the M4 sMAPE: the factor is 200/n"),
                (expected / 100, "Give it in percent (200/n, not 2/n)"),
                (no_abs, "The denominator is |y| + |yhat|, with absolute values"),
            )
            if _np.isnan(_asarray(value, dtype=_float64)).any():
                raise GradingError(
                    f"the sMAPE is NaN ({ctx}); a term where y = yhat = 0 is 0/0 and counts 0"
                )
        _scalar("the sMAPE", value, expected, ctx, hints)


# ------------------------------------------------------------------------------------------
# Part 5: the recursive multi-step forecast
# ------------------------------------------------------------------------------------------


class OneStepModel:
    """A fixed nonlinear one-step model: ``model(window) -> float``, the value after the window.

    ``yhat = c + a . tanh(W w + b)`` with ``w`` the (p,) window, oldest first. The weights are
    all different, so a window in the wrong order or with the wrong value dropped gives a
    different prediction; the tanh makes the result depend on its own fed-back predictions
    nonlinearly. It accepts a (p,) array or list and raises a ``ValueError`` that says what it
    got otherwise. It has no state: the same window always gives the same value.
    """

    def __init__(self, p: int, seed: int, hidden: int = 4, level: float = 0.0):
        rng = _np.random.default_rng([int(seed), 11])
        self.p = int(p)
        self.W = rng.normal(0, 1.2 / _np.sqrt(p), (hidden, self.p))
        self.b = rng.normal(0, 0.3, hidden)
        self.a = rng.normal(0, 1.0, hidden)
        self.c = float(level)

    def __call__(self, window) -> float:
        w = _asarray(window, dtype=_float64)
        if w.shape != (self.p,):
            raise ValueError(
                f"the model expects a window of shape (p,) = ({self.p},), oldest value first; "
                f"got shape {w.shape}"
            )
        return float(self.c + self.a @ _tanh(self.W @ (w - self.c) + self.b))

    def __repr__(self) -> str:
        return f"OneStepModel(p={self.p})"


class LinearModel:
    """``model(window) = c + coef . window`` (window oldest first): an AR(p) model."""

    def __init__(self, coef, c: float = 0.0):
        self.coef = _asarray(coef, dtype=_float64)
        self.c = float(c)

    def __call__(self, window) -> float:
        w = _asarray(window, dtype=_float64)
        if w.shape != self.coef.shape:
            raise ValueError(
                f"the model expects a window of shape (p,) = {self.coef.shape}, got {w.shape}"
            )
        return float(self.c + self.coef @ w)

    def __repr__(self) -> str:
        return f"LinearModel(p={self.coef.size})"


# (label, model(seed) -> callable, T, p, H)
_RECURSIVE_CASES = (
    ("a nonlinear model, p = 3, H = 8", lambda s: OneStepModel(3, s), 10, 3, 8),
    ("H = 1 (one step: nothing fed back)", lambda s: OneStepModel(4, s), 9, 4, 1),
    ("p = 1", lambda s: OneStepModel(1, s, level=2.0), 5, 1, 6),
    ("a history exactly p long", lambda s: OneStepModel(5, s), 5, 5, 7),
    ("H > p (every input is a prediction by the end)", lambda s: OneStepModel(2, s), 12, 2, 9),
    (
        "a linear AR(3) model",
        lambda s: LinearModel([0.2, -0.3, 0.9], 0.5),
        15,
        3,
        6,
    ),
    (
        "a nonlinear model around a level of 100",
        lambda s: OneStepModel(4, s, level=100.0),
        20,
        4,
        5,
    ),
)


def check_recursive_forecast(recursive_forecast, seeds=(50, 51, 52, 53, 54, 55, 56)) -> None:
    """Start from the last p values; predict one step; drop the oldest input and append the
    prediction as the newest; repeat H times. Compared with the reference on each model."""
    restore_numpy()
    for _, (label, make, T, p, H), rng, seed in _cases(seeds, _RECURSIVE_CASES):
        model = make(seed)
        level = getattr(model, "c", 0.0)
        history = level + rng.normal(0, 1, T)
        ctx = f"{label}, T={T}, p={p}, H={H}, seed={seed}"
        expected = _expected("recursive_forecast", model, history, H, p)
        pred = guarded_call("recursive_forecast", recursive_forecast, model, history, H, p)
        pred = _array("the forecast", pred, (H,), ctx)
        if expected is None:
            continue
        try:
            assert_close(
                "the forecast", pred, expected, dims=("h",), atol=1e-9, rtol=1e-9, context=ctx
            )
        except GradingError as e:
            raise GradingError(f"{e}{_recursive_hint(model, history, H, p, pred)}") from None


def _recursive_hint(model, history, H, p, pred) -> str:
    h = _asarray(history, dtype=_float64)
    if _same(pred, [model(h[-p:])] * H):
        return ". Every step uses the same window: feed each prediction back as the newest input"
    if p > 1:
        w, out = list(h[-p:]), []
        for _ in range(H):
            out.append(model(_asarray(w)))
            w = w[:-1] + [out[-1]]  # the newest value dropped instead of the oldest
        if _same(pred, out):
            return ". The newest input is dropped; drop the oldest (window[0]) instead"
    if not _same(pred[:1], [model(h[-p:])]):
        return ". Already the first step is wrong: the first window is the last p values of history"
    return ""


# ------------------------------------------------------------------------------------------
# Part 6: the pinball loss
# ------------------------------------------------------------------------------------------


def _quantile_case(shape, q):
    def make(r):
        y = r.normal(size=shape)
        yhat = y[..., None] + r.normal(0, 1, shape + (len(q),))
        return y, yhat, _np.array(q)

    return make


def _ties(r):
    y = r.normal(size=6)
    yhat = y[:, None] + r.normal(size=(6, 2))
    yhat[::2, 0] = y[::2]  # exact hits: the loss is 0 there
    return y, yhat, _np.array([0.25, 0.75])


# (label, make(rng) -> (y_true, y_pred, quantiles))
_PINBALL_CASES = (
    ("three quantiles (0.1, 0.5, 0.9)", _quantile_case((8,), (0.1, 0.5, 0.9))),
    ("one quantile, q = 0.9", _quantile_case((10,), (0.9,))),
    ("one quantile, q = 0.5 (half the MAE)", _quantile_case((7,), (0.5,))),
    (
        "2-D targets (K, H) = (3, 4) with quantiles (0.05, 0.95)",
        _quantile_case((3, 4), (0.05, 0.95)),
    ),
    ("forecasts that hit some targets exactly", _ties),
    ("a single target, q = 0.2", _quantile_case((1,), (0.2,))),
)


def check_pinball_loss(pinball_loss, seeds=(60, 61, 62, 63, 64, 65)) -> None:
    """mean over all entries and quantiles of max(q (y - yhat), (q - 1)(y - yhat))."""
    restore_numpy()
    for _, (label, make), rng, seed in _cases(seeds, _PINBALL_CASES):
        y, yhat, q = make(rng)
        ctx = f"{label}, y_true of shape {y.shape}, seed={seed}"
        expected = _expected("pinball_loss", y, yhat, q)
        value = guarded_call("pinball_loss", pinball_loss, y, yhat, q)
        hints = ()
        if expected is not None:
            u = y[..., None] - yhat
            hints = (
                (
                    float(_np.mean(_np.maximum((1 - q) * u, -q * u))),
                    "q and 1 - q are swapped: an under-forecast (y > yhat) costs q per unit",
                ),
                (
                    float(_np.mean(_np.maximum(q * u, (q - 1) * u).sum(axis=-1))),
                    "It is summed over the quantiles; take the mean over them too",
                ),
            )
        _scalar("the pinball loss", value, expected, ctx, hints)


seal(__name__)
