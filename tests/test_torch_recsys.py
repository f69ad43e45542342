"""rnn_ref.torch.recsys: GRU4Rec, its ranking losses, training and scoring.

- GRU4Rec: shapes (embedding and one-hot input, stacked layers); its scores are torch's own GRU
  run over the embedded items, then the read-out; a reset really isolates sessions (the scores
  of a session do not depend on what its lane held before, and do without the reset);
  ``step`` is ``forward`` one step at a time;
- session_scores: grouping and padding do not change any session's scores (each equals the
  session run alone), for any ``max_steps``;
- losses: bpr_loss and bpr_max_loss equal rnn_ref.numpy.recsys's in float64, values and
  gradients (autograd against the NumPy backward); a mask equals dropping the masked negatives;
- sampled_negatives follows counts ** alpha and never draws an item of count 0;
- time_tail: a time split of the training sessions (tail after head, tail items seen in head);
- training on a synthetic Markov log beats popularity (cross-entropy and BPR-max), is
  reproducible per seed, and keeps the best validation epoch;
- clear errors on bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_ref.numpy import recsys as nrs
from rnn_ref.torch.recsys import (
    GRU4Rec,
    bpr_loss,
    bpr_max_loss,
    sampled_negatives,
    score_next,
    session_scores,
    time_tail,
    train_gru4rec,
)

torch.set_num_threads(1)


def markov_log(n_sessions=300, I=30, seed=0, p_next=0.8):
    """Sessions over I items: after item i comes i + 1 (mod I) with probability p_next, else a
    uniformly random item; users are distinct, sessions one hour apart in time."""
    rng = np.random.default_rng(seed)
    user, item, ts = [], [], []
    for s in range(n_sessions):
        L = int(rng.integers(4, 12))
        i = int(rng.integers(I))
        for t in range(L):
            user.append(s)
            item.append(i)
            ts.append(10_000 * s + t)
            i = (i + 1) % I if rng.random() < p_next else int(rng.integers(I))
    return np.array(user), np.array(item), np.array(ts)


@pytest.fixture(scope="module")
def markov_split():
    user, item, ts = markov_log()
    train, test, _ = nrs.time_split(user, item, ts, test_fraction=0.2)
    return train, test


def test_shapes_embedding_one_hot_layers():
    for emb, layers in ((8, 1), (None, 2)):
        m = GRU4Rec(12, embedding_dim=emb, hidden_size=5, num_layers=layers)
        x = torch.randint(0, 12, (3, 4))
        scores, h = m(x)
        assert scores.shape == (3, 4, 12)
        assert h.shape == (layers, 3, 5)
        s1, h1 = m.step(x[:, 0])
        assert s1.shape == (3, 12) and h1.shape == (layers, 3, 5)
        assert torch.allclose(s1, scores[:, 0], atol=1e-6)


def test_scores_are_torch_gru_then_readout():
    torch.manual_seed(0)
    m = GRU4Rec(10, embedding_dim=4, hidden_size=6).double()
    x = torch.randint(0, 10, (2, 5))
    h0 = torch.randn(1, 2, 6, dtype=torch.float64)
    ref_gru = torch.nn.GRU(4, 6, batch_first=True).double()
    ref_gru.load_state_dict(m.gru.state_dict(), strict=True)
    out, h_ref = ref_gru(m.embedding.weight[x], h0)
    want = out @ m.out.weight.T + m.out.bias
    scores, h = m(x, h0)
    assert torch.allclose(scores, want, atol=1e-12)
    assert torch.allclose(h, h_ref, atol=1e-12)
    # one-hot input is the same as an identity embedding
    m1 = GRU4Rec(10, embedding_dim=None, hidden_size=6).double()
    ref1 = torch.nn.GRU(10, 6, batch_first=True).double()
    ref1.load_state_dict(m1.gru.state_dict(), strict=True)
    out1, _ = ref1(torch.eye(10, dtype=torch.float64)[x])
    assert torch.allclose(m1(x)[0], m1.out(out1), atol=1e-12)


def test_reset_isolates_sessions():
    torch.manual_seed(1)
    m = GRU4Rec(20, embedding_dim=6, hidden_size=7).double().eval()
    a = torch.tensor([3, 5, 7, 9])  # the lane's previous session
    b = torch.tensor([2, 11, 4])  # the session that takes the lane
    lane = torch.cat([a, b])[None]
    reset = torch.zeros(1, 7, dtype=torch.bool)
    reset[0, 4] = True
    scores, _ = m(lane, reset=reset)
    alone, _ = m(b[None])
    assert torch.allclose(scores[0, 4:], alone[0], atol=1e-12)
    # without the reset the previous session leaks into b's scores: the test can fail
    leaky, _ = m(lane)
    assert (leaky[0, 4:] - alone[0]).abs().max() > 1e-3
    # a reset at the first step discards any carried state
    h0 = torch.randn(1, 1, 7, dtype=torch.float64)
    first = torch.zeros(1, 3, dtype=torch.bool)
    first[0, 0] = True
    assert torch.allclose(m(b[None], h0, first)[0], alone, atol=1e-12)
    # step() by step with a reset flag gives the same scores
    h = None
    rows = []
    for t in range(7):
        s, h = m.step(lane[:, t], h, reset[:, t])
        rows.append(s)
    assert torch.allclose(torch.stack(rows, 1)[0, 4:], alone[0], atol=1e-12)


def test_session_scores_grouping_does_not_matter():
    torch.manual_seed(2)
    m = GRU4Rec(15, embedding_dim=5, hidden_size=4).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 15, size=n) for n in (1, 5, 2, 9, 3, 3)]
    want = np.concatenate([m(torch.as_tensor(s)[None])[0][0].detach().numpy() for s in seqs])
    for max_steps in (1, 7, 10_000):
        got = session_scores(m, seqs, max_steps=max_steps)
        assert got.shape == (sum(s.size for s in seqs), 15)
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert m.training is False
    m.train()
    score_next(m)(seqs)
    assert m.training is True  # scoring puts the mode back


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_numpy_float64(seed):
    rng = np.random.default_rng(seed)
    B, K = 5, 7
    r_pos_np, r_neg_np = rng.normal(size=B) * 2, rng.normal(size=(B, K)) * 2
    r_pos = torch.tensor(r_pos_np, requires_grad=True)
    r_neg = torch.tensor(r_neg_np, requires_grad=True)
    loss = bpr_loss(r_pos, r_neg)
    want, cache = nrs.bpr_loss(r_pos_np, r_neg_np)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    loss.backward()
    dp, dn = nrs.bpr_backward(1.0, cache)
    np.testing.assert_allclose(r_pos.grad.numpy(), dp, atol=1e-12)
    np.testing.assert_allclose(r_neg.grad.numpy(), dn, atol=1e-12)
    for reg in (0.0, 0.5, 2.0):
        r_pos.grad, r_neg.grad = None, None
        loss = bpr_max_loss(r_pos, r_neg, reg=reg)
        want, cache = nrs.bpr_max_loss(r_pos_np, r_neg_np, reg=reg)
        np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
        loss.backward()
        dp, dn = nrs.bpr_max_backward(1.0, cache)
        np.testing.assert_allclose(r_pos.grad.numpy(), dp, atol=1e-12)
        np.testing.assert_allclose(r_neg.grad.numpy(), dn, atol=1e-12)


def test_loss_formulas_and_mask():
    r_pos = torch.tensor([1.0, -0.5], dtype=torch.float64)
    r_neg = torch.tensor([[0.0, 2.0, 9.0], [1.0, -1.0, 3.0]], dtype=torch.float64)
    sig = torch.sigmoid
    # BPR-max of one row by hand: softmax weights over the negatives
    s = torch.softmax(r_neg[0], 0)
    by_hand = -torch.log((s * sig(r_pos[0] - r_neg[0])).sum()) + 0.3 * (s * r_neg[0] ** 2).sum()
    assert torch.isclose(bpr_max_loss(r_pos[:1], r_neg[:1], reg=0.3), by_hand)
    # a mask equals dropping the masked negatives, row by row
    mask = torch.tensor([[True, True, False], [False, True, True]])
    for fn in (bpr_loss, lambda p, n, mask=None: bpr_max_loss(p, n, 0.7, mask)):
        rows = [fn(r_pos[b : b + 1], r_neg[b : b + 1][:, mask[b]]) for b in range(2)]
        assert torch.isclose(fn(r_pos, r_neg, mask=mask), (rows[0] + rows[1]) / 2)


def test_sampled_negatives_follow_counts_power():
    counts = np.array([0, 1, 4, 16, 81])
    g = torch.Generator().manual_seed(0)
    n = 200_000
    for alpha in (0.0, 0.5, 1.0):
        draws = sampled_negatives(counts, n, alpha, g).numpy()
        assert draws.shape == (n,) and draws.dtype == np.int64
        assert not np.any(draws == 0)  # count 0: never a negative
        p = np.where(counts > 0, counts.astype(float) ** alpha, 0.0)
        p /= p.sum()
        freq = np.bincount(draws, minlength=5) / n
        assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12), (freq, p)


def test_time_tail_is_a_time_split(markov_split):
    train, _ = markov_split
    head, tail = time_tail(train, 0.2)
    assert 0.1 * len(train) < len(tail) < 0.3 * len(train)
    head_end = head.timestamp[head.offsets[1:] - 1].max()
    assert tail.start.min() > head_end
    assert set(np.unique(tail.items)) <= set(np.unique(head.items))
    assert head.n_items == tail.n_items == train.n_items
    assert np.all(head.lengths() >= 2) and np.all(tail.lengths() >= 2)


@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_training_beats_popularity_on_markov_log(markov_split, loss):
    train, test = markov_split
    head, val = time_tail(train, 0.15)
    pop = nrs.evaluate_next_item(nrs.Popularity().fit(train), test, ks=(5,))
    kw = dict(loss=loss, epochs=6, batch_size=16, lr=1e-2, n_sample=16, seed=0, patience=None)
    m = GRU4Rec(train.n_items, embedding_dim=16, hidden_size=32)
    hist = train_gru4rec(m, head, val, **kw)
    assert len(hist["loss"]) == 6 and hist["loss"][-1] < hist["loss"][0]
    res = nrs.evaluate_next_item(score_next(m), test, ks=(5, 20))
    # the chain's next item (p = 0.8 + 0.2 / 30) is learnable; popularity knows nothing of it
    assert res["HR@5"] > 0.7 > pop["HR@5"] + 0.4
    assert res["MRR@5"] > 0.5 > pop["MRR@5"] + 0.3
    # the weights of the best validation epoch are the ones kept
    best = hist["val"][hist["best_epoch"] - 1]["MRR@20"]
    assert best == max(v["MRR@20"] for v in hist["val"])
    assert nrs.evaluate_next_item(score_next(m), val)["MRR@20"] == pytest.approx(best, abs=1e-9)
    if loss == "cross-entropy":  # reproducible per seed
        m2 = GRU4Rec(train.n_items, embedding_dim=16, hidden_size=32)
        torch.manual_seed(123)  # train_gru4rec seeds torch itself, but not the initial weights
        m.load_state_dict(m2.state_dict())
        m3 = GRU4Rec(train.n_items, embedding_dim=16, hidden_size=32)
        m3.load_state_dict(m2.state_dict())
        kw["epochs"] = 2
        h2 = train_gru4rec(m2, head, val, **kw)
        h3 = train_gru4rec(m3, head, val, **kw)
        assert h2["loss"] == h3["loss"]
        for k, v in m2.state_dict().items():
            assert torch.equal(v, m3.state_dict()[k])


def test_errors(markov_split):
    train, _ = markov_split
    m = GRU4Rec(train.n_items, embedding_dim=4, hidden_size=3)
    with pytest.raises(ValueError, match="items must be"):
        m(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer item indices"):
        m(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[0, I ="):
        m(torch.full((1, 2), train.n_items))
    with pytest.raises(ValueError, match="reset must be"):
        m(torch.zeros(2, 3, dtype=torch.int64), reset=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="h0 must be"):
        m(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="dropout"):
        GRU4Rec(5, dropout=1.0)
    with pytest.raises(ValueError, match="num_items"):
        GRU4Rec(1)
    with pytest.raises(ValueError, match="r_pos must be"):
        bpr_loss(torch.zeros(3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no negative"):
        bpr_max_loss(torch.zeros(1), torch.zeros(1, 2), mask=torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="counts"):
        sampled_negatives(np.array([-1, 2]), 3)
    with pytest.raises(ValueError, match="loss must be"):
        train_gru4rec(m, train, loss="top1")
    with pytest.raises(ValueError, match="metric"):
        train_gru4rec(m, train, metric="AUC")
    with pytest.raises(TypeError, match="Sessions"):
        train_gru4rec(m, train.as_list())
    with pytest.raises(ValueError, match="epochs"):
        train_gru4rec(m, train, epochs=-1)
    with pytest.raises(ValueError, match="catalogue"):
        session_scores(m, [np.array([0, train.n_items])])
    with pytest.raises(TypeError, match="list of sessions"):
        session_scores(m, np.array([0, 1]))
    with pytest.raises(ValueError, match="fraction"):
        time_tail(train, 1.5)
    small = GRU4Rec(3)
    with pytest.raises(ValueError, match="items but the model"):
        train_gru4rec(small, train)


def test_bpr_training_runs_and_learns(markov_split):
    train, test = markov_split
    m = GRU4Rec(train.n_items, embedding_dim=8, hidden_size=16)
    hist = train_gru4rec(m, train, None, loss="bpr", epochs=3, batch_size=16, lr=1e-2, n_sample=8)
    assert hist["best_epoch"] is None and hist["val"] == [] and len(hist["loss"]) == 3
    assert np.all(np.isfinite(hist["loss"])) and hist["loss"][-1] < hist["loss"][0]
    pop = nrs.evaluate_next_item(nrs.Popularity().fit(train), test, ks=(5,))
    assert nrs.evaluate_next_item(score_next(m), test, ks=(5,))["HR@5"] > pop["HR@5"] + 0.2
