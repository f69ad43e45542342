"""Checks for the assignment ch09_seq2seq (attention, one decoder step, beam search).

Each ``check_*`` takes the student's function(s), runs them on random cases (random shapes
that include N = 1, a single source position S = 1, query and key sizes that differ, padding
masks and ``mask=None``, and attention scores around 1000, where exp overflows), compares
with a trusted copy of :mod:`rnn_ref.numpy`, and raises :class:`GradingError` naming the first
problem. The seeds are arguments, so a hidden test cell fixes them and grading is repeatable.

Conventions, as in :mod:`rnn_ref.numpy.seq2seq`: ``q`` (N, H), ``keys`` (N, S, H_k) (also the
values), ``mask`` (N, S) bool, True at real source positions. Dot attention scores
``e_s = k_s . q`` (no scaling); additive attention ``e_s = v . tanh(W_q q + W_k k_s)``; the
weights are a softmax over the real positions only (exactly 0 at padding); the context is
``sum_s alpha_s k_s``. The decoder step is ``h = GRU(E[y_prev], h_prev)``, attention with the
*new* ``h`` as query, ``logits = W_out [h; context] + b_out``.

Decoding is checked with hand-made step functions: :class:`MarkovStep` is a table of
next-token log-probabilities that depends on the previous token and, through the state (the
step index), on the position, so a search that does not carry each hypothesis's own state is
caught. :func:`greedy_trap` is the chapter's example where greedy decoding is not optimal.

The checks are layered: :func:`check_decoder_step` first checks the attention functions the
decoder uses and, if one is wrong, says "fix it first" instead of blaming the decoder.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._guard import GradingError, recording, seal

__all__ = [
    "MarkovStep",
    "greedy_trap",
    "random_markov",
    "check_dot_attention",
    "check_additive_attention",
    "check_decoder_step",
    "check_beam_search",
]

# Captured now, before any student cell can rebind them.
_isfinite, _abs, _exp, _log, _tanh = _np.isfinite, _np.abs, _np.exp, _np.log, _np.tanh

# The largest score |e| of the "large scores" cases: exp(+-1000) is inf or 0 in float64.
LARGE = 1000.0

# (N, S, H): batch, source positions, size; N = 1 and S = 1 included.
DOT_CASES = ((3, 5, 4), (1, 4, 3), (2, 1, 5), (4, 6, 2))
# (N, S, H_q, H_k, A): query, key and attention sizes all different somewhere.
ADD_CASES = ((3, 5, 4, 6, 3), (1, 4, 3, 3, 5), (2, 1, 5, 2, 4), (4, 3, 2, 4, 2))
# (N, S, H, M, V, A): batch, source, decoder state, embedding, vocabulary, attention sizes.
DEC_CASES = ((3, 5, 4, 3, 7, 3), (1, 4, 3, 2, 5, 4), (2, 1, 5, 4, 6, 2))


def _reference():
    return trusted_reference("rnn_ref.numpy")


def _ctx(seed, label="", **shape) -> str:
    s = ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"
    return f"{label}, {s}" if label else s


def _mask(rng, N: int, S: int):
    """A padding mask: random lengths in [1, S], and the last example padded when S > 1."""
    lengths = rng.integers(1, S + 1, N)
    if S > 1:
        lengths[-1] = rng.integers(1, S)
    return _np.arange(S)[None, :] < lengths[:, None]


def _pair_of_pair(fn_name: str, result, what: str):
    """``((a, b), cache)`` -> (a, b), or a GradingError that says what the shape should be."""
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise GradingError(f"{fn_name} should return ({what}), cache: a tuple of two; got {got}")
    inner = result[0]
    n = len(what.split(","))
    if not (isinstance(inner, tuple | list) and len(inner) == n):
        raise GradingError(
            f"{fn_name} should return ({what}), cache: its first element should be a tuple of "
            f"{n}; got {type(inner).__name__}"
        )
    return tuple(inner)


def _check_weights(weights, mask, ctx: str) -> None:
    """What any attention's weights must satisfy, whatever the scores: finite, exactly 0 at
    padding, rows summing to 1. Named separately so a learner sees which property fails."""
    w = _np.asarray(weights, dtype=_np.float64)
    if not _isfinite(w).all():
        n, s = (int(i) for i in _np.argwhere(~_isfinite(w))[0])
        raise GradingError(
            f"weights contains NaN or infinity, first at [n={n}, s={s}] ({ctx}); did np.exp "
            "overflow or underflow? With scores of +-1000 or more, exp gives inf or 0 in float64. "
            "A softmax is unchanged when one number is added to every score of a row: is the "
            "number you add one that keeps every exp finite and not all of them 0?"
        )
    if mask is not None:
        pad = ~_np.asarray(mask, dtype=bool)
        leaked = pad & (w != 0)
        if leaked.any():
            n, s = (int(i) for i in _np.argwhere(leaked)[0])
            raise GradingError(
                f"weights should be exactly 0 at padded positions (mask False), but "
                f"{int(leaked.sum())} are not, first at [n={n}, s={s}] ({ctx})"
            )
    sums = w.sum(axis=1)
    off = _abs(sums - 1.0) > 1e-6
    if off.any():
        n = int(_np.argmax(off))
        raise GradingError(
            f"each row of weights should sum to 1 (a softmax over the source positions, axis 1"
            f"{', real positions only' if mask is not None else ''}); row n={n} sums to "
            f"{sums[n]:.4g} ({ctx})"
        )


# ------------------------------------------------------------------------------------------
# Part 1: dot attention
# ------------------------------------------------------------------------------------------


def _dot_case(seed: int, N: int, S: int, H: int):
    rng = _np.random.default_rng(seed)
    q = rng.normal(0, 1, (N, H))
    keys = rng.normal(0, 1.5, (N, S, H))
    mask = _mask(rng, N, S)
    # Padding keys aligned with the query: ignoring the mask moves weight onto them.
    keys = _np.where(mask[:, :, None], keys, 2.0 * q[:, None, :])
    return q, keys, mask


def _attention_run(fn_name, fn, args, mask, expected, ctx, H_out) -> None:
    N, S = args[1].shape[:2]
    result = guarded_call(fn_name, fn, *args)
    context, weights = _pair_of_pair(fn_name, result, "context, weights")
    context = assert_array("context", context, (N, H_out))
    weights = assert_array("weights", weights, (N, S))
    _check_weights(weights, mask, ctx)
    if expected is not None:
        (ctx_e, w_e), _ = expected
        assert_close("weights", weights, w_e, dims=("n", "s"), context=ctx)
        assert_close("context", context, ctx_e, dims=("n", "h"), context=ctx)


def _dot_subcases(q, keys, mask):
    return (
        ("with a padding mask", q, keys, mask),
        ("with mask=None", q, keys, None),
        ("with large scores (|e| in the thousands) and a mask", q * 30.0, keys * 30.0, mask),
    )


def check_dot_attention(dot_attention_forward, seeds=(0, 1, 2, 3)) -> None:
    """weights = softmax over the real positions of e_s = k_s . q; context = sum alpha_s k_s.
    With a padding mask, with mask=None and with scores large enough to overflow a naive exp."""
    for seed, (N, S, H) in zip(seeds, DOT_CASES, strict=False):
        q0, keys0, mask0 = _dot_case(seed, N, S, H)
        for label, q, keys, mask in _dot_subcases(q0, keys0, mask0):
            expected = None if recording() else _reference().dot_attention_forward(q, keys, mask)
            ctx = _ctx(seed, label, N=N, S=S, H=H)
            _attention_run(
                "dot_attention_forward",
                dot_attention_forward,
                (q, keys, mask),
                mask,
                expected,
                ctx,
                H,
            )


# ------------------------------------------------------------------------------------------
# Part 2: additive attention
# ------------------------------------------------------------------------------------------


def _additive_case(seed: int, N: int, S: int, H_q: int, H_k: int, A: int):
    rng = _np.random.default_rng(seed)
    params = {
        "W_q": rng.normal(0, 1.0 / _np.sqrt(H_q), (A, H_q)),
        "W_k": rng.normal(0, 1.0 / _np.sqrt(H_k), (A, H_k)),
        "v": rng.normal(0, 1.5, A),
    }
    q = rng.normal(0, 1.5, (N, H_q))
    keys = rng.normal(0, 1.5, (N, S, H_k))
    return q, keys, params, _mask(rng, N, S)


def _large_v(q, keys, params, mask):
    """``params`` with ``v`` rescaled so that the real position with the largest |e_s| scores
    exactly +LARGE: some row's largest score is +1000 (a softmax that adds the row maximum, or
    subtracts nothing, overflows there), and other rows' scores reach hundreds below 0."""
    t = _tanh((q @ params["W_q"].T)[:, None, :] + keys @ params["W_k"].T)
    e = _np.where(mask, t @ params["v"], 0.0)
    top = e.flat[int(_np.argmax(_abs(e)))]
    return {**params, "v": params["v"] * (LARGE / top)}


