r"""Checks for the assignment ch14_recsys (GRU4Rec's session-parallel mini-batches, ranks with the
already-seen items excluded, HR@k and MRR@k, the first-order Markov baseline, the BPR loss and
its gradient).

Conventions the checks hold the student's functions to (stated in the notebook):

- ``session_parallel_batches(offsets, batch_size) -> (inputs, targets, reset)``, each
  (n_steps, B) with B = min(batch_size, number of sessions with >= 2 events): lanes start on the
  first B such sessions (in offset order); at each step lane b reads event ``inputs[t, b]`` and
  predicts ``targets[t, b] = inputs[t, b] + 1``; a lane whose session has no further target takes
  the next unstarted session (lanes in increasing order when several finish together) and
  ``reset[t, b]`` is True at the first step of every session; with no session left a lane idles
  with -1, -1, False; the steps stop when every lane idles.
- ``rank_targets(scores, targets, seen) -> ranks``: 1 + the number of other, not-seen items
  scoring at least as high as the target (pessimistic ties); the target is ranked even if seen.
- ``hr_mrr_at_k(ranks, k) -> (hr, mrr)``: mean of ``rank <= k``; mean of ``1/rank`` if
  ``rank <= k`` else 0.
- ``transition_counts(sessions, n_items) -> (counts (I, I), popularity (I,))`` and
  ``markov_scores(counts, popularity, last_items) -> (N, I) = counts[last] + pop / (max pop + 1)``.
- ``bpr_loss(r_pos (B,), r_neg (B, K)) -> float`` = mean of ``-log sigmoid(r_pos - r_neg)`` and
  ``bpr_gradient(r_pos, r_neg) -> (dr_pos, dr_neg)`` (autograd forbidden).

Each ``check_*`` runs the student's function on cases drawn from ``seeds`` (length-1 sessions
that must be skipped, more lanes than sessions, one lane, many sessions finishing together,
ties, a seen target, N = 1, k = 1 and k >= I, items never followed in training, B = 1, K = 1,
margins of +-800 where a naive log(sigmoid) overflows) and compares with a trusted copy of
:mod:`rnn_ref.numpy`; a failure names the case and the mistake (a reset missing, a
length-1 session read, lanes refilled in the wrong order, optimistic ties, the seen items not
excluded or the target excluded, MRR without the cut-off, transitions across session
boundaries, a transposed count matrix, no popularity fallback or an unscaled one, a sum instead
of a mean, the gradient's sign) without giving expected values away.

Inputs are made from the seeds with NumPy only, so the class-scale grader's sandboxed kernel
(which cannot read ``rnn_ref.numpy``) builds the same cases; under it the kernel only records.
"""

from __future__ import annotations

import functools as _functools

import numpy as _np

from . import assert_close, trusted_reference
from . import guarded_call as _guarded_call
from ._cases import array_in_case as _array
from ._cases import call_in_case
from ._cases import case_rng as _rng
from ._cases import case_seed as _seed_of
from ._cases import pair as _pair
from ._guard import GradingError, recording, seal
from .ch15_vision import _close, _scalar

__all__ = [
    "guarded_call",
    "check_session_parallel_batches",
    "check_rank_targets",
    "check_hr_mrr_at_k",
    "check_transition_counts",
    "check_markov_scores",
    "check_bpr_loss",
    "check_bpr_gradient",
]

guarded_call = _guarded_call  # rnn_ref (and torch's recurrent modules) forbidden; see _guard

# Captured now, before any student cell can rebind them.
_isfinite, _argwhere = _np.isfinite, _np.argwhere

_call = _functools.partial(call_in_case, guard=_guarded_call)


def _ref():
    return trusted_reference("rnn_ref.numpy")


def _ints(name: str, value, shape, ctx: str) -> _np.ndarray:
    arr = _array(name, value, shape, ctx)
    if not (_np.issubdtype(arr.dtype, _np.integer) or _np.all(arr == _np.round(arr))):
        raise GradingError(f"{name} should hold integers, got dtype {arr.dtype} (case: {ctx})")
    return arr.astype(_np.int64)


# --- Part 1: session-parallel mini-batches ------------------------------------------------------

