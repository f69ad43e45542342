r"""Checks for the assignment ch08_training (dropout masks, a training step, early stopping).

Each ``check_*`` takes the student's function and ``seeds``, runs it on random cases (N = 1,
T = 1, H != D, p = 0 and large p, padding masks, plateaus and ties, ``mode="max"``), and raises
:class:`GradingError` naming the first problem. Expected values come from a trusted copy of
:mod:`rnn_ref.numpy`, and only outside recording (see ``_expected``).

The dropout masks are random. The assignment fixes the recipe (``keep = rng.random(shape) >= p``,
mask = keep / (1 - p), drawn in a stated order), so a mask drawn from a generator with a given
seed equals the reference's entry by entry. Before that comparison the checks test the
properties that hold for any correct recipe (values in {0, 1/(1 - p)}, mean close to 1 over a
large draw, p = 0 gives ones, reproducible from ``rng``, naive masks change with the time step),
so a learner whose masks are right but drawn differently is told exactly that.

Every generator handed to a student's function is a fresh one, never one the check draws its
own inputs from: at replay the student's code does not run, and the check must draw the same
inputs in the grader as in the kernel.
"""

from __future__ import annotations

import contextlib as _contextlib
import importlib as _importlib
import math as _math

import numpy as _np

from . import _guard, assert_array, assert_close, guarded_call, trusted_reference
from ._cases import call_in_case as _call
from ._cases import expected as _expected
from ._guard import GradingError, recording, restore_numpy, seal

__all__ = [
    "check_dropout_mask",
    "check_naive_dropout_masks",
    "check_variational_dropout_mask",
    "check_rnn_forward_dropout",
    "check_train_step",
    "check_early_stopping",
    "run_early_stopping",
    "guarded_early_stopping_run",
]

RECIPE = (
    "draw keep = rng.random(shape) >= p with the shape the assignment gives, in the order it "
    "gives, and nothing else from rng"
)


def _ref():
    return trusted_reference("rnn_ref.numpy")


def _rng(seed: int):
    return _np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# Part 1: masks
# ---------------------------------------------------------------------------------------------


def _mask_values(name: str, mask, p: float, context: str) -> _np.ndarray:
    """Every entry is 0 or 1/(1-p); with p = 0 every entry is 1."""
    mask = _np.asarray(mask, dtype=float)
    scale = 1.0 / (1.0 - p)
    ok = _np.isclose(mask, 0.0, atol=1e-12) | _np.isclose(mask, scale, rtol=1e-9, atol=0)
    if p == 0.0 and not _np.allclose(mask, 1.0, rtol=0, atol=1e-12):
        raise GradingError(f"{name} with p = 0 must be all ones: nothing is dropped ({context})")
    if not ok.all():
        hint = ""
        if _np.all(_np.isclose(mask, 0.0) | _np.isclose(mask, 1.0)):
            hint = (
                "; hint: the kept entries are 1, but inverted dropout scales them by 1/(1 - p) "
                "so that the mask has mean 1 and nothing needs rescaling at evaluation time"
            )
        raise GradingError(
            f"{name} has {int((~ok).sum())} of {ok.size} entries that are neither 0 nor "
            f"1/(1 - p) = {scale:.6g} ({context}){hint}"
        )
    return mask


def _same_as_reference(name, mask, expected, dims, context) -> None:
    if expected is None:
        return
    try:
        assert_close(name, mask, expected, dims=dims, atol=1e-12, rtol=1e-12, context=context)
    except GradingError as e:
        raise GradingError(
            f"{e}. Your mask has the right values but is not the one the recipe gives with this "
            f"seed: {RECIPE}"
        ) from None


