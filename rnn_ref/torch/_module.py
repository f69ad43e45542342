"""What the one-layer recurrent modules share: ``torch.nn``'s parameter names, shapes and
initialisation, and the checks of their batch-first inputs."""

from __future__ import annotations

import math

import torch
from torch import nn


class Recurrent(nn.Module):
    """Base of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Holds ``weight_ih_l0`` (G*H, D), ``weight_hh_l0`` (G*H, H) and, with ``bias``,
    ``bias_ih_l0`` and ``bias_hh_l0`` (G*H,), where G is the number of gate blocks
    (1, 4 or 3): exactly ``torch.nn.RNN/LSTM/GRU``'s, so ``state_dict``s load with ``strict=True``.
    """

    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}"
            )
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = self.gates * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(G, input_size, **kw))
        self.weight_hh_l0 = nn.Parameter(torch.empty(G, hidden_size, **kw))
        if bias:
            self.bias_ih_l0 = nn.Parameter(torch.empty(G, **kw))
            self.bias_hh_l0 = nn.Parameter(torch.empty(G, **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as ``torch.nn``'s recurrent layers."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _biases(self):
        """(bias_ih, bias_hh), zeros when ``bias=False``."""
        if self.bias:
            return self.bias_ih_l0, self.bias_hh_l0
        zeros = self.weight_ih_l0.new_zeros(self.gates * self.hidden_size)
        return zeros, zeros

    def _check_input(self, x: torch.Tensor) -> int:
        """Check x is (N, T, D); return N."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must be (N, T, {self.input_size}), got shape {tuple(x.shape)}")
        return x.shape[0]

    def _state(self, name: str, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """An initial state as ``torch.nn`` takes it, (1, N, H) (zeros if None); returns (N, H)."""
        N, H = x.shape[0], self.hidden_size
        if s is None:
            return x.new_zeros(N, H)
        if s.shape != (1, N, H):
            raise ValueError(f"{name} must be (1, {N}, {H}), got shape {tuple(s.shape)}")
        return s[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
