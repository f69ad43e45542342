r"""The GRU in PyTorch: functional step and sequence, and a drop-in ``nn.Module``.

Same equations and symbols as :mod:`rnn_ref.numpy.gru` (gate blocks r, z, n; ``W_x`` (3H, D),
``W_h`` (3H, H), ``b_x`` (3H,), ``b_h`` (3H,)), batch-first:

.. math::

   r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \quad
   z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}), \\
   n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})), \quad
   h' = (1 - z) \odot n + z \odot h,

with ``reset="after"`` (PyTorch's placement, the default) or, with ``reset="before"``, Cho et
al. (2014)'s :math:`n = \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h) + b_{hn})`. Autograd
provides the backward pass; the code runs on whatever device its tensors are on.
"""

from __future__ import annotations

import torch

from ._module import Recurrent

__all__ = ["gru_step", "gru_forward", "GRU"]

RESETS = ("after", "before")


def _check_reset(reset) -> str:
    if reset not in RESETS:
        raise ValueError(
            f"reset must be 'after' (PyTorch) or 'before' (Cho et al. 2014), got {reset!r}"
        )
    return reset


def _cell(gx: torch.Tensor, h: torch.Tensor, params: dict, reset: str) -> torch.Tensor:
    """The recurrent part of a step, given the input projection gx = x @ W_x.T + b_x (N, 3H)."""
    H = h.shape[1]
    W_h, b_h = params["W_h"], params["b_h"]
    if reset == "after":
        gh = h @ W_h.T + b_h  # one fused (N, 3H) product
        r, z = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, dim=1)
        n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    else:  # Cho et al.: the n block's product must wait for r
        grz = h @ W_h[: 2 * H].T + b_h[: 2 * H]
        r, z = torch.sigmoid(gx[:, : 2 * H] + grz).chunk(2, dim=1)
        n = torch.tanh(gx[:, 2 * H :] + (r * h) @ W_h[2 * H :].T + b_h[2 * H :])
    return n + z * (h - n)  # = (1 - z) n + z h


def gru_step(x: torch.Tensor, h: torch.Tensor, params: dict, reset: str = "after") -> torch.Tensor:
    """One GRU step: x (N, D), h (N, H) -> h' (N, H); ``reset`` is "after" or "before"."""
    reset = _check_reset(reset)
    return _cell(x @ params["W_x"].T + params["b_x"], h, params, reset)


def gru_forward(
    x: torch.Tensor, h0: torch.Tensor, params: dict, reset: str = "after"
) -> torch.Tensor:
    """All hidden states for inputs x (N, T, D) from h0 (N, H): returns hs (N, T, H).

    The input projections of all steps are one matrix product; the loop only does the
    recurrent products, which must wait for the previous step.
    """
    reset = _check_reset(reset)
    if x.dim() != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    if h0.dim() != 2 or h0.shape[0] != x.shape[0]:
        raise ValueError(f"h0 must be (N, H) with N = {x.shape[0]}, got shape {tuple(h0.shape)}")
    if x.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    H = h0.shape[1]
    if params["W_h"].shape != (3 * H, H):
        raise ValueError(
            f"params['W_h'] must have shape (3H, H) = ({3 * H}, {H}), gate blocks r, z, n; "
            f"got {tuple(params['W_h'].shape)}"
        )
    gx = x @ params["W_x"].T + params["b_x"]
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = _cell(gx[:, t], h, params, reset)
        hs.append(h)
    return torch.stack(hs, dim=1)


class GRU(Recurrent):
    """A GRU whose parameters and ``state_dict`` keys are ``torch.nn.GRU``'s.

    ``weight_ih_l{k}`` is W_x (3H, D_k), ``weight_hh_l{k}`` is W_h (3H, H), ``bias_ih_l{k}`` is
    b_x and ``bias_hh_l{k}`` is b_h (3H,), gate blocks r, z, n; ``_reverse`` for the reverse
    direction. Either module loads the other's ``state_dict`` with ``strict=True``.
    ``reset="before"`` runs Cho et al.'s cell with the same parameters (``torch.nn.GRU`` has
    only ``"after"``).

    ``GRU(input_size, hidden_size, bias=True, reset="after", *, num_layers=1,
    bidirectional=False)``; ``forward(x, h0=None)`` takes x (N, T, D) (always batch-first) and
    h0 (L * dirs, N, H) like ``torch.nn.GRU(batch_first=True)``, and returns ``(out, h_n)`` with
    out (N, T, dirs * H) and h_n (L * dirs, N, H).
    """

    mode = "GRU"

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset: str = "after",
        device=None,
        dtype=None,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = True,
    ):
        self.reset = _check_reset(reset)
        super().__init__(
            input_size,
            hidden_size,
            bias,
            device=device,
            dtype=dtype,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
        )

    def params(self, layer: int = 0, reverse: bool = False) -> dict:
        """One layer and direction's parameters under the equations' names (zero biases when
        ``bias=False``)."""
        W_ih, W_hh = self._weights(layer, reverse)
        b_x, b_h = self._biases(layer, reverse)
        return {"W_x": W_ih, "W_h": W_hh, "b_x": b_x, "b_h": b_h}

    def _sequence(self, x, state, params):
        hs = gru_forward(x, state[0], params, reset=self.reset)
        return hs, (hs[:, -1],)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        self._check_input(x)
        out, (h_n,) = self._layers(x, (self._state("h0", h0, x),))
        return out, h_n

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset == "after" else f", reset={self.reset!r}")
