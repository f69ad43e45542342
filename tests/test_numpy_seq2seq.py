"""rnn_ref.numpy.seq2seq: attention, the attention decoder step, greedy and beam decoding.

- known values worked out by hand (masked softmax, dot and additive attention, a decoder step
  with a zero GRU);
- masks: masked weights are exactly 0 and masking equals dropping the positions; a row with no
  real position, a non-bool mask and mismatched shapes raise clear errors;
- numerical gradient checks of every backward (both attentions, with a mask and with an upstream
  gradient for the weights; the decoder step for every parameter, h_prev and the keys), on
  shapes including N = 1, S = 1 and H_q != H_k; inputs are not modified; float32 stays float32;
- decoding on hand-made Markov tables: beam search finds the best sequence where greedy does
  not; beam 1 is exactly greedy; a beam wide enough to keep everything returns exactly the
  brute-force enumeration of all sequences up to max_len, ranked, with and without a length
  penalty; scores are the sums of the step_fn's log-probabilities along the tokens.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    additive_attention_backward,
    additive_attention_forward,
    beam_search,
    decoder_step,
    decoder_step_backward,
    dot_attention_backward,
    dot_attention_forward,
    greedy_decode,
    gru_step_forward,
    masked_softmax,
    numerical_gradient,
)

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def random_mask(rng, N, S):
    """A bool (N, S) mask with at least one True per row (row 0 is a prefix, like padding)."""
    mask = rng.random((N, S)) < 0.6
    mask[np.arange(N), rng.integers(0, S, size=N)] = True
    mask[0] = np.arange(S) < rng.integers(1, S + 1)
    return mask


def additive_params(rng, A, H_q, H_k, dtype=np.float64):
    return {
        "W_q": (rng.standard_normal((A, H_q)) / np.sqrt(H_q)).astype(dtype),
        "W_k": (rng.standard_normal((A, H_k)) / np.sqrt(H_k)).astype(dtype),
        "v": rng.standard_normal(A).astype(dtype),
    }


def decoder_params(rng, V, M, H, H_k, attention, A=3):
    p = {
        "E": rng.standard_normal((V, M)),
        "W_x": rng.standard_normal((3 * H, M)) * 0.5 / np.sqrt(M),
        "W_h": rng.standard_normal((3 * H, H)) * 0.5 / np.sqrt(H),
        "b_x": rng.standard_normal(3 * H) * 0.5,
        "b_h": rng.standard_normal(3 * H) * 0.5,
        "W_out": rng.standard_normal((V, H + H_k)) / np.sqrt(H + H_k),
        "b_out": rng.standard_normal(V) * 0.5,
    }
    if attention == "additive":
        p.update(additive_params(rng, A, H, H_k))
    return p


shape_args = {
    "N": st.integers(1, 3),
    "S": st.integers(1, 4),
    "H": st.integers(1, 4),
    "H_k": st.integers(1, 4),
    "seed": st.integers(0, 2**31 - 1),
}


# ------------------------------------------------------------------------------------------
# known values
# ------------------------------------------------------------------------------------------


def test_masked_softmax_known_values():
    scores = np.array([[0.0, np.log(2.0), 50.0], [1.0, 1.0, 1.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    w = masked_softmax(scores, mask)
    np.testing.assert_allclose(w, [[1 / 3, 2 / 3, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)
    assert w[0, 2] == 0.0  # exactly, not 1e-22
    # masked scores are never read, even inf or NaN; no mask means all positions
    w2 = masked_softmax(np.array([[0.0, np.log(2.0), np.nan]]), np.array([[True, True, False]]))
    np.testing.assert_allclose(w2, [[1 / 3, 2 / 3, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(masked_softmax([[0.0, 0.0]]), [[0.5, 0.5]])
    # large scores do not overflow
    np.testing.assert_allclose(masked_softmax([[1000.0, 1000.0]]), [[0.5, 0.5]])


def test_dot_attention_known_values():
    # q = (1, 0): scores = first coordinate of each key, (1, 0, 5); the third key is masked.
    q = np.array([[1.0, 0.0]])
    keys = np.array([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    mask = np.array([[True, True, False]])
    (context, weights), _ = dot_attention_forward(q, keys, mask)
    e = np.e
    np.testing.assert_allclose(weights, [[e / (e + 1), 1 / (e + 1), 0.0]], rtol=1e-14)
    np.testing.assert_allclose(context, [[e / (e + 1), 1 / (e + 1)]], rtol=1e-14)
    assert weights[0, 2] == 0.0
    # No scaling by 1/sqrt(H): doubling q doubles the scores.
    (_, w2), _ = dot_attention_forward(2 * q, keys, mask)
    np.testing.assert_allclose(w2, [[e**2 / (e**2 + 1), 1 / (e**2 + 1), 0.0]], rtol=1e-14)


def test_additive_attention_known_values():
    # A = 1: e_s = v tanh(W_q q + W_k k_s) = tanh(0 + k_s) with q = 0, so e = (0, 1/2) when
    # k = (0, atanh(1/2)).
    params = {"W_q": np.array([[3.0]]), "W_k": np.array([[1.0]]), "v": np.array([1.0])}
    k1 = np.arctanh(0.5)
    keys = np.array([[[0.0], [k1]]])
    (context, weights), _ = additive_attention_forward(np.zeros((1, 1)), keys, params)
    w1 = np.exp(0.5) / (1 + np.exp(0.5))
    np.testing.assert_allclose(weights, [[1 - w1, w1]], rtol=1e-14)
    np.testing.assert_allclose(context, [[w1 * k1]], rtol=1e-14)


def test_decoder_step_known_values_with_a_zero_gru():
    # With every GRU parameter 0: r = z = 1/2, n = tanh(0) = 0, so h = h_prev / 2.
    # h_prev = 2 -> h = 1; keys (1, -1) -> scores (1, -1), context = tanh(1).
    V, M, H = 3, 2, 1
    params = {
        "E": np.arange(V * M, dtype=float).reshape(V, M),
        "W_x": np.zeros((3 * H, M)),
        "W_h": np.zeros((3 * H, H)),
        "b_x": np.zeros(3 * H),
        "b_h": np.zeros(3 * H),
        "W_out": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -2.0]]),
        "b_out": np.array([0.0, 0.0, 0.5]),
    }
    keys = np.array([[[1.0], [-1.0]]])
    (logits, h, weights), _ = decoder_step(np.array([2]), np.array([[2.0]]), keys, None, params)
    c = np.tanh(1.0)
    np.testing.assert_allclose(h, [[1.0]])
    np.testing.assert_allclose(
        weights, [[np.e / (np.e + 1 / np.e), (1 / np.e) / (np.e + 1 / np.e)]]
    )
    np.testing.assert_allclose(logits, [[1.0, c, 1.0 - 2 * c + 0.5]], rtol=1e-14)


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_decoder_step_is_the_composition_of_its_parts(rng, attention):
    N, S, V, M, H = 3, 4, 5, 2, 3
    H_k = H if attention == "dot" else 2
    p = decoder_params(rng, V, M, H, H_k, attention)
    y, h_prev = rng.integers(0, V, size=N), rng.standard_normal((N, H))
    keys, mask = rng.standard_normal((N, S, H_k)), random_mask(rng, N, S)
    (logits, h, weights), _ = decoder_step(y, h_prev, keys, mask, p, attention=attention)
    h_ref, _ = gru_step_forward(p["E"][y], h_prev, p)
    if attention == "dot":
        (c_ref, w_ref), _ = dot_attention_forward(h_ref, keys, mask)
    else:
        (c_ref, w_ref), _ = additive_attention_forward(h_ref, keys, p, mask)
    np.testing.assert_allclose(h, h_ref, rtol=1e-14)
    np.testing.assert_allclose(weights, w_ref, rtol=1e-14)
    np.testing.assert_allclose(
        logits, np.concatenate([h_ref, c_ref], 1) @ p["W_out"].T + p["b_out"], rtol=1e-13
    )
    assert logits.shape == (N, V) and h.shape == (N, H) and weights.shape == (N, S)


# ------------------------------------------------------------------------------------------
# masks and errors
# ------------------------------------------------------------------------------------------


@given(**shape_args)
@example(N=1, S=1, H=1, H_k=1, seed=0)
@example(N=1, S=3, H=2, H_k=4, seed=1)
def test_masking_equals_dropping_the_positions(N, S, H, H_k, seed):
    """Masked weights are exactly 0, and the real positions' weights and the context are those
    of attention over the real positions alone, whatever the keys at masked positions."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((N, H))
    keys = rng.standard_normal((N, S, H_k))
    mask = random_mask(rng, N, S)
    keys[~mask] = 1e3 * np.sign(rng.standard_normal(keys[~mask].shape))  # would dominate
    p = additive_params(rng, 3, H, H_k)
    cases = [("additive", lambda q_, k_, m_: additive_attention_forward(q_, k_, p, m_))]
    if H == H_k:
        cases.append(("dot", dot_attention_forward))
    for name, fwd in cases:
        (context, weights), _ = fwd(q, keys, mask)
        assert np.all(weights[~mask] == 0.0), name
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-14, err_msg=name)
        for n in range(N):
            real = mask[n]
            (c_n, w_n), _ = fwd(q[n : n + 1], keys[n : n + 1, real], None)
            np.testing.assert_allclose(weights[n, real], w_n[0], rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(context[n], c_n[0], rtol=1e-12, atol=1e-14, err_msg=name)


def test_all_masked_row_and_bad_inputs_raise_clear_errors(rng):
    q, keys = rng.standard_normal((2, 3)), rng.standard_normal((2, 4, 3))
    mask = np.ones((2, 4), dtype=bool)
    mask[1] = False
    p = additive_params(rng, 5, 3, 3)
    with pytest.raises(ValueError, match=r"mask row 1 has no True entry"):
        dot_attention_forward(q, keys, mask)
    with pytest.raises(ValueError, match=r"mask row 1 has no True entry"):
        additive_attention_forward(q, keys, p, mask)
    with pytest.raises(ValueError, match=r"mask row 1 has no True entry"):
        masked_softmax(np.zeros((2, 4)), mask)
    with pytest.raises(TypeError, match=r"mask must be bool"):
        dot_attention_forward(q, keys, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"mask must have shape \(N, S\) = \(2, 4\)"):
        dot_attention_forward(q, keys, np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"q and the keys of one size: q has H = 2, keys have 3"):
        dot_attention_forward(q[:, :2], keys)
    with pytest.raises(ValueError, match=r"q has batch size 1 but keys has 2"):
        dot_attention_forward(q[:1], keys)
    with pytest.raises(ValueError, match=r"S = 0"):
        dot_attention_forward(q, keys[:, :0])
    with pytest.raises(ValueError, match=r"params\['W_k'\] must have shape \(5, 3\)"):
        additive_attention_forward(q, keys, {**p, "W_k": np.zeros((5, 2))})
    with pytest.raises(KeyError, match=r"missing 'v'"):
        additive_attention_forward(q, keys, {"W_q": p["W_q"], "W_k": p["W_k"]})
    (c, _), cache = dot_attention_forward(q, keys)
    with pytest.raises(ValueError, match=r"dcontext must have the shape of context"):
        dot_attention_backward(np.ones((2, 4)), cache)
    with pytest.raises(ValueError, match=r"dweights must have the shape of weights"):
        dot_attention_backward(np.ones_like(c), cache, dweights=np.ones((2, 3)))


def test_decoder_step_bad_inputs(rng):
    p = decoder_params(rng, 5, 2, 3, 3, "dot")
    h, keys = np.zeros((2, 3)), rng.standard_normal((2, 4, 3))
    with pytest.raises(ValueError, match=r"attention must be 'dot' or 'additive'"):
        decoder_step(np.array([0, 1]), h, keys, None, p, attention="general")
    with pytest.raises(ValueError, match=r"y_prev must be a 1-D array of token ids"):
        decoder_step(np.array([0.0, 1.0]), h, keys, None, p)
    with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
        decoder_step(np.array([0, 5]), h, keys, None, p)
    with pytest.raises(ValueError, match=r"batch sizes differ"):
        decoder_step(np.array([0]), h, keys, None, p)
    with pytest.raises(
        ValueError, match=r"params\['W_out'\] must have shape \(5, 5\), got \(5, 6\); .* H_k = 2"
    ):
        decoder_step(np.array([0, 1]), h, keys[:, :, :2], None, p)


# ------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------


@given(**shape_args)
@example(N=1, S=1, H=1, H_k=1, seed=0)
@example(N=2, S=3, H=2, H_k=2, seed=1)
def test_dot_attention_backward_numerically(assert_grad, N, S, H, H_k, seed):
    rng = np.random.default_rng(seed)
    q, keys = rng.standard_normal((N, H)), rng.standard_normal((N, S, H))
    mask = random_mask(rng, N, S)
    (context, weights), cache = dot_attention_forward(q, keys, mask)
    dc, dw = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)

    def out(q_, k_):  # both outputs, so one upstream pair checks both gradient paths
        (c, w), _ = dot_attention_forward(q_, k_, mask)
        return np.concatenate([c.ravel(), w.ravel()])

    d_all = np.concatenate([dc.ravel(), dw.ravel()])
    dq, dkeys = dot_attention_backward(dc, cache, dweights=dw)
    assert_grad(dq, numerical_gradient(lambda x: out(x, keys), q, d_all), "dq")
    assert_grad(dkeys, numerical_gradient(lambda x: out(q, x), keys, d_all), "dkeys")
    assert np.all(dkeys[~mask] == 0.0)  # a masked key takes no part
    dq0, dkeys0 = dot_attention_backward(dc, cache)  # dweights defaults to 0
    assert_grad(dq0, numerical_gradient(lambda x: out(x, keys)[: dc.size], q, dc.ravel()), "dq")
    assert_grad(dkeys0, numerical_gradient(lambda x: out(q, x)[: dc.size], keys, dc.ravel()), "dk")


