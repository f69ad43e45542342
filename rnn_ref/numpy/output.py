r"""The output side of an RNN in NumPy: an affine layer applied at every time step, and a
masked softmax cross-entropy over time.

Equations (chapter ch02_rnn):

.. math::

   y_t = W_{hy} h_t + b_y, \qquad p_t = \mathrm{softmax}(y_t), \qquad
   L = -\frac{1}{\sum_{n,t} m_{n,t}} \sum_{n,t} m_{n,t} \log p_{n,t}[c_{n,t}]

where :math:`c_{n,t}` is the target class and :math:`m_{n,t} \in \{0, 1\}` the mask (0 marks
padding or a step with no target). The loss is the mean over the unmasked steps, as
``torch.nn.functional.cross_entropy`` computes it with ``ignore_index``; CS231n's
``temporal_softmax_loss`` instead divides by N (the batch size), which scales the gradient by the
number of unmasked steps per sequence.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, get_params

__all__ = [
    "temporal_affine_forward",
    "temporal_affine_backward",
    "softmax_loss_forward",
    "softmax_loss_backward",
]


def temporal_affine_forward(hs, params):
    """Output layer at every step: ``ys[:, t] = hs[:, t] @ W_hy.T + b_y``.

    Args:
        hs: hidden states, (N, T, H).
        params: ``W_hy`` (V, H), ``b_y`` (V,). Other keys (the RNN's) are ignored.

    Returns:
        ys: outputs (logits for classification), (N, T, V).
        cache: what :func:`temporal_affine_backward` needs.
    """
    hs = as_float_array("hs", hs, 3)
    V = get_params(params, {"W_hy": (None, hs.shape[2])})["W_hy"].shape[0]
    p = get_params(params, {"W_hy": (V, hs.shape[2]), "b_y": (V,)})
    ys = hs @ p["W_hy"].T + p["b_y"]
    return ys, (hs, p["W_hy"])


def temporal_affine_backward(dys, cache):
    """Backward of :func:`temporal_affine_forward`.

    Args:
        dys: upstream gradient, (N, T, V).
        cache: from the forward pass.

    Returns:
        dhs (N, T, H) and grads: ``W_hy`` (V, H) = sum over n, t of dy_t h_tᵀ, ``b_y`` (V,).
    """
    hs, W_hy = cache
    dys = as_float_array("dys", dys, 3)
    N, T, H = hs.shape
    if dys.shape != (N, T, W_hy.shape[0]):
        raise ValueError(f"dys must have shape {(N, T, W_hy.shape[0])}, got {dys.shape}")
    dys2 = dys.reshape(N * T, -1)
    grads = {"W_hy": dys2.T @ hs.reshape(N * T, H), "b_y": dys2.sum(axis=0)}
    return dys @ W_hy, grads


def _log_softmax(ys):
    # Subtracting the row maximum changes nothing mathematically and keeps exp() from overflowing.
    z = ys - ys.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax_loss_forward(ys, targets, mask=None):
    """Mean softmax cross-entropy over the unmasked time steps.

    Args:
        ys: logits, (N, T, V).
        targets: target classes c_{n,t} in [0, V), integers, (N, T). Masked entries may hold any
            integer (e.g. -1 as padding); they are not read.
        mask: 1/True where the step counts, (N, T); default all ones.

    Returns:
        loss: a float, the mean negative log-likelihood over unmasked steps.
        cache: what :func:`softmax_loss_backward` needs.
    """
    ys = as_float_array("ys", ys, 3)
    N, T, V = ys.shape
    targets = np.asarray(targets)
    if targets.shape != (N, T):
        raise ValueError(f"targets must have shape {(N, T)}, got {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets must be integer class indices, got dtype {targets.dtype}")
    mask = np.ones((N, T), dtype=bool) if mask is None else np.asarray(mask)
    if mask.shape != (N, T):
        raise ValueError(f"mask must have shape {(N, T)}, got {mask.shape}")
    mask = mask.astype(bool)
    count = int(mask.sum())
    if count == 0:
        raise ValueError("mask selects no time step: the mean loss is undefined")
    bad = mask & ((targets < 0) | (targets >= V))
    if bad.any():
        n, t = np.argwhere(bad)[0]
        raise ValueError(f"targets[{n}, {t}] = {targets[n, t]} is not a class in [0, {V})")
    logp = _log_softmax(ys)
    safe = np.where(mask, targets, 0)
    picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    loss = -float((picked * mask).sum() / count)
    return loss, (logp, safe, mask, count)


def softmax_loss_backward(dloss, cache):
    """Backward of :func:`softmax_loss_forward`: ``dys = dloss * m (p - onehot(c)) / sum(m)``.

    Args:
        dloss: upstream gradient of the loss (1.0 when the loss is the objective), a float.
        cache: from the forward pass.

    Returns:
        dys: gradient with respect to the logits, (N, T, V).
    """
    logp, safe, mask, count = cache
    dys = np.exp(logp)
    np.put_along_axis(dys, safe[..., None], np.take_along_axis(dys, safe[..., None], -1) - 1, -1)
    dys *= (mask / count * float(dloss))[..., None]
    return dys