def _additive_subcases(q, keys, params, mask):
    return (
        ("with a padding mask", params, mask),
        ("with mask=None", params, None),
        ("with large scores (|e| ~ 1000) and a mask", _large_v(q, keys, params, mask), mask),
    )


def check_additive_attention(additive_attention_forward, seeds=(10, 11, 12, 13)) -> None:
    """e_s = v . tanh(W_q q + W_k k_s), masked softmax, context; H_q, H_k and A differ. With a
    padding mask, with mask=None and with scores large enough to overflow a naive exp (v
    rescaled)."""
    for seed, (N, S, H_q, H_k, A) in zip(seeds, ADD_CASES, strict=False):
        q, keys, params0, mask0 = _additive_case(seed, N, S, H_q, H_k, A)
        for label, params, mask in _additive_subcases(q, keys, params0, mask0):
            expected = (
                None
                if recording()
                else _reference().additive_attention_forward(q, keys, params, mask)
            )
            ctx = _ctx(seed, label, N=N, S=S, H_q=H_q, H_k=H_k, A=A)
            _attention_run(
                "additive_attention_forward",
                additive_attention_forward,
                (q, keys, params, mask),
                mask,
                expected,
                ctx,
                H_k,
            )


# ------------------------------------------------------------------------------------------
# Part 3: one decoder step
# ------------------------------------------------------------------------------------------