@given(**shape_args)
@example(N=1, S=1, H=1, H_k=1, seed=0)
@example(N=2, S=3, H=2, H_k=4, seed=1)
def test_additive_attention_backward_numerically(assert_grad, N, S, H, H_k, seed):
    rng = np.random.default_rng(seed)
    A = 3
    q, keys = rng.standard_normal((N, H)), rng.standard_normal((N, S, H_k))
    mask = random_mask(rng, N, S)
    p = additive_params(rng, A, H, H_k)
    (context, weights), cache = additive_attention_forward(q, keys, p, mask)
    dc, dw = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)
    d_all = np.concatenate([dc.ravel(), dw.ravel()])

    def out(q_, k_, p_):
        (c, w), _ = additive_attention_forward(q_, k_, p_, mask)
        return np.concatenate([c.ravel(), w.ravel()])

    dq, dkeys, grads = additive_attention_backward(dc, cache, dweights=dw)
    assert set(grads) == {"W_q", "W_k", "v"}
    assert_grad(dq, numerical_gradient(lambda x: out(x, keys, p), q, d_all), "dq")
    assert_grad(dkeys, numerical_gradient(lambda x: out(q, x, p), keys, d_all), "dkeys")
    assert np.all(dkeys[~mask] == 0.0)
    for name in p:
        num = numerical_gradient(lambda x, name=name: out(q, keys, {**p, name: x}), p[name], d_all)
        assert_grad(grads[name], num, f"d{name}")


