"""Grading round trip for ch15_vision in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (a bug in ctc_forward also zeroes the gradient, which calls it; a bug in
edit_distance also zeroes the CER), delegation (the reference rnn_ref.numpy.ctc, torch's
CTCLoss / functional.ctc_loss, autograd) earns nothing, a correct gradient written with Graves'
convention for beta (the emission at t included, divided out again) keeps full marks, the
feedback names what is wrong, the solution runs top to bottom in under 60 s (its try-it trains
a small network with the learner's CTC gradient), and the class-scale grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch15's own."""

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

A = "ch15_vision"
AUTO = {  # autograded test cells and their points
    "test_ctc_forward_visible": 1,
    "test_ctc_forward_hidden": 5,
    "test_ctc_gradient_visible": 1,
    "test_ctc_gradient_hidden": 5,
    "test_greedy_decode_visible": 1,
    "test_greedy_decode_hidden": 2,
    "test_edit_distance_visible": 1,
    "test_edit_distance_hidden": 2,
    "test_character_error_rate_visible": 1,
    "test_character_error_rate_hidden": 1,
}
FWD = ["test_ctc_forward_visible", "test_ctc_forward_hidden"]
GRAD = ["test_ctc_gradient_visible", "test_ctc_gradient_hidden"]
GREEDY = ["test_greedy_decode_visible", "test_greedy_decode_hidden"]
ED = ["test_edit_distance_visible", "test_edit_distance_hidden"]
CER = ["test_character_error_rate_visible", "test_character_error_rate_hidden"]

GREEDY_LOOP = """        if k != prev and k != blank:  # a new run of a label (a blank ends a run)
            labels.append(k)
        prev = k"""

# name -> Bug(cell, old, new, the test cells that must score 0); every other test cell keeps
# full marks
BUGS = {
    # The skip s - 2 -> s allowed between equal labels: "1 1" then reads as "1" too.
    "bug_skip_between_equal_labels": Bug(
        "ctc_forward", "skip[3::2] = labels[1:] != labels[:-1]", "skip[3::2] = True", FWD + GRAD
    ),
    # log(exp(a) + exp(b)) without the max shift: exp underflows past about -745.
    "bug_naive_log_sum_exp": Bug(
        "ctc_forward",
        "np.logaddexp(total[1:], prev[:-1])",
        "np.log(np.exp(total[1:]) + np.exp(prev[:-1]))",
        ["test_ctc_forward_hidden", "test_ctc_gradient_hidden"],
        also=(
            ("np.logaddexp(total[2:], prev[:-2])", "np.log(np.exp(total[2:]) + np.exp(prev[:-2]))"),
        ),
    ),
    # The nll from the last blank only (a path may end in the last label too).
    "bug_end_in_last_blank_only": Bug(
        "ctc_forward",
        "        log_p = np.logaddexp(log_p, log_alpha[-1, -2])\n",
        "        pass\n",
        FWD + GRAD,
    ),
    # -gamma: the gradient with respect to log y, not the logits.
    "bug_gradient_wrt_log_y": Bug(
        "ctc_gradient", "dlogits = np.exp(log_y) - gamma", "dlogits = -gamma", GRAD
    ),
    "bug_occupancy_not_divided_by_p": Bug(
        "ctc_gradient",
        "post = np.exp(log_alpha + log_beta + nll)",
        "post = np.exp(log_alpha + log_beta)",
        GRAD,
    ),
    # exp(z + max z) instead of exp(z - max z) in the log-softmax: the same value in exact
    # arithmetic, so only the hidden case with logits around +-1000 sees it.
    "bug_log_softmax_adds_max": Bug(
        "ctc_gradient",
        "zs = z - z.max(axis=1, keepdims=True)",
        "zs = z + z.max(axis=1, keepdims=True)",
        ["test_ctc_gradient_hidden"],
    ),
    # No special case for an impossible alignment: exp(-inf + inf) = NaN in the gradient.
    "bug_impossible_alignment_nan": Bug(
        "ctc_gradient", "if not np.isfinite(nll):", "if False:", ["test_ctc_gradient_hidden"]
    ),
    "bug_greedy_drops_blanks_before_collapsing": Bug(
        "greedy_decode",
        GREEDY_LOOP,
        "        if k == blank:\n            continue\n        if k != prev:\n"
        "            labels.append(k)\n        prev = k",
        GREEDY,
    ),
    # A substitution as a deletion plus an insertion; the CER uses edit_distance, so it fails too.
    "bug_substitution_costs_two": Bug(
        "edit_distance",
        "D[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])",
        "D[i - 1, j - 1] + 2 * (ref[i - 1] != hyp[j - 1])",
        ED + CER,
    ),
    "bug_cer_mean_of_per_string_rates": Bug(
        "character_error_rate",
        "    cer = errors / sum(len(r) for r in refs)",
        "    cer = np.mean([edit_distance(r, h) / len(r) for r, h in zip(refs, hyps)])",
        CER,
    ),
}