def _large_draw(name, fn, args, p, n_entries, context) -> None:
    """Mean close to 1 and fraction of zeros close to p over a large draw."""
    mask = _call(name, fn, *args, context=context)
    mask = _np.asarray(mask, dtype=float)
    mean, dropped = float(mask.mean()), float((mask == 0).mean())
    # Standard deviations of the two estimates; 6 of them is far beyond chance.
    sd_mean = _math.sqrt(p / (1.0 - p) / n_entries)
    sd_drop = _math.sqrt(p * (1.0 - p) / n_entries)
    if abs(dropped - p) > 6 * sd_drop + 1e-12:
        raise GradingError(
            f"{name} dropped a fraction {dropped:.4f} of {n_entries} entries with p = {p} "
            f"({context}): each entry must be dropped with probability p"
        )
    if abs(mean - 1.0) > 6 * sd_mean + 1e-12:
        raise GradingError(
            f"the mean of {name} over {n_entries} entries is {mean:.4f} with p = {p} "
            f"({context}): an inverted-dropout mask has mean 1"
        )


def _reproducible(name, fn, make_args, context) -> None:
    a = _call(name, fn, *make_args(), context=context)
    b = _call(name, fn, *make_args(), context=context)
    if not _np.array_equal(_np.asarray(a), _np.asarray(b)):
        raise GradingError(
            f"{name} returned different masks for two generators with the same seed ({context}): "
            "draw every random number from rng, not from np.random"
        )


# (shape, p)
MASK_CASES = (((3, 4), 0.5), ((1,), 0.2), ((2, 3, 5), 0.3), ((1, 1), 0.9), ((4, 6), 0.0))


def check_dropout_mask(dropout_mask, seeds=(0, 1, 2)) -> None:
    """Shape, values in {0, 1/(1-p)}, p = 0 gives ones, mean 1 and a fraction p of zeros over
    a large draw, reproducible from rng, then entry by entry against the reference (the recipe)."""
    restore_numpy()
    for seed in seeds:
        for shape, p in MASK_CASES:
            ctx = f"shape={shape}, p={p}, seed={seed}"
            mask = _call("dropout_mask", dropout_mask, shape, p, _rng(seed), context=ctx)
            mask = assert_array("mask", mask, shape)
            _mask_values("mask", mask, p, ctx)
            expected = _expected("dropout_mask", shape, p, _rng(seed))
            _same_as_reference("mask", mask, expected, None, ctx)
    base = seeds[0] if seeds else 0
    for p in (0.25, 0.7):
        ctx = f"shape=(200, 500), p={p}, seed={base}"
        _large_draw("mask", dropout_mask, ((200, 500), p, _rng(base)), p, 100_000, ctx)
    ctx = f"shape=(5, 7), p=0.5, seed={base}"
    _reproducible("mask", dropout_mask, lambda: ((5, 7), 0.5, _rng(base)), ctx)


def _fresh_over_time(masks, p, context) -> None:
    """Naive masks are not all equal over time (checked where a repeat is all but impossible:
    p > 0, T > 1 and at least 8 entries per step)."""
    T = masks.shape[1]
    if T < 2 or p == 0 or masks[:, 0].size < 8:
        return
    if all(_np.array_equal(masks[:, 0], masks[:, t]) for t in range(1, T)):
        raise GradingError(
            f"masks is the same at every time step ({context}): naive dropout draws a fresh "
            "mask for every step (that is what the variational mask does not do)"
        )


# (N, T, H, p): batch of one, one step, one unit, p = 0.
SEQ_MASK_CASES = ((3, 5, 4, 0.5), (1, 4, 3, 0.2), (2, 1, 5, 0.3), (4, 3, 1, 0.6), (2, 3, 4, 0.0))


def check_naive_dropout_masks(naive_dropout_masks, seeds=(10, 11)) -> None:
    """(N, T, H) masks with a fresh draw at every step: values, the masks differ across time,
    mean 1 over a large draw, then entry by entry against the reference."""
    restore_numpy()
    for seed in seeds:
        for N, T, H, p in SEQ_MASK_CASES:
            ctx = f"N={N}, T={T}, H={H}, p={p}, seed={seed}"
            masks = _call(
                "naive_dropout_masks", naive_dropout_masks, N, T, H, p, _rng(seed), context=ctx
            )
            masks = assert_array("masks", masks, (N, T, H))
            _mask_values("masks", masks, p, ctx)
            _fresh_over_time(masks, p, ctx)
            expected = _expected("naive_dropout_masks", N, T, H, p, _rng(seed))
            _same_as_reference("masks", masks, expected, ("n", "t", "h"), ctx)
    base = seeds[0] if seeds else 0
    N, T, H, p = 8, 6, 16, 0.5
    ctx = f"N={N}, T={T}, H={H}, p={p}, seed={base}"
    masks = _call("naive_dropout_masks", naive_dropout_masks, N, T, H, p, _rng(base), context=ctx)
    masks = assert_array("masks", masks, (N, T, H))
    _fresh_over_time(masks, p, ctx)
    _large_draw(
        "masks",
        naive_dropout_masks,
        (100, 50, 20, 0.3, _rng(base)),
        0.3,
        100_000,
        f"N=100, T=50, H=20, p=0.3, seed={base}",
    )


