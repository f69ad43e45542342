r"""Fusing modalities in NumPy (chapter ch16_multimodal): audio-visual digits from real data,
late fusion of log-probabilities, aligning sequences of different lengths for early fusion, the
gated multimodal unit, and the word error rate of a captioner.

Conventions: batch-first shapes, ``(N, T, D)`` sequences with ``lengths`` (N,) where they are
padded, weights stored (out, in) so a batch computes ``x @ W.T``; every float returned is
float64; no input is modified in place; bad input raises ``ValueError`` or ``TypeError`` with a
message that names the argument and its shape.

The data
    ``audio_visual_digits(seed=0, ...) -> AudioVisualDigits``: every recording of the Free Spoken
    Digit Dataset (chapter ch13_speech, 3,000 recordings of 6 speakers) paired with a
    handwritten image of the *same digit* from scikit-learn's digits (chapter ch15_vision). The
    two modalities were never recorded together: the pairing is by label only
    (:func:`pair_by_label`), so the image says nothing about the audio beyond the digit (the
    two are independent given the label, exactly what a product of experts assumes). Splits
    are grouped twice: by **speaker** (the test speaker and the validation speaker are never
    heard in training) and by **glyph** (:func:`rnn_ref.numpy.vision.split_glyphs`: a test
    image is never seen in training), so a test pair is new in both modalities.

Late fusion (a weighted product of experts, renormalised)
    .. math::  \log p(c \mid x) = \sum_m w_m \log p_m(c \mid x_m)
               - \log \sum_{c'} \exp \sum_m w_m \log p_m(c' \mid x_m),

    ``late_fusion(log_probs, weights)``. With two experts and :math:`w = (1, 1)` it is the
    Bayes-optimal combination when the modalities are independent given the class *and* the
    prior is uniform (otherwise it counts the prior twice); :math:`w = (1, 0)` returns the first
    expert; weights are chosen on validation data.

Aligning sequences of different lengths (early fusion concatenates per time step)
    ``pool_to_length(x, lengths, T_out)``: output step :math:`j` is the mean of the valid frames
    :math:`s_j \le t < e_j` with :math:`s_j = \lfloor jL / T_{out} \rfloor`,
    :math:`e_j = \lceil (j + 1) L / T_{out} \rceil` (PyTorch's ``adaptive_avg_pool1d`` rule;
    neighbouring segments share a frame when :math:`T_{out}` does not divide :math:`L`).
    ``repeat_to_length(x, T_out, lengths)``: output step :math:`j` copies frame
    :math:`\lfloor jL / T_{out} \rfloor` (nearest-neighbour, PyTorch's ``interpolate(...,
    mode="nearest")`` rule); a vector (N, D) is repeated at every step. Repeating a sequence
    :math:`k` times and pooling it back to :math:`L` recovers it exactly.

The gated multimodal unit (Arevalo et al. 2017)
    .. math::
        h_a = \tanh(W_a a + b_a),\quad h_v = \tanh(W_v v + b_v),\quad
        z = \sigma(W_z [a; v] + b_z),\quad f = z \odot h_a + (1 - z) \odot h_v,

    ``gated_fusion_forward(a, v, params)`` and ``gated_fusion_backward(df, cache)``; ``params``
    holds ``W_a`` (H, Da), ``b_a`` (H,), ``W_v`` (H, Dv), ``b_v`` (H,), ``W_z`` (H, Da + Dv),
    ``b_z`` (H,). (The paper writes :math:`z` on the *visual* branch and has no biases; which
    branch :math:`z` multiplies is only a naming choice, since :math:`1 - z` is also a sigmoid.)

Words
    ``digits_to_words([3, 1, 4]) == "three one four"``, ``words_to_digits`` its inverse, and
    ``word_error_rate(refs, hyps)`` :math:`= \sum_i \mathrm{edit}(r_i, h_i) / \sum_i |r_i|` over
    whitespace-separated words (the edit distance of :func:`rnn_ref.numpy.ctc.edit_distance`).

Noise (for sweeps where one modality degrades)
    ``add_white_noise(x, snr_db, rng)``: Gaussian white noise whose power is the signal's power
    divided by :math:`10^{\mathrm{SNR}/10}`; ``add_image_noise(images, std, rng)``: Gaussian
    pixel noise of standard deviation ``std``, clipped to [0, 1] by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._activations import sigmoid
from ._checks import as_float_array, check_int, get_params
from .ctc import character_error_rate

__all__ = [
    "AVSplit",
    "AudioVisualDigits",
    "pair_by_label",
    "audio_features",
    "audio_visual_digits",
    "late_fusion",
    "pool_weights",
    "pool_to_length",
    "repeat_to_length",
    "gated_fusion_forward",
    "gated_fusion_backward",
    "DIGIT_WORDS",
    "digits_to_words",
    "words_to_digits",
    "word_error_rate",
    "add_white_noise",
    "add_image_noise",
]


def _generator(name: str, rng) -> np.random.Generator:
    """``rng`` as a Generator: an int seed (>= 0) or a Generator (used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(check_int(name, rng, 0))


def _int_labels(name: str, labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


# --- pairing and the data ------------------------------------------------------------------------


def pair_by_label(labels_a, labels_b, seed=0) -> np.ndarray:
    """For each item of modality a, an item of modality b with the same label.

    Within each label :math:`c`, the :math:`n_a` items of a (in a random order) take the
    :math:`n_b` items of b in a random order, cycling through fresh permutations when
    :math:`n_a > n_b`: every b item of that label is used :math:`\\lfloor n_a / n_b \\rfloor` or
    :math:`\\lceil n_a / n_b \\rceil` times (balanced, unlike independent draws). Pair within one
    split (pass that split's labels) so that no pair crosses splits.

    Args:
        labels_a: (Na,) integer labels of modality a.
        labels_b: (Nb,) integer labels of modality b.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        idx_b: (Na,) int64 indices into ``labels_b`` with ``labels_b[idx_b] == labels_a``.

    Raises:
        ValueError: a label of a that no item of b carries.
    """
    la = _int_labels("labels_a", labels_a)
    lb = _int_labels("labels_b", labels_b)
    rng = _generator("seed", seed)
    idx_b = np.empty(la.shape[0], dtype=np.int64)
    for c in np.unique(la):
        where_a = rng.permutation(np.flatnonzero(la == c))
        pool = np.flatnonzero(lb == c)
        if pool.size == 0:
            raise ValueError(
                f"label {int(c)} occurs in labels_a ({where_a.size} items) but not in labels_b"
            )
        rounds = -(-where_a.size // pool.size)  # ceil
        order = np.concatenate([rng.permutation(pool) for _ in range(rounds)])
        idx_b[where_a] = order[: where_a.size]
    return idx_b


def audio_features(signals, sample_rate: float, n_mfcc: int = 13, with_deltas: bool = False):
    """MFCCs (chapter ch13_speech) of each waveform, normalised per utterance by CMVN.

    Args:
        signals: a list of N waveforms (L_i,) (or one waveform (L,)).
        sample_rate: in Hz.
        n_mfcc: coefficients per frame.
        with_deltas: append the regression deltas (then D = 2 n_mfcc).

    Returns:
        a list of N float64 arrays (T_i, D), D = n_mfcc (or 2 n_mfcc), with
        :math:`T_i = 1 + \\lceil (L_i - 200) / 80 \\rceil` frames at 8 kHz (25 ms every 10 ms);
        each column has mean 0 and standard deviation 1 over its utterance.
    """
    from .speech import cmvn, deltas, mfcc

    if isinstance(signals, np.ndarray) and signals.ndim == 1:
        signals = [signals]
    out = []
    for x in signals:
        c = mfcc(x, sample_rate, n_mfcc=n_mfcc)
        if with_deltas:
            c = np.hstack([c, deltas(c, 2)])
        out.append(cmvn(c))
    return out


@dataclass(frozen=True, eq=False)
class AVSplit:
    """One split of the audio-visual digits: N pairs (recording, image) of the same digit.

    Attributes:
        audio: N float64 arrays (T_i, D): MFCC (+ deltas) after per-utterance CMVN.
        image: (N, 8, 8) float64 in [0, 1], the paired handwritten digit.
        label: (N,) int64, the digit 0-9 (the same for both modalities).
        speaker: (N,) str, the FSDD speaker of the recording.
        glyph: (N,) int64, the image's index in :func:`rnn_ref.numpy.vision.load_digit_images`.
        recording: (N,) int64, the recording's index in ``load_spoken_digits(...)``.
        signals: N float64 waveforms (L_i,), to add noise before the features are recomputed
            with :func:`audio_features`.
    """

    audio: list
    image: np.ndarray
    label: np.ndarray
    speaker: np.ndarray
    glyph: np.ndarray
    recording: np.ndarray
    signals: list

    def __len__(self) -> int:
        return len(self.audio)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64, the number of audio frames T_i of each pair."""
        return np.array([a.shape[0] for a in self.audio], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class AudioVisualDigits:
    """The three splits of :func:`audio_visual_digits` and how they were made.

    Attributes:
        train, val, test: :class:`AVSplit`.
        speakers: ``{"train": [...], "val": [...], "test": [...]}``, disjoint.
        sample_rate: of the waveforms, in Hz.
        seed: the seed that chose the speakers, the glyph split and the pairing.
        source: where both modalities come from.
    """

    train: AVSplit
    val: AVSplit
    test: AVSplit
    speakers: dict
    sample_rate: int
    seed: int
    source: str

    def split(self, name: str) -> AVSplit:
        """The split called ``name`` ("train", "val" or "test")."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"name must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


def audio_visual_digits(
    seed: int = 0,
    recordings="fsdd",
    test_speakers=None,
    val_speakers=None,
    glyph_fractions=(0.6, 0.2, 0.2),
    n_mfcc: int = 13,
    with_deltas: bool = False,
) -> AudioVisualDigits:
    """Spoken digits paired by label with handwritten digits, split by speaker and by glyph.

    1. The recordings (``rnn_ref.datasets.load_spoken_digits(recordings)``; FSDD by default,
       or a folder of WAV files) and the images (``load_digit_images``) are loaded.
    2. Speakers: ``test_speakers`` and ``val_speakers`` (lists of names), or, if None, one
       speaker each, drawn with ``seed`` from the sorted speakers; all the others train. Every
       recording of a speaker lands in that speaker's split.
    3. Glyphs: ``split_glyphs(labels, glyph_fractions, seed)``.
    4. Pairs: within each split, ``pair_by_label`` gives each recording an image of the same
       digit from that split's glyphs (the pairing's generator is seeded by ``seed`` too).
    5. Audio features: :func:`audio_features` (MFCC, optional deltas, per-utterance CMVN).

    Nothing is cached on disk; FSDD's 3,000 recordings take about a second to decode and about a
    second to featurise. Everything is a deterministic function of the arguments.

    Returns:
        :class:`AudioVisualDigits` (with FSDD and the defaults: 2,000 training pairs from 4
        speakers, 500 validation and 500 test pairs from one speaker each).
    """
    from ..datasets import load_spoken_digits
    from .vision import load_digit_images, split_glyphs

    seed = check_int("seed", seed, 0)
    spoken = load_spoken_digits(recordings)
    images, image_labels = load_digit_images()
    names = spoken.speakers
    rng = np.random.default_rng([seed, 16])

    def _names(arg, what):
        if isinstance(arg, str):
            arg = [arg]
        arg = list(arg)
        unknown = sorted(set(arg) - set(names))
        if unknown:
            raise ValueError(f"{what} {unknown} are not speakers of the recordings ({names})")
        return arg

    if test_speakers is None or val_speakers is None:
        order = [names[i] for i in rng.permutation(len(names))]
    if test_speakers is None:
        test_speakers = [s for s in order if s not in (val_speakers or [])][:1]
    test_speakers = _names(test_speakers, "test_speakers")
    if val_speakers is None:
        val_speakers = [s for s in order if s not in test_speakers][:1]
    val_speakers = _names(val_speakers, "val_speakers")
    both = sorted(set(test_speakers) & set(val_speakers))
    if both:
        raise ValueError(f"a speaker cannot be in test and validation: {both}")
    train_speakers = [s for s in names if s not in test_speakers and s not in val_speakers]
    if not train_speakers or not test_speakers or not val_speakers:
        raise ValueError(
            f"every split needs a speaker: train {train_speakers}, val {val_speakers}, "
            f"test {test_speakers} (the recordings have {len(names)} speakers)"
        )
    glyph_split = split_glyphs(image_labels, glyph_fractions, seed)
    glyphs = dict(zip(("train", "val", "test"), glyph_split, strict=True))
    groups = {"train": train_speakers, "val": val_speakers, "test": test_speakers}
    splits = {}
    for name, who in groups.items():
        rec = np.flatnonzero(np.isin(spoken.speaker, who))
        pool = glyphs[name]
        g = pool[pair_by_label(spoken.digit[rec], image_labels[pool], rng)]
        signals = [spoken.signals[i] for i in rec]
        splits[name] = AVSplit(
            audio=audio_features(signals, spoken.sample_rate, n_mfcc, with_deltas),
            image=images[g],
            label=spoken.digit[rec].copy(),
            speaker=spoken.speaker[rec].copy(),
            glyph=g.astype(np.int64),
            recording=rec.astype(np.int64),
            signals=signals,
        )
    return AudioVisualDigits(
        **splits,
        speakers={k: sorted(v) for k, v in groups.items()},
        sample_rate=int(spoken.sample_rate),
        seed=seed,
        source=(
            f"audio: {spoken.source}; images: scikit-learn's digits (UCI Optical Recognition "
            "of Handwritten Digits, Alpaydin & Kaynak); paired by label"
        ),
    )


# --- late fusion ---------------------------------------------------------------------------------


def late_fusion(log_probs, weights=None) -> np.ndarray:
    r"""Weighted product of experts, renormalised:

    .. math::  s_{n,c} = \sum_m w_m \ell^{(m)}_{n,c},\qquad
               \log p_{n,c} = s_{n,c} - \log \sum_{c'} e^{s_{n,c'}},

    with the log-sum-exp computed after subtracting the row maximum (exact for scores of any
    size, e.g. -1e3). A term with :math:`w_m = 0` is dropped, so a :math:`-\infty` in an
    ignored expert does no harm.

    Args:
        log_probs: a sequence of M arrays (N, C) (or one array (M, N, C)): each expert's
            log-probabilities (any log-scores work: a constant per row cancels).
        weights: (M,) finite, >= 0; default all :math:`1/M` (the geometric mean).

    Returns:
        (N, C) float64 log-probabilities: ``exp`` of each row sums to 1.
    """
    if isinstance(log_probs, np.ndarray):
        L = as_float_array("log_probs", log_probs, 3).astype(np.float64)
    else:
        parts = [as_float_array(f"log_probs[{m}]", p, 2) for m, p in enumerate(log_probs)]
        if not parts:
            raise ValueError("log_probs is empty: late fusion needs at least one expert")
        for m, p in enumerate(parts[1:], start=1):
            if p.shape != parts[0].shape:
                raise ValueError(
                    f"log_probs[{m}] has shape {p.shape} but log_probs[0] has {parts[0].shape};"
                    " every expert must score the same N items over the same C classes"
                )
        L = np.stack(parts).astype(np.float64)
    M, N, C = L.shape
    if M == 0 or C == 0:
        raise ValueError(f"log_probs must have M >= 1 experts and C >= 1 classes, got {L.shape}")
    if np.isnan(L).any() or np.isposinf(L).any():
        raise ValueError("log_probs contains NaN or +inf")
    if weights is None:
        w = np.full(M, 1.0 / M)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (M,):
            raise ValueError(f"weights must have shape ({M},) (one per expert), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be finite and >= 0, got {w}")
    used = w > 0
    if not used.any():  # every expert ignored: the uniform distribution
        return np.full((N, C), -math.log(C))
    s = np.einsum("m,mnc->nc", w[used], L[used])
    top = s.max(axis=1, keepdims=True)
    if not np.all(np.isfinite(top)):
        n = int(np.flatnonzero(~np.isfinite(top[:, 0]))[0])
        raise ValueError(
            f"item n={n}: every class has probability 0 under some weighted expert; the fused"
            " distribution is undefined"
        )
    s = s - top
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


# --- aligning sequences --------------------------------------------------------------------------


def _lengths(lengths, N: int, T: int) -> np.ndarray:
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    lengths = _int_labels("lengths", lengths)
    if lengths.shape != (N,):
        raise ValueError(f"lengths must have shape ({N},) (one per sequence), got {lengths.shape}")
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths must be in 1..T = {T} (a sequence needs a frame), got "
            f"{int(lengths.min())}..{int(lengths.max())}"
        )
    return lengths


def pool_weights(lengths, T: int, T_out: int) -> np.ndarray:
    r"""The averaging matrix of :func:`pool_to_length`, (N, T_out, T):

    :math:`A_{n,j,t} = 1 / (e_j - s_j)` for :math:`s_j \le t < e_j`, else 0, with
    :math:`s_j = \lfloor j L_n / T_{out} \rfloor`, :math:`e_j = \lceil (j + 1) L_n / T_{out}
    \rceil`. Each row sums to 1 and touches only the first :math:`L_n` frames, so
    ``A @ x`` pools a padded batch (in NumPy or, as a tensor, in torch; it is also the
    Jacobian of the pooling).
    """
    T = check_int("T", T, 1)
    T_out = check_int("T_out", T_out, 1)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (N,), got shape {lengths.shape}")
    lengths = _lengths(lengths, lengths.shape[0], T)
    Ln = lengths[:, None]
    j = np.arange(T_out)[None, :]
    start = (j * Ln) // T_out  # floor
    end = -((-(j + 1) * Ln) // T_out)  # ceil, in integers (no float rounding)
    t = np.arange(T)[None, None, :]
    inside = (t >= start[:, :, None]) & (t < end[:, :, None])
    return inside / (end - start)[:, :, None]


def pool_to_length(x, lengths=None, T_out: int = 1) -> np.ndarray:
    r"""Shorten (or stretch) each sequence to ``T_out`` steps by averaging segments.

    Output step :math:`j` of sequence :math:`n` (valid length :math:`L = L_n`) is

    .. math::  y_{n,j} = \frac{1}{e_j - s_j} \sum_{t = s_j}^{e_j - 1} x_{n,t},\quad
               s_j = \lfloor jL / T_{out} \rfloor,\ e_j = \lceil (j + 1)L / T_{out} \rceil,

    PyTorch's ``adaptive_avg_pool1d`` rule: the segments cover the valid frames in order, have
    :math:`\lceil L/T_{out} \rceil` or :math:`\lceil L/T_{out} \rceil + 1` frames (since
    :math:`e_j - s_j \ge L / T_{out}`), and are disjoint when :math:`T_{out}` divides :math:`L`
    (neighbours share one frame otherwise); when :math:`L < T_{out}` frames are reused.
    Padding frames (:math:`t \ge L`) are never read. ``T_out = 1`` is the mean over time.

    Args:
        x: (N, T, D).
        lengths: (N,) ints in 1..T, or None (all T).
        T_out: the common output length, >= 1.

    Returns:
        (N, T_out, D) float64.
    """
    x = as_float_array("x", x, 3).astype(np.float64, copy=False)
    N, T, _ = x.shape
    if T == 0:
        raise ValueError(f"x has no time steps (shape {x.shape}); it needs T >= 1")
    A = pool_weights(_lengths(lengths, N, T), T, T_out)
    return np.einsum("njt,ntd->njd", A, x)


def repeat_to_length(x, T_out: int, lengths=None) -> np.ndarray:
    r"""Stretch each sequence to ``T_out`` steps by repeating frames (nearest neighbour).

    For a sequence (N, T, D) with valid length :math:`L = L_n`, output step :math:`j` copies
    frame :math:`\lfloor jL / T_{out} \rfloor` (PyTorch's ``interpolate(mode="nearest")`` rule):
    with :math:`T_{out} = kL` every frame appears :math:`k` times in order; with
    :math:`T_{out} < L` frames are skipped (use :func:`pool_to_length` to shorten). A vector
    (N, D), such as a pooled image embedding, is repeated at every one of the ``T_out`` steps:
    the way to give a sequence model a per-step copy of a global feature.

    Args:
        x: (N, T, D), or (N, D) for one vector per item.
        T_out: the output length, >= 1.
        lengths: (N,) ints in 1..T for a padded (N, T, D) batch, or None (all T); not allowed
            with (N, D).

    Returns:
        (N, T_out, D) float64, a new array.
    """
    T_out = check_int("T_out", T_out, 1)
    arr = np.asarray(x)
    if arr.ndim == 2:
        if lengths is not None:
            raise ValueError("lengths applies to sequences (N, T, D), not to vectors (N, D)")
        v = as_float_array("x", arr, 2).astype(np.float64)
        return np.repeat(v[:, None, :], T_out, axis=1)
    x = as_float_array("x", arr, 3).astype(np.float64, copy=False)
    N, T, _ = x.shape
    if T == 0:
        raise ValueError(f"x has no time steps (shape {x.shape}); it needs T >= 1")
    Ln = _lengths(lengths, N, T)[:, None]
    src = (np.arange(T_out)[None, :] * Ln) // T_out  # (N, T_out), each < L_n
    return np.take_along_axis(x, src[:, :, None], axis=1)


# --- the gated multimodal unit -------------------------------------------------------------------


def gated_fusion_forward(a, v, params):
    r"""The gated multimodal unit (Arevalo et al. 2017) on a batch.

    .. math::
        h_a = \tanh(a W_a^\top + b_a),\quad h_v = \tanh(v W_v^\top + b_v),\quad
        z = \sigma([a; v] W_z^\top + b_z),\quad f = z \odot h_a + (1 - z) \odot h_v.

    Each unit of :math:`f` is a convex combination of the two modalities' features, the weight
    :math:`z` computed from *both* inputs, so the unit can lean on the cleaner modality item by
    item (which a fixed late-fusion weight cannot).

    Args:
        a: (N, Da) features of the first modality (e.g. audio).
        v: (N, Dv) features of the second (e.g. vision).
        params: ``W_a`` (H, Da), ``b_a`` (H,), ``W_v`` (H, Dv), ``b_v`` (H,),
            ``W_z`` (H, Da + Dv) (columns: first a's, then v's), ``b_z`` (H,).

    Returns:
        f: (N, H) float64, and ``cache`` for :func:`gated_fusion_backward`.
    """
    a = as_float_array("a", a, 2).astype(np.float64, copy=False)
    v = as_float_array("v", v, 2).astype(np.float64, copy=False)
    if a.shape[0] != v.shape[0]:
        raise ValueError(
            f"a (shape {a.shape}) and v (shape {v.shape}) must have the same batch size N"
        )
    Da, Dv = a.shape[1], v.shape[1]
    W_a = np.asarray(params.get("W_a")) if isinstance(params, dict) else None
    H = W_a.shape[0] if W_a is not None and W_a.ndim == 2 else None
    p = get_params(
        params,
        {
            "W_a": (H, Da),
            "b_a": (H,),
            "W_v": (H, Dv),
            "b_v": (H,),
            "W_z": (H, Da + Dv),
            "b_z": (H,),
        },
    )
    p = {k: val.astype(np.float64, copy=False) for k, val in p.items()}
    av = np.concatenate([a, v], axis=1)
    h_a = np.tanh(a @ p["W_a"].T + p["b_a"])
    h_v = np.tanh(v @ p["W_v"].T + p["b_v"])
    z = sigmoid(av @ p["W_z"].T + p["b_z"])
    f = z * h_a + (1.0 - z) * h_v
    return f, (a, v, av, h_a, h_v, z, p)


def gated_fusion_backward(df, cache):
    r"""Gradients of the gated multimodal unit.

    With :math:`g = \partial L / \partial f` (N, H):

    .. math::
        \delta_a = g \odot z \odot (1 - h_a^2),\quad
        \delta_v = g \odot (1 - z) \odot (1 - h_v^2),\quad
        \delta_z = g \odot (h_a - h_v) \odot z (1 - z),

    :math:`dW_a = \delta_a^\top a`, :math:`db_a = \sum_n \delta_a`, likewise for :math:`v`
    and for :math:`z` with input :math:`[a; v]`; :math:`da = \delta_a W_a + (\delta_z W_z)_{:,
    :D_a}`, :math:`dv = \delta_v W_v + (\delta_z W_z)_{:, D_a:}` (each input reaches the output
    through its own branch *and* through the gate).

    Returns:
        ``(da (N, Da), dv (N, Dv), grads)``, ``grads`` keyed like ``params``.
    """
    a, v, av, h_a, h_v, z, p = cache
    df = as_float_array("df", df, 2).astype(np.float64, copy=False)
    if df.shape != z.shape:
        raise ValueError(f"df must have shape {z.shape} like f, got {df.shape}")
    d_a = df * z * (1.0 - h_a**2)
    d_v = df * (1.0 - z) * (1.0 - h_v**2)
    d_z = df * (h_a - h_v) * z * (1.0 - z)
    dav = d_z @ p["W_z"]
    Da = a.shape[1]
    da = d_a @ p["W_a"] + dav[:, :Da]
    dv = d_v @ p["W_v"] + dav[:, Da:]
    grads = {
        "W_a": d_a.T @ a,
        "b_a": d_a.sum(axis=0),
        "W_v": d_v.T @ v,
        "b_v": d_v.sum(axis=0),
        "W_z": d_z.T @ av,
        "b_z": d_z.sum(axis=0),
    }
    return da, dv, grads


# --- words and the word error rate ---------------------------------------------------------------

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The English word of each digit 0-9."""
_WORD_TO_DIGIT = {w: d for d, w in enumerate(DIGIT_WORDS)}


def digits_to_words(digits) -> str:
    """``[3, 1, 4]`` (or ``"314"``, or an int array) -> ``"three one four"`` (one space between
    words; an empty sequence gives ``""``)."""
    if isinstance(digits, str):
        if not all(ch in "0123456789" for ch in digits):
            raise ValueError(f"digits as a str must hold only the characters 0-9, got {digits!r}")
        seq = [int(ch) for ch in digits]
    else:
        arr = np.asarray(digits)
        if arr.ndim != 1:
            raise ValueError(f"digits must be a 1-D sequence, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"digits must be integers, got dtype {arr.dtype}")
        seq = arr.tolist()
        bad = [d for d in seq if not 0 <= d <= 9]
        if bad:
            raise ValueError(f"digits must be in 0..9 (strip padding first), got {bad[0]}")
    return " ".join(DIGIT_WORDS[d] for d in seq)


def words_to_digits(words: str) -> list[int]:
    """``"three one four"`` -> ``[3, 1, 4]``: whitespace-separated, case-insensitive digit words."""
    if not isinstance(words, str):
        raise TypeError(f"words must be a str, got {type(words).__name__}")
    out = []
    for w in words.split():
        d = _WORD_TO_DIGIT.get(w.lower())
        if d is None:
            raise ValueError(f"{w!r} is not a digit word (expected one of {list(DIGIT_WORDS)})")
        out.append(d)
    return out


def _words(name: str, s) -> list[str]:
    if isinstance(s, str):
        return s.split()
    if isinstance(s, list | tuple) and all(isinstance(w, str) for w in s):
        return list(s)
    raise TypeError(f"{name} must be a str (words separated by spaces) or a list of words")


def word_error_rate(refs, hyps) -> float:
    r"""WER :math:`= \sum_i \mathrm{edit}(r_i, h_i) / \sum_i |r_i|` over a corpus.

    Each reference and hypothesis is a string split on whitespace (or a list of words); the
    edit distance counts word insertions, deletions and substitutions
    (:func:`rnn_ref.numpy.ctc.edit_distance`). It is 0 only if every hypothesis equals its
    reference, 1 for empty hypotheses, and can exceed 1 (insertions). A corpus rate, not the
    mean of per-sentence rates.

    Raises:
        ValueError: lists of different lengths, or no reference word at all (undefined rate).
    """
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError(
            "refs and hyps must be lists of sentences (a str is one sentence: wrap it in a list)"
        )
    refs = [_words(f"refs[{i}]", r) for i, r in enumerate(refs)]
    hyps = [_words(f"hyps[{i}]", h) for i, h in enumerate(hyps)]
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps differ in length: {len(refs)} != {len(hyps)}")
    if sum(len(r) for r in refs) == 0:
        raise ValueError("the references hold no words: the word error rate is undefined")
    return character_error_rate(refs, hyps)  # the same corpus rate, with words as symbols


# --- noise -------------------------------------------------------------------------------------


def add_white_noise(x, snr_db: float, rng) -> np.ndarray:
    r"""``x`` plus Gaussian white noise at a signal-to-noise ratio of ``snr_db`` decibels.

    .. math::  y = x + \sigma \epsilon,\quad \epsilon \sim \mathcal N(0, I),\quad
               \sigma^2 = \frac{P_x}{10^{\mathrm{SNR}/10}},\quad P_x = \frac1L \sum_t x_t^2,

    so :math:`10 \log_{10}(P_x / \sigma^2) = \mathrm{SNR}` (20 dB: noise power 1% of the
    signal's; 0 dB: equal; negative: noise louder). ``snr_db = inf`` returns a copy. The result
    is not clipped.

    Args:
        x: a waveform (L,).
        snr_db: a float (may be negative, or ``inf``).
        rng: an int seed or a ``numpy.random.Generator``.
    """
    x = as_float_array("x", x, 1).astype(np.float64)
    if x.size == 0:
        raise ValueError("x is empty (shape (0,))")
    if isinstance(snr_db, bool) or not isinstance(snr_db, int | float | np.integer | np.floating):
        raise TypeError(f"snr_db must be a number, got {snr_db!r}")
    if math.isnan(snr_db) or snr_db == -math.inf:
        raise ValueError(f"snr_db must be a number or +inf, got {snr_db}")
    rng = _generator("rng", rng)
    if snr_db == math.inf:
        return x
    power = float(np.mean(x**2))
    sigma = math.sqrt(power / 10.0 ** (snr_db / 10.0))
    return x + sigma * rng.standard_normal(x.shape)


def add_image_noise(images, std: float, rng, clip: bool = True) -> np.ndarray:
    r"""Images plus independent Gaussian noise :math:`\mathcal N(0, \mathrm{std}^2)` on every
    pixel, clipped to [0, 1] (the range of a pixel) unless ``clip=False``.

    Args:
        images: any shape, e.g. (N, 8, 8), values in [0, 1].
        std: the noise's standard deviation, >= 0 (0 returns a copy).
        rng: an int seed or a ``numpy.random.Generator``.
    """
    arr = np.asarray(images)
    x = as_float_array("images", arr, arr.ndim).astype(np.float64)
    if isinstance(std, bool) or not isinstance(std, int | float | np.integer | np.floating):
        raise TypeError(f"std must be a number, got {std!r}")
    if not (std >= 0 and math.isfinite(std)):
        raise ValueError(f"std must be finite and >= 0, got {std}")
    rng = _generator("rng", rng)
    y = x + std * rng.standard_normal(x.shape)
    return np.clip(y, 0.0, 1.0) if clip else y
