r"""GRU4Rec in PyTorch (chapter ch14_recsys): next-item recommendation within a session.

**The model** (Hidasi et al. 2016). A session is a sequence of item indices
:math:`i_1, i_2, \dots` (0..I-1, indexed on the training data by
:func:`rnn_ref.numpy.recsys.make_sessions`). At each step :class:`GRU4Rec` reads the current item
and scores every item of the catalogue as the next one:

.. math::

    e_t = E[i_t] \;(\text{or the one-hot vector of } i_t), \qquad
    h_t = \mathrm{GRU}(e_t, h_{t-1}), \; h_0 = 0, \qquad
    r_t = W_{out} h_t + b_{out} \in \mathbb R^{I}.

The GRU is ``torch.nn.GRU`` (gates r, z, n in PyTorch's convention), so ``state_dict`` keys are
torch's (``gru.weight_ih_l0``, ...). Shapes are batch-first: items (N, T), scores (N, T, I),
hidden state (num_layers, N, H) as ``torch.nn.GRU`` holds it.

**Training on session-parallel mini-batches.** :func:`train_gru4rec` takes B sessions side by
side (:func:`rnn_ref.numpy.recsys.session_parallel_batches`): one mini-batch is one event of each
of the B lanes, input item :math:`i_t`, target :math:`i_{t+1}`; when a lane's session ends, the
next session takes the lane and the lane's hidden state is **zeroed** before its first event (the
``reset`` flag), so no session sees another's state. As in GRU4Rec, the state is carried from one
mini-batch to the next but gradients are not (truncated back-propagation of one step). Losses:

- ``"cross-entropy"``: softmax over the whole catalogue,
  :math:`L = -\frac1B\sum_b \log \mathrm{softmax}(r_b)_{i^+_b}`.
- ``"bpr-max"`` (Hidasi & Karatzoglou 2018) on sampled negatives: the other targets of the
  mini-batch (in-batch negatives) plus ``n_sample`` items drawn with probability
  :math:`\propto \mathrm{count}^{\alpha}` (shared by the mini-batch), a negative equal to the
  row's own target masked out. With :math:`s_j = \mathrm{softmax}_j(r_j)` over a row's negatives,

  .. math::

      L = \frac1B \sum_b \Big[-\log \sum_j s_j\,\sigma(r_{i^+} - r_j)
          + \lambda \sum_j s_j r_j^2\Big].

- ``"bpr"`` (Rendle et al. 2009) on the same negatives:
  :math:`L = -\frac1B\sum_b \frac1{K}\sum_j \log\sigma(r_{i^+} - r_j)`.

:func:`bpr_loss` and :func:`bpr_max_loss` are the functional forms (tested against the NumPy
reference :mod:`rnn_ref.numpy.recsys` in float64). Early stopping: after every epoch the model is
evaluated on validation sessions (:func:`time_tail`: the sessions that *start last* in the
training data, a time split inside the training period) with
:func:`rnn_ref.numpy.recsys.evaluate_next_item`, and the weights of the best epoch (MRR@20 by
default) are put back at the end.

**Scoring.** :func:`session_scores` runs the trained GRU over whole sessions (each from a zero
state) and returns the scores before every next event; :func:`score_next` wraps it in the score
function :func:`rnn_ref.numpy.recsys.evaluate_next_item` takes, so the GRU is ranked exactly as the
baselines are (over all items, the rule for already-seen items stated there).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .text import _device, _progress

__all__ = [
    "GRU4Rec",
    "bpr_loss",
    "bpr_max_loss",
    "sampled_negatives",
    "train_gru4rec",
    "session_scores",
    "score_next",
    "time_tail",
]

LOSSES = ("cross-entropy", "bpr-max", "bpr")


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_items(name: str, items, num_items: int, dims: int, device) -> Tensor:
    x = items if isinstance(items, Tensor) else torch.as_tensor(np.asarray(items))
    if x.dim() != dims:
        want = "(N, T)" if dims == 2 else "(B,)"
        raise ValueError(f"{name} must be {want} item indices, got shape {tuple(x.shape)}")
    if x.dtype.is_floating_point or x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold integer item indices, got {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= num_items):
        raise ValueError(
            f"{name} must be item indices in [0, I = {num_items}), "
            f"got {int(x.min())}..{int(x.max())}"
        )
    return x.to(device=device, dtype=torch.int64)


class GRU4Rec(nn.Module):
    """Item embedding (or one-hot) -> GRU -> a score for every item of the catalogue.

    Args:
        num_items: I, the catalogue size (items indexed 0..I-1).
        embedding_dim: E, the size of the learned item embedding; ``None`` feeds the one-hot
            vector of the item (Hidasi et al. 2016's input), so the GRU's input size is I.
        hidden_size: H.
        num_layers: stacked GRU layers.
        dropout: dropout on the embedding and on the GRU's output (training only).

    ``forward(items, h0=None, reset=None) -> (scores, h_n)``: items (N, T) item indices,
    ``h0`` (num_layers, N, H) or None (zeros), ``reset`` (N, T) bool or None: where
    ``reset[n, t]`` is True the state of row n is zeroed before it reads ``items[n, t]`` (a new
    session starts there). scores (N, T, I): ``scores[n, t]`` ranks the item after
    ``items[n, t]``; h_n (num_layers, N, H) the state after the last step.
    """

    def __init__(
        self,
        num_items: int,
        embedding_dim: int | None = 64,
        hidden_size: int = 100,
        num_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.num_items = _positive_int("num_items", num_items, 2)
        if embedding_dim is not None:
            embedding_dim = _positive_int("embedding_dim", embedding_dim)
        hidden_size = _positive_int("hidden_size", hidden_size)
        num_layers = _positive_int("num_layers", num_layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.embedding_dim, self.hidden_size, self.num_layers = (
            embedding_dim,
            hidden_size,
            num_layers,
        )
        self.embedding = (
            nn.Embedding(self.num_items, embedding_dim) if embedding_dim is not None else None
        )
        self.gru = nn.GRU(
            embedding_dim or self.num_items, hidden_size, num_layers, batch_first=True
        )
        self.drop = nn.Dropout(float(dropout))
        self.out = nn.Linear(hidden_size, self.num_items)

    def init_state(self, N: int) -> Tensor:
        """Zeros (num_layers, N, H): the state before a session's first event."""
        p = self.out.weight
        return torch.zeros(self.num_layers, N, self.hidden_size, device=p.device, dtype=p.dtype)

    def embed(self, items: Tensor) -> Tensor:
        """e_t for item indices of any shape: (..., E), or one-hot (..., I)."""
        if self.embedding is None:
            return F.one_hot(items, self.num_items).to(self.out.weight.dtype)
        return self.embedding(items)

    def hidden(self, items, h0=None, reset=None) -> tuple[Tensor, Tensor]:
        """The GRU's outputs (N, T, H) (top layer, before dropout) and h_n; arguments as
        :meth:`forward`."""
        x = _as_items("items", items, self.num_items, 2, _device(self))
        N, T = x.shape
        h = self.init_state(N) if h0 is None else h0
        if h.shape != (self.num_layers, N, self.hidden_size):
            raise ValueError(
                f"h0 must be (num_layers, N, H) = ({self.num_layers}, {N}, {self.hidden_size}), "
                f"got {tuple(h.shape)}"
            )
        e = self.drop(self.embed(x))
        if reset is None:
            return self.gru(e, h)
        r = reset if isinstance(reset, Tensor) else torch.as_tensor(np.asarray(reset))
        if r.shape != (N, T) or r.dtype != torch.bool:
            raise ValueError(
                f"reset must be a bool ({N}, {T}) tensor, got {r.dtype} {tuple(r.shape)}"
            )
        keep = (~r).to(device=h.device, dtype=h.dtype)
        outs = []
        for t in range(T):
            # A new session in row n: its state starts from zero, whatever the lane held before.
            h = h * keep[None, :, t, None]
            o, h = self.gru(e[:, t : t + 1], h)
            outs.append(o)
        return torch.cat(outs, 1), h

    def forward(self, items, h0=None, reset=None) -> tuple[Tensor, Tensor]:
        o, h = self.hidden(items, h0, reset)
        return self.out(self.drop(o)), h

    def step(self, items, h=None, reset=None) -> tuple[Tensor, Tensor]:
        """One session-parallel step: items (B,), h (num_layers, B, H) or None, reset (B,) bool
        or None -> (scores (B, I), h)."""
        x = _as_items("items", items, self.num_items, 1, _device(self))
        r = None
        if reset is not None:
            r = reset if isinstance(reset, Tensor) else torch.as_tensor(np.asarray(reset))
            if r.shape != x.shape or r.dtype != torch.bool:
                raise ValueError(
                    f"reset must be a bool {tuple(x.shape)} tensor, got {r.dtype} {tuple(r.shape)}"
                )
            r = r[:, None]
        scores, h = self(x[:, None], h, r)
        return scores[:, 0], h


# ---------------------------------------------------------------------------------------------
# Ranking losses
# ---------------------------------------------------------------------------------------------


def _check_pair(r_pos: Tensor, r_neg: Tensor, mask):
    if not isinstance(r_pos, Tensor) or not isinstance(r_neg, Tensor):
        raise TypeError("r_pos and r_neg must be torch tensors")
    if r_pos.dim() != 1 or r_neg.dim() != 2 or r_neg.shape[0] != r_pos.shape[0]:
        raise ValueError(
            f"r_pos must be (B,) and r_neg (B, K), got {tuple(r_pos.shape)} and "
            f"{tuple(r_neg.shape)}"
        )
    if r_neg.shape[1] < 1:
        raise ValueError("r_neg needs at least one negative per row (K >= 1)")
    if mask is None:
        return None
    m = mask if isinstance(mask, Tensor) else torch.as_tensor(np.asarray(mask))
    if m.shape != r_neg.shape or m.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool {tuple(r_neg.shape)} tensor, got {m.dtype} {tuple(m.shape)}"
        )
    if not bool(m.any(1).all()):
        raise ValueError("mask leaves a row with no negative")
    return m.to(r_neg.device)


