r"""Session-based next-item recommendation in NumPy (chapter ch14_recsys): sessions, a leak-free
time split, GRU4Rec's session-parallel mini-batches, ranking metrics, the baselines of the field
and the pairwise ranking losses.

Interfaces (no input is modified in place; bad input raises ``ValueError`` or ``TypeError`` with a
message that names the argument and its shape):

Sessions
    A :class:`Sessions` holds many sessions CSR-style: ``items`` (E,) int64, the item *index* of
    every event, sessions concatenated; ``offsets`` (S + 1,) int64, session ``s`` is
    ``items[offsets[s]:offsets[s + 1]]``; ``user`` (S,), ``start`` (S,) the time of each session's
    first event; ``tie`` (E,) the tie group of each event (equal for events of one user with the
    same timestamp); ``timestamp`` (E,); ``n_items`` = I, the size of the catalogue. Sessions are
    ordered by start time (then user), events inside a session by time.

    ``make_sessions(user, item, timestamp, gap=3600, tie_order="random", seed=0)
    -> (sessions, item_ids)``: each user's events sorted by time; a new session starts when the
    time since the user's previous event exceeds ``gap`` seconds. Events with the same timestamp
    (a *tie*: MovieLens stores seconds, and users rate many films within one) have no true order;
    ``tie_order`` decides it: ``"random"`` (a seeded shuffle inside each tie: cannot leak),
    ``"file"`` (as given) or ``"item"`` (by item id: the leaky order that inflates a metric, see
    the book). Items are indexed ``0..I-1`` in order of their id; ``item_ids[i]`` is item i's id.

    ``time_split(user, item, timestamp, test_fraction=0.2, gap=3600, min_length=2,
    tie_order="random", seed=0) -> (train, test, item_ids)``: one cut time ``t_cut``, the
    ``1 - test_fraction`` quantile of all event times. Sessions that *end* before ``t_cut`` train,
    sessions that *start* at or after it test, the few that straddle it are dropped (so no test
    event precedes a training event and no session is cut in two). Items are re-indexed on the
    training events; test events of items never seen in training are removed (a model cannot
    score them); then sessions shorter than ``min_length`` are dropped from both.

Mini-batches
    ``session_parallel_batches(offsets, batch_size, seed=None)`` yields ``(inputs, targets,
    reset)`` (Hidasi et al. 2016): B = min(batch_size, number of sessions of length >= 2) lanes
    each run one session; at each step lane b reads event ``inputs[b]`` and must predict event
    ``targets[b] = inputs[b] + 1`` (both are *positions* into ``items``); when a lane's session
    has no next event, the lane takes the next unstarted session and ``reset[b]`` is True at its
    first step (the hidden state of lane b must be zeroed *before* the step). When no session is
    left, a finished lane idles: ``inputs[b] = targets[b] = -1`` (mask it out of the loss); the
    iteration stops when every lane idles. Sessions of length 1 have no target and are skipped.

Ranking and metrics
    ``rank_targets(scores (N, I), targets (N,), exclude=None, ties="pessimistic") -> ranks (N,)``:
    ``rank = 1 + #{j : s_j > s_t} + #{j != t : s_j = s_t}`` over the items j that are not
    excluded (pessimistic ties: a constant scorer gets the worst rank, not the best).
    ``exclude`` (a boolean (N, I) mask or N lists of item indices) removes items from the
    ranking, **never the target itself**: the rule for "already seen" items is that the other
    items of the session so far are not recommended again, but a target that repeats an earlier
    item is still ranked. ``hit_rate_at_k(ranks, k) = mean(rank <= k)`` (HR@k, recall@k with one
    target), ``mrr_at_k(ranks, k) = mean(1[rank <= k] / rank)``, ``hr_mrr(ranks, ks)`` both.

Baselines (``fit(train) -> self``; calling one on a list of sessions returns (sum L, I) scores,
row t of a session scoring the item after its first t + 1 events)
    :class:`Popularity`, :class:`SessionPopularity`, :class:`MarkovChain` (first-order
    transition counts, popularity for unseen rows), :class:`ItemKNN` (cosine of items over
    training sessions), :class:`SessionKNN` (SKNN, Ludewig & Jannach 2018).
    ``evaluate_next_item(score_fn, test, ks=(10, 20), exclude_seen=True, ties_as_set=False)``.

Losses (r are scores; B examples, K sampled negatives each)
    ``bpr_loss(r_pos (B,), r_neg (B, K)) -> (loss, cache)``:
    :math:`L = -\frac{1}{BK}\sum_{b,k} \log\sigma(r_{b} - r_{b,k})` (Rendle et al. 2009);
    ``bpr_max_loss(r_pos, r_neg, reg=1.0)``:
    :math:`L = \frac{1}{B}\sum_b \big[-\log\sum_k s_{b,k}\,\sigma(r_b - r_{b,k})
    + \lambda\sum_k s_{b,k} r_{b,k}^2\big]`, :math:`s_{b,\cdot} = \mathrm{softmax}(r_{b,\cdot})`
    (Hidasi & Karatzoglou 2018); ``*_backward(dloss, cache) -> (dr_pos, dr_neg)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as _sp

from ._checks import check_int

__all__ = [
    "Sessions",
    "make_sessions",
    "time_split",
    "session_parallel_batches",
    "rank_targets",
    "hit_rate_at_k",
    "mrr_at_k",
    "hr_mrr",
    "Popularity",
    "SessionPopularity",
    "MarkovChain",
    "ItemKNN",
    "SessionKNN",
    "evaluate_next_item",
    "bpr_loss",
    "bpr_backward",
    "bpr_max_loss",
    "bpr_max_backward",
]

TIE_ORDERS = ("random", "file", "item")


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def _int_vector(name: str, a, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)):
            if np.all(arr == np.floor(arr)):
                arr = arr.astype(np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) like the other columns")
    return arr


@dataclass(frozen=True, eq=False)
class Sessions:
    """Sessions stored CSR-style (see the module docstring).

    Attributes:
        items: (E,) int64 item index (0..I-1) of every event, sessions concatenated.
        offsets: (S + 1,) int64, non-decreasing, ``offsets[0] = 0``, ``offsets[-1] = E``.
        user: (S,) int64 user id of each session.
        start: (S,) int64 timestamp of each session's first event.
        tie: (E,) int64 tie-group id: equal for events of the same user and timestamp.
        timestamp: (E,) int64 time of every event, or None.
        n_items: I, the catalogue size (None: ``items.max() + 1``).
    """

    items: np.ndarray
    offsets: np.ndarray
    user: np.ndarray
    start: np.ndarray
    tie: np.ndarray
    timestamp: np.ndarray | None = None
    n_items: int | None = None

    def __post_init__(self):
        items = _int_vector("items", self.items)
        offsets = _int_vector("offsets", self.offsets)
        if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != items.size:
            raise ValueError(
                f"offsets must start at 0 and end at len(items) = {items.size}, got "
                f"{offsets[:1].tolist()}...{offsets[-1:].tolist()}"
            )
        if np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must be non-decreasing")
        S, E = offsets.size - 1, items.size
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "user", _int_vector("user", self.user, S))
        object.__setattr__(self, "start", _int_vector("start", self.start, S))
        object.__setattr__(self, "tie", _int_vector("tie", self.tie, E))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", _int_vector("timestamp", self.timestamp, E))
        if E and items.min() < 0:
            raise ValueError(f"items must be item indices >= 0, got {items.min()}")
        n = int(items.max()) + 1 if E else 0
        if self.n_items is None:
            object.__setattr__(self, "n_items", n)
        else:
            check_int("n_items", self.n_items, n)
            object.__setattr__(self, "n_items", int(self.n_items))

    def __len__(self) -> int:
        """The number of sessions S."""
        return int(self.offsets.size - 1)

    def lengths(self) -> np.ndarray:
        """(S,) int64 number of events of each session."""
        return np.diff(self.offsets)

    def session(self, s: int) -> np.ndarray:
        """The item indices of session ``s`` (a view)."""
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    def as_list(self) -> list[np.ndarray]:
        """Every session's item indices, in order."""
        return [self.items[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def __repr__(self) -> str:
        return f"Sessions({len(self)} sessions, {self.items.size} events, {self.n_items} items)"


def _columns(user, item, timestamp):
    user = _int_vector("user", user)
    item = _int_vector("item", item, user.size)
    timestamp = _int_vector("timestamp", timestamp, user.size)
    return user, item, timestamp


def _sorted_events(user, item, timestamp, gap, tie_order, seed):
    """Event order (user, time, tie key), session id and tie-group id of each sorted event."""
    gap = check_int("gap", gap, 0)
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, got {tie_order!r}")
    N = user.size
    if tie_order == "random":
        key = np.random.default_rng(seed).permutation(N)  # a random order inside each tie
    elif tie_order == "item":
        key = item
    else:
        key = np.arange(N)
    # lexsort is stable and sorts by its LAST key first: user, then time, then the tie key
    order = np.lexsort((np.arange(N), key, timestamp, user))
    u, t = user[order], timestamp[order]
    new_user = np.r_[True, u[1:] != u[:-1]] if N else np.zeros(0, bool)
    new_session = new_user | np.r_[True, np.diff(t) > gap] if N else new_user
    new_tie = new_user | np.r_[True, t[1:] != t[:-1]] if N else new_user
    return order, np.cumsum(new_session) - 1, np.cumsum(new_tie) - 1


def _build(items, session_id, tie, time, users, n_items) -> Sessions:
    """Sessions from events already sorted by (user, time); sessions re-ordered by start time."""
    if items.size == 0:
        z = np.zeros(0, np.int64)
        return Sessions(z, np.zeros(1, np.int64), z, z, z, z, n_items)
    first = np.r_[True, session_id[1:] != session_id[:-1]]
    starts_at = np.flatnonzero(first)
    bounds = np.r_[starts_at, items.size]
    start, suser = time[starts_at], users[starts_at]
    s_order = np.lexsort((suser, start))  # by start time, then user (stable)
    lens = np.diff(bounds)[s_order]
    ev = np.concatenate([np.arange(bounds[s], bounds[s + 1]) for s in s_order])
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    return Sessions(items[ev], offsets, suser[s_order], start[s_order], tie[ev], time[ev], n_items)


def make_sessions(user, item, timestamp, gap=3600, tie_order="random", seed=0):
    """Split each user's history into sessions at gaps longer than ``gap`` seconds.

    Args:
        user, item, timestamp: (N,) integer columns of the events, in any order.
        gap: a new session starts when the time since the same user's previous event is
            ``> gap`` seconds (3600: an hour without activity ends a session).
        tie_order: order of events with equal (user, timestamp): ``"random"`` (shuffled with
            ``seed``; leak-free), ``"file"`` (as given), ``"item"`` (by item id; leaks).
        seed: seed of the ``"random"`` tie order.

    Returns:
        ``(sessions, item_ids)``: a :class:`Sessions` over item indices ``0..I-1`` and
        ``item_ids`` (I,) the original id of each index (sorted ids).
    """
    user, item, timestamp = _columns(user, item, timestamp)
    order, sid, tie = _sorted_events(user, item, timestamp, gap, tie_order, seed)
    item_ids, idx = np.unique(item, return_inverse=True)
    sessions = _build(
        idx[order].astype(np.int64), sid, tie, timestamp[order], user[order], item_ids.size
    )
    return sessions, item_ids


def time_split(
    user,
    item,
    timestamp,
    test_fraction=0.2,
    gap=3600,
    min_length=2,
    tie_order="random",
    seed=0,
):
    """A leak-free time split into training and test sessions (see the module docstring).

    The cut time ``t_cut`` is the ``1 - test_fraction`` quantile of the event times (lower
    interpolation). Training: sessions whose last event is before ``t_cut``; test: sessions
    whose first event is at or after ``t_cut``; sessions spanning ``t_cut`` are dropped. Items
    are indexed on the training events (``item_ids`` (I,) their ids); test events of other
    items are removed; sessions shorter than ``min_length`` events are then dropped.

    Returns:
        ``(train, test, item_ids)``, two :class:`Sessions` with ``n_items = I``.
    """
    user, item, timestamp = _columns(user, item, timestamp)
    if isinstance(test_fraction, bool) or not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    min_length = check_int("min_length", min_length, 1)
    if user.size < 2:
        raise ValueError(f"time_split needs at least 2 events, got {user.size}")
    order, sid, tie = _sorted_events(user, item, timestamp, gap, tie_order, seed)
    t = timestamp[order]
    t_cut = np.quantile(timestamp, 1.0 - float(test_fraction), method="lower")
    n_s = int(sid[-1]) + 1
    s_first = np.full(n_s, np.iinfo(np.int64).max)
    s_last = np.full(n_s, np.iinfo(np.int64).min)
    np.minimum.at(s_first, sid, t)
    np.maximum.at(s_last, sid, t)

    def long_enough(keep):
        return keep & (np.bincount(sid[keep], minlength=n_s)[sid] >= min_length)

    in_train = long_enough((s_last < t_cut)[sid])
    in_test = (s_first >= t_cut)[sid]
    it = item[order]
    item_ids = np.unique(it[in_train])
    if item_ids.size == 0:
        raise ValueError(
            f"time_split: no training session of >= {min_length} events ends before the cut; "
            "lower test_fraction"
        )
    pos = np.searchsorted(item_ids, it)
    known = (pos < item_ids.size) & (item_ids[np.minimum(pos, item_ids.size - 1)] == it)
    out = []
    # test sessions: unseen items removed first, then the too-short sessions dropped
    for keep in (in_train, long_enough(in_test & known)):
        out.append(
            _build(
                pos[keep].astype(np.int64),
                sid[keep],
                tie[keep],
                t[keep],
                user[order][keep],
                item_ids.size,
            )
        )
    return out[0], out[1], item_ids


# --------------------------------------------------------------------------------------------
# Session-parallel mini-batches (GRU4Rec)
# --------------------------------------------------------------------------------------------


def session_parallel_batches(
    offsets, batch_size: int, seed=None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """GRU4Rec's session-parallel mini-batches (Hidasi et al. 2016), as event positions.

    Args:
        offsets: (S + 1,) session boundaries (``Sessions.offsets``).
        batch_size: the number of lanes wanted; B = min(batch_size, sessions of length >= 2).
        seed: None keeps the sessions' order (by start time); an int or Generator shuffles it.

    Yields:
        ``(inputs, targets, reset)``, each (B,): ``inputs[b]`` the position (into ``items``) of
        the event lane b reads, ``targets[b] = inputs[b] + 1`` the event it must predict,
        ``reset[b]`` True when lane b starts a new session at this step (zero its hidden state
        before the step). Lanes take sessions in order, a lane taking the next unstarted session
        as soon as its own has no further target. A lane with no session left idles with
        ``inputs[b] = targets[b] = -1`` and ``reset[b] = False``. Every event but the last of
        each session appears exactly once as an input, in order within its session.
    """
    offsets = _int_vector("offsets", offsets)
    if offsets.size < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must start at 0 and be non-decreasing")
    batch_size = check_int("batch_size", batch_size, 1)
    order = np.flatnonzero(np.diff(offsets) >= 2)  # length-1 sessions have no target
    if seed is not None:
        order = np.random.default_rng(seed).permutation(order)
    B = min(batch_size, order.size)
    if B == 0:
        return
    pos = offsets[order[:B]].copy()  # the event each lane reads next
    end = offsets[order[:B] + 1]  # one past its session's last event
    nxt = B  # the next unstarted session (index into order)
    reset = np.ones(B, dtype=bool)
    while True:
        active = pos >= 0
        if not active.any():
            return
        inputs = np.where(active, pos, -1)
        targets = np.where(active, pos + 1, -1)
        yield inputs, targets, reset & active
        reset = np.zeros(B, dtype=bool)
        pos = np.where(active, pos + 1, -1)
        for b in np.flatnonzero(active & (pos + 1 >= end)):  # session b has no further target
            if nxt < order.size:
                pos[b], end[b] = offsets[order[nxt]], offsets[order[nxt] + 1]
                reset[b] = True
                nxt += 1
            else:
                pos[b] = -1


# --------------------------------------------------------------------------------------------
# Ranking and metrics
# --------------------------------------------------------------------------------------------


def _exclude_mask(exclude, N: int, I: int) -> np.ndarray | None:
    if exclude is None:
        return None
    if isinstance(exclude, np.ndarray) and exclude.dtype == bool:
        if exclude.shape != (N, I):
            raise ValueError(f"exclude must have shape ({N}, {I}) like scores, got {exclude.shape}")
        return exclude
    if len(exclude) != N:
        raise ValueError(f"exclude must hold {N} lists of item indices, got {len(exclude)}")
    mask = np.zeros((N, I), dtype=bool)
    for n, row in enumerate(exclude):
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        if row.size and (row.min() < 0 or row.max() >= I):
            raise ValueError(f"exclude[{n}] has an item index outside 0..{I - 1}")
        mask[n, row] = True
    return mask


def rank_targets(scores, targets, exclude=None, ties="pessimistic") -> np.ndarray:
    """1-based rank of each target among the items that are not excluded.

    ``rank[n] = 1 + #{j in A_n : s_nj > s_nt} + #{j in A_n, j != t : s_nj = s_nt}`` with
    ``t = targets[n]`` and ``A_n`` the items not excluded in row n (the target is never
    excluded). ``ties="optimistic"`` drops the second count. A higher score is better.

    Args:
        scores: (N, I) finite scores. targets: (N,) item indices in ``0..I-1``.
        exclude: None, a boolean (N, I) mask, or N lists of item indices to leave out.

    Returns:
        (N,) int64 ranks in ``1..I``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, I), got shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.number):
        raise TypeError(f"scores must hold numbers, got dtype {scores.dtype}")
    N, I = scores.shape
    targets = _int_vector("targets", targets, N)
    if N and (targets.min() < 0 or targets.max() >= I):
        raise ValueError(f"targets must be item indices in 0..{I - 1}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (a NaN or inf score has no rank)")
    if ties not in ("pessimistic", "optimistic"):
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic', got {ties!r}")
    s_t = scores[np.arange(N), targets][:, None]
    better = scores > s_t
    if ties == "pessimistic":
        better |= scores == s_t  # the target itself is counted here and subtracted below
    mask = _exclude_mask(exclude, N, I)
    if mask is not None:
        better &= ~mask
        better[np.arange(N), targets] = scores[np.arange(N), targets] > s_t[:, 0]
    else:
        better[np.arange(N), targets] = False
    return 1 + better.sum(axis=1).astype(np.int64)


def _ranks_k(ranks, k):
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if np.any(ranks < 1):
        raise ValueError("ranks are 1-based: every rank must be >= 1")
    return ranks, check_int("k", k, 1)


def hit_rate_at_k(ranks, k: int) -> float:
    """HR@k = mean(rank <= k): the share of targets in the top k (recall@k, one target)."""
    ranks, k = _ranks_k(ranks, k)
    return float(np.mean(ranks <= k))


def mrr_at_k(ranks, k: int) -> float:
    """MRR@k = mean(1[rank <= k] / rank): a target below the top k counts 0."""
    ranks, k = _ranks_k(ranks, k)
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


def hr_mrr(ranks, ks=(10, 20)) -> dict[str, float]:
    """``{"HR@k": ..., "MRR@k": ...}`` for each k."""
    out = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate_at_k(ranks, k)
        out[f"MRR@{k}"] = mrr_at_k(ranks, k)
    return out


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def _check_batch(sessions) -> list[np.ndarray]:
    if isinstance(sessions, Sessions):
        return sessions.as_list()
    if isinstance(sessions, np.ndarray) and sessions.ndim == 1:
        raise TypeError("score a list of sessions (each an array of item indices), not one array")
    out = [_int_vector(f"sessions[{i}]", s) for i, s in enumerate(sessions)]
    return out


class _Baseline:
    """Common part: ``fit(train)`` stores the catalogue size and the item counts (popularity)."""

    n_items: int
    popularity: np.ndarray

    def fit(self, train: Sessions):
        if not isinstance(train, Sessions):
            raise TypeError(f"fit takes training Sessions, got {type(train).__name__}")
        self.n_items = train.n_items
        self.popularity = np.bincount(train.items, minlength=self.n_items).astype(np.float64)
        # a tie-breaker below 1: never overturns a difference of one count
        self._pop_tiebreak = self.popularity / (self.popularity.max(initial=0.0) + 1.0)
        self._fit(train)
        return self

    def _fit(self, train: Sessions):
        pass

    def _check_items(self, s: np.ndarray):
        if not hasattr(self, "n_items"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) first")
        if s.size and (s.min() < 0 or s.max() >= self.n_items):
            raise ValueError(f"item indices must be in 0..{self.n_items - 1}")

    def score_session(self, s: np.ndarray) -> np.ndarray:
        """(L, I) scores: row t for the item after events ``s[: t + 1]``."""
        raise NotImplementedError

    def __call__(self, sessions) -> np.ndarray:
        """(sum L, I) scores for a list of sessions (rows of each session in order)."""
        rows = []
        for s in _check_batch(sessions):
            self._check_items(s)
            rows.append(self.score_session(s))
        if not rows:
            return np.zeros((0, getattr(self, "n_items", 0)))
        return np.concatenate(rows, axis=0)


class Popularity(_Baseline):
    """Score = the item's number of training events, whatever the session (POP)."""

    def score_session(self, s):
        return np.broadcast_to(self.popularity, (s.size, self.n_items)).copy()


class SessionPopularity(_Baseline):
    """Score = how often the item occurred so far in the session, ties broken by popularity (S-POP).

    ``score_t(j) = #{u <= t : s_u = j} + pop_j / (max pop + 1)``. With already-seen items
    excluded from the ranking it ranks like :class:`Popularity` (only repeats differ).
    """

    def score_session(self, s):
        counts = np.zeros((s.size, self.n_items))
        counts[np.arange(s.size), s] = 1.0
        return np.cumsum(counts, axis=0) + self._pop_tiebreak


class MarkovChain(_Baseline):
    """First-order Markov chain: ``score_t(j) = C[s_t, j] + pop_j / (max pop + 1)``.

    ``C[i, j]`` counts the training transitions i -> j (consecutive events of one session). The
    popularity term is below 1, so it only breaks ties: a row with no transitions (an item never
    followed in training) falls back to popularity. ``C`` is a sparse (I, I) matrix.
    """

    def _fit(self, train):
        a, b = _transitions(train)
        self.counts = _sp.csr_matrix((np.ones(a.size), (a, b)), shape=(self.n_items, self.n_items))
        self.counts.sum_duplicates()

    def score_session(self, s):
        return self.counts[s].toarray() + self._pop_tiebreak


def _transitions(train: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """(from, to) item indices of every consecutive pair inside a session."""
    same = np.ones(train.items.size, dtype=bool)
    same[train.offsets[1:-1] - 1] = False  # the last event of a session has no successor
    if same.size:
        same[-1] = False
    pos = np.flatnonzero(same)
    return train.items[pos], train.items[pos + 1]


def _session_item_matrix(train: Sessions) -> _sp.csr_matrix:
    """Binary (S, I) matrix: X[s, i] = 1 when item i occurs in training session s."""
    rows = np.repeat(np.arange(len(train)), train.lengths())
    X = _sp.csr_matrix(
        (np.ones(train.items.size), (rows, train.items)), shape=(len(train), train.n_items)
    )
    X.data[:] = 1.0  # duplicates summed by the constructor: back to 0/1
    return X


class ItemKNN(_Baseline):
    """Item-to-item kNN: ``score_t(j) = sim(s_t, j)``, cosine over training sessions.

    ``sim(i, j) = |S_i ∩ S_j| / sqrt(|S_i| |S_j|)``, S_i the training sessions that contain i
    (Hidasi et al. 2016's Item-KNN; Ludewig & Jannach 2018's IKNN); ``sim(i, i) = 0``. Ties
    (many items never co-occur with s_t) are broken by popularity, scaled by ``1e-9``.
    """

    def _fit(self, train):
        X = _session_item_matrix(train)
        co = (X.T @ X).tocsr()
        norm = np.sqrt(np.asarray(X.sum(axis=0)).ravel())
        norm[norm == 0] = 1.0
        co = _sp.diags(1.0 / norm) @ co @ _sp.diags(1.0 / norm)
        co.setdiag(0.0)
        co.eliminate_zeros()
        self.similarity = co.tocsr()

    def score_session(self, s):
        return self.similarity[s].toarray() + 1e-9 * self._pop_tiebreak


class SessionKNN(_Baseline):
    """Session-based kNN (SKNN, Ludewig & Jannach 2018; Jannach & Ludewig 2017).

    For the items seen so far, as a binary vector ``v``, the similarity to a training session n
    is the cosine ``sim(v, n) = |v ∩ n| / sqrt(|v| |n|)``; the ``k`` most similar training
    sessions (among the ``sample_size`` most recent ones sharing an item with v; None: all)
    vote: ``score(j) = sum over those n of sim(v, n) 1[j in n]``. Ties broken by popularity
    scaled by ``1e-9``.
    """

    def __init__(self, k: int = 100, sample_size: int | None = 500):
        self.k = check_int("k", k, 1)
        self.sample_size = None if sample_size is None else check_int("sample_size", sample_size, 1)

    def _fit(self, train):
        self.X = _session_item_matrix(train)
        self.XT = self.X.T.tocsr()
        self.session_length = np.asarray(self.X.sum(axis=1)).ravel()
        self.session_start = train.start  # sessions are in start order: a larger index is later

    def score_session(self, s):
        L = s.size
        V = np.zeros((L, self.n_items))
        V[np.arange(L), s] = 1.0
        V = (np.cumsum(V, axis=0) > 0).astype(np.float64)  # items seen up to each step
        overlap = (_sp.csr_matrix(V) @ self.XT).toarray()  # (L, S) shared items
        W = np.zeros_like(overlap)  # the neighbours' weights sim(v, n), 0 elsewhere
        size = V.sum(axis=1)
        for t in range(L):
            cand = np.flatnonzero(overlap[t])
            if self.sample_size is not None and cand.size > self.sample_size:
                cand = cand[-self.sample_size :]  # the most recent candidate sessions
            sim = overlap[t, cand] / np.sqrt(size[t] * self.session_length[cand])
            if cand.size > self.k:
                # the k largest similarities; among equal ones the most recent sessions
                top = np.lexsort((-cand, -sim))[: self.k]
                cand, sim = cand[top], sim[top]
            W[t, cand] = sim
        out = np.asarray(self.XT @ W.T).T  # score(j) = sum_n W[t, n] X[n, j]
        return out + 1e-9 * self._pop_tiebreak


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_next_item(
    score_fn: Callable[[list[np.ndarray]], np.ndarray],
    test: Sessions,
    ks: Sequence[int] = (10, 20),
    exclude_seen: bool = True,
    ties_as_set: bool = False,
    batch_sessions: int = 128,
    return_ranks: bool = False,
) -> dict:
    """Next-item HR@k and MRR@k of a scorer over every test event that has a predecessor.

    ``score_fn(list of sessions) -> (sum L, I)``: for each session of L item indices, row t
    scores the item after its first t + 1 events (row L - 1 is not used); the baselines and a
    GRU's per-step outputs fit this. Every target is ranked over the whole catalogue
    (:func:`rank_targets`, pessimistic ties).

    - ``exclude_seen``: items seen earlier in the session are removed from the ranking, except
      the target itself (a repeated item is still ranked).
    - ``ties_as_set``: events sharing a timestamp (one tie group) have no true order, so they are
      predicted together as a set: each member is ranked with the scores after the previous
      tie group's last event, the other members of its group removed from the ranking. The
      events of a session's first tie group are not predicted. With False every event after
      the first is the target of the prefix before it, in the stored (tie) order.

    Returns:
        ``{"HR@k": ..., "MRR@k": ..., "n": number of ranked targets}`` (+ ``"ranks"`` (n,)).
    """
    if not isinstance(test, Sessions):
        raise TypeError(f"test must be Sessions, got {type(test).__name__}")
    batch_sessions = check_int("batch_sessions", batch_sessions, 1)
    ks = [check_int("k", k, 1) for k in ks]
    I = test.n_items
    all_ranks = []
    S = len(test)
    for s0 in range(0, S, batch_sessions):
        idx = range(s0, min(S, s0 + batch_sessions))
        batch = [test.session(s) for s in idx]
        scores = np.asarray(score_fn(batch))
        total = sum(b.size for b in batch)
        if scores.shape != (total, I):
            raise ValueError(
                f"score_fn must return ({total}, {I}) scores for {len(batch)} sessions of "
                f"{total} events, got {scores.shape}"
            )
        rows, targets, masks = [], [], []
        base = 0
        for s, items in zip(idx, batch, strict=True):
            tie = test.tie[test.offsets[s] : test.offsets[s + 1]]
            L = items.size
            if L < 2:
                base += L
                continue
            # seen[u] = the items among items[: u + 1] (a cumulative one-hot, (L, I))
            onehot = np.zeros((L, I), dtype=bool)
            onehot[np.arange(L), items] = True
            seen = np.logical_or.accumulate(onehot, axis=0)
            t = np.arange(1, L)
            if ties_as_set:
                new_group = np.r_[True, tie[1:] != tie[:-1]]
                group = np.cumsum(new_group) - 1
                first = np.flatnonzero(new_group)  # first event of each tie group
                g0 = first[group[t]]
                t, g0 = t[g0 > 0], g0[g0 > 0]  # the session's first group: no prefix
                row = g0 - 1
                members = np.logical_or.reduceat(onehot, first, axis=0)  # (groups, I)
                ex = members[group[t]]  # the other members of the group never compete
                if exclude_seen:
                    ex = ex | seen[row]  # nor the items before the group
            else:
                row = t - 1
                ex = seen[row] if exclude_seen else np.zeros((t.size, I), dtype=bool)
            ex = ex.copy()
            ex[np.arange(t.size), items[t]] = False  # the target itself is always ranked
            rows.append(base + row)
            targets.append(items[t])
            masks.append(ex)
            base += L
        if rows:
            all_ranks.append(
                rank_targets(
                    scores[np.concatenate(rows)], np.concatenate(targets), np.concatenate(masks)
                )
            )
    ranks = np.concatenate(all_ranks) if all_ranks else np.zeros(0, np.int64)
    if ranks.size == 0:
        raise ValueError("no test event to predict (every session has a single event/tie group)")
    out: dict = hr_mrr(ranks, ks)
    out["n"] = int(ranks.size)
    if return_ranks:
        out["ranks"] = ranks
    return out


# --------------------------------------------------------------------------------------------
# Pairwise ranking losses (scores of the target vs sampled negatives)
# --------------------------------------------------------------------------------------------


def _pair_inputs(r_pos, r_neg):
    r_pos = np.asarray(r_pos)
    r_neg = np.asarray(r_neg)
    for name, a, nd in (("r_pos", r_pos, 1), ("r_neg", r_neg, 2)):
        if a.ndim != nd:
            raise ValueError(f"{name} must have {nd} dimension(s), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number):
            raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if r_neg.shape[0] != r_pos.shape[0] or r_neg.shape[1] < 1 or r_pos.shape[0] < 1:
        raise ValueError(
            f"r_neg must be (B, K) with K >= 1 and B = len(r_pos) = {r_pos.shape[0]} >= 1, "
            f"got {r_neg.shape}"
        )
    dtype = np.result_type(r_pos.dtype, r_neg.dtype, np.float32)
    return r_pos.astype(dtype), r_neg.astype(dtype)


def _log_sigmoid(x):
    """log sigma(x) = -log(1 + e^-x), without overflow for large |x|."""
    return -np.logaddexp(0.0, -x)


def _sigmoid(x):
    return np.exp(_log_sigmoid(x))


def bpr_loss(r_pos, r_neg):
    r"""BPR loss (Rendle et al. 2009), averaged over the B examples and K negatives.

    :math:`L = -\frac{1}{BK}\sum_{b=1}^{B}\sum_{k=1}^{K} \log\sigma(r_b - r_{b,k})`: the
    target's score ``r_pos[b]`` should exceed each sampled negative's ``r_neg[b, k]``.

    Args:
        r_pos: (B,) scores of the targets. r_neg: (B, K) scores of K negatives per target.

    Returns:
        ``(loss, cache)``: a float and what :func:`bpr_backward` needs.
    """
    r_pos, r_neg = _pair_inputs(r_pos, r_neg)
    d = r_pos[:, None] - r_neg  # (B, K) score margins
    loss = float(-np.mean(_log_sigmoid(d)))
    return loss, (d,)


def bpr_backward(dloss, cache):
    r"""Gradients of :func:`bpr_loss`: with :math:`d = r_b - r_{b,k}`,
    :math:`\partial L/\partial r_{b,k} = \sigma(-d)/(BK)` and
    :math:`\partial L/\partial r_b = -\sum_k \sigma(-d)/(BK)`.

    Returns:
        ``(dr_pos (B,), dr_neg (B, K))``, scaled by the upstream ``dloss``.
    """
    (d,) = cache
    g = float(dloss) * _sigmoid(-d) / d.size  # dL/dr_neg
    return -g.sum(axis=1), g


def bpr_max_loss(r_pos, r_neg, reg: float = 1.0):
    r"""BPR-max loss (Hidasi & Karatzoglou 2018), averaged over the B examples.

    With :math:`s_{b,k} = \mathrm{softmax}_k(r_{b,k})` (the negatives' weights: the highest
    scored, most confusable negatives count most),

    :math:`L = \frac{1}{B}\sum_b \Big[-\log \sum_k s_{b,k}\,\sigma(r_b - r_{b,k})
    + \lambda \sum_k s_{b,k}\, r_{b,k}^2\Big]`, ``reg`` = :math:`\lambda` (the score
    regulariser that keeps the negatives' scores near 0).

    Computed in log space (logsumexp), so large scores neither overflow nor underflow.

    Returns:
        ``(loss, cache)``.
    """
    r_pos, r_neg = _pair_inputs(r_pos, r_neg)
    if isinstance(reg, bool) or not np.isfinite(reg) or reg < 0:
        raise ValueError(f"reg must be a finite number >= 0, got {reg!r}")
    d = r_pos[:, None] - r_neg
    m = r_neg.max(axis=1, keepdims=True)
    log_s = r_neg - m - np.log(np.exp(r_neg - m).sum(axis=1, keepdims=True))  # log softmax
    a = log_s + _log_sigmoid(d)  # log(s_k sigma_k)
    am = a.max(axis=1, keepdims=True)
    log_A = am[:, 0] + np.log(np.exp(a - am).sum(axis=1))  # log sum_k s_k sigma_k
    s = np.exp(log_s)
    R = (s * r_neg**2).sum(axis=1)
    loss = float(np.mean(-log_A + reg * R))
    return loss, (d, r_neg, s, np.exp(a - log_A[:, None]), R, float(reg))


def bpr_max_backward(dloss, cache):
    r"""Gradients of :func:`bpr_max_loss`.

    With :math:`\sigma_k = \sigma(r_b - r_{b,k})`, :math:`A = \sum_k s_k\sigma_k`,
    :math:`w_k = s_k\sigma_k / A` and :math:`R = \sum_k s_k r_{b,k}^2` (per example b):

    - :math:`\partial(-\log A)/\partial r_b = -\sum_k w_k (1 - \sigma_k)`;
    - :math:`\partial(-\log A)/\partial r_{b,k} = s_k - w_k \sigma_k` (softmax and sigmoid
      terms together);
    - :math:`\partial R/\partial r_{b,k} = s_k (r_{b,k}^2 - R) + 2 s_k r_{b,k}`;

    all divided by B and scaled by ``dloss``. Returns ``(dr_pos (B,), dr_neg (B, K))``.
    """
    d, r_neg, s, w, R, reg = cache
    B = d.shape[0]
    sig = _sigmoid(d)
    scale = float(dloss) / B
    dr_pos = -(w * (1.0 - sig)).sum(axis=1) * scale
    dr_neg = (s - w * sig + reg * (s * (r_neg**2 - R[:, None]) + 2.0 * s * r_neg)) * scale
    return dr_pos, dr_neg
