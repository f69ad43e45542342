r"""Checks for the assignment ch12_text (embedding with padding, pooling over padded batches,
sampling with a temperature, bits per character, add-k n-gram probabilities).

Each ``check_*`` takes the student's function(s) and ``seeds``, runs them on a fixed list of
cases drawn from those seeds (the edge cases named in the messages: N = 1, T = 1, a row with a
single real step, ``padding_idx`` 0 / the last row / None, repeated ids, ``top_k`` = 1 and V,
huge logits, small and large temperatures, temperature 0, a context never seen in training,
``k = 0``, ...), compares with a trusted copy of :mod:`rnn_ref.numpy` and raises
:class:`GradingError` naming the first problem without giving expected values away.

**The sampler is checked statistically**, never draw by draw (a correct sampler may turn the
generator's numbers into tokens in any way): for each case it draws once per row of a tall batch
of identical logits (20,000 rows) and tests the token counts against the exact distribution
``softmax_with_temperature(logits, temperature, top_k)`` with a chi-square test (bins with an
expected count below 5 are merged). A correct sampler fails one case with probability
:data:`P_MIN` = 1e-6; a wrong temperature, a wrong ``top_k`` or a sampler that reuses one
uniform for every row fails with a p-value far below it (1e-100 and less on these cases). A
token of probability 0 (outside the top k) that is drawn even once fails at once. Separately,
with the *global* ``np.random`` state seeded differently: the same seed must give the same
draws, and different seeds different draws, which is how drawing from ``np.random``'s global
functions or from a generator of one's own is caught.

Under the class-scale grader the student's kernel only records what the functions returned
(``recording()``): the draws themselves, so the test statistics, like every expected value, are
computed in the grader's process when it replays them.
"""

from __future__ import annotations

import math as _math

import numpy as _np

from . import assert_close, trusted_reference
from ._cases import array_in_case as _array
from ._cases import call_in_case as _call
from ._cases import case_rng as _rng
from ._cases import case_seed as _seed_of
from ._cases import expected as _expected
from ._cases import pair as _pair
from ._guard import GradingError, recording, seal

__all__ = [
    "P_MIN",
    "chi_square_test",
    "check_embedding",
    "check_masked_mean",
    "check_last_valid",
    "check_softmax_with_temperature",
    "check_sample_with_temperature",
    "check_bits_per_char",
    "check_add_k_probs",
]

P_MIN = 1e-6
"""A sampler case fails when the chi-square p-value of its draws is below this."""

DRAWS = 20_000  # rows per statistical case

# Captured now, before any student cell can rebind them.
_isfinite, _abs, _exp, _log = _np.isfinite, _np.abs, _np.exp, _np.log
_seed, _get_state, _set_state = _np.random.seed, _np.random.get_state, _np.random.set_state


def _ref():
    return trusted_reference("rnn_ref.numpy")


def _close(a, b, atol=1e-9, rtol=1e-7) -> bool:
    """Quietly (nbgrader scores a cell that writes to stderr as 0): are a and b close?"""
    a = _np.asarray(a, dtype=_np.float64)
    b = _np.asarray(b, dtype=_np.float64)
    if a.shape != b.shape:
        return False
    with _np.errstate(all="ignore"):
        return bool(_np.all(_abs(a - b) <= atol + rtol * _abs(b)))


# ------------------------------------------------------------------------------------------
# Part 1: embedding
# ------------------------------------------------------------------------------------------

# (label, N, T, V, E, padding_idx)
EMBEDDING_CASES = (
    ("a batch with repeated ids and padding_idx=0", 3, 5, 6, 4, 0),
    ("padding_idx=None (every id is a token)", 2, 4, 5, 3, None),
    ("N = 1, T = 1", 1, 1, 4, 2, None),
    ("padding_idx = V - 1 (the last row)", 2, 6, 5, 3, 4),
    ("every real id the same (one id repeated across the batch), padding_idx=0", 3, 4, 4, 2, 0),
    ("N = 1 and E = 1, padding_idx=2", 1, 7, 3, 1, 2),
)


def _embedding_case(rng, label, N, T, V, E, padding_idx):
    W_e = rng.normal(0, 1, (V, E))  # the padding row too: it is looked up as it is
    if "one id repeated" in label:
        ids = _np.full((N, T), 1, dtype=_np.int64)
    else:
        ids = rng.integers(0, V, (N, T))
        if N * T > 1:
            ids.flat[-1] = ids.flat[0]  # a repeated id in every case with two positions
    if padding_idx is not None and N * T > 1:
        ids[:, -1] = padding_idx  # right padding
    return ids, W_e