def _decoder_case(seed: int, N: int, S: int, H: int, M: int, V: int, A: int, attention: str):
    rng = _np.random.default_rng(seed)
    H_k = H if attention == "dot" else H + 1
    params = {
        "E": rng.normal(0, 1, (V, M)),
        "W_x": rng.normal(0, 1.0 / _np.sqrt(M), (3 * H, M)),
        "W_h": rng.normal(0, 1.0 / _np.sqrt(H), (3 * H, H)),
        "b_x": rng.normal(0, 0.5, 3 * H),
        "b_h": rng.normal(0, 0.5, 3 * H),
        "W_out": rng.normal(0, 1.0 / _np.sqrt(H + H_k), (V, H + H_k)),
        "b_out": rng.normal(0, 0.5, V),
    }
    if attention == "additive":
        params["W_q"] = rng.normal(0, 1.0 / _np.sqrt(H), (A, H))
        params["W_k"] = rng.normal(0, 1.0 / _np.sqrt(H_k), (A, H_k))
        params["v"] = rng.normal(0, 1.5, A)
    y_prev = rng.integers(0, V, N)
    h_prev = rng.normal(0, 0.8, (N, H))
    keys = rng.normal(0, 1.5, (N, S, H_k))
    return y_prev, h_prev, keys, _mask(rng, N, S), params


def _fix_first(fn_name: str, check, *args) -> None:
    try:
        check(*args)
    except GradingError as e:
        raise GradingError(
            f"decoder_step cannot be checked because your {fn_name} is wrong; fix it first "
            f"(the decoder step uses it). {e}"
        ) from None


def check_decoder_step(
    decoder_step,
    dot_attention_forward=None,
    additive_attention_forward=None,
    seeds=(20, 21, 22),
) -> None:
    """(logits, h, weights) of one decoder step, with dot and with additive attention, a padding
    mask and a non-zero h_prev. The attention functions given are checked first."""
    if dot_attention_forward is not None:
        _fix_first("dot_attention_forward", check_dot_attention, dot_attention_forward, seeds[:1])
    if additive_attention_forward is not None:
        _fix_first(
            "additive_attention_forward",
            check_additive_attention,
            additive_attention_forward,
            seeds[:1],
        )
    for seed, (N, S, H, M, V, A) in zip(seeds, DEC_CASES, strict=False):
        for attention in ("dot", "additive"):
            y_prev, h_prev, keys, mask, params = _decoder_case(seed, N, S, H, M, V, A, attention)
            ctx = _ctx(seed, f'attention="{attention}"', N=N, S=S, H=H, M=M, V=V)
            expected = (
                None
                if recording()
                else _reference().decoder_step(y_prev, h_prev, keys, mask, params, attention)[0]
            )
            result = guarded_call(
                "decoder_step", decoder_step, y_prev, h_prev, keys, mask, params, attention
            )
            logits, h, weights = _pair_of_pair("decoder_step", result, "logits, h, weights")
            logits = assert_array("logits", logits, (N, V))
            h = assert_array("h", h, (N, H))
            weights = assert_array("weights", weights, (N, S))
            if expected is None:
                continue
            logits_e, h_e, w_e = expected
            assert_close("h", h, h_e, dims=("n", "h"), context=ctx + " (the GRU step)")
            _check_weights(weights, mask, ctx)
            _hint_old_query(weights, w_e, y_prev, h_prev, keys, mask, params, attention, ctx)
            assert_close("weights", weights, w_e, dims=("n", "s"), context=ctx)
            assert_close("logits", logits, logits_e, dims=("n", "v"), context=ctx)