def bpr_loss(r_pos: Tensor, r_neg: Tensor, mask=None) -> Tensor:
    r"""BPR (Rendle et al. 2009), mean over the batch:
    :math:`-\frac1B\sum_b \frac1{K_b}\sum_j \log\sigma(r^+_b - r_{bj})`.

    r_pos (B,) scores of the targets, r_neg (B, K) scores of negatives, ``mask`` (B, K) bool or
    None: which negatives count (K_b of them in row b). Returns a scalar.
    """
    m = _check_pair(r_pos, r_neg, mask)
    terms = F.logsigmoid(r_pos[:, None] - r_neg)
    if m is None:
        return -terms.mean()
    w = m.to(terms.dtype)
    return -((terms * w).sum(1) / w.sum(1)).mean()


def bpr_max_loss(r_pos: Tensor, r_neg: Tensor, reg: float = 1.0, mask=None) -> Tensor:
    r"""BPR-max (Hidasi & Karatzoglou 2018), mean over the batch.

    .. math::

        s_{bj} = \mathrm{softmax}_j(r_{bj}), \qquad
        L = \frac1B\sum_b \Big[-\log \sum_j s_{bj}\,\sigma(r^+_b - r_{bj})
            + \lambda \sum_j s_{bj} r_{bj}^2\Big]

    with :math:`\lambda` = ``reg``. r_pos (B,), r_neg (B, K); ``mask`` (B, K) bool or None: masked
    negatives get no weight (excluded from the softmax). The softmax weights the negatives that
    score high, so the gradient does not vanish once most sampled negatives rank low.
    """
    m = _check_pair(r_pos, r_neg, mask)
    logits = r_neg if m is None else r_neg.masked_fill(~m, float("-inf"))
    log_s = torch.log_softmax(logits, 1)
    # log sum_j s_j sigma(d_j), computed in the log domain: logsumexp_j (log s_j + log sigma(d_j)).
    lse = torch.logsumexp(log_s + F.logsigmoid(r_pos[:, None] - r_neg), 1)
    s = log_s.exp()
    penalty = (s * torch.where(torch.isfinite(logits), r_neg, torch.zeros_like(r_neg)) ** 2).sum(1)
    return (-lse + reg * penalty).mean()


