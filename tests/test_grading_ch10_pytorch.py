"""Grading round trip for ch10_pytorch in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, planted bugs (weights transposed, bias
counted twice, padding in the final state, a loss averaged over the padding or cut off the graph,
a result left as a tensor, no eval mode) zero exactly the test cells they should, and delegation
to rnn_ref (rnn_ref.convert, rnn_ref.torch's modules and helpers) earns nothing although
torch.nn is allowed. Then the class-scale grader (`rnn-course grade`, whose sandbox must import
torch for this assignment) on the solution, the release, two bugs and a delegation; and the
solution's run time."""

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
FULL = sum(AUTO.values())
WRITTEN = 3  # the Keras-to-PyTorch weights answer, graded by hand
LOAD = ["test_load_lstm_weights_visible", "test_load_lstm_weights_hidden"]
FINAL = ["test_final_states_visible", "test_final_states_hidden"]
LOSS = ["test_masked_loss_visible", "test_masked_loss_hidden"]
PRED = ["test_predict_visible", "test_predict_hidden"]


def _rest(*zero):
    """Every autograded cell not in ``zero``: these must keep full marks."""
    return [g for g in AUTO if g not in {z for cells in zero for z in cells}]


LOSS_LINE = "return (nll * mask).sum() / mask.sum()"
# name -> (cell, old, new, test cells that must score 0, test cells that must keep full marks)
BUGS = {
    # Keras' (in, out) habit, then a reshape to make the shapes fit.
    "bug_weights_transposed": (
        "load_lstm_weights",
        'module.weight_ih_l0.copy_(t(params["W_x"]))',
        'module.weight_ih_l0.copy_(t(params["W_x"]).T.reshape(ref.shape))',
        LOAD,
        _rest(LOAD),
    ),
    "bug_bias_counted_twice": (
        "load_lstm_weights",
        "module.bias_hh_l0.zero_()",
        'module.bias_hh_l0.copy_(t(params["b"]))',
        LOAD,
        _rest(LOAD),
    ),
    "bug_padding_in_h_n": (
        "final_states",
        "_, h_n = module(packed)",
        "_, h_n = module(padded)",
        FINAL,
        _rest(FINAL),
    ),
    "bug_loss_over_padding": ("masked_loss", LOSS_LINE, "return nll.mean()", LOSS, _rest(LOSS)),
    "bug_loss_detached": (
        "masked_loss",
        LOSS_LINE,
        "return ((nll * mask).sum() / mask.sum()).detach()",
        LOSS,
        _rest(LOSS),
    ),
    "bug_left_on_device": ("predict", "return y.cpu().numpy()", "return y", PRED, _rest(PRED)),
    "bug_no_eval": ("predict", "    model.eval()\n", "", PRED, _rest(PRED)),
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

# who -> (cell replaced, source, cells that must score 0)
DELEGATES = {
    "delegate_convert_runtime": ("load_lstm_weights", DELEGATE_CONVERT_RUNTIME, LOAD),
    "delegate_convert_import": ("load_lstm_weights", DELEGATE_CONVERT_IMPORT, LOAD),
    "delegate_torch_module": ("final_states", DELEGATE_TORCH_MODULE, FINAL),
    "delegate_run_packed": ("final_states", DELEGATE_RUN_PACKED, FINAL),
    "delegate_masked_mean": ("masked_loss", DELEGATE_MASKED_MEAN, LOSS),
}

SOLUTION = read(ROOT / "solutions" / A / f"{A}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", SOLUTION)
    submit(course, A, "released", released)
    for name, (gid, old, new, _, _) in BUGS.items():
        submit(course, A, name, with_replaced(SOLUTION, gid, old, new))
    for who, (gid, source, _) in DELEGATES.items():
        submit(course, A, who, with_source(SOLUTION, gid, source))
    result = autograde(course, A)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return course, scores(course, A)


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def errors(course: Path, student: str, grade_id: str) -> list:
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    return [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]


def test_every_submission_is_graded(graded):
    _, s = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATES}


def test_solution_scores_full_marks(graded):
    _, s = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 12


def test_released_notebook_scores_zero(graded):
    course, s = graded
    assert {g: s["released"][g] for g in AUTO} == {g: 0 for g in AUTO}
    assert (course / "autograded" / "released" / A / f"{A}.ipynb").exists()


def test_release_has_no_solution_or_hidden_tests():
    text = (ROOT / "exercises" / A / f"{A}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN", "check_", "bias_hh_l0.zero_()"):
        assert marker not in text, marker
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_zeroes_exactly_its_cells(graded, bug):
    _, s = graded
    _, _, _, zero, full = BUGS[bug]
    assert sorted(zero + full) == sorted(AUTO), "each bug must account for every cell"
    got = s[bug]
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in full} == {g: AUTO[g] for g in full}, got


