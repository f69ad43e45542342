"""Grading round trip for ch09_seq2seq in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (the decoder's hidden test checks the attention functions it uses first),
delegation (the reference, torch.nn.GRUCell) earns nothing, the feedback names what is wrong,
the solution runs top to bottom in under 60 s, and the class-scale grader (which replays the
recorded results, beam search's lists of (tokens, score) included, in its own process) agrees."""

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
FULL = sum(AUTO.values())
WRITTEN = 2
DOT = ["test_dot_attention_forward_visible", "test_dot_attention_forward_hidden"]
ADD = ["test_additive_attention_forward_visible", "test_additive_attention_forward_hidden"]
DEC = ["test_decoder_step_visible", "test_decoder_step_hidden"]
BEAM = ["test_beam_search_visible", "test_beam_search_hidden"]
DEC_HIDDEN = ["test_decoder_step_hidden"]  # the visible decoder case has no mask and N = 1

MASK_LINE = "scores = np.where(mask, scores, -np.inf)"
NORMALISE = "weights = weights / weights.sum(axis=1, keepdims=True)\n"

# name -> (edits [(cell, old, new)], the test cells that must score 0; the others keep full marks)
BUGS = {
    "bug_mask_ignored": ([("dot_attention_forward", MASK_LINE, "pass")], DOT + DEC_HIDDEN),
    # Normalised over the batch axis: with N = 1 every weight is 1, so the decoder's visible
    # case fails too.
    "bug_softmax_wrong_axis": (
        [("dot_attention_forward", "weights.sum(axis=1,", "weights.sum(axis=0,")],
        DOT + DEC,
    ),
    "bug_zero_after_softmax_no_renormalise": (
        [
            ("dot_attention_forward", MASK_LINE, "pass"),
            (
                "dot_attention_forward",
                NORMALISE,
                NORMALISE + "    if mask is not None:\n        weights = weights * mask\n",
            ),
        ],
        DOT + DEC_HIDDEN,
    ),
    "bug_additive_no_tanh": (
        [("additive_attention_forward", "t = np.tanh(", "t = (")],
        ADD + DEC_HIDDEN,
    ),
    "bug_decoder_attends_with_h_prev": (
        [("decoder_step", "_attention_forward(h, keys", "_attention_forward(h_prev, keys")],
        DEC,
    ),
    "bug_beam_never_keeps_finished": (
        [("beam_search", "finished.append((tokens, total))", "pass")],
        BEAM,
    ),
    # In the greedy trap every hypothesis finishes: only the hidden tables leave some live.
    "bug_beam_keeps_only_finished": (
        [("beam_search", "finished += [(tokens, total) for tokens, total, _ in beams]", "pass")],
        ["test_beam_search_hidden"],
    ),
    "bug_length_penalty_multiplies": (
        [
            (
                "beam_search",
                "total / len(tokens) ** length_penalty",
                "total * len(tokens) ** length_penalty",
            )
        ],
        BEAM,
    ),
    # Every hypothesis fed the initial state: invisible in the one-table greedy trap.
    "bug_beam_stale_state": (
        [
            (
                "beam_search",
                "tokens[-1] if tokens else bos, st)",
                "tokens[-1] if tokens else bos, state)",
            )
        ],
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

# student -> (answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": ("beam_search", DELEGATE_RUNTIME, BEAM),
    "delegate_import": ("dot_attention_forward", DELEGATE_IMPORT, DOT + DEC),
    "delegate_import_decoder": ("decoder_step", DELEGATE_IMPORT_DECODER, DEC),
    "delegate_torch_gru_cell": ("decoder_step", DELEGATE_TORCH, DEC),
}


def with_bug(nb, name):
    for gid, old, new in BUGS[name][0]:
        nb = with_replaced(nb, gid, old, new)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"), A)
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    released = read(course / "exercises" / A / f"{A}.ipynb")
    submit(course, A, "solution", solution)
    submit(course, A, "released", released)
    for name in BUGS:
        submit(course, A, name, with_bug(solution, name))
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
    assert fresh == read(ROOT / "exercises" / A / f"{A}.ipynb"), "regenerate exercises/" + A
    points = {
        c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points
        for c in fresh.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert points == {**AUTO, "written_length_normalisation": WRITTEN}
    text = nbformat.writes(fresh)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "check_" not in text


def test_every_submission_is_graded(graded):
    _, s = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATIONS}


def test_solution_scores_full_marks(graded):
    _, s = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 16


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
    _exactly(s[bug], BUGS[bug][1])


@pytest.mark.parametrize("who", sorted(DELEGATIONS))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    _exactly(s[who], DELEGATIONS[who][2])


def test_feedback_names_what_is_wrong(graded):
    course, _ = graded
    (err,) = errors(
        course, "bug_zero_after_softmax_no_renormalise", "test_dot_attention_forward_hidden"
    )
    assert err.ename == "GradingError"
    assert "each row of weights should sum to 1" in err.evalue
    (err,) = errors(course, "bug_mask_ignored", "test_dot_attention_forward_hidden")
    assert "exactly 0 at padded positions" in err.evalue
    (err,) = errors(course, "bug_decoder_attends_with_h_prev", "test_decoder_step_hidden")
    assert "attention of h_prev" in err.evalue
    (err,) = errors(course, "bug_additive_no_tanh", "test_decoder_step_hidden")
    assert "your additive_attention_forward is wrong; fix it first" in err.evalue
    (err,) = errors(course, "bug_beam_keeps_only_finished", "test_beam_search_hidden")
    assert "hypotheses" in err.evalue and "max_len" in err.evalue
    (err,) = errors(course, "delegate_torch_gru_cell", "test_decoder_step_hidden")
    assert err.ename == "DelegationError" and "torch.nn.GRUCell.forward" in err.evalue
    (err,) = errors(course, "delegate_runtime", "test_beam_search_hidden")
    assert "rnn_ref.numpy.beam_search" in err.evalue


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
    # The "Try it" cell: the widest beam (every hypothesis kept) finds the exact optimum, which
    # no narrower beam beats.
    (try_it,) = [c for c in nb.cells if c.cell_type == "code" and "random_markov(5)" in c.source]
    lines = try_it.outputs[0].text.splitlines()
    for lp in ("0.0", "1.0"):
        best = [
            float(line.split()[-1]) for line in lines if line.startswith(f"length_penalty={lp}")
        ]
        assert len(best) == 5 and best[-1] == max(best)


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records (beam_search's step functions run there), the grader replays
    the test cells in its own process."""
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    subs = tmp_path / "subs"
    subs.mkdir()
    batch = {
        "solution": solution,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
        "bug_beam_keeps_only_finished": with_bug(solution, "bug_beam_keeps_only_finished"),
        "bug_additive_no_tanh": with_bug(solution, "bug_additive_no_tanh"),
    }
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
    assert float(rows["solution"]["total"]) == FULL, rows["solution"]
    assert float(rows["solution"]["max"]) == FULL + WRITTEN
    assert float(rows["released"]["total"]) == 0, rows["released"]
    for bug in ("bug_beam_keeps_only_finished", "bug_additive_no_tanh"):
        got = {g: float(rows[bug][g]) for g in AUTO}
        _exactly(got, BUGS[bug][1])
    html = (tmp_path / "out" / "feedback" / "bug_additive_no_tanh" / A / f"{A}.html").read_text()
    assert "fix it first" in html
    assert "check_decoder_step" not in html and "seeds=(301" not in html
