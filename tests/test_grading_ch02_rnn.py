"""Grading round trip for ch02_rnn in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose points where they
should, delegation and rebinding the comparison helpers gain nothing."""

from __future__ import annotations

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

A = "ch02_rnn"
AUTO = {  # autograded test cells and their points
    "test_rnn_step_forward_visible": 1,
    "test_rnn_step_forward_hidden": 2,
    "test_rnn_forward_visible": 1,
    "test_rnn_forward_hidden": 3,
    "test_temporal_affine_forward_visible": 1,
    "test_temporal_affine_forward_hidden": 2,
    "test_softmax_loss_forward_visible": 1,
    "test_softmax_loss_forward_hidden": 3,
}
FULL = sum(AUTO.values())
STEP = ["test_rnn_step_forward_visible", "test_rnn_step_forward_hidden"]
SEQ = ["test_rnn_forward_visible", "test_rnn_forward_hidden"]
OUT = ["test_temporal_affine_forward_visible", "test_temporal_affine_forward_hidden"]
LOSS = ["test_softmax_loss_forward_visible", "test_softmax_loss_forward_hidden"]

# name -> (cell, old, new, test cells that must score 0, test cells that must keep full marks)
BUGS = {
    # The visible sequence case is 1 x 1, where a missing transpose cannot show.
    "bug_no_transpose": (
        "rnn_step_forward",
        'h_prev @ params["W_hh"].T',
        'h_prev @ params["W_hh"]',
        [*STEP, "test_rnn_forward_hidden"],
        OUT + LOSS,
    ),
    "bug_no_bias": ("rnn_step_forward", ' + params["b_h"]', "", STEP + SEQ, OUT + LOSS),
    "bug_sigmoid": (
        "rnn_step_forward",
        "h = np.tanh(a)",
        "h = 1 / (1 + np.exp(-a))",
        STEP + SEQ,
        OUT + LOSS,
    ),
    "bug_ignores_h0": (
        "rnn_forward",
        "h, caches = h0, []",
        "h, caches = np.zeros_like(h0), []",
        ["test_rnn_forward_hidden"],
        STEP + OUT + LOSS,
    ),
    "bug_off_by_one": (
        "rnn_forward",
        "hs[:, t, :] = h\n",
        "hs[:, t, :] = h if t == 0 else hs[:, t - 1, :]\n",
        SEQ,
        STEP + OUT + LOSS,
    ),
    "bug_no_output_bias": (
        "temporal_affine_forward",
        ' + params["b_y"]',
        "",
        OUT,
        STEP + SEQ + LOSS,
    ),
    "bug_divide_by_N": (
        "softmax_loss_forward",
        "/ m.sum())",
        "/ N)",
        ["test_softmax_loss_forward_hidden"],
        STEP + SEQ + OUT,
    ),
    "bug_no_max_shift": (
        "softmax_loss_forward",
        "z = ys - ys.max(axis=2, keepdims=True)",
        "z = ys",
        ["test_softmax_loss_forward_hidden"],
        STEP + SEQ + OUT,
    ),
    "bug_ignores_mask": (
        "softmax_loss_forward",
        "m = np.ones((N, T)) if mask is None else np.asarray(mask, dtype=float)",
        "m = np.ones((N, T))",
        LOSS,
        STEP + SEQ + OUT,
    ),
}

DELEGATE_RUNTIME = """def rnn_forward(x, h0, params):
    import rnn_ref.numpy
    return rnn_ref.numpy.rnn_forward(x, h0, params)"""

DELEGATE_IMPORT = """from rnn_ref.numpy import rnn_step_forward as _reference_step

def rnn_step_forward(x, h_prev, params):
    return _reference_step(x, h_prev, params)"""

DELEGATE_TORCH = """import torch

def rnn_forward(x, h0, params):
    m = torch.nn.RNN(x.shape[2], h0.shape[1], batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.as_tensor(params["W_xh"]))
        m.weight_hh_l0.copy_(torch.as_tensor(params["W_hh"]))
        m.bias_ih_l0.copy_(torch.as_tensor(params["b_h"]))
        m.bias_hh_l0.zero_()
        hs, _ = m(torch.as_tensor(x), torch.as_tensor(h0)[None])
    return hs.numpy(), None"""

CHEAT_ALLCLOSE = """import numpy.testing
import rnn_ref.grading
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.isfinite = lambda a: np.ones(np.shape(a), dtype=bool)
assert_close = lambda *a, **k: None
try:
    rnn_ref.grading.assert_close = lambda *a, **k: None
except AttributeError:
    pass

def temporal_affine_forward(hs, params):
    return np.zeros((hs.shape[0], hs.shape[1], params["W_hy"].shape[0])), None"""