def sampled_negatives(counts, n_sample: int, alpha: float = 0.75, generator=None) -> Tensor:
    """``n_sample`` item indices drawn with replacement, P(i) proportional to counts[i]**alpha.

    counts (I,) non-negative training frequencies; ``alpha`` = 0 is uniform, 1 proportional to
    popularity (GRU4Rec's default sampling uses 0.75); an item of count 0 is never drawn.
    Returns (n_sample,) int64.
    """
    c = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if c.dim() != 1 or c.numel() < 1 or bool((c < 0).any()):
        raise ValueError(f"counts must be a non-negative (I,) vector, got shape {tuple(c.shape)}")
    n_sample = _positive_int("n_sample", n_sample, 0)
    if n_sample == 0:
        return torch.zeros(0, dtype=torch.int64)
    # an item never seen is never a negative, also for alpha = 0 (0 ** 0 would be 1)
    p = torch.where(c > 0, c ** float(alpha), torch.zeros_like(c))
    if float(p.sum()) <= 0:
        raise ValueError("counts are all zero: nothing to sample")
    return torch.multinomial(p, n_sample, replacement=True, generator=generator)


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------


def _subset(sessions, keep_event, keep_session, nrs):
    """The sessions ``keep_session`` (S,) bool, each reduced to its events ``keep_event`` (E,)
    bool, sessions then shorter than 2 events dropped; a new Sessions (same catalogue)."""
    sid = np.repeat(np.arange(len(sessions)), sessions.lengths())
    keep = keep_event & keep_session[sid]
    counts = np.bincount(sid[keep], minlength=len(sessions))
    keep &= counts[sid] >= 2
    kept = counts >= 2
    kept &= keep_session
    ts = None if sessions.timestamp is None else sessions.timestamp[keep]
    return nrs.Sessions(
        sessions.items[keep],
        np.r_[0, np.cumsum(counts[kept])].astype(np.int64),
        sessions.user[kept],
        sessions.start[kept],
        sessions.tie[keep],
        ts,
        sessions.n_items,
    )