# (N, H, p)
VAR_MASK_CASES = ((3, 4, 0.5), (1, 3, 0.2), (2, 1, 0.3), (5, 7, 0.8), (2, 4, 0.0))


def check_variational_dropout_mask(variational_dropout_mask, seeds=(20, 21)) -> None:
    """(N, H), one mask per sequence: values, mean 1 over a large draw, reproducible, then entry
    by entry against the reference."""
    restore_numpy()
    name = "variational_dropout_mask"
    for seed in seeds:
        for N, H, p in VAR_MASK_CASES:
            ctx = f"N={N}, H={H}, p={p}, seed={seed}"
            mask = _call(name, variational_dropout_mask, N, H, p, _rng(seed), context=ctx)
            mask = assert_array("mask", mask, (N, H))
            _mask_values("mask", mask, p, ctx)
            expected = _expected(name, N, H, p, _rng(seed))
            _same_as_reference("mask", mask, expected, ("n", "h"), ctx)
    base = seeds[0] if seeds else 0
    ctx = f"N=400, H=250, p=0.4, seed={base}"
    _large_draw(name, variational_dropout_mask, (400, 250, 0.4, _rng(base)), 0.4, 100_000, ctx)
    ctx = f"N=3, H=5, p=0.5, seed={base}"
    _reproducible(name, variational_dropout_mask, lambda: (3, 5, 0.5, _rng(base)), ctx)


# ---------------------------------------------------------------------------------------------
# Part 2: an RNN with dropout on its recurrent connection
# ---------------------------------------------------------------------------------------------


def _rnn_params(rng, D: int, H: int, V: int | None = None):
    params = {
        "W_xh": rng.normal(0.0, 1.0 / _np.sqrt(D), (H, D)),
        "W_hh": rng.normal(0.0, 1.0 / _np.sqrt(H), (H, H)),
        "b_h": rng.normal(0.0, 0.3, H),
    }
    if V is not None:
        params["W_hy"] = rng.normal(0.0, 1.0 / _np.sqrt(H), (V, H))
        params["b_y"] = rng.normal(0.0, 0.3, V)
    return params


def _forward_result(result, N, T, D, H):
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise GradingError(
            f"rnn_forward_dropout should return (hs, (mask_x, mask_h)), a tuple of two; got {got}"
        )
    hs, masks = result
    if not (isinstance(masks, tuple | list) and len(masks) == 2):
        raise GradingError(
            "rnn_forward_dropout should return (hs, (mask_x, mask_h)): the second item is the "
            "pair of masks used at every step"
        )
    hs = assert_array("hs", hs, (N, T, H))
    mask_x = assert_array("mask_x", masks[0], (N, T, D))
    mask_h = assert_array("mask_h", masks[1], (N, T, H))
    return hs, mask_x, mask_h


def _masks_over_time(name, mask, variational, p, context) -> None:
    """Variational: the same mask at every step; naive: not the same at every step."""
    T = mask.shape[1]
    if variational:
        for t in range(1, T):
            if not _np.array_equal(mask[:, t], mask[:, 0]):
                raise GradingError(
                    f"{name}[:, {t}] differs from {name}[:, 0] with variational=True ({context}): "
                    "a variational mask is drawn once per sequence, before the loop over time, "
                    "and the same mask is used at every step"
                )
    elif T > 1 and p > 0 and mask[:, 0].size >= 8:
        if all(_np.array_equal(mask[:, t], mask[:, 0]) for t in range(1, T)):
            raise GradingError(
                f"{name} is the same at every step with variational=False ({context}): naive "
                "dropout draws a fresh mask at every step"
            )


