"""Checks for the assignment ch17_errata (code transcribed from the seeds, with its errors, to fix).

Each ``check_*`` takes the learner's fixed function, runs it on random cases (N = 1, H != D and
non-zero states included), and raises :class:`GradingError` naming the first problem (which
output, which gradient, which time step, the largest error), never an expected value:

* :func:`check_lstm_step`: the LSTM step of ``torch.nn.LSTM`` (gate order i, f, g, o, a tanh
  candidate, no cell terms in the gates), against a trusted copy of :mod:`rnn_ref.numpy`; the
  parameters carry the seed's cell weights ``W_c``, non-zero, which the fixed step ignores.
* :func:`check_lstm_step_backward`: every gradient of one LSTM step against central finite
  differences of the trusted forward (torch autograd forbidden).
* :func:`check_gru_step`: the GRU step of ``torch.nn.GRU`` (the reset gate applied to
  ``W_hn h + b_hn``), against the trusted reference.
* :func:`check_mse`: the mean of the *squared* differences.
* :func:`check_crnn_logits`: a CNN's feature map read as a sequence over its width (PyTorch's
  ``nn.LSTM`` allowed; ``rnn_ref`` is not), against the same modules applied here.

Under the class-scale grader the student's kernel only records results (``recording()``), and
the expected values are computed when the grader replays them.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._cases import named_case
from ._guard import GradingError, recording, seal

__all__ = [
    "check_lstm_step",
    "check_lstm_step_backward",
    "check_gru_step",
    "check_mse",
    "check_crnn_logits",
]

# (N, D, H): the contract's edge cases (N = 1, H != D, D = 1), small so that grading is quick.
CASES = ((3, 5, 2), (1, 2, 4), (2, 3, 3), (4, 1, 5))


def _ref():
    return None if recording() else trusted_reference("rnn_ref.numpy")


def _ctx(seed, **shape) -> str:
    return "case: " + ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _close(name, actual, expected, dims, atol=1e-6, rtol=1e-5) -> None:
    if expected is None:  # recording in the student's kernel: the grader judges at replay
        return
    assert_close(name, actual, expected, dims=dims, atol=atol, rtol=rtol)


def _tuple(fn_name: str, value, n: int, what: str):
    if not (isinstance(value, tuple | list) and len(value) == n):
        got = (
            f"a {type(value).__name__} of {len(value)}"
            if isinstance(value, tuple | list)
            else type(value).__name__
        )
        raise GradingError(f"{fn_name} should return {what}; got {got}")
    return value


def _lstm_case(seed, N, D, H):
    rng = _np.random.default_rng(seed)
    params = {
        "W_x": rng.normal(0, 1.0 / _np.sqrt(D), (4 * H, D)),
        "W_h": rng.normal(0, 1.0 / _np.sqrt(H), (4 * H, H)),
        "b": rng.normal(0, 0.5, 4 * H),
        "W_c": rng.normal(0, 1.0 / _np.sqrt(H), (3 * H, H)),  # seed 004's cell terms
    }
    x = rng.normal(0, 1, (N, D))
    h_prev = rng.normal(0, 0.5, (N, H))
    c_prev = rng.normal(0, 1.0, (N, H))
    dh = rng.normal(0, 1, (N, H))
    dc = rng.normal(0, 1, (N, H))
    return x, h_prev, c_prev, params, dh, dc


def _copy(params: dict) -> dict:
    return {k: v.copy() for k, v in params.items()}


def check_lstm_step(lstm_step, seeds=(0, 1, 2, 3)) -> None:
    """(h, c) of one step of torch.nn.LSTM, from non-zero (h_prev, c_prev)."""
    for seed, (N, D, H) in zip(seeds, CASES, strict=False):
        x, h_prev, c_prev, params, _, _ = _lstm_case(seed, N, D, H)
        with named_case(_ctx(seed, N=N, D=D, H=H)):
            ref = _ref()
            eh = ec = None
            if ref is not None:
                std = {k: params[k] for k in ("W_x", "W_h", "b")}
                (eh, ec), _ = ref.lstm_step_forward(x, (h_prev, c_prev), std)
            out = guarded_call("lstm_step", lstm_step, x.copy(), (h_prev.copy(), c_prev.copy()),
                               _copy(params))  # fmt: skip
            h, c = _tuple("lstm_step", out, 2, "(h, c)")
            assert_array("h", h, (N, H))
            assert_array("c", c, (N, H))
            # c first: h = o * tanh(c) is wrong whenever c is.
            _close("c", c, ec, ("n", "h"))
            _close("h", h, eh, ("n", "h"))


def _numerical(f, x, h=1e-6):
    """Central differences of the scalar f() with respect to the array x (changed in place)."""
    grad = _np.zeros_like(x)
    it = _np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def _finite_differences(ref, x, h_prev, c_prev, params, dh, dc) -> dict:
    """d/d(everything) of L = sum(dh * h) + sum(dc * c), h and c from the trusted step."""
    x, h_prev, c_prev = x.copy(), h_prev.copy(), c_prev.copy()
    p = {k: params[k].copy() for k in ("W_x", "W_h", "b")}

    def loss():
        (h, c), _ = ref.lstm_step_forward(x, (h_prev, c_prev), p)
        return float(_np.sum(dh * h) + _np.sum(dc * c))

    out = {"dx": _numerical(loss, x), "dh_prev": _numerical(loss, h_prev)}
    out["dc_prev"] = _numerical(loss, c_prev)
    for k in ("W_x", "W_h", "b"):
        out["d" + k] = _numerical(loss, p[k])
    return out


def check_lstm_step_backward(lstm_step_backward, seeds=(10, 11, 12, 13)) -> None:
    """dx, dh_prev, dc_prev and dW_x, dW_h, db of one LSTM step (upstream dh and dc both
    non-zero) against central finite differences; autograd earns nothing."""
    for seed, (N, D, H) in zip(seeds, CASES, strict=False):
        x, h_prev, c_prev, params, dh, dc = _lstm_case(seed, N, D, H)
        params = {k: params[k] for k in ("W_x", "W_h", "b")}
        with named_case(_ctx(seed, N=N, D=D, H=H)):
            ref = _ref()
            exp = None if ref is None else _finite_differences(ref, x, h_prev, c_prev, params,
                                                              dh, dc)  # fmt: skip
            out = guarded_call(
                "lstm_step_backward",
                lstm_step_backward,
                (dh.copy(), dc.copy()),
                x.copy(),
                (h_prev.copy(), c_prev.copy()),
                _copy(params),
                autograd=True,
            )
            what = "(dx, (dh_prev, dc_prev), grads)"
            dx, dprev, grads = _tuple("lstm_step_backward", out, 3, what)
            dh_prev, dc_prev = _tuple("lstm_step_backward", dprev, 2, what)
            if not isinstance(grads, dict):
                raise GradingError(
                    "lstm_step_backward should return grads as a dict with keys 'W_x', 'W_h', "
                    f"'b'; got a {type(grads).__name__}"
                )
            missing = [k for k in ("W_x", "W_h", "b") if k not in grads]
            if missing:
                raise GradingError(f"grads is missing {', '.join(map(repr, missing))}")
            got = {"dx": dx, "dh_prev": dh_prev, "dc_prev": dc_prev}
            got.update({"d" + k: grads[k] for k in ("W_x", "W_h", "b")})
            shapes = {"dx": (N, D), "dh_prev": (N, H), "dc_prev": (N, H)}
            shapes.update({"d" + k: v.shape for k, v in params.items()})
            dims = {"dx": ("n", "d"), "dh_prev": ("n", "h"), "dc_prev": ("n", "h"),
                    "dW_x": ("row", "d"), "dW_h": ("row", "col"), "db": ("row",)}  # fmt: skip
            for name, value in got.items():
                assert_array(name, value, shapes[name])
            wrong = []
            for name in ("dc_prev", "dh_prev", "dx", "dW_x", "dW_h", "db"):
                try:
                    e = None if exp is None else exp[name]
                    _close(name, got[name], e, dims[name], atol=1e-5, rtol=1e-4)
                except GradingError as err:
                    wrong.append((name, str(err)))
            if wrong:
                msg = wrong[0][1] + " (compared with finite differences)"
                if len(wrong) > 1:
                    msg += "; also wrong: " + ", ".join(n for n, _ in wrong[1:])
                raise GradingError(msg)


def _gru_case(seed, N, D, H):
    rng = _np.random.default_rng(seed)
    params = {
        "W_x": rng.normal(0, 1.0 / _np.sqrt(D), (3 * H, D)),
        "W_h": rng.normal(0, 1.5 / _np.sqrt(H), (3 * H, H)),
        "b_x": rng.normal(0, 0.5, 3 * H),
        "b_h": rng.normal(0, 0.8, 3 * H),
    }
    return rng.normal(0, 1, (N, D)), rng.normal(0, 0.7, (N, H)), params


def check_gru_step(gru_step, seeds=(20, 21, 22, 23)) -> None:
    """h of one step of torch.nn.GRU (blocks r, z, n; n = tanh(W_in x + b_in + r * (W_hn h +
    b_hn)); h = (1 - z) * n + z * h_prev)."""
    for seed, (N, D, H) in zip(seeds, CASES, strict=False):
        x, h_prev, params = _gru_case(seed, N, D, H)
        with named_case(_ctx(seed, N=N, D=D, H=H)):
            ref = _ref()
            eh = None if ref is None else ref.gru_step_forward(x, h_prev, params)[0]
            h = guarded_call("gru_step", gru_step, x.copy(), h_prev.copy(), _copy(params))
            assert_array("h", h, (N, H))
            _close("h", h, eh, ("n", "h"))


def check_mse(mse, seeds=(30, 31, 32)) -> None:
    """The mean of the squared differences, on arrays (N, 1) as the seed's model predicts."""
    for k, seed in enumerate(seeds):
        rng = _np.random.default_rng(seed)
        N = (1, 7, 50)[k % 3]
        y = rng.normal(0, 2, (N, 1))
        y_pred = y + rng.normal(0.3, 1, (N, 1))
        with named_case(f"case: N={N}, seed={seed}"):
            value = guarded_call("mse", mse, y.copy(), y_pred.copy())
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise GradingError(
                    f"mse should return a number, got {type(value).__name__}"
                ) from None
            expected = None if recording() else float(_np.mean((y - y_pred) ** 2))
            _close("mse", _np.asarray(value), expected, None)


