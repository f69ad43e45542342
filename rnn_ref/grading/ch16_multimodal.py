r"""Checks for the assignment ch16_multimodal (late fusion of log-probabilities, aligning
sequences of different lengths by pooling and repeating, the gated multimodal unit forward and
backward, the word error rate).

Each ``check_*`` takes the student's function(s) and ``seeds``, runs them on a fixed list of
cases drawn from those seeds (N = 1, T = 1, Da != Dv, sequences shorter than the target length,
padded batches whose padding holds large values, log-likelihoods around -1e3 whose exponentials
underflow, an expert with weight 0 that rules a class out, a saturated gate, an empty
hypothesis, extra spaces between words), compares with a trusted copy of
:mod:`rnn_ref.numpy.multimodal` and raises :class:`GradingError` naming the first problem (the
case, which output, the first wrong time step, the largest error) without giving expected values
away. Common mistakes are recognised and named: probabilities averaged (a mixture) instead of
log-probabilities added, no renormalisation, a log-sum-exp that underflows, ``0 * -inf``; the
padding averaged in, segment ends rounded down, the source frame rounded instead of floored;
the gate on the wrong branch, ``[v; a]`` instead of ``[a; v]``, the gate's path missing from
``da`` and ``dv``, the gate's gradient with the wrong sign; a character-level or per-sentence
rate.

Delegation earns nothing: besides what :func:`rnn_ref.grading.guarded_call` forbids
(``rnn_ref.numpy``, whose multimodal functions are public, and autograd for the backward),
torch's pooling and interpolation (``torch.nn.functional.adaptive_avg_pool1d``,
``torch.nn.functional.interpolate``, ``torch.adaptive_avg_pool1d``,
``torch.nn.AdaptiveAvgPool1d``, ``torch.nn.Upsample``) raise :class:`DelegationError` while a
student's function runs.
"""

from __future__ import annotations

import contextlib as _contextlib
import functools as _functools
import sys as _sys
import types as _types

import numpy as _np

from . import _guard, assert_close, trusted_reference
from . import guarded_call as _guarded_call
from ._cases import array_in_case as _array
from ._cases import call_in_case
from ._cases import case_rng as _rng
from ._cases import case_seed as _seed_of
from ._cases import pair as _pair
from ._guard import GradingError, recording, seal

# The comparison, log-softmax and Levenshtein distance that ch15's checks already use (the same
# tolerances and conventions; not copied).
from .ch15_vision import _close, _levenshtein, _log_softmax

__all__ = [
    "guarded_call",
    "check_late_fusion",
    "check_pool_to_length",
    "check_repeat_to_length",
    "check_gated_fusion_forward",
    "check_gated_fusion_backward",
    "check_word_error_rate",
]

# Captured now, before any student cell can rebind them.
_isfinite, _abs, _exp, _log, _tanh = _np.isfinite, _np.abs, _np.exp, _np.log, _np.tanh
_isnan = _np.isnan

KEYS = ("W_a", "b_a", "W_v", "b_v", "W_z", "b_z")


def _ref():
    return trusted_reference("rnn_ref.numpy")


# --- torch's pooling and interpolation are forbidden too --------------------------------------

_TORCH_FORBIDDEN = (
    ("nn.functional", "adaptive_avg_pool1d"),
    ("nn.functional", "interpolate"),
    ("nn.functional", "avg_pool1d"),
    ("nn.AdaptiveAvgPool1d", "forward"),
    ("nn.Upsample", "forward"),
    ("", "adaptive_avg_pool1d"),
    ("", "avg_pool1d"),
    ("_C._nn", "adaptive_avg_pool2d"),
    ("_C._nn", "upsample_nearest1d"),
    ("_C._nn", "_upsample_nearest_exact1d"),
)


