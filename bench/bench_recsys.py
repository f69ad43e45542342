"""Chapter 14's experiment with more seeds: GRU4Rec (cross-entropy and BPR-max) against popularity,
session popularity, a first-order Markov chain, item-kNN and session-kNN on MovieLens-100k,
sessions by a one-hour gap, a time split (last 20% of the ratings' time for the test), every next
item ranked over all items with the session's seen items removed.

    python bench/bench_recsys.py                      # 3 seeds, the page's settings
    python bench/bench_recsys.py --quick              # a smoke test: 1 seed, 1 epoch
    python bench/bench_recsys.py --seeds 5 --epochs 8
    python bench/bench_recsys.py --data my_log.csv --user-col user --item-col item --time-col ts
    python bench/bench_recsys.py --ties-as-set        # score tied events as a set instead

Each seed s changes the random order inside timestamp ties (``time_split(..., seed=s)``), the
networks' initial weights, the session order of every epoch and the sampled negatives; the split
itself (the cut time) is the same. Prints, per model, HR@10, MRR@10, HR@20 and MRR@20 as mean,
standard deviation, min and max over the seeds, and the CPU seconds per run (process time: fit and
evaluation for the baselines, training with validation and evaluation for GRU4Rec); then the
per-seed difference between the better GRU4Rec (chosen on validation) and each baseline, and the
tie-order leak of the Markov chain (ties by item id against random ties). MovieLens-100k is read
from the installed RecBole wheel (``pip install --no-deps recbole==1.2.1``); nothing is
downloaded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

METRICS = ("HR@10", "MRR@10", "HR@20", "MRR@20")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds (default 3)")
    ap.add_argument("--epochs", type=int, default=5, help="GRU4Rec epochs (page: 5)")
    ap.add_argument("--patience", type=int, default=2, help="early-stopping patience (page: 2)")
    ap.add_argument("--hidden", type=int, default=100, help="GRU hidden size (page: 100)")
    ap.add_argument("--embedding", type=int, default=64, help="item embedding size (page: 64)")
    ap.add_argument("--batch-size", type=int, default=64, help="lanes (page: 64)")
    ap.add_argument("--n-sample", type=int, default=512, help="BPR-max extra negatives (page: 512)")
    ap.add_argument("--gap", type=int, default=3600, help="session gap in seconds (page: 3600)")
    ap.add_argument("--test-fraction", type=float, default=0.2, help="(page: 0.2)")
    ap.add_argument("--ties-as-set", action="store_true", help="score tied events as a set")
    ap.add_argument("--no-sknn", action="store_true", help="skip session-kNN (the slowest)")
    ap.add_argument("--data", default="ml-100k", help="'ml-100k' or a (user, item, time) file")
    ap.add_argument("--user-col", default="user_id")
    ap.add_argument("--item-col", default="item_id")
    ap.add_argument("--time-col", default="timestamp")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="1 seed, 1 epoch: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 1, 1
    if min(args.seeds, args.epochs, args.hidden, args.embedding, args.batch_size) < 1:
        ap.error("--seeds, --epochs, --hidden, --embedding and --batch-size must be >= 1")
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:7.4f}       -       -       -"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):7.4f} {sd:7.4f} {min(values):7.4f} {max(values):7.4f}"


def run(args):
    import torch

    from rnn_ref.datasets import load_interactions
    from rnn_ref.numpy.recsys import (
        ItemKNN,
        MarkovChain,
        Popularity,
        SessionKNN,
        SessionPopularity,
        evaluate_next_item,
        time_split,
    )
    from rnn_ref.torch.recsys import GRU4Rec, score_next, time_tail, train_gru4rec

    if args.data == "ml-100k":
        data = load_interactions("ml-100k")
    else:
        data = load_interactions(
            args.data, user_col=args.user_col, item_col=args.item_col, time_col=args.time_col
        )
    print(f"{len(data):,} events; {data.source.split(', read from')[0]}")
    ev = dict(ks=(10, 20), ties_as_set=args.ties_as_set)
    baselines = [
        ("POP", Popularity),
        ("S-POP", SessionPopularity),
        ("Markov", MarkovChain),
        ("item-kNN", ItemKNN),
    ]
    if not args.no_sknn:
        baselines.append(("session-kNN", lambda: SessionKNN(k=100, sample_size=500)))
    grus = {
        "GRU4Rec cross-entropy": dict(loss="cross-entropy", lr=2e-3),
        "GRU4Rec BPR-max": dict(
            loss="bpr-max", lr=5e-3, n_sample=args.n_sample, sample_alpha=0.0, bpr_reg=1.0
        ),
    }
    res = {name: {m: [] for m in (*METRICS, "cpu")} for name, _ in baselines}
    res.update({name: {m: [] for m in (*METRICS, "cpu")} for name in grus})
    chosen, leak = [], []
    for s in range(args.seeds):
        split = dict(test_fraction=args.test_fraction, gap=args.gap, seed=s)
        train, test, _ = time_split(data.user, data.item, data.timestamp, **split)
        if s == 0:
            print(
                f"train {len(train):,} sessions ({train.items.size:,} events, {train.n_items:,} "
                f"items), test {len(test):,} sessions ({test.items.size:,} events)",
                flush=True,
            )
        for name, make in baselines:
            t0 = time.process_time()
            r = evaluate_next_item(make().fit(train), test, **ev)
            for m in METRICS:
                res[name][m].append(r[m])
            res[name]["cpu"].append(time.process_time() - t0)
        fit, val = time_tail(train, 0.1)
        best_val = {}
        for name, kw in grus.items():
            torch.manual_seed(s)
            model = GRU4Rec(
                train.n_items, embedding_dim=args.embedding, hidden_size=args.hidden, dropout=0.2
            )
            h = train_gru4rec(
                model,
                fit,
                val,
                epochs=args.epochs,
                batch_size=args.batch_size,
                patience=args.patience,
                seed=s,
                **kw,
            )
            t0 = time.process_time()
            r = evaluate_next_item(score_next(model), test, **ev)
            for m in METRICS:
                res[name][m].append(r[m])
            res[name]["cpu"].append(h["cpu_seconds"] + time.process_time() - t0)
            best_val[name] = h["val"][h["best_epoch"] - 1]["MRR@20"]
        chosen.append(max(best_val, key=best_val.get))
        tr_item, te_item, _ = time_split(
            data.user, data.item, data.timestamp, **{**split, "tie_order": "item"}
        )
        leaky = evaluate_next_item(MarkovChain().fit(tr_item), te_item, **ev)
        leak.append({m: leaky[m] / res["Markov"][m][-1] - 1 for m in ("HR@20", "MRR@20")})
        print(
            f"  seed {s}: "
            + ", ".join(f"{k} {v['MRR@20'][-1]:.4f}" for k, v in res.items())
            + f" (MRR@20); chosen on validation: {chosen[-1]}",
            flush=True,
        )

    for m in METRICS:
        print(f"\n{m:6s} {'model':22s} |    mean      sd     min     max | CPU s/run")
        print("-" * 72)
        for name, r in res.items():
            print(f"{'':6s} {name:22s} | {summary(r[m])} | {statistics.mean(r['cpu']):9.1f}")

    print(
        "\nGRU4Rec chosen on validation, minus each baseline, per seed (positive: GRU4Rec better)"
    )
    for name, _ in baselines:
        for m in ("HR@20", "MRR@20"):
            diffs = [res[chosen[s]][m][s] - res[name][m][s] for s in range(args.seeds)]
            wins = sum(d > 0 for d in diffs)
            print(
                f"  vs {name:12s} {m:6s}: mean {statistics.mean(diffs):+.4f}, "
                f"min {min(diffs):+.4f}, max {max(diffs):+.4f}; "
                f"GRU4Rec better in {wins}/{len(diffs)}"
            )
    print(
        "\nMarkov chain with ties ordered by item id (leaky) over random ties: HR@20 "
        + " ".join(f"{v['HR@20']:+.0%}" for v in leak)
        + ", MRR@20 "
        + " ".join(f"{v['MRR@20']:+.0%}" for v in leak)
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
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; seeds {args.seeds}, "
        f"epochs {args.epochs}, ties {'as a set' if args.ties_as_set else 'in random order'}"
    )
    run(args)


if __name__ == "__main__":
    main()
