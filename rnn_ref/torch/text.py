r"""Character language models and sequence classifiers in PyTorch (chapter ch12_text).

**Language model.** A text is a stream of ids :math:`x_0, \dots, x_{L-1}` (one per character).
:class:`CharLM` reads it one character at a time and gives, at every position, the logits of
the next character:

.. math::  e_t = E[x_t], \quad (h_t, s_t) = \mathrm{RNN}(e_t, (h_{t-1}, s_{t-1})), \quad
           p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(W_{out} h_t + b_{out}),

with an LSTM or a GRU as the RNN. It is trained with **truncated BPTT over contiguous
streams** (:class:`StreamBatcher`, :func:`train_char_lm`): the training text is cut into N
parallel streams, each read left to right in chunks of T characters; the state at the end of a
chunk is the initial state of the next one (carried, so the model sees the whole past), but
detached (the gradient stops at the chunk's start). It is measured in **bits per character**
(:func:`evaluate_bpc`), the mean of :math:`-\log_2 p(x_{t+1} \mid x_{\le t})` over the held-out
text, and perplexity :math:`2^{\mathrm{bpc}}`; it writes text with :func:`generate`
(temperature and top-k sampling, seeded).

**Classifier.** :class:`CharClassifier` maps a padded batch of id sequences (N, T) and their
lengths (N,) to class logits (N, C): an embedding whose ``padding_idx`` row is zero and gets no
gradient, a GRU or LSTM run over the *packed* batch (each sequence stops at its own length, so
the padding cannot change the result), then a pooling of the states (the state at the last real
step, the mean over the real steps, or their max), then a linear layer.
:func:`train_classifier` trains it with Adam and keeps the weights of the best validation epoch.

Shapes are batch-first; everything runs on the device of the model; training is float32 and
seeded.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pytorch import length_mask, run_packed

__all__ = [
    "CharLM",
    "StreamBatcher",
    "tbptt_step",
    "train_char_lm",
    "evaluate_bpc",
    "generate",
    "CharClassifier",
    "train_classifier",
    "predict_proba",
    "detach_state",
]

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def _cell(cell: str):
    key = str(cell).lower()
    if key not in _CELLS:
        raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
    return key, _CELLS[key]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def detach_state(state):
    """The same state with its graph cut: a tensor, an LSTM's ``(h, c)`` pair, or None."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _as_ids(ids) -> Tensor:
    """A 1-D int64 tensor (on the CPU) of a list, array or tensor of ids."""
    if not isinstance(ids, Tensor):
        ids = np.asarray(ids)
        if ids.size == 0:
            ids = ids.astype(np.int64)
    t = torch.as_tensor(ids)
    if t.dim() != 1:
        raise ValueError(f"ids must be 1-D (L,), got shape {tuple(t.shape)}")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"ids must be integers, got {t.dtype}")
    return t.to(torch.int64).cpu()


# ---------------------------------------------------------------------------------------------
# The language model
# ---------------------------------------------------------------------------------------------