# (label, session lengths or a generator spec, batch_size)
BATCH_CASES = (
    ("four sessions, two lanes", (3, 2, 4, 2), 2),
    ("sessions of one event (no target) between the others", (1, 3, 1, 2, 1, 4, 2), 2),
    ("more lanes than sessions", (2, 3), 5),
    ("one lane", (2, 3, 2), 1),
    ("several lanes finish at the same step", (2, 2, 2, 3, 2, 2), 3),
    ("random lengths 1-6, 20 sessions", "random", 4),
    ("random lengths 1-6, 30 sessions", "random", 7),
)


def _batch_offsets(rng, lengths):
    if lengths == "random":
        lengths = tuple(int(n) for n in rng.integers(1, 7, rng.integers(20, 31)))
        if max(lengths) < 2:
            lengths = lengths + (2,)
    return _np.r_[0, _np.cumsum(lengths)].astype(_np.int64)


def _stacked_reference(offsets, batch_size):
    steps = list(_ref().session_parallel_batches(offsets, batch_size))
    return tuple(_np.array([s[i] for s in steps]) for i in range(3))


def _diagnose_batches(inputs, targets, reset, offsets, ctx):
    """Name the first broken rule of the convention (the output is not the expected one)."""
    E = int(offsets[-1])
    session_of = _np.repeat(_np.arange(offsets.size - 1), _np.diff(offsets))
    active = inputs >= 0
    if _np.any(targets[active] != inputs[active] + 1) or _np.any(targets[~active] != -1):
        raise GradingError(
            f"targets is not the event after each input ({ctx}): targets[t, b] = "
            "inputs[t, b] + 1 on an active lane and -1 on an idle one"
        )
    if _np.any((inputs[active] < 0) | (targets[active] >= E)):
        raise GradingError(f"an input or target is outside the events 0..{E - 1} ({ctx})")
    crossing = session_of[inputs[active]] != session_of[targets[active]]
    if _np.any(crossing):
        lengths = _np.diff(offsets)
        if _np.any(lengths[session_of[inputs[active]]] == 1):
            raise GradingError(
                f"a lane reads a session of one event ({ctx}): it has no target; skip the "
                "sessions with fewer than 2 events"
            )
        raise GradingError(
            f"a target lies in another session than its input ({ctx}): a session's last "
            "event is a target, never an input"
        )
    if _np.any(reset & ~active):
        raise GradingError(f"reset is True on an idle lane ({ctx})")
    starts = active & (inputs == offsets[:-1][session_of[_np.maximum(inputs, 0)]])
    if not _np.array_equal(reset & active, starts):
        t, b = (int(i) for i in _argwhere((reset & active) != starts)[0])
        when = "missing" if starts[t, b] else "set where no session starts"
        raise GradingError(
            f"reset[t={t}, b={b}] is {when} ({ctx}): reset is True exactly at the step where "
            "a lane reads the first event of a session (the state is zeroed before that step)"
        )
    used = _np.sort(inputs[active])
    want = _np.array(
        [p for s in range(offsets.size - 1) for p in range(offsets[s], offsets[s + 1] - 1)],
        dtype=_np.int64,
    )
    if used.size != want.size or not _np.array_equal(used, want):
        raise GradingError(
            f"not every event with a successor is an input exactly once ({ctx}): "
            f"{used.size} inputs where {want.size} are expected; keep going until every "
            "lane idles (do not stop when the first lane runs out of sessions)"
        )
    raise GradingError(
        f"the sessions are given to the lanes in another order ({ctx}): lanes start on the first "
        "B sessions that have a target, in offset order, and a lane that finishes takes the next "
        "unstarted one at the next step (lanes in increasing order when several finish together)"
    )


