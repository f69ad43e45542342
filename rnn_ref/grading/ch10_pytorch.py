"""Checks for the assignment ch10_pytorch (from reference code to idiomatic PyTorch).

The learner's functions use ``torch.nn`` (the exercises are about PyTorch itself), so every
call goes through ``guarded_call(..., torch_nn=True)``: ``torch.nn`` is allowed, ``rnn_ref``
(its NumPy and torch backends and :mod:`rnn_ref.convert`) is not.

A function that works by side effect (``load_lstm_weights`` fills a module) or whose *type* of
result matters (``predict`` must hand back a NumPy array, not a tensor) is called inside a small
probe defined here; the probe runs the filled module, or records what the model received, and
returns plain arrays. That is what the class-scale grader records in the learner's kernel and
replays in its own process, where the expected values are computed (never in the kernel).

Expected values come from a trusted copy of :mod:`rnn_ref.numpy` (the LSTM and the masked loss)
or from computations done here in torch (each sequence run alone, without padding).
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close, guarded_call, trusted_reference
from ._guard import GradingError, recording, seal

__all__ = [
    "check_load_lstm_weights",
    "check_final_states",
    "check_masked_loss",
    "check_predict",
    "as_numpy",
    "loaded_lstm",
    "loss_and_gradient",
    "predict_report",
]

# (N, T, D, H): batch, time, input, hidden; N = 1, T = 1 and H != D among them.
CASES = ((3, 5, 4, 6), (1, 4, 3, 2), (2, 1, 5, 5), (4, 3, 1, 7))


def _torch():
    import torch

    return torch


def _ctx(seed, **shape) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items()) + f", seed={seed}"


def _close(name, actual, expected, **kw) -> None:
    """Compare, except in a learner's kernel under the class-scale grader (it only records)."""
    if not recording():
        assert_close(name, actual, expected, **kw)


def as_numpy(value):
    """A tensor (on any device, requiring grad or not) as a NumPy array; anything else as is.

    The class-scale grader records tensors as arrays anyway; this makes a check in nbgrader's
    kernel see the same thing."""
    if type(value).__name__ == "Tensor" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _lstm_params(rng, D: int, H: int) -> dict:
    s = 1.0 / _np.sqrt(H)
    return {
        "W_x": rng.uniform(-s, s, (4 * H, D)),
        "W_h": rng.uniform(-s, s, (4 * H, H)),
        "b": rng.uniform(-1.0, 1.0, 4 * H),
    }


# --- Part 1: load_lstm_weights -----------------------------------------------------------------


def _load_probe(load_lstm_weights, D: int, H: int, dtype_name: str):
    """A function of (params, x, h0, c0) that builds a torch.nn.LSTM, lets the learner fill it,
    runs it, and returns what it holds and computes, as NumPy arrays."""
    torch = _torch()

    def load_lstm_weights_probe(params, x, h0, c0):
        dtype = getattr(torch, dtype_name)
        module = torch.nn.LSTM(D, H, batch_first=True, dtype=dtype)
        with torch.no_grad():  # whatever is not loaded shows up as NaN
            for p in module.parameters():
                p.fill_(float("nan"))
        returned = load_lstm_weights(params, module)
        if returned is not module:
            kind = type(returned).__name__
            return {"problem": f"load_lstm_weights should return the module it filled, got {kind}"}
        state = (torch.as_tensor(h0, dtype=dtype)[None], torch.as_tensor(c0, dtype=dtype)[None])
        with torch.no_grad():
            hs, (h_n, c_n) = module(torch.as_tensor(x, dtype=dtype), state)

        def get(name):
            p = getattr(module, name, None)
            return None if p is None else p.detach().cpu().double().numpy()

        return {
            "weight_ih_l0": get("weight_ih_l0"),
            "weight_hh_l0": get("weight_hh_l0"),
            "bias_ih_l0": get("bias_ih_l0"),
            "bias_hh_l0": get("bias_hh_l0"),
            "dtype": str(module.weight_ih_l0.dtype).replace("torch.", ""),
            "hs": hs.detach().cpu().double().numpy(),
            "h_n": h_n[0].detach().cpu().double().numpy(),
            "c_n": c_n[0].detach().cpu().double().numpy(),
        }

    return load_lstm_weights_probe