def _hint_old_query(weights, w_e, y_prev, h_prev, keys, mask, params, attention, ctx) -> None:
    """If the weights are wrong but equal attention queried with h_prev, say so."""
    w = _np.asarray(weights, dtype=_np.float64)
    if _np.allclose(w, w_e, atol=1e-6, rtol=1e-5):
        return
    ref = _reference()
    if attention == "dot":
        (_, w_old), _ = ref.dot_attention_forward(h_prev, keys, mask)
    else:
        sub = {k: params[k] for k in ("W_q", "W_k", "v")}
        (_, w_old), _ = ref.additive_attention_forward(h_prev, keys, sub, mask)
    if _np.allclose(w, w_old, atol=1e-6, rtol=1e-5):
        raise GradingError(
            f"weights is wrong ({ctx}): it is the attention of h_prev; this decoder attends "
            "with the new state h, computed by the GRU step first"
        )


# ------------------------------------------------------------------------------------------
# Part 4: beam search over hand-made step functions
# ------------------------------------------------------------------------------------------


class MarkovStep:
    """A step function from a table: ``step_fn(token, t) -> (log_p[t, token], t + 1)``.

    ``log_p`` (T, V, V) holds log P(next = j | previous = i) at step t (the last table is
    reused after T steps); the state is the step index, so a search must carry each
    hypothesis's own state. It returns a fresh copy, so nothing a search does to the array
    can change the table.
    """

    def __init__(self, log_p):
        log_p = _np.asarray(log_p, dtype=_np.float64)
        if log_p.ndim == 2:
            log_p = log_p[None]
        self.log_p = log_p
        self.V = log_p.shape[-1]

    def __call__(self, token, state):
        t = int(state)
        token = int(token)
        if not 0 <= token < self.V:
            raise ValueError(f"token {token} is out of range for a vocabulary of {self.V}")
        return self.log_p[min(t, len(self.log_p) - 1), token].copy(), t + 1

    def __repr__(self) -> str:
        return f"MarkovStep(T={len(self.log_p)}, V={self.V})"


def greedy_trap():
    """The chapter's example where greedy decoding is not optimal.

    Tokens: 0 = "a", 1 = "b", 2 = <eos>, 3 = <bos>. From <bos>: a 0.55, b 0.44. From a:
    <eos> 0.40, a 0.31, b 0.27. From b: <eos> 0.90, b 0.05, a 0.04. (Every entry is positive, so
    every log-probability is finite, and no two are equal.) Greedy reads a, then <eos>:
    probability 0.55 * 0.40 = 0.22; the best sequence is b, <eos>: 0.44 * 0.90 = 0.396.

    Returns:
        (step_fn, state, bos, eos): a :class:`MarkovStep`, its initial state 0, 3 and 2.
    """
    p = _np.array(
        [
            [0.31, 0.27, 0.40, 0.02],  # after a
            [0.04, 0.05, 0.90, 0.01],  # after b
            [0.10, 0.20, 0.30, 0.40],  # after <eos> (never used: a finished hypothesis stops)
            [0.55, 0.44, 0.006, 0.004],  # after <bos>
        ]
    )
    return MarkovStep(_log(p)), 0, 3, 2


def random_markov(seed: int, V: int = 5, T: int = 6, eos: int = 2, bos: int = 1):
    """A random position-dependent table (T, V, V) over V tokens, with <bos> unlikely (but not
    impossible: every log-probability is finite, so no two hypotheses tie at -inf) and <eos>
    likely enough that hypotheses finish at different lengths.

    Returns:
        (step_fn, state, bos, eos).
    """
    rng = _np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (T, V, V))
    logits[:, :, eos] += rng.normal(0.0, 1.0, (T, V))
    logits[0, :, eos] -= 4.0  # an empty output is possible, but not the obvious winner
    logits[:, :, bos] -= 5.0
    z = logits - logits.max(axis=2, keepdims=True)
    log_p = z - _log(_exp(z).sum(axis=2, keepdims=True))
    return MarkovStep(log_p), 0, bos, eos


