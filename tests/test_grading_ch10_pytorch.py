"""Grading round trip for ch10_pytorch in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs (weights transposed, bias
counted twice, padding in the final state, a loss averaged over the padding or cut off the graph,
a result left as a tensor, no eval mode) zero exactly the test cells they should, and delegation
to rnn_ref (rnn_ref.convert, rnn_ref.torch's modules and helpers) earns nothing although
torch.nn is allowed. Then the class-scale grader (`rnn-course grade`, whose sandbox must import
torch for this assignment) on the solution, the release, two bugs and a delegation; and the
solution's run time.

The shared tests come from grading_course.RoundTrip; this file holds what is ch10's own."""

from __future__ import annotations

import pytest
from grading_course import (
    ROOT,
    Bug,
    Delegation,
    RoundTrip,
    cell,
    code_cells,
    stderr_outputs,
    with_source,
)

pytestmark = pytest.mark.slow

A = "ch10_pytorch"
AUTO = {  # autograded test cells and their points
    "test_load_lstm_weights_visible": 1,
    "test_load_lstm_weights_hidden": 2,
    "test_final_states_visible": 1,
    "test_final_states_hidden": 2,
    "test_masked_loss_visible": 1,
    "test_masked_loss_hidden": 2,
    "test_predict_visible": 1,
    "test_predict_hidden": 2,
}
LOAD = ["test_load_lstm_weights_visible", "test_load_lstm_weights_hidden"]
FINAL = ["test_final_states_visible", "test_final_states_hidden"]
LOSS = ["test_masked_loss_visible", "test_masked_loss_hidden"]
PRED = ["test_predict_visible", "test_predict_hidden"]


LOSS_LINE = "return (nll * mask).sum() / mask.sum()"
# name -> Bug(cell, old, new, test cells that must score 0); every other test cell keeps full marks
BUGS = {
    # Keras' (in, out) habit, then a reshape to make the shapes fit.
    "bug_weights_transposed": Bug(
        "load_lstm_weights",
        'module.weight_ih_l0.copy_(t(params["W_x"]))',
        'module.weight_ih_l0.copy_(t(params["W_x"]).T.reshape(ref.shape))',
        LOAD,
    ),
    "bug_bias_counted_twice": Bug(
        "load_lstm_weights",
        "module.bias_hh_l0.zero_()",
        'module.bias_hh_l0.copy_(t(params["b"]))',
        LOAD,
    ),
    "bug_padding_in_h_n": Bug(
        "final_states",
        "_, h_n = module(packed)",
        "_, h_n = module(padded)",
        FINAL,
    ),
    "bug_loss_over_padding": Bug("masked_loss", LOSS_LINE, "return nll.mean()", LOSS),
    # Cross-entropy by hand, log(sum(exp(logits))) without the max shift: exact for small
    # logits, so only the hidden case with large logits (exp overflows) sees it.
    "bug_loss_naive_log_sum_exp": Bug(
        "masked_loss",
        """    nll = torch.nn.functional.cross_entropy(
        logits.reshape(N * T, V), targets.reshape(N * T), reduction="none"
    ).reshape(N, T)""",
        """    logp = logits - torch.log(torch.exp(logits).sum(dim=2, keepdim=True))
    nll = -logp.gather(2, targets[:, :, None])[:, :, 0]""",
        ["test_masked_loss_hidden"],
    ),
    "bug_loss_detached": Bug(
        "masked_loss",
        LOSS_LINE,
        "return ((nll * mask).sum() / mask.sum()).detach()",
        LOSS,
    ),
    "bug_left_on_device": Bug("predict", "return y.cpu().numpy()", "return y", PRED),
    "bug_no_eval": Bug("predict", "    model.eval()\n", "", PRED),
}

DELEGATE_CONVERT_RUNTIME = """def load_lstm_weights(params, module):
    import rnn_ref.convert
    return rnn_ref.convert.to_torch(params, module)"""

