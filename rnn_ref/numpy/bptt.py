r"""Backpropagation through time (BPTT), gradient checking and truncated BPTT in NumPy.

Chapter ch03_bptt. The model is the whole model of chapter ch02_rnn:

.. math::

   h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h), \qquad y_t = W_{hy} h_t + b_y, \qquad
   L = -\frac{1}{\sum_{n,t} m_{n,t}} \sum_{n,t} m_{n,t} \log \mathrm{softmax}(y_{n,t})[c_{n,t}]

Full BPTT differentiates :math:`L` exactly: the gradient reaching :math:`h_t` is the sum of what
arrives from :math:`y_t` and what flows back from :math:`h_{t+1}` through :math:`W_{hh}`.
Truncated BPTT with chunk length :math:`k` runs the sequence in chunks of :math:`k` steps,
carrying the *value* of the hidden state from one chunk to the next but cutting its *gradient*
at every chunk boundary, so a loss at step :math:`t` sends gradient back at most to the start of
its own chunk.

Shapes are batch-first, as everywhere in ``rnn_ref``: ``x`` (N, T, D), ``h0`` (N, H),
``targets`` and ``mask`` (N, T). ``params`` has ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,),
``W_hy`` (V, H), ``b_y`` (V,); ``grads`` has the same keys. No input is modified in place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._checks import as_float_array
from .gradcheck import numerical_gradient, rel_error
from .output import (
    softmax_loss_backward,
    softmax_loss_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)
from .rnn import rnn_backward, rnn_forward

__all__ = [
    "rnn_loss_and_grads",
    "grad_check",
    "truncated_bptt_chunks",
    "truncated_bptt_grads",
]

PARAM_KEYS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


def rnn_loss_and_grads(x, h0, targets, params, mask=None):
    """Loss and full-BPTT gradients of the chapter-2 model on one batch of sequences.

    Forward: :func:`~rnn_ref.numpy.rnn.rnn_forward` -> :func:`temporal_affine_forward` ->
    :func:`softmax_loss_forward`; backward: the same functions' backward passes in reverse order.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        targets: target classes in [0, V), integers, (N, T); masked entries are not read.
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,), ``W_hy`` (V, H), ``b_y`` (V,).
        mask: 1/True where a step counts, (N, T); default all ones. The loss is the mean over
            the unmasked steps.

    Returns:
        loss: a float.
        grads: dict with the keys of ``params`` listed above, each with its parameter's shape.
        h_T: the last hidden state ``hs[:, -1]``, (N, H) -- the state to carry into the next
            chunk in truncated BPTT (its value only; no gradient flows through it).
    """
    hs, rnn_cache = rnn_forward(x, h0, params)
    ys, aff_cache = temporal_affine_forward(hs, params)
    loss, loss_cache = softmax_loss_forward(ys, targets, mask)
    dys = softmax_loss_backward(1.0, loss_cache)
    dhs, grads = temporal_affine_backward(dys, aff_cache)
    _, _, rnn_grads = rnn_backward(dhs, rnn_cache)
    grads = {**rnn_grads, **grads}
    return loss, {k: grads[k] for k in PARAM_KEYS}, hs[:, -1, :].copy()


def grad_check(
    f: Callable[[dict], float],
    params: dict,
    grads: dict,
    *,
    h: float = 1e-5,
    n_samples: int | None = None,
    rng=None,
) -> dict[str, float]:
    """Compare analytic gradients with central differences, one relative error per parameter.

    For every key of ``grads``, each checked entry ``i`` of ``params[key]`` is moved by ``±h``
    (in a float64 copy; the caller's arrays are never touched) and
    ``(f(params + h e_i) - f(params - h e_i)) / 2h`` is compared with ``grads[key][i]`` by
    :func:`~rnn_ref.numpy.gradcheck.rel_error` (the largest relative error over the entries).

    How to read the numbers (float64, h = 1e-5): below 1e-7 the gradient is right; around 1e-5
    be suspicious (a kink, a saturated unit, or a small bug); above 1e-3 it is wrong. In float32
    rounding swamps the differences, so always check in float64.

    Args:
        f: scalar function of a params dict, e.g. ``lambda p: rnn_loss_and_grads(x, h0, c, p)[0]``.
        params: the point, a dict of arrays.
        grads: analytic gradients, a dict whose keys are a subset of ``params``' keys, each with
            its parameter's shape.
        h: step size of the central difference.
        n_samples: if given, check only this many entries per parameter (drawn without
            replacement; all of them if the parameter is smaller) -- cheaper for big parameters.
        rng: a ``numpy.random.Generator`` or an int seed for the sampled entries; default seed 0.

    Returns:
        dict mapping each key of ``grads`` to its relative error (a float).
    """
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise TypeError("params and grads must be dicts of arrays")
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer or None, got {n_samples}")
    if not h > 0:
        raise ValueError(f"h must be positive, got {h}")
    gen = (
        rng
        if isinstance(rng, np.random.Generator)
        else np.random.default_rng(0 if rng is None else rng)
    )
    work = {k: np.array(v, dtype=np.float64) for k, v in params.items()}  # private copies
    errors = {}
    for key, g in grads.items():
        if key not in work:
            raise KeyError(f"grads has key {key!r} that params lacks (params: {sorted(work)})")
        g = np.asarray(g, dtype=np.float64)
        if g.shape != work[key].shape:
            raise ValueError(
                f"grads[{key!r}] has shape {g.shape} but params[{key!r}] has {work[key].shape}"
            )
        original = work[key]

        def f_key(value, key=key):
            return f({**work, key: value})

        if n_samples is None:
            num = numerical_gradient(f_key, original, h=h)
            errors[key] = rel_error(g, num)
            continue
        size = original.size
        idx = gen.choice(size, size=min(n_samples, size), replace=False)
        x = original.copy()
        flat = x.reshape(-1)
        num = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            fp = float(f_key(x))
            flat[i] = old - h
            fm = float(f_key(x))
            flat[i] = old
            num[j] = (fp - fm) / (2 * h)
        errors[key] = rel_error(g.reshape(-1)[idx], num)
    return errors


def truncated_bptt_chunks(T: int, k: int) -> list[slice]:
    """Chunk boundaries for truncated BPTT: ``slice(0, k), slice(k, 2k), ...``, the last shorter.

    Example: ``T = 10, k = 3`` gives ``[0:3], [3:6], [6:9], [9:10]``.

    Raises:
        ValueError: if ``T < 1`` or ``k < 1``.
    """
    for name, v in (("T", T), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{name} must be at least 1, got {v}")
    T, k = int(T), int(k)
    return [slice(s, min(s + k, T)) for s in range(0, T, k)]


def truncated_bptt_grads(x, h0, targets, params, k, mask=None):
    r"""Loss and truncated-BPTT gradients, chunks of ``k`` steps run in order.

    Chunk :math:`c` starts from the previous chunk's last hidden state (its *value*; the
    gradient is cut there, so ``dh0`` of each chunk is discarded). Each chunk's loss is the mean
    over its :math:`M_c` unmasked steps, so its loss and gradients are weighted by
    :math:`M_c / M` (:math:`M` the unmasked steps of the whole batch): the returned loss is the
    full-sequence mean exactly, and with ``k >= T`` (one chunk, weight 1) loss and gradients are
    exactly those of :func:`rnn_loss_and_grads`. A chunk with no unmasked step adds nothing to
    the gradient; it still advances the hidden state.

    What is lost: every path from a loss at step :math:`t` back to a step before the start of its
    chunk -- dependencies longer than ``k`` steps (at most ``k``, fewer near a chunk's start)
    no longer shape ``W_xh``, ``W_hh``, ``b_h``. The output layer's gradients (``W_hy``, ``b_y``)
    and the loss need only the forward values, which are carried, so they equal full BPTT's for
    every ``k`` (up to rounding). The gain: memory and time per update grow with ``k``, not ``T``.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        targets: target classes, integers, (N, T).
        params: ``W_xh``, ``W_hh``, ``b_h``, ``W_hy``, ``b_y`` (see the module docstring).
        k: chunk length, an integer >= 1.
        mask: 1/True where a step counts, (N, T); default all ones.

    Returns:
        loss: a float, the mean over all unmasked steps.
        grads: the truncated gradients, same keys and shapes as ``params``' five.
        h_T: the last hidden state, (N, H), equal to the full forward pass's for any ``k``.
    """
    x = as_float_array("x", x, 3)
    N, T = x.shape[:2]
    chunks = truncated_bptt_chunks(T, k)
    targets = np.asarray(targets)
    if targets.shape != (N, T):
        raise ValueError(f"targets must have shape {(N, T)}, got {targets.shape}")
    mask = np.ones((N, T), dtype=bool) if mask is None else np.asarray(mask)
    if mask.shape != (N, T):
        raise ValueError(f"mask must have shape {(N, T)}, got {mask.shape}")
    mask = mask.astype(bool)
    total = int(mask.sum())
    if total == 0:
        raise ValueError("mask selects no time step: the mean loss is undefined")
    loss = 0.0
    grads = None
    h = h0
    for sl in chunks:
        count = int(mask[:, sl].sum())
        if count == 0:  # no loss in this chunk: only carry the state forward
            hs, _ = rnn_forward(x[:, sl], h, params)
            h = hs[:, -1, :].copy()
            continue
        c_loss, c_grads, h = rnn_loss_and_grads(x[:, sl], h, targets[:, sl], params, mask[:, sl])
        w = count / total
        loss += w * c_loss
        if grads is None:
            grads = {key: w * g for key, g in c_grads.items()}
        else:
            for key, g in c_grads.items():
                grads[key] = grads[key] + w * g
    return loss, grads, h
