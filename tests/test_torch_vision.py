"""rnn_ref.torch.vision: the row-by-row classifier, the CRNN with CTC, and the seed's model.

- RowClassifier: shapes for LSTM and GRU, its logits are the read-out of the last state of
  torch's own LSTM run over the rows, training reduces the loss and is reproducible per seed,
  the best validation epoch is kept;
- CRNN: output shape and lengths from the widths (with and without width pooling); the logits
  of a strip's real columns do not depend on the padding after it (the masks and the packing);
  crnn_ctc_loss equals rnn_ref.numpy.ctc.ctc_loss in float64 (torch's "mean" reduction);
  CTC training on a tiny set reduces the loss, is reproducible per seed and learns to read it;
  decode_strips shifts classes back to digits, greedy and beam agree on a peaked output;
- FlattenLSTM (the seed's model): as written, the batch becomes the time axis (one row of
  logits for the whole batch, and an image's result depends on the others); "one" gives one
  frame per image; "repeat" gives T frames;
- clear errors on bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnn_ref.numpy import ctc_loss
from rnn_ref.numpy.vision import compose_digit_strings, load_digit_images, split_glyphs
from rnn_ref.torch.vision import (
    CRNN,
    FlattenLSTM,
    RowClassifier,
    crnn_ctc_loss,
    decode_strips,
    predict_rows,
    strip_log_probs,
    train_crnn,
    train_row_classifier,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_digit_images()


@pytest.fixture(scope="module")
def tiny_strings(digits):
    images, labels = digits
    tr, _, _ = split_glyphs(labels)
    pool = tr[:40]
    return compose_digit_strings(images, labels, pool, 48, np.random.default_rng(0), max_len=3)


# --- row by row ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_row_classifier_is_last_state_readout(cell):
    torch.manual_seed(0)
    model = RowClassifier(hidden_size=12, cell=cell)
    x = torch.randn(5, 8, 8)
    logits = model(x)
    assert logits.shape == (5, 10)
    _, h = model.rnn(x)
    h = h[0] if cell == "lstm" else h
    torch.testing.assert_close(logits, h[-1] @ model.out.weight.T + model.out.bias)
    # the last state reads the rows in order: reversing them changes the result
    assert not torch.allclose(model(x.flip(1)), logits)


def test_row_classifier_trains_and_is_reproducible(digits):
    images, labels = digits
    x, y = images[:300], labels[:300]

    def run(seed):
        torch.manual_seed(seed)
        model = RowClassifier(hidden_size=32, cell="gru")
        hist = train_row_classifier(
            model, x, y, epochs=6, lr=1e-2, seed=seed, val=(images[300:400], labels[300:400])
        )
        return model, hist

    m1, h1 = run(0)
    m2, h2 = run(0)
    assert h1["loss"][-1] < 0.6 * h1["loss"][0]
    assert h1["loss"] == h2["loss"] and h1["val_acc"] == h2["val_acc"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert h1["best_epoch"] == 1 + int(np.argmax(h1["val_acc"]))
    acc = np.mean(predict_rows(m1, images[300:400]).argmax(1) == labels[300:400])
    assert acc == max(h1["val_acc"]) and acc > 0.5  # the best epoch's weights are back
    p = predict_rows(m1, images[:7])
    assert p.shape == (7, 10) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(1), 1.0)
    _, h3 = run(1)
    assert h3["loss"] != h1["loss"]


def test_row_classifier_errors():
    with pytest.raises(ValueError, match="cell"):
        RowClassifier(cell="rnn")
    with pytest.raises(ValueError, match=r"x must be \(N, T, 8\)"):
        RowClassifier()(torch.zeros(2, 8, 7))
    with pytest.raises(ValueError, match="epochs"):
        train_row_classifier(RowClassifier(), np.zeros((2, 8, 8)), [0, 1], epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        train_row_classifier(RowClassifier(), np.zeros((2, 8, 8)), [0, 1], epochs=1, batch_size=0)
    with pytest.raises(ValueError, match=r"y must be \(2,\)"):
        train_row_classifier(RowClassifier(), np.zeros((2, 8, 8)), [0, 1, 1], epochs=1)


# --- CRNN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width_pool", [1, 2])
def test_crnn_shapes_and_lengths(width_pool):
    torch.manual_seed(0)
    model = CRNN(channels=(4, 6), hidden_size=5, width_pool=width_pool)
    widths = torch.tensor([20, 9, 31])
    logits, lengths = model(torch.rand(3, 8, 31), widths)
    assert logits.shape == (3, 31 // width_pool, 11)
    assert lengths.tolist() == (widths // width_pool).tolist()
    # the LSTM's outputs are zero past each length, so the logits there are the bias
    for n in range(3):
        L = int(lengths[n])
        torch.testing.assert_close(logits[n, L:], model.out.bias.expand(logits.shape[1] - L, -1))
    # (N, 1, H, W) is accepted too
    torch.testing.assert_close(model(torch.rand(3, 1, 8, 31), widths)[1], lengths)


@pytest.mark.parametrize("width_pool", [1, 2])
def test_crnn_padding_does_not_change_the_real_columns(width_pool):
    torch.manual_seed(1)
    model = CRNN(channels=(4, 6), hidden_size=5, width_pool=width_pool)
    rng = np.random.default_rng(0)
    strip = rng.random((8, 17))
    alone, L = model(torch.tensor(strip[None]), torch.tensor([17]))
    for pad in (1, 2, 30):
        padded = np.concatenate([strip, np.zeros((8, pad))], axis=1)[None]
        out, L2 = model(torch.tensor(padded), torch.tensor([17]))
        assert L2.tolist() == L.tolist()
        torch.testing.assert_close(out[:, : int(L[0])], alone[:, : int(L[0])], rtol=0, atol=1e-6)
    # without the width, the padding is read as ink-free columns and changes the backward LSTM
    out_full, _ = model(torch.tensor(padded), torch.tensor([17 + 30]))
    assert not torch.allclose(out_full[:, : int(L[0])], alone[:, : int(L[0])], atol=1e-4)


def test_crnn_ctc_loss_equals_numpy_ctc():
    rng = np.random.default_rng(0)
    N, T, C = 4, 12, 11
    logits = torch.tensor(rng.normal(size=(N, T, C)) * 2)
    targets = np.array([[3, 3, 1, -1], [0, -1, -1, -1], [9, 8, 7, 6], [5, 5, -1, -1]])
    tl = np.array([3, 1, 4, 2])
    lengths = np.array([12, 5, 9, 7])
    loss = crnn_ctc_loss(logits, lengths, targets, tl, reduction="none")
    ref, _ = ctc_loss(logits.numpy(), np.where(targets >= 0, targets + 1, 0), lengths, tl, blank=0)
    np.testing.assert_allclose(loss.numpy(), ref, rtol=1e-10)
    mean = crnn_ctc_loss(logits, lengths, targets, tl)
    np.testing.assert_allclose(float(mean), np.mean(ref / tl), rtol=1e-10)


def test_crnn_ctc_training_reduces_loss_and_reads(tiny_strings):
    strips, widths, targets, lengths = tiny_strings

    def run(seed):
        torch.manual_seed(seed)
        model = CRNN(channels=(8, 16), hidden_size=32, width_pool=2)
        hist = train_crnn(
            model,
            strips,
            widths,
            targets,
            lengths,
            epochs=40,
            batch_size=8,
            lr=2e-2,
            seed=seed,
            val=tiny_strings,
        )
        return model, hist

    model, hist = run(0)
    _, again = run(0)
    assert hist["loss"] == again["loss"] and hist["val_exact"] == again["val_exact"]
    assert hist["loss"][-1] < 0.3 * hist["loss"][0]
    hyps = decode_strips(model, strips, widths)
    refs = [list(targets[i, : lengths[i]]) for i in range(len(lengths))]
    exact = np.mean([h == r for h, r in zip(hyps, refs, strict=True)])
    assert exact == max(hist["val_exact"]) and exact > 0.5  # it reads its training strings
    beam = decode_strips(model, strips, widths, method="beam", beam_width=4)
    assert np.mean([h == r for h, r in zip(beam, refs, strict=True)]) >= exact - 0.1
    lps = strip_log_probs(model, strips[:3], widths[:3])
    assert [lp.shape for lp in lps] == [(w // 2, 11) for w in widths[:3]]
    np.testing.assert_allclose(np.exp(lps[0]).sum(1), 1.0)


class _Fixed(nn.Module):
    """A stand-in model that returns given logits, to test the decoding by itself."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, strips, widths):
        w = torch.as_tensor(widths)
        return self.logits[: len(w), : int(w.max())], w


