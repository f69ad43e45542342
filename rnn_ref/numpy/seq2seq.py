r"""Encoder-decoder with attention in NumPy: attention, one decoder step, greedy and beam decoding.

Chapter ch09_seq2seq. Batch-first shapes: a query ``q`` is (N, H), the keys ``keys`` (N, S, H_k)
are the encoder's outputs for the S source positions, and a ``mask`` (N, S) bool is True at a
real source position and False at padding. The keys are also the values: the context vector is
a weighted average of the keys themselves.

**Dot attention** (Luong et al. 2015, "dot" score), no scaling by :math:`1/\sqrt{H}` (that is
the Transformer's *scaled* dot product; with a learned decoder the scale can be absorbed into
the weights, and the course keeps Luong's plain form):

.. math::

   e_s = k_s^\top q, \qquad
   \alpha_s = \frac{\exp e_s}{\sum_{s' : m_{s'}} \exp e_{s'}} \text{ if } m_s,\;
   \alpha_s = 0 \text{ otherwise}, \qquad
   c = \sum_s \alpha_s k_s .

**Additive attention** (Bahdanau et al. 2015), parameters ``W_q`` (A, H_q), ``W_k`` (A, H_k),
``v`` (A,), no bias:

.. math::  e_s = v^\top \tanh(W_q q + W_k k_s),

then the same masked softmax and context. Masked positions get a weight of exactly 0 (not a
small number: they are left out of the sum, not given a score of -1e9); a row with no real
position has no softmax and raises ``ValueError``.

**Decoder step** (:func:`decoder_step`), a Luong-style decoder: the attention query is the
*new* state, so attention comes after the recurrence,

.. math::

   e &= E[y_{t-1}] \\
   h_t &= \mathrm{GRU}(e, h_{t-1}) \quad\text{(PyTorch's cell, gate blocks r, z, n)} \\
   c_t, \alpha_t &= \mathrm{attention}(h_t, k_{1..S}) \\
   \text{logits}_t &= W_{out} [h_t; c_t] + b_{out} .

Two simplifications of Luong et al. (2015), said here so nobody looks for them: no
"attentional" layer :math:`\tilde h_t = \tanh(W_c [c_t; h_t])` before the output, and no input
feeding (Luong's :math:`\tilde h_{t-1}` is not fed to the GRU with the next input).
Bahdanau et al. (2015) instead use the *previous* state :math:`h_{t-1}` as query and feed
:math:`c_t` into the recurrence; the additive score here is theirs, the wiring Luong's.

**Decoding** (:func:`greedy_decode`, :func:`beam_search`) is written once, for one example, over
any ``step_fn(token, state) -> (log_probs (V,), new_state)``, so that it can be tested with a
hand-made Markov table and reused with a trained model (``rnn_ref.torch.translate``).

No input is modified in place; outputs keep the inputs' floating dtype.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, get_params
from .gru import gru_step_backward, gru_step_forward

__all__ = [
    "masked_softmax",
    "dot_attention_forward",
    "dot_attention_backward",
    "additive_attention_forward",
    "additive_attention_backward",
    "decoder_step",
    "decoder_step_backward",
    "greedy_decode",
    "beam_search",
]

ATTENTIONS = ("dot", "additive")


def _check_mask(mask, N: int, S: int) -> np.ndarray:
    """``mask`` as (N, S) bool (all True if None); every row needs a real position."""
    if mask is None:
        return np.ones((N, S), dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != (N, S):
        raise ValueError(f"mask must have shape (N, S) = ({N}, {S}), got {mask.shape}")
    if mask.dtype != bool:
        raise TypeError(f"mask must be bool (True = a real source position), got {mask.dtype}")
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"mask row {int(empty[0])} has no True entry: an example with no source position "
            "has nothing to attend to (the softmax over an empty set is undefined)"
        )
    return mask


def _query_keys(q, keys) -> tuple[np.ndarray, np.ndarray]:
    q = as_float_array("q", q, 2)
    keys = as_float_array("keys", keys, 3)
    if q.shape[0] != keys.shape[0]:
        raise ValueError(f"q has batch size {q.shape[0]} but keys has {keys.shape[0]}")
    if keys.shape[1] == 0:
        raise ValueError("keys has no source positions (S = 0)")
    return q, keys


def masked_softmax(scores, mask=None) -> np.ndarray:
    """Softmax over the last axis of ``scores`` (N, S), restricted to ``mask`` (N, S) bool.

    ``weights[n, s] = exp(e[n, s] - m_n) / sum_{s' real} exp(e[n, s'] - m_n)`` at real positions
    (m_n, the largest real score, keeps exp from overflowing), exactly 0 at masked ones. Scores at
    masked positions may be anything, even inf or NaN: they are never read.
    """
    scores = as_float_array("scores", scores, 2)
    mask = _check_mask(mask, *scores.shape)
    safe = np.where(mask, scores, -np.inf)
    shifted = safe - safe.max(axis=1, keepdims=True)
    w = np.where(mask, np.exp(shifted), 0.0).astype(scores.dtype, copy=False)
    return w / w.sum(axis=1, keepdims=True)


def _softmax_backward(dweights, weights) -> np.ndarray:
    """de = alpha * (dalpha - sum_s alpha_s dalpha_s); zero where alpha is 0 (masked)."""
    return weights * (dweights - np.sum(weights * dweights, axis=1, keepdims=True))


def dot_attention_forward(q, keys, mask=None):
    """Luong's dot attention: scores ``e_s = k_s . q`` (no scaling), masked softmax, context.

    Args:
        q: queries, (N, H).
        keys: keys (= values), (N, S, H).
        mask: (N, S) bool, True at real source positions; None means all real.

    Returns:
        (context (N, H), weights (N, S)), cache. ``weights`` rows sum to 1, masked entries are 0.

    Raises:
        ValueError: mismatched shapes, or a mask row with no True entry.
    """
    q, keys = _query_keys(q, keys)
    N, S, H = keys.shape
    if q.shape[1] != H:
        raise ValueError(
            f"dot attention needs q and the keys of one size: q has H = {q.shape[1]}, keys have "
            f"{H} (use additive attention, or project q, when they differ)"
        )
    mask = _check_mask(mask, N, S)
    scores = np.einsum("nsh,nh->ns", keys, q)
    weights = masked_softmax(scores, mask)
    context = np.einsum("ns,nsh->nh", weights, keys)
    return (context, weights), (q, keys, weights)


def _context_backward(dcontext, dweights, keys, weights):
    """Gradients through ``c = sum_s alpha_s k_s``: returns (dkeys from c, de)."""
    dcontext = as_float_array("dcontext", dcontext, 2)
    N, S, H = keys.shape
    if dcontext.shape != (N, H):
        raise ValueError(f"dcontext must have the shape of context, {(N, H)}, got {dcontext.shape}")
    dalpha = np.einsum("nh,nsh->ns", dcontext, keys)
    if dweights is not None:
        dweights = as_float_array("dweights", dweights, 2)
        if dweights.shape != (N, S):
            raise ValueError(
                f"dweights must have the shape of weights, {(N, S)}, got {dweights.shape}"
            )
        dalpha = dalpha + dweights
    dkeys = weights[:, :, None] * dcontext[:, None, :]
    return dkeys, _softmax_backward(dalpha, weights)


def dot_attention_backward(dcontext, cache, dweights=None):
    """Backward of :func:`dot_attention_forward`.

    With ``dalpha_s = dc . k_s`` (+ ``dweights``), ``de = alpha * (dalpha - sum alpha dalpha)``:
    ``dq = sum_s de_s k_s`` and ``dk_s = alpha_s dc + de_s q``. Masked positions get 0.

    Args:
        dcontext: upstream gradient for the context, (N, H).
        cache: from :func:`dot_attention_forward`.
        dweights: optional upstream gradient for the weights, (N, S).

    Returns:
        dq (N, H), dkeys (N, S, H).
    """
    q, keys, weights = cache
    dkeys, de = _context_backward(dcontext, dweights, keys, weights)
    dq = np.einsum("ns,nsh->nh", de, keys)
    dkeys += de[:, :, None] * q[:, None, :]
    return dq, dkeys


def _additive_params(params, A_from_v: bool, H_q: int, H_k: int) -> dict[str, np.ndarray]:
    v = params.get("v") if isinstance(params, dict) else None
    A = np.shape(v)[0] if A_from_v and v is not None and np.ndim(v) == 1 else None
    try:
        return get_params(params, {"W_q": (A, H_q), "W_k": (A, H_k), "v": (A,)})
    except ValueError as e:
        raise ValueError(
            f"{e}; additive attention takes W_q (A, H_q), W_k (A, H_k), v (A,), here with "
            f"H_q = {H_q} (from q) and H_k = {H_k} (from keys)"
        ) from None


def additive_attention_forward(q, keys, params, mask=None):
    """Bahdanau's additive attention: ``e_s = v . tanh(W_q q + W_k k_s)``, masked softmax, context.

    Args:
        q: queries, (N, H_q).
        keys: keys (= values), (N, S, H_k); H_k may differ from H_q.
        params: ``W_q`` (A, H_q), ``W_k`` (A, H_k), ``v`` (A,).
        mask: (N, S) bool, True at real source positions; None means all real.

    Returns:
        (context (N, H_k), weights (N, S)), cache.
    """
    q, keys = _query_keys(q, keys)
    N, S, H_k = keys.shape
    p = _additive_params(params, True, q.shape[1], H_k)
    mask = _check_mask(mask, N, S)
    # W_k k_s is one (N*S, H_k) @ (H_k, A) product; a decoder would compute it once per sentence.
    t = np.tanh((q @ p["W_q"].T)[:, None, :] + keys @ p["W_k"].T)  # (N, S, A)
    scores = t @ p["v"]
    weights = masked_softmax(scores, mask)
    context = np.einsum("ns,nsh->nh", weights, keys)
    return (context, weights), (q, keys, weights, t, p)


def additive_attention_backward(dcontext, cache, dweights=None):
    """Backward of :func:`additive_attention_forward`.

    With ``de`` as for dot attention and ``da_s = de_s v * (1 - t_s^2)`` (t_s = tanh(...), (A,)):
    ``dv = sum_{n,s} de_s t_s``, ``dW_q = sum_n (sum_s da_s) q^T``, ``dq = (sum_s da_s) W_q``,
    ``dW_k = sum_{n,s} da_s k_s^T``, ``dk_s = alpha_s dc + da_s W_k``.

    Args:
        dcontext: upstream gradient for the context, (N, H_k).
        cache: from :func:`additive_attention_forward`.
        dweights: optional upstream gradient for the weights, (N, S).

    Returns:
        dq (N, H_q), dkeys (N, S, H_k), grads ``W_q`` (A, H_q), ``W_k`` (A, H_k), ``v`` (A,).
    """
    q, keys, weights, t, p = cache
    dkeys, de = _context_backward(dcontext, dweights, keys, weights)
    da = de[:, :, None] * p["v"] * (1.0 - t * t)  # (N, S, A)
    da_q = da.sum(axis=1)  # q enters every position's score
    grads = {
        "W_q": da_q.T @ q,
        "W_k": np.einsum("nsa,nsh->ah", da, keys),
        "v": np.einsum("ns,nsa->a", de, t),
    }
    dkeys += da @ p["W_k"]
    return da_q @ p["W_q"], dkeys, grads


_GRU_KEYS = ("W_x", "W_h", "b_x", "b_h")
_ATTN_KEYS = ("W_q", "W_k", "v")


def _check_attention(attention) -> str:
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be 'dot' or 'additive', got {attention!r}")
    return attention


def decoder_step(y_prev, h_prev, keys, mask, params, attention="dot"):
    """One step of the attention decoder (module docstring: embedding, GRU, attention, output).

    Args:
        y_prev: previous tokens, (N,) ints in [0, V) (``<bos>`` at the first step).
        h_prev: previous decoder state, (N, H).
        keys: encoder outputs, (N, S, H_k); for ``attention="dot"`` H_k must equal H.
        mask: (N, S) bool, True at real source positions (or None).
        params: ``E`` (V, M); the GRU's ``W_x`` (3H, M), ``W_h`` (3H, H), ``b_x`` (3H,),
            ``b_h`` (3H,) (blocks r, z, n, as :func:`rnn_ref.numpy.gru_step_forward`);
            ``W_out`` (V, H + H_k), ``b_out`` (V,); for ``attention="additive"`` also
            ``W_q`` (A, H), ``W_k`` (A, H_k), ``v`` (A,).
        attention: ``"dot"`` or ``"additive"``.

    Returns:
        (logits (N, V), h (N, H), weights (N, S)), cache.
    """
    attention = _check_attention(attention)
    y_prev = np.asarray(y_prev)
    if y_prev.ndim != 1 or not np.issubdtype(y_prev.dtype, np.integer):
        raise ValueError(f"y_prev must be a 1-D array of token ids (N,), got {y_prev!r}")
    h_prev = as_float_array("h_prev", h_prev, 2)
    keys = as_float_array("keys", keys, 3)
    N, H = h_prev.shape
    if y_prev.shape[0] != N or keys.shape[0] != N:
        raise ValueError(
            f"batch sizes differ: y_prev {y_prev.shape[0]}, h_prev {N}, keys {keys.shape[0]}"
        )
    E = get_params(params, {"E": (None, None)})["E"]
    V, M = E.shape
    H_k = keys.shape[2]
    try:
        p = get_params(params, {"W_out": (V, H + H_k), "b_out": (V,)})
    except ValueError as e:
        raise ValueError(
            f"{e}; the output layer reads [h; context]: W_out is (V, H + H_k), here V = {V} "
            f"(from params['E']), H = {H} (from h_prev), H_k = {H_k} (from keys)"
        ) from None
    if y_prev.size and (y_prev.min() < 0 or y_prev.max() >= V):
        raise ValueError(f"y_prev holds ids outside [0, {V}) (V from params['E'])")
    emb = E[y_prev]
    h, gru_cache = gru_step_forward(emb, h_prev, {k: params[k] for k in _GRU_KEYS if k in params})
    if attention == "dot":
        (context, weights), attn_cache = dot_attention_forward(h, keys, mask)
    else:
        attn_params = {k: params[k] for k in _ATTN_KEYS if k in params}
        (context, weights), attn_cache = additive_attention_forward(h, keys, attn_params, mask)
    hc = np.concatenate([h, context], axis=1)
    logits = hc @ p["W_out"].T + p["b_out"]
    cache = (y_prev, V, hc, p["W_out"], gru_cache, attn_cache, attention)
    return (logits, h, weights), cache


def decoder_step_backward(dlogits, cache, dh=None):
    """Backward of :func:`decoder_step`.

    ``dW_out = dlogits^T [h; c]``, ``db_out = sum_n dlogits``; ``[dh; dc] = dlogits W_out``; the
    attention backward (query = h) adds to dh and gives dkeys; the GRU backward gives de and
    dh_prev; ``dE`` scatters de into the rows ``y_prev`` (adding up repeated tokens).

    Args:
        dlogits: upstream gradient for the logits, (N, V).
        cache: from :func:`decoder_step`.
        dh: optional upstream gradient for the returned state h (N, H), from the next step.

    Returns:
        dh_prev (N, H), dkeys (N, S, H_k), grads with the keys of ``params``.
    """
    y_prev, V, hc, W_out, gru_cache, attn_cache, attention = cache
    dlogits = as_float_array("dlogits", dlogits, 2)
    if dlogits.shape != (hc.shape[0], V):
        raise ValueError(f"dlogits must have shape {(hc.shape[0], V)}, got {dlogits.shape}")
    H = gru_cache[1].shape[1]
    grads = {"W_out": dlogits.T @ hc, "b_out": dlogits.sum(axis=0)}
    dhc = dlogits @ W_out
    dh_total, dcontext = dhc[:, :H], dhc[:, H:]
    if dh is not None:
        dh_total = dh_total + as_float_array("dh", dh, 2)
    if attention == "dot":
        dq, dkeys = dot_attention_backward(dcontext, attn_cache)
    else:
        dq, dkeys, attn_grads = additive_attention_backward(dcontext, attn_cache)
        grads.update(attn_grads)
    demb, dh_prev, gru_grads = gru_step_backward(dh_total + dq, gru_cache)
    grads.update(gru_grads)
    dE = np.zeros((V, demb.shape[1]), dtype=demb.dtype)
    np.add.at(dE, y_prev, demb)  # a token used twice in the batch gets both gradients
    grads["E"] = dE
    return dh_prev, dkeys, grads


# ------------------------------------------------------------------------------------------
# Decoding, for one example, over any step_fn(token, state) -> (log_probs (V,), new_state).
# ------------------------------------------------------------------------------------------


def _check_decode_args(max_len, beam_width=1):
    for name, val in (("max_len", max_len), ("beam_width", beam_width)):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}")


def _log_probs(step_fn, token, state):
    log_probs, new_state = step_fn(token, state)
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 1 or log_probs.size == 0:
        raise ValueError(
            f"step_fn must return log-probabilities of shape (V,), got shape {log_probs.shape}"
        )
    return log_probs, new_state


def greedy_decode(step_fn, state, bos: int, eos: int, max_len: int):
    """Greedy decoding: feed ``bos``, then at each step the most probable token (the first one
    on ties), until ``eos`` is produced or ``max_len`` tokens are.

    Args:
        step_fn: ``step_fn(token: int, state) -> (log_probs (V,), new_state)``.
        state: the decoder's initial state (anything ``step_fn`` accepts).
        bos, eos: the ids of ``<bos>`` and ``<eos>``.
        max_len: the most tokens generated (``eos`` included).

    Returns:
        (tokens, score): the generated tokens, ``bos`` excluded, ending with ``eos`` unless
        ``max_len`` was reached first; score = the sum of their log-probabilities.
    """
    _check_decode_args(max_len)
    tokens, score, token = [], 0.0, bos
    for _ in range(max_len):
        log_probs, state = _log_probs(step_fn, token, state)
        token = int(np.argmax(log_probs))
        tokens.append(token)
        score += float(log_probs[token])
        if token == eos:
            break
    return tokens, score


def beam_search(
    step_fn, state, bos: int, eos: int, beam_width: int, max_len: int, length_penalty=0.0
):
    """Beam search: keep the ``beam_width`` best partial hypotheses at each step.

    At step t every live hypothesis (all of length t - 1) is extended by every token; the
    ``beam_width`` best extensions by their sum of log-probabilities survive (ties: the earlier
    hypothesis, then the smaller token id, so ``beam_width = 1`` is exactly
    :func:`greedy_decode`). A survivor ending in ``eos`` is finished and set aside; the others
    are the next beam, which therefore shrinks as hypotheses finish. The search stops when the
    beam is empty or after ``max_len`` steps; hypotheses still live then (no ``eos``) are
    returned too, like greedy decoding's.

    Ranking score: ``score = sum of log-probs / len(tokens) ** length_penalty`` (``eos``
    counted, ``bos`` not). With ``length_penalty = 0`` it is the plain sum, which favours short
    outputs (every token adds a negative log-probability); 1 ranks by the mean log-probability.
    (Wu et al. 2016, GNMT, divide by ``((5 + len) / 6) ** alpha``; the plain power is used here.)
    All extensions at one step have the same length, so the penalty changes only the ranking of
    finished hypotheses of different lengths, never which extensions survive a step.

    Args:
        step_fn: ``step_fn(token: int, state) -> (log_probs (V,), new_state)``, for one example.
        state: the decoder's initial state.
        bos, eos: the ids of ``<bos>`` and ``<eos>``.
        beam_width: hypotheses kept per step (>= 1).
        max_len: the most tokens generated (``eos`` included).
        length_penalty: the exponent above (>= 0).

    Returns:
        a list of ``(tokens, score)``, best first (ties keep the order in which the
        hypotheses were found): every finished hypothesis, then the live ones at ``max_len``.
    """
    _check_decode_args(max_len, beam_width)
    if not np.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty!r}")
    beams = [((), 0.0, state)]  # (tokens, sum of log-probs, state)
    done = []
    for _ in range(max_len):
        candidates = []  # (sum, tokens, state), in beam order then token order
        for tokens, total, st in beams:
            log_probs, new_st = _log_probs(step_fn, tokens[-1] if tokens else bos, st)
            candidates += [
                (total + float(lp), (*tokens, v), new_st) for v, lp in enumerate(log_probs)
            ]
        # sorted() is stable, so ties keep beam order, then token order (argmax's first).
        best = sorted(candidates, key=lambda c: -c[0])[:beam_width]
        beams = []
        for total, tokens, st in best:
            if tokens[-1] == eos:
                done.append((tokens, total))
            else:
                beams.append((tokens, total, st))
        if not beams:
            break
    done += [(tokens, total) for tokens, total, _ in beams]

    def normalised(total, n):
        return total / n**length_penalty if length_penalty > 0 else total

    ranked = [(list(t), normalised(total, len(t))) for t, total in done]
    return sorted(ranked, key=lambda r: -r[1])
