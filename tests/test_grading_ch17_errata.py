"""Grading round trip for ch17_errata in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug (most of them the
seeds' own errors put back: a sigmoid candidate, seed 004's cell terms, seed 003's backward
lines and its GRU's reset gate, the un-squared "MSE", the flattened feature map) zeroes exactly
the test cells it should, delegation (rnn_ref's reference code, torch.nn.LSTMCell / GRUCell,
autograd) earns nothing, correct answers written differently keep full marks, a sys.exit or a
deleted test cell costs only what it should, the feedback names what is wrong, the solution
runs top to bottom in under 60 s, and the class-scale grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch17's own."""

from __future__ import annotations

import copy

import pytest
from grading_course import (
    Bug,
    Delegation,
    RoundTrip,
    assert_scores,
    code_cells,
    printed,
    stderr_outputs,
    with_source,
)

pytestmark = pytest.mark.slow

A = "ch17_errata"
AUTO = {  # autograded test cells and their points
    "test_lstm_step_visible": 1,
    "test_lstm_step_hidden": 3,
    "test_lstm_step_backward_visible": 2,
    "test_lstm_step_backward_hidden": 4,
    "test_gru_step_visible": 1,
    "test_gru_step_hidden": 3,
    "test_mse_visible": 1,
    "test_mse_hidden": 1,
    "test_crnn_logits_visible": 1,
    "test_crnn_logits_hidden": 3,
}
LSTM = ["test_lstm_step_visible", "test_lstm_step_hidden"]
BACK = ["test_lstm_step_backward_visible", "test_lstm_step_backward_hidden"]
GRU = ["test_gru_step_visible", "test_gru_step_hidden"]
MSE = ["test_mse_visible", "test_mse_hidden"]
CRNN = ["test_crnn_logits_visible", "test_crnn_logits_hidden"]

# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full
# marks (the parts are independent: the backward recomputes its own forward).
BUGS = {
    # Seed 004 §3.2: the candidate through a sigmoid.
    "bug_sigmoid_candidate": Bug(
        "lstm_step", "g = np.tanh(a[:, 2 * H : 3 * H])", "g = sigmoid(a[:, 2 * H : 3 * H])", LSTM
    ),
    # Seed 004 §3.2: the cell term W_ci c_{t-1} kept in the input gate.
    "bug_cell_term_kept": Bug(
        "lstm_step",
        "i = sigmoid(a[:, :H])",
        'i = sigmoid(a[:, :H] + (c_prev @ params["W_c"].T)[:, :H])',
        LSTM,
    ),
    # Seed 003 §1.5: no gradient of the cell from step t + 1.
    "bug_no_dc_from_next_step": Bug(
        "lstm_step_backward",
        "dc_total = dc + dh * o * (1 - tc**2)",
        "dc_total = dh * o * (1 - tc**2)",
        BACK,
    ),
    # Seed 003 §1.5: dc = dh * tanh(c), the output gate's factor.
    "bug_seed_dc": Bug(
        "lstm_step_backward", "dc_total = dc + dh * o * (1 - tc**2)", "dc_total = dh * tc", BACK
    ),
    # Seed 003 §1.5: df without the factor c_prev.
    "bug_df_without_c_prev": Bug(
        "lstm_step_backward",
        "da_f = dc_total * c_prev * f * (1 - f)",
        "da_f = dc_total * f * (1 - f)",
        BACK,
    ),
    # Seed 003 §1.5: the sigmoid's derivative for the tanh candidate.
    "bug_dg_sigmoid_derivative": Bug(
        "lstm_step_backward",
        "da_g = dc_total * i * (1 - g**2)",
        "da_g = dc_total * i * g * (1 - g)",
        BACK,
    ),
    # Seed 003 §1.4: the reset gate applied to h before the product, one bias per gate.
    "bug_seed_reset_before_product": Bug(
        "gru_step",
        "n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])",
        'n = np.tanh(gx[:, 2 * H :] + (r * h_prev) @ params["W_h"][2 * H :].T'
        ' + params["b_h"][2 * H :])',
        GRU,
    ),
    "bug_z_and_one_minus_z_swapped": Bug(
        "gru_step", "h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev", GRU
    ),
    # Seed 002 §5.2: the mean of the un-squared differences.
    "bug_seed_unsquared_mse": Bug(
        "mse",
        "np.mean((np.asarray(y) - np.asarray(y_pred)) ** 2)",
        "np.mean(np.asarray(y) - np.asarray(y_pred))",
        MSE,
    ),
    # Seed 003 §3.3 / §4.2: Flatten() before the LSTM.
    "bug_seed_flatten": Bug(
        "crnn_logits", "seq = f.permute(0, 3, 1, 2).flatten(2)", "seq = torch.flatten(f, 1)", CRNN
    ),
    "bug_height_as_time": Bug(
        "crnn_logits",
        "seq = f.permute(0, 3, 1, 2).flatten(2)",
        "seq = f.permute(0, 2, 1, 3).flatten(2)",
        CRNN,
    ),
    # Shapes right, features in the order (row, channel): only the hidden test can tell.
    "bug_features_row_major": Bug(
        "crnn_logits",
        "seq = f.permute(0, 3, 1, 2).flatten(2)",
        "seq = f.permute(0, 3, 2, 1).flatten(2)",
        ["test_crnn_logits_hidden"],
    ),
    "bug_first_column": Bug(
        "crnn_logits", "head(hs[:, -1])", "head(hs[:, 0])", ["test_crnn_logits_hidden"]
    ),
}