@_contextlib.contextmanager
def _no_torch_resampling():
    """While the student's code runs: torch's ready-made pooling and resampling raise. A Python
    function's code is swapped (names bound at import time trip too); a builtin is replaced."""
    torch = _sys.modules.get("torch")
    undo = []
    try:
        for path, attr in _TORCH_FORBIDDEN if torch is not None else ():
            owner = torch
            for part in path.split(".") if path else ():
                owner = getattr(owner, part, None)
            fn = getattr(owner, attr, None) if owner is not None else None
            if fn is None:
                continue
            qualname = ".".join(p for p in ("torch", path, attr) if p)
            if isinstance(fn, _types.FunctionType) and not fn.__code__.co_freevars:
                code = fn.__code__
                fn.__code__ = _guard._tripwire.__code__.replace(
                    co_name=fn.__name__, co_qualname=qualname
                )
                undo.append(lambda fn=fn, code=code: setattr(fn, "__code__", code))
            else:
                try:
                    setattr(owner, attr, _guard._raiser(qualname))
                except (AttributeError, TypeError):  # a read-only C namespace
                    continue
                undo.append(lambda o=owner, a=attr, v=fn: setattr(o, a, v))
        yield
    finally:
        for u in reversed(undo):
            u()


def guarded_call(name: str, fn, *args, autograd: bool = False):
    """:func:`rnn_ref.grading.guarded_call` with torch's pooling and resampling
    (``adaptive_avg_pool1d``, ``avg_pool1d``, ``interpolate``, ``AdaptiveAvgPool1d``,
    ``Upsample``) forbidden too."""
    if "torch" not in _sys.modules and not _guard._torch_missing[0]:
        try:
            __import__("torch")  # so that an import inside the student's code is covered
        except (ImportError, OSError):  # not installed, or unreadable in the grading sandbox
            _guard._torch_missing[0] = True
    with _no_torch_resampling():
        return _guarded_call(name, fn, *args, autograd=autograd)


_call = _functools.partial(call_in_case, guard=guarded_call)  # the case named on failure


# --- Part 1: late fusion ----------------------------------------------------------------------

# (label, N, C, weights, kind)
LATE_CASES = (
    ("two experts, weights summing to 1", 5, 4, (0.7, 0.3), "probs"),
    ("three experts, weights that do not sum to 1", 4, 6, (2.0, 0.5, 1.0), "probs"),
    ("one expert, one item (M = 1, N = 1)", 1, 5, (1.0,), "probs"),
    (
        "weights (1, 0): the second expert, which rules some classes out (log-probability "
        "-inf), is ignored",
        3,
        4,
        (1.0, 0.0),
        "ruled_out",
    ),
    (
        "log-likelihoods around -1e3 (a long recording): exp of them underflows to 0",
        4,
        5,
        (1.0, 1.0),
        "large",
    ),
    ("two classes, random weights", 6, 2, "random", "probs"),
)


def _late_case(rng, N, C, weights, kind):
    if weights == "random":
        weights = tuple(float(w) for w in rng.uniform(0.1, 2.0, 2))
    M = len(weights)
    experts = [_log_softmax(rng.normal(0, 2.0, (N, C))) for _ in range(M)]
    if kind == "ruled_out":
        experts[1][:, 1] = -_np.inf
        experts[1][0, 2] = -_np.inf
    if kind == "large":
        experts = [-1000.0 + rng.normal(0, 3.0, (N, C)) for _ in range(M)]
    return experts, _np.array(weights, dtype=_np.float64)


def check_late_fusion(late_fusion, seeds=(0, 1, 2, 3, 4, 5)) -> None:
    """late_fusion(log_probs (list of M arrays (N, C)), weights (M,)) -> (N, C): the weighted
    sum of the experts' log-probabilities, renormalised with a stable log-sum-exp; an expert
    with weight 0 is dropped."""
    for k, (label, N, C, weights, kind) in enumerate(LATE_CASES):
        experts, w = _late_case(_rng(seeds, k), N, C, weights, kind)
        ctx = f"{label}, M={len(w)}, N={N}, C={C}, seed={_seed_of(seeds, k)}"
        out = _call("late_fusion", late_fusion, experts, w, context=ctx)
        out = _array("the fused log-probabilities", out, (N, C), ctx).astype(_np.float64)
        if recording():
            continue
        expected = _ref().late_fusion(experts, w)
        if _close(out, expected, atol=1e-9, rtol=1e-9):
            continue
        _name_late_bug(out, expected, experts, w, kind, ctx)


