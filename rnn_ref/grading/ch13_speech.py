r"""Checks for the assignment ch13_speech (framing with a hop, the mel filterbank, MFCCs from a
power spectrum, the DTW distance, per-utterance mean and variance normalisation).

Each ``check_*`` takes the student's function and ``seeds``, runs it on a fixed list of cases
drawn from those seeds (the edge cases named in the messages: a signal shorter than a frame, a
signal that ends exactly on a frame, hop = frame length and hop > frame length, one filter,
filters too narrow to hold a bin, a silent frame, T = 1, Ta = Tb = 1, a time-warped copy,
``band`` 0 / narrower than the length difference / wider than the grid, a constant
coefficient, ...), compares with a trusted copy of :mod:`rnn_ref.numpy` and raises
:class:`GradingError` naming the first problem (which frame, which filter, which coefficient,
the largest error) without giving expected values away. Common mistakes are recognised and
named: dropping the last partial frame, windowing inside ``frame_signal``, corners snapped to
FFT bins or spaced in Hz, a DCT without ``norm="ortho"``, ``log10``, no log floor, squared
local costs, a missing diagonal step, a band that is not widened, normalising each frame
instead of each coefficient, ``ddof=1``, dividing a constant coefficient by 0.

Delegation: while a student's function runs, the course's reference (``rnn_ref.numpy`` and the
rest, see :mod:`._guard`) **and** ``python_speech_features`` (and librosa's feature, filter and
DTW functions, if librosa has been imported) raise :class:`DelegationError`; the visible tests
call this module's :func:`guarded_call`, which does the same. ``scipy.fft.dct``
is allowed: the DCT is not the lesson.

Inputs are made from the seeds with NumPy only (no reference code), so that the class-scale
grader, whose sandboxed kernel cannot read the reference package, builds the same cases; under
it the kernel only records the results and the comparisons run in the grader's process.
"""

from __future__ import annotations

import contextlib as _contextlib
import functools as _functools
import importlib as _importlib
import sys as _sys
import types as _types

import numpy as _np

from . import _guard, assert_close, trusted_reference
from . import guarded_call as _guarded_call
from ._cases import array_in_case as _array
from ._cases import call_in_case
from ._cases import case_rng as _rng
from ._cases import case_seed as _seed_of
from ._cases import expected as _expected
from ._guard import GradingError, seal

__all__ = [
    "guarded_call",
    "check_frame_signal",
    "check_mel_filterbank",
    "check_mfcc_from_power",
    "check_dtw_distance",
    "check_cmvn",
]

# Captured now, before any student cell can rebind them.
_isfinite, _abs, _log, _log10, _sqrt = _np.isfinite, _np.abs, _np.log, _np.log10, _np.sqrt
_argwhere, _argmax, _unravel = _np.argwhere, _np.argmax, _np.unravel_index


def _ref():
    return trusted_reference("rnn_ref.numpy")


# --- delegation to the field's libraries ------------------------------------------------------

_LIBRARY_MODULES = ("python_speech_features.base", "python_speech_features.sigproc")
_LIBROSA = {  # module: functions a learner might hand the work to
    "librosa.feature": ("mfcc", "melspectrogram"),
    "librosa.filters": ("mel",),
    "librosa.sequence": ("dtw",),
    "librosa.util": ("frame", "normalize"),
    "librosa": ("stft", "power_to_db", "mel_frequencies", "hz_to_mel", "mel_to_hz"),
}
_psf_missing = [False]


def _library_targets():
    """(owner, attribute, qualified name) of the library functions a student must not call."""
    out = []
    if not _psf_missing[0]:
        try:  # imported now, so that an import inside the student's function is covered too
            _importlib.import_module("python_speech_features")
        except (ImportError, OSError):  # not installed, or unreadable in the grading sandbox
            _psf_missing[0] = True
    for name in _LIBRARY_MODULES:
        module = _sys.modules.get(name)
        if module is None:
            continue
        for attr, obj in vars(module).items():
            if isinstance(obj, _types.FunctionType) and obj.__module__ == name:
                out.append((module, attr, f"python_speech_features.{attr}"))
    for name, attrs in _LIBROSA.items():
        module = _sys.modules.get(name)
        for attr in attrs if module is not None else ():
            if callable(getattr(module, attr, None)):
                out.append((module, attr, f"{name}.{attr}"))
    return out


