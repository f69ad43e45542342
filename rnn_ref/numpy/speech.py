r"""Speech features and dynamic time warping in NumPy (chapter ch13_speech).

One utterance is a 1-D signal ``x`` (L,) sampled at ``sample_rate`` Hz; its features are a
matrix (T, D), one row per frame (T frames, D coefficients). A batch of utterances of different
lengths is a list of such matrices, or a padded array (N, T_max, D) with ``lengths`` (N,).
Every float returned is float64; no input is modified in place; bad input raises
``ValueError`` or ``TypeError`` with a message that names the argument and its shape.

The MFCC pipeline (Davis and Mermelstein 1980; the HTK book's conventions)
    1. ``pre_emphasis(x, alpha)``: :math:`y_0 = x_0,\ y_t = x_t - \alpha x_{t-1}` (a first-order
       high-pass filter that flattens the spectral tilt of voiced speech).
    2. ``frame_signal(y, frame_length, hop)`` -> (F, frame_length): frame ``f`` holds samples
       ``f * hop .. f * hop + frame_length - 1``. **Convention** (that of
       ``python_speech_features.sigproc.framesig``): the last partial frame is kept and padded
       with zeros, so :math:`F = 1 + \lceil (L - \text{frame\_length}) / \text{hop} \rceil`
       when :math:`L > \text{frame\_length}` and :math:`F = 1` otherwise (a signal shorter than
       a frame is one zero-padded frame). Every sample lies in at least one frame.
    3. ``window_frames(frames, window)``: multiply each frame by a window :math:`w` (default
       the *symmetric* Hamming window ``np.hamming``, :math:`w_n = 0.54 - 0.46 \cos(2\pi n /
       (N - 1))`), which tapers the frame edges and so reduces spectral leakage.
    4. ``power_spectrum(frames, n_fft)`` -> (F, K), :math:`K = n_{fft}/2 + 1` (integer
       division): :math:`P_{f,k} = |\sum_{n} s_{f,n} e^{-2\pi i k n / n_{fft}}|^2 / n_{fft}`,
       frames zero-padded to ``n_fft`` samples (``n_fft >= frame_length``).
    5. ``mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)`` -> (M, K): M triangles whose
       corner frequencies are equally spaced on the HTK mel scale :math:`m(f) = 2595
       \log_{10}(1 + f / 700)`; :math:`E_{f,m} = \sum_k P_{f,k} H_{m,k}`.
    6. log with a floor: :math:`\log \max(E, \text{floor})` (``log_floor = 1e-10``, so a silent
       frame or an empty filter gives :math:`\log 10^{-10} \approx -23`, not :math:`-\infty`).
    7. DCT-II, orthonormal (``scipy.fft.dct(..., type=2, norm="ortho")``), keep the first
       ``n_mfcc`` coefficients: :math:`c_{f,i} = s_i \sum_{m=0}^{M-1} \log E_{f,m}
       \cos(\pi i (2m + 1) / (2M))`, :math:`s_0 = \sqrt{1/M}`, :math:`s_{i>0} = \sqrt{2/M}`.

    ``mfcc(x, sample_rate)`` runs the whole pipeline; with ``snap_to_bins=True`` it equals
    ``python_speech_features.mfcc(x, sample_rate, winlen, winstep, numcep, nfilt, nfft,
    lowfreq, highfreq, preemph, ceplifter=0, appendEnergy=False, winfunc=np.hamming)``.

Post-processing
    ``deltas(features, width=2)``: the regression deltas of HTK, :math:`d_t = \sum_{n=1}^{N}
    n (c_{t+n} - c_{t-n}) / (2 \sum_{n=1}^N n^2)`, the sequence extended by repeating its first
    and last frame (``python_speech_features.delta``).
    ``cmvn(features, eps=1e-8)``: per-utterance cepstral mean and variance normalisation,
    :math:`\hat c_{t,d} = (c_{t,d} - \mu_d) / \sigma_d` with the mean and (population, ddof=0)
    standard deviation over the T frames of *this* utterance; a coefficient with
    :math:`\sigma_d \le` ``eps`` (constant, e.g. T = 1) is only centred, never divided by ~0.
    ``pooled_statistics(features, with_deltas=False)``: the fixed-length vector (mean, std) of
    the frames, (2D,), or with deltas (mean, std, delta mean, delta std), (4D,).
    ``pad_features(list of (T_i, D))`` -> ``(padded (N, T_max, D), lengths (N,))`` zero padded.

Dynamic time warping (the classic template-matching recogniser)
    Local cost :math:`c(i, j) = \lVert a_i - b_j \rVert_2`, accumulated cost
    :math:`D(i, j) = c(i, j) + \min(D(i-1, j), D(i, j-1), D(i-1, j-1))`, :math:`D(0, 0) = c(0,
    0)`; the distance is :math:`D(T_a - 1, T_b - 1)`, the cost of the cheapest monotone path
    from (0, 0) to the end with steps (1, 0), (0, 1), (1, 1), *not* divided by the path length.
    It is symmetric, 0 between a sequence and itself, and 0 between a sequence and a copy with
    repeated frames (time-warp invariance). ``band=r`` (Sakoe and Chiba 1978) allows only cells
    with :math:`|i - j| \le \max(r, |T_a - T_b|)`: the band is widened to the length difference
    so that the end cell is always reachable (the convention of the textbook pseudo-code), and a
    band never lowers the distance.
    ``dtw_distance(a, b, band=None)``, ``dtw_path(a, b, band=None)`` (one pair), and
    ``dtw_distance_matrix(A, B, band=None)`` (all pairs, vectorised over pairs: the local costs
    of a block of pairs come from one matrix product, then the recursion runs over the cells of
    the grid with every pair of the block at once; sequences are sorted by length and padded only
    within a block). It agrees with ``dtw_distance`` to about 1e-7 relative (the product computes
    :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a \cdot b`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from ._checks import as_float_array, check_int

__all__ = [
    "pre_emphasis",
    "frame_signal",
    "num_frames",
    "get_window",
    "window_frames",
    "power_spectrum",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "log_mel_energies",
    "mfcc_from_power",
    "mfcc",
    "deltas",
    "cmvn",
    "pooled_statistics",
    "pad_features",
    "dtw_distance",
    "dtw_path",
    "dtw_distance_matrix",
]


# --- validation helpers --------------------------------------------------------------------------


def _signal(name: str, x) -> np.ndarray:
    x = as_float_array(name, x, 1).astype(np.float64, copy=False)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); a signal needs at least one sample")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _features(name: str, a, allow_empty: bool = False) -> np.ndarray:
    a = as_float_array(name, a, 2).astype(np.float64, copy=False)
    if a.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no frames (shape {a.shape}); it needs T >= 1")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has no coefficients (shape {a.shape}); it needs D >= 1")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _band(band) -> int | None:
    return None if band is None else check_int("band", band, 0)


# --- 1-4: pre-emphasis, framing, window, power spectrum -----------------------------------------


def pre_emphasis(x, alpha: float = 0.97) -> np.ndarray:
    r"""Pre-emphasis :math:`y_0 = x_0,\ y_t = x_t - \alpha x_{t-1}`.

    Args:
        x: the signal (L,), L >= 1.
        alpha: the coefficient, usually 0.95-0.97; 0 returns a copy of ``x``.

    Returns:
        y: (L,) float64.
    """
    x = _signal("x", x)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a number, got {alpha!r}")
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    y = x.copy()
    y[1:] -= alpha * x[:-1]
    return y


def num_frames(L: int, frame_length: int, hop: int) -> int:
    r"""Number of frames of a signal of L samples: :math:`F = 1 + \lceil (L - \text{frame\_length})
    / \text{hop} \rceil` if :math:`L > \text{frame\_length}`, else 1 (see :func:`frame_signal`)."""
    L = check_int("L", L, 1)
    frame_length = check_int("frame_length", frame_length, 1)
    hop = check_int("hop", hop, 1)
    if L <= frame_length:
        return 1
    return 1 + -(-(L - frame_length) // hop)  # integer ceil: no float rounding


def frame_signal(x, frame_length: int, hop: int) -> np.ndarray:
    r"""Cut a signal into overlapping frames, the last one zero-padded.

    Frame ``f`` is ``x[f * hop : f * hop + frame_length]``, with zeros where it runs past the
    end. There are :math:`F = 1 + \lceil (L - \text{frame\_length}) / \text{hop} \rceil` frames
    when :math:`L > \text{frame\_length}` and one (zero-padded) frame otherwise, the convention
    of ``python_speech_features.sigproc.framesig``: every sample is in some frame, the last
    frame is the first whose end reaches the end of the signal. (librosa's ``center=False``
    drops the partial frame instead; ``center=True`` pads both ends.)

    Args:
        x: the signal (L,), L >= 1.
        frame_length: samples per frame (e.g. 25 ms at 8 kHz = 200), >= 1.
        hop: samples between the starts of consecutive frames (e.g. 10 ms = 80), >= 1.
            ``hop > frame_length`` is allowed (samples between frames are skipped).

    Returns:
        frames: (F, frame_length) float64, a new array (not a view of ``x``).
    """
    x = _signal("x", x)
    frame_length = check_int("frame_length", frame_length, 1)
    hop = check_int("hop", hop, 1)
    F = num_frames(x.shape[0], frame_length, hop)
    padded = np.zeros((F - 1) * hop + frame_length)
    padded[: x.shape[0]] = x
    idx = np.arange(F)[:, None] * hop + np.arange(frame_length)[None, :]
    return padded[idx]


def get_window(window, frame_length: int) -> np.ndarray:
    """The analysis window (frame_length,) named by ``window``.

    ``"hamming"`` (``np.hamming``, symmetric: :math:`0.54 - 0.46\\cos(2\\pi n/(N-1))`),
    ``"hann"`` (``np.hanning``, symmetric), ``"rectangular"`` or ``None`` (ones), a callable
    ``f(N) -> (N,)`` (as ``python_speech_features``' ``winfunc``), or an array (frame_length,).
    """
    frame_length = check_int("frame_length", frame_length, 1)
    if window is None or (isinstance(window, str) and window in ("rectangular", "boxcar")):
        w = np.ones(frame_length)
    elif isinstance(window, str):
        if window == "hamming":
            w = np.hamming(frame_length)
        elif window in ("hann", "hanning"):
            w = np.hanning(frame_length)
        else:
            raise ValueError(
                f"window must be 'hamming', 'hann', 'rectangular', None, a callable or an array;"
                f" got {window!r}"
            )
    elif callable(window):
        w = np.asarray(window(frame_length), dtype=np.float64)
    else:
        w = as_float_array("window", window, 1).astype(np.float64, copy=False)
    if w.shape != (frame_length,):
        raise ValueError(f"window must have shape ({frame_length},), got {w.shape}")
    return w


def window_frames(frames, window="hamming") -> np.ndarray:
    """Multiply every frame (F, frame_length) by the window (see :func:`get_window`)."""
    frames = _features("frames", frames)
    return frames * get_window(window, frames.shape[1])[None, :]


def power_spectrum(frames, n_fft: int) -> np.ndarray:
    r"""Periodogram of each frame: :math:`P_{f,k} = |\mathrm{rfft}(s_f, n_{fft})_k|^2 / n_{fft}`.

    Args:
        frames: (F, frame_length) (already windowed), ``frame_length <= n_fft``; each frame is
            zero-padded to ``n_fft`` samples.
        n_fft: the FFT size, >= frame_length.

    Returns:
        P: (F, n_fft // 2 + 1) float64, bin ``k`` at frequency ``k * sample_rate / n_fft``.
    """
    frames = _features("frames", frames)
    n_fft = check_int("n_fft", n_fft, 1)
    if n_fft < frames.shape[1]:
        raise ValueError(
            f"n_fft = {n_fft} is shorter than the frames (shape {frames.shape}); it must be"
            f" >= frame_length = {frames.shape[1]} (truncating a frame would lose samples)"
        )
    spec = np.fft.rfft(frames, n=n_fft, axis=1)
    return (spec.real**2 + spec.imag**2) / n_fft


# --- 5: the mel filterbank -----------------------------------------------------------------------


def hz_to_mel(f):
    r"""HTK mel scale :math:`m = 2595 \log_{10}(1 + f / 700)` (float or array)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    r"""Inverse of :func:`hz_to_mel`: :math:`f = 700 (10^{m / 2595} - 1)`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int,
    n_fft: int,
    sample_rate: float,
    f_min: float = 0.0,
    f_max: float | None = None,
    snap_to_bins: bool = False,
) -> np.ndarray:
    r"""Triangular filters equally spaced on the HTK mel scale, (n_mels, n_fft // 2 + 1).

    The ``n_mels + 2`` corner frequencies :math:`f_0 < f_1 < \dots < f_{M+1}` are equally
    spaced in mel between ``f_min`` and ``f_max`` (default ``sample_rate / 2``); filter
    :math:`m` (0-based) rises from :math:`f_m` to its centre :math:`f_{m+1}` and falls to
    :math:`f_{m+2}`. Bin :math:`k` sits at :math:`\phi_k = k \cdot \text{sample\_rate} /
    n_{fft}`.

    ``snap_to_bins=False`` (default, exact): the triangle is evaluated at the bin frequencies,

    .. math::  H_{m,k} = \max\Bigl(0, \min\Bigl(\frac{\phi_k - f_m}{f_{m+1} - f_m},
               \frac{f_{m+2} - \phi_k}{f_{m+2} - f_{m+1}}\Bigr)\Bigr),

    as ``librosa.filters.mel(htk=True, norm=None)`` computes it. It equals 1 only if the centre
    falls on a bin; narrow low-frequency filters can fall between two bins and be all zero (a
    warning sign that ``n_mels`` is too large for ``n_fft``).

    ``snap_to_bins=True`` reproduces ``python_speech_features.get_filterbanks`` exactly: the
    corners are first rounded down to bins, :math:`b_m = \lfloor (n_{fft} + 1) f_m /
    \text{sample\_rate} \rfloor`, and the triangle is drawn between bins, :math:`H_{m,k} = (k -
    b_m) / (b_{m+1} - b_m)` for :math:`b_m \le k < b_{m+1}`, :math:`(b_{m+2} - k) / (b_{m+2} -
    b_{m+1})` for :math:`b_{m+1} \le k < b_{m+2}`, else 0: every filter peaks at exactly 1 (on
    bin :math:`b_{m+1}`) unless two corners land on one bin, but its edges are shifted by up to
    one bin (e.g. 31 Hz at 8 kHz with 256 bins), which matters most for the narrow low filters.
    (The right edge :math:`b_{m+2}` itself gets weight 0 in both.)

    Args:
        n_mels: number of filters M >= 1.
        n_fft: FFT size (>= 2).
        sample_rate: in Hz, > 0.
        f_min, f_max: band edges in Hz, ``0 <= f_min < f_max <= sample_rate / 2``.
        snap_to_bins: see above.

    Returns:
        H: (n_mels, n_fft // 2 + 1) float64, values in [0, 1].
    """
    n_mels = check_int("n_mels", n_mels, 1)
    n_fft = check_int("n_fft", n_fft, 2)
    sample_rate = _positive_float("sample_rate", sample_rate)
    nyquist = sample_rate / 2.0
    f_max = nyquist if f_max is None else float(f_max)
    f_min = float(f_min)
    if not (0.0 <= f_min < f_max <= nyquist):
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2 = {nyquist}; got f_min = {f_min},"
            f" f_max = {f_max}"
        )
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    K = n_fft // 2 + 1
    k = np.arange(K, dtype=np.float64)
    if snap_to_bins:
        b = np.floor((n_fft + 1) * corners / sample_rate)
        lo, c, hi = b[:-2, None], b[1:-1, None], b[2:, None]
        rise = np.divide(k - lo, c - lo, out=np.zeros((n_mels, K)), where=c > lo)
        fall = np.divide(hi - k, hi - c, out=np.zeros((n_mels, K)), where=hi > c)
        H = np.where((k >= lo) & (k < c), rise, 0.0) + np.where((k >= c) & (k < hi), fall, 0.0)
        return H
    phi = k * sample_rate / n_fft
    lo, c, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rise = (phi - lo) / (c - lo)
    fall = (hi - phi) / (hi - c)
    return np.maximum(0.0, np.minimum(rise, fall))


# --- 6-7: log and DCT ----------------------------------------------------------------------------


def log_mel_energies(P, fbank, log_floor: float = 1e-10) -> np.ndarray:
    r"""Log mel energies :math:`\log \max(P H^\top, \text{floor})`, (F, M).

    ``P`` (F, K) a power spectrum, ``fbank`` (M, K) from :func:`mel_filterbank`. The floor keeps
    silent frames (digital zero) and empty filters finite.
    """
    P = _features("P", P)
    fbank = _features("fbank", fbank)
    if fbank.shape[1] != P.shape[1]:
        raise ValueError(
            f"fbank has {fbank.shape[1]} frequency bins (shape {fbank.shape}) but P has"
            f" {P.shape[1]} (shape {P.shape}); build both with the same n_fft"
        )
    if np.any(P < 0):
        raise ValueError("P must be a power spectrum (no negative values)")
    log_floor = _positive_float("log_floor", log_floor)
    return np.log(np.maximum(P @ fbank.T, log_floor))


def mfcc_from_power(P, fbank, n_mfcc: int, log_floor: float = 1e-10) -> np.ndarray:
    r"""MFCCs of a power spectrum: the first ``n_mfcc`` coefficients of the orthonormal DCT-II
    of the log mel energies (see :func:`log_mel_energies`),

    .. math::  c_{f,i} = s_i \sum_{m=0}^{M-1} \log E_{f,m} \cos\frac{\pi i (2m + 1)}{2M},
               \quad s_0 = \sqrt{1/M},\ s_{i>0} = \sqrt{2/M},\quad i < n_{mfcc} \le M.

    Args:
        P: (F, K) power spectrum, ``fbank``: (M, K), ``n_mfcc``: 1 <= n_mfcc <= M.

    Returns:
        c: (F, n_mfcc) float64. :math:`c_0 = \sqrt{M}` times the mean log energy (loudness);
        the next ones describe the spectral envelope's shape, coarse to fine.
    """
    logE = log_mel_energies(P, fbank, log_floor)
    n_mfcc = check_int("n_mfcc", n_mfcc, 1)
    if n_mfcc > logE.shape[1]:
        raise ValueError(f"n_mfcc = {n_mfcc} exceeds the number of mel filters M = {logE.shape[1]}")
    return scipy.fft.dct(logE, type=2, axis=1, norm="ortho")[:, :n_mfcc]


def mfcc(
    x,
    sample_rate: float,
    n_mfcc: int = 13,
    frame_seconds: float = 0.025,
    hop_seconds: float = 0.010,
    n_fft: int | None = None,
    n_mels: int = 26,
    f_min: float = 0.0,
    f_max: float | None = None,
    alpha: float = 0.97,
    window="hamming",
    log_floor: float = 1e-10,
    snap_to_bins: bool = False,
) -> np.ndarray:
    """MFCCs of one utterance, (F, n_mfcc): pre-emphasis, framing, window, power spectrum, mel
    filterbank, log, DCT (see the module docstring).

    Defaults: 25 ms frames every 10 ms (``round(seconds * sample_rate)`` samples, halves
    rounded up as ``python_speech_features`` does: 200 and 80 at 8 kHz), ``n_fft`` the smallest
    power of two >= the frame length (256 at 8 kHz), 26 filters from 0 Hz to Nyquist, symmetric
    Hamming window, pre-emphasis 0.97, 13 coefficients, no lifter, :math:`c_0` kept (not
    replaced by the log frame energy).
    """
    x = _signal("x", x)
    sample_rate = _positive_float("sample_rate", sample_rate)
    frame_length = int(
        math.floor(_positive_float("frame_seconds", frame_seconds) * sample_rate + 0.5)
    )
    hop = int(math.floor(_positive_float("hop_seconds", hop_seconds) * sample_rate + 0.5))
    if frame_length < 1 or hop < 1:
        raise ValueError(
            f"frame_seconds and hop_seconds must each span at least one sample at {sample_rate}"
            f" Hz (got {frame_length} and {hop} samples)"
        )
    if n_fft is None:
        n_fft = 1 << (frame_length - 1).bit_length()
    frames = window_frames(frame_signal(pre_emphasis(x, alpha), frame_length, hop), window)
    P = power_spectrum(frames, n_fft)
    H = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max, snap_to_bins=snap_to_bins)
    return mfcc_from_power(P, H, n_mfcc, log_floor)


# --- post-processing -----------------------------------------------------------------------------


def deltas(features, width: int = 2) -> np.ndarray:
    r"""Regression deltas :math:`d_t = \sum_{n=1}^{N} n (c_{t+n} - c_{t-n}) / (2\sum_{n=1}^N n^2)`,
    (T, D), ``N = width >= 1``, the sequence extended by repeating its end frames (so a
    constant sequence, or T = 1, has deltas 0). Deltas of deltas are ``deltas(deltas(c))``."""
    c = _features("features", features)
    N = check_int("width", width, 1)
    T = c.shape[0]
    padded = np.pad(c, ((N, N), (0, 0)), mode="edge")
    d = np.zeros_like(c)
    for n in range(1, N + 1):
        d += n * (padded[N + n : N + n + T] - padded[N - n : N - n + T])
    return d / (2.0 * sum(n * n for n in range(1, N + 1)))


def cmvn(features, eps: float = 1e-8, variance: bool = True) -> np.ndarray:
    r"""Per-utterance cepstral mean (and variance) normalisation, (T, D).

    :math:`\hat c_{t,d} = (c_{t,d} - \mu_d) / \sigma_d`, :math:`\mu_d = \frac1T \sum_t c_{t,d}`,
    :math:`\sigma_d = \sqrt{\frac1T \sum_t (c_{t,d} - \mu_d)^2}` over the frames of this one
    utterance. Each output column has mean 0 and standard deviation 1, except a column with
    :math:`\sigma_d \le \text{eps}` (a constant coefficient, or T = 1), which is only centred
    (all zeros): dividing by ~0 would blow rounding noise up to O(1). ``variance=False`` only
    subtracts the mean (CMN). A constant channel gain (a different microphone) multiplies the
    spectrum, so it *adds* a constant to the log energies and hence to every cepstrum: CMN
    removes it exactly.
    """
    c = _features("features", features)
    eps = float(eps)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    out = c - c.mean(axis=0, keepdims=True)
    if variance:
        sigma = np.sqrt(np.mean(out**2, axis=0, keepdims=True))
        out = out / np.where(sigma > eps, sigma, 1.0)
    return out


def pooled_statistics(features, with_deltas: bool = False, width: int = 2) -> np.ndarray:
    """A fixed-length summary of a variable-length utterance, for a non-sequential classifier.

    Returns ``concatenate([mean, std])`` over the frames, (2D,), or with ``with_deltas=True``
    ``concatenate([mean, std, mean(deltas), std(deltas)])``, (4D,) (std: ddof=0; deltas of
    ``width``). Word order inside the utterance is lost: that is what a sequence model adds.
    """
    c = _features("features", features)
    parts = [c.mean(axis=0), c.std(axis=0)]
    if with_deltas:
        d = deltas(c, width)
        parts += [d.mean(axis=0), d.std(axis=0)]
    return np.concatenate(parts)


def pad_features(features_list, pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Stack utterances (T_i, D) into ``padded`` (N, T_max, D) (``pad_value`` after the end of
    each) and ``lengths`` (N,) int64, the batch-first layout of the torch models."""
    if isinstance(features_list, np.ndarray) or not hasattr(features_list, "__len__"):
        raise TypeError("features_list must be a list of (T_i, D) arrays")
    if len(features_list) == 0:
        raise ValueError("features_list is empty")
    feats = [_features(f"features_list[{i}]", f) for i, f in enumerate(features_list)]
    D = feats[0].shape[1]
    for i, f in enumerate(feats):
        if f.shape[1] != D:
            raise ValueError(
                f"features_list[{i}] has D = {f.shape[1]} (shape {f.shape}), features_list[0]"
                f" has D = {D}"
            )
    lengths = np.array([f.shape[0] for f in feats], dtype=np.int64)
    padded = np.full((len(feats), int(lengths.max()), D), float(pad_value))
    for i, f in enumerate(feats):
        padded[i, : f.shape[0]] = f
    return padded, lengths


# --- dynamic time warping -------------------------------------------------------------------------


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = _features("a", a)
    b = _features("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same D; got shapes {a.shape} and {b.shape}")
    return a, b


def _dtw_rows(cost_row, Ta: int):
    """Yield the rows D(i, :) (Tb, P) of the accumulated cost of P pairs at once.

    ``cost_row(i)`` returns the local costs c(i, :) (Tb, P). The vertical and diagonal
    predecessors of a whole row come from the previous row in one vectorised step; only the
    horizontal one, D(i, j - 1), is sequential in j (a loop over Tb vectors of P pairs).
    """
    prev = None
    for i in range(Ta):
        c = cost_row(i)
        row = np.empty_like(c)
        if prev is None:
            np.cumsum(c, axis=0, out=row)
        else:
            row[0] = prev[0] + c[0]
            m = np.minimum(prev[1:], prev[:-1])  # up and diagonal, (Tb - 1, P)
            m += c[1:]
            for j in range(1, c.shape[0]):
                r = row[j]
                np.add(c[j], row[j - 1], out=r)
                np.minimum(r, m[j - 1], out=r)
        yield row
        prev = row


def _accumulate(C: np.ndarray) -> np.ndarray:
    """The whole accumulated cost D (Ta, Tb, P) of local costs C (Ta, Tb, P)."""
    return np.stack(list(_dtw_rows(lambda i: C[i], C.shape[0])))


def _band_mask(Ta: int, Tb: int, band: int) -> np.ndarray:
    """True at the cells outside the (widened) Sakoe-Chiba band."""
    r = max(band, abs(Ta - Tb))
    i = np.arange(Ta)[:, None]
    j = np.arange(Tb)[None, :]
    return np.abs(i - j) > r


def _local_cost(a: np.ndarray, b: np.ndarray, band: int | None) -> np.ndarray:
    # Exact differences (not the |a|^2 + |b|^2 - 2ab trick): one pair is cheap.
    C = np.sqrt(np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2))
    if band is not None:
        C[_band_mask(a.shape[0], b.shape[0], band)] = np.inf
    return C


def dtw_distance(a, b, band: int | None = None) -> float:
    r"""DTW distance between feature sequences ``a`` (Ta, D) and ``b`` (Tb, D).

    :math:`D(i, j) = \lVert a_i - b_j \rVert + \min(D(i-1, j), D(i, j-1), D(i-1, j-1))`,
    returns :math:`D(T_a - 1, T_b - 1)` (a Python float, not normalised by the path length).
    ``band``: ``None`` or an integer r >= 0; only cells with :math:`|i - j| \le \max(r, |T_a -
    T_b|)` may be used (see the module docstring), so the result is finite and >= the
    unconstrained distance.
    """
    a, b = _pair(a, b)
    C = _local_cost(a, b, _band(band))
    return float(_accumulate(C[:, :, None])[-1, -1, 0])


def dtw_path(a, b, band: int | None = None) -> tuple[float, list[tuple[int, int]]]:
    """DTW distance and the optimal warping path, a list of cells ``(i, j)`` from ``(0, 0)`` to
    ``(Ta - 1, Tb - 1)``, each step (1, 0), (0, 1) or (1, 1); the local costs along it sum to
    the distance. Backtracking prefers the diagonal, then (i - 1, j), then (i, j - 1) on ties.
    """
    a, b = _pair(a, b)
    C = _local_cost(a, b, _band(band))
    D = _accumulate(C[:, :, None])[:, :, 0]
    i, j = a.shape[0] - 1, b.shape[0] - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            i, j = min(steps, key=lambda s: D[s])  # min keeps the first of equal values
        path.append((i, j))
    path.reverse()
    return float(D[-1, -1]), path


def _sequence_list(name: str, seqs) -> list[np.ndarray]:
    if isinstance(seqs, np.ndarray) and seqs.ndim == 3:
        seqs = list(seqs)
    if not hasattr(seqs, "__len__") or isinstance(seqs, (str, np.ndarray)):
        raise TypeError(f"{name} must be a list of (T_i, D) arrays (or an (N, T, D) array)")
    return [_features(f"{name}[{i}]", s) for i, s in enumerate(seqs)]


def dtw_distance_matrix(
    A, B, band: int | None = None, block_a: int = 16, block_b: int = 512
) -> np.ndarray:
    r"""All DTW distances between the sequences of ``A`` and of ``B``, (len(A), len(B)).

    ``A``, ``B``: lists of (T_i, D) arrays (same D). Equal to ``dtw_distance(A[p], B[q], band)``
    for every pair up to rounding (about 1e-7 relative), and vectorised: sequences are sorted
    by length; a block of ``block_a`` x ``block_b`` pairs is padded to its longest members, the
    local costs of one grid row i for all pairs of the block come from one matrix product
    (:math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a \cdot b`), and the recursion runs
    once over the Ta x Tb grid with all pairs of the block in a vector (about 12 CPU seconds
    for 300 x 2,700 pairs of 30-50 frames of 13 coefficients on one core). Padding cannot
    change a result: :math:`D(T_a - 1, T_b - 1)` depends only on cells (i, j) with i < T_a,
    j < T_b. A 1-NN classifier is ``B_labels[np.argmin(M, axis=1)]``.
    """
    A = _sequence_list("A", A)
    B = _sequence_list("B", B)
    if len(A) == 0 or len(B) == 0:
        return np.zeros((len(A), len(B)))
    D = A[0].shape[1]
    for name, seqs in (("A", A), ("B", B)):
        for i, s in enumerate(seqs):
            if s.shape[1] != D:
                raise ValueError(
                    f"{name}[{i}] has D = {s.shape[1]} (shape {s.shape}); A[0] has D = {D}"
                )
    band = _band(band)
    block_a = check_int("block_a", block_a, 1)
    block_b = check_int("block_b", block_b, 1)
    la = np.array([s.shape[0] for s in A])
    lb = np.array([s.shape[0] for s in B])
    oa, ob = np.argsort(la, kind="stable"), np.argsort(lb, kind="stable")
    out = np.empty((len(A), len(B)))
    for sb in range(0, len(B), block_b):
        ib = ob[sb : sb + block_b]
        Xb, nb = _padded_block(B, ib)  # (Qb, Tb, D)
        Tb = Xb.shape[1]
        Xbt = Xb.transpose(1, 0, 2).reshape(-1, D)  # rows (j, q): frame j of sequence q
        sqb = np.sum(Xbt**2, axis=1).reshape(Tb, len(ib), 1)
        for sa in range(0, len(A), block_a):
            ia = oa[sa : sa + block_a]
            Xa, na = _padded_block(A, ia)  # (Pa, Ta, D)
            Ta = Xa.shape[1]
            sqa = np.sum(Xa**2, axis=2)  # (Pa, Ta)
            if band is not None:
                r = np.maximum(band, np.abs(nb[:, None] - na[None, :]))  # (Qb, Pa)

            cost_row = functools.partial(
                _block_cost_row, Xbt, sqb, Xa, sqa, None if band is None else r
            )
            res = np.empty((len(ib), len(ia)))
            for i, row in enumerate(_dtw_rows(cost_row, Ta)):
                ends = np.flatnonzero(na - 1 == i)  # the A sequences that end on this row
                if ends.size:
                    row = row.reshape(Tb, len(ib), len(ia))
                    res[:, ends] = row[nb[:, None] - 1, np.arange(len(ib))[:, None], ends[None, :]]
            out[np.ix_(ia, ib)] = res.T
    return out


def _block_cost_row(Xbt, sqb, Xa, sqa, r, i: int) -> np.ndarray:
    """Local costs c(i, j) of every pair of a block, (Tb, Qb * Pa), laid out (j, q, p).

    ``Xbt`` (Tb * Qb, D): frame j of B-sequence q in row j * Qb + q; ``sqb`` (Tb, Qb, 1) their
    squared norms; ``Xa`` (Pa, Ta, D), ``sqa`` (Pa, Ta); ``r`` (Qb, Pa) the band of each pair
    or None. One matrix product per grid row.
    """
    Tb = sqb.shape[0]
    S = (Xbt @ Xa[:, i, :].T).reshape(Tb, -1, Xa.shape[0])
    S *= -2.0
    S += sqb
    S += sqa[None, None, :, i]
    np.maximum(S, 0.0, out=S)  # rounding can make a zero distance slightly negative
    np.sqrt(S, out=S)
    if r is not None:
        S[np.abs(i - np.arange(Tb))[:, None, None] > r[None, :, :]] = np.inf
    return S.reshape(Tb, -1)


def _padded_block(seqs: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([seqs[k].shape[0] for k in idx])
    X = np.zeros((len(idx), int(lengths.max()), seqs[idx[0]].shape[1]))
    for n, k in enumerate(idx):
        X[n, : lengths[n]] = seqs[k]
    return X, lengths