def _crnn_case(seed, N, size, channels, hidden, classes):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cnn = nn.Sequential(nn.Conv2d(1, channels, 3), nn.ReLU(), nn.MaxPool2d(2)).double()
    h_feat = (size[0] - 2) // 2
    lstm = nn.LSTM(channels * h_feat, hidden, batch_first=True).double()
    head = nn.Linear(hidden, classes).double()
    images = torch.randn(N, 1, *size, generator=g, dtype=torch.float64)
    return images, cnn, lstm, head


def _crnn_expected(images, cnn, lstm, head):
    import torch

    with torch.no_grad():
        f = cnn(images)  # (N, C, H', W')
        seq = f.permute(0, 3, 1, 2).flatten(2)  # (N, W', C * H'): the width is time
        hs, _ = lstm(seq)
        return head(hs[:, -1]).numpy()


# (N, (height, width), channels, hidden, classes): non-square images (height and width
# differ after pooling) and square ones (where only the order of the features tells).
CRNN_CASES = ((3, (12, 16), 4, 5, 3), (1, (10, 10), 3, 4, 5), (2, (14, 10), 2, 6, 4))


def check_crnn_logits(crnn_logits, seeds=(40, 41, 42)) -> None:
    """Logits (N, classes) of the last time step, the feature map read column by column."""
    import torch

    for seed, (N, size, C, hidden, classes) in zip(seeds, CRNN_CASES, strict=False):
        with named_case(f"case: N={N}, image {size[0]}x{size[1]}, C={C}, seed={seed}"):
            images, cnn, lstm, head = _crnn_case(seed, N, size, C, hidden, classes)
            expected = None if recording() else _crnn_expected(images, cnn, lstm, head)
            with torch.no_grad():
                out = guarded_call(
                    "crnn_logits", crnn_logits, images.clone(), cnn, lstm, head, torch_nn=True
                )
            if isinstance(out, torch.Tensor):
                out = out.detach().cpu().numpy()
            assert_array("logits", out, (N, classes))
            _close("logits", out, expected, ("n", "class"))


seal(__name__)
