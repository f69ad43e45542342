"""rnn_ref.numpy.output: the temporal affine layer and the masked softmax cross-entropy.

Known values worked by hand, parity with torch (float64, autograd), masking, numerical
stability, numerical gradient checks, dtype, no in-place modification, and error messages.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import (
    numerical_gradient,
    rnn_backward,
    rnn_forward,
    softmax_loss_backward,
    softmax_loss_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)

sizes = st.integers(1, 4)
classes = st.integers(1, 6)
seeds = st.integers(0, 2**32 - 1)
IGNORE = -100  # torch's default ignore_index


def affine_data(seed, N, T, H, V, dtype=np.float64):
    rng = np.random.default_rng(seed)
    hs = rng.standard_normal((N, T, H)).astype(dtype)
    params = {
        "W_hy": rng.standard_normal((V, H)).astype(dtype),
        "b_y": rng.standard_normal(V).astype(dtype),
    }
    dys = rng.standard_normal((N, T, V)).astype(dtype)
    return hs, params, dys


def loss_data(seed, N, T, V, masked=True):
    """Logits, targets and a mask with at least one unmasked step; masked targets are -1."""
    rng = np.random.default_rng(seed)
    ys = 2.0 * rng.standard_normal((N, T, V))
    targets = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < 0.6 if masked else np.ones((N, T), dtype=bool)
    mask[rng.integers(N), rng.integers(T)] = True
    targets[~mask] = -1
    return ys, targets, mask


def torch_loss_and_grad(ys, targets, mask):
    """Mean cross-entropy over unmasked steps by torch, and its gradient by autograd."""
    V = ys.shape[-1]
    ys_t = torch.tensor(ys, dtype=torch.float64, requires_grad=True)
    tgt = torch.tensor(np.where(mask, targets, IGNORE), dtype=torch.long)
    loss = F.cross_entropy(ys_t.reshape(-1, V), tgt.reshape(-1), ignore_index=IGNORE)
    loss.backward()
    return loss.item(), ys_t.grad.numpy()


# ---------------------------------------------------------------------------------------------
# Known values, worked by hand
# ---------------------------------------------------------------------------------------------


def test_temporal_affine_known_values():
    # H = 2, V = 1: y = W_hy h + b_y = [1, -2] . [3, 1] + 0.5 = 3 - 2 + 0.5 = 1.5
    hs = np.array([[[3.0, 1.0]]])
    params = {"W_hy": np.array([[1.0, -2.0]]), "b_y": np.array([0.5])}
    ys, cache = temporal_affine_forward(hs, params)
    np.testing.assert_allclose(ys, [[[1.5]]], rtol=1e-15)
    # dy = 2: dh = dy W_hy = [2, -4], dW_hy = dy h^T = [[6, 2]], db_y = dy = [2]
    dhs, grads = temporal_affine_backward(np.array([[[2.0]]]), cache)
    np.testing.assert_allclose(dhs, [[[2.0, -4.0]]], rtol=1e-15)
    np.testing.assert_allclose(grads["W_hy"], [[6.0, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(grads["b_y"], [2.0], rtol=1e-15)


def test_temporal_affine_ignores_rnn_params():
    params = {"W_hy": np.eye(2), "b_y": np.zeros(2), "W_xh": np.ones((7, 7)), "b_h": None}
    ys, _ = temporal_affine_forward(np.ones((1, 1, 2)), params)
    np.testing.assert_array_equal(ys, np.ones((1, 1, 2)))


def test_softmax_loss_known_values():
    # logits (0, 0, ln 2): exp = (1, 1, 2), p = (1/4, 1/4, 1/2).
    # Step (0, 0) has target 2: -ln(1/2) = ln 2 = 0.6931471805599453.
    # Step (0, 1) has target 0: -ln(1/4) = ln 4 = 1.3862943611198906.
    ys = np.tile([0.0, 0.0, math.log(2.0)], (1, 2, 1))
    targets = np.array([[2, 0]])
    loss, cache = softmax_loss_forward(ys, targets)
    # mean of the two: (ln 2 + 2 ln 2) / 2 = 1.5 ln 2 = 1.0397207708399179
    assert loss == pytest.approx(1.0397207708399179, rel=1e-14)
    # dys = (p - onehot(c)) / count, count = 2:
    # step 0: (1/4, 1/4, -1/2) / 2; step 1: (-3/4, 1/4, 1/2) / 2
    dys = softmax_loss_backward(1.0, cache)
    np.testing.assert_allclose(
        dys, [[[0.125, 0.125, -0.25], [-0.375, 0.125, 0.25]]], rtol=1e-14, atol=1e-16
    )
    # Masking step 1 leaves ln 2 and count = 1: dys = (1/4, 1/4, -1/2) at step 0, 0 at step 1.
    loss, cache = softmax_loss_forward(ys, targets, np.array([[1, 0]]))
    assert loss == pytest.approx(0.6931471805599453, rel=1e-14)
    dys = softmax_loss_backward(1.0, cache)
    np.testing.assert_allclose(dys, [[[0.25, 0.25, -0.5], [0, 0, 0]]], rtol=1e-14, atol=1e-16)
    # dloss scales the gradient linearly.
    np.testing.assert_allclose(softmax_loss_backward(3.0, cache), 3.0 * dys, rtol=1e-15)


@given(N=sizes, T=sizes, V=classes, seed=seeds, c=st.floats(-50, 50))
def test_uniform_logits_give_ln_V(N, T, V, seed, c):
    # Equal logits (any value c): p = 1/V for every class, loss = -ln(1/V) = ln V.
    _, targets, mask = loss_data(seed, N, T, V)
    loss, cache = softmax_loss_forward(np.full((N, T, V), c), targets, mask)
    assert loss == pytest.approx(math.log(V), rel=1e-12, abs=1e-14)
    expected = (1.0 / V - np.eye(V)[np.where(mask, targets, 0)]) * (mask / mask.sum())[..., None]
    np.testing.assert_allclose(softmax_loss_backward(1.0, cache), expected, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Parity with torch (float64)
# ---------------------------------------------------------------------------------------------


@example(N=1, T=1, V=1, seed=0, masked=False)
@example(N=1, T=1, V=3, seed=1, masked=False)
@example(N=3, T=4, V=5, seed=2, masked=True)
@given(N=sizes, T=sizes, V=classes, seed=seeds, masked=st.booleans())
def test_softmax_loss_matches_torch_cross_entropy(N, T, V, seed, masked):
    ys, targets, mask = loss_data(seed, N, T, V, masked)
    loss, cache = softmax_loss_forward(ys, targets, mask)
    dys = softmax_loss_backward(1.0, cache)
    loss_t, dys_t = torch_loss_and_grad(ys, targets, mask)
    assert loss == pytest.approx(loss_t, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(dys, dys_t, rtol=1e-10, atol=1e-14)


@example(N=1, T=1, H=1, V=1, seed=0)
@example(N=1, T=1, H=3, V=2, seed=1)
@given(N=sizes, T=sizes, H=sizes, V=classes, seed=seeds)
def test_temporal_affine_matches_torch(N, T, H, V, seed):
    hs, params, dys = affine_data(seed, N, T, H, V)
    ys, cache = temporal_affine_forward(hs, params)
    dhs, grads = temporal_affine_backward(dys, cache)

    hs_t = torch.tensor(hs, requires_grad=True)
    W_t = torch.tensor(params["W_hy"], requires_grad=True)
    b_t = torch.tensor(params["b_y"], requires_grad=True)
    ys_t = F.linear(hs_t, W_t, b_t)
    ys_t.backward(torch.tensor(dys))
    np.testing.assert_allclose(ys, ys_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dhs, hs_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["W_hy"], W_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["b_y"], b_t.grad.numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Masking and numerical stability
# ---------------------------------------------------------------------------------------------


@given(N=sizes, T=st.integers(2, 5), V=classes, seed=seeds)
def test_masked_steps_do_not_change_the_loss(N, T, V, seed):
    ys, targets, mask = loss_data(seed, N, T, V)
    mask[0, 0], mask[-1, -1] = True, False  # at least one step on, one off
    targets[0, 0] = max(targets[0, 0], 0)
    targets[-1, -1] = 10**6  # out of range, but masked: never read
    loss, cache = softmax_loss_forward(ys, targets, mask)
    dys = softmax_loss_backward(1.0, cache)

    rng = np.random.default_rng(seed + 1)
    ys2 = ys.copy()
    ys2[~mask] = 1e3 * rng.standard_normal(ys2[~mask].shape)  # anything at masked steps
    targets2 = np.where(mask, targets, rng.integers(-5, 5, targets.shape))
    loss2, cache2 = softmax_loss_forward(ys2, targets2, mask.astype(float))  # a 0./1. mask too
    dys2 = softmax_loss_backward(1.0, cache2)
    assert loss2 == pytest.approx(loss, rel=1e-14, abs=1e-15)
    np.testing.assert_array_equal(dys2[~mask], 0.0)
    np.testing.assert_allclose(dys2, dys, rtol=1e-14, atol=1e-17)

    # and the loss is the mean of the per-step losses over the unmasked steps
    per_step = [
        softmax_loss_forward(ys[n : n + 1, t : t + 1], targets[n : n + 1, t : t + 1])[0]
        for n, t in zip(*np.nonzero(mask), strict=True)
    ]
    assert loss == pytest.approx(np.mean(per_step), rel=1e-12)


def test_huge_logits_are_stable():
    # (1e4, 0, -1e4): exp(1e4) overflows unless the max is subtracted first.
    ys = np.array([[[1e4, 0.0, -1e4], [1e4, 0.0, -1e4]]])
    # target 0: p_0 = 1/(1 + e^-1e4 + e^-2e4) = 1 in float64, loss 0;
    # target 1: log p_1 = -1e4 - log(1 + ...) = -1e4, loss 1e4. Mean: 5e3.
    loss, cache = softmax_loss_forward(ys, np.array([[0, 1]]))
    dys = softmax_loss_backward(1.0, cache)
    assert np.isfinite(loss) and np.all(np.isfinite(dys))
    assert loss == pytest.approx(5e3, rel=1e-14)
    # p = (1, 0, 0) at both steps; (p - onehot) / 2
    np.testing.assert_allclose(dys, [[[0, 0, 0], [0.5, -0.5, 0]]], atol=1e-15)


@given(seed=seeds, shift=st.sampled_from([-1e4, 1e4, 1e6]))
def test_loss_is_shift_invariant_with_huge_logits(seed, shift):
    ys, targets, mask = loss_data(seed, 3, 4, 5)
    loss, cache = softmax_loss_forward(ys, targets, mask)
    big_loss, big_cache = softmax_loss_forward(1e4 * ys + shift, targets, mask)
    big_dys = softmax_loss_backward(1.0, big_cache)
    assert np.isfinite(big_loss) and np.all(np.isfinite(big_dys))
    # adding the same constant to every logit changes nothing
    loss2, cache2 = softmax_loss_forward(ys + shift, targets, mask)
    assert loss2 == pytest.approx(loss, rel=1e-6)  # rounding of (ys + shift) is ~1e-10 * shift
    np.testing.assert_allclose(
        softmax_loss_backward(1.0, cache2), softmax_loss_backward(1.0, cache), atol=1e-6
    )
    loss_t, dys_t = torch_loss_and_grad(1e4 * ys + shift, targets, mask)
    assert big_loss == pytest.approx(loss_t, rel=1e-12)
    np.testing.assert_allclose(big_dys, dys_t, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Numerical gradient checks (float64)
# ---------------------------------------------------------------------------------------------


@example(N=1, T=1, H=1, V=1, seed=0)
@example(N=1, T=1, H=3, V=2, seed=1)
@given(N=sizes, T=sizes, H=sizes, V=classes, seed=seeds)
def test_temporal_affine_numerical_gradients(assert_grad, N, T, H, V, seed):
    hs, params, dys = affine_data(seed, N, T, H, V)
    _, cache = temporal_affine_forward(hs, params)
    dhs, grads = temporal_affine_backward(dys, cache)
    assert_grad(
        dhs, numerical_gradient(lambda v: temporal_affine_forward(v, params)[0], hs, dys), "dhs"
    )
    for k in ("W_hy", "b_y"):
        num = numerical_gradient(
            lambda v, k=k: temporal_affine_forward(hs, {**params, k: v})[0], params[k], dys
        )
        assert_grad(grads[k], num, f"d{k}")


@example(N=1, T=1, V=2, seed=0)
@example(N=2, T=3, V=4, seed=1)
@given(N=sizes, T=sizes, V=classes, seed=seeds)
def test_softmax_loss_numerical_gradient_with_mask(assert_grad, N, T, V, seed):
    ys, targets, mask = loss_data(seed, N, T, V)
    if N * T > 1:  # a mask that has zeros, whenever there are two steps
        mask.flat[0], mask.flat[-1] = False, True
        targets.flat[-1] = max(targets.flat[-1], 0)
    _, cache = softmax_loss_forward(ys, targets, mask)
    dys = softmax_loss_backward(1.0, cache)
    num = numerical_gradient(lambda v: softmax_loss_forward(v, targets, mask)[0], ys)
    assert_grad(dys, num, "dys")


def test_full_model_numerical_gradients(rng, make_rnn_params, assert_grad):
    # x -> RNN -> affine -> masked softmax loss, chained backward, against numerical gradients.
    N, T, D, H, V = 2, 4, 3, 5, 6
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = make_rnn_params(rng, D, H, V=V, scale=1.0)
    targets = rng.integers(0, V, (N, T))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])

    def loss_of(x=x, h0=h0, **over):
        p = {**params, **over}
        hs, _ = rnn_forward(x, h0, p)
        ys, _ = temporal_affine_forward(hs, p)
        return softmax_loss_forward(ys, targets, mask)[0]

    hs, c1 = rnn_forward(x, h0, params)
    ys, c2 = temporal_affine_forward(hs, params)
    _, c3 = softmax_loss_forward(ys, targets, mask)
    dhs, grads = temporal_affine_backward(softmax_loss_backward(1.0, c3), c2)
    dx, dh0, rnn_grads = rnn_backward(dhs, c1)
    grads.update(rnn_grads)

    assert_grad(dx, numerical_gradient(lambda v: loss_of(x=v), x), "dx")
    assert_grad(dh0, numerical_gradient(lambda v: loss_of(h0=v), h0), "dh0")
    for k in ("W_xh", "W_hh", "b_h", "W_hy", "b_y"):
        assert_grad(grads[k], numerical_gradient(lambda v, k=k: loss_of(**{k: v}), params[k]), k)


# ---------------------------------------------------------------------------------------------
# No input modified, dtype
# ---------------------------------------------------------------------------------------------


@given(N=sizes, T=sizes, H=sizes, V=classes, seed=seeds)
def test_no_input_modified(assert_unchanged, N, T, H, V, seed):
    hs, params, dys = affine_data(seed, N, T, H, V)
    before = copy.deepcopy((hs, params))
    ys, cache = temporal_affine_forward(hs, params)
    assert_unchanged(before, (hs, params))
    assert not np.shares_memory(ys, hs)
    before = copy.deepcopy((dys, cache))
    first = temporal_affine_backward(dys, cache)
    assert_unchanged(before, (dys, cache))
    assert_unchanged(first, temporal_affine_backward(dys, cache))

    _, targets, mask = loss_data(seed, N, T, V)
    before = copy.deepcopy((ys, targets, mask))
    _, cache = softmax_loss_forward(ys, targets, mask)
    assert_unchanged(before, (ys, targets, mask))
    cache_before = copy.deepcopy(cache)
    first = softmax_loss_backward(1.0, cache)
    assert_unchanged(cache_before, cache)
    assert_unchanged(first, softmax_loss_backward(1.0, cache))
    assert not np.shares_memory(first, ys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    hs, params, dys = affine_data(3, 2, 3, 4, 5, dtype=dtype)
    ys, cache = temporal_affine_forward(hs, params)
    assert ys.dtype == dtype
    dhs, grads = temporal_affine_backward(dys, cache)
    assert dhs.dtype == dtype and all(g.dtype == dtype for g in grads.values())
    loss, cache = softmax_loss_forward(ys, np.zeros((2, 3), dtype=np.int64))
    assert isinstance(loss, float)
    assert softmax_loss_backward(1.0, cache).dtype == dtype


# ---------------------------------------------------------------------------------------------
# Errors name the culprit
# ---------------------------------------------------------------------------------------------


def test_temporal_affine_errors():
    hs = np.ones((2, 3, 4))
    p = {"W_hy": np.ones((5, 4)), "b_y": np.ones(5)}
    with pytest.raises(ValueError, match=r"hs must have 3 dimensions, got shape \(2, 4\)"):
        temporal_affine_forward(hs[:, 0], p)
    with pytest.raises(KeyError, match=r"params is missing 'W_hy'"):
        temporal_affine_forward(hs, {"b_y": p["b_y"]})
    with pytest.raises(KeyError, match=r"params is missing 'b_y'"):
        temporal_affine_forward(hs, {"W_hy": p["W_hy"]})
    with pytest.raises(
        ValueError, match=r"params\['W_hy'\] must have shape \(any, 4\), got \(4, 5\)"
    ):
        temporal_affine_forward(hs, {**p, "W_hy": p["W_hy"].T})
    with pytest.raises(ValueError, match=r"params\['b_y'\] must have shape \(5,\), got \(4,\)"):
        temporal_affine_forward(hs, {**p, "b_y": np.ones(4)})
    _, cache = temporal_affine_forward(hs, p)
    with pytest.raises(ValueError, match=r"dys must have shape \(2, 3, 5\), got \(2, 3, 4\)"):
        temporal_affine_backward(np.ones((2, 3, 4)), cache)


def test_softmax_loss_errors():
    ys, targets = np.zeros((2, 3, 5)), np.zeros((2, 3), dtype=int)
    with pytest.raises(ValueError, match=r"ys must have 3 dimensions"):
        softmax_loss_forward(ys[0], targets)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\), got \(3, 2\)"):
        softmax_loss_forward(ys, targets.T)
    with pytest.raises(
        TypeError, match=r"targets must be integer class indices, got dtype float64"
    ):
        softmax_loss_forward(ys, targets.astype(float))
    bad = targets.copy()
    bad[0, 1] = 5
    with pytest.raises(ValueError, match=r"targets\[0, 1\] = 5 is not a class in \[0, 5\)"):
        softmax_loss_forward(ys, bad)
    bad[0, 1], bad[1, 2] = 0, -1
    with pytest.raises(ValueError, match=r"targets\[1, 2\] = -1 is not a class in \[0, 5\)"):
        softmax_loss_forward(ys, bad)
    mask = np.ones((2, 3), dtype=bool)
    mask[1, 2] = False  # the same -1 target, masked, is fine
    assert softmax_loss_forward(ys, bad, mask)[0] == pytest.approx(math.log(5))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\), got \(2,\)"):
        softmax_loss_forward(ys, targets, np.ones(2))
    with pytest.raises(ValueError, match=r"mask selects no time step"):
        softmax_loss_forward(ys, targets, np.zeros((2, 3)))