def time_tail(sessions, fraction: float = 0.1):
    """Split training Sessions in time, as :func:`rnn_ref.numpy.recsys.time_split` splits the
    data: ``(head, tail)`` for validation inside the training period.

    The cut ``t_cut`` is the ``1 - fraction`` quantile of the sessions' start times. ``tail``:
    the sessions that start at or after it; ``head``: those that end before it (sessions that
    straddle it are dropped, so no tail event precedes a head event). Tail events of items that
    never occur in ``head`` are removed (the model cannot have learned them, as in the test),
    then sessions shorter than 2 events are dropped from both. Item indices are unchanged.
    """
    from ..numpy import recsys as nrs

    if not isinstance(sessions, nrs.Sessions):
        raise TypeError(
            f"sessions must be rnn_ref.numpy.recsys.Sessions, got {type(sessions).__name__}"
        )
    if isinstance(fraction, bool) or not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if len(sessions) < 2:
        raise ValueError(f"time_tail needs at least 2 sessions, got {len(sessions)}")
    start = sessions.start
    last = sessions.offsets[1:] - 1
    end = start if sessions.timestamp is None else sessions.timestamp[np.maximum(last, 0)]
    t_cut = np.quantile(start, 1.0 - float(fraction), method="higher")
    all_events = np.ones(sessions.items.size, dtype=bool)
    head = _subset(sessions, all_events, end < t_cut, nrs)
    seen = np.zeros(sessions.n_items, dtype=bool)
    seen[head.items] = True
    tail = _subset(sessions, seen[sessions.items], start >= t_cut, nrs)
    if len(head) == 0 or len(tail) == 0:
        raise ValueError(
            f"fraction {fraction} of {len(sessions)} sessions leaves an empty head or tail"
        )
    return head, tail


def _session_list(name, sessions, num_items):
    from ..numpy import recsys as nrs

    if isinstance(sessions, nrs.Sessions):
        out = sessions.as_list()
    else:
        if isinstance(sessions, np.ndarray) and sessions.ndim == 1:
            raise TypeError(
                f"{name}: give a list of sessions (arrays of item indices), not one array"
            )
        out = [np.asarray(s) for s in sessions]
    for i, s in enumerate(out):
        if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
            raise ValueError(
                f"{name}[{i}] must be a 1-D array of item indices, got {s.dtype} {s.shape}"
            )
        if s.size and (s.min() < 0 or s.max() >= num_items):
            raise ValueError(
                f"{name}[{i}] has item indices {s.min()}..{s.max()} outside the model's "
                f"catalogue [0, {num_items})"
            )
    return out


