"""rnn_ref.numpy.bptt: full BPTT of the chapter-2 model, grad_check, truncated BPTT.

Gradient checks in float64, agreement with torch autograd, exactness of truncated BPTT with one
chunk, what truncation changes (and what it cannot), state carrying, errors, inputs unchanged.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from rnn_ref.convert import from_torch
from rnn_ref.numpy import rnn_forward
from rnn_ref.numpy.bptt import (
    grad_check,
    rnn_loss_and_grads,
    truncated_bptt_chunks,
    truncated_bptt_grads,
)

KEYS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


def make_problem(make, rng, N=3, T=6, D=4, H=5, V=7, masked=True):
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H)) * 0.5
    targets = rng.integers(0, V, size=(N, T))
    mask = None
    if masked:
        mask = np.ones((N, T), dtype=bool)
        mask[0, -2:] = False  # padding at the end of sequence 0
        mask[1, 0] = False
        targets = np.where(mask, targets, -1)  # masked targets are not read
    return x, h0, targets, make(rng, D, H, V), mask


# ---------------------------------------------------------------------------------------------
# rnn_loss_and_grads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_full_bptt_passes_grad_check(make_rnn_params, rng, masked):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng, masked=masked)
    loss, grads, h_T = rnn_loss_and_grads(x, h0, targets, params, mask)
    assert set(grads) == set(KEYS)
    for key in KEYS:
        assert grads[key].shape == params[key].shape
    errors = grad_check(lambda p: rnn_loss_and_grads(x, h0, targets, p, mask)[0], params, grads)
    assert set(errors) == set(KEYS)
    for key, err in errors.items():
        assert err < 1e-7, f"{key}: rel_error {err:.2e}"
    hs, _ = rnn_forward(x, h0, params)
    np.testing.assert_array_equal(h_T, hs[:, -1])


def test_full_bptt_matches_torch_autograd(rng):
    N, T, D, H, V = 3, 5, 4, 6, 7
    torch.manual_seed(0)
    rnn = torch.nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    lin = torch.nn.Linear(H, V, dtype=torch.float64)
    params = {**from_torch(rnn), "W_hy": lin.weight.detach().numpy().copy()}
    params["b_y"] = lin.bias.detach().numpy().copy()
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    targets = rng.integers(0, V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    mask[2, 3:] = False
    mask[0, 1] = False

    tt = torch.tensor(np.where(mask, targets, -100))
    hs, hn = rnn(torch.tensor(x), torch.tensor(h0)[None])
    logits = lin(hs)
    loss_t = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tt.reshape(-1))
    loss_t.backward()

    loss, grads, h_T = rnn_loss_and_grads(x, h0, targets, params, mask)
    assert abs(loss - loss_t.item()) < 1e-10
    np.testing.assert_allclose(h_T, hn[0].detach().numpy(), rtol=0, atol=1e-10)
    ref = {
        "W_xh": rnn.weight_ih_l0.grad,
        "W_hh": rnn.weight_hh_l0.grad,
        "b_h": rnn.bias_ih_l0.grad,  # = bias_hh_l0.grad: both enter a_t the same way
        "W_hy": lin.weight.grad,
        "b_y": lin.bias.grad,
    }
    for key in KEYS:
        np.testing.assert_allclose(grads[key], ref[key].numpy(), rtol=0, atol=1e-10, err_msg=key)


# ---------------------------------------------------------------------------------------------
# grad_check
# ---------------------------------------------------------------------------------------------


def test_grad_check_flags_wrong_gradient(make_rnn_params, rng):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng, H=5)
    _, grads, _ = rnn_loss_and_grads(x, h0, targets, params, mask)

    def f(p):
        return rnn_loss_and_grads(x, h0, targets, p, mask)[0]

    good = grad_check(f, params, {"W_hh": grads["W_hh"]})
    bad = grad_check(f, params, {"W_hh": grads["W_hh"].T})
    assert set(good) == set(bad) == {"W_hh"}
    assert good["W_hh"] < 1e-7
    assert bad["W_hh"] > 1e-3
    flipped = grad_check(f, params, {"b_y": -grads["b_y"]})
    assert flipped["b_y"] > 0.99  # a sign error gives rel_error 1


def test_grad_check_sampled(make_rnn_params, rng):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng)
    _, grads, _ = rnn_loss_and_grads(x, h0, targets, params, mask)
    calls = []

    def f(p):
        calls.append(1)
        return rnn_loss_and_grads(x, h0, targets, p, mask)[0]

    errors = grad_check(f, params, grads, n_samples=3, rng=np.random.default_rng(1))
    # 3 entries per parameter (b_h has 5, all others more), 2 evaluations each
    assert len(calls) == 2 * 3 * len(KEYS)
    assert all(err < 1e-7 for err in errors.values()), errors
    # seeded: the same seed picks the same entries, hence the same numbers
    again = grad_check(f, params, grads, n_samples=3, rng=np.random.default_rng(1))
    assert again == errors
    # n_samples larger than a parameter checks all its entries
    big = grad_check(f, params, {"b_y": grads["b_y"]}, n_samples=1000, rng=0)
    assert big["b_y"] < 1e-7
    wrong = {"W_hh": grads["W_hh"] + 1.0}
    assert grad_check(f, params, wrong, n_samples=2, rng=0)["W_hh"] > 1e-3


def test_grad_check_does_not_modify_params(make_rnn_params, rng, assert_unchanged):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng)
    _, grads, _ = rnn_loss_and_grads(x, h0, targets, params, mask)
    before_p, before_g = copy.deepcopy(params), copy.deepcopy(grads)

    def f(p):
        return rnn_loss_and_grads(x, h0, targets, p, mask)[0]

    grad_check(f, params, grads)
    grad_check(f, params, grads, n_samples=2)
    assert_unchanged(before_p, params, "params")
    assert_unchanged(before_g, grads, "grads")


def test_grad_check_errors(make_rnn_params, rng):
    params = make_rnn_params(rng, 2, 3, 4)

    def f(p):
        return float(np.sum(p["W_hh"] ** 2))

    with pytest.raises(KeyError, match="W_zz"):
        grad_check(f, params, {"W_zz": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="shape"):
        grad_check(f, params, {"W_hh": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="n_samples"):
        grad_check(f, params, {"W_hh": 2 * params["W_hh"]}, n_samples=0)


# ---------------------------------------------------------------------------------------------
# Truncated BPTT
# ---------------------------------------------------------------------------------------------


def test_chunks():
    assert truncated_bptt_chunks(10, 3) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    assert truncated_bptt_chunks(6, 3) == [slice(0, 3), slice(3, 6)]
    assert truncated_bptt_chunks(4, 10) == [slice(0, 4)]
    assert truncated_bptt_chunks(3, 1) == [slice(0, 1), slice(1, 2), slice(2, 3)]


@pytest.mark.parametrize("k", [0, -2])
def test_chunks_reject_k_below_one(make_rnn_params, rng, k):
    with pytest.raises(ValueError, match="k must be at least 1"):
        truncated_bptt_chunks(10, k)
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng)
    with pytest.raises(ValueError, match="k must be at least 1"):
        truncated_bptt_grads(x, h0, targets, params, k, mask)


def test_truncated_other_errors(make_rnn_params, rng):
    x, h0, targets, params, _ = make_problem(make_rnn_params, rng, masked=False)
    with pytest.raises(TypeError, match="k must be an integer"):
        truncated_bptt_grads(x, h0, targets, params, 2.5)
    with pytest.raises(ValueError, match="mask selects no time step"):
        truncated_bptt_grads(x, h0, targets, params, 2, np.zeros(targets.shape, bool))
    with pytest.raises(ValueError, match="targets must have shape"):
        truncated_bptt_grads(x, h0, targets[:, :-1], params, 2)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("k", [6, 7, 100])
def test_truncated_with_k_at_least_T_is_full_bptt_exactly(make_rnn_params, rng, k, masked):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng, T=6, masked=masked)
    loss, grads, h_T = rnn_loss_and_grads(x, h0, targets, params, mask)
    t_loss, t_grads, t_h_T = truncated_bptt_grads(x, h0, targets, params, k, mask)
    assert t_loss == loss
    for key in KEYS:
        np.testing.assert_array_equal(t_grads[key], grads[key], err_msg=key)
    np.testing.assert_array_equal(t_h_T, h_T)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_truncated_state_loss_and_output_layer_match_full(make_rnn_params, rng, k, masked):
    # The forward values are carried across chunks, so h_T, the loss and the output layer's
    # gradients (which need only h_t and dy_t) are those of full BPTT for every k.
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng, T=6, masked=masked)
    loss, grads, h_T = rnn_loss_and_grads(x, h0, targets, params, mask)
    t_loss, t_grads, t_h_T = truncated_bptt_grads(x, h0, targets, params, k, mask)
    np.testing.assert_allclose(t_h_T, h_T, rtol=0, atol=1e-14)
    assert abs(t_loss - loss) < 1e-13
    for key in ("W_hy", "b_y"):
        np.testing.assert_allclose(t_grads[key], grads[key], rtol=0, atol=1e-14, err_msg=key)
    # ...but the recurrent gradients lose the paths across chunk boundaries
    for key in ("W_xh", "W_hh", "b_h"):
        assert np.max(np.abs(t_grads[key] - grads[key])) > 1e-6, key


def test_truncated_k1_last_step_only_is_one_step_gradient(make_rnn_params, rng):
    # Loss on the last step only, k = 1: the recurrent gradients are those of the last step alone,
    # started from the carried h_{T-1}: exactly rnn_loss_and_grads on x[:, -1:] from h_{T-1}.
    N, T = 2, 5
    x, h0, targets, params, _ = make_problem(make_rnn_params, rng, N=N, T=T, masked=False)
    mask = np.zeros((N, T), dtype=bool)
    mask[:, -1] = True
    _, full, _ = rnn_loss_and_grads(x, h0, targets, params, mask)
    _, trunc, _ = truncated_bptt_grads(x, h0, targets, params, 1, mask)
    hs, _ = rnn_forward(x, h0, params)
    _, one, _ = rnn_loss_and_grads(x[:, -1:], hs[:, -2], targets[:, -1:], params)
    for key in KEYS:
        np.testing.assert_allclose(trunc[key], one[key], rtol=0, atol=1e-14, err_msg=key)
    assert np.max(np.abs(trunc["W_hh"] - full["W_hh"])) > 1e-6
    for key in ("W_hy", "b_y"):
        np.testing.assert_allclose(trunc[key], full[key], rtol=0, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_truncated_matches_torch_detach(rng, k):
    # Independent reference: torch runs chunk by chunk with the carried state detached, and the
    # loss is the sum of all chunks' unmasked losses divided by the total unmasked count.
    N, T, D, H, V = 2, 7, 3, 4, 5
    torch.manual_seed(1)
    rnn = torch.nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    lin = torch.nn.Linear(H, V, dtype=torch.float64)
    params = {**from_torch(rnn), "W_hy": lin.weight.detach().numpy().copy()}
    params["b_y"] = lin.bias.detach().numpy().copy()
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    targets = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) < 0.7
    mask[0, 0] = True
    tt = torch.tensor(np.where(mask, targets, -100))
    h = torch.tensor(h0)[None]
    total = 0.0
    for sl in truncated_bptt_chunks(T, k):
        hs, h = rnn(torch.tensor(x[:, sl]), h.detach())
        logits = lin(hs).reshape(-1, V)
        total = total + torch.nn.functional.cross_entropy(
            logits, tt[:, sl].reshape(-1), ignore_index=-100, reduction="sum"
        )
    loss_t = total / int(mask.sum())
    loss_t.backward()
    loss, grads, h_T = truncated_bptt_grads(x, h0, targets, params, k, mask)
    assert abs(loss - loss_t.item()) < 1e-10
    np.testing.assert_allclose(h_T, h[0].detach().numpy(), rtol=0, atol=1e-10)
    ref = {
        "W_xh": rnn.weight_ih_l0.grad,
        "W_hh": rnn.weight_hh_l0.grad,
        "b_h": rnn.bias_ih_l0.grad,
        "W_hy": lin.weight.grad,
        "b_y": lin.bias.grad,
    }
    for key in KEYS:
        np.testing.assert_allclose(grads[key], ref[key].numpy(), rtol=0, atol=1e-10, err_msg=key)


def test_inputs_not_modified(make_rnn_params, rng, assert_unchanged):
    x, h0, targets, params, mask = make_problem(make_rnn_params, rng)
    before = copy.deepcopy((x, h0, targets, params, mask))
    rnn_loss_and_grads(x, h0, targets, params, mask)
    truncated_bptt_grads(x, h0, targets, params, 2, mask)
    truncated_bptt_grads(x, h0, targets, params, 100, mask)
    assert_unchanged(before, (x, h0, targets, params, mask))
