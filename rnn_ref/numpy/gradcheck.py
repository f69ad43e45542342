r"""Numerical gradients by central differences, and the relative error used to compare them.

For a function :math:`f` and an upstream gradient :math:`g` (``df``), the numerical gradient
of :math:`\sum g \odot f(x)` with respect to each entry :math:`x_i` is

.. math::  \frac{\partial}{\partial x_i} \approx
   \frac{\sum g \odot f(x + h e_i) - \sum g \odot f(x - h e_i)}{2h},

whose error is :math:`O(h^2)`. Use float64: in float32 the rounding error of :math:`f`, divided
by :math:`2h`, swamps the estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "rel_error"]


def numerical_gradient(f: Callable, x, df=None, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``sum(df * f(x))`` with respect to ``x``.

    Args:
        f: a function of one array argument returning an array (or a scalar).
        x: the point, any shape. It is copied, never modified.
        df: upstream gradient with the shape of ``f(x)``; default 1 (so ``f`` may be a scalar loss).
        h: step size.

    Returns:
        An array with the shape of ``x``.
    """
    x = np.array(x, dtype=np.float64)  # a private copy: the caller's array is never perturbed
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = np.asarray(f(x), dtype=np.float64)
        flat[i] = old - h
        fm = np.asarray(f(x), dtype=np.float64)
        flat[i] = old
        g = np.ones_like(fp) if df is None else np.asarray(df, dtype=np.float64)
        gflat[i] = np.sum((fp - fm) * g) / (2 * h)
    return grad


def rel_error(a, b) -> float:
    """Largest relative error ``max |a - b| / max(1e-8, |a| + |b|)`` between two arrays.

    Reading it (float64, h = 1e-5): below 1e-7 the gradients agree; around 1e-5 look closer
    (often a kink such as ReLU at 0); above 1e-3 the analytic gradient is wrong.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