def _name_late_bug(out, expected, experts, w, kind, ctx):
    if _isnan(out).any():
        if kind == "ruled_out":
            raise GradingError(
                f"the fused log-probabilities contain NaN ({ctx}): 0 * (-inf) is NaN, so drop "
                "an expert whose weight is 0 instead of multiplying it by 0"
            )
        if kind == "large":
            raise GradingError(
                f"the fused log-probabilities contain NaN ({ctx}): exp of the scores underflows "
                "to 0 and log(0) - log(0) is NaN. Renormalising is unchanged when one number is "
                "added to every score of a row: which number keeps exp from underflowing?"
            )
        raise GradingError(f"the fused log-probabilities contain NaN ({ctx})")
    if kind == "large" and not _isfinite(out).all():
        raise GradingError(
            f"the fused log-probabilities are infinite where they should be finite ({ctx}): "
            "exp of the scores underflows to 0. Renormalising is unchanged when one number is "
            "added to every score of a row: which number keeps exp from underflowing?"
        )
    with _np.errstate(all="ignore"):
        sums = _exp(out).sum(axis=1)
        mixture = _log(sum(wm * _exp(e) for wm, e in zip(w, experts, strict=True)) / w.sum())
    if not _close(sums, _np.ones_like(sums), atol=1e-8):
        n = int(_np.argmax(~(_abs(sums - 1) <= 1e-8)))
        raise GradingError(
            f"the fused distribution of item n={n} does not sum to 1 ({ctx}): after adding the "
            "weighted log-probabilities, renormalise over the classes (subtract the "
            "log-sum-exp of each row)"
        )
    if _close(out, mixture, atol=1e-8):
        raise GradingError(
            f"the fused log-probabilities average the experts' probabilities ({ctx}): that is "
            "a mixture; late fusion here is a product of experts, a weighted sum of "
            "log-probabilities, renormalised"
        )
    assert_close(
        "the fused log-probabilities",
        _np.where(_isfinite(expected), out, 0.0),
        _np.where(_isfinite(expected), expected, 0.0),
        dims=("n", "c"),
        atol=1e-9,
        rtol=1e-9,
        context=ctx,
    )
    raise GradingError(
        f"the fused log-probabilities should be -inf exactly where a used expert (weight > 0) "
        f"gives -inf, and finite elsewhere ({ctx})"
    )


# --- Part 2: pooling and repeating ----------------------------------------------------------------

# (label, N, T, D, T_out, padded)
POOL_CASES = (
    ("full-length sequences, T_out divides T", 3, 12, 4, 4, False),
    ("T_out does not divide T: neighbouring segments share a frame", 2, 10, 3, 4, False),
    ("a padded batch (lengths), the padding holds large values", 4, 9, 2, 3, True),
    ("valid lengths shorter than T_out: frames are reused", 3, 6, 2, 8, True),
    ("N = 1, T = 1, T_out = 1", 1, 1, 3, 1, False),
    ("T_out = 1: the mean over the valid frames", 3, 7, 5, 1, True),
    ("T = 1 stretched to T_out = 4", 2, 1, 2, 4, False),
)

