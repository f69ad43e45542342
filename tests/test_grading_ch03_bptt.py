"""Grading round trip for ch03_bptt in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug (in the step
backward, the sequence backward, the numerical gradient, the relative error, truncated BPTT)
zeroes exactly the test cells it should and keeps full marks elsewhere, delegation (to
rnn_ref at run time or import time, to torch autograd) earns nothing, the feedback names what
is wrong, the solution runs top to bottom in under 60 s, and the class-scale grader (record in
the kernel, replay in the grader) agrees."""

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

A = "ch03_bptt"
AUTO = {  # autograded test cells and their points
    "test_rnn_step_backward_visible": 1,
    "test_rnn_step_backward_hidden": 3,
    "test_rnn_backward_visible": 1,
    "test_rnn_backward_hidden": 3,
    "test_rel_error_visible": 1,
    "test_rel_error_hidden": 1,
    "test_numerical_gradient_visible": 1,
    "test_numerical_gradient_hidden": 2,
    "test_truncated_bptt_grads_visible": 1,
    "test_truncated_bptt_grads_hidden": 3,
}
FULL = sum(AUTO.values())
WRITTEN = 4  # two written answers, graded by hand
STEP = ["test_rnn_step_backward_visible", "test_rnn_step_backward_hidden"]
SEQ = ["test_rnn_backward_visible", "test_rnn_backward_hidden"]
REL = ["test_rel_error_visible", "test_rel_error_hidden"]
NUM = ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"]
TBPTT = ["test_truncated_bptt_grads_visible", "test_truncated_bptt_grads_hidden"]
HIDDEN = [g for g in AUTO if g.endswith("_hidden")]

# name -> (answer cell, old, new, the test cells that must score 0; all others keep full marks).
# rnn_backward calls rnn_step_backward and truncated_bptt_grads calls rnn_backward, and the
# hidden checks of those parts check the part below first, so a bug propagates upwards. The
# visible cases are one-unit networks, where a transpose cannot show: those bugs zero only the
# hidden cells.
BUGS = {
    "bug_no_tanh_derivative": (
        "rnn_step_backward",
        "da = dh * (1 - h**2)",
        "da = dh",
        STEP + SEQ + TBPTT,
    ),
    "bug_dW_hh_transposed": (
        "rnn_step_backward",
        '"W_hh": da.T @ h_prev',
        '"W_hh": h_prev.T @ da',
        [
            "test_rnn_step_backward_hidden",
            "test_rnn_backward_hidden",
            "test_truncated_bptt_grads_hidden",
        ],
    ),
    "bug_dW_hh_uses_h": (
        "rnn_step_backward",
        '"W_hh": da.T @ h_prev',
        '"W_hh": da.T @ h',
        STEP + SEQ + TBPTT,
    ),
    "bug_grads_overwritten": (
        "rnn_backward",
        "grads[key] += step_grads[key]",
        "grads[key] = step_grads[key]",
        SEQ + TBPTT,
    ),
    "bug_no_recurrent_term": (
        "rnn_backward",
        "dh = dhs[:, t] + dh_next",
        "dh = dhs[:, t]",
        SEQ + TBPTT,
    ),
    "bug_rel_error_no_floor": (
        "rel_error",
        "np.maximum(1e-8, np.abs(a) + np.abs(b))",
        "(np.abs(a) + np.abs(b))",
        REL,
    ),
    "bug_forward_difference": (
        "numerical_gradient",
        "grad[i] = (f_plus - f_minus) / (2 * h)",
        "grad[i] = (f_plus - f(x)) / h",
        NUM,
    ),
    "bug_x_not_restored": (
        "numerical_gradient",
        "        x[i] = old  # restore it before the next entry\n",
        "",
        NUM,
    ),
    "bug_tbptt_restarts_from_h0": (
        "truncated_bptt_grads",
        "rnn_forward(x[:, chunk], h, params)",
        "rnn_forward(x[:, chunk], h0, params)",
        TBPTT,
    ),
    "bug_tbptt_no_truncation": (  # the gradient is never stopped: full BPTT for every k
        "truncated_bptt_grads",
        "    for start in range(0, T, k):",
        "    k = T\n    for start in range(0, T, k):",
        TBPTT,
    ),
    "bug_tbptt_equal_chunk_weights": (  # the mean of the chunks' means, not of all steps
        "truncated_bptt_grads",
        "w = M_c / M",
        "w = 1 / len(range(0, T, k))",
        TBPTT,
    ),
}

DELEGATE_RUNTIME = '''def rnn_backward(dhs, cache):
    """Delegates to the reference at run time."""
    import rnn_ref.numpy
    return rnn_ref.numpy.rnn_backward(dhs, cache)'''

DELEGATE_IMPORT = '''from rnn_ref.numpy import rnn_step_backward as _reference_step

def rnn_step_backward(dh, cache):
    """Delegates to a reference function bound when the cell ran."""
    return _reference_step(dh, cache)'''

DELEGATE_NUMGRAD = '''def numerical_gradient(f, x, h=1e-5):
    """Delegates to the reference numerical gradient."""
    from rnn_ref.numpy import numerical_gradient as ref
    return ref(f, x, h=h)'''

