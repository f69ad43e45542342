r"""Recurrent forecasters in PyTorch (chapter ch11_timeseries): multi-step forecasts of a real
series with an LSTM or GRU, three multi-step strategies, quantile intervals, and a training loop
with early stopping on a validation split.

**Inputs.** A scaled series :math:`z_0, \dots, z_{T-1}` (scaled with the training part's mean
and standard deviation only) and calendar features :math:`c_t \in \mathbb{R}^C` (sin/cos of the
time of day and of the week, known in advance). A forecast made at *origin* :math:`o` (the first
unknown step) for the horizons :math:`k = 1, \dots, H` sees the window :math:`z_{o-p}, \dots,
z_{o-1}` and nothing later. The window is cut into :math:`S = p / L` **chunks** of :math:`L`
consecutive values (for half-hourly data, :math:`L = 48`: one chunk per day), and the recurrent
network reads one chunk per time step,

.. math::  u_s = \big(z_{o-p+sL}, \dots, z_{o-p+(s+1)L-1},\ c_{o-p+sL}\big) \in
           \mathbb{R}^{L + C}, \qquad s = 0, \dots, S - 1,

so a week of half-hours is a sequence of S = 7 steps rather than 336: the same information, a
recurrence 48 times shorter (:func:`chunk_inputs`, shape (K, S, L + C)).

**Strategies** (all read the same input; :math:`h_S` is the encoder's last hidden state):

- *MIMO* (multi-input multi-output), :class:`MIMOForecaster`: one head emits all H values,
  :math:`\hat z_{o:o+H} = W h_S + b` (with quantiles, H x Q values).
- *direct*, :class:`DirectForecaster`: one network per horizon, written as one network that
  takes the horizon as an input, :math:`\hat z_{o+k-1} = f(h_S, e_k)`, with :math:`e_k` a
  learned embedding of k and f a small MLP; every horizon is its own regression problem.
- *recursive*: a one-step model (:class:`MIMOForecaster` with H = 1) whose forecast is appended
  to the window and fed back H times (:func:`recursive_forecast_torch`); its errors compound.

A seasonal series is best handed to them *seasonally differenced*
(:math:`d_t = x_t - x_{t-m}`, as a seasonal ARIMA model does): they then forecast how this week
differs from the last, and a forecast of d = 0 is the weekly seasonal-naive forecast.

**Quantiles.** With Q increasing levels, a head emits Q raw values per horizon and the
quantiles are their cumulative sums after a softplus on all but the first, so they never cross.

**Losses.** MSE on scaled values, or the pinball (quantile) loss for quantile levels
:math:`\tau_j`, :math:`\rho_\tau(u) = \max(\tau u, (\tau - 1) u)` with :math:`u = y - \hat q`,
averaged over all entries (:func:`pinball_loss_torch`).

Shapes are batch-first; models are float32 and run on whatever device their tensors are on.
"""

from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "forecast_origins",
    "chunk_inputs",
    "horizon_targets",
    "RNNEncoder",
    "MIMOForecaster",
    "DirectForecaster",
    "pinball_loss_torch",
    "fit_forecaster",
    "predict_forecaster",
    "recursive_forecast_torch",
]


# ---------------------------------------------------------------------------------------------
# Data: origins, chunked windows, targets
# ---------------------------------------------------------------------------------------------


def forecast_origins(start: int, stop: int, p: int, H: int, stride: int = 1) -> np.ndarray:
    """Origins o (first forecast step) whose H targets lie in [start, stop) and whose window of p
    inputs exists: ``o >= max(start, p)``, ``o + H <= stop``, every ``stride``-th from the first.

    The inputs ``o - p .. o - 1`` may reach back before ``start`` (they are known when the
    forecast is made); the targets never cross ``stop``. Returns int64 (K,), possibly empty.
    """
    if min(p, H, stride) < 1:
        raise ValueError(f"p, H and stride must be >= 1, got {p}, {H}, {stride}")
    first = max(int(start), int(p))
    return np.arange(first, int(stop) - H + 1, stride, dtype=np.int64)


