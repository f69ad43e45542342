"""Grading round trip for ch12_text in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the
test cells it should (a bug in softmax_with_temperature also zeroes the sampler, which draws from
it), delegation (the reference, torch autograd) earns nothing, correct samplers that draw
differently (rng.choice row by row, the Gumbel-max trick) keep full marks because the sampler is
checked statistically, the feedback names what is wrong, the solution runs top to bottom in
under 60 s, and the class-scale grader (which replays the recorded draws and computes the
chi-square tests in its own process) agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch12's own."""

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

A = "ch12_text"
AUTO = {  # autograded test cells and their points
    "test_embedding_visible": 1,
    "test_embedding_hidden": 3,
    "test_masked_mean_visible": 1,
    "test_masked_mean_hidden": 2,
    "test_last_valid_visible": 1,
    "test_last_valid_hidden": 1,
    "test_softmax_with_temperature_visible": 1,
    "test_softmax_with_temperature_hidden": 2,
    "test_sample_with_temperature_visible": 1,
    "test_sample_with_temperature_hidden": 3,
    "test_bits_per_char_visible": 1,
    "test_bits_per_char_hidden": 2,
    "test_add_k_probs_visible": 1,
    "test_add_k_probs_hidden": 2,
}
EMB = ["test_embedding_visible", "test_embedding_hidden"]
MM = ["test_masked_mean_visible", "test_masked_mean_hidden"]
LV = ["test_last_valid_visible", "test_last_valid_hidden"]
SM = ["test_softmax_with_temperature_visible", "test_softmax_with_temperature_hidden"]
SAMP = ["test_sample_with_temperature_visible", "test_sample_with_temperature_hidden"]
BPC = ["test_bits_per_char_visible", "test_bits_per_char_hidden"]
ADDK = ["test_add_k_probs_visible", "test_add_k_probs_hidden"]

COUNT_LOOP = """    for i in range(len(text) - n):
        if text[i : i + n] == context:
            counts[index[text[i + n]]] += 1
"""

# name -> Bug(cell, old, new, the test cells that must score 0); every other test cell keeps
# full marks
BUGS = {
    # dW_e[ids] += dx: a repeated id keeps one gradient instead of their sum.
    "bug_embedding_fancy_assignment": Bug(
        "embedding", "np.add.at(dW_e, ids, dx)", "dW_e[ids] += dx", EMB
    ),
    "bug_padding_row_gets_gradient": Bug(
        "embedding", "        dW_e[padding_idx] = 0.0", "        pass", EMB
    ),
    "bug_mean_over_all_steps": Bug("masked_mean", "w = m / counts", "w = m / m.shape[1]", MM),
    # hs[n, lengths[n]]: one step too far (past the end for a full row).
    "bug_last_valid_off_by_one": Bug("last_valid", "lengths - 1]", "lengths]", LV),
    # The sampler draws from the student's softmax_with_temperature: it fails too.
    "bug_temperature_multiplied": Bug(
        "softmax_with_temperature", ")) / temperature)", ")) * temperature)", SM + SAMP
    ),
    "bug_top_k_keeps_k_plus_1": Bug(
        "softmax_with_temperature", "order[:, top_k:]", "order[:, top_k + 1 :]", SM + SAMP
    ),
    "bug_top_k_keeps_the_smallest": Bug(
        "softmax_with_temperature", "np.argsort(-z2,", "np.argsort(z2,", SM + SAMP
    ),
    # exp(z + max z) instead of exp(z - max z): the same probabilities in exact arithmetic, so
    # only logits around 1e3 and 1e4 (a visible row, a hidden case) see it; the sampler draws
    # from it, and its hidden case with huge logits fails too.
    "bug_softmax_adds_max": Bug(
        "softmax_with_temperature",
        "(z2 - z2.max(axis=1, keepdims=True))",
        "(z2 + z2.max(axis=1, keepdims=True))",
        SM + ["test_sample_with_temperature_hidden"],
    ),
    "bug_sampler_global_random": Bug(
        "sample_with_temperature", "rng.random(p.shape[0])", "np.random.random(p.shape[0])", SAMP
    ),
    "bug_bpc_in_nats": Bug("bits_per_char", "float(nats / np.log(2))", "float(nats)", BPC),
    # The same in the log-softmax: only the hidden case with logits around 1000 sees it.
    "bug_bpc_adds_max": Bug(
        "bits_per_char",
        "zs = z - z.max(axis=-1, keepdims=True)",
        "zs = z + z.max(axis=-1, keepdims=True)",
        ["test_bits_per_char_hidden"],
    ),
    "bug_bpc_mask_ignored": Bug(
        "bits_per_char",
        "np.ones(targets.shape) if mask is None else np.asarray(mask, dtype=np.float64)",
        "np.ones(targets.shape)",
        BPC,
    ),
    "bug_add_k_denominator_without_kV": Bug(
        "add_k_probs", "counts.sum() + k * len(vocab)", "counts.sum() + k", ADDK
    ),
    # str.count misses overlapping occurrences: right on "abab" (visible), wrong on "aaaaabaaa".
    "bug_add_k_str_count": Bug(
        "add_k_probs",
        COUNT_LOOP,
        "    for w in vocab:\n        counts[index[w]] = text.count(context + w)\n",
        ["test_add_k_probs_hidden"],
    ),
}