# (N, T, D, H, p_x, p_h): batch of one, one step, one input unit, H != D.
FWD_CASES = (
    (3, 5, 4, 6, 0.25, 0.5),
    (1, 4, 3, 2, 0.5, 0.3),
    (2, 1, 5, 5, 0.2, 0.4),
    (4, 6, 1, 3, 0.0, 0.2),
    (5, 4, 3, 8, 0.3, 0.0),
)


def check_rnn_forward_dropout(rnn_forward_dropout, seeds=(30, 31)) -> None:
    """First p_x = p_h = 0 (the plain RNN), then naive and variational dropout: the masks'
    shapes and values, constant over time (variational) or not (naive), equal to the reference's
    drawn from the same seed (input mask first), then hs."""
    restore_numpy()
    name = "rnn_forward_dropout"
    for seed in seeds:
        for N, T, D, H, p_x, p_h in FWD_CASES:
            rng = _rng(seed)
            params = _rnn_params(rng, D, H)
            x = rng.normal(0.0, 1.0, (N, T, D))
            h0 = rng.normal(0.0, 0.5, (N, H))
            shape = f"N={N}, T={T}, D={D}, H={H}"
            for variational in (False, True):
                ctx = f"{shape}, p_x=0, p_h=0, variational={variational}, seed={seed}"
                args = (x, h0, params, 0.0, 0.0, _rng(seed + 1), variational)
                result = _call(name, rnn_forward_dropout, *args, context=ctx)
                hs, mask_x, mask_h = _forward_result(result, N, T, D, H)
                _mask_values("mask_x", mask_x, 0.0, ctx)
                _mask_values("mask_h", mask_h, 0.0, ctx)
                expected = _expected("rnn_forward", x, h0, params)
                if expected is None:
                    continue
                try:
                    assert_close("hs", hs, expected[0], dims=("n", "t", "h"), context=ctx)
                except GradingError as e:
                    raise GradingError(
                        f"{e}. With p_x = p_h = 0 nothing is dropped and this is the plain RNN of "
                        "chapter 2: fix the recurrence first"
                    ) from None
            for variational in (False, True):
                ctx = f"{shape}, p_x={p_x}, p_h={p_h}, variational={variational}, seed={seed}"
                args = (x, h0, params, p_x, p_h, _rng(seed + 1), variational)
                result = _call(name, rnn_forward_dropout, *args, context=ctx)
                hs, mask_x, mask_h = _forward_result(result, N, T, D, H)
                _mask_values("mask_x", mask_x, p_x, ctx)
                _mask_values("mask_h", mask_h, p_h, ctx)
                _masks_over_time("mask_x", mask_x, variational, p_x, ctx)
                _masks_over_time("mask_h", mask_h, variational, p_h, ctx)
                expected = _expected(name, x, h0, params, p_x, p_h, _rng(seed + 1), variational)
                if expected is None:
                    continue
                e_hs, cache = expected
                order = "draw the input mask first, then the state mask, each with one call of " + (
                    "variational_dropout_mask" if variational else "naive_dropout_masks"
                )
                for mname, mine, ref_mask, dims in (
                    ("mask_x", mask_x, cache["mask_x"], ("n", "t", "d")),
                    ("mask_h", mask_h, cache["mask_h"], ("n", "t", "h")),
                ):
                    try:
                        assert_close(mname, mine, ref_mask, dims=dims, atol=1e-12, context=ctx)
                    except GradingError as e:
                        raise GradingError(
                            f"{e}. Your masks are not the ones the recipe gives with this seed: "
                            f"{order}"
                        ) from None
                try:
                    assert_close("hs", hs, e_hs, dims=("n", "t", "h"), context=ctx)
                except GradingError as e:
                    raise GradingError(
                        f"{e}; your masks are right: mask_x[:, t] multiplies x_t and "
                        "mask_h[:, t] multiplies h_(t-1) where it enters W_hh (h_t itself is "
                        "passed on unmasked)"
                    ) from None


