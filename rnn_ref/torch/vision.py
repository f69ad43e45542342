r"""Images as sequences in PyTorch (chapter ch15_vision): a row-by-row digit classifier, a CRNN
that reads strings of digits with CTC, and the seed's ``Flatten -> LSTM`` for comparison.

**Row by row.** :class:`RowClassifier` reads an 8x8 image as T = 8 rows of D = 8 pixels,
``x`` (N, 8, 8), with an LSTM or GRU, and classifies the last hidden state:
:math:`\mathrm{logits} = W_{out} h_{T-1} + b_{out}`, (N, 10). :func:`train_row_classifier`
trains it with Adam on cross-entropy and keeps the weights of the best validation epoch.

**Reading strings with CTC.** :class:`CRNN` (Shi et al. 2017) maps a strip ``strips`` (N, 8, W)
padded on the right, with real widths ``widths`` (N,), to per-column scores:

1. two 3x3 convolutions (padding 1), each followed by ReLU, a **mask that zeroes the padding
   columns**, and a 2x1 max-pool over the height (the second one 2x2 with ``width_pool=2``,
   halving the width too): (N, c2, 2, W // width_pool);
2. the height collapsed into the features: the sequence :math:`z_t` (N, W, 2 c2), one step per
   column, read left to right;
3. a bidirectional LSTM over the *packed* columns (each strip stops at its own width);
4. a linear layer to C = 11 classes: blank = 0 and digit d -> class d + 1; logits (N, T, C).

The output length follows the width: ``T_n = output_lengths(widths)_n = widths_n //
width_pool`` (``width_pool`` 1 or 2; with 8 columns per digit, even 2 leaves at least 4 frames per
digit, enough for CTC's blanks between repeated digits). Because of the masks and the packing,
the logits of a strip's real frames do not depend on how much padding follows it (tested).
:func:`train_crnn` minimises ``torch.nn.CTCLoss`` (the negative log-likelihood of the target
summed over all its alignments, Graves et al. 2006) with the true ``input_lengths`` and
``target_lengths``, and keeps the weights of the epoch with the best validation exact-match
accuracy (early stopping with ``patience``). :func:`decode_strips` decodes with
:mod:`rnn_ref.numpy.ctc`: greedy (best path: argmax per frame, collapse repeats, drop blanks) or
prefix beam search.

**The seed's model.** :class:`FlattenLSTM` rebuilds seed 003's ``Conv2D -> MaxPooling2D ->
Flatten -> LSTM -> Dense``: ``sequence="as_written"`` hands the flattened (N, F) tensor to the
LSTM as the seed does (torch then reads the *batch* as one unbatched sequence of N steps, and
the read-out of the last state is one row for the whole batch); ``sequence="one"`` is the
closest thing that runs, a sequence of length one per image (one output frame, so CTC can
emit at most one digit); ``sequence="repeat"`` copies the flattened vector to ``T`` steps
(Keras's ``RepeatVector``), a fixed number of frames whatever the width.

Shapes are batch-first; training is float32 and seeded; models run on their own device.
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
    "RowClassifier",
    "train_row_classifier",
    "predict_rows",
    "CRNN",
    "crnn_ctc_loss",
    "train_crnn",
    "strip_log_probs",
    "decode_strips",
    "FlattenLSTM",
]

BLANK = 0  # CTC blank; digit d is class d + 1
NUM_CTC_CLASSES = 11
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _progress(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, desc=desc, leave=False)


def _check_epochs(epochs, batch_size):
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


# ---------------------------------------------------------------------------------------------
# Row by row
# ---------------------------------------------------------------------------------------------


class RowClassifier(nn.Module):
    """An LSTM or GRU over the rows of an image; the last hidden state -> ``num_classes`` logits.

    Args:
        input_size: D, pixels per row (8).
        hidden_size: H.
        num_classes: 10 digits.
        cell: ``"lstm"`` or ``"gru"``.
        num_layers: stacked recurrent layers.

    ``forward(x) -> logits``: x (N, T, D) float (row t of image n is ``x[n, t]``), logits
    (N, num_classes) from the top layer's state after the last row.
    """

    def __init__(
        self,
        input_size: int = 8,
        hidden_size: int = 64,
        num_classes: int = 10,
        cell: str = "lstm",
        num_layers: int = 1,
    ):
        super().__init__()
        key = str(cell).lower()
        if key not in _CELLS:
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell = key
        self.rnn = _CELLS[key](input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.rnn.input_size:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be (N, T, {self.rnn.input_size}), got {shape}")
        _, h_n = self.rnn(x)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        return self.out(h_n[-1])


def _as_float(name: str, a, ndim: int, device) -> Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a)
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32)


@torch.no_grad()
def predict_rows(model: RowClassifier, x, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, C), float64 NumPy, of images as row sequences x (N, T, D)."""
    was = model.training
    model.eval()
    x = _as_float("x", x, 3, _device(model))
    out = [
        torch.softmax(model(x[i : i + batch_size]).double(), -1).cpu()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was)
    return torch.cat(out).numpy()


