r"""The LSTM in NumPy, and its peephole variant: one step, a whole sequence, and their backward
passes.

Equations implemented (chapter ch05_lstm), for each time step :math:`t`, with
:math:`\sigma(a) = 1 / (1 + e^{-a})` and :math:`\odot` the elementwise product:

.. math::

   a_t &= W_x x_t + W_h h_{t-1} + b \quad\text{split into four blocks } (a_i, a_f, a_g, a_o) \\
   i_t &= \sigma(a_i), \quad f_t = \sigma(a_f), \quad g_t = \tanh(a_g), \quad o_t = \sigma(a_o) \\
   c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)

The gate blocks are stacked in PyTorch's order i, f, g, o (input gate, forget gate, candidate,
output gate): ``params`` is a dict with ``W_x`` (4H, D), ``W_h`` (4H, H) and ``b`` (4H,), rows
``[0:H]`` for i, ``[H:2H]`` for f, ``[2H:3H]`` for g, ``[3H:4H]`` for o. ``b`` is torch's
``bias_ih + bias_hh`` (see :mod:`rnn_ref.convert`). The candidate g uses tanh, not a sigmoid.

**Peephole variant** (Gers & Schmidhuber 2000), the ``lstm_peephole_*`` functions: the gates
also look at the cell through diagonal (elementwise) weights ``w_ci``, ``w_cf``, ``w_co``, each
(H,). The input and forget gates see the *previous* cell, the output gate the *new* one:

.. math::

   i_t = \sigma(a_i + w_{ci} \odot c_{t-1}), \quad f_t = \sigma(a_f + w_{cf} \odot c_{t-1}), \quad
   o_t = \sigma(a_o + w_{co} \odot c_t)

(g, c_t and h_t as above). With the three peephole weights zero it is the plain LSTM.

Shapes are batch-first: ``x`` is (N, T, D), ``h`` and ``c`` are (N, H), all hidden states
``hs`` are (N, T, H). The state and its gradient are tuples ``(h, c)`` and ``(dh, dc)``.
No input is modified in place; float32 in gives float32 out.

The sequence functions are written for speed as well as clarity: the input projections of all
time steps are one matrix product before the loop, each step does one (N, H) x (H, 4H) product
for all four gates together, the nonlinearities are applied in place on a preallocated
(N, T, 4H) buffer, and the parameter gradients are one matrix product each over all (n, t) rows
after the backward loop. The sigmoid is computed as :math:`\tfrac12 (1 + \tanh(a/2))`, which
equals :math:`1/(1+e^{-a})` but never overflows.
"""

from __future__ import annotations

import numpy as np

from ._activations import sigmoid
from ._checks import as_float_array, get_params, sequence_inputs

__all__ = [
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "lstm_peephole_step_forward",
    "lstm_peephole_step_backward",
    "lstm_peephole_forward",
    "lstm_peephole_backward",
]

_PEEPHOLES = ("w_ci", "w_cf", "w_co")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _lstm_params(params, D: int, H: int, peephole: bool) -> dict[str, np.ndarray]:
    shapes = {"W_x": (4 * H, D), "W_h": (4 * H, H), "b": (4 * H,)}
    if peephole:
        shapes.update({k: (H,) for k in _PEEPHOLES})
    return get_params(params, shapes)


def _state(names: tuple[str, str], state) -> tuple[np.ndarray, np.ndarray]:
    """Unpack a pair ``(h, c)`` (called ``names`` in messages) into two 2-D float arrays of the
    same shape."""
    pair = f"({names[0]}, {names[1]})"
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{pair} must be a pair of arrays, got {type(state).__name__}")
    h = as_float_array(names[0], state[0], 2)
    c = as_float_array(names[1], state[1], 2)
    if h.shape != c.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {h.shape} and {c.shape}"
        )
    return h, c


