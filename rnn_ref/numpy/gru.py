r"""The gated recurrent unit (GRU) in NumPy: one step, a whole sequence, and their backward passes.

Equations implemented (chapter ch06_gru), PyTorch's convention, gate blocks in the order r, z, n:

.. math::

   r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
   z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
   n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
   h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

``params`` stacks the three gates' blocks row-wise: ``W_x`` (3H, D) = [W_ir; W_iz; W_in],
``W_h`` (3H, H) = [W_hr; W_hz; W_hn], ``b_x`` (3H,) = [b_ir; b_iz; b_in] and ``b_h`` (3H,) =
[b_hr; b_hz; b_hn], exactly as ``torch.nn.GRU`` stores ``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0`` and ``bias_hh_l0``. A GRU needs both biases, unlike the RNN and LSTM: b_hn sits
inside :math:`r \odot (\dots)`, so it cannot be merged with b_in. ``grads`` has the same keys.

Where the reset gate goes. Cho et al. (2014), who introduced the unit, apply r *before* the
matrix product:

.. math::  n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn}).

PyTorch (and cuDNN) apply it *after*, which lets the recurrent products of all three gates,
``h_{t-1} @ W_h.T``, be one fused (N, 3H) matrix product per step; Cho's placement must wait for
r before it can multiply by W_hn, so its step does two products (the r, z blocks, then the n
block). Both use the same parameters and the two are different functions of them; they coincide
when r = 1. Every function here takes ``reset="after"`` (PyTorch, the default) or
``reset="before"`` (Cho et al.). A keyword rather than a second family of functions, because the
two cells differ in one line of the forward pass and three of the backward: one code path keeps
them from drifting apart, and the forward records the placement in its cache, so a backward
always differentiates the cell that was run.

Which gate is "update". Cho et al. write :math:`h_t = z \odot h_{t-1} + (1 - z) \odot \tilde h_t`,
as here (z near 1 *keeps* the old state); some texts (e.g. Wikipedia's "fully gated unit")
write :math:`h_t = (1 - z) \odot h_{t-1} + z \odot \tilde h_t`. Since :math:`1 - \sigma(a) =
\sigma(-a)`, the two are the same model with the z blocks of W_x, W_h, b_x and b_h negated, but
their weights are not interchangeable.

Shapes are batch-first: ``x`` is (N, T, D), ``h`` is (N, H), all hidden states ``hs`` are
(N, T, H); weights are (out, in), so batched code computes ``x @ W_x.T``. No input is modified
in place; outputs keep the inputs' floating dtype (float32 stays float32).
"""

from __future__ import annotations

import numpy as np

from ._activations import sigmoid
from ._checks import as_float_array, get_params, sequence_inputs

__all__ = ["gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"]

RESETS = ("after", "before")


def _check_reset(reset) -> str:
    if reset not in RESETS:
        raise ValueError(
            f"reset must be 'after' (PyTorch) or 'before' (Cho et al. 2014), got {reset!r}"
        )
    return reset


def _gru_params(params, D: int, H: int) -> dict[str, np.ndarray]:
    shapes = {"W_x": (3 * H, D), "W_h": (3 * H, H), "b_x": (3 * H,), "b_h": (3 * H,)}
    try:
        return get_params(params, shapes)
    except ValueError as e:
        raise ValueError(
            f"{e}; a GRU stacks the gate blocks r, z, n row-wise: W_x (3H, D), W_h (3H, H), "
            f"b_x (3H,), b_h (3H,), here with D = {D} (from x) and H = {H} (from the hidden state)"
        ) from None


def _cell_forward(g, h_prev, W_h, b_h, reset, aux, h_out):
    """The recurrent part of one step, in place on preallocated (N, ·) buffers.

    On entry ``g`` (N, 3H) holds the input projections ``x @ W_x.T + b_x``; on exit it holds the
    gates r, z, n. ``aux`` (N, H) receives what the backward needs besides the gates:
    ``W_hn h_prev + b_hn`` (reset "after") or ``r * h_prev`` (reset "before"). ``h_out`` (N, H)
    receives the new hidden state.
    """
    H = h_prev.shape[1]
    grz, gn = g[:, : 2 * H], g[:, 2 * H :]
    if reset == "after":
        gh = h_prev @ W_h.T + b_h  # one fused (N, 3H) product for the three gates
        grz += gh[:, : 2 * H]
        sigmoid(grz, out=grz)
        aux[...] = gh[:, 2 * H :]
        gn += grz[:, :H] * aux
    else:
        grz += h_prev @ W_h[: 2 * H].T + b_h[: 2 * H]
        sigmoid(grz, out=grz)
        np.multiply(grz[:, :H], h_prev, out=aux)  # r * h_prev, then the n block's product
        gn += aux @ W_h[2 * H :].T + b_h[2 * H :]
    np.tanh(gn, out=gn)
    z = grz[:, H:]
    # h = (1 - z) n + z h_prev = n + z (h_prev - n)
    np.subtract(h_prev, gn, out=h_out)
    h_out *= z
    h_out += gn


