"""Grading round trip for ch14_recsys in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (no reset after the first step, sessions of one event not skipped,
stopping when the first lane runs dry, optimistic ties, seen items not excluded, MRR without its
cut-off, transitions counted across sessions, no popularity fallback, an unscaled one, a naive
log(sigmoid) that overflows, a gradient of the summed loss), delegation (the reference
rnn_ref.numpy functions and classes, autograd) earns nothing, a correct vectorised answer
written nothing like the solution keeps full marks, the feedback names what is wrong, the
solution runs top to bottom in under 60 s (its try-it trains a small factor model with the
learner's BPR gradient on the learner's batches and beats popularity), and the class-scale
grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch14's own."""

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

A = "ch14_recsys"
AUTO = {  # autograded test cells and their points
    "test_session_parallel_batches_visible": 1,
    "test_session_parallel_batches_hidden": 4,
    "test_rank_targets_visible": 1,
    "test_rank_targets_hidden": 3,
    "test_hr_mrr_at_k_visible": 1,
    "test_hr_mrr_at_k_hidden": 1,
    "test_transition_counts_visible": 1,
    "test_transition_counts_hidden": 1,
    "test_markov_scores_visible": 1,
    "test_markov_scores_hidden": 2,
    "test_bpr_loss_visible": 1,
    "test_bpr_loss_hidden": 1,
    "test_bpr_gradient_visible": 1,
    "test_bpr_gradient_hidden": 1,
}
BATCH = ["test_session_parallel_batches_visible", "test_session_parallel_batches_hidden"]
RANK = ["test_rank_targets_visible", "test_rank_targets_hidden"]
HRMRR = ["test_hr_mrr_at_k_visible", "test_hr_mrr_at_k_hidden"]
COUNTS = ["test_transition_counts_visible", "test_transition_counts_hidden"]
MARKOV = ["test_markov_scores_visible", "test_markov_scores_hidden"]
LOSS = ["test_bpr_loss_visible", "test_bpr_loss_hidden"]
GRAD = ["test_bpr_gradient_visible", "test_bpr_gradient_hidden"]

# name -> Bug(cell, old, new, the test cells that must score 0); every other test cell keeps
# full marks
BUGS = {
    # The reset flag only on the first row: a lane that takes a new session keeps its state.
    "bug_reset_only_at_the_start": Bug(
        "session_parallel_batches",
        "int(offsets[s + 1]), True",
        "int(offsets[s + 1]), False",
        BATCH,
    ),
    # Sessions of one event read as if they had a target.
    "bug_single_event_sessions_not_skipped": Bug(
        "session_parallel_batches",
        "offsets[s + 1] - offsets[s] >= 2]",
        "offsets[s + 1] - offsets[s] >= 1]",
        BATCH,
    ),
    # GRU4Rec's original loop stops when the first lane runs out of sessions (events lost).
    "bug_stop_when_first_lane_runs_dry": Bug(
        "session_parallel_batches",
        "    while any(p >= 0 for p in pos):",
        "    while all(p >= 0 for p in pos):",
        BATCH,
    ),
    "bug_optimistic_ties": Bug(
        "rank_targets", "(scores[n] >= scores[n, t])", "(scores[n] > scores[n, t])", RANK
    ),
    "bug_seen_items_not_excluded": Bug(
        "rank_targets",
        "        keep[list(seen[n])] = False  # the items seen earlier in the session ...\n",
        "",
        RANK,
    ),
    "bug_mrr_without_cutoff": Bug(
        "rank_targets", "np.where(hit, 1.0 / ranks, 0.0)", "1.0 / ranks", HRMRR
    ),
    "bug_transitions_across_sessions": Bug(
        "markov",
        "        np.add.at(counts, (s[:-1], s[1:]), 1.0)"
        "  # consecutive pairs inside this session only\n",
        "",
        COUNTS,
        also=(
            (
                "    ### END SOLUTION\n    return counts, popularity",
                "    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])\n"
                "    np.add.at(counts, (flat[:-1], flat[1:]), 1.0)\n"
                "    ### END SOLUTION\n    return counts, popularity",
            ),
        ),
    ),
    "bug_no_popularity_fallback": Bug(
        "markov",
        " + popularity / (popularity.max() + 1.0)",
        "",
        MARKOV,
    ),
    "bug_popularity_unscaled": Bug(
        "markov",
        " + popularity / (popularity.max() + 1.0)",
        " + popularity",
        MARKOV,
    ),
    # log(sigmoid(d)) written naively: sigmoid(-800) = 0 and log(0) = -inf.
    "bug_naive_log_sigmoid": Bug(
        "bpr",
        "loss = float(np.mean(np.logaddexp(0.0, -d)))",
        "loss = float(np.mean(-np.log(1.0 / (1.0 + np.exp(-d)))))",
        ["test_bpr_loss_hidden"],
    ),
    "bug_gradient_of_the_sum": Bug("bpr", "/ d.size", "/ 1.0", GRAD),
}