class CharLM(nn.Module):
    """Character language model: embedding, LSTM or GRU, linear read-out.

    Args:
        vocab_size: V, the number of ids.
        emb_dim: M, the embedding size.
        hidden_size: H.
        num_layers: stacked recurrent layers.
        cell: ``"lstm"`` or ``"gru"`` (``torch.nn.LSTM`` / ``torch.nn.GRU``, batch-first).
        dropout: dropout between stacked layers and before the read-out (0: none).

    ``forward(ids, state=None) -> (logits, state)``: ids (N, T) int64, logits (N, T, V) with
    ``logits[n, t]`` the scores of the character after ``ids[n, t]``; ``state`` as
    ``torch.nn.LSTM`` (a pair ``(h, c)``, each (num_layers, N, H)) or ``torch.nn.GRU`` (h,
    (num_layers, N, H)) takes and returns it; None means zeros.
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
    ):
        super().__init__()
        if vocab_size < 1 or emb_dim < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError("vocab_size, emb_dim, hidden_size and num_layers must be >= 1")
        self.cell, rnn_cls = _cell(cell)
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.rnn = rnn_cls(
            emb_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: Tensor, state=None):
        if ids.dim() != 2:
            raise ValueError(f"ids must be (N, T), got shape {tuple(ids.shape)}")
        h, state = self.rnn(self.embedding(ids), state)
        return self.out(self.drop(h)), state


class StreamBatcher:
    """Chunks of N parallel contiguous streams, for truncated BPTT.

    The id stream ``ids`` (L,) is cut into N = ``batch_size`` streams of
    S = (L - 1 - offset) // N consecutive ids each (stream n starts at offset + n S), inputs
    ``x[n] = ids[offset + nS : offset + (n+1)S]`` and targets shifted by one,
    ``y[n] = ids[offset + nS + 1 : offset + (n+1)S + 1]``. Iterating yields ``(x, y)`` chunks
    of shape (N, T) with T = ``seq_len`` (the last chunk may be shorter), in order along the
    streams: row n of chunk c + 1 continues row n of chunk c, so the state at the end of one
    chunk is the right initial state of the next. The (up to N) ids left over at the end are
    not used.

    ``offset`` (0 <= offset < seq_len) shifts where the chunks start, so that successive epochs
    cut the text at different places.
    """

    def __init__(self, ids, batch_size: int, seq_len: int, offset: int = 0, device=None):
        ids = _as_ids(ids)
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"need batch_size >= 1 and seq_len >= 1, got {batch_size}, {seq_len}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        S = (ids.numel() - 1 - offset) // batch_size
        if S < 1:
            raise ValueError(
                f"{ids.numel()} ids are too few for {batch_size} streams (offset {offset})"
            )
        n = batch_size * S
        self.x = ids[offset : offset + n].view(batch_size, S)
        self.y = ids[offset + 1 : offset + n + 1].view(batch_size, S)
        if device is not None:
            self.x, self.y = self.x.to(device), self.y.to(device)
        self.batch_size, self.seq_len, self.stream_len = batch_size, seq_len, S

    def __len__(self) -> int:
        return math.ceil(self.stream_len / self.seq_len)

    def __iter__(self):
        for t in range(0, self.stream_len, self.seq_len):
            yield self.x[:, t : t + self.seq_len], self.y[:, t : t + self.seq_len]


def _progress(total: int, progress: bool | None, desc: str):
    """A tqdm bar, shown only on a terminal (``progress=None``) or when asked (True): quiet in
    the built book and in tests."""
    import sys

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, leave=False)


def tbptt_step(model: CharLM, optimizer, x: Tensor, y: Tensor, state, clip: float | None):
    """One update of truncated BPTT on a chunk: x, y (N, T) ids (y is x shifted by one).

    Forward from ``state`` (the end of the previous chunk, already detached), mean
    cross-entropy over the N x T next characters, backward (it stops at the chunk's start),
    clip the global gradient norm, optimizer step. Returns ``(loss, state)``: the loss (nats
    per character, a float) and the final state **detached**, to carry into the next chunk.
    """
    logits, state = model(x, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item(), detach_state(state)


def train_char_lm(
    model: CharLM,
    train_ids,
    steps: int,
    batch_size: int = 64,
    seq_len: int = 100,
    lr: float = 3e-3,
    clip: float | None = 1.0,
    seed: int = 0,
    val_ids=None,
    eval_every: int = 0,
    lr_schedule: str = "cosine",
    max_seconds: float | None = None,
    progress: bool | None = None,
    device=None,
) -> dict:
    """Train ``model`` on one id stream with truncated BPTT, Adam and gradient clipping.

    One step is one chunk of :class:`StreamBatcher` (N = ``batch_size`` streams, T =
    ``seq_len`` characters): forward from the state the previous chunk ended in, mean
    cross-entropy over the N x T next-character targets, backward, clip the global gradient norm
    to ``clip``, Adam step, detach the state. At the end of the streams (one epoch) the state
    restarts from zeros and the chunks are cut at a new random offset. The learning rate is
    constant (``lr_schedule="constant"``) or follows a cosine from ``lr`` to 0 over ``steps``.

    Args:
        model: a :class:`CharLM`, trained in place (moved to ``device`` if given).
        train_ids: the training text's ids, 1-D (list, array or tensor).
        steps: number of updates.
        seed: seeds the dropout masks and the epochs' offsets (the weights are seeded by
            whoever built the model).
        val_ids: held-out ids; every ``eval_every`` steps (and at the end) their bits per
            character are recorded (:func:`evaluate_bpc`).
        max_seconds: stop early after this much wall-clock time (None: no limit).
        progress: a tqdm bar; None (default) shows it only when stderr is a terminal.

    Returns:
        a dict: ``loss`` (per step, nats per character), ``val`` (list of (step, bpc)),
        ``steps`` (the number of updates made), ``seconds`` (wall-clock training time, the
        validation excluded), ``epochs`` (passes over the training text, fractional).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    if device is not None:
        model.to(device)
    device = _device(model)
    train_ids = _as_ids(train_ids)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = None
    if lr_schedule == "cosine" and steps > 0:
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
    history = {"loss": [], "val": [], "steps": 0, "seconds": 0.0, "epochs": 0.0}
    bar = _progress(steps, progress, "char LM")
    per_epoch, done, t_train = None, 0, 0.0
    try:
        while done < steps:
            offset = 0 if done == 0 else int(rng.integers(0, seq_len))
            batches = StreamBatcher(train_ids, batch_size, seq_len, offset, device)
            per_epoch = per_epoch or len(batches)
            state = None
            for x, y in batches:
                t0 = time.perf_counter()
                model.train()
                with torch.random.fork_rng(devices=[]):  # dropout masks from the seed
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                    loss, state = tbptt_step(model, opt, x, y, state, clip)
                if sched is not None:
                    sched.step()
                done += 1
                t_train += time.perf_counter() - t0
                history["loss"].append(loss)
                bar.update()
                bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
                if val_ids is not None and eval_every and done % eval_every == 0 and done < steps:
                    history["val"].append((done, evaluate_bpc(model, val_ids)[0]))
                if done >= steps or (max_seconds is not None and t_train > max_seconds):
                    break
            if max_seconds is not None and t_train > max_seconds:
                break
    finally:
        bar.close()
    history["steps"], history["seconds"] = done, t_train
    history["epochs"] = done / per_epoch if per_epoch else 0.0
    if val_ids is not None:
        history["val"].append((done, evaluate_bpc(model, val_ids)[0]))
    return history


