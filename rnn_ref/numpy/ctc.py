r"""Connectionist temporal classification (CTC) in NumPy (chapter ch15_vision).

CTC (Graves, Fernández, Gomez and Schmidhuber 2006) trains a network that emits one distribution
per time step to read a label sequence shorter than its input, without knowing where each label
sits. This module holds the loss, its gradient by the forward-backward algorithm, two decoders
and the error measures, each small enough to check by hand.

Notation (Graves et al. 2006 mapped to the course's symbols; code names in brackets). Time is
indexed from 0 in code, ``t = 0 .. T_n - 1``, batch-first like the rest of the course:

- logits :math:`z_{n,t,k}` [``logits``] (N, T, C) over ``C`` classes, one of them the *blank*
  [``blank``, default 0]; :math:`y_{t,k} = \mathrm{softmax}(z_t)_k` is Graves' :math:`y^t_k`
  and the recursions use :math:`\log y` [``log_y``] = ``log_softmax(logits)``.
- a target :math:`\mathbf l = (l_1, \dots, l_S)` [``targets[n, :target_lengths[n]]``], labels in
  ``[0, C)`` other than the blank, padded on the right to a common width (the padding is never
  read); ``input_lengths[n]`` = :math:`T_n` steps of row ``n`` are real.
- the extended sequence :math:`\mathbf l'` [``l_ext``] of length :math:`2S + 1`: blanks
  interleaved, :math:`\mathbf l' = (b, l_1, b, l_2, \dots, b, l_S, b)`; position ``s`` is a
  blank when ``s`` is even.
- a path :math:`\pi` (one class per step) maps to a labelling by
  :math:`\mathcal B` = *collapse repeats, then drop blanks*, so "1 1" needs a blank between the
  ones: :math:`\mathcal B(1\,1\,b\,1) = 11` but :math:`\mathcal B(1\,1\,1) = 1`;
  :math:`p(\mathbf l \mid x) = \sum_{\pi \in \mathcal B^{-1}(\mathbf l)} \prod_t y_{t,\pi_t}`.

Forward variables [``log_alpha``] (N, T, 2S_max + 1): :math:`\alpha_t(s)` is the total
probability of the path prefixes :math:`\pi_0 \dots \pi_t` that end in state ``s`` of
:math:`\mathbf l'` (the emission at ``t`` included),

.. math::
    \alpha_0(0) = y_{0,b}, \quad \alpha_0(1) = y_{0,l_1}, \quad \alpha_0(s) = 0 \ (s \ge 2),

    \alpha_t(s) = \big(\alpha_{t-1}(s) + \alpha_{t-1}(s-1)
        + [\,l'_s \ne b \text{ and } l'_s \ne l'_{s-2}\,]\ \alpha_{t-1}(s-2)\big)\, y_{t,l'_s},

    p(\mathbf l \mid x) = \alpha_{T_n-1}(2S) + \alpha_{T_n-1}(2S-1).

The *skip* from ``s - 2`` to ``s`` jumps over a blank; it is allowed only between two different
non-blank labels (between equal labels the blank is the only way to say "two of them").
Everything runs in log space (:math:`\log(a + b) = \mathrm{logaddexp}`): the products of
probabilities underflow float64 after a few hundred steps.

Backward variables [``log_beta``]: :math:`\beta_t(s)` is the probability of the suffixes
:math:`\pi_{t+1} \dots \pi_{T_n-1}` that complete a path from state ``s`` at ``t`` (the emission
at ``t`` *excluded*, unlike Graves' :math:`\beta`, so that :math:`\alpha_t(s)\beta_t(s)` is the
total probability of the paths through ``s`` at ``t``):

.. math::
    \beta_{T_n-1}(2S) = \beta_{T_n-1}(2S - 1) = 1,

    \beta_t(s) = \beta_{t+1}(s)\, y_{t+1,l'_s} + \beta_{t+1}(s+1)\, y_{t+1,l'_{s+1}}
        + [\,\text{skip } s \to s+2 \text{ allowed}\,]\ \beta_{t+1}(s+2)\, y_{t+1,l'_{s+2}}.

Gradient: with the occupancy :math:`\gamma_t(k) = \sum_{s : l'_s = k} \alpha_t(s)\beta_t(s) /
p(\mathbf l \mid x)` (the posterior probability that the path emits ``k`` at ``t``; each row
sums to 1), the loss :math:`\mathcal L_n = -\log p(\mathbf l \mid x)` has

.. math::  \frac{\partial \mathcal L_n}{\partial z_{n,t,k}} = y_{t,k} - \gamma_t(k),
           \qquad t < T_n,

and 0 for the padded steps ``t >= T_n``.

Impossible alignments: a target needs at least :math:`S + r` steps, ``r`` the number of adjacent
equal labels (each pair needs a blank between). A shorter input has :math:`p = 0`: its loss is
``+inf`` and its gradient exactly 0, which is what ``torch.nn.CTCLoss`` gives for the loss with
``zero_infinity=False`` and for the gradient with ``zero_infinity=True`` (so one such sequence
does not turn a batch's gradient into NaN; drop or clip its infinite loss before averaging).

Interfaces (every float returned is float64; no input is modified in place; bad input raises
``ValueError`` or ``TypeError`` naming the argument):

- ``ctc_loss(logits, targets, input_lengths, target_lengths, blank=0) -> (loss (N,), cache)``,
  the same numbers as ``torch.nn.CTCLoss(blank, reduction="none")`` applied to
  ``log_softmax(logits)`` (transposed to torch's (T, N, C)).
- ``ctc_backward(dloss (N,), cache) -> dlogits (N, T, C)``.
- ``ctc_log_alpha(log_y (T, C), labels (S,), blank=0) -> log_alpha (T, 2S + 1)`` and
  ``ctc_log_beta`` (same shape): the recursions for one sequence, for teaching and checking.
- ``ctc_greedy_decode(log_probs (N, T, C), input_lengths=None, blank=0) -> list[list[int]]``:
  best path, :math:`\mathcal B(\arg\max_k y_{t,k})`.
- ``ctc_prefix_beam_search(log_probs (T, C), beam_width=8, blank=0) -> (labels, log_prob)``.
- ``edit_distance(ref, hyp) -> int`` and ``character_error_rate(refs, hyps) -> float``.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import as_float_array, check_int

__all__ = [
    "ctc_loss",
    "ctc_backward",
    "ctc_log_alpha",
    "ctc_log_beta",
    "ctc_collapse",
    "ctc_greedy_decode",
    "ctc_prefix_beam_search",
    "edit_distance",
    "character_error_rate",
]

_NEG_INF = -np.inf


# --- validation ---------------------------------------------------------------------------------


def _int_vector(name: str, a, N: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != (N,):
        raise ValueError(f"{name} must have shape (N,) = ({N},), got {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: z - max z - log sum exp(z - max z)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_inputs(logits, targets, input_lengths, target_lengths, blank):
    z = as_float_array("logits", logits, 3).astype(np.float64)
    N, T, C = z.shape
    if N == 0 or T == 0 or C == 0:
        raise ValueError(f"logits must have N, T, C >= 1, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or infinity")
    blank = check_int("blank", blank, 0)
    if blank >= C:
        raise ValueError(f"blank must be in [0, C) = [0, {C}), got {blank}")
    tg = np.asarray(targets)
    if tg.ndim != 2 or tg.shape[0] != N:
        raise ValueError(f"targets must have shape (N, S) with N = {N}, got {tg.shape}")
    if tg.size and (tg.dtype == bool or not np.issubdtype(tg.dtype, np.integer)):
        raise TypeError(f"targets must hold integer labels, got dtype {tg.dtype}")
    tg = tg.astype(np.int64)
    S = tg.shape[1]
    T_n = _int_vector("input_lengths", input_lengths, N)
    S_n = _int_vector("target_lengths", target_lengths, N)
    if (T_n < 1).any() or (T_n > T).any():
        n = int(np.argmax((T_n < 1) | (T_n > T)))
        raise ValueError(
            f"input_lengths must lie in [1, T] = [1, {T}], got {T_n[n]} for sequence {n}"
        )
    if (S_n < 0).any() or (S_n > S).any():
        n = int(np.argmax((S_n < 0) | (S_n > S)))
        raise ValueError(
            f"target_lengths must lie in [0, S] = [0, {S}], got {S_n[n]} for sequence {n}"
        )
    real = np.arange(S)[None, :] < S_n[:, None]  # the padding of targets is never read
    bad = real & ((tg < 0) | (tg >= C))
    if bad.any():
        n, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"targets[{n}, {j}] = {tg[n, j]} is not a class in [0, C) = [0, {C})")
    bad = real & (tg == blank)
    if bad.any():
        n, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"targets[{n}, {j}] is the blank ({blank}); a target holds labels only")
    return z, np.where(real, tg, blank), T_n, S_n, blank


# --- the extended label sequence and the recursions ---------------------------------------------


def _extend(tg: np.ndarray, S_n: np.ndarray, blank: int):
    """l' (N, 2S + 1), the mask of its real states, and where the skip s - 2 -> s is allowed."""
    N, S = tg.shape
    L = 2 * S + 1
    l_ext = np.full((N, L), blank, dtype=np.int64)
    l_ext[:, 1::2] = tg
    valid = np.arange(L)[None, :] < (2 * S_n + 1)[:, None]
    skip = np.zeros((N, L), dtype=bool)
    # A label (odd s >= 3) may be reached from s - 2 unless it repeats the label before it.
    skip[:, 3::2] = tg[:, 1:] != tg[:, :-1]
    skip &= valid
    return l_ext, valid, skip