DELEGATE_LSTM_REFERENCE = """from rnn_ref.numpy import lstm_step_forward as _reference

def lstm_step(x, state, params):
    std = {k: params[k] for k in ("W_x", "W_h", "b")}
    return _reference(x, state, std)[0]"""

DELEGATE_LSTM_CELL = """def lstm_step(x, state, params):
    h_prev, c_prev = state
    H = h_prev.shape[1]
    cell = torch.nn.LSTMCell(x.shape[1], H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.as_tensor(params["W_x"]))
        cell.weight_hh.copy_(torch.as_tensor(params["W_h"]))
        cell.bias_ih.copy_(torch.as_tensor(params["b"]))
        cell.bias_hh.zero_()
        h, c = cell(torch.as_tensor(x), (torch.as_tensor(h_prev), torch.as_tensor(c_prev)))
    return h.numpy(), c.numpy()"""

# A correct backward by torch autograd: it must earn nothing.
DELEGATE_AUTOGRAD = """def lstm_step_backward(dstate, x, state, params):
    dh, dc = (torch.as_tensor(v) for v in dstate)
    xt = torch.tensor(x, requires_grad=True)
    h_prev, c_prev = (torch.tensor(v, requires_grad=True) for v in state)
    p = {k: torch.tensor(params[k], requires_grad=True) for k in ("W_x", "W_h", "b")}
    H = h_prev.shape[1]
    a = xt @ p["W_x"].T + h_prev @ p["W_h"].T + p["b"]
    i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])
    g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
    c = f * c_prev + i * g
    h = o * torch.tanh(c)
    loss = (dh * h).sum() + (dc * c).sum()
    d = torch.autograd.grad(loss, [xt, h_prev, c_prev, *p.values()])
    grads = {k: v.numpy() for k, v in zip(p, d[3:])}
    return d[0].numpy(), (d[1].numpy(), d[2].numpy()), grads"""

DELEGATE_GRU_REFERENCE = """def gru_step(x, h_prev, params):
    import rnn_ref.numpy
    return rnn_ref.numpy.gru_step_forward(x, h_prev, params)[0]"""

DELEGATE_GRU_CELL = """def gru_step(x, h_prev, params):
    cell = torch.nn.GRUCell(x.shape[1], h_prev.shape[1], dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.as_tensor(params["W_x"]))
        cell.weight_hh.copy_(torch.as_tensor(params["W_h"]))
        cell.bias_ih.copy_(torch.as_tensor(params["b_x"]))
        cell.bias_hh.copy_(torch.as_tensor(params["b_h"]))
        return cell(torch.as_tensor(x), torch.as_tensor(h_prev)).numpy()"""