# ---------------------------------------------------------------------------------------------
# Part 3: a training step
# ---------------------------------------------------------------------------------------------

KEYS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
# (N, T, D, H, V, max_norm, weight_decay, padded): 1e-3 always clips, 1e6 never does.
STEP_CASES = (
    (3, 5, 4, 6, 7, 1e-3, 0.0, False),
    (3, 5, 4, 6, 7, 1e6, 0.0, False),
    (1, 4, 3, 2, 5, 1e-3, 0.1, True),
    (2, 1, 5, 5, 3, 1e6, 0.05, False),
    (4, 3, 1, 7, 2, 0.5, 0.01, True),
    (2, 6, 3, 4, 4, 1e6, 0.2, True),
)


def _step_case(seed, N, T, D, H, V, padded):
    rng = _rng(seed)
    params = _rnn_params(rng, D, H, V)
    x = rng.normal(0.0, 1.0, (N, T, D))
    h0 = rng.normal(0.0, 0.5, (N, H))
    targets = rng.integers(0, V, (N, T))
    mask = None
    if padded:  # sequence n has length T - n (at least 1): padding at the end
        lengths = _np.maximum(T - _np.arange(N), 1)
        mask = (_np.arange(T)[None, :] < lengths[:, None]).astype(float)
    lr = float(rng.uniform(0.05, 0.5))
    return params, x, h0, targets, lr, mask


def _train_step_hint(new, params, grads, lr, max_norm, weight_decay) -> str:
    """Name a common mistake when the student's new parameters equal it (grader side only)."""
    norm = float(_np.sqrt(sum(float(_np.sum(g * g)) for g in grads.values())))
    scale = min(1.0, max_norm / (norm + 1e-6))

    def update(scales, wd_sign=1.0):
        return {
            k: params[k] - lr * (scales[k] * grads[k] + wd_sign * weight_decay * params[k])
            for k in params
        }

    per_array = {
        k: min(1.0, max_norm / (float(_np.sqrt(_np.sum(g * g))) + 1e-6)) for k, g in grads.items()
    }
    candidates = [
        (
            update(per_array),
            "each array was clipped with its own norm, but the norm is one number over all the "
            "gradients together",
        ),
        (
            update(dict.fromkeys(grads, max_norm / (norm + 1e-6))),
            "a gradient shorter than max_norm must be left unchanged, not scaled up to max_norm",
        ),
        (
            update(dict.fromkeys(grads, 1.0)),
            "the gradient was not clipped: scale it when its global norm exceeds max_norm",
        ),
        (
            update(dict.fromkeys(grads, scale), wd_sign=-1.0),
            "the weight-decay term has the wrong sign: the update subtracts "
            "lr * weight_decay * theta, which pulls the weights towards 0",
        ),
        (
            update(dict.fromkeys(grads, scale), wd_sign=0.0),
            "the weight-decay term is missing",
        ),
        (
            {k: params[k] + lr * scale * grads[k] - lr * weight_decay * params[k] for k in params},
            "the step goes up the gradient: SGD subtracts lr times the gradient",
        ),
    ]
    for candidate, hint in candidates:
        if all(
            _np.allclose(_np.asarray(new[k], dtype=float), candidate[k], rtol=1e-6, atol=1e-10)
            for k in params
        ):
            return f"; hint: {hint}"
    return ""


