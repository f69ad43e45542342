r"""An image captioner (chapter ch16_multimodal): a strip of handwritten digits in, its words out
("three one four"), by a convolutional encoder over the columns and a GRU decoder with attention.

**The task.** The strips are chapter 15's (:func:`rnn_ref.numpy.compose_digit_strings`, glyphs
split by source image with :func:`rnn_ref.numpy.split_glyphs`): ``strips`` (N, 8, W) zero-padded
on the right, real widths ``widths`` (N,), digits ``targets`` (N, S) padded with -1 after
``target_lengths`` (N,). The caption is the words of the digits
(:func:`rnn_ref.numpy.digits_to_words`). Tokens: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2
and the word of digit d = d + 3 (:data:`CAPTION_TOKENS`), V = 13.

**Encoder** (:class:`ColumnEncoder`). Chapter 15's CRNN front end (it *is* a
:class:`rnn_ref.torch.CRNN` subclass, reusing its masked convolutions): two 3x3 convolutions
with ReLU and height pooling, the padding columns zeroed after each, the height folded into the
features: one vector ``z_s`` per pair of columns, s = 0..W'-1 with ``W'_n = W_n // 2``. Then
either a bidirectional GRU over the packed columns (``rnn=True``: ``k_s = [h_fwd_s; h_bwd_s]``)
or a per-column projection ``k_s = tanh(W_z z_s + b_z)``. The keys ``k`` (N, W', K) are zero at
padded columns and ``mask`` (N, W') is True at real ones.

**Decoder** (chapter 9's :class:`rnn_ref.torch.AttentionDecoder`, reused as is). Initial state
from the mean key (Xu et al. 2015): ``h_0 = tanh(W_init mean_{s < W'_n} k_s + b_init)``; then for
t = 1..T

.. math::
    e_t = E[y_{t-1}],\quad h_t = \mathrm{GRU}(e_t, h_{t-1}),\quad
    \alpha_{t,s} = \mathrm{softmax}_{s:\,\mathrm{mask}_s}(\mathrm{score}(h_t, k_s)),\quad
    c_t = \sum_s \alpha_{t,s} k_s,\quad z_t = W_{out} [h_t; c_t] + b_{out},

with ``score`` dot (``k_s . h_t``, needs K = H) or additive (``v . tanh(W_q h_t + W_k k_s)``),
the functions of :mod:`rnn_ref.torch.seq2seq`. The masked softmax gives padded columns weight
exactly 0, so (with the masked encoder) the captions do not depend on the padding (tested).

**Training** (:func:`train_captioner`): teacher forcing, ``y_in = [<bos>, w_1..w_S]``,
targets ``[w_1..w_S, <eos>]``, mean cross-entropy per token (padding ignored), Adam, gradient
clipping, the weights of the epoch with the best validation exact match kept.

**Decoding.** ``<pad>`` and ``<bos>`` are never targets, so they are excluded (log-probability
-inf) when decoding. Greedy decoding is batched in torch (:meth:`ImageCaptioner.greedy`); beam
search runs chapter 9's :func:`rnn_ref.numpy.beam_search` one strip at a time through
:func:`captioner_step_fn` (with ``beam_width=1`` it is the greedy decoder: tested).
:func:`caption_strips` returns digit lists, :func:`caption_scores` the exact match and the word
error rate (:func:`rnn_ref.numpy.word_error_rate`), :func:`attention_maps` the weights
(T_out, W'_n) of a caption, ``<eos>`` step included.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..numpy.multimodal import DIGIT_WORDS, digits_to_words, word_error_rate
from ..numpy.seq2seq import beam_search
from .pytorch import length_mask, run_packed
from .seq2seq import AttentionDecoder
from .vision import (
    CRNN,
    _check_epochs,
    _check_strips,
    _check_targets,
    _progress,
    _target_lists,
)

__all__ = [
    "CAPTION_TOKENS",
    "ColumnEncoder",
    "ImageCaptioner",
    "caption_tokens",
    "tokens_to_digits",
    "train_captioner",
    "captioner_step_fn",
    "caption_strips",
    "caption_scores",
    "attention_maps",
]

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3  # the word of digit d is token d + OFFSET
CAPTION_TOKENS = ("<pad>", "<bos>", "<eos>", *DIGIT_WORDS)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class ColumnEncoder(CRNN):
    """The CRNN's masked convolutions, then a BiGRU over the columns (or a projection): keys.

    Args:
        height: the strips' height (8), divisible by 4.
        channels: (c1, c2) of the two convolutions.
        key_size: K, the size of a key (with ``rnn=True``: K / 2 units per GRU direction, so K
            must be even).
        width_pool: 1 or 2 columns per key (``W' = W // width_pool``).
        rnn: a bidirectional GRU over the columns (True) or ``tanh(W_z z_s + b_z)`` per column.

    ``forward(strips (N, H_img, W), widths (N,)) -> (keys (N, W', K), mask (N, W') bool)``;
    keys are zero at padded columns.
    """

    def __init__(self, height=8, channels=(32, 64), key_size=64, width_pool=2, rnn=True):
        if rnn and key_size % 2:
            raise ValueError(
                f"key_size must be even with rnn=True (two directions), got {key_size}"
            )
        super().__init__(height, channels, key_size // 2 or 1, 2, width_pool)
        del self.out  # the CRNN's per-frame classifier: a captioner attends instead
        n_feat = channels[1] * (height // 4)
        self.key_size = key_size
        if rnn:
            self.rnn = nn.GRU(n_feat, key_size // 2, batch_first=True, bidirectional=True)
        else:
            del self.rnn
            self.rnn = None
            self.proj = nn.Linear(n_feat, key_size)

    def forward(self, strips, widths) -> tuple[Tensor, Tensor]:
        z, lengths = self.features(strips, widths)  # (N, W', c2 * H_img / 4), masked
        mask = length_mask(lengths, z.shape[1]).to(z.device)
        if self.rnn is not None:
            keys, _ = run_packed(self.rnn, z, lengths)  # zeros past each strip's length
        else:
            keys = torch.tanh(self.proj(z)) * mask[..., None]
        return keys, mask


class ImageCaptioner(nn.Module):
    """:class:`ColumnEncoder` + chapter 9's :class:`rnn_ref.torch.AttentionDecoder`.

    Args:
        height, channels, width_pool, encoder_rnn: the encoder's (``encoder_rnn`` is its
            ``rnn``).
        key_size: K; hidden_size: H of the decoder's GRU; emb_dim: M of its word embedding.
        attention: ``"additive"`` (Bahdanau) or ``"dot"`` (Luong, needs K = H).

    ``forward(strips, widths, y_in (N, T), return_attention=False) -> logits (N, T, V)`` (and
    the weights (N, T, W')), teacher forced: ``y_in = [<bos>, w_1, ..., w_{T-1}]``.
    """

    def __init__(
        self,
        height: int = 8,
        channels=(32, 64),
        key_size: int = 64,
        hidden_size: int = 64,
        emb_dim: int = 16,
        attention: str = "additive",
        width_pool: int = 2,
        encoder_rnn: bool = True,
    ):
        super().__init__()
        self.encoder = ColumnEncoder(height, channels, key_size, width_pool, encoder_rnn)
        self.bridge = nn.Linear(key_size, hidden_size)  # W_init, b_init
        self.decoder = AttentionDecoder(
            len(CAPTION_TOKENS), emb_dim, hidden_size, key_size, attention
        )

    def encode(self, strips, widths) -> tuple[Tensor, Tensor, Tensor]:
        """(keys (N, W', K), mask (N, W'), h_0 (N, H)); ``h_0 = tanh(W_init mean_s k_s + b_init)``
        with the mean over each strip's real columns."""
        keys, mask = self.encoder(strips, widths)
        mean = keys.sum(1) / mask.sum(1, keepdim=True)  # keys are zero at the padding
        return keys, mask, torch.tanh(self.bridge(mean))

    def forward(self, strips, widths, y_in, return_attention: bool = False):
        keys, mask, h0 = self.encode(strips, widths)
        y_in = torch.as_tensor(y_in, dtype=torch.int64, device=keys.device)
        if y_in.dim() != 2 or y_in.shape[0] != keys.shape[0]:
            raise ValueError(
                f"y_in must be (N, T) = ({keys.shape[0]}, T) token ids, got {tuple(y_in.shape)}"
            )
        logits, weights = self.decoder(y_in, h0, keys, mask)
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def greedy(self, strips, widths, max_len: int) -> tuple[Tensor, Tensor]:
        """Batched greedy decoding: (tokens (N, max_len) int64, weights (N, max_len, W')); after
        a row's ``<eos>`` the tokens are anything. ``<pad>``/``<bos>`` are never chosen."""
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
        keys, mask, h = self.encode(strips, widths)
        keys_proj = self.decoder.project_keys(keys)
        y = torch.full((keys.shape[0],), BOS, dtype=torch.int64, device=keys.device)
        out, ws = [], []
        for _ in range(max_len):
            logits, h, w = self.decoder.step(y, h, keys, mask, keys_proj)
            y = _allowed(logits).argmax(dim=1)
            out.append(y)
            ws.append(w)
        return torch.stack(out, 1), torch.stack(ws, 1)


def _allowed(logits: Tensor) -> Tensor:
    """The logits with ``<pad>`` and ``<bos>`` at -inf: never an output."""
    return logits.index_fill(-1, torch.tensor([PAD, BOS], device=logits.device), -math.inf)


def caption_tokens(targets, target_lengths) -> tuple[np.ndarray, np.ndarray]:
    """Digits (N, S) padded after ``target_lengths`` (N,) -> tokens ``y`` (N, S_max + 2) int64:
    ``[<bos>, d_1 + 3, ..., d_L + 3, <eos>, <pad>...]`` with S_max = max length, and the lengths
    L + 2 (N,)."""
    tl_arr = np.asarray(target_lengths)
    t, tl = _check_targets(targets, target_lengths, tl_arr.shape[0] if tl_arr.ndim else -1)
    t, tl = t.numpy(), tl.numpy()
    real = np.arange(t.shape[1])[None, :] < tl[:, None]
    bad = real & ((t < 0) | (t > 9))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"targets[{i}, {k}] = {t[i, k]}: digits must be 0..9")
    S = int(tl.max()) if tl.size else 0
    y = np.full((len(tl), S + 2), PAD, dtype=np.int64)
    y[:, 0] = BOS
    for i, L in enumerate(tl):
        y[i, 1 : L + 1] = t[i, :L] + OFFSET
        y[i, L + 1] = EOS
    return y, tl + 2


def tokens_to_digits(tokens) -> list[int]:
    """The digits of a token sequence up to its first ``<eos>`` (or its end); ``<bos>``/``<pad>``
    (never produced by the decoders here) raise ``ValueError``."""
    out = []
    for tok in np.asarray(tokens).tolist():
        if tok == EOS:
            break
        if not OFFSET <= tok < len(CAPTION_TOKENS):
            raise ValueError(
                f"token {tok} ({CAPTION_TOKENS[tok] if 0 <= tok < 3 else '?'}) is not a word"
            )
        out.append(tok - OFFSET)
    return out


def _strip_batches(strips, widths, device, batch_size):
    x, w = _check_strips(strips, widths, device)
    for i in range(0, len(x), batch_size):
        wb = w[i : i + batch_size]
        yield i, x[i : i + batch_size, :, : int(wb.max())], wb


def train_captioner(
    model: ImageCaptioner,
    strips,
    widths,
    targets,
    target_lengths,
    epochs: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    clip: float | None = 5.0,
    seed: int = 0,
    val=None,
    patience: int | None = None,
    halve_lr_after: int | None = None,
    progress: bool | None = None,
) -> dict:
    """Teacher-forced training: Adam on the mean cross-entropy per target token (``<eos>``
    included, padding ignored), gradients clipped to global norm ``clip``.

    Args as :func:`rnn_ref.torch.train_crnn`: strips (N, 8, W), widths (N,), targets (N, S)
    digits padded after target_lengths (N,); mini-batches in a ``numpy.random.default_rng(seed)``
    order, cropped to the widest strip of the batch; ``val = (strips, widths, targets,
    target_lengths)``: greedy exact match after each epoch, the best epoch's weights put back;
    ``patience`` and ``halve_lr_after`` count epochs without a better validation exact match.

    Returns a dict: ``loss`` (mean per token, per epoch, nats), ``val_exact``, ``best_epoch``
    (1-based or None), ``seconds``, ``cpu_seconds`` (``time.process_time``).
    """
    _check_epochs(epochs, batch_size)
    device = _device(model)
    x, w = _check_strips(strips, widths, device)
    y, _ = caption_tokens(targets, target_lengths)
    if len(y) != len(x):
        raise ValueError(f"targets must have {len(x)} rows like strips, got {len(y)}")
    y = torch.as_tensor(y, device=device)
    if val is not None:
        val_refs = _target_lists(val[2], val[3])
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"loss": [], "val_exact": [], "best_epoch": None, "seconds": 0.0, "cpu_seconds": 0.0}
    best, best_state, since = -1.0, None, 0
    t0, c0 = time.perf_counter(), time.process_time()
    bar = _progress(epochs * math.ceil(len(x) / batch_size), progress, "captioner")
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(len(x))
            total, count = 0.0, 0
            for i in range(0, len(x), batch_size):
                idx = torch.as_tensor(order[i : i + batch_size])
                wb, yb = w[idx], y[idx.to(device)]
                yb = yb[:, : int((yb != PAD).sum(1).max())]  # crop to the longest caption
                logits = model(x[idx.to(device), :, : int(wb.max())], wb, yb[:, :-1])
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), yb[:, 1:].reshape(-1), ignore_index=PAD
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                n_tok = int((yb[:, 1:] != PAD).sum())
                total, count = total + loss.item() * n_tok, count + n_tok
                bar.update()
            hist["loss"].append(total / count)
            if val is not None:
                acc = caption_scores(val_refs, caption_strips(model, val[0], val[1]))["exact"]
                hist["val_exact"].append(acc)
                if acc > best:
                    best, hist["best_epoch"], since = acc, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since += 1
                    if halve_lr_after and since % halve_lr_after == 0:
                        for group in opt.param_groups:
                            group["lr"] /= 2
                if patience is not None and since >= patience:
                    break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    return hist


