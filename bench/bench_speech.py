"""Chapter 13's experiments with more seeds: the bidirectional GRU spoken-digit recogniser against
1-NN dynamic time warping and pooled-MFCC logistic regression, on FSDD's official split and
leave-one-speaker-out (LOSO), with and without the synthetic voices in training.

    python bench/bench_speech.py                    # 3 seeds, full DTW, longer LOSO training
    python bench/bench_speech.py --quick            # a smoke test: tiny runs, about a minute
    python bench/bench_speech.py --seeds 5 --pooling both
    python bench/bench_speech.py --only loso --loso-epochs 15 --dtw subset

The data and features are those of book/ch13_speech.md: FSDD (rnn_ref/data/fsdd, CC BY-SA 4.0)
and the synthetic espeak-ng/flite set, 13 MFCCs per 25 ms frame every 10 ms; DTW on their
per-utterance normalisation (CMVN), logistic regression on their pooled statistics (mean and
standard deviation of the MFCCs and deltas, C chosen on a validation split), the GRU on CMVN of
the MFCCs and deltas (26 features), frames stacked by 3. The official split: recordings 0-4 of
every speaker and digit are the test set. LOSO: each speaker in turn is the test set, the five
others train. DTW and logistic regression are deterministic (one run each); the seeds vary the
GRU's initial weights, validation split, batches. Prints one table per evaluation: accuracy mean,
standard deviation, min and max over the seeds (LOSO: of the mean over the six held-out speakers,
and the spread over speakers of the seed-averaged accuracies), and CPU seconds per run (process
time, all threads). No network access. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="GRU seeds (default 3)")
    ap.add_argument("--only", choices=["official", "loso", "both"], default="both")
    ap.add_argument("--epochs", type=int, default=15, help="official-split epochs (page: 15)")
    ap.add_argument("--loso-epochs", type=int, default=10, help="LOSO epochs (page: 5)")
    ap.add_argument("--patience", type=int, default=3, help="early-stopping patience (page: 3)")
    ap.add_argument("--hidden", type=int, default=48, help="GRU units per direction (page: 48)")
    ap.add_argument("--frame-stack", type=int, default=3, help="frames per GRU step (page: 3)")
    ap.add_argument(
        "--pooling", choices=["last", "mean", "both"], default="last", help="GRU readout"
    )
    ap.add_argument(
        "--dtw",
        choices=["full", "subset", "none"],
        default="full",
        help="DTW templates: all training recordings (full), the page's LOSO subset, or skip",
    )
    ap.add_argument("--no-synth", action="store_true", help="skip the synthetic-voice runs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.loso_epochs, args.hidden = 1, 1, 1, 16
        args.dtw = "subset"
    if min(args.seeds, args.epochs, args.loso_epochs, args.hidden, args.frame_stack) < 1:
        ap.error("--seeds, --epochs, --loso-epochs, --hidden and --frame-stack must be >= 1")
    args.poolings = ["last", "mean"] if args.pooling == "both" else [args.pooling]
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:7.3f}      -       -       -"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):7.3f} {sd:7.3f} {min(values):7.3f} {max(values):7.3f}"


class Data:
    """FSDD and the synthetic set with the page's three feature sets."""

    def __init__(self):
        import numpy as np

        from rnn_ref.datasets import load_spoken_digits
        from rnn_ref.numpy import cmvn, deltas, mfcc, pooled_statistics

        t0 = time.process_time()
        self.fsdd = load_spoken_digits("fsdd")
        self.synth = load_spoken_digits("synthetic")
        c_f = [mfcc(x, self.fsdd.sample_rate) for x in self.fsdd.signals]
        c_s = [mfcc(x, self.synth.sample_rate) for x in self.synth.signals]
        self.dtw = [cmvn(c) for c in c_f]
        self.pooled = np.array([pooled_statistics(c, with_deltas=True) for c in c_f])
        self.gru = [cmvn(np.hstack([c, deltas(c, 2)])).astype(np.float32) for c in c_f]
        self.gru_synth = [cmvn(np.hstack([c, deltas(c, 2)])).astype(np.float32) for c in c_s]
        self.y, self.spk, self.index = self.fsdd.digit, self.fsdd.speaker, self.fsdd.index
        self.y_synth = self.synth.digit
        self.seconds = time.process_time() - t0
        print(
            f"data: {len(self.fsdd)} FSDD recordings, {len(self.synth)} synthetic "
            f"({len(self.synth.speakers)} voices); features in {self.seconds:.1f} CPU s",
            flush=True,
        )


