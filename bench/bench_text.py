"""Chapter 12's experiments with more seeds: the character language model against smoothed
n-gram models, and the word-language classifier against n-gram logistic regression and naive
Bayes.

    python bench/bench_text.py                      # 3 seeds, the page's settings
    python bench/bench_text.py --quick              # a smoke test: tiny runs, seconds
    python bench/bench_text.py --seeds 5 --lm-steps 2000 --cells gru,lstm
    python bench/bench_text.py --text my_corpus.txt --only lm

The data, splits and vocabularies are those of book/ch12_text.md: the pydoc_data text (or a
UTF-8 file given with --text) cut 90/5/5 in order, the vocabulary of the training part with
unknown characters as <unk> for every model; wordfreq's words of six languages, split 80/10/10
at random (split seed 0 for every run, so the seeds vary the networks' initial weights and
batches only). The n-gram models and the scikit-learn baselines are deterministic: one run each.
Prints one table per task: test bits per character (or accuracy and macro-F1) as mean, standard
deviation, min and max over the seeds, and CPU seconds per run (process time, all threads). No
network access, nothing downloaded. See bench/README.md.
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
    ap.add_argument("--seeds", type=int, default=3, help="seeds per network (default 3)")
    ap.add_argument("--only", choices=["lm", "clf", "both"], default="both")
    ap.add_argument("--text", default="pydoc_topics", help="built-in text name or a UTF-8 file")
    ap.add_argument("--lm-steps", type=int, default=700, help="LM updates (page: 700)")
    ap.add_argument("--lm-lr", type=float, default=5e-3, help="LM learning rate (page: 5e-3)")
    ap.add_argument("--hidden", type=int, default=512, help="LM hidden size (page: 512)")
    ap.add_argument("--cells", default="gru", help="comma-separated LM cells: gru,lstm")
    ap.add_argument("--orders", default="2,3,4,5,6", help="n-gram orders (default 2-6)")
    ap.add_argument("--clf-epochs", type=int, default=6, help="classifier epochs (page: 6)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, LM (default 1)")
    ap.add_argument(
        "--clf-threads", type=int, default=1, help="torch threads, classifier (default 1)"
    )
    ap.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.lm_steps, args.hidden, args.clf_epochs = 1, 20, 64, 1
        args.orders = "2,3"
    args.cells = [c.strip().lower() for c in args.cells.split(",") if c.strip()]
    args.orders = [int(o) for o in args.orders.split(",")]
    if args.seeds < 1 or args.lm_steps < 1 or args.clf_epochs < 1:
        ap.error("--seeds, --lm-steps and --clf-epochs must be >= 1")
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:7.3f}      -       -       -"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):7.3f} {sd:7.3f} {min(values):7.3f} {max(values):7.3f}"


def cpu_seconds(fn, *a, **kw):
    t0 = time.process_time()
    out = fn(*a, **kw)
    return out, time.process_time() - t0


def run_lm(args):
    import numpy as np
    import torch

    from rnn_ref.datasets import CharVocab, load_text
    from rnn_ref.numpy import KneserNeyLM, NgramLM
    from rnn_ref.torch import CharLM, evaluate_bpc, train_char_lm

    text = load_text(args.text)
    if args.quick:
        text = text[:60000]
    n = len(text)
    cut1, cut2 = int(0.90 * n), int(0.95 * n)
    train_text, val_text, test_text = text[:cut1], text[cut1:cut2], text[cut2:]
    vocab = CharVocab(train_text)
    tr, va, te = (np.array(vocab.encode(t)) for t in (train_text, val_text, test_text))
    ng_vocab = sorted(set(train_text)) + [vocab.UNK_CHAR]
    va_ng, te_ng = vocab.decode(va), vocab.decode(te)
    print(
        f"\n== character language model: {args.text}, {n:,} characters, V = {len(vocab)}; "
        f"train/val/test {len(tr):,}/{len(va):,}/{len(te):,} =="
    )
    rows = []
    for order in args.orders:
        t0 = time.process_time()
        m = NgramLM(order, k=1.0).fit(train_text, vocab=ng_vocab)
        by_k = {}
        for k in (1.0, 0.1, 0.01, 0.001):
            m.k = k
            by_k[k] = m.bits_per_char(va_ng)
        m.k = min(by_k, key=by_k.get)
        rows.append(
            (
                f"add-k n={order} (k={m.k:g})",
                [m.bits_per_char(te_ng)],
                by_k[m.k],
                time.process_time() - t0,
            )
        )
    for order in args.orders:
        t0 = time.process_time()
        kn = KneserNeyLM(order).fit(train_text, vocab=ng_vocab)
        rows.append(
            (
                f"Kneser-Ney n={order}",
                [kn.bits_per_char(te_ng)],
                kn.bits_per_char(va_ng),
                time.process_time() - t0,
            )
        )
    for name, test, val, secs in rows:
        print(f"  {name}: val {val:.3f} test {test[0]:.3f} bpc, {secs:.1f} CPU s", flush=True)
    for cell in args.cells:
        test, val, secs = [], [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = CharLM(len(vocab), emb_dim=32, hidden_size=args.hidden, cell=cell)
            _, s = cpu_seconds(
                train_char_lm,
                model,
                tr,
                steps=args.lm_steps,
                batch_size=32,
                seq_len=64,
                lr=args.lm_lr,
                clip=1.0,
                seed=seed,
            )
            val.append(evaluate_bpc(model, np.concatenate([tr[-1:], va]))[0])
            test.append(evaluate_bpc(model, np.concatenate([va[-1:], te]))[0])
            secs.append(s)
            print(
                f"  {cell} H={args.hidden} seed {seed}: val {val[-1]:.3f} test "
                f"{test[-1]:.3f} bpc, {s:.0f} CPU s",
                flush=True,
            )
        rows.append(
            (
                f"{cell.upper()} H={args.hidden}, {args.lm_steps} steps",
                test,
                statistics.mean(val),
                statistics.mean(secs),
            )
        )
    print(f"\n{'model':34s} | test bpc: mean      sd     min     max | val bpc | CPU s/run")
    print("-" * 90)
    for name, test, val, secs in rows:
        print(f"{name:34s} |          {summary(test)} | {val:7.3f} | {secs:9.1f}")
    best = min((r for r in rows if "=" in r[0] and "H=" not in r[0]), key=lambda r: r[2])
    print(f"best n-gram on validation: {best[0]}, test {best[1][0]:.3f} bpc")
    return rows


def run_clf(args):
    import warnings

    import numpy as np
    import torch
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.naive_bayes import MultinomialNB

    from rnn_ref.datasets import CharVocab, load_words
    from rnn_ref.torch import CharClassifier, predict_proba, train_classifier

    words, labels, languages = load_words(n_top=2000 if args.quick else 10000)
    words = np.array(words, dtype=object)
    perm = np.random.default_rng(0).permutation(len(words))
    n_tr, n_va = int(0.8 * len(words)), int(0.1 * len(words))
    tr, va, te = perm[:n_tr], perm[n_tr : n_tr + n_va], perm[n_tr + n_va :]
    y_te = labels[te]
    print(
        f"\n== word language classifier: {len(words):,} words, {len(languages)} languages "
        f"{languages}; train/val/test {len(tr):,}/{len(va):,}/{len(te):,} =="
    )

    def scores(pred):
        return float(np.mean(pred == y_te)), float(f1_score(y_te, pred, average="macro"))

    rows = [("majority class", [scores(np.full(len(te), np.bincount(labels[tr]).argmax()))], 0.0)]
    t0 = time.process_time()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    X_tr, X_va, X_te = (
        vec.fit_transform(words[tr]),
        vec.transform(words[va]),
        vec.transform(words[te]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning would be a bug here
        fits = {
            c: LogisticRegression(C=c, solver="saga", tol=1e-3, max_iter=1000, random_state=0).fit(
                X_tr, labels[tr]
            )
            for c in (3.0, 10.0, 30.0)
        }
    c_best = max(fits, key=lambda c: fits[c].score(X_va, labels[va]))
    rows.append(
        (
            f"n-gram logistic regression C={c_best:g}",
            [scores(fits[c_best].predict(X_te))],
            time.process_time() - t0,
        )
    )
    t0 = time.process_time()
    cv = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4))
    N_tr, N_va, N_te = cv.fit_transform(words[tr]), cv.transform(words[va]), cv.transform(words[te])
    nbs = {a: MultinomialNB(alpha=a).fit(N_tr, labels[tr]) for a in (0.1, 0.3, 1.0)}
    a_best = max(nbs, key=lambda a: nbs[a].score(N_va, labels[va]))
    rows.append(
        (
            f"n-gram naive Bayes alpha={a_best:g}",
            [scores(nbs[a_best].predict(N_te))],
            time.process_time() - t0,
        )
    )
    torch.set_num_threads(args.clf_threads)  # small matrices: one thread is enough
    vocab = CharVocab(words[tr])
    seqs = {
        k: [vocab.encode(w) for w in words[idx]] for k, idx in (("tr", tr), ("va", va), ("te", te))
    }
    for pooling, bi in (("last", True), ("mean", False)):
        res, secs = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = CharClassifier(
                len(vocab),
                len(languages),
                emb_dim=32,
                hidden_size=96,
                cell="gru",
                pooling=pooling,
                bidirectional=bi,
            )
            _, s = cpu_seconds(
                train_classifier,
                model,
                seqs["tr"],
                labels[tr],
                epochs=args.clf_epochs,
                batch_size=256,
                lr=5e-3,
                seed=seed,
                val=(seqs["va"], labels[va]),
            )
            res.append(scores(predict_proba(model, seqs["te"]).argmax(1)))
            secs.append(s)
            print(
                f"  GRU {pooling} bi={bi} seed {seed}: accuracy {res[-1][0]:.3f} macro-F1 "
                f"{res[-1][1]:.3f}, {s:.0f} CPU s",
                flush=True,
            )
        name = f"char GRU {'bidirectional' if bi else 'forward'}, {pooling}"
        rows.append((name, res, statistics.mean(secs)))
    print(f"\n{'model':36s} | accuracy: mean      sd     min     max | macro-F1: mean | CPU s/run")
    print("-" * 104)
    for name, res, secs in rows:
        acc = [r[0] for r in res]
        f1 = statistics.mean(r[1] for r in res)
        print(f"{name:36s} |          {summary(acc)} |        {f1:7.3f} | {secs:9.1f}")
    return rows


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
    if args.only in ("lm", "both"):
        run_lm(args)
    if args.only in ("clf", "both"):
        run_clf(args)


if __name__ == "__main__":
    main()
