"""Grading round trip for ch16_multimodal in a temporary nbgrader course: the solution scores
full marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (a bug in gated_fusion_forward also zeroes the backward, which is called
with the forward's cache), delegation (the reference rnn_ref.numpy, torch's adaptive pooling and
interpolation, autograd) earns nothing, correct answers written differently from the solution
(pooling by an averaging matrix, a tuple as the gated unit's cache) keep full marks, the
feedback names what is wrong, the solution runs top to bottom in under 60 s (its try-it trains
the gated unit with the learner's backward), and the class-scale grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch16's own."""

from __future__ import annotations

import re

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

A = "ch16_multimodal"
AUTO = {  # autograded test cells and their points
    "test_late_fusion_visible": 1,
    "test_late_fusion_hidden": 2,
    "test_pool_to_length_visible": 1,
    "test_pool_to_length_hidden": 3,
    "test_repeat_to_length_visible": 1,
    "test_repeat_to_length_hidden": 2,
    "test_gated_fusion_forward_visible": 1,
    "test_gated_fusion_forward_hidden": 2,
    "test_gated_fusion_backward_visible": 1,
    "test_gated_fusion_backward_hidden": 3,
    "test_word_error_rate_visible": 1,
    "test_word_error_rate_hidden": 2,
}
LATE = ["test_late_fusion_visible", "test_late_fusion_hidden"]
POOL = ["test_pool_to_length_visible", "test_pool_to_length_hidden"]
REPEAT = ["test_repeat_to_length_visible", "test_repeat_to_length_hidden"]
FWD = ["test_gated_fusion_forward_visible", "test_gated_fusion_forward_hidden"]
BWD = ["test_gated_fusion_backward_visible", "test_gated_fusion_backward_hidden"]
WER = ["test_word_error_rate_visible", "test_word_error_rate_hidden"]

# name -> Bug(cell, old, new, the test cells that must score 0); every other test cell keeps
# full marks
BUGS = {
    # The weighted sum of log-probabilities, not renormalised.
    "bug_late_fusion_not_renormalised": Bug(
        "late_fusion",
        "fused = s - top - np.log(np.exp(s - top).sum(axis=1, keepdims=True))",
        "fused = s",
        LATE,
    ),
    # 0 * (-inf) = NaN when an expert of weight 0 rules a class out (only the hidden case has one).
    "bug_late_fusion_zero_weight_times_inf": Bug(
        "late_fusion", "if w != 0:", "if True:", ["test_late_fusion_hidden"]
    ),
    # log(sum(exp(s))) without the maximum subtracted: log-likelihoods of -1e3 underflow.
    "bug_late_fusion_naive_log_sum_exp": Bug(
        "late_fusion",
        "top = s.max(axis=1, keepdims=True)",
        "top = np.zeros((s.shape[0], 1))",
        ["test_late_fusion_hidden"],
    ),
    # The padding averaged in: all T frames segmented instead of the L valid ones.
    "bug_pool_reads_padding": Bug("pool_to_length", "L = int(lengths[n])", "L = T", POOL),
    # Segment ends rounded down: too short segments, empty ones when L < T_out.
    "bug_pool_end_rounded_down": Bug(
        "pool_to_length",
        "end = -((-(j + 1) * L) // T_out)",
        "end = max(((j + 1) * L) // T_out, start + 1)",
        POOL,
    ),
    # The source frame rounded to the nearest integer instead of down.
    "bug_repeat_rounds_the_source_frame": Bug(
        "repeat_to_length",
        "source = (np.arange(T_out) * L) // T_out",
        "source = np.minimum(np.rint(np.arange(T_out) * L / T_out).astype(int), L - 1)",
        REPEAT,
    ),
    # A vector given a time axis of 1 instead of being repeated T_out times.
    "bug_repeat_vector_not_repeated": Bug(
        "repeat_to_length",
        "return np.repeat(x[:, None, :], T_out, axis=1)",
        "return x[:, None, :]",
        REPEAT,
    ),
    # z on the v branch: the backward, called with this forward's cache, fails too.
    "bug_gate_on_the_wrong_branch": Bug(
        "gated_fusion_forward",
        "f = z * h_a + (1.0 - z) * h_v",
        "f = (1.0 - z) * h_a + z * h_v",
        FWD + BWD,
    ),
    # da and dv only through their own branch, not through the gate.
    "bug_backward_without_the_gate_path": Bug(
        "gated_fusion_backward",
        'da = delta_a @ params["W_a"] + through_gate[:, :Da]',
        'da = delta_a @ params["W_a"]',
        BWD,
        also=(
            ('dv = delta_v @ params["W_v"] + through_gate[:, Da:]', 'dv = delta_v @ params["W_v"]'),
        ),
    ),
    # The sigmoid's derivative z (1 - z) left out of the gate's delta.
    "bug_backward_without_the_sigmoid_derivative": Bug(
        "gated_fusion_backward",
        "delta_z = df * (h_a - h_v) * z * (1.0 - z)",
        "delta_z = df * (h_a - h_v)",
        BWD,
    ),
    # A bias gradient from the first item only, not summed over the batch (visible N = 2).
    "bug_backward_bias_not_summed": Bug(
        "gated_fusion_backward", '"b_a": delta_a.sum(axis=0)', '"b_a": delta_a[0]', BWD
    ),
    # Characters instead of words.
    "bug_wer_over_characters": Bug(
        "word_error_rate", "r, h = ref.split(), hyp.split()", "r, h = list(ref), list(hyp)", WER
    ),
    # The mean of the per-sentence rates instead of the corpus rate.
    "bug_wer_mean_of_sentence_rates": Bug(
        "word_error_rate",
        "errors += int(D[-1, -1])",
        "errors += int(D[-1, -1]) / len(r) / len(refs)",
        WER,
        also=(("wer = errors / words", "wer = errors"),),
    ),
}