def chunk_inputs(z, calendar, origins, p: int, chunk: int) -> np.ndarray:
    r"""Encoder inputs for forecasts made at ``origins``: (K, S, chunk + C), float32.

    Step s of row i is :math:`(z_{o-p+s L}, \dots, z_{o-p+(s+1)L-1}, c_{o-p+sL})` with
    :math:`o` = ``origins[i]``, :math:`L` = ``chunk``, :math:`S = p / L`: the window of the p
    values before the origin, oldest first, cut into S chunks, each with the calendar features
    of its first step.

    Args:
        z: the scaled series, (T,).
        calendar: calendar features, (T', C) with T' >= T (C may be 0).
        origins: int (K,), each with ``p <= o <= T``.
        p: window length, a multiple of ``chunk``.
        chunk: values per recurrent step (1: the plain window, one value per step).
    """
    z = np.asarray(z, dtype=np.float64)
    calendar = np.asarray(calendar, dtype=np.float64)
    calendar = calendar.reshape(len(calendar), -1)
    origins = np.asarray(origins, dtype=np.int64)
    if p % chunk:
        raise ValueError(f"p = {p} is not a multiple of chunk = {chunk}")
    if origins.size and (origins.min() < p or origins.max() > len(z)):
        raise ValueError(f"origins must lie in [p, T] = [{p}, {len(z)}]")
    S = p // chunk
    idx = origins[:, None] - p + np.arange(p)[None, :]  # (K, p): o - p .. o - 1
    values = z[idx].reshape(len(origins), S, chunk)
    cal = calendar[idx[:, ::chunk]]  # (K, S, C): the first step of each chunk
    return np.concatenate([values, cal], axis=-1).astype(np.float32)


def horizon_targets(z, origins, H: int) -> np.ndarray:
    """Targets ``z[o : o + H]`` for each origin: (K, H), float32 (each ``o + H <= T``)."""
    z = np.asarray(z)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.max() + H > len(z):
        raise ValueError("an origin's targets run past the end of the series")
    return z[origins[:, None] + np.arange(H)[None, :]].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class RNNEncoder(nn.Module):
    """An LSTM or GRU (``torch.nn``, batch-first, one or more layers) read to the end.

    ``forward(u)``: u (N, S, F) -> the last layer's final hidden state :math:`h_S`, (N, hidden).
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "lstm", num_layers=1):
        super().__init__()
        cells = {"lstm": nn.LSTM, "gru": nn.GRU}
        if cell not in cells:
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.rnn = cells[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True)

    def forward(self, u: Tensor) -> Tensor:
        _, state = self.rnn(u)
        h_n = state[0] if self.cell == "lstm" else state  # (layers, N, hidden)
        return h_n[-1]


class _Forecaster(nn.Module):
    """Shared parts: the encoder, the horizon H and the optional quantile levels."""

    def __init__(self, input_size, hidden_size, H, cell, quantiles):
        super().__init__()
        if int(H) < 1:
            raise ValueError(f"H must be >= 1, got {H}")
        self.H = int(H)
        self.quantiles = None if quantiles is None else tuple(float(q) for q in quantiles)
        if self.quantiles is not None and (
            not all(0 < q < 1 for q in self.quantiles)
            or list(self.quantiles) != sorted(self.quantiles)
        ):
            raise ValueError(f"quantiles must be increasing levels in (0, 1), got {quantiles}")
        self.encoder = RNNEncoder(input_size, hidden_size, cell)

    @property
    def n_out(self) -> int:
        return 1 if self.quantiles is None else len(self.quantiles)

    def _finish(self, out: Tensor) -> Tensor:
        r"""out (N, H, Q) -> (N, H) for a point forecast; for quantiles, (N, H, Q) made
        increasing by construction: :math:`\hat q_1 = a_1`, :math:`\hat q_j = \hat q_{j-1} +
        \mathrm{softplus}(a_j)` (no quantile crossing, whatever the weights)."""
        if self.quantiles is None:
            return out[:, :, 0]
        steps = torch.cat([out[:, :, :1], nn.functional.softplus(out[:, :, 1:])], dim=-1)
        return torch.cumsum(steps, dim=-1)


class MIMOForecaster(_Forecaster):
    r"""MIMO: :math:`\hat z_{o:o+H} = W h_S + b`, all H horizons from one linear head.

    ``forward(u)``: u (N, S, chunk + C) from :func:`chunk_inputs` -> (N, H), or (N, H, Q) when
    ``quantiles`` (Q levels, increasing) are given. With H = 1 it is the one-step model of the
    recursive strategy.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        H: int,
        cell: str = "lstm",
        quantiles=None,
    ):
        super().__init__(input_size, hidden_size, H, cell, quantiles)
        self.head = nn.Linear(hidden_size, self.H * self.n_out)

    def forward(self, u: Tensor) -> Tensor:
        out = self.head(self.encoder(u)).reshape(len(u), self.H, self.n_out)
        return self._finish(out)