@pytest.mark.parametrize("who", sorted(DELEGATES))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    _, _, zero = DELEGATES[who]
    got = s[who]
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in AUTO if g not in zero} == {
        g: AUTO[g] for g in AUTO if g not in zero
    }, got


def test_feedback_names_what_is_wrong(graded):
    course, _ = graded
    (err,) = errors(course, "bug_bias_counted_twice", "test_load_lstm_weights_hidden")
    assert err.ename == "GradingError"
    assert "bias_ih_l0 + bias_hh_l0 is not b" in err.evalue, err.evalue
    (err,) = errors(course, "bug_weights_transposed", "test_load_lstm_weights_hidden")
    assert "weight_ih_l0 does not hold params['W_x']" in err.evalue, err.evalue
    (err,) = errors(course, "bug_padding_in_h_n", "test_final_states_hidden")
    assert "the final hidden states is wrong" in err.evalue and "lengths [" in err.evalue
    (err,) = errors(course, "bug_loss_detached", "test_masked_loss_hidden")
    assert "not connected to the logits" in err.evalue, err.evalue
    (err,) = errors(course, "bug_left_on_device", "test_predict_hidden")
    assert "should return a NumPy array on the CPU, got a Tensor" in err.evalue, err.evalue
    (err,) = errors(course, "bug_no_eval", "test_predict_visible")
    assert "model.eval()" in err.evalue, err.evalue
    (err,) = errors(course, "delegate_convert_import", "test_load_lstm_weights_hidden")
    assert "rnn_ref.convert.to_torch" in err.evalue, err.evalue
    (err,) = errors(course, "delegate_run_packed", "test_final_states_hidden")
    assert "rnn_ref.torch.run_packed" in err.evalue, err.evalue


def _solution_namespace() -> dict:
    import numpy as np
    import torch

    ns = {"np": np, "torch": torch}
    for gid in ("load_lstm_weights", "final_states", "masked_loss", "predict"):
        exec(cell(SOLUTION, gid).source, ns)  # noqa: S102 (our own notebook)
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
    subs = tmp_path / "subs"
    subs.mkdir()
    notebooks = {
        "solution": SOLUTION,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
    }
    for bug in ("bug_bias_counted_twice", "bug_left_on_device"):
        gid, old, new, _, _ = BUGS[bug]
        notebooks[bug] = with_replaced(SOLUTION, gid, old, new)
    gid, source, _ = DELEGATES["delegate_convert_runtime"]
    notebooks["delegate_convert_runtime"] = with_source(SOLUTION, gid, source)
    for student, nb in notebooks.items():
        nbformat.write(nb, subs / f"{student}.ipynb")
    out = tmp_path / "out"
    cmd = [
        str(Path(sys.executable).parent / "rnn-course"),
        "grade",
        A,
        str(subs),
        "--jobs",
        "2",
        "--out",
        str(out),
        "--no-gradebook",
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == set(notebooks)
    assert float(rows["solution"]["total"]) == FULL
    assert float(rows["solution"]["max"]) == FULL + WRITTEN
    assert rows["solution"]["written_keras_to_torch"] == ""  # graded by hand
    assert float(rows["released"]["total"]) == 0
    for bug in ("bug_bias_counted_twice", "bug_left_on_device"):
        _, _, _, zero, _ = BUGS[bug]
        assert float(rows[bug]["total"]) == FULL - sum(AUTO[g] for g in zero), rows[bug]
        assert {g: float(rows[bug][g]) for g in zero} == {g: 0.0 for g in zero}
    assert float(rows["delegate_convert_runtime"]["total"]) == FULL - 3
    assert {g: float(rows["delegate_convert_runtime"][g]) for g in LOAD} == {g: 0.0 for g in LOAD}
    html = (out / "feedback" / "bug_left_on_device" / A / f"{A}.html").read_text()
    assert "should return a NumPy array on the CPU, got a Tensor" in html
    assert "check_predict" not in html and "BEGIN HIDDEN" not in html


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    from nbclient import NotebookClient

    nb = read(ROOT / "solutions" / A / f"{A}.ipynb")
    t0 = time.monotonic()
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    seconds = time.monotonic() - t0
    assert seconds < 60, f"the solution notebook took {seconds:.1f} s"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    passed = [o for o in outputs if "Visible tests passed." in o.get("text", "")]
    assert len(passed) == 4
