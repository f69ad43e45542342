"""rnn_ref.torch.speech: the (bi)GRU spoken-digit classifier over MFCC frames (CPU only).

- shapes for every pooling, direction, depth and frame stacking;
- a packed batch gives, in float64, the same logits and the same pooled vector as running each
  utterance alone (no padding at all), for any batch order (hypothesis);
- "last" pooling is the forward state at the last real frame and the backward state at frame 0,
  "mean" is the mean of the states over the real frames (computed here from an unpacked run of
  the utterance alone);
- the padding's amount and value (even NaN) change nothing; neither does the batch size of
  speech_predict_proba;
- stack_frames on a worked example;
- stratified_split: disjoint, covers everything, per-class fractions, seeded;
- training: reproducible with a seed, different across seeds, learns a separable toy task,
  stops early and restores the epoch with the lowest validation loss;
- bad input gets clear errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_ref.torch.speech import (
    SpeechClassifier,
    pad_utterances,
    speech_accuracy,
    speech_predict,
    speech_predict_proba,
    stratified_split,
    train_speech_classifier,
)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _model(D=3, C=4, H=5, seed=0, **kw):
    torch.manual_seed(seed)
    return SpeechClassifier(D, C, hidden_size=H, **kw).double().eval()


def _utterances(lengths, D=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(T, D)) for T in lengths]


CONFIGS = [
    dict(pooling=p, bidirectional=b, num_layers=n, frame_stack=k)
    for p in ("last", "mean")
    for b in (True, False)
    for n, k in ((1, 1), (2, 1), (1, 3))
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_shapes(cfg):
    model = _model(D=3, C=4, H=5, **cfg)
    x, lengths = pad_utterances(_utterances([7, 2, 5]), dtype=torch.float64)
    assert x.shape == (3, 7, 3) and lengths.tolist() == [7, 2, 5]
    with torch.no_grad():
        u = model.features(x, lengths)
        z = model(x, lengths)
    assert u.shape == (3, 5 * (2 if cfg["bidirectional"] else 1))
    assert z.shape == (3, 4)
    assert model.rnn.input_size == 3 * cfg["frame_stack"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_packed_batch_equals_each_utterance_alone(cfg):
    model = _model(**cfg)
    utts = _utterances([9, 1, 4, 9, 6, 2], seed=1)
    x, lengths = pad_utterances(utts, dtype=torch.float64)
    with torch.no_grad():
        batch = model(x, lengths)
        alone = torch.cat([model(torch.as_tensor(u)[None], [len(u)]) for u in utts])
    torch.testing.assert_close(batch, alone, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    k=st.integers(1, 3),
    pooling=st.sampled_from(["last", "mean"]),
    seed=st.integers(0, 2**16),
)
def test_batch_order_and_neighbours_do_not_matter(lengths, k, pooling, seed):
    torch.set_num_threads(1)
    model = _model(frame_stack=k, pooling=pooling, seed=seed % 7)
    utts = _utterances(lengths, seed=seed)
    perm = np.random.default_rng(seed).permutation(len(utts))
    with torch.no_grad():
        x, L = pad_utterances(utts, dtype=torch.float64)
        xp, Lp = pad_utterances([utts[i] for i in perm], dtype=torch.float64)
        torch.testing.assert_close(model(xp, Lp), model(x, L)[perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_last_pooling_is_the_final_states_of_both_directions(num_layers):
    # with two layers, the pooled states are the top layer's
    model = _model(H=4, pooling="last", bidirectional=True, num_layers=num_layers)
    utts = _utterances([6, 3, 5], seed=2)
    x, lengths = pad_utterances(utts, dtype=torch.float64)
    with torch.no_grad():
        u = model.features(x, lengths)
        for n, utt in enumerate(utts):
            out, _ = model.rnn(torch.as_tensor(utt)[None])  # alone, unpacked: (1, T, 2H)
            expected = torch.cat([out[0, -1, :4], out[0, 0, 4:]])  # forward at T-1, backward at 0
            torch.testing.assert_close(u[n], expected, rtol=0, atol=1e-12)


def test_mean_pooling_is_the_mean_over_the_real_frames():
    model = _model(H=4, pooling="mean", bidirectional=True)
    utts = _utterances([6, 3, 5], seed=3)
    x, lengths = pad_utterances(utts, dtype=torch.float64)
    with torch.no_grad():
        u = model.features(x, lengths)
        for n, utt in enumerate(utts):
            out, _ = model.rnn(torch.as_tensor(utt)[None])
            torch.testing.assert_close(u[n], out[0].mean(dim=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_amount_and_value_change_nothing(k, pooling):
    model = _model(frame_stack=k, pooling=pooling)
    utt = torch.as_tensor(_utterances([5], seed=4)[0])
    with torch.no_grad():
        ref = model(utt[None], [5])
        for T, value in ((6, 0.0), (11, 3.0), (20, float("nan")), (8, -1e6)):
            x = torch.full((1, T, 3), value, dtype=torch.float64)
            x[0, :5] = utt
            torch.testing.assert_close(model(x, [5]), ref, rtol=0, atol=1e-12)


def test_predictions_do_not_depend_on_batch_size():
    model = _model(C=3, frame_stack=2).float()
    utts = [u.astype(np.float32) for u in _utterances(list(range(1, 30)), seed=5)]
    p = speech_predict_proba(model, utts)
    assert p.shape == (29, 3) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    for b in (1, 4, 7):
        np.testing.assert_allclose(speech_predict_proba(model, utts, batch_size=b), p, atol=1e-6)
    np.testing.assert_array_equal(speech_predict(model, utts), p.argmax(axis=1))
    y = p.argmax(axis=1)
    assert speech_accuracy(model, utts, y) == 1.0
    assert speech_accuracy(model, utts, (y + 1) % 3) == 0.0


def test_stack_frames_worked_example():
    model = SpeechClassifier(2, 3, hidden_size=2, frame_stack=2)
    x = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            [[7.0, 8.0], [9.0, 9.0], [9.0, 9.0]],  # length 1: the 9s are padding
        ]
    )
    xs, ls = model.stack_frames(x, torch.tensor([3, 1]))
    assert ls.tolist() == [2, 1]
    expected = torch.tensor(
        [
            [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]],
            [[7.0, 8.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    torch.testing.assert_close(xs, expected, rtol=0, atol=0)


def test_stratified_split():
    y = np.repeat(np.arange(4), [10, 20, 3, 2])
    tr, va = stratified_split(y, 0.2, seed=1)
    assert len(np.intersect1d(tr, va)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(y)))
    assert np.bincount(y[va], minlength=4).tolist() == [2, 4, 1, 1]
    tr2, va2 = stratified_split(y, 0.2, seed=1)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, 0.2, seed=2)[1])
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(y, 1.0)


def _toy_task(n=240, seed=0):
    """Class 0: feature 0 rises over the utterance; class 1: it falls; class 2: it is flat with
    a bump in feature 1. Lengths 4-20; noise on every feature."""
    rng = np.random.default_rng(seed)
    utts, labels = [], rng.integers(0, 3, size=n)
    for y in labels:
        T = int(rng.integers(4, 21))
        f = 0.3 * rng.normal(size=(T, 3))
        ramp = np.linspace(-1, 1, T)
        if y == 0:
            f[:, 0] += ramp
        elif y == 1:
            f[:, 0] -= ramp
        else:
            f[T // 2, 1] += 3.0
        utts.append(f.astype(np.float32))
    return utts, labels


def test_training_learns_toy_task_and_restores_best_epoch():
    utts, y = _toy_task()
    torch.manual_seed(0)
    model = SpeechClassifier(3, 3, hidden_size=12)
    h = train_speech_classifier(
        model, utts[:180], y[:180], epochs=25, batch_size=16, lr=1e-2, patience=4, seed=0
    )
    n = h["epochs"]
    assert len(h["loss"]) == len(h["val_loss"]) == len(h["val_acc"]) == n
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    best = h["best_epoch"]
    assert h["val_loss"][best - 1] == min(h["val_loss"])
    if n < 25:  # it stopped early: exactly `patience` epochs without improvement
        assert n - best == 4
    assert speech_accuracy(model, utts[180:], y[180:]) > 0.9
    assert h["cpu_seconds"] > 0 and h["seconds"] > 0
    # the restored weights are those of the best epoch: its validation loss comes back
    tr, va = stratified_split(y[:180], 0.1, seed=0)
    p = speech_predict_proba(model, [utts[i] for i in va])
    val_loss = -np.mean(np.log(p[np.arange(len(va)), y[:180][va]]))
    assert val_loss == pytest.approx(h["val_loss"][best - 1], rel=1e-5)


def test_training_with_explicit_validation_and_without():
    utts, y = _toy_task(n=60, seed=1)
    torch.manual_seed(0)
    model = SpeechClassifier(3, 3, hidden_size=4)
    h = train_speech_classifier(
        model, utts[:40], y[:40], epochs=3, val=(utts[40:], y[40:]), patience=None
    )
    assert h["epochs"] == 3 and len(h["val_acc"]) == 3
    torch.manual_seed(0)
    model = SpeechClassifier(3, 3, hidden_size=4)
    h = train_speech_classifier(model, utts, y, epochs=2, val_fraction=0)
    assert h["epochs"] == 2 and h["val_loss"] == [] and h["best_epoch"] is None


def test_training_is_reproducible_with_a_seed():
    utts, y = _toy_task(n=80, seed=2)

    def run(seed):
        torch.manual_seed(seed)
        model = SpeechClassifier(3, 3, hidden_size=6, dropout=0.3)
        h = train_speech_classifier(model, utts, y, epochs=3, batch_size=8, seed=seed)
        return h, model.state_dict()

    h1, w1 = run(0)
    h2, w2 = run(0)
    h3, w3 = run(1)
    assert h1["loss"] == h2["loss"] and h1["val_loss"] == h2["val_loss"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=0, atol=0)
    assert h1["loss"] != h3["loss"]


def test_bad_input():
    with pytest.raises(ValueError, match="pooling"):
        SpeechClassifier(3, pooling="max")
    with pytest.raises(ValueError, match="frame_stack"):
        SpeechClassifier(3, frame_stack=0)
    with pytest.raises(ValueError, match="num_classes"):
        SpeechClassifier(3, 1)
    with pytest.raises(ValueError, match="input_size"):
        SpeechClassifier(0)
    model = _model(D=3)
    with pytest.raises(ValueError, match=r"\(N, T, D\).*input_size = 3.*\(2, 5, 4\)"):
        model(torch.zeros(2, 5, 4, dtype=torch.float64), [5, 5])
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        model(torch.zeros(5, 3, dtype=torch.float64), [5])
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, 5, 3, dtype=torch.int64), [5])
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(np.zeros((1, 5, 3)), [5])
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.zeros(1, 5, 3, dtype=torch.float64), [6])
    with pytest.raises(ValueError, match=">= 1"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64), [5, 0])
    with pytest.raises(ValueError, match="N = 2"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64), [5])
    utts, y = _toy_task(n=20)
    with pytest.raises(TypeError, match="list of"):
        speech_predict_proba(model, np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="empty"):
        pad_utterances([])
    with pytest.raises(ValueError, match=r"feats\[1\] has no frames"):
        pad_utterances([np.zeros((3, 3)), np.zeros((0, 3))])
    with pytest.raises(ValueError, match=r"feats\[1\] has D = 2"):
        pad_utterances([np.zeros((3, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"feats\[0\] must be a 2-D"):
        pad_utterances([np.zeros(3)])
    with pytest.raises(ValueError, match="the model takes 3"):
        speech_predict_proba(model, [np.zeros((3, 2))])
    m = SpeechClassifier(3, 3, hidden_size=4)
    with pytest.raises(ValueError, match=r"labels must be \(20,\)"):
        train_speech_classifier(m, utts, y[:-1], epochs=1)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        train_speech_classifier(m, utts, y + 1, epochs=1)
    with pytest.raises(TypeError, match="integers"):
        train_speech_classifier(m, utts, y.astype(float), epochs=1)
    with pytest.raises(ValueError, match="patience"):
        train_speech_classifier(m, utts, y, epochs=1, patience=0)
    with pytest.raises(ValueError, match="epochs"):
        train_speech_classifier(m, utts, y, epochs=-1)
