"""Grading round trip for ch05_lstm in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs (gate order, candidate,
cell and backward mistakes, the peephole's output gate) zero exactly the test cells they should,
and delegation (the reference, torch.nn.LSTM, torch autograd) earns nothing. Then the class-scale
grader (`rnn-course grade`) on the solution, the release and two bugs, and the solution's run
time.

The shared tests come from grading_course.RoundTrip; this file holds what is ch05's own."""

from __future__ import annotations

import pytest
from grading_course import Bug, Delegation, RoundTrip, cell, code_cells

pytestmark = pytest.mark.slow

A = "ch05_lstm"
AUTO = {  # autograded test cells and their points
    "test_lstm_step_forward_visible": 1,
    "test_lstm_step_forward_hidden": 2,
    "test_lstm_step_backward_visible": 1,
    "test_lstm_step_backward_hidden": 3,
    "test_lstm_forward_visible": 1,
    "test_lstm_forward_hidden": 2,
    "test_lstm_backward_visible": 1,
    "test_lstm_backward_hidden": 3,
    "test_lstm_peephole_step_forward_visible": 1,
    "test_lstm_peephole_step_forward_hidden": 2,
    "test_lstm_peephole_step_backward_visible": 1,
    "test_lstm_peephole_step_backward_hidden": 2,
}
STEP_F = ["test_lstm_step_forward_visible", "test_lstm_step_forward_hidden"]
STEP_B = ["test_lstm_step_backward_visible", "test_lstm_step_backward_hidden"]
SEQ_F = ["test_lstm_forward_visible", "test_lstm_forward_hidden"]
SEQ_B = ["test_lstm_backward_visible", "test_lstm_backward_hidden"]
PEEP_F = ["test_lstm_peephole_step_forward_visible", "test_lstm_peephole_step_forward_hidden"]
PEEP_B = ["test_lstm_peephole_step_backward_visible", "test_lstm_peephole_step_backward_hidden"]
PEEP = PEEP_F + PEEP_B
HIDDEN_SEQ = ["test_lstm_forward_hidden", "test_lstm_backward_hidden"]


# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full
# marks.
# The sequence cells use the student's step functions, so a step bug zeroes them too; the
# visible sequence cases have zero weights (all gates 1/2), where the gate order cannot show.
BUGS = {
    "bug_gate_order_igfo": Bug(
        "lstm_step_forward",
        "f = sigmoid(a[:, H : 2 * H])\n    g = np.tanh(a[:, 2 * H : 3 * H])",
        "g = np.tanh(a[:, H : 2 * H])\n    f = sigmoid(a[:, 2 * H : 3 * H])",
        STEP_F + STEP_B + HIDDEN_SEQ,
    ),
    "bug_sigmoid_candidate": Bug(
        "lstm_step_forward",
        "g = np.tanh(a[:, 2 * H : 3 * H])",
        "g = sigmoid(a[:, 2 * H : 3 * H])",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    "bug_h_without_tanh": Bug(
        "lstm_step_forward",
        "h = o * tc",
        "h = o * c",
        STEP_F + STEP_B + SEQ_F + SEQ_B,
    ),
    "bug_no_dc_through_h": Bug(
        "lstm_step_backward",
        "dc = dc + dh * o * (1 - tc**2)",
        "dc = dc + 0.0",
        STEP_B + SEQ_B,
    ),
    "bug_dc_prev_without_f": Bug(
        "lstm_step_backward",
        "dc_prev = dc * f",
        "dc_prev = dc",
        STEP_B + SEQ_B,
    ),
    "bug_da_f_without_c_prev": Bug(
        "lstm_step_backward",
        "da_f = dc * c_prev * f * (1 - f)",
        "da_f = dc * f * (1 - f)",
        STEP_B + SEQ_B,
    ),
    "bug_ignores_c0": Bug(
        "lstm_forward",
        "h, c = h0, c0",
        "h, c = h0, np.zeros_like(c0)",
        SEQ_F + SEQ_B,
    ),
    "bug_no_dc_carry": Bug(
        "lstm_backward",
        "dstate = (dhs[:, t] + dh_next, dc_next)",
        "dstate = (dhs[:, t] + dh_next, np.zeros((N, H)))",
        SEQ_B,
    ),
    "bug_peephole_o_sees_c_prev": Bug(
        "lstm_peephole_step_forward",
        'sigmoid(a[:, 3 * H :] + params["w_co"] * c)',
        'sigmoid(a[:, 3 * H :] + params["w_co"] * c_prev)',
        PEEP,
    ),
    "bug_peephole_dc_prev_no_peepholes": Bug(
        "lstm_peephole_step_backward",
        'dc_prev = dc * f + da_i * params["w_ci"] + da_f * params["w_cf"]',
        "dc_prev = dc * f",
        PEEP_B,
    ),
}

DELEGATE_RUNTIME = """def lstm_forward(x, state, params):
    import rnn_ref.numpy
    return rnn_ref.numpy.lstm_forward(x, state, params)"""

DELEGATE_IMPORT = """from rnn_ref.numpy import lstm_step_forward as _reference_step

def lstm_step_forward(x, state, params):
    return _reference_step(x, state, params)"""

DELEGATE_TORCH = """import torch

def lstm_forward(x, state, params):
    h0, c0 = state
    m = torch.nn.LSTM(x.shape[2], h0.shape[1], batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.as_tensor(params["W_x"]))
        m.weight_hh_l0.copy_(torch.as_tensor(params["W_h"]))
        m.bias_ih_l0.copy_(torch.as_tensor(params["b"]))
        m.bias_hh_l0.zero_()
        hs, _ = m(torch.as_tensor(x), (torch.as_tensor(h0)[None], torch.as_tensor(c0)[None]))
    return hs.numpy(), None"""

# A correct backward (see test_autograd_delegate_is_correct), computed by torch autograd from
# the solution's cache: it must earn nothing.
DELEGATE_AUTOGRAD = """import torch

def lstm_backward(dhs, cache):
    x = torch.tensor(np.stack([step[0] for step in cache], axis=1), requires_grad=True)
    h0 = torch.tensor(cache[0][1], requires_grad=True)
    c0 = torch.tensor(cache[0][2], requires_grad=True)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in cache[0][-1].items()}
    H = h0.shape[1]
    h, c, hs = h0, c0, []
    for t in range(x.shape[1]):
        a = x[:, t] @ p["W_x"].T + h @ p["W_h"].T + p["b"]
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])
        g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    d = torch.autograd.grad(torch.stack(hs, dim=1), [x, h0, c0, *p.values()], torch.as_tensor(dhs))
    grads = {k: v.numpy() for k, v in zip(p, d[3:])}
    return d[0].numpy(), (d[1].numpy(), d[2].numpy()), grads"""

# who -> Delegation(cell replaced, source, cells that must score 0)
DELEGATES = {
    "delegate_runtime": Delegation("lstm_forward", DELEGATE_RUNTIME, SEQ_F + SEQ_B),
    "delegate_import": Delegation(
        "lstm_step_forward", DELEGATE_IMPORT, STEP_F + STEP_B + SEQ_F + SEQ_B
    ),
    "delegate_torch_lstm": Delegation("lstm_forward", DELEGATE_TORCH, SEQ_F + SEQ_B),
    "delegate_autograd": Delegation("lstm_backward", DELEGATE_AUTOGRAD, SEQ_B),
}

# The constant-error-carousel answer is graded by hand.
RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_constant_error_carousel": 3},
    bugs=BUGS,
    delegations=DELEGATES,
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_what_is_wrong(graded):
    # The gate whose rows of dW_x are wrong.
    (err,) = graded.errors("bug_da_f_without_c_prev", "test_lstm_step_backward_hidden")
    assert err.ename == "GradingError"
    assert "dW_x is wrong in the rows of gate f " in err.evalue, err.evalue
    assert "largest error" in err.evalue
    # The forward first, when the step forward is wrong.
    (err,) = graded.errors("bug_h_without_tanh", "test_lstm_step_backward_hidden")
    assert "fix the forward first" in err.evalue and "h is wrong" in err.evalue, err.evalue
    # The step backward first, from the sequence backward's test.
    (err,) = graded.errors("bug_dc_prev_without_f", "test_lstm_backward_hidden")
    assert "lstm_step_backward (Part 2), whose check fails" in err.evalue
    assert "dc_prev is wrong" in err.evalue
    # The time steps of dx, when dc is not carried between steps.
    (err,) = graded.errors("bug_no_dc_carry", "test_lstm_backward_hidden")
    assert "dx is wrong" in err.evalue and "the last wrong time step is t=" in err.evalue
    (err,) = graded.errors("delegate_torch_lstm", "test_lstm_forward_hidden")
    assert "torch.nn.LSTM.forward" in err.evalue
    (err,) = graded.errors("delegate_autograd", "test_lstm_backward_hidden")
    assert "torch.autograd.grad" in err.evalue


def test_autograd_delegate_is_correct():
    """Outside grading the autograd delegate computes the right gradients, so its 0 above is
    the tripwire's doing, not a bug in the delegate."""
    import numpy as np

    from rnn_ref.numpy import lstm_backward, lstm_forward

    ns = {"np": np}
    exec(DELEGATE_AUTOGRAD, ns)  # noqa: S102 (our own test code)
    ns_sol = {"np": np}
    for gid in ("given_sigmoid", "lstm_step_forward", "lstm_forward"):
        exec(cell(RT.solution(), gid).source, ns_sol)  # noqa: S102
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 3, 4, 5
    params = {
        "W_x": rng.normal(size=(4 * H, D)),
        "W_h": rng.normal(size=(4 * H, H)),
        "b": rng.normal(size=4 * H),
    }
    x, state = rng.normal(size=(N, T, D)), (rng.normal(size=(N, H)), rng.normal(size=(N, H)))
    dhs = rng.normal(size=(N, T, H))
    _, cache = ns_sol["lstm_forward"](x, state, params)
    dx, (dh0, dc0), grads = ns["lstm_backward"](dhs, cache)
    e_dx, (e_dh0, e_dc0), e_grads = lstm_backward(dhs, lstm_forward(x, state, params)[1])
    np.testing.assert_allclose(dx, e_dx, atol=1e-12)
    np.testing.assert_allclose(dh0, e_dh0, atol=1e-12)
    np.testing.assert_allclose(dc0, e_dc0, atol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], e_grads[k], atol=1e-12)


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record; verdicts replayed by the grader)
    gives the solution full marks, the release 0, and a planted bug exactly its loss."""
    replayed = ("bug_no_dc_carry", "bug_da_f_without_c_prev")
    rows = RT.grade_class(tmp_path, replayed)
    assert rows["solution"]["written_constant_error_carousel"] == ""  # graded by hand
    html = (tmp_path / "out" / "feedback" / "bug_da_f_without_c_prev" / A / f"{A}.html").read_text()
    assert "dW_x is wrong in the rows of gate f" in html
    assert "check_step_backward" not in html and "BEGIN HIDDEN" not in html


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    passed = [o for o in outputs if "Visible tests passed." in o.get("text", "")]
    assert len(passed) == 6
