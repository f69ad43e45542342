r"""Time-series forecasting in NumPy (chapter ch11_timeseries).

The pieces of an honest forecasting experiment, each small enough to check by hand:

- Splits and scaling that use the past only: :func:`chronological_split` (train, validation,
  test in time order), :func:`fit_scaler` / :func:`scale` / :func:`unscale` (statistics of the
  training part only, :math:`z = (x - \mu) / \sigma`) and :func:`split_windows` (supervised
  windows whose targets all lie in one part).
- Baselines every model must beat: :func:`persistence_forecast`
  (:math:`\hat y_{T+h} = y_T`), :func:`seasonal_naive_forecast`
  (:math:`\hat y_{T+h} = y_{T+h-m(\lfloor (h-1)/m \rfloor + 1)}`) and :func:`drift_forecast`.
- Scale-free errors: :func:`mase` (Hyndman and Koehler 2006) and :func:`smape` (the M4
  competition's definition).
- Multi-step forecasts from a one-step model: :func:`recursive_forecast`.
- Probabilistic forecasts: :func:`pinball_loss`, its gradient :func:`pinball_loss_grad`, and
  :func:`interval_coverage`.
- Evaluation: :func:`rolling_origin` (one forecast from each of several origins) and
  :func:`calendar_features` (sin/cos of the time of day and week).

Time is the first axis: a series is (T,) or (T, D), indexed from 0 in code; the equations
number the observed values :math:`y_1, \dots, y_T` and the forecasts :math:`\hat y_{T+1}, \dots,
\hat y_{T+H}`. Every result is float64 and a fresh array; no input is modified in place.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_int

__all__ = [
    "fit_scaler",
    "scale",
    "unscale",
    "chronological_split",
    "split_windows",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "drift_forecast",
    "mase",
    "smape",
    "recursive_forecast",
    "pinball_loss",
    "pinball_loss_grad",
    "interval_coverage",
    "rolling_origin",
    "calendar_features",
]


# --- validation helpers -----------------------------------------------------------------------


def _series(name: str, x, ndims=(1, 2), allow_empty: bool = False) -> np.ndarray:
    """``x`` as a float64 array of one of ``ndims`` dimensions with at least one time step
    (unless ``allow_empty``) and no NaN or infinity (a NaN would silently spread through every
    statistic below)."""
    arr = np.asarray(x)
    if arr.ndim not in ndims:
        shapes = " or ".join({1: "(T,)", 2: "(T, D)"}[d] for d in ndims)
        raise ValueError(f"{name} must have shape {shapes}, got shape {arr.shape}")
    arr = as_float_array(name, arr, arr.ndim).astype(np.float64, copy=False)
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (T = 0)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _finite(name: str, x) -> np.ndarray:
    """``x`` (any shape, non-empty) as a finite float64 array."""
    arr = np.asarray(x)
    arr = as_float_array(name, arr, arr.ndim).astype(np.float64, copy=False)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _same_shape(a_name: str, a, b_name: str, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _finite(a_name, a), _finite(b_name, b)
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, got {a.shape} and {b.shape}"
        )
    return a, b


# --- scaling and splits -----------------------------------------------------------------------


def fit_scaler(x_train):
    r"""Mean and standard deviation of the *training* part, per column.

    .. math::  \mu = \frac{1}{T} \sum_{t=1}^{T} x_t, \qquad
               \sigma = \sqrt{\frac{1}{T} \sum_{t=1}^{T} (x_t - \mu)^2}

    (the population standard deviation, ``ddof = 0``, as scikit-learn's ``StandardScaler``).
    Fit it on the training part only: statistics of the whole series would carry information
    about the validation and test periods (their level and spread) into the model's inputs.

    A column whose training values are all equal has :math:`\sigma = 0`; its ``std`` is
    returned as **1.0** instead, so that :func:`scale` maps it to 0 rather than dividing by 0
    (``StandardScaler`` does the same).

    Args:
        x_train: (T,) or (T, D), ``T >= 1``.

    Returns:
        mean, std: float64 arrays of shape () for a (T,) series, (D,) for a (T, D) one.
    """
    x = _series("x_train", x_train)
    mean = np.asarray(x.mean(axis=0), dtype=np.float64)
    std = np.asarray(x.std(axis=0), dtype=np.float64)
    # Exactly constant columns (tested exactly: the computed std of a constant column of 0.1s
    # can be 1e-17 rather than 0 after rounding, and dividing by that would blow up).
    constant = np.all(x == x[:1], axis=0)
    std = np.asarray(np.where(constant, 1.0, std), dtype=np.float64)
    return mean, std


def _scaler_args(x, mean, std) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _series("x", x, allow_empty=True)  # an empty period (n_val = 0) scales to an empty one
    mean = _finite("mean", mean)
    std = _finite("std", std)
    want = () if x.ndim == 1 else (x.shape[1],)
    for name, a in (("mean", mean), ("std", std)):
        if a.shape != want:
            raise ValueError(
                f"{name} must have shape {want} for x of shape {x.shape} (one value per "
                f"column, as fit_scaler returns), got {a.shape}"
            )
    if np.any(std <= 0):
        raise ValueError(
            "std must be > 0 in every column (fit_scaler returns 1.0 for a constant one)"
        )
    return x, mean, std


def scale(x, mean, std):
    r"""Standardise with given statistics: :math:`z_t = (x_t - \mu) / \sigma`.

    Args:
        x: (T,) or (T, D), any part of the series (train, validation or test; T = 0 is fine).
        mean, std: from :func:`fit_scaler` on the training part, shape () or (D,).

    Returns:
        z: float64, the shape of ``x``.
    """
    x, mean, std = _scaler_args(x, mean, std)
    return (x - mean) / std


def unscale(z, mean, std):
    r"""Undo :func:`scale`: :math:`x_t = \mu + \sigma z_t` (forecasts back in the data's units).

    Args:
        z: (T,) or (T, D).
        mean, std: as given to :func:`scale`.

    Returns:
        x: float64, the shape of ``z``.
    """
    z, mean, std = _scaler_args(z, mean, std)
    return mean + std * z


def chronological_split(T, n_val, n_test):
    """Split ``range(T)`` into train, validation and test periods, in time order.

    ``train = [0, T - n_val - n_test)``, ``val = [T - n_val - n_test, T - n_test)``,
    ``test = [T - n_test, T)``: the model is fitted on the past and judged on the future, never
    the reverse, and no time step is in two parts.

    Args:
        T: length of the series, ``T >= 1``.
        n_val, n_test: lengths of the validation and test periods, each ``>= 0``.

    Returns:
        (train, val, test): three ``slice`` objects with integer ``start`` and ``stop``.

    Raises ``ValueError`` if the training period would be empty.
    """
    T = check_int("T", T, 1)
    n_val = check_int("n_val", n_val, 0)
    n_test = check_int("n_test", n_test, 0)
    n_train = T - n_val - n_test
    if n_train < 1:
        raise ValueError(
            f"n_val + n_test = {n_val + n_test} leaves no training data in a series of T={T} "
            "time steps (the training period needs at least one)"
        )
    return slice(0, n_train), slice(n_train, T - n_test), slice(T - n_test, T)


def split_windows(x, p, H, start, stop):
    r"""Supervised windows whose targets all lie in one period ``[start, stop)``.

    Window ``i`` forecasts from time ``t_i``: its inputs are the ``p`` values before it and its
    targets the ``H`` values from it,

    .. math::  X_i = (x_{t-p}, \dots, x_{t-1}), \qquad Y_i = (x_t, \dots, x_{t+H-1}),
               \qquad t = \max(\text{start}, p), \dots, \text{stop} - H .

    Every target lies in ``[start, stop)``. The inputs may reach back before ``start``: at a
    forecast origin the past is known, so a test window may read the end of the training
    period (that is not leakage). They never come from ``[stop, ...)``, the future of this
    period. With ``start = 0`` and ``stop = T`` these are all windows of the series.

    Args:
        x: the series, (T,) or (T, D).
        p: number of inputs, ``p >= 1``.
        H: number of targets (the horizon), ``H >= 1``.
        start, stop: the period, ``0 <= start < stop <= T`` (e.g. a slice from
            :func:`chronological_split`: ``sl.start, sl.stop``).

    Returns:
        X: (M, p) or (M, p, D); Y: (M, H) or (M, H, D); float64 copies,
        ``M = stop - H - max(start, p) + 1``.

    Raises ``ValueError`` if no window fits.
    """
    x = _series("x", x)
    p = check_int("p", p, 1)
    H = check_int("H", H, 1)
    start = check_int("start", start, 0)
    stop = check_int("stop", stop, 0)
    T = x.shape[0]
    if stop > T:
        raise ValueError(f"stop={stop} is past the end of the series (T={T})")
    if start >= stop:
        raise ValueError(f"the period [start, stop) = [{start}, {stop}) is empty")
    first, last = max(start, p), stop - H
    if last < first:
        raise ValueError(
            f"no window fits: targets x[t : t + H] in [{start}, {stop}) with p={p} inputs "
            f"before them need t from max(start, p) = {first} to stop - H = {last}"
        )
    t = np.arange(first, last + 1)
    # Fancy indexing copies; row i of the index arrays is t_i - p, ..., t_i - 1 (inputs) and
    # t_i, ..., t_i + H - 1 (targets).
    X = x[t[:, None] + np.arange(-p, 0)[None, :]]
    Y = x[t[:, None] + np.arange(H)[None, :]]
    return X, Y


# --- baselines --------------------------------------------------------------------------------


def _history(history, min_len: int, why: str) -> np.ndarray:
    y = _series("history", history)
    if y.shape[0] < min_len:
        raise ValueError(f"history has {y.shape[0]} values; {why}")
    return y


def persistence_forecast(history, H):
    r"""The naive forecast: the last value, repeated, :math:`\hat y_{T+h} = y_T`, h = 1..H.

    Args:
        history: the observed series, (T,) or (T, D), ``T >= 1``.
        H: horizon, ``H >= 1``.

    Returns:
        (H,) or (H, D) float64.
    """
    y = _history(history, 1, "need at least 1")
    H = check_int("H", H, 1)
    return np.repeat(y[-1:], H, axis=0)


def seasonal_naive_forecast(history, m, H):
    r"""The seasonal naive forecast: the value one season (``m`` steps) earlier,

    .. math::  \hat y_{T+h} = y_{T+h-m(\lfloor (h-1)/m \rfloor + 1)}, \qquad h = 1, \dots, H,

    i.e. the last observed season repeated: for ``H > m`` the forecast goes back whole seasons
    until it reaches observed data, so it never uses a forecast as if it were data. In code
    (0-based) it is ``history[T - m + (h - 1) % m]``. ``m = 1`` is the persistence forecast.

    Args:
        history: (T,) or (T, D) with ``T >= m``.
        m: the seasonal period (48 for a daily cycle of half-hourly data), ``m >= 1``.
        H: horizon, ``H >= 1``; any ``H``, also ``H > m``.

    Returns:
        (H,) or (H, D) float64.

    Raises ``ValueError`` if the history is shorter than one season.
    """
    m = check_int("m", m, 1)
    H = check_int("H", H, 1)
    y = _history(history, m, f"the seasonal naive forecast needs at least one season, m={m}")
    T = y.shape[0]
    h = np.arange(1, H + 1)
    return y[T + h - 1 - m * ((h - 1) // m + 1)].copy()


def drift_forecast(history, H):
    r"""The drift forecast: a straight line through the first and the last value,

    .. math::  \hat y_{T+h} = y_T + h \, \frac{y_T - y_1}{T - 1}, \qquad h = 1, \dots, H .

    Args:
        history: (T,) or (T, D), ``T >= 2``.
        H: horizon, ``H >= 1``.

    Returns:
        (H,) or (H, D) float64.
    """
    y = _history(history, 2, "the drift forecast needs at least 2 (a slope)")
    H = check_int("H", H, 1)
    slope = (y[-1] - y[0]) / (y.shape[0] - 1)
    h = np.arange(1, H + 1, dtype=np.float64).reshape((H,) + (1,) * (y.ndim - 1))
    return y[-1] + h * slope


# --- errors -----------------------------------------------------------------------------------


def mase(y_true, y_pred, y_train, m):
    r"""Mean absolute scaled error (Hyndman and Koehler 2006):

    .. math::  \mathrm{MASE} = \frac{\frac{1}{n} \sum_i \lvert y_i - \hat y_i \rvert}
               {\frac{1}{T - m} \sum_{t=m+1}^{T} \lvert y_t - y_{t-m} \rvert},

    the forecast's MAE divided by the in-sample MAE of the seasonal naive forecast on the
    *training* series. Below 1: better than that baseline was in-sample. The scale comes from
    the training data, which are known when the forecast is made and do not depend on the test
    period. It is defined where MAPE is not (a value 0), and it does not favour forecasts that
    are too low as MAPE does.

    Args:
        y_true, y_pred: the same shape, any (e.g. (H,), or (K, H) from :func:`rolling_origin`).
        y_train: the training series, (T,), ``T > m``.
        m: the seasonal period of the scale, ``m >= 1`` (``m = 1``: the naive forecast).

    Returns:
        a float.

    Raises ``ValueError`` if ``T <= m`` or the scale is 0 (a training series that repeats
    exactly every ``m`` steps, e.g. a constant).
    """
    a, b = _same_shape("y_true", y_true, "y_pred", y_pred)
    y = _series("y_train", y_train, ndims=(1,))
    m = check_int("m", m, 1)
    if y.shape[0] <= m:
        raise ValueError(f"y_train has {y.shape[0]} values; the MASE scale with m={m} needs > m")
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    if scale == 0.0:
        raise ValueError(
            f"the MASE scale is 0: y_train repeats exactly every m={m} steps (constant?), so "
            "the seasonal naive forecast has no in-sample error to scale by"
        )
    return float(np.mean(np.abs(a - b))) / scale


def smape(y_true, y_pred):
    r"""Symmetric mean absolute percentage error, as in the M4 competition, in percent:

    .. math::  \mathrm{sMAPE} = \frac{200}{n} \sum_{i=1}^{n}
               \frac{\lvert y_i - \hat y_i \rvert}{\lvert y_i \rvert + \lvert \hat y_i \rvert} .

    Each term lies in [0, 2], so sMAPE lies in [0, 200], and it is symmetric in ``y_true`` and
    ``y_pred``. A term with :math:`y_i = \hat y_i = 0` is 0/0; it **counts as 0** (a perfect
    forecast of 0) and still counts in ``n``.

    Args:
        y_true, y_pred: the same shape, any.

    Returns:
        a float, in percent.
    """
    a, b = _same_shape("y_true", y_true, "y_pred", y_pred)
    num = np.abs(a - b)
    den = np.abs(a) + np.abs(b)
    # den == 0 only where a == b == 0, where num == 0 too: the term is 0.
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * np.mean(terms))


# --- multi-step forecasts ---------------------------------------------------------------------


def recursive_forecast(step, history, H, p):
    r"""An H-step forecast from a one-step model, feeding each prediction back as an input:

    .. math::  \hat y_{T+h} = f(\tilde y_{T+h-p}, \dots, \tilde y_{T+h-1}), \qquad
               \tilde y_s = \begin{cases} y_s & s \le T \\ \hat y_s & s > T \end{cases}

    The window starts as the last ``p`` observed values (oldest first); after each step the
    oldest value leaves it and the new prediction enters as the newest. Past ``T`` nothing is
    observed, so the model's own predictions are all there is to feed back (and their errors
    compound: that is the price of this strategy).

    Args:
        step: a callable ``step(window) -> float``, ``window`` a (p,) float64 array, oldest first.
            It receives a fresh copy each time, so it may not alias or change the history.
        history: the observed series, (T,) with ``T >= p``.
        H: horizon, ``H >= 1``.
        p: the model's window length, ``p >= 1``.

    Returns:
        (H,) float64.
    """
    if not callable(step):
        raise TypeError(f"step must be a callable window -> value, got {type(step).__name__}")
    y = _series("history", history, ndims=(1,))
    H = check_int("H", H, 1)
    p = check_int("p", p, 1)
    if y.shape[0] < p:
        raise ValueError(f"history has {y.shape[0]} values; a window of p={p} needs at least p")
    window = y[-p:].copy()
    out = np.empty(H, dtype=np.float64)
    for h in range(H):
        value = np.asarray(step(window.copy()), dtype=np.float64)
        if value.size != 1:
            raise ValueError(
                f"step must return one value (the next one), got an array of shape {value.shape}"
            )
        out[h] = value.reshape(())
        # Drop the oldest input, append the prediction as the newest.
        window = np.concatenate([window[1:], out[h : h + 1]])
    return out


# --- probabilistic forecasts ------------------------------------------------------------------


def _quantile_args(y_true, y_pred, quantiles):
    q = _finite("quantiles", quantiles)
    if q.ndim != 1:
        raise ValueError(f"quantiles must have shape (Q,), got {q.shape}")
    if np.any((q <= 0) | (q >= 1)):
        raise ValueError("every quantile level must lie strictly between 0 and 1")
    y = _finite("y_true", y_true)
    yhat = _finite("y_pred", y_pred)
    if yhat.shape != y.shape + q.shape:
        raise ValueError(
            f"y_pred must have shape y_true.shape + (Q,) = {y.shape + q.shape} (one column per "
            f"quantile), got {yhat.shape}"
        )
    return y, yhat, q


def pinball_loss(y_true, y_pred, quantiles):
    r"""The pinball (quantile) loss, averaged over every entry and quantile:

    .. math::  L = \frac{1}{nQ} \sum_{i, j} \rho_{q_j}(y_i - \hat y_{ij}), \qquad
               \rho_q(u) = \max(q u, (q - 1) u)
               = \begin{cases} q u & u \ge 0 \\ (q - 1) u & u < 0 \end{cases}

    Its minimiser over a constant :math:`\hat y` is the :math:`q`-quantile of :math:`y`: an
    under-forecast (:math:`u > 0`) costs :math:`q` per unit, an over-forecast :math:`1 - q`.
    At :math:`q = 0.5` it is half the absolute error.

    Args:
        y_true: (...), any shape ``S``.
        y_pred: ``S + (Q,)``: the forecast of each quantile level.
        quantiles: (Q,), each in (0, 1).

    Returns:
        a float.
    """
    y, yhat, q = _quantile_args(y_true, y_pred, quantiles)
    u = y[..., None] - yhat
    return float(np.mean(np.maximum(q * u, (q - 1) * u)))


def pinball_loss_grad(y_true, y_pred, quantiles):
    r"""Gradient of :func:`pinball_loss` with respect to ``y_pred``:

    .. math::  \frac{\partial L}{\partial \hat y_{ij}} = \frac{1}{nQ}
               \left(\mathbb{1}[y_i < \hat y_{ij}] - q_j\right)
               = \frac{1}{nQ} \begin{cases} -q_j & y_i > \hat y_{ij} \\
                                           1 - q_j & y_i < \hat y_{ij} \end{cases}

    The loss has a kink where :math:`y_i = \hat y_{ij}`; there any value in
    :math:`[-q_j, 1 - q_j] / (nQ)` is a subgradient, and this function returns
    :math:`-q_j / (nQ)`, the slope of the :math:`q u` branch (the convention of LightGBM's
    quantile objective, and of ``torch.where(u >= 0, q * u, (q - 1) * u)`` under autograd).

    Args:
        y_true, y_pred, quantiles: as for :func:`pinball_loss`.

    Returns:
        float64, the shape of ``y_pred``.
    """
    y, yhat, q = _quantile_args(y_true, y_pred, quantiles)
    below = (y[..., None] < yhat).astype(np.float64)
    return (below - q) / yhat.size


def interval_coverage(y_true, lower, upper):
    r"""The fraction of values inside their forecast interval,
    :math:`\frac{1}{n} \sum_i \mathbb{1}[l_i \le y_i \le u_i]` (both ends count as inside).

    A well-calibrated 80% interval (quantiles 0.1 and 0.9) covers about 80% of new values.

    Args:
        y_true, lower, upper: the same shape, any.

    Returns:
        a float in [0, 1].
    """
    y, lo = _same_shape("y_true", y_true, "lower", lower)
    _, hi = _same_shape("y_true", y_true, "upper", upper)
    return float(np.mean((lo <= y) & (y <= hi)))


# --- evaluation -------------------------------------------------------------------------------


def rolling_origin(x, forecast_fn, origins, H):
    r"""Rolling-origin evaluation: from each origin ``o`` forecast the next ``H`` values from
    the history ``x[:o]`` only, and collect the forecasts with the values that followed.

    .. math::  \hat Y_k = f(x_0, \dots, x_{o_k - 1}; H), \qquad Y_k = (x_{o_k}, \dots,
               x_{o_k + H - 1})

    ``forecast_fn`` receives a copy of ``x[:o]``, so nothing after the origin can reach it:
    the evaluation cannot leak the future, whatever the forecaster does. For day-ahead
    forecasts of half-hourly data, ``H = 48`` and the origins step by 48 (each midnight).

    Args:
        x: the series, (T,).
        forecast_fn: ``forecast_fn(history, H) -> (H,)``.
        origins: K integer origins, each with ``1 <= o <= T - H``.
        H: horizon, ``H >= 1``.

    Returns:
        Y_true (K, H) and Y_pred (K, H), float64; row k belongs to ``origins[k]``.
    """
    if not callable(forecast_fn):
        raise TypeError(f"forecast_fn must be callable, got {type(forecast_fn).__name__}")
    y = _series("x", x, ndims=(1,))
    H = check_int("H", H, 1)
    o = np.asarray(origins)
    if o.ndim != 1 or o.size == 0:
        raise ValueError(f"origins must be a non-empty 1-D list of integers, got shape {o.shape}")
    if not np.issubdtype(o.dtype, np.integer):
        raise TypeError(f"origins must be integers, got dtype {o.dtype}")
    T = y.shape[0]
    bad = o[(o < 1) | (o > T - H)]
    if bad.size:
        raise ValueError(
            f"origin {int(bad[0])} is out of range: each needs 1 <= o <= T - H = {T - H} (a "
            "non-empty history and H values after it)"
        )
    Y_true = y[o[:, None] + np.arange(H)[None, :]]
    Y_pred = np.empty((o.size, H), dtype=np.float64)
    for k, origin in enumerate(o):
        pred = np.asarray(forecast_fn(y[: int(origin)].copy(), H), dtype=np.float64)
        if pred.shape != (H,):
            raise ValueError(
                f"forecast_fn returned shape {pred.shape} at origin {int(origin)}; expected ({H},)"
            )
        Y_pred[k] = pred
    return Y_true, Y_pred


def calendar_features(time_index, periods):
    r"""Seasonal position as smooth features, two per period :math:`P`:

    .. math::  \left(\sin \frac{2 \pi t}{P}, \; \cos \frac{2 \pi t}{P}\right)

    with :math:`t` the integer step index. The pair puts each phase on a circle, so the last
    half hour of a day sits next to the first (a raw "half hour of day" 0..47 would put them
    47 apart). For half-hourly data the periods are 48 (a day) and 336 (a week).

    Args:
        time_index: (T,) integer step indices (e.g. ``np.arange(T)``, or ``np.arange(o, o + H)``
            for the steps being forecast).
        periods: the periods (P_1, ..., P_k), each > 0.

    Returns:
        (T, 2k) float64; columns ``2j`` and ``2j + 1`` are the sin and cos of period ``P_{j+1}``.
    """
    t = np.asarray(time_index)
    if t.ndim != 1:
        raise ValueError(f"time_index must have shape (T,), got {t.shape}")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"time_index must hold integer step indices, got dtype {t.dtype}")
    P = _finite("periods", np.atleast_1d(np.asarray(periods)))
    if P.ndim != 1:
        raise ValueError(f"periods must be a 1-D list, got shape {P.shape}")
    if np.any(P <= 0):
        raise ValueError("every period must be > 0")
    # Reduce t modulo P first: sin(2*pi*t/P) for large t loses digits to the huge argument.
    phase = 2 * np.pi * np.mod(t.astype(np.float64)[:, None], P[None, :]) / P[None, :]
    out = np.empty((t.size, 2 * P.size), dtype=np.float64)
    out[:, 0::2] = np.sin(phase)
    out[:, 1::2] = np.cos(phase)
    return out