# (label, N, T, D, T_out, kind): kind "vector" (x is (N, D)), "full" or "padded"
REPEAT_CASES = (
    ("a vector (N, D) repeated at every step", 3, 0, 4, 5, "vector"),
    ("each frame repeated 3 times (T_out = 3 T)", 2, 4, 3, 12, "full"),
    ("T_out is not a multiple of T", 2, 5, 2, 7, "full"),
    ("a padded batch (lengths), the padding holds large values", 3, 6, 2, 9, "padded"),
    ("N = 1, T = 1", 1, 1, 2, 3, "full"),
    ("T_out < T: frames are skipped", 2, 8, 2, 3, "full"),
    ("a vector, N = 1, T_out = 1", 1, 0, 3, 1, "vector"),
)


def _sequences(rng, N, T, D, padded):
    """x (N, T, D) and lengths (N,) (all T unless padded); the padding is 1e3 + noise."""
    x = rng.normal(0, 1.0, (N, T, D))
    if not padded:
        return x, _np.full(N, T, dtype=_np.int64)
    lengths = rng.integers(1, T + 1, N).astype(_np.int64)
    lengths[0] = T  # one full-length sequence in every padded batch
    if N > 1:
        lengths[-1] = min(T, 2)
    for n in range(N):
        x[n, lengths[n] :] = 1e3 + rng.normal(0, 1.0, (T - lengths[n], D))
    return x, lengths


def _pool_variant(x, lengths, T_out, ignore_lengths=False, floor_end=False):
    N, T, D = x.shape
    out = _np.full((N, T_out, D), _np.nan)
    for n in range(N):
        L = T if ignore_lengths else int(lengths[n])
        for j in range(T_out):
            s = (j * L) // T_out
            e = ((j + 1) * L) // T_out if floor_end else -((-(j + 1) * L) // T_out)
            if e > s:
                out[n, j] = x[n, s:e].mean(axis=0)
    return out


def check_pool_to_length(pool_to_length, seeds=(10, 11, 12, 13, 14, 15, 16)) -> None:
    """pool_to_length(x (N, T, D), lengths (N,), T_out) -> (N, T_out, D): step j is the mean of
    the valid frames floor(j L / T_out) <= t < ceil((j + 1) L / T_out), L = lengths[n]."""
    for k, (label, N, T, D, T_out, padded) in enumerate(POOL_CASES):
        x, lengths = _sequences(_rng(seeds, k), N, T, D, padded)
        ctx = (
            f"{label}, N={N}, T={T}, D={D}, T_out={T_out}, lengths={lengths.tolist()}, "
            f"seed={_seed_of(seeds, k)}"
        )
        out = _call("pool_to_length", pool_to_length, x, lengths, T_out, context=ctx)
        out = _array("the pooled sequences", out, (N, T_out, D), ctx).astype(_np.float64)
        if recording():
            continue
        expected = _ref().pool_to_length(x, lengths, T_out)
        if _close(out, expected, atol=1e-9, rtol=1e-9):
            continue
        if _isnan(out).any():
            raise GradingError(
                f"the pooled sequences contain NaN ({ctx}): an empty segment was averaged; round "
                "the end of each segment up, e_j = ceil((j + 1) L / T_out), so every segment "
                "holds at least one frame"
            )
        if padded and _close(out, _pool_variant(x, lengths, T_out, ignore_lengths=True)):
            raise GradingError(
                f"the pooled sequences average the padding frames ({ctx}): segment the first "
                "lengths[n] frames of each sequence, not all T"
            )
        if _close(out, _pool_variant(x, lengths, T_out, floor_end=True), atol=1e-9):
            raise GradingError(
                f"the segments end too early ({ctx}): e_j = ceil((j + 1) L / T_out) (rounded "
                "up), so neighbouring segments share a frame when T_out does not divide L"
            )
        assert_close(
            "the pooled sequences",
            out,
            expected,
            dims=("n", "t", "d"),
            atol=1e-9,
            rtol=1e-9,
            context=ctx,
        )


