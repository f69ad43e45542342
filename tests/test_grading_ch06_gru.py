"""Grading round trip for ch06_gru in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (the layered checks: a backward is judged only on a correct forward),
delegation (the reference, torch.nn.GRU, autograd) earns nothing, the feedback names the wrong
gradient and gate, the solution runs top to bottom in under 60 s, and the class-scale grader
(which replays the recorded results in its own process) agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch06's own."""

from __future__ import annotations

import pytest
from grading_course import Bug, Delegation, RoundTrip, code_cells, stderr_outputs, stdout_text

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

# name -> Bug(cell, old, new, the test cells that must score 0; every other one keeps full marks)
BUGS = {
    "bug_z_swapped": Bug(
        "gru_step_forward",
        "h = (1 - z) * n + z * h_prev",
        "h = z * n + (1 - z) * h_prev",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    # n = tanh(W_in x + b_in + r * (W_hn h) + b_hn): b_hn escapes the reset gate.
    "bug_b_hn_outside_reset": Bug(
        "gru_step_forward",
        N_LINE,
        'n = np.tanh(gx[:, 2 * H :] + r * (hn - params["b_h"][2 * H :]) + params["b_h"][2 * H :])',
        STEP_F + HIDDEN_AFTER_STEP,
    ),
    # Cho et al.'s cell where PyTorch's is asked for.
    "bug_reset_before_product": Bug(
        "gru_step_forward",
        N_LINE,
        'n = np.tanh(gx[:, 2 * H :] + (r * h_prev) @ params["W_h"][2 * H :].T'
        ' + params["b_h"][2 * H :])',
        STEP_F + HIDDEN_AFTER_STEP,
    ),
    "bug_gate_order_z_r_n": Bug(
        "gru_step_forward",
        "r = sigmoid(gx[:, :H] + gh[:, :H])\n    z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])",
        "z = sigmoid(gx[:, :H] + gh[:, :H])\n    r = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    "bug_no_z_path_into_dh_prev": Bug(
        "gru_step_backward",
        'dh_prev = dh * z + dgh @ params["W_h"]',
        'dh_prev = dgh @ params["W_h"]',
        STEP_B + SEQ_B,
    ),
    # In the visible sequence case W_hn h + b_hn = 0, so dr = 0 there: only hidden tests see it.
    "bug_no_r_gradient": Bug(
        "gru_step_backward",
        "da_r = da_n * hn * r * (1 - r)",
        "da_r = np.zeros_like(da_n)",
        STEP_B + ["test_gru_backward_hidden"],
    ),
    "bug_no_dh_from_next_step": Bug(
        "gru_backward",
        "gru_step_backward(dhs[:, t] + dh_next, cache[t])",
        "gru_step_backward(dhs[:, t], cache[t])",
        SEQ_B,
    ),
    "bug_ignores_h0": Bug(
        "gru_forward",
        "h, caches = h0, []",
        "h, caches = np.zeros_like(h0), []",
        SEQ_F + SEQ_B,
    ),
    "bug_before_is_after": Bug(
        "gru_step_forward_before",
        "n = np.tanh(gx[:, 2 * H :] + rh @ W_h[2 * H :].T + b_h[2 * H :])",
        "n = np.tanh(gx[:, 2 * H :] + r * (h_prev @ W_h[2 * H :].T + b_h[2 * H :]))",
        BEFORE_F + BEFORE_B,
    ),
    "bug_before_no_reset_path_into_dh_prev": Bug(
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

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": Delegation("gru_forward", DELEGATE_RUNTIME, SEQ_F + SEQ_B),
    "delegate_import": Delegation(
        "gru_step_forward", DELEGATE_IMPORT, STEP_F + STEP_B + SEQ_F + SEQ_B
    ),
    "delegate_import_before": Delegation(
        "gru_step_forward_before",
        DELEGATE_IMPORT_BEFORE,
        BEFORE_F + BEFORE_B,
    ),
    "delegate_torch_gru": Delegation("gru_forward", DELEGATE_TORCH, SEQ_F + SEQ_B),
    "delegate_autograd": Delegation("gru_backward", DELEGATE_AUTOGRAD, SEQ_B),
}

RT = RoundTrip(
    A,
    AUTO,
    full_marks=22,
    written={"written_reset_placement": 3},
    bugs=BUGS,
    delegations=DELEGATIONS,
    release_listed=True,
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_the_gradient_and_the_gate(graded):
    (err,) = graded.errors("bug_no_r_gradient", "test_gru_step_backward_hidden")
    assert err.ename == "GradingError"
    assert "dW_h is wrong in the rows of gate r;" in err.evalue
    assert "dW_x is wrong in the rows of gate r;" in err.evalue
    assert "largest error" in err.evalue and "gate z" not in err.evalue
    (err,) = graded.errors("bug_no_z_path_into_dh_prev", "test_gru_step_backward_hidden")
    assert "gru_step_backward: dh_prev is wrong (" in err.evalue  # and nothing else
    (err,) = graded.errors("bug_no_dh_from_next_step", "test_gru_backward_hidden")
    assert "first wrong time step is t=0" in err.evalue
    assert "right at the last time step" in err.evalue


def test_a_backward_on_a_wrong_forward_says_fix_the_forward_first(graded):
    (err,) = graded.errors("bug_gate_order_z_r_n", "test_gru_step_backward_hidden")
    assert "gru_step_forward is wrong; fix the forward first" in err.evalue
    (err,) = graded.errors("bug_ignores_h0", "test_gru_backward_hidden")
    assert "gru_forward is wrong; fix the forward first" in err.evalue
    assert "hs is wrong" in err.evalue


def test_delegation_feedback_names_the_call(graded):
    (err,) = graded.errors("delegate_torch_gru", "test_gru_forward_hidden")
    assert "torch.nn.GRU.forward" in err.evalue
    (err,) = graded.errors("delegate_autograd", "test_gru_backward_hidden")
    assert err.ename == "DelegationError" and "torch" in err.evalue
    (err,) = graded.errors("delegate_import", "test_gru_step_forward_hidden")
    assert "rnn_ref.numpy.gru_step_forward" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    # The numerical check of the "Try it" cell agrees with the solution's backward.
    (try_it,) = [c for c in code_cells(nb) if "numerical_gradient" in c.source]
    rels = [float(line.split()[-1]) for line in stdout_text(try_it).splitlines()]
    assert len(rels) == 6 and max(rels) < 1e-7


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    replayed = ("bug_gate_order_z_r_n", "bug_no_dh_from_next_step")
    RT.grade_class(tmp_path, replayed)
    html = (tmp_path / "out" / "feedback" / "bug_gate_order_z_r_n" / A / f"{A}.html").read_text()
    assert "fix the forward first" in html
    assert "check_step_backward" not in html and "seeds=(201" not in html
