"""rnn_ref.numpy.ctc: the CTC loss and its gradient, the decoders and the error measures of
chapter ch15_vision.

- parity in float64 with ``torch.nn.CTCLoss(reduction="none")`` (loss with ``zero_infinity=False``,
  gradient with ``zero_infinity=True``) to 1e-10 relative: repeated labels, every blank index,
  varying input and target lengths in one batch, empty targets, T = 1, impossible alignments;
- a brute-force sum over all C^T paths (collapse each, add the matching ones) on tiny cases;
- a numerical gradient check; the alpha/beta identity sum_s alpha_t(s) beta_t(s) = p at every t;
- hypothesis properties: loss >= 0; the probabilities of all labellings of length <= T sum to 1;
  gradient rows sum to 0; the decoders against brute force; edit distance is a metric;
- known cases of greedy decoding, edit distance and CER; clear errors on bad input.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    character_error_rate,
    ctc_backward,
    ctc_collapse,
    ctc_greedy_decode,
    ctc_log_alpha,
    ctc_log_beta,
    ctc_loss,
    ctc_prefix_beam_search,
    edit_distance,
    numerical_gradient,
)

torch.set_num_threads(1)

TOL = 1e-10


def log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def torch_ctc(z, targets, input_lengths, target_lengths, blank=0):
    """(loss with zero_infinity=False, dlogits of loss.sum() with zero_infinity=True)."""
    targets = np.asarray(targets)
    if targets.shape[1] == 0:  # torch wants at least one column (never read when lengths are 0)
        targets = np.full((targets.shape[0], 1), (blank + 1) % z.shape[2])
    out = []
    for zero_infinity in (False, True):
        zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        lp = torch.log_softmax(zt, dim=2).transpose(0, 1)  # torch's CTC is time-first
        loss = torch.nn.CTCLoss(blank=blank, reduction="none", zero_infinity=zero_infinity)(
            lp,
            torch.as_tensor(targets, dtype=torch.long),
            torch.as_tensor(input_lengths, dtype=torch.long),
            torch.as_tensor(target_lengths, dtype=torch.long),
        )
        loss.sum().backward()
        out.append((loss.detach().numpy(), zt.grad.numpy()))
    return out[0][0], out[1][1]


def rel(a, b):
    scale = max(float(np.max(np.abs(b))), 1e-300) if b.size else 1.0
    return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


def assert_parity(z, targets, Tn, Sn, blank=0, dloss=None):
    N = z.shape[0]
    loss, cache = ctc_loss(z, targets, Tn, Sn, blank)
    d = np.ones(N) if dloss is None else dloss
    grad = ctc_backward(d, cache)
    loss_t, grad_t = torch_ctc(z, targets, Tn, Sn, blank)
    grad_t = grad_t * d[:, None, None]
    np.testing.assert_array_equal(np.isinf(loss), np.isinf(loss_t))
    fin = np.isfinite(loss_t)
    assert rel(loss[fin], loss_t[fin]) <= TOL
    assert rel(grad, grad_t) <= TOL
    return loss, grad


def random_case(rng, N, T, C, S, blank=0):
    z = rng.normal(0, 2, (N, T, C))
    labels = [c for c in range(C) if c != blank]
    targets = rng.choice(labels, (N, S)) if S else np.zeros((N, 0), dtype=np.int64)
    return z, targets


# ------------------------------------------------------------------------------------------
# parity with torch
# ------------------------------------------------------------------------------------------


def test_parity_with_torch_varying_lengths_repeats_and_empty_targets():
    rng = np.random.default_rng(0)
    z, targets = random_case(rng, 6, 9, 4, 4)
    targets[0, :4] = [1, 1, 2, 2]  # repeated labels need blanks between them
    targets[1, :3] = [3, 3, 3]
    Tn = np.array([9, 7, 9, 1, 5, 3])
    Sn = np.array([4, 3, 0, 0, 2, 1])  # empty targets (with T = 9 and T = 1)
    loss, grad = assert_parity(z, targets, Tn, Sn)
    assert np.isfinite(loss).all()
    assert np.all(grad[1, 7:] == 0) and np.all(grad[3, 1:] == 0)  # padded steps: no gradient


def test_parity_with_torch_on_a_nonzero_blank_and_a_weighted_dloss():
    rng = np.random.default_rng(1)
    for blank in (1, 4):
        z, targets = random_case(rng, 4, 7, 5, 3, blank)
        assert_parity(z, targets, [7, 6, 5, 4], [3, 2, 1, 3], blank, dloss=rng.normal(0, 1, 4))


def test_t_equals_one():
    rng = np.random.default_rng(2)
    z, targets = random_case(rng, 3, 1, 4, 1)
    loss, _ = assert_parity(z, targets, [1, 1, 1], [1, 0, 1])
    ly = log_softmax(z)
    np.testing.assert_allclose(loss[0], -ly[0, 0, targets[0, 0]], rtol=1e-14)
    np.testing.assert_allclose(loss[1], -ly[1, 0, 0], rtol=1e-14)  # the empty target: a blank


def test_impossible_alignments_give_inf_loss_and_zero_gradient():
    rng = np.random.default_rng(3)
    z, targets = random_case(rng, 4, 4, 4, 3)
    targets[:] = [[1, 2, 3], [1, 1, 2], [2, 2, 2], [1, 1, 2]]
    # needs 3 steps; 1 1 2 needs 4 (a blank between the ones); 2 2 2 needs 5 > 4
    Tn, Sn = np.array([2, 3, 4, 4]), np.array([3, 3, 3, 3])
    loss, grad = assert_parity(z, targets, Tn, Sn)
    assert np.isinf(loss[:3]).all() and np.isfinite(loss[3])
    assert np.all(grad[:3] == 0) and np.abs(grad[3]).max() > 0


def test_exactly_enough_steps_is_possible():
    z, _ = random_case(np.random.default_rng(4), 2, 5, 3, 3)
    loss, _ = assert_parity(z, np.array([[1, 1, 1], [1, 2, 1]]), [5, 3], [3, 3])
    assert np.isfinite(loss).all()


@given(
    N=st.integers(1, 4),
    T=st.integers(1, 8),
    C=st.integers(2, 5),
    S=st.integers(0, 5),
    seed=st.integers(0, 2**31 - 1),
)
@example(N=1, T=1, C=2, S=0, seed=0)
@example(N=3, T=8, C=2, S=5, seed=1)  # one label only: every target is a run of repeats
def test_parity_property(N, T, C, S, seed):
    rng = np.random.default_rng(seed)
    blank = int(rng.integers(0, C))
    z, targets = random_case(rng, N, T, C, S, blank)
    Tn = rng.integers(1, T + 1, N)
    Sn = rng.integers(0, S + 1, N)
    assert_parity(z, targets, Tn, Sn, blank)


def test_long_sequences_stay_finite_in_log_space():
    """500 steps: the path probabilities underflow float64 (about 1e-300 and less); the log-space
    recursion does not."""
    rng = np.random.default_rng(5)
    z, targets = random_case(rng, 2, 500, 6, 30)
    loss, _ = assert_parity(z, targets, [500, 420], [30, 25])
    assert np.isfinite(loss).all() and loss.min() > 700  # p < e^-700: below float64's range


# ------------------------------------------------------------------------------------------
# brute force over alignments
# ------------------------------------------------------------------------------------------


def brute_force_probs(log_y, blank=0):
    """{labelling: p(labelling | x)} by enumerating all C^T paths and collapsing each."""
    T, C = log_y.shape
    probs: dict[tuple, float] = {}
    for path in itertools.product(range(C), repeat=T):
        p = float(np.exp(sum(log_y[t, k] for t, k in enumerate(path))))
        key = tuple(ctc_collapse(path, blank))
        probs[key] = probs.get(key, 0.0) + p
    return probs


@given(T=st.integers(1, 5), C=st.integers(2, 4), seed=st.integers(0, 2**31 - 1))
@example(T=1, C=2, seed=0)
def test_loss_is_minus_log_of_the_brute_force_sum_over_alignments(T, C, seed):
    rng = np.random.default_rng(seed)
    blank = int(rng.integers(0, C))
    z = rng.normal(0, 1.5, (1, T, C))
    probs = brute_force_probs(log_softmax(z[0]), blank)
    # Every labelling of length <= T over the non-blank labels (most have p = 0 or tiny).
    labels = [c for c in range(C) if c != blank]
    for S in range(0, min(T, 3) + 1):
        for target in itertools.product(labels, repeat=S):
            loss, _ = ctc_loss(z, np.array([target], dtype=np.int64).reshape(1, S), [T], [S], blank)
            p = probs.get(target, 0.0)
            if p == 0.0:
                assert loss[0] == np.inf
            else:
                np.testing.assert_allclose(np.exp(-loss[0]), p, rtol=1e-12)


@given(T=st.integers(1, 5), C=st.integers(2, 4), seed=st.integers(0, 2**31 - 1))
def test_probabilities_of_all_labellings_sum_to_one(T, C, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (1, T, C))
    labels = range(1, C)
    total = 0.0
    for S in range(T + 1):
        for target in itertools.product(labels, repeat=S):
            loss, _ = ctc_loss(z, np.array(target, dtype=np.int64).reshape(1, S), [T], [S])
            total += float(np.exp(-loss[0]))
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# gradient
# ------------------------------------------------------------------------------------------


def test_numerical_gradient_check():
    rng = np.random.default_rng(6)
    z, targets = random_case(rng, 3, 6, 4, 3)
    targets[0] = [2, 2, 3]
    Tn, Sn = [6, 4, 5], [3, 2, 0]
    dloss = rng.normal(0, 1, 3)
    _, cache = ctc_loss(z, targets, Tn, Sn)
    analytic = ctc_backward(dloss, cache)
    numeric = numerical_gradient(lambda x: ctc_loss(x, targets, Tn, Sn)[0], z, dloss)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8, rtol=1e-6)


@given(
    N=st.integers(1, 3),
    T=st.integers(1, 7),
    C=st.integers(2, 5),
    S=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_loss_nonnegative_and_gradient_rows_sum_to_zero(N, T, C, S, seed):
    rng = np.random.default_rng(seed)
    z, targets = random_case(rng, N, T, C, S)
    Tn, Sn = rng.integers(1, T + 1, N), rng.integers(0, S + 1, N)
    loss, cache = ctc_loss(z, targets, Tn, Sn)
    grad = ctc_backward(np.ones(N), cache)
    assert (loss >= 0).all()
    np.testing.assert_allclose(grad.sum(axis=2), 0.0, atol=1e-12)
    # y - gamma with gamma a distribution: every entry lies in [-1, 1]
    assert np.abs(grad).max() <= 1.0 + 1e-12


def test_alpha_beta_give_p_at_every_step():
    rng = np.random.default_rng(7)
    ly = log_softmax(rng.normal(0, 1, (7, 4)))
    labels = np.array([1, 3, 3])
    la, lb = ctc_log_alpha(ly, labels), ctc_log_beta(ly, labels)
    assert la.shape == lb.shape == (7, 7)
    loss, _ = ctc_loss(ly[None], labels[None], [7], [3])
    per_step = np.logaddexp.reduce(la + lb, axis=1)
    np.testing.assert_allclose(per_step, -loss[0], rtol=1e-13)
    # the first step can only be in state 0 (blank) or 1 (the first label)
    assert np.all(np.isinf(la[0, 2:])) and la[0, 0] == ly[0, 0] and la[0, 1] == ly[0, 1]


def test_inputs_are_not_modified():
    rng = np.random.default_rng(8)
    z, targets = random_case(rng, 2, 5, 3, 2)
    Tn, Sn = np.array([5, 4]), np.array([2, 1])
    copies = [a.copy() for a in (z, targets, Tn, Sn)]
    _, cache = ctc_loss(z, targets, Tn, Sn)
    d = np.ones(2)
    ctc_backward(d, cache)
    for a, b in zip((z, targets, Tn, Sn), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(d, 1.0)


# ------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------


def test_collapse_merges_repeats_before_dropping_blanks():
    assert ctc_collapse([1, 1, 0, 1, 2, 2]) == [1, 1, 2]
    assert ctc_collapse([0, 0, 0]) == []
    assert ctc_collapse([3, 3, 3]) == [3]
    assert ctc_collapse([1, 2, 1, 2], blank=2) == [1, 1]


def test_greedy_decode_known_cases():
    C = 4
    paths = np.array([[1, 1, 0, 1, 2, 2], [0, 3, 3, 0, 0, 3], [2, 2, 2, 2, 0, 1]])
    lp = np.log(np.full((3, 6, C), 0.1))
    lp[np.arange(3)[:, None], np.arange(6)[None, :], paths] = np.log(0.7)
    assert ctc_greedy_decode(lp) == [[1, 1, 2], [3, 3], [2, 1]]
    assert ctc_greedy_decode(lp, [3, 2, 4]) == [[1], [3], [2]]


def best_labelling(log_y, blank=0):
    probs = brute_force_probs(log_y, blank)
    best = max(probs.items(), key=lambda kv: kv[1])
    return list(best[0]), best[1], probs


@given(T=st.integers(1, 5), C=st.integers(2, 4), seed=st.integers(0, 2**31 - 1))
@example(T=3, C=2, seed=0)
def test_prefix_beam_search_is_exact_with_a_wide_beam_and_never_worse_than_greedy(T, C, seed):
    rng = np.random.default_rng(seed)
    blank = int(rng.integers(0, C))
    ly = log_softmax(rng.normal(0, 1.5, (T, C)))
    labels, log_prob = ctc_prefix_beam_search(ly, beam_width=1000, blank=blank)
    best, p_best, probs = best_labelling(ly, blank)
    np.testing.assert_allclose(np.exp(log_prob), p_best, rtol=1e-10)
    np.testing.assert_allclose(probs[tuple(labels)], p_best, rtol=1e-10)  # a tie may differ
    greedy = ctc_greedy_decode(ly[None], blank=blank)[0]
    assert probs[tuple(labels)] >= probs.get(tuple(greedy), 0.0) * (1 - 1e-12)


def test_prefix_beam_search_beats_the_best_path_where_it_should():
    """The classic counter-example: the single best path is blank-blank (empty labelling), but
    the label 1 has more probability summed over its paths."""
    y = np.array([[0.45, 0.35, 0.2], [0.45, 0.35, 0.2]])
    ly = np.log(y)
    assert ctc_greedy_decode(ly[None]) == [[]]
    labels, log_prob = ctc_prefix_beam_search(ly, beam_width=4)
    # p(1) = .35*.35 + .35*.45 + .45*.35 = 0.4375 > p() = 0.2025
    assert labels == [1]
    np.testing.assert_allclose(np.exp(log_prob), 0.4375, rtol=1e-12)


def test_prefix_beam_search_width_one_and_repeats():
    ly = np.log(np.array([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]))
    labels, _ = ctc_prefix_beam_search(ly, beam_width=1)
    assert labels == [1, 1]  # 1 blank 1: two ones


# ------------------------------------------------------------------------------------------
# edit distance and CER
# ------------------------------------------------------------------------------------------


def test_edit_distance_known_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance([1, 2], []) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance(np.array([1, 2, 3, 4]), [2, 3, 4, 5]) == 2
    assert edit_distance("flaw", "lawn") == 2


def brute_edit_distance(a, b):
    """The recursive definition, memoised."""
    from functools import lru_cache

    @lru_cache(None)
    def d(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


seqs = st.lists(st.integers(0, 3), max_size=7)


@given(a=seqs, b=seqs, c=seqs)
def test_edit_distance_is_a_metric(a, b, c):
    dab = edit_distance(a, b)
    assert dab == brute_edit_distance(tuple(a), tuple(b))
    assert dab == edit_distance(b, a)
    assert (dab == 0) == (a == b)
    assert edit_distance(a, c) <= dab + edit_distance(b, c)
    assert abs(len(a) - len(b)) <= dab <= max(len(a), len(b))


def test_character_error_rate():
    refs = [[1, 2, 3], [4, 5], [6]]
    hyps = [[1, 2, 3], [4], [7, 8]]
    assert character_error_rate(refs, hyps) == pytest.approx(3 / 6)
    assert character_error_rate(["abc"], ["abc"]) == 0.0
    assert character_error_rate([[1]], [[2, 3, 4]]) == 3.0  # insertions can exceed 1
    assert character_error_rate([[], [1, 2]], [[5], [1, 2]]) == 0.5


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"logits": np.zeros((2, 3))}, ValueError, "logits must have 3 dimensions"),
        ({"targets": np.array([[1, 0], [1, 2]])}, ValueError, "is the blank"),
        ({"targets": np.array([[1, 5], [1, 2]])}, ValueError, "not a class"),
        ({"targets": np.array([1, 2])}, ValueError, "targets must have shape"),
        ({"targets": np.array([[1.0, 2.0], [1.0, 2.0]])}, TypeError, "integer labels"),
        ({"input_lengths": np.array([4, 5])}, ValueError, "input_lengths must lie in"),
        ({"input_lengths": np.array([0, 3])}, ValueError, "input_lengths must lie in"),
        ({"input_lengths": np.array([4])}, ValueError, "input_lengths must have shape"),
        ({"target_lengths": np.array([3, 1])}, ValueError, "target_lengths must lie in"),
        ({"target_lengths": np.array([1.0, 1.0])}, TypeError, "target_lengths must hold"),
        ({"blank": 3}, ValueError, "blank must be in"),
        ({"logits": np.full((2, 4, 3), np.nan)}, ValueError, "NaN"),
    ],
)
def test_bad_input_raises_a_clear_error(change, error, match):
    args = {
        "logits": np.zeros((2, 4, 3)),
        "targets": np.array([[1, 2], [2, 2]]),
        "input_lengths": np.array([4, 3]),
        "target_lengths": np.array([2, 1]),
        "blank": 0,
    }
    args.update(change)
    with pytest.raises(error, match=match):
        ctc_loss(**args)


def test_padding_of_targets_is_never_read():
    rng = np.random.default_rng(9)
    z = rng.normal(0, 1, (2, 5, 3))
    a, _ = ctc_loss(z, np.array([[1, 2, -7], [2, 0, 99]]), [5, 5], [2, 1])
    b, _ = ctc_loss(z, np.array([[1, 2, 1], [2, 1, 1]]), [5, 5], [2, 1])
    np.testing.assert_array_equal(a, b)


def test_decoders_and_error_rates_reject_bad_input():
    with pytest.raises(ValueError, match="log_probs must have 3 dimensions"):
        ctc_greedy_decode(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="input_lengths must lie in"):
        ctc_greedy_decode(np.zeros((1, 4, 3)), [5])
    with pytest.raises(ValueError, match="beam_width must be >= 1"):
        ctc_prefix_beam_search(np.zeros((4, 3)), beam_width=0)
    with pytest.raises(ValueError, match="blank must be in"):
        ctc_prefix_beam_search(np.zeros((4, 3)), blank=3)
    with pytest.raises(ValueError, match="differ in length"):
        character_error_rate([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="every reference is empty"):
        character_error_rate([[]], [[1]])
    with pytest.raises(ValueError, match="1-D"):
        edit_distance(np.zeros((2, 2)), [1])
    with pytest.raises(ValueError, match="dloss must have shape"):
        _, cache = ctc_loss(np.zeros((2, 3, 3)), np.array([[1], [2]]), [3, 3], [1, 1])
        ctc_backward(np.ones(3), cache)