def _repeat_variant(x, lengths, T_out, rounding=False, ignore_lengths=False):
    """Step j copies frame round(j L / T_out) (``rounding``), or floor(j T / T_out)
    (``ignore_lengths``: the padding stretched too)."""
    N, T, _ = x.shape
    out = _np.empty((N, T_out, x.shape[2]))
    j = _np.arange(T_out)
    for n in range(N):
        L = T if ignore_lengths else int(lengths[n])
        src = (
            _np.minimum(_np.rint(j * L / T_out).astype(int), L - 1) if rounding else j * L // T_out
        )
        out[n] = x[n, src]
    return out


def check_repeat_to_length(repeat_to_length, seeds=(20, 21, 22, 23, 24, 25, 26)) -> None:
    """repeat_to_length(x, T_out, lengths) -> (N, T_out, D): a vector (N, D) repeated at every
    step; a sequence (N, T, D) stretched by copying frame floor(j L / T_out) to step j."""
    for k, (label, N, T, D, T_out, kind) in enumerate(REPEAT_CASES):
        rng = _rng(seeds, k)
        if kind == "vector":
            x, lengths = rng.normal(0, 1.0, (N, D)), None
            shown = ""
        else:
            x, lengths = _sequences(rng, N, T, D, kind == "padded")
            if kind == "full":
                lengths = None
            shown = f", T={T}, lengths={None if lengths is None else lengths.tolist()}"
        ctx = f"{label}, N={N}{shown}, D={D}, T_out={T_out}, seed={_seed_of(seeds, k)}"
        out = _call("repeat_to_length", repeat_to_length, x, T_out, lengths, context=ctx)
        out = _array("the repeated sequences", out, (N, T_out, D), ctx).astype(_np.float64)
        if recording():
            continue
        expected = _ref().repeat_to_length(x, T_out, lengths)
        if _close(out, expected, atol=1e-12, rtol=1e-12):
            continue
        if kind != "vector":
            L = _np.full(N, T) if lengths is None else lengths
            if kind == "padded" and _close(out, _repeat_variant(x, L, T_out, ignore_lengths=True)):
                raise GradingError(
                    f"the repeated sequences copy padding frames ({ctx}): stretch the first "
                    "lengths[n] frames of each sequence, not all T"
                )
            if _close(out, _repeat_variant(x, L, T_out, rounding=True)):
                raise GradingError(
                    f"the source frames are rounded to the nearest integer ({ctx}): step j "
                    "copies frame floor(j L / T_out) (rounded down)"
                )
        assert_close(
            "the repeated sequences",
            out,
            expected,
            dims=("n", "t", "d"),
            atol=1e-12,
            rtol=1e-12,
            context=ctx,
        )


# --- Part 3: the gated multimodal unit --------------------------------------------------------

# (label, N, Da, Dv, H, scale of the weights)
GMU_CASES = (
    ("random shapes", 4, 5, 3, 6, 0.5),
    ("N = 1, Da = Dv = H = 1", 1, 1, 1, 1, 0.8),
    ("Da != Dv, H larger than both", 3, 2, 7, 9, 0.5),
    ("large weights: the gate and the tanh saturate", 3, 4, 4, 5, 30.0),
    ("one item, Dv > Da", 1, 3, 6, 4, 0.5),
)


def _gmu_case(rng, N, Da, Dv, H, scale):
    a = rng.normal(0, 1.0, (N, Da))
    v = rng.normal(0, 1.0, (N, Dv))
    params = {
        "W_a": rng.normal(0, scale, (H, Da)),
        "b_a": rng.normal(0, scale, H),
        "W_v": rng.normal(0, scale, (H, Dv)),
        "b_v": rng.normal(0, scale, H),
        "W_z": rng.normal(0, scale, (H, Da + Dv)),
        "b_z": rng.normal(0, scale, H),
    }
    return a, v, params