DELEGATE_BATCHES = """from rnn_ref.numpy import session_parallel_batches as _spb

def session_parallel_batches(offsets, batch_size):
    steps = list(_spb(np.asarray(offsets), batch_size))
    return tuple(np.array([s[i] for s in steps]) for i in range(3))"""

DELEGATE_RANK = """import rnn_ref.numpy

def rank_targets(scores, targets, seen):
    mask = np.zeros(np.shape(scores), dtype=bool)
    for n, row in enumerate(seen):
        mask[n, list(row)] = True
    return rnn_ref.numpy.rank_targets(scores, targets, exclude=mask)


def hr_mrr_at_k(ranks, k):
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks <= k)), float(np.mean(np.where(ranks <= k, 1 / ranks, 0.0)))"""

DELEGATE_MARKOV = """from rnn_ref.numpy import MarkovChain, Sessions

def _fit(sessions, n_items):
    lens = [len(s) for s in sessions]
    E = sum(lens)
    train = Sessions(np.concatenate(sessions), np.r_[0, np.cumsum(lens)], np.zeros(len(lens)),
                     np.zeros(len(lens)), np.arange(E), None, n_items)
    return MarkovChain().fit(train)


def transition_counts(sessions, n_items):
    m = _fit(sessions, n_items)
    return m.counts.toarray(), m.popularity


def markov_scores(counts, popularity, last_items):
    counts = np.asarray(counts, dtype=np.float64)
    return counts[np.asarray(last_items)] + popularity / (popularity.max() + 1.0)"""

DELEGATE_BPR_AUTOGRAD = """import torch

def bpr_loss(r_pos, r_neg):
    d = np.asarray(r_pos, dtype=np.float64)[:, None] - np.asarray(r_neg, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, -d)))


def bpr_gradient(r_pos, r_neg):
    rp = torch.tensor(np.asarray(r_pos, dtype=np.float64), requires_grad=True)
    rn = torch.tensor(np.asarray(r_neg, dtype=np.float64), requires_grad=True)
    loss = -torch.nn.functional.logsigmoid(rp[:, None] - rn).mean()
    loss.backward()
    return rp.grad.numpy(), rn.grad.numpy()"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_batches_reference": Delegation("session_parallel_batches", DELEGATE_BATCHES, BATCH),
    "delegate_rank_reference": Delegation("rank_targets", DELEGATE_RANK, RANK),
    "delegate_markov_reference_class": Delegation("markov", DELEGATE_MARKOV, COUNTS),
    "delegate_bpr_gradient_autograd": Delegation("bpr", DELEGATE_BPR_AUTOGRAD, GRAD),
}

# Correct answers written nothing like the solution: vectorised ranks (a mask and one
# comparison), batches from an event-driven schedule, a Markov chain with np.bincount on pairs.
VECTORISED_RANK = """def rank_targets(scores, targets, seen):
    scores = np.asarray(scores, dtype=np.float64)
    N, I = scores.shape
    t = np.asarray(targets, dtype=np.int64)
    excluded = np.zeros((N, I), dtype=bool)
    rows = np.repeat(np.arange(N), [len(s) for s in seen])
    cols = np.array([j for s in seen for j in s], dtype=np.int64)
    excluded[rows, cols] = True
    excluded[np.arange(N), t] = True
    at_least = scores >= scores[np.arange(N), t][:, None]
    return 1 + (at_least & ~excluded).sum(axis=1)


def hr_mrr_at_k(ranks, k):
    r = np.asarray(ranks)
    top = r <= k
    return top.mean(), (top / r).mean()"""

BINCOUNT_MARKOV = """def transition_counts(sessions, n_items):
    pairs = [np.asarray(s)[:-1] * n_items + np.asarray(s)[1:] for s in sessions]
    flat = np.concatenate(pairs) if pairs else np.zeros(0, dtype=np.int64)
    counts = np.bincount(flat, minlength=n_items * n_items).reshape(n_items, n_items)
    popularity = np.bincount(np.concatenate([np.asarray(s) for s in sessions]),
                             minlength=n_items)
    return counts.astype(float), popularity.astype(float)


