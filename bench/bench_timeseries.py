"""Chapter 11's forecasting experiment with more seeds: day-ahead forecasts of Taylor's
half-hourly electricity demand, rolling origin over the 14 test midnights, every network
trained with several seeds, against the baselines and the statistical models of the page, and,
per seed, the network the page would choose on validation.

    python bench/bench_timeseries.py                 # 5 seeds (a few minutes on one core)
    python bench/bench_timeseries.py --quick         # 1 seed, at most 8 epochs: seconds
    python bench/bench_timeseries.py --seeds 10 --threads 1 --hidden 64

The pipeline is the page's (book/ch11_timeseries.md): 8 training weeks, 2 validation weeks
(early stopping and every choice), 2 test weeks; networks read the last week of the scaled
weekly difference x_t - x_{t-336}, one day (48 values + 4 calendar features) per step. For each
model the table gives the mean and the standard deviation over seeds of the test MASE (m = 336,
scaled on the training weeks), sMAPE (M4, %) and RMSE (MW), the mean validation MASE (14
midnights), and the CPU seconds per run (training and forecasting; process time, so other
programs' load does not count). Deterministic baselines run once (spread 0). Nothing is
downloaded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

SPECS = {  # name -> (class name, cell, horizon the model emits)
    "LSTM recursive": ("MIMOForecaster", "lstm", 1),
    "LSTM direct": ("DirectForecaster", "lstm", 48),
    "LSTM MIMO": ("MIMOForecaster", "lstm", 48),
    "GRU MIMO": ("MIMOForecaster", "gru", 48),
}
QUANTILES = (0.1, 0.5, 0.9)
DAY, WEEK, H = 48, 336, 48


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=None, help="seeds per network (default 5)")
    ap.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 60)")
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="1 seed, at most 8 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds or 1
        args.epochs = args.epochs or 8
    args.seeds = args.seeds or 5
    args.epochs = args.epochs or 60
    if args.seeds < 1 or args.epochs < 1:
        ap.error("--seeds and --epochs must be >= 1")
    return args


def prepare():
    """The page's data, splits, scaled weekly differences, calendar and windows."""
    from rnn_ref.datasets import load_series
    from rnn_ref.numpy import calendar_features, chronological_split, fit_scaler, scale
    from rnn_ref.torch import chunk_inputs, forecast_origins, horizon_targets

    x = load_series("taylor").values
    T = len(x)
    train, val, test = chronological_split(T, 2 * WEEK, 2 * WEEK)
    d = np.zeros(T)
    d[WEEK:] = x[WEEK:] - x[:-WEEK]
    d_mu, d_sigma = fit_scaler(d[WEEK : train.stop])
    zd = np.zeros(T)
    zd[WEEK:] = scale(d[WEEK:], d_mu, d_sigma)
    calendar = calendar_features(np.arange(T + H), (DAY, WEEK))
    o_train = forecast_origins(0, train.stop, 2 * WEEK, H)
    o_val = forecast_origins(val.start, val.stop, 2 * WEEK, H)
    ctx = {
        "o_val": o_val,
        "x": x,
        "train": train,
        "val": val,
        "test": test,
        "d": d,
        "d_mu": d_mu,
        "d_sigma": d_sigma,
        "zd": zd,
        "calendar": calendar,
        "origins": {
            "val": np.arange(val.start, val.stop - H + 1, DAY),
            "test": np.arange(test.start, test.stop - H + 1, DAY),
        },
        "u_train": chunk_inputs(zd, calendar, o_train, WEEK, DAY),
        "y_train": horizon_targets(zd, o_train, H),
        "u_val": chunk_inputs(zd, calendar, o_val, WEEK, DAY),
        "y_val": horizon_targets(zd, o_val, H),
    }
    return ctx


def scores(ctx, Y_true, Y_pred):
    from rnn_ref.numpy import mase, smape

    err = Y_true - Y_pred
    return {
        "MASE": mase(Y_true, Y_pred, ctx["x"][ctx["train"]], WEEK),
        "sMAPE": smape(Y_true, Y_pred),
        "RMSE": float(np.sqrt(np.mean(err**2))),
    }


def truth(ctx, part):
    o = ctx["origins"][part]
    return ctx["x"][o[:, None] + np.arange(H)]


