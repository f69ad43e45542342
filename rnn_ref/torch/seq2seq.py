r"""Encoder-decoder with attention in PyTorch, for the toy date-translation task of ch09_seq2seq.

The equations are :mod:`rnn_ref.numpy.seq2seq`'s (same symbols, batch-first shapes, masks
(N, S) bool with True at real source positions):

- dot attention (Luong, unscaled) ``e_s = k_s . q``; additive attention (Bahdanau)
  ``e_s = v . tanh(W_q q + W_k k_s)``; masked softmax (masked weights exactly 0; a row with no
  real position raises ``ValueError``); context ``c = sum_s alpha_s k_s``;
- decoder step: ``e = E[y_prev]``, ``h = GRUCell(e, h_prev)``, ``c, alpha = attention(h, keys)``,
  ``logits = W_out [h; c] + b_out``.

Modules:

- :class:`Encoder`: embedding + one-layer bidirectional ``torch.nn.GRU`` run on a packed batch
  (so padding never enters the recurrence); the keys are the outputs of both directions,
  (N, S, 2H), zero at padded positions, and the final state is ``[h_fwd(last real); h_bwd(first)]``
  (N, 2H).
- :class:`AttentionDecoder`: embedding + ``torch.nn.GRUCell`` + attention + output layer;
  ``params()`` gives its parameters under the NumPy names, so
  :func:`rnn_ref.numpy.decoder_step` can run the same weights.
- :class:`Seq2Seq`: both, with decoder size ``2H`` so that the encoder's final state is the
  decoder's initial state (no bridge layer) and dot attention compares vectors of one size.

Functions: :func:`translate` (greedy or beam search, through the generic decoders of
:mod:`rnn_ref.numpy.seq2seq`), :func:`decoder_step_fn`, :func:`exact_match` and
:func:`train_seq2seq`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..numpy.seq2seq import beam_search, greedy_decode
from .gru import gru_step

__all__ = [
    "masked_softmax",
    "dot_attention",
    "additive_attention",
    "decoder_step",
    "Encoder",
    "AttentionDecoder",
    "Seq2Seq",
    "decoder_step_fn",
    "translate",
    "exact_match",
    "train_seq2seq",
]

ATTENTIONS = ("dot", "additive")


def _check_mask(mask, N: int, S: int, device) -> torch.Tensor:
    if mask is None:
        return torch.ones(N, S, dtype=torch.bool, device=device)
    if mask.shape != (N, S):
        raise ValueError(f"mask must have shape (N, S) = ({N}, {S}), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool (True = a real source position), got {mask.dtype}")
    empty = ~mask.any(dim=1)
    if bool(empty.any()):
        row = int(torch.nonzero(empty)[0, 0])
        raise ValueError(
            f"mask row {row} has no True entry: an example with no source position has nothing "
            "to attend to (the softmax over an empty set is undefined)"
        )
    return mask


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax of ``scores`` (N, S) over the positions where ``mask`` (N, S) is True; exactly 0
    elsewhere (a score of -inf there, so exp gives 0 and the gradient is 0)."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be (N, S), got shape {tuple(scores.shape)}")
    mask = _check_mask(mask, *scores.shape, scores.device)
    return torch.softmax(scores.masked_fill(~mask, -math.inf), dim=1)


def _context(weights: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    return torch.bmm(weights.unsqueeze(1), keys).squeeze(1)


def _check_qk(q, keys):
    if q.dim() != 2 or keys.dim() != 3 or q.shape[0] != keys.shape[0]:
        raise ValueError(
            f"q must be (N, H) and keys (N, S, H_k) with the same N, got {tuple(q.shape)} "
            f"and {tuple(keys.shape)}"
        )


def dot_attention(q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None):
    """Luong's dot attention, unscaled: q (N, H), keys (N, S, H) -> (context (N, H), weights
    (N, S)); ``e_s = k_s . q``."""
    _check_qk(q, keys)
    if q.shape[1] != keys.shape[2]:
        raise ValueError(
            f"dot attention needs q and the keys of one size: q has H = {q.shape[1]}, keys have "
            f"{keys.shape[2]}"
        )
    scores = torch.bmm(keys, q.unsqueeze(2)).squeeze(2)
    weights = masked_softmax(scores, mask)
    return _context(weights, keys), weights


def _additive(q, keys, keys_proj, params, mask):
    t = torch.tanh((q @ params["W_q"].T).unsqueeze(1) + keys_proj)  # (N, S, A)
    weights = masked_softmax(t @ params["v"], mask)
    return _context(weights, keys), weights


def additive_attention(
    q: torch.Tensor, keys: torch.Tensor, params: dict, mask: torch.Tensor | None = None
):
    """Bahdanau's additive attention: q (N, H_q), keys (N, S, H_k), params ``W_q`` (A, H_q),
    ``W_k`` (A, H_k), ``v`` (A,) -> (context (N, H_k), weights (N, S));
    ``e_s = v . tanh(W_q q + W_k k_s)``."""
    _check_qk(q, keys)
    return _additive(q, keys, keys @ params["W_k"].T, params, mask)


def _check_attention(attention) -> str:
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be 'dot' or 'additive', got {attention!r}")
    return attention


def decoder_step(y_prev, h_prev, keys, mask, params: dict, attention: str = "dot"):
    """One decoder step, functional, with the NumPy names (``E``, ``W_x``, ``W_h``, ``b_x``,
    ``b_h``, ``W_out``, ``b_out``, and ``W_q``, ``W_k``, ``v`` for additive attention).

    y_prev (N,) int64, h_prev (N, H), keys (N, S, H_k), mask (N, S) bool or None ->
    (logits (N, V), h (N, H), weights (N, S)). Same equations as
    :func:`rnn_ref.numpy.decoder_step`; the GRU is :func:`rnn_ref.torch.gru_step`.
    """
    attention = _check_attention(attention)
    h = gru_step(params["E"][y_prev], h_prev, params)
    if attention == "dot":
        context, weights = dot_attention(h, keys, mask)
    else:
        context, weights = additive_attention(h, keys, params, mask)
    logits = torch.cat([h, context], dim=1) @ params["W_out"].T + params["b_out"]
    return logits, h, weights


class Encoder(nn.Module):
    """Embedding + bidirectional ``torch.nn.GRU`` over a padded batch, packed by lengths.

    ``forward(src (N, S) int64, lengths (N,)) -> (keys (N, S, 2H), h (N, 2H), mask (N, S))``:
    ``keys[:, s] = [h_fwd_s; h_bwd_s]`` at real positions and 0 at padding; ``h`` is
    ``[h_fwd at the last real position; h_bwd at position 0]``, the final state of each
    direction; ``mask = arange(S) < lengths``.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_size: int, pad: int = 0):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad)
        self.rnn = nn.GRU(emb_dim, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, src: torch.Tensor, lengths):
        if src.dim() != 2:
            raise ValueError(f"src must be (N, S) token ids, got shape {tuple(src.shape)}")
        N, S = src.shape
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()  # packing wants them on CPU
        if lengths.shape != (N,) or bool((lengths < 1).any()) or bool((lengths > S).any()):
            raise ValueError(
                f"lengths must be (N,) = ({N},) with 1 <= length <= S = {S}, got {lengths.tolist()}"
            )
        packed = pack_padded_sequence(
            self.embedding(src), lengths, batch_first=True, enforce_sorted=False
        )
        out, h_n = self.rnn(packed)
        keys, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        mask = torch.arange(S, device=src.device) < lengths.to(src.device).unsqueeze(1)
        return keys, torch.cat([h_n[0], h_n[1]], dim=1), mask