@_contextlib.contextmanager
def _no_libraries():
    """Swap the code of the library functions for the guard's tripwire (every reference to the
    function object trips, ``from python_speech_features import mfcc`` included); a function
    that cannot be swapped (a closure, a builtin) is replaced on its module instead."""
    undo = []
    try:
        for owner, attr, qualname in _library_targets():
            fn = getattr(owner, attr)
            code = getattr(fn, "__code__", None)
            if isinstance(fn, _types.FunctionType) and not code.co_freevars:
                fn.__code__ = _guard._tripwire.__code__.replace(
                    co_name=fn.__name__, co_qualname=qualname
                )
                undo.append(lambda fn=fn, code=code: setattr(fn, "__code__", code))
            else:
                setattr(owner, attr, _guard._raiser(qualname))
                undo.append(lambda o=owner, a=attr, v=fn: setattr(o, a, v))
        yield
    finally:
        for u in reversed(undo):
            u()


def guarded_call(name: str, fn, *args, autograd: bool = False):
    """:func:`rnn_ref.grading.guarded_call` with ``python_speech_features`` (and librosa's
    feature functions) forbidden too: what this assignment's visible tests call."""
    with _no_libraries():
        return _guarded_call(name, fn, *args, autograd=autograd)


_call = _functools.partial(call_in_case, guard=guarded_call)  # the case named on failure


def _close(a, b, atol=1e-9, rtol=1e-7) -> bool:
    """Quietly (nbgrader scores a cell that writes to stderr as 0): are a and b close?"""
    try:
        a = _np.asarray(a, dtype=_np.float64)
        b = _np.asarray(b, dtype=_np.float64)
    except (TypeError, ValueError):
        return False
    if a.shape != b.shape:
        return False
    with _np.errstate(all="ignore"):
        same_inf = (a == b) & ~_isfinite(b)
        return bool(_np.all(same_inf | (_abs(a - b) <= atol + rtol * _abs(b))))


def _compare(name, actual, expected, dims, ctx, atol, rtol=0.0, unit=None):
    """assert_close, plus the first wrong index along the first axis (``dims[0]``: which frame,
    which filter) when the array has two axes. ``unit`` names that axis in words."""
    a = _np.asarray(actual, dtype=_np.float64)
    e = _np.asarray(expected, dtype=_np.float64)
    if a.shape == e.shape and a.ndim == 2 and _isfinite(a).all():
        with _np.errstate(all="ignore"):
            err = _abs(a - e)
            wrong = err > atol + rtol * _abs(e)
        if wrong.any():
            first = int(_argwhere(wrong)[0, 0])
            worst = tuple(int(i) for i in _unravel(int(_argmax(err)), err.shape))
            rows = int(wrong.any(axis=1).sum())
            raise GradingError(
                f"{name} is wrong in {rows} of {a.shape[0]} {unit or dims[0]}s ({ctx}); the "
                f"first wrong one is {dims[0]}={first} (counting from 0), at "
                f"{dims[1]}={int(_argwhere(wrong[first])[0, 0])}; the largest error is "
                f"{err[worst]:.3g} at [{dims[0]}={worst[0]}, {dims[1]}={worst[1]}]"
            )
    assert_close(name, actual, expected, dims=dims, atol=atol, rtol=rtol, context=ctx)


# --- inputs made with NumPy only ------------------------------------------------------------------


