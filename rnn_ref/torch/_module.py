"""What the recurrent modules share: ``torch.nn``'s parameter names, shapes and initialisation,
the checks of their batch-first inputs, and the loop over layers and directions."""

from __future__ import annotations

import math

import torch
from torch import nn


class Recurrent(nn.Module):
    """Base of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    For each layer k < ``num_layers`` and direction (suffix ``""``, and ``"_reverse"`` when
    ``bidirectional``), holds ``weight_ih_l{k}`` (G*H, D_k), ``weight_hh_l{k}`` (G*H, H) and,
    with ``bias``, ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), where G is the number of gate
    blocks (1, 4 or 3), D_0 = ``input_size`` and D_k = dirs * H for k > 0: exactly
    ``torch.nn.RNN/LSTM/GRU``'s names, shapes and registration order, so ``state_dict``s load
    with ``strict=True`` and the same ``torch.manual_seed`` gives the same initial weights.

    Initial and final states are (num_layers * dirs, N, H), index ``layer * dirs + direction``,
    as in ``torch.nn``. Inputs are always batch-first, (N, T, D); ``batch_first=False`` is
    refused. Layer k > 0 reads the concatenated outputs [forward; reverse] of layer k-1; the
    reverse direction reads the sequence from t = T-1 down to 0 and its output at position t is
    stored at position t. Subclasses provide ``params(layer, reverse)`` and ``_sequence``.
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = True,
    ):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}"
            )
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not batch_first:
            raise ValueError("rnn_ref.torch modules are batch-first only: batch_first must be True")
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.num_layers, self.bidirectional = int(num_layers), bool(bidirectional)
        self.batch_first = True
        G = self.gates * hidden_size
        # Registration order is torch.nn's (layer, direction, ih/hh weight, ih/hh bias), which
        # reset_parameters follows: same seed, same weights.
        for layer in range(self.num_layers):
            D = input_size if layer == 0 else hidden_size * self.num_directions
            for reverse in self._directions():
                sfx = self._suffix(layer, reverse)
                setattr(self, "weight_ih" + sfx, nn.Parameter(torch.empty(G, D, **kw)))
                setattr(self, "weight_hh" + sfx, nn.Parameter(torch.empty(G, hidden_size, **kw)))
                if bias:
                    setattr(self, "bias_ih" + sfx, nn.Parameter(torch.empty(G, **kw)))
                    setattr(self, "bias_hh" + sfx, nn.Parameter(torch.empty(G, **kw)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _directions(self) -> tuple[bool, ...]:
        return (False, True) if self.bidirectional else (False,)

    def _suffix(self, layer: int, reverse: bool) -> str:
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers}), got {layer}")
        if reverse and not self.bidirectional:
            raise ValueError("reverse=True needs a bidirectional module")
        return f"_l{layer}" + ("_reverse" if reverse else "")

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as ``torch.nn``'s recurrent layers."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _weights(self, layer: int = 0, reverse: bool = False):
        """(weight_ih, weight_hh) of one layer and direction."""
        sfx = self._suffix(layer, reverse)
        return getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)

    def _biases(self, layer: int = 0, reverse: bool = False):
        """(bias_ih, bias_hh) of one layer and direction, zeros when ``bias=False``."""
        sfx = self._suffix(layer, reverse)
        if self.bias:
            return getattr(self, "bias_ih" + sfx), getattr(self, "bias_hh" + sfx)
        zeros = getattr(self, "weight_ih" + sfx).new_zeros(self.gates * self.hidden_size)
        return zeros, zeros

    def _check_input(self, x: torch.Tensor) -> int:
        """Check x is (N, T, D); return N."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must be (N, T, {self.input_size}), got shape {tuple(x.shape)}")
        return x.shape[0]

    def _state(self, name: str, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """An initial state as ``torch.nn`` takes it, (num_layers * dirs, N, H), zeros if None."""
        K, N, H = self.num_layers * self.num_directions, x.shape[0], self.hidden_size
        if s is None:
            return x.new_zeros(K, N, H)
        if s.shape != (K, N, H):
            raise ValueError(f"{name} must be ({K}, {N}, {H}), got shape {tuple(s.shape)}")
        return s

    def _sequence(self, x: torch.Tensor, state: tuple, params: dict):
        """One layer and direction over x (N, T, D_k) from ``state`` (a tuple of (N, H)
        tensors): returns hs (N, T, H) and the last state (a tuple like ``state``)."""
        raise NotImplementedError

    def _layers(self, x: torch.Tensor, states: tuple[torch.Tensor, ...]):
        """Run every layer and direction; ``states`` holds (num_layers * dirs, N, H) tensors (h,
        or h and c). Returns the top layer's output (N, T, dirs * H) and the final states, a
        tuple like ``states``."""
        finals: list[list[torch.Tensor]] = [[] for _ in states]
        inp = x
        for layer in range(self.num_layers):
            outs = []
            for reverse in self._directions():
                k = layer * self.num_directions + int(reverse)
                xs = inp.flip(1) if reverse else inp
                state = tuple(s[k] for s in states)
                hs, last = self._sequence(xs, state, self.params(layer, reverse))
                outs.append(hs.flip(1) if reverse else hs)
                for f, v in zip(finals, last, strict=True):
                    f.append(v)
            inp = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        return inp, tuple(torch.stack(f) for f in finals)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s
