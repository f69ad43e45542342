"""Grading round trip for ch06_gru in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (the layered checks: a backward is judged only on a correct forward),
delegation (the reference, torch.nn.GRU, autograd) earns nothing, the feedback names the wrong
gradient and gate, the solution runs top to bottom in under 60 s, and the class-scale grader
(which replays the recorded results in its own process) agrees."""

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

A = "ch06_gru"
AUTO = {  # autograded test cells and their points
    "test_gru_step_forward_visible": 1,
    "test_gru_step_forward_hidden": 2,
    "test_gru_step_backward_visible": 2,
    "test_gru_step_backward_hidden": 3,
    "test_gru_forward_visible": 1,
    "test_gru_forward_hidden": 2,
    "test_gru_backward_visible": 2,
    "test_gru_backward_hidden": 3,
    "test_gru_step_forward_before_visible": 1,
    "test_gru_step_forward_before_hidden": 2,
    "test_gru_step_backward_before_visible": 1,
    "test_gru_step_backward_before_hidden": 2,
}
FULL = sum(AUTO.values())
WRITTEN = 3
STEP_F = ["test_gru_step_forward_visible", "test_gru_step_forward_hidden"]
STEP_B = ["test_gru_step_backward_visible", "test_gru_step_backward_hidden"]
SEQ_F = ["test_gru_forward_visible", "test_gru_forward_hidden"]
SEQ_B = ["test_gru_backward_visible", "test_gru_backward_hidden"]
BEFORE_F = ["test_gru_step_forward_before_visible", "test_gru_step_forward_before_hidden"]
BEFORE_B = ["test_gru_step_backward_before_visible", "test_gru_step_backward_before_hidden"]
# A forward bug that the hand-worked visible cases of later parts cannot see (there b_hn = 0
# or W_hn = 0): every hidden test built on the step forward still fails.
HIDDEN_AFTER_STEP = [
    "test_gru_step_backward_hidden",
    "test_gru_forward_hidden",
    "test_gru_backward_hidden",
]
N_LINE = "n = np.tanh(gx[:, 2 * H :] + r * hn)"

