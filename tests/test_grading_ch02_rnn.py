"""Grading round trip for ch02_rnn in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose points where they
should, delegation and rebinding the comparison helpers gain nothing.

The shared tests come from grading_course.RoundTrip; this file holds what is ch02's own.
tests/test_autograde.py and bench/bench_grading.py reuse DELEGATE_TORCH and BUGS."""

from __future__ import annotations

import csv

import pytest
from grading_course import (
    Bug,
    RoundTrip,
    assert_scores,
    cell,
    nbgrader,
    read,
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
STEP = ["test_rnn_step_forward_visible", "test_rnn_step_forward_hidden"]
SEQ = ["test_rnn_forward_visible", "test_rnn_forward_hidden"]
OUT = ["test_temporal_affine_forward_visible", "test_temporal_affine_forward_hidden"]
LOSS = ["test_softmax_loss_forward_visible", "test_softmax_loss_forward_hidden"]

# name -> Bug(cell, old, new, test cells that must score 0[, test cells that must keep full
# marks; by default every other one])
BUGS = {
    # The visible sequence case is 1 x 1, where a missing transpose cannot show.
    "bug_no_transpose": Bug(
        "rnn_step_forward",
        'h_prev @ params["W_hh"].T',
        'h_prev @ params["W_hh"]',
        [*STEP, "test_rnn_forward_hidden"],
        OUT + LOSS,
    ),
    "bug_no_bias": Bug("rnn_step_forward", ' + params["b_h"]', "", STEP + SEQ),
    "bug_sigmoid": Bug(
        "rnn_step_forward", "h = np.tanh(a)", "h = 1 / (1 + np.exp(-a))", STEP + SEQ
    ),
    "bug_ignores_h0": Bug(
        "rnn_forward",
        "h, caches = h0, []",
        "h, caches = np.zeros_like(h0), []",
        ["test_rnn_forward_hidden"],
        STEP + OUT + LOSS,
    ),
    "bug_off_by_one": Bug(
        "rnn_forward",
        "hs[:, t, :] = h\n",
        "hs[:, t, :] = h if t == 0 else hs[:, t - 1, :]\n",
        SEQ,
    ),
    "bug_no_output_bias": Bug("temporal_affine_forward", ' + params["b_y"]', "", OUT),
    "bug_divide_by_N": Bug(
        "softmax_loss_forward",
        "/ m.sum())",
        "/ N)",
        ["test_softmax_loss_forward_hidden"],
        STEP + SEQ + OUT,
    ),
    "bug_no_max_shift": Bug(
        "softmax_loss_forward",
        "z = ys - ys.max(axis=2, keepdims=True)",
        "z = ys",
        ["test_softmax_loss_forward_hidden"],
        STEP + SEQ + OUT,
    ),
    "bug_ignores_mask": Bug(
        "softmax_loss_forward",
        "m = np.ones((N, T)) if mask is None else np.asarray(mask, dtype=float)",
        "m = np.ones((N, T))",
        LOSS,
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


def edited_tests(_, released):
    """Tests edited by the student are restored from the gradebook before grading."""
    edited = with_source(released, "test_rnn_step_forward_visible", "pass")
    return with_replaced(
        edited, "test_rnn_forward_hidden", "# Hidden tests", "pass  # Hidden tests"
    )


RT = RoundTrip(
    A,
    AUTO,
    full_marks=14,
    written={"written_parameter_sharing": 2},
    bugs=BUGS,
    others={
        # checked by the tests below
        "delegate_runtime": lambda sol, _: with_source(sol, "rnn_forward", DELEGATE_RUNTIME),
        "delegate_import": lambda sol, _: with_source(sol, "rnn_step_forward", DELEGATE_IMPORT),
        "delegate_torch": lambda sol, _: with_source(sol, "rnn_forward", DELEGATE_TORCH),
        "cheat_allclose": lambda sol, _: with_source(
            sol, "temporal_affine_forward", CHEAT_ALLCLOSE
        ),
        # Correct code that warns: nbgrader zeroes a test cell with stderr, so the checks must not.
        "warns": lambda sol, _: with_replaced(sol, "rnn_step_forward", "h = np.tanh(a)", WARNS),
        "edited_tests": edited_tests,
    },
    together=("bug_ignores_h0",),  # test_feedback_and_export_follow reads its gradebook row
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_delegation_earns_nothing(graded):
    s = graded.scores
    for who, cells in [
        ("delegate_runtime", SEQ),
        ("delegate_import", STEP),
        ("delegate_torch", SEQ),
    ]:
        assert {g: s[who][g] for g in cells} == {g: 0 for g in cells}, who
        others = [g for g in AUTO if g not in cells and not (cells == STEP and g in SEQ)]
        assert all(s[who][g] == AUTO[g] for g in others), (who, s[who])


def test_rebinding_comparisons_gains_nothing(graded):
    # The other parts are the correct solution: still full marks after the numpy rebinding.
    assert_scores(graded.scores["cheat_allclose"], AUTO, OUT, STEP + SEQ + LOSS)


def test_edited_tests_are_restored(graded):
    assert RT.total(graded.scores["edited_tests"]) == 0
    nb = read(graded.autograded("edited_tests"))
    assert "assert_array" in cell(nb, "test_rnn_step_forward_visible").source


def test_feedback_names_what_is_wrong(graded):
    errors = graded.errors("bug_ignores_h0", "test_rnn_forward_hidden")
    assert errors and errors[0].ename == "GradingError"
    assert "hs is wrong" in errors[0].evalue and "largest error" in errors[0].evalue
    errors = graded.errors("delegate_torch", "test_rnn_forward_hidden")
    assert "torch.nn.RNN.forward" in errors[0].evalue


def test_feedback_and_export_follow(graded):
    """The README's instructor path continues after autograde: feedback HTML and a grades CSV."""
    course = graded.course
    r = nbgrader(course, "generate_feedback", A, "--force")
    assert r.returncode == 0, r.stderr[-2000:]
    html = course / "feedback" / "bug_ignores_h0" / A / f"{A}.html"
    assert html.exists() and "hs is wrong" in html.read_text()
    r = nbgrader(course, "export", "--to", str(course / "grades.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    assert float(rows["solution"]["raw_score"]) == RT.full
    assert float(rows["released"]["raw_score"]) == 0
    # The written answer, graded by hand.
    assert float(rows["solution"]["max_score"]) == RT.full + RT.written_points == RT.full + 2


def test_warnings_do_not_cost_points(graded):
    assert {g: graded.scores["warns"][g] for g in AUTO} == AUTO