def check_session_parallel_batches(session_parallel_batches, seeds=(0, 1)) -> None:
    """session_parallel_batches(offsets (S + 1,), batch_size) -> (inputs, targets, reset), each
    (n_steps, B): GRU4Rec's session-parallel mini-batches (the convention in the notebook)."""
    for k, (label, lengths, batch_size) in enumerate(BATCH_CASES):
        rng = _rng(seeds, k)
        offsets = _batch_offsets(rng, lengths)
        S = offsets.size - 1
        ctx = f"{label}, S={S}, batch_size={batch_size}, seed={_seed_of(seeds, k)}"
        out = _call(
            "session_parallel_batches",
            session_parallel_batches,
            offsets,
            batch_size,
            context=ctx,
        )
        if not (isinstance(out, tuple) and len(out) == 3):
            raise GradingError(
                "session_parallel_batches should return (inputs, targets, reset), a tuple of "
                f"three arrays (case: {ctx})"
            )
        shape = _np.asarray(out[0]).shape
        if len(shape) != 2:
            raise GradingError(f"inputs should be (n_steps, B), got shape {shape} (case: {ctx})")
        inputs = _ints("inputs", out[0], shape, ctx)
        targets = _ints("targets", out[1], shape, ctx)
        reset = _array("reset", out[2], shape, ctx)
        if reset.dtype != bool:
            raise GradingError(f"reset should be a boolean array, got {reset.dtype} ({ctx})")
        if recording():
            continue
        e_in, e_tg, e_rs = _stacked_reference(offsets, batch_size)
        if shape[1] != e_in.shape[1]:
            raise GradingError(
                f"inputs has {shape[1]} lanes, expected B = min(batch_size, number of "
                f"sessions with at least 2 events) ({ctx})"
            )
        if (
            shape == e_in.shape
            and _np.array_equal(inputs, e_in)
            and _np.array_equal(targets, e_tg)
            and _np.array_equal(reset, e_rs)
        ):
            continue
        _diagnose_batches(inputs, targets, reset, offsets, f"case: {ctx}")


# --- Part 2: ranks with the seen items excluded, HR@k and MRR@k ----------------------------------

RANK_CASES = (
    # (label, N, I, levels of scores (0: continuous), a seen target in some rows)
    ("random scores, no ties", 6, 9, 0, False),
    ("many ties (3 score levels)", 8, 10, 3, False),
    ("a target that was seen earlier (it is still ranked)", 5, 7, 0, True),
    ("N = 1, I = 1", 1, 1, 0, False),
    ("all scores equal", 3, 6, 1, False),
    ("large catalogue with ties, I = 200", 20, 200, 5, True),
)


