r"""Fusing a spoken and a written digit in PyTorch (chapter ch16_multimodal).

Every example has two **modalities** of one class :math:`y \in \{0..9\}`: an utterance, a
sequence of MFCC frames :math:`x^a_0, \dots, x^a_{T_n - 1} \in \mathbb R^{D_a}` of its own length
:math:`T_n` (a padded batch ``audio`` (N, T, D_a) with ``lengths`` (N,), **packed**, so the
padding cannot change an output), and an 8x8 image read row by row, ``images`` (N, 8, 8): a
sequence of :math:`T_v = 8` rows :math:`x^v_t \in \mathbb R^{8}`.

**Encoders** (chapters 13 and 15, reused): the audio GRU of
:class:`rnn_ref.torch.SpeechClassifier` (frame stacking, packing; its pooled state)
:math:`a \in \mathbb R^{H_a}`, and the row GRU of :class:`rnn_ref.torch.RowClassifier` (its
state after the last row) :math:`v \in \mathbb R^{H_v}`; their own read-outs are replaced by the
fusion's.

**Models.** :class:`MultimodalClassifier` with ``fusion=``

- ``"audio"`` / ``"image"``: one encoder and a linear read-out, the unimodal baselines;
- ``"concat"``: :math:`f = [a; v]` (pool each sequence to a vector, then concatenate);
- ``"gated"``: the gated multimodal unit (Arevalo et al. 2017), :func:`gated_fusion`:
  :math:`h_a = \tanh(W_a a + b_a)`, :math:`h_v = \tanh(W_v v + b_v)`,
  :math:`z = \sigma(W_z [a; v] + b_z)`, :math:`f = z \odot h_a + (1 - z) \odot h_v`;
- ``"attention"``: both vectors projected to one size, :math:`m_a = \tanh(P_a a + c_a)`,
  :math:`m_v = \tanh(P_v v + c_v)`, and a learned query :math:`q` attends over the two
  (:func:`rnn_ref.torch.dot_attention`): :math:`\alpha = \mathrm{softmax}(q \cdot m_a,
  q \cdot m_v)`, :math:`f = \alpha_a m_a + \alpha_v m_v`;

then :math:`\mathrm{logits} = W_{out} f + b_{out}`. :class:`EarlyFusionClassifier` aligns the
two *sequences* before any network sees them (:func:`rnn_ref.numpy.pool_to_length`: the audio
frames averaged over 8 segments, one per image row; or :func:`rnn_ref.numpy.repeat_to_length`:
each row repeated over its share of the audio frames), concatenates them step by step,
:math:`[x^a_t; x^v_t]`, and reads them with one GRU. **Late fusion** needs no new network: the
two unimodal models' log-probabilities are combined by :func:`rnn_ref.numpy.late_fusion`
(a weighted product of experts, renormalised) with weights chosen on the validation set
(:func:`choose_late_weights`).

:func:`train_multimodal` trains any of these with Adam on the mean cross-entropy and validation
early stopping; :func:`multimodal_log_proba` evaluates; :func:`modality_weights` reads how much
the gate or the attention gives each modality; :func:`noise_sweep` measures every model's
accuracy as one modality is corrupted at test time.

Shapes are batch-first; a model runs on its parameters' device and in their dtype (float32 to
train, ``model.double()`` for exact comparisons). Threads are the caller's business.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .seq2seq import dot_attention
from .speech import SpeechClassifier, _check_labels, _check_utterances, _progress, pad_utterances
from .vision import RowClassifier

__all__ = [
    "FUSIONS",
    "gated_fusion",
    "GatedMultimodalUnit",
    "MultimodalClassifier",
    "EarlyFusionClassifier",
    "train_multimodal",
    "multimodal_log_proba",
    "multimodal_accuracy",
    "modality_weights",
    "choose_late_weights",
    "noise_sweep",
]

FUSIONS = ("audio", "image", "concat", "gated", "attention")
"""The ``fusion`` modes of :class:`MultimodalClassifier`."""


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


def _check_images(images, n: int | None = None) -> np.ndarray | Tensor:
    shape = tuple(images.shape) if hasattr(images, "shape") else None
    if shape is None or len(shape) != 3:
        raise ValueError(f"images must be (N, H, W) (rows of pixels), got shape {shape}")
    if n is not None and shape[0] != n:
        raise ValueError(f"images has {shape[0]} examples, audio has {n}: they must pair up")
    return images


def _mm():
    # MC's NumPy module (late fusion, alignment); imported here so that this module loads
    # without it in the interpreter until a function needs it.
    from ..numpy import multimodal

    return multimodal


# ---------------------------------------------------------------------------------------------
# The gated multimodal unit
# ---------------------------------------------------------------------------------------------


def gated_fusion(a: Tensor, v: Tensor, params: dict) -> tuple[Tensor, Tensor]:
    r"""The gated multimodal unit (Arevalo et al. 2017), functional.

    :math:`h_a = \tanh(W_a a + b_a)`, :math:`h_v = \tanh(W_v v + b_v)`,
    :math:`z = \sigma(W_z [a; v] + b_z)`, :math:`f = z \odot h_a + (1 - z) \odot h_v`.

    Args:
        a: (N, D_a), v: (N, D_v).
        params: ``W_a`` (H, D_a), ``b_a`` (H,), ``W_v`` (H, D_v), ``b_v`` (H,),
            ``W_z`` (H, D_a + D_v), ``b_z`` (H,) (weights stored (out, in), as
            :func:`rnn_ref.numpy.gated_fusion_forward` takes them).

    Returns:
        ``(f, z)``: the fused vector (N, H) and the gate (N, H), :math:`z \to 1` taking the
        audio's :math:`h_a`, :math:`z \to 0` the image's :math:`h_v`.
    """
    for name, t in (("a", a), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 2-D tensor (N, D_{name}), got {shape}")
    if a.shape[0] != v.shape[0]:
        raise ValueError(f"a and v must have the same N, got {a.shape[0]} and {v.shape[0]}")
    missing = {"W_a", "b_a", "W_v", "b_v", "W_z", "b_z"} - set(params)
    if missing:
        raise KeyError(f"params is missing {sorted(missing)}")
    H = params["W_a"].shape[0]
    expect = {
        "W_a": (H, a.shape[1]),
        "b_a": (H,),
        "W_v": (H, v.shape[1]),
        "b_v": (H,),
        "W_z": (H, a.shape[1] + v.shape[1]),
        "b_z": (H,),
    }
    for k, shape in expect.items():
        if tuple(params[k].shape) != shape:
            raise ValueError(f"params[{k!r}] must be {shape}, got {tuple(params[k].shape)}")
    h_a = torch.tanh(a @ params["W_a"].T + params["b_a"])
    h_v = torch.tanh(v @ params["W_v"].T + params["b_v"])
    z = torch.sigmoid(torch.cat([a, v], dim=1) @ params["W_z"].T + params["b_z"])
    return z * h_a + (1.0 - z) * h_v, z


class GatedMultimodalUnit(nn.Module):
    """:func:`gated_fusion` with its parameters (``W_a`` ... ``b_z``, stored (out, in)).

    ``forward(a (N, D_a), v (N, D_v)) -> (f (N, H), z (N, H))``. ``params()`` returns the dict
    :func:`rnn_ref.numpy.gated_fusion_forward` takes (tensors; ``.numpy()`` them)."""

    NAMES = ("W_a", "b_a", "W_v", "b_v", "W_z", "b_z")

    def __init__(self, audio_size: int, image_size: int, hidden_size: int):
        super().__init__()
        Da, Dv = _positive_int("audio_size", audio_size), _positive_int("image_size", image_size)
        H = _positive_int("hidden_size", hidden_size)
        shapes = {"W_a": (H, Da), "W_v": (H, Dv), "W_z": (H, Da + Dv)}
        for k, (out, inp) in shapes.items():
            bound = 1.0 / math.sqrt(inp)  # torch.nn.Linear's default initialisation
            setattr(self, k, nn.Parameter(torch.empty(out, inp).uniform_(-bound, bound)))
            setattr(self, "b" + k[1:], nn.Parameter(torch.empty(out).uniform_(-bound, bound)))

    def params(self) -> dict:
        return {k: getattr(self, k) for k in self.NAMES}

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return gated_fusion(a, v, self.params())


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class MultimodalClassifier(nn.Module):
    """Two recurrent encoders (or one) and a fusion of their vectors; C logits.

    Args:
        fusion: one of :data:`FUSIONS` (see the module docstring).
        audio_size: D_a, features per audio frame (26: 13 MFCCs and their deltas).
        image_size: pixels per image row (8).
        num_classes: C (10).
        audio_hidden: H per direction of the audio GRU (a has 2H features when bidirectional).
        image_hidden: H_v of the row GRU.
        fusion_size: H of the gated unit / d of the attention projections.
        bidirectional, frame_stack, pooling: the audio encoder's
            (:class:`rnn_ref.torch.SpeechClassifier`).
        dropout: dropout on the fused vector before the read-out.
        modality_dropout: p; while training (fusion models only), each example loses one of its
            two modality vectors (set to zero, the modality picked at random) with probability
            p, so the fusion cannot lean on one modality alone. 0: off.

    ``forward(audio (N, T, D_a), lengths (N,), images (N, 8, 8)) -> logits (N, C)``; a
    unimodal model ignores the other modality (it may be None). ``collate(audio_list, images)``
    builds those arguments from a list of (T_n, D_a) arrays and an (N, 8, 8) array.
    ``fused(...)`` returns ``(f, w)``: the fused vector and the modality weights (N, 2)
    [audio, image] (``"gated"``: the mean gate :math:`\\bar z`, :math:`1 - \\bar z`;
    ``"attention"``: :math:`\\alpha`; otherwise None).
    """

    def __init__(
        self,
        fusion: str,
        audio_size: int = 26,
        image_size: int = 8,
        num_classes: int = 10,
        audio_hidden: int = 32,
        image_hidden: int = 32,
        fusion_size: int = 32,
        bidirectional: bool = True,
        frame_stack: int = 3,
        pooling: str = "last",
        dropout: float = 0.0,
        modality_dropout: float = 0.0,
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        if modality_dropout and fusion in ("audio", "image"):
            raise ValueError(f"modality_dropout needs two modalities; fusion={fusion!r} has one")
        self.fusion, self.num_classes = fusion, int(num_classes)
        self.audio_size, self.image_size = int(audio_size), int(image_size)
        self.modality_dropout = float(modality_dropout)
        Da = Dv = 0
        if fusion != "image":
            # chapter 13's encoder; its own read-out is replaced by this model's
            self.audio = SpeechClassifier(
                audio_size,
                num_classes,
                audio_hidden,
                bidirectional=bidirectional,
                pooling=pooling,
                frame_stack=frame_stack,
            )
            self.audio.out = nn.Identity()
            Da = audio_hidden * (2 if bidirectional else 1)
        if fusion != "audio":
            # chapter 15's row reader; the state after the last row
            self.image = RowClassifier(image_size, image_hidden, num_classes, cell="gru")
            self.image.out = nn.Identity()
            Dv = image_hidden
        if fusion == "gated":
            self.gmu = GatedMultimodalUnit(Da, Dv, fusion_size)
            F_size = fusion_size
        elif fusion == "attention":
            self.proj_a = nn.Linear(Da, fusion_size)
            self.proj_v = nn.Linear(Dv, fusion_size)
            self.query = nn.Parameter(torch.zeros(fusion_size))  # uniform weights at first
            F_size = fusion_size
        else:
            F_size = Da + Dv
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(F_size, num_classes)

    def collate(self, audio_list, images, dtype=torch.float32, device=None) -> dict:
        """Tensors for :meth:`forward` from a list of N arrays (T_n, D_a) and images (N, 8, 8)."""
        batch = {"audio": None, "lengths": None, "images": None}
        if self.fusion != "image":
            if _check_utterances(audio_list, "audio") != self.audio_size:
                raise ValueError(f"audio frames must have D_a = {self.audio_size} features")
            batch["audio"], batch["lengths"] = pad_utterances(audio_list, dtype, device)
        if self.fusion != "audio":
            _check_images(images, None if audio_list is None else len(audio_list))
            batch["images"] = torch.as_tensor(np.asarray(images)).to(dtype=dtype, device=device)
        return batch

    def _modality_mask(self, N: int, device) -> Tensor | None:
        """(N, 2) bool [audio kept, image kept] for modality dropout while training, else None."""
        if not (self.training and self.modality_dropout):
            return None
        drop = torch.rand(N, device=device) < self.modality_dropout
        which = torch.rand(N, device=device) < 0.5  # True: drop the audio, else the image
        return torch.stack([~(drop & which), ~(drop & ~which)], dim=1)

    def fused(self, audio=None, lengths=None, images=None) -> tuple[Tensor, Tensor | None]:
        a = self.audio.features(audio, lengths) if self.fusion != "image" else None
        if self.fusion != "audio":
            if not isinstance(images, Tensor) or images.dim() != 3:
                shape = tuple(images.shape) if isinstance(images, Tensor) else type(images)
                raise ValueError(f"images must be a tensor (N, 8, 8), got {shape}")
            v = self.image(images)
            if a is not None and a.shape[0] != v.shape[0]:
                raise ValueError(f"audio has N = {a.shape[0]} examples, images {v.shape[0]}")
        if self.fusion == "audio":
            return a, None
        if self.fusion == "image":
            return v, None
        keep = self._modality_mask(a.shape[0], a.device)
        if keep is not None and self.fusion != "attention":
            # a dropped modality reads as a zero vector; attention masks it out instead
            a, v = a * keep[:, :1].to(a.dtype), v * keep[:, 1:].to(v.dtype)
        if self.fusion == "concat":
            return torch.cat([a, v], dim=1), None
        if self.fusion == "gated":
            f, z = self.gmu(a, v)
            zbar = z.mean(dim=1)
            return f, torch.stack([zbar, 1.0 - zbar], dim=1)
        # attention over the two modality vectors: keys (N, 2, d), one learned query
        keys = torch.stack([torch.tanh(self.proj_a(a)), torch.tanh(self.proj_v(v))], dim=1)
        f, alpha = dot_attention(self.query.expand(keys.shape[0], -1), keys, keep)
        return f, alpha

    def forward(self, audio=None, lengths=None, images=None) -> Tensor:
        return self.out(self.drop(self.fused(audio, lengths, images)[0]))


class EarlyFusionClassifier(nn.Module):
    """Early fusion: the two sequences aligned step by step, concatenated, read by one GRU.

    Args:
        align: ``"pool"``: each utterance's frames averaged over ``steps`` near-equal segments
            (:func:`rnn_ref.numpy.pool_to_length`), so step t pairs image row t (``steps`` = 8)
            with the t-th eighth of the utterance; ``"repeat"``: each image row repeated over
            its share of the utterance's frames (:func:`rnn_ref.numpy.repeat_to_length` to the
            utterance's length), so the GRU reads every audio frame (slower: T_n steps).
        audio_size, image_size, num_classes: D_a, pixels per row, C.
        hidden_size: H of the GRU; ``bidirectional``: read both ways.
        steps: the common length for ``"pool"`` (the image's 8 rows are repeated to it when
            it is not 8).

    ``forward(x (N, T, D_a + 8), lengths (N,)) -> logits (N, C)``, x already aligned
    (``collate(audio_list, images)`` does it; the alignment has no parameters).
    """

    ALIGNS = ("pool", "repeat")

    def __init__(
        self,
        align: str = "pool",
        audio_size: int = 26,
        image_size: int = 8,
        num_classes: int = 10,
        hidden_size: int = 48,
        bidirectional: bool = True,
        steps: int = 8,
    ):
        super().__init__()
        if align not in self.ALIGNS:
            raise ValueError(f"align must be one of {self.ALIGNS}, got {align!r}")
        self.align, self.steps = align, _positive_int("steps", steps)
        self.audio_size, self.image_size = int(audio_size), int(image_size)
        self.num_classes = int(num_classes)
        # the GRU of chapter 13's classifier over the concatenated steps
        self.reader = SpeechClassifier(
            audio_size + image_size,
            num_classes,
            hidden_size,
            bidirectional=bidirectional,
            pooling="last",
        )

    def collate(self, audio_list, images, dtype=torch.float32, device=None) -> dict:
        """``{"x", "lengths"}``: the aligned, concatenated batch (N, T, D_a + 8)."""
        if _check_utterances(audio_list, "audio") != self.audio_size:
            raise ValueError(f"audio frames must have D_a = {self.audio_size} features")
        rows = np.asarray(_check_images(images, len(audio_list)), dtype=np.float64)
        if rows.shape[2] != self.image_size:
            raise ValueError(f"images must have {self.image_size} pixels per row")
        mm = _mm()
        x, lengths = pad_utterances(audio_list, torch.float64)
        x, lengths = x.numpy(), lengths.numpy()
        if self.align == "pool":
            a_steps = mm.pool_to_length(x, lengths, self.steps)
            v_steps = rows if self.steps == rows.shape[1] else mm.repeat_to_length(rows, self.steps)
            lengths = np.full(len(rows), self.steps, dtype=np.int64)
        else:
            # each image's 8 rows spread over its own utterance's L_n frames (row floor(8t/L_n)
            # at frame t), zeros on the padding
            a_steps = x
            v_steps = np.zeros((len(rows), x.shape[1], rows.shape[2]))
            for n, L in enumerate(lengths):
                v_steps[n, :L] = mm.repeat_to_length(rows[n : n + 1], int(L))[0]
        both = np.concatenate([a_steps, v_steps], axis=2)
        return {
            "x": torch.as_tensor(both).to(dtype=dtype, device=device),
            "lengths": torch.as_tensor(lengths, dtype=torch.int64),
        }

    def forward(self, x: Tensor, lengths) -> Tensor:
        return self.reader(x, lengths)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


def _check_set(audio, images, labels=None, num_classes=None, name="") -> int:
    if audio is not None:
        _check_utterances(audio, f"{name}audio")
        n = len(audio)
    else:
        n = len(images)
    _check_images(images, n)
    if labels is not None:
        _check_labels(labels, n, num_classes)
    return n


@torch.no_grad()
def _logits(model: nn.Module, audio, images, batch_size: int) -> Tensor:
    device, dtype = _device_dtype(model)
    was = model.training
    model.eval()
    out = []
    n = _check_set(audio, images)
    try:
        for i in range(0, n, batch_size):
            a = None if audio is None else list(audio[i : i + batch_size])
            out.append(model(**model.collate(a, images[i : i + batch_size], dtype, device)).cpu())
    finally:
        model.train(was)
    return torch.cat(out)


def multimodal_log_proba(model: nn.Module, audio, images, batch_size: int = 256) -> np.ndarray:
    """Log-probabilities (N, C), float64 NumPy, of paired examples: ``audio`` a list of N
    arrays (T_n, D_a) (None for an image-only model), ``images`` (N, 8, 8)."""
    _positive_int("batch_size", batch_size)
    return torch.log_softmax(_logits(model, audio, images, batch_size).double(), -1).numpy()


def multimodal_accuracy(model: nn.Module, audio, images, labels, batch_size: int = 256) -> float:
    """The fraction of examples whose most probable class equals ``labels`` (N,)."""
    lp = multimodal_log_proba(model, audio, images, batch_size)
    return float(np.mean(lp.argmax(1) == _check_labels(labels, len(lp))))


@torch.no_grad()
def modality_weights(model: MultimodalClassifier, audio, images, batch_size: int = 256):
    """(N, 2) float64: the weight the fusion gives [audio, image] for each example: the gated
    unit's mean gate :math:`(\\bar z, 1 - \\bar z)`, or the attention :math:`\\alpha`."""
    if not isinstance(model, MultimodalClassifier) or model.fusion not in ("gated", "attention"):
        raise ValueError("modality_weights needs a MultimodalClassifier with gated or attention")
    device, dtype = _device_dtype(model)
    was = model.training
    model.eval()
    out = []
    try:
        for i in range(0, _check_set(audio, images), batch_size):
            batch = model.collate(
                list(audio[i : i + batch_size]), images[i : i + batch_size], dtype, device
            )
            out.append(model.fused(**batch)[1].double().cpu())
    finally:
        model.train(was)
    return torch.cat(out).numpy()


