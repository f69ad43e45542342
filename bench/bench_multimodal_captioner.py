"""Chapter 16's image captioner with more splits and seeds: a CNN + BiGRU encoder with a GRU
attention decoder writing the words of a strip of handwritten digits, against chapter 15's CRNN
read with CTC, trained on the same strings and scored on the same held-out strings.

    python bench/bench_multimodal_captioner.py                  # 3 splits, the page's settings
    python bench/bench_multimodal_captioner.py --quick          # a smoke test: tiny runs
    python bench/bench_multimodal_captioner.py --splits 5 --epochs 10
    python bench/bench_multimodal_captioner.py --attention additive
    python bench/bench_multimodal_captioner.py --no-encoder-rnn # keys without the BiGRU

Each *split seed* s draws a new stratified 60/20/20 split of the 1,797 source images
(``split_glyphs(labels, seed=s)``) and new training (row jitter 1), validation and test strings
from the glyph pools (a test string never contains a training glyph); both networks' initial
weights and batch order use the same seed, and both train for the same epochs with the same batch
size, learning rate and schedule, keeping their best validation epoch. Prints exact match (mean,
standard deviation, min, max over the splits), word error rate, CPU seconds per run (training +
decoding, process time), exact match by string length, and the strips that only one of the two
greedy readers gets right, summed over the splits. Settings default to those of
book/ch16_multimodal_captioner.md. No network access, nothing downloaded. See bench/README.md.
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
    ap.add_argument("--n-train", type=int, default=3000, help="training strings (page: 3000)")
    ap.add_argument("--n-test", type=int, default=1000, help="test strings (page: 1000)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of both models (page: 8)")
    ap.add_argument("--beam", type=int, default=4, help="beam width of both (page: 4)")
    ap.add_argument("--attention", choices=["dot", "additive"], default="dot")
    ap.add_argument(
        "--no-encoder-rnn", action="store_true", help="keys from a per-column projection"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.splits, args.n_train, args.n_test, args.epochs = 1, 300, 100, 1
    if min(args.splits, args.n_train, args.n_test, args.epochs, args.beam) < 1:
        ap.error("--splits, --n-train, --n-test, --epochs and --beam must be >= 1")
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:7.4f}       -       -       -"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):7.4f} {sd:7.4f} {min(values):7.4f} {max(values):7.4f}"


def run(args, images, labels):
    import numpy as np
    import torch

    from rnn_ref.numpy import compose_digit_strings, split_glyphs
    from rnn_ref.torch import (
        CRNN,
        ImageCaptioner,
        caption_scores,
        caption_strips,
        decode_strips,
        train_captioner,
        train_crnn,
    )

    cap = "captioner" + (", no BiGRU" if args.no_encoder_rnn else "")
    if args.attention != "dot":
        cap += f", {args.attention}"
    names = [f"{cap}, greedy", f"{cap}, beam {args.beam}"]
    names += ["CRNN + CTC, greedy", f"CRNN + CTC, beam {args.beam}"]
    res = {k: ([], [], []) for k in names}  # exact, WER, CPU s
    by_len = {k: [] for k in names}
    only = [0, 0, 0]  # only the captioner right, only the CRNN right, both wrong (greedy)
    train_kw = dict(epochs=args.epochs, batch_size=32, lr=5e-3, halve_lr_after=2)
    print("\n== Digit strips -> words, held-out glyphs: exact match and WER ==", flush=True)
    for s in range(args.splits):
        tr, va, te = split_glyphs(labels, seed=s)
        rng = np.random.default_rng(1000 + s)
        train = compose_digit_strings(images, labels, tr, args.n_train, rng, jitter=1)
        val = compose_digit_strings(images, labels, va, max(100, args.n_test // 2), rng)
        test = compose_digit_strings(images, labels, te, args.n_test, rng)
        refs = [list(test[2][i, : test[3][i]]) for i in range(args.n_test)]
        lengths = test[3]
        hyps = {}

        def record(name, h, secs, refs=refs, lengths=lengths, hyps=hyps):
            hyps[name] = h
            sc = caption_scores(refs, h)
            res[name][0].append(sc["exact"])
            res[name][1].append(sc["wer"])
            res[name][2].append(secs)
            by_len[name].append(
                [
                    float(np.mean([h[i] == refs[i] for i in np.flatnonzero(lengths == L)]))
                    if np.any(lengths == L)
                    else float("nan")
                    for L in range(1, 7)
                ]
            )

        torch.manual_seed(s)
        model = ImageCaptioner(
            key_size=64,
            hidden_size=64,
            attention=args.attention,
            encoder_rnn=not args.no_encoder_rnn,
        )
        h = train_captioner(model, *train, seed=s, val=val, **train_kw)
        for name, kw in ((names[0], {}), (names[1], {"beam_width": args.beam})):
            t0 = time.process_time()
            out = caption_strips(model, test[0], test[1], "beam" if kw else "greedy", **kw)
            record(name, out, h["cpu_seconds"] + time.process_time() - t0)

        torch.manual_seed(s)
        crnn = CRNN(channels=(32, 64), hidden_size=64, width_pool=2)
        h = train_crnn(crnn, *train, seed=s, val=val, **train_kw)
        for name, method in ((names[2], "greedy"), (names[3], "beam")):
            t0 = time.process_time()
            out = decode_strips(crnn, test[0], test[1], method, args.beam)
            record(name, out, h["cpu_seconds"] + time.process_time() - t0)

        a, b = hyps[names[0]], hyps[names[2]]
        for x, y, r in zip(a, b, refs, strict=True):
            only[0] += x == r and y != r
            only[1] += y == r and x != r
            only[2] += x != r and y != r
        print(
            f"  split {s}: " + ", ".join(f"{k} {v[0][-1]:.4f}" for k, v in res.items()), flush=True
        )
    print(
        f"\n{'model, decoding':32s} | exact match: mean      sd     min     max |    WER "
        "| CPU s/run"
    )
    print("-" * 97)
    for name, (em, wer, secs) in res.items():
        print(
            f"{name:32s} |              {summary(em)} | {statistics.mean(wer):6.4f} | "
            f"{statistics.mean(secs):9.1f}"
        )
    print(
        f"\nexact match by string length (mean over splits)\n{'model, decoding':32s} | "
        + " ".join(f"S={L:<4d}" for L in range(1, 7))
    )
    for name, rows in by_len.items():
        print(f"{name:32s} | " + " ".join(f"{v:6.3f}" for v in np.nanmean(np.array(rows), axis=0)))
    from scipy.stats import binomtest

    n = only[0] + only[1]
    p = binomtest(only[0], n).pvalue if n else 1.0
    print(
        f"\ngreedy, all splits: {only[0]} strips only the captioner reads right, {only[1]} only "
        f"the CRNN, {only[2]} both wrong; exact sign test p = {p:.3g}"
    )
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
    run(args, images, labels)


if __name__ == "__main__":
    main()