def _fancy_add_bug(ids, dx, V, E, padding_idx):
    """What ``dW_e[ids] += dx`` gives: one occurrence of each repeated id kept, not the sum."""
    dW = _np.zeros((V, E))
    dW[ids.reshape(-1)] += dx.reshape(-1, E)
    if padding_idx is not None:
        dW[padding_idx] = 0.0
    return dW


def check_embedding(embedding_forward, embedding_backward, seeds=(0, 1, 2, 3, 4, 5)) -> None:
    """x = W_e[ids] (the padding row used as it is); dW_e the scatter-add of dx into the rows
    of ids, 0 in the padding row. Repeated ids, padding_idx 0, V - 1 and None, N = 1, T = 1."""
    for k, case in enumerate(EMBEDDING_CASES):
        label, N, T, V, E, padding_idx = case
        rng = _rng(seeds, k)
        ids, W_e = _embedding_case(rng, *case)
        dx = rng.normal(0, 1, (N, T, E))
        ctx = f"{label}, N={N}, T={T}, V={V}, E={E}, seed={_seed_of(seeds, k)}"
        expected = _expected("embedding_forward", ids, W_e, padding_idx)
        result = _call("embedding_forward", embedding_forward, ids, W_e, padding_idx, context=ctx)
        x, cache = _pair("embedding_forward", result, "x, cache", ctx)
        x = _array("x", x, (N, T, E), ctx)
        dW = _call("embedding_backward", embedding_backward, dx, cache, context=ctx, autograd=True)
        dW = _array("dW_e", dW, (V, E), ctx)
        if expected is None:
            continue
        x_e, cache_e = expected
        if padding_idx is not None and not _close(x, x_e):
            real = ids != padding_idx
            if _close(x[real], x_e[real]):
                raise GradingError(
                    f"x is wrong at the padding positions only ({ctx}): look the padding row "
                    "up like any other, x = W_e[ids] (it is zero when W_e's padding row is)"
                )
        assert_close("x", x, x_e, dims=("n", "t", "e"), atol=1e-12, rtol=0, context=ctx)
        dW_e = _ref().embedding_backward(dx, cache_e)
        if not _close(dW, dW_e):
            if _close(dW, _fancy_add_bug(ids, dx, V, E, padding_idx)):
                raise GradingError(
                    f"dW_e is wrong for the ids that occur more than once ({ctx}): each "
                    "occurrence must add its gradient (np.add.at); dW_e[ids] += dx keeps only "
                    "one of them"
                )
            if padding_idx is not None:
                rest = _np.arange(V) != padding_idx
                if _close(dW[rest], dW_e[rest]):
                    raise GradingError(
                        f"dW_e is wrong in the padding row only ({ctx}): the row of "
                        "padding_idx receives no gradient (it must be exactly 0)"
                    )
        assert_close("dW_e", dW, dW_e, dims=("v", "e"), atol=1e-10, rtol=1e-8, context=ctx)


# ------------------------------------------------------------------------------------------
# Part 2: pooling
# ------------------------------------------------------------------------------------------

# (label, N, T, H, kind): kind is how the mask is made
POOL_CASES = (
    ("right-padded sequences of different lengths", 4, 6, 3, "prefix"),
    ("N = 1, T = 1", 1, 1, 2, "prefix"),
    ("a row with a single real step", 3, 5, 2, "single"),
    ("a mask that is not a prefix (real steps anywhere)", 3, 6, 4, "scattered"),
    ("the mask given as 0/1 floats", 2, 4, 3, "float"),
    ("no padding at all", 2, 3, 5, "full"),
)


def _lengths(rng, N, T, kind):
    lengths = rng.integers(1, T + 1, N)
    if kind == "single" or T == 1:
        lengths[0] = 1
    if kind == "full":
        lengths[:] = T
    elif T > 1 and N > 1:
        lengths[-1] = T  # one full row, one padded row at least
        lengths[-2] = min(lengths[-2], T - 1)
    return lengths