def _check_step_inputs(x, state, params, peephole):
    x = as_float_array("x", x, 2)
    h_prev, c_prev = _state(("h_prev", "c_prev"), state)
    if x.shape[0] != h_prev.shape[0]:
        raise ValueError(f"x has batch size {x.shape[0]} but h_prev has {h_prev.shape[0]}")
    p = _lstm_params(params, x.shape[1], h_prev.shape[1], peephole)
    return x, h_prev, c_prev, p


# ---------------------------------------------------------------------------------------------
# One step (written for reading; the sequence functions below are the fast path)
# ---------------------------------------------------------------------------------------------


def _step_forward(x, h_prev, c_prev, p, peephole):
    H = h_prev.shape[1]
    a = x @ p["W_x"].T + p["b"]
    a = a + h_prev @ p["W_h"].T
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    if peephole:
        a_i = a_i + p["w_ci"] * c_prev
        a_f = a_f + p["w_cf"] * c_prev
    i, f, g = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g)
    c = f * c_prev + i * g
    if peephole:
        a_o = a_o + p["w_co"] * c
    o = sigmoid(a_o)
    tc = np.tanh(c)
    h = o * tc
    cache = (x, h_prev, c_prev, i, f, g, o, c, tc, p, peephole)
    return (h, c), cache


def _step_backward(dstate, cache):
    x, h_prev, c_prev, i, f, g, o, c, tc, p, peephole = cache
    dh, dc = _state(("dh", "dc"), dstate)
    if dh.shape != c.shape:
        raise ValueError(f"dh and dc must have the shape of h and c, {c.shape}, got {dh.shape}")
    da_o = dh * tc * o * (1.0 - o)
    dc = dc + dh * o * (1.0 - tc * tc)
    if peephole:
        dc = dc + da_o * p["w_co"]
    da_i = dc * g * i * (1.0 - i)
    da_f = dc * c_prev * f * (1.0 - f)
    da_g = dc * i * (1.0 - g * g)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    dx = da @ p["W_x"]
    dh_prev = da @ p["W_h"]
    dc_prev = dc * f
    grads = {"W_x": da.T @ x, "W_h": da.T @ h_prev, "b": da.sum(axis=0)}
    if peephole:
        dc_prev = dc_prev + da_i * p["w_ci"] + da_f * p["w_cf"]
        grads["w_ci"] = (da_i * c_prev).sum(axis=0)
        grads["w_cf"] = (da_f * c_prev).sum(axis=0)
        grads["w_co"] = (da_o * c).sum(axis=0)
    return dx, (dh_prev, dc_prev), grads


def lstm_step_forward(x, state, params):
    """One LSTM step.

    ``a = x @ W_x.T + h_prev @ W_h.T + b`` split into (a_i, a_f, a_g, a_o);
    ``i, f, o = sigmoid(a_i, a_f, a_o)``, ``g = tanh(a_g)``, ``c = f * c_prev + i * g``,
    ``h = o * tanh(c)``.

    Args:
        x: input at this step, (N, D).
        state: ``(h_prev, c_prev)``, each (N, H).
        params: ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,), gate blocks i, f, g, o.

    Returns:
        (h, c): the next hidden and cell states, each (N, H).
        cache: what :func:`lstm_step_backward` needs.
    """
    x, h_prev, c_prev, p = _check_step_inputs(x, state, params, False)
    return _step_forward(x, h_prev, c_prev, p, False)