@torch.no_grad()
def evaluate_bpc(model: CharLM, ids, seq_len: int = 512, return_logits: bool = False):
    """Bits per character of ``model`` on the id stream ``ids`` (L,), read as one stream.

    The model starts from a zero state and reads ``ids[:-1]`` in chunks of ``seq_len``, the
    state carried across chunks, so position t is predicted from all of ``ids[:t]``; every
    position t = 1, ..., L - 1 is scored (the first has no prediction). With
    :math:`p_t = \\mathrm{softmax}(\\mathrm{logits}_{t-1})`,

    ``bpc = mean_t -log2 p_t[ids[t]]`` and ``perplexity = 2 ** bpc`` (per character).

    Returns ``(bpc, perplexity)`` as floats, and with ``return_logits=True`` also the logits
    (L - 1, V) as a float32 NumPy array (what :func:`rnn_ref.numpy.bits_per_char` takes).
    """
    ids = _as_ids(ids)
    if ids.numel() < 2:
        raise ValueError("need at least 2 ids to score a next character")
    was_training = model.training
    model.eval()
    device = _device(model)
    x, y = ids[:-1].to(device)[None], ids[1:].to(device)[None]
    state, nll, kept = None, 0.0, []
    for t in range(0, x.shape[1], seq_len):
        logits, state = model(x[:, t : t + seq_len], state)
        nll += F.cross_entropy(logits[0].float(), y[0, t : t + seq_len], reduction="sum").item()
        if return_logits:
            kept.append(logits[0].float().cpu())
    model.train(was_training)
    bpc = nll / y.shape[1] / math.log(2)
    if return_logits:
        return bpc, 2.0**bpc, torch.cat(kept).numpy()
    return bpc, 2.0**bpc


