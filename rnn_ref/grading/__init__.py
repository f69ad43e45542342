"""Grading helpers for the course's nbgrader assignments.

Test cells import what they use afresh (``from rnn_ref.grading import assert_close``), so a
student cell that rebinds a helper's name gains nothing. Every comparison:

* uses functions captured when this package was imported (before any student cell), and
  undoes rebinding of numpy, numpy.testing and builtins first (see :mod:`._guard`);
* reports *what* is wrong (which output, which index or time step, how many entries, the
  largest error) but never the expected values of a hidden test;
* raises :class:`GradingError` (an ``AssertionError``) on failure and returns ``None`` on
  success: nbgrader reads a numeric last expression of a test cell as partial credit.
"""

from __future__ import annotations

import numpy as _np

from ._guard import (
    DelegationError,
    GradingError,
    guarded_call,
    last_warnings,
    restore_numpy,
    seal,
    trusted_reference,
)

__all__ = [
    "GradingError",
    "DelegationError",
    "assert_array",
    "assert_close",
    "guarded_call",
    "trusted_reference",
]

# Captured now, before any student cell can rebind them.
_asarray, _isfinite, _abs, _argwhere = _np.asarray, _np.isfinite, _np.abs, _np.argwhere
_unravel, _argmax = _np.unravel_index, _np.argmax
_ndarray, _number = _np.ndarray, _np.number


def _where(index, dims) -> str:
    return "[" + ", ".join(f"{d}={int(i)}" for d, i in zip(dims, index, strict=False)) + "]"


def _hint() -> str:
    w = last_warnings()
    return f" (your code also warned: {w[0]})" if w else ""


def assert_array(name: str, actual, shape: tuple[int, ...]) -> _np.ndarray:
    """Check that ``actual`` is a numeric array of ``shape``; return it as an ndarray."""
    restore_numpy()
    if isinstance(actual, tuple | list) and not isinstance(actual, _ndarray):
        raise GradingError(f"{name} should be a NumPy array, got a {type(actual).__name__}")
    try:
        arr = _asarray(actual)
    except Exception:
        raise GradingError(f"{name} should be a NumPy array, got {type(actual).__name__}") from None
    if arr.dtype == object or not (_np.issubdtype(arr.dtype, _number) or arr.dtype == bool):
        raise GradingError(f"{name} should hold numbers, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise GradingError(f"{name} has shape {arr.shape}, expected {tuple(shape)}{_hint()}")
    return arr


def assert_close(name, actual, expected, *, dims=None, atol=1e-6, rtol=1e-5, context="") -> None:
    """Check ``actual`` against ``expected`` elementwise: ``|a - e| <= atol + rtol * |e|``.

    Args:
        name: what the learner calls this output (``"hs"``, ``"dW_hh"``).
        dims: names of the axes, e.g. ``("n", "t", "h")``; an axis named ``t`` lets the message
            name the first wrong time step.
        context: a short description of the case (shapes, seed), added to the message.

    The message gives the shape, how many entries are wrong, the first wrong time step, and
    the largest absolute error and where; never an expected value.
    """
    expected = _asarray(expected)
    arr = assert_array(name, actual, expected.shape).astype(_np.float64)
    expected = expected.astype(_np.float64)
    dims = tuple(dims) if dims else tuple(f"i{k}" for k in range(arr.ndim))
    ctx = f" ({context})" if context else ""
    bad_value = ~_isfinite(arr)
    if bad_value.any():
        where = f", first at {_where(_argwhere(bad_value)[0], dims)}" if arr.ndim else ""
        raise GradingError(f"{name} contains NaN or infinity{where}{ctx}{_hint()}")
    err = _abs(arr - expected)
    wrong = err > atol + rtol * _abs(expected)
    if not wrong.any():
        return None
    if arr.ndim == 0:
        raise GradingError(f"{name} is wrong{ctx}; the error is {float(err):.3g}{_hint()}")
    worst = tuple(int(i) for i in _unravel(int(_argmax(err)), err.shape))
    msg = f"{name} is wrong at {int(wrong.sum())} of {wrong.size} entries{ctx}"
    if "t" in dims:
        t_axis = dims.index("t")
        t_first = int(_argwhere(wrong)[:, t_axis].min())
        msg += f"; the first wrong time step is t={t_first} (counting from 0)"
    msg += f"; the largest error is {err[worst]:.3g} at {_where(worst, dims)}{_hint()}"
    raise GradingError(msg)


seal(__name__)