# The LSTM run by the course's NumPy reference on the right sequence: still rnn_ref.
DELEGATE_CRNN_REFERENCE = """def crnn_logits(images, cnn, lstm, head):
    import rnn_ref.convert
    import rnn_ref.numpy
    f = cnn(images)
    seq = f.permute(0, 3, 1, 2).flatten(2).detach().double().numpy()
    params = rnn_ref.convert.from_torch(lstm)
    N, H = seq.shape[0], lstm.hidden_size
    hs, _ = rnn_ref.numpy.lstm_forward(seq, (np.zeros((N, H)), np.zeros((N, H))), params)
    last = torch.as_tensor(hs[:, -1], dtype=head.weight.dtype)
    return head(last)"""

# who -> Delegation(cell replaced, source, cells that must score 0)
DELEGATES = {
    "delegate_lstm_reference": Delegation("lstm_step", DELEGATE_LSTM_REFERENCE, LSTM),
    "delegate_lstm_cell": Delegation("lstm_step", DELEGATE_LSTM_CELL, LSTM),
    "delegate_autograd": Delegation("lstm_step_backward", DELEGATE_AUTOGRAD, BACK),
    "delegate_gru_reference": Delegation("gru_step", DELEGATE_GRU_REFERENCE, GRU),
    "delegate_gru_cell": Delegation("gru_step", DELEGATE_GRU_CELL, GRU),
    "delegate_crnn_reference": Delegation("crnn_logits", DELEGATE_CRNN_REFERENCE, CRNN),
}

# Correct answers written nothing like the solution.
ALT_LSTM = """def lstm_step(x, state, params):
    h_prev, c_prev = state
    z = np.hstack([x, h_prev]) @ np.hstack([params["W_x"], params["W_h"]]).T + params["b"]
    a_i, a_f, a_g, a_o = np.split(z, 4, axis=1)
    logistic = lambda v: 1.0 / (1.0 + np.exp(-v))
    c = logistic(a_f) * c_prev + logistic(a_i) * np.tanh(a_g)
    return logistic(a_o) * np.tanh(c), c"""

ALT_BACKWARD = """def lstm_step_backward(dstate, x, state, params):
    dh, dc = dstate
    h_prev, c_prev = state
    a_i, a_f, a_g, a_o = np.split(
        x @ params["W_x"].T + h_prev @ params["W_h"].T + params["b"], 4, axis=1
    )
    i, f, o = (1.0 / (1.0 + np.exp(-v)) for v in (a_i, a_f, a_o))
    g = np.tanh(a_g)
    c = f * c_prev + i * g
    dcell = dc + dh * o / np.cosh(c) ** 2
    blocks = [dcell * g * i * (1 - i), dcell * c_prev * f * (1 - f),
              dcell * i / np.cosh(a_g) ** 2, dh * np.tanh(c) * o * (1 - o)]
    da = np.hstack(blocks)
    grads = {"W_x": np.einsum("nk,nd->kd", da, x), "W_h": np.einsum("nk,nh->kh", da, h_prev),
             "b": np.einsum("nk->k", da)}
    return np.einsum("nk,kd->nd", da, params["W_x"]), (da @ params["W_h"], f * dcell), grads"""

ALT_GRU = """def gru_step(x, h_prev, params):
    W_ir, W_iz, W_in = np.split(params["W_x"], 3)
    W_hr, W_hz, W_hn = np.split(params["W_h"], 3)
    b_ir, b_iz, b_in = np.split(params["b_x"], 3)
    b_hr, b_hz, b_hn = np.split(params["b_h"], 3)
    r = 1 / (1 + np.exp(-(x @ W_ir.T + b_ir + h_prev @ W_hr.T + b_hr)))
    z = 1 / (1 + np.exp(-(x @ W_iz.T + b_iz + h_prev @ W_hz.T + b_hz)))
    n = np.tanh(x @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn))
    return n + z * (h_prev - n)"""

ALT_MSE = """def mse(y, y_pred):
    return np.square(np.subtract(y, y_pred)).sum() / np.size(y)"""

ALT_CRNN = """def crnn_logits(images, cnn, lstm, head):
    f = cnn(images)
    N, C, Hf, W = f.shape
    seq = torch.stack([f[:, :, :, w].reshape(N, C * Hf) for w in range(W)], dim=1)
    _, (h_n, _) = lstm(seq)
    return head(h_n[-1])"""