def _cell_backward(dh, h_prev, g, aux, W_h, reset, dgx, dgh):
    """Backward of one step's cell, into preallocated (N, 3H) buffers; returns dh_prev (N, H).

    ``dgx`` receives the gradient with respect to the input projection ``x @ W_x.T + b_x``
    (blocks: the pre-activations of r, z, and of n); ``dgh`` the gradient with respect to the
    recurrent products' outputs (for reset "after" ``h_prev @ W_h.T + b_h``, whose n block is
    ``r * dan``; for reset "before" pass ``dgh is dgx``, since there the n block's output
    ``W_hn (r h_prev) + b_hn`` is added straight into n's pre-activation).
    """
    H = h_prev.shape[1]
    r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
    dar, daz, dan = dgx[:, :H], dgx[:, H : 2 * H], dgx[:, 2 * H :]
    # h = n + z (h_prev - n):  dn = dh (1 - z),  dz = dh (h_prev - n),  dh_prev gets dh z
    np.multiply(dh, 1 - z, out=dan)
    dan *= 1 - n * n  # tanh' = 1 - tanh²
    np.subtract(h_prev, n, out=daz)
    daz *= dh
    daz *= z * (1 - z)  # sigma' = sigma (1 - sigma)
    dh_prev = dh * z
    if reset == "after":
        # n = tanh(... + r * hn), hn = W_hn h_prev + b_hn:  dr = dan * hn,  dhn = dan * r
        np.multiply(dan, aux, out=dar)
        dar *= r * (1 - r)
        dgh[:, : 2 * H] = dgx[:, : 2 * H]
        np.multiply(dan, r, out=dgh[:, 2 * H :])
        dh_prev += dgh @ W_h
    else:
        # n = tanh(... + W_hn (r h_prev) + b_hn):  d(r h_prev) = dan @ W_hn
        drh = dan @ W_h[2 * H :]
        np.multiply(drh, h_prev, out=dar)
        dar *= r * (1 - r)
        dh_prev += drh * r
        dh_prev += dgx[:, : 2 * H] @ W_h[: 2 * H]
    return dh_prev


def _param_grads(x2, h_prev2, aux2, dgx2, dgh2, reset) -> dict[str, np.ndarray]:
    """Parameter gradients from all (n, t) rows at once: inputs and gradients as (rows, ·)."""
    H = h_prev2.shape[1]
    if reset == "after":
        dW_h = dgh2.T @ h_prev2
    else:  # the n block multiplies r * h_prev, not h_prev
        dW_h = np.concatenate([dgh2[:, : 2 * H].T @ h_prev2, dgh2[:, 2 * H :].T @ aux2], axis=0)
    return {
        "W_x": dgx2.T @ x2,
        "W_h": dW_h,
        "b_x": dgx2.sum(axis=0),
        "b_h": dgh2.sum(axis=0),
    }


def gru_step_forward(x, h_prev, params, reset="after"):
    """One time step of the GRU (see the module docstring for the equations).

    Args:
        x: input at this step, (N, D).
        h_prev: previous hidden state, (N, H).
        params: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x`` (3H,), ``b_h`` (3H,), blocks r, z, n.
        reset: ``"after"`` (PyTorch: r * (W_hn h + b_hn)) or ``"before"`` (Cho et al.:
            W_hn (r * h) + b_hn).

    Returns:
        h: next hidden state, (N, H).
        cache: what :func:`gru_step_backward` needs.
    """
    reset = _check_reset(reset)
    x = as_float_array("x", x, 2)
    h_prev = as_float_array("h_prev", h_prev, 2)
    if x.shape[0] != h_prev.shape[0]:
        raise ValueError(f"x has batch size {x.shape[0]} but h_prev has {h_prev.shape[0]}")
    N, H = h_prev.shape
    p = _gru_params(params, x.shape[1], H)
    dtype = np.result_type(x, h_prev, *p.values())
    g = (x @ p["W_x"].T + p["b_x"]).astype(dtype, copy=False)  # becomes r, z, n in place
    aux = np.empty((N, H), dtype=dtype)
    h = np.empty((N, H), dtype=dtype)
    _cell_forward(g, h_prev, p["W_h"], p["b_h"], reset, aux, h)
    cache = (x, h_prev, h, g, aux, p["W_x"], p["W_h"], reset)
    return h, cache