DELEGATE_SAMPLER = """def sample_with_temperature(logits, temperature, rng, top_k=None):
    import rnn_ref.numpy
    return rnn_ref.numpy.sample_with_temperature(logits, temperature, rng, top_k)"""

DELEGATE_ADD_K = """from rnn_ref.numpy import NgramLM

def add_k_probs(text, context, vocab, k):
    return NgramLM(len(context) + 1, k).fit(text, vocab).probs(context)"""

DELEGATE_BPC = """from rnn_ref.numpy import bits_per_char as _reference_bpc

def bits_per_char(logits, targets, mask=None):
    return _reference_bpc(logits, targets, mask)"""

DELEGATE_AUTOGRAD = """import torch

def embedding_forward(ids, W_e, padding_idx=None):
    ids, W_e = np.asarray(ids), np.asarray(W_e, dtype=np.float64)
    return W_e[ids], (ids, W_e, padding_idx)

def embedding_backward(dx, cache):
    ids, W_e, padding_idx = cache
    emb = torch.nn.Embedding(W_e.shape[0], W_e.shape[1], padding_idx=padding_idx).double()
    emb(torch.as_tensor(ids)).backward(torch.as_tensor(dx))
    return emb.weight.grad.numpy()"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_sampler_runtime": Delegation("sample_with_temperature", DELEGATE_SAMPLER, SAMP),
    "delegate_add_k_class": Delegation("add_k_probs", DELEGATE_ADD_K, ADDK),
    "delegate_bpc_import": Delegation("bits_per_char", DELEGATE_BPC, BPC),
    "delegate_embedding_autograd": Delegation("embedding", DELEGATE_AUTOGRAD, EMB),
}

# Correct samplers that turn the generator's numbers into tokens differently from the solution.
SAMPLER_CHOICE = """def sample_with_temperature(logits, temperature, rng, top_k=None):
    p = np.atleast_2d(softmax_with_temperature(logits, temperature, top_k))
    ids = np.array([rng.choice(p.shape[1], p=row / row.sum()) for row in p])
    return int(ids[0]) if np.ndim(logits) == 1 else ids"""

SAMPLER_GUMBEL = """def sample_with_temperature(logits, temperature, rng, top_k=None):
    p = np.atleast_2d(softmax_with_temperature(logits, temperature, top_k))
    with np.errstate(divide="ignore"):  # log 0 = -inf: never the argmax
        ids = np.argmax(np.log(p) + rng.gumbel(size=p.shape), axis=1)
    return int(ids[0]) if np.ndim(logits) == 1 else ids"""

RT = RoundTrip(
    A,
    AUTO,
    full_marks=22,
    written={"written_temperature_ngrams": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
    others={
        "sampler_choice": lambda sol, _: with_source(
            sol, "sample_with_temperature", SAMPLER_CHOICE
        ),
        "sampler_gumbel": lambda sol, _: with_source(
            sol, "sample_with_temperature", SAMPLER_GUMBEL
        ),
    },
    release_listed=True,
    release_excludes=("BEGIN SOLUTION", "HIDDEN TESTS", "check_", "einsum"),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_correct_samplers_that_draw_differently_keep_full_marks(graded):
    for who in ("sampler_choice", "sampler_gumbel"):
        assert_scores(graded.scores[who], AUTO, [])


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_embedding_fancy_assignment", "test_embedding_hidden")
    assert err.ename == "GradingError" and "np.add.at" in err.evalue
    err = graded.error("bug_padding_row_gets_gradient", "test_embedding_hidden")
    assert "padding row only" in err.evalue
    err = graded.error("bug_mean_over_all_steps", "test_masked_mean_hidden")
    assert "pooled is wrong" in err.evalue
    err = graded.error("bug_last_valid_off_by_one", "test_last_valid_hidden")
    assert "IndexError" in err.evalue or "one step too far" in err.evalue
    err = graded.error("bug_temperature_multiplied", "test_softmax_with_temperature_hidden")
    assert "softmax(logits * temperature)" in err.evalue
    err = graded.error("bug_softmax_adds_max", "test_softmax_with_temperature_hidden")
    assert "NaN or infinity" in err.evalue and "around 1e4" in err.evalue
    assert "subtract" not in err.evalue.lower() and "largest" not in err.evalue.lower()
    err = graded.error("bug_bpc_adds_max", "test_bits_per_char_hidden")
    assert "NaN or infinity" in err.evalue and "around 1000" in err.evalue
    err = graded.error("bug_temperature_multiplied", "test_sample_with_temperature_hidden")
    assert "chi-square" in err.evalue and "p-value" in err.evalue
    err = graded.error("bug_top_k_keeps_k_plus_1", "test_softmax_with_temperature_hidden")
    assert "nonzero entries" in err.evalue
    err = graded.error("bug_top_k_keeps_k_plus_1", "test_sample_with_temperature_hidden")
    assert "has probability 0 here" in err.evalue
    err = graded.error("bug_sampler_global_random", "test_sample_with_temperature_hidden")
    assert "same seed gave different draws" in err.evalue
    err = graded.error("bug_bpc_in_nats", "test_bits_per_char_hidden")
    assert "in nats, not bits" in err.evalue
    err = graded.error("bug_bpc_mask_ignored", "test_bits_per_char_hidden")
    assert "padded positions" in err.evalue
    err = graded.error("bug_add_k_denominator_without_kV", "test_add_k_probs_hidden")
    assert "sum to" in err.evalue and "k V" in err.evalue
    err = graded.error("bug_add_k_str_count", "test_add_k_probs_hidden")
    assert "non-overlapping counts" in err.evalue and "str.count" in err.evalue
    err = graded.error("delegate_sampler_runtime", "test_sample_with_temperature_hidden")
    assert "rnn_ref.numpy.sample_with_temperature" in err.evalue
    err = graded.error("delegate_embedding_autograd", "test_embedding_hidden")
    assert err.ename == "DelegationError" and "backward" in err.evalue


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb, graded_only=True))
    out = printed(nb)
    # The try-it table: bits per character on held-out text, add-k and Kneser-Ney, n = 1..5.
    rows = [
        tuple(float(v) for v in m.groups())
        for m in re.finditer(r"^ (\d)\s+([\d.]+)\s+([\d.]+)$", out, flags=re.M)
    ]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5]
    addk, kn = [r[1] for r in rows], [r[2] for r in rows]
    assert kn == sorted(kn, reverse=True)  # Kneser-Ney improves with every order
    assert addk[4] > addk[3]  # add-k gets worse at n = 5 (the written answer's premise)
    assert kn[4] < addk[4] and kn[0] < 6.7  # below uniform, log2(101) = 6.66
    assert out.count("temperature ") >= 3


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` on a flat folder of <student>.ipynb: the kernels only record (the
    draws of the sampler included), and the grader replays the test cells, chi-square tests and
    all, in its own process."""
    replayed = ("bug_sampler_global_random", "bug_temperature_multiplied", "bug_add_k_str_count")
    gumbel = with_source(RT.solution(), "sample_with_temperature", SAMPLER_GUMBEL)
    rows = RT.grade_class(tmp_path, replayed, extra={"sampler_gumbel": gumbel})
    RT.assert_class_row(rows["sampler_gumbel"], [])


