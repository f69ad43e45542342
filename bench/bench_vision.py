"""Chapter 15's experiments with more splits and seeds: row-by-row RNNs against logistic
regression and an SVM on scikit-learn's 8x8 digits, and the CTC-trained CRNN reading digit strings
against an SVM given the true segmentation (and the seed's Flatten -> LSTM).

    python bench/bench_vision.py                    # 3 glyph splits, the page's settings
    python bench/bench_vision.py --quick            # a smoke test: tiny runs, about a minute
    python bench/bench_vision.py --splits 5 --crnn-epochs 12 --only strings
    python bench/bench_vision.py --flat-repeat      # also the seed model with T repeated frames
    python bench/bench_vision.py --no-jitter        # CRNN without the row-jitter augmentation

Each *split seed* s draws a new stratified 60/20/20 split of the 1,797 source images
(``split_glyphs(labels, seed=s)``) and, for the strings, new training/validation/test strings
from the glyph pools (so a test string never contains a training glyph); the networks' initial
weights and batch order use the same seed. The baselines' constants are chosen by 5-fold
cross-validation on the training images of each split. Prints one table per task: test accuracy
(or exact match and character error rate) as mean, standard deviation, min and max over the
splits, and CPU seconds per run (process time, all threads). Settings default to those of
book/ch15_vision.md. No network access, nothing downloaded. See bench/README.md.
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
    ap.add_argument("--splits", type=int, default=3, help="glyph splits / seeds (default 3)")
    ap.add_argument("--only", choices=["rows", "strings", "both"], default="both")
    ap.add_argument("--row-epochs", type=int, default=30, help="row RNN epochs (page: 30)")
    ap.add_argument("--row-hidden", type=int, default=64, help="row RNN hidden size (page: 64)")
    ap.add_argument("--n-train", type=int, default=6000, help="training strings (page: 6000)")
    ap.add_argument("--n-test", type=int, default=1000, help="test strings (page: 1000)")
    ap.add_argument("--crnn-epochs", type=int, default=8, help="CRNN epochs (page: 8)")
    ap.add_argument("--no-jitter", action="store_true", help="no row jitter in training strings")
    ap.add_argument("--beam", type=int, default=8, help="beam width (page: 8)")
    ap.add_argument(
        "--flat-repeat", action="store_true", help="also Flatten -> RepeatVector -> LSTM"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.splits, args.row_epochs, args.n_train, args.n_test, args.crnn_epochs = (
            1,
            3,
            600,
            200,
            2,
        )
    if (
        min(args.splits, args.row_epochs, args.n_train, args.n_test, args.crnn_epochs, args.beam)
        < 1
    ):
        ap.error(
            "--splits, --row-epochs, --n-train, --n-test, --crnn-epochs and --beam must be >= 1"
        )
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:7.4f}       -       -       -"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):7.4f} {sd:7.4f} {min(values):7.4f} {max(values):7.4f}"


def tuned_baselines(X, y, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    svm = GridSearchCV(SVC(), {"C": [1, 3, 10, 30], "gamma": [0.01, 0.02, 0.05, 0.1]}, cv=cv)
    lr = GridSearchCV(LogisticRegression(max_iter=5000), {"C": [0.1, 0.3, 1, 3, 10]}, cv=cv)
    return svm.fit(X, y), lr.fit(X, y)


def run_rows(args, images, labels):
    import numpy as np
    import torch

    from rnn_ref.numpy import as_row_sequences, split_glyphs
    from rnn_ref.torch import RowClassifier, predict_rows, train_row_classifier

    x = as_row_sequences(images)
    X = images.reshape(len(images), -1)
    res = {
        k: ([], []) for k in ("logistic regression", "SVM (RBF)", "LSTM over rows", "GRU over rows")
    }
    print("\n== Row by row: test accuracy on held-out images ==", flush=True)
    for s in range(args.splits):
        tr, va, te = split_glyphs(labels, seed=s)
        t0 = time.process_time()
        svm, lr = tuned_baselines(X[tr], labels[tr], s)
        secs = (time.process_time() - t0) / 2
        for name, m in (("SVM (RBF)", svm), ("logistic regression", lr)):
            res[name][0].append(m.score(X[te], labels[te]))
            res[name][1].append(secs)
        for cell in ("lstm", "gru"):
            torch.manual_seed(s)
            model = RowClassifier(hidden_size=args.row_hidden, cell=cell)
            h = train_row_classifier(
                model,
                x[tr],
                labels[tr],
                epochs=args.row_epochs,
                batch_size=32,
                lr=3e-3,
                seed=s,
                val=(x[va], labels[va]),
            )
            acc = float(np.mean(predict_rows(model, x[te]).argmax(1) == labels[te]))
            res[f"{cell.upper()} over rows"][0].append(acc)
            res[f"{cell.upper()} over rows"][1].append(h["cpu_seconds"])
        print(
            f"  split {s}: " + ", ".join(f"{k} {v[0][-1]:.4f}" for k, v in res.items()), flush=True
        )
    print(f"\n{'model':22s} | accuracy: mean      sd     min     max | CPU s/run")
    print("-" * 72)
    for name, (accs, secs) in res.items():
        print(f"{name:22s} |           {summary(accs)} | {statistics.mean(secs):9.1f}")
    return res


def run_strings(args, images, labels):
    import numpy as np
    import torch

    from rnn_ref.numpy import (
        character_error_rate,
        compose_digit_strings,
        crop_glyphs,
        ctc_greedy_decode,
        split_glyphs,
    )
    from rnn_ref.torch import CRNN, FlattenLSTM, crnn_ctc_loss, decode_strips, train_crnn

    def exact(refs, hyps):
        return float(np.mean([list(r) == list(h) for r, h in zip(refs, hyps, strict=True)]))

    names = [
        "CRNN + CTC, greedy",
        f"CRNN + CTC, beam {args.beam}",
        "SVM + oracle segmentation",
        "Flatten -> LSTM (1 frame)",
    ]
    if args.flat_repeat:
        names.append("Flatten -> RepeatVector -> LSTM")
    res = {k: ([], [], []) for k in names}  # exact, CER, CPU s
    by_len = {k: [] for k in names}
    X = images.reshape(len(images), -1)
    print(
        "\n== Digit strings (1-6 digits from held-out glyphs): exact match and CER ==", flush=True
    )
    for s in range(args.splits):
        tr, va, te = split_glyphs(labels, seed=s)
        rng = np.random.default_rng(1000 + s)
        jitter = 0 if args.no_jitter else 1
        train = compose_digit_strings(images, labels, tr, args.n_train, rng, jitter=jitter)
        val = compose_digit_strings(images, labels, va, max(100, args.n_test // 2), rng)
        *test, lay = compose_digit_strings(images, labels, te, args.n_test, rng, return_layout=True)
        refs = [list(test[2][i, : test[3][i]]) for i in range(args.n_test)]
        lengths = test[3]

        def record(name, hyps, secs, refs=refs, lengths=lengths):
            res[name][0].append(exact(refs, hyps))
            res[name][1].append(character_error_rate(refs, hyps))
            res[name][2].append(secs)
            by_len[name].append(
                [
                    exact(
                        [refs[i] for i in np.flatnonzero(lengths == L)],
                        [hyps[i] for i in np.flatnonzero(lengths == L)],
                    )
                    for L in range(1, 7)
                ]
            )

        torch.manual_seed(s)
        crnn = CRNN(channels=(32, 64), hidden_size=64, width_pool=2)
        h = train_crnn(
            crnn,
            *train,
            epochs=args.crnn_epochs,
            batch_size=32,
            lr=5e-3,
            seed=s,
            val=val,
            halve_lr_after=2,
        )
        t0 = time.process_time()
        record(
            names[0],
            decode_strips(crnn, test[0], test[1], "greedy"),
            h["cpu_seconds"] + time.process_time() - t0,
        )
        t0 = time.process_time()
        record(
            names[1],
            decode_strips(crnn, test[0], test[1], "beam", args.beam),
            h["cpu_seconds"] + time.process_time() - t0,
        )

        t0 = time.process_time()
        svm, _ = tuned_baselines(X[tr], labels[tr], s)
        glyphs = crop_glyphs(test[0], lay["starts"], lengths)
        pred = svm.predict(glyphs.reshape(len(glyphs), -1))
        record(
            names[2],
            [list(p) for p in np.split(pred, np.cumsum(lengths)[:-1])],
            time.process_time() - t0,
        )

        flat_kinds = [("one", names[3])] + ([("repeat", names[4])] if args.flat_repeat else [])
        for kind, name in flat_kinds:
            t0 = time.process_time()
            torch.manual_seed(s)
            W = train[0].shape[-1]
            T_out = W // 2
            model = FlattenLSTM(
                (8, W), num_classes=11, sequence=kind, T=T_out if kind == "repeat" else None
            )
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            xs = torch.tensor(train[0], dtype=torch.float32)
            gen = torch.Generator().manual_seed(s)
            for _ in range(max(1, args.crnn_epochs // 2)):
                for idx in torch.randperm(len(xs), generator=gen).split(64):
                    logits = model(xs[idx])
                    out_len = torch.full((len(idx),), logits.shape[1], dtype=torch.int64)
                    loss = crnn_ctc_loss(
                        logits,
                        out_len,
                        train[2][idx.numpy()],
                        train[3][idx.numpy()],
                        zero_infinity=True,
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                lp = (
                    model(torch.tensor(test[0], dtype=torch.float32))
                    .log_softmax(-1)
                    .double()
                    .numpy()
                )
            hyps = [[k - 1 for k in hy] for hy in ctc_greedy_decode(lp)]
            record(name, hyps, time.process_time() - t0)
        print(
            f"  split {s}: " + ", ".join(f"{k} {v[0][-1]:.4f}" for k, v in res.items()), flush=True
        )
    print(f"\n{'model':32s} | exact match: mean      sd     min     max |    CER | CPU s/run")
    print("-" * 97)
    for name, (em, cer, secs) in res.items():
        cer_mean, secs_mean = statistics.mean(cer), statistics.mean(secs)
        print(f"{name:32s} |              {summary(em)} | {cer_mean:6.4f} | {secs_mean:9.1f}")
    print(
        f"\nexact match by string length (mean over splits)\n{'model':32s} | "
        + " ".join(f"S={L:<4d}" for L in range(1, 7))
    )
    for name, rows in by_len.items():
        print(f"{name:32s} | " + " ".join(f"{v:6.3f}" for v in np.nanmean(np.array(rows), axis=0)))
    return res


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from rnn_ref.numpy import load_digit_images

    torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; splits {args.splits}"
    )
    images, labels = load_digit_images()
    if args.only in ("rows", "both"):
        run_rows(args, images, labels)
    if args.only in ("strings", "both"):
        run_strings(args, images, labels)


if __name__ == "__main__":
    main()
