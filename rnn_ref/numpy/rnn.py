r"""The vanilla (Elman) RNN in NumPy: one step, a whole sequence, and their backward passes.

Equation implemented (chapter ch02_rnn), for each time step :math:`t`:

.. math::  a_t = W_{xh} x_t + W_{hh} h_{t-1} + b_h, \qquad h_t = \tanh(a_t)

Shapes are batch-first: ``x`` is (N, T, D), ``h`` is (N, H), all hidden states ``hs`` are
(N, T, H). Weights are stored (out, in) as in the equations and in ``torch.nn.RNN``, so batched
code computes ``x @ W_xh.T``. ``params`` is a dict with ``W_xh`` (H, D), ``W_hh`` (H, H) and
``b_h`` (H,); ``grads`` has the same keys. No input is modified in place.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, get_params, sequence_inputs

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward"]


def _rnn_params(params, D: int, H: int) -> dict[str, np.ndarray]:
    return get_params(params, {"W_xh": (H, D), "W_hh": (H, H), "b_h": (H,)})


def rnn_step_forward(x, h_prev, params):
    """One time step: ``h = tanh(x @ W_xh.T + h_prev @ W_hh.T + b_h)``.

    Args:
        x: input at this step, (N, D).
        h_prev: previous hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).

    Returns:
        h: next hidden state, (N, H).
        cache: what :func:`rnn_step_backward` needs.
    """
    x = as_float_array("x", x, 2)
    h_prev = as_float_array("h_prev", h_prev, 2)
    if x.shape[0] != h_prev.shape[0]:
        raise ValueError(f"x has batch size {x.shape[0]} but h_prev has {h_prev.shape[0]}")
    p = _rnn_params(params, x.shape[1], h_prev.shape[1])
    a = x @ p["W_xh"].T + h_prev @ p["W_hh"].T + p["b_h"]
    h = np.tanh(a)
    cache = (x, h_prev, h, p["W_xh"], p["W_hh"])
    return h, cache


def rnn_step_backward(dh, cache):
    """Backward of one step.

    With ``da = dh * (1 - h**2)`` (since tanh' = 1 - tanh²): ``dx = da @ W_xh``,
    ``dh_prev = da @ W_hh``, ``dW_xh = da.T @ x``, ``dW_hh = da.T @ h_prev``, ``db_h = sum_n da``.

    Args:
        dh: upstream gradient of the loss with respect to ``h``, (N, H).
        cache: from :func:`rnn_step_forward`.

    Returns:
        dx (N, D), dh_prev (N, H), grads: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
    """
    x, h_prev, h, W_xh, W_hh = cache
    dh = as_float_array("dh", dh, 2)
    if dh.shape != h.shape:
        raise ValueError(f"dh must have the shape of h, {h.shape}, got {dh.shape}")
    da = dh * (1.0 - h * h)
    dx = da @ W_xh
    dh_prev = da @ W_hh
    grads = {"W_xh": da.T @ x, "W_hh": da.T @ h_prev, "b_h": da.sum(axis=0)}
    return dx, dh_prev, grads


def rnn_forward(x, h0, params):
    """Run the RNN over a whole sequence.

    The input projections ``x_t @ W_xh.T + b_h`` of all time steps are one matrix product
    before the loop; only ``h_{t-1} @ W_hh.T`` must wait for the previous step.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).

    Returns:
        hs: hidden states h_1 ... h_T, (N, T, H).
        cache: what :func:`rnn_backward` needs.
    """
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = _rnn_params(params, D, H)
    dtype = np.result_type(x, h0, p["W_xh"], p["W_hh"], p["b_h"])
    W_hhT = p["W_hh"].T
    # One GEMM for all T input projections; written into hs, then overwritten by tanh in place.
    hs = (x.reshape(N * T, D) @ p["W_xh"].T + p["b_h"]).reshape(N, T, H).astype(dtype, copy=False)
    h = h0
    for t in range(T):
        a_t = hs[:, t, :]
        a_t += h @ W_hhT
        np.tanh(a_t, out=a_t)
        h = a_t
    cache = (x, h0, hs, p["W_xh"], p["W_hh"])
    return hs, cache


def rnn_backward(dhs, cache):
    """Backpropagation through time over the whole sequence.

    ``dhs[:, t]`` is the gradient of the loss with respect to ``h_t`` arriving from the outputs;
    the gradient flowing back through the recurrence is added to it at each step.

    Args:
        dhs: upstream gradients for all hidden states, (N, T, H).
        cache: from :func:`rnn_forward`.

    Returns:
        dx (N, T, D), dh0 (N, H), grads: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
    """
    x, h0, hs, W_xh, W_hh = cache
    da2, dh0, grads = _bptt(dhs, x, h0, hs, W_xh, W_hh)
    N, T, D = x.shape
    dx = (da2 @ W_xh).reshape(N, T, D)
    return dx, dh0, grads


def _bptt(dhs, x, h0, hs, W_xh, W_hh, mask_h=None):
    """The time loop of :func:`rnn_backward`, shared with the dropout variant of chapter 8.

    ``mask_h`` (N, T, H), if given, multiplied ``h_{t-1}`` where it entered ``W_hh`` in the
    forward pass, so the gradient back into ``h_{t-1}`` and ``dW_hh`` are masked the same way.

    Returns:
        da2 (N*T, H): the gradients of the pre-activations, one row per (n, t);
        dh0 (N, H); grads ``W_xh``, ``W_hh``, ``b_h``.
    """
    dhs = as_float_array("dhs", dhs, 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of hs, {hs.shape}, got {dhs.shape}")
    N, T, H = hs.shape
    D = x.shape[2]
    das = np.empty_like(hs, dtype=np.result_type(dhs, hs))
    dh_next = np.zeros((N, H), dtype=das.dtype)
    for t in range(T - 1, -1, -1):
        h_t = hs[:, t, :]
        da = das[:, t, :]
        np.add(dhs[:, t, :], dh_next, out=da)
        da *= 1.0 - h_t * h_t
        dh_next = da @ W_hh
        if mask_h is not None:
            dh_next *= mask_h[:, t, :]
    # The parameter gradients sum over time steps: one GEMM each over all (n, t) rows.
    da2 = das.reshape(N * T, H)
    h_prevs = np.concatenate([h0[:, None, :], hs[:, :-1, :]], axis=1)
    if mask_h is not None:
        h_prevs = h_prevs * mask_h
    grads = {
        "W_xh": da2.T @ x.reshape(N * T, D),
        "W_hh": da2.T @ h_prevs.reshape(N * T, H),
        "b_h": da2.sum(axis=0),
    }
    return da2, dh_next, grads