@pytest.mark.parametrize("attention", ["dot", "additive"])
@pytest.mark.parametrize("N,S,V,M,H,H_k", [(1, 1, 2, 1, 1, 1), (3, 4, 5, 2, 3, 2)])
def test_decoder_step_backward_numerically(assert_grad, attention, N, S, V, M, H, H_k):
    rng = np.random.default_rng(N * 100 + S)
    if attention == "dot":
        H_k = H
    p = decoder_params(rng, V, M, H, H_k, attention)
    y = np.array([1, 1, 0][:N]) % V  # a repeated token: dE must add both rows' gradients
    h_prev, keys = rng.standard_normal((N, H)), rng.standard_normal((N, S, H_k))
    mask = random_mask(rng, N, S)
    (logits, h, _), cache = decoder_step(y, h_prev, keys, mask, p, attention=attention)
    dlogits, dh = rng.standard_normal(logits.shape), rng.standard_normal(h.shape)
    d_all = np.concatenate([dlogits.ravel(), dh.ravel()])

    def out(h_, k_, p_):
        (lg, hh, _), _ = decoder_step(y, h_, k_, mask, p_, attention=attention)
        return np.concatenate([lg.ravel(), hh.ravel()])

    dh_prev, dkeys, grads = decoder_step_backward(dlogits, cache, dh=dh)
    assert set(grads) == set(p)
    assert_grad(dh_prev, numerical_gradient(lambda x: out(x, keys, p), h_prev, d_all), "dh_prev")
    assert_grad(dkeys, numerical_gradient(lambda x: out(h_prev, x, p), keys, d_all), "dkeys")
    for name in p:
        num = numerical_gradient(lambda x, n=name: out(h_prev, keys, {**p, n: x}), p[name], d_all)
        assert_grad(grads[name], num, f"d{name}")


