"""rnn_ref.numpy.training: dropout masks, the RNN with (naive or variational) dropout and its
backward pass, SGD with weight decay, one clipped training step, early stopping and
learning-rate schedules.

Known values, properties over shapes (N = 1, T = 1, H != D), numerical gradient checks with the
masks fixed, agreement with torch (autograd, torch.optim.SGD, clip_grad_norm_, the
lr_scheduler classes), no in-place modification of inputs, and error messages.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from rnn_ref.numpy import clip_by_norm, numerical_gradient, rnn_forward, rnn_loss_and_grads
from rnn_ref.numpy.training import (
    EarlyStopping,
    cosine_lr,
    dropout_mask,
    naive_dropout_masks,
    rnn_backward_dropout,
    rnn_forward_dropout,
    rnn_forward_masked,
    sgd_step,
    step_lr,
    train_step,
    variational_dropout_mask,
    warmup_lr,
)
from rnn_ref.torch import rnn_forward as torch_rnn_forward

sizes = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)
probs = st.sampled_from([0.0, 0.25, 0.5, 0.8])


def edge_cases(f):
    """N = 1, T = 1 and H != D, with and without dropout."""
    f = example(N=1, T=1, D=1, H=1, p=0.5, seed=0)(f)
    f = example(N=1, T=1, D=3, H=2, p=0.0, seed=1)(f)
    f = example(N=2, T=5, D=2, H=4, p=0.5, seed=2)(f)
    return f


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def test_dropout_mask_known_values():
    mask = dropout_mask((2, 3), 0.5, np.random.default_rng(0))
    u = np.random.default_rng(0).random((2, 3))
    np.testing.assert_array_equal(mask, np.where(u >= 0.5, 2.0, 0.0))
    assert mask.dtype == np.float64


@given(shape=st.tuples(sizes, sizes, sizes), p=probs, seed=seeds)
def test_dropout_mask_values_are_zero_or_inverse_keep(shape, p, seed):
    mask = dropout_mask(shape, p, np.random.default_rng(seed))
    assert mask.shape == shape and mask.dtype == np.float64
    assert np.all((mask == 0.0) | np.isclose(mask, 1.0 / (1.0 - p), rtol=0, atol=1e-15))


def test_dropout_mask_p_zero_gives_ones_and_draws_the_same_stream():
    rng0, rng1 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(dropout_mask((4, 6), 0.0, rng0), np.ones((4, 6)))
    dropout_mask((4, 6), 0.7, rng1)
    assert rng0.random() == rng1.random()  # one rng.random(shape) call whatever p is


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_is_unbiased(p):
    mask = dropout_mask(200_000, p, np.random.default_rng(1))
    keep = np.mean(mask > 0)
    # Binomial standard error sqrt(p(1-p)/n) <= 1.2e-3: 5 standard errors.
    assert abs(keep - (1 - p)) < 6e-3
    assert abs(mask.mean() - 1.0) < 6e-3 / (1 - p)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan")])
def test_dropout_mask_rejects_bad_p(p):
    with pytest.raises(ValueError, match="drop probability"):
        dropout_mask((2, 2), p, np.random.default_rng(0))


def test_dropout_mask_rejects_bad_rng_and_p_type():
    with pytest.raises(TypeError, match="Generator"):
        dropout_mask((2, 2), 0.5, 0)
    with pytest.raises(TypeError, match="real number"):
        dropout_mask((2, 2), "0.5", np.random.default_rng(0))


def test_naive_and_variational_masks_shapes_and_streams():
    naive = naive_dropout_masks(3, 7, 5, 0.5, np.random.default_rng(2))
    var = variational_dropout_mask(3, 5, 0.5, np.random.default_rng(2))
    assert naive.shape == (3, 7, 5) and var.shape == (3, 5)
    np.testing.assert_array_equal(naive, dropout_mask((3, 7, 5), 0.5, np.random.default_rng(2)))
    np.testing.assert_array_equal(var, dropout_mask((3, 5), 0.5, np.random.default_rng(2)))
    # A fresh mask at every step: consecutive steps differ (35 entries, p = 0.5).
    assert not np.array_equal(naive[:, 0], naive[:, 1])
    with pytest.raises(ValueError, match="T must be at least 1"):
        naive_dropout_masks(3, 0, 5, 0.5, np.random.default_rng(2))
    with pytest.raises(TypeError, match="H must be an integer"):
        variational_dropout_mask(3, 2.0, 0.5, np.random.default_rng(2))


# ---------------------------------------------------------------------------------------------
# The RNN with dropout
# ---------------------------------------------------------------------------------------------


def problem(seed, N, T, D, H, make):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    return rng, x, h0, make(rng, D, H)


@given(N=sizes, T=sizes, D=sizes, H=sizes, p=probs, seed=seeds)
@edge_cases
def test_ones_masks_give_the_plain_rnn(make_rnn_params, N, T, D, H, p, seed):
    _, x, h0, params = problem(seed, N, T, D, H, make_rnn_params)
    hs_ref, _ = rnn_forward(x, h0, params)
    for mx, mh in [(np.ones((N, D)), np.ones((N, H))), (np.ones((N, T, D)), np.ones((N, T, H)))]:
        hs, _ = rnn_forward_masked(x, h0, params, mx, mh)
        np.testing.assert_allclose(hs, hs_ref, rtol=1e-13, atol=1e-13)
    hs0, _ = rnn_forward_dropout(x, h0, params, 0.0, 0.0, np.random.default_rng(seed))
    np.testing.assert_allclose(hs0, hs_ref, rtol=1e-13, atol=1e-13)


def test_forward_known_value_one_step():
    # N = 1, T = 1, D = H = 2: h = tanh(W_xh (m_x x) + W_hh (m_h h0) + b), masks (2, 0), (0, 2).
    params = {"W_xh": np.eye(2), "W_hh": np.array([[1.0, 2.0], [3.0, 4.0]]), "b_h": np.zeros(2)}
    x = np.array([[[0.5, 0.25]]])
    h0 = np.array([[0.1, 0.2]])
    hs, _ = rnn_forward_masked(x, h0, params, np.array([[2.0, 0.0]]), np.array([[0.0, 2.0]]))
    np.testing.assert_allclose(hs[0, 0], np.tanh([1.0 + 2 * 0.4, 0.0 + 4 * 0.4]), rtol=1e-14)


@given(N=sizes, T=sizes, D=sizes, H=sizes, p=probs, seed=seeds)
@edge_cases
def test_masks_drawn_in_documented_order(make_rnn_params, N, T, D, H, p, seed):
    _, x, h0, params = problem(seed, N, T, D, H, make_rnn_params)
    _, c_var = rnn_forward_dropout(x, h0, params, p, p / 2, np.random.default_rng(seed))
    r = np.random.default_rng(seed)
    mx, mh = variational_dropout_mask(N, D, p, r), variational_dropout_mask(N, H, p / 2, r)
    np.testing.assert_array_equal(c_var["mask_x"], np.broadcast_to(mx[:, None], (N, T, D)))
    np.testing.assert_array_equal(c_var["mask_h"], np.broadcast_to(mh[:, None], (N, T, H)))
    _, c_naive = rnn_forward_dropout(x, h0, params, p, p / 2, np.random.default_rng(seed), False)
    r = np.random.default_rng(seed)
    np.testing.assert_array_equal(c_naive["mask_x"], naive_dropout_masks(N, T, D, p, r))
    np.testing.assert_array_equal(c_naive["mask_h"], naive_dropout_masks(N, T, H, p / 2, r))


def test_variational_masks_are_constant_over_time_naive_are_not(make_rnn_params):
    _, x, h0, params = problem(3, 4, 9, 3, 6, make_rnn_params)
    _, c = rnn_forward_dropout(x, h0, params, 0.5, 0.5, np.random.default_rng(0))
    assert np.all(c["mask_h"] == c["mask_h"][:, :1]) and np.all(c["mask_x"] == c["mask_x"][:, :1])
    _, c = rnn_forward_dropout(x, h0, params, 0.5, 0.5, np.random.default_rng(0), False)
    assert not np.all(c["mask_h"] == c["mask_h"][:, :1])


@pytest.mark.parametrize("variational", [True, False])
@given(N=sizes, T=sizes, D=sizes, H=sizes, p=probs, seed=seeds)
@edge_cases
def test_backward_matches_numerical_gradient(
    make_rnn_params, assert_grad, variational, N, T, D, H, p, seed
):
    rng, x, h0, params = problem(seed, N, T, D, H, make_rnn_params)
    hs, cache = rnn_forward_dropout(x, h0, params, p, p, rng, variational=variational)
    mx, mh = cache["mask_x"].copy(), cache["mask_h"].copy()  # fixed for the differences
    dhs = rng.standard_normal(hs.shape)
    dx, dh0, grads = rnn_backward_dropout(dhs, cache)

    def f(x_=x, h0_=h0, **over):
        return rnn_forward_masked(x_, h0_, {**params, **over}, mx, mh)[0]

    assert_grad(dx, numerical_gradient(lambda v: f(x_=v), x, dhs), "dx")
    assert_grad(dh0, numerical_gradient(lambda v: f(h0_=v), h0, dhs), "dh0")
    for key in ("W_xh", "W_hh", "b_h"):
        num = numerical_gradient(lambda v, key=key: f(**{key: v}), params[key], dhs)
        assert_grad(grads[key], num, f"d{key}")


def test_backward_matches_torch_autograd(make_rnn_params):
    rng, x, h0, params = problem(7, 3, 6, 4, 5, make_rnn_params)
    hs, cache = rnn_forward_dropout(x, h0, params, 0.3, 0.4, rng, variational=False)
    dhs = rng.standard_normal(hs.shape)
    dx, dh0, grads = rnn_backward_dropout(dhs, cache)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    mx, mh = torch.tensor(cache["mask_x"]), torch.tensor(cache["mask_h"])
    h, out = th0, []
    for s in range(x.shape[1]):
        a = (tx[:, s] * mx[:, s]) @ t["W_xh"].T + (h * mh[:, s]) @ t["W_hh"].T + t["b_h"]
        h = torch.tanh(a)
        out.append(h)
    hs_t = torch.stack(out, 1)
    np.testing.assert_allclose(hs, hs_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    (hs_t * torch.tensor(dhs)).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, th0.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], t[k].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dropped_input_units_get_no_gradient(make_rnn_params):
    rng, x, h0, params = problem(4, 2, 5, 6, 3, make_rnn_params)
    hs, cache = rnn_forward_dropout(x, h0, params, 0.5, 0.5, rng, variational=False)
    dx, _, _ = rnn_backward_dropout(np.ones_like(hs), cache)
    assert np.all(dx[cache["mask_x"] == 0] == 0)
    assert np.any(cache["mask_x"] == 0)


def test_dropout_inputs_not_modified(make_rnn_params, assert_unchanged):
    rng, x, h0, params = problem(8, 2, 4, 3, 5, make_rnn_params)
    before = copy.deepcopy((x, h0, params))
    hs, cache = rnn_forward_dropout(x, h0, params, 0.5, 0.5, rng)
    dhs = rng.standard_normal(hs.shape)
    dhs_before = dhs.copy()
    rnn_backward_dropout(dhs, cache)
    assert_unchanged(before, (x, h0, params))
    assert_unchanged(dhs_before, dhs, "dhs")


def test_dropout_forward_errors(make_rnn_params):
    rng, x, h0, params = problem(0, 2, 3, 4, 5, make_rnn_params)
    with pytest.raises(ValueError, match="p_h is a drop probability"):
        rnn_forward_dropout(x, h0, params, 0.1, 1.0, rng)
    with pytest.raises(ValueError, match=r"mask_h must have shape \(2, 5\) or \(2, 3, 5\)"):
        rnn_forward_masked(x, h0, params, np.ones((2, 4)), np.ones((2, 4)))
    hs, cache = rnn_forward_masked(x, h0, params, np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="dhs must have the shape of hs"):
        rnn_backward_dropout(np.ones((2, 3, 4)), cache)


# ---------------------------------------------------------------------------------------------
# SGD and weight decay
# ---------------------------------------------------------------------------------------------


def test_sgd_step_known_values():
    params = {"w": np.array([1.0, -2.0])}
    grads = {"w": np.array([0.5, 0.5])}
    np.testing.assert_allclose(sgd_step(params, grads, 0.1)["w"], [0.95, -2.05])
    # L2: w - lr (g + wd w) = [1 - 0.1 (0.5 + 0.2), -2 - 0.1 (0.5 - 0.4)]
    np.testing.assert_allclose(sgd_step(params, grads, 0.1, 0.2)["w"], [0.93, -2.01])
    # decoupled: (1 - wd) w - lr g = [0.8 - 0.05, -1.6 - 0.05]
    np.testing.assert_allclose(sgd_step(params, grads, 0.1, 0.2, True)["w"], [0.75, -1.65])


@given(seed=seeds, lr=st.sampled_from([0.01, 0.1, 0.5]), wd=st.sampled_from([0.0, 1e-3, 0.05]))
def test_decoupled_equals_l2_divided_by_lr(seed, lr, wd):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    dec = sgd_step(params, grads, lr, wd, decoupled=True)
    l2 = sgd_step(params, grads, lr, wd / lr, decoupled=False)
    for k in params:
        np.testing.assert_allclose(dec[k], l2[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("wd", [0.0, 0.01, 0.3])
def test_sgd_step_matches_torch_sgd(wd):
    rng = np.random.default_rng(11)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(3)}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(tparams.values(), lr=0.05, weight_decay=wd)
    for _ in range(4):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k])
        opt.step()
        params = sgd_step(params, grads, 0.05, wd)
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-13, atol=1e-15)


def test_decoupled_matches_torch_adamw_decay_part():
    # With zero gradients Adam's own step is 0, so AdamW's update is the decay alone:
    # theta (1 - lr wd). Here that is decoupled decay lr * wd (AdamW scales its decay by lr).
    rng = np.random.default_rng(12)
    params = {"W": rng.standard_normal((2, 3))}
    t = torch.tensor(params["W"], requires_grad=True)
    opt = torch.optim.AdamW([t], lr=0.1, weight_decay=0.2)
    t.grad = torch.zeros_like(t)
    opt.step()
    ours = sgd_step(params, {"W": np.zeros((2, 3))}, 0.1, 0.1 * 0.2, decoupled=True)
    np.testing.assert_allclose(ours["W"], t.detach().numpy(), rtol=1e-13)


def test_sgd_step_does_not_modify_inputs_and_checks(assert_unchanged):
    params = {"w": np.arange(3.0)}
    grads = {"w": np.ones(3)}
    before = copy.deepcopy((params, grads))
    new = sgd_step(params, grads, 0.1, 0.1)
    assert new["w"] is not params["w"]
    assert_unchanged(before, (params, grads))
    with pytest.raises(KeyError, match="same keys"):
        sgd_step(params, {"v": np.ones(3)}, 0.1)
    with pytest.raises(ValueError, match="grads\\['w'\\] has shape"):
        sgd_step(params, {"w": np.ones(2)}, 0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        sgd_step(params, grads, -0.1)
    with pytest.raises(ValueError, match="weight_decay must be"):
        sgd_step(params, grads, 0.1, -1.0)


# ---------------------------------------------------------------------------------------------
# One training step
# ---------------------------------------------------------------------------------------------


def model_problem(seed, N, T, D, H, V, make, scale=0.5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    targets = rng.integers(0, V, size=(N, T))
    return x, h0, targets, make(rng, D, H, V, scale=scale)


@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
@example(N=1, T=1, D=3, H=2, seed=0)
def test_train_step_is_loss_clip_update(make_rnn_params, N, T, D, H, seed):
    x, h0, targets, params = model_problem(seed, N, T, D, H, 3, make_rnn_params, scale=2.0)
    new, loss, norm = train_step(params, x, h0, targets, 0.1, 0.5, weight_decay=0.01)
    ref_loss, grads, _ = rnn_loss_and_grads(x, h0, targets, params)
    clipped, ref_norm = clip_by_norm(grads, 0.5)
    assert loss == pytest.approx(ref_loss, rel=1e-12) and norm == pytest.approx(ref_norm, 1e-12)
    for k in params:
        np.testing.assert_allclose(
            new[k], params[k] - 0.1 * (clipped[k] + 0.01 * params[k]), rtol=1e-12, atol=1e-14
        )


def test_train_step_without_clipping_reports_the_norm(make_rnn_params):
    x, h0, targets, params = model_problem(1, 3, 4, 2, 5, 4, make_rnn_params, scale=3.0)
    new, _, norm = train_step(params, x, h0, targets, 1.0, None)
    _, grads, _ = rnn_loss_and_grads(x, h0, targets, params)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g**2) for g in grads.values())), rel=1e-12)
    step = np.sqrt(sum(np.sum((new[k] - params[k]) ** 2) for k in params))
    assert step == pytest.approx(norm, rel=1e-12)
    # With clipping the update (no decay) is at most lr * max_norm long.
    new, _, norm = train_step(params, x, h0, targets, 1.0, 0.1)
    step = np.sqrt(sum(np.sum((new[k] - params[k]) ** 2) for k in params))
    assert norm > 0.1 and step == pytest.approx(0.1, rel=1e-5)


def test_train_step_matches_torch_training_loop(make_rnn_params, assert_unchanged):
    # torch.nn.RNN keeps two biases (both get db_h, so its global norm would count db_h twice):
    # the torch side uses the functional RNN on the five symbols, with torch's autograd,
    # clip_grad_norm_ and SGD(weight_decay).
    N, T, D, H, V = 4, 6, 3, 5, 4
    x, h0, targets, params = model_problem(2, N, T, D, H, V, make_rnn_params, scale=2.5)
    before = copy.deepcopy(params)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(t.values(), lr=0.3, weight_decay=0.02)
    tx, th0, tt = torch.tensor(x), torch.tensor(h0), torch.tensor(targets)
    p = params
    for _ in range(3):
        p, loss, norm = train_step(p, x, h0, targets, 0.3, 0.5, weight_decay=0.02)
        opt.zero_grad()
        hs = torch_rnn_forward(tx, th0, t)
        logits = hs @ t["W_hy"].T + t["b_y"]
        t_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tt.reshape(-1))
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(list(t.values()), 0.5)
        opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=1e-10)
        assert norm == pytest.approx(t_norm.item(), rel=1e-10)
        assert norm > 0.5  # the clipping was active
    for k, v in t.items():
        np.testing.assert_allclose(p[k], v.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    assert_unchanged(before, params)


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------


def test_early_stopping_known_sequence():
    es = EarlyStopping(patience=2)
    assert es.best == math.inf and es.best_step is None and es.bad_steps == 0
    stops = [es.step(v, state={"epoch": i}) for i, v in enumerate([3.0, 2.0, 2.5, 1.5, 1.6, 1.7])]
    assert stops == [False, False, False, False, False, True]
    assert es.best == 1.5 and es.best_step == 3 and es.best_state == {"epoch": 3}
    assert es.bad_steps == 2
    assert es.step(1.8) is True  # keeps saying stop
    assert es.step(1.0) is False and es.bad_steps == 0 and es.best_step == 7


def test_early_stopping_min_delta_and_nan():
    es = EarlyStopping(patience=3, min_delta=0.1)
    assert [es.step(v) for v in [1.0, 0.95, float("nan"), 0.91]] == [False, False, False, True]
    assert es.best == 1.0 and es.best_step == 0  # 0.95 and 0.91 are not better by > 0.1
    es = EarlyStopping(patience=1)
    assert es.step(float("nan")) is True and es.best_step is None  # NaN never becomes best
    assert es.step(np.float32(2.0)) is False and es.best == 2.0


def test_early_stopping_mode_max():
    es = EarlyStopping(patience=2, mode="max")
    assert es.best == -math.inf
    assert [es.step(v) for v in [0.5, 0.7, 0.6, 0.7]] == [False, False, False, True]
    assert es.best == 0.7 and es.best_step == 1


def test_early_stopping_best_state_is_a_deep_copy():
    es = EarlyStopping(patience=5)
    state = {"W": np.zeros(3), "t": torch.zeros(2)}
    es.step(1.0, state)
    state["W"][0] = 9.0
    state["t"][0] = 9.0
    assert es.best_state["W"][0] == 0.0 and es.best_state["t"][0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"patience": 0}, ValueError, "patience must be at least 1"),
        ({"patience": 1.5}, TypeError, "patience must be an integer"),
        ({"patience": 2, "mode": "minimum"}, ValueError, "mode must be"),
        ({"patience": 2, "min_delta": -0.1}, ValueError, "min_delta must be"),
    ],
)
def test_early_stopping_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        EarlyStopping(**kwargs)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------------


def torch_lrs(make_scheduler, steps, lr0=0.5):
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr0)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


def test_step_lr_matches_torch():
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 12)
    ours = [step_lr(s, 0.5, 3, 0.5) for s in range(12)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert step_lr(6, 1.0, 3, 0.1) == pytest.approx(0.01)


@pytest.mark.parametrize("lr_min", [0.0, 0.05])
def test_cosine_lr_matches_torch(lr_min):
    S = 20
    ref = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=S, eta_min=lr_min), S + 1
    )
    ours = [cosine_lr(s, 0.5, S, lr_min) for s in range(S + 1)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert cosine_lr(0, 0.5, S, lr_min) == 0.5
    assert cosine_lr(S // 2, 0.5, S, lr_min) == pytest.approx((0.5 + lr_min) / 2)
    assert cosine_lr(S + 7, 0.5, S, lr_min) == pytest.approx(lr_min)  # constant after S


@pytest.mark.parametrize("W", [2, 5])
def test_warmup_lr_matches_torch_linear_lr(W):
    ref = torch_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(
            o, start_factor=1 / W, end_factor=1.0, total_iters=W - 1
        ),
        W + 4,
    )
    ours = [warmup_lr(s, 0.5, W) for s in range(W + 4)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert warmup_lr(0, 0.5, W) == pytest.approx(0.5 / W)
    assert warmup_lr(W - 1, 0.5, W) == 0.5
    assert warmup_lr(3, 0.5, 0) == 0.5


@given(step=st.integers(0, 500), total=st.integers(1, 200), lr_min=st.floats(0, 0.1))
def test_schedules_stay_in_range(step, total, lr_min):
    assert lr_min - 1e-15 <= cosine_lr(step, 0.1 + lr_min, total, lr_min) <= 0.1 + lr_min
    assert 0 < warmup_lr(step, 0.1, total) <= 0.1
    assert 0 < step_lr(step, 0.1, total, 0.9) <= 0.1


@pytest.mark.parametrize(
    ("call", "exc", "msg"),
    [
        (lambda: step_lr(-1, 0.1, 3, 0.5), ValueError, "step must be at least 0"),
        (lambda: step_lr(1.5, 0.1, 3, 0.5), TypeError, "step must be an integer"),
        (lambda: step_lr(1, 0.1, 0, 0.5), ValueError, "step_size must be at least 1"),
        (lambda: step_lr(1, 0.1, 2, 0.0), ValueError, "gamma must be > 0"),
        (lambda: cosine_lr(1, 0.1, 0), ValueError, "total_steps must be at least 1"),
        (lambda: cosine_lr(1, -0.1, 10), ValueError, "lr0 must be a finite number >= 0"),
        (lambda: warmup_lr(1, 0.1, -2), ValueError, "warmup_steps must be at least 0"),
    ],
)
def test_schedule_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