def test_decode_shifts_classes_back_to_digits():
    # frames: blank, class 1 (digit 0), class 1, blank, class 1, class 10 (digit 9), blank
    path = [0, 1, 1, 0, 1, 10, 0]
    logits = torch.full((2, 7, 11), -10.0)
    logits[0, torch.arange(7), torch.tensor(path)] = 10.0
    logits[1, torch.arange(7), torch.tensor([3] * 7)] = 10.0
    model = _Fixed(logits)
    strips, widths = np.zeros((2, 8, 7)), np.array([7, 3])
    for method in ("greedy", "beam"):
        assert decode_strips(model, strips, widths, method=method) == [[0, 0, 9], [2]]
    with pytest.raises(ValueError, match="method"):
        decode_strips(model, strips, widths, method="viterbi")


def test_crnn_errors():
    model = CRNN(channels=(2, 2), hidden_size=3)
    with pytest.raises(ValueError, match="height must be divisible by 4"):
        CRNN(height=6)
    with pytest.raises(ValueError, match="width_pool"):
        CRNN(width_pool=3)
    with pytest.raises(ValueError, match="num_classes"):
        CRNN(num_classes=1)
    with pytest.raises(ValueError, match="strips must be"):
        model(torch.zeros(2, 8), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="8 pixels high"):
        model(torch.zeros(2, 12, 10), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"widths must be \(2,\)"):
        model(torch.zeros(2, 8, 10), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match=r"widths must be in \[1, W = 10\]"):
        model(torch.zeros(2, 8, 10), torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="widths must be >= width_pool = 2"):
        CRNN(channels=(2, 2), hidden_size=3, width_pool=2)(
            torch.zeros(2, 8, 10), torch.tensor([1, 5])
        )
    with pytest.raises(ValueError, match="widths must be integers"):
        model(torch.zeros(2, 8, 10), torch.tensor([1.0, 2.0]))
    logits = torch.zeros(2, 5, 11)
    with pytest.raises(ValueError, match=r"targets must be \(2, S\)"):
        crnn_ctc_loss(logits, [5, 5], np.zeros((3, 2), int), [1, 1])
    with pytest.raises(ValueError, match="target_lengths must be in"):
        crnn_ctc_loss(logits, [5, 5], np.zeros((2, 2), int), [1, 3])
    with pytest.raises(ValueError, match="integers"):
        crnn_ctc_loss(logits, [5, 5], np.zeros((2, 2)), [1, 1])