def test_no_input_is_modified_and_float32_stays_float32(rng, assert_unchanged):
    N, S, H = 2, 3, 4
    q = rng.standard_normal((N, H)).astype(np.float32)
    keys = rng.standard_normal((N, S, H)).astype(np.float32)
    mask = random_mask(rng, N, S)
    p = additive_params(rng, 3, H, H, dtype=np.float32)
    before = {"q": q.copy(), "keys": keys.copy(), "mask": mask.copy(), "p": {**p}}
    before["p"] = {k: v.copy() for k, v in p.items()}
    (c, w), cache = dot_attention_forward(q, keys, mask)
    assert c.dtype == w.dtype == np.float32
    dq, dk = dot_attention_backward(np.ones_like(c), cache)
    assert dq.dtype == dk.dtype == np.float32
    (c, w), cache = additive_attention_forward(q, keys, p, mask)
    assert c.dtype == w.dtype == np.float32
    dq, dk, g = additive_attention_backward(np.ones_like(c), cache)
    assert dq.dtype == dk.dtype == g["W_k"].dtype == np.float32
    assert_unchanged(before, {"q": q, "keys": keys, "mask": mask, "p": p})

    dp = decoder_params(rng, 5, 2, H, H, "additive")
    y, h_prev = np.array([1, 4]), rng.standard_normal((N, H))
    keys64 = keys.astype(np.float64)
    before = {k: v.copy() for k, v in dp.items()}, y.copy(), h_prev.copy(), keys64.copy()
    (lg, _, _), cache = decoder_step(y, h_prev, keys64, mask, dp, attention="additive")
    decoder_step_backward(np.ones_like(lg), cache, dh=np.ones_like(h_prev))
    assert_unchanged(before, (dp, y, h_prev, keys64))


