"""rnn_ref.torch.text: the character language model and the sequence classifier (CPU only).

- CharLM: shapes for LSTM and GRU; carrying the (detached) state across chunks gives the same
  logits as running the whole sequence at once; StreamBatcher's chunks continue each other;
- evaluate_bpc equals rnn_ref.numpy.bits_per_char on the model's own logits, and reading in
  chunks does not change it;
- generate is reproducible with a seed, differs across seeds, temperature 0 is greedy, top_k=1
  is greedy;
- a tiny LM overfits a tiny text (bits per character near 0);
- CharClassifier: shapes for every pooling; the same word padded to different lengths (and
  batched with different neighbours) gives the same logits; the padding embedding is zero and
  gets no gradient; train_classifier learns a separable toy task and restores the best epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_ref.datasets import CharVocab
from rnn_ref.torch.text import (
    CharClassifier,
    CharLM,
    StreamBatcher,
    evaluate_bpc,
    generate,
    predict_proba,
    train_char_lm,
    train_classifier,
)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _lm(cell="lstm", V=11, layers=1, seed=0):
    torch.manual_seed(seed)
    return CharLM(V, emb_dim=5, hidden_size=7, num_layers=layers, cell=cell)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_charlm_shapes(cell, layers):
    model = _lm(cell, V=11, layers=layers)
    ids = torch.randint(0, 11, (3, 6))
    logits, state = model(ids)
    assert logits.shape == (3, 6, 11)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (layers, 3, 7)
    if cell == "lstm":
        assert state[1].shape == (layers, 3, 7)


def test_charlm_rejects_bad_input():
    with pytest.raises(ValueError, match="cell"):
        CharLM(5, cell="rnn2")
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        _lm()(torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_equals_whole_sequence(cell):
    model = _lm(cell).double()
    ids = torch.randint(0, 11, (4, 23), generator=torch.Generator().manual_seed(1))
    whole, _ = model(ids)
    state, parts = None, []
    for t in range(0, 23, 5):  # chunks 5, 5, 5, 5, 3
        out, state = model(ids[:, t : t + 5], state)
        parts.append(out)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=0, atol=1e-12)


def test_stream_batcher_chunks_continue_each_other():
    ids = np.arange(103)
    b = StreamBatcher(ids, batch_size=4, seq_len=7)
    assert b.stream_len == 25 and len(b) == 4
    xs, ys = zip(*list(b), strict=True)
    x, y = torch.cat(xs, dim=1), torch.cat(ys, dim=1)
    assert x.shape == (4, 25)
    # row n is the contiguous stream starting at 25 n; targets are the next ids
    np.testing.assert_array_equal(x.numpy(), np.arange(100).reshape(4, 25))
    np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)
    assert [c.shape[1] for c in xs] == [7, 7, 7, 4]
    b2 = StreamBatcher(ids, batch_size=4, seq_len=7, offset=3)
    assert int(next(iter(b2))[0][0, 0]) == 3
    with pytest.raises(ValueError, match="too few"):
        StreamBatcher(np.arange(3), batch_size=4, seq_len=2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_evaluate_bpc_equals_numpy_bits_per_char(cell):
    from rnn_ref.numpy import bits_per_char

    model = _lm(cell)
    ids = np.random.default_rng(0).integers(0, 11, size=200)
    bpc, ppl, logits = evaluate_bpc(model, ids, seq_len=37, return_logits=True)
    assert logits.shape == (199, 11)
    ref_bpc, ref_ppl = bits_per_char(logits[None].astype(np.float64), ids[None, 1:])
    assert bpc == pytest.approx(ref_bpc, rel=1e-5)
    assert ppl == pytest.approx(ref_ppl, rel=1e-5)
    assert ppl == pytest.approx(2**bpc)
    # the logits are those of one pass over the whole stream: chunking changes nothing
    with torch.no_grad():
        whole = model(torch.as_tensor(ids[None, :-1]))[0][0].numpy()
    np.testing.assert_allclose(logits, whole, rtol=0, atol=1e-5)
    assert evaluate_bpc(model, ids, seq_len=500)[0] == pytest.approx(bpc, rel=1e-5)


def test_evaluate_bpc_untrained_is_near_log2_V():
    torch.manual_seed(0)
    model = CharLM(16, emb_dim=4, hidden_size=4)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    bpc, ppl = evaluate_bpc(model, np.arange(50) % 16)
    assert bpc == pytest.approx(4.0) and ppl == pytest.approx(16.0)


def test_generate_reproducible_and_seeded():
    model = _lm()
    a = generate(model, [1, 2, 3], 40, temperature=1.0, seed=5)
    b = generate(model, [1, 2, 3], 40, temperature=1.0, seed=5)
    c = generate(model, [1, 2, 3], 40, temperature=1.0, seed=6)
    assert a == b and a != c
    assert len(a) == 40 and all(0 <= i < 11 for i in a)
    g1 = torch.Generator().manual_seed(5)
    assert generate(model, [1, 2, 3], 40, generator=g1) == a
    greedy = generate(model, [1, 2, 3], 20, temperature=0)
    assert generate(model, [1, 2, 3], 20, top_k=1, seed=9) == greedy
    assert generate(model, [1, 2, 3], 20, temperature=1e-4, seed=3) == greedy
    # top_k restricts every draw to the k most probable ids (checked on the first one)
    with torch.no_grad():
        first = model(torch.tensor([[1, 2, 3]]))[0][0, -1]
    top3 = set(torch.topk(first, 3).indices.tolist())
    assert {generate(model, [1, 2, 3], 1, top_k=3, seed=s)[0] for s in range(30)} <= top3
    with pytest.raises(ValueError, match="empty"):
        generate(model, [], 5)


def test_tiny_lm_overfits_tiny_text():
    text = "the cat sat on the mat. " * 8
    vocab = CharVocab(text)
    ids = np.array(vocab.encode(text))
    torch.manual_seed(0)
    model = CharLM(len(vocab), emb_dim=8, hidden_size=32)
    hist = train_char_lm(model, ids, steps=150, batch_size=2, seq_len=24, lr=2e-2, seed=0)
    assert hist["steps"] == 150 and len(hist["loss"]) == 150
    assert hist["loss"][-1] < 0.1 * hist["loss"][0]
    bpc, _ = evaluate_bpc(model, ids)
    assert bpc < 0.35  # the text repeats: after the first sentence it is predictable
    prompt = vocab.encode("the c")
    assert vocab.decode(generate(model, prompt, 18, temperature=0)) == "at sat on the mat."


def test_train_char_lm_reproducible_and_records_validation():
    ids = np.random.default_rng(0).integers(0, 11, size=400)
    runs = []
    for _ in range(2):
        model = _lm()
        h = train_char_lm(
            model, ids, 12, batch_size=4, seq_len=10, seed=3, val_ids=ids[:50], eval_every=5
        )
        runs.append(h)
    assert runs[0]["loss"] == runs[1]["loss"]
    assert [s for s, _ in runs[0]["val"]] == [5, 10, 12]
    assert 0 < runs[0]["epochs"] < 2


# ---------------------------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_shapes_and_padding_invariance(pooling, cell, bidirectional):
    torch.manual_seed(0)
    model = (
        CharClassifier(
            12, 4, emb_dim=5, hidden_size=6, cell=cell, pooling=pooling, bidirectional=bidirectional
        )
        .double()
        .eval()
    )
    word = [5, 7, 9, 4]
    logits = []
    for T in (4, 6, 15):
        ids = torch.zeros(1, T, dtype=torch.int64)
        ids[0, :4] = torch.tensor(word)
        with torch.no_grad():
            logits.append(model(ids, torch.tensor([4])))
    assert logits[0].shape == (1, 4)
    for other in logits[1:]:
        torch.testing.assert_close(other, logits[0], rtol=0, atol=1e-12)
    # in a batch with longer and shorter neighbours, the word gets the same logits
    batch = torch.tensor([[3, 3, 3, 3, 3, 3, 3, 3], word + [0] * 4, [8, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        out = model(batch, torch.tensor([8, 4, 1]))
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[1:2], logits[0], rtol=0, atol=1e-12)


def test_classifier_without_packing_depends_on_padding():
    """What the packing protects against: the same GRU run over the padded batch."""
    torch.manual_seed(0)
    model = CharClassifier(12, 3, emb_dim=5, hidden_size=6).eval()
    ids = torch.tensor([[5, 7, 9] + [0] * 9])
    with torch.no_grad():
        packed = model(ids, torch.tensor([3]))
        out, _ = model.rnn(model.embedding(ids))
        unpacked = model.out(out[:, -1])
    assert (packed - unpacked).abs().max() > 1e-3


def test_padding_embedding_is_zero_and_gets_no_gradient():
    torch.manual_seed(0)
    model = CharClassifier(12, 3, emb_dim=5, hidden_size=6)
    assert torch.count_nonzero(model.embedding.weight[0]) == 0
    ids = torch.tensor([[5, 7, 0, 0], [1, 2, 3, 4]])
    model(ids, torch.tensor([2, 4])).sum().backward()
    assert torch.count_nonzero(model.embedding.weight.grad[0]) == 0


def test_classifier_rejects_bad_pooling():
    with pytest.raises(ValueError, match="pooling"):
        CharClassifier(5, 2, pooling="first")


def test_train_classifier_learns_toy_task_and_restores_best():
    # class = whether id 3 occurs in the sequence; lengths 1..8
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(4, 10, size=rng.integers(1, 9))) for _ in range(400)]
    labels = rng.integers(0, 2, size=400)
    for s, y in zip(seqs, labels, strict=True):
        if y:
            s[rng.integers(0, len(s))] = 3
    torch.manual_seed(0)
    model = CharClassifier(10, 2, emb_dim=8, hidden_size=16, pooling="max")
    hist = train_classifier(
        model,
        seqs[:300],
        labels[:300],
        epochs=6,
        batch_size=32,
        lr=1e-2,
        seed=0,
        val=(seqs[300:], labels[300:]),
    )
    assert len(hist["loss"]) == 6 and len(hist["val_acc"]) == 6
    assert hist["loss"][-1] < hist["loss"][0]
    probs = predict_proba(model, seqs[300:])
    assert probs.shape == (100, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    acc = float(np.mean(probs.argmax(1) == labels[300:]))
    assert acc == pytest.approx(max(hist["val_acc"]))
    assert hist["val_acc"][hist["best_epoch"] - 1] == max(hist["val_acc"])
    assert acc > 0.9
    # batching does not change the probabilities (packing)
    np.testing.assert_allclose(predict_proba(model, seqs[300:], batch_size=7), probs, atol=1e-6)
