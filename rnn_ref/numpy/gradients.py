r"""Vanishing and exploding gradients: Jacobian products, gradient clipping, initialisation.

Chapter ch04_gradients. The cell is the one of :mod:`rnn_ref.numpy.rnn`, with a choice of
nonlinearity :math:`\phi \in \{\tanh, \mathrm{relu}\}`:

.. math::  a_t = W_{xh} x_t + W_{hh} h_{t-1} + b_h, \qquad h_t = \phi(a_t)

Its step Jacobian (entry ``[i, j]`` is :math:`\partial h_t[i] / \partial h_{t-1}[j]`, an
(H, H) matrix) and the Jacobian across ``k`` steps are

.. math::  J_t = \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(\phi'(a_t))\, W_{hh},
           \qquad \frac{\partial h_T}{\partial h_{T-k}} = J_T J_{T-1} \cdots J_{T-k+1}

(the empty product, ``k = 0``, is the identity). Backpropagation through time multiplies the
gradient by this product: ``dh_{T-k} = dh_T @ (J_T ... J_{T-k+1})`` for a row vector ``dh_T``.
Sub-multiplicativity of the spectral norm bounds it:

.. math::  \Big\| \prod_{s} J_s \Big\|_2 \le \prod_{s} \|\mathrm{diag}(\phi'(a_s))\|_2 \,
           \|W_{hh}\|_2 \le \big(\gamma\, \|W_{hh}\|_2\big)^k,
           \qquad \gamma = \max_a |\phi'(a)|

With tanh, :math:`\gamma = 1` (and :math:`\tanh' < 1` away from 0), so if the largest singular
value of :math:`W_{hh}` is below 1 the norm decays geometrically: the gradient from step ``T``
hardly reaches step ``T - k`` (vanishing gradients). In the linear regime
(:math:`\phi' \approx 1`) the product is :math:`W_{hh}^k`, whose norm behaves like
:math:`\rho(W_{hh})^k` for large ``k`` (:math:`\rho` the spectral radius, max |eigenvalue|),
so :math:`\rho < 1` is enough for it to vanish; :math:`\rho > 1` is necessary for it to explode,
which relu (:math:`\phi' = 1` where active) does not damp (Bengio, Simard and Frasconi 1994;
Pascanu, Mikolov and Bengio 2013).

Shapes are batch-first: ``x`` (N, T, D), ``h0`` (N, H); ``params`` has ``W_xh`` (H, D),
``W_hh`` (H, H), ``b_h`` (H,). No input is modified in place.
"""

from __future__ import annotations

import collections
import numbers

import numpy as np

from ._checks import get_params, sequence_inputs

__all__ = [
    "jacobian_product",
    "jacobian_norms",
    "clip_by_norm",
    "clip_by_value",
    "orthogonal_init",
    "identity_init",
    "scaled_init",
]

NONLINEARITIES = ("tanh", "relu")


# ---------------------------------------------------------------------------------------------
# Jacobians through time
# ---------------------------------------------------------------------------------------------


def _check_nonlinearity(nonlinearity) -> str:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
    return nonlinearity


def _forward_preactivations(x, h0, params, nonlinearity):
    """Run the cell over the sequence; return ``h_T`` (N, H), ``phi'(a_t)`` (N, T, H), ``W_hh``."""
    nonlinearity = _check_nonlinearity(nonlinearity)
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = get_params(params, {"W_xh": (H, D), "W_hh": (H, H), "b_h": (H,)})
    dtype = np.result_type(x, h0, p["W_xh"], p["W_hh"], p["b_h"])
    # Input projections of all steps in one product; a new array, so x is never touched.
    a_in = (x.reshape(N * T, D) @ p["W_xh"].T + p["b_h"]).reshape(N, T, H).astype(dtype)
    dphi = np.empty((N, T, H), dtype=dtype)
    h = h0
    for t in range(T):
        a_t = a_in[:, t, :] + h @ p["W_hh"].T
        if nonlinearity == "tanh":
            h = np.tanh(a_t)
            dphi[:, t, :] = 1.0 - h * h
        else:
            h = np.maximum(a_t, 0.0)
            dphi[:, t, :] = a_t > 0
    return h, dphi, p["W_hh"]


def _hidden_final(x, h0, params, nonlinearity="tanh"):
    """``h_T`` (N, H) of the cell with the given nonlinearity (tests take finite differences)."""
    h, _, _ = _forward_preactivations(x, h0, params, nonlinearity)
    return h


