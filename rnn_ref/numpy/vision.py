r"""Images as sequences in NumPy (chapter ch15_vision): the handwritten digits, a split by source
image, and strings of digits composed from them for CTC.

Interfaces (images are float64 in [0, 1], 0 = background, 1 = ink; no input is modified in place;
bad input raises ``ValueError`` or ``TypeError`` with a message that names the culprit):

The data
    ``load_digit_images() -> (images, labels)``: scikit-learn's handwritten digits (the test part
    of the UCI "Optical Recognition of Handwritten Digits" set, Alpaydin & Kaynak): 1,797 real
    8x8 images, each pixel a count of 0-16 set pixels in a 4x4 block of a 32x32 bitmap. Returned
    as ``images`` (1797, 8, 8) float64 = count / 16 and ``labels`` (1797,) int64 in 0-9. Shipped
    in scikit-learn's wheel: nothing is downloaded.

    ``as_row_sequences(images) -> x`` (N, 8, 8): an image read **row by row**, top to bottom, is a
    sequence of T = 8 steps of D = 8 pixels: ``x[n, t] = images[n, t, :]``, a float64 copy. (The
    array is the same numbers; the point is the reading order ``(N, T, D)``.)

The split
    ``split_glyphs(labels, fractions=(0.6, 0.2, 0.2), seed=0) -> (train_idx, val_idx, test_idx)``:
    a stratified split of the *source images*: each digit's images are shuffled
    (``numpy.random.default_rng(seed)``) and cut in the given fractions (rounded down for train
    and validation, the rest to test), so the three index sets are disjoint, cover every image,
    and keep the class proportions. Strings composed from ``test_idx`` use only glyphs that no
    training string contains.

Digit strings
    ``compose_digit_strings(images, labels, pool_idx, n, rng, min_len=1, max_len=6,
    gap=(0, 3), jitter=0, return_layout=False) -> (strips, widths, targets, target_lengths)``

    Each of the ``n`` strings draws its length L uniformly from ``min_len..max_len``, then L
    glyphs uniformly (with replacement) from ``pool_idx``, and lays them left to right, 8
    columns each, with a gap of ``g`` empty columns between neighbours, ``g`` uniform in
    ``gap[0]..gap[1]`` (drawn per gap). With ``jitter = j > 0`` each glyph is also shifted
    vertically by a uniform integer in ``-j..j`` rows (the rows it leaves are zero, the rows
    pushed out are lost). Everything random comes from ``rng`` (a ``numpy.random.Generator``),
    so the same seed gives the same strings.

    - ``strips`` (n, 8, W_max) float64, the strings zero-padded on the right to
      ``W_max = 8 * max_len + gap[1] * (max_len - 1)``, the widest possible string (a fixed
      width, whatever was drawn);
    - ``widths`` (n,) int64, the real width of each string: ``8 L + sum of its gaps``; columns
      ``widths[i]:`` of ``strips[i]`` are exactly zero;
    - ``targets`` (n, max_len) int64, the digits left to right, padded with **-1** after the
      first ``target_lengths[i]`` (so ``targets + 1``, the CTC classes with blank = 0 and digit
      d -> d + 1, is 0 on the padding);
    - ``target_lengths`` (n,) int64 in ``min_len..max_len``;
    - with ``return_layout=True``, a fifth element: a dict with ``starts`` (n, max_len), the
      first column of each glyph, and ``sources`` (n, max_len), its index into ``images``
      (both -1 on the padding), enough to cut the glyphs out again (the "oracle segmentation"
      baseline) or to check that a string uses only its pool.

    ``crop_glyphs(strips, starts, target_lengths) -> glyphs`` (sum of lengths, 8, 8): the 8x8
    windows at the given starts, string after string (the inverse of the composition, given the
    true layout).
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_int

__all__ = [
    "load_digit_images",
    "as_row_sequences",
    "split_glyphs",
    "compose_digit_strings",
    "crop_glyphs",
]

GLYPH = 8  # the images are GLYPH x GLYPH pixels


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``images`` (1797, 8, 8) float64 in [0, 1] and ``labels`` (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    # The pixels are counts 0..16 of set pixels in 4x4 blocks: divide by the maximum count.
    images = d.images.astype(np.float64) / 16.0
    return images, d.target.astype(np.int64)


def _check_images(images) -> np.ndarray:
    images = as_float_array("images", images, 3)
    if images.shape[1:] != (GLYPH, GLYPH):
        raise ValueError(f"images must be (N, {GLYPH}, {GLYPH}), got shape {images.shape}")
    return images


def as_row_sequences(images) -> np.ndarray:
    """Images (N, 8, 8) as sequences of rows: (N, T = 8, D = 8), ``x[n, t] = images[n, t, :]``."""
    return np.array(_check_images(images), dtype=np.float64, copy=True)


def _check_labels(labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def split_glyphs(labels, fractions=(0.6, 0.2, 0.2), seed: int = 0):
    """Stratified split of the source images into (train_idx, val_idx, test_idx), sorted int64.

    ``fractions`` (3,) non-negative, summing to 1; within each class, ``floor(f_train * n_c)``
    images go to train, ``floor(f_val * n_c)`` to validation and the rest to test.
    """
    labels = _check_labels(labels)
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_tr, n_va = int(f[0] * len(idx)), int(f[1] * len(idx))
        parts[0].append(idx[:n_tr])
        parts[1].append(idx[n_tr : n_tr + n_va])
        parts[2].append(idx[n_tr + n_va :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def compose_digit_strings(
    images,
    labels,
    pool_idx,
    n: int,
    rng: np.random.Generator,
    min_len: int = 1,
    max_len: int = 6,
    gap=(0, 3),
    jitter: int = 0,
    return_layout: bool = False,
):
    """Strings of ``min_len..max_len`` digits from the glyphs ``pool_idx`` (module docstring)."""
    images = _check_images(images)
    labels = _check_labels(labels)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be ({images.shape[0]},) like images, got {labels.shape}")
    pool = np.asarray(pool_idx)
    if pool.ndim != 1 or pool.size == 0:
        raise ValueError(
            f"pool_idx must be a non-empty 1-D array of indices, got shape {pool.shape}"
        )
    if not np.issubdtype(pool.dtype, np.integer):
        raise TypeError(f"pool_idx must be integers, got dtype {pool.dtype}")
    if pool.min() < 0 or pool.max() >= images.shape[0]:
        raise ValueError(
            f"pool_idx must be in [0, {images.shape[0]}), got {pool.min()}..{pool.max()}"
        )
    n = check_int("n", n, 0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    min_len = check_int("min_len", min_len, 1)
    max_len = check_int("max_len", max_len, min_len)
    if len(gap) != 2:
        raise ValueError(f"gap must be a pair (min, max), got {gap!r}")
    g_lo = check_int("gap[0]", gap[0], 0)
    g_hi = check_int("gap[1]", gap[1], g_lo)
    jitter = check_int("jitter", jitter, 0)
    if jitter >= GLYPH:
        raise ValueError(f"jitter must be < {GLYPH}, got {jitter}")

    W_max = GLYPH * max_len + g_hi * (max_len - 1)
    strips = np.zeros((n, GLYPH, W_max))
    widths = np.zeros(n, dtype=np.int64)
    targets = np.full((n, max_len), -1, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    starts = np.full((n, max_len), -1, dtype=np.int64)
    sources = np.full((n, max_len), -1, dtype=np.int64)
    for i in range(n):
        L = int(rng.integers(min_len, max_len + 1))
        src = pool[rng.integers(0, pool.size, size=L)]
        gaps = rng.integers(g_lo, g_hi + 1, size=L - 1)
        shifts = rng.integers(-jitter, jitter + 1, size=L) if jitter else np.zeros(L, np.int64)
        col = 0
        for k in range(L):
            glyph = images[src[k]]
            s = int(shifts[k])
            if s:  # move the glyph s rows down (up if s < 0); what leaves the strip is lost
                moved = np.zeros_like(glyph)
                if s > 0:
                    moved[s:] = glyph[:-s]
                else:
                    moved[:s] = glyph[-s:]
                glyph = moved
            strips[i, :, col : col + GLYPH] = glyph
            starts[i, k] = col
            col += GLYPH + (int(gaps[k]) if k < L - 1 else 0)
        widths[i] = col
        lengths[i] = L
        targets[i, :L] = labels[src]
        sources[i, :L] = src
    if return_layout:
        return strips, widths, targets, lengths, {"starts": starts, "sources": sources}
    return strips, widths, targets, lengths


def crop_glyphs(strips, starts, target_lengths) -> np.ndarray:
    """The 8x8 glyphs at ``starts[i, :target_lengths[i]]`` of each strip, stacked: (sum L, 8, 8)."""
    strips = as_float_array("strips", strips, 3)
    if strips.shape[1] != GLYPH:
        raise ValueError(f"strips must be (n, {GLYPH}, W), got shape {strips.shape}")
    starts = np.asarray(starts)
    lengths = np.asarray(target_lengths)
    n = strips.shape[0]
    if starts.ndim != 2 or starts.shape[0] != n:
        raise ValueError(f"starts must be ({n}, S), got shape {starts.shape}")
    if lengths.shape != (n,):
        raise ValueError(f"target_lengths must be ({n},), got shape {lengths.shape}")
    if np.any(lengths < 0) or np.any(lengths > starts.shape[1]):
        raise ValueError(f"target_lengths must be in [0, {starts.shape[1]}]")
    out = []
    for i in range(n):
        for k in range(int(lengths[i])):
            c = int(starts[i, k])
            if c < 0 or c + GLYPH > strips.shape[2]:
                raise ValueError(f"starts[{i}, {k}] = {c} does not leave an 8-column glyph")
            out.append(strips[i, :, c : c + GLYPH])
    return np.array(out).reshape(-1, GLYPH, GLYPH)