DELEGATE_CONVERT_IMPORT = """from rnn_ref.convert import to_torch as _to_torch

def load_lstm_weights(params, module):
    return _to_torch(params, module)"""

# Each sequence alone through rnn_ref.torch's module of the same kind (forward is forbidden).
DELEGATE_TORCH_MODULE = """def final_states(module, padded, lengths):
    import rnn_ref.torch
    kind = getattr(rnn_ref.torch, type(module).__name__)
    ref = kind(module.input_size, module.hidden_size, dtype=padded.dtype)
    ref.load_state_dict(module.state_dict())
    rows = []
    for n, L in enumerate(lengths.tolist()):
        _, h_n = ref(padded[n : n + 1, :L])
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n
        rows.append(h_n[-1, 0])
    return torch.stack(rows)"""

DELEGATE_RUN_PACKED = """from rnn_ref.torch import run_packed as _run_packed

def final_states(module, padded, lengths):
    _, h_n = _run_packed(module, padded, lengths)
    return (h_n[0] if isinstance(h_n, tuple) else h_n)[-1]"""

DELEGATE_MASKED_MEAN = """def masked_loss(logits, targets, lengths):
    import rnn_ref.torch
    N, T, V = logits.shape
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(N * T, V), targets.reshape(N * T), reduction="none"
    ).reshape(N, T)
    return rnn_ref.torch.masked_mean(nll, rnn_ref.torch.length_mask(lengths, T))"""

# who -> Delegation(cell replaced, source, cells that must score 0)
DELEGATES = {
    "delegate_convert_runtime": Delegation("load_lstm_weights", DELEGATE_CONVERT_RUNTIME, LOAD),
    "delegate_convert_import": Delegation("load_lstm_weights", DELEGATE_CONVERT_IMPORT, LOAD),
    "delegate_torch_module": Delegation("final_states", DELEGATE_TORCH_MODULE, FINAL),
    "delegate_run_packed": Delegation("final_states", DELEGATE_RUN_PACKED, FINAL),
    "delegate_masked_mean": Delegation("masked_loss", DELEGATE_MASKED_MEAN, LOSS),
}

