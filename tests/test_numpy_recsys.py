"""rnn_ref.numpy.recsys: sessions, the time split, session-parallel batches, ranking metrics, the
baselines, evaluation and the BPR / BPR-max losses.

- sessions: a hand-made log split at the stated gap, tie orders, item indexing; hypothesis: every
  event lands in exactly one session, in time order, gaps inside a session <= gap;
- time split on MovieLens-100k: no training event after the cut, no test event before it, test
  items all seen in training, minimum lengths;
- batches (hypothesis): every event but a session's last is an input exactly once, in order per
  session, targets are the next event, resets exactly at session starts, idle lanes marked -1;
- ranks (hypothesis) in [1, I], a brute-force count, the excluded-items rule (never the target),
  pessimistic ties; HR monotone in k, MRR <= HR; known values;
- baselines: Markov and kNN against brute force on a tiny log; popularity fallback;
- evaluation: known ranks on a tiny log, ties as a set; the leaky "item" tie order inflates a
  Markov chain's HR@20 and MRR@20 on MovieLens-100k (direction asserted, size printed);
- losses: BPR and BPR-max values and gradients against torch autograd in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_ref.numpy.recsys import (
    ItemKNN,
    MarkovChain,
    Popularity,
    SessionKNN,
    SessionPopularity,
    Sessions,
    bpr_backward,
    bpr_loss,
    bpr_max_backward,
    bpr_max_loss,
    evaluate_next_item,
    hit_rate_at_k,
    hr_mrr,
    make_sessions,
    mrr_at_k,
    rank_targets,
    session_parallel_batches,
    time_split,
)

# ------------------------------------------------------------------------------------ sessions

# user 1: t=0,10 | gap | 5000, 5000 (tie), 5100 ; user 2: 20, 3620 (gap 3600 exactly: same)
LOG_USER = [2, 1, 1, 1, 1, 1, 2]
LOG_ITEM = [30, 50, 10, 20, 40, 10, 40]
LOG_TIME = [20, 5000, 0, 10, 5000, 5100, 3620]


def test_make_sessions_known_log():
    s, ids = make_sessions(LOG_USER, LOG_ITEM, LOG_TIME, gap=3600, tie_order="item")
    assert ids.tolist() == [10, 20, 30, 40, 50]
    # sessions by start time: user 1 @0, user 2 @20, user 1 @5000
    assert len(s) == 3 and s.lengths().tolist() == [2, 2, 3]
    assert s.user.tolist() == [1, 2, 1] and s.start.tolist() == [0, 20, 5000]
    assert ids[s.items].tolist() == [10, 20, 30, 40, 40, 50, 10]  # tie 40 < 50 by item id
    assert s.timestamp.tolist() == [0, 10, 20, 3620, 5000, 5000, 5100]
    assert s.tie[4] == s.tie[5] and len(set(s.tie.tolist())) == 6
    assert s.n_items == 5
    f, _ = make_sessions(LOG_USER, LOG_ITEM, LOG_TIME, gap=3600, tie_order="file")
    assert ids[f.items].tolist()[4:6] == [50, 40]  # file order inside the tie
    g, _ = make_sessions(LOG_USER, LOG_ITEM, LOG_TIME, gap=3599)
    assert len(g) == 4  # 3600 s > 3599: user 2's events now split


def test_random_tie_order_is_seeded_and_shuffles():
    user = np.zeros(40, int)
    item = np.arange(40)
    time = np.zeros(40, int)
    a, _ = make_sessions(user, item, time, tie_order="random", seed=1)
    b, _ = make_sessions(user, item, time, tie_order="random", seed=1)
    c, _ = make_sessions(user, item, time, tie_order="random", seed=2)
    assert np.array_equal(a.items, b.items) and not np.array_equal(a.items, c.items)
    assert sorted(a.items.tolist()) == list(range(40)) and not np.array_equal(a.items, item)


@given(
    n=st.integers(1, 60),
    n_users=st.integers(1, 5),
    gap=st.integers(0, 50),
    tie_order=st.sampled_from(["random", "file", "item"]),
    seed=st.integers(0, 10),
)
def test_make_sessions_properties(n, n_users, gap, tie_order, seed):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, n)
    item = rng.integers(100, 110, n)
    time = rng.integers(0, 200, n)
    s, ids = make_sessions(user, item, time, gap=gap, tie_order=tie_order, seed=seed)
    assert s.items.size == n and s.offsets[-1] == n and np.all(s.lengths() >= 1)
    # the same multiset of (user, item, time) events
    got = sorted(zip(np.repeat(s.user, s.lengths()), ids[s.items], s.timestamp, strict=True))
    assert got == sorted(zip(user, item, time, strict=True))
    assert np.all(np.diff(s.start) >= 0)
    for k in range(len(s)):
        t = s.timestamp[s.offsets[k] : s.offsets[k + 1]]
        assert t[0] == s.start[k] and np.all(np.diff(t) >= 0) and np.all(np.diff(t) <= gap)
    # consecutive sessions of one user are separated by more than the gap
    for u in np.unique(user):
        ks = np.flatnonzero(s.user == u)
        ends = s.timestamp[s.offsets[ks + 1] - 1]
        assert np.all(s.start[ks][1:] - ends[:-1] > gap)


def test_sessions_validation():
    with pytest.raises(ValueError, match="offsets must start at 0"):
        Sessions(np.array([0, 1]), np.array([0, 1]), [0], [0], [0, 1])
    with pytest.raises(ValueError, match="like the other columns"):
        make_sessions([1, 2], [1], [0, 0])
    with pytest.raises(ValueError, match="tie_order"):
        make_sessions([1], [1], [0], tie_order="time")
    with pytest.raises(TypeError, match="integers"):
        make_sessions([1], ["a"], [0])
    with pytest.raises(ValueError, match="test_fraction"):
        time_split([1, 1], [1, 2], [0, 1], test_fraction=1.0)


# --------------------------------------------------------------------------------- time split


@pytest.fixture(scope="module")
def ml():
    from rnn_ref.datasets import load_interactions

    return load_interactions("ml-100k")


@pytest.fixture(scope="module")
def ml_split(ml):
    return time_split(ml.user, ml.item, ml.timestamp, test_fraction=0.2, gap=3600)


def test_time_split_ml100k(ml, ml_split):
    train, test, ids = ml_split
    t_cut = np.quantile(ml.timestamp, 0.8, method="lower")
    assert train.timestamp.max() < t_cut <= test.timestamp.min()
    assert train.n_items == test.n_items == ids.size
    assert set(test.items.tolist()) <= set(train.items.tolist())
    assert train.lengths().min() >= 2 and test.lengths().min() >= 2
    # roughly the requested share of events goes to test
    share = test.items.size / (train.items.size + test.items.size)
    assert 0.15 < share < 0.25
    # the split keeps the sessions whole: each test session is a complete make_sessions session
    # (less its unseen items); check event counts add up to at most the data set
    assert train.items.size + test.items.size <= len(ml)
    print(f"\nML-100k gap 3600 s: train {train}, test {test}")


# ------------------------------------------------------------------------------------ batches


@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=15),
    batch_size=st.integers(1, 6),
    seed=st.one_of(st.none(), st.integers(0, 5)),
)
def test_session_parallel_batches_properties(lengths, batch_size, seed):
    offsets = np.r_[0, np.cumsum(lengths)]
    seen_inputs = []
    lane_session = {}
    usable = [k for k, n in enumerate(lengths) if n >= 2]
    session_of = np.repeat(np.arange(len(lengths)), lengths)
    width = min(batch_size, len(usable))
    started = []
    for inputs, targets, reset in session_parallel_batches(offsets, batch_size, seed=seed):
        assert inputs.shape == targets.shape == reset.shape == (width,)
        assert reset.dtype == bool
        active = inputs >= 0
        assert np.all(targets[~active] == -1) and not np.any(reset[~active])
        assert np.all(targets[active] == inputs[active] + 1)
        for b in np.flatnonzero(active):
            p, k = inputs[b], session_of[inputs[b]]
            assert session_of[targets[b]] == k  # the target is in the same session
            # reset exactly when the lane starts a session (its first event)
            assert reset[b] == (p == offsets[k])
            if reset[b]:
                started.append(k)
            else:
                assert lane_session[b] == k and seen_inputs[-1] is not None
                assert p - 1 in seen_inputs  # the previous event of the session came before
            lane_session[b] = k
            seen_inputs.append(p)
    # every event but each session's last, exactly once
    want = [p for k in usable for p in range(offsets[k], offsets[k + 1] - 1)]
    assert sorted(seen_inputs) == want
    assert sorted(started) == usable
    if seed is None:
        assert started == usable  # sessions are taken in order


def test_session_parallel_batches_known():
    # sessions [0 1 2] [3 4] [5] [6 7 8 9]; 2 lanes
    out = list(session_parallel_batches([0, 3, 5, 6, 10], 2))
    inputs = np.array([o[0] for o in out])
    reset = np.array([o[2] for o in out])
    assert inputs.tolist() == [[0, 3], [1, 6], [-1, 7], [-1, 8]]
    assert reset.tolist() == [[True, True], [False, True], [False, False], [False, False]]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(session_parallel_batches([0, 2], 0))
    assert list(session_parallel_batches([0, 1, 2], 4)) == []  # nothing to predict


# ------------------------------------------------------------------------------------ ranking


def test_rank_known_values():
    scores = np.array([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]])
    assert rank_targets(scores, [2, 0]).tolist() == [3, 4]  # pessimistic: ties rank below
    assert rank_targets(scores, [2, 0], ties="optimistic").tolist() == [2, 1]
    # excluding item 1 (seen) lifts target 2; the target itself is never excluded
    assert rank_targets(scores, [2, 0], exclude=[[1], [0, 1]]).tolist() == [2, 3]
    mask = np.zeros((2, 4), bool)
    mask[0, 1] = mask[1, 0] = True
    assert rank_targets(scores, [2, 0], exclude=mask).tolist() == [2, 4]
    r = np.array([1, 3, 12, 25])
    assert hit_rate_at_k(r, 10) == 0.5 and mrr_at_k(r, 10) == pytest.approx((1 + 1 / 3) / 4)
    assert hr_mrr(r, (20,)) == {"HR@20": 0.75, "MRR@20": pytest.approx((1 + 1 / 3 + 1 / 12) / 4)}
    with pytest.raises(ValueError, match="finite"):
        rank_targets([[np.nan, 1.0]], [0])
    with pytest.raises(ValueError, match="targets must be item indices"):
        rank_targets([[0.0, 1.0]], [2])
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        rank_targets([[0.0, 1.0]], [0], exclude=np.zeros((2, 2), bool))


@given(
    N=st.integers(1, 6),
    I=st.integers(1, 12),
    levels=st.integers(1, 4),
    seed=st.integers(0, 100),
    ks=st.lists(st.integers(1, 15), min_size=2, max_size=4),
)
def test_rank_properties(N, I, levels, seed, ks):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (N, I)).astype(float)  # few levels: many ties
    targets = rng.integers(0, I, N)
    exclude = rng.random((N, I)) < 0.3
    ranks = rank_targets(scores, targets, exclude=exclude)
    assert ranks.dtype == np.int64 and np.all((ranks >= 1) & (ranks <= I))
    for n in range(N):  # brute force
        t = targets[n]
        others = [j for j in range(I) if j != t and not exclude[n, j]]
        assert ranks[n] == 1 + sum(scores[n, j] >= scores[n, t] for j in others)
    assert np.all(ranks <= rank_targets(scores, targets))  # excluding never hurts
    assert np.all(rank_targets(scores, targets, exclude, "optimistic") <= ranks)
    ks = sorted(ks)
    hr = [hit_rate_at_k(ranks, k) for k in ks]
    mrr = [mrr_at_k(ranks, k) for k in ks]
    assert hr == sorted(hr) and mrr == sorted(mrr)
    assert all(m <= h + 1e-12 for m, h in zip(mrr, hr, strict=True))
    assert hit_rate_at_k(ranks, I) == 1.0


# ---------------------------------------------------------------------------------- baselines

# three training sessions over 5 items, one test session
TRAIN = [[0, 1, 2], [1, 2, 3], [0, 2], [4]]
TEST = [[0, 2, 1, 3]]


def _sessions(lists, n_items=5):
    lens = [len(x) for x in lists]
    E = sum(lens)
    return Sessions(
        np.concatenate(lists), np.r_[0, np.cumsum(lens)], np.arange(len(lists)),
        np.arange(len(lists)), np.arange(E), np.arange(E), n_items,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    return _sessions(TRAIN), _sessions(TEST)


def test_popularity_and_markov_brute_force(tiny):
    train, _ = tiny
    pop = np.zeros(5)
    for s in TRAIN:
        for i in s:
            pop[i] += 1
    assert Popularity().fit(train)([[3, 1]]).tolist() == [pop.tolist()] * 2
    C = np.zeros((5, 5))
    for s in TRAIN:
        for a, b in zip(s[:-1], s[1:], strict=False):
            C[a, b] += 1
    m = MarkovChain().fit(train)
    got = m([[0, 3, 4]])
    tb = pop / (pop.max() + 1)
    np.testing.assert_allclose(got, C[[0, 3, 4]] + tb)
    # rows without transitions (3 and 4 are never followed) fall back to popularity order
    assert np.argsort(-got[2]).tolist() == np.argsort(-pop, kind="stable").tolist()
    sp = SessionPopularity().fit(train)([[4, 4, 0]])
    np.testing.assert_allclose(sp[1], np.eye(5)[4] * 2 + tb)


def test_item_knn_brute_force(tiny):
    train, _ = tiny
    sets = [set(s) for s in TRAIN]
    sim = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            si = {k for k, s in enumerate(sets) if i in s}
            sj = {k for k, s in enumerate(sets) if j in s}
            if i != j and si and sj:
                sim[i, j] = len(si & sj) / np.sqrt(len(si) * len(sj))
    m = ItemKNN().fit(train)
    np.testing.assert_allclose(m.similarity.toarray(), sim, atol=1e-12)
    np.testing.assert_allclose(m([[2, 0]]), sim[[2, 0]], atol=1e-8)


@pytest.mark.parametrize("k", [1, 2, 10])
def test_session_knn_brute_force(tiny, k):
    train, _ = tiny
    m = SessionKNN(k=k, sample_size=None).fit(train)
    prefix = [0, 2, 1]
    got = m([prefix])
    for t in range(3):
        v = set(prefix[: t + 1])
        sims = [len(v & set(s)) / np.sqrt(len(v) * len(set(s))) for s in TRAIN]
        # the k most similar sessions with a shared item; equal similarities: the later session
        cand = sorted((i for i in range(4) if sims[i] > 0), key=lambda i: (-sims[i], -i))[:k]
        want = np.zeros(5)
        for i in cand:
            for j in set(TRAIN[i]):
                want[j] += sims[i]
        np.testing.assert_allclose(got[t], want, atol=1e-8)


# --------------------------------------------------------------------------------- evaluation


def test_evaluate_known_ranks(tiny):
    train, test = tiny
    m = MarkovChain().fit(train)
    out = evaluate_next_item(m, test, ks=(1, 2), return_ranks=True)
    # by hand: pop = [2, 2, 3, 1, 1], C[0] = [0,1,1,0,0] -> target 2 ties with 1 (1.5 vs 1.5 + ...)
    scores = m([TEST[0]])
    want = []
    for t in range(1, 4):
        seen = set(TEST[0][:t]) - {TEST[0][t]}
        s = scores[t - 1]
        want.append(
            1 + sum(s[j] >= s[TEST[0][t]] for j in range(5) if j != TEST[0][t] and j not in seen)
        )
    assert out["ranks"].tolist() == want and out["n"] == 3
    assert out["HR@1"] == np.mean(np.array(want) <= 1)


def test_evaluate_ties_as_set():
    # one test session whose last two events share a timestamp
    test = Sessions(np.array([0, 1, 2]), np.array([0, 3]), [0], [0], [0, 1, 1], [0, 5, 5], 4)
    seen_calls = []

    def scorer(batch):
        seen_calls.append([b.tolist() for b in batch])
        # row t: prefers item 3, then 2, then 1 (same whatever the prefix)
        return np.tile([0.0, 1.0, 2.0, 3.0], (sum(b.size for b in batch), 1))

    out = evaluate_next_item(scorer, test, ks=(1, 3), ties_as_set=True, return_ranks=True)
    # both members predicted from row 0; each ranked without the other member and the seen item 0
    assert out["ranks"].tolist() == [2, 2]
    seq = evaluate_next_item(scorer, test, ks=(1, 3), return_ranks=True)
    assert seq["ranks"].tolist() == [3, 2]  # in order: 1 competes with 2 and 3; 2 with 3 only
    with pytest.raises(ValueError, match="score_fn must return"):
        evaluate_next_item(lambda b: np.zeros((1, 4)), test)


def test_leaky_tie_order_inflates_markov(ml):
    """Ordering tied events by item id leaks: the next item of a tie has a larger id, which a
    Markov chain learns from training ties. Measured against the seeded random order."""
    res = {}
    for order in ("random", "item"):
        train, test, _ = time_split(ml.user, ml.item, ml.timestamp, tie_order=order, seed=0)
        res[order] = evaluate_next_item(MarkovChain().fit(train), test, ks=(20,))
    hr = res["item"]["HR@20"] / res["random"]["HR@20"] - 1
    mrr = res["item"]["MRR@20"] / res["random"]["MRR@20"] - 1
    print(
        f"\nMarkov on ML-100k: HR@20 random {res['random']['HR@20']:.4f} vs item "
        f"{res['item']['HR@20']:.4f} (+{100 * hr:.0f} %); MRR@20 {res['random']['MRR@20']:.4f} "
        f"vs {res['item']['MRR@20']:.4f} (+{100 * mrr:.0f} %)"
    )
    assert hr > 0.1 and mrr > 0.1


# ------------------------------------------------------------------------------------- losses


def _torch_losses(r_pos, r_neg, reg):
    import torch

    torch.set_num_threads(1)
    rp = torch.tensor(r_pos, dtype=torch.float64, requires_grad=True)
    rn = torch.tensor(r_neg, dtype=torch.float64, requires_grad=True)
    bpr = -torch.nn.functional.logsigmoid(rp[:, None] - rn).mean()
    s = torch.softmax(rn, dim=1)
    bmax = (
        -torch.log((s * torch.sigmoid(rp[:, None] - rn)).sum(1)) + reg * (s * rn**2).sum(1)
    ).mean()
    out = []
    for loss in (bpr, bmax):
        gp, gn = torch.autograd.grad(loss, (rp, rn))
        out.append((loss.item(), gp.numpy(), gn.numpy()))
    return out


@given(
    B=st.integers(1, 5),
    K=st.integers(1, 6),
    scale=st.sampled_from([0.1, 1.0, 5.0]),
    reg=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_losses_match_torch_autograd(B, K, scale, reg, seed):
    rng = np.random.default_rng(seed)
    r_pos = rng.standard_normal(B) * scale
    r_neg = rng.standard_normal((B, K)) * scale
    (tb, tbp, tbn), (tm, tmp, tmn) = _torch_losses(r_pos, r_neg, reg)
    loss, cache = bpr_loss(r_pos, r_neg)
    dp, dn = bpr_backward(1.0, cache)
    assert loss == pytest.approx(tb, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(dp, tbp, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dn, tbn, rtol=1e-10, atol=1e-13)
    loss, cache = bpr_max_loss(r_pos, r_neg, reg=reg)
    dp, dn = bpr_max_backward(2.0, cache)
    assert loss == pytest.approx(tm, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dp, 2 * tmp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dn, 2 * tmn, rtol=1e-9, atol=1e-12)


def test_losses_known_values_and_stability():
    # equal scores: sigma(0) = 1/2, so BPR = log 2 and BPR-max (no reg) = log 2
    loss, _ = bpr_loss(np.zeros(3), np.zeros((3, 4)))
    assert loss == pytest.approx(np.log(2))
    loss, cache = bpr_max_loss(np.zeros(3), np.zeros((3, 4)), reg=0.0)
    assert loss == pytest.approx(np.log(2))
    # huge margins neither overflow nor give NaN
    for fn in (bpr_loss, bpr_max_loss):
        loss, cache = fn(np.array([1e4, -1e4]), np.array([[-1e4, 0.0], [1e4, 3.0]]))
        assert np.isfinite(loss)
    loss, cache = bpr_max_loss(np.array([800.0]), np.array([[-900.0, 700.0]]), reg=0.0)
    dp, dn = bpr_max_backward(1.0, cache)
    assert np.all(np.isfinite(dp)) and np.all(np.isfinite(dn))
    with pytest.raises(ValueError, match="r_neg must be"):
        bpr_loss(np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reg must be"):
        bpr_max_loss(np.zeros(1), np.zeros((1, 1)), reg=-1.0)


@given(
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=6),
    I=st.integers(2, 8),
    exclude_seen=st.booleans(),
    ties_as_set=st.booleans(),
    seed=st.integers(0, 100),
)
def test_evaluate_matches_a_per_event_loop(lengths, I, exclude_seen, ties_as_set, seed):
    rng = np.random.default_rng(seed)
    E = sum(lengths)
    items = rng.integers(0, I, E)
    offsets = np.r_[0, np.cumsum(lengths)]
    # tie groups: runs of equal timestamps inside each session
    time = np.concatenate([np.sort(rng.integers(0, 3, n)) for n in lengths])
    tie = np.cumsum(np.r_[True, (time[1:] != time[:-1]) | np.isin(np.arange(1, E), offsets)])
    test = Sessions(items, offsets, np.zeros(len(lengths)), np.zeros(len(lengths)), tie, time, I)
    table = rng.integers(0, 3, (I, I)).astype(float)  # score(j | last item i), many ties

    def scorer(batch):
        return np.concatenate([table[b] for b in batch])

    want = []
    for s in range(len(lengths)):
        it, tg = items[offsets[s] : offsets[s + 1]], tie[offsets[s] : offsets[s + 1]]
        for t in range(1, it.size):
            g0 = t
            if ties_as_set:
                g0 = int(np.flatnonzero(tg == tg[t])[0])
                if g0 == 0:
                    continue
            members = set(it[tg == tg[t]].tolist()) if ties_as_set else set()
            ex = (set(it[: max(g0, t)].tolist()) | members) if exclude_seen else members
            ex.discard(int(it[t]))
            sc = table[it[g0 - 1]]
            want.append(1 + sum(sc[j] >= sc[it[t]] for j in range(I) if j != it[t] and j not in ex))
    if not want:
        with pytest.raises(ValueError, match="no test event"):
            evaluate_next_item(
                scorer, test, ks=(1,), exclude_seen=exclude_seen, ties_as_set=ties_as_set
            )
        return
    kw = dict(exclude_seen=exclude_seen, ties_as_set=ties_as_set)
    got = evaluate_next_item(scorer, test, ks=(1,), return_ranks=True, batch_sessions=2, **kw)
    assert got["ranks"].tolist() == want