def check_train_step(train_step, seeds=(40, 41)) -> None:
    """(new_params, loss, grad_norm): the result's form, the loss, grad_norm before clipping,
    then every new parameter against the reference (clipping by global norm only above
    max_norm, weight decay as stated, an SGD step); a padding mask; inputs unchanged."""
    restore_numpy()
    name = "train_step"
    for seed in seeds:
        for i, (N, T, D, H, V, max_norm, wd, padded) in enumerate(STEP_CASES):
            params, x, h0, targets, lr, mask = _step_case(seed * 10 + i, N, T, D, H, V, padded)
            ctx = (
                f"N={N}, T={T}, D={D}, H={H}, V={V}, lr={lr:.3g}, max_norm={max_norm:g}, "
                f"weight_decay={wd:g}, {'with padding' if padded else 'no padding'}, seed={seed}"
            )
            args = (params, x, h0, targets, lr, max_norm, mask, wd)
            result = _call(name, train_step, *args, context=ctx)
            if not (isinstance(result, tuple) and len(result) == 3):
                got = type(result).__name__
                if isinstance(result, tuple):
                    got = f"a tuple of {len(result)}"
                raise GradingError(
                    f"train_step should return (new_params, loss, grad_norm), a tuple of three; "
                    f"got {got}"
                )
            new, loss, grad_norm = result
            if not isinstance(new, dict) or set(new) != set(KEYS):
                keys = sorted(new) if isinstance(new, dict) else type(new).__name__
                raise GradingError(
                    f"new_params should be a dict with the keys {sorted(KEYS)}, got {keys}"
                )
            for k in KEYS:
                assert_array(f"new_params[{k!r}]", new[k], params[k].shape)
            loss = assert_array("loss", loss, ())
            grad_norm = assert_array("grad_norm", grad_norm, ())
            if recording():
                continue
            ref = _ref()
            e_new, e_loss, e_norm = ref.train_step(*args)
            assert_close("loss", loss, e_loss, rtol=1e-8, atol=1e-10, context=ctx)
            try:
                assert_close("grad_norm", grad_norm, e_norm, rtol=1e-7, atol=1e-10, context=ctx)
            except GradingError as err:
                hint = ""
                if e_norm > max_norm and _np.isclose(float(grad_norm), max_norm, rtol=1e-4):
                    hint = "; hint: grad_norm is the global norm before clipping, not after"
                raise GradingError(f"{err}{hint}") from None
            try:
                for k in KEYS:
                    dims = ("i", "j") if params[k].ndim == 2 else ("i",)
                    assert_close(
                        f"new_params[{k!r}]",
                        new[k],
                        e_new[k],
                        dims=dims,
                        rtol=1e-7,
                        atol=1e-10,
                        context=ctx,
                    )
            except GradingError as err:
                _, grads, _ = ref.rnn_loss_and_grads(x, h0, targets, params, mask)
                hint = _train_step_hint(new, params, grads, lr, max_norm, wd)
                raise GradingError(f"{err}{hint}") from None


# ---------------------------------------------------------------------------------------------
# Part 4: early stopping
# ---------------------------------------------------------------------------------------------


def run_early_stopping(cls, values, patience, min_delta=0.0, mode="min"):
    """Drive an early-stopping class over ``values`` as a training loop would.

    Builds ``cls(patience, min_delta, mode)``, calls ``.step(value, state={"step": t})`` for
    t = 0, 1, ... and stops at the first True. Returns a dict of what the loop saw:
    ``stops`` (the booleans returned), ``best``, ``best_step``, ``bad_steps``, ``best_state``.
    The notebook's ``early_stopping_run`` is this function with the learner's class.
    """
    stopper = cls(patience, min_delta, mode)
    stops = []
    for t, value in enumerate(values):
        stop = stopper.step(float(value), {"step": t})
        stops.append(bool(stop))
        if stop:
            break
    return {
        "stops": stops,
        "best": stopper.best,
        "best_step": stopper.best_step,
        "bad_steps": stopper.bad_steps,
        "best_state": stopper.best_state,
    }