def _vowel(rng, n: int, sample_rate: float) -> _np.ndarray:
    """A vowel-like signal of n samples: harmonics of a pitch f0 shaped by three formants, a
    slow amplitude envelope, a little noise."""
    t = _np.arange(n) / sample_rate
    f0 = rng.uniform(90, 220)
    formants = _np.sort(rng.uniform([250, 800, 2000], [900, 2000, 3500]))
    x = _np.zeros(n)
    for h in range(1, int(0.45 * sample_rate / f0)):
        f = h * f0
        gain = sum(1.0 / (1.0 + ((f - F) / 120.0) ** 2) for F in formants)
        x += gain * _np.sin(2 * _np.pi * f * t + rng.uniform(0, 2 * _np.pi))
    x *= 0.5 + 0.5 * _np.sin(_np.pi * _np.arange(n) / max(n, 1))
    x /= max(float(_abs(x).max()), 1e-12)
    return 0.8 * x + 0.01 * rng.normal(size=n)


def _hz_to_mel(f):
    return 2595.0 * _log10(1.0 + _np.asarray(f, dtype=_np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (_np.asarray(m, dtype=_np.float64) / 2595.0) - 1.0)


def _corners(n_mels, f_min, f_max, mel=True):
    if not mel:
        return _np.linspace(f_min, f_max, n_mels + 2)
    return _mel_to_hz(_np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))


def _fbank(n_mels, n_fft, sr, f_min, f_max, mel=True):
    """The exact triangular filterbank (inputs for mfcc_from_power; a Hz-spaced variant)."""
    corners = _corners(n_mels, f_min, f_max, mel)
    phi = _np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, c, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    return _np.maximum(0.0, _np.minimum((phi - lo) / (c - lo), (hi - phi) / (hi - c)))


def _fbank_snapped(n_mels, n_fft, sr, f_min, f_max):
    """python_speech_features' filterbank: corners rounded down to FFT bins first."""
    b = _np.floor((n_fft + 1) * _corners(n_mels, f_min, f_max) / sr)
    H = _np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        for k in range(int(b[m]), int(b[m + 1])):
            H[m, k] = (k - b[m]) / (b[m + 1] - b[m])
        for k in range(int(b[m + 1]), int(b[m + 2])):
            H[m, k] = (b[m + 2] - k) / (b[m + 2] - b[m + 1])
    return H


def _power(frames, n_fft):
    spec = _np.fft.rfft(frames, n=n_fft, axis=1)
    return (spec.real**2 + spec.imag**2) / n_fft