def _alternative(sol, _released):
    for gid, src in (
        ("lstm_step", ALT_LSTM),
        ("lstm_step_backward", ALT_BACKWARD),
        ("gru_step", ALT_GRU),
        ("mse", ALT_MSE),
        ("crnn_logits", ALT_CRNN),
    ):
        sol = with_source(sol, gid, src)
    return sol


def _exits_in_mse(sol, _released):
    return with_source(sol, "mse", "def mse(y, y_pred):\n    import sys\n    sys.exit(3)")


def _deletes_hidden_test(sol, _released):
    """The hidden GRU test cell deleted: nbgrader puts it back from the gradebook."""
    nb = copy.deepcopy(sol)
    nb.cells = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_gru_step_hidden"
    ]
    return nb


RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_claims": 3},
    bugs=BUGS,
    delegations=DELEGATES,
    others={
        "alternative_answers": _alternative,
        "hostile_sys_exit_in_mse": _exits_in_mse,
        "hostile_deleted_hidden_test": _deletes_hidden_test,
    },
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_", "** 2))", "permute(0, 3, 1, 2)"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_correct_answers_written_differently_keep_full_marks(graded):
    assert_scores(graded.scores["alternative_answers"], AUTO, [])


def test_hostile_submissions_cost_only_their_own_cells(graded):
    assert_scores(graded.scores["hostile_sys_exit_in_mse"], AUTO, MSE)
    # The deleted cell comes back from the gradebook and grades the (correct) answer.
    assert_scores(graded.scores["hostile_deleted_hidden_test"], AUTO, [])


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_df_without_c_prev", "test_lstm_step_backward_hidden")
    assert err.ename == "GradingError"
    assert "compared with finite differences" in err.evalue and "dW_x" in err.evalue
    assert "case: N=" in err.evalue
    err = graded.error("bug_no_dc_from_next_step", "test_lstm_step_backward_visible")
    assert "dc_prev is wrong" in err.evalue
    err = graded.error("bug_sigmoid_candidate", "test_lstm_step_hidden")
    assert "c is wrong" in err.evalue and "largest error" in err.evalue
    err = graded.error("bug_seed_flatten", "test_crnn_logits_visible")
    assert "crnn_logits raised RuntimeError" in err.evalue
    err = graded.error("bug_features_row_major", "test_crnn_logits_hidden")
    assert "logits is wrong" in err.evalue and "image 12x16" in err.evalue
    err = graded.error("hostile_sys_exit_in_mse", "test_mse_visible")
    assert "SystemExit" in err.evalue
    for who, gid, name in (
        ("delegate_lstm_reference", "test_lstm_step_hidden", "rnn_ref.numpy.lstm_step_forward"),
        ("delegate_lstm_cell", "test_lstm_step_visible", "torch.nn.LSTMCell.forward"),
        ("delegate_autograd", "test_lstm_step_backward_hidden", "torch.autograd.grad"),
        ("delegate_gru_cell", "test_gru_step_hidden", "torch.nn.GRUCell.forward"),
        ("delegate_crnn_reference", "test_crnn_logits_hidden", "rnn_ref."),
    ):
        err = graded.error(who, gid)
        assert err.ename == "DelegationError" and name in err.evalue, (who, err.evalue)


def test_the_seeds_transcriptions_are_kept_in_the_release():
    """Each part shows the seed's code, which the learner fixes: it must stay in the release
    (locked) and still be the seed's error."""
    text = "".join(c.source for c in code_cells(RT.release()))
    for line in (
        "g = sigmoid(a[:, 2 * H : 3 * H])",
        "dc = dh * np.tanh(c)",
        "n = np.tanh((r * h_prev) @ W_hn.T + x @ W_xn.T + b_n)",
        "return np.mean(y - y_pred)",
        "seq = torch.flatten(f, 1)",
    ):
        assert line in text, line


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    assert printed(nb).count("Visible tests passed.") == 5


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade`: sandboxed kernels only record, the grader replays the checks (the
    finite differences and the CRNN's expected logits computed in its own process)."""
    replayed = ("bug_df_without_c_prev", "bug_features_row_major", "bug_seed_reset_before_product")
    rows = RT.grade_class(
        tmp_path, replayed, extra={"alternative": _alternative(RT.solution(), None)}
    )
    RT.assert_class_row(rows["alternative"], [])
    assert rows["solution"]["written_claims"] == ""  # graded by hand
