r"""Regularisation and training practice in NumPy (chapter ch08_training).

**Dropout** (inverted): during training every unit is kept with probability :math:`1 - p` and
scaled by :math:`1 / (1 - p)`, so its expectation is unchanged and nothing is rescaled at test
time. In the vanilla RNN of chapter ch02_rnn the masks act on the input and on the recurrent
state *as it enters* :math:`W_{hh}`:

.. math::

   h_t = \tanh\big(W_{xh} (m^x_t \odot x_t) + W_{hh} (m^h_t \odot h_{t-1}) + b_h\big).

*Naive* dropout draws fresh masks :math:`m^x_t, m^h_t` at every step; *variational* dropout
(Gal & Ghahramani 2016) draws one mask per sequence, :math:`m^x_t = m^x`, :math:`m^h_t = m^h`
for all :math:`t`. The state :math:`h_t` passed on to the output layer is not masked.

**Weight decay**, two forms (``sgd_step``): the L2 penalty :math:`\tfrac{\lambda}{2}\|\theta\|^2`
added to the loss, whose gradient :math:`\lambda \theta` joins :math:`g` (what
``torch.optim.SGD(weight_decay=λ)`` and ``torch.optim.Adam(weight_decay=λ)`` do), and decoupled
decay (Loshchilov & Hutter 2019), which shrinks the weights outside the gradient step.

**A training step** (``train_step``): loss and full-BPTT gradients of the chapter-2 model,
clipping by global norm, then an SGD update. **Early stopping** (``EarlyStopping``) and three
**learning-rate schedules**, pure functions of the step number.

Shapes are batch-first: ``x`` (N, T, D), ``h0`` (N, H), ``hs`` (N, T, H), ``targets`` (N, T).
Every random draw takes a ``numpy.random.Generator``. No input is modified in place.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from ._checks import get_params, sequence_inputs
from .bptt import rnn_loss_and_grads
from .gradients import clip_by_norm
from .rnn import _bptt

__all__ = [
    "dropout_mask",
    "naive_dropout_masks",
    "variational_dropout_mask",
    "rnn_forward_masked",
    "rnn_forward_dropout",
    "rnn_backward_dropout",
    "sgd_step",
    "train_step",
    "EarlyStopping",
    "step_lr",
    "cosine_lr",
    "warmup_lr",
]


# ---------------------------------------------------------------------------------------------
# Dropout masks
# ---------------------------------------------------------------------------------------------


def _check_p(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(
            f"{name} is a drop probability and must be in [0, 1), got {p}"
            + (" (p = 1 would drop every unit and divide by 1 - p = 0)" if p == 1.0 else "")
        )
    return p


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_int(name: str, v, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v}")
    return int(v)


def dropout_mask(shape, p, rng):
    r"""An inverted-dropout mask: entries :math:`1/(1-p)` with probability :math:`1-p`, else 0.

    .. math::  m = \frac{\mathbb{1}[u \ge p]}{1 - p}, \qquad u \sim \mathcal{U}[0, 1)
               \text{ (one draw per entry)}, \qquad \mathbb{E}[m] = 1 .

    Exactly one call ``u = rng.random(shape)`` is made, also for ``p = 0`` (which gives all ones),
    so the stream of random numbers does not depend on ``p``.

    Args:
        shape: the mask's shape, an int or a tuple of ints.
        p: drop probability, in [0, 1).
        rng: a ``numpy.random.Generator``.

    Returns:
        mask: float64 array of ``shape`` with entries 0 or ``1 / (1 - p)``.

    Raises:
        ValueError: if ``p`` is not in [0, 1).
    """
    p = _check_p("p", p)
    rng = _check_rng(rng)
    u = rng.random(shape)
    return (u >= p).astype(np.float64) / (1.0 - p)


def naive_dropout_masks(N, T, H, p, rng):
    """A fresh mask at every time step, (N, T, H): ``dropout_mask((N, T, H), p, rng)``.

    Used on the recurrent connection this is the "wrong" way (see chapter ch08_training): the
    noise injected into the state accumulates over the steps.
    """
    N, T, H = (_check_int(n, v, 1) for n, v in (("N", N), ("T", T), ("H", H)))
    return dropout_mask((N, T, H), p, rng)


def variational_dropout_mask(N, H, p, rng):
    """One mask per sequence, (N, H): ``dropout_mask((N, H), p, rng)``, reused at every step.

    Gal & Ghahramani (2016): the same units of ``h_{t-1}`` (and of ``x_t``) are dropped at every
    step of a sequence, a different set for each sequence of the batch.
    """
    N, H = (_check_int(n, v, 1) for n, v in (("N", N), ("H", H)))
    return dropout_mask((N, H), p, rng)


# ---------------------------------------------------------------------------------------------
# The vanilla RNN with dropout on the input and on the recurrent state
# ---------------------------------------------------------------------------------------------


def _broadcast_mask(name: str, mask, N: int, T: int, F: int) -> np.ndarray:
    """A mask given as (N, F) (one per sequence) or (N, T, F) (one per step) -> (N, T, F)."""
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape == (N, F):
        return np.broadcast_to(mask[:, None, :], (N, T, F))
    if mask.shape == (N, T, F):
        return mask
    raise ValueError(f"{name} must have shape {(N, F)} or {(N, T, F)}, got {mask.shape}")


def rnn_forward_masked(x, h0, params, mask_x, mask_h):
    r"""The RNN with given dropout masks: the deterministic core of :func:`rnn_forward_dropout`.

    .. math::  h_t = \tanh\big((m^x_t \odot x_t) W_{xh}^\top + (m^h_t \odot h_{t-1}) W_{hh}^\top
               + b_h\big)

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
        mask_x: input mask, (N, D) (the same at every step) or (N, T, D) (one per step).
        mask_h: mask on the state entering ``W_hh``, (N, H) or (N, T, H). ``mask_h[:, t]``
            multiplies ``h_{t-1}`` (``h0`` at ``t = 0``).

    Returns:
        hs: hidden states h_1 ... h_T, (N, T, H) (not masked).
        cache: a dict; ``cache["mask_x"]`` (N, T, D) and ``cache["mask_h"]`` (N, T, H) are the
            masks used, the rest is what :func:`rnn_backward_dropout` needs.
    """
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = get_params(params, {"W_xh": (H, D), "W_hh": (H, H), "b_h": (H,)})
    mx = _broadcast_mask("mask_x", mask_x, N, T, D)
    mh = _broadcast_mask("mask_h", mask_h, N, T, H)
    xd = x * mx  # dropped inputs: one GEMM for all steps, as in rnn_forward
    hs = (xd.reshape(N * T, D) @ p["W_xh"].T + p["b_h"]).reshape(N, T, H)
    hs = hs.astype(np.result_type(hs, h0, p["W_hh"]), copy=False)
    W_hhT = p["W_hh"].T
    h = h0
    for t in range(T):
        a_t = hs[:, t, :]
        a_t += (h * mh[:, t, :]) @ W_hhT
        np.tanh(a_t, out=a_t)
        h = a_t
    cache = {
        "xd": xd,
        "h0": h0,
        "hs": hs,
        "W_xh": p["W_xh"],
        "W_hh": p["W_hh"],
        "mask_x": mx,
        "mask_h": mh,
    }
    return hs, cache


def rnn_forward_dropout(x, h0, params, p_x, p_h, rng, variational=True):
    r"""The RNN with inverted dropout on the input and on the recurrent state entering ``W_hh``.

    .. math::  h_t = \tanh\big(W_{xh} (m^x_t \odot x_t) + W_{hh} (m^h_t \odot h_{t-1}) + b_h\big)

    Masks (:func:`dropout_mask`), drawn in this order: the input mask, then the state mask.
    ``variational=True``: one per sequence, ``variational_dropout_mask(N, D, p_x, rng)`` then
    ``variational_dropout_mask(N, H, p_h, rng)``, reused at every step. ``variational=False``:
    a fresh mask at every step, ``naive_dropout_masks(N, T, D, p_x, rng)`` then
    ``naive_dropout_masks(N, T, H, p_h, rng)``. Both masks are always drawn (also for p = 0).
    This is the training-mode forward; at evaluation use the plain
    :func:`~rnn_ref.numpy.rnn.rnn_forward` (inverted dropout needs no rescaling there).

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
        p_x: drop probability of the input units, in [0, 1).
        p_h: drop probability of the recurrent state's units, in [0, 1).
        rng: a ``numpy.random.Generator``.
        variational: one mask per sequence (True) or per step (False).

    Returns:
        hs: hidden states, (N, T, H).
        cache: as :func:`rnn_forward_masked`'s (``cache["mask_x"]``, ``cache["mask_h"]`` are the
            drawn masks, broadcast to (N, T, D) and (N, T, H)).
    """
    x, h0 = sequence_inputs(x, h0)
    p_x, p_h = _check_p("p_x", p_x), _check_p("p_h", p_h)
    rng = _check_rng(rng)
    N, T, D = x.shape
    H = h0.shape[1]
    if variational:
        mask_x = variational_dropout_mask(N, D, p_x, rng)
        mask_h = variational_dropout_mask(N, H, p_h, rng)
    else:
        mask_x = naive_dropout_masks(N, T, D, p_x, rng)
        mask_h = naive_dropout_masks(N, T, H, p_h, rng)
    return rnn_forward_masked(x, h0, params, mask_x, mask_h)


def rnn_backward_dropout(dhs, cache):
    r"""Backward of :func:`rnn_forward_dropout` (and :func:`rnn_forward_masked`), masks fixed.

    With :math:`\delta_t = (\partial L/\partial h_t)_{\text{total}} \odot (1 - h_t^2)`:
    ``dW_xh = sum_t δ_t^T (m^x_t ⊙ x_t)``, ``dW_hh = sum_t δ_t^T (m^h_t ⊙ h_{t-1})``,
    ``db_h = sum_{n,t} δ_t``, ``dx_t = (δ_t W_xh) ⊙ m^x_t`` and the gradient passed back to
    ``h_{t-1}`` through the recurrence is ``(δ_t W_hh) ⊙ m^h_t``: a dropped unit passes no
    gradient, a kept one passes it scaled by ``1 / (1 - p)``, exactly as in the forward pass.

    Args:
        dhs: upstream gradients for all hidden states, (N, T, H).
        cache: from the forward pass.

    Returns:
        dx (N, T, D), dh0 (N, H), grads: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
    """
    xd, h0, hs = cache["xd"], cache["h0"], cache["hs"]
    W_xh, W_hh, mx, mh = cache["W_xh"], cache["W_hh"], cache["mask_x"], cache["mask_h"]
    da2, dh0, grads = _bptt(dhs, xd, h0, hs, W_xh, W_hh, mask_h=mh)
    N, T, D = xd.shape
    dx = (da2 @ W_xh).reshape(N, T, D) * mx
    return dx, dh0, grads


# ---------------------------------------------------------------------------------------------
# Weight decay, SGD, one training step
# ---------------------------------------------------------------------------------------------


def _check_nonneg(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def sgd_step(params, grads, lr, weight_decay=0.0, decoupled=False):
    r"""One SGD update with weight decay; returns new arrays, the inputs are not modified.

    L2 in the gradient (``decoupled=False``, as ``torch.optim.SGD(lr, weight_decay=λ)``): the
    penalty :math:`\frac{\lambda}{2}\|\theta\|^2` is added to the loss, so

    .. math::  \theta \leftarrow \theta - \eta\,(g + \lambda \theta)
               = (1 - \eta\lambda)\,\theta - \eta\, g .

    Decoupled (``decoupled=True``, SGDW of Loshchilov & Hutter 2019): the decay is applied to the
    weights directly, not through the gradient, and is *not* multiplied by the learning rate:

    .. math::  \theta \leftarrow (1 - \lambda)\,\theta - \eta\, g .

    For plain SGD the two coincide up to that factor: decoupled decay :math:`\lambda` equals L2
    with :math:`\lambda / \eta` (exactly, for a fixed :math:`\eta`). They differ once the
    learning rate changes over time (the decoupled decay does not follow the schedule) and, much
    more, for adaptive optimisers: in Adam the L2 term is divided by :math:`\sqrt{\hat v}` with
    the rest of the gradient, so weights with large gradients are barely decayed; AdamW decays
    them all alike. Note that ``torch.optim.AdamW(lr=η, weight_decay=λ)`` does multiply its decay
    by the learning rate, :math:`\theta \leftarrow (1 - \eta\lambda)\theta - \dots`, so its
    ``weight_decay`` corresponds to ``η λ`` here.

    Args:
        params: dict of arrays.
        grads: dict with the same keys, arrays of the same shapes.
        lr: learning rate :math:`\eta \ge 0`.
        weight_decay: :math:`\lambda \ge 0` (0: plain SGD). Applied to every array in ``params``
            (biases included; exclude them by updating them in a separate call).
        decoupled: which form of weight decay, see above.

    Returns:
        new_params: a new dict of new arrays.
    """
    lr = _check_nonneg("lr", lr)
    wd = _check_nonneg("weight_decay", weight_decay)
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise TypeError("params and grads must be dicts of arrays")
    if params.keys() != grads.keys():
        raise KeyError(
            f"params and grads must have the same keys, got {sorted(params)} and {sorted(grads)}"
        )
    new = {}
    for key, theta in params.items():
        theta = np.asarray(theta)
        g = np.asarray(grads[key])
        if g.shape != theta.shape:
            raise ValueError(
                f"grads[{key!r}] has shape {g.shape} but params[{key!r}] has {theta.shape}"
            )
        if decoupled:
            new[key] = (1.0 - wd) * theta - lr * g
        else:
            new[key] = theta - lr * (g + wd * theta)
    return new


def train_step(params, x, h0, targets, lr, max_norm, mask=None, weight_decay=0.0):
    """One training step of the chapter-2 model: loss, full-BPTT gradients, clip, SGD update.

    1. ``loss, grads, _ = rnn_loss_and_grads(x, h0, targets, params, mask)``
       (:func:`~rnn_ref.numpy.bptt.rnn_loss_and_grads`: RNN, temporal affine, softmax loss);
    2. ``grads, grad_norm = clip_by_norm(grads, max_norm)`` (global norm over all five arrays,
       :func:`~rnn_ref.numpy.gradients.clip_by_norm`; skipped, but the norm still computed, when
       ``max_norm`` is None);
    3. ``new_params = sgd_step(params, grads, lr, weight_decay)`` (L2 form: the decay term is
       added *after* clipping, as ``torch.nn.utils.clip_grad_norm_`` followed by
       ``torch.optim.SGD(weight_decay=...).step()`` does).

    Args:
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,), ``W_hy`` (V, H), ``b_y`` (V,).
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        targets: target classes, integers, (N, T).
        lr: learning rate, >= 0.
        max_norm: clipping threshold (> 0), or None for no clipping.
        mask: 1/True where a step counts, (N, T); default all ones.
        weight_decay: L2 coefficient, >= 0.

    Returns:
        new_params: the updated parameters (new arrays; ``params`` is not modified).
        loss: the data loss at ``params`` (before the update, without the penalty), a float.
        grad_norm: the global norm of the gradient *before* clipping, a float.
    """
    loss, grads, _ = rnn_loss_and_grads(x, h0, targets, params, mask)
    if max_norm is None:
        grad_norm = float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))
    else:
        grads, grad_norm = clip_by_norm(grads, max_norm)
    new_params = sgd_step({k: params[k] for k in grads}, grads, lr, weight_decay)
    return new_params, loss, grad_norm


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------


class EarlyStopping:
    """Stop when a monitored value has not improved for ``patience`` consecutive calls.

    ``step(value, state)`` is called once per evaluation (e.g. per epoch, with the validation
    loss). A call *improves* when ``value < best - min_delta`` (mode ``"min"``, for losses) or
    ``value > best + min_delta`` (mode ``"max"``, for accuracies); the first finite value always
    improves (``best`` starts at ``inf`` or ``-inf``). NaN never improves (a diverged run counts
    as a bad step, it does not become the best). On an improvement ``best``, ``best_step`` and
    ``best_state`` are updated and ``bad_steps`` is reset to 0; otherwise ``bad_steps`` grows by
    1, and ``step`` returns True once ``bad_steps >= patience`` (and keeps returning True on
    further bad calls).

    Attributes:
        best: the best value so far (``inf`` for "min", ``-inf`` for "max" before any improvement).
        best_step: 0-based index of the call that gave ``best`` (None before any improvement).
        best_state: ``copy.deepcopy(state)`` taken at that call (restore it when training ends).
        bad_steps: consecutive calls without improvement.
        n_steps: number of calls so far.
    """

    def __init__(self, patience, min_delta=0.0, mode="min"):
        self.patience = _check_int("patience", patience, 1)
        self.min_delta = _check_nonneg("min_delta", min_delta)
        if mode not in ("min", "max"):
            raise ValueError(f'mode must be "min" (losses) or "max" (accuracies), got {mode!r}')
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step = None
        self.best_state = None
        self.bad_steps = 0
        self.n_steps = 0

    def improves(self, value) -> bool:
        """Whether ``value`` would count as an improvement on ``best`` (NaN never does)."""
        value = float(value)
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value, state=None) -> bool:
        """Record one evaluation; return True when training should stop."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            value = np.asarray(value)
            if value.size != 1:
                raise TypeError(f"value must be a real number, got {type(value).__name__}")
            value = value.item()
        if self.improves(value):
            self.best = float(value)
            self.best_step = self.n_steps
            self.best_state = copy.deepcopy(state)
            self.bad_steps = 0
        else:
            self.bad_steps += 1
        self.n_steps += 1
        return self.bad_steps >= self.patience

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}; best={self.best} at step {self.best_step}, "
            f"bad_steps={self.bad_steps})"
        )


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules: pure functions of the step number
# ---------------------------------------------------------------------------------------------


