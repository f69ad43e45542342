"""Grading round trip for ch07_variants in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug (the classic mistakes
of stacked and bidirectional wrappers, torch's h_n layout, and readings of seed 004's "RRNN"
other than its equations) zeroes exactly the test cells it should, delegation (the reference,
torch.nn's bidirectional GRU) earns nothing, the feedback names the mistake, the solution runs
top to bottom in under 60 s, and the class-scale grader (which replays the recorded results in
its own process) agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch07's own."""

from __future__ import annotations

import pytest
from grading_course import Bug, Delegation, RoundTrip, code_cells, stderr_outputs

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
STACKED = ["test_stacked_forward_visible", "test_stacked_forward_hidden"]
BIDIR = ["test_bidirectional_forward_visible", "test_bidirectional_forward_hidden"]
DEEP = ["test_deep_bidirectional_forward_visible", "test_deep_bidirectional_forward_hidden"]
STEP = ["test_rrnn_step_forward_visible", "test_rrnn_step_forward_hidden"]
SEQ = ["test_rrnn_forward_visible", "test_rrnn_forward_hidden"]
OUTPUT_LINE = 'o = sigmoid(hp @ params["W_hpo"].T + h @ params["W_ho"].T + params["b_o"])'

# name -> Bug(cell, old, new, the test cells that must score 0; every other one keeps full marks)
BUGS = {
    "bug_layers_read_x": Bug(
        "stacked_forward",
        "inputs, _ = forward(inputs, h0[layer], params)",
        "inputs, _ = forward(x, h0[layer], params)",
        STACKED,
    ),
    "bug_stacked_ignores_h0": Bug(
        "stacked_forward",
        "forward(inputs, h0[layer], params)",
        "forward(inputs, np.zeros_like(h0[layer]), params)",
        STACKED,
    ),
    # The deep network calls bidirectional_forward, so its tests fail too.
    "bug_reverse_not_rereversed": Bug(
        "bidirectional_forward",
        "hs_r = hs_r[:, ::-1]",
        "hs_r = hs_r",
        BIDIR + DEEP,
    ),
    "bug_reverse_h_n_first_computed": Bug(
        "bidirectional_forward",
        "h_n = np.stack([hs_f[:, -1], hs_r[:, 0]])",
        "h_n = np.stack([hs_f[:, -1], hs_r[:, -1]])",
        BIDIR + DEEP,
    ),
    "bug_h_n_direction_major": Bug(
        "deep_bidirectional_forward",
        "out, h_n = inputs, np.concatenate(last)",
        "out, h_n = inputs, np.stack(last, axis=1).reshape(-1, *last[0].shape[1:])",
        DEEP,
    ),
    "bug_h0_direction_major": Bug(
        "deep_bidirectional_forward",
        "h0[2 * layer : 2 * layer + 2]",
        "h0[[layer, layer + len(layers)]]",
        DEEP,
    ),
    "bug_rrnn_sigmoid_for_h_prime": Bug(
        "rrnn_step_forward",
        "hp = np.tanh(",
        "hp = sigmoid(",
        STEP + SEQ,
    ),
    # W_rh (r * h_prev): with R != H (the visible random batches) it cannot even run.
    "bug_rrnn_W_rh_after_product": Bug(
        "rrnn_step_forward",
        "gate * h_prev",
        '(r * h_prev) @ params["W_rh"].T',
        STEP + SEQ,
    ),
    "bug_rrnn_output_weights_swapped": Bug(
        "rrnn_step_forward",
        OUTPUT_LINE,
        'o = sigmoid(hp @ params["W_ho"].T + h @ params["W_hpo"].T + params["b_o"])',
        STEP + SEQ,
    ),
    "bug_rrnn_step_returns_h_prime": Bug(
        "rrnn_step_forward",
        "return (h, o), cache",
        "return (hp, o), cache",
        STEP + SEQ,
    ),
    # The step is right; the sequence carries h' (cache_t[5]) to the next step.
    "bug_rrnn_carries_h_prime": Bug(
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

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_runtime": Delegation("stacked_forward", DELEGATE_RUNTIME, STACKED),
    "delegate_import": Delegation("rrnn_step_forward", DELEGATE_IMPORT, STEP + SEQ),
    "delegate_torch_gru": Delegation("bidirectional_forward", DELEGATE_TORCH, BIDIR + DEEP),
}

RT = RoundTrip(
    A,
    AUTO,
    full_marks=14,
    written={"written_rrnn_and_bidirectional": 3},
    bugs=BUGS,
    delegations=DELEGATIONS,
    release_listed=True,
    release_excludes=("BEGIN HIDDEN", "np.concatenate(last)"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_the_mistake(graded):
    (err,) = graded.errors("bug_reverse_not_rereversed", "test_bidirectional_forward_hidden")
    assert err.ename == "GradingError"
    assert "out[..., H:] (reverse direction)" in err.evalue
    assert "reversed time order" in err.evalue and "largest error" in err.evalue
    (err,) = graded.errors("bug_reverse_h_n_first_computed", "test_bidirectional_forward_hidden")
    assert "bidirectional_forward: h_n is wrong (" in err.evalue
    assert "its last state is the one at position 0" in err.evalue
    (err,) = graded.errors("bug_layers_read_x", "test_stacked_forward_hidden")
    assert "if every layer read x" in err.evalue
    (err,) = graded.errors("bug_h_n_direction_major", "test_deep_bidirectional_forward_hidden")
    assert "h_n is wrong" in err.evalue and "direction-major" in err.evalue
    assert "out is wrong" not in err.evalue.split(". First")[0]
    (err,) = graded.errors("bug_h0_direction_major", "test_deep_bidirectional_forward_hidden")
    assert "direction-major" in err.evalue
    (err,) = graded.errors("bug_rrnn_carries_h_prime", "test_rrnn_forward_hidden")
    assert "right at the first step" in err.evalue and "not h'_t" in err.evalue
    (err,) = graded.errors("bug_rrnn_step_returns_h_prime", "test_rrnn_step_forward_hidden")
    assert "Your h is h'" in err.evalue
    (err,) = graded.errors("bug_rrnn_sigmoid_for_h_prime", "test_rrnn_step_forward_hidden")
    assert "rrnn_step_forward: o is wrong (" in err.evalue and "h is right" in err.evalue


def test_delegation_feedback_names_the_call(graded):
    (err,) = graded.errors("delegate_torch_gru", "test_bidirectional_forward_hidden")
    assert err.ename == "DelegationError" and "torch.nn.GRU.forward" in err.evalue
    (err,) = graded.errors("delegate_import", "test_rrnn_step_forward_hidden")
    assert "rnn_ref.numpy.rrnn_step_forward" in err.evalue
    (err,) = graded.errors("delegate_runtime", "test_stacked_forward_hidden")
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
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` from the repository root, on a flat folder of <student>.ipynb: the
    student's kernel only records, the grader replays the test cells in its own process."""
    replayed = ("bug_reverse_not_rereversed", "bug_h_n_direction_major", "bug_rrnn_carries_h_prime")
    RT.grade_class(tmp_path, replayed)
    feedback = tmp_path / "out" / "feedback" / "bug_h_n_direction_major" / A / f"{A}.html"
    html = feedback.read_text()
    assert "direction-major" in html
    assert "check_deep_bidirectional_forward" not in html and "seeds=(301" not in html