def fit_logreg(X, y, C):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000)).fit(X, y)


def choose_C(X, y):
    from rnn_ref.torch import stratified_split

    fit, val = stratified_split(y, 0.1, seed=0)
    acc = {C: fit_logreg(X[fit], y[fit], C).score(X[val], y[val]) for C in (0.1, 1.0, 10.0)}
    return max(acc, key=acc.get)


def train_gru(args, X, y, pooling, seed, epochs):
    import numpy as np
    import torch

    from rnn_ref.torch import SpeechClassifier, train_speech_classifier

    torch.manual_seed(seed)
    model = SpeechClassifier(
        X[0].shape[1],
        10,
        hidden_size=args.hidden,
        frame_stack=args.frame_stack,
        pooling=pooling,
        bidirectional=True,
    )
    hist = train_speech_classifier(
        model,
        X,
        np.asarray(y, dtype=np.int64),
        epochs=epochs,
        batch_size=64,
        lr=3e-3,
        patience=args.patience,
        seed=seed,
    )
    return model, hist


def gru_accuracy(model, X, y):
    import numpy as np

    from rnn_ref.torch import speech_predict

    return float(np.mean(speech_predict(model, X) == y))


def run_official(args, d: Data):
    import numpy as np

    from rnn_ref.numpy import dtw_distance_matrix

    te = d.fsdd.official_test()
    tr_idx, te_idx = np.flatnonzero(~te), np.flatnonzero(te)
    y_tr, y_te = d.y[tr_idx], d.y[te_idx]
    print(f"\n== official split: train {len(tr_idx)}, test {len(te_idx)} ==", flush=True)
    rows = []
    if args.dtw != "none":
        tmpl = tr_idx if args.dtw == "full" else tr_idx[d.index[tr_idx] < 10]
        t0 = time.process_time()
        D = dtw_distance_matrix([d.dtw[i] for i in te_idx], [d.dtw[i] for i in tmpl])
        acc = float(np.mean(d.y[tmpl][D.argmin(1)] == y_te))
        rows.append((f"1-NN DTW ({len(tmpl)} templates)", [acc], time.process_time() - t0))
        print(f"  DTW: {acc:.3f}", flush=True)
    t0 = time.process_time()
    C = choose_C(d.pooled[tr_idx], y_tr)
    acc = fit_logreg(d.pooled[tr_idx], y_tr, C).score(d.pooled[te_idx], y_te)
    rows.append((f"pooled MFCC + logreg C={C:g}", [acc], time.process_time() - t0))
    print(f"  logistic regression: {acc:.3f}", flush=True)
    for pooling in args.poolings:
        accs, secs = [], []
        for seed in range(args.seeds):
            model, h = train_gru(args, [d.gru[i] for i in tr_idx], y_tr, pooling, seed, args.epochs)
            accs.append(gru_accuracy(model, [d.gru[i] for i in te_idx], y_te))
            secs.append(h["cpu_seconds"])
            print(
                f"  GRU {pooling} seed {seed}: {accs[-1]:.3f} ({h['epochs']} epochs, best "
                f"{h['best_epoch']}, {secs[-1]:.0f} CPU s)",
                flush=True,
            )
        rows.append((f"BiGRU H={args.hidden} k={args.frame_stack} {pooling}", accs, np.mean(secs)))
    print(f"\n{'official split':36s} | accuracy: mean      sd     min     max | CPU s/run")
    print("-" * 90)
    for name, accs, secs in rows:
        print(f"{name:36s} |          {summary(accs)} | {secs:9.1f}")
    return rows