@torch.no_grad()
def generate(
    model: CharLM,
    prompt_ids,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Sample ``length`` ids after ``prompt_ids`` (a non-empty list of ids).

    The model reads the prompt, then at every step samples the next id from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits (None: all),
    and feeds it back. ``temperature`` -> 0 approaches greedy decoding (``temperature=0`` is
    greedy exactly); 1 samples the model's own distribution; above 1 flattens it. The draws use
    ``generator`` or a CPU ``torch.Generator`` seeded with ``seed``, so a seed gives the same
    text on any device. Returns the ``length`` new ids (the prompt excluded).
    """
    prompt = _as_ids(prompt_ids)
    if prompt.numel() == 0:
        raise ValueError("prompt_ids is empty: give at least one id (e.g. a newline)")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    was_training = model.training
    model.eval()
    device = _device(model)
    logits, state = model(prompt.to(device)[None], None)
    last = logits[0, -1].float().cpu()
    out = []
    for _ in range(length):
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            z = last / temperature
            if top_k is not None and top_k < z.numel():
                kth = torch.topk(z, top_k).values[-1]
                z = z.masked_fill(z < kth, float("-inf"))
            nxt = int(torch.multinomial(torch.softmax(z, dim=0), 1, generator=generator))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
        last = logits[0, -1].float().cpu()
    model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------------


class CharClassifier(nn.Module):
    """Sequence classifier: embedding (``padding_idx``), packed GRU/LSTM, pooling, linear.

    Args:
        vocab_size: V; ``padding_idx`` (default 0, ``CharVocab.PAD``) gets a zero embedding
            row that is never updated.
        num_classes: C.
        emb_dim, hidden_size: M and H.
        cell: ``"gru"`` or ``"lstm"``.
        pooling: ``"last"`` (the state after each sequence's last real character; for a
            bidirectional model, the forward direction's last state and the backward
            direction's state at the first character), ``"mean"`` (the mean of the outputs
            over the real steps) or ``"max"`` (their maximum over the real steps).
        bidirectional: run a second RNN right to left and concatenate (2H features).
        dropout: dropout on the pooled features.

    ``forward(ids, lengths) -> logits``: ids (N, T) int64 padded with ``padding_idx``,
    lengths (N,) in [1, T]; logits (N, C). The recurrent layer runs over the packed batch
    (:func:`rnn_ref.torch.run_packed`), so a sequence's logits do not depend on how much
    padding follows it.
    """

    POOLINGS = ("last", "mean", "max")

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        emb_dim: int = 32,
        hidden_size: int = 128,
        cell: str = "gru",
        pooling: str = "last",
        bidirectional: bool = False,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}, got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.cell, rnn_cls = _cell(cell)
        self.pooling, self.bidirectional = pooling, bidirectional
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx)
        self.rnn = rnn_cls(emb_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def features(self, ids: Tensor, lengths) -> Tensor:
        """The pooled features (N, H) (or (N, 2H) bidirectional), before dropout and read-out."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be (N, T), got shape {tuple(ids.shape)}")
        lengths = torch.as_tensor(lengths, dtype=torch.int64)
        outputs, h_n = run_packed(self.rnn, self.embedding(ids), lengths)
        if self.pooling == "last":
            if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
                h_n = h_n[0]
            # h_n (dirs, N, H): each direction's state after its last real step.
            return torch.cat(list(h_n), dim=-1) if self.bidirectional else h_n[-1]
        mask = length_mask(lengths, ids.shape[1]).to(outputs.device)
        if self.pooling == "mean":
            lens = lengths.to(outputs.device, outputs.dtype)[:, None]
            return (outputs * mask[..., None]).sum(dim=1) / lens
        return outputs.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)

    def forward(self, ids: Tensor, lengths) -> Tensor:
        return self.out(self.drop(self.features(ids, lengths)))


