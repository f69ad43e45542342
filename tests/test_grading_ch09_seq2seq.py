"""Grading round trip for ch09_seq2seq in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (the decoder's hidden test checks the attention functions it uses first),
delegation (the reference, torch.nn.GRUCell) earns nothing, the feedback names what is wrong,
the solution runs top to bottom in under 60 s, and the class-scale grader (which replays the
recorded results, beam search's lists of (tokens, score) included, in its own process) agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch09's own."""

from __future__ import annotations

import pytest
from grading_course import Bug, Delegation, RoundTrip, code_cells, stderr_outputs, stdout_text

pytestmark = pytest.mark.slow

A = "ch09_seq2seq"
AUTO = {  # autograded test cells and their points
    "test_dot_attention_forward_visible": 1,
    "test_dot_attention_forward_hidden": 2,
    "test_additive_attention_forward_visible": 1,
    "test_additive_attention_forward_hidden": 2,
    "test_decoder_step_visible": 1,
    "test_decoder_step_hidden": 3,
    "test_beam_search_visible": 2,
    "test_beam_search_hidden": 4,
}
DOT = ["test_dot_attention_forward_visible", "test_dot_attention_forward_hidden"]
ADD = ["test_additive_attention_forward_visible", "test_additive_attention_forward_hidden"]
DEC = ["test_decoder_step_visible", "test_decoder_step_hidden"]
BEAM = ["test_beam_search_visible", "test_beam_search_hidden"]
DEC_HIDDEN = ["test_decoder_step_hidden"]  # the visible decoder case has no mask and N = 1

MASK_LINE = "scores = np.where(mask, scores, -np.inf)"
NORMALISE = "weights = weights / weights.sum(axis=1, keepdims=True)\n"
ADD_MAX = ("scores - scores.max(axis=1,", "scores + scores.max(axis=1,")

# name -> Bug(cell, old, new, the test cells that must score 0[, also: further (old, new) in the
# same cell]); every other test cell keeps full marks
BUGS = {
    "bug_mask_ignored": Bug("dot_attention_forward", MASK_LINE, "pass", DOT + DEC_HIDDEN),
    # Normalised over the batch axis: with N = 1 every weight is 1, so the decoder's visible
    # case fails too.
    "bug_softmax_wrong_axis": Bug(
        "dot_attention_forward", "weights.sum(axis=1,", "weights.sum(axis=0,", DOT + DEC
    ),
    "bug_zero_after_softmax_no_renormalise": Bug(
        "dot_attention_forward",
        MASK_LINE,
        "pass",
        DOT + DEC_HIDDEN,
        also=(
            (NORMALISE, NORMALISE + "    if mask is not None:\n        weights = weights * mask\n"),
        ),
    ),
    # exp(e + max e) instead of exp(e - max e): the same softmax in exact arithmetic, so only
    # the hidden cases with scores around 1000 (exp overflows) see it; the decoder's hidden test
    # checks the attention functions first.
    "bug_softmax_adds_max": Bug(
        "dot_attention_forward",
        ADD_MAX[0],
        ADD_MAX[1],
        ["test_dot_attention_forward_hidden"] + DEC_HIDDEN,
    ),
    "bug_additive_adds_max": Bug(
        "additive_attention_forward",
        ADD_MAX[0],
        ADD_MAX[1],
        ["test_additive_attention_forward_hidden"] + DEC_HIDDEN,
    ),
    "bug_additive_no_tanh": Bug(
        "additive_attention_forward", "t = np.tanh(", "t = (", ADD + DEC_HIDDEN
    ),
    "bug_decoder_attends_with_h_prev": Bug(  # in both the dot and the additive branch
        "decoder_step",
        "_attention_forward(h, keys",
        "_attention_forward(h_prev, keys",
        DEC,
        times=2,
    ),
    "bug_beam_never_keeps_finished": Bug(
        "beam_search", "finished.append((tokens, total))", "pass", BEAM
    ),
    # In the greedy trap every hypothesis finishes: only the hidden tables leave some live.
    "bug_beam_keeps_only_finished": Bug(
        "beam_search",
        "finished += [(tokens, total) for tokens, total, _ in beams]",
        "pass",
        ["test_beam_search_hidden"],
    ),
    "bug_length_penalty_multiplies": Bug(
        "beam_search",
        "total / len(tokens) ** length_penalty",
        "total * len(tokens) ** length_penalty",
        BEAM,
    ),
    # Every hypothesis fed the initial state: invisible in the one-table greedy trap.
    "bug_beam_stale_state": Bug(
        "beam_search",
        "tokens[-1] if tokens else bos, st)",
        "tokens[-1] if tokens else bos, state)",
        ["test_beam_search_hidden"],
    ),
}