def baselines(ctx):
    """name -> {"val": scores, "test": scores, "cpu": seconds}; orders chosen on validation."""
    from rnn_ref.numpy import (
        drift_forecast,
        fit_ar,
        mase,
        persistence_forecast,
        recursive_forecast,
        rolling_origin,
        seasonal_naive_forecast,
    )

    x, train = ctx["x"], ctx["train"]

    def ar(series, p):
        coef, c = fit_ar(series, p)
        return lambda w: c + coef @ w[::-1]

    def ar_fn(p):
        step = ar(x[train], p)
        return lambda h, H: recursive_forecast(step, h, H, p)

    d_train = x[WEEK : train.stop] - x[: train.stop - WEEK]

    def sarima_fn(p):
        step = ar(d_train, p)

        def forecast(h, H):
            return h[len(h) - WEEK : len(h) - WEEK + H] + recursive_forecast(
                step, h[WEEK:] - h[:-WEEK], H, p
            )

        return forecast

    def val_mase(fn):
        Yt, Yp = rolling_origin(x, fn, ctx["origins"]["val"], H)
        return mase(Yt, Yp, x[train], WEEK)

    ar_p = min((2, 48, 96, 336, 337, 338, 340, 344), key=lambda p: val_mase(ar_fn(p)))
    sar_p = min((1, 2, 3, 24, 48, 96), key=lambda p: val_mase(sarima_fn(p)))
    models = {
        "persistence": persistence_forecast,
        "drift": drift_forecast,
        "seasonal naive m=48": lambda h, H: seasonal_naive_forecast(h, DAY, H),
        "seasonal naive m=336": lambda h, H: seasonal_naive_forecast(h, WEEK, H),
        f"AR({ar_p})": ar_fn(ar_p),
        f"SARIMA({sar_p},0,0)(0,1,0)336": sarima_fn(sar_p),
        "Holt-Winters (weekly)": holt_winters_fn(x[train]),
    }
    out = {}
    for name, fn in models.items():
        c0 = time.process_time()
        entry = {}
        for part in ("val", "test"):
            Yt, Yp = rolling_origin(x, fn, ctx["origins"][part], H)
            entry[part] = scores(ctx, Yt, Yp)
        entry["cpu"] = time.process_time() - c0
        out[name] = entry
    return out


def holt_winters_fn(x_train):
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        hw = ExponentialSmoothing(
            x_train, seasonal="add", seasonal_periods=WEEK, initialization_method="heuristic"
        ).fit()

    def forecast(history, H):
        model = ExponentialSmoothing(
            history,
            seasonal="add",
            seasonal_periods=WEEK,
            initialization_method="known",
            initial_level=hw.params["initial_level"],
            initial_seasonal=hw.params["initial_seasons"],
        )
        fitted = model.fit(
            smoothing_level=hw.params["smoothing_level"],
            smoothing_seasonal=hw.params["smoothing_seasonal"],
            optimized=False,
        )
        return fitted.forecast(H)

    return forecast


def to_mw(ctx, origins, z_pred, mu=None, sigma=None):
    mu = ctx["d_mu"] if mu is None else mu
    sigma = ctx["d_sigma"] if sigma is None else sigma
    last_week = ctx["x"][origins[:, None] - WEEK + np.arange(H)]
    return last_week + mu + sigma * z_pred


def train_network(ctx, name, seed, args):
    """One seed of one network of SPECS: {"val": scores, "test": scores, "cpu": seconds}."""
    import torch

    import rnn_ref.torch as rt

    cls_name, cell, h_out = SPECS[name]
    c0 = time.process_time()
    torch.manual_seed(seed)
    model = getattr(rt, cls_name)(DAY + 4, args.hidden, h_out, cell=cell)
    o_val, cal = ctx["o_val"], ctx["calendar"]

    def recursive_val_mse(m):  # the page's early-stopping criterion for the one-step model
        z = rt.recursive_forecast_torch(m, ctx["zd"], cal, o_val, WEEK, DAY, H)
        return float(np.mean((z - ctx["y_val"]) ** 2))

    rt.fit_forecaster(
        model,
        (ctx["u_train"], ctx["y_train"][:, :h_out]),
        (ctx["u_val"], ctx["y_val"][:, :h_out]),
        epochs=args.epochs,
        patience=args.patience,
        lr=args.lr,
        seed=seed,
        progress=False,
        val_fn=recursive_val_mse if h_out == 1 else None,
    )

    def forecast(o):
        if h_out == 1:
            z = rt.recursive_forecast_torch(model, ctx["zd"], ctx["calendar"], o, WEEK, DAY, H)
        else:
            z = rt.predict_forecaster(
                model, rt.chunk_inputs(ctx["zd"], ctx["calendar"], o, WEEK, DAY)
            )
        return to_mw(ctx, o, z)

    entry = {}
    for part in ("val", "test"):
        entry["Y_" + part] = forecast(ctx["origins"][part])
        entry[part] = scores(ctx, truth(ctx, part), entry["Y_" + part])
    o = ctx["o_val"]
    entry["val_all"] = scores(ctx, ctx["x"][o[:, None] + np.arange(H)], forecast(o))["MASE"]
    entry["cpu"] = time.process_time() - c0
    return entry