@torch.no_grad()
def session_scores(model: GRU4Rec, sessions, max_steps: int = 8192) -> np.ndarray:
    """Scores after every event of every session, each session read from a zero state.

    ``sessions``: Sessions or a list of 1-D arrays of item indices. Returns (sum L, I) float32
    numpy: the L rows of session 0, then session 1's ...; row t of a session scores the item
    after its events 0..t (eval mode: no dropout). This is the score function
    :func:`rnn_ref.numpy.recsys.evaluate_next_item` takes (see :func:`score_next`).

    Sessions are run in groups of similar length padded at the end, at most ``max_steps``
    padded steps per group (a GRU reads left to right: the padding cannot change the scores of
    the real steps).
    """
    seqs = _session_list("sessions", sessions, model.num_items)
    max_steps = _positive_int("max_steps", max_steps)
    I = model.num_items
    lengths = np.array([s.size for s in seqs], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lengths)]
    out = np.zeros((int(offsets[-1]), I), np.float32)
    was = model.training
    model.eval()
    try:
        order = [int(s) for s in np.argsort(lengths, kind="stable") if lengths[s] > 0]
        i = 0
        while i < len(order):
            T = int(lengths[order[i]])
            j = i + 1
            # longest last: the group's padded size is (its size) x (its last length)
            while j < len(order) and (j - i + 1) * int(lengths[order[j]]) <= max_steps:
                j += 1
            group = order[i:j]
            T = int(lengths[group[-1]])
            x = np.zeros((len(group), T), np.int64)
            for row, s in enumerate(group):
                x[row, : lengths[s]] = seqs[s]
            scores, _ = model(torch.as_tensor(x, device=_device(model)))
            scores = scores.float().cpu().numpy()
            for row, s in enumerate(group):
                out[offsets[s] : offsets[s + 1]] = scores[row, : lengths[s]]
            i = j
    finally:
        model.train(was)
    return out


def score_next(model: GRU4Rec, max_steps: int = 8192):
    """``score_fn(sessions) -> (sum L, I)`` for :func:`rnn_ref.numpy.recsys.evaluate_next_item`:
    :func:`session_scores` of ``model``, so the GRU is ranked exactly as the baselines are."""
    if not isinstance(model, GRU4Rec):
        raise TypeError(f"model must be a GRU4Rec, got {type(model).__name__}")

    def score_fn(sessions):
        return session_scores(model, sessions, max_steps)

    return score_fn


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _loss_on_batch(model, o, targets, loss, counts, n_sample, alpha, reg, gen):
    """The mini-batch loss from the GRU's outputs o (B, H) and targets (B,)."""
    if loss == "cross-entropy":
        return F.cross_entropy(model.out(model.drop(o)), targets)
    # Sampled: the columns are the batch's targets (in-batch negatives) then n_sample popular
    # items; row b's positive is column b, its negatives every other column except copies of its
    # own target (a lane whose target another lane shares, or a sample that hits it).
    extra = sampled_negatives(counts, n_sample, alpha, gen).to(targets.device)
    cols = torch.cat([targets, extra])
    # index_select, not W[cols]: its backward is an index_add, several times faster on a CPU
    W, b = model.out.weight.index_select(0, cols), model.out.bias.index_select(0, cols)
    r = model.drop(o) @ W.T + b  # (B, B + n_sample)
    B = len(targets)
    r_pos = r[torch.arange(B), torch.arange(B)]
    mask = cols[None, :] != targets[:, None]
    if not bool(mask.any(1).all()):
        return None  # every column is this row's target (tiny catalogue): skip the batch
    if loss == "bpr-max":
        return bpr_max_loss(r_pos, r, reg, mask)
    return bpr_loss(r_pos, r, mask)


