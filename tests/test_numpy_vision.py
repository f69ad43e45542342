"""rnn_ref.numpy.vision: the digits, the split by source image, and composed digit strings.

- the data: shapes, range, the 16 grey levels, labels 0-9 with the known class counts;
- the split: disjoint, covering, stratified (each class's share within one image of its
  fraction), deterministic per seed, different across seeds;
- composition: shapes, dtype, determinism for a seed, the pool is respected (strings from the
  test pool contain only test glyphs), every glyph is a copy of its source image at its start
  column, widths = 8 L + gaps, zeros past the width, targets padded with -1, every digit and
  every length appears, gaps within bounds, jitter moves rows; hypothesis properties over sizes;
- crop_glyphs inverts the composition given the layout;
- clear errors on bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_ref.numpy.vision import (
    GLYPH,
    as_row_sequences,
    compose_digit_strings,
    crop_glyphs,
    load_digit_images,
    split_glyphs,
)


@pytest.fixture(scope="module")
def digits():
    return load_digit_images()


def test_load_digit_images(digits):
    images, labels = digits
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    # 17 levels 0/16 .. 16/16 (counts of set pixels in a 4x4 block)
    assert set(np.unique(images * 16)) <= set(range(17))
    np.testing.assert_array_equal(
        np.bincount(labels), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    )


def test_as_row_sequences(digits):
    images, _ = digits
    x = as_row_sequences(images[:5])
    assert x.shape == (5, 8, 8)
    np.testing.assert_array_equal(x[2, 3], images[2, 3, :])  # step t is row t
    x[0, 0, 0] = 7.0
    assert images[0, 0, 0] != 7.0  # a copy
    with pytest.raises(ValueError, match="images must be"):
        as_row_sequences(np.zeros((2, 8, 7)))


def test_split_glyphs(digits):
    _, labels = digits
    tr, va, te = split_glyphs(labels, (0.6, 0.2, 0.2), seed=0)
    assert (
        len(np.intersect1d(tr, va))
        == len(np.intersect1d(tr, te))
        == len(np.intersect1d(va, te))
        == 0
    )
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(len(labels)))
    for c in range(10):
        n_c = np.sum(labels == c)
        assert np.sum(labels[tr] == c) == int(0.6 * n_c)
        assert np.sum(labels[va] == c) == int(0.2 * n_c)
    again = split_glyphs(labels, (0.6, 0.2, 0.2), seed=0)
    for a, b in zip((tr, va, te), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = split_glyphs(labels, (0.6, 0.2, 0.2), seed=1)
    assert not np.array_equal(tr, other[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fractions": (0.5, 0.5)}, "fractions"),
        ({"fractions": (0.6, 0.3, 0.3)}, "fractions"),
        ({"fractions": (1.2, -0.1, -0.1)}, "fractions"),
        ({"seed": -1}, "seed"),
    ],
)
def test_split_glyphs_errors(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_glyphs(digits[1], **kwargs)


def test_split_glyphs_label_errors():
    with pytest.raises(ValueError, match="labels must be 1-D"):
        split_glyphs(np.zeros((3, 2), dtype=int))
    with pytest.raises(TypeError, match="labels must be integers"):
        split_glyphs(np.array([0.5, 1.0]))


def test_compose_shapes_and_layout(digits):
    images, labels = digits
    _, _, te = split_glyphs(labels)
    strips, widths, targets, lengths, layout = compose_digit_strings(
        images, labels, te, 300, np.random.default_rng(0), return_layout=True
    )
    W_max = 8 * 6 + 3 * 5
    assert strips.shape == (300, 8, W_max) and strips.dtype == np.float64
    assert widths.shape == lengths.shape == (300,) and targets.shape == (300, 6)
    assert lengths.min() == 1 and lengths.max() == 6
    assert set(np.unique(lengths)) == set(range(1, 7))
    assert set(targets[targets >= 0].tolist()) == set(range(10))
    starts, sources = layout["starts"], layout["sources"]
    for i in range(300):
        L = lengths[i]
        assert np.all(targets[i, L:] == -1) and np.all(targets[i, :L] >= 0)
        assert np.all(sources[i, L:] == -1) and np.all(starts[i, L:] == -1)
        assert np.all(np.isin(sources[i, :L], te))  # only the pool's glyphs
        np.testing.assert_array_equal(targets[i, :L], labels[sources[i, :L]])
        gaps = np.diff(starts[i, :L]) - GLYPH
        assert np.all((gaps >= 0) & (gaps <= 3))
        assert widths[i] == GLYPH * L + gaps.sum() == starts[i, L - 1] + GLYPH
        assert np.all(strips[i, :, widths[i] :] == 0.0)
        for k in range(L):
            np.testing.assert_array_equal(
                strips[i, :, starts[i, k] : starts[i, k] + 8], images[sources[i, k]]
            )
    # both extreme gaps occur
    all_gaps = np.concatenate([np.diff(starts[i, : lengths[i]]) - GLYPH for i in range(300)])
    assert all_gaps.min() == 0 and all_gaps.max() == 3
    glyphs = crop_glyphs(strips, starts, lengths)
    assert glyphs.shape == (lengths.sum(), 8, 8)
    np.testing.assert_array_equal(glyphs, images[sources[sources >= 0]])


def test_compose_deterministic_and_pools_never_mix(digits):
    images, labels = digits
    tr, va, te = split_glyphs(labels)
    a = compose_digit_strings(images, labels, tr, 50, np.random.default_rng(7), return_layout=True)
    b = compose_digit_strings(images, labels, tr, 50, np.random.default_rng(7), return_layout=True)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    c = compose_digit_strings(images, labels, tr, 50, np.random.default_rng(8))
    assert not np.array_equal(a[0], c[0])
    used = {}
    for name, pool in (("train", tr), ("val", va), ("test", te)):
        lay = compose_digit_strings(
            images, labels, pool, 200, np.random.default_rng(1), return_layout=True
        )[4]
        used[name] = set(lay["sources"][lay["sources"] >= 0].tolist())
        assert used[name] <= set(pool.tolist())
    assert not (used["train"] & used["test"]) and not (used["train"] & used["val"])


def test_compose_jitter(digits):
    images, labels = digits
    pool = np.arange(100)
    strips, widths, _, lengths, lay = compose_digit_strings(
        images,
        labels,
        pool,
        100,
        np.random.default_rng(3),
        min_len=1,
        max_len=1,
        jitter=1,
        return_layout=True,
    )
    assert np.all(widths == 8) and strips.shape == (100, 8, 8) and np.all(lengths == 1)
    shifted = 0
    for i in range(100):
        img, got = images[lay["sources"][i, 0]], strips[i]
        ok = [np.array_equal(got, img)]
        ok.append(np.array_equal(got[1:], img[:-1]) and np.all(got[0] == 0))  # moved down
        ok.append(np.array_equal(got[:-1], img[1:]) and np.all(got[-1] == 0))  # moved up
        assert any(ok)
        shifted += not ok[0]
    assert shifted > 30  # two thirds are shifted (unless the glyph's first/last row is empty)


@given(
    n=st.integers(0, 20),
    min_len=st.integers(1, 4),
    extra=st.integers(0, 3),
    g0=st.integers(0, 2),
    g_extra=st.integers(0, 3),
    seed=st.integers(0, 1000),
)
def test_compose_properties(n, min_len, extra, g0, g_extra, seed):
    images = np.random.default_rng(seed).random((30, 8, 8))
    labels = np.arange(30) % 10
    max_len, gap = min_len + extra, (g0, g0 + g_extra)
    strips, widths, targets, lengths = compose_digit_strings(
        images, labels, np.arange(5, 30), n, np.random.default_rng(seed), min_len, max_len, gap
    )
    assert strips.shape == (n, 8, 8 * max_len + gap[1] * (max_len - 1)) and targets.shape == (
        n,
        max_len,
    )
    assert np.all((lengths >= min_len) & (lengths <= max_len))
    assert np.all(widths >= 8 * lengths + gap[0] * (lengths - 1))
    assert np.all(widths <= 8 * lengths + gap[1] * (lengths - 1))
    for i in range(n):
        assert np.all(strips[i, :, widths[i] :] == 0)
        assert np.all((targets[i, : lengths[i]] >= 0) & (targets[i, : lengths[i]] <= 9))
        assert np.all(targets[i, lengths[i] :] == -1)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"pool_idx": np.array([], dtype=int)}, ValueError, "pool_idx"),
        ({"pool_idx": np.array([0.5])}, TypeError, "pool_idx"),
        ({"pool_idx": np.array([0, 5000])}, ValueError, "pool_idx"),
        ({"n": -1}, ValueError, "n must be"),
        ({"n": 2.5}, TypeError, "n must be"),
        ({"rng": 0}, TypeError, "rng"),
        ({"min_len": 0}, ValueError, "min_len"),
        ({"min_len": 4, "max_len": 3}, ValueError, "max_len"),
        ({"gap": (2, 1)}, ValueError, "gap"),
        ({"gap": (0, 1, 2)}, ValueError, "gap"),
        ({"jitter": 8}, ValueError, "jitter"),
    ],
)
def test_compose_errors(digits, kwargs, exc, match):
    images, labels = digits
    args = {
        "images": images,
        "labels": labels,
        "pool_idx": np.arange(10),
        "n": 3,
        "rng": np.random.default_rng(0),
    }
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        compose_digit_strings(**args)


def test_compose_image_errors(digits):
    images, labels = digits
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="images must be"):
        compose_digit_strings(images[:, :4], labels, np.arange(3), 2, rng)
    with pytest.raises(ValueError, match="labels must be"):
        compose_digit_strings(images, labels[:5], np.arange(3), 2, rng)


def test_crop_glyphs_errors():
    strips = np.zeros((2, 8, 20))
    with pytest.raises(ValueError, match="starts must be"):
        crop_glyphs(strips, np.zeros((3, 2), int), np.array([1, 1]))
    with pytest.raises(ValueError, match="target_lengths"):
        crop_glyphs(strips, np.zeros((2, 2), int), np.array([1, 3]))
    with pytest.raises(ValueError, match=r"starts\[1, 0\]"):
        crop_glyphs(strips, np.array([[0, 0], [15, 0]]), np.array([1, 1]))
    with pytest.raises(ValueError, match="strips must be"):
        crop_glyphs(np.zeros((2, 7, 20)), np.zeros((2, 2), int), np.array([1, 1]))
