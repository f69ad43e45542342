"""Move parameters between ``rnn_ref``'s dicts and ``torch.nn.RNN/LSTM/GRU`` (or ``rnn_ref.torch``).

Both store weights (out, in) with gates stacked in the same order (LSTM i, f, g, o; GRU r, z, n),
so nothing is transposed or reordered. What differs is the names, and the biases:

=====  ==========================  ==========================================================
mode   rnn_ref keys                torch.nn parameters (layer k, ``_reverse`` for direction 2)
=====  ==========================  ==========================================================
RNN    W_xh, W_hh, b_h             weight_ih_lk, weight_hh_lk, b_h = bias_ih_lk + bias_hh_lk
LSTM   W_x, W_h, b                 weight_ih_lk, weight_hh_lk, b = bias_ih_lk + bias_hh_lk
GRU    W_x, W_h, b_x, b_h          weight_ih_lk, weight_hh_lk, bias_ih_lk, bias_hh_lk
=====  ==========================  ==========================================================

A GRU keeps both biases because b_hn sits inside r * (W_hn h + b_hn). For RNN and LSTM, going
into torch puts the whole bias in ``bias_ih`` and zeros ``bias_hh``; the sum, which is all the
equations see, is preserved.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_torch", "to_torch"]

_KEYS = {"RNN": ("W_xh", "W_hh"), "LSTM": ("W_x", "W_h"), "GRU": ("W_x", "W_h")}
_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _mode(module) -> str:
    mode = getattr(module, "mode", None)
    if mode == "RNN_TANH":
        return "RNN"
    if mode == "RNN_RELU":
        raise ValueError("rnn_ref's RNN uses tanh; this module has nonlinearity='relu'")
    if mode in ("LSTM", "GRU"):
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 has no rnn_ref equivalent")
        return mode
    raise TypeError(
        "expected torch.nn.RNN, LSTM or GRU (or an rnn_ref.torch module), "
        f"got {type(module).__name__}"
    )


def _suffix(module, layer: int, reverse: bool) -> str:
    layers = getattr(module, "num_layers", 1)
    if not 0 <= layer < layers:
        raise ValueError(f"layer must be in [0, {layers}), got {layer}")
    if reverse and not getattr(module, "bidirectional", False):
        raise ValueError("reverse=True needs a bidirectional module")
    return f"_l{layer}" + ("_reverse" if reverse else "")


def from_torch(module, layer: int = 0, reverse: bool = False) -> dict[str, np.ndarray]:
    """The parameters of one layer and direction of ``module``, as an ``rnn_ref`` params dict.

    Arrays are NumPy copies in the module's dtype (use float64 modules for gradient checks).
    """
    mode = _mode(module)
    sfx = _suffix(module, layer, reverse)

    def get(name):
        p = getattr(module, name + sfx, None)
        return None if p is None else p.detach().cpu().numpy().copy()

    W_ih, W_hh = get("weight_ih"), get("weight_hh")
    b_ih, b_hh = get("bias_ih"), get("bias_hh")
    if b_ih is None:  # bias=False: the equations' bias is zero
        b_ih, b_hh = np.zeros(W_ih.shape[0], W_ih.dtype), np.zeros(W_ih.shape[0], W_ih.dtype)
    kx, kh = _KEYS[mode]
    if mode == "GRU":
        return {kx: W_ih, kh: W_hh, "b_x": b_ih, "b_h": b_hh}
    return {kx: W_ih, kh: W_hh, ("b_h" if mode == "RNN" else "b"): b_ih + b_hh}


def to_torch(params: dict, module, layer: int = 0, reverse: bool = False):
    """Copy an ``rnn_ref`` params dict into one layer and direction of ``module``, in place.

    Shapes are checked against the module's; values are cast to its dtype and device.
    Returns the module.
    """
    import torch

    mode = _mode(module)
    sfx = _suffix(module, layer, reverse)
    kx, kh = _KEYS[mode]
    if mode == "GRU":
        biases = {"bias_ih": "b_x", "bias_hh": "b_h"}
    else:
        biases = {"bias_ih": "b_h" if mode == "RNN" else "b", "bias_hh": None}
    names = {"weight_ih": kx, "weight_hh": kh, **biases}
    has_bias = getattr(module, "bias_ih" + sfx, None) is not None
    missing = [k for n, k in names.items() if k and k not in params and (has_bias or "weight" in n)]
    if missing:
        raise KeyError(f"params for a {mode} is missing {missing} (has {sorted(params)})")
    # Check everything before copying anything, so a bad dict leaves the module untouched.
    copies = []
    for torch_name, key in names.items():
        target = getattr(module, torch_name + sfx, None)
        if target is None:
            if key in params and np.any(np.asarray(params[key]) != 0):
                raise ValueError(f"module has bias=False but params[{key!r}] is not zero")
            continue
        value = None if key is None else torch.as_tensor(np.asarray(params[key]))
        if value is not None and tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"params[{key!r}] has shape {tuple(value.shape)} but {torch_name + sfx} "
                f"of this {mode} needs {tuple(target.shape)}"
            )
        copies.append((target, value))
    with torch.no_grad():
        for target, value in copies:
            if value is None:  # bias_hh of an RNN/LSTM: the whole bias went into bias_ih
                target.zero_()
            else:
                target.copy_(value.to(dtype=target.dtype, device=target.device))
    return module