def train_multimodal(
    model: nn.Module,
    audio,
    images,
    labels,
    val,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    clip: float | None = 1.0,
    patience: int | None = 4,
    seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """Train ``model`` (:class:`MultimodalClassifier` or :class:`EarlyFusionClassifier`) in
    place: Adam on the mean cross-entropy of shuffled mini-batches, gradient norm clipped to
    ``clip``; after each epoch the validation loss is measured, training stops when it has not
    improved for ``patience`` epochs (None: all ``epochs``), and the best epoch's weights are
    put back.

    Args:
        audio: list of N arrays (T_n, D_a) (None for an image-only model); images (N, 8, 8);
            labels (N,) integers in [0, C).
        val: ``(val_audio, val_images, val_labels)``, the validation pairs (never the test).
        seed: the shuffles and the dropout / modality-dropout draws (the initial weights are
            the caller's: ``torch.manual_seed`` before building the model).

    Returns:
        ``loss`` (mean training loss per epoch), ``val_loss``, ``val_acc`` (per epoch),
        ``best_epoch`` (1-based), ``epochs`` (run), ``seconds`` (wall) and ``cpu_seconds``
        (process CPU time).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    _positive_int("batch_size", batch_size)
    if patience is not None:
        _positive_int("patience", patience)
    C = model.num_classes
    n = _check_set(audio, images, labels, C)
    y = torch.as_tensor(_check_labels(labels, n, C))
    if not isinstance(val, (tuple, list)) or len(val) != 3:
        raise ValueError("val must be (val_audio, val_images, val_labels)")
    n_val = _check_set(*val, num_classes=C, name="val ")
    val_y = torch.as_tensor(_check_labels(val[2], n_val, C))
    device, dtype = _device_dtype(model)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = {"loss": [], "val_loss": [], "val_acc": [], "best_epoch": None, "epochs": 0}
    best_loss, best_state, since = math.inf, None, 0
    bar = _progress(epochs * math.ceil(n / batch_size), progress, f"{type(model).__name__}")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(n)
            total = 0.0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                a = None if audio is None else [audio[j] for j in idx]
                batch = model.collate(a, images[idx], dtype, device)
                with torch.random.fork_rng(devices=[]):  # dropout draws from the seed
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                    loss = F.cross_entropy(model(**batch), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += loss.item() * len(idx)
                bar.update()
            hist["loss"].append(total / n)
            hist["epochs"] = epoch + 1
            logits = _logits(model, val[0], val[1], 256).double()
            v_loss = float(F.cross_entropy(logits, val_y))
            hist["val_loss"].append(v_loss)
            hist["val_acc"].append(float((logits.argmax(1) == val_y).double().mean()))
            if v_loss < best_loss:
                best_loss, hist["best_epoch"], since = v_loss, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since += 1
                if patience is not None and since >= patience:
                    break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    return hist


# ---------------------------------------------------------------------------------------------
# Late fusion and noise
# ---------------------------------------------------------------------------------------------


def choose_late_weights(
    val_log_probs: Sequence, val_labels, grid=None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Weights :math:`(w, 1 - w)` for :func:`rnn_ref.numpy.late_fusion` of two models, chosen
    on the **validation** set.

    Each :math:`w` of ``grid`` (default 0, 0.05, ..., 1) is scored by the validation
    log-likelihood of the fused distribution :math:`\log p(c) \propto w \log p_1(c) + (1 - w)
    \log p_2(c)`; the best wins (ties: the first). Only the ratio matters for the decision;
    the sum 1 keeps the fused distribution as sharp as its experts.

    Returns ``(weights (2,), scores (len(grid),))``, the mean validation log-likelihoods.
    """
    if len(val_log_probs) != 2:
        raise ValueError(f"choose_late_weights combines 2 models, got {len(val_log_probs)}")
    lp = [np.asarray(p, dtype=np.float64) for p in val_log_probs]
    if lp[0].ndim != 2 or lp[0].shape != lp[1].shape:
        raise ValueError(
            f"val_log_probs must be two (N, C) arrays, got {lp[0].shape} and {lp[1].shape}"
        )
    y = _check_labels(val_labels, lp[0].shape[0], lp[0].shape[1])
    grid = np.linspace(0.0, 1.0, 21) if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.any((grid < 0) | (grid > 1)):
        raise ValueError("grid must be a non-empty 1-D array of weights in [0, 1]")
    late_fusion = _mm().late_fusion
    scores = np.array(
        [late_fusion(lp, np.array([w, 1.0 - w]))[np.arange(len(y)), y].mean() for w in grid]
    )
    w = float(grid[int(np.argmax(scores))])
    return np.array([w, 1.0 - w]), scores


def noise_sweep(
    predictors: dict[str, Callable],
    corrupt: Callable,
    levels: Sequence,
    labels,
) -> dict[str, np.ndarray]:
    """Accuracy of every predictor at every noise level (test-time corruption).

    Args:
        predictors: name -> ``fn(audio, images) -> log_probs (N, C)``.
        corrupt: ``level -> (audio, images)``, the test pairs with one modality corrupted at
            that level (seeded inside, so every predictor sees the same noisy inputs).
        levels: the noise levels, in the order of the returned arrays.
        labels: (N,) the true classes.

    Returns: name -> (len(levels),) accuracies.
    """
    if not predictors:
        raise ValueError("predictors is empty")
    levels = list(levels)
    if not levels:
        raise ValueError("levels is empty")
    acc = {name: np.zeros(len(levels)) for name in predictors}
    for i, level in enumerate(levels):
        audio, images = corrupt(level)
        y = _check_labels(labels, len(images))
        for name, fn in predictors.items():
            lp = np.asarray(fn(audio, images))
            if lp.shape[0] != len(y):
                raise ValueError(f"{name} returned {lp.shape[0]} rows for {len(y)} examples")
            acc[name][i] = float(np.mean(lp.argmax(1) == y))
    return acc