def _rank_case(rng, N, I, levels, seen_target):
    scores = rng.normal(0, 1, (N, I)) if levels == 0 else rng.integers(0, levels, (N, I)) * 1.0
    targets = rng.integers(0, I, N)
    seen = []
    for n in range(N):
        m = int(rng.integers(0, max(1, I // 2) + 1))
        items = [int(i) for i in rng.choice(I, size=min(m, I), replace=False)]
        items = [i for i in items if i != targets[n]]
        if seen_target and n % 2 == 0:
            items.append(int(targets[n]))  # a repeat: the target itself occurred before
        seen.append(items)
    return scores, targets.astype(_np.int64), seen


def _brute_rank(scores, targets, seen, strict=False, exclude_target=False, exclude=True):
    out = []
    for n, t in enumerate(targets):
        skip = set(seen[n]) if exclude else set()
        if not exclude_target:
            skip.discard(int(t))
        cmp = scores[n] > scores[n, t] if strict else scores[n] >= scores[n, t]
        out.append(
            1 + sum(1 for j in range(scores.shape[1]) if j != t and cmp[j] and j not in skip)
        )
    return _np.array(out)


def check_rank_targets(rank_targets, seeds=(0, 1, 2, 3, 4, 5)) -> None:
    """rank_targets(scores (N, I), targets (N,), seen: N lists) -> ranks (N,): 1 + the number of
    other items not seen earlier in the session that score at least as high as the target."""
    for k, (label, N, I, levels, seen_target) in enumerate(RANK_CASES):
        rng = _rng(seeds, k)
        scores, targets, seen = _rank_case(rng, N, I, levels, seen_target)
        ctx = f"{label}, N={N}, I={I}, seed={_seed_of(seeds, k)}"
        out = _call("rank_targets", rank_targets, scores, targets, seen, context=ctx)
        ranks = _ints("ranks", out, (N,), ctx)
        if recording():
            continue
        mask = _np.zeros((N, I), dtype=bool)
        for n, row in enumerate(seen):
            mask[n, row] = True
        expected = _ref().rank_targets(scores, targets, exclude=mask)
        if _np.array_equal(ranks, expected):
            continue
        if _np.any(ranks < 1):
            raise GradingError(f"ranks are 1-based: the best item has rank 1 ({ctx})")
        if _np.array_equal(ranks, expected - 1):
            raise GradingError(f"the ranks are 0-based ({ctx}): the best item has rank 1")
        n = int(_np.argmax(ranks != expected))
        if _np.array_equal(ranks, _brute_rank(scores, targets, seen, strict=True)):
            raise GradingError(
                f"ties are counted in the target's favour ({ctx}): an item with the same score "
                "as the target ranks above it (pessimistic ties), or a constant scorer would "
                "look perfect"
            )
        if _np.array_equal(ranks, _brute_rank(scores, targets, seen, exclude=False)):
            raise GradingError(
                f"the items seen earlier in the session are not excluded ({ctx}): they must not "
                "count against the target"
            )
        if _np.array_equal(ranks, _brute_rank(scores, targets, seen, exclude_target=True)):
            raise GradingError(
                f"a target that was seen before is treated as excluded ({ctx}): exclude the "
                "seen items except the target itself, which is always ranked"
            )
        raise GradingError(
            f"the rank of row n={n} is {'too high' if ranks[n] > expected[n] else 'too low'} "
            f"({ctx})"
        )


def check_hr_mrr_at_k(hr_mrr_at_k, seeds=(0, 1, 2, 3)) -> None:
    """hr_mrr_at_k(ranks (N,), k) -> (hr, mrr): the share of ranks <= k and the mean of 1/rank
    over ranks <= k (0 for the others)."""
    cases = (
        ("random ranks, k = 10", 30, 40, 10),
        ("k = 1", 12, 8, 1),
        ("k larger than every rank", 10, 15, 50),
        ("N = 1, rank = k exactly", 1, 5, None),
    )
    for k_case, (label, N, I, k) in enumerate(cases):
        rng = _rng(seeds, k_case)
        ranks = rng.integers(1, I + 1, N).astype(_np.int64)
        if k is None:
            k = int(ranks[0])
        ctx = f"{label}, N={N}, k={k}, seed={_seed_of(seeds, k_case)}"
        out = _call("hr_mrr_at_k", hr_mrr_at_k, ranks, k, context=ctx)
        hr, mrr = _pair("hr_mrr_at_k", out, "hr, mrr", ctx)
        hr, mrr = _scalar("hr", hr, ctx), _scalar("mrr", mrr, ctx)
        if recording():
            continue
        ref = _ref()
        hr_e, mrr_e = ref.hit_rate_at_k(ranks, k), ref.mrr_at_k(ranks, k)
        if not _close(hr, hr_e, atol=1e-12):
            if _close(hr, float(_np.mean(ranks < k)), atol=1e-12):
                raise GradingError(f"hr counts rank < k ({ctx}): a rank of exactly k is a hit")
            assert_close("hr", hr, hr_e, atol=1e-12, rtol=1e-12, context=ctx)
        if not _close(mrr, mrr_e, atol=1e-12):
            if _close(mrr, float(_np.mean(1.0 / ranks)), atol=1e-12):
                raise GradingError(
                    f"mrr has no cut-off ({ctx}): a target ranked below k counts 0, not 1/rank"
                )
            assert_close("mrr", mrr, mrr_e, atol=1e-12, rtol=1e-12, context=ctx)


# --- Part 3: the first-order Markov baseline -----------------------------------------------------

MARKOV_CASES = (
    # (label, number of sessions, I, max length)
    ("random sessions", 12, 8, 6),
    ("one session", 1, 5, 5),
    ("sessions of one event and repeats (i -> i)", 10, 4, 3),
    ("items never followed in training", 6, 12, 4),
    ("a larger catalogue", 40, 30, 8),
)


def _markov_case(rng, n_sessions, I, max_len):
    sessions = [
        rng.integers(0, I if I < 10 else I - 3, int(rng.integers(1, max_len + 1))).astype(_np.int64)
        for _ in range(n_sessions)
    ]
    if n_sessions == 1 and sessions[0].size < 2:
        sessions[0] = _np.array([0, 1, 0], dtype=_np.int64)
    return sessions


def _trusted_markov(sessions, I):
    ref = _ref()
    lens = [s.size for s in sessions]
    E = sum(lens)
    train = ref.recsys.Sessions(
        _np.concatenate(sessions),
        _np.r_[0, _np.cumsum(lens)],
        _np.zeros(len(sessions)),
        _np.zeros(len(sessions)),
        _np.arange(E),
        None,
        I,
    )
    return ref.MarkovChain().fit(train)


def check_transition_counts(transition_counts, seeds=(0, 1, 2, 3, 4)) -> None:
    """transition_counts(sessions: list of (L_s,) item arrays, n_items) -> (counts (I, I),
    popularity (I,)): counts[i, j] = the number of times j directly follows i inside a session;
    popularity[i] = the number of events of item i."""
    for k, (label, n_s, I, max_len) in enumerate(MARKOV_CASES):
        rng = _rng(seeds, k)
        sessions = _markov_case(rng, n_s, I, max_len)
        ctx = f"{label}, {n_s} sessions, I={I}, seed={_seed_of(seeds, k)}"
        out = _call("transition_counts", transition_counts, sessions, I, context=ctx)
        counts, pop = _pair("transition_counts", out, "counts, popularity", ctx)
        counts = _array("counts", counts, (I, I), ctx).astype(_np.float64)
        pop = _array("popularity", pop, (I,), ctx).astype(_np.float64)
        if recording():
            continue
        m = _trusted_markov(sessions, I)
        c_e = m.counts.toarray()
        if not _close(counts, c_e, atol=0, rtol=0):
            if _close(counts, c_e.T, atol=0, rtol=0):
                raise GradingError(
                    f"counts is transposed ({ctx}): counts[i, j] counts i followed by j (row = "
                    "the current item, column = the next one)"
                )
            flat = _np.concatenate(sessions)
            across = _np.zeros((I, I))
            _np.add.at(across, (flat[:-1], flat[1:]), 1.0)
            if _close(counts, across, atol=0, rtol=0):
                raise GradingError(
                    f"counts includes transitions across session boundaries ({ctx}): the last "
                    "event of one session is not followed by the first of the next"
                )
            assert_close("counts", counts, c_e, dims=("i", "j"), atol=0, rtol=0, context=ctx)
        assert_close("popularity", pop, m.popularity, dims=("i",), atol=0, rtol=0, context=ctx)


def check_markov_scores(markov_scores, seeds=(0, 1, 2, 3, 4)) -> None:
    """markov_scores(counts (I, I), popularity (I,), last_items (N,)) -> (N, I):
    counts[last] + popularity / (max popularity + 1)."""
    for k, (label, n_s, I, max_len) in enumerate(MARKOV_CASES):
        rng = _rng(seeds, k)
        sessions = _markov_case(rng, n_s, I, max_len)
        counts = _np.zeros((I, I))
        pop = _np.zeros(I)
        for s in sessions:
            _np.add.at(counts, (s[:-1], s[1:]), 1.0)
            _np.add.at(pop, s, 1.0)
        N = int(rng.integers(1, 6))
        last = rng.integers(0, I, N).astype(_np.int64)
        if I >= 10:
            last[0] = I - 1  # never occurs in training: its row is all zeros
        ctx = f"{label}, I={I}, N={N}, seed={_seed_of(seeds, k)}"
        out = _call("markov_scores", markov_scores, counts, pop, last, context=ctx)
        scores = _array("scores", out, (N, I), ctx).astype(_np.float64)
        if recording():
            continue
        m = _trusted_markov(sessions, I)
        expected = _np.stack([m.score_session(_np.array([i]))[0] for i in last])
        if _close(scores, expected, atol=1e-12, rtol=1e-12):
            continue
        if _close(scores, counts[last], atol=1e-12):
            raise GradingError(
                f"the scores have no popularity term ({ctx}): a row with no transitions (an "
                "item never followed in training) must fall back to popularity, and popularity "
                "breaks the ties between equal counts"
            )
        if _close(scores, counts[last] + pop, atol=1e-12):
            raise GradingError(
                f"popularity is added unscaled ({ctx}): it may only break ties, so divide it by "
                "(max popularity + 1), which keeps it below one count"
            )
        if _close(scores, counts[:, last].T + pop / (pop.max() + 1), atol=1e-12):
            raise GradingError(
                f"the scores use the column of the last item ({ctx}): the next item j is scored "
                "by counts[last, j], the row of the current item"
            )
        assert_close("scores", scores, expected, dims=("n", "j"), atol=1e-12, rtol=1e-12,
                     context=ctx)  # fmt: skip


# --- Part 4: the BPR loss and its gradient -------------------------------------------------------

BPR_CASES = (
    ("random scores", 6, 5, 1.0),
    ("B = 1, K = 1", 1, 1, 1.0),
    ("K = 1", 4, 1, 2.0),
    ("large margins (+-800): log(sigmoid) must not overflow", 3, 4, "huge"),
    ("many negatives", 5, 50, 3.0),
)


def _bpr_case(rng, B, K, scale):
    if scale == "huge":
        r_pos = _np.array([800.0, -800.0, 0.5])[:B]
        r_neg = rng.normal(0, 1, (B, K))
        r_neg[0, 0], r_neg[1, 0] = -800.0, 800.0
        return r_pos, r_neg
    return rng.normal(0, scale, B), rng.normal(0, scale, (B, K))


def check_bpr_loss(bpr_loss, seeds=(0, 1, 2, 3, 4)) -> None:
    """bpr_loss(r_pos (B,), r_neg (B, K)) -> the mean over b and k of -log sigmoid(r_pos[b] -
    r_neg[b, k]), finite for large margins."""
    for k, (label, B, K, scale) in enumerate(BPR_CASES):
        rng = _rng(seeds, k)
        r_pos, r_neg = _bpr_case(rng, B, K, scale)
        ctx = f"{label}, B={B}, K={K}, seed={_seed_of(seeds, k)}"
        loss = _scalar("loss", _call("bpr_loss", bpr_loss, r_pos, r_neg, context=ctx), ctx)
        if recording():
            continue
        expected, _ = _ref().bpr_loss(r_pos, r_neg)
        if _close(loss, expected, atol=1e-10, rtol=1e-10):
            continue
        if not _isfinite(loss):
            raise GradingError(
                f"the loss is {loss} ({ctx}): sigmoid(-800) underflows to 0 and log(0) = -inf; "
                "write -log sigmoid(x) = log(1 + exp(-x)) = np.logaddexp(0, -x)"
            )
        if _close(loss, expected * B * K, atol=1e-9):
            raise GradingError(f"the loss is a sum ({ctx}): average over the B x K pairs")
        if _close(loss, -expected, atol=1e-9):
            raise GradingError(f"the loss has the wrong sign ({ctx}): it is -log sigmoid(...)")
        assert_close("loss", loss, expected, atol=1e-10, rtol=1e-10, context=ctx)


def check_bpr_gradient(bpr_gradient, seeds=(0, 1, 2, 3, 4)) -> None:
    """bpr_gradient(r_pos (B,), r_neg (B, K)) -> (dr_pos (B,), dr_neg (B, K)), the gradient of
    the mean BPR loss, without autograd."""
    for k, (label, B, K, scale) in enumerate(BPR_CASES):
        rng = _rng(seeds, k)
        r_pos, r_neg = _bpr_case(rng, B, K, scale)
        ctx = f"{label}, B={B}, K={K}, seed={_seed_of(seeds, k)}"
        out = _call("bpr_gradient", bpr_gradient, r_pos, r_neg, context=ctx, autograd=True)
        dp, dn = _pair("bpr_gradient", out, "dr_pos, dr_neg", ctx)
        dp = _array("dr_pos", dp, (B,), ctx).astype(_np.float64)
        dn = _array("dr_neg", dn, (B, K), ctx).astype(_np.float64)
        if recording():
            continue
        ref = _ref()
        _, cache = ref.bpr_loss(r_pos, r_neg)
        dp_e, dn_e = ref.bpr_backward(1.0, cache)
        if _close(dp, dp_e, atol=1e-12, rtol=1e-9) and _close(dn, dn_e, atol=1e-12, rtol=1e-9):
            continue
        if not (_isfinite(dp).all() and _isfinite(dn).all()):
            raise GradingError(
                f"the gradient contains NaN or infinity ({ctx}): with d = r_pos - r_neg, "
                "sigmoid(-d) stays in [0, 1]; compute it stably (e.g. from np.logaddexp)"
            )
        if _close(dn, -dn_e, atol=1e-12, rtol=1e-9):
            raise GradingError(
                f"dr_neg has the wrong sign ({ctx}): raising a negative's score raises the loss"
            )
        if _close(dn, dn_e * B * K, atol=1e-12, rtol=1e-9):
            raise GradingError(
                f"dr_neg is the gradient of the summed loss ({ctx}): the loss is a mean over "
                "the B x K pairs, so divide by B K"
            )
        if _close(dn, dn_e, atol=1e-12, rtol=1e-9):
            assert_close("dr_pos", dp, dp_e, dims=("b",), atol=1e-12, rtol=1e-9, context=ctx)
        assert_close("dr_neg", dn, dn_e, dims=("b", "k"), atol=1e-12, rtol=1e-9, context=ctx)


seal(__name__)