def train_quantile(ctx, seed, args):
    """The quantile LSTM (MIMO): coverage of its 80% interval on the test days, raw and after
    a conformal widening fitted on the validation days; the median's scores."""
    import torch

    import rnn_ref.torch as rt
    from rnn_ref.numpy import interval_coverage

    c0 = time.process_time()
    torch.manual_seed(seed)
    model = rt.MIMOForecaster(DAY + 4, args.hidden, H, quantiles=QUANTILES)
    rt.fit_forecaster(
        model,
        (ctx["u_train"], ctx["y_train"]),
        (ctx["u_val"], ctx["y_val"]),
        epochs=args.epochs,
        patience=args.patience,
        lr=args.lr,
        seed=seed,
        progress=False,
    )
    q = {}
    for part in ("val", "test"):
        o = ctx["origins"][part]
        zq = rt.predict_forecaster(model, rt.chunk_inputs(ctx["zd"], ctx["calendar"], o, WEEK, DAY))
        q[part] = np.stack([to_mw(ctx, o, zq[..., j]) for j in range(3)], axis=-1)
    widen = conformal_margin(truth(ctx, "val"), q["val"][..., 0], q["val"][..., 2], 0.8)
    y = truth(ctx, "test")
    lo, med, hi = q["test"][..., 0], q["test"][..., 1], q["test"][..., 2]
    entry = {
        "test": scores(ctx, y, med),
        "coverage": interval_coverage(y, lo, hi),
        "coverage_conformal": interval_coverage(y, lo - widen, hi + widen),
        "cpu": time.process_time() - c0,
    }
    return entry


def conformal_margin(y, lower, upper, level):
    """Conformalised quantile regression (Romano et al. 2019): the margin Q such that
    [lower - Q, upper + Q] covers a fraction ``level`` of the calibration points."""
    s = np.maximum(lower - y, y - upper).ravel()
    n = s.size
    k = min(int(np.ceil((n + 1) * level)), n)
    return float(np.sort(s)[k - 1])


def train_leaky(ctx, seed, args):
    """The page's leaky pipeline (scaler on all data, random window split, early stopping on
    the test days): the test MASE it reports."""
    import torch

    import rnn_ref.torch as rt
    from rnn_ref.numpy import fit_scaler, mase

    x, d, cal = ctx["x"], ctx["d"], ctx["calendar"]
    mu, sigma = fit_scaler(d[WEEK:])
    zl = np.zeros(len(x))
    zl[WEEK:] = (d[WEEK:] - mu) / sigma
    o_all = rt.forecast_origins(0, len(x), 2 * WEEK, H)
    o_tr = np.sort(np.random.default_rng(seed).permutation(o_all)[: int(0.8 * len(o_all))])
    o_te = ctx["origins"]["test"]
    torch.manual_seed(seed)
    model = rt.MIMOForecaster(DAY + 4, args.hidden, H)
    rt.fit_forecaster(
        model,
        (rt.chunk_inputs(zl, cal, o_tr, WEEK, DAY), rt.horizon_targets(zl, o_tr, H)),
        (rt.chunk_inputs(zl, cal, o_te, WEEK, DAY), rt.horizon_targets(zl, o_te, H)),
        epochs=args.epochs,
        patience=args.patience,
        lr=args.lr,
        seed=seed,
        progress=False,
    )
    z = rt.predict_forecaster(model, rt.chunk_inputs(zl, cal, o_te, WEEK, DAY))
    return mase(truth(ctx, "test"), to_mw(ctx, o_te, z, mu, sigma), x[ctx["train"]], WEEK)