def _jacobian_products(dphi, W_hh, k_max):
    """Yield ``dh_T/dh_{T-k}`` (N, H, H) for ``k = 0 .. k_max``, each from the previous one."""
    N, T, H = dphi.shape
    P = np.broadcast_to(np.eye(H, dtype=dphi.dtype), (N, H, H)).copy()
    yield P
    for k in range(1, k_max + 1):
        # J_{T-k+1} = diag(phi'(a_{T-k+1})) W_hh; a_{T-k+1} sits at index T - k.
        J = dphi[:, T - k, :, None] * W_hh
        P = P @ J
        yield P


def jacobian_product(x, h0, params, k=None, nonlinearity="tanh"):
    r"""The Jacobian :math:`\partial h_T / \partial h_{T-k} = J_T J_{T-1} \cdots J_{T-k+1}`.

    :math:`J_t = \mathrm{diag}(\phi'(a_t)) W_{hh}` with :math:`\tanh'(a) = 1 - \tanh^2(a)` and
    :math:`\mathrm{relu}'(a) = 1[a > 0]`. ``k = T`` gives :math:`\partial h_T / \partial h_0`,
    the Jacobian with respect to ``h0``; ``k = 0`` gives the identity.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
        k: lag, an integer in ``0 .. T``; ``None`` means ``T``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        (N, H, H) array: entry ``[n, i, j]`` is :math:`\partial h_T[n, i] / \partial h_{T-k}[n, j]`
        for sequence ``n``.
    """
    _, dphi, W_hh = _forward_preactivations(x, h0, params, nonlinearity)
    T = dphi.shape[1]
    if k is None:
        k = T
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not 0 <= k <= T:
        raise ValueError(f"k must be in 0 .. T = {T}, got {k}")
    # Keep only the last product of the generator.
    return collections.deque(_jacobian_products(dphi, W_hh, k), maxlen=1)[0]


def jacobian_norms(x, h0, params, nonlinearity="tanh"):
    r"""Spectral norms :math:`\|\partial h_T / \partial h_{T-k}\|_2` for lags ``k = 0 .. T-1``.

    The Jacobian across ``k`` steps is the product of step Jacobians
    :math:`J_T \cdots J_{T-k+1}`, :math:`J_t = \mathrm{diag}(\phi'(a_t)) W_{hh}` (see the module
    docstring for the bound :math:`\|\prod J\| \le \prod \|\mathrm{diag}\,\phi'\|\,\|W_{hh}\|`
    and why it vanishes with tanh and a spectral radius below 1). Entry 0 is
    :math:`\|I\|_2 = 1`. The spectral norm is the largest singular value.

    With a batch (N > 1) the norms of the N sequences are **averaged**: the result is the mean
    over ``n`` of :math:`\|\partial h_T[n] / \partial h_{T-k}[n]\|_2`. Pass N = 1 for a single
    sequence.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        (T,) array, entry ``k`` the (batch-mean) spectral norm at lag ``k``.
    """
    _, dphi, W_hh = _forward_preactivations(x, h0, params, nonlinearity)
    T = dphi.shape[1]
    norms = np.empty(T, dtype=dphi.dtype)
    for k, P in enumerate(_jacobian_products(dphi, W_hh, T - 1)):
        norms[k] = np.linalg.svd(P, compute_uv=False)[:, 0].mean()
    return norms


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------


