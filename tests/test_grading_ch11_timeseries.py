"""Grading round trip for ch11_timeseries in a temporary nbgrader course: the solution scores
full marks, the release scores 0 without breaking the grader, planted bugs (a scaler fitted on
the whole series, windows that read past the period, an off-by-one seasonal naive forecast for
H >= m, MASE scaled with lag 1 or by the test period, sMAPE without its factor 2 or its
absolute values, recursive forecasts that do not feed back or drop the wrong input, the
pinball loss with q and 1 - q swapped, ...) lose points exactly where they should, correct
alternatives keep full marks, delegation gains nothing; the class-scale grader agrees (the
recursive forecast's model is a callable passed into the sandboxed kernel and replayed).

The shared tests come from grading_course.RoundTrip; this file holds what is ch11's own."""

from __future__ import annotations

import pytest
from grading_course import (
    Bug,
    Delegation,
    RoundTrip,
    assert_scores,
    code_cells,
    stderr_outputs,
    with_replaced,
)

pytestmark = pytest.mark.slow

A = "ch11_timeseries"
AUTO = {  # autograded test cells and their points
    "test_scaling_visible": 1,
    "test_scaling_hidden": 2,
    "test_split_windows_visible": 1,
    "test_split_windows_hidden": 2,
    "test_seasonal_naive_visible": 1,
    "test_seasonal_naive_hidden": 2,
    "test_mase_visible": 1,
    "test_mase_hidden": 2,
    "test_smape_visible": 1,
    "test_smape_hidden": 1,
    "test_recursive_forecast_visible": 1,
    "test_recursive_forecast_hidden": 2,
    "test_pinball_loss_visible": 1,
    "test_pinball_loss_hidden": 2,
}
SCALE = ["test_scaling_visible", "test_scaling_hidden"]
WIN = ["test_split_windows_visible", "test_split_windows_hidden"]
SNAIVE = ["test_seasonal_naive_visible", "test_seasonal_naive_hidden"]
MASE = ["test_mase_visible", "test_mase_hidden"]
SMAPE = ["test_smape_visible", "test_smape_hidden"]
REC = ["test_recursive_forecast_visible", "test_recursive_forecast_hidden"]
PIN = ["test_pinball_loss_visible", "test_pinball_loss_hidden"]

WINDOW_T = "t = np.arange(max(start, p), stop - H + 1)"
SNAIVE_IDX = "pred = y[T + h - 1 - m * ((h - 1) // m + 1)]"
FEED_BACK = "window = np.append(window[1:], pred[h])"
PINBALL = "np.maximum(q * u, (q - 1) * u)"

# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full marks
BUGS = {
    # The leak of the chapter: the statistics include the validation and test periods.
    "bug_scaler_fitted_on_whole_series": Bug(
        "scaling",
        "mean, std = fit_scaler(series[:n_train])",
        "mean, std = fit_scaler(series)",
        SCALE,
    ),
    "bug_scaler_sample_std": Bug(
        "scaling", "std = x.std(axis=0)  #", "std = x.std(axis=0, ddof=1)  #", SCALE
    ),
    # One window too many: its last target is x[stop], the future of the period.
    "bug_windows_read_past_stop": Bug(
        "split_windows", WINDOW_T, "t = np.arange(max(start, p), stop - H + 2)", WIN
    ),
    "bug_windows_skip_p_after_start": Bug(
        "split_windows", WINDOW_T, "t = np.arange(start + p, stop - H + 1)", WIN
    ),
    # h // m for (h - 1) // m: right for h < m (and H = 1), one season off from h = m on.
    "bug_seasonal_naive_off_by_one": Bug(
        "seasonal_naive", SNAIVE_IDX, "pred = y[T + h - 1 - m * (h // m + 1)]", SNAIVE
    ),
    # Refuses a history exactly one season long: only a hidden case has one.
    "bug_seasonal_naive_needs_more_than_m": Bug(
        "seasonal_naive", "if T < m:", "if T <= m:", ["test_seasonal_naive_hidden"]
    ),
    "bug_mase_lag_1": Bug("mase", "y_train[m:] - y_train[:-m]", "y_train[1:] - y_train[:-1]", MASE),
    # The scale computed from the test period (y_true) instead of the training series.
    "bug_mase_scaled_by_test_set": Bug(
        "mase",
        "scale_ = np.mean(np.abs(y_train[m:] - y_train[:-m]))",
        "y = np.asarray(y_true, dtype=np.float64).ravel()\n"
        "    scale_ = np.mean(np.abs(y[m:] - y[:-m]))",
        MASE,
    ),
    # Right for 1-D forecasts (the visible test), wrong for (K, H) ones (hidden).
    "bug_mase_divides_by_rows": Bug(
        "mase",
        "np.mean(np.abs(err))",
        "np.abs(err).sum() / len(err)",
        ["test_mase_hidden"],
    ),
    "bug_smape_without_factor_2": Bug(
        "smape",
        "value = float(200.0 * np.mean(terms))",
        "value = float(100.0 * np.mean(terms))",
        SMAPE,
    ),
    "bug_smape_no_abs_in_denominator": Bug(
        "smape", "den = np.abs(a) + np.abs(b)", "den = a + b", SMAPE
    ),
    "bug_recursive_no_feedback": Bug("recursive_forecast", FEED_BACK, "pass", REC),
    "bug_recursive_drops_newest": Bug(
        "recursive_forecast", FEED_BACK, "window = np.append(window[:-1], pred[h])", REC
    ),
    # Feeds back the last observed value instead of the prediction.
    "bug_recursive_feeds_observed_value": Bug(
        "recursive_forecast",
        FEED_BACK,
        "window = np.append(window[1:], np.asarray(history, dtype=np.float64)[-1])",
        REC,
    ),
    "bug_pinball_q_swapped": Bug("pinball_loss", PINBALL, "np.maximum((1 - q) * u, -q * u)", PIN),
    "bug_pinball_summed_over_quantiles": Bug(
        "pinball_loss", f"np.mean({PINBALL})", f"np.mean({PINBALL}.sum(axis=-1))", PIN
    ),
}

