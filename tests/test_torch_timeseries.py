"""rnn_ref.torch.timeseries: the chunked-window data pipeline never reads past a split, the three
multi-step strategies give H-step forecasts, MIMO and direct models fit a tiny periodic series,
the pinball loss gives ordered quantiles, training is seeded and stops early on validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnn_ref.numpy import calendar_features, chronological_split, pinball_loss, split_windows
from rnn_ref.torch import (
    DirectForecaster,
    MIMOForecaster,
    RNNEncoder,
    chunk_inputs,
    fit_forecaster,
    forecast_origins,
    horizon_targets,
    pinball_loss_torch,
    predict_forecaster,
    recursive_forecast_torch,
)

torch.set_num_threads(1)


def periodic(T, period=8, noise=0.0, seed=0):
    t = np.arange(T)
    rng = np.random.default_rng(seed)
    return (
        np.sin(2 * np.pi * t / period)
        + 0.5 * np.cos(4 * np.pi * t / period)
        + noise * (rng.standard_normal(T))
    )


# --- data pipeline --------------------------------------------------------------------------


def test_forecast_origins_stay_inside_the_period():
    o = forecast_origins(100, 200, p=30, H=12)
    assert o[0] == 100 and o[-1] == 200 - 12
    assert np.all(o >= 30) and np.all(o + 12 <= 200)
    o = forecast_origins(0, 200, p=30, H=12, stride=5)
    assert o[0] == 30 and np.all(np.diff(o) == 5)
    assert forecast_origins(0, 20, p=30, H=12).size == 0
    with pytest.raises(ValueError):
        forecast_origins(0, 100, p=0, H=1)


def test_chunk_inputs_values_and_calendar():
    T, p, L = 60, 12, 4
    z = np.arange(T, dtype=float)
    cal = calendar_features(np.arange(T), (4, 12))  # (T, 4)
    origins = np.array([12, 20, 60])
    u = chunk_inputs(z, cal, origins, p, L)
    assert u.shape == (3, p // L, L + 4) and u.dtype == np.float32
    for i, o in enumerate(origins):
        for s in range(p // L):
            first = o - p + s * L
            np.testing.assert_array_equal(u[i, s, :L], z[first : first + L])
            np.testing.assert_allclose(u[i, s, L:], cal[first], atol=1e-7)
    with pytest.raises(ValueError, match="multiple"):
        chunk_inputs(z, cal, origins, 10, 4)
    with pytest.raises(ValueError, match="origins"):
        chunk_inputs(z, cal, np.array([5]), p, L)


def test_chunk_inputs_agree_with_split_windows():
    """The chunked windows are rnn_ref.numpy.split_windows' windows, cut into days."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal(300)
    cal = np.zeros((300, 0))
    p, L, H = 48, 8, 6
    X, Y = split_windows(z, p, H, 100, 200)
    origins = forecast_origins(100, 200, p, H)
    u = chunk_inputs(z, cal, origins, p, L)
    np.testing.assert_allclose(u.reshape(len(origins), p), X, atol=1e-6)
    np.testing.assert_allclose(horizon_targets(z, origins, H), Y, atol=1e-6)


def test_no_window_crosses_a_split():
    """Training windows read nothing at or after the validation start; validation targets lie
    in the validation part; a test window's inputs may come from earlier parts, never later."""
    T, p, H, L = 1000, 96, 24, 24
    train, val, test = chronological_split(T, 200, 200)
    # Mark each value with its index: the windows then say which steps they read.
    z = np.arange(T, dtype=float)
    cal = np.zeros((T, 0))
    for part, sl in (("train", train), ("val", val), ("test", test)):
        o = forecast_origins(sl.start, sl.stop, p, H)
        u, y = chunk_inputs(z, cal, o, p, L), horizon_targets(z, o, H)
        assert y.min() >= sl.start and y.max() < sl.stop, part
        assert np.all(u.max(axis=(1, 2)) < o), part  # inputs end where the targets begin
        assert np.all(u.min(axis=(1, 2)) == o - p), part
        if part == "train":
            assert u.max() < train.stop and y.max() < train.stop


