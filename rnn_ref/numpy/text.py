r"""Text in NumPy (chapter ch12_text): embeddings, pooling over padded batches, sampling with a
temperature, bits per character, and two character n-gram baselines.

Interfaces (shapes batch-first; every float returned is float64 unless the input is a float32
array, where stated; no input is modified in place; bad input raises ``ValueError`` or
``TypeError`` with a message that names the culprit):

Embedding, as ``torch.nn.Embedding(V, E, padding_idx=...)`` computes it
    ``embedding_forward(ids, W_e, padding_idx=None) -> (x, cache)``: ``ids`` integers in
    ``[0, V)`` of any shape ``S`` (usually (N, T)), ``W_e`` (V, E); ``x = W_e[ids]``, shape
    ``S + (E,)``, a copy. The padding row ``W_e[padding_idx]`` is *used as it is* (torch
    initialises it to zero, and it stays zero because it never receives a gradient); a negative
    ``padding_idx`` counts from the end, as in torch.

    ``embedding_backward(dx, cache) -> dW_e`` (V, E): the scatter-add
    :math:`dW_e[v] = \sum_{(n, t): ids_{n,t} = v} dx_{n,t}`, so an id that occurs several times
    collects the sum of its gradients (``np.add.at``; ``dW_e[ids] += dx`` keeps only one of
    them); ``dW_e[padding_idx] = 0``.

Pooling a padded batch into one vector per sequence (for a classifier)
    ``masked_mean_forward(hs, mask) -> (pooled, cache)``: ``hs`` (N, T, H), ``mask`` (N, T) bool
    or 0/1, True at real steps; :math:`\bar h_n = \sum_t m_{n,t} h_{n,t} / \sum_t m_{n,t}`,
    (N, H). A row with no real step raises ``ValueError``.
    ``masked_mean_backward(dpooled, cache) -> dhs`` (N, T, H): :math:`dh_{n,t} = m_{n,t}\,
    d\bar h_n / \sum_t m_{n,t}` (exactly 0 at padding).

    ``last_valid(hs, lengths) -> out`` (N, H): ``out[n] = hs[n, lengths[n] - 1]``, the state
    after the last real step (``lengths`` (N,) integers in ``[1, T]``; steps ``0 .. L - 1`` are
    real, the padding comes after them).
    ``last_valid_backward(dout, hs_shape, lengths) -> dhs``: zeros with ``dout[n]`` at
    ``[n, lengths[n] - 1]``.

Sampling
    ``softmax_with_temperature(logits, temperature, top_k=None) -> probs``: ``logits`` (V,) or
    (N, V); :math:`p = \mathrm{softmax}(z / \tau)` restricted to the ``top_k`` largest logits
    of each row (the others get probability exactly 0, the kept ones are renormalised). Exact
    and stable: computed as :math:`\exp((z - \max z)/\tau)`, so huge logits and tiny
    temperatures neither overflow nor give NaN.

    - ``temperature == 0`` is allowed and means greedy: a one-hot row at the first maximum
      (``np.argmax``). (For :math:`\tau \to 0^+` the softmax tends to the uniform distribution
      over the tied maxima; with no tie both agree.) ``temperature < 0``, NaN or infinity:
      ``ValueError``.
    - ``top_k``: ``None`` keeps every entry; an integer ``k >= 1`` keeps exactly ``min(k, V)``
      entries per row, the largest logits, **ties broken by the lower index** (a stable sort of
      :math:`-z`), so exactly ``k`` probabilities are nonzero whenever the logits are finite
      (unless ``exp`` underflows). ``k > V`` means all. ``k < 1``: ``ValueError``.
    - Logits may be ``-inf`` (a forbidden token, probability 0) but not NaN or ``+inf``, and
      each row needs one finite logit.

    ``sample_with_temperature(logits, temperature, rng, top_k=None) -> ids``: one draw per row
    from ``softmax_with_temperature(logits, temperature, top_k)`` by the inverse CDF of exactly
    one uniform per row, ``u = rng.random(N)`` (``rng`` a ``numpy.random.Generator``; the
    global ``np.random`` state is never used, so the same seed gives the same draws). Returns a
    Python ``int`` for logits (V,) and an int64 array (N,) for logits (N, V). At
    ``temperature == 0`` it returns the argmax and draws nothing from ``rng``.

Evaluation
    ``bits_per_char(logits, targets, mask=None) -> (bpc, perplexity)``: ``logits`` (N, T, V),
    ``targets`` (N, T) integers (any integer where the mask is 0), ``mask`` (N, T) 0/1 or bool,
    default all real; :math:`\mathrm{bpc} = -\frac{1}{\sum m} \sum_{n,t} m_{n,t} \log_2
    \mathrm{softmax}(z_{n,t})[c_{n,t}]` and ``perplexity = 2 ** bpc`` (per character). Both
    Python floats. It is the cross-entropy of ``torch.nn.functional.cross_entropy`` (nats)
    divided by :math:`\ln 2`.

Character n-gram models (the baselines an RNN language model must beat)
    ``ngram_counts(text_or_ids, n) -> collections.Counter``: the counts of the n-grams of the
    text as written (no padding): for a ``str`` the keys are substrings of length ``n``
    (``counts["th"]``), for a sequence of ids or other symbols they are tuples of length ``n``.

    ``NgramLM(n, k=1.0)``: add-k smoothing,

    .. math::  P(w \mid h) = \frac{c(h w) + k}{c(h \bullet) + k V},
               \qquad c(h \bullet) = \sum_{w'} c(h w'),

    ``KneserNeyLM(n, discount=0.75)``: interpolated Kneser-Ney (Chen and Goodman 1999, one
    discount ``D`` for every order, the lower orders on continuation counts, ending in the
    uniform distribution); see :class:`KneserNeyLM` for the equations.

    Both share this interface:

    - ``fit(text, vocab=None) -> self``: ``text`` a ``str`` (symbols are its characters) or a
      sequence of hashable symbols; ``vocab`` the symbols to predict over (default: the sorted
      distinct symbols of ``text``), kept sorted in ``.vocab`` (``.V = len(vocab)``, ``.index``
      maps a symbol to its position). A symbol outside the vocabulary, in training or later,
      raises ``ValueError``: pass ``vocab=sorted(set(whole_corpus))`` to score held-out text.
    - ``probs(context) -> (V,)`` float64, :math:`P(\cdot \mid h)` in ``vocab`` order, summing to
      1; ``prob(context, symbol) -> float``.
    - ``bits_per_char(text) -> float``, ``perplexity(text) -> float`` (``2 ** bpc``): the mean
      of :math:`-\log_2 P(w_i \mid h_i)` over *every* symbol of ``text``.
    - ``generate(length, rng, context="", temperature=1.0) -> str`` (or a list of symbols when
      fitted on a sequence): draws with :func:`sample_with_temperature`.

    **The start of a text.** Every text (training and scored) is a document of its own that
    starts after ``n - 1`` start symbols ``<s>`` (a symbol outside the vocabulary; it is a
    context, never predicted). The context :math:`h_i` of symbol ``i`` is the ``n - 1``
    symbols before it in the padded text. A ``context`` passed to ``probs`` is a prefix: only
    its last ``n - 1`` symbols matter, and a shorter one (``""`` is the start of a text) is
    padded on the left with ``<s>``. Training counts one n-gram per symbol of the training
    text, so a context that contains no ``<s>`` has exactly the counts of the unpadded text
    (:func:`ngram_counts`).

    Contexts never seen in training: add-k gives the uniform distribution (``k > 0``);
    ``k = 0`` is the maximum-likelihood estimate and raises ``ValueError`` for an unseen
    context (0 / 0); its ``bits_per_char`` is ``inf`` if a symbol has probability 0. Kneser-Ney
    falls back to the next lower order, so every probability is positive.

    ``add_k_probs(text, context, vocab, k)`` is the add-k distribution of order
    ``len(context) + 1`` after a full context, counted in ``text`` without padding (the graded
    exercise): ``NgramLM(len(context) + 1, k).fit(text, vocab).probs(context)``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ._checks import as_float_array, check_int

__all__ = [
    "embedding_forward",
    "embedding_backward",
    "masked_mean_forward",
    "masked_mean_backward",
    "last_valid",
    "last_valid_backward",
    "softmax_with_temperature",
    "sample_with_temperature",
    "bits_per_char",
    "ngram_counts",
    "add_k_probs",
    "NgramLM",
    "KneserNeyLM",
]

_LN2 = math.log(2.0)


def _exp2(x: float) -> float:
    """2 ** x as a float, inf past the float range (a perplexity can be astronomically large)."""
    return math.inf if x >= 1024 else float(2.0**x)


# --- validation helpers ------------------------------------------------------------------------


def _int_array(name: str, a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.size == 0 and arr.dtype == np.float64:
        arr = arr.astype(np.int64)  # np.asarray([]) is float64
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr


def _as_mask(mask, shape) -> np.ndarray:
    """``mask`` as a bool array of ``shape``; its values must be 0/1 (or bool)."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask must have shape {tuple(shape)}, got {m.shape}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number):
            raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {m.dtype}")
        if not np.all((m == 0) | (m == 1)):
            raise ValueError("mask must hold only 0/1 (or True/False)")
        m = m != 0
    return m