def _frames(x, frame_length, hop):
    L = len(x)
    F = 1 if L <= frame_length else 1 + -(-(L - frame_length) // hop)
    padded = _np.zeros((F - 1) * hop + frame_length)
    padded[:L] = x
    return padded[_np.arange(F)[:, None] * hop + _np.arange(frame_length)[None, :]]


# ------------------------------------------------------------------------------------------
# Part 1: framing with a hop
# ------------------------------------------------------------------------------------------

# (label, frame_length, hop, how L is drawn)
FRAME_CASES = (
    ("a partial last frame (zero-padded)", 200, 80, "partial"),
    ("the signal ends exactly at the end of a frame", 200, 80, "exact"),
    ("a signal shorter than one frame", 200, 80, "short"),
    ("a signal exactly one frame long", 64, 16, "one"),
    ("hop = frame_length (no overlap)", 50, 50, "partial"),
    ("hop > frame_length (samples between frames are skipped)", 20, 30, "partial"),
    ("L = 1", 8, 4, "single"),
    ("frame_length = 1, hop = 1", 1, 1, "partial"),
)


def _frame_length_case(rng, frame_length, hop, kind):
    if kind == "exact":
        return frame_length + int(rng.integers(2, 12)) * hop
    if kind == "short":
        return int(rng.integers(1, frame_length))
    if kind == "one":
        return frame_length
    if kind == "single":
        return 1
    L = frame_length + int(rng.integers(2, 12)) * hop + int(rng.integers(1, hop + 1))
    if hop > 1 and (L - frame_length) % hop == 0:
        L += 1
    return L


def check_frame_signal(frame_signal, seeds=(0, 1, 2, 3, 4, 5, 6, 7)) -> None:
    """frames (F, frame_length), frame f = x[f hop : f hop + frame_length], the last partial
    frame zero-padded: F = 1 + ceil((L - frame_length) / hop) if L > frame_length, else 1."""
    for k, (label, n, hop, kind) in enumerate(FRAME_CASES):
        rng = _rng(seeds, k)
        L = _frame_length_case(rng, n, hop, kind)
        x = rng.normal(0, 1, L)
        ctx = f"{label}, L={L}, frame_length={n}, hop={hop}, seed={_seed_of(seeds, k)}"
        expected = _expected("frame_signal", x, n, hop)
        out = _call("frame_signal", frame_signal, x, n, hop, context=ctx)
        if expected is None:
            continue
        F = expected.shape[0]
        got = _np.shape(out)
        if len(got) == 2 and got[1] == n and got[0] != F:
            if got[0] == F - 1 and L > n:
                raise GradingError(
                    f"frame_signal returned {got[0]} frames, one too few ({ctx}): keep the last "
                    "partial frame and pad it with zeros, F = 1 + ceil((L - frame_length) / "
                    "hop), so that every sample is in a frame"
                )
            if got[0] == 0:
                raise GradingError(
                    f"frame_signal returned no frame ({ctx}): a signal shorter than one frame "
                    "gives one frame, zero-padded"
                )
            if got[0] > F:
                raise GradingError(
                    f"frame_signal returned {got[0]} frames, {got[0] - F} too many ({ctx}): the "
                    "last frame is the first one that reaches the end of the signal"
                )
        out = _array("frames", out, (F, n), ctx)
        if not _close(out, expected, atol=1e-12, rtol=0):
            w = _np.hamming(n)
            if n > 2 and (_close(out, expected * w) or _close(out, expected * _np.hanning(n))):
                raise GradingError(
                    f"the frames are windowed ({ctx}): frame_signal only cuts the signal; the "
                    "window is applied in a later step"
                )
            valid = _frames(_np.ones(L), n, hop) > 0  # where real samples are
            if _close(out[valid], expected[valid], atol=1e-12, rtol=0):
                f = int(_argwhere(~valid & (_abs(out) > 1e-12))[0, 0])
                raise GradingError(
                    f"the padding after the end of the signal is not zero, first in frame "
                    f"f={f} ({ctx}): pad with zeros"
                )
        _compare("frames", out, expected, ("frame", "sample"), ctx, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Part 2: the mel filterbank
# ------------------------------------------------------------------------------------------

# (label, n_mels, n_fft, sample_rate, f_min, f_max); None: drawn at random
MEL_CASES = (
    ("the chapter's settings", 26, 256, 8000, 0.0, None),
    ("16 kHz, f_min = 20 Hz, f_max = 7600 Hz", 40, 512, 16000, 20.0, 7600.0),
    ("the telephone band", 10, 64, 8000, 300.0, 3400.0),
    ("a single filter", 1, 128, 8000, 0.0, 2000.0),
    ("filters too narrow to hold a bin (some rows are all zero)", 40, 128, 8000, 0.0, None),
    ("random settings", None, None, None, None, None),
)


def check_mel_filterbank(mel_filterbank, seeds=(10, 11, 12, 13, 14, 15)) -> None:
    """H (n_mels, n_fft // 2 + 1): triangles with corners equally spaced on the HTK mel scale
    between f_min and f_max (None: the Nyquist frequency), evaluated at k sample_rate / n_fft."""
    for k, case in enumerate(MEL_CASES):
        label, M, n_fft, sr, f_min, f_max = case
        rng = _rng(seeds, k)
        if M is None:
            M = int(rng.integers(5, 31))
            n_fft = int(rng.choice([128, 256, 512]))
            sr = int(rng.choice([8000, 11025, 16000]))
            f_min = float(rng.uniform(0, 300))
            f_max = float(rng.uniform(0.6, 1.0) * sr / 2)
        ctx = f"{label}: n_mels={M}, n_fft={n_fft}, sample_rate={sr}, f_min={f_min:g}, "
        ctx += f"f_max={f_max if f_max is None else round(f_max, 3)}, seed={_seed_of(seeds, k)}"
        expected = _expected("mel_filterbank", M, n_fft, sr, f_min, f_max)
        H = _call("mel_filterbank", mel_filterbank, M, n_fft, sr, f_min, f_max, context=ctx)
        H = _array("the filterbank", H, (M, n_fft // 2 + 1), ctx)
        if expected is None:
            continue
        top = sr / 2 if f_max is None else f_max
        if not _close(H, expected, atol=1e-9, rtol=0):
            if _close(H, _fbank_snapped(M, n_fft, sr, f_min, top), atol=1e-9, rtol=0):
                raise GradingError(
                    f"the corners are rounded to FFT bins ({ctx}), as python_speech_features "
                    "does: evaluate each triangle at the exact bin frequencies k * "
                    "sample_rate / n_fft instead"
                )
            if _close(H, _fbank(M, n_fft, sr, f_min, top, mel=False), atol=1e-9, rtol=0):
                raise GradingError(
                    f"the corners are equally spaced in Hz ({ctx}); space them equally in mel "
                    "(convert f_min and f_max to mel, space n_mels + 2 points, convert back)"
                )
            if f_max is None and _close(
                H, _fbank(M, n_fft, sr, f_min, sr, mel=True), atol=1e-9, rtol=0
            ):
                raise GradingError(
                    f"f_max=None should mean sample_rate / 2, the Nyquist frequency ({ctx})"
                )
            if float(H.max()) > 1.0 + 1e-9:
                raise GradingError(
                    f"the filterbank has values above 1 ({ctx}): each triangle rises from 0 at "
                    "its left corner to 1 at its centre"
                )
        _compare("the filterbank", H, expected, ("filter", "bin"), ctx, atol=1e-9, unit="filter")


# ------------------------------------------------------------------------------------------
# Part 3: MFCCs from a power spectrum
# ------------------------------------------------------------------------------------------

# (label, F, n_fft, n_mels, n_mfcc, kind)
MFCC_CASES = (
    ("the power spectrum of a vowel-like signal, the chapter's settings", 0, 256, 26, 13, "vowel"),
    ("random power spectra", 12, 256, 26, 13, "random"),
    ("one frame (F = 1)", 1, 128, 20, 12, "random"),
    ("n_mfcc = n_mels (every coefficient)", 6, 256, 16, 16, "random"),
    ("n_mfcc = 1", 5, 256, 26, 1, "random"),
    ("a silent frame (all-zero power) among others: the log floor 1e-10", 7, 256, 26, 13, "silent"),
    ("empty filters (rows of zeros) in the filterbank: the log floor 1e-10", 4, 128, 40, 13,
     "random"),
)  # fmt: skip


def _log_mel_variants(P, H, n_mfcc):
    """What common slips give (computed with NumPy: no scipy at grading time)."""
    with _np.errstate(all="ignore"):
        E = P @ H.T
        M = H.shape[0]
        m = _np.arange(M)
        basis = _np.cos(_np.pi * _np.arange(M)[:, None] * (2 * m[None, :] + 1) / (2 * M))
        ortho = _np.full(M, _sqrt(2.0 / M))
        ortho[0] = _sqrt(1.0 / M)
        lnE = _log(_np.maximum(E, 1e-10))
        return {
            "unnormalised": (2.0 * lnE @ basis.T)[:, :n_mfcc],
            "log10": ((_log10(_np.maximum(E, 1e-10)) @ basis.T) * ortho)[:, :n_mfcc],
        }


def check_mfcc_from_power(mfcc_from_power, seeds=(20, 21, 22, 23, 24, 25, 26)) -> None:
    """c (F, n_mfcc): the first n_mfcc coefficients of the orthonormal DCT-II of
    log(max(P @ fbank.T, 1e-10))."""
    for k, (label, F, n_fft, M, n_mfcc, kind) in enumerate(MFCC_CASES):
        rng = _rng(seeds, k)
        sr = 8000
        if kind == "vowel":
            frames = _frames(_vowel(rng, int(rng.integers(2000, 4000)), sr), 200, 80)
            P = _power(frames * _np.hamming(200)[None, :], n_fft)
        else:
            # spectra spanning many orders of magnitude, as real ones do
            P = _np.exp(rng.normal(-4, 3, (F, n_fft // 2 + 1)))
            if kind == "silent":
                P[int(rng.integers(0, F))] = 0.0
        H = _fbank(M, n_fft, sr, 0.0, sr / 2)
        F = P.shape[0]
        ctx = f"{label}, F={F}, n_fft={n_fft}, n_mels={M}, n_mfcc={n_mfcc}"
        ctx += f", seed={_seed_of(seeds, k)}"
        expected = _expected("mfcc_from_power", P, H, n_mfcc)
        c = _call("mfcc_from_power", mfcc_from_power, P, H, n_mfcc, context=ctx)
        c = _array("the MFCCs", c, (F, n_mfcc), ctx)
        if expected is None:
            continue
        if not _isfinite(c).all():
            f = int(_argwhere(~_isfinite(c))[0, 0])
            raise GradingError(
                f"the MFCCs contain NaN or infinity, first in frame f={f} ({ctx}): a frame or "
                "filter with zero energy has log 0 = -inf; take log(max(E, 1e-10))"
            )
        if not _close(c, expected, atol=1e-8, rtol=1e-8):
            v = _log_mel_variants(P, H, n_mfcc)
            if _close(c, v["unnormalised"], atol=1e-8, rtol=1e-8):
                raise GradingError(
                    f"the DCT is not orthonormal ({ctx}): use scipy.fft.dct(..., type=2, "
                    "norm='ortho') (coefficient 0 scaled by sqrt(1/M), the others by "
                    "sqrt(2/M))"
                )
            if _close(c, v["log10"], atol=1e-8, rtol=1e-8):
                raise GradingError(f"the log is base 10 ({ctx}); use the natural log, np.log")
            if n_mfcc > 1 and _close(c[:, 1:], expected[:, 1:], atol=1e-8, rtol=1e-8):
                raise GradingError(
                    f"only coefficient 0 is wrong ({ctx}): it is sqrt(1/M) times the sum of "
                    "the log mel energies (the orthonormal scaling of the DCT's first row)"
                )
        _compare("the MFCCs", c, expected, ("frame", "coefficient"), ctx, atol=1e-8, rtol=1e-8)


# ------------------------------------------------------------------------------------------
# Part 4: the DTW distance
# ------------------------------------------------------------------------------------------

# (label, Ta, Tb, D, band, kind); None: drawn at random
DTW_CASES = (
    ("two random sequences of different lengths", None, None, 13, None, "random"),
    ("b is a with some frames repeated (a time-warped copy): distance 0", None, None, 4, None,
     "warp"),
    ("Ta = 1", 1, None, 3, None, "random"),
    ("Ta = Tb = 1", 1, 1, 5, None, "random"),
    ("D = 1 (scalar features)", None, None, 1, None, "random"),
    ("b is a shifted in time; band = 2, equal lengths", 25, 25, 2, 2, "shift"),
    ("band = 0, equal lengths (the diagonal only)", 12, 12, 3, 0, "random"),
    ("band = 1 but the lengths differ by 5 (the band widens to |Ta - Tb|)", 10, 15, 3, 1,
     "random"),
    ("a band wider than the grid (no constraint)", 9, 14, 3, 40, "random"),
)  # fmt: skip


def _dtw_variant(a, b, band=None, cost="euclidean", diagonal=True, widen=True):
    """A plain DTW with one of the common slips switched on (for the feedback)."""
    diff = a[:, None, :] - b[None, :, :]
    C = {
        "euclidean": _sqrt((diff**2).sum(axis=2)),
        "squared": (diff**2).sum(axis=2),
        "manhattan": _abs(diff).sum(axis=2),
    }[cost]
    Ta, Tb = C.shape
    if band is not None:
        r = max(band, abs(Ta - Tb)) if widen else band
        i, j = _np.arange(Ta)[:, None], _np.arange(Tb)[None, :]
        C = _np.where(_abs(i - j) > r, _np.inf, C)
    D = _np.full((Ta + 1, Tb + 1), _np.inf)
    D[0, 0] = 0.0
    for i in range(1, Ta + 1):
        for j in range(1, Tb + 1):
            prev = min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1] if diagonal else _np.inf)
            if i == 1 and j == 1:
                prev = 0.0
            D[i, j] = C[i - 1, j - 1] + prev
    return float(D[Ta, Tb])


def _dtw_case(rng, Ta, Tb, D, kind):
    Ta = int(rng.integers(5, 25)) if Ta is None else Ta
    if kind == "warp":
        a = rng.normal(0, 1, (Ta, D))
        b = _np.repeat(a, rng.integers(1, 4, Ta), axis=0)
        return a, b
    if kind == "shift":
        t = _np.arange(Ta + 3)
        base = _np.stack([_np.sin(t / (2.0 + d)) for d in range(D)], axis=1)
        return base[3:], base[:-3]
    Tb = int(rng.integers(5, 25)) if Tb is None else Tb
    return rng.normal(0, 1, (Ta, D)), rng.normal(0, 1, (Tb, D))


def check_dtw_distance(dtw_distance, seeds=(30, 31, 32, 33, 34, 35, 36, 37, 38)) -> None:
    """D(i, j) = ||a_i - b_j|| + min(D(i-1, j), D(i, j-1), D(i-1, j-1)); the distance is
    D(Ta - 1, Tb - 1), unnormalised; band r: only |i - j| <= max(r, |Ta - Tb|)."""
    for k, (label, Ta, Tb, D, band, kind) in enumerate(DTW_CASES):
        rng = _rng(seeds, k)
        a, b = _dtw_case(rng, Ta, Tb, D, kind)
        ctx = f"{label}, Ta={a.shape[0]}, Tb={b.shape[0]}, D={D}, band={band}"
        ctx += f", seed={_seed_of(seeds, k)}"
        expected = _expected("dtw_distance", a, b, band)
        d = _call("dtw_distance", dtw_distance, a, b, band, context=ctx)
        d = _array("the DTW distance", d, (), ctx)
        if kind == "random" and a.shape[0] > 1:  # symmetry, checked on the student's own code
            d_ba = _array(
                "the DTW distance", _call("dtw_distance", dtw_distance, b, a, band, context=ctx),
                (), ctx,
            )  # fmt: skip
        else:
            d_ba = d
        if expected is None:
            continue
        if not _isfinite(d):
            raise GradingError(
                f"the DTW distance is {float(d)} ({ctx}): "
                + (
                    "widen the band to max(band, |Ta - Tb|) so that the last cell is reachable"
                    if band is not None
                    else "every cell is reachable without a band; check the first row and column"
                )
            )
        if not _close(d, expected, atol=1e-9, rtol=1e-9):
            args = (a, b)
            hints = (
                (dict(cost="squared"), "the local cost is the squared distance; use the "
                 "Euclidean distance ||a_i - b_j|| (the square root)"),
                (dict(cost="manhattan"), "the local cost is the sum of absolute differences; "
                 "use the Euclidean distance ||a_i - b_j||"),
                (dict(diagonal=False), "the diagonal step is missing: D(i, j) takes the "
                 "minimum over D(i-1, j), D(i, j-1) and D(i-1, j-1)"),
                (dict(band=None), "the band is ignored: only cells with |i - j| <= "
                 "max(band, |Ta - Tb|) may be used"),
            )  # fmt: skip
            for opts, hint in hints:
                kw = {"band": band, **opts}
                if (band is not None or "band" not in opts) and _close(
                    d, _dtw_variant(*args, **kw), atol=1e-9, rtol=1e-9
                ):
                    raise GradingError(f"{hint} ({ctx})")
            for n in (a.shape[0] + b.shape[0], max(a.shape[0], b.shape[0]), a.shape[0]):
                if _close(d * n, expected, atol=1e-9, rtol=1e-9):
                    raise GradingError(
                        f"the distance is divided by a length ({ctx}); return the accumulated "
                        "cost D(Ta - 1, Tb - 1) as it is"
                    )
        assert_close("the DTW distance", d, expected, atol=1e-9, rtol=1e-9, context=ctx)
        if not _close(d_ba, d, atol=1e-9, rtol=1e-9):
            raise GradingError(
                f"dtw_distance(b, a) differs from dtw_distance(a, b) ({ctx}): DTW is symmetric"
            )


# ------------------------------------------------------------------------------------------
# Part 5: per-utterance mean and variance normalisation
# ------------------------------------------------------------------------------------------

# (label, T, D, kind)
CMVN_CASES = (
    ("MFCC-like features with large offsets", None, 13, "random"),
    ("T = 1 (one frame: every coefficient is constant)", 1, 6, "random"),
    ("a constant coefficient (column 2)", None, 5, "constant"),
    ("D = 1", None, 1, "random"),
    ("a channel gain: the same utterance with every coefficient shifted", None, 8, "shifted"),
)


def check_cmvn(cmvn, seeds=(40, 41, 42, 43, 44, 45)) -> None:
    """(c - mean) / std per coefficient (column) over the T frames, std with ddof=0; a column
    with std <= eps = 1e-8 is only centred (zeros), never divided by ~0."""
    for k, (label, T, D, kind) in enumerate(CMVN_CASES):
        rng = _rng(seeds, k)
        T = int(rng.integers(8, 60)) if T is None else T
        c = rng.normal(rng.normal(0, 20, D), rng.uniform(0.5, 8, D), (T, D))
        if kind == "constant":
            c[:, 2] = rng.normal(0, 10)
        ctx = f"{label}, T={T}, D={D}, seed={_seed_of(seeds, k)}"
        expected = _expected("cmvn", c)
        z = _call("cmvn", cmvn, c, context=ctx)
        z = _array("the normalised features", z, (T, D), ctx)
        if kind == "shifted":
            shifted = c + rng.normal(0, 5, D)[None, :]
            z2 = _call("cmvn", cmvn, shifted, context=ctx)
            z2 = _array("the normalised features", z2, (T, D), ctx)
        if expected is None:
            continue
        if not _isfinite(z).all():
            d = int(_argwhere(~_isfinite(z))[0, 1])
            raise GradingError(
                f"the normalised features contain NaN or infinity, first in coefficient d={d} "
                f"({ctx}): a constant coefficient has std 0; centre it and leave it (zeros)"
            )
        if not _close(z, expected, atol=1e-8, rtol=1e-8):
            with _np.errstate(all="ignore"):
                mu, sd = c.mean(axis=0), c.std(axis=0)
                ddof1 = (c - mu) / _np.where(sd > 1e-8, c.std(axis=0, ddof=1), 1.0)
                rows = (c - c.mean(axis=1, keepdims=True)) / c.std(axis=1, keepdims=True)
            if T > 1 and _close(z, ddof1, atol=1e-8, rtol=1e-8):
                raise GradingError(
                    f"the standard deviation uses ddof=1 ({ctx}); use the population standard "
                    "deviation (np.std's default, ddof=0), so each column ends with std 1"
                )
            if _close(z, c - mu, atol=1e-8, rtol=1e-8):
                raise GradingError(
                    f"the features are centred but not scaled ({ctx}): divide each coefficient "
                    "by its standard deviation over the frames"
                )
            if D > 1 and _close(z, rows, atol=1e-8, rtol=1e-8):
                raise GradingError(
                    f"each frame is normalised over its coefficients ({ctx}); normalise each "
                    "coefficient (column) over the frames of the utterance (axis 0)"
                )
        _compare(
            "the normalised features", z.T, expected.T, ("coefficient", "frame"), ctx,
            atol=1e-8, rtol=1e-8,
        )  # fmt: skip
        if kind == "shifted":
            _compare(
                "the normalised features of the shifted utterance", z2.T, expected.T,
                ("coefficient", "frame"), ctx + "; a constant shift must cancel", atol=1e-7,
                rtol=1e-7,
            )  # fmt: skip


seal(__name__)
