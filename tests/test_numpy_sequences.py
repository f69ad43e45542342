"""rnn_ref.numpy.sequences: sliding windows, one-hot encoding, AR(p) fit and predict, MSE/MAE.

Known values worked by hand, properties over random sizes (hypothesis), no in-place
modification of inputs, and error messages.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy.sequences import fit_ar, mae, mse, one_hot, predict_ar, sliding_windows

# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def test_sliding_windows_of_arange():
    # series 0..5, p = 3, horizon = 1: windows start at 0, 1, 2; targets 3, 4, 5.
    X, y = sliding_windows(np.arange(6), 3)
    np.testing.assert_array_equal(X, [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [3, 4, 5])
    assert X.dtype == y.dtype == np.arange(6).dtype  # token indices stay integers


def test_sliding_windows_horizon_two():
    # horizon = 2 skips one value: window [0, 1] -> 3, [1, 2] -> 4, [2, 3] -> 5.
    X, y = sliding_windows(np.arange(6.0), 2, horizon=2)
    np.testing.assert_array_equal(X, [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    np.testing.assert_array_equal(y, [3.0, 4.0, 5.0])


def test_sliding_windows_multivariate():
    # (T, D) = (4, 2), rows [t, 10 t]; p = 2: X (2, 2, 2), time then feature.
    series = np.stack([np.arange(4.0), 10 * np.arange(4.0)], axis=1)
    X, y = sliding_windows(series, 2)
    assert X.shape == (2, 2, 2) and y.shape == (2, 2)
    np.testing.assert_array_equal(X[0], [[0.0, 0.0], [1.0, 10.0]])
    np.testing.assert_array_equal(X[1], [[1.0, 10.0], [2.0, 20.0]])
    np.testing.assert_array_equal(y, [[2.0, 20.0], [3.0, 30.0]])


def test_sliding_windows_shortest_series_gives_one_window():
    X, y = sliding_windows([5.0, 6.0, 7.0], 2)
    np.testing.assert_array_equal(X, [[5.0, 6.0]])
    np.testing.assert_array_equal(y, [7.0])


def test_sliding_windows_returns_copies():
    series = np.arange(5.0)
    X, y = sliding_windows(series, 2)
    assert X.flags.writeable and X.flags.c_contiguous
    assert not np.shares_memory(X, series) and not np.shares_memory(y, series)
    X[0, 0] = 99.0
    y[0] = 99.0
    np.testing.assert_array_equal(series, np.arange(5.0))


def test_one_hot_small():
    np.testing.assert_array_equal(
        one_hot([2, 0, 1], 3), [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    )
    out = one_hot(np.array([[1], [3]]), 4)
    assert out.shape == (2, 1, 4) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 0], [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(one_hot(0, 2), [1.0, 0.0])  # a scalar index gives (V,)
    assert one_hot([], 5).shape == (0, 5)


def test_fit_ar_recovers_exact_ar2():
    # x_t = 1 + 0.5 x_{t-1} - 0.3 x_{t-2}, no noise: least squares recovers it exactly.
    a1, a2, c = 0.5, -0.3, 1.0
    x = [0.0, 2.0]
    for _ in range(28):
        x.append(c + a1 * x[-1] + a2 * x[-2])
    x = np.array(x)
    coef, intercept = fit_ar(x, 2)
    np.testing.assert_allclose(coef, [a1, a2], atol=1e-10)
    assert abs(intercept - c) < 1e-10
    assert isinstance(intercept, float)
    # One-step predictions reproduce the series; the last one is the next value.
    pred = predict_ar(x, coef, intercept)
    assert pred.shape == (x.size - 1,)
    np.testing.assert_allclose(pred[:-1], x[2:], atol=1e-10)
    np.testing.assert_allclose(pred[-1], c + a1 * x[-1] + a2 * x[-2], atol=1e-10)


def test_predict_ar_known_values_and_windows_agree_with_series():
    # coef = [a_1, a_2] = [2, 10], c = 1: window [x_{t-2}, x_{t-1}] = [3, 4] -> 1 + 2*4 + 10*3.
    np.testing.assert_allclose(predict_ar(np.array([[3.0, 4.0]]), [2.0, 10.0], 1.0), [39.0])
    series = np.array([1.0, 2.0, 3.0, 4.0])
    X, _ = sliding_windows(series, 2)
    from_series = predict_ar(series, [2.0, 10.0], 1.0)
    np.testing.assert_allclose(from_series, [1 + 4 + 10, 1 + 6 + 20, 1 + 8 + 30])
    np.testing.assert_allclose(predict_ar(X, [2.0, 10.0], 1.0), from_series[:-1])


def test_fit_ar_noisy_ar1_close_to_truth(rng):
    # x_t = 0.2 + 0.8 x_{t-1} + eps, T = 5000: the estimate is within a few standard errors.
    x = np.zeros(5000)
    eps = rng.standard_normal(5000) * 0.1
    for t in range(1, 5000):
        x[t] = 0.2 + 0.8 * x[t - 1] + eps[t]
    coef, intercept = fit_ar(x, 1)
    assert abs(coef[0] - 0.8) < 0.03
    assert abs(intercept - 0.2) < 0.03


def test_mse_mae_small_vectors():
    # errors y - y_hat = [1, -2, 0, 3]: MSE = (1 + 4 + 0 + 9) / 4 = 3.5, MAE = 6 / 4 = 1.5
    y, y_hat = [1.0, 0.0, 2.0, 3.0], [0.0, 2.0, 2.0, 0.0]
    assert mse(y, y_hat) == 3.5
    assert mae(y, y_hat) == 1.5
    assert mse(np.ones((2, 3)), np.ones((2, 3))) == 0.0
    assert isinstance(mse(y, y_hat), float) and isinstance(mae(y, y_hat), float)


def test_mean_error_cancels_but_mse_does_not():
    # The seeds' "MSE" = mean(y - y_hat) is 0 here although every prediction is off by 1.
    y, y_hat = np.array([1.0, -1.0]), np.array([0.0, 0.0])
    assert np.mean(y - y_hat) == 0.0
    assert mse(y, y_hat) == 1.0
    assert mae(y, y_hat) == 1.0


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------------------------


@given(
    T=st.integers(2, 30),
    p=st.integers(1, 10),
    horizon=st.integers(1, 10),
    D=st.none() | st.integers(1, 3),
)
@example(T=2, p=1, horizon=1, D=None)
@example(T=5, p=2, horizon=3, D=2)
def test_sliding_windows_count_and_contents(T, p, horizon, D):
    if T < p + horizon:
        with pytest.raises(ValueError, match="series is too short"):
            sliding_windows(np.zeros(T), p, horizon)
        return
    shape = (T,) if D is None else (T, D)
    series = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    X, y = sliding_windows(series, p, horizon)
    M = T - p - horizon + 1
    assert X.shape == (M, p) + shape[1:]
    assert y.shape == (M,) + shape[1:]
    for i in range(M):
        np.testing.assert_array_equal(X[i], series[i : i + p])
        np.testing.assert_array_equal(y[i], series[i + p - 1 + horizon])


@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    V=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
@example(shape=(), V=1, seed=0)
def test_one_hot_rows_sum_to_one_and_argmax_inverts(shape, V, seed):
    idx = np.random.default_rng(seed).integers(0, V, size=shape)
    out = one_hot(idx, V)
    assert out.shape == shape + (V,)
    np.testing.assert_array_equal(out.sum(axis=-1), np.ones(shape))
    np.testing.assert_array_equal(out.argmax(axis=-1), idx)
    assert set(np.unique(out)) <= {0.0, 1.0}


@given(p=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_fit_then_predict_is_least_squares(p, seed):
    # The residuals of a least-squares fit are orthogonal to every column of [lags, 1].
    x = np.random.default_rng(seed).standard_normal(40)
    coef, intercept = fit_ar(x, p)
    X, y = sliding_windows(x, p)
    r = y - predict_ar(X, coef, intercept)
    A = np.column_stack([X, np.ones(len(y))])
    np.testing.assert_allclose(A.T @ r, 0.0, atol=1e-9)
    assert mse(y, predict_ar(X, coef, intercept)) <= mse(y, np.full_like(y, y.mean())) + 1e-12


# ---------------------------------------------------------------------------------------------
# No input modified
# ---------------------------------------------------------------------------------------------


def test_inputs_not_modified(rng, assert_unchanged):
    series = rng.standard_normal(20)
    series2 = rng.standard_normal((20, 3))
    idx = rng.integers(0, 5, size=(3, 4))
    y, y_hat = rng.standard_normal(7), rng.standard_normal(7)
    coef = np.array([0.3, -0.2])
    before = copy.deepcopy((series, series2, idx, y, y_hat, coef))
    sliding_windows(series, 3, 2)
    sliding_windows(series2, 4)
    one_hot(idx, 5)
    fit_ar(series, 2)
    predict_ar(series, coef, 0.5)
    predict_ar(sliding_windows(series, 2)[0], coef, 0.5)
    mse(y, y_hat)
    mae(y, y_hat)
    assert_unchanged(before, (series, series2, idx, y, y_hat, coef))


# ---------------------------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------------------------


def test_sliding_windows_errors():
    with pytest.raises(ValueError, match=r"p must be >= 1, got 0"):
        sliding_windows(np.arange(5), 0)
    with pytest.raises(ValueError, match=r"horizon must be >= 1, got 0"):
        sliding_windows(np.arange(5), 2, horizon=0)
    with pytest.raises(TypeError, match=r"p must be an integer, got 2.0"):
        sliding_windows(np.arange(5), 2.0)
    with pytest.raises(TypeError, match=r"horizon must be an integer, got True"):
        sliding_windows(np.arange(5), 2, horizon=True)
    with pytest.raises(
        ValueError,
        match=r"series is too short: windows of p=3 with horizon=2 need at least "
        r"p \+ horizon = 5 time steps, got T=4",
    ):
        sliding_windows(np.arange(4), 3, horizon=2)
    with pytest.raises(ValueError, match=r"series must have shape \(T,\) or \(T, D\), got shape"):
        sliding_windows(np.zeros((2, 3, 4)), 1)
    with pytest.raises(TypeError, match=r"series must hold numbers, got dtype <U1"):
        sliding_windows(np.array(list("abcd")), 1)


def test_one_hot_errors():
    with pytest.raises(ValueError, match=r"indices must lie in \[0, V\) = \[0, 3\), got 3"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, V\) = \[0, 3\), got -1"):
        one_hot([[1, -1]], 3)
    with pytest.raises(TypeError, match=r"indices must be integers, got dtype float64"):
        one_hot([0.0, 1.0], 3)
    with pytest.raises(TypeError, match=r"indices must be integers, got dtype bool"):
        one_hot([True, False], 3)
    with pytest.raises(ValueError, match=r"V must be >= 1, got 0"):
        one_hot([0], 0)
    with pytest.raises(TypeError, match=r"V must be an integer, got 3.5"):
        one_hot([0], 3.5)


def test_fit_ar_errors():
    with pytest.raises(
        ValueError, match=r"series is too short to fit AR\(2\): need at least 2p \+ 1 = 5"
    ):
        fit_ar(np.arange(4.0), 2)
    with pytest.raises(ValueError, match=r"series must have 1 dimensions, got shape \(5, 2\)"):
        fit_ar(np.zeros((5, 2)), 1)
    with pytest.raises(ValueError, match=r"p must be >= 1, got 0"):
        fit_ar(np.arange(5.0), 0)
    with pytest.raises(ValueError, match=r"has rank 1 < 2: the coefficients are not determined"):
        fit_ar(np.ones(10), 1)


def test_predict_ar_errors():
    with pytest.raises(ValueError, match=r"coef must have 1 dimensions, got shape \(1, 2\)"):
        predict_ar(np.arange(5.0), [[1.0, 2.0]], 0.0)
    with pytest.raises(ValueError, match=r"coef must hold at least one coefficient"):
        predict_ar(np.arange(5.0), [], 0.0)
    with pytest.raises(ValueError, match=r"intercept must be a scalar number, got \[0.0\]"):
        predict_ar(np.arange(5.0), [1.0], [0.0])
    with pytest.raises(
        ValueError,
        match=r"series is too short for AR\(3\): need at least p = 3 time steps, got T=2",
    ):
        predict_ar([1.0, 2.0], [1.0, 2.0, 3.0], 0.0)
    with pytest.raises(
        ValueError, match=r"windows must have shape \(M, p\) = \(M, 2\) to match coef, got \(4, 3\)"
    ):
        predict_ar(np.zeros((4, 3)), [1.0, 2.0], 0.0)
    with pytest.raises(
        ValueError, match=r"x must be a series \(T,\) or windows \(M, p\), got shape"
    ):
        predict_ar(np.zeros((2, 2, 2)), [1.0, 2.0], 0.0)


def test_mse_mae_errors():
    for fn in (mse, mae):
        with pytest.raises(
            ValueError, match=r"y_true and y_pred must have the same shape, got \(3,\) and \(3, 1\)"
        ):
            fn(np.zeros(3), np.zeros((3, 1)))
        with pytest.raises(ValueError, match=r"y_true and y_pred are empty"):
            fn([], [])
        with pytest.raises(TypeError, match=r"y_pred must hold numbers, got dtype <U1"):
            fn([1.0], ["a"])