def _pad(seqs, pad: int, device) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    out = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.int64)
    return out.to(device), lengths


def _check_seqs(seqs, labels=None):
    if len(seqs) == 0:
        raise ValueError("need at least one sequence")
    if any(len(s) == 0 for s in seqs):
        raise ValueError("every sequence must have length >= 1")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(seqs),):
            raise ValueError(f"labels must be ({len(seqs)},), got {labels.shape}")
        return labels
    return None


@torch.no_grad()
def predict_proba(model: CharClassifier, seqs, batch_size: int = 1024, pad: int = 0) -> np.ndarray:
    """Class probabilities (N, C), float64 NumPy, of a list of N id sequences (lengths >= 1).

    Sequences are padded with ``pad`` in batches of ``batch_size`` (the packing makes the
    result independent of how they are batched).
    """
    _check_seqs(seqs)
    was_training = model.training
    model.eval()
    device, out = _device(model), []
    for i in range(0, len(seqs), batch_size):
        ids, lengths = _pad(seqs[i : i + batch_size], pad, device)
        out.append(torch.softmax(model(ids, lengths).double(), dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


def train_classifier(
    model: CharClassifier,
    seqs,
    labels,
    epochs: int,
    batch_size: int = 128,
    lr: float = 3e-3,
    clip: float | None = 1.0,
    seed: int = 0,
    val=None,
    weight_decay: float = 0.0,
    pad: int = 0,
    progress: bool | None = None,
    device=None,
) -> dict:
    """Train a :class:`CharClassifier` with Adam on mean cross-entropy, mini-batches of
    ``batch_size`` sequences drawn without replacement each epoch (a
    ``numpy.random.default_rng(seed)`` shuffle), padded to the batch's longest sequence.

    Args:
        seqs: list of N id sequences (each a list of ints, length >= 1); labels (N,) ints.
        val: optional ``(val_seqs, val_labels)``; after each epoch the validation accuracy
            is recorded, and at the end the model gets back the weights of the epoch with the
            best validation accuracy (early stopping by model selection).
        clip: global gradient-norm clipping (None: none).

    Returns:
        a dict: ``loss`` (mean training loss of each epoch), ``val_acc`` (per epoch),
        ``best_epoch`` (1-based; None without ``val``), ``seconds``.
    """
    labels = _check_seqs(seqs, labels)
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if device is not None:
        model.to(device)
    device = _device(model)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    y_all = torch.as_tensor(labels)
    history = {"loss": [], "val_acc": [], "best_epoch": None, "seconds": 0.0}
    best_acc, best_state = -1.0, None
    n_batches = math.ceil(len(seqs) / batch_size)
    bar = _progress(epochs * n_batches, progress, "classifier")
    t0 = time.perf_counter()
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(len(seqs))
            total = 0.0
            for i in range(0, len(seqs), batch_size):
                idx = order[i : i + batch_size]
                ids, lengths = _pad([seqs[j] for j in idx], pad, device)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                    loss = F.cross_entropy(model(ids, lengths), y_all[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += loss.item() * len(idx)
                bar.update()
            history["loss"].append(total / len(seqs))
            if val is not None:
                vs, vl = val
                acc = float(np.mean(predict_proba(model, vs, pad=pad).argmax(1) == np.asarray(vl)))
                history["val_acc"].append(acc)
                if acc > best_acc:
                    best_acc, history["best_epoch"] = acc, epoch + 1
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    history["seconds"] = time.perf_counter() - t0
    return history