# The Keras-to-PyTorch weights answer is graded by hand.
RT = RoundTrip(
    A, AUTO, full_marks=12, written={"written_keras_to_torch": 3}, bugs=BUGS, delegations=DELEGATES
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_release_has_no_solution_or_hidden_tests():
    text = (ROOT / "exercises" / A / f"{A}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN", "check_", "bias_hh_l0.zero_()"):
        assert marker not in text, marker
    assert "raise NotImplementedError()" in text


def test_feedback_names_what_is_wrong(graded):
    (err,) = graded.errors("bug_loss_naive_log_sum_exp", "test_masked_loss_hidden")
    assert "NaN or infinity" in err.evalue and "large logits" in err.evalue, err.evalue
    (err,) = graded.errors("bug_bias_counted_twice", "test_load_lstm_weights_hidden")
    assert err.ename == "GradingError"
    assert "bias_ih_l0 + bias_hh_l0 is not b" in err.evalue, err.evalue
    (err,) = graded.errors("bug_weights_transposed", "test_load_lstm_weights_hidden")
    assert "weight_ih_l0 does not hold params['W_x']" in err.evalue, err.evalue
    (err,) = graded.errors("bug_padding_in_h_n", "test_final_states_hidden")
    assert "the final hidden states is wrong" in err.evalue and "lengths [" in err.evalue
    (err,) = graded.errors("bug_loss_detached", "test_masked_loss_hidden")
    assert "not connected to the logits" in err.evalue, err.evalue
    (err,) = graded.errors("bug_left_on_device", "test_predict_hidden")
    assert "should return a NumPy array on the CPU, got a Tensor" in err.evalue, err.evalue
    (err,) = graded.errors("bug_no_eval", "test_predict_visible")
    assert "model.eval()" in err.evalue, err.evalue
    (err,) = graded.errors("delegate_convert_import", "test_load_lstm_weights_hidden")
    assert "rnn_ref.convert.to_torch" in err.evalue, err.evalue
    (err,) = graded.errors("delegate_run_packed", "test_final_states_hidden")
    assert "rnn_ref.torch.run_packed" in err.evalue, err.evalue


def _solution_namespace() -> dict:
    import numpy as np
    import torch

    ns = {"np": np, "torch": torch}
    for gid in ("load_lstm_weights", "final_states", "masked_loss", "predict"):
        exec(cell(RT.solution(), gid).source, ns)  # noqa: S102 (our own notebook)
    return ns


def test_delegates_are_correct_outside_grading():
    """Outside grading the delegates compute the right thing, so their 0 above is the
    tripwires' doing, not a bug in the delegates."""
    import numpy as np
    import torch

    sol = _solution_namespace()
    ns = {"np": np, "torch": torch}
    for source in (DELEGATE_CONVERT_RUNTIME, DELEGATE_TORCH_MODULE, DELEGATE_MASKED_MEAN):
        exec(source, ns)  # noqa: S102 (our own test code)
    run_packed_ns = {"np": np, "torch": torch}
    exec(DELEGATE_RUN_PACKED, run_packed_ns)  # noqa: S102
    rng = np.random.default_rng(0)
    D, H = 3, 4
    params = {
        "W_x": rng.normal(size=(4 * H, D)),
        "W_h": rng.normal(size=(4 * H, H)),
        "b": rng.normal(size=4 * H),
    }
    a = ns["load_lstm_weights"](params, torch.nn.LSTM(D, H, batch_first=True).double())
    b = sol["load_lstm_weights"](params, torch.nn.LSTM(D, H, batch_first=True).double())
    x = torch.as_tensor(rng.normal(size=(2, 5, D)))
    torch.testing.assert_close(a(x)[0], b(x)[0])
    lengths = torch.tensor([2, 5])
    for kind in ("RNN", "GRU", "LSTM"):
        module = getattr(torch.nn, kind)(D, H, batch_first=True, dtype=torch.float64)
        want = sol["final_states"](module, x, lengths)
        torch.testing.assert_close(ns["final_states"](module, x, lengths), want)
        torch.testing.assert_close(run_packed_ns["final_states"](module, x, lengths), want)
    logits = torch.as_tensor(rng.normal(size=(2, 5, 6)))
    targets = torch.as_tensor(rng.integers(0, 6, (2, 5)))
    torch.testing.assert_close(
        ns["masked_loss"](logits, targets, lengths), sol["masked_loss"](logits, targets, lengths)
    )


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` (sandboxed kernels that only record; verdicts replayed by the grader)
    imports torch in the sandbox for this assignment (its source notebook allows it), gives the
    solution full marks, the release 0, a planted bug exactly its loss, and a delegation
    nothing (in the sandbox rnn_ref.convert cannot even be imported)."""
    replayed = ("bug_bias_counted_twice", "bug_left_on_device")
    gid, source, _ = DELEGATES["delegate_convert_runtime"]
    delegate = with_source(RT.solution(), gid, source)
    rows = RT.grade_class(tmp_path, replayed, {"delegate_convert_runtime": delegate})
    assert rows["solution"]["written_keras_to_torch"] == ""  # graded by hand
    assert float(rows["delegate_convert_runtime"]["total"]) == RT.full - 3
    RT.assert_class_row(rows["delegate_convert_runtime"], LOAD)
    html = (tmp_path / "out" / "feedback" / "bug_left_on_device" / A / f"{A}.html").read_text()
    assert "should return a NumPy array on the CPU, got a Tensor" in html
    assert "check_predict" not in html and "BEGIN HIDDEN" not in html


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb))
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    passed = [o for o in outputs if "Visible tests passed." in o.get("text", "")]
    assert len(passed) == 4