def _pool_case(rng, N, T, H, kind):
    hs = rng.normal(0, 1, (N, T, H))
    lengths = _lengths(rng, N, T, kind)
    mask = _np.arange(T)[None, :] < lengths[:, None]
    if kind == "scattered":
        mask = rng.random((N, T)) < 0.5
        mask[_np.arange(N), rng.integers(0, T, N)] = True
    # Padding holds large values: averaging over it cannot go unnoticed.
    hs = _np.where(mask[:, :, None], hs, 50.0 + 10.0 * hs)
    if kind == "float":
        mask = mask.astype(_np.float64)
    return hs, mask


def check_masked_mean(masked_mean_forward, masked_mean_backward, seeds=(10, 11, 12, 13, 14, 15)):
    """pooled[n] = sum_t m h / sum_t m over the real steps; dhs = m dpooled / sum_t m (0 at
    padding). N = 1, T = 1, a single real step, a non-prefix mask, a 0/1 float mask."""
    for k, (label, N, T, H, kind) in enumerate(POOL_CASES):
        rng = _rng(seeds, k)
        hs, mask = _pool_case(rng, N, T, H, kind)
        dp = rng.normal(0, 1, (N, H))
        ctx = f"{label}, N={N}, T={T}, H={H}, seed={_seed_of(seeds, k)}"
        expected = _expected("masked_mean_forward", hs, mask)
        result = _call("masked_mean_forward", masked_mean_forward, hs, mask, context=ctx)
        pooled, cache = _pair("masked_mean_forward", result, "pooled, cache", ctx)
        pooled = _array("pooled", pooled, (N, H), ctx)
        dhs = _call(
            "masked_mean_backward", masked_mean_backward, dp, cache, context=ctx, autograd=True
        )
        dhs = _array("dhs", dhs, (N, T, H), ctx)
        if expected is None:
            continue
        pooled_e, cache_e = expected
        if not _close(pooled, pooled_e) and _close(pooled, hs.mean(axis=1)):
            raise GradingError(
                f"pooled is the mean over all T steps, padding included ({ctx}): average over "
                "the real steps only, dividing by their number sum_t m[n, t]"
            )
        assert_close("pooled", pooled, pooled_e, dims=("n", "h"), context=ctx)
        dhs_e = _ref().masked_mean_backward(dp, cache_e)
        m = _np.asarray(mask, dtype=bool)
        leak = (~m) & _np.any(_np.asarray(dhs) != 0, axis=2)
        if leak.any():
            n, t = (int(i) for i in _np.argwhere(leak)[0])
            raise GradingError(
                f"dhs should be exactly 0 at padded steps, but is not at [n={n}, t={t}] ({ctx})"
            )
        assert_close("dhs", dhs, dhs_e, dims=("n", "t", "h"), context=ctx)


# (label, N, T, H, kind)
LAST_CASES = (
    ("right-padded sequences of different lengths", 4, 6, 3, "prefix"),
    ("N = 1, T = 1", 1, 1, 2, "prefix"),
    ("a row with a single real step", 3, 5, 2, "single"),
    ("no padding at all (every length is T)", 2, 4, 3, "full"),
    ("N = 1, a padded sequence", 1, 5, 4, "short"),
)


def check_last_valid(last_valid, seeds=(20, 21, 22, 23, 24)) -> None:
    """out[n] = hs[n, lengths[n] - 1], the state after the last real step."""
    for k, (label, N, T, H, kind) in enumerate(LAST_CASES):
        rng = _rng(seeds, k)
        hs = rng.normal(0, 1, (N, T, H))
        lengths = _lengths(rng, N, T, kind)
        if kind == "short":
            lengths[:] = rng.integers(1, T)
        ctx = f"{label}, N={N}, T={T}, H={H}, lengths={lengths.tolist()}"
        expected = _expected("last_valid", hs, lengths)
        out = _call("last_valid", last_valid, hs, lengths, context=ctx)
        out = _array("the last valid states", out, (N, H), ctx)
        if expected is None:
            continue
        if not _close(out, expected):
            if _close(out, hs[:, -1]):
                raise GradingError(
                    f"you returned hs[:, -1], the state after the padding ({ctx}); take "
                    "step lengths[n] - 1 of each row"
                )
            shifted = hs[_np.arange(N), _np.minimum(lengths, T - 1)]
            if _close(out, shifted):
                raise GradingError(
                    f"you took step lengths[n] of each row, one step too far ({ctx}): the "
                    "steps of a sequence of length L are 0, ..., L - 1"
                )
        assert_close("the last valid states", out, expected, dims=("n", "h"), context=ctx)