DELEGATE_LATE = """import rnn_ref.numpy

def late_fusion(log_probs, weights):
    return rnn_ref.numpy.late_fusion(log_probs, weights)"""

DELEGATE_POOL_TORCH = """import torch
import torch.nn.functional as F

def pool_to_length(x, lengths, T_out):
    out = []
    for n in range(len(x)):
        seq = torch.as_tensor(np.asarray(x)[n : n + 1, : int(lengths[n])]).transpose(1, 2)
        out.append(F.adaptive_avg_pool1d(seq, T_out).transpose(1, 2)[0].numpy())
    return np.stack(out)"""

# torch first, NumPy as a fallback: a trip counts even when the exception is caught.
DELEGATE_REPEAT_CAUGHT = """import torch

def repeat_to_length(x, T_out, lengths=None):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return np.repeat(x[:, None, :], T_out, axis=1)
    N, T, D = x.shape
    lengths = np.full(N, T) if lengths is None else lengths
    out = np.zeros((N, T_out, D))
    for n in range(N):
        L = int(lengths[n])
        try:
            seq = torch.as_tensor(x[n : n + 1, :L]).transpose(1, 2)
            out[n] = torch.nn.functional.interpolate(seq, size=T_out).transpose(1, 2)[0].numpy()
        except Exception:
            out[n] = x[n, (np.arange(T_out) * L) // T_out]
    return out"""

DELEGATE_BACKWARD_AUTOGRAD = """import torch

def gated_fusion_backward(df, cache):
    t = {k: torch.tensor(np.asarray(p, dtype=np.float64), requires_grad=True)
         for k, p in cache["params"].items()}
    a = torch.tensor(cache["a"], requires_grad=True)
    v = torch.tensor(cache["v"], requires_grad=True)
    h_a = torch.tanh(a @ t["W_a"].T + t["b_a"])
    h_v = torch.tanh(v @ t["W_v"].T + t["b_v"])
    z = torch.sigmoid(torch.cat([a, v], dim=1) @ t["W_z"].T + t["b_z"])
    f = z * h_a + (1 - z) * h_v
    f.backward(torch.as_tensor(np.asarray(df, dtype=np.float64)))
    return a.grad.numpy(), v.grad.numpy(), {k: p.grad.numpy() for k, p in t.items()}"""