DELEGATES = {
    "delegate_runtime": Delegation(
        "mase",
        """def mase(y_true, y_pred, y_train, m):
    import rnn_ref.numpy
    return rnn_ref.numpy.mase(y_true, y_pred, y_train, m)""",
        MASE,
    ),
    "delegate_import": Delegation(
        "pinball_loss",
        """from rnn_ref.numpy.timeseries import pinball_loss as _reference_pinball

def pinball_loss(y_true, y_pred, quantiles):
    return _reference_pinball(y_true, y_pred, quantiles)""",
        PIN,
    ),
}

# Correct alternatives: a 0/0 handled with np.where (it warns; the warning must not cost
# marks), a window kept as a list, the pinball loss as two branches.
ALTERNATIVES = {
    "smape_with_where": (
        "smape",
        "terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)",
        "terms = np.where(den == 0, 0.0, num / den)",
    ),
    "recursive_with_a_list": (
        "recursive_forecast",
        FEED_BACK,
        "window = np.array(list(window)[1:] + [pred[h]])",
    ),
    "pinball_with_branches": (
        "pinball_loss",
        PINBALL,
        "np.where(u >= 0, q * u, (q - 1) * u)",
    ),
}

# The scaler delegated inside scale_splits: only the scaling cells lose their points.
DELEGATE_SCALER = (
    "scaling",
    "mean, std = fit_scaler(series[:n_train])",
    "import rnn_ref.numpy as _ref\n    mean, std = _ref.fit_scaler(series[:n_train])",
)

RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_leakage": 2},
    bugs=BUGS,
    delegations=DELEGATES,
    others={
        **{name: (lambda sol, _, r=r: with_replaced(sol, *r)) for name, r in ALTERNATIVES.items()},
        "delegate_scaler": lambda sol, _: with_replaced(sol, *DELEGATE_SCALER),
    },
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_", "fit_scaler(series[:n_train])"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


@pytest.mark.parametrize("who", sorted(ALTERNATIVES))
def test_correct_alternatives_keep_full_marks(graded, who):
    assert {g: graded.scores[who][g] for g in AUTO} == AUTO


def test_delegating_the_scaler_earns_nothing_for_scaling(graded):
    assert_scores(graded.scores["delegate_scaler"], AUTO, SCALE)
    err = graded.error("delegate_scaler", "test_scaling_hidden")
    assert "rnn_ref.numpy.fit_scaler" in err.evalue


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_scaler_fitted_on_whole_series", "test_scaling_hidden")
    assert err.ename == "GradingError"
    assert "mean and std of the whole series" in err.evalue and "seed=" in err.evalue
    err = graded.error("bug_scaler_sample_std", "test_scaling_hidden")
    assert "ddof=0" in err.evalue
    err = graded.error("bug_seasonal_naive_off_by_one", "test_seasonal_naive_hidden")
    assert "H > m" in err.evalue
    err = graded.error("bug_mase_lag_1", "test_mase_hidden")
    assert "use lag m" in err.evalue
    err = graded.error("bug_smape_without_factor_2", "test_smape_hidden")
    assert "200/n" in err.evalue
    err = graded.error("bug_recursive_no_feedback", "test_recursive_forecast_hidden")
    assert "feed each prediction back" in err.evalue
    err = graded.error("bug_recursive_drops_newest", "test_recursive_forecast_hidden")
    assert "drop the oldest" in err.evalue and "nonlinear" in err.evalue
    err = graded.error("bug_pinball_q_swapped", "test_pinball_loss_hidden")
    assert "swapped" in err.evalue
    err = graded.error("delegate_runtime", "test_mase_hidden")
    assert "rnn_ref.numpy.mase" in err.evalue


def test_solution_runs_top_to_bottom_within_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb))
    (try_it,) = [c for c in nb.cells if c.get("id") == "try-it-code"]
    text = "".join(o.get("text", "") for o in try_it.outputs)
    # The day-ahead evaluation on the Taylor series: the weekly seasonal naive forecast is the
    # baseline of the MASE, and on the test weeks it scores about 1 (0.99 in 2000's summer).
    weekly = [ln for ln in text.splitlines() if "seasonal naive, m = 336" in ln]
    assert len(weekly) == 2
    assert 0.8 < float(weekly[1].split("MASE")[1].split()[0]) < 1.2
    assert "test period, 14 day-ahead forecasts" in text and "80% interval covers" in text


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels, verdicts replayed in the grader's process): the
    solution full marks, the release 0, and bugs lose exactly their cells' points, among them
    one in the recursive forecast, whose model is a callable made by the check in the kernel
    and again in the grader's replay."""
    rows = RT.grade_class(
        tmp_path,
        ["bug_recursive_drops_newest", "bug_scaler_fitted_on_whole_series"],
        timeout=600,
    )
    assert set(rows) == {
        "solution",
        "released",
        "bug_recursive_drops_newest",
        "bug_scaler_fitted_on_whole_series",
    }
