r"""The vanilla RNN in PyTorch: functional step and sequence, and a drop-in ``nn.Module``.

Same equation and symbols as :mod:`rnn_ref.numpy.rnn`:
:math:`h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)`, batch-first. Autograd provides the
backward pass; the code runs on whatever device its tensors are on.
"""

from __future__ import annotations

import torch

from ._module import Recurrent

__all__ = ["rnn_step", "rnn_forward", "RNN"]


def rnn_step(x: torch.Tensor, h_prev: torch.Tensor, params: dict) -> torch.Tensor:
    """``h = tanh(x @ W_xh.T + h_prev @ W_hh.T + b_h)``; x (N, D), h_prev (N, H) -> h (N, H)."""
    return torch.tanh(x @ params["W_xh"].T + h_prev @ params["W_hh"].T + params["b_h"])


def rnn_forward(x: torch.Tensor, h0: torch.Tensor, params: dict) -> torch.Tensor:
    """All hidden states for inputs x (N, T, D) from h0 (N, H): returns hs (N, T, H).

    The input projections of all steps are one matrix product; the loop only does the
    recurrent product, which must wait for the previous step.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    if h0.dim() != 2 or h0.shape[0] != x.shape[0]:
        raise ValueError(f"h0 must be (N, H) with N = {x.shape[0]}, got shape {tuple(h0.shape)}")
    if x.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    xw = x @ params["W_xh"].T + params["b_h"]
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(xw[:, t] + h @ params["W_hh"].T)
        hs.append(h)
    return torch.stack(hs, dim=1)


class RNN(Recurrent):
    """A tanh RNN whose parameters and ``state_dict`` keys are ``torch.nn.RNN``'s.

    ``weight_ih_l{k}`` is W_xh (H, D_k), ``weight_hh_l{k}`` is W_hh (H, H), and
    ``bias_ih_l{k} + bias_hh_l{k}`` is b_h (torch keeps two biases; only their sum matters);
    ``_reverse`` for the reverse direction. Either module loads the other's ``state_dict`` with
    ``strict=True``.

    ``RNN(input_size, hidden_size, bias=True, *, num_layers=1, bidirectional=False)``;
    ``forward(x, h0=None)`` takes x (N, T, D) (always batch-first) and h0 (L * dirs, N, H) like
    ``torch.nn.RNN(batch_first=True)``, and returns ``(out, h_n)`` with out (N, T, dirs * H)
    and h_n (L * dirs, N, H).
    """

    mode = "RNN_TANH"

    def params(self, layer: int = 0, reverse: bool = False) -> dict:
        """One layer and direction's parameters under the equations' names (b_h is the sum of
        torch's two biases)."""
        W_ih, W_hh = self._weights(layer, reverse)
        b_ih, b_hh = self._biases(layer, reverse)
        return {"W_xh": W_ih, "W_hh": W_hh, "b_h": b_ih + b_hh}

    def _sequence(self, x, state, params):
        hs = rnn_forward(x, state[0], params)
        return hs, (hs[:, -1],)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        self._check_input(x)
        out, (h_n,) = self._layers(x, (self._state("h0", h0, x),))
        return out, h_n