def _ms(values, fmt):
    if len(values) == 1:
        return f"{values[0]:{fmt}}" + " " * 8
    return f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values):{fmt}}"


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from tqdm.auto import tqdm

    wall0 = time.perf_counter()
    ctx = prepare()
    base = baselines(ctx)
    runs = {name: [] for name in SPECS}
    quant, leaky = [], []
    jobs = [(name, seed) for seed in range(args.seeds) for name in [*SPECS, "quantile", "leaky"]]
    for name, seed in tqdm(jobs, desc="training", disable=not sys.stderr.isatty()):
        if name == "quantile":
            quant.append(train_quantile(ctx, seed, args))
        elif name == "leaky":
            leaky.append(train_leaky(ctx, seed, args))
        else:
            runs[name].append(train_network(ctx, name, seed, args))

    print(
        f"# bench_timeseries: Taylor (2003) half-hourly demand, day-ahead (H = 48) from the 14 "
        f"test midnights; {args.seeds} seed(s), hidden {args.hidden}, <= {args.epochs} epochs, "
        f"patience {args.patience}, torch {torch.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} CPUs"
    )
    head = f"{'model':30s} {'n':>2s} {'test MASE':>15s} {'test sMAPE %':>15s} {'test RMSE MW':>15s}"
    print(head + f" {'val MASE':>9s} {'CPU s/run':>9s}")
    rows = [(n, [e]) for n, e in base.items()] + [(n, r) for n, r in runs.items()]
    combos = []  # the page's combination: the mean of the four networks' forecasts, per seed
    for i in range(args.seeds):
        combos.append(
            {
                part: scores(
                    ctx, truth(ctx, part), np.mean([runs[n][i]["Y_" + part] for n in SPECS], 0)
                )
                for part in ("val", "test")
            }
            | {"cpu": sum(runs[n][i]["cpu"] for n in SPECS)}
        )
    rows.append(("mean of the 4 networks", combos))
    rows.append(("LSTM MIMO quantile, median", quant))
    for name, entries in rows:
        tm = [e["test"]["MASE"] for e in entries]
        ts = [e["test"]["sMAPE"] for e in entries]
        tr = [e["test"]["RMSE"] for e in entries]
        vm = [e["val"]["MASE"] for e in entries if "val" in e]
        cpu = statistics.mean(e["cpu"] for e in entries)
        vtxt = f"{statistics.mean(vm):9.3f}" if vm else f"{'-':>9s}"
        print(
            f"{name:30s} {len(entries):2d} {_ms(tm, '6.3f')} {_ms(ts, '6.3f')} {_ms(tr, '6.0f')}"
            f" {vtxt} {cpu:9.2f}"
        )
    val_all = {n: [e["val_all"] for e in runs[n]] for n in SPECS}
    print(
        "\nvalidation MASE on all 625 validation windows (the page chooses by it): "
        + ", ".join(f"{n} {_ms(v, '.3f').strip()}" for n, v in val_all.items())
    )
    picks = [min(SPECS, key=lambda n, i=i: val_all[n][i]) for i in range(args.seeds)]
    test_of_pick = [runs[n][i]["test"]["MASE"] for i, n in enumerate(picks)]
    print(
        f"network chosen on validation, per seed: {', '.join(picks)}; its test MASE "
        f"{_ms(test_of_pick, '.3f').strip()} (per seed: "
        f"{', '.join(f'{v:.3f}' for v in test_of_pick)}; weekly seasonal naive "
        f"{base['seasonal naive m=336']['test']['MASE']:.3f})"
    )
    cov = [q["coverage"] for q in quant]
    cov_c = [q["coverage_conformal"] for q in quant]
    print(
        f"80% interval coverage on the test days: raw {_ms(cov, '.3f').strip()}, conformal "
        f"(widened on validation) {_ms(cov_c, '.3f').strip()}"
    )
    honest = [e["test"]["MASE"] for e in runs["LSTM MIMO"]]
    print(
        f"LSTM MIMO test MASE: honest pipeline {_ms(honest, '.3f').strip()}, leaky pipeline "
        f"{_ms(leaky, '.3f').strip()}"
    )
    print(f"wall time {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
