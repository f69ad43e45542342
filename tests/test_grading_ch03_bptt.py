"""Grading round trip for ch03_bptt in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug (in the step
backward, the sequence backward, the numerical gradient, the relative error, truncated BPTT)
zeroes exactly the test cells it should and keeps full marks elsewhere, delegation (to
rnn_ref at run time or import time, to torch autograd) earns nothing, the feedback names what
is wrong, the solution runs top to bottom in under 60 s, and the class-scale grader (record in
the kernel, replay in the grader) agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch03's own."""

from __future__ import annotations

import pytest
from grading_course import Bug, Delegation, RoundTrip, code_cells, stderr_outputs

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
STEP = ["test_rnn_step_backward_visible", "test_rnn_step_backward_hidden"]
SEQ = ["test_rnn_backward_visible", "test_rnn_backward_hidden"]
REL = ["test_rel_error_visible", "test_rel_error_hidden"]
NUM = ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"]
TBPTT = ["test_truncated_bptt_grads_visible", "test_truncated_bptt_grads_hidden"]

# name -> Bug(answer cell, old, new, the test cells that must score 0; all others keep full marks).
# rnn_backward calls rnn_step_backward and truncated_bptt_grads calls rnn_backward, and the
# hidden checks of those parts check the part below first, so a bug propagates upwards. The
# visible cases are one-unit networks, where a transpose cannot show: those bugs zero only the
# hidden cells.
BUGS = {
    "bug_no_tanh_derivative": Bug(
        "rnn_step_backward",
        "da = dh * (1 - h**2)",
        "da = dh",
        STEP + SEQ + TBPTT,
    ),
    "bug_dW_hh_transposed": Bug(
        "rnn_step_backward",
        '"W_hh": da.T @ h_prev',
        '"W_hh": h_prev.T @ da',
        [
            "test_rnn_step_backward_hidden",
            "test_rnn_backward_hidden",
            "test_truncated_bptt_grads_hidden",
        ],
    ),
    "bug_dW_hh_uses_h": Bug(
        "rnn_step_backward",
        '"W_hh": da.T @ h_prev',
        '"W_hh": da.T @ h',
        STEP + SEQ + TBPTT,
    ),
    "bug_grads_overwritten": Bug(
        "rnn_backward",
        "grads[key] += step_grads[key]",
        "grads[key] = step_grads[key]",
        SEQ + TBPTT,
    ),
    "bug_no_recurrent_term": Bug(
        "rnn_backward",
        "dh = dhs[:, t] + dh_next",
        "dh = dhs[:, t]",
        SEQ + TBPTT,
    ),
    "bug_rel_error_no_floor": Bug(
        "rel_error",
        "np.maximum(1e-8, np.abs(a) + np.abs(b))",
        "(np.abs(a) + np.abs(b))",
        REL,
    ),
    "bug_forward_difference": Bug(
        "numerical_gradient",
        "grad[i] = (f_plus - f_minus) / (2 * h)",
        "grad[i] = (f_plus - f(x)) / h",
        NUM,
    ),
    "bug_x_not_restored": Bug(
        "numerical_gradient",
        "        x[i] = old  # restore it before the next entry\n",
        "",
        NUM,
    ),
    "bug_tbptt_restarts_from_h0": Bug(
        "truncated_bptt_grads",
        "rnn_forward(x[:, chunk], h, params)",
        "rnn_forward(x[:, chunk], h0, params)",
        TBPTT,
    ),
    "bug_tbptt_no_truncation": Bug(  # the gradient is never stopped: full BPTT for every k
        "truncated_bptt_grads",
        "    for start in range(0, T, k):",
        "    k = T\n    for start in range(0, T, k):",
        TBPTT,
    ),
    "bug_tbptt_equal_chunk_weights": Bug(  # the mean of the chunks' means, not of all steps
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

DELEGATIONS = {  # name -> Delegation(answer cell, source, test cells that must score 0)
    "delegate_runtime": Delegation("rnn_backward", DELEGATE_RUNTIME, SEQ + TBPTT),
    "delegate_import": Delegation("rnn_step_backward", DELEGATE_IMPORT, STEP + SEQ + TBPTT),
    "delegate_numgrad": Delegation("numerical_gradient", DELEGATE_NUMGRAD, NUM),
    "delegate_autograd": Delegation("rnn_backward", DELEGATE_AUTOGRAD, SEQ + TBPTT),
}

RT = RoundTrip(
    A,
    AUTO,
    full_marks=17,
    written={"written_gradient_check": 2, "written_truncation": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_what_is_wrong(graded):
    # The gradient, and for dx the first wrong time step.
    err = graded.errors("bug_grads_overwritten", "test_rnn_backward_hidden")
    assert err and err[0].ename == "GradingError"
    assert 'grads["W_xh"] is wrong' in err[0].evalue and "largest error" in err[0].evalue
    err = graded.errors("bug_no_recurrent_term", "test_rnn_backward_hidden")
    assert "dx is wrong" in err[0].evalue and "first wrong time step is t=" in err[0].evalue
    # Layered: a wrong step backward is named as the part to fix first.
    err = graded.errors("bug_dW_hh_transposed", "test_rnn_backward_hidden")
    assert "rnn_step_backward, which is wrong; fix it first" in err[0].evalue
    assert 'grads["W_hh"]' in err[0].evalue
    err = graded.errors("bug_dW_hh_transposed", "test_rnn_step_backward_hidden")
    assert 'grads["W_hh"] is wrong' in err[0].evalue and "fix it first" not in err[0].evalue
    err = graded.errors("bug_no_recurrent_term", "test_truncated_bptt_grads_hidden")
    assert "rnn_backward, which is wrong; fix it first" in err[0].evalue
    # Truncated BPTT: the message says which k and whether it is the truncated case.
    err = graded.errors("bug_tbptt_no_truncation", "test_truncated_bptt_grads_hidden")
    assert "(truncated)" in err[0].evalue and "k=3, T=7" in err[0].evalue
    # Numerical gradient: a hint on what an error of the order of h means.
    err = graded.errors("bug_forward_difference", "test_numerical_gradient_hidden")
    assert "one-sided difference" in err[0].evalue
    # Delegation says what was called.
    err = graded.errors("delegate_autograd", "test_rnn_backward_hidden")
    assert "torch" in err[0].evalue and "backward" in err[0].evalue
    err = graded.errors("delegate_runtime", "test_rnn_backward_visible")
    assert "rnn_ref.numpy.rnn_backward" in err[0].evalue


def test_solution_runs_top_to_bottom_quickly(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb))


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    replayed = ("bug_dW_hh_transposed", "bug_tbptt_restarts_from_h0", "bug_x_not_restored")
    RT.grade_class(tmp_path, replayed)
    html = (tmp_path / "out" / "feedback" / "bug_dW_hh_transposed" / A / f"{A}.html").read_text()
    assert "fix it first" in html
    assert "check_backward" not in html and "seeds=(201" not in html