def test_horizon_targets_past_the_end_raises():
    with pytest.raises(ValueError):
        horizon_targets(np.arange(10.0), np.array([5]), 6)


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("cls", [MIMOForecaster, DirectForecaster])
def test_forecaster_shapes(cls, cell):
    torch.manual_seed(0)
    u = torch.randn(5, 7, 52)
    model = cls(52, 16, 48, cell=cell)
    assert model(u).shape == (5, 48)
    qmodel = cls(52, 16, 48, cell=cell, quantiles=(0.1, 0.5, 0.9))
    assert qmodel(u).shape == (5, 48, 3)
    one_step = cls(52, 16, 1, cell=cell)
    assert one_step(u).shape == (5, 1)


def test_encoder_returns_last_hidden_state():
    torch.manual_seed(0)
    enc = RNNEncoder(3, 8, "lstm", num_layers=2)
    u = torch.randn(4, 5, 3)
    out, _ = enc.rnn(u)
    torch.testing.assert_close(enc(u), out[:, -1])
    with pytest.raises(ValueError):
        RNNEncoder(3, 8, "rnn")


def test_bad_quantiles_and_horizon():
    with pytest.raises(ValueError):
        MIMOForecaster(4, 8, 3, quantiles=(0.9, 0.1))
    with pytest.raises(ValueError):
        MIMOForecaster(4, 8, 3, quantiles=(0.0, 0.5))
    with pytest.raises(ValueError):
        DirectForecaster(4, 8, 0)


class _LastValue(nn.Module):
    """A one-step 'model' that predicts the last value of the window (persistence)."""

    def __init__(self, chunk):
        super().__init__()
        self.H, self.chunk = 1, chunk
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, u):
        return u[:, -1, self.chunk - 1 : self.chunk] + 0 * self.dummy


class _DayAgo(nn.Module):
    """A one-step 'model' that predicts the value one period ago (seasonal naive)."""

    def __init__(self, chunk, period):
        super().__init__()
        self.H, self.chunk, self.period = 1, chunk, period
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, u):
        N, S, _ = u.shape
        window = u[:, :, : self.chunk].reshape(N, S * self.chunk)
        return window[:, -self.period : -self.period + 1] + 0 * self.dummy


def test_recursive_forecast_feeds_back_its_own_forecasts():
    z = periodic(200)
    cal = calendar_features(np.arange(260), (8,))
    origins = np.array([100, 150, 200])
    out = recursive_forecast_torch(_LastValue(4), z, cal, origins, p=16, chunk=4, H=10)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out, np.repeat(z[origins - 1, None], 10, axis=1), atol=1e-6)
    # A seasonal-naive step fed back reproduces the series' period beyond one period ahead.
    out = recursive_forecast_torch(_DayAgo(4, 8), z, cal, origins, p=16, chunk=4, H=20)
    expected = np.stack([[z[o - 8 + (k % 8)] for k in range(20)] for o in origins])
    np.testing.assert_allclose(out, expected, atol=1e-6)


def _tiny_periodic_data(p=16, chunk=4, H=8):
    z = periodic(400)
    cal = calendar_features(np.arange(400 + H), (8,))
    o_tr = forecast_origins(0, 300, p, H)
    o_va = forecast_origins(300, 400, p, H)
    make = lambda o: (chunk_inputs(z, cal, o, p, chunk), horizon_targets(z, o, H))  # noqa: E731
    return z, cal, make(o_tr), make(o_va)


@pytest.mark.parametrize("cls", [MIMOForecaster, DirectForecaster])
def test_mimo_and_direct_fit_a_tiny_periodic_series(cls):
    _, _, train, val = _tiny_periodic_data()
    torch.manual_seed(0)
    model = cls(4 + 2, 24, 8, cell="lstm")
    hist = fit_forecaster(model, train, val, epochs=150, lr=1e-2, patience=150, batch_size=64)
    pred = predict_forecaster(model, val[0])
    assert pred.shape == val[1].shape
    assert np.mean((pred - val[1]) ** 2) < 5e-3, hist["best_val_loss"]


def test_recursive_one_step_model_fits_and_runs_h_steps():
    z, cal, train, val = _tiny_periodic_data()
    torch.manual_seed(0)
    model = MIMOForecaster(6, 24, 1, cell="gru")
    fit_forecaster(
        model,
        (train[0], train[1][:, :1]),
        (val[0], val[1][:, :1]),
        epochs=150,
        lr=1e-2,
        patience=150,
    )
    origins = np.array([320, 360])
    out = recursive_forecast_torch(model, z, cal, origins, p=16, chunk=4, H=8)
    truth = horizon_targets(z, origins, 8)
    assert out.shape == (2, 8)
    assert np.mean((out - truth) ** 2) < 2e-2


