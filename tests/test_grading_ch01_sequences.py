"""Grading round trip for ch01_sequences in a temporary nbgrader course: the solution scores
full marks, the release scores 0 without breaking the grader, planted bugs lose points exactly
where they should, a correct alternative (the normal equations) keeps full marks, delegation
and rebinding the comparison helpers gain nothing; the class-scale grader agrees."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_course import (
    ROOT,
    autograde,
    cell,
    make_course,
    read,
    scores,
    submit,
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
FULL = sum(AUTO.values())
WIN = ["test_sliding_windows_visible", "test_sliding_windows_hidden"]
HOT = ["test_one_hot_visible", "test_one_hot_hidden"]
PRED = ["test_predict_ar_visible", "test_predict_ar_hidden"]
FIT = ["test_fit_ar_visible", "test_fit_ar_hidden"]
MSE = ["test_mse_visible", "test_mse_hidden"]
MAE = ["test_mae_visible", "test_mae_hidden"]
ALL = WIN + HOT + PRED + FIT + MSE + MAE


def others(*groups):
    lost = {g for group in groups for g in group}
    return [g for g in ALL if g not in lost]


# name -> (cell, old, new, test cells that must score 0); every other test cell keeps full marks
BUGS = {
    # The solution's fit_ar builds its design matrix with sliding_windows, so it fails too.
    "bug_windows_off_by_one": (
        "sliding_windows",
        "y = series[p + horizon - 1 :].copy()",
        "y = series[p + horizon - 2 : -1].copy()",
        WIN + FIT,
    ),
    # Only horizon > 1 shows it; fit_ar uses horizon = 1 and keeps its marks.
    "bug_ignores_horizon": (
        "sliding_windows",
        "y = series[p + horizon - 1 :].copy()",
        "y = series[p:].copy()",
        WIN,
    ),
    "bug_one_hot_transposed": (
        "one_hot",
        "astype(np.float64)",
        "astype(np.float64).T",
        HOT,
    ),
    "bug_predict_ar_coef_reversed": (
        "predict_ar",
        "pred = intercept + x[:, ::-1] @ coef",
        "pred = intercept + x @ coef",
        PRED,
    ),
    "bug_fit_ar_no_intercept": (
        "fit_ar",
        "np.ones(len(y))",
        "np.zeros(len(y))",  # lstsq then leaves the intercept at 0: a fit through the origin
        FIT,
    ),
    "bug_mse_not_squared": ("mse", "np.mean(err**2)", "np.mean(err)", MSE),
    # Right values, but the caller's y_true is overwritten with the errors.
    "bug_mse_in_place": (
        "mse",
        "err = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)",
        "err = np.asarray(y_true, dtype=np.float64)\n"
        "    err -= np.asarray(y_pred, dtype=np.float64)",
        MSE,
    ),
    "bug_mae_no_abs": ("mae", "np.mean(np.abs(err))", "np.mean(err)", MAE),
    # Right on 1-D arrays (the visible test), wrong on 2-D ones (hidden): divides by rows only.
    "bug_mae_divides_by_rows": (
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


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", solution)
    submit(course, A, "released", released)
    for name, (gid, old, new, _) in BUGS.items():
        submit(course, A, name, with_replaced(solution, gid, old, new))
    submit(course, A, "normal_equations", with_replaced(solution, *NORMAL_EQUATIONS))
    submit(course, A, "delegate_runtime", with_source(solution, "fit_ar", DELEGATE_RUNTIME))
    submit(course, A, "delegate_import", with_source(solution, "mse", DELEGATE_IMPORT))
    submit(course, A, "cheat_allclose", with_source(solution, "mae", CHEAT_ALLCLOSE))
    result = autograde(course, A)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return course, scores(course, A), result


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def test_every_submission_is_graded(graded):
    _, s, _ = graded
    expected = {
        "solution",
        "released",
        "normal_equations",
        "delegate_runtime",
        "delegate_import",
        "cheat_allclose",
        *BUGS,
    }
    assert set(s) == expected


def test_solution_scores_full_marks(graded):
    _, s, _ = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 17


def test_released_notebook_scores_zero(graded):
    course, s, _ = graded
    assert total(s["released"]) == 0
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_loses_points(graded, bug):
    _, s, _ = graded
    zero = BUGS[bug][3]
    got = s[bug]
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in others(zero)} == {g: AUTO[g] for g in others(zero)}, got


def test_normal_equations_are_a_correct_answer(graded):
    _, s, _ = graded
    assert {g: s["normal_equations"][g] for g in AUTO} == AUTO


def test_delegation_earns_nothing(graded):
    _, s, _ = graded
    for who, cells in [("delegate_runtime", FIT), ("delegate_import", MSE)]:
        assert {g: s[who][g] for g in cells} == {g: 0 for g in cells}, who
        assert all(s[who][g] == AUTO[g] for g in others(cells)), (who, s[who])


def test_rebinding_comparisons_gains_nothing(graded):
    _, s, _ = graded
    assert {g: s["cheat_allclose"][g] for g in MAE} == {g: 0 for g in MAE}
    # np.abs is restored before every check, so the other functions keep full marks.
    assert all(s["cheat_allclose"][g] == AUTO[g] for g in others(MAE)), s["cheat_allclose"]


def _errors(course, student, gid):
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    return [o for o in cell(nb, gid).outputs if o.output_type == "error"]


def test_feedback_names_what_is_wrong(graded):
    course, _, _ = graded
    errors = _errors(course, "bug_fit_ar_no_intercept", "test_fit_ar_hidden")
    assert errors and errors[0].ename == "GradingError"
    assert "does not minimise the sum of squared one-step errors" in errors[0].evalue
    assert "intercept column" in errors[0].evalue
    errors = _errors(course, "bug_mse_not_squared", "test_mse_hidden")
    assert "the MSE is wrong" in errors[0].evalue and "seed=" in errors[0].evalue
    # fit_ar fails because the windows it is built on are wrong: the message says so.
    errors = _errors(course, "bug_windows_off_by_one", "test_fit_ar_hidden")
    assert "your sliding_windows fails its own tests" in errors[0].evalue
    errors = _errors(course, "bug_mse_in_place", "test_mse_visible")
    assert "mse modified its input y_true in place" in errors[0].evalue
    errors = _errors(course, "bug_one_hot_transposed", "test_one_hot_hidden")
    assert "the one-hot array has shape" in errors[0].evalue
    errors = _errors(course, "delegate_runtime", "test_fit_ar_hidden")
    assert "rnn_ref.numpy.fit_ar" in errors[0].evalue


def test_solution_runs_top_to_bottom_within_a_minute(tmp_path):
    from nbclient import NotebookClient

    nb = read(ROOT / "solutions" / A / f"{A}.ipynb")
    t0 = time.monotonic()
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"path": str(tmp_path)}
    ).execute()
    seconds = time.monotonic() - t0
    assert seconds < 60, f"the solution notebook took {seconds:.1f} s"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, errors
    stderr = [
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
    ]
    assert not stderr, stderr
    tried = "".join(o.get("text", "") for o in cell_by_id(nb, "try-it-code").outputs)
    assert "AR(9)" in tried and "persistence" in tried


def cell_by_id(nb, cid):
    return next(c for c in nb.cells if c.get("id") == cid)


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels, verdicts replayed in the grader's process) on flat
    <student>.ipynb files: solution full marks, release 0, a planted bug loses its points."""
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    subs = tmp_path / "submissions"
    subs.mkdir()
    nbformat.write(solution, subs / "solution.ipynb")
    nbformat.write(read(ROOT / "exercises" / A / f"{A}.ipynb"), subs / "released.ipynb")
    gid, old, new, zero = BUGS["bug_mse_not_squared"]
    nbformat.write(with_replaced(solution, gid, old, new), subs / "bug_mse.ipynb")
    cmd = [
        str(Path(sys.executable).parent / "rnn-course"),
        "grade",
        A,
        str(subs),
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--no-gradebook",
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert set(rows) == {"solution", "released", "bug_mse"}
    assert float(rows["solution"]["total"]) == FULL, rows["solution"]
    assert float(rows["released"]["total"]) == 0, rows["released"]
    assert float(rows["bug_mse"]["total"]) == FULL - sum(AUTO[g] for g in zero), rows["bug_mse"]
    assert all(float(rows["solution"][g]) == AUTO[g] for g in AUTO)