def loaded_lstm(load_lstm_weights, params, x, h0=None, c0=None, dtype="float64") -> dict:
    """Let ``load_lstm_weights`` fill a fresh ``torch.nn.LSTM`` (batch_first) with ``params``,
    run it on ``x`` (N, T, D) from ``(h0, c0)`` (zeros by default) and return a dict of NumPy
    arrays: the module's four parameters, ``hs`` (N, T, H), ``h_n`` and ``c_n`` (N, H)."""
    params = {k: _np.asarray(v, dtype=_np.float64) for k, v in params.items()}
    x = _np.asarray(x, dtype=_np.float64)
    N, _, D = x.shape
    H = params["W_h"].shape[1]
    h0 = _np.zeros((N, H)) if h0 is None else _np.asarray(h0, dtype=_np.float64)
    c0 = _np.zeros((N, H)) if c0 is None else _np.asarray(c0, dtype=_np.float64)
    probe = _load_probe(load_lstm_weights, D, H, dtype)
    out = guarded_call("load_lstm_weights", probe, params, x, h0, c0, torch_nn=True)
    if not isinstance(out, dict):  # an unreadable record at replay
        raise GradingError("load_lstm_weights produced no readable result")
    if "problem" in out:
        raise GradingError(str(out["problem"]))
    return out


def _check_loaded(out: dict, params: dict, expected, ctx: str, atol: float) -> None:
    """Layered: the weights first (where they go), then the bias sum, then the outputs."""
    for name, key in (("weight_ih_l0", "W_x"), ("weight_hh_l0", "W_h")):
        w = out.get(name)
        if w is None:
            raise GradingError(f"the module has no {name} after load_lstm_weights ({ctx})")
        if w.shape != params[key].shape:
            raise GradingError(
                f"{name} has shape {w.shape} after load_lstm_weights, expected "
                f"{params[key].shape}: torch stores it (4H, in), like params['{key}'] ({ctx})"
            )
        if not _np.isfinite(w).all():
            raise GradingError(f"{name} was not (fully) loaded: it still holds NaN ({ctx})")
        if not recording() and not _np.allclose(w, params[key], atol=atol, rtol=0):
            raise GradingError(
                f"{name} does not hold params['{key}'] ({ctx}): torch.nn.LSTM stores it with "
                "the same layout and gate order (i, f, g, o), so it is copied as it is"
            )
    b_ih, b_hh = out.get("bias_ih_l0"), out.get("bias_hh_l0")
    if b_ih is None or b_hh is None or not (_np.isfinite(b_ih).all() and _np.isfinite(b_hh).all()):
        raise GradingError(f"bias_ih_l0 and bias_hh_l0 must both be set (no NaN left) ({ctx})")
    if not recording() and not _np.allclose(b_ih + b_hh, params["b"], atol=atol, rtol=0):
        raise GradingError(
            f"bias_ih_l0 + bias_hh_l0 is not b ({ctx}): torch adds the two biases at every "
            "step, so only their sum is the equations' b"
        )
    if expected is not None:
        hs, c_n = expected
        assert_close("hs (the module's output)", out["hs"], hs, dims=("n", "t", "h"),
                     atol=atol, context=ctx)  # fmt: skip
        assert_close("c_n", out["c_n"], c_n, dims=("n", "h"), atol=atol, context=ctx)


