"""Grading round trip for ch04_gradients in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs lose exactly the points
they should, delegation (to rnn_ref at run time or import time, or to torch's autograd) gains
nothing, and the class-scale grader (`rnn-course grade`) agrees on the solution and the release.

The shared tests come from grading_course.RoundTrip; this file holds what is ch04's own."""

from __future__ import annotations

import pytest
from grading_course import (
    ROOT,
    Bug,
    Delegation,
    RoundTrip,
    code_cells,
    printed,
    stderr_outputs,
    with_source,
)

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


def both(fn: str) -> list[str]:
    return [f"test_{fn}_visible", f"test_{fn}_hidden"]


STEP, NORMS = both("step_jacobian"), both("jacobian_norms")
CLIP_NORM, CLIP_VALUE = both("clip_by_norm"), both("clip_by_value")
ORTHO, IDENT = both("orthogonal_init"), both("identity_init")
JACOBIAN = STEP + NORMS
CLIP_INIT = CLIP_NORM + CLIP_VALUE + ORTHO + IDENT
NORMS_VISIBLE, NORMS_HIDDEN = NORMS

# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full
# marks.
# The solution's jacobian_norms calls its step_jacobian, so a wrong step Jacobian costs both;
# the visible norms case (one unit, then W_hh = 1.5 I) cannot show a transpose or a kink.
BUGS = {
    "bug_no_tanh_derivative": Bug(
        "step_jacobian",
        "dphi = 1.0 - h**2",
        "dphi = np.ones_like(h)",
        JACOBIAN,
    ),
    "bug_W_hh_transposed": Bug(
        "step_jacobian",
        'params["W_hh"][None, :, :]',
        'params["W_hh"].T[None, :, :]',
        [*STEP, NORMS_HIDDEN],
    ),
    "bug_relu_kink": Bug(
        "step_jacobian",
        "(a > 0)",
        "(a >= 0)",
        [*STEP, NORMS_HIDDEN],
    ),
    "bug_product_order": Bug(
        "jacobian_norms",
        "P = P @ Js[T - k]",
        "P = Js[T - k] @ P",
        [NORMS_HIDDEN],
    ),
    "bug_norms_max_over_batch": Bug(
        "jacobian_norms",
        "axis=(1, 2)).mean()",
        "axis=(1, 2)).max()",
        [NORMS_HIDDEN],
    ),
    "bug_clip_per_array": Bug(
        "clip_by_norm",
        "clipped = {k: g * scale for k, g in grads.items()}",
        "clipped = {k: g * min(1.0, max_norm / (np.linalg.norm(g) + eps))"
        " for k, g in grads.items()}",
        CLIP_NORM,
    ),
    "bug_clip_scales_up": Bug(
        "clip_by_norm",
        "scale = min(1.0, max_norm / (total_norm + eps))",
        "scale = max_norm / (total_norm + eps)",
        CLIP_NORM,
    ),
    "bug_clip_zero_gradient": Bug(  # no eps: an all-zero gradient divides by zero
        "clip_by_norm",
        "max_norm / (total_norm + eps)",
        "max_norm / total_norm",
        ["test_clip_by_norm_hidden"],
    ),
    "bug_clip_value_positive_only": Bug(
        "clip_by_value",
        "np.clip(g, -clip_value, clip_value)",
        "np.minimum(g, clip_value)",
        CLIP_VALUE,
    ),
    "bug_orthogonal_gaussian": Bug(
        "orthogonal_init",
        "W = gain * Q * signs",
        "W = gain * A / np.sqrt(H)",
        ORTHO,
    ),
    "bug_orthogonal_no_sign_fix": Bug(  # orthogonal, but always the same determinant
        "orthogonal_init",
        "signs = np.where(np.diag(R) < 0, -1.0, 1.0)",
        "signs = 1.0",
        ["test_orthogonal_init_hidden"],
    ),
    "bug_identity_ignores_scale": Bug(
        "identity_init",
        "W = scale * np.eye(H)",
        "W = np.eye(H)",
        IDENT,
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

DELEGATES = {  # name -> Delegation(cell, source, test cells that must score 0)
    "delegate_runtime": Delegation("clip_by_norm", DELEGATE_RUNTIME, CLIP_NORM),
    "delegate_import": Delegation("jacobian_norms", DELEGATE_IMPORT, NORMS),
    "delegate_autograd": Delegation("step_jacobian", DELEGATE_AUTOGRAD, JACOBIAN),
}

RT = RoundTrip(
    A, AUTO, full_marks=17, written={"written_clipping": 3}, bugs=BUGS, delegations=DELEGATES
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_every_test_cell_is_covered():
    """Each group of cells above is a partition of the autograded cells."""
    assert sorted(JACOBIAN + CLIP_INIT) == sorted(AUTO)
    for bug in BUGS.values():
        full = [g for g in AUTO if g not in bug.zero]
        assert sorted(bug.zero + full) == sorted(AUTO)


def test_feedback_names_what_is_wrong(graded):
    e = graded.error("bug_clip_per_array", "test_clip_by_norm_hidden")
    assert e.ename == "GradingError"
    assert "clipped['W_xh'] is wrong" in e.evalue and "largest error" in e.evalue
    assert "global norm above max_norm" in e.evalue  # the case
    assert "its own norm" in e.evalue  # the hint
    e = graded.error("bug_W_hh_transposed", "test_step_jacobian_hidden")
    assert "J is wrong" in e.evalue and "transposed" in e.evalue
    e = graded.error("bug_product_order", "test_jacobian_norms_hidden")
    assert "first wrong lag is k=2" in e.evalue
    e = graded.error("bug_orthogonal_no_sign_fix", "test_orthogonal_init_hidden")
    assert "determinant" in e.evalue
    e = graded.error("delegate_autograd", "test_step_jacobian_hidden")
    assert "torch.autograd" in e.evalue
    e = graded.error("delegate_import", "test_jacobian_norms_hidden")
    assert "rnn_ref.numpy.jacobian_norms" in e.evalue


def test_solution_runs_top_to_bottom_quickly():
    """The notebook's own promise: every cell runs, nothing on stderr, well under 60 s."""
    nb = RT.run_solution(ROOT / "solutions" / A)
    assert not stderr_outputs(code_cells(nb))
    assert printed(nb).count("Visible tests passed.") == 6


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record, verdicts replayed in the grader)
    gives the solution full marks, the release 0, a planted bug exactly its loss, and clipping
    with torch 0 (torch cannot be imported there)."""
    torch_clip = with_source(RT.solution(), "clip_by_norm", TORCH_CLIP)
    rows = RT.grade_class(tmp_path, ["bug_clip_per_array"], {"torch_clip": torch_clip})
    RT.assert_class_row(rows["torch_clip"], BUGS["bug_clip_per_array"].zero)
