"""Grading round trip for ch04_gradients in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose exactly the points
they should, delegation (to rnn_ref at run time or import time, or to torch's autograd) gains
nothing, and the class-scale grader (`rnn-course grade`) agrees on the solution and the release."""

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

A = "ch04_gradients"
AUTO = {  # autograded test cells and their points
    "test_step_jacobian_visible": 1,
    "test_step_jacobian_hidden": 2,
    "test_jacobian_norms_visible": 1,
    "test_jacobian_norms_hidden": 3,
    "test_clip_by_norm_visible": 1,
    "test_clip_by_norm_hidden": 2,
    "test_clip_by_value_visible": 1,
    "test_clip_by_value_hidden": 1,
    "test_orthogonal_init_visible": 1,
    "test_orthogonal_init_hidden": 2,
    "test_identity_init_visible": 1,
    "test_identity_init_hidden": 1,
}
FULL = sum(AUTO.values())
WRITTEN = 3  # the written answer, graded by hand


def both(fn: str) -> list[str]:
    return [f"test_{fn}_visible", f"test_{fn}_hidden"]


STEP, NORMS = both("step_jacobian"), both("jacobian_norms")
CLIP_NORM, CLIP_VALUE = both("clip_by_norm"), both("clip_by_value")
ORTHO, IDENT = both("orthogonal_init"), both("identity_init")
JACOBIAN = STEP + NORMS
CLIP_INIT = CLIP_NORM + CLIP_VALUE + ORTHO + IDENT
NORMS_VISIBLE, NORMS_HIDDEN = NORMS

# name -> (cell, old, new, test cells that must score 0, test cells that must keep full marks).
# The solution's jacobian_norms calls its step_jacobian, so a wrong step Jacobian costs both;
# the visible norms case (one unit, then W_hh = 1.5 I) cannot show a transpose or a kink.
BUGS = {
    "bug_no_tanh_derivative": (
        "step_jacobian",
        "dphi = 1.0 - h**2",
        "dphi = np.ones_like(h)",
        JACOBIAN,
        CLIP_INIT,
    ),
    "bug_W_hh_transposed": (
        "step_jacobian",
        'params["W_hh"][None, :, :]',
        'params["W_hh"].T[None, :, :]',
        [*STEP, NORMS_HIDDEN],
        [NORMS_VISIBLE, *CLIP_INIT],
    ),
    "bug_relu_kink": (
        "step_jacobian",
        "(a > 0)",
        "(a >= 0)",
        [*STEP, NORMS_HIDDEN],
        [NORMS_VISIBLE, *CLIP_INIT],
    ),
    "bug_product_order": (
        "jacobian_norms",
        "P = P @ Js[T - k]",
        "P = Js[T - k] @ P",
        [NORMS_HIDDEN],
        [*STEP, NORMS_VISIBLE, *CLIP_INIT],
    ),
    "bug_norms_max_over_batch": (
        "jacobian_norms",
        "axis=(1, 2)).mean()",
        "axis=(1, 2)).max()",
        [NORMS_HIDDEN],
        [*STEP, NORMS_VISIBLE, *CLIP_INIT],
    ),
    "bug_clip_per_array": (
        "clip_by_norm",
        "clipped = {k: g * scale for k, g in grads.items()}",
        "clipped = {k: g * min(1.0, max_norm / (np.linalg.norm(g) + eps))"
        " for k, g in grads.items()}",
        CLIP_NORM,
        JACOBIAN + CLIP_VALUE + ORTHO + IDENT,
    ),
    "bug_clip_scales_up": (
        "clip_by_norm",
        "scale = min(1.0, max_norm / (total_norm + eps))",
        "scale = max_norm / (total_norm + eps)",
        CLIP_NORM,
        JACOBIAN + CLIP_VALUE + ORTHO + IDENT,
    ),
    "bug_clip_zero_gradient": (  # no eps: an all-zero gradient divides by zero
        "clip_by_norm",
        "max_norm / (total_norm + eps)",
        "max_norm / total_norm",
        ["test_clip_by_norm_hidden"],
        ["test_clip_by_norm_visible", *JACOBIAN, *CLIP_VALUE, *ORTHO, *IDENT],
    ),
    "bug_clip_value_positive_only": (
        "clip_by_value",
        "np.clip(g, -clip_value, clip_value)",
        "np.minimum(g, clip_value)",
        CLIP_VALUE,
        JACOBIAN + CLIP_NORM + ORTHO + IDENT,
    ),
    "bug_orthogonal_gaussian": (
        "orthogonal_init",
        "W = gain * Q * signs",
        "W = gain * A / np.sqrt(H)",
        ORTHO,
        JACOBIAN + CLIP_NORM + CLIP_VALUE + IDENT,
    ),
    "bug_orthogonal_no_sign_fix": (  # orthogonal, but always the same determinant
        "orthogonal_init",
        "signs = np.where(np.diag(R) < 0, -1.0, 1.0)",
        "signs = 1.0",
        ["test_orthogonal_init_hidden"],
        ["test_orthogonal_init_visible", *JACOBIAN, *CLIP_NORM, *CLIP_VALUE, *IDENT],
    ),
    "bug_identity_ignores_scale": (
        "identity_init",
        "W = scale * np.eye(H)",
        "W = np.eye(H)",
        IDENT,
        JACOBIAN + CLIP_NORM + CLIP_VALUE + ORTHO,
    ),
}