def lstm_step_backward(dstate, cache):
    """Backward of one LSTM step.

    With ``tc = tanh(c)``: ``da_o = dh * tc * o(1-o)``; the cell gradient
    ``dc_total = dc + dh * o * (1 - tc²)``; ``da_i = dc_total * g * i(1-i)``,
    ``da_f = dc_total * c_prev * f(1-f)``, ``da_g = dc_total * i * (1 - g²)``; with
    ``da = [da_i, da_f, da_g, da_o]`` (N, 4H): ``dx = da @ W_x``, ``dh_prev = da @ W_h``,
    ``dc_prev = dc_total * f``, ``dW_x = da.T @ x``, ``dW_h = da.T @ h_prev``, ``db = sum_n da``.

    Args:
        dstate: ``(dh, dc)``, gradients of the loss with respect to ``h`` and ``c``, each (N, H).
        cache: from :func:`lstm_step_forward`.

    Returns:
        dx (N, D), (dh_prev, dc_prev) each (N, H), grads: ``W_x`` (4H, D), ``W_h`` (4H, H),
        ``b`` (4H,).
    """
    return _step_backward(dstate, cache)


def lstm_peephole_step_forward(x, state, params):
    """One step of the peephole LSTM (Gers & Schmidhuber 2000).

    As :func:`lstm_step_forward`, but ``i = sigmoid(a_i + w_ci * c_prev)``,
    ``f = sigmoid(a_f + w_cf * c_prev)`` and, after ``c = f * c_prev + i * g``,
    ``o = sigmoid(a_o + w_co * c)``: the output gate looks at the *new* cell c.

    Args:
        x: input at this step, (N, D).
        state: ``(h_prev, c_prev)``, each (N, H).
        params: ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,), ``w_ci``, ``w_cf``, ``w_co`` (H,).

    Returns:
        (h, c), each (N, H), and the cache for :func:`lstm_peephole_step_backward`.
    """
    x, h_prev, c_prev, p = _check_step_inputs(x, state, params, True)
    return _step_forward(x, h_prev, c_prev, p, True)


def lstm_peephole_step_backward(dstate, cache):
    """Backward of one peephole LSTM step.

    As :func:`lstm_step_backward`, with the peephole paths added: the cell gradient also
    receives ``da_o * w_co`` (o looks at c), ``dc_prev = dc_total * f + da_i * w_ci +
    da_f * w_cf``, and ``dw_ci = sum_n da_i * c_prev``, ``dw_cf = sum_n da_f * c_prev``,
    ``dw_co = sum_n da_o * c``.

    Returns:
        dx (N, D), (dh_prev, dc_prev) each (N, H), grads: ``W_x``, ``W_h``, ``b``, ``w_ci``,
        ``w_cf``, ``w_co``.
    """
    return _step_backward(dstate, cache)


# ---------------------------------------------------------------------------------------------
# Whole sequence (the fast path)
# ---------------------------------------------------------------------------------------------