def markov_scores(counts, popularity, last_items):
    tie_break = np.asarray(popularity) / (np.max(popularity) + 1)
    return np.asarray(counts)[last_items, :] + tie_break[None, :]"""

RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_leaks": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
    others={
        "vectorised_rank_and_bincount_markov": lambda sol, _: with_source(
            with_source(sol, "rank_targets", VECTORISED_RANK), "markov", BINCOUNT_MARKOV
        ),
    },
    release_listed=True,
    release_excludes=(
        "BEGIN SOLUTION",
        "HIDDEN TESTS",
        "check_",
        "keep[t] = False",
        "rows_rs.append",
        "popularity.max() + 1.0)",
    ),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_a_correct_answer_written_differently_keeps_full_marks(graded):
    assert_scores(graded.scores["vectorised_rank_and_bincount_markov"], AUTO, [])


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_reset_only_at_the_start", "test_session_parallel_batches_hidden")
    assert err.ename == "GradingError" and "reset[t=" in err.evalue
    err = graded.error(
        "bug_single_event_sessions_not_skipped", "test_session_parallel_batches_hidden"
    )
    assert "session of one event" in err.evalue or "lanes, expected B" in err.evalue
    err = graded.error("bug_stop_when_first_lane_runs_dry", "test_session_parallel_batches_hidden")
    assert "until every lane idles" in err.evalue
    err = graded.error("bug_optimistic_ties", "test_rank_targets_hidden")
    assert "pessimistic ties" in err.evalue
    err = graded.error("bug_seen_items_not_excluded", "test_rank_targets_hidden")
    assert "not excluded" in err.evalue
    err = graded.error("bug_mrr_without_cutoff", "test_hr_mrr_at_k_hidden")
    assert "no cut-off" in err.evalue
    err = graded.error("bug_transitions_across_sessions", "test_transition_counts_hidden")
    assert "across session boundaries" in err.evalue
    err = graded.error("bug_no_popularity_fallback", "test_markov_scores_hidden")
    assert "fall back to popularity" in err.evalue
    err = graded.error("bug_popularity_unscaled", "test_markov_scores_hidden")
    assert "unscaled" in err.evalue
    err = graded.error("bug_naive_log_sigmoid", "test_bpr_loss_hidden")
    assert "np.logaddexp" in err.evalue and "800" in err.evalue
    err = graded.error("bug_gradient_of_the_sum", "test_bpr_gradient_hidden")
    assert "summed loss" in err.evalue
    err = graded.error("delegate_batches_reference", "test_session_parallel_batches_hidden")
    assert err.ename == "DelegationError" and "session_parallel_batches" in err.evalue
    err = graded.error("delegate_rank_reference", "test_rank_targets_visible")
    assert err.ename == "DelegationError" and "rnn_ref.numpy.rank_targets" in err.evalue
    err = graded.error("delegate_markov_reference_class", "test_transition_counts_hidden")
    assert err.ename == "DelegationError" and "rnn_ref.numpy.Sessions" in err.evalue
    err = graded.error("delegate_bpr_gradient_autograd", "test_bpr_gradient_hidden")
    assert err.ename == "DelegationError" and "backward" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    out = printed(nb)
    assert out.count("Visible tests passed.") == 7
    # The try-it: the factor model trained with the learner's BPR gradient on the learner's
    # batches learns the shop's successors: its loss falls and it beats popularity by far.
    losses = [float(x) for x in re.findall(r"BPR loss ([\d.]+)", out)]
    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0]
    res = {
        m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^(.+?)\s+HR@5 ([\d.]+)\s+MRR@5 ([\d.]+)", out, re.M)
    }
    assert set(res) == {"popularity", "Markov chain", "factor model (BPR)"}
    assert res["factor model (BPR)"][0] > 1.5 * res["popularity"][0]
    assert res["Markov chain"][0] > 1.5 * res["popularity"][0]


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` on a flat folder of <student>.ipynb: sandboxed kernels (no torch, no
    rnn_ref.numpy) only record, and the grader replays the checks in its own process."""
    replayed = (
        "bug_reset_only_at_the_start",
        "bug_optimistic_ties",
        "bug_mrr_without_cutoff",
        "bug_transitions_across_sessions",
        "bug_popularity_unscaled",
        "bug_gradient_of_the_sum",
    )
    other = with_source(
        with_source(RT.solution(), "rank_targets", VECTORISED_RANK), "markov", BINCOUNT_MARKOV
    )
    rows = RT.grade_class(tmp_path, replayed, extra={"vectorised": other})
    RT.assert_class_row(rows["vectorised"], [])
