r"""Checks for the assignment ch15_vision (the CTC forward recursion, the CTC gradient, greedy
decoding, edit distance and the character error rate).

The student's functions work on one sequence: ``log_y`` (T, C) log-probabilities (or ``logits``
(T, C) for the gradient) and ``labels`` (S,) the target, the blank being class ``blank``.
Each ``check_*`` takes the student's function(s) and ``seeds``, runs them on a fixed list of
cases drawn from those seeds (repeated labels, a run of one label with exactly enough steps,
the empty target, T = 1, an impossible alignment, a blank that is not class 0, a long sequence
whose probability underflows float64; for the gradient also logits around +-1000), compares
with a trusted copy of :mod:`rnn_ref.numpy.ctc` and raises :class:`GradingError` naming the
first problem (the case, the first wrong time step, the largest error) without giving expected
values away. Common mistakes are recognised and named: the skip transition allowed between
equal labels or onto a blank, probabilities multiplied outside log space, a log-softmax that
overflows, the gradient with respect to ``log y`` instead of the logits, blanks dropped before
repeats are collapsed, a substitution counted as two edits, the CER averaged per string.

Delegation earns nothing: besides what :func:`guarded_call` forbids (``rnn_ref.numpy``, whose
``ctc_loss`` and decoders are public, and torch's autograd for the gradient), torch's own CTC
(``torch.nn.CTCLoss``, ``torch.nn.functional.ctc_loss``, ``torch.ctc_loss``) raises
:class:`DelegationError` while a student's function runs.
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

__all__ = [
    "guarded_call",
    "check_ctc_forward",
    "check_ctc_gradient",
    "check_greedy_decode",
    "check_edit_distance",
    "check_character_error_rate",
]

# Captured now, before any student cell can rebind them.
_isfinite, _isneginf, _abs, _logaddexp = _np.isfinite, _np.isneginf, _np.abs, _np.logaddexp
_NEG_INF = -_np.inf


def _ref():
    return trusted_reference("rnn_ref.numpy")


# --- torch's CTC is forbidden too -------------------------------------------------------------


@_contextlib.contextmanager
def _no_torch_ctc():
    """While the student's code runs: torch.nn.functional.ctc_loss and torch.nn.CTCLoss.forward
    (their code swapped, so names bound at import time trip too) and torch.ctc_loss raise."""
    torch = _sys.modules.get("torch")
    undo = []
    try:
        if torch is not None:
            for fn, qualname in (
                (getattr(torch.nn.functional, "ctc_loss", None), "torch.nn.functional.ctc_loss"),
                (getattr(torch.nn.CTCLoss, "forward", None), "torch.nn.CTCLoss.forward"),
            ):
                if isinstance(fn, _types.FunctionType) and not fn.__code__.co_freevars:
                    code = fn.__code__
                    fn.__code__ = _guard._tripwire.__code__.replace(
                        co_name=fn.__name__, co_qualname=qualname
                    )
                    undo.append(lambda fn=fn, code=code: setattr(fn, "__code__", code))
            for owner, attr, qualname in (
                (torch, "ctc_loss", "torch.ctc_loss"),
                (torch._C._VariableFunctions, "ctc_loss", "torch._C._VariableFunctions.ctc_loss"),
            ):
                obj = getattr(owner, attr, None)
                if obj is not None:
                    try:
                        setattr(owner, attr, _guard._raiser(qualname))
                    except (AttributeError, TypeError):  # a read-only C namespace
                        continue
                    undo.append(lambda o=owner, a=attr, v=obj: setattr(o, a, v))
        yield
    finally:
        for u in reversed(undo):
            u()


def guarded_call(name: str, fn, *args, autograd: bool = False):
    """:func:`rnn_ref.grading.guarded_call` with torch's CTC (``torch.nn.CTCLoss``,
    ``torch.nn.functional.ctc_loss``, ``torch.ctc_loss``) forbidden too."""
    if "torch" not in _sys.modules and not _guard._torch_missing[0]:
        try:
            __import__("torch")  # so that an import inside the student's code is covered
        except (ImportError, OSError):  # not installed, or unreadable in the grading sandbox
            _guard._torch_missing[0] = True
    with _no_torch_ctc():
        return _guarded_call(name, fn, *args, autograd=autograd)


_call = _functools.partial(call_in_case, guard=guarded_call)  # the case named on failure


def _scalar(name: str, value, ctx: str) -> float:
    arr = _array(name, value, (), ctx)
    return float(arr)


def _close(a, b, atol=1e-9, rtol=1e-7) -> bool:
    a = _np.asarray(a, dtype=_np.float64)
    b = _np.asarray(b, dtype=_np.float64)
    if a.shape != b.shape:
        return False
    with _np.errstate(all="ignore"):
        same_inf = (a == b) & ~_isfinite(b)
        return bool(_np.all(same_inf | (_abs(a - b) <= atol + rtol * _abs(b))))


def _log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - _np.log(_np.exp(s).sum(axis=-1, keepdims=True))


# --- the cases ----------------------------------------------------------------------------------

# (label, T, C, S, kind, blank)
CTC_CASES = (
    ("random labels", 8, 5, 3, "random", 0),
    ("repeated labels (a a b b): a blank must separate equal labels", 10, 4, 4, "pairs", 0),
    ("a run of one label (a a a) with exactly enough steps (T = 5)", 5, 4, 3, "run", 0),
    ("the empty target (S = 0): only blanks", 6, 4, 0, "random", 0),
    ("T = 1, one label", 1, 4, 1, "random", 0),
    ("an impossible alignment: a a b needs 4 steps, T = 3", 3, 4, 3, "impossible", 0),
    ("the blank is the last class (blank = C - 1)", 7, 5, 3, "random", "last"),
    (
        "a long sequence, T = 400: p(l | x) is far below float64's smallest number",
        400,
        6,
        25,
        "random",
        0,
    ),
)


# Only for the gradient, whose input is logits: every row shifted by +1000 or -1000, which
# leaves the log-softmax as it was, but exp(z) is inf or 0 in float64.
CTC_LARGE = (
    "logits around +-1000 (each row shifted by +-1000: the same log-softmax)",
    7,
    5,
    2,
    "large",
    0,
)


def _ctc_case(rng, T, C, S, kind, blank):
    blank = C - 1 if blank == "last" else blank
    labels_pool = [c for c in range(C) if c != blank]
    z = rng.normal(0, 2.0, (T, C))
    if kind == "large":
        shift = rng.choice((-1000.0, 1000.0), (T, 1))
        shift[:2, 0] = (1000.0, -1000.0)  # both signs, whatever the draw
        z = z + shift
    if kind == "pairs":
        a, b = rng.choice(labels_pool, 2, replace=False)
        labels = _np.array([a, a, b, b])
    elif kind in ("run", "impossible"):
        a, b = rng.choice(labels_pool, 2, replace=False)
        labels = _np.array([a, a, a]) if kind == "run" else _np.array([a, a, b])
    else:
        labels = rng.choice(labels_pool, S) if S else _np.zeros(0, dtype=_np.int64)
        if S >= 2:
            labels[1] = labels[0]  # a repeated label in every case with two labels
    return z, labels.astype(_np.int64), int(blank)


def _variant_alpha(log_y, labels, blank, skip_equal=False, skip_blank=False):
    """log alpha with a planted mistake: the skip s - 2 -> s allowed between equal labels
    (``skip_equal``) or onto blanks too (``skip_blank``). In log space."""
    T = log_y.shape[0]
    ext = _np.full(2 * labels.size + 1, blank, dtype=_np.int64)
    ext[1::2] = labels
    L = ext.size
    la = _np.full((T, L), _NEG_INF)
    la[0, 0] = log_y[0, blank]
    if L > 1:
        la[0, 1] = log_y[0, ext[1]]
    for t in range(1, T):
        for s in range(L):
            v = la[t - 1, s]
            if s >= 1:
                v = _logaddexp(v, la[t - 1, s - 1])
            if s >= 2:
                ok = ext[s] != blank and ext[s] != ext[s - 2]
                ok = ok or (skip_equal and ext[s] != blank) or skip_blank
                if ok:
                    v = _logaddexp(v, la[t - 1, s - 2])
            la[t, s] = v + log_y[t, ext[s]]
    return la


def _nll_from_alpha(la, S):
    last = la[-1, 2 * S]
    if S:
        last = _logaddexp(last, la[-1, 2 * S - 1])
    return float(-last)


# --- Part 1: the forward recursion --------------------------------------------------------------


def check_ctc_forward(ctc_forward, seeds=(0, 1, 2, 3, 4, 5, 6, 7)) -> None:
    """ctc_forward(log_y (T, C), labels (S,), blank) -> (nll, log_alpha (T, 2S + 1)): the alpha
    recursion in log space over the extended sequence (blanks interleaved; the skip only between
    different labels), -inf for unreachable states, nll = -log(alpha_{T-1}(2S) +
    alpha_{T-1}(2S - 1)), inf for an impossible alignment."""
    for k, (label, T, C, S, kind, blank) in enumerate(CTC_CASES):
        rng = _rng(seeds, k)
        z, labels, blank = _ctc_case(rng, T, C, S, kind, blank)
        log_y = _log_softmax(z)
        L = 2 * labels.size + 1
        ctx = f"{label}, T={T}, C={C}, S={labels.size}, blank={blank}, seed={_seed_of(seeds, k)}"
        result = _call("ctc_forward", ctc_forward, log_y, labels, blank, context=ctx)
        nll, log_alpha = _pair("ctc_forward", result, "nll, log_alpha", ctx)
        nll = _scalar("nll", nll, ctx)
        log_alpha = _array("log_alpha", log_alpha, (T, L), ctx).astype(_np.float64)
        if recording():
            continue
        ref = _ref()
        la_e = ref.ctc_log_alpha(log_y, labels, blank)
        nll_e = _nll_from_alpha(la_e, labels.size)
        if _np.isnan(log_alpha).any() or _np.isnan(nll):
            raise GradingError(
                f"log_alpha or nll contains NaN ({ctx}); adding -inf to -inf is fine in log "
                "space, but subtracting them (or 0 * log 0) gives NaN"
            )
        if not _close(log_alpha, la_e, atol=1e-8, rtol=1e-9):
            _name_forward_bug(log_alpha, la_e, log_y, labels, blank, ctx)
        if not _close(nll, nll_e, atol=1e-8, rtol=1e-9):
            if _isfinite(nll_e) and _close(nll, -nll_e, atol=1e-8, rtol=1e-9):
                raise GradingError(
                    f"nll has the wrong sign ({ctx}): it is minus the log-probability"
                )
            if not _isfinite(nll_e):
                raise GradingError(
                    f"nll should be +inf: no path fits the target in T steps ({ctx})"
                )
            if labels.size and _close(nll, -la_e[-1, -1]):
                raise GradingError(
                    f"nll uses only the paths that end in the last blank ({ctx}): a path may "
                    "also end in the last label, so add alpha_{T-1}(2S - 1)"
                )
            assert_close("nll", nll, nll_e, atol=1e-8, rtol=1e-9, context=ctx)


def _name_forward_bug(log_alpha, la_e, log_y, labels, blank, ctx):
    reach_e, reach = _isfinite(la_e), _isfinite(log_alpha)
    if reach_e.any() and not reach[reach_e].all() and log_y.shape[0] >= 100:
        t = int(_np.argwhere(reach_e & ~reach)[0, 0])
        raise GradingError(
            f"log_alpha is -inf where a path exists, first at t={t} ({ctx}): the probabilities "
            "underflow; keep everything in log space (add logs, combine sums with "
            "np.logaddexp) instead of multiplying probabilities"
        )
    for flag, msg in (
        (
            "skip_equal",
            "the skip s - 2 -> s is allowed between two equal labels: between equal labels "
            "a path must go through the blank, or a a would collapse to a",
        ),
        (
            "skip_blank",
            "the skip s - 2 -> s is allowed onto a blank: only a label may be skipped to",
        ),
    ):
        if _close(log_alpha, _variant_alpha(log_y, labels, blank, **{flag: True}), atol=1e-8):
            raise GradingError(f"log_alpha is wrong ({ctx}): {msg}")
    if not _np.array_equal(reach, reach_e):
        t, s = (int(i) for i in _np.argwhere(reach != reach_e)[0])
        what = "reachable" if reach[t, s] else "-inf"
        raise GradingError(
            f"log_alpha[t={t}, s={s}] is {what}, but it should "
            f"{'be -inf (no path prefix ends there)' if reach[t, s] else 'be finite'} ({ctx}); "
            "check the first step (only s = 0 and s = 1 can start) and which transitions exist"
        )
    filled = _np.where(reach_e, log_alpha, 0.0)
    assert_close(
        "log_alpha",
        filled,
        _np.where(reach_e, la_e, 0.0),
        dims=("t", "s"),
        atol=1e-8,
        rtol=1e-9,
        context=ctx,
    )


# --- Part 2: the gradient -----------------------------------------------------------------------


def check_ctc_gradient(ctc_gradient, seeds=(10, 11, 12, 13, 14, 15, 16, 17)) -> None:
    """ctc_gradient(logits (T, C), labels (S,), blank) -> (nll, dlogits (T, C)) with dlogits =
    softmax(logits) - gamma, gamma_t(k) = sum over the states s with l'_s = k of
    alpha_t(s) beta_t(s) / p; for an impossible alignment (inf, zeros); and logits around
    +-1000, where a log-softmax computed through a naive exp overflows or underflows."""
    for k, (label, T, C, S, kind, blank) in enumerate((*CTC_CASES, CTC_LARGE)):
        rng = _rng(seeds, k)
        z, labels, blank = _ctc_case(rng, T, C, S, kind, blank)
        ctx = f"{label}, T={T}, C={C}, S={labels.size}, blank={blank}, seed={_seed_of(seeds, k)}"
        result = _call("ctc_gradient", ctc_gradient, z, labels, blank, context=ctx, autograd=True)
        nll, dz = _pair("ctc_gradient", result, "nll, dlogits", ctx)
        nll = _scalar("nll", nll, ctx)
        dz = _array("dlogits", dz, (T, C), ctx).astype(_np.float64)
        if recording():
            continue
        ref = _ref()
        loss_e, cache = ref.ctc_loss(z[None], labels[None], [T], [labels.size], blank)
        dz_e = ref.ctc_backward(_np.ones(1), cache)[0]
        nll_e = float(loss_e[0])
        if not _isfinite(nll_e):
            if nll != _np.inf:
                raise GradingError(f"nll should be +inf: no path fits the target ({ctx})")
            if not (_isfinite(dz).all() and _np.all(dz == 0)):
                raise GradingError(
                    f"dlogits should be exactly 0 when no alignment exists ({ctx}), not NaN "
                    "or anything else (torch's zero_infinity=True)"
                )
            continue
        if kind == "large" and not (_isfinite(nll) and _isfinite(dz).all()):
            raise GradingError(
                f"{'nll is ' + str(nll) if not _isfinite(nll) else 'dlogits is not finite'}, "
                f"but a path exists ({ctx}): did np.exp overflow or underflow in the "
                "log-softmax? exp(1000) is inf and exp(-1000) is 0 in float64. The log-softmax "
                "is unchanged when one number is added to every logit of a row: is the number "
                "you add one that keeps every exp finite and not all of them 0?"
            )
        if not _isfinite(nll):
            raise GradingError(
                f"nll is {nll}, but a path exists ({ctx}): if p(l | x) is below float64's "
                "smallest number it underflows; keep alpha and beta in log space"
            )
        if not _close(nll, nll_e, atol=1e-8, rtol=1e-9):
            assert_close("nll", nll, nll_e, atol=1e-8, rtol=1e-9, context=ctx)
        if _np.isnan(dz).any():
            raise GradingError(f"dlogits contains NaN ({ctx})")
        if _close(dz, dz_e, atol=1e-8, rtol=1e-7):
            continue
        y = _np.exp(_log_softmax(z))
        gamma = y - dz_e
        if _close(dz, -gamma, atol=1e-8, rtol=1e-6):
            raise GradingError(
                f"dlogits is minus the occupancy gamma only ({ctx}): that is the gradient with "
                "respect to log y; through the log-softmax the logits also get + softmax(logits)"
            )
        if _close(dz, -dz_e, atol=1e-8, rtol=1e-6):
            raise GradingError(f"dlogits has the wrong sign ({ctx}): the loss is -log p")
        rows = dz.sum(axis=1)
        if not _close(rows, _np.zeros(T), atol=1e-7):
            t = int(_np.argmax(_abs(rows) > 1e-7))
            raise GradingError(
                f"row t={t} of dlogits sums to {rows[t]:.3g}, not 0 ({ctx}): softmax(logits)[t] "
                "and gamma[t] are both distributions over the C classes; is gamma divided by "
                "p(l | x), and is beta the probability of the rest of the path (the emission "
                "at t counted once, in alpha or in beta but not both)?"
            )
        assert_close("dlogits", dz, dz_e, dims=("t", "k"), atol=1e-8, rtol=1e-7, context=ctx)


# --- Part 3: greedy decoding --------------------------------------------------------------------

# (label, T, C, blank, path or None for random)
GREEDY_CASES = (
    (
        "a label repeated with a blank between, and a run of another label",
        6,
        4,
        0,
        (1, 1, 0, 1, 2, 2),
    ),
    ("only blanks", 5, 3, 0, (0, 0, 0, 0, 0)),
    ("T = 1", 1, 4, 0, (3,)),
    ("a run of one label with no blank", 3, 4, 0, (2, 2, 2)),
    ("the blank is the last class", 7, 5, 4, (1, 4, 1, 1, 4, 4, 2)),
    ("random scores, T = 30", 30, 6, 0, None),
    ("random scores, blank = 2", 25, 5, 2, None),
)


def _collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(int(k))
        prev = k
    return out


def _as_labels(name, value, ctx) -> list[int]:
    arr = _np.asarray(value)
    if isinstance(value, str) or arr.ndim != 1 and arr.size != 0:
        raise GradingError(f"{name} should be a list of ints, got {type(value).__name__} ({ctx})")
    if arr.size and not _np.issubdtype(arr.dtype, _np.integer):
        raise GradingError(f"{name} should hold integer labels, got dtype {arr.dtype} ({ctx})")
    return [int(v) for v in arr.reshape(-1)]


def check_greedy_decode(greedy_decode, seeds=(20, 21, 22, 23, 24, 25, 26)) -> None:
    """greedy_decode(log_y (T, C), blank) -> list of labels: the argmax class at each step,
    repeats collapsed, then blanks dropped."""
    for k, (label, T, C, blank, path) in enumerate(GREEDY_CASES):
        rng = _rng(seeds, k)
        if path is None:
            log_y = _log_softmax(rng.normal(0, 2.0, (T, C)))
            path = tuple(int(i) for i in _np.argmax(log_y, axis=1))
        else:
            p = rng.uniform(0.0, 0.5 / C, (T, C))
            p[_np.arange(T), list(path)] = 0.6
            log_y = _np.log(p / p.sum(axis=1, keepdims=True))
        ctx = f"{label}, T={T}, C={C}, blank={blank}, seed={_seed_of(seeds, k)}"
        out = _call("greedy_decode", greedy_decode, log_y, blank, context=ctx)
        got = _as_labels("the decoded labels", out, ctx)
        if recording():
            continue
        expected = _ref().ctc_greedy_decode(log_y[None], None, blank)[0]
        if got == expected:
            continue
        no_blank_first = _collapse([p for p in path if p != blank], blank)
        if got == no_blank_first:
            raise GradingError(
                f"the decoded labels drop the blanks before collapsing repeats ({ctx}): a blank "
                "between two equal labels keeps both (collapse first, then drop blanks)"
            )
        if blank in got:
            raise GradingError(f"the decoded labels contain the blank ({ctx})")
        raise GradingError(
            f"the decoded labels are wrong ({ctx}): {len(got)} labels where "
            f"{len(expected)} are expected; take the argmax at each step, merge runs of the "
            "same class, then drop the blanks"
        )


# --- Part 4: edit distance and CER --------------------------------------------------------------


def _levenshtein(a, b, sub=1):
    prev = list(range(len(b) + 1))
    for i, ai in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, bj in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (sub if ai != bj else 0))
        prev = cur
    return prev[-1]


def _edit_cases(rng):
    """(label, ref, hyp)"""
    r = lambda n: [int(v) for v in rng.integers(0, 4, n)]  # noqa: E731
    return (
        ("two lists of ints with substitutions", r(7), r(7)),
        ("an empty hypothesis", r(5), []),
        ("an empty reference", [], r(4)),
        ("both empty", [], []),
        ("identical sequences", [3, 1, 4, 1, 5], [3, 1, 4, 1, 5]),
        ("strings: kitten -> sitting", "kitten", "sitting"),
        ("one substitution", [1, 2, 3], [1, 9, 3]),
        ("NumPy arrays of different lengths", _np.array(r(9)), _np.array(r(6))),
        ("a longer random pair", r(15), r(12)),
    )


def check_edit_distance(edit_distance, seeds=(30,)) -> None:
    """edit_distance(ref, hyp) -> int: the Levenshtein distance (insertions, deletions and
    substitutions each cost 1), on lists, strings and arrays, empty ones included."""
    for label, a, b in _edit_cases(_rng(seeds, 0)):
        ctx = f"{label}, len(ref)={len(a)}, len(hyp)={len(b)}"
        d = _call("edit_distance", edit_distance, a, b, context=ctx)
        arr = _np.asarray(d)
        if arr.shape != () or not (_np.issubdtype(arr.dtype, _np.integer) or float(arr) % 1 == 0):
            raise GradingError(f"edit_distance should return one integer, got {d!r} ({ctx})")
        d = int(arr)
        if recording():
            continue
        expected = _ref().edit_distance(a, b)
        if d == expected:
            continue
        if d == _levenshtein(list(a), list(b), sub=2) and d != expected:
            raise GradingError(
                f"the distance is {d}, too large ({ctx}): a substitution costs 1, not a "
                "deletion plus an insertion"
            )
        raise GradingError(
            f"the distance is {'too large' if d > expected else 'too small'} ({ctx}); check "
            "the first row and column of the table (D[i, 0] = i, D[0, j] = j) and the three moves"
        )


def check_character_error_rate(character_error_rate, seeds=(40, 41, 42)) -> None:
    """character_error_rate(refs, hyps) -> float: the sum of the edit distances over the sum
    of the reference lengths (a corpus rate, not the mean of per-string rates)."""
    for k in range(3):
        rng = _rng(seeds, k)
        n = (4, 1, 6)[k]
        refs = [[int(v) for v in rng.integers(0, 5, rng.integers(1, 8))] for _ in range(n)]
        hyps = [
            [int(v) for v in rng.integers(0, 5, max(0, len(r) + int(rng.integers(-2, 3))))]
            for r in refs
        ]
        if k == 0:
            refs[0], hyps[0] = [1], [2, 3, 4]  # short reference, many errors: a rate above 1
        ctx = f"{n} strings of lengths {[len(r) for r in refs]}, seed={_seed_of(seeds, k)}"
        out = _call("character_error_rate", character_error_rate, refs, hyps, context=ctx)
        cer = _scalar("the CER", out, ctx)
        if recording():
            continue
        expected = _ref().character_error_rate(refs, hyps)
        if _close(cer, expected, atol=1e-12, rtol=1e-12):
            continue
        per = [_levenshtein(r, h) / len(r) for r, h in zip(refs, hyps, strict=True)]
        if _close(cer, sum(per) / n, atol=1e-12):
            raise GradingError(
                f"the CER is the mean of the per-string rates ({ctx}): divide the total number "
                "of edits by the total length of the references, so long strings count more"
            )
        by_hyp = sum(_levenshtein(r, h) for r, h in zip(refs, hyps, strict=True)) / max(
            1, sum(len(h) for h in hyps)
        )
        if _close(cer, by_hyp, atol=1e-12):
            raise GradingError(
                f"the CER is divided by the length of the hypotheses ({ctx}); divide by the "
                "length of the references"
            )
        assert_close("the CER", cer, expected, atol=1e-12, rtol=1e-12, context=ctx)


seal(__name__)