def _logaddexp(a: float, b: float) -> float:
    """log(e^a + e^b) for two Python floats (-inf allowed), without NumPy's per-call overhead."""
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a[..., s - k] at s (-inf where s - k < 0): the state k places to the left."""
    out = np.full_like(a, _NEG_INF)
    out[..., k:] = a[..., :-k] if k else a
    return out


def _forward(log_y, l_ext, valid, skip):
    """log alpha (N, T, L) for every step (rows run on after their T_n; only t < T_n is read)."""
    N, T, _ = log_y.shape
    L = l_ext.shape[1]
    # log y_{t, l'_s}: the emission of each state at each step, (N, T, L).
    emit = np.take_along_axis(log_y, np.broadcast_to(l_ext[:, None, :], (N, T, L)), axis=2)
    emit = np.where(valid[:, None, :], emit, _NEG_INF)
    log_alpha = np.full((N, T, L), _NEG_INF)
    log_alpha[:, 0, :2] = emit[:, 0, :2]  # start in the first blank or the first label
    for t in range(1, T):
        prev = log_alpha[:, t - 1]
        total = np.logaddexp(prev, _shift(prev, 1))
        total = np.where(skip, np.logaddexp(total, _shift(prev, 2)), total)
        log_alpha[:, t] = total + emit[:, t]
    return log_alpha, emit


def _backward(emit, skip, T_n, S_n):
    """log beta (N, T, L): the emission at t excluded; -inf at the padded steps t >= T_n."""
    N, T, L = emit.shape
    log_beta = np.full((N, T, L), _NEG_INF)
    rows = np.arange(N)
    end = np.full((N, L), _NEG_INF)
    end[rows, 2 * S_n] = 0.0  # finish in the last blank ...
    end[rows[S_n > 0], 2 * S_n[S_n > 0] - 1] = 0.0  # ... or in the last label
    skip_from = np.zeros_like(skip)
    skip_from[:, :-2] = skip[:, 2:]  # the skip s -> s + 2 is allowed iff skip[s + 2]
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            step = np.full((N, L), _NEG_INF)
        else:
            nxt = log_beta[:, t + 1] + emit[:, t + 1]  # beta_{t+1}(s') y_{t+1, l'_s'}
            step = np.logaddexp(nxt, _shift(nxt[:, ::-1], 1)[:, ::-1])  # s' = s, s + 1
            step = np.where(skip_from, np.logaddexp(step, _shift(nxt[:, ::-1], 2)[:, ::-1]), step)
        step = np.where((t == T_n - 1)[:, None], end, step)
        log_beta[:, t] = np.where((t < T_n)[:, None], step, _NEG_INF)
    return log_beta


def ctc_loss(logits, targets, input_lengths, target_lengths, blank=0):
    r"""Per-sequence CTC loss :math:`\mathcal L_n = -\log p(\mathbf l_n \mid x_n)`.

    Args:
        logits: (N, T, C) unnormalised scores :math:`z`; the log-softmax over C is taken here.
        targets: (N, S) integer labels in ``[0, C)``, never the blank; row ``n`` uses its first
            ``target_lengths[n]`` entries (the rest is padding and is never read). S may be 0.
        input_lengths: (N,) integers in ``[1, T]``, the real steps :math:`T_n` of each row.
        target_lengths: (N,) integers in ``[0, S]``.
        blank: the blank's class index.

    Returns:
        ``loss`` (N,) float64 (``+inf`` where no alignment fits, see the module docstring) and a
        ``cache`` for :func:`ctc_backward` (it holds ``log_y`` (N, T, C), ``log_alpha``
        (N, T, 2S + 1), ``l_ext`` and the lengths).

    The alpha recursion of the module docstring, in log space, vectorised over the batch.
    """
    z, tg, T_n, S_n, blank = _check_inputs(logits, targets, input_lengths, target_lengths, blank)
    N = z.shape[0]
    log_y = _log_softmax(z)
    l_ext, valid, skip = _extend(tg, S_n, blank)
    log_alpha, emit = _forward(log_y, l_ext, valid, skip)
    rows = np.arange(N)
    last = log_alpha[rows, T_n - 1]  # (N, L): alpha at each row's own last step
    log_p = last[rows, 2 * S_n]
    has = S_n > 0
    log_p[has] = np.logaddexp(log_p[has], last[rows[has], 2 * S_n[has] - 1])
    loss = -log_p
    cache = {
        "log_y": log_y,
        "log_alpha": log_alpha,
        "emit": emit,
        "l_ext": l_ext,
        "skip": skip,
        "log_p": log_p,
        "input_lengths": T_n,
        "target_lengths": S_n,
        "blank": blank,
    }
    return loss, cache


def ctc_backward(dloss, cache):
    r"""Gradient of :math:`\sum_n \mathrm{dloss}_n \mathcal L_n` with respect to the logits.

    Args:
        dloss: (N,) upstream gradient (ones for a sum; ``1 / N`` for a mean).
        cache: from :func:`ctc_loss`.

    Returns:
        ``dlogits`` (N, T, C) = ``dloss[n] * (y_{t,k} - gamma_t(k))`` for ``t < T_n`` with
        :math:`\gamma_t(k) = \sum_{s: l'_s = k} \exp(\log\alpha_t(s) + \log\beta_t(s) - \log p)`,
        0 at the padded steps, and exactly 0 for a sequence whose loss is ``+inf``.
    """
    log_y, log_alpha = cache["log_y"], cache["log_alpha"]
    N, T, C = log_y.shape
    d = as_float_array("dloss", dloss, 1).astype(np.float64)
    if d.shape != (N,):
        raise ValueError(f"dloss must have shape (N,) = ({N},), got {d.shape}")
    T_n, S_n, log_p = cache["input_lengths"], cache["target_lengths"], cache["log_p"]
    log_beta = _backward(cache["emit"], cache["skip"], T_n, S_n)
    possible = np.isfinite(log_p)
    safe_log_p = np.where(possible, log_p, 0.0)
    # Posterior of each state at each step, (N, T, L); 0 where alpha or beta is -inf.
    post = np.exp(log_alpha + log_beta - safe_log_p[:, None, None])
    onehot = np.zeros((N, log_alpha.shape[2], C))
    np.put_along_axis(onehot, cache["l_ext"][:, :, None], 1.0, axis=2)
    gamma = np.einsum("nts,nsc->ntc", post, onehot)  # sum over the states of each class
    real = np.arange(T)[None, :] < T_n[:, None]
    keep = (real & possible[:, None])[:, :, None]
    dlogits = np.where(keep, np.exp(log_y) - gamma, 0.0)
    return d[:, None, None] * dlogits


def _single(log_y, labels, blank):
    lp = as_float_array("log_y", log_y, 2).astype(np.float64)
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must have shape (S,), got {lab.shape}")
    lab = lab.astype(np.int64) if lab.size else np.zeros(0, dtype=np.int64)
    T = lp.shape[0]
    return lp, lab, T


def ctc_log_alpha(log_y, labels, blank=0):
    r"""log alpha (T, 2S + 1) of one sequence from its log-probabilities ``log_y`` (T, C).

    ``log_y`` should be log-softmax outputs (each row's exp sums to 1: it is re-normalised here,
    which leaves log-softmax outputs unchanged); ``labels`` (S,) the target. States that no path
    can occupy hold ``-inf``.
    """
    lp, lab, T = _single(log_y, labels, blank)
    _, cache = ctc_loss(lp[None], lab[None], [T], [lab.size], blank)
    return cache["log_alpha"][0]


def ctc_log_beta(log_y, labels, blank=0):
    r"""log beta (T, 2S + 1) of one sequence (the emission at ``t`` excluded), as in
    :func:`ctc_log_alpha`; ``logsumexp(log_alpha[t] + log_beta[t]) = log p`` at every ``t``."""
    lp, lab, T = _single(log_y, labels, blank)
    _, cache = ctc_loss(lp[None], lab[None], [T], [lab.size], blank)
    return _backward(cache["emit"], cache["skip"], cache["input_lengths"], cache["target_lengths"])[
        0
    ]


# --- decoding -----------------------------------------------------------------------------------


def ctc_collapse(path, blank=0) -> list[int]:
    r""":math:`\mathcal B`: merge runs of equal classes, *then* drop the blanks, e.g.
    ``(1, 1, 0, 1, 2, 2) -> [1, 1, 2]`` (dropping blanks first would merge the two ones)."""
    out: list[int] = []
    prev = None
    for k in np.asarray(path, dtype=np.int64).reshape(-1).tolist():
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def ctc_greedy_decode(log_probs, input_lengths=None, blank=0) -> list[list[int]]:
    r"""Best-path decoding: :math:`\mathcal B(\arg\max_k y_{t,k})` over the first
    ``input_lengths[n]`` steps of each row.

    Args:
        log_probs: (N, T, C) log-probabilities or logits (the argmax is the same).
        input_lengths: (N,) integers in ``[1, T]``; ``None`` means every row has T steps.
        blank: the blank's class index.

    Returns:
        a list of N label lists (Python ints). Not always the most probable labelling: that
        sums over all its paths (see :func:`ctc_prefix_beam_search`).
    """
    lp = as_float_array("log_probs", log_probs, 3)
    N, T, C = lp.shape
    blank = check_int("blank", blank, 0)
    if blank >= C:
        raise ValueError(f"blank must be in [0, C) = [0, {C}), got {blank}")
    if input_lengths is None:
        T_n = np.full(N, T, dtype=np.int64)
    else:
        T_n = _int_vector("input_lengths", input_lengths, N)
        if (T_n < 1).any() or (T_n > T).any():
            raise ValueError(f"input_lengths must lie in [1, T] = [1, {T}], got {T_n.tolist()}")
    best = np.argmax(lp, axis=2)
    return [ctc_collapse(best[n, : T_n[n]], blank) for n in range(N)]


def ctc_prefix_beam_search(log_probs, beam_width=8, blank=0):
    r"""Prefix beam search (Hannun et al. 2014, without a language model) for one sequence.

    Each hypothesis is a labelling prefix :math:`\ell` with two log-probabilities: that of the
    paths so far that collapse to :math:`\ell` and end in a blank, :math:`p_b(\ell)`, and of those
    that end in its last label, :math:`p_{nb}(\ell)`. At step ``t`` a blank keeps the prefix
    (:math:`p_b \mathrel{+}= (p_b + p_{nb})\, y_{t,b}`); repeating the last label ``c`` keeps
    it too (:math:`p_{nb}(\ell) \mathrel{+}= p_{nb}(\ell)\, y_{t,c}`) and extends it only
    after a blank (:math:`p_{nb}(\ell c) \mathrel{+}= p_b(\ell)\, y_{t,c}`); any other label
    extends it (:math:`p_{nb}(\ell c) \mathrel{+}= (p_b + p_{nb})\, y_{t,c}`). The
    ``beam_width`` prefixes with the largest :math:`p_b + p_{nb}` survive each step (ties broken
    by the shorter, then the smaller prefix, so the result is deterministic). With a beam as wide
    as the number of prefixes it is exact: it returns the most probable labelling
    :math:`\arg\max_{\mathbf l} p(\mathbf l \mid x)`.

    Args:
        log_probs: (T, C) log-probabilities (log-softmax outputs).
        beam_width: integer >= 1.
        blank: the blank's class index.

    Returns:
        ``(labels, log_prob)``: the best prefix as a list of ints and its
        :math:`\log(p_b + p_{nb})` at the end (its exact :math:`\log p(\mathbf l \mid x)` when
        no path of it was pruned).
    """
    lp = as_float_array("log_probs", log_probs, 2).astype(np.float64)
    T, C = lp.shape
    if T == 0 or C == 0:
        raise ValueError(f"log_probs must have T, C >= 1, got shape {lp.shape}")
    if np.isnan(lp).any() or (lp == np.inf).any():
        raise ValueError("log_probs contain NaN or +inf")
    beam_width = check_int("beam_width", beam_width, 1)
    blank = check_int("blank", blank, 0)
    if blank >= C:
        raise ValueError(f"blank must be in [0, C) = [0, {C}), got {blank}")
    lae = _logaddexp
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, _NEG_INF)}
    for t in range(T):
        row = lp[t].tolist()
        nxt: dict[tuple, list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = lae(pb, pnb)
            cur = nxt.setdefault(prefix, [_NEG_INF, _NEG_INF])
            cur[0] = lae(cur[0], total + row[blank])  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            for c in range(C):
                if c == blank:
                    continue
                if c == last:
                    cur = nxt.setdefault(prefix, [_NEG_INF, _NEG_INF])
                    cur[1] = lae(cur[1], pnb + row[c])  # a repeat collapses into the prefix
                    new = pb + row[c]  # a new label equal to the last needs a blank before it
                else:
                    new = total + row[c]
                ext = nxt.setdefault(prefix + (c,), [_NEG_INF, _NEG_INF])
                ext[1] = lae(ext[1], new)
        ranked = sorted(nxt.items(), key=lambda kv: (-lae(*kv[1]), len(kv[0]), kv[0]))
        beams = {p: (v[0], v[1]) for p, v in ranked[:beam_width]}
    best, (pb, pnb) = next(iter(beams.items()))
    return [int(k) for k in best], float(lae(pb, pnb))


# --- error measures -----------------------------------------------------------------------------


def _as_sequence(name: str, a):
    if isinstance(a, str):
        return list(a)
    try:
        arr = np.asarray(a)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a sequence, got {type(a).__name__}") from e
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {arr.shape}")
    return arr.tolist()


def edit_distance(ref, hyp) -> int:
    r"""Levenshtein distance: the fewest insertions, deletions and substitutions (each cost 1)
    that turn ``hyp`` into ``ref``. Sequences of ints, a ``str``, or 1-D arrays.

    .. math::
        D_{i,0} = i,\ D_{0,j} = j,\quad
        D_{i,j} = \min(D_{i-1,j} + 1,\ D_{i,j-1} + 1,\ D_{i-1,j-1} + [r_i \ne h_j]),

    the answer :math:`D_{|r|,|h|}`; one row of the table is kept, O(|r| |h|) time.
    """
    r = _as_sequence("ref", ref)
    h = _as_sequence("hyp", hyp)
    prev = list(range(len(h) + 1))
    for i, ri in enumerate(r, start=1):
        cur = [i] + [0] * len(h)
        for j, hj in enumerate(h, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ri != hj))
        prev = cur
    return int(prev[-1])


def character_error_rate(refs, hyps) -> float:
    r"""CER = :math:`\sum_i \mathrm{edit\_distance}(r_i, h_i) / \sum_i |r_i|` over a corpus
    (not the mean of per-string rates, which would overweight short strings). It can exceed 1
    (a hypothesis with many insertions). Raises ``ValueError`` if the lists differ in length or
    every reference is empty (the rate is undefined)."""
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("refs and hyps must be lists of sequences (a str is one sequence: wrap it)")
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps differ in length: {len(refs)} != {len(hyps)}")
    total = sum(len(_as_sequence("refs[i]", r)) for r in refs)
    if total == 0:
        raise ValueError("every reference is empty: the character error rate is undefined")
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    return errors / total