# --- embedding -----------------------------------------------------------------------------------


def embedding_forward(ids, W_e, padding_idx=None):
    """Look up the rows of the embedding matrix: ``x = W_e[ids]``.

    Args:
        ids: token ids, integers in ``[0, V)``, any shape ``S`` (usually (N, T)).
        W_e: the embedding matrix (V, E), row ``v`` the vector of token ``v``.
        padding_idx: ``None``, or the id of the padding token (negative counts from the end).
            Its row is looked up like any other (keep it zero, as torch initialises it, if
            padding should contribute nothing); it receives no gradient.

    Returns:
        x: (S + (E,)), a copy with the dtype of ``W_e`` (integers become float64).
        cache: what :func:`embedding_backward` needs.
    """
    W_e = as_float_array("W_e", W_e, 2)
    V = W_e.shape[0]
    ids = _int_array("ids", ids)
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = ids[(ids < 0) | (ids >= V)].flat[0]
        raise ValueError(f"ids must lie in [0, V) = [0, {V}), got {bad}")
    if padding_idx is not None:
        padding_idx = check_int("padding_idx", padding_idx, -V)
        if padding_idx >= V:
            raise ValueError(f"padding_idx must lie in [-V, V) = [-{V}, {V}), got {padding_idx}")
        padding_idx %= V  # -1 is the last row, as in torch
    x = W_e[ids]  # fancy indexing returns a copy
    return x, (ids.copy(), W_e.shape, W_e.dtype, padding_idx)


