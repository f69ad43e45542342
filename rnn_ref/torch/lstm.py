r"""The LSTM in PyTorch: functional step and sequence, and a drop-in ``nn.Module``.

Same equations and symbols as :mod:`rnn_ref.numpy.lstm`, gate blocks in PyTorch's order
i, f, g, o:

.. math::

   (a_i, a_f, a_g, a_o) = W_x x_t + W_h h_{t-1} + b, \quad
   i, f, o = \sigma(a_i, a_f, a_o), \quad g = \tanh(a_g), \\
   c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)

batch-first. Autograd provides the backward pass; the code runs on whatever device its tensors
are on.
"""

from __future__ import annotations

import torch

from ._module import Recurrent

__all__ = ["lstm_step", "lstm_forward", "LSTM"]


def _cell(a: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From the pre-activations a (N, 4H) and c_prev (N, H), the new (h, c)."""
    a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c_prev + i * g
    return o * torch.tanh(c), c


def lstm_step(x: torch.Tensor, state, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: x (N, D), state ``(h_prev, c_prev)`` each (N, H) -> ``(h, c)`` each (N, H).

    ``params``: ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,), gate blocks i, f, g, o.
    """
    h_prev, c_prev = state
    return _cell(x @ params["W_x"].T + h_prev @ params["W_h"].T + params["b"], c_prev)


def _scan(x: torch.Tensor, state, params: dict):
    """All hidden states and the last (h, c)."""
    if x.dim() != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError("state must be a pair (h0, c0) of tensors")
    h, c = state
    for name, s in (("h0", h), ("c0", c)):
        if s.dim() != 2 or s.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name} must be (N, H) with N = {x.shape[0]}, got shape {tuple(s.shape)}"
            )
    if h.shape != c.shape:
        raise ValueError(
            f"h0 and c0 must have the same shape, got {tuple(h.shape)} and {tuple(c.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    # The input projections of all steps are one matrix product; the loop does the rest.
    xw = x @ params["W_x"].T + params["b"]
    W_hT = params["W_h"].T
    hs = []
    for t in range(x.shape[1]):
        h, c = _cell(xw[:, t] + h @ W_hT, c)
        hs.append(h)
    return torch.stack(hs, dim=1), (h, c)


def lstm_forward(x: torch.Tensor, state, params: dict) -> torch.Tensor:
    """All hidden states for inputs x (N, T, D) from ``(h0, c0)`` (each (N, H)): hs (N, T, H)."""
    return _scan(x, state, params)[0]


class LSTM(Recurrent):
    """An LSTM whose parameters and ``state_dict`` keys are ``torch.nn.LSTM``'s.

    ``weight_ih_l{k}`` is W_x (4H, D_k), ``weight_hh_l{k}`` is W_h (4H, H), and
    ``bias_ih_l{k} + bias_hh_l{k}`` is b (4H,) (torch keeps two biases; only their sum matters);
    rows in gate order i, f, g, o; ``_reverse`` for the reverse direction. Either module loads
    the other's ``state_dict`` with ``strict=True``.

    ``LSTM(input_size, hidden_size, bias=True, *, num_layers=1, bidirectional=False)``;
    ``forward(x, hx=None)`` takes x (N, T, D) (always batch-first) and ``hx = (h0, c0)``, each
    (L * dirs, N, H), like ``torch.nn.LSTM(batch_first=True)``, and returns
    ``(out, (h_n, c_n))`` with out (N, T, dirs * H), h_n and c_n (L * dirs, N, H).
    """

    mode = "LSTM"
    gates = 4

    def params(self, layer: int = 0, reverse: bool = False) -> dict:
        """One layer and direction's parameters under the equations' names (b is the sum of
        torch's two biases)."""
        W_ih, W_hh = self._weights(layer, reverse)
        b_ih, b_hh = self._biases(layer, reverse)
        return {"W_x": W_ih, "W_h": W_hh, "b": b_ih + b_hh}

    def _sequence(self, x, state, params):
        return _scan(x, state, params)

    def forward(self, x: torch.Tensor, hx=None):
        self._check_input(x)
        if hx is None:
            hx = (None, None)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("hx must be a pair (h0, c0) of tensors, each (L * dirs, N, H)")
        states = (self._state("h0", hx[0], x), self._state("c0", hx[1], x))
        out, (h_n, c_n) = self._layers(x, states)
        return out, (h_n, c_n)