def _gmu_parts(a, v, p, order="av"):
    h_a = _tanh(a @ p["W_a"].T + p["b_a"])
    h_v = _tanh(v @ p["W_v"].T + p["b_v"])
    x = _np.concatenate([a, v] if order == "av" else [v, a], axis=1)
    with _np.errstate(all="ignore"):
        z = 0.5 * (1.0 + _tanh(0.5 * (x @ p["W_z"].T + p["b_z"])))
    return h_a, h_v, z


def check_gated_fusion_forward(gated_fusion_forward, seeds=(30, 31, 32, 33, 34)) -> None:
    """gated_fusion_forward(a (N, Da), v (N, Dv), params) -> (f (N, H), cache) with
    f = z h_a + (1 - z) h_v, h_a = tanh(a W_a^T + b_a), h_v = tanh(v W_v^T + b_v),
    z = sigmoid([a; v] W_z^T + b_z)."""
    for k, (label, N, Da, Dv, H, scale) in enumerate(GMU_CASES):
        a, v, params = _gmu_case(_rng(seeds, k), N, Da, Dv, H, scale)
        ctx = f"{label}, N={N}, Da={Da}, Dv={Dv}, H={H}, seed={_seed_of(seeds, k)}"
        result = _call("gated_fusion_forward", gated_fusion_forward, a, v, params, context=ctx)
        f, _ = _pair("gated_fusion_forward", result, "f, cache", ctx)
        f = _array("f", f, (N, H), ctx).astype(_np.float64)
        if recording():
            continue
        expected = _ref().gated_fusion_forward(a, v, params)[0]
        if _close(f, expected, atol=1e-9, rtol=1e-7):
            continue
        h_a, h_v, z = _gmu_parts(a, v, params)
        if _close(f, (1 - z) * h_a + z * h_v, atol=1e-9):
            raise GradingError(f"f puts z on the wrong branch ({ctx}): f = z * h_a + (1 - z) * h_v")
        if _close(f, _swapped_order(a, v, params), atol=1e-9):
            raise GradingError(
                f"the gate reads [v; a] ({ctx}): W_z's first Da columns multiply a, the next "
                "Dv columns multiply v, so concatenate [a; v]"
            )
        assert_close("f", f, expected, dims=("n", "h"), atol=1e-9, rtol=1e-7, context=ctx)


def _swapped_order(a, v, p):
    h_a, h_v, z = _gmu_parts(a, v, p, order="va")
    return z * h_a + (1 - z) * h_v


def _gmu_grads(a, v, p, df, gate_path=True, dz_sign=1.0):
    """A variant of the backward: without the gate's path to the inputs, or dz's sign flipped."""
    h_a, h_v, z = _gmu_parts(a, v, p)
    d_a = df * z * (1 - h_a**2)
    d_v = df * (1 - z) * (1 - h_v**2)
    d_z = dz_sign * df * (h_a - h_v) * z * (1 - z)
    dav = d_z @ p["W_z"] if gate_path else _np.zeros((a.shape[0], a.shape[1] + v.shape[1]))
    Da = a.shape[1]
    av = _np.concatenate([a, v], axis=1)
    grads = {
        "W_a": d_a.T @ a,
        "b_a": d_a.sum(0),
        "W_v": d_v.T @ v,
        "b_v": d_v.sum(0),
        "W_z": d_z.T @ av,
        "b_z": d_z.sum(0),
    }
    return d_a @ p["W_a"] + dav[:, :Da], d_v @ p["W_v"] + dav[:, Da:], grads


def _triple(fn_name, result, what, ctx):
    if not (isinstance(result, tuple) and len(result) == 3):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise GradingError(f"{fn_name} should return ({what}), a tuple of three; got {got} ({ctx})")
    return result