def gru_step_backward(dh, cache):
    """Backward of one step; the reset placement is the one the forward used (in the cache).

    With ``dn = dh (1 - z)``, ``dan = dn (1 - n²)``, ``daz = dh (h_prev - n) z (1 - z)``:

    - reset "after": ``dar = dan * (W_hn h_prev + b_hn) * r (1 - r)``; the gradient of the
      recurrent products is ``[dar, daz, dan * r]``, and
      ``dh_prev = dh z + [dar, daz, dan r] @ W_h``;
    - reset "before": ``d(r h_prev) = dan @ W_hn``, ``dar = d(r h_prev) * h_prev * r (1 - r)``,
      ``dh_prev = dh z + d(r h_prev) * r + [dar, daz] @ [W_hr; W_hz]``.

    Args:
        dh: upstream gradient of the loss with respect to ``h``, (N, H).
        cache: from :func:`gru_step_forward`.

    Returns:
        dx (N, D), dh_prev (N, H), grads: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x`` (3H,),
        ``b_h`` (3H,).
    """
    x, h_prev, h, g, aux, W_x, W_h, reset = cache
    dh = as_float_array("dh", dh, 2)
    if dh.shape != h.shape:
        raise ValueError(f"dh must have the shape of h, {h.shape}, got {dh.shape}")
    dtype = np.result_type(dh, h)
    dgx = np.empty(g.shape, dtype=dtype)
    dgh = np.empty_like(dgx) if reset == "after" else dgx
    dh_prev = _cell_backward(dh, h_prev, g, aux, W_h, reset, dgx, dgh)
    grads = _param_grads(x, h_prev, aux, dgx, dgh, reset)
    return dgx @ W_x, dh_prev, grads


def gru_forward(x, h0, params, reset="after"):
    """Run the GRU over a whole sequence.

    The input projections ``x_t @ W_x.T + b_x`` of all time steps are one matrix product before
    the loop; each step then adds the recurrent products, one fused (N, 3H) product for reset
    "after", two (r, z blocks; then n block on ``r * h``) for reset "before". The gates of all
    steps are kept in one preallocated (N, T, 3H) buffer for the backward pass.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x`` (3H,), ``b_h`` (3H,), blocks r, z, n.
        reset: ``"after"`` (PyTorch) or ``"before"`` (Cho et al. 2014).

    Returns:
        hs: hidden states h_1 ... h_T, (N, T, H).
        cache: what :func:`gru_backward` needs.
    """
    reset = _check_reset(reset)
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = _gru_params(params, D, H)
    dtype = np.result_type(x, h0, *p.values())
    # One GEMM for all T input projections; each step turns its slice into r, z, n in place.
    gates = (x.reshape(N * T, D) @ p["W_x"].T + p["b_x"]).reshape(N, T, 3 * H)
    gates = gates.astype(dtype, copy=False)
    aux = np.empty((N, T, H), dtype=dtype)
    hs = np.empty((N, T, H), dtype=dtype)
    h = h0
    for t in range(T):
        _cell_forward(gates[:, t], h, p["W_h"], p["b_h"], reset, aux[:, t], hs[:, t])
        h = hs[:, t]
    cache = (x, h0, hs, gates, aux, p["W_x"], p["W_h"], reset)
    return hs, cache


def gru_backward(dhs, cache):
    """Backpropagation through time over the whole sequence.

    ``dhs[:, t]`` is the gradient of the loss with respect to ``h_t`` arriving from the outputs;
    the gradient flowing back through the recurrence is added to it at each step. The loop only
    computes the pre-activation gradients (into preallocated (N, T, 3H) buffers) and dh_prev;
    ``dx`` and the parameter gradients, sums over time steps, are then one matrix product each
    over all (n, t) rows.

    Args:
        dhs: upstream gradients for all hidden states, (N, T, H).
        cache: from :func:`gru_forward`.

    Returns:
        dx (N, T, D), dh0 (N, H), grads: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x`` (3H,),
        ``b_h`` (3H,).
    """
    x, h0, hs, gates, aux, W_x, W_h, reset = cache
    dhs = as_float_array("dhs", dhs, 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of hs, {hs.shape}, got {dhs.shape}")
    N, T, H = hs.shape
    D = x.shape[2]
    dtype = np.result_type(dhs, hs)
    dgx = np.empty((N, T, 3 * H), dtype=dtype)
    dgh = np.empty_like(dgx) if reset == "after" else dgx
    dh_next = np.zeros((N, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        h_prev = hs[:, t - 1] if t > 0 else h0
        dh = dhs[:, t] + dh_next
        dh_next = _cell_backward(
            dh, h_prev, gates[:, t], aux[:, t], W_h, reset, dgx[:, t], dgh[:, t]
        )
    h_prevs = np.concatenate([h0[:, None, :], hs[:, :-1, :]], axis=1).reshape(N * T, H)
    dgx2 = dgx.reshape(N * T, 3 * H)
    grads = _param_grads(
        x.reshape(N * T, D),
        h_prevs,
        aux.reshape(N * T, H),
        dgx2,
        dgh.reshape(N * T, 3 * H),
        reset,
    )
    dx = (dgx2 @ W_x).reshape(N, T, D)
    return dx, dh_next.astype(dtype, copy=False), grads