DELEGATE_RUNTIME = """def beam_search(step_fn, state, bos, eos, beam_width, max_len, length_penalty=0.0):
    import rnn_ref.numpy
    search = rnn_ref.numpy.beam_search
    return search(step_fn, state, bos, eos, beam_width, max_len, length_penalty)"""  # noqa: E501

DELEGATE_IMPORT = """from rnn_ref.numpy import dot_attention_forward as _reference_attention

def dot_attention_forward(q, keys, mask=None):
    return _reference_attention(q, keys, mask)"""

DELEGATE_IMPORT_DECODER = """from rnn_ref.numpy import decoder_step as _reference_step

def decoder_step(y_prev, h_prev, keys, mask, params, attention="dot"):
    return _reference_step(y_prev, h_prev, keys, mask, params, attention)"""

DELEGATE_TORCH = """import torch

def decoder_step(y_prev, h_prev, keys, mask, params, attention="dot"):
    cell = torch.nn.GRUCell(params["E"].shape[1], h_prev.shape[1], dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.as_tensor(params["W_x"]))
        cell.weight_hh.copy_(torch.as_tensor(params["W_h"]))
        cell.bias_ih.copy_(torch.as_tensor(params["b_x"]))
        cell.bias_hh.copy_(torch.as_tensor(params["b_h"]))
        h = cell(torch.as_tensor(params["E"][y_prev]), torch.as_tensor(h_prev)).numpy()
    if attention == "dot":
        (context, weights), _ = dot_attention_forward(h, keys, mask)
    else:
        (context, weights), _ = additive_attention_forward(h, keys, params, mask)
    logits = np.concatenate([h, context], axis=1) @ params["W_out"].T + params["b_out"]
    return (logits, h, weights), None"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": Delegation("beam_search", DELEGATE_RUNTIME, BEAM),
    "delegate_import": Delegation("dot_attention_forward", DELEGATE_IMPORT, DOT + DEC),
    "delegate_import_decoder": Delegation("decoder_step", DELEGATE_IMPORT_DECODER, DEC),
    "delegate_torch_gru_cell": Delegation("decoder_step", DELEGATE_TORCH, DEC),
}

RT = RoundTrip(
    A,
    AUTO,
    full_marks=16,
    written={"written_length_normalisation": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_what_is_wrong(graded):
    (err,) = graded.errors(
        "bug_zero_after_softmax_no_renormalise", "test_dot_attention_forward_hidden"
    )
    assert err.ename == "GradingError"
    assert "each row of weights should sum to 1" in err.evalue
    # The overflow is named, with the case (large scores); the fix is not spelled out.
    for bug, cell in (
        ("bug_softmax_adds_max", "test_dot_attention_forward_hidden"),
        ("bug_additive_adds_max", "test_additive_attention_forward_hidden"),
    ):
        (err,) = graded.errors(bug, cell)
        assert err.ename == "GradingError"
        assert "overflow" in err.evalue and "with large scores (|e|" in err.evalue
        assert "subtract" not in err.evalue.lower() and "maximum" not in err.evalue.lower()
    (err,) = graded.errors("bug_mask_ignored", "test_dot_attention_forward_hidden")
    assert "exactly 0 at padded positions" in err.evalue
    (err,) = graded.errors("bug_decoder_attends_with_h_prev", "test_decoder_step_hidden")
    assert "attention of h_prev" in err.evalue
    (err,) = graded.errors("bug_additive_no_tanh", "test_decoder_step_hidden")
    assert "your additive_attention_forward is wrong; fix it first" in err.evalue
    (err,) = graded.errors("bug_beam_keeps_only_finished", "test_beam_search_hidden")
    assert "hypotheses" in err.evalue and "max_len" in err.evalue
    (err,) = graded.errors("delegate_torch_gru_cell", "test_decoder_step_hidden")
    assert err.ename == "DelegationError" and "torch.nn.GRUCell.forward" in err.evalue
    (err,) = graded.errors("delegate_runtime", "test_beam_search_hidden")
    assert "rnn_ref.numpy.beam_search" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    # The "Try it" cell: the widest beam (every hypothesis kept) finds the exact optimum, which
    # no narrower beam beats.
    (try_it,) = [c for c in code_cells(nb) if "random_markov(5)" in c.source]
    lines = stdout_text(try_it).splitlines()
    for lp in ("0.0", "1.0"):
        best = [
            float(line.split()[-1]) for line in lines if line.startswith(f"length_penalty={lp}")
        ]
        assert len(best) == 5 and best[-1] == max(best)


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records (beam_search's step functions run there), the grader replays
    the test cells in its own process."""
    replayed = ("bug_beam_keeps_only_finished", "bug_additive_no_tanh")
    RT.grade_class(tmp_path, replayed)
    html = (tmp_path / "out" / "feedback" / "bug_additive_no_tanh" / A / f"{A}.html").read_text()
    assert "fix it first" in html
    assert "check_decoder_step" not in html and "seeds=(301" not in html
