"""Grading round trip for ch07_variants in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug (the classic mistakes
of stacked and bidirectional wrappers, torch's h_n layout, and readings of seed 004's "RRNN"
other than its equations) zeroes exactly the test cells it should, delegation (the reference,
torch.nn's bidirectional GRU) earns nothing, the feedback names the mistake, the solution runs
top to bottom in under 60 s, and the class-scale grader (which replays the recorded results in
its own process) agrees."""

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

A = "ch07_variants"
AUTO = {  # autograded test cells and their points
    "test_stacked_forward_visible": 1,
    "test_stacked_forward_hidden": 2,
    "test_bidirectional_forward_visible": 1,
    "test_bidirectional_forward_hidden": 2,
    "test_deep_bidirectional_forward_visible": 1,
    "test_deep_bidirectional_forward_hidden": 2,
    "test_rrnn_step_forward_visible": 1,
    "test_rrnn_step_forward_hidden": 2,
    "test_rrnn_forward_visible": 1,
    "test_rrnn_forward_hidden": 1,
}
FULL = sum(AUTO.values())
WRITTEN = 3
STACKED = ["test_stacked_forward_visible", "test_stacked_forward_hidden"]
BIDIR = ["test_bidirectional_forward_visible", "test_bidirectional_forward_hidden"]
DEEP = ["test_deep_bidirectional_forward_visible", "test_deep_bidirectional_forward_hidden"]
STEP = ["test_rrnn_step_forward_visible", "test_rrnn_step_forward_hidden"]
SEQ = ["test_rrnn_forward_visible", "test_rrnn_forward_hidden"]
OUTPUT_LINE = 'o = sigmoid(hp @ params["W_hpo"].T + h @ params["W_ho"].T + params["b_o"])'

# name -> (cell, old, new, the test cells that must score 0; every other one keeps full marks)
BUGS = {
    "bug_layers_read_x": (
        "stacked_forward",
        "inputs, _ = forward(inputs, h0[layer], params)",
        "inputs, _ = forward(x, h0[layer], params)",
        STACKED,
    ),
    "bug_stacked_ignores_h0": (
        "stacked_forward",
        "forward(inputs, h0[layer], params)",
        "forward(inputs, np.zeros_like(h0[layer]), params)",
        STACKED,
    ),
    # The deep network calls bidirectional_forward, so its tests fail too.
    "bug_reverse_not_rereversed": (
        "bidirectional_forward",
        "hs_r = hs_r[:, ::-1]",
        "hs_r = hs_r",
        BIDIR + DEEP,
    ),
    "bug_reverse_h_n_first_computed": (
        "bidirectional_forward",
        "h_n = np.stack([hs_f[:, -1], hs_r[:, 0]])",
        "h_n = np.stack([hs_f[:, -1], hs_r[:, -1]])",
        BIDIR + DEEP,
    ),
    "bug_h_n_direction_major": (
        "deep_bidirectional_forward",
        "out, h_n = inputs, np.concatenate(last)",
        "out, h_n = inputs, np.stack(last, axis=1).reshape(-1, *last[0].shape[1:])",
        DEEP,
    ),
    "bug_h0_direction_major": (
        "deep_bidirectional_forward",
        "h0[2 * layer : 2 * layer + 2]",
        "h0[[layer, layer + len(layers)]]",
        DEEP,
    ),
    "bug_rrnn_sigmoid_for_h_prime": (
        "rrnn_step_forward",
        "hp = np.tanh(",
        "hp = sigmoid(",
        STEP + SEQ,
    ),
    # W_rh (r * h_prev): with R != H (the visible random batches) it cannot even run.
    "bug_rrnn_W_rh_after_product": (
        "rrnn_step_forward",
        "gate * h_prev",
        '(r * h_prev) @ params["W_rh"].T',
        STEP + SEQ,
    ),
    "bug_rrnn_output_weights_swapped": (
        "rrnn_step_forward",
        OUTPUT_LINE,
        'o = sigmoid(hp @ params["W_ho"].T + h @ params["W_hpo"].T + params["b_o"])',
        STEP + SEQ,
    ),
    "bug_rrnn_step_returns_h_prime": (
        "rrnn_step_forward",
        "return (h, o), cache",
        "return (hp, o), cache",
        STEP + SEQ,
    ),
    # The step is right; the sequence carries h' (cache_t[5]) to the next step.
    "bug_rrnn_carries_h_prime": (
        "rrnn_forward",
        "        hs.append(h)\n",
        "        hs.append(h)\n        h = cache_t[5]\n",
        SEQ,
    ),
}