def check_load_lstm_weights(load_lstm_weights, seeds=(0, 1, 2, 3, 4)) -> None:
    """Random params into float64 modules (N = 1, T = 1, H != D included) and one float32
    module; the loaded module's weights, bias sum and outputs against the NumPy reference."""
    cases = [(*c, "float64") for c in CASES] + [(2, 3, 3, 4, "float32")]
    for seed, (N, T, D, H, dtype) in zip(seeds, cases, strict=False):
        rng = _np.random.default_rng(seed)
        params = _lstm_params(rng, D, H)
        x = rng.normal(0, 1, (N, T, D))
        h0, c0 = rng.normal(0, 0.5, (N, H)), rng.normal(0, 0.5, (N, H))
        out = loaded_lstm(load_lstm_weights, params, x, h0, c0, dtype=dtype)
        ctx = _ctx(seed, N=N, T=T, D=D, H=H) + f", a {dtype} module"
        if out.get("dtype") != dtype:
            raise GradingError(
                f"the module's weights became {out.get('dtype')} ({ctx}): cast the arrays to "
                "the module's dtype instead of replacing its parameters"
            )
        expected = None
        if not recording():
            hs, cache = trusted_reference("rnn_ref.numpy").lstm_forward(x, (h0, c0), params)
            expected = (hs, cache[4][:, -1])
        _check_loaded(out, params, expected, ctx, 1e-10 if dtype == "float64" else 2e-5)


# --- Part 2: final_states ---------------------------------------------------------------------


def _rnn_module(kind: str, D: int, H: int, seed: int):
    """A float64 torch.nn.{RNN, GRU, LSTM} (batch_first) with weights drawn from ``seed``."""
    torch = _torch()
    module = getattr(torch.nn, kind)(D, H, batch_first=True, dtype=torch.float64)
    rng = _np.random.default_rng(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.as_tensor(rng.uniform(-0.8, 0.8, tuple(p.shape))))
    return module


def _final_h_one_by_one(module, padded, lengths):
    """The true final h: each sequence run alone, without its padding."""
    torch = _torch()
    rows = []
    with torch.no_grad():
        for n, L in enumerate(lengths.tolist()):
            _, h_n = module(padded[n : n + 1, :L])
            h_n = h_n[0] if isinstance(h_n, tuple) else h_n
            rows.append(h_n[-1, 0])
    return torch.stack(rows).numpy()


def check_final_states(final_states, seeds=(10, 11, 12, 13, 14, 15)) -> None:
    """RNN, GRU and LSTM modules; first all lengths = T (no padding at work), then unsorted
    variable lengths (1 and T included); the (N, H) result against each sequence run alone."""
    torch = _torch()
    kinds = ("RNN", "GRU", "LSTM")
    for k, seed in enumerate(seeds):
        kind = kinds[k % 3]
        N, T, D, H = CASES[k % len(CASES)]
        T = max(T, 4) if k >= 3 else T  # variable lengths need room
        rng = _np.random.default_rng(seed)
        module = _rnn_module(kind, D, H, seed)
        if k < 3:
            lengths = _np.full(N, T)
            label = "all lengths = T, so no padding is involved"
        else:
            N = max(N, 3)
            lengths = rng.integers(1, T + 1, N)
            lengths[0], lengths[-1] = 1, T  # unsorted, shortest and longest present
            label = f"lengths {lengths.tolist()}"
        x = rng.normal(0, 1, (N, T, D))
        x[_np.arange(T)[None, :] >= lengths[:, None]] = 0.0  # padding, as pad_sequence makes
        padded = torch.as_tensor(x)
        lengths_t = torch.as_tensor(lengths, dtype=torch.int64)
        ctx = f"torch.nn.{kind}, {label}, " + _ctx(seed, N=N, T=T, D=D, H=H)
        result = guarded_call(
            "final_states", final_states, module, padded, lengths_t, torch_nn=True
        )
        h = assert_array(f"final_states ({ctx})", as_numpy(result), (N, H))
        if not recording():
            expected = _final_h_one_by_one(module, padded, lengths_t)
            _close("the final hidden states", h, expected, dims=("n", "h"), atol=1e-9,
                   context=ctx)  # fmt: skip


# --- Part 3: masked_loss ----------------------------------------------------------------------


