"""Grading round trip for ch08_training in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose exactly the points
they should, delegation (to rnn_ref at run time or import time, or the reference's
EarlyStopping class) gains nothing, and the class-scale grader (`rnn-course grade`) agrees on the
solution, the release and two planted bugs."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_course import ROOT, autograde, cell, make_course, read, scores, submit, with_source
from grading_course import with_replaced as _with_replaced

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
FULL = sum(AUTO.values())
WRITTEN = 3  # the written answer, graded by hand


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


def rest(*zero: str) -> list[str]:
    return [g for g in AUTO if g not in zero]


# name -> (cell, old, new, test cells that must score 0); every other test cell keeps full marks.
BUGS = {
    "bug_mask_not_scaled": (
        "dropout_mask",
        "(u >= p).astype(np.float64) / (1.0 - p)",
        "(u >= p).astype(np.float64)",
        DROPOUT,
    ),
    # Right distribution, another recipe: the masks differ entry by entry from the reference's;
    # the visible forward test checks only the masks' properties.
    "bug_mask_recipe": (
        "dropout_mask",
        "(u >= p)",
        "(u < 1.0 - p)",
        MASK + NAIVE + VAR + ["test_rnn_forward_dropout_hidden"],
    ),
    "bug_naive_same_mask_every_step": (
        "naive_dropout_masks",
        "masks = dropout_mask((N, T, H), p, rng)",
        "masks = np.broadcast_to(dropout_mask((N, 1, H), p, rng), (N, T, H))",
        NAIVE + FWD,
    ),
    "bug_variational_redrawn_each_step": (
        "rnn_forward_dropout",
        "mask_h = np.broadcast_to(variational_dropout_mask(N, H, p_h, rng)[:, None, :], (N, T, H))",
        "mask_h = np.stack([variational_dropout_mask(N, H, p_h, rng) for _ in range(T)], axis=1)",
        FWD,
    ),
    "bug_clip_per_array": (
        "train_step",
        "scale * grads[k]",
        "min(1.0, max_norm / (np.linalg.norm(grads[k]) + 1e-6)) * grads[k]",
        STEP,
    ),
    "bug_clip_below_threshold": (
        "train_step",
        "scale = min(1.0, max_norm / (grad_norm + 1e-6))",
        "scale = max_norm / (grad_norm + 1e-6)",
        STEP,
    ),
    "bug_grad_norm_after_clipping": (
        "train_step",
        "    new_params = {",
        "    grad_norm = grad_norm * scale\n    new_params = {",
        STEP,
    ),
    "bug_weight_decay_sign": (
        "train_step",
        "+ weight_decay * params[k]",
        "- weight_decay * params[k]",
        STEP,
    ),
    "bug_patience_off_by_one": (
        "EarlyStopping",
        "return self.bad_steps >= self.patience",
        "return self.bad_steps > self.patience",
        ES,
    ),
    "bug_ties_improve": (
        "EarlyStopping",
        "improved = value < self.best - self.min_delta",
        "improved = value <= self.best - self.min_delta",
        ES,
    ),
    # No NaN in the visible cases: only the hidden tests see it.
    "bug_nan_becomes_best": (
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

DELEGATES = {  # name -> (cell, source, test cells that must score 0)
    "delegate_runtime": ("train_step", DELEGATE_RUNTIME, STEP),
    "delegate_import": ("variational_dropout_mask", DELEGATE_IMPORT, VAR + FWD),
    "delegate_class": ("EarlyStopping", DELEGATE_CLASS, ES),
}

SOLUTION = read(ROOT / "solutions" / A / f"{A}.ipynb")


def with_replaced(nb, grade_id: str, old: str, new: str):
    """Like grading_course.with_replaced, and ``old`` must occur exactly once."""
    assert cell(nb, grade_id).source.count(old) == 1, (grade_id, old)
    return _with_replaced(nb, grade_id, old, new)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", SOLUTION)
    submit(course, A, "released", released)
    for name, (gid, old, new, _) in BUGS.items():
        submit(course, A, name, with_replaced(SOLUTION, gid, old, new))
    for name, (gid, source, _) in DELEGATES.items():
        submit(course, A, name, with_source(SOLUTION, gid, source))
    result = autograde(course, A)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return course, scores(course, A)


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def test_every_submission_is_graded(graded):
    _, s = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATES}


def test_solution_scores_full_marks(graded):
    _, s = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 17


def test_released_notebook_scores_zero(graded):
    course, s = graded
    assert {g: s["released"][g] for g in AUTO} == {g: 0 for g in AUTO}
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


def test_every_test_cell_is_covered():
    assert sorted(MASK + NAIVE + VAR + FWD + STEP + ES) == sorted(AUTO)
    for _, _, _, zero in BUGS.values():
        assert set(zero) <= set(AUTO)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_loses_exactly_its_points(graded, bug):
    _, s = graded
    zero = BUGS[bug][3]
    got = s[bug]
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in rest(*zero)} == {g: AUTO[g] for g in rest(*zero)}, got


@pytest.mark.parametrize("who", sorted(DELEGATES))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    zero = DELEGATES[who][2]
    assert {g: s[who][g] for g in zero} == {g: 0 for g in zero}, s[who]
    assert all(s[who][g] == AUTO[g] for g in rest(*zero)), s[who]


def _error(course, student: str, grade_id: str):
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    errors = [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]
    assert errors, f"{student}: {grade_id} shows no error"
    return errors[0]


def test_feedback_names_what_is_wrong(graded):
    course, _ = graded
    e = _error(course, "bug_mask_recipe", "test_dropout_mask_hidden")
    assert e.ename == "GradingError"
    assert "mask is wrong" in e.evalue and "not the one the recipe gives" in e.evalue
    e = _error(course, "bug_mask_not_scaled", "test_dropout_mask_hidden")
    assert "1/(1 - p)" in e.evalue and "scales them" in e.evalue
    e = _error(course, "bug_variational_redrawn_each_step", "test_rnn_forward_dropout_hidden")
    assert "mask_h[:, 1] differs from mask_h[:, 0]" in e.evalue and "once per sequence" in e.evalue
    e = _error(course, "bug_naive_same_mask_every_step", "test_naive_dropout_masks_hidden")
    assert "masks is wrong" in e.evalue or "fresh mask" in e.evalue
    e = _error(course, "bug_clip_per_array", "test_train_step_hidden")
    assert "new_params[" in e.evalue and "largest error" in e.evalue and "its own norm" in e.evalue
    e = _error(course, "bug_grad_norm_after_clipping", "test_train_step_hidden")
    assert "grad_norm is wrong" in e.evalue and "before clipping" in e.evalue
    e = _error(course, "bug_weight_decay_sign", "test_train_step_hidden")
    assert "wrong sign" in e.evalue
    e = _error(course, "bug_patience_off_by_one", "test_EarlyStopping_hidden")
    assert "one step late" in e.evalue and "plateau" in e.evalue
    e = _error(course, "bug_ties_improve", "test_EarlyStopping_hidden")
    assert "strict comparison" in e.evalue
    e = _error(course, "bug_nan_becomes_best", "test_EarlyStopping_hidden")
    assert "NaN" in e.evalue
    e = _error(course, "delegate_class", ES_VISIBLE)
    assert "rnn_ref.numpy.EarlyStopping" in e.evalue
    e = _error(course, "delegate_runtime", "test_train_step_hidden")
    assert "rnn_ref.numpy.train_step" in e.evalue


def test_solution_runs_top_to_bottom_quickly():
    """The notebook's own promise: every cell runs, nothing on stderr, well under 60 s."""
    from nbclient import NotebookClient

    nb = nbformat.from_dict(SOLUTION)
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "solutions" / A)}},
    )
    t0 = time.monotonic()
    client.execute()
    seconds = time.monotonic() - t0
    assert seconds < 60, seconds
    for c in nb.cells:
        if c.cell_type == "code":
            bad = [o for o in c.outputs if o.output_type == "error" or o.get("name") == "stderr"]
            assert not bad, (c.metadata.get("nbgrader", {}).get("grade_id"), bad)
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert printed.count("Visible tests passed.") == 6
    assert "stopped after epoch" in printed  # the training run stopped early


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record, verdicts replayed in the grader)
    gives the solution full marks, the release 0, and two planted bugs exactly their loss."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    notebooks = {
        "solution": SOLUTION,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
    }
    replayed = ("bug_clip_per_array", "bug_ties_improve", "bug_variational_redrawn_each_step")
    for name in replayed:
        gid, old, new, _ = BUGS[name]
        notebooks[name] = with_replaced(SOLUTION, gid, old, new)
    for student, nb in notebooks.items():
        nbformat.write(nb, folder / f"{student}.ipynb")
    cmd = [
        str(Path(sys.executable).parent / "rnn-course"),
        "grade",
        A,
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--no-gradebook",  # run from the repository root: leave its gradebook alone
        "--jobs",
        "2",
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert set(rows) == set(notebooks)
    assert float(rows["solution"]["total"]) == FULL
    assert float(rows["solution"]["max"]) == FULL + WRITTEN
    assert rows["solution"]["status"] == "graded", rows["solution"]
    assert all(float(rows["solution"][g]) == AUTO[g] for g in AUTO)
    assert float(rows["released"]["total"]) == 0
    for student in replayed:
        row, zero = rows[student], BUGS[student][3]
        assert float(row["total"]) == FULL - sum(AUTO[g] for g in zero), row
        assert all(float(row[g]) == 0 for g in zero), row
