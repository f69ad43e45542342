"""Grading round trip for ch01_sequences in a temporary nbgrader course: the solution scores
full marks, the release scores 0 without breaking the grader, planted bugs lose points exactly
where they should, a correct alternative (the normal equations) keeps full marks, delegation
and rebinding the comparison helpers gain nothing; the class-scale grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch01's own."""

from __future__ import annotations

import pytest
from grading_course import (
    ROOT,
    Bug,
    RoundTrip,
    assert_scores,
    code_cells,
    stderr_outputs,
    with_replaced,
    with_source,
)

pytestmark = pytest.mark.slow

A = "ch01_sequences"
AUTO = {  # autograded test cells and their points
    "test_sliding_windows_visible": 1,
    "test_sliding_windows_hidden": 2,
    "test_one_hot_visible": 1,
    "test_one_hot_hidden": 2,
    "test_predict_ar_visible": 1,
    "test_predict_ar_hidden": 2,
    "test_fit_ar_visible": 1,
    "test_fit_ar_hidden": 3,
    "test_mse_visible": 1,
    "test_mse_hidden": 1,
    "test_mae_visible": 1,
    "test_mae_hidden": 1,
}
WIN = ["test_sliding_windows_visible", "test_sliding_windows_hidden"]
HOT = ["test_one_hot_visible", "test_one_hot_hidden"]
PRED = ["test_predict_ar_visible", "test_predict_ar_hidden"]
FIT = ["test_fit_ar_visible", "test_fit_ar_hidden"]
MSE = ["test_mse_visible", "test_mse_hidden"]
MAE = ["test_mae_visible", "test_mae_hidden"]

# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full marks
BUGS = {
    # The solution's fit_ar builds its design matrix with sliding_windows, so it fails too.
    "bug_windows_off_by_one": Bug(
        "sliding_windows",
        "y = series[p + horizon - 1 :].copy()",
        "y = series[p + horizon - 2 : -1].copy()",
        WIN + FIT,
    ),
    # Only horizon > 1 shows it; fit_ar uses horizon = 1 and keeps its marks.
    "bug_ignores_horizon": Bug(
        "sliding_windows",
        "y = series[p + horizon - 1 :].copy()",
        "y = series[p:].copy()",
        WIN,
    ),
    "bug_one_hot_transposed": Bug("one_hot", "astype(np.float64)", "astype(np.float64).T", HOT),
    "bug_predict_ar_coef_reversed": Bug(
        "predict_ar",
        "pred = intercept + x[:, ::-1] @ coef",
        "pred = intercept + x @ coef",
        PRED,
    ),
    "bug_fit_ar_no_intercept": Bug(
        "fit_ar",
        "np.ones(len(y))",
        "np.zeros(len(y))",  # lstsq then leaves the intercept at 0: a fit through the origin
        FIT,
    ),
    "bug_mse_not_squared": Bug("mse", "np.mean(err**2)", "np.mean(err)", MSE),
    # Right values, but the caller's y_true is overwritten with the errors.
    "bug_mse_in_place": Bug(
        "mse",
        "err = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)",
        "err = np.asarray(y_true, dtype=np.float64)\n"
        "    err -= np.asarray(y_pred, dtype=np.float64)",
        MSE,
    ),
    "bug_mae_no_abs": Bug("mae", "np.mean(np.abs(err))", "np.mean(err)", MAE),
    # Right on 1-D arrays (the visible test), wrong on 2-D ones (hidden): divides by rows only.
    "bug_mae_divides_by_rows": Bug(
        "mae",
        "float(np.mean(np.abs(err)))",
        "float(np.abs(err).sum() / len(err))",
        ["test_mae_hidden"],
    ),
}

# A correct alternative: the normal equations instead of lstsq.
NORMAL_EQUATIONS = (
    "fit_ar",
    "np.linalg.lstsq(A, y, rcond=None)",
    "(np.linalg.solve(A.T @ A, A.T @ y),)",
)

DELEGATE_RUNTIME = """def fit_ar(series, p):
    import rnn_ref.numpy
    return rnn_ref.numpy.fit_ar(series, p)"""

DELEGATE_IMPORT = """from rnn_ref.numpy import mse as _reference_mse

def mse(y_true, y_pred):
    return _reference_mse(y_true, y_pred)"""

CHEAT_ALLCLOSE = """import numpy.testing
import rnn_ref.grading
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.abs = lambda a: np.zeros(np.shape(a))
assert_close = lambda *a, **k: None
try:
    rnn_ref.grading.assert_close = lambda *a, **k: None
except AttributeError:
    pass

def mae(y_true, y_pred):
    return 0.0"""

RT = RoundTrip(
    A,
    AUTO,
    full_marks=17,
    written={"written_leakage": 2},
    bugs=BUGS,
    others={
        # checked below: delegations and the cheat zero their cells, as one test each
        "normal_equations": lambda sol, _: with_replaced(sol, *NORMAL_EQUATIONS),
        "delegate_runtime": lambda sol, _: with_source(sol, "fit_ar", DELEGATE_RUNTIME),
        "delegate_import": lambda sol, _: with_source(sol, "mse", DELEGATE_IMPORT),
        "cheat_allclose": lambda sol, _: with_source(sol, "mae", CHEAT_ALLCLOSE),
    },
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_normal_equations_are_a_correct_answer(graded):
    s = graded.scores
    assert {g: s["normal_equations"][g] for g in AUTO} == AUTO


def test_delegation_earns_nothing(graded):
    for who, cells in [("delegate_runtime", FIT), ("delegate_import", MSE)]:
        assert_scores(graded.scores[who], AUTO, cells)


def test_rebinding_comparisons_gains_nothing(graded):
    # np.abs is restored before every check, so the other functions keep full marks.
    assert_scores(graded.scores["cheat_allclose"], AUTO, MAE)


def test_feedback_names_what_is_wrong(graded):
    errors = graded.errors("bug_fit_ar_no_intercept", "test_fit_ar_hidden")
    assert errors and errors[0].ename == "GradingError"
    assert "does not minimise the sum of squared one-step errors" in errors[0].evalue
    assert "intercept column" in errors[0].evalue
    errors = graded.errors("bug_mse_not_squared", "test_mse_hidden")
    assert "the MSE is wrong" in errors[0].evalue and "seed=" in errors[0].evalue
    # fit_ar fails because the windows it is built on are wrong: the message says so.
    errors = graded.errors("bug_windows_off_by_one", "test_fit_ar_hidden")
    assert "your sliding_windows fails its own tests" in errors[0].evalue
    errors = graded.errors("bug_mse_in_place", "test_mse_visible")
    assert "mse modified its input y_true in place" in errors[0].evalue
    errors = graded.errors("bug_one_hot_transposed", "test_one_hot_hidden")
    assert "the one-hot array has shape" in errors[0].evalue
    errors = graded.errors("delegate_runtime", "test_fit_ar_hidden")
    assert "rnn_ref.numpy.fit_ar" in errors[0].evalue


def test_solution_runs_top_to_bottom_within_a_minute():
    nb = RT.run_solution(ROOT)
    assert not stderr_outputs(code_cells(nb))
    try_it = next(c for c in nb.cells if c.get("id") == "try-it-code")
    tried = "".join(o.get("text", "") for o in try_it.outputs)
    assert "AR(9)" in tried and "persistence" in tried


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels, verdicts replayed in the grader's process) on flat
    <student>.ipynb files: solution full marks, release 0, a planted bug loses its points."""
    rows = RT.grade_class(tmp_path, ["bug_mse_not_squared"], timeout=600)
    assert set(rows) == {"solution", "released", "bug_mse_not_squared"}