DELEGATE_AUTOGRAD = '''import torch

def rnn_backward(dhs, cache):
    """Recomputes the forward pass in torch and lets autograd do the backward pass."""
    x, h0, hs, W_xh, W_hh = (torch.tensor(a) for a in cache)
    # b_h is not in the cache: recover it from the first step, tanh(a_1) = h_1.
    b = (torch.atanh(hs[:, 0]) - x[:, 0] @ W_xh.T - h0 @ W_hh.T).mean(0)
    leaves = [x, h0, W_xh, W_hh, b]
    for leaf in leaves:
        leaf.requires_grad_(True)
    h, out = h0, []
    for s in range(x.shape[1]):
        h = torch.tanh(x[:, s] @ W_xh.T + h @ W_hh.T + b)
        out.append(h)
    (torch.stack(out, 1) * torch.tensor(dhs)).sum().backward()
    dx, dh0, dW_xh, dW_hh, db = (leaf.grad.numpy() for leaf in leaves)
    return dx, dh0, {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db}'''

DELEGATIONS = {  # name -> (answer cell, source, test cells that must score 0)
    "delegate_runtime": ("rnn_backward", DELEGATE_RUNTIME, SEQ + TBPTT),
    "delegate_import": ("rnn_step_backward", DELEGATE_IMPORT, STEP + SEQ + TBPTT),
    "delegate_numgrad": ("numerical_gradient", DELEGATE_NUMGRAD, NUM),
    "delegate_autograd": ("rnn_backward", DELEGATE_AUTOGRAD, SEQ + TBPTT),
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
    return course, scores(course, A), result


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def exactly(got: dict, zero: list[str]) -> None:
    """``zero`` cells score 0 and every other autograded cell its full points."""
    want = {g: (0 if g in zero else AUTO[g]) for g in AUTO}
    assert {g: got[g] for g in AUTO} == want


def errors(course: Path, student: str, grade_id: str) -> list:
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    return [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]


def test_every_submission_is_graded(graded):
    _, s, _ = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATIONS}


def test_solution_scores_full_marks(graded):
    _, s, _ = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 17


def test_released_notebook_scores_zero(graded):
    course, s, _ = graded
    assert total(s["released"]) == 0
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_zeroes_exactly_its_cells(graded, bug):
    _, s, _ = graded
    exactly(s[bug], BUGS[bug][3])


@pytest.mark.parametrize("who", sorted(DELEGATIONS))
def test_delegation_earns_nothing(graded, who):
    _, s, _ = graded
    exactly(s[who], DELEGATIONS[who][2])


def test_feedback_names_what_is_wrong(graded):
    course, _, _ = graded
    # The gradient, and for dx the first wrong time step.
    err = errors(course, "bug_grads_overwritten", "test_rnn_backward_hidden")
    assert err and err[0].ename == "GradingError"
    assert 'grads["W_xh"] is wrong' in err[0].evalue and "largest error" in err[0].evalue
    err = errors(course, "bug_no_recurrent_term", "test_rnn_backward_hidden")
    assert "dx is wrong" in err[0].evalue and "first wrong time step is t=" in err[0].evalue
    # Layered: a wrong step backward is named as the part to fix first.
    err = errors(course, "bug_dW_hh_transposed", "test_rnn_backward_hidden")
    assert "rnn_step_backward, which is wrong; fix it first" in err[0].evalue
    assert 'grads["W_hh"]' in err[0].evalue
    err = errors(course, "bug_dW_hh_transposed", "test_rnn_step_backward_hidden")
    assert 'grads["W_hh"] is wrong' in err[0].evalue and "fix it first" not in err[0].evalue
    err = errors(course, "bug_no_recurrent_term", "test_truncated_bptt_grads_hidden")
    assert "rnn_backward, which is wrong; fix it first" in err[0].evalue
    # Truncated BPTT: the message says which k and whether it is the truncated case.
    err = errors(course, "bug_tbptt_no_truncation", "test_truncated_bptt_grads_hidden")
    assert "(truncated)" in err[0].evalue and "k=3, T=7" in err[0].evalue
    # Numerical gradient: a hint on what an error of the order of h means.
    err = errors(course, "bug_forward_difference", "test_numerical_gradient_hidden")
    assert "one-sided difference" in err[0].evalue
    # Delegation says what was called.
    err = errors(course, "delegate_autograd", "test_rnn_backward_hidden")
    assert "torch" in err[0].evalue and "backward" in err[0].evalue
    err = errors(course, "delegate_runtime", "test_rnn_backward_visible")
    assert "rnn_ref.numpy.rnn_backward" in err[0].evalue


def test_solution_runs_top_to_bottom_quickly(tmp_path):
    from nbclient import NotebookClient

    nb = read(ROOT / "solutions" / A / f"{A}.ipynb")
    t0 = time.monotonic()
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on the first cell that fails
    seconds = time.monotonic() - t0
    assert seconds < 60, f"the solution notebook took {seconds:.0f} s"
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.get("name") != "stderr", (c.metadata, o.get("text"))


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    batch = {
        "solution": solution,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
    }
    replayed = ("bug_dW_hh_transposed", "bug_tbptt_restarts_from_h0", "bug_x_not_restored")
    for bug in replayed:
        gid, old, new, _ = BUGS[bug]
        batch[bug] = with_replaced(solution, gid, old, new)
    subs = tmp_path / "subs"
    subs.mkdir()
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
    for bug in replayed:
        exactly({g: float(rows[bug][g]) for g in AUTO}, BUGS[bug][3])
    html = (tmp_path / "out" / "feedback" / "bug_dW_hh_transposed" / A / f"{A}.html").read_text()
    assert "fix it first" in html
    assert "check_backward" not in html and "seeds=(201" not in html
