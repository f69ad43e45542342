"""rnn_ref.numpy.multimodal: the audio-visual digits, late fusion, aligning sequences, the gated
multimodal unit, words and the word error rate, noise (chapter ch16_multimodal).

- the data: sizes, labels equal across modalities, speakers of one split never in another (test
  speakers never heard in training), glyphs never shared between splits, the pairing balanced
  and deterministic per seed, features equal to MFCC + CMVN of the paired recording;
- pair_by_label: labels equal, balanced use of modality b, errors on a missing label;
- late fusion: a known two-expert case, normalised log-probabilities (hypothesis), weights
  (1, 0) recover one expert, stability at log-probabilities of -1e3, -inf in an ignored expert;
- pooling and repeating: parity with torch's adaptive_avg_pool1d and interpolate("nearest")
  (full lengths) and with the same on each sequence's valid frames; padding never read;
  hypothesis: pooling a constant sequence is constant, repeat then pool of a divisible length
  recovers the input, pooling preserves the mean when T_out divides L;
- the gated unit: against torch autograd in float64 (outputs and every gradient), a numerical
  gradient check, z = 1 / 0 limits, inputs unchanged, clear errors;
- words: digits <-> words round trip; WER known values, 0 iff equal (hypothesis), empty
  hypothesis = 1, corpus rate, errors; noise: the measured SNR, seeded, clipping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    DIGIT_WORDS,
    add_image_noise,
    add_white_noise,
    audio_features,
    audio_visual_digits,
    digits_to_words,
    gated_fusion_backward,
    gated_fusion_forward,
    late_fusion,
    numerical_gradient,
    pair_by_label,
    pool_to_length,
    pool_weights,
    repeat_to_length,
    word_error_rate,
    words_to_digits,
)
from rnn_ref.numpy.vision import load_digit_images

torch.set_num_threads(1)


def log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


# --- the data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def avd():
    return audio_visual_digits(seed=0)


def test_audio_visual_digits_sizes_and_labels(avd):
    assert [len(avd.split(s)) for s in ("train", "val", "test")] == [2000, 500, 500]
    images, image_labels = load_digit_images()
    for name in ("train", "val", "test"):
        sp = avd.split(name)
        n = len(sp)
        assert sp.image.shape == (n, 8, 8) and sp.image.dtype == np.float64
        assert sp.label.shape == sp.speaker.shape == sp.glyph.shape == sp.recording.shape == (n,)
        # both modalities show the same digit, and each image is its glyph
        np.testing.assert_array_equal(image_labels[sp.glyph], sp.label)
        np.testing.assert_array_equal(images[sp.glyph], sp.image)
        assert all(a.ndim == 2 and a.shape[1] == 13 for a in sp.audio)
        np.testing.assert_array_equal(sp.lengths, [a.shape[0] for a in sp.audio])
        # every digit, 50 takes of each per speaker
        assert np.all(np.bincount(sp.label, minlength=10) == n // 10)


def test_audio_visual_digits_splits_never_cross(avd):
    sp = {s: set(avd.split(s).speaker.tolist()) for s in ("train", "val", "test")}
    assert sp["train"].isdisjoint(sp["test"]) and sp["train"].isdisjoint(sp["val"])
    assert sp["val"].isdisjoint(sp["test"])
    assert {k: sorted(v) for k, v in sp.items()} == avd.speakers
    assert len(sp["train"]) == 4 and len(sp["val"]) == len(sp["test"]) == 1
    gl = {s: set(avd.split(s).glyph.tolist()) for s in ("train", "val", "test")}
    assert gl["train"].isdisjoint(gl["test"]) and gl["train"].isdisjoint(gl["val"])
    assert gl["val"].isdisjoint(gl["test"])
    rec = np.concatenate([avd.split(s).recording for s in ("train", "val", "test")])
    np.testing.assert_array_equal(np.sort(rec), np.arange(3000))  # every recording, once


def test_audio_visual_digits_features_and_pairing(avd):
    from rnn_ref.datasets import load_spoken_digits
    from rnn_ref.numpy.speech import cmvn, mfcc

    spoken = load_spoken_digits("fsdd")
    sp = avd.test
    for i in (0, 123, 499):
        r = sp.recording[i]
        assert spoken.digit[r] == sp.label[i] and spoken.speaker[r] == sp.speaker[i]
        np.testing.assert_array_equal(sp.signals[i], spoken.signals[r])
        np.testing.assert_allclose(sp.audio[i], cmvn(mfcc(spoken.signals[r], 8000)), atol=1e-12)
    # balanced pairing: 2000 training recordings over ~1078 training glyphs, each used 1-2 times
    counts = np.bincount(avd.train.glyph)[np.unique(avd.train.glyph)]
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1


def test_audio_features_with_deltas():
    x = np.random.default_rng(0).normal(size=2000)
    (f,) = audio_features([x], 8000, with_deltas=True)
    assert f.shape == (1 + math.ceil((2000 - 200) / 80), 26)
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(f.std(axis=0), 1, atol=1e-9)


def test_pair_by_label_known_and_balanced():
    la = np.array([0, 1, 0, 1, 0, 0, 2])
    lb = np.array([1, 0, 0, 2, 1])
    idx = pair_by_label(la, lb, seed=0)
    assert idx.shape == (7,) and idx.dtype == np.int64
    np.testing.assert_array_equal(lb[idx], la)
    # four 0s in a over the two 0s of b: each used exactly twice
    np.testing.assert_array_equal(np.bincount(idx[la == 0], minlength=5)[[1, 2]], [2, 2])
    np.testing.assert_array_equal(pair_by_label(la, lb, seed=0), idx)
    with pytest.raises(ValueError, match="label 3"):
        pair_by_label([3], lb, seed=0)
    with pytest.raises(ValueError, match="labels_a must be 1-D"):
        pair_by_label(np.zeros((2, 2), int), lb)


@given(
    st.integers(1, 60),
    st.integers(1, 20),
    st.integers(1, 4),
    st.integers(0, 2**16),
)
def test_pair_by_label_property(na, nb, c, seed):
    rng = np.random.default_rng(seed)
    lb = np.concatenate([np.arange(c), rng.integers(0, c, nb)])  # every label present in b
    la = rng.integers(0, c, na)
    idx = pair_by_label(la, lb, rng)
    np.testing.assert_array_equal(lb[idx], la)
    for k in range(c):
        used = np.bincount(idx[la == k], minlength=lb.size)[lb == k]
        assert used.max() - used.min() <= 1  # balanced


# --- late fusion ---------------------------------------------------------------------------------


def test_late_fusion_known_case():
    p = np.log([[0.7, 0.3], [0.5, 0.5]])
    q = np.log([[0.2, 0.8], [0.9, 0.1]])
    out = late_fusion([p, q], [1.0, 1.0])
    expected = np.array([[0.14, 0.24], [0.45, 0.05]])
    np.testing.assert_allclose(np.exp(out), expected / expected.sum(1, keepdims=True), rtol=1e-12)
    # the default is the geometric mean, weights 1/2 each
    g = np.sqrt(np.array([[0.14, 0.24], [0.45, 0.05]]))
    np.testing.assert_allclose(np.exp(late_fusion([p, q])), g / g.sum(1, keepdims=True))
    # one stacked array (M, N, C) is the same as a list
    np.testing.assert_array_equal(late_fusion(np.stack([p, q]), [1, 1]), out)


@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 7),
    st.integers(0, 2**16),
)
def test_late_fusion_properties(M, N, C, seed):
    rng = np.random.default_rng(seed)
    L = [log_softmax(rng.normal(0, 3, (N, C))) for _ in range(M)]
    w = rng.uniform(0, 2, M)
    out = late_fusion(L, w)
    assert out.shape == (N, C)
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(out <= 1e-12)
    # weight 1 on expert m, 0 elsewhere, gives expert m back
    m = int(rng.integers(M))
    one_hot = np.eye(M)[m]
    np.testing.assert_allclose(late_fusion(L, one_hot), L[m], atol=1e-12)
    # unnormalised scores: a per-row constant cancels
    shifted = [x + rng.normal(0, 5, (N, 1)) for x in L]
    np.testing.assert_allclose(late_fusion(shifted, w), out, atol=1e-10)


def test_late_fusion_large_values_and_infinities():
    p = np.array([[-1000.0, -1001.0, -1e3 - 3]])
    q = np.array([[-1002.0, -1000.0, -1000.0]])
    out = late_fusion([p, q], [1, 1])
    s = np.array([-2002.0, -2001.0, -2003.0])
    s -= s.max()
    np.testing.assert_allclose(out[0], s - np.log(np.exp(s).sum()), rtol=1e-12)
    # an expert that rules a class out (-inf) is fine when it is used, and ignored at weight 0
    r = np.array([[0.0, -np.inf, -np.inf]])
    np.testing.assert_allclose(late_fusion([p, r], [1, 1]), [[0.0, -np.inf, -np.inf]])
    np.testing.assert_allclose(late_fusion([p, r], [1, 0]), log_softmax(p))
    # all weights 0: uniform
    np.testing.assert_allclose(late_fusion([p, q], [0, 0]), np.full((1, 3), -np.log(3)))


def test_late_fusion_errors():
    p = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"log_probs\[1\] has shape"):
        late_fusion([p, np.zeros((2, 4))])
    with pytest.raises(ValueError, match="weights must have shape"):
        late_fusion([p, p], [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        late_fusion([p, p], [1.0, -1.0])
    with pytest.raises(ValueError, match="empty"):
        late_fusion([])
    with pytest.raises(ValueError, match="NaN"):
        late_fusion([np.full((1, 2), np.nan)])
    with pytest.raises(ValueError, match="every class"):
        late_fusion([np.full((1, 2), -np.inf)])


# --- aligning sequences --------------------------------------------------------------------------


def test_pool_and_repeat_known_case():
    x = np.arange(5.0).reshape(1, 5, 1)
    # L = 5, T_out = 2: segments [0, 3) and [2, 5) (they share frame 2)
    np.testing.assert_allclose(pool_to_length(x, None, 2)[0, :, 0], [1.0, 3.0])
    np.testing.assert_allclose(pool_to_length(x, None, 1)[0, :, 0], [2.0])
    # valid length 3 of a padded sequence: the padding (frames 3, 4) is never read
    np.testing.assert_allclose(pool_to_length(x, [3], 3)[0, :, 0], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(repeat_to_length(x, 10)[0, :, 0], np.repeat(np.arange(5.0), 2))
    np.testing.assert_allclose(repeat_to_length(x, 4, lengths=[2])[0, :, 0], [0, 0, 1, 1])
    v = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(repeat_to_length(v, 3), [[[1, 2], [1, 2], [1, 2]]])


@given(st.integers(1, 4), st.integers(1, 12), st.integers(1, 3), st.integers(1, 15))
def test_pool_repeat_match_torch_on_valid_frames(N, T, D, T_out):
    rng = np.random.default_rng(N * 1000 + T * 10 + T_out)
    x = rng.normal(size=(N, T, D))
    lengths = rng.integers(1, T + 1, N)
    pooled = pool_to_length(x, lengths, T_out)
    repeated = repeat_to_length(x, T_out, lengths)
    F = torch.nn.functional
    for n in range(N):
        seq = torch.from_numpy(x[n : n + 1, : lengths[n]]).transpose(1, 2)  # (1, D, L)
        want_pool = F.adaptive_avg_pool1d(seq, T_out).transpose(1, 2)[0].numpy()
        want_rep = F.interpolate(seq, size=T_out, mode="nearest").transpose(1, 2)[0].numpy()
        np.testing.assert_allclose(pooled[n], want_pool, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(repeated[n], want_rep)
    # the padding never matters
    y = x.copy()
    for n in range(N):
        y[n, lengths[n] :] = 1e6
    np.testing.assert_allclose(pool_to_length(y, lengths, T_out), pooled, atol=0)
    np.testing.assert_array_equal(repeat_to_length(y, T_out, lengths), repeated)
    # pool_weights: rows sum to 1, zero on the padding
    A = pool_weights(lengths, T, T_out)
    np.testing.assert_allclose(A.sum(axis=2), 1.0)
    for n in range(N):
        assert np.all(A[n, :, lengths[n] :] == 0)


@given(st.integers(1, 3), st.integers(1, 10), st.integers(1, 12), st.floats(-5, 5))
def test_pool_constant_sequence_is_constant(N, T, T_out, c):
    x = np.full((N, T, 2), c)
    lengths = np.random.default_rng(T).integers(1, T + 1, N)
    np.testing.assert_allclose(pool_to_length(x, lengths, T_out), c, rtol=1e-12, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 8), st.integers(1, 5), st.integers(0, 999))
def test_repeat_then_pool_recovers(N, T, k, seed):
    x = np.random.default_rng(seed).normal(size=(N, T, 3))
    np.testing.assert_allclose(pool_to_length(repeat_to_length(x, k * T), None, T), x, atol=1e-12)
    # pooling to a divisor of L keeps the mean over time
    np.testing.assert_allclose(
        pool_to_length(repeat_to_length(x, k * T), None, T).mean(axis=1), x.mean(axis=1)
    )


def test_align_errors():
    x = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="lengths must be in 1..T"):
        pool_to_length(x, [0, 4], 2)
    with pytest.raises(ValueError, match="lengths must have shape"):
        pool_to_length(x, [1, 2, 3], 2)
    with pytest.raises(ValueError, match="T_out must be >= 1"):
        pool_to_length(x, None, 0)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        pool_to_length(np.zeros((2, 4)), None, 2)
    with pytest.raises(ValueError, match="no time steps"):
        repeat_to_length(np.zeros((2, 0, 3)), 2)
    with pytest.raises(ValueError, match="lengths applies to sequences"):
        repeat_to_length(np.zeros((2, 3)), 2, lengths=[1, 1])


# --- the gated multimodal unit -------------------------------------------------------------------


def gmu_params(rng, Da, Dv, H, scale=0.5):
    return {
        "W_a": rng.normal(0, scale, (H, Da)),
        "b_a": rng.normal(0, scale, H),
        "W_v": rng.normal(0, scale, (H, Dv)),
        "b_v": rng.normal(0, scale, H),
        "W_z": rng.normal(0, scale, (H, Da + Dv)),
        "b_z": rng.normal(0, scale, H),
    }


@pytest.mark.parametrize("N, Da, Dv, H", [(4, 3, 5, 6), (1, 1, 1, 1), (3, 7, 2, 4)])
def test_gated_fusion_matches_torch_autograd(N, Da, Dv, H, assert_unchanged):
    rng = np.random.default_rng(N + 10 * Da + 100 * Dv)
    a, v = rng.normal(size=(N, Da)), rng.normal(size=(N, Dv))
    p = gmu_params(rng, Da, Dv, H)
    df = rng.normal(size=(N, H))
    before = ({k: x.copy() for k, x in p.items()}, a.copy(), v.copy())
    f, cache = gated_fusion_forward(a, v, p)
    da, dv, grads = gated_fusion_backward(df, cache)
    assert_unchanged(before, (p, a, v))

    T = {k: torch.tensor(x, requires_grad=True) for k, x in p.items()}
    at, vt = torch.tensor(a, requires_grad=True), torch.tensor(v, requires_grad=True)
    h_a = torch.tanh(at @ T["W_a"].T + T["b_a"])
    h_v = torch.tanh(vt @ T["W_v"].T + T["b_v"])
    z = torch.sigmoid(torch.cat([at, vt], dim=1) @ T["W_z"].T + T["b_z"])
    ft = z * h_a + (1 - z) * h_v
    ft.backward(torch.tensor(df))
    np.testing.assert_allclose(f, ft.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(da, at.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dv, vt.grad.numpy(), rtol=1e-10, atol=1e-13)
    assert grads.keys() == p.keys()
    for k in p:
        assert grads[k].shape == p[k].shape
        np.testing.assert_allclose(grads[k], T[k].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=k)


def test_gated_fusion_numerical_gradient(assert_grad):
    rng = np.random.default_rng(7)
    N, Da, Dv, H = 3, 4, 2, 5
    a, v = rng.normal(size=(N, Da)), rng.normal(size=(N, Dv))
    p = gmu_params(rng, Da, Dv, H)
    df = rng.normal(size=(N, H))
    _, cache = gated_fusion_forward(a, v, p)
    da, dv, grads = gated_fusion_backward(df, cache)
    assert_grad(da, numerical_gradient(lambda x: gated_fusion_forward(x, v, p)[0], a, df), "da")
    assert_grad(dv, numerical_gradient(lambda x: gated_fusion_forward(a, x, p)[0], v, df), "dv")
    for k in p:

        def f(w, k=k):
            return gated_fusion_forward(a, v, {**p, k: w})[0]

        assert_grad(grads[k], numerical_gradient(f, p[k], df), k)


def test_gated_fusion_gate_limits():
    rng = np.random.default_rng(1)
    a, v = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    p = gmu_params(rng, 3, 4, 5)
    for b, expect in ((60.0, "a"), (-60.0, "v")):  # z ~ 1 picks the a branch, z ~ 0 the v branch
        q = {**p, "W_z": np.zeros_like(p["W_z"]), "b_z": np.full(5, b)}
        f, _ = gated_fusion_forward(a, v, q)
        h = (
            np.tanh(a @ p["W_a"].T + p["b_a"])
            if expect == "a"
            else np.tanh(v @ p["W_v"].T + p["b_v"])
        )
        np.testing.assert_allclose(f, h, atol=1e-12)


def test_gated_fusion_errors():
    rng = np.random.default_rng(2)
    p = gmu_params(rng, 3, 4, 5)
    a, v = np.zeros((2, 3)), np.zeros((2, 4))
    with pytest.raises(ValueError, match="same batch size"):
        gated_fusion_forward(a, np.zeros((3, 4)), p)
    with pytest.raises(ValueError, match=r"params\['W_z'\] must have shape \(5, 7\)"):
        gated_fusion_forward(a, v, {**p, "W_z": np.zeros((5, 6))})
    with pytest.raises(KeyError, match="b_v"):
        gated_fusion_forward(a, v, {k: x for k, x in p.items() if k != "b_v"})
    _, cache = gated_fusion_forward(a, v, p)
    with pytest.raises(ValueError, match="df must have shape"):
        gated_fusion_backward(np.zeros((2, 4)), cache)


# --- words and the word error rate ---------------------------------------------------------------


def test_digits_words_round_trip():
    assert digits_to_words([3, 1, 4]) == "three one four"
    assert digits_to_words("905") == "nine zero five"
    assert digits_to_words(np.array([], dtype=np.int64)) == ""
    assert words_to_digits("three one four") == [3, 1, 4]
    assert words_to_digits("  Seven\tEIGHT ") == [7, 8]
    for d in range(10):
        assert words_to_digits(digits_to_words([d])) == [d]
        assert DIGIT_WORDS[d] == digits_to_words([d])
    with pytest.raises(ValueError, match="0..9"):
        digits_to_words([3, -1])
    with pytest.raises(ValueError, match="'tree' is not a digit word"):
        words_to_digits("three tree")
    with pytest.raises(ValueError, match="only the characters"):
        digits_to_words("3a")


def test_word_error_rate_known_values():
    assert word_error_rate(["three one four"], ["three one four"]) == 0.0
    assert word_error_rate(["three one four"], ["three four"]) == pytest.approx(1 / 3)
    assert word_error_rate(["three one four"], ["three one one four"]) == pytest.approx(1 / 3)
    assert word_error_rate(["three one four"], ["tree one for"]) == pytest.approx(2 / 3)
    assert word_error_rate(["three one four"], [""]) == 1.0  # empty hypothesis: all deleted
    assert word_error_rate(["one"], ["two three four"]) == 3.0  # can exceed 1
    # a corpus rate: 1 error over 1 + 4 words, not the mean of 1/1 and 0/4
    assert word_error_rate(["one", "two three four five"], ["six", "two three four five"]) == 0.2
    # lists of words are accepted too
    assert word_error_rate([["a", "b"]], [["a", "c"]]) == 0.5


@given(
    st.lists(
        st.lists(st.sampled_from(DIGIT_WORDS), min_size=1, max_size=6), min_size=1, max_size=4
    ),
    st.lists(st.lists(st.sampled_from(DIGIT_WORDS), max_size=6), min_size=4, max_size=4),
)
def test_word_error_rate_zero_iff_equal(refs, hyps):
    refs_s = [" ".join(r) for r in refs]
    hyps_s = [" ".join(h) for h in hyps[: len(refs)]]
    wer = word_error_rate(refs_s, hyps_s)
    assert (wer == 0) == (refs_s == hyps_s)
    assert word_error_rate(refs_s, refs_s) == 0.0
    assert wer >= 0


def test_word_error_rate_errors():
    with pytest.raises(ValueError, match="differ in length"):
        word_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="undefined"):
        word_error_rate([""], ["a"])
    with pytest.raises(TypeError, match="lists of sentences"):
        word_error_rate("one two", "one two")
    with pytest.raises(TypeError, match=r"hyps\[0\]"):
        word_error_rate(["one"], [3])


# --- noise ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [20.0, 0.0, -5.0])
def test_white_noise_snr(snr_db):
    x = np.sin(np.linspace(0, 200, 100_000))
    y = add_white_noise(x, snr_db, rng=0)
    noise = y - x
    measured = 10 * np.log10(np.mean(x**2) / np.mean(noise**2))
    assert abs(measured - snr_db) < 0.05
    np.testing.assert_array_equal(add_white_noise(x, snr_db, rng=0), y)  # seeded
    assert not np.array_equal(add_white_noise(x, snr_db, rng=1), y)
    np.testing.assert_array_equal(add_white_noise(x, np.inf, rng=0), x)
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        add_white_noise(np.zeros((2, 2)), 10, 0)
    with pytest.raises(ValueError, match="snr_db"):
        add_white_noise(x, float("nan"), 0)


def test_image_noise():
    images = np.full((500, 8, 8), 0.5)
    y = add_image_noise(images, 0.1, rng=np.random.default_rng(0), clip=False)
    assert abs((y - images).std() - 0.1) < 0.002 and abs((y - images).mean()) < 0.002
    z = add_image_noise(images, 2.0, rng=0)
    assert z.min() == 0.0 and z.max() == 1.0  # clipped to the pixel range
    np.testing.assert_array_equal(add_image_noise(images, 0.0, rng=0), images)
    np.testing.assert_array_equal(add_image_noise(images, 0.3, 5), add_image_noise(images, 0.3, 5))
    with pytest.raises(ValueError, match="std must be"):
        add_image_noise(images, -1.0, 0)
    with pytest.raises(TypeError, match="rng must be an integer"):
        add_image_noise(images, 0.1, "seed")


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    """3 speakers x 10 digits x 2 takes of noise, named like FSDD's files."""
    from scipy.io import wavfile

    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    for speaker in ("ann", "bob", "cid"):
        for digit in range(10):
            for take in range(2):
                x = (rng.normal(0, 3000, 2400 + 80 * digit)).astype(np.int16)
                wavfile.write(folder / f"{digit}_{speaker}_{take}.wav", 8000, x)
    return folder