class DirectForecaster(_Forecaster):
    r"""Direct: :math:`\hat z_{o+k-1} = w^\top \tanh(A [h_S; e_k] + a) + b` for k = 1..H, one
    shared network with the horizon k as an input (a learned embedding :math:`e_k`).

    ``forward(u)``: (N, S, chunk + C) -> (N, H) (or (N, H, Q)); the encoder runs once per
    window, the head once per (window, horizon).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        H: int,
        cell: str = "lstm",
        quantiles=None,
        horizon_dim: int = 8,
        head_size: int = 64,
    ):
        super().__init__(input_size, hidden_size, H, cell, quantiles)
        self.horizon = nn.Embedding(self.H, horizon_dim)
        self.head = nn.Sequential(
            nn.Linear(hidden_size + horizon_dim, head_size),
            nn.Tanh(),
            nn.Linear(head_size, self.n_out),
        )

    def forward(self, u: Tensor) -> Tensor:
        h = self.encoder(u)  # (N, hidden)
        N = len(u)
        e = self.horizon.weight  # (H, horizon_dim)
        pairs = torch.cat([h[:, None, :].expand(N, self.H, -1), e[None].expand(N, -1, -1)], -1)
        return self._finish(self.head(pairs))  # head: (N, H, hidden + dim) -> (N, H, Q)


# ---------------------------------------------------------------------------------------------
# Losses, training, prediction
# ---------------------------------------------------------------------------------------------


def pinball_loss_torch(y: Tensor, q_hat: Tensor, quantiles) -> Tensor:
    r"""Mean pinball loss: :math:`\frac{1}{NHQ}\sum \max(\tau_j u, (\tau_j - 1) u)`,
    :math:`u = y - \hat q_j`. ``y`` (N, H), ``q_hat`` (N, H, Q), ``quantiles`` Q levels in (0, 1).

    Its minimiser over a constant :math:`\hat q` is the :math:`\tau`-quantile of y: the
    gradient is :math:`-\tau` for each y above and :math:`1 - \tau` for each y below.
    """
    tau = torch.as_tensor(quantiles, dtype=q_hat.dtype, device=q_hat.device)
    u = y[..., None] - q_hat
    return torch.maximum(tau * u, (tau - 1) * u).mean()


def _loss(model, out, y):
    if model.quantiles is None:
        return torch.mean((out - y) ** 2)
    return pinball_loss_torch(y, out, model.quantiles)


def _progress(total, progress, desc):
    """A tqdm bar, shown only on a terminal (``progress=None``) or when asked (True)."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, leave=False)


