"""rnn_ref.numpy.text: embedding, pooling, sampling with temperature, bits per character and the
character n-gram models of chapter ch12_text.

- known values worked out by hand (an embedding gradient with repeated ids, masked means,
  temperatures of a three-way softmax, bits per character, add-k and Kneser-Ney on "abab");
- parity in float64 with torch: ``torch.nn.Embedding(padding_idx=...)`` outputs and weight
  gradients, ``torch.nn.functional.cross_entropy`` for bits per character (nats / ln 2);
- numerical gradient checks of every backward; inputs never modified;
- hypothesis properties: each n-gram model's probabilities sum to 1 over the vocabulary for
  every context; add-k tends to uniform as k grows; Kneser-Ney is positive on unseen n-grams;
  temperature 1 is the softmax; top_k leaves exactly k nonzero probabilities; uniform logits
  give log2 V bits;
- Kneser-Ney against a brute-force transcription of the equations (nltk is not installed);
- the sampler: a chi-square test against ``softmax_with_temperature`` (fixed seed, many draws),
  the same seed gives the same draws, the global ``np.random`` state is never used;
- clear errors on bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from rnn_ref.numpy import (
    KneserNeyLM,
    NgramLM,
    add_k_probs,
    bits_per_char,
    embedding_backward,
    embedding_forward,
    last_valid,
    last_valid_backward,
    masked_mean_backward,
    masked_mean_forward,
    ngram_counts,
    numerical_gradient,
    sample_with_temperature,
    softmax_with_temperature,
)

# ------------------------------------------------------------------------------------------
# embedding
# ------------------------------------------------------------------------------------------


def test_embedding_known_values_with_repeated_ids_and_padding():
    W_e = np.arange(12.0).reshape(4, 3)
    ids = np.array([[1, 2, 1], [0, 1, 0]])
    x, cache = embedding_forward(ids, W_e, padding_idx=0)
    np.testing.assert_array_equal(x[0, 0], W_e[1])
    np.testing.assert_array_equal(x[1, 0], W_e[0])  # the padding row is used as it is
    dW = embedding_backward(np.ones((2, 3, 3)), cache)
    # id 1 occurs three times: its row collects 3; id 2 once; the padding id 0 gets nothing.
    np.testing.assert_array_equal(dW, [[0, 0, 0], [3, 3, 3], [1, 1, 1], [0, 0, 0]])
    dW = embedding_backward(np.ones((2, 3, 3)), embedding_forward(ids, W_e)[1])
    np.testing.assert_array_equal(dW[0], [2, 2, 2])  # without padding_idx row 0 is a token
    dW = embedding_backward(np.ones((2, 3, 3)), embedding_forward(ids, W_e, padding_idx=-3)[1])
    np.testing.assert_array_equal(dW[1], [0, 0, 0])  # -3 is row 1 of 4, as in torch


def test_embedding_returns_a_copy_and_leaves_inputs_alone():
    rng = np.random.default_rng(0)
    W_e = rng.normal(size=(5, 2))
    ids = rng.integers(0, 5, (3, 4))
    W0, ids0 = W_e.copy(), ids.copy()
    x, cache = embedding_forward(ids, W_e, padding_idx=2)
    x[...] = 0.0
    dx = rng.normal(size=(3, 4, 2))
    dx0 = dx.copy()
    embedding_backward(dx, cache)
    np.testing.assert_array_equal(W_e, W0)
    np.testing.assert_array_equal(ids, ids0)
    np.testing.assert_array_equal(dx, dx0)


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
@pytest.mark.parametrize("shape", [(2, 5), (1, 1), (4, 1), (1, 7)])
def test_embedding_matches_torch(padding_idx, shape):
    rng = np.random.default_rng(sum(shape) + (padding_idx or 0))
    V, E = 6, 3
    W_e = rng.normal(size=(V, E))
    ids = rng.integers(0, V, shape)
    ids.flat[0] = ids.flat[-1]  # a repeated id in every case
    if padding_idx is not None:
        ids.flat[-1] = padding_idx % V
    dx = rng.normal(size=shape + (E,))
    emb = torch.nn.Embedding(V, E, padding_idx=padding_idx).double()
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(W_e))
    out = emb(torch.from_numpy(ids))
    out.backward(torch.from_numpy(dx))
    x, cache = embedding_forward(ids, W_e, padding_idx)
    np.testing.assert_allclose(x, out.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(embedding_backward(dx, cache), emb.weight.grad.numpy(), atol=1e-12)


def test_embedding_gradient_is_numerical(assert_grad):
    rng = np.random.default_rng(1)
    W_e = rng.normal(size=(5, 4))
    ids = np.array([[0, 3, 3, 1], [3, 4, 0, 0]])
    dx = rng.normal(size=(2, 4, 4))
    _, cache = embedding_forward(ids, W_e)
    num = numerical_gradient(lambda W: embedding_forward(ids, W)[0], W_e, dx)
    assert_grad(embedding_backward(dx, cache), num, "dW_e")


def test_embedding_errors():
    W_e = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, V\)"):
        embedding_forward(np.array([[0, 4]]), W_e)
    with pytest.raises(ValueError, match="ids must lie"):
        embedding_forward(np.array([-1]), W_e)
    with pytest.raises(TypeError, match="ids must hold integers"):
        embedding_forward(np.array([[0.0, 1.0]]), W_e)
    with pytest.raises(ValueError, match="padding_idx"):
        embedding_forward(np.array([[0]]), W_e, padding_idx=4)
    with pytest.raises(ValueError, match="padding_idx"):
        embedding_forward(np.array([[0]]), W_e, padding_idx=-5)
    with pytest.raises(ValueError, match="W_e must have 2 dimensions"):
        embedding_forward(np.array([[0]]), np.zeros(4))
    _, cache = embedding_forward(np.array([[0, 1]]), W_e)
    with pytest.raises(ValueError, match="dx must have shape"):
        embedding_backward(np.zeros((2, 2)), cache)


# ------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------


def test_masked_mean_known_values():
    hs = np.array([[[1.0], [3.0], [100.0]], [[2.0], [np.nan], [4.0]]])
    mask = np.array([[True, True, False], [1, 0, 1]], dtype=float)
    pooled, cache = masked_mean_forward(hs, mask)
    np.testing.assert_allclose(pooled, [[2.0], [3.0]])  # padding (even NaN) does not leak in
    dhs = masked_mean_backward(np.array([[6.0], [6.0]]), cache)
    np.testing.assert_allclose(dhs[..., 0], [[3, 3, 0], [3, 0, 3]])


@pytest.mark.parametrize("N,T,H", [(3, 5, 2), (1, 1, 3), (2, 4, 1)])
def test_masked_mean_gradient_and_single_valid_step(N, T, H, assert_grad):
    rng = np.random.default_rng(N * 10 + T)
    hs = rng.normal(size=(N, T, H))
    lengths = rng.integers(1, T + 1, N)
    lengths[0] = 1  # a row with a single real step
    mask = np.arange(T)[None, :] < lengths[:, None]
    pooled, cache = masked_mean_forward(hs, mask)
    np.testing.assert_allclose(pooled[0], hs[0, 0])
    dp = rng.normal(size=(N, H))
    num = numerical_gradient(lambda h: masked_mean_forward(h, mask)[0], hs, dp)
    assert_grad(masked_mean_backward(dp, cache), num, "dhs")


def test_masked_mean_errors():
    with pytest.raises(ValueError, match="mask row 1 has no real step"):
        masked_mean_forward(np.zeros((2, 3, 1)), np.array([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="0/1"):
        masked_mean_forward(np.zeros((1, 2, 1)), np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="mask must have shape"):
        masked_mean_forward(np.zeros((1, 2, 1)), np.ones((2, 1)))


def test_last_valid_known_values_and_gradient(assert_grad):
    hs = np.arange(24.0).reshape(2, 4, 3)
    out = last_valid(hs, np.array([2, 4]))
    np.testing.assert_array_equal(out, [hs[0, 1], hs[1, 3]])
    out[...] = -1
    assert hs[0, 1, 0] == 3.0  # a copy, not a view
    rng = np.random.default_rng(3)
    hs = rng.normal(size=(3, 5, 2))
    lengths = np.array([1, 5, 3])
    dout = rng.normal(size=(3, 2))
    num = numerical_gradient(lambda h: last_valid(h, lengths), hs, dout)
    assert_grad(last_valid_backward(dout, hs.shape, lengths), num, "dhs")
    hs1 = rng.normal(size=(1, 1, 4))  # N = 1, T = 1
    np.testing.assert_array_equal(last_valid(hs1, [1]), hs1[:, 0])


def test_last_valid_errors():
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\]"):
        last_valid(np.zeros((2, 3, 1)), np.array([0, 2]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\]"):
        last_valid(np.zeros((2, 3, 1)), np.array([4, 2]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        last_valid(np.zeros((2, 3, 1)), np.array([1]))
    with pytest.raises(TypeError, match="lengths must hold integers"):
        last_valid(np.zeros((1, 3, 1)), np.array([1.0]))
    with pytest.raises(ValueError, match="dout must have shape"):
        last_valid_backward(np.zeros((2, 2)), (2, 3, 1), np.array([1, 1]))


# ------------------------------------------------------------------------------------------
# softmax with temperature and sampling
# ------------------------------------------------------------------------------------------

LN2, LN4 = math.log(2), math.log(4)


def test_softmax_with_temperature_known_values():
    z = np.array([0.0, LN2, LN4])  # exp(z) = 1, 2, 4
    np.testing.assert_allclose(softmax_with_temperature(z, 1.0), np.array([1, 2, 4]) / 7)
    np.testing.assert_allclose(softmax_with_temperature(z, 0.5), np.array([1, 4, 16]) / 21)
    np.testing.assert_allclose(
        softmax_with_temperature(z, 2.0), np.array([1, 2**0.5, 2]) / 4.414213562373095
    )
    np.testing.assert_allclose(softmax_with_temperature(z, 1.0, top_k=2), [0, 2 / 6, 4 / 6])
    np.testing.assert_array_equal(softmax_with_temperature(z, 1.0, top_k=1), [0, 0, 1])
    np.testing.assert_array_equal(softmax_with_temperature(z, 0), [0, 0, 1])  # greedy
    np.testing.assert_allclose(softmax_with_temperature(z, 1e6), [1 / 3] * 3, atol=1e-6)
    # Ties at the top_k boundary go to the lower index; temperature 0 takes the first maximum.
    np.testing.assert_allclose(
        softmax_with_temperature([1.0, 3.0, 3.0, 3.0], 1, 2), [0, 0.5, 0.5, 0]
    )
    np.testing.assert_array_equal(softmax_with_temperature([1.0, 3.0, 3.0], 0), [0, 1, 0])
    # -inf is a forbidden token; top_k larger than V keeps everything.
    np.testing.assert_allclose(softmax_with_temperature([0.0, -np.inf, 0.0], 1, 10), [0.5, 0, 0.5])


def test_softmax_with_temperature_is_stable():
    z = np.array([[1e300, 0.0, -1e300], [1000.0, 999.0, -np.inf]])
    p = softmax_with_temperature(z, 1e-3)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p[0], [1, 0, 0])
    p = softmax_with_temperature(z[1:], 1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + math.exp(-1)), 1 - 1 / (1 + math.exp(-1)), 0])
    p = softmax_with_temperature(np.array([1e4, 1e4 - 1]), 1e-300)  # (z - max) / tau = -inf
    np.testing.assert_array_equal(p, [1, 0])


logit_rows = st.integers(1, 8).flatmap(
    lambda V: st.lists(st.integers(-5, 5), min_size=V, max_size=V)  # integers: many ties
)


@given(
    rows=st.lists(logit_rows, min_size=1, max_size=4).filter(
        lambda r: len({len(x) for x in r}) == 1
    )
)
def test_temperature_one_is_the_softmax(rows):
    z = np.array(rows, dtype=float) * 0.7
    np.testing.assert_allclose(
        softmax_with_temperature(z, 1.0), special.softmax(z, axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        softmax_with_temperature(z, 0.25), special.softmax(z * 4, axis=1), rtol=1e-12
    )


@given(z=logit_rows, k=st.integers(1, 10), tau=st.floats(0.3, 3.0))
def test_top_k_leaves_exactly_k_nonzero(z, k, tau):
    z = np.array(z, dtype=float)
    p = softmax_with_temperature(z, tau, top_k=k)
    assert np.count_nonzero(p) == min(k, len(z))
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    kept = np.flatnonzero(p)
    dropped = np.setdiff1d(np.arange(len(z)), kept)
    if dropped.size:  # every kept logit is >= every dropped one
        assert z[kept].min() >= z[dropped].max()


def _chi_square_p(draws, probs):
    """p-value of a chi-square test of ``draws`` against ``probs`` (zero cells must be empty)."""
    counts = np.bincount(draws, minlength=len(probs))
    assert counts[probs == 0].sum() == 0, "a token of probability 0 was drawn"
    nz = probs > 0
    if nz.sum() == 1:
        return 1.0
    return stats.chisquare(counts[nz], probs[nz] * len(draws)).pvalue


@pytest.mark.parametrize(
    "tau,top_k", [(1.0, None), (0.5, None), (2.0, None), (1.0, 3), (0.7, 1), (1.3, 6)]
)
def test_sampler_matches_its_distribution(tau, top_k):
    rng = np.random.default_rng(12345)
    z = np.array([0.3, -1.0, 2.0, 0.0, 1.1, -0.5])
    draws = sample_with_temperature(np.tile(z, (20000, 1)), tau, rng, top_k)
    assert draws.shape == (20000,) and draws.dtype == np.int64
    p = softmax_with_temperature(z, tau, top_k)
    # A correct sampler fails this with probability 1e-4; the seed is fixed, so it never does.
    assert _chi_square_p(draws, p) > 1e-4
    if top_k != 1:  # the wrong temperature is rejected overwhelmingly
        wrong = softmax_with_temperature(z, 1.0 / tau if tau != 1.0 else 1.5, top_k)
        assert _chi_square_p(draws, wrong) < 1e-12


def test_sampler_rows_are_independent_distributions():
    rng = np.random.default_rng(7)
    z = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    draws = sample_with_temperature(np.repeat(z, 5000, axis=0), 1.0, rng)
    p = softmax_with_temperature(z, 1.0)
    assert _chi_square_p(draws[:5000], p[0]) > 1e-4
    assert _chi_square_p(draws[5000:], p[1]) > 1e-4


def test_sampler_seed_determinism_and_no_global_state():
    z = np.random.default_rng(0).normal(size=(50, 7))
    a = sample_with_temperature(z, 0.8, np.random.default_rng(42), top_k=4)
    np.random.seed(0)
    expected_global = np.random.random(3)
    np.random.seed(0)
    b = sample_with_temperature(z, 0.8, np.random.default_rng(42), top_k=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.random(3), expected_global)  # untouched
    # One uniform per row, inverse CDF: the documented draw.
    u = np.random.default_rng(42).random(50)
    cdf = np.cumsum(softmax_with_temperature(z, 0.8, 4), axis=1)
    np.testing.assert_array_equal(a, (cdf / cdf[:, -1:] <= u[:, None]).sum(axis=1))
    one = sample_with_temperature(z[0], 0.8, np.random.default_rng(42))
    assert isinstance(one, int)
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert sample_with_temperature(z[0], 0, rng) == int(np.argmax(z[0]))  # greedy: no draw
    assert rng.bit_generator.state == state


def test_sampling_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
        softmax_with_temperature([1.0, 2.0], -0.1)
    with pytest.raises(ValueError, match="temperature"):
        sample_with_temperature([1.0, 2.0], float("nan"), rng)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        softmax_with_temperature([1.0, 2.0], 1.0, top_k=0)
    with pytest.raises(TypeError, match="top_k must be an integer"):
        softmax_with_temperature([1.0, 2.0], 1.0, top_k=1.5)
    with pytest.raises(ValueError, match="NaN"):
        softmax_with_temperature([1.0, np.nan], 1.0)
    with pytest.raises(ValueError, match="finite entry"):
        softmax_with_temperature([-np.inf, -np.inf], 1.0)
    with pytest.raises(ValueError, match=r"shape \(V,\) or \(N, V\)"):
        softmax_with_temperature(np.zeros((1, 2, 3)), 1.0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        sample_with_temperature([1.0, 2.0], 1.0, 0)


# ------------------------------------------------------------------------------------------
# bits per character
# ------------------------------------------------------------------------------------------


def test_bits_per_char_known_values():
    z = np.zeros((1, 2, 2))
    z[0, 0] = [math.log(3), 0.0]  # p = (3/4, 1/4)
    bpc, ppl = bits_per_char(z, np.array([[0, 1]]))
    assert math.isclose(bpc, (-math.log2(0.75) + 1.0) / 2)
    assert math.isclose(ppl, 2**bpc)
    bpc, ppl = bits_per_char(z, np.array([[1, -1]]), np.array([[1, 0]]))  # -1 is padding
    assert math.isclose(bpc, 2.0) and math.isclose(ppl, 4.0)
    bpc, _ = bits_per_char(np.full((1, 1, 3), 1e5) + [0.0, 0.0, 1e5], np.array([[0]]))
    assert math.isfinite(bpc) and bpc > 1e5  # huge logits: stable, not inf or NaN


@given(N=st.integers(1, 3), T=st.integers(1, 4), V=st.integers(1, 9), c=st.floats(-50, 50))
def test_uniform_logits_give_log2_V(N, T, V, c):
    targets = np.random.default_rng(V).integers(0, V, (N, T))
    bpc, ppl = bits_per_char(np.full((N, T, V), c), targets)
    assert math.isclose(bpc, math.log2(V), abs_tol=1e-12)
    assert math.isclose(ppl, V, rel_tol=1e-12)


@pytest.mark.parametrize("N,T,V", [(3, 5, 7), (1, 1, 4), (2, 6, 30)])
def test_bits_per_char_matches_torch_cross_entropy(N, T, V):
    rng = np.random.default_rng(N + T + V)
    z = rng.normal(0, 3, (N, T, V))
    targets = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < 0.7
    mask[0, 0] = True
    t = torch.from_numpy(np.where(mask, targets, -100))
    nats = F.cross_entropy(torch.from_numpy(z).reshape(-1, V), t.reshape(-1), ignore_index=-100)
    bpc, ppl = bits_per_char(z, np.where(mask, targets, 999), mask)
    assert math.isclose(bpc, nats.item() / math.log(2), rel_tol=1e-12)
    assert math.isclose(ppl, math.exp(nats.item()), rel_tol=1e-10)


def test_bits_per_char_errors():
    with pytest.raises(ValueError, match="mask selects no position"):
        bits_per_char(np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"targets\[0, 1\] = 3 is not a class"):
        bits_per_char(np.zeros((1, 2, 3)), np.array([[0, 3]]))
    with pytest.raises(ValueError, match="targets must have shape"):
        bits_per_char(np.zeros((1, 2, 3)), np.array([0, 1]))
    with pytest.raises(TypeError, match="targets must hold integers"):
        bits_per_char(np.zeros((1, 2, 3)), np.array([[0.0, 1.0]]))


# ------------------------------------------------------------------------------------------
# n-gram models
# ------------------------------------------------------------------------------------------


def test_ngram_counts():
    assert ngram_counts("abab", 2) == {"ab": 2, "ba": 1}
    assert ngram_counts("abab", 1) == {"a": 2, "b": 2}
    assert ngram_counts("ab", 3) == {}
    assert ngram_counts([3, 1, 3, 1], 3) == {(3, 1, 3): 1, (1, 3, 1): 1}
    assert ngram_counts(np.array([0, 0, 0]), 2) == {(0, 0): 2}


def test_add_k_known_values():
    # "abab" after the start symbol ^: ^ -> a, a -> b (twice), b -> a (once: the last b is
    # followed by nothing, so c(b .) = 1 although "b" occurs twice).
    lm = NgramLM(2, k=1.0).fit("abab")
    assert lm.vocab == ["a", "b"] and lm.V == 2
    np.testing.assert_allclose(lm.probs("a"), [1 / 4, 3 / 4])
    np.testing.assert_allclose(lm.probs("xyzb".replace("xyz", "")), [2 / 3, 1 / 3])
    np.testing.assert_allclose(lm.probs(""), [2 / 3, 1 / 3])  # the start of a text
    np.testing.assert_allclose(lm.probs("bbba"), lm.probs("a"))  # only the last n - 1 count
    assert math.isclose(lm.prob("a", "b"), 0.75)
    assert math.isclose(lm.bits_per_char("ab"), -(math.log2(2 / 3) + math.log2(3 / 4)) / 2)
    assert math.isclose(lm.perplexity("ab"), 2 ** lm.bits_per_char("ab"))
    # A vocabulary larger than the text; a context never seen is uniform.
    lm = NgramLM(2, k=0.5).fit("abab", vocab="abc")
    np.testing.assert_allclose(lm.probs("a"), [0.5 / 3.5, 2.5 / 3.5, 0.5 / 3.5])
    np.testing.assert_allclose(lm.probs("c"), [1 / 3] * 3)
    # k = 0: maximum likelihood, undefined for an unseen context, inf bits for an unseen char.
    lm = NgramLM(2, k=0).fit("abab", vocab="abc")
    np.testing.assert_allclose(lm.probs("a"), [0, 1, 0])
    with pytest.raises(ValueError, match="k = 0"):
        lm.probs("c")
    assert lm.bits_per_char("aa") == math.inf
    # The unigram model ignores the context.
    lm = NgramLM(1, k=1).fit("aab", vocab="abc")
    np.testing.assert_allclose(lm.probs("bbb"), [3 / 6, 2 / 6, 1 / 6])


def test_add_k_probs_counts_the_text_without_padding():
    text = "the cat sat on the mat"
    vocab = sorted(set(text))
    p = add_k_probs(text, "at", vocab, 0.5)
    V = len(vocab)
    c = ngram_counts(text, 3)
    total = sum(v for g, v in c.items() if g.startswith("at"))
    expected = np.array([(c.get("at" + w, 0) + 0.5) / (total + 0.5 * V) for w in vocab])
    np.testing.assert_allclose(p, expected)
    u = add_k_probs(text, "", vocab, 1.0)
    c1 = ngram_counts(text, 1)
    np.testing.assert_allclose(u, [(c1[w] + 1) / (len(text) + V) for w in vocab])


texts = st.text(alphabet="abc", min_size=1, max_size=25)
contexts = st.text(alphabet="abc", max_size=5)


@given(text=texts, n=st.integers(1, 4), k=st.floats(0.01, 5.0), ctx=contexts)
def test_add_k_probabilities_sum_to_one(text, n, k, ctx):
    lm = NgramLM(n, k).fit(text, vocab="abc")
    p = lm.probs(ctx)
    assert p.shape == (3,) and (p > 0).all()
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)


@given(text=texts, n=st.integers(1, 4), ctx=contexts)
def test_add_k_tends_to_uniform(text, n, ctx):
    p = NgramLM(n, k=1e9).fit(text, vocab="abcd").probs(ctx)
    np.testing.assert_allclose(p, 0.25, atol=1e-7)


@given(text=texts, n=st.integers(1, 4), D=st.floats(0.05, 1.0), ctx=contexts)
def test_kneser_ney_sums_to_one_and_is_positive(text, n, D, ctx):
    lm = KneserNeyLM(n, D).fit(text, vocab="abcd")  # "d" never occurs: unseen n-grams
    p = lm.probs(ctx)
    assert (p > 0).all()
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    assert all(math.isclose(lm.prob(ctx, w), p[i], rel_tol=1e-12) for i, w in enumerate("abcd"))


def test_kneser_ney_known_values():
    # "abab" padded: ^abab, bigrams ^a, ab, ba, ab. Continuation counts: a follows {^, b} -> 2,
    # b follows {a} -> 1; 3 in all, 2 types. D = 0.75, V = 2:
    #   P1(a) = (2 - .75)/3 + .75 * 2/3 * 1/2 = 2/3,   P1(b) = 1/3;
    #   P2(b | a) = (2 - .75)/2 + .75 * 1/2 * P1(b) = 3/4,   P2(a | a) = 1/4;
    #   P2(a | ^) = (1 - .75)/1 + .75 * 1/1 * P1(a) = 3/4.
    lm = KneserNeyLM(2).fit("abab")
    np.testing.assert_allclose(lm.probs("a"), [1 / 4, 3 / 4])
    np.testing.assert_allclose(lm.probs(""), [3 / 4, 1 / 4])
    np.testing.assert_allclose(KneserNeyLM(1).fit("abab").probs(""), [1 / 2, 1 / 2])
    # An unseen context falls back to the continuation unigram.
    lm = KneserNeyLM(2).fit("abab", vocab="abc")
    p1 = np.array([1.25 / 3, 0.25 / 3, 0]) + 0.75 * 2 / 3 / 3
    np.testing.assert_allclose(lm.probs("c"), p1)


def kn_brute_force(text, vocab, n, D, context, w):
    """Interpolated Kneser-Ney transcribed literally from the equations, by rescanning the
    padded text for every count (slow, obviously right)."""
    BOS = object()
    padded = [BOS] * (n - 1) + list(text)
    grams = [tuple(padded[i : i + n]) for i in range(len(text))]  # one per real symbol
    V = len(vocab)

    def a(m, h, x):
        if m == n:
            return sum(g == h + (x,) for g in grams)
        return len({g[-(m + 1)] for g in grams if g[-m:] == h + (x,)})

    def P(m, h, x):
        if m == 0:
            return 1.0 / V
        lower = P(m - 1, h[1:], x)
        total = sum(a(m, h, y) for y in vocab)
        if total == 0:
            return lower
        types = sum(a(m, h, y) > 0 for y in vocab)
        return max(a(m, h, x) - D, 0) / total + D * types / total * lower

    ctx = ([BOS] * (n - 1) + list(context))[len(context) :] if n > 1 else []
    return P(n, tuple(ctx), w)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("D", [0.75, 0.4, 1.0])
def test_kneser_ney_matches_brute_force(n, D):
    text = "abracadabra cab"
    vocab = sorted(set(text) | {"z"})
    lm = KneserNeyLM(n, D).fit(text, vocab)
    for context in ["", "a", "ab", "abr", "zz", "cab", "ra ", "b"]:
        got = lm.probs(context)
        want = [kn_brute_force(text, vocab, n, D, context, w) for w in vocab]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"context {context!r}")


def test_kneser_ney_beats_add_k_on_real_text():
    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))[:120000]
    vocab = sorted(set(text))
    train, test = text[:100000], text[100000:]
    kn = KneserNeyLM(4).fit(train, vocab).bits_per_char(test)
    addk = NgramLM(4, k=0.1).fit(train, vocab).bits_per_char(test)
    uni = NgramLM(1, k=0.1).fit(train, vocab).bits_per_char(test)
    assert kn < addk < uni < math.log2(len(vocab))


def test_ngram_models_on_id_sequences_and_generation():
    ids = [0, 1, 2, 0, 1, 2, 0, 1]
    lm = KneserNeyLM(3).fit(ids)
    assert lm.vocab == [0, 1, 2]
    out = lm.generate(10, np.random.default_rng(0), context=[0, 1])
    assert isinstance(out, list) and len(out) == 10 and set(out) <= {0, 1, 2}
    s = NgramLM(3, k=0.01).fit("abcabcabc").generate(9, np.random.default_rng(0), "ab", 0)
    assert s == "cabcabcab"  # greedy continues the cycle
    g1 = NgramLM(2).fit("hello world").generate(20, np.random.default_rng(3))
    g2 = NgramLM(2).fit("hello world").generate(20, np.random.default_rng(3))
    assert g1 == g2 and isinstance(g1, str) and len(g1) == 20


def test_ngram_errors():
    with pytest.raises(ValueError, match="n must be >= 1"):
        NgramLM(0)
    with pytest.raises(ValueError, match="k must be finite and >= 0"):
        NgramLM(2, k=-1)
    with pytest.raises(ValueError, match=r"discount must lie in \(0, 1\]"):
        KneserNeyLM(2, discount=0)
    with pytest.raises(ValueError, match=r"discount must lie in \(0, 1\]"):
        KneserNeyLM(2, discount=1.5)
    with pytest.raises(RuntimeError, match="not fitted"):
        NgramLM(2).probs("a")
    lm = NgramLM(2).fit("abc")
    with pytest.raises(ValueError, match="'z' .* not in the vocabulary"):
        lm.bits_per_char("az")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        NgramLM(2).fit("abc", vocab="ab")
    with pytest.raises(ValueError, match="empty"):
        lm.bits_per_char("")


@given(text=st.text(alphabet="ab ", min_size=1, max_size=12), n=st.integers(1, 3), ctx=contexts)
def test_kneser_ney_matches_brute_force_on_random_texts(text, n, ctx):
    ctx = ctx.replace("c", " ")
    vocab = ["a", "b", " ", "c"]
    got = KneserNeyLM(n, 0.6).fit(text, vocab).probs(ctx)
    want = [kn_brute_force(text, sorted(vocab), n, 0.6, ctx, w) for w in sorted(vocab)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