def test_chi_square_helpers_match_scipy():
    """The grader's chi-square (no scipy at grading time) agrees with scipy's."""
    import numpy as np
    from scipy import stats

    from rnn_ref.grading import ch12_text as checks

    for df in range(1, 13):
        for x in (0.01, 0.5, 1.0, 3.7, 10.0, 25.0, 80.0):
            assert np.isclose(checks._chi2_sf(x, df), stats.chi2.sf(x, df), rtol=1e-9, atol=1e-300)
    rng = np.random.default_rng(0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    draws = rng.choice(4, size=5000, p=p)
    stat, pvalue, df = checks.chi_square_test(draws, p)
    ref = stats.chisquare(np.bincount(draws, minlength=4), p * 5000)
    assert df == 3 and np.isclose(stat, ref.statistic) and np.isclose(pvalue, ref.pvalue)


def test_sampler_check_passes_correct_samplers_on_many_seeds():
    """A correct sampler passes the statistical check whatever the seeds (so a student's correct
    sampler, which consumes the generator differently, passes too)."""
    import numpy as np

    from rnn_ref.grading import ch12_text as checks
    from rnn_ref.grading import trusted_reference

    ref = trusted_reference("rnn_ref.numpy")

    def gumbel(logits, temperature, rng, top_k=None):
        p = np.atleast_2d(ref.softmax_with_temperature(logits, temperature, top_k))
        with np.errstate(divide="ignore"):
            ids = np.argmax(np.log(p) + rng.gumbel(size=p.shape), axis=1)
        return int(ids[0]) if np.ndim(logits) == 1 else ids

    for s in range(12):
        seeds = tuple(range(1000 + 10 * s, 1006 + 10 * s))
        checks.check_sample_with_temperature(ref.sample_with_temperature, seeds=seeds)
        checks.check_sample_with_temperature(gumbel, seeds=seeds)