# ------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------


def markov_step_fn(table):
    """step_fn of a first-order Markov chain: log_probs = log table[token]; the state counts
    the calls, so a test can see it is threaded through."""
    log_table = np.log(table)

    def step_fn(token, state):
        return log_table[token].copy(), state + 1

    return step_fn


def history_step_fn(V, seed):
    """step_fn whose distribution depends on the whole history, carried in the state (a tuple
    of tokens): a check that beam search gives each hypothesis its own state."""

    def step_fn(token, state):
        history = (*state, token)
        r = np.random.default_rng([seed, *history])
        logits = 2.0 * r.standard_normal(V)
        return logits - np.log(np.sum(np.exp(logits))), history

    return step_fn


def replay_score(step_fn, state, bos, tokens):
    total, token = 0.0, bos
    for t in tokens:
        lp, state = step_fn(token, state)
        total += lp[t]
        token = t
    return total


def brute_force(step_fn, state, bos, eos, V, max_len, length_penalty=0.0):
    """Every output decoding can produce: sequences ending at their first eos (length <=
    max_len) and sequences of max_len tokens without eos; ranked by the normalised score."""
    out = []
    for L in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=L):
            if eos in seq[:-1] or (L < max_len and seq[-1] != eos):
                continue
            s = replay_score(step_fn, state, bos, seq)
            out.append((list(seq), s / L**length_penalty if length_penalty > 0 else s))
    return sorted(out, key=lambda r: -r[1])


# tokens: 0 = <bos>, 1 = <eos>, 2 = a, 3 = b. Greedy takes a (0.5) and then has at best
# a -> eos (0.4): 0.2 in all. b (0.4) -> eos (0.9) = 0.36 is the best sequence.
TABLE = np.array(
    [
        [0.001, 0.099, 0.5, 0.4],  # after <bos>
        [0.25, 0.25, 0.25, 0.25],  # after <eos> (never used)
        [0.001, 0.4, 0.3, 0.299],  # after a
        [0.001, 0.9, 0.049, 0.05],  # after b
    ]
)


def test_beam_search_beats_greedy_on_a_known_table():
    step_fn = markov_step_fn(TABLE)
    tokens, score = greedy_decode(step_fn, 0, bos=0, eos=1, max_len=5)
    assert tokens == [2, 1] and score == pytest.approx(np.log(0.5 * 0.4))
    best = beam_search(step_fn, 0, bos=0, eos=1, beam_width=2, max_len=5)
    assert best[0][0] == [3, 1] and best[0][1] == pytest.approx(np.log(0.4 * 0.9))
    assert best[1][0] == [2, 1]  # greedy's answer is the runner-up
    assert best[0][0] == brute_force(step_fn, 0, 0, 1, 4, 5)[0][0]
    # beam width 1 is greedy
    assert beam_search(step_fn, 0, 0, 1, beam_width=1, max_len=5) == [(tokens, score)]


