"""GPU benchmark (runs on a CPU too): three PyTorch LSTMs, forward + backward, same weights.

    python bench/bench_lstm_gpu.py                 # batch 64, T = 100, H = D = 128 and 512
    python bench/bench_lstm_gpu.py --quick         # tiny shapes, seconds: a smoke test
    python bench/bench_lstm_gpu.py --compile       # also FastLSTM with backend="compile"

Implementations, all one layer, batch-first, float32, loading torch.nn.LSTM's state_dict:

- ``rnn_ref.torch.LSTM``: the reference code of chapter 5, eager, autograd backward;
- ``FastLSTM``: rnn_ref.torch.FastLSTM (one GEMM for all input projections, fused gates,
  TorchScript loops, hand-written backward with one GEMM for dW_h);
- ``torch.nn.LSTM``: PyTorch's own (cuDNN on a GPU, oneDNN/ATen on a CPU).

Each timed call is ``module.zero_grad(); out, _ = module(x, (h0, c0)); out.backward(dout)``
with x, h0, c0 requiring grad. Warm-up calls first (cuDNN plans, TorchScript's profiling runs,
allocator), ``torch.cuda.synchronize()`` before and after every timed call, the median of the
repeats is the figure. TF32 is off by default (``--tf32`` turns it on) so that every
implementation does float32 arithmetic: cuDNN's RNNs use TF32 when
``torch.backends.cudnn.allow_tf32`` is True, which is torch's default.

Writes ``bench/results/lstm_<device>.json``: ``lstm_cpu.json`` without CUDA, else the GPU's
name, e.g. ``lstm_nvidia-h100-80gb-hbm3.json``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rnn_cpu import cpu_model  # noqa: E402

IMPLEMENTATIONS = ("rnn_ref.torch.LSTM", "FastLSTM", "torch.nn.LSTM")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def time_calls(fn, repeats: int, warmup: int, sync) -> list[float]:
    """Milliseconds per call, each call bracketed by ``sync()``."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def bench_size(N, T, H, args, device, sync):
    """Time the implementations at one hidden size (D = H); returns result rows."""
    import torch

    from rnn_ref.torch import LSTM, FastLSTM

    D, dtype = H, torch.float32
    torch.manual_seed(args.seed)
    ref = torch.nn.LSTM(D, H, batch_first=True, dtype=dtype).to(device)
    modules = {
        "rnn_ref.torch.LSTM": LSTM(D, H, dtype=dtype),
        "FastLSTM": FastLSTM(D, H, dtype=dtype),
    }
    if args.compile:
        modules["FastLSTM (compile)"] = FastLSTM(D, H, dtype=dtype, backend="compile")
    modules["torch.nn.LSTM"] = ref
    for m in modules.values():
        m.load_state_dict(ref.state_dict(), strict=True)
        m.to(device)
    g = torch.Generator().manual_seed(args.seed)
    x, h0, c0 = (
        torch.randn(*s, generator=g, dtype=dtype).to(device).requires_grad_(True)
        for s in ((N, T, D), (1, N, H), (1, N, H))
    )
    dout = torch.randn(N, T, H, generator=g, dtype=dtype).to(device)

    def make_call(m):
        def call():
            m.zero_grad(set_to_none=True)
            x.grad = h0.grad = c0.grad = None
            out, _ = m(x, (h0, c0))
            out.backward(dout)
            return out

        return call

    with torch.no_grad():
        want = ref(x, (h0, c0))[0]
    rows = []
    for name, m in modules.items():
        call = make_call(m)
        diff = float((call().detach() - want).abs().max())
        times = time_calls(call, args.repeats, args.warmup, sync)
        row = {
            "N": N,
            "T": T,
            "D": D,
            "H": H,
            "implementation": name,
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "times_ms": times,
            "max_abs_diff_vs_torch_nn": diff,
        }
        if hasattr(m, "backend"):
            row["backend"] = m.backend
        rows.append(row)
    base = next(r["median_ms"] for r in rows if r["implementation"] == "torch.nn.LSTM")
    for r in rows:
        r["ratio_vs_torch_nn"] = r["median_ms"] / base
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="128,512", help="hidden sizes H (D = H), comma-separated")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="time steps T")
    p.add_argument("--repeats", type=int, help="timed calls (default 25 on CUDA, 5 on a CPU)")
    p.add_argument("--warmup", type=int, help="untimed calls first (default 5 on CUDA, 2 on CPU)")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads on a CPU")
    p.add_argument("--tf32", action="store_true", help="allow TF32 (off by default)")
    p.add_argument("--compile", action="store_true", help="also FastLSTM(backend='compile')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON file (default bench/results/lstm_<device>.json)")
    p.add_argument("--quick", action="store_true", help="N=4, T=5, H=8,16, 2 repeats, 1 warm-up")
    args = p.parse_args(argv)

    import torch

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.quick:
        args.sizes, args.batch, args.steps = "8,16", 4, 5
        args.repeats = args.repeats or 2
        args.warmup = 1 if args.warmup is None else args.warmup
    if args.repeats is None:
        args.repeats = 25 if cuda else 5
    if args.warmup is None:
        args.warmup = 5 if cuda else 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    info = {
        "device_kind": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_model(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if cuda else None,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "python_version": platform.python_version(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "dtype": "float32",
        "tf32": args.tf32,
        "threads": torch.get_num_threads(),
        "cpus_visible": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "quick": args.quick,
        "what": "forward + backward per call (out.backward(dout); gradients of x, h0, c0 and "
        "all weights); median of the timed repeats in milliseconds",
    }
    if not cuda:
        info["note"] = (
            "CPU run: no GPU was available. torch.nn.LSTM runs ATen/oneDNN kernels here, not "
            "cuDNN; these numbers say nothing about GPU speed."
        )
    head = f"{info['device_kind'].upper()}: {info['device_name']}"
    print(head)
    print(
        f"torch {info['torch_version']}, CUDA {info['cuda_version']}, cuDNN {info['cudnn_version']}"
        f", {info['threads']} CPU threads, TF32 {'on' if args.tf32 else 'off'}, float32"
    )
    if info["load_average"]:
        print(
            "load average before the run (1, 5, 15 min): "
            + " ".join(f"{v:.2f}" for v in info["load_average"])
        )
    print(
        f"batch {args.batch}, T = {args.steps}, D = H; forward + backward; "
        f"{args.warmup} warm-up, {args.repeats} timed; times in ms\n"
    )
    rows = []
    line = (
        f"{'H':>5} | {'implementation':<20} | {'median':>9} | {'min':>9} | "
        f"{'vs torch.nn':>11} | max|out diff|"
    )
    print(line)
    print("-" * len(line))
    for H in (int(s) for s in args.sizes.split(",")):
        for r in bench_size(args.batch, args.steps, H, args, device, sync):
            rows.append(r)
            name = r["implementation"] + (f" [{r['backend']}]" if "backend" in r else "")
            print(
                f"{H:>5} | {name:<20} | {r['median_ms']:>9.2f} | {r['min_ms']:>9.2f} | "
                f"{r['ratio_vs_torch_nn']:>10.2f}x | {r['max_abs_diff_vs_torch_nn']:.1e}"
            )
    info["results"] = rows
    out = (
        Path(args.out)
        if args.out
        else ROOT
        / "bench"
        / "results"
        / ("lstm_" + ("cpu" if not cuda else slug(info["device_name"])) + ".json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=1) + "\n")
    print(f"\nwrote {out}")
    return info


if __name__ == "__main__":
    main()