def test_pinball_loss_torch_matches_numpy():
    rng = np.random.default_rng(0)
    y, q = rng.standard_normal((6, 5)), np.sort(rng.standard_normal((6, 5, 3)), axis=-1)
    taus = (0.1, 0.5, 0.9)
    got = pinball_loss_torch(torch.as_tensor(y), torch.as_tensor(q), taus).item()
    assert got == pytest.approx(pinball_loss(y, q, taus), rel=1e-12)


def test_quantile_training_gives_ordered_quantiles():
    """Targets = N(0, 1) noise independent of the inputs: the fitted quantiles must be ordered
    and near the normal's -1.28, 0, 1.28."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2000, 3, 4)).astype(np.float32)
    y = rng.standard_normal((2000, 2)).astype(np.float32)
    torch.manual_seed(0)
    model = MIMOForecaster(4, 8, 2, quantiles=(0.1, 0.5, 0.9))
    fit_forecaster(
        model,
        (u[:1500], y[:1500]),
        (u[1500:], y[1500:]),
        epochs=40,
        lr=1e-2,
        patience=40,
        batch_size=128,
    )
    q = predict_forecaster(model, u[1500:])  # (500, 2, 3)
    assert np.all(np.diff(q, axis=-1) > 0)
    np.testing.assert_allclose(q.mean(axis=(0, 1)), [-1.2816, 0.0, 1.2816], atol=0.2)
    below = (y[1500:, :, None] < q).mean(axis=(0, 1))
    np.testing.assert_allclose(below, [0.1, 0.5, 0.9], atol=0.06)


# --- training -------------------------------------------------------------------------------


def _train_once(seed):
    _, _, train, val = _tiny_periodic_data()
    torch.manual_seed(seed)
    model = MIMOForecaster(6, 8, 8)
    hist = fit_forecaster(model, train, val, epochs=4, seed=seed, patience=10)
    return model, hist


def test_seeds_reproduce():
    m1, h1 = _train_once(3)
    m2, h2 = _train_once(3)
    m3, h3 = _train_once(4)
    assert h1["val_loss"] == h2["val_loss"]
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert h1["val_loss"] != h3["val_loss"]


def test_early_stopping_keeps_the_best_epoch():
    _, _, train, val = _tiny_periodic_data()
    torch.manual_seed(0)
    model = MIMOForecaster(6, 8, 8)
    # A learning rate this large makes the validation loss jump about: patience must trigger.
    hist = fit_forecaster(model, train, val, epochs=60, lr=0.3, patience=3, max_norm=None)
    assert hist["epochs_run"] <= 60
    assert hist["best_val_loss"] == min(hist["val_loss"])
    assert hist["epochs_run"] - 1 - hist["best_epoch"] <= 3
    u_va, y_va = (torch.as_tensor(a) for a in val)
    with torch.no_grad():
        now = torch.mean((model(u_va) - y_va) ** 2).item()
    assert now == pytest.approx(hist["best_val_loss"], rel=1e-5)


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    _train_once(0)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.cuda
def test_forecaster_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = MIMOForecaster(6, 8, 8)
    u = torch.randn(4, 4, 6)
    expected = model(u)
    got = model.to("cuda")(u.to("cuda")).cpu()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_early_stopping_on_a_custom_validation_criterion():
    """``val_fn`` replaces the validation loss: the recorded values are its values, and the
    weights kept are those of the epoch where it was lowest."""
    z, cal, train, val = _tiny_periodic_data()
    origins = forecast_origins(300, 400, 16, 8)
    truth = horizon_targets(z, origins, 8)
    calls = []

    def recursive_mse(model):
        out = recursive_forecast_torch(model, z, cal, origins, p=16, chunk=4, H=8)
        calls.append(float(np.mean((out - truth) ** 2)))
        return calls[-1]

    torch.manual_seed(0)
    model = MIMOForecaster(6, 8, 1)
    hist = fit_forecaster(
        model,
        (train[0], train[1][:, :1]),
        (val[0], val[1][:, :1]),
        epochs=6,
        patience=10,
        val_fn=recursive_mse,
    )
    assert hist["val_loss"] == calls and hist["best_val_loss"] == min(calls)
    assert recursive_mse(model) == pytest.approx(min(calls[:-1]), rel=1e-6)