def embedding_backward(dx, cache):
    r"""Backward of :func:`embedding_forward`: ``dW_e`` (V, E).

    :math:`dW_e[v] = \sum_{i: ids_i = v} dx_i` is a scatter-*add*: ``np.add.at`` sums every
    occurrence of a repeated id, where ``dW_e[ids] += dx`` would keep only the last. The
    padding row gets 0, as in ``torch.nn.Embedding(padding_idx=...)``.

    Args:
        dx: upstream gradient, shape ``ids.shape + (E,)``.
        cache: from the forward pass.
    """
    ids, (V, E), dtype, padding_idx = cache
    dx = np.asarray(dx)
    if dx.shape != ids.shape + (E,):
        raise ValueError(f"dx must have shape {ids.shape + (E,)}, got {dx.shape}")
    dW_e = np.zeros((V, E), dtype=np.result_type(dtype, dx.dtype, np.float32))
    np.add.at(dW_e, ids.reshape(-1), dx.reshape(-1, E))
    if padding_idx is not None:
        dW_e[padding_idx] = 0.0
    return dW_e


# --- pooling -----------------------------------------------------------------------------------


def masked_mean_forward(hs, mask):
    r"""Mean of the hidden states over the real steps of each sequence.

    :math:`\bar h_n = \sum_t m_{n,t} h_{n,t} / \sum_t m_{n,t}`.

    Args:
        hs: hidden states (N, T, H).
        mask: (N, T), bool or 0/1, True at real steps (anywhere, not only a prefix).

    Returns:
        pooled: (N, H).
        cache: what :func:`masked_mean_backward` needs.

    Raises ``ValueError`` if a row of ``mask`` has no real step (its mean is undefined).
    """
    hs = as_float_array("hs", hs, 3)
    N, T, _ = hs.shape
    m = _as_mask(mask, (N, T))
    counts = m.sum(axis=1)
    if (counts == 0).any():
        n = int(np.argmax(counts == 0))
        raise ValueError(f"mask row {n} has no real step: the mean over it is undefined")
    # Where, not multiplication: padding may hold anything (even NaN) and must not leak in.
    w = m / counts[:, None]  # (N, T) weights, each row summing to 1
    pooled = np.einsum("nt,nth->nh", w, np.where(m[:, :, None], hs, 0.0)).astype(hs.dtype)
    return pooled, (w.astype(hs.dtype), hs.shape)