_NAN = float("nan")
# (label, values, patience, min_delta, mode); dyadic numbers, so ties within min_delta are exact.
ES_CASES = (
    ("steady improvement, never stops", [5.0, 4.0, 3.0, 2.0, 1.0], 2, 0.0, "min"),
    ("a plateau of equal values (ties are not improvements)",
     [3.0, 2.0, 2.0, 2.0, 2.0], 2, 0.0, "min"),
    ("patience 1", [1.0, 2.0, 0.5, 0.75], 1, 0.0, "min"),
    ("patience 3, an improvement resets the count",
     [4.0, 5.0, 6.0, 3.0, 3.5, 3.25, 3.0, 2.0], 3, 0.0, "min"),
    ("improvements smaller than min_delta do not count",
     [1.0, 0.875, 0.75, 0.5, 0.4375, 0.375], 2, 0.25, "min"),
    ("an improvement of exactly min_delta does not count",
     [2.0, 1.75, 1.5, 1.0], 2, 0.25, "min"),
    ("mode max (accuracy)", [0.5, 0.625, 0.625, 0.75, 0.75, 0.75], 2, 0.0, "max"),
    ("mode max with min_delta", [0.5, 0.5625, 0.75, 0.8125, 0.875], 2, 0.125, "max"),
    ("a NaN value (a diverged run) is never an improvement",
     [2.0, 1.0, _NAN, _NAN, 0.5], 2, 0.0, "min"),
    ("a NaN value in mode max", [0.25, _NAN, 0.5, _NAN, _NAN, _NAN], 3, 0.0, "max"),
    ("a single value", [3.0], 1, 0.0, "min"),
    ("NaN first: the first finite value is the first best",
     [_NAN, 3.0, 2.0, 2.5], 2, 0.0, "min"),
    ("only NaN: no best at all", [_NAN, _NAN, _NAN], 3, 0.0, "min"),
)  # fmt: skip


def _es_cases(seeds):
    yield from ES_CASES
    for seed in seeds:
        rng = _rng(seed)
        # A noisy decreasing curve on a grid of 1/8, so plateaus and exact ties occur.
        T = int(rng.integers(8, 25))
        values = _np.round(8 * (2.0 * _np.exp(-_np.arange(T) / 6) + rng.normal(0, 0.1, T))) / 8
        patience = int(rng.integers(1, 5))
        min_delta = float(rng.choice([0.0, 0.125]))
        mode = str(rng.choice(["min", "max"]))
        if mode == "max":
            values = -values
        values = [float(v) for v in values]
        yield (f"a random curve, seed={seed}", values, patience, min_delta, mode)


def _es_result(result, context):
    if not isinstance(result, dict) or set(result) != {
        "stops",
        "best",
        "best_step",
        "bad_steps",
        "best_state",
    }:
        raise GradingError(f"early_stopping_run returned something unexpected ({context})")
    stops = result["stops"]
    if not isinstance(stops, list | tuple) or not all(isinstance(s, bool) for s in stops):
        raise GradingError(f"step() must return True or False ({context})")
    for attr in ("best", "best_step", "bad_steps"):
        value = result[attr]
        if attr == "best_step" and value is None:
            continue  # no improvement yet
        if isinstance(value, bool) or not isinstance(value, int | float | _np.number | _np.ndarray):
            raise GradingError(
                f"EarlyStopping.{attr} should be a number, got {type(value).__name__} ({context})"
            )
    return result


def _es_describe(stops) -> str:
    return f"stopped at step {len(stops) - 1}" if stops and stops[-1] else "did not stop"


def _es_hint(values, patience, min_delta, mode, got) -> str:
    """Name a common mistake when the student's run matches it, and only it (grader side)."""
    ref_cls = _ref().EarlyStopping

    class _Ties(ref_cls):  # a tie within min_delta counted as an improvement
        def improves(self, value) -> bool:
            value = float(value)
            if _math.isnan(value):
                return False
            if self.mode == "min":
                return value <= self.best - self.min_delta
            return value >= self.best + self.min_delta

    class _NanImproves(ref_cls):  # NaN taken as an improvement
        def improves(self, value) -> bool:
            return _math.isnan(float(value)) or super().improves(value)

    expected = run_early_stopping(ref_cls, values, patience, min_delta, mode)["stops"]
    variants = [
        (
            run_early_stopping(ref_cls, values, patience + 1, min_delta, mode),
            "your loop stopped one step late: stop as soon as patience calls in a row brought "
            "no improvement (bad_steps reaching patience)",
        ),
        (
            run_early_stopping(_Ties, values, patience, min_delta, mode),
            "a value that improves on best by exactly min_delta, or not at all, is not an "
            "improvement (use a strict comparison)",
        ),
        (
            run_early_stopping(_NanImproves, values, patience, min_delta, mode),
            "a NaN value was taken as an improvement: NaN is never an improvement",
        ),
    ]
    if patience > 1:
        variants.append(
            (
                run_early_stopping(ref_cls, values, patience - 1, min_delta, mode),
                "your loop stopped one step early: it must wait for patience bad calls",
            )
        )
    hints = [h for run, h in variants if run["stops"] == got["stops"] != expected]
    return f"; hint: {hints[0]}" if len(hints) == 1 else ""