def _loss_probe(masked_loss):
    torch = _torch()

    def masked_loss_probe(logits, targets, lengths):
        logits_t = torch.tensor(logits, requires_grad=True)
        loss = masked_loss(logits_t, torch.as_tensor(targets), torch.as_tensor(lengths))
        if not isinstance(loss, torch.Tensor):
            kind = type(loss).__name__
            return {"problem": f"masked_loss should return a torch scalar tensor, got a {kind}"}
        if loss.dim() != 0:
            shape = tuple(loss.shape)
            return {"problem": f"masked_loss should return a 0-d tensor, got shape {shape}"}
        grad = None
        if loss.requires_grad:
            loss.backward()
            grad = None if logits_t.grad is None else logits_t.grad.numpy()
        return {"loss": loss.detach().double().numpy(), "dlogits": grad}

    return masked_loss_probe


def loss_and_gradient(masked_loss, logits, targets, lengths):
    """Call ``masked_loss`` on tensors made from NumPy ``logits`` (N, T, V, float64, requiring
    grad), ``targets`` (N, T) and ``lengths`` (N,) (int64), run backward, and return
    ``(loss, dlogits)`` as NumPy arrays; fail if the loss is not a 0-d tensor on the graph."""
    out = guarded_call("masked_loss", _loss_probe(masked_loss), _np.asarray(logits, float),
                       _np.asarray(targets), _np.asarray(lengths), torch_nn=True)  # fmt: skip
    if not isinstance(out, dict):
        raise GradingError("masked_loss produced no readable result")
    if "problem" in out:
        raise GradingError(str(out["problem"]))
    loss = assert_array("the loss", out["loss"], ())
    if out["dlogits"] is None:
        raise GradingError(
            "the loss is not connected to the logits: return a tensor computed from them "
            "(no .item(), no NumPy, no .detach()), so that loss.backward() can train the model"
        )
    return loss, out["dlogits"]


def check_masked_loss(masked_loss, seeds=(20, 21, 22, 23)) -> None:
    """Random logits (N = 1 and T = 1 included), unsorted lengths, padding targets that are
    valid class indices (so counting them changes the value), large logits; the value against
    the NumPy reference's masked mean, and the gradient: zero at padded positions."""
    for k, seed in enumerate(seeds):
        N, T, _, V = CASES[k % len(CASES)]
        V = V + 1
        rng = _np.random.default_rng(seed)
        scale = 300.0 if k == len(seeds) - 1 else 2.0
        logits = rng.normal(0, scale, (N, T, V))
        targets = rng.integers(0, V, (N, T))
        lengths = rng.integers(1, T + 1, N)
        lengths[0] = T
        mask = _np.arange(T)[None, :] < lengths[:, None]
        ctx = f"lengths {lengths.tolist()}, " + _ctx(seed, N=N, T=T, V=V)
        if scale > 2:
            ctx += ", large logits"
        loss, dlogits = loss_and_gradient(masked_loss, logits, targets, lengths)
        if recording():
            continue
        ref = trusted_reference("rnn_ref.numpy")
        value, cache = ref.softmax_loss_forward(logits, targets, mask)
        assert_close("the loss", loss, value, context=ctx)
        assert_close("the gradient of the loss with respect to the logits", dlogits,
                     ref.softmax_loss_backward(1.0, cache), dims=("n", "t", "v"), atol=1e-8,
                     context=ctx + "; it must be 0 at padded positions")  # fmt: skip


# --- Part 4: predict --------------------------------------------------------------------------