# name -> (cell, old, new, the test cells that must score 0; every other one keeps full marks)
BUGS = {
    "bug_z_swapped": (
        "gru_step_forward",
        "h = (1 - z) * n + z * h_prev",
        "h = z * n + (1 - z) * h_prev",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    # n = tanh(W_in x + b_in + r * (W_hn h) + b_hn): b_hn escapes the reset gate.
    "bug_b_hn_outside_reset": (
        "gru_step_forward",
        N_LINE,
        'n = np.tanh(gx[:, 2 * H :] + r * (hn - params["b_h"][2 * H :]) + params["b_h"][2 * H :])',
        STEP_F + HIDDEN_AFTER_STEP,
    ),
    # Cho et al.'s cell where PyTorch's is asked for.
    "bug_reset_before_product": (
        "gru_step_forward",
        N_LINE,
        'n = np.tanh(gx[:, 2 * H :] + (r * h_prev) @ params["W_h"][2 * H :].T'
        ' + params["b_h"][2 * H :])',
        STEP_F + HIDDEN_AFTER_STEP,
    ),
    "bug_gate_order_z_r_n": (
        "gru_step_forward",
        "r = sigmoid(gx[:, :H] + gh[:, :H])\n    z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])",
        "z = sigmoid(gx[:, :H] + gh[:, :H])\n    r = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    "bug_no_z_path_into_dh_prev": (
        "gru_step_backward",
        'dh_prev = dh * z + dgh @ params["W_h"]',
        'dh_prev = dgh @ params["W_h"]',
        STEP_B + SEQ_B,
    ),
    # In the visible sequence case W_hn h + b_hn = 0, so dr = 0 there: only hidden tests see it.
    "bug_no_r_gradient": (
        "gru_step_backward",
        "da_r = da_n * hn * r * (1 - r)",
        "da_r = np.zeros_like(da_n)",
        STEP_B + ["test_gru_backward_hidden"],
    ),
    "bug_no_dh_from_next_step": (
        "gru_backward",
        "gru_step_backward(dhs[:, t] + dh_next, cache[t])",
        "gru_step_backward(dhs[:, t], cache[t])",
        SEQ_B,
    ),
    "bug_ignores_h0": (
        "gru_forward",
        "h, caches = h0, []",
        "h, caches = np.zeros_like(h0), []",
        SEQ_F + SEQ_B,
    ),
    "bug_before_is_after": (
        "gru_step_forward_before",
        "n = np.tanh(gx[:, 2 * H :] + rh @ W_h[2 * H :].T + b_h[2 * H :])",
        "n = np.tanh(gx[:, 2 * H :] + r * (h_prev @ W_h[2 * H :].T + b_h[2 * H :]))",
        BEFORE_F + BEFORE_B,
    ),
    "bug_before_no_reset_path_into_dh_prev": (
        "gru_step_backward_before",
        "dh_prev = dh * z + drh * r + ",
        "dh_prev = dh * z + ",
        BEFORE_B,
    ),
}

DELEGATE_RUNTIME = """def gru_forward(x, h0, params):
    import rnn_ref.numpy
    return rnn_ref.numpy.gru_forward(x, h0, params)"""

DELEGATE_IMPORT = """from rnn_ref.numpy import gru_step_forward as _reference_step

def gru_step_forward(x, h_prev, params):
    return _reference_step(x, h_prev, params)"""

DELEGATE_IMPORT_BEFORE = """from rnn_ref.numpy import gru_step_forward as _reference_step

def gru_step_forward_before(x, h_prev, params):
    return _reference_step(x, h_prev, params, reset="before")"""

DELEGATE_TORCH = """import torch

def gru_forward(x, h0, params):
    m = torch.nn.GRU(x.shape[2], h0.shape[1], batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.as_tensor(params["W_x"]))
        m.weight_hh_l0.copy_(torch.as_tensor(params["W_h"]))
        m.bias_ih_l0.copy_(torch.as_tensor(params["b_x"]))
        m.bias_hh_l0.copy_(torch.as_tensor(params["b_h"]))
        hs, _ = m(torch.as_tensor(x), torch.as_tensor(h0)[None])
    return hs.numpy(), None"""

# The forward redone in torch from the solution's cache (one (x_t, h_prev, params, ...) per
# step), then autograd: exact without the guard (checked outside grading: error < 1e-14).
DELEGATE_AUTOGRAD = """import torch

def gru_backward(dhs, cache):
    x = torch.tensor(np.stack([c[0] for c in cache], axis=1), requires_grad=True)
    h0 = torch.tensor(cache[0][1], requires_grad=True)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in cache[0][2].items()}
    H = h0.shape[1]
    h, hs = h0, []
    for t in range(x.shape[1]):
        gx = x[:, t] @ p["W_x"].T + p["b_x"]
        gh = h @ p["W_h"].T + p["b_h"]
        r = torch.sigmoid(gx[:, :H] + gh[:, :H])
        z = torch.sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs.append(h)
    (torch.stack(hs, 1) * torch.as_tensor(dhs)).sum().backward()
    return x.grad.numpy(), h0.grad.numpy(), {k: v.grad.numpy() for k, v in p.items()}"""

# student -> (answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": ("gru_forward", DELEGATE_RUNTIME, SEQ_F + SEQ_B),
    "delegate_import": ("gru_step_forward", DELEGATE_IMPORT, STEP_F + STEP_B + SEQ_F + SEQ_B),
    "delegate_import_before": (
        "gru_step_forward_before",
        DELEGATE_IMPORT_BEFORE,
        BEFORE_F + BEFORE_B,
    ),
    "delegate_torch_gru": ("gru_forward", DELEGATE_TORCH, SEQ_F + SEQ_B),
    "delegate_autograd": ("gru_backward", DELEGATE_AUTOGRAD, SEQ_B),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", solution)
    submit(course, A, "released", released)
    for name, (gid, old, new, _) in BUGS.items():
        submit(course, A, name, with_replaced(solution, gid, old, new))
    for name, (gid, source, _) in DELEGATIONS.items():
        submit(course, A, name, with_source(solution, gid, source))
    result = autograde(course, A)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return course, scores(course, A)


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def errors(course: Path, student: str, grade_id: str) -> list:
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    return [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]


def test_the_committed_release_is_current_and_the_cells_are_as_listed(graded):
    course, _ = graded
    fresh = read(course / "exercises" / A / f"{A}.ipynb")
    assert fresh == read(ROOT / "exercises" / A / f"{A}.ipynb"), "regenerate exercises/ch06_gru"
    points = {
        c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points
        for c in fresh.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert points == {**AUTO, "written_reset_placement": WRITTEN}


def test_every_submission_is_graded(graded):
    _, s = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATIONS}


def test_solution_scores_full_marks(graded):
    _, s = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 22


def test_released_notebook_scores_zero(graded):
    course, s = graded
    assert total(s["released"]) == 0
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


def _exactly(got: dict, zero: list) -> None:
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    rest = [g for g in AUTO if g not in zero]
    assert {g: got[g] for g in rest} == {g: AUTO[g] for g in rest}, got


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_zeroes_exactly_its_cells(graded, bug):
    _, s = graded
    _exactly(s[bug], BUGS[bug][3])


@pytest.mark.parametrize("who", sorted(DELEGATIONS))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    _exactly(s[who], DELEGATIONS[who][2])


def test_feedback_names_the_gradient_and_the_gate(graded):
    course, _ = graded
    (err,) = errors(course, "bug_no_r_gradient", "test_gru_step_backward_hidden")
    assert err.ename == "GradingError"
    assert "dW_h is wrong in the rows of gate r;" in err.evalue
    assert "dW_x is wrong in the rows of gate r;" in err.evalue
    assert "largest error" in err.evalue and "gate z" not in err.evalue
    (err,) = errors(course, "bug_no_z_path_into_dh_prev", "test_gru_step_backward_hidden")
    assert "gru_step_backward: dh_prev is wrong (" in err.evalue  # and nothing else
    (err,) = errors(course, "bug_no_dh_from_next_step", "test_gru_backward_hidden")
    assert "first wrong time step is t=0" in err.evalue
    assert "right at the last time step" in err.evalue


def test_a_backward_on_a_wrong_forward_says_fix_the_forward_first(graded):
    course, _ = graded
    (err,) = errors(course, "bug_gate_order_z_r_n", "test_gru_step_backward_hidden")
    assert "gru_step_forward is wrong; fix the forward first" in err.evalue
    (err,) = errors(course, "bug_ignores_h0", "test_gru_backward_hidden")
    assert "gru_forward is wrong; fix the forward first" in err.evalue
    assert "hs is wrong" in err.evalue


def test_delegation_feedback_names_the_call(graded):
    course, _ = graded
    (err,) = errors(course, "delegate_torch_gru", "test_gru_forward_hidden")
    assert "torch.nn.GRU.forward" in err.evalue
    (err,) = errors(course, "delegate_autograd", "test_gru_backward_hidden")
    assert err.ename == "DelegationError" and "torch" in err.evalue
    (err,) = errors(course, "delegate_import", "test_gru_step_forward_hidden")
    assert "rnn_ref.numpy.gru_step_forward" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    from nbclient import NotebookClient

    nb = read(ROOT / "solutions" / A / f"{A}.ipynb")
    t0 = time.monotonic()
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on the first cell that fails
    seconds = time.monotonic() - t0
    assert seconds < 60, f"the solution notebook took {seconds:.0f} s"
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code":
            assert not [o for o in c.outputs if o.get("name") == "stderr"], c.metadata
    # The numerical check of the "Try it" cell agrees with the solution's backward.
    (try_it,) = [c for c in nb.cells if c.cell_type == "code" and "numerical_gradient" in c.source]
    rels = [float(line.split()[-1]) for line in try_it.outputs[0].text.splitlines()]
    assert len(rels) == 6 and max(rels) < 1e-7


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    subs = tmp_path / "subs"
    subs.mkdir()
    batch = {
        "solution": solution,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
    }
    for bug in ("bug_gate_order_z_r_n", "bug_no_dh_from_next_step"):
        gid, old, new, _ = BUGS[bug]
        batch[bug] = with_replaced(solution, gid, old, new)
    for student, nb in batch.items():
        (subs / f"{student}.ipynb").write_text(nbformat.writes(nb))
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
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert set(rows) == set(batch)
    assert float(rows["solution"]["total"]) == FULL
    assert float(rows["solution"]["max"]) == FULL + WRITTEN
    assert float(rows["released"]["total"]) == 0
    for bug in ("bug_gate_order_z_r_n", "bug_no_dh_from_next_step"):
        got = {g: float(rows[bug][g]) for g in AUTO}
        _exactly(got, BUGS[bug][3])
    feedback = tmp_path / "out" / "feedback" / "bug_gate_order_z_r_n" / A / f"{A}.html"
    html = feedback.read_text()
    assert "fix the forward first" in html
    assert "check_step_backward" not in html and "seeds=(201" not in html