def test_audio_visual_digits_reads_a_folder_of_wav_files(wav_folder):
    """A user's own recordings (FSDD's file names) pair and split the same way."""
    data = audio_visual_digits(seed=1, recordings=wav_folder)
    assert sorted(sum(data.speakers.values(), [])) == ["ann", "bob", "cid"]
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [20, 20, 20]
    for s in ("train", "val", "test"):
        sp = data.split(s)
        assert set(sp.speaker.tolist()) == set(data.speakers[s])
        np.testing.assert_array_equal(load_digit_images()[1][sp.glyph], sp.label)
    T = 1 + math.ceil((2400 + 80 * data.test.label[0] - 200) / 80)
    assert data.test.audio[0].shape == (T, 13)


def test_audio_visual_digits_deterministic_and_seeded(wav_folder):
    a, b = (audio_visual_digits(seed=0, recordings=wav_folder) for _ in range(2))
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(a.split(s).glyph, b.split(s).glyph)
        np.testing.assert_array_equal(a.split(s).recording, b.split(s).recording)
        for x, y in zip(a.split(s).audio, b.split(s).audio, strict=True):
            np.testing.assert_array_equal(x, y)
    others = [audio_visual_digits(seed=k, recordings=wav_folder) for k in range(1, 6)]
    assert any(not np.array_equal(o.train.glyph, a.train.glyph) for o in others)
    assert len({tuple(o.speakers["test"]) for o in [a, *others]}) > 1  # the seed picks speakers
    chosen = audio_visual_digits(
        seed=3, recordings=wav_folder, test_speakers=["bob"], val_speakers="cid"
    )
    assert chosen.speakers == {"train": ["ann"], "val": ["cid"], "test": ["bob"]}
    assert set(chosen.test.speaker.tolist()) == {"bob"}
    with pytest.raises(ValueError, match="not speakers"):
        audio_visual_digits(recordings=wav_folder, test_speakers=["nobody"])
    with pytest.raises(ValueError, match="test and validation"):
        audio_visual_digits(recordings=wav_folder, test_speakers=["bob"], val_speakers=["bob"])
    with pytest.raises(ValueError, match="every split needs a speaker"):
        audio_visual_digits(
            recordings=wav_folder, test_speakers=["bob"], val_speakers=["ann", "cid"]
        )
    with pytest.raises(ValueError, match="name must be"):
        a.split("dev")