def _probe_module(model):
    """Wraps ``model``: records what its forward receives (type, device, dtype, mode)."""
    torch = _torch()

    class Probe(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.seen = []

        def forward(self, x, *rest):
            self.seen.append(
                {
                    "tensor": isinstance(x, torch.Tensor),
                    "device": str(x.device) if isinstance(x, torch.Tensor) else "",
                    "dtype": str(x.dtype).replace("torch.", "") if hasattr(x, "dtype") else "",
                    "training": self.training,
                    "grad": torch.is_grad_enabled(),
                }
            )
            return self.inner(x, *rest)

    return Probe(model)


def _predict_probe(predict):
    torch = _torch()

    def predict_probe(model, x, device):
        probe = _probe_module(model)
        result = predict(probe, x, device)
        seen = probe.seen[0] if probe.seen else None
        is_array = isinstance(result, _np.ndarray)
        if isinstance(result, torch.Tensor):
            value = result.detach().cpu().numpy()
        elif is_array:
            value = result
        else:
            value = None
        return {"is_ndarray": is_array, "type": type(result).__name__, "value": value,
                "seen": seen, "calls": len(probe.seen)}  # fmt: skip

    return predict_probe


def predict_report(predict, model, x, device) -> _np.ndarray:
    """Run ``predict(model, x, device)`` with ``model`` wrapped in a probe; fail if the model did
    not get a tensor on ``device`` in eval mode without autograd, or if the result is not a NumPy
    array. Returns the result."""
    torch = _torch()
    out = guarded_call("predict", _predict_probe(predict), model, x, device, torch_nn=True)
    if not isinstance(out, dict):
        raise GradingError("predict produced no readable result")
    seen = out["seen"]
    if not seen or out["calls"] < 1:
        raise GradingError("predict never called the model")
    if not seen["tensor"]:
        raise GradingError("predict should pass the model a torch tensor, not the NumPy array")
    want = str(torch.device(device))
    if seen["device"] != want and not (want == "cuda" and seen["device"].startswith("cuda")):
        raise GradingError(
            f"predict gave the model a tensor on {seen['device']}, not on the device passed "
            f"({want}): move the input with .to(device)"
        )
    if seen["training"]:
        raise GradingError("predict ran the model in training mode: call model.eval() first")
    if seen["grad"]:
        raise GradingError(
            "predict ran the model with autograd on: wrap the call in torch.no_grad() "
            "(or torch.inference_mode())"
        )
    if not out["is_ndarray"]:
        raise GradingError(
            f"predict should return a NumPy array on the CPU, got a {out['type']}: "
            "bring the result back with .cpu().numpy()"
        )
    return out["value"]


class _Classifier:
    """Builds, from a seed, a small float32 LSTM classifier with dropout (eval mode matters)."""

    @staticmethod
    def make(seed: int, D: int, H: int, K: int):
        torch = _torch()

        class LSTMClassifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(D, H, batch_first=True)
                self.drop = torch.nn.Dropout(0.5)
                self.head = torch.nn.Linear(H, K)

            def forward(self, x):
                hs, _ = self.lstm(x)
                return self.head(self.drop(hs[:, -1]))

        model = LSTMClassifier()
        rng = _np.random.default_rng(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.as_tensor(rng.uniform(-0.5, 0.5, tuple(p.shape))))
        return model


def check_predict(predict, seeds=(30, 31, 32)) -> None:
    """An LSTM classifier with dropout (float32, in training mode when handed over), float64
    NumPy inputs (N = 1 and T = 1 included), the device given as a string and as a
    torch.device: the result against the model's eval-mode output computed here."""
    torch = _torch()
    for k, seed in enumerate(seeds):
        N, T, D, H = CASES[k % len(CASES)]
        K = 3
        rng = _np.random.default_rng(seed)
        x = rng.normal(0, 1, (N, T, D))
        model = _Classifier.make(seed, D, H, K)
        model.train()
        device = "cpu" if k % 2 == 0 else torch.device("cpu")
        ctx = _ctx(seed, N=N, T=T, D=D, H=H) + f", device={device!r}"
        value = predict_report(predict, model, x, device)
        y = assert_array(f"the predictions ({ctx})", value, (N, K))
        if not recording():
            model.eval()
            with torch.no_grad():
                expected = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
            assert_close("the predictions", y, expected, dims=("n", "k"), atol=1e-5,
                         context=ctx)  # fmt: skip


seal(__name__)