def masked_mean_backward(dpooled, cache):
    """Backward of :func:`masked_mean_forward`: ``dhs[n, t] = m[n, t] dpooled[n] / sum_t m``
    (N, T, H), exactly 0 at padding."""
    w, shape = cache
    N, T, H = shape
    dpooled = as_float_array("dpooled", dpooled, 2)
    if dpooled.shape != (N, H):
        raise ValueError(f"dpooled must have shape {(N, H)}, got {dpooled.shape}")
    return w[:, :, None] * dpooled[:, None, :]


def _check_lengths(lengths, N: int, T: int) -> np.ndarray:
    lengths = _int_array("lengths", lengths)
    if lengths.shape != (N,):
        raise ValueError(f"lengths must have shape ({N},), got {lengths.shape}")
    bad = (lengths < 1) | (lengths > T)
    if bad.any():
        n = int(np.argmax(bad))
        raise ValueError(
            f"lengths must lie in [1, T] = [1, {T}] (a sequence has at least one real step), "
            f"got lengths[{n}] = {lengths[n]}"
        )
    return lengths


def last_valid(hs, lengths):
    """The state after the last real step of each sequence: ``out[n] = hs[n, lengths[n] - 1]``.

    Args:
        hs: hidden states (N, T, H) of right-padded sequences (real steps first).
        lengths: (N,) integers in ``[1, T]``.

    Returns:
        (N, H), a copy. (``hs[:, -1]`` would be the state after the padding.)
    """
    hs = as_float_array("hs", hs, 3)
    N, T, _ = hs.shape
    lengths = _check_lengths(lengths, N, T)
    return hs[np.arange(N), lengths - 1]


def last_valid_backward(dout, hs_shape, lengths):
    """Backward of :func:`last_valid`: ``dhs`` of shape ``hs_shape`` (N, T, H), zero except
    ``dhs[n, lengths[n] - 1] = dout[n]``."""
    if len(tuple(hs_shape)) != 3:
        raise ValueError(f"hs_shape must be (N, T, H), got {hs_shape!r}")
    N, T, H = (int(s) for s in hs_shape)
    dout = as_float_array("dout", dout, 2)
    if dout.shape != (N, H):
        raise ValueError(f"dout must have shape {(N, H)}, got {dout.shape}")
    lengths = _check_lengths(lengths, N, T)
    dhs = np.zeros((N, T, H), dtype=dout.dtype)
    dhs[np.arange(N), lengths - 1] = dout  # one entry per row: no repeated index to sum
    return dhs


# --- sampling ----------------------------------------------------------------------------------


def _check_logits(logits) -> np.ndarray:
    z = np.asarray(logits)
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (V,) or (N, V), got {z.shape}")
    z = as_float_array("logits", z, z.ndim)
    if z.shape[-1] == 0:
        raise ValueError("logits has no entries (V = 0)")
    if np.isnan(z).any() or np.isposinf(z).any():
        raise ValueError("logits must not contain NaN or +inf (-inf marks a forbidden token)")
    if not np.isfinite(z).any(axis=-1).all():
        raise ValueError("every row of logits needs at least one finite entry")
    return z


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool):
        raise TypeError(f"temperature must be a number, got {temperature!r}")
    try:
        tau = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a number, got {temperature!r}") from None
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"temperature must be finite and >= 0 (0 is greedy), got {temperature}")
    return tau


def _top_k_mask(z: np.ndarray, top_k) -> np.ndarray:
    """Bool (N, V): True at the ``top_k`` largest entries of each row, ties to the lower index."""
    N, V = z.shape
    if top_k is None:
        return np.ones((N, V), dtype=bool)
    k = min(check_int("top_k", top_k, 1), V)
    # A stable sort of -z lists equal logits in index order: the lower index is kept first.
    order = np.argsort(-z, axis=1, kind="stable")[:, :k]
    keep = np.zeros((N, V), dtype=bool)
    np.put_along_axis(keep, order, True, axis=1)
    return keep