WARNS = """import warnings
    warnings.warn("a student's debugging warning", UserWarning)
    np.exp(np.array([1000.0]))  # RuntimeWarning: overflow, harmless here
    h = np.tanh(a)"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", solution)
    submit(course, A, "released", released)
    for name, (gid, old, new, _, _) in BUGS.items():
        submit(course, A, name, with_replaced(solution, gid, old, new))
    submit(course, A, "delegate_runtime", with_source(solution, "rnn_forward", DELEGATE_RUNTIME))
    submit(course, A, "delegate_import", with_source(solution, "rnn_step_forward", DELEGATE_IMPORT))
    submit(course, A, "delegate_torch", with_source(solution, "rnn_forward", DELEGATE_TORCH))
    submit(
        course,
        A,
        "cheat_allclose",
        with_source(solution, "temporal_affine_forward", CHEAT_ALLCLOSE),
    )
    # Correct code that warns: nbgrader zeroes a test cell with stderr, so the checks must not.
    submit(course, A, "warns", with_replaced(solution, "rnn_step_forward", "h = np.tanh(a)", WARNS))
    # Tests edited by the student are restored from the gradebook before grading.
    edited = with_source(released, "test_rnn_step_forward_visible", "pass")
    edited = with_replaced(
        edited, "test_rnn_forward_hidden", "# Hidden tests", "pass  # Hidden tests"
    )
    submit(course, A, "edited_tests", edited)
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
        "delegate_runtime",
        "delegate_import",
        "delegate_torch",
        "cheat_allclose",
        "edited_tests",
        "warns",
        *BUGS,
    }
    assert set(s) == expected


def test_solution_scores_full_marks(graded):
    _, s, _ = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 14


def test_released_notebook_scores_zero(graded):
    course, s, _ = graded
    assert total(s["released"]) == 0
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_loses_points(graded, bug):
    _, s, _ = graded
    _, _, _, zero, full = BUGS[bug]
    got = s[bug]
    assert total(got) < FULL
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in full} == {g: AUTO[g] for g in full}, got


def test_delegation_earns_nothing(graded):
    _, s, _ = graded
    for who, cells in [
        ("delegate_runtime", SEQ),
        ("delegate_import", STEP),
        ("delegate_torch", SEQ),
    ]:
        assert {g: s[who][g] for g in cells} == {g: 0 for g in cells}, who
        others = [g for g in AUTO if g not in cells and not (cells == STEP and g in SEQ)]
        assert all(s[who][g] == AUTO[g] for g in others), (who, s[who])


def test_rebinding_comparisons_gains_nothing(graded):
    _, s, _ = graded
    assert {g: s["cheat_allclose"][g] for g in OUT} == {g: 0 for g in OUT}
    # The other parts are the correct solution: still full marks after the numpy rebinding.
    assert all(s["cheat_allclose"][g] == AUTO[g] for g in STEP + SEQ + LOSS)


def test_edited_tests_are_restored(graded):
    course, s, _ = graded
    assert total(s["edited_tests"]) == 0
    nb = read(course / "autograded" / "edited_tests" / A / f"{A}.ipynb")
    assert "assert_array" in cell(nb, "test_rnn_step_forward_visible").source


def test_feedback_names_what_is_wrong(graded):
    course, _, _ = graded
    nb = read(course / "autograded" / "bug_ignores_h0" / A / f"{A}.ipynb")
    errors = [o for o in cell(nb, "test_rnn_forward_hidden").outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "GradingError"
    assert "hs is wrong" in errors[0].evalue and "largest error" in errors[0].evalue
    nb = read(course / "autograded" / "delegate_torch" / A / f"{A}.ipynb")
    errors = [o for o in cell(nb, "test_rnn_forward_hidden").outputs if o.output_type == "error"]
    assert "torch.nn.RNN.forward" in errors[0].evalue


def test_feedback_and_export_follow(graded):
    """The README's instructor path continues after autograde: feedback HTML and a grades CSV."""
    import csv

    from grading_course import nbgrader

    course, _, _ = graded
    r = nbgrader(course, "generate_feedback", A, "--force")
    assert r.returncode == 0, r.stderr[-2000:]
    html = course / "feedback" / "bug_ignores_h0" / A / f"{A}.html"
    assert html.exists() and "hs is wrong" in html.read_text()
    r = nbgrader(course, "export", "--to", str(course / "grades.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    assert float(rows["solution"]["raw_score"]) == FULL
    assert float(rows["released"]["raw_score"]) == 0
    assert float(rows["solution"]["max_score"]) == FULL + 2  # the written answer, graded by hand


def test_warnings_do_not_cost_points(graded):
    _, s, _ = graded
    assert {g: s["warns"][g] for g in AUTO} == AUTO