def _forward(x, state, params, peephole):
    h0, c0 = _state(("h0", "c0"), state)
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = _lstm_params(params, D, H, peephole)
    dtype = np.result_type(x, h0, c0, *p.values())
    W_x, W_h, b = (p[k].astype(dtype, copy=False) for k in ("W_x", "W_h", "b"))
    h0, c0 = h0.astype(dtype, copy=False), c0.astype(dtype, copy=False)
    W_hT = W_h.T
    # Gate pre-activations of all steps: one GEMM for the input projections, written into the
    # buffer that the loop then turns, in place, into the gate activations (i, f, g, o).
    gates = x.reshape(N * T, D).astype(dtype, copy=False) @ W_x.T
    gates += b
    gates = gates.reshape(N, T, 4 * H)
    cs = np.empty((N, T, H), dtype)  # cell states c_t
    tcs = np.empty((N, T, H), dtype)  # tanh(c_t), kept for the backward pass
    hs = np.empty((N, T, H), dtype)
    # sigmoid(a) = 0.5 * tanh(0.5 a) + 0.5 on the i, f, o blocks; tanh(a) on g: one tanh call
    # over all four blocks between a scale and an affine map (multiplying by 0.5 or 1 is exact).
    scale = np.full(4 * H, 0.5, dtype)
    scale[2 * H : 3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype)
    shift[2 * H : 3 * H] = 0.0
    rec = np.empty((N, 4 * H), dtype)  # h_{t-1} @ W_h.T
    tmp = np.empty((N, H), dtype)
    if peephole:
        w_ci, w_cf, w_co = (p[k].astype(dtype, copy=False) for k in _PEEPHOLES)
    h, c = h0, c0
    for t in range(T):
        a = gates[:, t]
        np.matmul(h, W_hT, out=rec)
        a += rec
        if peephole:
            # i and f look at c_{t-1}; o is done after c_t is known.
            np.multiply(c, w_ci, out=tmp)
            a[:, :H] += tmp
            np.multiply(c, w_cf, out=tmp)
            a[:, H : 2 * H] += tmp
            a_ifg = a[:, : 3 * H]
            a_ifg *= scale[: 3 * H]
            np.tanh(a_ifg, out=a_ifg)
            a_ifg *= scale[: 3 * H]
            a_ifg += shift[: 3 * H]
        else:
            a *= scale
            np.tanh(a, out=a)
            a *= scale
            a += shift
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c_t = cs[:, t]
        np.multiply(f, c, out=c_t)
        np.multiply(i, g, out=tmp)
        c_t += tmp
        tc = tcs[:, t]
        np.tanh(c_t, out=tc)
        if peephole:
            np.multiply(c_t, w_co, out=tmp)
            o += tmp
            o *= 0.5
            np.tanh(o, out=o)
            o *= 0.5
            o += 0.5
        h = hs[:, t]
        np.multiply(o, tc, out=h)
        c = c_t
    cache = (x, h0, c0, gates, cs, tcs, hs, W_x, W_h, p if peephole else None)
    return hs, cache


