r"""A recurrent spoken-digit classifier over MFCC frames (chapter ch13_speech).

An utterance is a sequence of feature frames :math:`x_0, \dots, x_{T-1}`, each
:math:`x_t \in \mathbb{R}^D` (MFCCs, possibly with their deltas, normalised per utterance:
:mod:`rnn_ref.numpy.speech`). Utterances have different lengths :math:`T_n`, so a batch is padded
to :math:`T_{max}` and **packed** (``pack_padded_sequence(enforce_sorted=False)`` through
:func:`rnn_ref.torch.run_packed`): the GRU stops every utterance at its own last frame, and the
padding cannot change a prediction.

:class:`SpeechClassifier` runs a (bidirectional) GRU over the frames,

.. math::  \overrightarrow{h}_t = \mathrm{GRU}(x_t, \overrightarrow{h}_{t-1}), \quad
           \overleftarrow{h}_t = \mathrm{GRU}'(x_t, \overleftarrow{h}_{t+1}),

pools the states into one vector :math:`u_n` per utterance, and maps it to the class logits
:math:`z_n = W_{out} u_n + b_{out}` (C = 10 digits). Two poolings:

- ``"last"``: the final state of each direction, :math:`u = [\overrightarrow{h}_{T_n-1};
  \overleftarrow{h}_0]` (the state after the last real frame read left to right, and after the
  first frame read right to left);
- ``"mean"``: the masked mean of the states over the real frames,
  :math:`u = \sum_t m_{n,t} [\overrightarrow{h}_t; \overleftarrow{h}_t] / T_n` with
  :math:`m_{n,t} = [t < T_n]`.

:func:`train_speech_classifier` trains it with Adam on the mean cross-entropy over shuffled
mini-batches, keeps a validation split (given, or a stratified fraction of the training set),
stops when the validation loss has not improved for ``patience`` epochs and restores the best
epoch's weights. :func:`predict_proba`, :func:`predict` and :func:`accuracy` evaluate it.

Shapes are batch-first; a model runs on its parameters' device and in their dtype (float32 for
training; ``model.double()`` for exact comparisons). Threads are the caller's business
(``torch.set_num_threads``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pytorch import _check_lengths, length_mask, pad_batch, run_packed

__all__ = [
    "SpeechClassifier",
    "pad_utterances",
    "stratified_split",
    "train_speech_classifier",
    "speech_predict_proba",
    "speech_predict",
    "speech_accuracy",
]


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


class SpeechClassifier(nn.Module):
    """(Bi)GRU over feature frames, pooling, linear read-out.

    Args:
        input_size: D, the features per frame (13 MFCCs, 26 with deltas, ...).
        num_classes: C (10 digits).
        hidden_size: H per direction.
        num_layers: stacked GRU layers (dropout between them when ``dropout`` > 0).
        bidirectional: run a second GRU right to left and concatenate (2H features).
        pooling: ``"last"`` (each direction's final state) or ``"mean"`` (masked mean of the
            states over the real frames).
        dropout: dropout on the pooled vector (and between stacked layers).
        frame_stack: k, the number of consecutive frames concatenated into one GRU step
            (:meth:`stack_frames`; 1: none). k = 2 halves the sequential steps.

    ``forward(x, lengths) -> logits``: x (N, T, D) float, padded after each utterance's
    ``lengths[n]`` real frames (any padding value); lengths (N,) integers in [1, T], in any
    order; logits (N, C).
    """

    POOLINGS = ("last", "mean")

    def __init__(
        self,
        input_size: int,
        num_classes: int = 10,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = True,
        pooling: str = "last",
        dropout: float = 0.0,
        frame_stack: int = 1,
    ):
        super().__init__()
        for name, v in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("frame_stack", frame_stack),
        ):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}, got {pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        self.pooling, self.bidirectional = pooling, bool(bidirectional)
        self.frame_stack = int(frame_stack)
        self.rnn = nn.GRU(
            input_size * self.frame_stack,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def stack_frames(self, x: Tensor, lengths) -> tuple[Tensor, Tensor]:
        r"""Frames stacked k = ``frame_stack`` at a time: (N, T, D) -> (N, ceil(T / k), k D),
        lengths -> ceil(lengths / k).

        Stacked frame s is :math:`[x_{sk}; x_{sk+1}; \dots; x_{sk+k-1}]`, with zeros for the
        frames past an utterance's end (the padding is zeroed first, so its value cannot leak
        in). The GRU then takes k times fewer, k times wider steps: the same information, k
        times fewer sequential steps (the cost of a recurrent network on a CPU)."""
        lengths = _check_lengths(lengths, x.shape[0], x.shape[1])
        k = self.frame_stack
        if k == 1:
            return x, lengths
        N, T, D = x.shape
        mask = length_mask(lengths, T).to(x.device)
        x = x.masked_fill(~mask[..., None], 0.0)
        Ts = -(-T // k)
        if Ts * k > T:
            x = torch.cat([x, x.new_zeros(N, Ts * k - T, D)], dim=1)
        return x.reshape(N, Ts, k * D), -(-lengths // k)

    def features(self, x: Tensor, lengths) -> Tensor:
        """The pooled vector u (N, H), or (N, 2H) bidirectional, before dropout and read-out."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor (N, T, D), got {type(x).__name__}")
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"x must be (N, T, D) with D = input_size = {self.input_size}, "
                f"got shape {tuple(x.shape)}"
            )
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        x, lengths = self.stack_frames(x, lengths)
        outputs, h_n = run_packed(self.rnn, x, lengths)
        if self.pooling == "last":
            # h_n (layers * dirs, N, H): the last layer's directions are its last 1 or 2 rows;
            # the backward direction's "final" state is the one after reading frame 0.
            dirs = 2 if self.bidirectional else 1
            return torch.cat(list(h_n[-dirs:]), dim=-1)
        mask = length_mask(lengths, x.shape[1]).to(outputs.device)
        lens = lengths.to(outputs.device, outputs.dtype)[:, None]
        # outputs are zero on the padding (pad_packed_sequence), the mask makes it explicit
        return (outputs * mask[..., None]).sum(dim=1) / lens

    def forward(self, x: Tensor, lengths) -> Tensor:
        return self.out(self.drop(self.features(x, lengths)))