@_contextlib.contextmanager
def _reference_class_forbidden():
    """Make the methods of the importable ``rnn_ref.numpy.EarlyStopping`` tripwires.

    The guard forbids the public *functions* of ``rnn_ref.numpy``; a class is covered only
    through a ``forward`` method, which this one has not. Swapping the code of its methods trips
    a learner's class that subclasses it, wraps it or is bound to it at import time.
    """
    try:  # as the guard does: load it if it can be loaded, so a later import finds it swapped
        module = _importlib.import_module("rnn_ref.numpy.training")
    except (ImportError, OSError):  # unreadable in the class-scale grader's sandbox
        module = None
    cls = getattr(module, "EarlyStopping", None)
    undo = []
    try:
        if isinstance(cls, type):
            for attr in ("__init__", "step", "improves"):
                fn = vars(cls).get(attr)
                code = getattr(fn, "__code__", None)
                if code is None or code.co_freevars:
                    continue
                qualname = f"rnn_ref.numpy.EarlyStopping.{attr}"
                fn.__code__ = _guard._tripwire.__code__.replace(co_name=attr, co_qualname=qualname)
                undo.append((fn, code))
        yield
    finally:
        for fn, code in reversed(undo):
            fn.__code__ = code


def guarded_early_stopping_run(early_stopping_run, *args):
    """``guarded_call("early_stopping_run", early_stopping_run, *args)`` with the reference's
    ``EarlyStopping`` forbidden too (for the visible test cell)."""
    with _reference_class_forbidden():
        return guarded_call("early_stopping_run", early_stopping_run, *args)


def check_early_stopping(early_stopping_run, seeds=(50, 51, 52)) -> None:
    """Run the learner's class through the notebook's ``early_stopping_run`` on plateaus,
    ties, min_delta, mode "max", NaN values and random curves; compare when it stops and its
    best, best_step, bad_steps and best_state with the reference's."""
    restore_numpy()
    for label, values, patience, min_delta, mode in _es_cases(seeds):
        ctx = f"{label}: values={values}, patience={patience}, min_delta={min_delta}, mode={mode!r}"
        args = (_np.array(values), patience, min_delta, mode)
        with _reference_class_forbidden():
            got = _call("early_stopping_run", early_stopping_run, *args, context=ctx)
        got = _es_result(got, ctx)
        if recording():
            continue
        expected = run_early_stopping(_ref().EarlyStopping, values, patience, min_delta, mode)
        if got["stops"] != expected["stops"]:
            hint = _es_hint(values, patience, min_delta, mode, got)
            raise GradingError(
                f"your early stopping {_es_describe(got['stops'])}, which is wrong ({ctx}){hint}"
            )
        for attr in ("best_step", "bad_steps"):
            mine, ref_value = got[attr], expected[attr]
            if (mine is None) != (ref_value is None) or (
                mine is not None and int(mine) != int(ref_value)
            ):
                hint = ""
                if attr == "best_step":
                    hint = (
                        "; hint: best_step is the index (from 0) of the call that gave the best "
                        "value"
                    )
                raise GradingError(f"EarlyStopping.{attr} is wrong after the loop ({ctx}){hint}")
        best, e_best = float(_np.asarray(got["best"])), expected["best"]
        if not (best == e_best or (_math.isnan(best) and _math.isnan(e_best))):
            hint = ""
            if _math.isnan(best):
                hint = "; hint: NaN is never an improvement (every comparison with NaN is False)"
            elif _math.isinf(e_best):
                hint = "; hint: with no improvement at all, best keeps its start (inf or -inf)"
            raise GradingError(f"EarlyStopping.best is wrong after the loop ({ctx}){hint}")
        if got["best_state"] != expected["best_state"]:
            raise GradingError(
                f"EarlyStopping.best_state is not the state passed with the best value ({ctx})"
            )


seal(__name__)