def train_row_classifier(
    model: RowClassifier,
    x,
    y,
    epochs: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    clip: float | None = 1.0,
    seed: int = 0,
    val=None,
    weight_decay: float = 0.0,
    progress: bool | None = None,
) -> dict:
    """Adam on mean cross-entropy over shuffled mini-batches (``numpy.random.default_rng(seed)``).

    ``x`` (N, T, D) float, ``y`` (N,) ints; ``val = (x_val, y_val)``: the validation accuracy
    after each epoch, and at the end the weights of the best epoch are put back. Returns a dict:
    ``loss`` and ``val_acc`` per epoch, ``best_epoch`` (1-based, None without ``val``),
    ``seconds`` (wall) and ``cpu_seconds`` (``time.process_time``).
    """
    _check_epochs(epochs, batch_size)
    device = _device(model)
    x = _as_float("x", x, 3, device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must be ({x.shape[0]},), got {tuple(y.shape)}")
    y = y.to(device)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = {"loss": [], "val_acc": [], "best_epoch": None, "seconds": 0.0, "cpu_seconds": 0.0}
    best, best_state = -1.0, None
    t0, c0 = time.perf_counter(), time.process_time()
    bar = _progress(epochs, progress, "row classifier")
    try:
        for epoch in range(epochs):
            model.train()
            order = torch.as_tensor(rng.permutation(len(x)), device=device)
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = order[i : i + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += loss.item() * len(idx)
            hist["loss"].append(total / len(x))
            if val is not None:
                acc = float(np.mean(predict_rows(model, val[0]).argmax(1) == np.asarray(val[1])))
                hist["val_acc"].append(acc)
                if acc > best:
                    best, hist["best_epoch"] = acc, epoch + 1
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bar.update()
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    return hist


# ---------------------------------------------------------------------------------------------
# CRNN + CTC
# ---------------------------------------------------------------------------------------------


def _check_strips(strips, widths, device) -> tuple[Tensor, Tensor]:
    x = strips if isinstance(strips, Tensor) else torch.as_tensor(np.asarray(strips))
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"strips must be (N, H, W) (or (N, 1, H, W)), got shape {tuple(x.shape)}")
    w = torch.as_tensor(np.asarray(widths) if not isinstance(widths, Tensor) else widths)
    if w.shape != (x.shape[0],):
        raise ValueError(f"widths must be ({x.shape[0]},), got shape {tuple(w.shape)}")
    if w.dtype.is_floating_point or w.dtype == torch.bool:
        raise ValueError(f"widths must be integers, got {w.dtype}")
    if len(w) and (int(w.min()) < 1 or int(w.max()) > x.shape[-1]):
        raise ValueError(
            f"widths must be in [1, W = {x.shape[-1]}], got {int(w.min())}..{int(w.max())}"
        )
    return x.to(device=device, dtype=torch.float32), w.to(torch.int64).cpu()


class CRNN(nn.Module):
    """Convolutions over the 8-high strip, height collapsed, a BiLSTM over columns, C classes.

    Args:
        height: H_img, the strip's height (8); it must be divisible by 4 (two 2x1 poolings).
        channels: (c1, c2), the two convolutions' output channels.
        hidden_size: H of each LSTM direction.
        num_classes: C = 11 (blank + 10 digits).
        width_pool: 1 (one frame per column) or 2 (one frame per pair of columns).

    ``forward(strips, widths) -> (logits, output_lengths)``: strips (N, H_img, W) (or
    (N, 1, H_img, W)) zero-padded on the right, widths (N,) in [width_pool, W]; logits
    (N, W // width_pool, C) (past a strip's length the LSTM's outputs are zero, so the logits
    there are the read-out's bias: never use them), output_lengths (N,) int64 =
    widths // width_pool.
    """

    def __init__(
        self,
        height: int = 8,
        channels=(32, 64),
        hidden_size: int = 96,
        num_classes: int = 11,
        width_pool: int = 1,
    ):
        super().__init__()
        if width_pool not in (1, 2):
            raise ValueError(f"width_pool must be 1 or 2, got {width_pool!r}")
        self.width_pool = width_pool
        if height % 4:
            raise ValueError(f"height must be divisible by 4, got {height}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (blank and one label), got {num_classes}")
        c1, c2 = channels
        self.height = height
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.rnn = nn.LSTM(c2 * (height // 4), hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, num_classes)

    def output_lengths(self, widths) -> Tensor:
        """The number of output frames of each strip: T_n = widths_n // width_pool."""
        return torch.div(
            torch.as_tensor(widths, dtype=torch.int64), self.width_pool, rounding_mode="floor"
        )

    def features(self, strips, widths) -> tuple[Tensor, Tensor]:
        """The column features z (N, W, c2 * H_img / 4) fed to the LSTM, and the widths."""
        x, w = _check_strips(strips, widths, _device(self))
        if x.shape[1] != self.height:
            raise ValueError(
                f"strips must be {self.height} pixels high, got shape {tuple(x.shape)}"
            )
        if len(w) and int(w.min()) < self.width_pool:
            raise ValueError(
                f"widths must be >= width_pool = {self.width_pool}, got {int(w.min())}"
            )
        # Zero the padding columns after every convolution: a 3x3 kernel at the last real
        # column would otherwise see the padding's ReLU(bias) instead of the zeros it sees when
        # the strip is not padded, and the logits would change with the padding.
        keep = length_mask(w, x.shape[-1]).to(x.device)[:, None, None, :].float()
        h = x[:, None] * keep
        h = F.max_pool2d(F.relu(self.conv1(h)) * keep, (2, 1))
        h = F.max_pool2d(F.relu(self.conv2(h)) * keep, (2, self.width_pool))
        N, c, hh, W = h.shape
        return h.reshape(N, c * hh, W).transpose(1, 2), self.output_lengths(w)

    def forward(self, strips, widths) -> tuple[Tensor, Tensor]:
        z, lengths = self.features(strips, widths)
        outputs, _ = run_packed(self.rnn, z, lengths)
        return self.out(outputs), lengths


def _check_targets(targets, target_lengths, N: int) -> tuple[Tensor, Tensor]:
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets)
    tl = torch.as_tensor(
        np.asarray(target_lengths) if not isinstance(target_lengths, Tensor) else target_lengths
    )
    if t.dim() != 2 or t.shape[0] != N:
        raise ValueError(f"targets must be ({N}, S), got shape {tuple(t.shape)}")
    if tl.shape != (N,):
        raise ValueError(f"target_lengths must be ({N},), got shape {tuple(tl.shape)}")
    if t.dtype.is_floating_point or tl.dtype.is_floating_point:
        raise ValueError("targets and target_lengths must be integers")
    if N and (int(tl.min()) < 0 or int(tl.max()) > t.shape[1]):
        raise ValueError(f"target_lengths must be in [0, S = {t.shape[1]}]")
    return t.to(torch.int64), tl.to(torch.int64)


def crnn_ctc_loss(
    logits: Tensor,
    output_lengths,
    targets,
    target_lengths,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """``torch.nn.CTCLoss`` (blank = 0) of logits (N, T, C) against digit targets (N, S).

    ``targets`` are digits 0-9 padded with anything (-1 by :func:`compose_digit_strings`)
    after ``target_lengths``; they are shifted to classes d + 1. The loss gets the true
    ``input_lengths`` (``output_lengths``): frames past a strip's length are never part of an
    alignment. ``reduction="mean"`` is torch's: each sequence's loss divided by its target
    length, then averaged.
    """
    N = logits.shape[0]
    t, tl = _check_targets(targets, target_lengths, N)
    keep = torch.arange(t.shape[1])[None, :] < tl[:, None]
    classes = torch.where(keep, t + 1, torch.zeros_like(t)).to(logits.device)
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # CTCLoss wants (T, N, C)
    return F.ctc_loss(
        log_probs,
        classes,
        torch.as_tensor(output_lengths, dtype=torch.int64),
        tl,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


@torch.no_grad()
def strip_log_probs(model: nn.Module, strips, widths, batch_size: int = 512) -> list[np.ndarray]:
    """Per-strip log-probabilities, a list of N float64 arrays (T_n, C) (the real frames only)."""
    was = model.training
    model.eval()
    x, w = _check_strips(strips, widths, _device(model))
    out = []
    for i in range(0, len(x), batch_size):
        wb = w[i : i + batch_size]
        logits, lengths = model(x[i : i + batch_size, :, : int(wb.max())], wb)
        lp = logits.double().log_softmax(-1).cpu().numpy()
        out.extend(lp[k, : int(lengths[k])] for k in range(len(wb)))
    model.train(was)
    return out


def decode_strips(
    model: nn.Module, strips, widths, method: str = "greedy", beam_width: int = 8
) -> list[list[int]]:
    """Read each strip: a list of N digit lists, by :mod:`rnn_ref.numpy.ctc`.

    ``method="greedy"``: ``ctc_greedy_decode`` (best path); ``"beam"``:
    ``ctc_prefix_beam_search`` with ``beam_width``. Classes are shifted back: class k -> digit
    k - 1.
    """
    from rnn_ref.numpy import ctc

    if method not in ("greedy", "beam"):
        raise ValueError(f"method must be 'greedy' or 'beam', got {method!r}")
    lps = strip_log_probs(model, strips, widths)
    out = []
    for lp in lps:
        if method == "greedy":
            labels = ctc.ctc_greedy_decode(lp[None], np.array([len(lp)]), blank=BLANK)[0]
        else:
            labels = ctc.ctc_prefix_beam_search(lp, beam_width=beam_width, blank=BLANK)[0]
        out.append([int(k) - 1 for k in labels])
    return out


def _exact(refs, hyps) -> float:
    return (
        float(np.mean([list(r) == list(h) for r, h in zip(refs, hyps, strict=True)]))
        if len(refs)
        else float("nan")
    )


def _target_lists(targets, target_lengths) -> list[list[int]]:
    t, tl = np.asarray(targets), np.asarray(target_lengths)
    return [[int(v) for v in t[i, : tl[i]]] for i in range(len(tl))]


def train_crnn(
    model: CRNN,
    strips,
    widths,
    targets,
    target_lengths,
    epochs: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    clip: float | None = 5.0,
    seed: int = 0,
    val=None,
    patience: int | None = None,
    halve_lr_after: int | None = None,
    weight_decay: float = 0.0,
    progress: bool | None = None,
    cpu_budget: float | None = None,
) -> dict:
    """Train a :class:`CRNN` with Adam on :func:`crnn_ctc_loss`.

    Args:
        strips (N, 8, W), widths (N,), targets (N, S) digits padded after target_lengths (N,).
        val: ``(strips, widths, targets, target_lengths)``; after each epoch the validation
            strings are decoded greedily and the exact-match accuracy (the whole string right)
            recorded; the weights of the best epoch are put back at the end.
        patience: stop after this many epochs without a better validation accuracy (None: run
            all ``epochs``).
        halve_lr_after: halve the learning rate after this many epochs in a row without a
            better validation accuracy (None: a constant learning rate).
        cpu_budget: stop after the epoch at which ``time.process_time`` has advanced by this
            many seconds (None: no limit); a budget for the book's build.

    Mini-batches of ``batch_size`` strips in a ``numpy.random.default_rng(seed)`` order,
    cropped to the widest strip of the batch. Returns a dict: ``loss`` (mean training loss per
    epoch), ``val_exact`` (per epoch), ``best_epoch`` (1-based), ``seconds``, ``cpu_seconds``.
    """
    _check_epochs(epochs, batch_size)
    device = _device(model)
    x, w = _check_strips(strips, widths, device)
    t, tl = _check_targets(targets, target_lengths, x.shape[0])
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = {"loss": [], "val_exact": [], "best_epoch": None, "seconds": 0.0, "cpu_seconds": 0.0}
    if val is not None:
        val_refs = _target_lists(val[2], val[3])
    best, best_state, since = -1.0, None, 0
    t0, c0 = time.perf_counter(), time.process_time()
    bar = _progress(epochs * math.ceil(len(x) / batch_size), progress, "CRNN")
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(len(x))
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = torch.as_tensor(order[i : i + batch_size])
                wb = w[idx]
                logits, out_len = model(x[idx.to(device), :, : int(wb.max())], wb)
                loss = crnn_ctc_loss(logits, out_len, t[idx], tl[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += loss.item() * len(idx)
                bar.update()
            hist["loss"].append(total / len(x))
            if val is not None:
                acc = _exact(val_refs, decode_strips(model, val[0], val[1], "greedy"))
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
            if cpu_budget is not None and time.process_time() - c0 >= cpu_budget:
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    return hist


# ---------------------------------------------------------------------------------------------
# The seed's Conv -> Flatten -> LSTM
# ---------------------------------------------------------------------------------------------


class FlattenLSTM(nn.Module):
    """Seed 003's ``Conv2D(32, 3x3, relu) -> MaxPooling2D(2x2) -> Flatten -> LSTM(64) -> Dense``.

    Args:
        image_shape: (H_img, W) of the inputs (the flattened size depends on it).
        num_classes: C.
        sequence: what the LSTM is given:

            - ``"as_written"``: the flattened (N, F) tensor itself. Keras refuses it (an LSTM
              wants (N, T, F)); ``torch.nn.LSTM`` accepts a 2-D input as *one unbatched
              sequence*, so the N images become N time steps of a single sequence, and the
              last state (Keras's ``LSTM(64)``) gives logits (1, C) for the whole batch.
            - ``"one"``: (N, 1, F), a sequence of length one per image (Keras's
              ``Reshape((1, -1))``): logits (N, 1, C), one output frame.
            - ``"repeat"``: (N, T, F), the same vector at each of ``T`` steps (Keras's
              ``RepeatVector(T)``): logits (N, T, C).

    ``forward(images) -> logits``; images (N, H_img, W) or (N, 1, H_img, W).
    """

    SEQUENCES = ("as_written", "one", "repeat")

    def __init__(
        self,
        image_shape,
        num_classes: int = 11,
        sequence: str = "one",
        T: int | None = None,
        hidden_size: int = 64,
    ):
        super().__init__()
        if sequence not in self.SEQUENCES:
            raise ValueError(f"sequence must be one of {self.SEQUENCES}, got {sequence!r}")
        if sequence == "repeat" and (T is None or T < 1):
            raise ValueError(f"sequence='repeat' needs T >= 1 output steps, got T = {T!r}")
        H_img, W = image_shape
        self.sequence, self.T = sequence, T
        self.conv = nn.Conv2d(1, 32, 3)  # 'valid' padding, as Keras's default
        n_flat = 32 * ((H_img - 2) // 2) * ((W - 2) // 2)
        self.lstm = nn.LSTM(n_flat, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        x = images if images.dim() == 4 else images[:, None]
        flat = torch.flatten(F.max_pool2d(F.relu(self.conv(x.float())), 2), 1)  # (N, F)
        if self.sequence == "as_written":
            _, (h_n, _) = self.lstm(flat)  # unbatched: a sequence of N steps; h_n (1, H)
            return self.out(h_n)
        seq = flat[:, None] if self.sequence == "one" else flat[:, None].expand(-1, self.T, -1)
        outputs, _ = self.lstm(seq)
        return self.out(outputs)