def _check_lr(name: str, v) -> float:
    return _check_nonneg(name, v)


def step_lr(step, lr0, step_size, gamma):
    r"""Step decay: :math:`\eta_s = \eta_0\, \gamma^{\lfloor s / \text{step\_size} \rfloor}`.

    The learning rate after ``step`` calls of ``torch.optim.lr_scheduler.StepLR(step_size,
    gamma).step()``.

    Args:
        step: the step (or epoch) number s, an integer >= 0.
        lr0: initial learning rate, >= 0.
        step_size: decay every ``step_size`` steps, an integer >= 1.
        gamma: multiplicative factor, > 0 (usually < 1).
    """
    step = _check_int("step", step, 0)
    lr0 = _check_lr("lr0", lr0)
    step_size = _check_int("step_size", step_size, 1)
    gamma = _check_nonneg("gamma", gamma)
    if gamma == 0:
        raise ValueError("gamma must be > 0")
    return lr0 * gamma ** (step // step_size)


def cosine_lr(step, lr0, total_steps, lr_min=0.0):
    r"""Cosine annealing from ``lr0`` at step 0 to ``lr_min`` at ``total_steps``, then constant.

    .. math::  \eta_s = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
               \big(1 + \cos(\pi\, \min(s, S) / S)\big), \qquad S = \text{total\_steps}

    For ``s <= S`` this is ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=S,
    eta_min=lr_min)`` after ``s`` steps (torch keeps following the cosine back up after
    :math:`S`; here the schedule stays at ``lr_min``, which is what one wants at the end of
    training). Loshchilov & Hutter (2017) restart it periodically (SGDR).

    Args:
        step: s, an integer >= 0.
        lr0: initial learning rate, >= 0.
        total_steps: S, an integer >= 1.
        lr_min: final learning rate, >= 0.
    """
    step = _check_int("step", step, 0)
    lr0 = _check_lr("lr0", lr0)
    total_steps = _check_int("total_steps", total_steps, 1)
    lr_min = _check_lr("lr_min", lr_min)
    s = min(step, total_steps)
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(math.pi * s / total_steps))


def warmup_lr(step, lr0, warmup_steps):
    r"""Linear warm-up: :math:`\eta_s = \eta_0 \min\big(1, (s + 1) / W\big)`, then constant.

    Step 0 already uses :math:`\eta_0 / W` (a step with learning rate 0 would be wasted), and
    the full ``lr0`` is reached at step :math:`W - 1`. This is
    ``torch.optim.lr_scheduler.LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1)``.
    Warm-up is usually followed by a decay (e.g. multiply by :func:`cosine_lr`'s factor).

    Args:
        step: s, an integer >= 0.
        lr0: the learning rate after warm-up, >= 0.
        warmup_steps: W, an integer >= 0 (0: no warm-up, always ``lr0``).
    """
    step = _check_int("step", step, 0)
    lr0 = _check_lr("lr0", lr0)
    warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
    if warmup_steps == 0:
        return lr0
    return lr0 * min(1.0, (step + 1) / warmup_steps)