DELEGATE_WER_EDIT_DISTANCE = """from rnn_ref.numpy import edit_distance as _levenshtein

def word_error_rate(refs, hyps):
    errors = sum(_levenshtein(r.split(), h.split()) for r, h in zip(refs, hyps))
    return errors / sum(len(r.split()) for r in refs)"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_late_fusion_reference": Delegation("late_fusion", DELEGATE_LATE, LATE),
    "delegate_pool_torch_adaptive_avg_pool1d": Delegation(
        "pool_to_length", DELEGATE_POOL_TORCH, POOL
    ),
    "delegate_repeat_torch_interpolate_caught": Delegation(
        "repeat_to_length", DELEGATE_REPEAT_CAUGHT, REPEAT
    ),
    "delegate_backward_autograd": Delegation(
        "gated_fusion_backward", DELEGATE_BACKWARD_AUTOGRAD, BWD
    ),
    "delegate_wer_reference_edit_distance": Delegation(
        "word_error_rate", DELEGATE_WER_EDIT_DISTANCE, WER
    ),
}

# Correct, and written nothing like the solution: pooling as a product with an averaging matrix.
POOL_BY_MATRIX = """def pool_to_length(x, lengths, T_out):
    x = np.asarray(x, dtype=np.float64)
    N, T, D = x.shape
    L = np.asarray(lengths)[:, None, None]
    j = np.arange(T_out)[None, :, None]
    t = np.arange(T)[None, None, :]
    start, end = (j * L) // T_out, -((-(j + 1) * L) // T_out)
    A = ((t >= start) & (t < end)) / (end - start)
    return np.einsum("njt,ntd->njd", A, x)"""

# Correct, with a tuple for a cache and the sigmoid as 1 / (1 + exp(-x)).
GMU_TUPLE_CACHE_FORWARD = """def gated_fusion_forward(a, v, params):
    av = np.hstack([a, v])
    h_a = np.tanh(a @ params["W_a"].T + params["b_a"])
    h_v = np.tanh(v @ params["W_v"].T + params["b_v"])
    with np.errstate(over="ignore"):
        z = 1.0 / (1.0 + np.exp(-(av @ params["W_z"].T + params["b_z"])))
    return z * h_a + (1 - z) * h_v, (av, a.shape[1], h_a, h_v, z, params)"""

GMU_TUPLE_CACHE_BACKWARD = """def gated_fusion_backward(df, cache):
    av, Da, h_a, h_v, z, params = cache
    g_a = df * z * (1 - h_a**2)
    g_v = df * (1 - z) * (1 - h_v**2)
    g_z = df * (h_a - h_v) * z * (1 - z)
    d_av = g_z @ params["W_z"]
    d_av[:, :Da] += g_a @ params["W_a"]
    d_av[:, Da:] += g_v @ params["W_v"]
    grads = {"W_a": g_a.T @ av[:, :Da], "b_a": g_a.sum(0), "W_v": g_v.T @ av[:, Da:],
             "b_v": g_v.sum(0), "W_z": g_z.T @ av, "b_z": g_z.sum(0)}
    return d_av[:, :Da], d_av[:, Da:], grads"""


def _gmu_tuple_cache(sol, _):
    nb = with_source(sol, "gated_fusion_forward", GMU_TUPLE_CACHE_FORWARD)
    return with_source(nb, "gated_fusion_backward", GMU_TUPLE_CACHE_BACKWARD)


RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_alignment_fusion": 3},
    bugs=BUGS,
    delegations=DELEGATIONS,
    others={
        "pool_by_matrix": lambda sol, _: with_source(sol, "pool_to_length", POOL_BY_MATRIX),
        "gmu_tuple_cache": _gmu_tuple_cache,
    },
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_", "through_gate", "// T_out"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


@pytest.mark.parametrize("who", ["pool_by_matrix", "gmu_tuple_cache"])
def test_correct_answers_written_differently_keep_full_marks(graded, who):
    assert_scores(graded.scores[who], AUTO, [])


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_late_fusion_not_renormalised", "test_late_fusion_hidden")
    assert err.ename == "GradingError" and "renormalise" in err.evalue
    err = graded.error("bug_late_fusion_zero_weight_times_inf", "test_late_fusion_hidden")
    assert "0 * (-inf) is NaN" in err.evalue and "weight" in err.evalue
    err = graded.error("bug_late_fusion_naive_log_sum_exp", "test_late_fusion_hidden")
    assert "underflow" in err.evalue and "-1e3" in err.evalue
    assert "subtract" not in err.evalue.lower() and "maximum" not in err.evalue.lower()
    err = graded.error("bug_pool_reads_padding", "test_pool_to_length_hidden")
    assert "padding" in err.evalue
    err = graded.error("bug_pool_end_rounded_down", "test_pool_to_length_hidden")
    assert "rounded up" in err.evalue or "ceil" in err.evalue
    err = graded.error("bug_repeat_rounds_the_source_frame", "test_repeat_to_length_hidden")
    assert "floor(j L / T_out)" in err.evalue
    err = graded.error("bug_repeat_vector_not_repeated", "test_repeat_to_length_hidden")
    assert "has shape" in err.evalue and "vector" in err.evalue
    err = graded.error("bug_gate_on_the_wrong_branch", "test_gated_fusion_forward_hidden")
    assert "wrong branch" in err.evalue
    err = graded.error("bug_gate_on_the_wrong_branch", "test_gated_fusion_backward_hidden")
    assert "fix the forward first" in err.evalue
    err = graded.error("bug_backward_without_the_gate_path", "test_gated_fusion_backward_hidden")
    assert "through the gate" in err.evalue
    err = graded.error(
        "bug_backward_without_the_sigmoid_derivative", "test_gated_fusion_backward_hidden"
    )
    assert "dW_z" in err.evalue or "da" in err.evalue
    err = graded.error("bug_backward_bias_not_summed", "test_gated_fusion_backward_hidden")
    assert "db_a" in err.evalue
    err = graded.error("bug_wer_over_characters", "test_word_error_rate_hidden")
    assert "characters, not words" in err.evalue
    err = graded.error("bug_wer_mean_of_sentence_rates", "test_word_error_rate_hidden")
    assert "mean of the per-sentence rates" in err.evalue
    err = graded.error("delegate_late_fusion_reference", "test_late_fusion_hidden")
    assert err.ename == "DelegationError" and "rnn_ref.numpy.late_fusion" in err.evalue
    err = graded.error("delegate_pool_torch_adaptive_avg_pool1d", "test_pool_to_length_visible")
    assert err.ename == "DelegationError" and "adaptive_avg_pool1d" in err.evalue
    err = graded.error("delegate_repeat_torch_interpolate_caught", "test_repeat_to_length_hidden")
    assert err.ename == "DelegationError" and "interpolate" in err.evalue
    err = graded.error("delegate_backward_autograd", "test_gated_fusion_backward_hidden")
    assert err.ename == "DelegationError" and "backward" in err.evalue
    err = graded.error("delegate_wer_reference_edit_distance", "test_word_error_rate_visible")
    assert err.ename == "DelegationError" and "edit_distance" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    out = printed(nb)
    assert out.count("Visible tests passed.") == 6
    # Late fusion: the weight chosen on validation moves to the clean (left) half as the noise
    # on the right half grows, and the fused model beats the noisier half.
    rows = re.findall(
        r"\s*([\d.]+) \|\s*([\d.]+) \|\s*([\d.]+) \|\s*([\d.]+) \| ([\d.]+) \(w = ([\d.]+)\)", out
    )
    assert len(rows) == 3
    table = [[float(v) for v in r] for r in rows]
    assert [r[0] for r in table] == [0.0, 0.4, 0.8]
    assert table[0][4] > max(table[0][1], table[0][2])  # clean halves: fusion beats both
    assert table[2][5] >= table[0][5]  # the left half's weight grows with the right's noise
    assert all(r[4] > r[2] for r in table)
    # The gated unit, trained with the learner's backward, beats one fixed weight when each
    # item has its own noisy half, and its gate leans away from the noisy half.
    m = re.search(
        r"late fusion \(1/2, 1/2\) ([\d.]+), gated unit ([\d.]+)\n"
        r"mean gate on the left branch: ([\d.]+) when the left half is noisy, ([\d.]+) when",
        out,
    )
    assert m, out
    late, gmu, z_left_noisy, z_right_noisy = (float(g) for g in m.groups())
    assert gmu > late and z_left_noisy < 0.5 < z_right_noisy
    assert "all the input arrays must have same number of dimensions" in out
    assert "(4, 6, 8)" in out and "(4, 8, 21)" in out
    assert "corpus WER 0.300 over 10 words" in out


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` on a flat folder of <student>.ipynb: sandboxed kernels (no torch, no
    rnn_ref.numpy) only record, and the grader replays the checks in its own process."""
    replayed = (
        "bug_late_fusion_naive_log_sum_exp",
        "bug_pool_reads_padding",
        "bug_gate_on_the_wrong_branch",
        "bug_backward_without_the_gate_path",
        "bug_wer_mean_of_sentence_rates",
    )
    extra = {"gmu_tuple_cache": _gmu_tuple_cache(RT.solution(), None)}
    rows = RT.grade_class(tmp_path, replayed, extra=extra)
    RT.assert_class_row(rows["gmu_tuple_cache"], [])
