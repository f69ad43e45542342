r"""The "RRNN" of seed 004 §3.3 in PyTorch: functional step and sequence, and an ``nn.Module``.

Same reading, equations and parameter names as :mod:`rnn_ref.numpy.variants` (f = tanh,
g = sigmoid, :math:`W_{rh} r_t \odot h_{t-1} = (W_{rh} r_t) \odot h_{t-1}`, the state carried
to t+1 is h_t):

.. math::

   h_t  &= \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h) \\
   r_t  &= \sigma(W_{xr} x_t + W_{rr} h_{t-1} + b_r) \\
   h'_t &= \tanh(W_{xhp} x_t + W_{hhp} h_{t-1} + (W_{rh} r_t) \odot h_{t-1} + b_{hp}) \\
   o_t  &= \sigma(W_{hpo} h'_t + W_{ho} h_t + b_o)

``W_hpo`` (the seed's :math:`W_{ho}`) multiplies h'_t, ``W_ho`` (the seed's :math:`W_{ho'}`)
multiplies h_t; the full table from the seed's symbols to these names is in
:func:`rnn_ref.numpy.rrnn_step_forward`. Read literally, r and h' are never fed back: h_t is a
plain tanh RNN's state and only o_t sees the "auxiliary" part.

Multi-layer and bidirectional RNN, LSTM and GRU modules are :class:`rnn_ref.torch.RNN`,
:class:`~rnn_ref.torch.LSTM` and :class:`~rnn_ref.torch.GRU` with ``num_layers`` and
``bidirectional``. Autograd provides the backward pass; the code runs on whatever device its
tensors are on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["rrnn_step", "rrnn_forward", "RRNN"]

RRNN_KEYS = (
    "W_xh", "W_hh", "b_h", "W_xr", "W_rr", "b_r",
    "W_xhp", "W_hhp", "W_rh", "b_hp", "W_hpo", "W_ho", "b_o",
)  # fmt: skip


def _rrnn_shapes(D: int, H: int, R: int, O: int) -> dict[str, tuple[int, ...]]:
    return {
        "W_xh": (H, D), "W_hh": (H, H), "b_h": (H,),
        "W_xr": (R, D), "W_rr": (R, H), "b_r": (R,),
        "W_xhp": (H, D), "W_hhp": (H, H), "W_rh": (H, R), "b_hp": (H,),
        "W_hpo": (O, H), "W_ho": (O, H), "b_o": (O,),
    }  # fmt: skip


def _check_params(params: dict, D: int, H: int) -> None:
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict keyed by {list(RRNN_KEYS)}")
    missing = [k for k in RRNN_KEYS if k not in params]
    if missing:
        raise KeyError(f"params is missing {missing}")
    R, O = params["W_rr"].shape[0], params["W_ho"].shape[0]
    for k, shape in _rrnn_shapes(D, H, R, O).items():
        if tuple(params[k].shape) != shape:
            raise ValueError(f"params[{k!r}] must have shape {shape}, got {tuple(params[k].shape)}")


def _step(xh, xr, xhp, h_prev, p):
    """One step from the input projections (x W_xh.T + b_h, x W_xr.T + b_r, x W_xhp.T + b_hp)."""
    h = torch.tanh(xh + h_prev @ p["W_hh"].T)
    r = torch.sigmoid(xr + h_prev @ p["W_rr"].T)
    hp = torch.tanh(xhp + h_prev @ p["W_hhp"].T + (r @ p["W_rh"].T) * h_prev)
    o = torch.sigmoid(hp @ p["W_hpo"].T + h @ p["W_ho"].T + p["b_o"])
    return h, o


def rrnn_step(x: torch.Tensor, h_prev: torch.Tensor, params: dict):
    """One RRNN step: x (N, D), h_prev (N, H) -> ``(h, o)``, h (N, H) (the recurrent state) and
    o (N, O). ``params``: the 13 tensors of :data:`RRNN_KEYS`, shapes as in the numpy backend."""
    if x.dim() != 2 or h_prev.dim() != 2 or x.shape[0] != h_prev.shape[0]:
        raise ValueError(
            f"x must be (N, D) and h_prev (N, H) with the same N, got {tuple(x.shape)} and "
            f"{tuple(h_prev.shape)}"
        )
    _check_params(params, x.shape[1], h_prev.shape[1])
    p = params
    return _step(
        x @ p["W_xh"].T + p["b_h"], x @ p["W_xr"].T + p["b_r"], x @ p["W_xhp"].T + p["b_hp"],
        h_prev, p,
    )  # fmt: skip


def rrnn_forward(x: torch.Tensor, h0: torch.Tensor, params: dict):
    """The RRNN over a sequence: x (N, T, D), h0 (N, H) -> ``(hs, os)``, hs (N, T, H) and
    os (N, T, O). Equals :func:`rnn_ref.numpy.rrnn_forward`.

    The input projections of all steps (into h, r and h') are one matrix product each.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    if h0.dim() != 2 or h0.shape[0] != x.shape[0]:
        raise ValueError(f"h0 must be (N, H) with N = {x.shape[0]}, got shape {tuple(h0.shape)}")
    if x.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    _check_params(params, x.shape[2], h0.shape[1])
    p = params
    xh, xr, xhp = (
        x @ p[w].T + p[b] for w, b in (("W_xh", "b_h"), ("W_xr", "b_r"), ("W_xhp", "b_hp"))
    )
    h, hs, os = h0, [], []
    for t in range(x.shape[1]):
        h, o = _step(xh[:, t], xr[:, t], xhp[:, t], h, p)
        hs.append(h)
        os.append(o)
    return torch.stack(hs, dim=1), torch.stack(os, dim=1)


class RRNN(nn.Module):
    """The RRNN of seed 004 §3.3 as a module; its parameters (and ``state_dict`` keys) are the
    equations' names ``W_xh, W_hh, b_h, W_xr, W_rr, b_r, W_xhp, W_hhp, W_rh, b_hp, W_hpo, W_ho,
    b_o``, the keys of :func:`rnn_ref.numpy.rrnn_init`'s dict, each initialised
    U(-1/sqrt(H), 1/sqrt(H)).

    ``RRNN(input_size, hidden_size, aux_size, output_size)`` (D, H, R, O).
    ``forward(x, h0=None)``: x (N, T, D) (batch-first), h0 (1, N, H) as the torch.nn modules
    take it (zeros if None); returns ``(os, h_n)``, os (N, T, O) and h_n (1, N, H).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        aux_size: int,
        output_size: int,
        device=None,
        dtype=None,
    ):
        super().__init__()
        sizes = {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "aux_size": aux_size,
            "output_size": output_size,
        }
        if any(v < 1 for v in sizes.values()):
            raise ValueError(f"sizes must be positive, got {sizes}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.aux_size, self.output_size = aux_size, output_size
        shapes = _rrnn_shapes(input_size, hidden_size, aux_size, output_size)
        for k, shape in shapes.items():
            setattr(self, k, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as ``torch.nn``'s recurrent layers."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def params(self) -> dict:
        """The parameters under the equations' names (the same tensors, not copies)."""
        return {k: getattr(self, k) for k in RRNN_KEYS}

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must be (N, T, {self.input_size}), got shape {tuple(x.shape)}")
        N, H = x.shape[0], self.hidden_size
        if h0 is None:
            h = x.new_zeros(N, H)
        elif h0.shape != (1, N, H):
            raise ValueError(f"h0 must be (1, {N}, {H}), got shape {tuple(h0.shape)}")
        else:
            h = h0[0]
        hs, os = rrnn_forward(x, h, self.params())
        return os, hs[:, -1].unsqueeze(0)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, {self.aux_size}, {self.output_size}"