@torch.no_grad()
def captioner_step_fn(model: ImageCaptioner, strip, width):
    """``(step_fn, h_0)`` for :func:`rnn_ref.numpy.greedy_decode` / ``beam_search`` on one strip
    (8, W) of real width ``width``: the strip is encoded once; ``step_fn(token, h) ->
    (log_probs (V,) float64 NumPy, h')`` with ``<pad>``/``<bos>`` at -inf."""
    was = model.training
    model.eval()
    x, w = _check_strips(
        np.asarray(strip)[None] if not isinstance(strip, Tensor) else strip[None],
        [int(width)],
        _device(model),
    )
    keys, mask, h0 = model.encode(x[:, :, : int(w[0])], w)
    keys_proj = model.decoder.project_keys(keys)
    model.train(was)

    @torch.no_grad()
    def step_fn(token: int, h):
        y = torch.tensor([token], dtype=torch.int64, device=keys.device)
        logits, h, _ = model.decoder.step(y, h, keys, mask, keys_proj)
        return torch.log_softmax(_allowed(logits[0]).double(), 0).cpu().numpy(), h

    return step_fn, h0


@torch.no_grad()
def caption_strips(
    model: ImageCaptioner,
    strips,
    widths,
    method: str = "greedy",
    beam_width: int = 4,
    max_len: int = 8,
    length_penalty: float = 0.0,
    batch_size: int = 512,
) -> list[list[int]]:
    """Read each strip: a list of N digit lists (the caption's words as digits).

    ``method="greedy"``: :meth:`ImageCaptioner.greedy`, batched; ``"beam"``:
    :func:`rnn_ref.numpy.beam_search` with ``beam_width`` and ``length_penalty``, one strip at
    a time. ``max_len`` counts ``<eos>``: a caption without ``<eos>`` by then is cut there.
    """
    if method not in ("greedy", "beam"):
        raise ValueError(f"method must be 'greedy' or 'beam', got {method!r}")
    was = model.training
    model.eval()
    device, out = _device(model), []
    try:
        if method == "greedy":
            for _, xb, wb in _strip_batches(strips, widths, device, batch_size):
                tokens, _ = model.greedy(xb, wb, max_len)
                out.extend(tokens_to_digits(row) for row in tokens.cpu().numpy())
        else:
            x, w = _check_strips(strips, widths, device)
            for n in range(len(x)):
                step_fn, h0 = captioner_step_fn(model, x[n], w[n])
                hyps = beam_search(step_fn, h0, BOS, EOS, beam_width, max_len, length_penalty)
                out.append(tokens_to_digits(hyps[0][0]))
    finally:
        model.train(was)
    return out