DELEGATE_RUNTIME = """def stacked_forward(x, h0, layers, forward):
    import rnn_ref.numpy
    cell = "gru" if "W_x" in layers[0] else "rnn"
    out, h_n, _ = rnn_ref.numpy.multilayer_forward(x, h0, layers, cell=cell)
    return out, h_n"""

DELEGATE_IMPORT = """from rnn_ref.numpy import rrnn_step_forward as _reference_step

def rrnn_step_forward(x, h_prev, params):
    return _reference_step(x, h_prev, params)"""

# Exact without the guard (checked outside grading: error < 1e-14).
DELEGATE_TORCH = """import torch

def bidirectional_forward(x, h0, params, forward):
    gru = "W_x" in params[0]
    H = h0.shape[2]
    cls = torch.nn.GRU if gru else torch.nn.RNN
    m = cls(x.shape[2], H, batch_first=True, bidirectional=True, dtype=torch.float64)
    with torch.no_grad():
        for sfx, p in (("_l0", params[0]), ("_l0_reverse", params[1])):
            t = {k: torch.as_tensor(v) for k, v in p.items()}
            if gru:
                w_ih, w_hh, b_ih, b_hh = t["W_x"], t["W_h"], t["b_x"], t["b_h"]
            else:
                w_ih, w_hh, b_ih, b_hh = t["W_xh"], t["W_hh"], t["b_h"], 0 * t["b_h"]
            for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh),
                                ("bias_ih", b_ih), ("bias_hh", b_hh)):
                getattr(m, name + sfx).copy_(value)
        out, h_n = m(torch.as_tensor(x), torch.as_tensor(h0))
    return out.numpy(), h_n.numpy()"""

# student -> (answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": ("stacked_forward", DELEGATE_RUNTIME, STACKED),
    "delegate_import": ("rrnn_step_forward", DELEGATE_IMPORT, STEP + SEQ),
    "delegate_torch_gru": ("bidirectional_forward", DELEGATE_TORCH, BIDIR + DEEP),
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
    return course, scores(course, A)


def total(cells: dict) -> float:
    return sum(cells[g] or 0 for g in AUTO)


def errors(course: Path, student: str, grade_id: str) -> list:
    nb = read(course / "autograded" / student / A / f"{A}.ipynb")
    return [o for o in cell(nb, grade_id).outputs if o.output_type == "error"]


