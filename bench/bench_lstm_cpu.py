"""CPU benchmark: rnn_ref.numpy's LSTM (forward + backward) against torch.nn.LSTM (forward +
autograd backward), same shapes, same dtype, same thread count, in one run.

    python bench/bench_lstm_cpu.py                      # default shapes, 7 repeats
    python bench/bench_lstm_cpu.py --quick              # a tiny run, seconds
    python bench/bench_lstm_cpu.py --shapes 64x100x256x256 --threads 1 --repeats 11

A shape is NxTxDxH (batch, time steps, input size, hidden size). Each timed call is one forward
and one backward of the whole sequence (numpy: lstm_forward + lstm_backward giving dx, dh0, dc0
and the three weight gradients; torch: module(x, (h0, c0)) then out.backward(dhs), with x, h0
and c0 requiring grad so that it computes the same gradients). The options, the thread set-up
and the table are bench_rnn_cpu.py's (see bench/README.md). Nothing is downloaded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rnn_cpu import main as _main  # noqa: E402
from bench_rnn_cpu import time_calls  # noqa: E402


def bench_lstm_shape(shape, args, np_dtype, t_dtype):
    """Time one shape; returns (N, T, D, H, numpy times, torch times, max |hs difference|)."""
    import numpy as np
    import torch

    from rnn_ref.convert import from_torch
    from rnn_ref.numpy import lstm_backward, lstm_forward

    N, T, D, H = shape
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    module = torch.nn.LSTM(D, H, batch_first=True, dtype=t_dtype)
    params = from_torch(module)  # the same weights for both
    x = rng.standard_normal((N, T, D)).astype(np_dtype)
    h0 = rng.standard_normal((N, H)).astype(np_dtype)
    c0 = rng.standard_normal((N, H)).astype(np_dtype)
    dhs = rng.standard_normal((N, T, H)).astype(np_dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0[None]).requires_grad_(True)
    c0t = torch.from_numpy(c0[None]).requires_grad_(True)
    dhst = torch.from_numpy(dhs)

    def numpy_call():
        hs, cache = lstm_forward(x, (h0, c0), params)
        lstm_backward(dhs, cache)
        return hs

    def torch_call():
        module.zero_grad(set_to_none=True)
        xt.grad = h0t.grad = c0t.grad = None
        out, _ = module(xt, (h0t, c0t))
        out.backward(dhst)
        return out

    diff = float(np.max(np.abs(numpy_call() - torch_call().detach().numpy())))
    # Pause between the blocks so that one library's idle-spinning threads leave the cores.
    time.sleep(0.5)
    tn = time_calls(numpy_call, args.repeats, args.warmup)
    time.sleep(0.5)
    tt = time_calls(torch_call, args.repeats, args.warmup)
    return N, T, D, H, tn, tt, diff


def main(argv=None):
    return _main(argv, bench=bench_lstm_shape, doc=__doc__)


if __name__ == "__main__":
    main()