def _hypotheses(result, ctx: str) -> list:
    """The student's result as [(list of int tokens, float score)], or a GradingError."""
    if not isinstance(result, list | tuple):
        raise GradingError(
            f"beam_search should return a list of (tokens, score), got {type(result).__name__}"
        )
    out = []
    for k, item in enumerate(result):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise GradingError(
                f"beam_search: item {k} of the list should be a pair (tokens, score) ({ctx})"
            )
        tokens, score = item
        try:
            arr = _np.asarray(tokens)
            if arr.ndim != 1 or (arr.size and not _np.issubdtype(arr.dtype, _np.integer)):
                raise ValueError
            toks = [int(t) for t in arr]
            score = float(_np.asarray(score))
        except (TypeError, ValueError):
            raise GradingError(
                f"beam_search: in item {k}, tokens should be a list of ints and score a number "
                f"({ctx})"
            ) from None
        out.append((toks, score))
    return out


def _compare_beams(got: list, expected: list, ctx: str, what: str = "") -> None:
    if not got:
        raise GradingError(f"beam_search returned no hypotheses ({ctx})")
    for k, (_, score) in enumerate(got):
        if not _isfinite(score) and score != -_np.inf:
            raise GradingError(f"beam_search: the score of hypothesis {k} is NaN ({ctx})")
    if expected is None:
        return
    exp = [(list(t), float(s)) for t, s in expected]
    best_t, best_s = exp[0]
    if got[0][0] != best_t:
        raise GradingError(
            f"beam_search: the best hypothesis (the first in your list) has the wrong tokens "
            f"({ctx}){what}"
        )
    if not abs(got[0][1] - best_s) <= 1e-6 + 1e-6 * abs(best_s):
        raise GradingError(
            f"beam_search: the best hypothesis has the right tokens but the wrong score, off by "
            f"{abs(got[0][1] - best_s):.3g} ({ctx}){what}"
        )
    if len(got) != len(exp):
        raise GradingError(
            f"beam_search returned {len(got)} hypotheses, which is not the number of finished "
            f"hypotheses plus those still live at max_len ({ctx}){what}"
        )
    for k, ((t, s), (te, se)) in enumerate(zip(got, exp, strict=True)):
        if t != te:
            raise GradingError(
                f"beam_search: hypothesis {k} (counting from 0, best first) has the wrong "
                f"tokens ({ctx}){what}"
            )
        if not abs(s - se) <= 1e-6 + 1e-6 * abs(se):
            raise GradingError(
                f"beam_search: the score of hypothesis {k} (counting from 0, best first) is off "
                f"by {abs(s - se):.3g} ({ctx}){what}"
            )


# (beam_width, max_len, length_penalty): greedy, short searches with live hypotheses at the
# end, wide beams, and length normalisation.
BEAM_SETTINGS = ((1, 6, 0.0), (2, 3, 0.0), (3, 6, 0.0), (3, 6, 1.0), (5, 5, 0.6), (2, 6, 1.0))


def _run_beam(beam_search, step_fn, state, bos, eos, width, max_len, lp, ctx, what=""):
    expected = (
        None
        if recording()
        else _reference().beam_search(step_fn, state, bos, eos, width, max_len, lp)
    )
    result = guarded_call("beam_search", beam_search, step_fn, state, bos, eos, width, max_len, lp)
    _compare_beams(_hypotheses(result, ctx), expected, ctx, what)


def check_beam_search(beam_search, seeds=(30, 31, 32)) -> None:
    """The returned list (tokens and scores, best first) against the reference: the greedy trap
    with beam widths 1 and 2, then random position-dependent Markov tables with several beam
    widths, max_len small enough that hypotheses are still live at the end, and length
    penalties 0, 0.6 and 1."""
    step_fn, state, bos, eos = greedy_trap()
    for width in (1, 2):
        ctx = f"the greedy trap of the chapter, beam_width={width}, max_len=5"
        _run_beam(beam_search, step_fn, state, bos, eos, width, 5, 0.0, ctx)
    for seed in seeds:
        step_fn, state, bos, eos = random_markov(seed)
        for width, max_len, lp in BEAM_SETTINGS:
            ctx = (
                f"a random Markov table with V=5, seed={seed}, beam_width={width}, "
                f"max_len={max_len}, length_penalty={lp}"
            )
            what = " (with beam_width=1, beam search is greedy decoding)" if width == 1 else ""
            _run_beam(beam_search, step_fn, state, bos, eos, width, max_len, lp, ctx, what)


seal(__name__)
