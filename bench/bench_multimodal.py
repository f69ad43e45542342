"""Chapter 16's fusion experiment with more seeds: audio-only and image-only GRUs against early,
late, concatenation, gated-unit and attention fusion on audio-visual digits, clean and with one
modality corrupted at test time.

    python bench/bench_multimodal.py                          # 3 seeds, the page's settings
    python bench/bench_multimodal.py --quick                  # a smoke test: tiny runs
    python bench/bench_multimodal.py --seeds 5
    python bench/bench_multimodal.py --modality-dropout 0 0.5 0.7  # the page's choice
    python bench/bench_multimodal.py --early repeat           # early fusion over every audio frame

Each seed s builds ``audio_visual_digits(seed=s, with_deltas=True)``: FSDD recordings paired by
label with scikit-learn digit images, with a validation speaker and a test speaker drawn by the
seed (never heard in training) and a 60/20/20 split of the images by source image; the networks'
initial weights and batch order use the same seed. Every model is trained on the clean training
pairs with early stopping on the validation speaker (book/ch16_multimodal.md's settings), then
scored on the test pairs clean, with Gaussian pixel noise of std 0.3 and 0.7 on the images, and
with white noise at 0 and -10 dB SNR on the audio (MFCCs recomputed); late fusion also with its
weight chosen on validation pairs corrupted the same way ("w per noise"). Prints, per condition, the
test accuracy as mean, standard deviation, min and max over the seeds, the validation accuracy,
the CPU seconds per run (process time), and each fusion's margin over the better single modality
of the same seed and condition. No network access, nothing downloaded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

CONDITIONS = [
    ("clean", None, None),
    ("img 0.3", "image", 0.3),
    ("img 0.7", "image", 0.7),
    ("aud 0dB", "audio", 0.0),
    ("aud -10dB", "audio", -10.0),
]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds (speakers, glyphs, pairs, init)")
    ap.add_argument("--epochs", type=int, default=25, help="maximum epochs (page: 25)")
    ap.add_argument("--patience", type=int, default=4, help="early-stopping patience (page: 4)")
    ap.add_argument(
        "--modality-dropout",
        type=float,
        nargs="+",
        default=[0.7],
        help="modality-dropout rates of the learned fusions (page: 0.7)",
    )
    ap.add_argument("--early", choices=["pool", "repeat"], default="pool", help="alignment")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 1, 2
    if min(args.seeds, args.epochs, args.patience) < 1:
        ap.error("--seeds, --epochs and --patience must be >= 1")
    if any(not 0.0 <= p < 1.0 for p in args.modality_dropout):
        ap.error("--modality-dropout rates must be in [0, 1)")
    return args


def summary(values) -> str:
    if len(values) == 1:
        return f"{values[0]:6.3f}"
    return (
        f"{statistics.mean(values):6.3f}±{statistics.stdev(values):5.3f} "
        f"({min(values):.3f}-{max(values):.3f})"
    )


def run_seed(args, seed, results):
    import numpy as np
    import torch

    from rnn_ref.numpy import (
        add_image_noise,
        add_white_noise,
        audio_features,
        audio_visual_digits,
        late_fusion,
    )
    from rnn_ref.torch import (
        EarlyFusionClassifier,
        MultimodalClassifier,
        choose_late_weights,
        multimodal_log_proba,
        train_multimodal,
    )

    av = audio_visual_digits(seed=seed, with_deltas=True)
    tr, va, te = av.train, av.val, av.test
    sizes = dict(audio_hidden=32, image_hidden=32, fusion_size=32)
    train = dict(epochs=args.epochs, batch_size=64, lr=3e-3, patience=args.patience, seed=seed)
    val = (va.audio, va.image, va.label)
    specs = [
        ("audio only", lambda: MultimodalClassifier("audio", **sizes)),
        ("image only", lambda: MultimodalClassifier("image", **sizes)),
        (f"early fusion ({args.early})", lambda: EarlyFusionClassifier(args.early, hidden_size=32)),
    ]
    several = len(args.modality_dropout) > 1
    for p in args.modality_dropout:
        tag = f" md={p:g}" if several else ""
        for name, fusion in (
            ("concatenation", "concat"),
            ("gated unit", "gated"),
            ("attention", "attention"),
        ):
            specs.append(
                (
                    name + tag,
                    lambda fusion=fusion, p=p: MultimodalClassifier(
                        fusion, modality_dropout=p, **sizes
                    ),
                )
            )
    models = {}
    for name, make in specs:
        torch.manual_seed(seed)
        model = make()
        h = train_multimodal(model, tr.audio, tr.image, tr.label, val, **train)
        models[name] = model
        r = results.setdefault(name, {"cpu": [], "val": []})
        r["cpu"].append(h["cpu_seconds"])
        r["val"].append(h["val_acc"][h["best_epoch"] - 1])

    lp_val = [
        multimodal_log_proba(models[m], va.audio, va.image) for m in ("audio only", "image only")
    ]
    w, _ = choose_late_weights(lp_val, va.label)
    lp_val_late = late_fusion(lp_val, w)
    r = results.setdefault("late fusion", {"cpu": [], "val": [], "w_audio": []})
    r["cpu"].append(0.0)
    r["val"].append(float(np.mean(lp_val_late.argmax(1) == va.label)))
    r["w_audio"].append(float(w[0]))

    def corrupt(split, modality, level, offset):
        audio, images = split.audio, split.image
        if modality == "image":
            images = add_image_noise(split.image, level, offset + 1000 + int(100 * level))
        elif modality == "audio":
            rng = np.random.default_rng(offset + 2000 + int(level) + 100)
            audio = audio_features(
                [add_white_noise(x, level, rng) for x in split.signals], av.sample_rate, 13, True
            )
        return audio, images

    def experts(audio, images):
        return [
            multimodal_log_proba(models[m], audio, images) for m in ("audio only", "image only")
        ]

    for cond, modality, level in CONDITIONS:
        audio, images = corrupt(te, modality, level, 0)
        lps = {name: multimodal_log_proba(m, audio, images) for name, m in models.items()}
        lps["late fusion"] = late_fusion([lps["audio only"], lps["image only"]], w)
        # the weight chosen on validation pairs corrupted the same way (noise-aware)
        w_known, _ = choose_late_weights(experts(*corrupt(va, modality, level, 5000)), va.label)
        lps["late fusion, w per noise"] = late_fusion(
            [lps["audio only"], lps["image only"]], w_known
        )
        acc = {name: float(np.mean(lp.argmax(1) == te.label)) for name, lp in lps.items()}
        best = max(acc["audio only"], acc["image only"])
        for name, a in acc.items():
            results.setdefault(name, {}).setdefault(cond, []).append(a)
            results[name].setdefault("margin " + cond, []).append(a - best)
        results.setdefault("better single", {}).setdefault(cond, []).append(best)
    print(
        f"seed {seed}: test speaker {av.speakers['test']}, validation {av.speakers['val']}; "
        f"late-fusion w_audio {w[0]:.2f}; clean test accuracy "
        + ", ".join(f"{n} {results[n]['clean'][-1]:.3f}" for n in results if n != "better single"),
        flush=True,
    )


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; seeds {args.seeds}, epochs "
        f"{args.epochs}, patience {args.patience}, modality dropout {args.modality_dropout}, "
        f"early fusion {args.early}"
    )
    results: dict = {}
    t0 = time.process_time()
    for seed in range(args.seeds):
        run_seed(args, seed, results)
    names = [n for n in results if n != "better single"]
    conds = [c for c, _, _ in CONDITIONS]

    print(f"\ntest accuracy over {args.seeds} seed(s): mean±sd (min-max); noise at test time only")
    print(
        f"{'model':26s} {'validation':>24s} "
        + " ".join(f"{c:>24s}" for c in conds)
        + f" {'CPU s/run':>9s}"
    )
    for n in names + ["better single"]:
        r = results[n]
        val = summary(r["val"]) if "val" in r else "-"
        cpu = f"{statistics.mean(r['cpu']):9.1f}" if "cpu" in r else f"{'-':>9s}"
        print(f"{n:26s} {val:>24s} " + " ".join(f"{summary(r[c]):>24s}" for c in conds) + " " + cpu)

    print("\nmargin over the better single modality (same seed, same condition): mean±sd (min-max)")
    print(f"{'model':26s} " + " ".join(f"{c:>24s}" for c in conds) + "  seeds won (clean)")
    for n in names:
        if n in ("audio only", "image only"):
            continue
        r = results[n]
        won = sum(m > 0 for m in r["margin clean"])
        print(
            f"{n:26s} "
            + " ".join(f"{summary(r['margin ' + c]):>24s}" for c in conds)
            + f"  {won}/{args.seeds}"
        )
    w = results["late fusion"]["w_audio"]
    print(f"\nlate fusion's w_audio (chosen on validation): {summary(w)}")
    print(f"total CPU {time.process_time() - t0:.0f} s")


if __name__ == "__main__":
    main()