DELEGATE_RUNTIME = """def clip_by_norm(grads, max_norm, eps=1e-6):
    import rnn_ref.numpy
    return rnn_ref.numpy.clip_by_norm(grads, max_norm, eps)"""

DELEGATE_IMPORT = """from rnn_ref.numpy import jacobian_norms as _reference_norms

def jacobian_norms(x, h0, params, nonlinearity="tanh"):
    return _reference_norms(x, h0, params, nonlinearity)"""

# The step Jacobian from torch's autograd (no torch.nn module involved): forbidden too.
DELEGATE_AUTOGRAD = """import torch

def step_jacobian(x, h_prev, params, nonlinearity="tanh"):
    W_xh, W_hh, b_h = (torch.as_tensor(params[k]) for k in ("W_xh", "W_hh", "b_h"))
    phi = torch.tanh if nonlinearity == "tanh" else torch.relu
    out = []
    for n in range(x.shape[0]):
        x_n = torch.as_tensor(x[n])
        step = lambda h: phi(W_xh @ x_n + W_hh @ h + b_h)
        out.append(torch.autograd.functional.jacobian(step, torch.as_tensor(h_prev[n])).numpy())
    return np.stack(out)"""

# Not a tripwire in the student's kernel, but torch cannot be imported in the class grader's
# sandbox, so there it scores 0 (the notebook's rules say so).
TORCH_CLIP = """def clip_by_norm(grads, max_norm, eps=1e-6):
    import torch
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(ts, grads.values()):
        t.grad = torch.from_numpy(np.array(g, dtype=float))
    total_norm = torch.nn.utils.clip_grad_norm_(ts, max_norm)
    return {k: t.grad.numpy() for k, t in zip(grads, ts)}, float(total_norm)"""

DELEGATES = {  # name -> (cell, source, test cells that must score 0)
    "delegate_runtime": ("clip_by_norm", DELEGATE_RUNTIME, CLIP_NORM),
    "delegate_import": ("jacobian_norms", DELEGATE_IMPORT, NORMS),
    "delegate_autograd": ("step_jacobian", DELEGATE_AUTOGRAD, JACOBIAN),
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
    for name, (gid, old, new, _, _) in BUGS.items():
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
    """Each group of cells above is a partition of the autograded cells."""
    assert sorted(JACOBIAN + CLIP_INIT) == sorted(AUTO)
    for _, _, _, zero, full in BUGS.values():
        assert sorted(zero + full) == sorted(AUTO)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_loses_exactly_its_points(graded, bug):
    _, s = graded
    _, _, _, zero, full = BUGS[bug]
    got = s[bug]
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in full} == {g: AUTO[g] for g in full}, got


@pytest.mark.parametrize("who", sorted(DELEGATES))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    zero = DELEGATES[who][2]
    assert {g: s[who][g] for g in zero} == {g: 0 for g in zero}, s[who]
    assert all(s[who][g] == AUTO[g] for g in AUTO if g not in zero), s[who]


def _error(course, student: str, grade_id: str):
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    errors = [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]
    assert errors, f"{student}: {grade_id} shows no error"
    return errors[0]


def test_feedback_names_what_is_wrong(graded):
    course, _ = graded
    e = _error(course, "bug_clip_per_array", "test_clip_by_norm_hidden")
    assert e.ename == "GradingError"
    assert "clipped['W_xh'] is wrong" in e.evalue and "largest error" in e.evalue
    assert "global norm above max_norm" in e.evalue  # the case
    assert "its own norm" in e.evalue  # the hint
    e = _error(course, "bug_W_hh_transposed", "test_step_jacobian_hidden")
    assert "J is wrong" in e.evalue and "transposed" in e.evalue
    e = _error(course, "bug_product_order", "test_jacobian_norms_hidden")
    assert "first wrong lag is k=2" in e.evalue
    e = _error(course, "bug_orthogonal_no_sign_fix", "test_orthogonal_init_hidden")
    assert "determinant" in e.evalue
    e = _error(course, "delegate_autograd", "test_step_jacobian_hidden")
    assert "torch.autograd" in e.evalue
    e = _error(course, "delegate_import", "test_jacobian_norms_hidden")
    assert "rnn_ref.numpy.jacobian_norms" in e.evalue


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


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record, verdicts replayed in the grader)
    gives the solution full marks, the release 0, a planted bug exactly its loss, and clipping
    with torch 0 (torch cannot be imported there)."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    gid, old, new, zero, _ = BUGS["bug_clip_per_array"]
    notebooks = {
        "solution": SOLUTION,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
        "bug_clip_per_array": with_replaced(SOLUTION, gid, old, new),
        "torch_clip": with_source(SOLUTION, "clip_by_norm", TORCH_CLIP),
    }
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
    for student in ("bug_clip_per_array", "torch_clip"):
        row = rows[student]
        assert float(row["total"]) == FULL - sum(AUTO[g] for g in zero), row
        assert all(float(row[g]) == 0 for g in zero), row
