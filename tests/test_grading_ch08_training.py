"""Grading round trip for ch08_training in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose exactly the points
they should, delegation (to rnn_ref at run time or import time, or the reference's
EarlyStopping class) gains nothing, and the class-scale grader (`rnn-course grade`) agrees on the
solution, the release and two planted bugs.

The shared tests come from grading_course.RoundTrip; this file holds what is ch08's own."""

from __future__ import annotations

import pytest
from grading_course import ROOT, Bug, Delegation, RoundTrip, code_cells, printed, stderr_outputs

pytestmark = pytest.mark.slow

A = "ch08_training"
AUTO = {  # autograded test cells and their points
    "test_dropout_mask_visible": 1,
    "test_dropout_mask_hidden": 1,
    "test_naive_dropout_masks_visible": 1,
    "test_naive_dropout_masks_hidden": 1,
    "test_variational_dropout_mask_visible": 1,
    "test_variational_dropout_mask_hidden": 1,
    "test_rnn_forward_dropout_visible": 1,
    "test_rnn_forward_dropout_hidden": 2,
    "test_train_step_visible": 1,
    "test_train_step_hidden": 3,
    "test_EarlyStopping_visible": 1,
    "test_EarlyStopping_hidden": 3,
}


def both(fn: str) -> list[str]:
    return [f"test_{fn}_visible", f"test_{fn}_hidden"]


MASK, NAIVE, VAR = (
    both("dropout_mask"),
    both("naive_dropout_masks"),
    both("variational_dropout_mask"),
)
FWD, STEP, ES = both("rnn_forward_dropout"), both("train_step"), both("EarlyStopping")
DROPOUT = MASK + NAIVE + VAR + FWD  # naive and variational use dropout_mask, FWD uses both
ES_VISIBLE, ES_HIDDEN = ES


# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full marks.
BUGS = {
    "bug_mask_not_scaled": Bug(
        "dropout_mask",
        "(u >= p).astype(np.float64) / (1.0 - p)",
        "(u >= p).astype(np.float64)",
        DROPOUT,
    ),
    # Right distribution, another recipe: the masks differ entry by entry from the reference's;
    # the visible forward test checks only the masks' properties.
    "bug_mask_recipe": Bug(
        "dropout_mask",
        "(u >= p)",
        "(u < 1.0 - p)",
        MASK + NAIVE + VAR + ["test_rnn_forward_dropout_hidden"],
    ),
    "bug_naive_same_mask_every_step": Bug(
        "naive_dropout_masks",
        "masks = dropout_mask((N, T, H), p, rng)",
        "masks = np.broadcast_to(dropout_mask((N, 1, H), p, rng), (N, T, H))",
        NAIVE + FWD,
    ),
    "bug_variational_redrawn_each_step": Bug(
        "rnn_forward_dropout",
        "mask_h = np.broadcast_to(variational_dropout_mask(N, H, p_h, rng)[:, None, :], (N, T, H))",
        "mask_h = np.stack([variational_dropout_mask(N, H, p_h, rng) for _ in range(T)], axis=1)",
        FWD,
    ),
    "bug_clip_per_array": Bug(
        "train_step",
        "scale * grads[k]",
        "min(1.0, max_norm / (np.linalg.norm(grads[k]) + 1e-6)) * grads[k]",
        STEP,
    ),
    "bug_clip_below_threshold": Bug(
        "train_step",
        "scale = min(1.0, max_norm / (grad_norm + 1e-6))",
        "scale = max_norm / (grad_norm + 1e-6)",
        STEP,
    ),
    "bug_grad_norm_after_clipping": Bug(
        "train_step",
        "    new_params = {",
        "    grad_norm = grad_norm * scale\n    new_params = {",
        STEP,
    ),
    "bug_weight_decay_sign": Bug(
        "train_step",
        "+ weight_decay * params[k]",
        "- weight_decay * params[k]",
        STEP,
    ),
    "bug_patience_off_by_one": Bug(
        "EarlyStopping",
        "return self.bad_steps >= self.patience",
        "return self.bad_steps > self.patience",
        ES,
    ),
    "bug_ties_improve": Bug(
        "EarlyStopping",
        "improved = value < self.best - self.min_delta",
        "improved = value <= self.best - self.min_delta",
        ES,
    ),
    # No NaN in the visible cases: only the hidden tests see it.
    "bug_nan_becomes_best": Bug(
        "EarlyStopping",
        "if improved:",
        "if improved or value != value:",
        [ES_HIDDEN],
    ),
}