def _backward(dhs, cache):
    x, h0, c0, gates, cs, tcs, hs, W_x, W_h, peep = cache
    dhs = as_float_array("dhs", dhs, 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of hs, {hs.shape}, got {dhs.shape}")
    N, T, H = hs.shape
    D = x.shape[2]
    dtype = np.result_type(dhs, hs)
    das = np.empty((N, T, 4 * H), dtype)  # gradients of the gate pre-activations
    dh = np.empty((N, H), dtype)
    dc = np.empty((N, H), dtype)
    dc_next = np.zeros((N, H), dtype)
    dh_next = np.zeros((N, H), dtype)
    tmp = np.empty((N, H), dtype)
    if peep is not None:
        w_ci, w_cf, w_co = (peep[k].astype(dtype, copy=False) for k in _PEEPHOLES)
    for t in range(T - 1, -1, -1):
        gt = gates[:, t]
        i, f, g, o = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H : 3 * H], gt[:, 3 * H :]
        tc = tcs[:, t]
        c_prev = cs[:, t - 1] if t > 0 else c0
        da = das[:, t]
        da_i, da_f, da_g, da_o = da[:, :H], da[:, H : 2 * H], da[:, 2 * H : 3 * H], da[:, 3 * H :]
        np.add(dhs[:, t], dh_next, out=dh)
        # output gate: da_o = dh * tanh(c) * o (1 - o)
        np.multiply(dh, tc, out=da_o)
        np.subtract(1.0, o, out=tmp)
        tmp *= o
        da_o *= tmp
        # cell: dc = dc_next + dh * o * (1 - tanh(c)^2) (+ da_o * w_co with peepholes)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        np.add(dc_next, tmp, out=dc)
        if peep is not None:
            np.multiply(da_o, w_co, out=tmp)
            dc += tmp
        # input gate: da_i = dc * g * i (1 - i)
        np.subtract(1.0, i, out=tmp)
        tmp *= i
        tmp *= g
        np.multiply(dc, tmp, out=da_i)
        # forget gate: da_f = dc * c_prev * f (1 - f)
        np.subtract(1.0, f, out=tmp)
        tmp *= f
        tmp *= c_prev
        np.multiply(dc, tmp, out=da_f)
        # candidate: da_g = dc * i * (1 - g^2)
        np.multiply(g, g, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= i
        np.multiply(dc, tmp, out=da_g)
        # to the previous step
        np.multiply(dc, f, out=dc_next)
        if peep is not None:
            np.multiply(da_i, w_ci, out=tmp)
            dc_next += tmp
            np.multiply(da_f, w_cf, out=tmp)
            dc_next += tmp
        dh_next = da @ W_h
    # Parameter gradients sum over time steps: one GEMM each over all (n, t) rows.
    da2 = das.reshape(N * T, 4 * H)
    h_prevs = np.concatenate([h0[:, None, :], hs[:, :-1, :]], axis=1).reshape(N * T, H)
    grads = {
        "W_x": da2.T @ x.reshape(N * T, D).astype(dtype, copy=False),
        "W_h": da2.T @ h_prevs.astype(dtype, copy=False),
        "b": da2.sum(axis=0),
    }
    if peep is not None:
        c_prevs = np.concatenate([c0[:, None, :], cs[:, :-1, :]], axis=1)
        grads["w_ci"] = np.einsum("nth,nth->h", das[:, :, :H], c_prevs)
        grads["w_cf"] = np.einsum("nth,nth->h", das[:, :, H : 2 * H], c_prevs)
        grads["w_co"] = np.einsum("nth,nth->h", das[:, :, 3 * H :], cs)
    dx = (da2 @ W_x).reshape(N, T, D)
    return dx, (dh_next, dc_next), grads


def lstm_forward(x, state, params):
    """Run the LSTM over a whole sequence.

    Args:
        x: inputs, (N, T, D).
        state: ``(h0, c0)``, the initial hidden and cell states, each (N, H).
        params: ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,), gate blocks i, f, g, o.

    Returns:
        hs: hidden states h_1 ... h_T, (N, T, H). (The last cell state is
            ``cache[4][:, -1]``; ``hs[:, -1]`` is h_T.)
        cache: what :func:`lstm_backward` needs.
    """
    return _forward(x, state, params, False)


def lstm_backward(dhs, cache):
    """Backpropagation through time over the whole sequence.

    ``dhs[:, t]`` is the gradient of the loss with respect to ``h_t`` arriving from the outputs;
    the gradients flowing back through the recurrence (into h and into c) are added at each
    step. The loss is assumed not to depend on the last cell state c_T directly.

    Args:
        dhs: upstream gradients for all hidden states, (N, T, H).
        cache: from :func:`lstm_forward`.

    Returns:
        dx (N, T, D), (dh0, dc0) each (N, H), grads: ``W_x`` (4H, D), ``W_h`` (4H, H),
        ``b`` (4H,).
    """
    if cache[-1] is not None:
        raise ValueError("this cache is from lstm_peephole_forward: use lstm_peephole_backward")
    return _backward(dhs, cache)


def lstm_peephole_forward(x, state, params):
    """Run the peephole LSTM over a whole sequence (see :func:`lstm_peephole_step_forward`).

    Args:
        x: inputs, (N, T, D).
        state: ``(h0, c0)``, each (N, H).
        params: ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,), ``w_ci``, ``w_cf``, ``w_co`` (H,).

    Returns:
        hs (N, T, H) and the cache for :func:`lstm_peephole_backward`.
    """
    return _forward(x, state, params, True)


def lstm_peephole_backward(dhs, cache):
    """Backpropagation through time for the peephole LSTM.

    Args:
        dhs: upstream gradients for all hidden states, (N, T, H).
        cache: from :func:`lstm_peephole_forward`.

    Returns:
        dx (N, T, D), (dh0, dc0) each (N, H), grads: ``W_x``, ``W_h``, ``b``, ``w_ci``,
        ``w_cf``, ``w_co``.
    """
    if cache[-1] is None:
        raise ValueError("this cache is from lstm_forward: use lstm_backward")
    return _backward(dhs, cache)