def train_gru4rec(
    model: GRU4Rec,
    train,
    val=None,
    *,
    loss: str = "cross-entropy",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 2e-3,
    n_sample: int = 512,
    sample_alpha: float = 0.75,
    bpr_reg: float = 1.0,
    clip: float | None = None,
    patience: int | None = 2,
    metric: str = "MRR@20",
    seed: int = 0,
    cpu_budget: float | None = None,
    progress: bool | None = None,
) -> dict:
    """Train a :class:`GRU4Rec` on session-parallel mini-batches with Adam.

    Args:
        train: training Sessions (:mod:`rnn_ref.numpy.recsys`), item indices < ``num_items``.
        val: validation Sessions or None; after each epoch ``evaluate_next_item`` on them
            (k = 10, 20; seen items excluded) and the weights of the best epoch by ``metric``
            (``"MRR@20"``, ``"HR@20"``, ...) are put back at the end.
        loss: ``"cross-entropy"`` (full softmax), ``"bpr-max"`` or ``"bpr"`` (in-batch +
            ``n_sample`` negatives drawn proportional to training count ** ``sample_alpha``).
        bpr_reg: lambda, BPR-max's score regulariser.
        patience: stop after this many epochs without a better validation ``metric``.
        cpu_budget: stop after the epoch at which ``time.process_time`` advanced this much.
        seed: torch's and the lanes' seed (session order, dropout, samples).

    Returns a dict: ``loss`` (mean training loss per epoch), ``val`` (a list of the validation
    metric dicts), ``best_epoch`` (1-based, None without ``val``), ``seconds``, ``cpu_seconds``.
    """
    from ..numpy import recsys as nrs

    if not isinstance(model, GRU4Rec):
        raise TypeError(f"model must be a GRU4Rec, got {type(model).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if metric not in ("HR@10", "MRR@10", "HR@20", "MRR@20"):
        raise ValueError(f"metric must be HR@10, MRR@10, HR@20 or MRR@20, got {metric!r}")
    epochs = _positive_int("epochs", epochs, 0)
    batch_size = _positive_int("batch_size", batch_size)
    n_sample = _positive_int("n_sample", n_sample, 0)
    if not isinstance(train, nrs.Sessions):
        raise TypeError(f"train must be rnn_ref.numpy.recsys.Sessions, got {type(train).__name__}")
    if train.n_items > model.num_items:
        raise ValueError(f"train has {train.n_items} items but the model scores {model.num_items}")
    items = train.items
    if np.sum(train.lengths() >= 2) < 1:
        raise ValueError("train has no session of 2 or more events: nothing to predict")
    if val is not None and not isinstance(val, nrs.Sessions):
        raise TypeError(
            f"val must be rnn_ref.numpy.recsys.Sessions or None, got {type(val).__name__}"
        )
    device = _device(model)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    counts = np.bincount(items, minlength=model.num_items)
    # fused Adam: one kernel for all parameters, about a third of a small step's time on a CPU
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    hist = {"loss": [], "val": [], "best_epoch": None, "seconds": 0.0, "cpu_seconds": 0.0}
    best, best_state, since = -np.inf, None, 0
    t0, c0 = time.perf_counter(), time.process_time()
    items_t = torch.as_tensor(items, device=device)
    bar = _progress(epochs, progress, f"GRU4Rec {loss}")
    try:
        for epoch in range(epochs):
            model.train()
            h = None
            total, n = 0.0, 0
            for pos, tgt, reset in nrs.session_parallel_batches(
                train.offsets, batch_size, seed=seed + epoch
            ):
                if (pos < 0).any():
                    # A lane has no session left. GRU4Rec ends the epoch here: running on would
                    # finish the last few (long) sessions in ever smaller batches, many steps
                    # on a handful of sessions at the very end of every epoch.
                    break
                x = items_t[torch.as_tensor(pos, device=device)]
                y = items_t[torch.as_tensor(tgt, device=device)]
                r = torch.as_tensor(reset, device=device)
                # One step of back-propagation: the state carries on, its history's graph not;
                # a lane that starts a new session is zeroed inside hidden() (reset).
                o, h = model.hidden(x[:, None], None if h is None else h.detach(), r[:, None])
                value = _loss_on_batch(
                    model, o[:, 0], y, loss, counts, n_sample, sample_alpha, bpr_reg, gen
                )
                if value is None:
                    continue
                opt.zero_grad(set_to_none=True)
                value.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                total += value.item()
                n += 1
            hist["loss"].append(total / max(n, 1))
            if val is not None:
                res = nrs.evaluate_next_item(score_next(model), val, ks=(10, 20))
                hist["val"].append(res)
                score = float(res[metric])
                if score > best:
                    best, hist["best_epoch"], since = score, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since += 1
                if patience is not None and since >= patience:
                    break
            bar.update()
            if cpu_budget is not None and time.process_time() - c0 >= cpu_budget:
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    return hist