DELEGATE_RUNTIME = """def train_step(params, x, h0, targets, lr, max_norm, mask=None, weight_decay=0.0):
    import rnn_ref.numpy
    return rnn_ref.numpy.train_step(params, x, h0, targets, lr, max_norm, mask, weight_decay)"""  # noqa: E501

DELEGATE_IMPORT = """from rnn_ref.numpy import variational_dropout_mask as _reference_mask

def variational_dropout_mask(N, H, p, rng):
    return _reference_mask(N, H, p, rng)"""

# The reference's class, bound at import time and subclassed: its methods are tripwires.
DELEGATE_CLASS = """from rnn_ref.numpy import EarlyStopping as _ReferenceEarlyStopping

class EarlyStopping(_ReferenceEarlyStopping):
    pass"""

DELEGATES = {  # name -> Delegation(cell, source, test cells that must score 0)
    "delegate_runtime": Delegation("train_step", DELEGATE_RUNTIME, STEP),
    "delegate_import": Delegation("variational_dropout_mask", DELEGATE_IMPORT, VAR + FWD),
    "delegate_class": Delegation("EarlyStopping", DELEGATE_CLASS, ES),
}

RT = RoundTrip(
    A, AUTO, full_marks=17, written={"written_training": 3}, bugs=BUGS, delegations=DELEGATES
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_every_test_cell_is_covered():
    assert sorted(MASK + NAIVE + VAR + FWD + STEP + ES) == sorted(AUTO)
    for bug in BUGS.values():
        assert set(bug.zero) <= set(AUTO)


def test_feedback_names_what_is_wrong(graded):
    e = graded.error("bug_mask_recipe", "test_dropout_mask_hidden")
    assert e.ename == "GradingError"
    assert "mask is wrong" in e.evalue and "not the one the recipe gives" in e.evalue
    e = graded.error("bug_mask_not_scaled", "test_dropout_mask_hidden")
    assert "1/(1 - p)" in e.evalue and "scales them" in e.evalue
    e = graded.error("bug_variational_redrawn_each_step", "test_rnn_forward_dropout_hidden")
    assert "mask_h[:, 1] differs from mask_h[:, 0]" in e.evalue and "once per sequence" in e.evalue
    e = graded.error("bug_naive_same_mask_every_step", "test_naive_dropout_masks_hidden")
    assert "masks is wrong" in e.evalue or "fresh mask" in e.evalue
    e = graded.error("bug_clip_per_array", "test_train_step_hidden")
    assert "new_params[" in e.evalue and "largest error" in e.evalue and "its own norm" in e.evalue
    e = graded.error("bug_grad_norm_after_clipping", "test_train_step_hidden")
    assert "grad_norm is wrong" in e.evalue and "before clipping" in e.evalue
    e = graded.error("bug_weight_decay_sign", "test_train_step_hidden")
    assert "wrong sign" in e.evalue
    e = graded.error("bug_patience_off_by_one", "test_EarlyStopping_hidden")
    assert "one step late" in e.evalue and "plateau" in e.evalue
    e = graded.error("bug_ties_improve", "test_EarlyStopping_hidden")
    assert "strict comparison" in e.evalue
    e = graded.error("bug_nan_becomes_best", "test_EarlyStopping_hidden")
    assert "NaN" in e.evalue
    e = graded.error("delegate_class", ES_VISIBLE)
    assert "rnn_ref.numpy.EarlyStopping" in e.evalue
    e = graded.error("delegate_runtime", "test_train_step_hidden")
    assert "rnn_ref.numpy.train_step" in e.evalue


def test_solution_runs_top_to_bottom_quickly():
    """The notebook's own promise: every cell runs, nothing on stderr, well under 60 s."""
    nb = RT.run_solution(ROOT / "solutions" / A)
    assert not stderr_outputs(code_cells(nb))
    assert printed(nb).count("Visible tests passed.") == 6
    assert "stopped after epoch" in printed(nb)  # the training run stopped early


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record, verdicts replayed in the grader)
    gives the solution full marks, the release 0, and planted bugs exactly their loss."""
    replayed = ("bug_clip_per_array", "bug_ties_improve", "bug_variational_redrawn_each_step")
    RT.grade_class(tmp_path, replayed)