def test_length_penalty_prefers_longer_outputs_when_asked():
    # after <bos>: eos 0.5, a 0.5; after a: eos 0.9 ... so [eos] = log .5, [a, eos] = log .45.
    table = np.array(
        [[1e-9, 0.5, 0.5 - 1e-9], [0.5, 0.25, 0.25], [1e-9, 0.9, 0.1 - 1e-9]], dtype=float
    )
    step_fn = markov_step_fn(table)
    plain = beam_search(step_fn, 0, 0, 1, beam_width=3, max_len=3)
    assert plain[0] == ([1], pytest.approx(np.log(0.5)))
    mean = beam_search(step_fn, 0, 0, 1, beam_width=3, max_len=3, length_penalty=1.0)
    assert mean[0][0] == [2, 1] and mean[0][1] == pytest.approx(np.log(0.45) / 2)


@given(V=st.integers(2, 4), max_len=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
@example(V=2, max_len=1, seed=0)
@example(V=4, max_len=4, seed=1)
def test_exhaustive_beam_equals_brute_force(V, max_len, seed):
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.ones(V), size=V)
    bos, eos = 0, 1
    for step_fn, state in ((markov_step_fn(table), 0), (history_step_fn(V, seed), ())):
        for lp in (0.0, 0.7):
            expected = brute_force(step_fn, state, bos, eos, V, max_len, lp)
            # wide enough that nothing is ever pruned
            got = beam_search(step_fn, state, bos, eos, V**max_len, max_len, length_penalty=lp)
            # the same sequences with the same scores, ranked (a Markov chain has exact ties:
            # a, b, c and b, c, a can have one probability, so the order of ties is free)
            assert sorted(map(tuple, (t for t, _ in got))) == sorted(
                map(tuple, (t for t, _ in expected))
            )
            want = {tuple(t): s for t, s in expected}
            np.testing.assert_allclose([s for _, s in got], [want[tuple(t)] for t, _ in got])
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)


@given(
    V=st.integers(2, 5),
    max_len=st.integers(1, 6),
    width=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
@example(V=2, max_len=1, width=1, seed=0)
def test_beam_one_is_greedy_and_scores_are_replayable(V, max_len, width, seed):
    step_fn, bos, eos = history_step_fn(V, seed), 0, 1
    greedy = greedy_decode(step_fn, (), bos, eos, max_len)
    beam1 = beam_search(step_fn, (), bos, eos, 1, max_len)
    assert beam1 == [greedy]
    assert len(greedy[0]) == max_len or greedy[0][-1] == eos
    hyps = beam_search(step_fn, (), bos, eos, width, max_len)
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True)
    for tokens, s in hyps:
        assert 1 <= len(tokens) <= max_len
        assert eos not in tokens[:-1] and (tokens[-1] == eos or len(tokens) == max_len)
        assert s == pytest.approx(replay_score(step_fn, (), bos, tokens), rel=1e-12)
    if max_len <= 4:  # nothing beats the true optimum
        assert hyps[0][1] <= brute_force(step_fn, (), bos, eos, V, max_len)[0][1] + 1e-12


def test_decoding_stops_at_max_len_and_checks_arguments():
    step_fn = markov_step_fn(np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]))
    tokens, score = greedy_decode(step_fn, 0, 0, 1, max_len=3)
    assert tokens == [2, 2, 2] and score == pytest.approx(3 * np.log(0.8))  # no eos in sight
    with pytest.raises(ValueError, match=r"max_len must be a positive integer"):
        greedy_decode(step_fn, 0, 0, 1, max_len=0)
    with pytest.raises(ValueError, match=r"beam_width must be a positive integer"):
        beam_search(step_fn, 0, 0, 1, beam_width=0, max_len=3)
    with pytest.raises(ValueError, match=r"length_penalty must be >= 0"):
        beam_search(step_fn, 0, 0, 1, 2, 3, length_penalty=-1.0)
    with pytest.raises(ValueError, match=r"log-probabilities of shape \(V,\)"):
        greedy_decode(lambda t, s: (np.zeros((1, 3)), s), 0, 0, 1, 3)