def test_the_committed_release_is_current_and_the_cells_are_as_listed(graded):
    course, _ = graded
    fresh = read(course / "exercises" / A / f"{A}.ipynb")
    assert fresh == read(ROOT / "exercises" / A / f"{A}.ipynb"), "regenerate exercises/ch07"
    points = {
        c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points
        for c in fresh.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert points == {**AUTO, "written_rrnn_and_bidirectional": WRITTEN}
    text = nbformat.writes(fresh)
    assert "BEGIN HIDDEN" not in text and "np.concatenate(last)" not in text


def test_every_submission_is_graded(graded):
    _, s = graded
    assert set(s) == {"solution", "released", *BUGS, *DELEGATIONS}


def test_solution_scores_full_marks(graded):
    _, s = graded
    assert {g: s["solution"][g] for g in AUTO} == AUTO
    assert total(s["solution"]) == FULL == 14


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
    _exactly(s[bug], BUGS[bug][3])


@pytest.mark.parametrize("who", sorted(DELEGATIONS))
def test_delegation_earns_nothing(graded, who):
    _, s = graded
    _exactly(s[who], DELEGATIONS[who][2])


def test_feedback_names_the_mistake(graded):
    course, _ = graded
    (err,) = errors(course, "bug_reverse_not_rereversed", "test_bidirectional_forward_hidden")
    assert err.ename == "GradingError"
    assert "out[..., H:] (reverse direction)" in err.evalue
    assert "reversed time order" in err.evalue and "largest error" in err.evalue
    (err,) = errors(course, "bug_reverse_h_n_first_computed", "test_bidirectional_forward_hidden")
    assert "bidirectional_forward: h_n is wrong (" in err.evalue
    assert "its last state is the one at position 0" in err.evalue
    (err,) = errors(course, "bug_layers_read_x", "test_stacked_forward_hidden")
    assert "if every layer read x" in err.evalue
    (err,) = errors(course, "bug_h_n_direction_major", "test_deep_bidirectional_forward_hidden")
    assert "h_n is wrong" in err.evalue and "direction-major" in err.evalue
    assert "out is wrong" not in err.evalue.split(". First")[0]
    (err,) = errors(course, "bug_h0_direction_major", "test_deep_bidirectional_forward_hidden")
    assert "direction-major" in err.evalue
    (err,) = errors(course, "bug_rrnn_carries_h_prime", "test_rrnn_forward_hidden")
    assert "right at the first step" in err.evalue and "not h'_t" in err.evalue
    (err,) = errors(course, "bug_rrnn_step_returns_h_prime", "test_rrnn_step_forward_hidden")
    assert "Your h is h'" in err.evalue
    (err,) = errors(course, "bug_rrnn_sigmoid_for_h_prime", "test_rrnn_step_forward_hidden")
    assert "rrnn_step_forward: o is wrong (" in err.evalue and "h is right" in err.evalue


def test_delegation_feedback_names_the_call(graded):
    course, _ = graded
    (err,) = errors(course, "delegate_torch_gru", "test_bidirectional_forward_hidden")
    assert err.ename == "DelegationError" and "torch.nn.GRU.forward" in err.evalue
    (err,) = errors(course, "delegate_import", "test_rrnn_step_forward_hidden")
    assert "rnn_ref.numpy.rrnn_step_forward" in err.evalue
    (err,) = errors(course, "delegate_runtime", "test_stacked_forward_hidden")
    assert "rnn_ref.numpy.multilayer_forward" in err.evalue


def test_torch_delegation_would_be_right_without_the_guard():
    """So the delegation test above is about the guard, not about a wrong answer."""
    import numpy as np

    from rnn_ref.numpy import multilayer_forward

    ns: dict = {}
    exec(DELEGATE_TORCH, ns)  # noqa: S102 (the test's own code)
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 4, 3, 5
    for cell_name, keys in (
        ("gru", ("W_x", "W_h", "b_x", "b_h")),
        ("rnn", ("W_xh", "W_hh", "b_h")),
    ):
        g = 3 if cell_name == "gru" else 1
        shapes = {"W_x": (g * H, D), "W_h": (g * H, H), "b_x": (g * H,), "b_h": (g * H,),
                  "W_xh": (H, D), "W_hh": (H, H)}  # fmt: skip
        params = tuple({k: rng.normal(size=shapes[k]) for k in keys} for _ in range(2))
        x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(2, N, H))
        out, h_n = ns["bidirectional_forward"](x, h0, params, None)
        out_ref, h_n_ref, _ = multilayer_forward(x, h0, [params], cell_name, bidirectional=True)
        assert np.abs(out - out_ref).max() < 1e-12 and np.abs(h_n - h_n_ref).max() < 1e-12


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


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    subs = tmp_path / "subs"
    subs.mkdir()
    batch = {
        "solution": solution,
        "released": read(ROOT / "exercises" / A / f"{A}.ipynb"),
    }
    replayed = ("bug_reverse_not_rereversed", "bug_h_n_direction_major", "bug_rrnn_carries_h_prime")
    for bug in replayed:
        gid, old, new, _ = BUGS[bug]
        batch[bug] = with_replaced(solution, gid, old, new)
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
        got = {g: float(rows[bug][g]) for g in AUTO}
        _exactly(got, BUGS[bug][3])
    feedback = tmp_path / "out" / "feedback" / "bug_h_n_direction_major" / A / f"{A}.html"
    html = feedback.read_text()
    assert "direction-major" in html
    assert "check_deep_bidirectional_forward" not in html and "seeds=(301" not in html