# ctc_forward's own alpha recursion, shared by the delegations that keep it.
FORWARD_ALPHA = """    log_y = np.asarray(log_y, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    T, S = log_y.shape[0], labels.size
    ext = np.full(2 * S + 1, blank)
    ext[1::2] = labels
    skip = np.zeros(ext.size, dtype=bool)
    skip[3::2] = labels[1:] != labels[:-1]
    log_alpha = np.full((T, ext.size), -np.inf)
    log_alpha[0, :2] = log_y[0, ext[:2]]
    for t in range(1, T):
        prev = log_alpha[t - 1]
        total = prev.copy()
        total[1:] = np.logaddexp(total[1:], prev[:-1])
        total[2:] = np.where(skip[2:], np.logaddexp(total[2:], prev[:-2]), total[2:])
        log_alpha[t] = total + log_y[t, ext]
"""

DELEGATE_FORWARD_TORCH = (
    """import torch
import torch.nn.functional as F

def ctc_forward(log_y, labels, blank=0):
"""
    + FORWARD_ALPHA
    + """    loss = F.ctc_loss(torch.as_tensor(log_y)[:, None, :], torch.as_tensor(labels)[None],
                      torch.tensor([T]), torch.tensor([S]), blank=blank, reduction="none")
    return float(loss[0]), log_alpha"""
)

DELEGATE_FORWARD_MODULE_CAUGHT = (
    """import torch

def ctc_forward(log_y, labels, blank=0):
"""
    + FORWARD_ALPHA
    + """    try:  # torch's CTC first, our own as a fallback: a trip counts even if caught
        loss = torch.nn.CTCLoss(blank=blank, reduction="none")(
            torch.as_tensor(log_y)[:, None, :], torch.as_tensor(labels)[None],
            torch.tensor([T]), torch.tensor([S]))
        return float(loss[0]), log_alpha
    except Exception:
        end = log_alpha[-1, -1] if S == 0 else np.logaddexp(log_alpha[-1, -1], log_alpha[-1, -2])
        return float(-end), log_alpha"""
)

DELEGATE_GRADIENT_REFERENCE = """import rnn_ref.numpy

def ctc_gradient(logits, labels, blank=0):
    logits, labels = np.asarray(logits), np.asarray(labels)
    loss, cache = rnn_ref.numpy.ctc_loss(logits[None], labels[None], [len(logits)],
                                         [labels.size], blank)
    return float(loss[0]), rnn_ref.numpy.ctc_backward(np.ones(1), cache)[0]"""

# A torch transcription of the forward recursion, differentiated by autograd.
DELEGATE_GRADIENT_AUTOGRAD = """import torch

def ctc_gradient(logits, labels, blank=0):
    z = torch.tensor(np.asarray(logits, dtype=np.float64), requires_grad=True)
    log_y = torch.log_softmax(z, dim=1)
    ext = [blank]
    for label in np.asarray(labels).tolist():
        ext += [label, blank]
    neg = torch.tensor(-np.inf, dtype=torch.float64)
    alpha = [log_y[0, ext[s]] if s < 2 else neg for s in range(len(ext))]
    for t in range(1, z.shape[0]):
        new = []
        for s in range(len(ext)):
            terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[s - 2])
            new.append(torch.logsumexp(torch.stack(terms), 0) + log_y[t, ext[s]])
        alpha = new
    nll = -torch.logsumexp(torch.stack(alpha[-2:]), 0)
    nll.backward()
    return float(nll), z.grad.numpy()"""

DELEGATE_GREEDY = """def greedy_decode(log_y, blank=0):
    from rnn_ref.numpy import ctc_greedy_decode
    return ctc_greedy_decode(np.asarray(log_y)[None], None, blank)[0]"""