def softmax_with_temperature(logits, temperature, top_k=None):
    r"""The distribution :func:`sample_with_temperature` draws from.

    :math:`p_v \propto \exp(z_v / \tau)` over the ``top_k`` largest logits, 0 elsewhere; at
    :math:`\tau = 0` a one-hot row at ``argmax z`` (the first maximum). See the module
    docstring for ties, ``-inf`` logits and errors.

    Args:
        logits: (V,) or (N, V).
        temperature: :math:`\tau \ge 0`. Below 1 sharpens, above 1 flattens, 1 is the softmax.
        top_k: ``None`` (all) or an integer >= 1.

    Returns:
        float64 probabilities with the shape of ``logits``; each row sums to 1.
    """
    z = _check_logits(logits)
    tau = _check_temperature(temperature)
    one = z.ndim == 1
    z2 = np.array(z, dtype=np.float64, ndmin=2)
    keep = _top_k_mask(z2, top_k)
    if tau == 0.0:
        p = np.zeros_like(z2)
        p[np.arange(z2.shape[0]), np.argmax(z2, axis=1)] = 1.0  # the argmax is always kept
    else:
        zk = np.where(keep, z2, -np.inf)
        # softmax(z / tau) = softmax((z - max z) / tau): the shifted logits are <= 0, so exp
        # cannot overflow however large z or small tau, and the maximum contributes exp(0) = 1.
        e = np.exp((zk - zk.max(axis=1, keepdims=True)) / tau)
        p = e / e.sum(axis=1, keepdims=True)
    return p[0] if one else p


