r"""Sequence data and autoregressive models in NumPy (chapter ch01_sequences).

- :func:`sliding_windows` turns a series into supervised pairs: the ``p`` past values and the
  value ``horizon`` steps after the window's end.
- :func:`one_hot` encodes token indices as vectors of length ``V``.
- :func:`fit_ar` and :func:`predict_ar`: the autoregressive model AR(p),

  .. math::  x_t = c + \sum_{k=1}^{p} a_k x_{t-k} + \varepsilon_t,

  fitted in closed form by least squares, and its one-step predictions.
- :func:`mse` and :func:`mae`: the losses used to compare forecasts.

Time is the first axis: a series is (T,) or (T, D). No input is modified in place; every array
returned is a fresh one, never a view of an input.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import as_float_array, check_int

__all__ = ["sliding_windows", "one_hot", "fit_ar", "predict_ar", "mse", "mae"]


def _as_series(series) -> np.ndarray:
    """``series`` as a numeric array of shape (T,) or (T, D) (its dtype kept: token indices stay
    integers)."""
    arr = np.asarray(series)
    if arr.ndim not in (1, 2):
        raise ValueError(f"series must have shape (T,) or (T, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"series must hold numbers, got dtype {arr.dtype}")
    return arr


def sliding_windows(series, p, horizon=1):
    """Cut a series into (window, target) pairs for supervised learning.

    Window ``i`` holds ``series[i], ..., series[i + p - 1]`` (oldest first) and its target is
    ``series[i + p - 1 + horizon]``, the value ``horizon`` steps after the window's last one.
    With ``horizon = 1`` the target is the next value.

    Args:
        series: the series, (T,) or (T, D).
        p: window length (number of past values), ``p >= 1``.
        horizon: how many steps ahead the target lies, ``horizon >= 1``.

    Returns:
        X: windows, (M, p) or (M, p, D), with ``M = T - p - horizon + 1``.
        y: targets, (M,) or (M, D).

    Both are copies (``sliding_window_view`` alone returns a read-only view that aliases
    ``series``), with the dtype of ``series``. Needs ``T >= p + horizon``.
    """
    arr = _as_series(series)
    p = check_int("p", p, 1)
    horizon = check_int("horizon", horizon, 1)
    T = arr.shape[0]
    if T < p + horizon:
        raise ValueError(
            f"series is too short: windows of p={p} with horizon={horizon} need at least "
            f"p + horizon = {p + horizon} time steps, got T={T}"
        )
    M = T - p - horizon + 1
    # sliding_window_view puts the window axis last: (T - p + 1, p) or (T - p + 1, D, p).
    view = sliding_window_view(arr, p, axis=0)[:M]
    if arr.ndim == 2:
        view = np.moveaxis(view, -1, 1)  # (M, p, D)
    X = np.array(view, copy=True, order="C")
    y = arr[p + horizon - 1 :].copy()
    return X, y


def one_hot(indices, V):
    """One-hot encode integer indices: ``out[..., j] = 1.0 if indices[...] == j else 0.0``.

    Args:
        indices: integers in ``[0, V)``, any shape ``S``.
        V: vocabulary size, ``V >= 1``.

    Returns:
        float64 array of shape ``S + (V,)``; every row sums to 1 and its argmax is the index.
    """
    V = check_int("V", V, 1)
    idx = np.asarray(indices)
    if idx.size == 0 and not np.issubdtype(idx.dtype, np.integer):
        idx = idx.astype(np.int64)  # np.asarray([]) is float64; an empty input is fine
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= V):
        bad = idx[(idx < 0) | (idx >= V)]
        raise ValueError(f"indices must lie in [0, V) = [0, {V}), got {bad.flat[0]}")
    return (idx[..., None] == np.arange(V)).astype(np.float64)


def _lagged(windows: np.ndarray) -> np.ndarray:
    """Windows (oldest first) reversed so that column ``k - 1`` holds lag ``k``: x_{t-k}."""
    return windows[:, ::-1]


def fit_ar(series, p):
    r"""Fit AR(p), :math:`x_t = c + \sum_{k=1}^{p} a_k x_{t-k}`, by least squares.

    The design matrix has one row per target :math:`x_t`, ``t = p, ..., T - 1``:
    ``[x_{t-1}, ..., x_{t-p}, 1]``; ``np.linalg.lstsq`` solves
    :math:`\min_{a, c} \sum_t (x_t - c - \sum_k a_k x_{t-k})^2` in closed form.

    Args:
        series: a univariate series, (T,), with ``T >= 2p + 1`` (at least ``p + 1`` equations
            for the ``p + 1`` unknowns).
        p: the order, ``p >= 1``.

    Returns:
        coef: (p,), ``coef[k - 1] = a_k``, the weight of lag ``k``.
        intercept: the float ``c``.

    Raises ``ValueError`` if the design matrix is rank-deficient (for example a constant
    series), because the coefficients are then not determined by the data.
    """
    x = as_float_array("series", series, 1)
    p = check_int("p", p, 1)
    T = x.shape[0]
    if T < 2 * p + 1:
        raise ValueError(
            f"series is too short to fit AR({p}): need at least 2p + 1 = {2 * p + 1} time steps "
            f"(p + 1 equations for p + 1 unknowns), got T={T}"
        )
    X, y = sliding_windows(x, p)
    A = np.column_stack([_lagged(X), np.ones(X.shape[0], dtype=x.dtype)])
    sol, _, rank, _ = np.linalg.lstsq(A, y, rcond=None)
    if rank < p + 1:
        raise ValueError(
            f"the AR({p}) design matrix [lags, 1] has rank {rank} < {p + 1}: the coefficients "
            "are not determined by this series (is it constant?)"
        )
    return sol[:p].copy(), float(sol[p])


def predict_ar(x, coef, intercept):
    r"""One-step AR predictions :math:`\hat x_t = c + \sum_{k=1}^{p} a_k x_{t-k}`.

    Args:
        x: either windows (M, p), oldest value first as from :func:`sliding_windows`, or a
            series (T,) with ``T >= p``, whose every window of ``p`` values is used.
        coef: (p,), ``coef[k - 1] = a_k``.
        intercept: the scalar ``c``.

    Returns:
        (M,) predictions of the value after each window. For a series, ``M = T - p + 1``:
        ``pred[i]`` predicts ``series[i + p]``, so ``pred[:-1]`` matches the targets of
        ``sliding_windows(series, p)`` and ``pred[-1]`` is the forecast past the series' end.
    """
    coef = as_float_array("coef", coef, 1)
    p = coef.shape[0]
    if p == 0:
        raise ValueError("coef must hold at least one coefficient, got shape (0,)")
    c = np.asarray(intercept)
    if c.ndim != 0 or not (np.issubdtype(c.dtype, np.number) or c.dtype == bool):
        raise ValueError(f"intercept must be a scalar number, got {intercept!r}")
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = as_float_array("series", arr, 1)
        if arr.shape[0] < p:
            raise ValueError(
                f"series is too short for AR({p}): need at least p = {p} time steps, "
                f"got T={arr.shape[0]}"
            )
        windows = sliding_window_view(arr, p)
    elif arr.ndim == 2:
        windows = as_float_array("windows", arr, 2)
        if windows.shape[1] != p:
            raise ValueError(
                f"windows must have shape (M, p) = (M, {p}) to match coef, got {windows.shape}"
            )
    else:
        raise ValueError(f"x must be a series (T,) or windows (M, p), got shape {arr.shape}")
    return _lagged(windows) @ coef + c


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays of the same, non-empty shape."""
    a, b = np.asarray(y_true), np.asarray(y_pred)
    a = as_float_array("y_true", a, a.ndim)
    b = as_float_array("y_pred", b, b.ndim)
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("y_true and y_pred are empty: the mean of no errors is undefined")
    return a, b


def mse(y_true, y_pred):
    r"""Mean squared error :math:`\frac{1}{n} \sum_i (y_i - \hat y_i)^2`, over all entries.

    Square *before* averaging. Some earlier notebooks computed "MSE" as ``mean(y - y_hat)``, the
    mean of the un-squared differences: that is the bias of the predictions, not their error.
    Positive and negative errors cancel, so predictions that are wrong in both directions can
    score 0 (``y = [1, -1]``, ``y_hat = [0, 0]`` gives ``mean(y - y_hat) = 0`` but MSE 1).

    Args:
        y_true, y_pred: arrays of the same, non-empty shape.

    Returns:
        a float.
    """
    a, b = _pair(y_true, y_pred)
    return float(np.mean((a - b) ** 2))


def mae(y_true, y_pred):
    r"""Mean absolute error :math:`\frac{1}{n} \sum_i |y_i - \hat y_i|`, over all entries.

    Like :func:`mse` the errors are made non-negative before averaging, so they cannot cancel;
    MAE weighs a large error less than MSE does.

    Args:
        y_true, y_pred: arrays of the same, non-empty shape.

    Returns:
        a float.
    """
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))