def check_gated_fusion_backward(
    gated_fusion_forward, gated_fusion_backward, seeds=(40, 41, 42, 43, 44)
) -> None:
    """gated_fusion_backward(df (N, H), cache) -> (da (N, Da), dv (N, Dv), grads) with grads
    keyed W_a, b_a, W_v, b_v, W_z, b_z, given the cache of the student's own forward, which is
    checked first."""
    for k, (label, N, Da, Dv, H, scale) in enumerate(GMU_CASES):
        rng = _rng(seeds, k)
        a, v, params = _gmu_case(rng, N, Da, Dv, H, scale)
        df = rng.normal(0, 1.0, (N, H))
        ctx = f"{label}, N={N}, Da={Da}, Dv={Dv}, H={H}, seed={_seed_of(seeds, k)}"
        result = _call("gated_fusion_forward", gated_fusion_forward, a, v, params, context=ctx)
        f, cache = _pair("gated_fusion_forward", result, "f, cache", ctx)
        f = _array("f", f, (N, H), ctx)
        ref = None if recording() else _ref()
        if ref is not None:
            f_e, cache_e = ref.gated_fusion_forward(a, v, params)
            if not _close(f, f_e, atol=1e-9, rtol=1e-7):
                raise GradingError(
                    "gated_fusion_backward cannot be checked because gated_fusion_forward is "
                    f"wrong ({ctx}); fix the forward first (the backward gets your forward's "
                    "cache)"
                )
        result = _call(
            "gated_fusion_backward", gated_fusion_backward, df, cache, context=ctx, autograd=True
        )
        da, dv, grads = _triple("gated_fusion_backward", result, "da, dv, grads", ctx)
        da = _array("da", da, (N, Da), ctx).astype(_np.float64)
        dv = _array("dv", dv, (N, Dv), ctx).astype(_np.float64)
        if not isinstance(grads, dict) or any(key not in grads for key in KEYS):
            raise GradingError(
                f"gated_fusion_backward should return grads as a dict with the keys {list(KEYS)}"
                f" ({ctx})"
            )
        grads = {
            key: _array(f"d{key}", grads[key], params[key].shape, ctx).astype(_np.float64)
            for key in KEYS
        }
        if ref is None:
            continue
        da_e, dv_e, grads_e = ref.gated_fusion_backward(df, cache_e)
        got = {"da": da, "dv": dv, **{f"d{key}": grads[key] for key in KEYS}}
        want = {"da": da_e, "dv": dv_e, **{f"d{key}": grads_e[key] for key in KEYS}}
        if all(_close(got[n], want[n], atol=1e-8, rtol=1e-6) for n in got):
            continue
        no_gate = _gmu_grads(a, v, params, df, gate_path=False)
        if _close(da, no_gate[0], atol=1e-8) and _close(dv, no_gate[1], atol=1e-8):
            raise GradingError(
                f"da and dv miss the path through the gate ({ctx}): a and v reach f through "
                "their own branch and through z = sigmoid(W_z [a; v] + b_z), so add the "
                "gate's delta times W_z, split into its a and v columns"
            )
        flipped = _gmu_grads(a, v, params, df, dz_sign=-1.0)[2]
        if _close(grads["W_z"], flipped["W_z"], atol=1e-8) and not _close(
            grads["W_z"], grads_e["W_z"], atol=1e-8
        ):
            raise GradingError(
                f"dW_z has the wrong sign ({ctx}): df/dz = h_a - h_v (z multiplies h_a)"
            )
        for name in got:
            dims = ("n", "d") if name in ("da", "dv") else None
            assert_close(name, got[name], want[name], dims=dims, atol=1e-8, rtol=1e-6, context=ctx)


# --- Part 4: the word error rate ----------------------------------------------------------------

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _sentence(rng, n):
    return " ".join(_WORDS[int(i)] for i in rng.integers(0, 10, n))


def _noisy(rng, ref):
    words = ref.split()
    out = []
    for w in words:
        u = rng.uniform()
        if u < 0.15:
            continue  # a deletion
        out.append(_WORDS[int(rng.integers(0, 10))] if u < 0.35 else w)
        if rng.uniform() < 0.1:
            out.append(_WORDS[int(rng.integers(0, 10))])  # an insertion
    return " ".join(out)


