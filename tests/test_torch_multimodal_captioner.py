"""rnn_ref.torch.multimodal_captioner: the image captioner of chapter 16 (digit strips -> words).

- tokens: caption_tokens / tokens_to_digits values and round trip;
- shapes of the encoder's keys and mask and of the captioner's logits and attention, for the
  BiGRU and the projection encoders and both attentions;
- the equations: the teacher-forced logits equal chapter 9's functional decoder_step run with
  the decoder's parameters from h_0 = tanh(W_init mean(keys) + b_init);
- masking: a strip's keys, logits and attention do not change with the padding after it (zeros
  or garbage), and padded columns get attention exactly 0; attention rows sum to one;
- decoding: batched greedy = NumPy greedy_decode through captioner_step_fn = beam search of
  width 1; <pad>/<bos> are never emitted;
- training: the teacher-forced loss decreases, is reproducible per seed, learns a tiny set;
- caption_scores (exact match, word error rate) on a known case; attention_maps shapes;
- clear errors on bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnn_ref.numpy import greedy_decode
from rnn_ref.numpy.vision import compose_digit_strings, load_digit_images, split_glyphs
from rnn_ref.torch.multimodal_captioner import (
    BOS,
    CAPTION_TOKENS,
    EOS,
    PAD,
    ColumnEncoder,
    ImageCaptioner,
    attention_maps,
    caption_scores,
    caption_strips,
    caption_tokens,
    captioner_step_fn,
    tokens_to_digits,
    train_captioner,
)
from rnn_ref.torch.seq2seq import decoder_step

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def strings():
    images, labels = load_digit_images()
    tr, _, _ = split_glyphs(labels)
    return compose_digit_strings(images, labels, tr[:40], 48, np.random.default_rng(0), max_len=3)


def small(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    args = dict(channels=(4, 8), key_size=12, hidden_size=10, emb_dim=6)
    args.update(kw)
    return ImageCaptioner(**args)


# --- tokens ---------------------------------------------------------------------------------------


def test_caption_tokens_values():
    y, lengths = caption_tokens(np.array([[3, 1, 4], [0, -1, -1]]), np.array([3, 1]))
    assert y.tolist() == [[BOS, 6, 4, 7, EOS], [BOS, 3, EOS, PAD, PAD]]
    assert lengths.tolist() == [5, 3]
    assert [CAPTION_TOKENS[t] for t in y[0]] == ["<bos>", "three", "one", "four", "<eos>"]
    assert tokens_to_digits(y[0, 1:]) == [3, 1, 4]
    assert tokens_to_digits([5, 12, EOS, 1, 1]) == [2, 9]  # whatever follows <eos> is ignored
    assert tokens_to_digits([EOS]) == []


def test_caption_tokens_errors():
    with pytest.raises(ValueError, match=r"targets\[0, 1\] = 10"):
        caption_tokens(np.array([[1, 10]]), np.array([2]))
    with pytest.raises(ValueError, match="target_lengths"):
        caption_tokens(np.array([[1, 2]]), np.array([3]))
    with pytest.raises(ValueError, match="not a word"):
        tokens_to_digits([4, BOS, EOS])


# --- shapes and equations -------------------------------------------------------------------------


@pytest.mark.parametrize("rnn", [True, False])
@pytest.mark.parametrize("width_pool", [1, 2])
def test_encoder_shapes(strings, rnn, width_pool):
    enc = ColumnEncoder(channels=(4, 8), key_size=6, width_pool=width_pool, rnn=rnn)
    strips, widths = strings[0][:5], strings[1][:5]
    keys, mask = enc(strips, widths)
    W = strips.shape[-1] // width_pool
    assert keys.shape == (5, W, 6) and mask.shape == (5, W) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == (widths // width_pool).tolist()
    assert torch.all(keys[~mask] == 0)


@pytest.mark.parametrize("attention", ["additive", "dot"])
@pytest.mark.parametrize("encoder_rnn", [True, False])
def test_forward_is_chapter9_decoder_from_mean_key(strings, attention, encoder_rnn):
    model = small(attention=attention, encoder_rnn=encoder_rnn, hidden_size=12)
    strips, widths, targets, lengths = (a[:6] for a in strings)
    y, _ = caption_tokens(targets, lengths)
    logits, weights = model(strips, widths, y[:, :-1], return_attention=True)
    T = y.shape[1] - 1
    assert logits.shape == (6, T, len(CAPTION_TOKENS)) and weights.shape == (
        6,
        T,
        strips.shape[-1] // 2,
    )

    keys, mask = model.encoder(strips, widths)
    mean = torch.stack([keys[n, : int(mask[n].sum())].mean(0) for n in range(6)])
    h = torch.tanh(mean @ model.bridge.weight.T + model.bridge.bias)
    params = model.decoder.params()
    y_t = torch.as_tensor(y)
    for t in range(T):
        z, h, w = decoder_step(y_t[:, t], h, keys, mask, params, attention)
        torch.testing.assert_close(logits[:, t], z, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weights[:, t], w, atol=1e-6, rtol=1e-5)


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder_rnn", [True, False])
def test_padding_changes_nothing(strings, encoder_rnn):
    model = small(encoder_rnn=encoder_rnn).eval()
    strips, widths, targets, lengths = (a[:8] for a in strings)
    y, _ = caption_tokens(targets, lengths)
    wide = np.concatenate([strips, np.zeros((8, 8, 10))], axis=2)
    garbage = wide.copy()
    rng = np.random.default_rng(1)
    for n in range(8):  # anything at all in the padding columns
        garbage[n, :, widths[n] :] = rng.uniform(0, 1, (8, wide.shape[2] - widths[n]))
    with torch.no_grad():
        ref_logits, ref_w = model(strips, widths, y[:, :-1], return_attention=True)
        for x in (wide, garbage):
            logits, w = model(x, widths, y[:, :-1], return_attention=True)
            torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(w[..., : ref_w.shape[-1]], ref_w, atol=1e-6, rtol=1e-5)
            assert torch.all(w[..., ref_w.shape[-1] :] == 0)
        for n in range(8):  # each strip alone, cropped to its width
            alone, w1 = model(
                strips[n : n + 1, :, : widths[n]],
                widths[n : n + 1],
                y[n : n + 1, :-1],
                return_attention=True,
            )
            torch.testing.assert_close(alone[0], ref_logits[n], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(w1[0], ref_w[n, :, : widths[n] // 2], atol=1e-6, rtol=1e-5)
    padded = torch.arange(ref_w.shape[-1])[None, :] >= torch.as_tensor(widths)[:, None] // 2
    assert padded.any() and torch.all(ref_w.permute(0, 2, 1)[padded] == 0)


def test_attention_rows_sum_to_one(strings):
    model = small()
    strips, widths, targets, lengths = (a[:7] for a in strings)
    y, _ = caption_tokens(targets, lengths)
    with torch.no_grad():
        _, w = model(strips, widths, y[:, :-1], return_attention=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
    assert torch.all(w >= 0)
    caps = [[1, 2], [], [7, 7, 7, 0], [3], [9], [0, 0], [5, 4, 3, 2, 1, 0]]
    maps = attention_maps(model, strips, widths, caps)
    for m, c, W in zip(maps, caps, widths, strict=True):
        assert m.shape == (len(c) + 1, W // 2) and m.dtype == np.float64
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-6)
    for n in (0, 2, 6):  # the batched maps are each strip's own teacher-forced weights
        y, _ = caption_tokens(np.array([caps[n]]), [len(caps[n])])
        with torch.no_grad():
            _, w1 = model(strips[n : n + 1, :, : widths[n]], widths[n : n + 1], y[:, :-1], True)
        np.testing.assert_allclose(maps[n], w1[0].double().numpy(), atol=1e-6)


# --- decoding -------------------------------------------------------------------------------------


def test_greedy_equals_step_fn_greedy_and_beam_width_one(strings):
    model = small(seed=3)
    train_captioner(model, *strings, epochs=3, batch_size=16, lr=1e-2, seed=0)
    strips, widths = strings[0][:16], strings[1][:16]
    tokens, weights = model.greedy(strips, widths, max_len=6)
    assert tokens.shape == (16, 6) and weights.shape == (16, 6, strips.shape[-1] // 2)
    assert not torch.any((tokens == PAD) | (tokens == BOS))
    greedy = caption_strips(model, strips, widths, "greedy", max_len=6)
    beam1 = caption_strips(model, strips, widths, "beam", beam_width=1, max_len=6)
    assert greedy == beam1
    for n in range(16):
        step_fn, h0 = captioner_step_fn(model, strips[n], widths[n])
        toks, _ = greedy_decode(step_fn, h0, BOS, EOS, 6)
        assert toks == tokens[n, : len(toks)].tolist()
        assert tokens_to_digits(toks) == greedy[n]
        log_probs, _ = step_fn(BOS, h0)
        assert log_probs[PAD] == -np.inf and log_probs[BOS] == -np.inf
        np.testing.assert_allclose(np.exp(log_probs).sum(), 1.0, atol=1e-12)


def test_training_loss_decreases_reproducibly_and_learns(strings):
    kw = dict(seed=1, channels=(8, 16), key_size=32, hidden_size=32, attention="dot", emb_dim=8)
    again = train_captioner(small(**kw), *strings, epochs=3, batch_size=8, lr=2e-2, seed=0)
    model = small(**kw)
    loss = train_captioner(model, *strings, epochs=30, batch_size=8, lr=2e-2, seed=0)["loss"]
    assert again["loss"] == loss[:3]  # same seeds, same run
    assert loss[0] > 1.5 and loss[-1] < 0.1 * loss[0]
    refs = [list(t[:n]) for t, n in zip(strings[2], strings[3], strict=True)]
    scores = caption_scores(refs, caption_strips(model, strings[0], strings[1]))
    assert scores["exact"] > 0.9 and scores["wer"] < 0.05


def test_best_validation_epoch_is_kept(strings):
    model = small()
    val = tuple(a[:12] for a in strings)
    h = train_captioner(model, *strings, epochs=4, batch_size=16, lr=1e-2, seed=0, val=val)
    assert len(h["val_exact"]) == 4 and h["best_epoch"] == int(np.argmax(h["val_exact"])) + 1
    refs = [list(t[:n]) for t, n in zip(val[2], val[3], strict=True)]
    got = caption_scores(refs, caption_strips(model, val[0], val[1]))["exact"]
    assert got == pytest.approx(max(h["val_exact"]))


def test_caption_scores_known_case():
    s = caption_scores([[3, 1, 4], [1], [2, 2]], [[3, 1], [1], [2, 7, 2]])
    assert s["exact"] == pytest.approx(1 / 3)
    assert s["wer"] == pytest.approx(2 / 6)  # one deletion, one insertion over 6 words


# --- errors ---------------------------------------------------------------------------------------


def test_errors(strings):
    strips, widths, targets, lengths = (a[:4] for a in strings)
    with pytest.raises(ValueError, match="key_size must be even"):
        ColumnEncoder(key_size=7)
    with pytest.raises(ValueError, match="key_size == hidden_size"):
        ImageCaptioner(key_size=12, hidden_size=10, attention="dot")
    model = small()
    with pytest.raises(ValueError, match="y_in must be"):
        model(strips, widths, np.ones((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="widths"):
        model(strips, widths + 100, np.ones((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="method"):
        caption_strips(model, strips, widths, method="sample")
    with pytest.raises(ValueError, match="max_len"):
        caption_strips(model, strips, widths, max_len=0)
    with pytest.raises(ValueError, match="epochs"):
        train_captioner(model, strips, widths, targets, lengths, epochs=-1)
    with pytest.raises(ValueError, match="equally long"):
        caption_scores([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="captions"):
        attention_maps(model, strips, widths, [[1]])
