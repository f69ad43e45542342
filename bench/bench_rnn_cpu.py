"""CPU benchmark: rnn_ref.numpy's RNN (forward + backward) against torch.nn.RNN (forward +
autograd backward), same shapes, same dtype, same thread count, in one run.

    python bench/bench_rnn_cpu.py                       # default shapes, 7 repeats
    python bench/bench_rnn_cpu.py --quick               # a tiny run, seconds
    python bench/bench_rnn_cpu.py --shapes 64x100x256x256 --threads 1 --repeats 11

A shape is NxTxDxH (batch, time steps, input size, hidden size). Each timed call is one forward
and one backward of the whole sequence (numpy: rnn_forward + rnn_backward giving dx, dh0 and the
three weight gradients; torch: module(x, h0) then out.backward(dhs), with x and h0 requiring
grad so that it computes the same five gradients). Nothing is downloaded: the data are random.
See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from pathlib import Path

DEFAULT_SHAPES = "64x100x256x256,32x50x128x128"
QUICK_SHAPES = "4x10x16x16"


def parse_args(argv=None, doc=None):
    ap = argparse.ArgumentParser(description=(doc or __doc__).split("\n\n")[0])
    ap.add_argument(
        "--shapes", default=None, help=f"comma-separated NxTxDxH (default {DEFAULT_SHAPES})"
    )
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both torch and numpy's BLAS (default: the CPUs this process may use)",
    )
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--quick", action="store_true", help=f"tiny run: shapes {QUICK_SHAPES}, 3 repeats"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.shapes = args.shapes or QUICK_SHAPES
        args.repeats = args.repeats or 3
        args.warmup = min(args.warmup, 1)
    args.shapes = args.shapes or DEFAULT_SHAPES
    args.repeats = args.repeats or 7
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    try:
        args.shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    except ValueError:
        ap.error(f"--shapes must look like {DEFAULT_SHAPES}")
    if any(len(s) != 4 or min(s) < 1 for s in args.shapes):
        ap.error(f"--shapes must look like {DEFAULT_SHAPES} (four positive sizes each)")
    if args.threads is None:
        args.threads = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    return args


# --- numpy's BLAS threads ------------------------------------------------------------------------
# numpy's BLAS (OpenBLAS in the pip wheels, as scipy-openblas) keeps its own thread pool, separate
# from torch's OpenMP/MKL one. The environment variables set before importing numpy size it; the
# library's own get/set functions, found here with ctypes (what threadpoolctl does), report it.

_GET = (
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)
_SET = (
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _blas_lib():
    try:
        paths = {
            line.split()[-1]
            for line in Path("/proc/self/maps").read_text().splitlines()
            if "openblas" in line.lower() and line.split()[-1].startswith("/")
        }
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_call(names, *args):
    lib = _blas_lib()
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            return fn(*args)
    return None


def blas_threads() -> int | None:
    return _blas_call(_GET)


def set_blas_threads(n: int) -> None:
    _blas_call(_SET, ctypes.c_int(n))


# --- timing -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_calls(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_shape(shape, args, np_dtype, t_dtype):
    """Time one shape; returns (N, T, D, H, numpy times, torch times, max |hs difference|)."""
    import numpy as np
    import torch

    from rnn_ref.convert import from_torch
    from rnn_ref.numpy import rnn_backward, rnn_forward

    N, T, D, H = shape
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    module = torch.nn.RNN(D, H, batch_first=True, dtype=t_dtype)
    params = from_torch(module)  # the same weights for both
    x = rng.standard_normal((N, T, D)).astype(np_dtype)
    h0 = rng.standard_normal((N, H)).astype(np_dtype)
    dhs = rng.standard_normal((N, T, H)).astype(np_dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0[None]).requires_grad_(True)
    dhst = torch.from_numpy(dhs)

    def numpy_call():
        hs, cache = rnn_forward(x, h0, params)
        rnn_backward(dhs, cache)
        return hs

    def torch_call():
        module.zero_grad(set_to_none=True)
        xt.grad = h0t.grad = None
        out, _ = module(xt, h0t)
        out.backward(dhst)
        return out

    diff = float(np.max(np.abs(numpy_call() - torch_call().detach().numpy())))
    # numpy's OpenBLAS pool and torch's OpenMP pool both spin for a while after work before
    # sleeping; a pause between the two blocks keeps one's spinning threads off the other's cores.
    time.sleep(0.5)
    tn = time_calls(numpy_call, args.repeats, args.warmup)
    time.sleep(0.5)
    tt = time_calls(torch_call, args.repeats, args.warmup)
    return N, T, D, H, tn, tt, diff


def main(argv=None, bench=None, doc=None):
    """Run the benchmark; ``bench`` (default :func:`bench_shape`) times one shape, so that
    bench_lstm_cpu.py reuses this header, thread set-up and table."""
    args = parse_args(argv, doc)
    bench = bench or bench_shape
    # Before numpy and torch are imported, so that every pool starts at this size.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    set_blas_threads(args.threads)
    np_dtype, t_dtype = getattr(np, args.dtype), getattr(torch, args.dtype)

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    nb = blas_threads()
    print(
        f"python {platform.python_version()}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs visible, {args.threads} used"
    )
    print(
        f"numpy {np.__version__}, BLAS {blas.get('name')} {blas.get('version')}: "
        f"BLAS threads {'unknown' if nb is None else nb} (OPENBLAS_NUM_THREADS={args.threads})"
    )
    print(
        f"torch {torch.__version__}: torch.get_num_threads() = {torch.get_num_threads()}, "
        f"MKL {'on' if torch.backends.mkl.is_available() else 'off'}, "
        f"mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}"
    )
    if hasattr(os, "getloadavg"):
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average before the run (1, 5, 15 min): {load}")
    print(
        f"dtype {args.dtype}; forward + backward per call; {args.warmup} warm-up, "
        f"{args.repeats} timed repeats; times in ms"
    )
    print()

    header = (
        f"{'N x T x D x H':>20} | {'numpy median':>12} {'min':>8} | {'torch median':>12} "
        f"{'min':>8} | {'numpy/torch':>11} {'(min)':>6} | {'max|hs diff|':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for shape in args.shapes:
        row = bench(shape, args, np_dtype, t_dtype)
        rows.append(row)
        N, T, D, H, tn, tt, diff = row
        med_n, med_t = statistics.median(tn) * 1e3, statistics.median(tt) * 1e3
        print(
            f"{f'{N} x {T} x {D} x {H}':>20} | {med_n:12.2f} {min(tn) * 1e3:8.2f} | "
            f"{med_t:12.2f} {min(tt) * 1e3:8.2f} | {med_n / med_t:11.2f} "
            f"{min(tn) / min(tt):6.2f} | {diff:12.1e}"
        )
    print()
    print(
        "numpy/torch: ratio of the medians, then of the minima; above 1, rnn_ref.numpy is slower."
    )
    print("max|hs diff|: largest difference between the two implementations' hidden states.")
    return rows


if __name__ == "__main__":
    main()