def _wer_cases(rng):
    """(label, refs, hyps)"""
    long_refs = [_sentence(rng, int(n)) for n in (1, 6, 3, 8)]
    rand_refs = [_sentence(rng, int(rng.integers(1, 7))) for _ in range(5)]
    return (
        ("identical sentences", ["three one four", "two"], ["three one four", "two"]),
        ("one substituted word out of three (N = 1)", ["three one four"], ["three one five"]),
        ("an empty hypothesis", ["seven eight nine"], [""]),
        ("more inserted words than reference words", ["one"], ["two three four"]),
        (
            "sentences of different lengths: a corpus rate, not a mean",
            long_refs,
            [_noisy(rng, r) for r in long_refs],
        ),
        (
            "extra spaces between and around words",
            ["  three  one four ", "nine"],
            ["three one  four", "  nine five"],
        ),
        (
            "words that share letters (three / tree / thee): compare whole words",
            ["three eight", "one"],
            ["tree eight", "on"],
        ),
        ("random sentences", rand_refs, [_noisy(rng, r) for r in rand_refs]),
    )


def check_word_error_rate(word_error_rate, seeds=(50,)) -> None:
    """word_error_rate(refs (list of str), hyps (list of str)) -> float: the word-level edit
    distances summed over the sentences, divided by the number of reference words."""
    for label, refs, hyps in _wer_cases(_rng(seeds, 0)):
        ctx = f"{label}, {len(refs)} sentence(s)"
        out = _call("word_error_rate", word_error_rate, list(refs), list(hyps), context=ctx)
        arr = _array("the WER", out, (), ctx)
        wer = float(arr)
        if recording():
            continue
        expected = _ref().word_error_rate(refs, hyps)
        if _close(wer, expected, atol=1e-12, rtol=1e-12):
            continue
        pairs = list(zip(refs, hyps, strict=True))
        chars = sum(_levenshtein(r, h) for r, h in pairs) / sum(len(r) for r in refs)
        chars_nospace = sum(_levenshtein(r.replace(" ", ""), h.replace(" ", "")) for r, h in pairs)
        if _close(wer, chars, atol=1e-12) or _close(
            wer, chars_nospace / max(1, sum(len(r.replace(" ", "")) for r in refs)), atol=1e-12
        ):
            raise GradingError(
                f"the WER compares characters, not words ({ctx}): split each sentence into "
                "words (str.split()) and run the edit distance over the lists of words"
            )
        per = [_levenshtein(r.split(), h.split()) / len(r.split()) for r, h in pairs]
        if len(pairs) > 1 and _close(wer, sum(per) / len(per), atol=1e-12):
            raise GradingError(
                f"the WER is the mean of the per-sentence rates ({ctx}): divide the total "
                "number of word edits by the total number of reference words"
            )
        by_hyp = sum(_levenshtein(r.split(), h.split()) for r, h in pairs) / max(
            1, sum(len(h.split()) for h in hyps)
        )
        if _close(wer, by_hyp, atol=1e-12):
            raise GradingError(
                f"the WER is divided by the number of hypothesis words ({ctx}); divide by the "
                "number of reference words"
            )
        if any("  " in s or s != s.strip() for s in (*refs, *hyps)):
            split_space = sum(_levenshtein(r.split(" "), h.split(" ")) for r, h in pairs) / sum(
                len(r.split(" ")) for r in refs
            )
            if _close(wer, split_space, atol=1e-12):
                raise GradingError(
                    f"the WER counts empty words ({ctx}): split on any whitespace with "
                    "str.split(), not str.split(' ')"
                )
        raise GradingError(
            f"the WER is {'too large' if wer > expected else 'too small'} ({ctx}); check the "
            "edit distance over words (D[i, 0] = i, D[0, j] = j, a substitution costs 1) and "
            "that the total is divided by the number of reference words"
        )


seal(__name__)