def run_loso(args, d: Data):
    import numpy as np
    import scipy.stats

    from rnn_ref.numpy import dtw_distance_matrix

    speakers = d.fsdd.speakers[:2] if args.quick else d.fsdd.speakers
    print(f"\n== leave one speaker out: held-out speakers {speakers} ==", flush=True)
    res = {}  # name -> (seeds x speakers) accuracies
    cpu = {}
    if args.dtw != "none":
        if args.dtw == "full":
            q, t = np.arange(len(d.y)), np.arange(len(d.y))
        else:  # the page's subset: recordings 0-9 against templates 10-14
            q, t = np.flatnonzero(d.index < 10), np.flatnonzero((d.index >= 10) & (d.index < 15))
        q = q[np.isin(d.spk[q], speakers)]
        t0 = time.process_time()
        D = dtw_distance_matrix([d.dtw[i] for i in q], [d.dtw[i] for i in t])
        row = []
        for s in speakers:
            rows, cols = d.spk[q] == s, d.spk[t] != s
            nearest = t[cols][D[np.ix_(rows, cols)].argmin(1)]
            row.append(float(np.mean(d.y[nearest] == d.y[q[rows]])))
        name = f"1-NN DTW ({args.dtw})"
        res[name], cpu[name] = np.array([row]), time.process_time() - t0
        print(f"  {name}: {np.round(row, 3)}", flush=True)
    t0 = time.process_time()
    row = []
    for s in speakers:
        tr, te = d.spk != s, d.spk == s
        C = choose_C(d.pooled[tr], d.y[tr])
        row.append(fit_logreg(d.pooled[tr], d.y[tr], C).score(d.pooled[te], d.y[te]))
    res["pooled MFCC + logreg"], cpu["pooled MFCC + logreg"] = np.array([row]), 0.0
    cpu["pooled MFCC + logreg"] = time.process_time() - t0
    print(f"  logistic regression: {np.round(row, 3)}", flush=True)
    variants = [(p, False) for p in args.poolings]
    if not args.no_synth:
        variants += [(p, True) for p in args.poolings]
    for pooling, use_synth in variants:
        name = f"BiGRU {pooling}" + (" + synthetic" if use_synth else "")
        acc, secs = np.zeros((args.seeds, len(speakers))), []
        for seed in range(args.seeds):
            for j, s in enumerate(speakers):
                tr, te = np.flatnonzero(d.spk != s), np.flatnonzero(d.spk == s)
                X = [d.gru[i] for i in tr] + (d.gru_synth if use_synth else [])
                y = np.concatenate([d.y[tr], d.y_synth if use_synth else []])
                model, h = train_gru(args, X, y, pooling, seed, args.loso_epochs)
                acc[seed, j] = gru_accuracy(model, [d.gru[i] for i in te], d.y[te])
                secs.append(h["cpu_seconds"])
            print(f"  {name} seed {seed}: {np.round(acc[seed], 3)}", flush=True)
        res[name], cpu[name] = acc, float(np.sum(secs)) / args.seeds
    print(
        f"\n{'leave one speaker out':30s} | mean over speakers: mean      sd     min     max "
        f"| sd over speakers | CPU s/run (all folds)"
    )
    print("-" * 120)
    for name, acc in res.items():
        per_seed = list(acc.mean(axis=1))
        spread = float(np.std(acc.mean(axis=0), ddof=1)) if acc.shape[1] > 1 else float("nan")
        print(
            f"{name:30s} |                    {summary(per_seed)} | {spread:16.3f} | "
            f"{cpu[name]:9.1f}"
        )
    print(f"\nper held-out speaker (mean over seeds): {speakers}")
    for name, acc in res.items():
        print(f"  {name:30s} {np.round(acc.mean(axis=0), 3)}")
    for pooling in args.poolings if not args.no_synth else []:
        a, b = res[f"BiGRU {pooling} + synthetic"], res[f"BiGRU {pooling}"]
        diff = (a - b).mean(axis=0)  # per speaker, averaged over seeds
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        # a 95% interval of the mean paired difference over the held-out speakers (t, n - 1)
        half = float(scipy.stats.t.ppf(0.975, len(diff) - 1)) * se if len(diff) > 1 else np.inf
        lo, hi = diff.mean() - half, diff.mean() + half
        verdict = "helps" if lo > 0 else "hurts" if hi < 0 else "no measurable difference"
        print(
            f"synthetic voices ({pooling}): with - without, per speaker {np.round(diff, 3)}; "
            f"mean {diff.mean():+.3f}, standard error over speakers {se:.3f}, 95% interval "
            f"{lo:+.3f} to {hi:+.3f}; better for {int(np.sum(diff > 0))} of {len(diff)} "
            f"speakers -> {verdict}"
        )
    return res


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; seeds {args.seeds}"
    )
    d = Data()
    if args.only in ("official", "both"):
        run_official(args, d)
    if args.only in ("loso", "both"):
        run_loso(args, d)


if __name__ == "__main__":
    main()