# ---------------------------------------------------------------------------------------------
# Batches of utterances
# ---------------------------------------------------------------------------------------------


def _check_utterances(feats, name: str = "feats") -> int:
    """Checks a list of (T_i, D) arrays; returns D."""
    if isinstance(feats, (np.ndarray, Tensor)) or not isinstance(feats, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of (T_i, D) arrays (one per utterance), "
            f"got {type(feats).__name__}"
        )
    if len(feats) == 0:
        raise ValueError(f"{name} is empty: need at least one utterance")
    D = None
    for n, f in enumerate(feats):
        shape = tuple(f.shape) if hasattr(f, "shape") else None
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name}[{n}] must be a 2-D (T_i, D) array, got shape {shape}")
        if shape[0] == 0:
            raise ValueError(f"{name}[{n}] has no frames (T_i = 0): every length must be >= 1")
        if D is None:
            D = shape[1]
        elif shape[1] != D:
            raise ValueError(f"{name}[{n}] has D = {shape[1]} features, {name}[0] has {D}")
    return int(D)


def _check_labels(labels, n: int, num_classes: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must be ({n},) (one per utterance), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if num_classes is not None and n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def pad_utterances(feats, dtype=torch.float32, device=None) -> tuple[Tensor, Tensor]:
    """A padded batch of utterances: feats, a list of N arrays (T_n, D) (NumPy or torch).

    Returns ``(x, lengths)``: x (N, T_max, D) in ``dtype`` on ``device`` with zeros after each
    utterance's T_n frames, lengths (N,) int64 on the CPU (:func:`rnn_ref.torch.pad_batch`).
    """
    _check_utterances(feats)
    seqs = [
        torch.as_tensor(np.asarray(f) if not isinstance(f, Tensor) else f).to(dtype) for f in feats
    ]
    x, lengths = pad_batch(seqs)
    return (x if device is None else x.to(device)), lengths


def stratified_split(labels, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` with about ``fraction`` of each class in ``val`` (at least one
    per class that has two or more examples), drawn with ``numpy.random.default_rng(seed)``;
    both sorted."""
    y = np.asarray(labels)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        val.extend(idx[:k].tolist())
    val = np.sort(np.array(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


@torch.no_grad()
def _logits(model: SpeechClassifier, feats, batch_size: int) -> Tensor:
    device, dtype = _device_dtype(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(feats), batch_size):
            x, lengths = pad_utterances(feats[i : i + batch_size], dtype, device)
            out.append(model(x, lengths).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def speech_predict_proba(model: SpeechClassifier, feats, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C), float64 NumPy, of a list of N utterances (T_n, D).

    Utterances are padded in batches of ``batch_size``; packing makes the result independent
    of the batching and of the padding."""
    D = _check_utterances(feats)
    if D != model.input_size:
        raise ValueError(f"utterances have D = {D} features, the model takes {model.input_size}")
    return torch.softmax(_logits(model, feats, batch_size).double(), dim=-1).numpy()


def speech_predict(model: SpeechClassifier, feats, batch_size: int = 256) -> np.ndarray:
    """Predicted classes (N,) int64: the argmax of :func:`speech_predict_proba`."""
    return speech_predict_proba(model, feats, batch_size).argmax(axis=1)


def speech_accuracy(model: SpeechClassifier, feats, labels, batch_size: int = 256) -> float:
    """Fraction of the utterances whose predicted class equals ``labels`` (N,)."""
    y = _check_labels(labels, len(feats))
    return float(np.mean(speech_predict(model, feats, batch_size) == y))


def _progress(total: int, progress: bool | None, desc: str):
    from .text import _progress as text_progress

    return text_progress(total, progress, desc)


def train_speech_classifier(
    model: SpeechClassifier,
    feats,
    labels,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    clip: float | None = 1.0,
    val=None,
    val_fraction: float = 0.1,
    patience: int | None = 5,
    seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """Train ``model`` in place with Adam on the mean cross-entropy of mini-batches.

    Each epoch shuffles the training utterances (``numpy.random.default_rng(seed)``) into
    mini-batches of ``batch_size``, each padded to its longest utterance and packed by the
    model; the global gradient norm is clipped to ``clip``. After every epoch the **validation**
    loss and accuracy are measured; training stops when the loss has not improved for
    ``patience`` epochs (None: run all ``epochs``), and the model gets back the weights of the
    epoch with the lowest validation loss.

    Args:
        feats: list of N arrays (T_n, D); labels (N,) integers in [0, C).
        val: ``(val_feats, val_labels)``, a validation set given explicitly; if None, a stratified
            ``val_fraction`` of (feats, labels) is held out (:func:`stratified_split` with
            ``seed``) and the rest is trained on. ``val_fraction=0`` with ``val=None``: no
            validation, no early stopping, the last epoch's weights.
        seed: seeds the split, the shuffles and the dropout masks (the initial weights are
            seeded by whoever built the model, e.g. ``torch.manual_seed`` before it).

    Returns:
        a dict: ``loss`` (mean training loss per epoch), ``val_loss``, ``val_acc`` (per epoch),
        ``best_epoch`` (1-based; None without validation), ``epochs`` (run), ``seconds``
        (wall clock) and ``cpu_seconds`` (process CPU time).
    """
    D = _check_utterances(feats)
    if D != model.input_size:
        raise ValueError(f"utterances have D = {D} features, the model takes {model.input_size}")
    y = _check_labels(labels, len(feats), model.num_classes)
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    feats = list(feats)
    if val is not None:
        val_feats, val_y = val
        if _check_utterances(list(val_feats), "val feats") != D:
            raise ValueError("the validation utterances must have the training set's D")
        val_feats, val_y = list(val_feats), _check_labels(val_y, len(val_feats), model.num_classes)
        tr = np.arange(len(feats))
    elif val_fraction:
        tr, va = stratified_split(y, val_fraction, seed)
        val_feats, val_y = [feats[i] for i in va], y[va]
    else:
        tr, val_feats, val_y = np.arange(len(feats)), None, None

    device, dtype = _device_dtype(model)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    y_t = torch.as_tensor(y)
    history = {"loss": [], "val_loss": [], "val_acc": [], "best_epoch": None, "epochs": 0}
    best_loss, best_state, since_best = math.inf, None, 0
    bar = _progress(epochs * math.ceil(len(tr) / batch_size), progress, "speech GRU")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        for epoch in range(epochs):
            model.train()
            order = tr[rng.permutation(len(tr))]
            total = 0.0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                x, lengths = pad_utterances([feats[j] for j in idx], dtype, device)
                with torch.random.fork_rng(devices=[]):  # dropout masks from the seed
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                    loss = F.cross_entropy(model(x, lengths), y_t[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += loss.item() * len(idx)
                bar.update()
            history["loss"].append(total / len(tr))
            history["epochs"] = epoch + 1
            if val_feats is None:
                continue
            logits = _logits(model, val_feats, 256).double()
            v_loss = float(F.cross_entropy(logits, torch.as_tensor(val_y)))
            history["val_loss"].append(v_loss)
            history["val_acc"].append(float(np.mean(logits.argmax(1).numpy() == val_y)))
            if v_loss < best_loss:
                best_loss, history["best_epoch"], since_best = v_loss, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
                if patience is not None and since_best >= patience:
                    break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    history["seconds"] = time.perf_counter() - t0
    history["cpu_seconds"] = time.process_time() - c0
    return history