class AttentionDecoder(nn.Module):
    """Embedding ``E`` (V, M) + ``torch.nn.GRUCell(M, H)`` + dot or additive attention over keys
    of size ``key_size`` + output layer ``W_out`` (V, H + key_size), ``b_out`` (V,).

    ``step(y_prev, h_prev, keys, mask) -> (logits, h, weights)`` is one step;
    ``forward(y_in (N, T), h0, keys, mask) -> (logits (N, T, V), weights (N, T, S))`` runs
    T steps with teacher forcing (the given ``y_in`` are fed, whatever the model predicts).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_size: int,
        key_size: int,
        attention: str = "dot",
        attn_size: int | None = None,
    ):
        super().__init__()
        self.attention = _check_attention(attention)
        if attention == "dot" and key_size != hidden_size:
            raise ValueError(
                f"dot attention needs key_size == hidden_size, got {key_size} and {hidden_size}"
            )
        self.hidden_size, self.key_size = hidden_size, key_size
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.cell = nn.GRUCell(emb_dim, hidden_size)
        if attention == "additive":
            A = attn_size or hidden_size
            self.W_q = nn.Parameter(torch.empty(A, hidden_size))
            self.W_k = nn.Parameter(torch.empty(A, key_size))
            self.v = nn.Parameter(torch.empty(A))
            for p, fan_in in ((self.W_q, hidden_size), (self.W_k, key_size), (self.v, A)):
                nn.init.uniform_(p, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        self.out = nn.Linear(hidden_size + key_size, vocab_size)

    def params(self) -> dict:
        """The parameters under the NumPy names (the tensors themselves, not copies)."""
        p = {
            "E": self.embedding.weight,
            "W_x": self.cell.weight_ih,
            "W_h": self.cell.weight_hh,
            "b_x": self.cell.bias_ih,
            "b_h": self.cell.bias_hh,
            "W_out": self.out.weight,
            "b_out": self.out.bias,
        }
        if self.attention == "additive":
            p.update(W_q=self.W_q, W_k=self.W_k, v=self.v)
        return p

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor | None:
        """``W_k k_s`` for every position (additive attention; None for dot): it does not
        depend on the step, so a sentence computes it once."""
        return keys @ self.W_k.T if self.attention == "additive" else None

    def _attend(self, h, keys, mask, keys_proj):
        if self.attention == "dot":
            return dot_attention(h, keys, mask)
        if keys_proj is None:
            keys_proj = self.project_keys(keys)
        return _additive(h, keys, keys_proj, {"W_q": self.W_q, "v": self.v}, mask)

    def step(self, y_prev, h_prev, keys, mask=None, keys_proj=None):
        """One step: y_prev (N,) int64, h_prev (N, H), keys (N, S, K), mask (N, S) ->
        (logits (N, V), h (N, H), weights (N, S))."""
        h = self.cell(self.embedding(y_prev), h_prev)
        context, weights = self._attend(h, keys, mask, keys_proj)
        return self.out(torch.cat([h, context], dim=1)), h, weights

    def forward(self, y_in, h0, keys, mask=None):
        emb = self.embedding(y_in)  # all T steps' embeddings at once
        keys_proj = self.project_keys(keys)
        h, hc, ws = h0, [], []
        for t in range(y_in.shape[1]):
            h = self.cell(emb[:, t], h)
            context, weights = self._attend(h, keys, mask, keys_proj)
            hc.append(torch.cat([h, context], dim=1))
            ws.append(weights)
        # The output layer does not feed back, so it is one product over all steps.
        return self.out(torch.stack(hc, dim=1)), torch.stack(ws, dim=1)


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder (``hidden_size`` per direction) + attention decoder of size
    ``2 * hidden_size``, one vocabulary for both sides.

    ``forward(src (N, S), src_lengths (N,), y_in (N, T)) -> logits (N, T, V)`` with teacher
    forcing: ``y_in = [<bos>, y_1, ..., y_{T-1}]`` and the loss compares ``logits[:, t]`` with
    ``y_{t+1}``. With ``return_attention=True`` also the weights (N, T, S).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 16,
        hidden_size: int = 32,
        attention: str = "dot",
        attn_size: int | None = None,
        pad: int = 0,
        bos: int = 1,
        eos: int = 2,
    ):
        super().__init__()
        self.pad, self.bos, self.eos = pad, bos, eos
        self.encoder = Encoder(vocab_size, emb_dim, hidden_size, pad=pad)
        H = 2 * hidden_size
        self.decoder = AttentionDecoder(vocab_size, emb_dim, H, H, attention, attn_size)

    @property
    def attention(self) -> str:
        return self.decoder.attention

    def forward(self, src, src_lengths, y_in, return_attention: bool = False):
        keys, h0, mask = self.encoder(src, src_lengths)
        logits, weights = self.decoder(y_in, h0, keys, mask)
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def greedy(self, src, src_lengths, max_len: int) -> torch.Tensor:
        """Batched greedy decoding: (N, max_len) int64 token ids (after ``<eos>``, anything)."""
        keys, h, mask = self.encoder(src, src_lengths)
        keys_proj = self.decoder.project_keys(keys)
        y = torch.full((src.shape[0],), self.bos, dtype=torch.int64, device=src.device)
        out = []
        for _ in range(max_len):
            logits, h, _ = self.decoder.step(y, h, keys, mask, keys_proj)
            y = logits.argmax(dim=1)
            out.append(y)
        return torch.stack(out, dim=1)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _src_ids(src, vocab) -> list[int]:
    ids = vocab.encode(src) if isinstance(src, str) else [int(i) for i in src]
    if not ids:
        raise ValueError("the source is empty: there is nothing to translate")
    return ids


@torch.no_grad()
def decoder_step_fn(model: Seq2Seq, src_ids):
    """``(step_fn, state)`` for :func:`rnn_ref.numpy.greedy_decode` / ``beam_search`` on one
    source sentence (a list of ids): the source is encoded once; ``state`` is the decoder's
    hidden state (1, H) and ``step_fn(token, h) -> (log_probs (V,) float64 numpy, h')``."""
    device = _device(model)
    src = torch.tensor([list(src_ids)], dtype=torch.int64, device=device)
    keys, h0, mask = model.encoder(src, [src.shape[1]])
    keys_proj = model.decoder.project_keys(keys)

    @torch.no_grad()
    def step_fn(token: int, h):
        y = torch.tensor([token], dtype=torch.int64, device=device)
        logits, h, _ = model.decoder.step(y, h, keys, mask, keys_proj)
        return torch.log_softmax(logits[0].double(), dim=0).cpu().numpy(), h

    return step_fn, h0


@torch.no_grad()
def translate(
    model: Seq2Seq,
    src_ids,
    vocab,
    max_len: int,
    beam_width: int = 1,
    length_penalty: float = 0.0,
    return_attention: bool = False,
):
    """Translate one source sentence.

    Args:
        model: a :class:`Seq2Seq` (switched to eval mode here).
        src_ids: the source as a list of ids (no ``<bos>``/``<eos>``), or a string to encode.
        vocab: the :class:`rnn_ref.datasets.CharVocab` (its ``bos``/``eos`` ids are used).
        max_len: the most tokens generated, ``<eos>`` included.
        beam_width: 1 for greedy decoding, more for beam search.
        length_penalty: passed to :func:`rnn_ref.numpy.beam_search`.
        return_attention: also return the attention weights of the chosen output, (T, S)
            numpy, T = its length with ``<eos>``, recomputed by one teacher-forced pass.

    Returns:
        the decoded string (``vocab.decode`` of the best hypothesis), and the weights if asked.
    """
    model.eval()
    ids = _src_ids(src_ids, vocab)
    step_fn, h0 = decoder_step_fn(model, ids)
    if beam_width == 1:
        tokens, _ = greedy_decode(step_fn, h0, vocab.bos, vocab.eos, max_len)
    else:
        hyps = beam_search(
            step_fn, h0, vocab.bos, vocab.eos, beam_width, max_len, length_penalty=length_penalty
        )
        tokens = hyps[0][0]
    text = vocab.decode(tokens)
    if not return_attention:
        return text
    device = _device(model)
    src = torch.tensor([ids], dtype=torch.int64, device=device)
    y_in = torch.tensor([[vocab.bos, *tokens[:-1]]], dtype=torch.int64, device=device)
    _, weights = model(src, [len(ids)], y_in, return_attention=True)
    return text, weights[0].cpu().numpy()


def _encode_pairs(pairs, vocab):
    src = [vocab.encode(s) for s, _ in pairs]
    tgt = [vocab.encode(t, add_bos=True, add_eos=True) for _, t in pairs]
    if any(len(s) == 0 for s in src):
        raise ValueError("a source string is empty")
    return src, tgt


def _pad(seqs, pad, device):
    S = max(len(s) for s in seqs)
    out = torch.full((len(seqs), S), pad, dtype=torch.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s)
    return out.to(device), torch.tensor([len(s) for s in seqs], dtype=torch.int64)


@torch.no_grad()
def exact_match(model: Seq2Seq, pairs, vocab, max_len: int | None = None, batch_size: int = 512):
    """The fraction of ``pairs`` whose greedy translation equals the target exactly.

    Batched greedy decoding (:meth:`Seq2Seq.greedy`); ``max_len`` defaults to the longest
    target + 1 (for ``<eos>``).
    """
    model.eval()
    if not pairs:
        raise ValueError("exact_match needs at least one pair")
    if max_len is None:
        max_len = max(len(t) for _, t in pairs) + 1
    device, hits = _device(model), 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        src, lengths = _pad([vocab.encode(s) for s, _ in chunk], vocab.pad, device)
        out = model.greedy(src, lengths, max_len).cpu()
        hits += sum(vocab.decode(row) == t for row, (_, t) in zip(out, chunk, strict=True))
    return hits / len(pairs)


def train_seq2seq(
    model: Seq2Seq,
    pairs,
    vocab,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device=None,
    clip: float = 1.0,
    threads: int | None = None,
) -> list[float]:
    """Train with teacher forcing: Adam, cross-entropy over the target tokens (``<eos>``
    included, padding ignored), gradients clipped to global norm ``clip``.

    Each step draws ``batch_size`` pairs uniformly with replacement from ``pairs`` (a
    ``numpy.random.default_rng(seed)`` draw, so the run is reproducible given the model's
    initial weights) and pads them to the batch's longest source and target.

    Args:
        model: a :class:`Seq2Seq`; moved to ``device`` (default: where it is) and trained in
            place.
        pairs: list of (source, target) strings, e.g. from :func:`rnn_ref.datasets.toy_dates`.
        vocab: the :class:`rnn_ref.datasets.CharVocab` covering both sides.
        steps, batch_size, lr: number of updates, pairs per update, Adam's learning rate.
        seed: seeds the batch draws.
        device: a ``torch.device`` or string, or None.
        clip: the largest global gradient norm (``None`` or 0: no clipping).
        threads: if given, ``torch.set_num_threads(threads)`` during training (restored
            after). This model's matrices are tiny, so one thread is fastest on a CPU: more
            threads only wait for each other, badly so on a busy machine (measured: 10 times
            slower with 2 threads than with 1 while other processes used the cores).

    Returns:
        the loss of every step (mean cross-entropy per target token, nats), a list of floats.
    """
    if not pairs:
        raise ValueError("train_seq2seq needs at least one pair")
    if steps < 0 or batch_size < 1:
        raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    if device is not None:
        model.to(device)
    device = _device(model)
    src_all, tgt_all = _encode_pairs(pairs, vocab)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(model, src_all, tgt_all, vocab, steps, batch_size, lr, seed, device, clip)
    finally:
        torch.set_num_threads(old_threads)


def _train(model, src_all, tgt_all, vocab, steps, batch_size, lr, seed, device, clip):
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history = []
    for _ in range(steps):
        idx = rng.integers(0, len(src_all), size=batch_size)
        src, lengths = _pad([src_all[i] for i in idx], vocab.pad, device)
        tgt, _ = _pad([tgt_all[i] for i in idx], vocab.pad, device)
        logits = model(src, lengths, tgt[:, :-1])
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=vocab.pad
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        history.append(loss.item())
    return history