def caption_scores(refs, hyps) -> dict:
    """``{"exact": fraction of captions exactly right, "wer": word error rate}`` of digit lists
    ``hyps`` against ``refs``; the WER is :func:`rnn_ref.numpy.word_error_rate` on the words
    (:func:`rnn_ref.numpy.digits_to_words`): word edit distances summed over the corpus, divided
    by the number of reference words."""
    refs, hyps = [list(r) for r in refs], [list(h) for h in hyps]
    if len(refs) != len(hyps) or not refs:
        raise ValueError(
            f"refs and hyps must be non-empty and equally long, got {len(refs)} and {len(hyps)}"
        )
    return {
        "exact": float(np.mean([r == h for r, h in zip(refs, hyps, strict=True)])),
        "wer": word_error_rate(
            [digits_to_words(r) for r in refs], [digits_to_words(h) for h in hyps]
        ),
    }


@torch.no_grad()
def attention_maps(
    model: ImageCaptioner, strips, widths, captions, batch_size: int = 512
) -> list[np.ndarray]:
    """The attention weights of each caption (a digit list, e.g. the decoded one), recomputed by
    a teacher-forced pass over padded batches (the padding changes nothing): a list of float64
    arrays (T_out, W'_n), T_out = len(caption) + 1 (the ``<eos>`` step is the last row), W'_n
    the strip's number of keys. Every row sums to 1."""
    x, w = _check_strips(strips, widths, _device(model))
    captions = [[int(d) for d in c] for c in captions]
    if len(captions) != len(x):
        raise ValueError(f"captions must be {len(x)} digit lists, got {len(captions)}")
    n_keys = model.encoder.output_lengths(w).tolist()
    was = model.training
    model.eval()
    out = []
    try:
        for i, xb, wb in _strip_batches(x, w, x.device, batch_size):
            caps = captions[i : i + len(wb)]
            S = max(1, max(len(c) for c in caps))
            digits = np.array([c + [-1] * (S - len(c)) for c in caps], dtype=np.int64)
            y, _ = caption_tokens(digits, [len(c) for c in caps])
            _, weights = model(xb, wb, y[:, :-1], return_attention=True)
            weights = weights.double().cpu().numpy()
            out.extend(weights[k, : len(c) + 1, : n_keys[i + k]] for k, c in enumerate(caps))
    finally:
        model.train(was)
    return out
