"""Input validation shared by the NumPy backend: bad input gets a message that names the culprit."""

from __future__ import annotations

import numpy as np


def check_int(name: str, value, low: int) -> int:
    """``value`` as an int, or raise if it is not an integer (``bool`` is not) ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def as_float_array(name: str, a, ndim: int) -> np.ndarray:
    """Return ``a`` as a floating-point array with ``ndim`` dimensions, or raise a clear error."""
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        if np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def get_params(params, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Fetch ``params[k]`` for each key and check its shape against ``shapes[k]``.

    ``shapes`` maps a symbol to its expected shape (``None`` matches any size in that place); the
    message names the symbol, the expected and the actual shape, so a learner sees which
    parameter is wrong.
    """
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be a dict keyed by {sorted(shapes)}, got {type(params).__name__}"
        )
    out = {}
    for key, shape in shapes.items():
        if key not in params:
            raise KeyError(f"params is missing {key!r} (expected keys: {sorted(shapes)})")
        arr = np.asarray(params[key])
        if len(arr.shape) != len(shape) or any(
            want is not None and got != want for got, want in zip(arr.shape, shape, strict=True)
        ):
            dims = ["any" if d is None else str(d) for d in shape]
            want = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
            raise ValueError(f"params[{key!r}] must have shape {want}, got {arr.shape}")
        out[key] = arr
    return out


def sequence_inputs(x, h0, h0_name: str = "h0") -> tuple[np.ndarray, np.ndarray]:
    """``x`` as (N, T, D) with T >= 1 and ``h0`` as (N, H), checked against each other."""
    x = as_float_array("x", x, 3)
    h0 = as_float_array(h0_name, h0, 2)
    if h0.shape[0] != x.shape[0]:
        raise ValueError(f"x has batch size {x.shape[0]} but {h0_name} has {h0.shape[0]}")
    if x.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    return x, h0