# ------------------------------------------------------------------------------------------
# Part 3: softmax with temperature and sampling
# ------------------------------------------------------------------------------------------


def _logits(rng, N, V, scale=1.5, shift=0.0):
    return rng.normal(0, scale, (N, V)) + shift


# (label, N, V, temperature, top_k, scale, shift, one_d)
SOFTMAX_CASES = (
    ("temperature 0.5", 4, 6, 0.5, None, 1.5, 0.0, False),
    ("temperature 2", 3, 7, 2.0, None, 1.5, 0.0, False),
    ("top_k = 3, temperature 1", 4, 8, 1.0, 3, 1.5, 0.0, False),
    ("top_k = 1 (the argmax gets probability 1)", 3, 5, 0.8, 1, 1.5, 0.0, False),
    ("top_k = V (nothing removed), temperature 1.5", 2, 6, 1.5, 6, 1.5, 0.0, False),
    ("very large logits (around 1e4): a naive exp overflows", 3, 5, 1.0, 2, 3.0, 1e4, False),
    ("a small temperature, 0.01", 3, 6, 0.01, None, 1.5, 0.0, False),
    ("a large temperature, 100", 2, 6, 100.0, None, 1.5, 0.0, False),
    ("temperature 0 (greedy: one-hot at the argmax)", 3, 5, 0.0, None, 1.5, 0.0, False),
    ("logits of shape (V,), temperature 0.7, top_k = 4", 1, 9, 0.7, 4, 1.5, 0.0, True),
    ("N = 1, V = 1", 1, 1, 1.3, None, 1.5, 0.0, False),
)


def _mult_bug(z, tau, top_k):
    """softmax(z * tau) over the same top k: the temperature multiplied instead of divided."""
    if tau == 0:
        return None
    return _ref().softmax_with_temperature(_np.asarray(z) * tau * tau, tau, top_k)


def check_softmax_with_temperature(softmax_with_temperature, seeds=(30, 31, 32, 33, 34, 35)):
    """p = softmax(logits / temperature) over the top_k largest logits of each row, 0
    elsewhere; temperature 0 is a one-hot row at the argmax. Stable for huge logits and tiny
    temperatures. (The cases have no ties at the k-th largest logit.)"""
    for k, (label, N, V, tau, top_k, scale, shift, one_d) in enumerate(SOFTMAX_CASES):
        rng = _rng(seeds, k)
        z = _logits(rng, N, V, scale, shift)
        if one_d:
            z = z[0]
        ctx = f"{label}, logits of shape {z.shape}, temperature={tau}, top_k={top_k}"
        expected = _expected("softmax_with_temperature", z, tau, top_k)
        p = _call("softmax_with_temperature", softmax_with_temperature, z, tau, top_k, context=ctx)
        p = _array("the probabilities", p, z.shape, ctx)
        if expected is None:
            continue
        p = _np.asarray(p, dtype=_np.float64)
        if not _isfinite(p).all():
            raise GradingError(
                f"the probabilities contain NaN or infinity ({ctx}): did exp overflow? A softmax "
                "is unchanged when one number is added to every logit of a row: is the number "
                "you add one that keeps every exp finite and not all of them 0?"
            )
        p2, e2 = _np.atleast_2d(p), _np.atleast_2d(expected)
        if top_k is not None or tau == 0:
            counts = _np.count_nonzero(p2, axis=1)
            kept = _np.count_nonzero(e2, axis=1)  # min(top_k, V), or 1 at temperature 0
            bad = counts != kept
            if bad.any():
                n = int(_np.argmax(bad))
                raise GradingError(
                    f"row {n} of the probabilities has {int(counts[n])} nonzero entries; with "
                    f"{'top_k=' + str(top_k) if top_k is not None else 'temperature 0'} it "
                    f"must have exactly {int(kept[n])} ({ctx})"
                )
            if not _np.array_equal(p2 != 0, e2 != 0):
                raise GradingError(
                    f"the nonzero probabilities are not at the largest logits of each row ({ctx})"
                )
        bug = _mult_bug(z, tau, top_k)
        if bug is not None and tau != 1 and not _close(p, expected) and _close(p, bug):
            raise GradingError(
                f"the probabilities are softmax(logits * temperature) ({ctx}); divide the "
                "logits by the temperature"
            )
        dims = ("v",) if one_d else ("n", "v")
        assert_close("the probabilities", p, expected, dims=dims, atol=1e-9, rtol=1e-7, context=ctx)


