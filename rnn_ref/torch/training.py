r"""Training practice in PyTorch (chapter ch08_training): truncated BPTT in a training loop,
teacher forcing and free-running decoding, and variational dropout as a module.

Shapes are batch-first: inputs ``x`` (N, T, D), hidden states (N, T, H), logits (N, T, V),
integer targets (N, T). The code runs on whatever device its tensors are on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "train_epoch_tbptt",
    "teacher_forcing_decode",
    "greedy_decode",
    "VariationalDropout",
]


def _detach(h):
    """Cut the graph behind a state (a tensor, or an LSTM's ``(h, c)`` tuple); keep its value."""
    if h is None:
        return None
    if isinstance(h, tuple):
        return tuple(s.detach() for s in h)
    return h.detach()


def train_epoch_tbptt(model, head, x, targets, k, optimizer, max_norm, h0=None):
    r"""One pass over a long batch of sequences with truncated BPTT: one update per chunk of ``k``.

    For chunks ``x[:, 0:k], x[:, k:2k], ...`` (the last may be shorter): run ``model`` from the
    state the previous chunk ended in, ``loss_c = cross_entropy(head(out), targets chunk)`` (mean
    over the chunk's N * k_c steps), ``loss_c.backward()``, clip the gradients of ``model`` and
    ``head`` together by global norm (``torch.nn.utils.clip_grad_norm_``, skipped if ``max_norm``
    is None), ``optimizer.step()``, and **detach** the final state before the next chunk: its
    value is carried on (the network still sees the whole past), its gradient is cut (the
    backward pass of chunk c stops at the chunk's start, so memory and time per update grow with
    ``k``, not ``T``). Without the detach, the second ``backward`` would try to go through the
    first chunk's graph, already freed.

    Args:
        model: a batch-first recurrent module, called as ``out, h = model(x_chunk, h)``
            (``torch.nn.RNN/GRU/LSTM(batch_first=True)`` or ``rnn_ref.torch.RNN/GRU/LSTM``).
        head: maps ``out`` (N, k, H) to logits (N, k, V), e.g. ``torch.nn.Linear(H, V)``.
        x: inputs, (N, T, D).
        targets: target classes, integers, (N, T).
        k: chunk length, an integer >= 1 (k >= T: ordinary full BPTT, one update).
        optimizer: a ``torch.optim`` optimizer over the parameters of ``model`` and ``head``.
        max_norm: clipping threshold (> 0) for the global gradient norm, or None.
        h0: initial state as ``model`` takes it (default None: zeros).

    Returns:
        The mean loss over all N * T steps, a float: each chunk's loss (computed with the
        parameters current when the chunk ran) weighted by its length.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if x.dim() != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    N, T = x.shape[:2]
    if tuple(targets.shape) != (N, T):
        raise ValueError(f"targets must have shape {(N, T)}, got {tuple(targets.shape)}")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be positive or None, got {max_norm}")
    model.train()
    head.train()
    params = [p for m in (model, head) for p in m.parameters()]
    h = h0
    total = 0.0
    for start in range(0, T, k):
        sl = slice(start, min(start + k, T))
        optimizer.zero_grad()
        out, h = model(x[:, sl], h)
        logits = head(out)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[:, sl].reshape(-1))
        loss.backward()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        h = _detach(h)
        total += loss.item() * (sl.stop - sl.start)
    return total / T


def _cell_output(h):
    """The hidden state fed to the head: ``h`` itself, or ``h[0]`` of an LSTM's ``(h, c)``."""
    return h[0] if isinstance(h, tuple) else h


def teacher_forcing_decode(
    decoder_cell,
    head,
    embed,
    h0,
    targets,
    teacher_forcing_ratio,
    generator=None,
    start_token=0,
):
    r"""Run a decoder for ``T = targets.shape[1]`` steps, feeding gold or its own tokens.

    Step t reads the input token :math:`u_t`, updates the state and predicts token t:

    .. math::  h_t = \text{cell}(\text{embed}(u_t), h_{t-1}), \qquad
               \ell_t = \text{head}(h_t), \qquad \hat y_t = \arg\max \ell_t ,

    with :math:`u_0` = ``start_token`` and, for :math:`t \ge 1`, :math:`u_t = y_{t-1}` (the gold
    token: *teacher forcing*) with probability ``teacher_forcing_ratio``, else
    :math:`\hat y_{t-1}` (the model's own previous prediction: *free running*). The choice is
    made per sequence and per step, with ``torch.rand(N, generator=generator)`` at each step
    t >= 1 (no draw when the ratio is 0 or 1). Ratio 1 is plain teacher forcing (what the
    training loss usually sees), ratio 0 is greedy free-running decoding (what happens at test
    time), values in between are scheduled sampling (Bengio et al. 2015). The argmax is not
    differentiable: no gradient flows through a fed-back prediction.

    Args:
        decoder_cell: ``torch.nn.RNNCell``/``GRUCell``/``LSTMCell``-like, ``h = cell(e, h)``
            (for an LSTM cell the state is the tuple ``(h, c)``).
        head: maps the hidden state (N, H) to logits (N, V).
        embed: maps token ids (N,) to inputs (N, E), e.g. ``torch.nn.Embedding(V, E)``.
        h0: initial state (N, H), or ``(h0, c0)`` for an LSTM cell (e.g. an encoder's summary).
        targets: gold tokens, integers, (N, T).
        teacher_forcing_ratio: probability of feeding the gold token, in [0, 1].
        generator: a ``torch.Generator`` for the coin flips (needed only for 0 < ratio < 1).
        start_token: the token id fed at step 0.

    Returns:
        logits: (N, T, V), for a loss such as ``cross_entropy(logits.flatten(0, 1),
            targets.flatten())``.
        predictions: the greedy tokens :math:`\hat y_t`, (N, T), int64.
    """
    ratio = float(teacher_forcing_ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
    if targets.dim() != 2:
        raise ValueError(f"targets must be (N, T), got shape {tuple(targets.shape)}")
    N, T = targets.shape
    if T == 0:
        raise ValueError("targets has no time steps (T = 0)")
    inp = torch.full((N,), int(start_token), dtype=torch.long, device=targets.device)
    h = h0
    logits, preds = [], []
    for t in range(T):
        h = decoder_cell(embed(inp), h)
        step_logits = head(_cell_output(h))
        pred = step_logits.argmax(dim=-1)
        logits.append(step_logits)
        preds.append(pred)
        if ratio == 1.0:
            inp = targets[:, t]
        elif ratio == 0.0:
            inp = pred
        else:
            dev = targets.device if generator is None else generator.device
            coin = torch.rand(N, generator=generator, device=dev)
            inp = torch.where(coin.to(targets.device) < ratio, targets[:, t], pred)
    return torch.stack(logits, dim=1), torch.stack(preds, dim=1)


@torch.no_grad()
def greedy_decode(decoder_cell, head, embed, h0, T, start_token=0):
    """Free-running greedy decoding for ``T`` steps, no targets needed: predictions (N, T), int64.

    Each step feeds back the previous step's argmax; the same computation as
    :func:`teacher_forcing_decode` with ratio 0, without gradients.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    first = h0[0] if isinstance(h0, tuple) else h0
    dummy = torch.zeros(first.shape[0], T, dtype=torch.long, device=first.device)
    _, preds = teacher_forcing_decode(decoder_cell, head, embed, h0, dummy, 0.0, None, start_token)
    return preds


class VariationalDropout(nn.Module):
    r"""Dropout with one mask per sequence, shared by all time steps (Gal & Ghahramani 2016).

    For input ``x`` (N, T, F), in training mode:
    ``x * m[:, None, :]`` with :math:`m \in \{0, 1/(1-p)\}^{N \times F}`, each entry kept with
    probability :math:`1 - p`; the identity in eval mode (inverted dropout needs no rescaling
    at test time). ``torch.nn.Dropout`` on the same input would draw a fresh mask for every
    (n, t, f): the naive per-step version.

    Use it on the inputs of a recurrent layer and between stacked layers (on the sequence of
    hidden states). ``torch.nn.RNN/LSTM/GRU`` give no access to the state inside the loop, so a
    mask on ``h_{t-1}`` before ``W_hh`` needs a hand-written loop (see
    :func:`rnn_ref.numpy.training.rnn_forward_dropout`) or a mask on the weights themselves
    (DropConnect on ``W_hh``, as in the AWD-LSTM of Merity et al. 2018).

    Args:
        p: drop probability, in [0, 1).
        generator: optional ``torch.Generator`` for the masks (default: torch's global one).
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        p = float(p)
        if not (math.isfinite(p) and 0.0 <= p < 1.0):
            raise ValueError(f"p is a drop probability and must be in [0, 1), got {p}")
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"x must be (N, T, F), got shape {tuple(x.shape)}")
        if not self.training or self.p == 0.0:
            return x
        N, _, F_ = x.shape
        keep = torch.empty(N, 1, F_, dtype=x.dtype, device=x.device)
        keep.bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