def sample_with_temperature(logits, temperature, rng, top_k=None):
    """Draw one token per row from ``softmax_with_temperature(logits, temperature, top_k)``.

    By the inverse CDF: with ``u = rng.random(N)`` (one uniform per row), the draw is the first
    ``v`` whose cumulative probability exceeds ``u``; a token of probability 0 is never drawn.

    Args:
        logits: (V,) or (N, V).
        temperature: >= 0; 0 is greedy (argmax, nothing drawn from ``rng``).
        rng: a ``numpy.random.Generator`` (e.g. ``np.random.default_rng(0)``); the global
            ``np.random`` state is never touched.
        top_k: ``None`` or an integer >= 1.

    Returns:
        a Python ``int`` for logits (V,); an int64 array (N,) for logits (N, V).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(rng).__name__}"
        )
    p = softmax_with_temperature(logits, temperature, top_k)
    one = p.ndim == 1
    p = np.atleast_2d(p)
    if _check_temperature(temperature) == 0.0:
        ids = np.argmax(p, axis=1).astype(np.int64)
    else:
        cdf = np.cumsum(p, axis=1)
        # Divide by the last entry: the cdf then ends at exactly 1.0 (x / x == 1 in IEEE), at
        # the last token of positive probability too, so u < 1 always finds a token.
        cdf /= cdf[:, -1:]
        u = rng.random(p.shape[0])
        ids = (cdf <= u[:, None]).sum(axis=1).astype(np.int64)
    return int(ids[0]) if one else ids


# --- evaluation --------------------------------------------------------------------------------


def bits_per_char(logits, targets, mask=None):
    r"""Bits per character and per-character perplexity of a model's logits.

    :math:`\mathrm{bpc} = -\frac{1}{\sum m} \sum_{n,t} m_{n,t}
    \log_2 \mathrm{softmax}(z_{n,t})[c_{n,t}]`, ``perplexity = 2 ** bpc``.

    Args:
        logits: (N, T, V).
        targets: (N, T) integers in ``[0, V)`` where the mask is 1 (anything elsewhere).
        mask: (N, T) bool or 0/1, default all ones.

    Returns:
        (bpc, perplexity), two floats. Uniform logits give ``log2(V)`` and ``V``.
    """
    z = as_float_array("logits", logits, 3)
    N, T, V = z.shape
    targets = _int_array("targets", targets)
    if targets.shape != (N, T):
        raise ValueError(f"targets must have shape {(N, T)}, got {targets.shape}")
    m = np.ones((N, T), dtype=bool) if mask is None else _as_mask(mask, (N, T))
    count = int(m.sum())
    if count == 0:
        raise ValueError("mask selects no position: the mean is undefined")
    bad = m & ((targets < 0) | (targets >= V))
    if bad.any():
        n, t = np.argwhere(bad)[0]
        raise ValueError(f"targets[{n}, {t}] = {targets[n, t]} is not a class in [0, {V})")
    z = z.astype(np.float64)
    # Log-softmax with the row maximum subtracted: exp never overflows.
    zs = z - z.max(axis=-1, keepdims=True)
    logp = zs - np.log(np.exp(zs).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.where(m, targets, 0)[..., None], axis=-1)[..., 0]
    nats = -float(np.where(m, picked, 0.0).sum() / count)
    bpc = nats / _LN2
    return bpc, _exp2(bpc)


# --- n-gram models -----------------------------------------------------------------------------


def ngram_counts(text_or_ids, n):
    """Counts of the n-grams of a text, as written (no padding at the start).

    Args:
        text_or_ids: a ``str``, or a sequence of ids (or other hashable symbols).
        n: the order, >= 1.

    Returns:
        a ``collections.Counter``: keys are substrings of length ``n`` for a ``str``, tuples of
        length ``n`` otherwise; ``len(seq) - n + 1`` n-grams in all (none if the text is shorter).
    """
    n = check_int("n", n, 1)
    if isinstance(text_or_ids, str):
        s = text_or_ids
        return Counter(s[i : i + n] for i in range(len(s) - n + 1))
    seq = _symbols(text_or_ids)
    return Counter(zip(*(seq[i:] for i in range(n)), strict=False))


def _symbols(text) -> list:
    if isinstance(text, str):
        return list(text)
    if isinstance(text, np.ndarray):
        if text.ndim != 1:
            raise ValueError(f"a sequence of ids must be 1-D, got shape {text.shape}")
        return text.tolist()
    try:
        return list(text)
    except TypeError:
        raise TypeError(
            f"text must be a str or a sequence of symbols, got {type(text).__name__}"
        ) from None


class _CharModel:
    """What both n-gram models share: the vocabulary, padding, scoring and generation."""

    def __init__(self, n):
        self.n = check_int("n", n, 1)
        self.vocab = None

    # -- vocabulary and contexts --
    def _fit_vocab(self, text, vocab):
        seq = _symbols(text)
        self._is_str = isinstance(text, str)
        if vocab is None:
            vocab = set(seq)
        vocab = sorted(set(vocab if not isinstance(vocab, str) else list(vocab)))
        if not vocab:
            raise ValueError("the vocabulary is empty (an empty training text and no vocab)")
        self.vocab = vocab
        self.V = len(vocab)
        self.index = {s: i for i, s in enumerate(vocab)}
        self._bos = self.V  # the start symbol's id: outside [0, V), never predicted
        return self._encode(seq, "the training text")

    def _encode(self, seq, what: str) -> list[int]:
        index = self.index
        out = []
        for i, s in enumerate(seq):
            j = index.get(s)
            if j is None:
                raise ValueError(
                    f"{what} holds {s!r} (position {i}), which is not in the vocabulary; "
                    "fit with vocab=sorted(set(whole_corpus))"
                )
            out.append(j)
        return out

    def _check_fitted(self):
        if self.vocab is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(text) first")

    def _context(self, context) -> tuple:
        """The last n - 1 ids of ``context``, padded on the left with the start symbol."""
        self._check_fitted()
        ids = self._encode(_symbols(context), "the context")
        m = self.n - 1
        ids = ids[max(0, len(ids) - m) :] if m else []
        return (self._bos,) * (m - len(ids)) + tuple(ids)

    def _padded_ngrams(self, ids: list[int]):
        """One n-gram per symbol of the text: its n - 1 (padded) predecessors and itself."""
        padded = [self._bos] * (self.n - 1) + ids
        return zip(*(padded[i:] for i in range(self.n)), strict=False)

    # -- the model --
    def _prob_id(self, ctx: tuple, w: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def probs(self, context) -> np.ndarray:
        """P(. | context), (V,) in ``vocab`` order; only the last n - 1 symbols of ``context``
        are used, a shorter one is padded with the start symbol."""
        ctx = self._context(context)
        return self._probs_ctx(ctx)

    def _probs_ctx(self, ctx: tuple) -> np.ndarray:
        return np.array([self._prob_id(ctx, w) for w in range(self.V)])

    def prob(self, context, symbol) -> float:
        """P(symbol | context), a float."""
        ctx = self._context(context)
        (w,) = self._encode([symbol], "symbol")
        return float(self._prob_id(ctx, w))

    def bits_per_char(self, text) -> float:
        """Mean of -log2 P(w_i | h_i) over every symbol of ``text``, scored as a document that
        starts after n - 1 start symbols (``inf`` if a symbol has probability 0)."""
        self._check_fitted()
        ids = self._encode(_symbols(text), "the text")
        if not ids:
            raise ValueError("the text is empty: its bits per character are undefined")
        total = 0.0
        for g in self._padded_ngrams(ids):
            p = self._prob_id(g[:-1], g[-1])
            if p <= 0.0:
                return math.inf
            total -= math.log2(p)
        return total / len(ids)

    def perplexity(self, text) -> float:
        """``2 ** bits_per_char(text)``."""
        return _exp2(self.bits_per_char(text))

    def generate(self, length, rng, context="", temperature=1.0):
        """``length`` symbols drawn one at a time from P(. | context so far) with
        :func:`sample_with_temperature` (at ``temperature``; 0 is greedy). Returns a ``str``
        if the model was fitted on a string, else a list of symbols (the context excluded)."""
        length = check_int("length", length, 0)
        ctx = list(self._context(context))
        out = []
        with np.errstate(divide="ignore"):  # log 0 = -inf: a token that cannot be drawn
            for _ in range(length):
                logp = np.log(self._probs_ctx(tuple(ctx[len(ctx) - (self.n - 1) :])))
                w = sample_with_temperature(logp, temperature, rng)
                out.append(self.vocab[w])
                ctx.append(w)
        return "".join(out) if self._is_str else out


class NgramLM(_CharModel):
    r"""Add-k smoothed n-gram model: :math:`P(w \mid h) = (c(h w) + k) / (c(h \bullet) + kV)`.

    ``h`` is the ``n - 1`` symbols before ``w`` (padded with the start symbol at the start of a
    text), ``c`` counts the n-grams of the padded training text and
    :math:`c(h \bullet) = \sum_{w'} c(h w')` counts ``h`` *as a context* (followed by a
    symbol), which is what makes the probabilities sum to 1. ``k = 1`` is Laplace smoothing,
    ``k -> inf`` tends to uniform, ``k = 0`` is the maximum-likelihood estimate (undefined for an
    unseen context: ``ValueError``). ``n = 1`` is the unigram model (the context is ignored).

    Attributes after ``fit``: ``n``, ``k``, ``vocab``, ``V``, ``index``, ``counts`` (a dict from a
    context, a tuple of n - 1 ids, the start symbol being ``V``, to a ``Counter`` of next ids).
    """

    def __init__(self, n, k=1.0):
        super().__init__(n)
        if isinstance(k, bool):
            raise TypeError(f"k must be a number, got {k!r}")
        k = float(k)
        if not math.isfinite(k) or k < 0:
            raise ValueError(f"k must be finite and >= 0, got {k}")
        self.k = k

    def fit(self, text, vocab=None):
        """Count the n-grams of ``text`` (see the class docstring); returns ``self``."""
        ids = self._fit_vocab(text, vocab)
        counts: dict[tuple, Counter] = {}
        for g in self._padded_ngrams(ids):
            counts.setdefault(g[:-1], Counter())[g[-1]] += 1
        self.counts = counts
        self._totals = {h: sum(c.values()) for h, c in counts.items()}
        return self

    def _unseen(self, ctx):
        if self.k == 0.0:
            raise ValueError(
                "k = 0 (maximum likelihood) and this context never occurs in the training "
                "text: P(w | context) = 0 / 0 is undefined"
            )

    def _prob_id(self, ctx, w):
        c = self.counts.get(ctx)
        if c is None:
            self._unseen(ctx)
            return 1.0 / self.V
        return (c.get(w, 0) + self.k) / (self._totals[ctx] + self.k * self.V)

    def _probs_ctx(self, ctx):
        c = self.counts.get(ctx)
        if c is None:
            self._unseen(ctx)
            return np.full(self.V, 1.0 / self.V)
        p = np.full(self.V, self.k)
        for w, cnt in c.items():
            p[w] += cnt
        return p / (self._totals[ctx] + self.k * self.V)


class KneserNeyLM(_CharModel):
    r"""Interpolated Kneser-Ney n-gram model (Chen and Goodman 1999), one discount D.

    With :math:`h` the context of order :math:`m` (its ``m - 1`` last symbols) and :math:`h'`
    its ``m - 2`` last symbols,

    .. math::

        P_m(w \mid h) = \frac{\max(a(h w) - D, 0)}{a(h \bullet)}
                        + \frac{D\, N_{1+}(h \bullet)}{a(h \bullet)}\, P_{m-1}(w \mid h'),
        \qquad P_0(w) = \frac{1}{V},

    where :math:`a = c`, the count of the n-gram in the padded training text, at the highest
    order :math:`m = n`, and :math:`a(h w) = N_{1+}(\bullet h w)`, the number of distinct
    symbols (the start symbol included) seen *before* :math:`h w`, at the lower orders (the
    continuation count: a symbol that follows many contexts is a likely continuation of a new
    one); :math:`a(h \bullet) = \sum_w a(h w)` and :math:`N_{1+}(h \bullet)` is the number of
    distinct :math:`w` with :math:`a(h w) > 0`. If :math:`a(h \bullet) = 0` (a context never seen)
    :math:`P_m(w \mid h) = P_{m-1}(w \mid h')`. With :math:`0 < D \le 1` every order sums to 1
    and every probability is positive (the uniform :math:`P_0` reaches unseen symbols).

    Args:
        n: the order, >= 1.
        discount: D in (0, 1] (default 0.75, Chen and Goodman's usual value), the same for all
            orders.

    Attributes after ``fit``: ``n``, ``discount``, ``vocab``, ``V``, ``index``, ``tables``: for
    each order ``m = 1 .. n`` (``tables[m - 1]``) a dict from a context (a tuple of ``m - 1`` ids,
    the start symbol being ``V``) to a ``Counter`` of next ids holding :math:`a(h w)`.
    """

    def __init__(self, n, discount=0.75):
        super().__init__(n)
        if isinstance(discount, bool):
            raise TypeError(f"discount must be a number, got {discount!r}")
        D = float(discount)
        if not (0.0 < D <= 1.0):
            raise ValueError(f"discount must lie in (0, 1], got {discount}")
        self.discount = D

    def fit(self, text, vocab=None):
        """Count the n-grams of the padded ``text`` and the continuation counts of every lower
        order; returns ``self``."""
        ids = self._fit_vocab(text, vocab)
        n = self.n
        top: dict[tuple, Counter] = {}
        for g in self._padded_ngrams(ids):
            top.setdefault(g[:-1], Counter())[g[-1]] += 1
        tables = [None] * n
        tables[n - 1] = top
        # Order m < n: a(h w) = number of distinct u with u h w among the (m + 1)-grams that
        # end at a real symbol; those are the suffixes of the padded n-grams (the n - 1 start
        # symbols give every m-gram a left neighbour).
        grams = {h + (w,) for h, c in top.items() for w in c}
        for m in range(n - 1, 0, -1):
            table: dict[tuple, Counter] = {}
            for g in grams:  # distinct (m + 1)-grams
                s = g[1:]  # the m-gram u h w -> h w
                table.setdefault(s[:-1], Counter())[s[-1]] += 1
            tables[m - 1] = table
            grams = {g[1:] for g in grams}
        self.tables = tables
        self._stats = [{h: (sum(c.values()), len(c)) for h, c in t.items()} for t in tables]
        return self

    def _prob_id(self, ctx, w):
        D = self.discount
        p = 1.0 / self.V
        for m in range(1, self.n + 1):  # from the unigram up to the full context
            h = ctx[len(ctx) - (m - 1) :] if m > 1 else ()
            c = self.tables[m - 1].get(h)
            if c is None:
                continue  # unseen context: P_m = P_{m-1}
            total, types = self._stats[m - 1][h]
            p = max(c.get(w, 0) - D, 0.0) / total + D * types / total * p
        return p

    def _probs_ctx(self, ctx):
        D = self.discount
        p = np.full(self.V, 1.0 / self.V)
        for m in range(1, self.n + 1):
            h = ctx[len(ctx) - (m - 1) :] if m > 1 else ()
            c = self.tables[m - 1].get(h)
            if c is None:
                continue
            total, types = self._stats[m - 1][h]
            q = np.zeros(self.V)
            for w, cnt in c.items():
                q[w] = cnt - D  # every stored count is >= 1 >= D
            p = q / total + D * types / total * p
        return p


def add_k_probs(text, context, vocab, k):
    r"""The add-k distribution of the next symbol after ``context``, counted in ``text``.

    The order is ``len(context) + 1``: with :math:`h` = ``context``,
    :math:`P(w \mid h) = (c(h w) + k) / (\sum_{w'} c(h w') + kV)`, where ``c`` counts the
    occurrences of the string ``h w`` in ``text`` (overlapping ones included, no padding) and
    ``V = len(vocab)``. ``context = ""`` gives the add-k unigram distribution.

    Args:
        text: the training text (a ``str``).
        context: the context ``h`` (a ``str``, any length >= 0).
        vocab: the symbols, a string or a sequence of characters; the result is in sorted order.
        k: >= 0 (0 raises ``ValueError`` if ``h`` never occurs followed by a symbol).

    Returns:
        (V,) float64 probabilities over ``sorted(set(vocab))``.
    """
    lm = NgramLM(len(_symbols(context)) + 1, k).fit(text, vocab)
    return lm.probs(context)