DELEGATE_EDIT = """from rnn_ref.numpy import edit_distance as _levenshtein

def edit_distance(ref, hyp):
    return _levenshtein(ref, hyp)"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_forward_torch_functional": Delegation(
        "ctc_forward", DELEGATE_FORWARD_TORCH, FWD + GRAD
    ),
    "delegate_forward_torch_module_caught": Delegation(
        "ctc_forward", DELEGATE_FORWARD_MODULE_CAUGHT, FWD + GRAD
    ),
    "delegate_gradient_reference": Delegation("ctc_gradient", DELEGATE_GRADIENT_REFERENCE, GRAD),
    "delegate_gradient_autograd": Delegation("ctc_gradient", DELEGATE_GRADIENT_AUTOGRAD, GRAD),
    "delegate_greedy_reference": Delegation("greedy_decode", DELEGATE_GREEDY, GREEDY),
    "delegate_edit_distance_import": Delegation("edit_distance", DELEGATE_EDIT, ED + CER),
}

# Graves et al. (2006): beta_t(s) includes the emission at t, so alpha * beta counts y_{t, l'_s}
# twice and the occupancy divides it out. Correct, and written nothing like the solution.
GRADIENT_GRAVES = """def ctc_gradient(logits, labels, blank=0):
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    zs = z - z.max(axis=1, keepdims=True)
    log_y = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
    nll, log_alpha = ctc_forward(log_y, labels, blank)
    T, C = z.shape
    if np.isinf(nll):
        return nll, np.zeros((T, C))
    ext = np.full(2 * labels.size + 1, blank)
    ext[1::2] = labels
    L = ext.size
    lb = np.full((T, L), -np.inf)
    lb[-1, -1] = log_y[-1, ext[-1]]
    if L > 1:
        lb[-1, -2] = log_y[-1, ext[-2]]
    for t in range(T - 2, -1, -1):
        for s in range(L):
            v = lb[t + 1, s]
            if s + 1 < L:
                v = np.logaddexp(v, lb[t + 1, s + 1])
            if s + 2 < L and ext[s + 2] != blank and ext[s + 2] != ext[s]:
                v = np.logaddexp(v, lb[t + 1, s + 2])
            lb[t, s] = v + log_y[t, ext[s]]
    dlogits = np.exp(log_y)
    for s in range(L):
        dlogits[:, ext[s]] -= np.exp(log_alpha[:, s] + lb[:, s] - log_y[:, ext[s]] + nll)
    return nll, dlogits"""

RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_blank_flatten": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
    others={
        "gradient_graves_beta": lambda sol, _: with_source(sol, "ctc_gradient", GRADIENT_GRAVES),
    },
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_", "skip[3::2]", "np.add.at"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_a_correct_gradient_in_graves_convention_keeps_full_marks(graded):
    assert_scores(graded.scores["gradient_graves_beta"], AUTO, [])


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_skip_between_equal_labels", "test_ctc_forward_hidden")
    assert err.ename == "GradingError" and "between two equal labels" in err.evalue
    err = graded.error("bug_naive_log_sum_exp", "test_ctc_forward_hidden")
    assert "log space" in err.evalue and "T = 400" in err.evalue
    err = graded.error("bug_end_in_last_blank_only", "test_ctc_forward_hidden")
    assert "also end in the last label" in err.evalue
    err = graded.error("bug_gradient_wrt_log_y", "test_ctc_gradient_hidden")
    assert "with respect to log y" in err.evalue
    err = graded.error("bug_occupancy_not_divided_by_p", "test_ctc_gradient_hidden")
    assert "not 0" in err.evalue and "divided by p(l | x)" in err.evalue
    err = graded.error("bug_log_softmax_adds_max", "test_ctc_gradient_hidden")
    assert "overflow" in err.evalue and "logits around +-1000" in err.evalue
    assert "subtract" not in err.evalue.lower() and "maximum" not in err.evalue.lower()
    err = graded.error("bug_impossible_alignment_nan", "test_ctc_gradient_hidden")
    assert "exactly 0 when no alignment exists" in err.evalue
    err = graded.error("bug_greedy_drops_blanks_before_collapsing", "test_greedy_decode_hidden")
    assert "drop the blanks before collapsing" in err.evalue
    err = graded.error("bug_substitution_costs_two", "test_edit_distance_hidden")
    assert "a substitution costs 1" in err.evalue
    err = graded.error("bug_cer_mean_of_per_string_rates", "test_character_error_rate_hidden")
    assert "mean of the per-string rates" in err.evalue
    err = graded.error("delegate_forward_torch_functional", "test_ctc_forward_hidden")
    assert err.ename == "DelegationError" and "torch.nn.functional.ctc_loss" in err.evalue
    err = graded.error("delegate_forward_torch_module_caught", "test_ctc_forward_visible")
    assert err.ename == "DelegationError" and "torch.nn.CTCLoss.forward" in err.evalue
    err = graded.error("delegate_gradient_reference", "test_ctc_gradient_hidden")
    assert "rnn_ref.numpy.ctc_loss" in err.evalue
    err = graded.error("delegate_gradient_autograd", "test_ctc_gradient_hidden")
    assert err.ename == "DelegationError" and "backward" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    out = printed(nb)
    assert out.count("Visible tests passed.") == 5
    # The try-it trains a small network with the learner's CTC gradient: the loss falls and the
    # test strings (images never trained on) are read far better than before training.
    before = float(re.search(r"before training: CER ([\d.]+)", out).group(1))
    epochs = [
        (float(m.group(1)), float(m.group(2)), float(m.group(3)))
        for m in re.finditer(
            r"training loss ([\d.]+), test CER ([\d.]+), exact match ([\d.]+)%", out
        )
    ]
    assert len(epochs) == 6
    losses = [e[0] for e in epochs]
    assert losses[-1] < 0.5 * losses[0]
    assert epochs[-1][1] < 0.4 < before and epochs[-1][2] > 40.0


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` on a flat folder of <student>.ipynb: sandboxed kernels (no torch, no
    rnn_ref.numpy) only record, and the grader replays the checks in its own process."""
    replayed = (
        "bug_skip_between_equal_labels",
        "bug_naive_log_sum_exp",
        "bug_gradient_wrt_log_y",
        "bug_greedy_drops_blanks_before_collapsing",
        "bug_cer_mean_of_per_string_rates",
    )
    graves = with_source(RT.solution(), "ctc_gradient", GRADIENT_GRAVES)
    rows = RT.grade_class(tmp_path, replayed, extra={"gradient_graves_beta": graves})
    RT.assert_class_row(rows["gradient_graves_beta"], [])