# --- the seed's model ----------------------------------------------------------------------------


def test_flatten_lstm_as_written_mixes_the_batch():
    torch.manual_seed(0)
    model = FlattenLSTM((8, 20), num_classes=10, sequence="as_written")
    x = torch.rand(6, 8, 20)
    out = model(x)
    assert out.shape == (1, 10)  # one row of logits for a batch of six images
    with pytest.raises(ValueError, match="batch_size"):
        nn.functional.cross_entropy(out, torch.zeros(6, dtype=torch.int64))
    # the result depends on the other images of the batch and on their order
    assert not torch.allclose(model(x.flip(0)), out)
    assert not torch.allclose(model(x[:5]), out)


def test_flatten_lstm_one_and_repeat():
    torch.manual_seed(0)
    x = torch.rand(4, 8, 20)
    one = FlattenLSTM((8, 20), sequence="one")
    out = one(x)
    assert out.shape == (4, 1, 11)
    torch.testing.assert_close(one(x[1:2]), out[1:2])  # each image alone
    rep = FlattenLSTM((8, 20), sequence="repeat", T=7)
    assert rep(x).shape == (4, 7, 11)
    with pytest.raises(ValueError, match="sequence"):
        FlattenLSTM((8, 20), sequence="two")
    with pytest.raises(ValueError, match="T >= 1"):
        FlattenLSTM((8, 20), sequence="repeat")
