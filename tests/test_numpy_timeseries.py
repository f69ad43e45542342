"""rnn_ref.numpy.timeseries: scaling and splits, baselines, MASE/sMAPE, recursive forecasts,
the pinball loss, rolling-origin evaluation and calendar features.

Known values worked by hand, properties over random sizes (hypothesis), parity with
established libraries where one computes the same thing (scikit-learn's StandardScaler and
mean_pinball_loss, pmdarima's sMAPE), no in-place modification of inputs, and error messages.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy.gradcheck import numerical_gradient
from rnn_ref.numpy.timeseries import (
    calendar_features,
    chronological_split,
    drift_forecast,
    fit_scaler,
    interval_coverage,
    mase,
    persistence_forecast,
    pinball_loss,
    pinball_loss_grad,
    recursive_forecast,
    rolling_origin,
    scale,
    seasonal_naive_forecast,
    smape,
    split_windows,
    unscale,
)

# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def test_fit_scaler_by_hand():
    # [1, 2, 3, 6]: mean 3; deviations -2, -1, 0, 3; population variance (4+1+0+9)/4 = 3.5.
    mean, std = fit_scaler(np.array([1.0, 2.0, 3.0, 6.0]))
    assert mean.shape == std.shape == () and mean.dtype == std.dtype == np.float64
    assert mean == 3.0
    assert std == pytest.approx(np.sqrt(3.5), rel=1e-15)


def test_fit_scaler_constant_column_has_std_one():
    # Column 1 is constant (0.1 is not exact in binary: the computed std may be 1e-17, not 0).
    x = np.array([[1.0, 0.1], [3.0, 0.1], [5.0, 0.1]])
    mean, std = fit_scaler(x)
    np.testing.assert_allclose(mean, [3.0, 0.1], rtol=1e-15)
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1.0], rtol=1e-15)
    z = scale(x, mean, std)
    np.testing.assert_allclose(z[:, 1], 0.0, atol=1e-15)


def test_fit_scaler_matches_sklearn_standard_scaler():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (40, 3))
    x[:, 2] = -7.5  # constant: StandardScaler sets its scale_ to 1 too
    sk = StandardScaler().fit(x)
    mean, std = fit_scaler(x)
    np.testing.assert_allclose(mean, sk.mean_, rtol=1e-13)
    np.testing.assert_allclose(std, sk.scale_, rtol=1e-13)
    np.testing.assert_allclose(scale(x, mean, std), sk.transform(x), atol=1e-12)


def test_scale_uses_the_given_statistics_not_its_own():
    # Fitted on the training part [0, 2] (mean 1, std sqrt(2/3)), the test part [10, 11] is far
    # above 0: that shift is what a leak-free pipeline must see.
    mean, std = fit_scaler([0.0, 1.0, 2.0])
    z = scale(np.array([10.0, 11.0]), mean, std)
    np.testing.assert_allclose(z, [9 / np.sqrt(2 / 3), 10 / np.sqrt(2 / 3)], rtol=1e-14)
    np.testing.assert_allclose(unscale(z, mean, std), [10.0, 11.0], rtol=1e-14)


def test_scale_of_an_empty_period_is_empty():
    # chronological_split(T, 0, n_test) gives an empty validation period; scaling it is fine.
    mean, std = fit_scaler(np.ones((4, 2)) * [[1.0], [2.0], [3.0], [4.0]])
    z = scale(np.empty((0, 2)), mean, std)
    assert z.shape == (0, 2) and z.dtype == np.float64


def test_chronological_split_by_hand():
    train, val, test = chronological_split(10, 2, 3)
    assert (train, val, test) == (slice(0, 5), slice(5, 7), slice(7, 10))
    x = np.arange(10)
    np.testing.assert_array_equal(np.concatenate([x[train], x[val], x[test]]), x)
    # An empty validation period is allowed.
    assert chronological_split(4, 0, 1) == (slice(0, 3), slice(3, 3), slice(3, 4))


def test_split_windows_by_hand():
    # x = 0..9, p = 3, H = 2, period [5, 10): t = 5..8. Inputs reach back to 2 (before start).
    X, Y = split_windows(np.arange(10.0), 3, 2, 5, 10)
    np.testing.assert_array_equal(X, [[2, 3, 4], [3, 4, 5], [4, 5, 6], [5, 6, 7]])
    np.testing.assert_array_equal(Y, [[5, 6], [6, 7], [7, 8], [8, 9]])
    assert X.dtype == Y.dtype == np.float64


def test_split_windows_start_before_p_starts_at_p():
    # start = 0 but the first window needs p inputs: t starts at p = 2.
    X, Y = split_windows(np.arange(6.0), 2, 1, 0, 6)
    np.testing.assert_array_equal(X, [[0, 1], [1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(Y, [[2], [3], [4], [5]])


def test_split_windows_start_equal_p_and_one_window():
    X, Y = split_windows(np.arange(5.0), 3, 2, 3, 5)  # exactly one window: t = 3
    np.testing.assert_array_equal(X, [[0, 1, 2]])
    np.testing.assert_array_equal(Y, [[3, 4]])


def test_split_windows_stops_before_stop():
    # Period [0, 6) of a longer series: the 7th and later values are never read.
    x = np.arange(10.0)
    X, Y = split_windows(x, 2, 2, 0, 6)
    assert Y.max() == 5.0 and X.max() == 3.0


def test_split_windows_multivariate():
    x = np.stack([np.arange(6.0), -np.arange(6.0)], axis=1)  # (6, 2)
    X, Y = split_windows(x, 2, 3, 2, 6)
    assert X.shape == (2, 2, 2) and Y.shape == (2, 3, 2)
    np.testing.assert_array_equal(X[1], [[1, -1], [2, -2]])
    np.testing.assert_array_equal(Y[1], [[3, -3], [4, -4], [5, -5]])


def test_persistence_and_drift_by_hand():
    np.testing.assert_array_equal(persistence_forecast([3.0, 1.0, 4.0], 3), [4.0, 4.0, 4.0])
    # y_1 = 1, y_T = 7, T = 4: slope (7 - 1) / 3 = 2, forecasts 9, 11, 13.
    np.testing.assert_array_equal(drift_forecast([1.0, 5.0, 2.0, 7.0], 3), [9.0, 11.0, 13.0])
    two = drift_forecast(np.array([[0.0, 10.0], [1.0, 8.0]]), 2)
    np.testing.assert_array_equal(two, [[2.0, 6.0], [3.0, 4.0]])


def test_seasonal_naive_by_hand():
    # history ... 10, 20, 30 (the last season, m = 3); H = 7 > m wraps around twice.
    hist = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(seasonal_naive_forecast(hist, 3, 7), [10, 20, 30, 10, 20, 30, 10])
    np.testing.assert_array_equal(seasonal_naive_forecast(hist, 3, 1), [10.0])
    # m = 1 is persistence; a history exactly one season long is enough.
    np.testing.assert_array_equal(seasonal_naive_forecast(hist, 1, 3), [30.0, 30.0, 30.0])
    np.testing.assert_array_equal(seasonal_naive_forecast(hist, 6, 2), [1.0, 2.0])


def test_seasonal_naive_follows_the_formula_index_by_index():
    # y_hat_{T+h} = y_{T+h-m(floor((h-1)/m)+1)} with 1-based y, written out literally.
    hist = np.random.default_rng(1).normal(size=11)
    T, m, H = 11, 4, 13
    want = [hist[T + h - m * ((h - 1) // m + 1) - 1] for h in range(1, H + 1)]
    np.testing.assert_array_equal(seasonal_naive_forecast(hist, m, H), want)


def test_mase_by_hand():
    # y_train = [1, 3, 2, 5], m = 1: |2| + |1| + |3| = 6 over 3 -> scale 2. MAE of the forecast
    # [4, 4] of [5, 2] is (1 + 2) / 2 = 1.5: MASE 0.75.
    assert mase([5.0, 2.0], [4.0, 4.0], [1.0, 3.0, 2.0, 5.0], 1) == 0.75
    # m = 2: |2 - 1| + |5 - 3| = 3 over 2 -> scale 1.5; MASE 1.0.
    assert mase([5.0, 2.0], [4.0, 4.0], [1.0, 3.0, 2.0, 5.0], 2) == 1.0


def test_smape_by_hand():
    # |100 - 110| / 210 and |50 - 40| / 90, times 200 / 2.
    want = 100 * (10 / 210 + 10 / 90)
    assert smape([100.0, 50.0], [110.0, 40.0]) == pytest.approx(want, rel=1e-14)
    # A zero forecast of a non-zero value costs the maximum, 200.
    assert smape([3.0], [0.0]) == 200.0
    # 0/0 counts 0 (and still counts in n): (0 + 200) / 2.
    assert smape([0.0, 1.0], [0.0, -1.0]) == 100.0
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0


def test_smape_matches_pmdarima_and_its_documented_example():
    import pmdarima.metrics

    y_true = np.array([0.07533] * 6 + [0.0672] * 2)
    y_pred = np.array([0.102, 0.107, 0.047, 0.1, 0.032, 0.047, 0.108, 0.089])
    assert smape(y_true, y_pred) == pytest.approx(42.60306631890196, rel=1e-12)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert smape(a, b) == pytest.approx(pmdarima.metrics.smape(a, b), rel=1e-12)


def test_recursive_forecast_by_hand():
    # Fibonacci: next = sum of the window (p = 2), from [1, 1].
    np.testing.assert_array_equal(
        recursive_forecast(lambda w: w[0] + w[1], np.array([5.0, 1.0, 1.0]), 5, 2),
        [2.0, 3.0, 5.0, 8.0, 13.0],
    )
    # The window is oldest first: next = 10 * oldest + newest.
    out = recursive_forecast(lambda w: 10 * w[0] + w[1], np.array([1.0, 2.0]), 2, 2)
    np.testing.assert_array_equal(out, [12.0, 10 * 2 + 12])


def test_recursive_forecast_feeds_back_a_nonlinear_model():
    # step(w) = w[-1] ** 2 - w[0]: a one-step model applied to its own outputs.
    calls = []

    def step(w):
        calls.append(w.copy())
        return w[-1] ** 2 - w[0]

    out = recursive_forecast(step, np.array([0.5, 1.0, 2.0]), 3, 3)
    # windows [0.5,1,2] -> 3.5; [1,2,3.5] -> 11.25; [2,3.5,11.25] -> 124.5625.
    np.testing.assert_allclose(out, [3.5, 11.25, 124.5625], rtol=0)
    np.testing.assert_array_equal(calls[2], [2.0, 3.5, 11.25])


def test_recursive_forecast_with_p_one_and_a_window_the_model_cannot_change():
    hist = np.array([2.0])

    def mutating(w):
        w *= 0  # a model that writes into its input must not change the forecast
        return 1.0

    np.testing.assert_array_equal(
        recursive_forecast(lambda w: 0.5 * w[0], hist, 3, 1), [1, 0.5, 0.25]
    )
    recursive_forecast(mutating, hist, 2, 1)
    np.testing.assert_array_equal(hist, [2.0])


def test_pinball_loss_by_hand():
    # y = 1 with forecasts 0 (q = 0.1, under by 1: cost 0.1) and 1 (q = 0.9, exact: 0);
    # y = 2 with forecasts 3 (q = 0.1, over by 1: cost 0.9) and 2 (exact). Mean 1.0 / 4.
    y, yhat, q = np.array([1.0, 2.0]), np.array([[0.0, 1.0], [3.0, 2.0]]), np.array([0.1, 0.9])
    assert pinball_loss(y, yhat, q) == 0.25
    g = pinball_loss_grad(y, yhat, q)
    # (1[y < yhat] - q) / 4: under-forecast -q; over-forecast 1 - q; at a tie -q (documented).
    np.testing.assert_allclose(g, [[-0.1, -0.9], [0.9, -0.9]] / np.float64(4), rtol=1e-15)


def test_pinball_loss_matches_sklearn():
    from sklearn.metrics import mean_pinball_loss

    rng = np.random.default_rng(3)
    y = rng.normal(size=30)
    q = np.array([0.1, 0.5, 0.9])
    yhat = y[:, None] + rng.normal(size=(30, 3))
    want = np.mean([mean_pinball_loss(y, yhat[:, j], alpha=q[j]) for j in range(3)])
    assert pinball_loss(y, yhat, q) == pytest.approx(want, rel=1e-13)
    # One quantile level: Q = 1.
    one = mean_pinball_loss(y, yhat[:, 2], alpha=0.9)
    assert pinball_loss(y, yhat[:, 2:], [0.9]) == pytest.approx(one, rel=1e-13)


def test_interval_coverage_by_hand():
    # 1 in [0, 1] (the end counts), 2 in [2, 3], 3 not in [4, 5]: 2 of 3.
    assert interval_coverage([1.0, 2.0, 3.0], [0.0, 2.0, 4.0], [1.0, 3.0, 5.0]) == 2 / 3


def test_rolling_origin_by_hand():
    x = np.arange(10.0)
    Y_true, Y_pred = rolling_origin(x, persistence_forecast, [3, 5, 8], 2)
    np.testing.assert_array_equal(Y_true, [[3, 4], [5, 6], [8, 9]])
    np.testing.assert_array_equal(Y_pred, [[2, 2], [4, 4], [7, 7]])


def test_rolling_origin_shows_the_forecaster_only_the_past():
    x = np.arange(20.0)
    seen = []

    def spy(history, H):
        seen.append(history.copy())
        history[:] = -1  # cannot damage x
        return np.zeros(H)

    rolling_origin(x, spy, np.array([4, 10]), 3)
    np.testing.assert_array_equal(seen[0], np.arange(4.0))
    np.testing.assert_array_equal(seen[1], np.arange(10.0))
    np.testing.assert_array_equal(x, np.arange(20.0))


def test_calendar_features_by_hand():
    f = calendar_features(np.arange(5), [4])
    np.testing.assert_allclose(f[:, 0], [0, 1, 0, -1, 0], atol=1e-15)  # sin(2 pi t / 4)
    np.testing.assert_allclose(f[:, 1], [1, 0, -1, 0, 1], atol=1e-15)  # cos
    f = calendar_features(np.array([0, 47, 48, 336]), (48, 336))
    assert f.shape == (4, 4) and f.dtype == np.float64
    np.testing.assert_allclose(f[2, :2], f[0, :2], atol=1e-15)  # a day later: same daily phase
    np.testing.assert_allclose(f[3, 2:], [0.0, 1.0], atol=1e-15)  # a week later, ditto
    # The last half hour of a day is next to the first one on the circle.
    assert np.hypot(*(f[1, :2] - f[0, :2])) == pytest.approx(2 * np.sin(np.pi / 48))


def test_calendar_features_stay_exact_for_large_indices():
    t = np.array([0, 10**12 * 48])
    f = calendar_features(t, [48])
    np.testing.assert_array_equal(f[1], f[0])


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@given(m=st.integers(1, 8), reps=st.integers(1, 4), H=st.integers(1, 30), seed=st.integers(0, 999))
def test_seasonal_naive_of_a_periodic_series_is_exact(m, reps, H, seed):
    season = np.random.default_rng(seed).normal(size=m)
    x = np.tile(season, reps + H // m + 2)
    T = m * reps
    np.testing.assert_array_equal(seasonal_naive_forecast(x[:T], m, H), x[T : T + H])


@given(m=st.integers(1, 6), T=st.integers(8, 40), seed=st.integers(0, 999))
def test_mase_of_in_sample_seasonal_naive_is_one(m, T, seed):
    y = np.random.default_rng(seed).normal(size=T)
    assert mase(y[m:], y[:-m], y, m) == pytest.approx(1.0, rel=1e-12)


@given(m=st.integers(1, 6), T=st.integers(8, 40), c=st.floats(0.1, 100), seed=st.integers(0, 99))
def test_mase_is_scale_free(m, T, c, seed):
    rng = np.random.default_rng(seed)
    y, a, b = rng.normal(size=T), rng.normal(size=5), rng.normal(size=5)
    assert mase(c * a, c * b, c * y, m) == pytest.approx(mase(a, b, y, m), rel=1e-9)


@given(
    st.lists(st.tuples(finite, finite), min_size=1, max_size=30),
)
@example([(0.0, 0.0)])
@example([(1.0, -1.0), (0.0, 0.0)])
def test_smape_is_in_0_200_and_symmetric(pairs):
    a, b = np.array(pairs).T
    s = smape(a, b)
    assert 0.0 <= s <= 200.0
    assert s == smape(b, a)


@given(n=st.integers(1, 20), seed=st.integers(0, 999))
def test_pinball_at_median_is_half_the_mae(n, seed):
    rng = np.random.default_rng(seed)
    y, yhat = rng.normal(size=n), rng.normal(size=n)
    assert pinball_loss(y, yhat[:, None], [0.5]) == pytest.approx(
        0.5 * np.mean(np.abs(y - yhat)), rel=1e-12
    )


@given(shape=st.sampled_from([(4,), (2, 3), (1,)]), Q=st.integers(1, 3), seed=st.integers(0, 99))
def test_pinball_loss_grad_matches_numerical_gradient(shape, Q, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=shape)
    # Forecasts kept at least 1e-3 away from y, so no difference step crosses the kink.
    off = rng.uniform(1e-3, 1.0, shape + (Q,)) * rng.choice([-1.0, 1.0], shape + (Q,))
    yhat = y[..., None] + off
    q = np.sort(rng.uniform(0.05, 0.95, Q))
    num = numerical_gradient(lambda v: pinball_loss(y, v, q), yhat.copy(), h=1e-6)
    np.testing.assert_allclose(pinball_loss_grad(y, yhat, q), num, atol=1e-9)


@given(seed=st.integers(0, 99), Q=st.integers(1, 4))
def test_pinball_loss_is_minimised_by_the_empirical_quantile(seed, Q):
    # The sample q-quantile (an order statistic, for q n not an integer) minimises the loss.
    y = np.random.default_rng(seed).normal(size=41)
    q = np.linspace(0.1, 0.9, Q) + 0.003
    best = np.quantile(y, q, method="inverted_cdf")
    base = pinball_loss(y, np.broadcast_to(best, (41, Q)), q)
    for d in (-0.01, 0.01):
        assert pinball_loss(y, np.broadcast_to(best + d, (41, Q)), q) > base


@given(
    T=st.integers(1, 40),
    p=st.integers(1, 6),
    H=st.integers(1, 6),
    a=st.integers(0, 40),
    b=st.integers(0, 40),
    D=st.sampled_from([None, 2]),
)
def test_split_windows_never_reads_at_or_after_stop(T, p, H, a, b, D):
    start, stop = min(a, b, T), min(max(a, b), T)
    # Entry t of x holds t itself, so the values returned are the indices read.
    x = np.arange(T, dtype=np.float64)
    if D is not None:
        x = np.repeat(x[:, None], D, axis=1)
    fits = stop > start and stop - H >= max(start, p)
    if not fits:
        with pytest.raises(ValueError):
            split_windows(x, p, H, start, stop)
        return
    X, Y = split_windows(x, p, H, start, stop)
    M = stop - H - max(start, p) + 1
    assert X.shape[:2] == (M, p) and Y.shape[:2] == (M, H)
    assert X.max() < stop and Y.max() < stop and X.min() >= 0  # nothing from [stop, ...)
    assert Y.min() >= start  # every target in [start, stop)
    # Inputs end exactly where the targets start, with no gap and no overlap.
    if D is not None:
        X, Y = X[..., 0], Y[..., 0]
    np.testing.assert_array_equal(X[:, -1] + 1, Y[:, 0])
    np.testing.assert_array_equal(np.diff(X, axis=1), 1)


@given(T=st.integers(1, 200), v=st.integers(0, 100), t=st.integers(0, 100))
def test_chronological_split_partitions_in_order(T, v, t):
    if v + t >= T:
        with pytest.raises(ValueError, match="no training data"):
            chronological_split(T, v, t)
        return
    tr, va, te = chronological_split(T, v, t)
    assert tr.start == 0 and tr.stop == va.start and va.stop == te.start and te.stop == T
    assert (va.stop - va.start, te.stop - te.start) == (v, t)


@given(T=st.integers(2, 30), D=st.integers(1, 3), seed=st.integers(0, 99))
def test_scale_then_unscale_is_the_identity_and_train_is_standardised(T, D, seed):
    x = np.random.default_rng(seed).normal(3, 2, (T, D))
    mean, std = fit_scaler(x)
    z = scale(x, mean, std)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(unscale(z, mean, std), x, rtol=1e-12, atol=1e-12)


@given(p=st.integers(1, 5), H=st.integers(1, 8), seed=st.integers(0, 99))
def test_recursive_forecast_of_a_linear_model_equals_the_ar_recursion(p, H, seed):
    rng = np.random.default_rng(seed)
    coef = rng.normal(0, 0.4, p)  # applied to the window oldest first
    hist = rng.normal(size=p + 3)
    ext = list(hist)
    for _ in range(H):
        ext.append(float(np.dot(coef, ext[-p:])))
    out = recursive_forecast(lambda w: np.dot(coef, w), hist, H, p)
    np.testing.assert_allclose(out, ext[-H:], rtol=1e-12, atol=1e-12)


@given(n=st.integers(1, 30), seed=st.integers(0, 99))
def test_interval_coverage_of_nested_intervals_grows(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    c1 = interval_coverage(y, -np.full(n, 0.5), np.full(n, 0.5))
    c2 = interval_coverage(y, -np.ones(n), np.ones(n))
    assert 0.0 <= c1 <= c2 <= 1.0
    assert c1 == np.mean(np.abs(y) <= 0.5)


# ---------------------------------------------------------------------------------------------
# Inputs are not modified; errors name the culprit
# ---------------------------------------------------------------------------------------------


def test_no_input_is_modified():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 2))
    y = rng.normal(size=20)
    q = np.array([0.1, 0.9])
    yq = rng.normal(size=(20, 2))
    before = [a.copy() for a in (x, y, q, yq)]
    mean, std = fit_scaler(x)
    scale(x, mean, std)
    unscale(x, mean, std)
    split_windows(x, 3, 2, 5, 20)
    persistence_forecast(y, 3)
    seasonal_naive_forecast(y, 4, 9)
    drift_forecast(y, 2)
    mase(y[:5], y[5:10], y, 2)
    smape(y[:5], y[5:10])
    pinball_loss(y, yq, q)
    pinball_loss_grad(y, yq, q)
    recursive_forecast(lambda w: w.mean(), y, 3, 4)
    rolling_origin(y, persistence_forecast, [5, 10], 3)
    for b, a in zip(before, (x, y, q, yq), strict=True):
        np.testing.assert_array_equal(a, b)


def test_results_are_fresh_arrays():
    y = np.arange(10.0)
    for out in (
        persistence_forecast(y, 1),
        seasonal_naive_forecast(y, 3, 2),
        split_windows(y, 2, 1, 2, 10)[0],
        split_windows(y, 2, 1, 2, 10)[1],
    ):
        assert not np.shares_memory(out, y)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: chronological_split(5, 3, 2), "no training data"),
        (lambda: chronological_split(5, -1, 2), "n_val must be >= 0"),
        (lambda: chronological_split(5.0, 1, 1), "T must be an integer"),
        (lambda: split_windows(np.arange(5.0), 3, 3, 0, 5), "no window fits"),
        (lambda: split_windows(np.arange(5.0), 1, 1, 0, 6), "past the end"),
        (lambda: split_windows(np.arange(5.0), 1, 1, 3, 3), "empty"),
        (lambda: seasonal_naive_forecast([1.0, 2.0], 3, 1), "at least one season"),
        (lambda: drift_forecast([1.0], 1), "at least 2"),
        (lambda: mase([1.0], [1.0], [1.0, 1.0, 1.0], 1), "scale is 0"),
        (lambda: mase([1.0], [1.0], [1.0, 2.0], 2), "needs > m"),
        (lambda: mase([1.0, 2.0], [1.0], [1.0, 2.0, 0.0], 1), "same shape"),
        (lambda: smape([1.0, np.nan], [1.0, 1.0]), "NaN"),
        (lambda: recursive_forecast(lambda w: w, np.arange(4.0), 2, 2), "one value"),
        (lambda: recursive_forecast(lambda w: 0.0, np.arange(2.0), 2, 3), "at least p"),
        (lambda: pinball_loss([1.0], [[1.0]], [1.0]), "strictly between 0 and 1"),
        (lambda: pinball_loss([1.0, 2.0], [1.0, 2.0], [0.5]), r"y_true.shape \+ \(Q,\)"),
        (lambda: scale(np.ones((3, 2)), np.zeros(3), np.ones(3)), "mean must have shape"),
        (lambda: scale(np.ones(3), 0.0, 0.0), "std must be > 0"),
        (lambda: rolling_origin(np.arange(5.0), persistence_forecast, [4], 2), "out of range"),
        (lambda: rolling_origin(np.arange(5.0), lambda h, H: h, [3], 2), "returned shape"),
        (lambda: calendar_features(np.arange(3.0), [4]), "integer step indices"),
        (lambda: calendar_features(np.arange(3), [0]), "> 0"),
    ],
)
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