def _chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df), exactly (the regularised upper incomplete gamma
    function at half-integer or integer order, by its finite sums)."""
    if x <= 0:
        return 1.0
    h = x / 2.0
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= h / i
            total += term
        return min(1.0, _math.exp(-h) * total)
    total = _math.erfc(_math.sqrt(h))
    term = _math.exp(-h) * _math.sqrt(h) / _math.gamma(1.5)
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= h / (i + 0.5)
    return min(1.0, total)


def chi_square_test(draws, probs) -> tuple[float, float, int]:
    """Chi-square goodness of fit of integer ``draws`` to ``probs`` (V,).

    Tokens of probability 0 must not be drawn (the caller checks). The others are grouped, in
    order of increasing probability, into bins with an expected count of at least 5 (the usual
    condition for the chi-square approximation). Returns (statistic, p-value, degrees of
    freedom); one bin gives (0, 1, 0).
    """
    draws = _np.asarray(draws).reshape(-1)
    probs = _np.asarray(probs, dtype=_np.float64)
    M = draws.size
    counts = _np.bincount(draws, minlength=probs.size)[: probs.size].astype(_np.float64)
    idx = [int(i) for i in _np.argsort(probs, kind="stable") if probs[i] > 0]
    obs, exp, o, e = [], [], 0.0, 0.0
    for i in idx:
        o += counts[i]
        e += probs[i] * M
        if e >= 5.0:
            obs.append(o)
            exp.append(e)
            o, e = 0.0, 0.0
    if e > 0:  # the leftover goes to the last bin (or is the only one)
        if exp:
            obs[-1] += o
            exp[-1] += e
        else:
            obs.append(o)
            exp.append(e)
    if len(exp) < 2:
        return 0.0, 1.0, 0
    obs_a, exp_a = _np.array(obs), _np.array(exp)
    stat = float(_np.sum((obs_a - exp_a) ** 2 / exp_a))
    df = len(exp) - 1
    return stat, _chi2_sf(stat, df), df


def _check_draws(draws, probs, rows, ctx) -> None:
    """``draws[rows]`` against ``probs``: no impossible token, then the chi-square test."""
    d = _np.asarray(draws)[rows]
    V = probs.size
    impossible = probs[d] == 0
    if impossible.any():
        j = int(_np.argmax(impossible))
        raise GradingError(
            f"a draw picked token {int(d[j])}, which has probability 0 here (outside the "
            f"top_k largest logits, or not the argmax at temperature 0) ({ctx})"
        )
    stat, pvalue, df = chi_square_test(d, probs)
    if pvalue < P_MIN:
        freq = _np.bincount(d, minlength=V) / d.size
        tv = 0.5 * float(_np.abs(freq - probs).sum())
        raise GradingError(
            f"the draws do not follow softmax(logits / temperature) over the top_k largest "
            f"logits ({ctx}): over {d.size} draws the chi-square statistic is {stat:.4g} with "
            f"{df} degrees of freedom, p-value {pvalue:.2g} (a correct sampler falls below "
            f"{P_MIN:g} with probability {P_MIN:g}); the frequencies are off by a total "
            f"variation of {tv:.3f}. Is the temperature applied as logits / temperature, are "
            "exactly the top_k largest logits kept, and does each row get its own draw?"
        )


def _int_draws(name, draws, shape, V, ctx):
    arr = _array(name, draws, shape, ctx)
    if not _np.issubdtype(arr.dtype, _np.integer):
        raise GradingError(f"{name} should hold integer token ids, got dtype {arr.dtype} ({ctx})")
    if arr.size and (arr.min() < 0 or arr.max() >= V):
        raise GradingError(f"{name} holds ids outside [0, V) = [0, {V}) ({ctx})")
    return arr


# (label, V, temperature, top_k, scale, shift); each drawn DRAWS times
SAMPLE_CASES = (
    ("temperature 0.5", 6, 0.5, None, 1.0, 0.0),
    ("temperature 2", 8, 2.0, None, 1.0, 0.0),
    ("top_k = 3, temperature 0.8", 7, 0.8, 3, 1.0, 0.0),
    ("top_k = 1 (always the argmax)", 5, 1.3, 1, 1.0, 0.0),
    ("top_k = V, temperature 1.5", 6, 1.5, 6, 1.0, 0.0),
    ("very large logits (around 1e4), top_k = 4", 6, 1.0, 4, 1.0, 1e4),
    ("a small temperature, 0.25", 5, 0.25, None, 1.0, 0.0),
    ("a large temperature, 10", 6, 10.0, None, 1.5, 0.0),
)


def check_sample_with_temperature(sample_with_temperature, seeds=(40, 41, 42, 43, 44, 45)):
    """Statistically: each case draws once per row of DRAWS identical rows and the counts are
    tested against the exact distribution (chi-square, P_MIN); two different rows of logits in
    one batch; logits (V,) give one int; the same seed gives the same draws and a different seed
    different ones, whatever the global np.random state (only ``rng`` may be used)."""
    for k, (label, V, tau, top_k, scale, shift) in enumerate(SAMPLE_CASES):
        rng = _rng(seeds, k)
        z = _logits(rng, 1, V, scale, shift)[0]
        ctx = f"{label}, V={V}, temperature={tau}, top_k={top_k}, {DRAWS} rows"
        batch = _np.tile(z, (DRAWS, 1))
        gen = _np.random.default_rng(_seed_of(seeds, k) * 1000 + k)  # a fresh generator
        draws = _call(
            "sample_with_temperature",
            sample_with_temperature,
            batch,
            tau,
            gen,
            top_k,
            context=ctx,
        )
        draws = _int_draws("the draws", draws, (DRAWS,), V, ctx)
        if not recording():
            probs = _ref().softmax_with_temperature(z, tau, top_k)
            _check_draws(draws, probs, slice(None), ctx)
    _check_two_rows(sample_with_temperature, seeds)
    _check_one_d(sample_with_temperature, seeds)
    _check_rng_use(sample_with_temperature, seeds)


def _check_two_rows(sample_with_temperature, seeds) -> None:
    rng = _rng(seeds, 100)
    z = _logits(rng, 2, 5, 1.2)
    z[0, 0] += 3.0  # two clearly different distributions
    z[1, 4] += 3.0
    tau = 0.9
    ctx = f"two different rows of logits alternating in one batch, V=5, temperature={tau}"
    batch = _np.tile(z, (DRAWS // 2, 1))
    gen = _np.random.default_rng(_seed_of(seeds, 0) * 1000 + 100)
    draws = _call(
        "sample_with_temperature", sample_with_temperature, batch, tau, gen, None, context=ctx
    )
    draws = _int_draws("the draws", draws, (DRAWS,), 5, ctx)
    if not recording():
        for r in (0, 1):
            probs = _ref().softmax_with_temperature(z[r], tau)
            _check_draws(draws, probs, slice(r, None, 2), f"{ctx}; the rows of logits {r}")


def _check_one_d(sample_with_temperature, seeds) -> None:
    rng = _rng(seeds, 200)
    z = _logits(rng, 1, 7, 1.5)[0]
    for j, (tau, top_k) in enumerate(((0.8, None), (1.0, 1), (0.0, None))):
        ctx = f"logits of shape (V,) = (7,), temperature={tau}, top_k={top_k}"
        gen = _np.random.default_rng(_seed_of(seeds, 0) * 1000 + 200 + j)
        out = _call(
            "sample_with_temperature", sample_with_temperature, z, tau, gen, top_k, context=ctx
        )
        arr = _np.asarray(out)
        if isinstance(out, bool) or arr.shape != () or not _np.issubdtype(arr.dtype, _np.integer):
            raise GradingError(
                f"for logits of shape (V,) sample_with_temperature should return one integer "
                f"id, got {type(out).__name__} of shape {arr.shape} ({ctx})"
            )
        if not 0 <= int(arr) < 7:
            raise GradingError(f"the id {int(arr)} is outside [0, V) = [0, 7) ({ctx})")
        if (top_k == 1 or tau == 0) and int(arr) != int(_np.argmax(z)):
            raise GradingError(f"the id is not the argmax of the logits ({ctx})")


def _check_rng_use(sample_with_temperature, seeds) -> None:
    rng = _rng(seeds, 300)
    z = _logits(rng, 300, 6, 0.5)
    s = _seed_of(seeds, 0) * 1000 + 300
    ctx = "300 rows, V=6, temperature 1"
    state = _get_state()
    try:
        runs = []
        for gen_seed, global_seed in ((s, 1), (s, 2), (s + 1, 1)):
            _seed(global_seed)  # the global state differs between the first two calls
            gen = _np.random.default_rng(gen_seed)
            out = _call(
                "sample_with_temperature", sample_with_temperature, z, 1.0, gen, None, context=ctx
            )
            runs.append(_int_draws("the draws", out, (300,), 6, ctx))
    finally:
        _set_state(state)
    a, b, c = runs
    if not _np.array_equal(a, b):
        raise GradingError(
            "two generators made with the same seed gave different draws (case: "
            f"{ctx}): draw only from the rng argument, not from np.random's global functions "
            "or a generator of your own"
        )
    if _np.array_equal(a, c):
        raise GradingError(
            "generators made with different seeds gave the same 300 draws (case: "
            f"{ctx}): draw from the rng argument"
        )


# ------------------------------------------------------------------------------------------
# Part 4: bits per character
# ------------------------------------------------------------------------------------------

# (label, N, T, V, mask kind, scale)
BPC_CASES = (
    ("right-padded targets with a mask", 3, 6, 7, "prefix", 2.0),
    ("mask=None (every position counts)", 2, 5, 6, None, 2.0),
    ("N = 1, T = 1", 1, 1, 4, None, 2.0),
    ("a row with a single real position", 3, 4, 5, "single", 2.0),
    ("very large logits (around 1000): a naive exp overflows", 2, 4, 6, "prefix", 2.0),
    ("the mask given as 0/1 floats, padding targets -1", 3, 5, 8, "float", 1.5),
)


def check_bits_per_char(bits_per_char, seeds=(50, 51, 52, 53, 54, 55)) -> None:
    """(bpc, perplexity): bpc = mean over the real positions of -log2 softmax(logits)[target],
    perplexity = 2 ** bpc. mask=None, 0/1 float masks, padding targets -1, huge logits."""
    for k, (label, N, T, V, kind, scale) in enumerate(BPC_CASES):
        rng = _rng(seeds, k)
        z = rng.normal(0, scale, (N, T, V)) + (1000.0 if "around 1000" in label else 0.0)
        targets = rng.integers(0, V, (N, T))
        mask = None
        if kind is not None:
            lengths = _lengths(rng, N, T, "single" if kind == "single" else "prefix")
            m = _np.arange(T)[None, :] < lengths[:, None]
            # Padding targets point at the likeliest class: counting them lowers the loss.
            targets = _np.where(m, targets, _np.argmax(z, axis=2))
            if kind == "float":
                targets = _np.where(m, targets, -1)
                mask = m.astype(_np.float64)
            else:
                mask = m
        ctx = f"{label}, N={N}, T={T}, V={V}, seed={_seed_of(seeds, k)}"
        expected = _expected("bits_per_char", z, targets, mask)
        result = _call("bits_per_char", bits_per_char, z, targets, mask, context=ctx)
        bpc, ppl = _pair("bits_per_char", result, "bpc, perplexity", ctx)
        bpc = _array("bpc", bpc, (), ctx)
        ppl = _array("the perplexity", ppl, (), ctx)
        if expected is None:
            continue
        bpc_e, ppl_e = expected
        if not _close(bpc, bpc_e):
            if _close(bpc, bpc_e * _math.log(2)):
                raise GradingError(
                    f"bpc is in nats, not bits ({ctx}): use log base 2 (divide the natural "
                    "log by ln 2)"
                )
            if mask is not None:
                all_pos = _ref().bits_per_char(z, _np.where(targets < 0, 0, targets))[0]
                if _close(bpc, all_pos):
                    raise GradingError(
                        f"bpc counts the padded positions too ({ctx}): average over the "
                        "positions where the mask is 1 only"
                    )
        assert_close("bpc", bpc, bpc_e, atol=1e-9, rtol=1e-9, context=ctx)
        if not _close(ppl, ppl_e, rtol=1e-8) and _close(
            ppl, _math.exp(min(bpc_e, 700.0)), rtol=1e-8
        ):
            raise GradingError(
                f"the perplexity is e ** bpc ({ctx}); with bpc in bits it is 2 ** bpc"
            )
        assert_close("the perplexity", ppl, ppl_e, atol=1e-9, rtol=1e-8, context=ctx)


# ------------------------------------------------------------------------------------------
# Part 5: add-k n-gram probabilities
# ------------------------------------------------------------------------------------------

_ENGLISH = (
    "the quick brown fox jumps over the lazy dog. then the dog sleeps, and the fox thinks "
    "that there is nothing else to do in the heat of the afternoon."
)


def _random_text(rng, alphabet, size):
    return "".join(rng.choice(list(alphabet), size))


# (label, make(rng) -> (text, context, vocab), k)
ADDK_CASES = (
    (
        "a bigram model (context of 1 character), k = 0.5",
        lambda r: (_random_text(r, "abcd", 60), "b", "abcde"),
        0.5,
    ),
    (
        "a trigram model (context of 2 characters), k = 1",
        lambda r: (_random_text(r, "abc", 80), "ca", "abc"),
        1.0,
    ),
    (
        "the empty context (the unigram model), k = 1",
        lambda r: (_random_text(r, "abcd", 30), "", "abcdxy"),
        1.0,
    ),
    ("a context never seen in training, k = 0.1", lambda r: ("abababab", "ba" + "c", "abc"), 0.1),
    (
        "k = 0 (maximum likelihood) on a seen context",
        lambda r: (_random_text(r, "ab", 40) + "ab", "a", "abc"),
        0.0,
    ),
    (
        "a context that also ends the text (that occurrence is followed by nothing), k = 1",
        lambda r: ("xyzxyqxy", "xy", "qxyz"),
        1.0,
    ),
    ("overlapping occurrences of the context, k = 0.5", lambda r: ("aaaaabaaa", "aa", "ab"), 0.5),
    (
        "a vocabulary with characters the text never uses, k = 0.01",
        lambda r: (_ENGLISH, "th", sorted(set(_ENGLISH) | set("qz!"))),
        0.01,
    ),
    (
        "a large k = 1000 (close to uniform)",
        lambda r: (_ENGLISH, "e", sorted(set(_ENGLISH))),
        1000.0,
    ),
    ("a 4-gram model on English, k = 0.2", lambda r: (_ENGLISH, "the", sorted(set(_ENGLISH))), 0.2),
)


def check_add_k_probs(add_k_probs, seeds=(60, 61, 62, 63, 64, 65, 66, 67, 68, 69)) -> None:
    """P(w | h) = (c(h w) + k) / (sum_w' c(h w') + k V) over the sorted vocabulary, counting
    every occurrence of h w in the text (overlapping ones too). Unseen contexts, k = 0, the
    empty context, a context at the end of the text, unused vocabulary, a large k."""
    for k, (label, make, kk) in enumerate(ADDK_CASES):
        text, context, vocab = make(_rng(seeds, k))
        vocab = sorted(vocab)
        ctx = f"{label}, context={context!r}, V={len(vocab)}, len(text)={len(text)}"
        expected = _expected("add_k_probs", text, context, vocab, kk)
        p = _call("add_k_probs", add_k_probs, text, context, vocab, kk, context=ctx)
        p = _array("the probabilities", p, (len(vocab),), ctx)
        if expected is None:
            continue
        p = _np.asarray(p, dtype=_np.float64)
        if not _isfinite(p).all():
            raise GradingError(f"the probabilities contain NaN or infinity ({ctx})")
        total = float(p.sum())
        if abs(total - 1.0) > 1e-9:
            raise GradingError(
                f"the probabilities sum to {total:.6g}, not 1 ({ctx}): the denominator is "
                "sum over w' of c(h w') + k V, with c(h w') counting the occurrences of h that "
                "are followed by w'"
            )
        if not _close(p, expected, atol=1e-12, rtol=1e-9) and _close(
            p, _non_overlapping(text, context, vocab, kk)
        ):
            raise GradingError(
                f"the probabilities are those of non-overlapping counts ({ctx}): count every "
                "position where the context starts, overlapping occurrences too (str.count "
                "skips them: 'aaaa'.count('aa') is 2, not 3)"
            )
        assert_close(
            "the probabilities", p, expected, dims=("w",), atol=1e-12, rtol=1e-9, context=ctx
        )


def _non_overlapping(text, context, vocab, k):
    """What counting c(h w) with ``str.count`` gives (occurrences that overlap are skipped)."""
    c = _np.array([text.count(context + w) for w in vocab], dtype=_np.float64)
    total = c.sum() + k * len(vocab)
    return (c + k) / total if total > 0 else _np.full(len(vocab), _np.nan)


seal(__name__)