def fit_forecaster(
    model: nn.Module,
    train: tuple,
    val: tuple,
    *,
    epochs: int = 50,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    patience: int = 8,
    max_norm: float | None = 1.0,
    seed: int = 0,
    progress: bool | None = None,
    val_fn=None,
) -> dict:
    r"""Train with Adam on mini-batches of ``train``, stop early on the loss on ``val``.

    After each epoch the loss on the whole validation set is computed; the weights of the best
    epoch so far are kept, and training stops after ``patience`` epochs without improvement
    (:math:`10^{-4}` relative). At the end the best weights are loaded back into ``model``.
    The loss is the MSE of :math:`\hat z` (scaled units), or the pinball loss when the model has
    ``quantiles``. The test split is never seen here.

    Args:
        model: a forecaster whose ``forward(u)`` gives (N, H) or (N, H, Q).
        train, val: ``(u, y)`` pairs, u (N, S, F) and y (N, H), NumPy or tensors; they are
            moved to the model's device as float32.
        epochs, batch_size, lr, weight_decay, patience: the usual; ``max_norm`` clips the global
            gradient norm (None: no clipping).
        seed: seeds the batch order (``torch.Generator``); seed the initial weights before
            building the model (``torch.manual_seed``).
        progress: a tqdm bar over epochs; None shows it only when stderr is a terminal (so it
            stays quiet in the built book), False never, True always.
        val_fn: optional ``val_fn(model) -> float`` (lower is better), called in eval mode
            without gradients after each epoch, replacing the validation loss as the early
            stopping criterion: e.g. the error of a one-step model's *recursive* 48-step
            forecasts, which is what it will be used for. ``val`` is then not used.

    Returns:
        dict with ``train_loss`` and ``val_loss`` (lists, one per epoch run), ``best_epoch``
        (0-based), ``best_val_loss``, ``epochs_run`` and ``seconds`` (wall clock).
    """
    device = next(model.parameters()).device
    u_tr, y_tr, u_va, y_va = (
        torch.as_tensor(a, dtype=torch.float32, device=device) for a in (*train, *val)
    )
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = {"train_loss": [], "val_loss": [], "best_epoch": -1, "best_val_loss": math.inf}
    best_state, bad, t0 = None, 0, time.perf_counter()
    bar = _progress(epochs, progress, "epochs")
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(u_tr), generator=gen).to(device)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = _loss(model, model(u_tr[idx]), y_tr[idx])
            loss.backward()
            if max_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            if val_fn is None:
                val_loss = _loss(model, model(u_va), y_va).item()
            else:
                val_loss = float(val_fn(model))
        hist["train_loss"].append(total / len(u_tr))
        hist["val_loss"].append(val_loss)
        bar.update(1)
        bar.set_postfix(train=f"{total / len(u_tr):.4f}", val=f"{val_loss:.4f}")
        if val_loss < hist["best_val_loss"] * (1 - 1e-4):
            hist["best_val_loss"], hist["best_epoch"], bad = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist["epochs_run"] = len(hist["val_loss"])
    hist["seconds"] = time.perf_counter() - t0
    return hist


def predict_forecaster(model: nn.Module, u) -> np.ndarray:
    """``model(u)`` in eval mode without gradients, as a float64 NumPy array on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(u, dtype=torch.float32, device=device))
    return out.double().cpu().numpy()


def recursive_forecast_torch(model, z, calendar, origins, p: int, chunk: int, H: int):
    r"""Recursive strategy: H one-step forecasts, each appended to the window and fed back.

    Step k (k = 0..H-1) builds the window that ends at :math:`o + k`, in which the values at
    :math:`o, \dots, o + k - 1` are the model's own earlier forecasts (never the observed ones),
    and asks the one-step model (output (N, 1)) for :math:`\hat z_{o+k}`. All origins run as one
    batch. Returns (K, H) float64 (scaled units).

    Args:
        model: a one-step forecaster (H = 1) reading :func:`chunk_inputs` windows.
        z: the scaled series (T,): only ``z[o - p : o]`` is read for origin o.
        calendar: (T', C) calendar features with T' >= max(origins) + H - 1 (known ahead).
        origins, p, chunk: as for :func:`chunk_inputs`.
    """
    z = np.asarray(z, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    K = len(origins)
    buf = np.zeros((K, p + H))
    buf[:, :p] = z[origins[:, None] - p + np.arange(p)[None, :]]
    cal = np.asarray(calendar, dtype=np.float64)
    cal = cal.reshape(len(cal), -1)
    for k in range(H):
        window = buf[:, k : k + p].reshape(K, p // chunk, chunk)
        starts = origins[:, None] + k - p + np.arange(0, p, chunk)[None, :]  # (K, S)
        u = np.concatenate([window, cal[starts]], axis=-1)
        buf[:, p + k] = predict_forecaster(model, u)[:, 0]
    return buf[:, p:]