def _check_grads(grads) -> dict[str, np.ndarray]:
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of arrays, got {type(grads).__name__}")
    out = {}
    for key, g in grads.items():
        arr = np.asarray(g)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"grads[{key!r}] must hold numbers, got dtype {arr.dtype}")
        out[key] = arr
    return out


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def clip_by_norm(grads, max_norm, eps=1e-6):
    r"""Rescale the parameter gradients so that their global L2 norm is at most ``max_norm``.

    .. math::  \|g\| = \sqrt{\textstyle\sum_{p} \sum_{i} g_{p,i}^2}, \qquad
               g_p \leftarrow g_p \cdot \min\!\Big(1, \frac{\text{max\_norm}}{\|g\| + \epsilon}\Big)

    The norm is taken over **all** arrays together (one number for the whole model), so the
    direction of the update is kept and only its length shrinks (Pascanu et al. 2013). This is
    what ``torch.nn.utils.clip_grad_norm_`` computes, with the same ``eps = 1e-6``.

    Clip the gradient of the *parameters* (``grads`` from a backward pass: ``W_xh``, ``W_hh``,
    ...), after the whole backward pass, right before the optimiser step: what explodes and does
    harm is the update ``-lr * g``, and that is what clipping bounds. Clipping the input gradient
    ``dx`` instead is not gradient clipping: ``dx`` updates no parameter (it is the gradient with
    respect to the data), so the step taken stays unbounded, and ``dW_hh`` is summed over all
    time steps inside BPTT before ``dx`` is ever looked at.

    Args:
        grads: dict of arrays (any shapes), e.g. the ``grads`` of :func:`rnn_backward`.
        max_norm: the largest allowed global norm, > 0.
        eps: added to the norm before dividing, as in PyTorch.

    Returns:
        clipped: a new dict with new arrays (the input is not modified).
        total_norm: the global norm *before* clipping, a float.
    """
    max_norm = _check_positive("max_norm", max_norm)
    g = _check_grads(grads)
    total_norm = float(
        np.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in g.values()))
    )
    scale = min(1.0, max_norm / (total_norm + eps))
    clipped = {k: a * scale if scale < 1.0 else a.copy() for k, a in g.items()}
    return clipped, total_norm


def clip_by_value(grads, clip_value):
    """Clip every gradient entry to ``[-clip_value, clip_value]`` (``np.clip``, elementwise).

    Unlike :func:`clip_by_norm` this changes the direction of the gradient.

    Args:
        grads: dict of arrays.
        clip_value: > 0.

    Returns:
        a new dict with new arrays (the input is not modified).
    """
    clip_value = _check_positive("clip_value", clip_value)
    g = _check_grads(grads)
    return {k: np.clip(a, -clip_value, clip_value) for k, a in g.items()}


# ---------------------------------------------------------------------------------------------
# Initialisation of W_hh
# ---------------------------------------------------------------------------------------------


def _check_size(H) -> int:
    if isinstance(H, bool) or not isinstance(H, numbers.Integral):
        raise TypeError(f"H must be an integer, got {type(H).__name__}")
    if H < 1:
        raise ValueError(f"H must be at least 1, got {H}")
    return int(H)


def orthogonal_init(H, rng, gain=1.0):
    r"""A random orthogonal (H, H) matrix times ``gain`` (Saxe et al. 2014).

    ``Q, R = qr(A)`` with ``A`` standard Gaussian; ``Q * sign(diag(R))`` (column ``j`` times the
    sign of ``R[j, j]``) makes the factorisation unique, and then ``Q`` is uniformly (Haar)
    distributed over the orthogonal group; without it the QR routine's sign convention biases
    it. All singular values equal ``gain``, so :math:`\|W_{hh}^k\|_2 = \text{gain}^k`.

    Args:
        H: size.
        rng: a ``numpy.random.Generator`` or a seed.
        gain: scale.

    Returns:
        (H, H) float64 array with ``W.T @ W = gain**2 I``.
    """
    H = _check_size(H)
    rng = np.random.default_rng(rng)
    Q, R = np.linalg.qr(rng.standard_normal((H, H)))
    d = np.sign(np.diag(R))
    d[d == 0] = 1.0
    return gain * (Q * d)


def identity_init(H, scale=1.0):
    """``scale * I`` (H, H): the IRNN initialisation of Le, Jaitly and Hinton (2015), for relu.

    With relu, zero inputs and zero bias, ``h_t = h_{t-1}``: the state and its gradient are
    carried unchanged, neither vanishing nor exploding at the start of training.
    """
    H = _check_size(H)
    return scale * np.eye(H)


def scaled_init(H, spectral_radius, rng):
    r"""A Gaussian (H, H) matrix rescaled to spectral radius ``spectral_radius``.

    ``W = A * spectral_radius / rho(A)``, ``rho(A) = max |eigenvalue of A|``. The spectral
    radius decides how :math:`\|W^k\|` behaves for large ``k`` (decays if < 1, grows if > 1),
    the knob of echo-state networks; the spectral *norm* may still be larger.

    Args:
        H: size.
        spectral_radius: > 0.
        rng: a ``numpy.random.Generator`` or a seed.

    Returns:
        (H, H) float64 array.
    """
    H = _check_size(H)
    spectral_radius = _check_positive("spectral_radius", spectral_radius)
    rng = np.random.default_rng(rng)
    A = rng.standard_normal((H, H)) / np.sqrt(H)
    rho = np.max(np.abs(np.linalg.eigvals(A)))
    return A * (spectral_radius / rho)
