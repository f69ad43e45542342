r"""From reference code to PyTorch on a GPU: variable-length batches, device-agnostic helpers and
a fast one-layer LSTM.

**Variable-length batches.** N sequences of lengths T_1, ..., T_N are padded to
T_max = max_n T_n and stacked batch-first, (N, T_max, ...). The mask

.. math::  m_{n,t} = [\, t < T_n \,], \qquad t = 0, \dots, T_{max} - 1

marks the real steps. A recurrent layer run over the padded batch keeps updating the state on the
padding, so its final state is *not* the state after a sequence's last real step;
:func:`run_packed` packs the batch (``torch.nn.utils.rnn.pack_padded_sequence``) so that
``torch.nn.RNN/LSTM/GRU`` stop each sequence at its own length, and :func:`last_valid` picks
``outputs[n, T_n - 1]``. Losses average over real steps only (:func:`masked_mean`):
``sum_{n,t} m_{n,t} v_{n,t} / sum_{n,t} m_{n,t}``.

**Device-agnostic code.** :func:`pick_device` chooses a device once, :func:`to_device` moves a
whole nested batch (dicts, lists, tuples of tensors) to it.

**FastLSTM.** The LSTM of :mod:`rnn_ref.torch.lstm`, written the way fast recurrent code is:

.. math::

   A = X W_x^\top + b \ \ (\text{all } t \text{ at once, one GEMM}), \qquad
   a_t = A_{:,t} + h_{t-1} W_h^\top \ \ (\text{one } (N, H)\times(H, 4H) \text{ GEMM per step}),\\
   (i, f, g, o) = (\sigma(a_i), \sigma(a_f), \tanh(a_g), \sigma(a_o)), \quad
   c_t = f \odot c_{t-1} + i \odot g, \quad h_t = o \odot \tanh(c_t),

with a hand-written backward (the same as :func:`rnn_ref.numpy.lstm_backward`): per step one
(N, 4H) x (4H, H) GEMM for dh_{t-1}; then dW_h = sum_t da_t^T h_{t-1} is ONE GEMM over all
(n, t) rows after the loop, and dW_x, db, dx come from autograd through the first GEMM. The two
loops run as TorchScript (``torch.jit.script``), as ``torch.compile``d steps, or in eager Python
(``FastLSTM.backend`` says which).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ._module import Recurrent

__all__ = [
    "pad_batch",
    "length_mask",
    "last_valid",
    "run_packed",
    "masked_mean",
    "to_device",
    "pick_device",
    "FastLSTM",
]


# ---------------------------------------------------------------------------------------------
# Variable-length batches
# ---------------------------------------------------------------------------------------------


def pad_batch(sequences, padding_value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Stack sequences of different lengths into one batch-first tensor.

    ``sequences``: a non-empty list of tensors, each (T_i, D) (or (T_i,), or (T_i, *) with the same
    trailing shape), all of one dtype and device, T_i >= 1. Returns ``(padded, lengths)``:
    padded (N, T_max, ...) with ``padded[n, t] = sequences[n][t]`` for t < T_n and
    ``padding_value`` after, and lengths (N,) int64 on the CPU (where
    ``pack_padded_sequence`` wants them). The inputs are not modified.
    """
    if isinstance(sequences, Tensor) or not isinstance(sequences, (list, tuple)):
        raise TypeError(f"sequences must be a list of tensors, got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences is empty: need at least one sequence")
    for n, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise TypeError(f"sequences[{n}] is a {type(s).__name__}, not a torch.Tensor")
        if s.dim() == 0:
            raise ValueError(f"sequences[{n}] is a scalar: each sequence must be (T_i, ...)")
        if s.shape[0] == 0:
            raise ValueError(f"sequences[{n}] is empty (length 0): every length must be >= 1")
    first = sequences[0]
    for n, s in enumerate(sequences[1:], start=1):
        if s.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"sequences[{n}] has trailing shape {tuple(s.shape[1:])}, sequences[0] has "
                f"{tuple(first.shape[1:])}: all steps must have the same shape"
            )
        if s.dtype != first.dtype or s.device != first.device:
            raise ValueError(
                f"sequences[{n}] is {s.dtype} on {s.device}, sequences[0] is {first.dtype} "
                f"on {first.device}: all must match"
            )
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.int64)
    padded = first.new_full((len(sequences), int(lengths.max()), *first.shape[1:]), padding_value)
    for n, s in enumerate(sequences):
        padded[n, : s.shape[0]] = s
    return padded, lengths


def _check_lengths(lengths, N: int | None = None, T: int | None = None) -> Tensor:
    """lengths as an int64 tensor (N,), each in [1, T]."""
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (N,), got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got {lengths.dtype}")
    if N is not None and lengths.shape[0] != N:
        raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of N = {N}")
    lengths = lengths.to(torch.int64)
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError(f"every length must be >= 1, got min(lengths) = {int(lengths.min())}")
    if T is not None and lengths.numel() and int(lengths.max()) > T:
        raise ValueError(f"max(lengths) = {int(lengths.max())} exceeds the T = {T} time steps")
    return lengths


def length_mask(lengths, T: int | None = None) -> Tensor:
    """The mask of real steps: bool (N, T) with ``mask[n, t] = t < lengths[n]``.

    ``lengths`` (N,) integers >= 1; ``T`` defaults to max(lengths) and may not be smaller.
    The mask is on ``lengths``' device.
    """
    lengths = _check_lengths(lengths)
    if T is None:
        T = int(lengths.max()) if lengths.numel() else 0
    elif lengths.numel() and T < int(lengths.max()):
        raise ValueError(f"T = {T} is smaller than max(lengths) = {int(lengths.max())}")
    return torch.arange(T, device=lengths.device) < lengths[:, None]


def last_valid(outputs: Tensor, lengths) -> Tensor:
    """The output at each sequence's last real step: ``outputs[n, lengths[n] - 1]``.

    ``outputs`` (N, T, H) (or (N, T, *)), ``lengths`` (N,) integers in [1, T]; returns (N, H).
    Differentiable in ``outputs``. (The last column ``outputs[:, -1]`` is padding for every
    sequence shorter than T.)
    """
    if not isinstance(outputs, Tensor) or outputs.dim() < 2:
        shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
        raise ValueError(f"outputs must be (N, T, ...), got {shape}")
    N, T = outputs.shape[:2]
    idx = _check_lengths(lengths, N, T).to(outputs.device) - 1
    return outputs[torch.arange(N, device=outputs.device), idx]


def run_packed(module: nn.Module, padded: Tensor, lengths, h0=None):
    """Run a ``torch.nn.RNN/LSTM/GRU`` (``batch_first=True``) over a padded batch, each
    sequence stopping at its own length.

    ``padded`` (N, T, D), ``lengths`` (N,) integers in [1, T] in any order
    (``pack_padded_sequence(enforce_sorted=False)`` sorts and unsorts), ``h0`` as the module
    takes it ((L*dirs, N, H), a pair ``(h0, c0)`` for an LSTM, or None). Returns
    ``(outputs, h_n)``: outputs (N, T, dirs*H) with zeros on the padding, and h_n (a pair
    ``(h_n, c_n)`` for an LSTM) each sequence's true final state, in the batch's order, equal to
    running each sequence alone.
    """
    if not isinstance(module, nn.RNNBase):
        raise TypeError(
            f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__} "
            "(only these accept a PackedSequence)"
        )
    if not module.batch_first:
        raise ValueError("module must be built with batch_first=True (padded is (N, T, D))")
    if not isinstance(padded, Tensor) or padded.dim() != 3:
        shape = tuple(padded.shape) if isinstance(padded, Tensor) else type(padded).__name__
        raise ValueError(f"padded must be (N, T, D), got {shape}")
    N, T = padded.shape[:2]
    # pack_padded_sequence wants the lengths on the CPU, whatever the data's device.
    lengths = _check_lengths(lengths, N, T).cpu()
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    out_packed, h_n = module(packed, h0)
    outputs, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    return outputs, h_n


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the real steps: ``sum(m * v) / (number of selected elements)``.

    ``values`` (N, T) or (N, T, *), ``mask`` bool of shape values.shape[:mask.dim()] (usually
    (N, T) from :func:`length_mask`); a mask of fewer dimensions selects whole trailing blocks.
    Returns a 0-d tensor. The padding cannot leak in, even if it holds NaN or inf, and gets zero
    gradient.
    """
    if not isinstance(values, Tensor) or not isinstance(mask, Tensor):
        raise TypeError("values and mask must be torch tensors")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool, got {mask.dtype}")
    if mask.dim() > values.dim() or values.shape[: mask.dim()] != mask.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal the leading dimensions of values "
            f"{tuple(values.shape)}"
        )
    count = int(mask.sum())
    if count == 0:
        raise ValueError("mask selects no element: the mean is undefined")
    m = mask.to(values.device).reshape(*mask.shape, *([1] * (values.dim() - mask.dim())))
    block = math.prod(values.shape[mask.dim() :])
    return values.masked_fill(~m, 0).sum() / (count * block)


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------


def to_device(obj, device, non_blocking: bool = False):
    """``obj`` with every tensor moved to ``device``, recursively through dicts, lists, tuples
    and named tuples (their types kept); ``nn.Module``s and ``PackedSequence``s are moved with
    their own ``.to``; anything else is returned as it is. Tensors already on ``device`` are
    returned unchanged (no copy)."""
    if isinstance(obj, (Tensor, PackedSequence, nn.Module)):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, Mapping):
        items = [(k, to_device(v, device, non_blocking)) for k, v in obj.items()]
        try:
            return type(obj)(items)
        except TypeError:  # e.g. defaultdict, whose first argument is the factory
            out = dict(items)
            return out
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        return type(obj)(*(to_device(v, device, non_blocking) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    return obj


def pick_device(prefer="cuda") -> torch.device:
    """``prefer`` (``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"`` or a ``torch.device``) when
    this machine has it, else the CPU: write the code once, run it anywhere."""
    try:
        dev = torch.device(prefer)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"prefer={prefer!r} is not a device name such as 'cuda' or 'cpu'") from e
    if dev.type == "cuda" and torch.cuda.is_available():
        if dev.index is None or dev.index < torch.cuda.device_count():
            return dev
    if dev.type == "mps" and getattr(torch.backends, "mps", None) is not None:
        if torch.backends.mps.is_available():
            return dev
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# FastLSTM: the recurrence (forward and backward loops) and its autograd Function
# ---------------------------------------------------------------------------------------------


def _fwd_step(
    A_t: Tensor, h_prev: Tensor, c_prev: Tensor, W_hT: Tensor, h: Tensor, c: Tensor, act: Tensor
) -> None:
    """One step from the precomputed input part A_t (N, 4H). Writes, in place, h and c (N, H)
    and the gate activations (i, f, g, o) (N, 4H) that the backward needs: they are rows of the
    preallocated time-major buffers, so nothing is copied afterwards."""
    H = h_prev.size(1)
    torch.addmm(A_t, h_prev, W_hT, out=act)  # all four gates' pre-activations in one GEMM
    act.narrow(1, 0, 2 * H).sigmoid_()  # i, f
    act.narrow(1, 2 * H, H).tanh_()  # g
    act.narrow(1, 3 * H, H).sigmoid_()  # o
    i, f, g, o = (act.narrow(1, k * H, H) for k in range(4))
    torch.mul(f, c_prev, out=c)
    c.addcmul_(i, g)
    torch.tanh(c, out=h)
    h.mul_(o)


def _bwd_step(
    dh: Tensor, dc: Tensor, act: Tensor, c: Tensor, c_prev: Tensor, W_h: Tensor, da: Tensor
) -> tuple[Tensor, Tensor]:
    """Backward of one step: dh, dc (N, H) reaching h_t, c_t. Writes da_t (N, 4H) in place and
    returns (dh_prev, dc_prev):

    dc += dh o (1 - tanh(c)^2); da_i = dc g i(1-i), da_f = dc c_prev f(1-f),
    da_g = dc i (1-g^2), da_o = dh tanh(c) o(1-o); dh_prev = da_t W_h, dc_prev = dc f.
    """
    H = c.size(1)
    i, f, g, o = (act.narrow(1, k * H, H) for k in range(4))
    tc = torch.tanh(c)
    dc = dc + dh * o * (1 - tc * tc)
    torch.cat(
        [
            dc * g * i * (1 - i),
            dc * c_prev * f * (1 - f),
            dc * i * (1 - g * g),
            dh * tc * o * (1 - o),
        ],
        1,
        out=da,
    )
    return torch.mm(da, W_h), dc * f


def _forward_loop(A: Tensor, h: Tensor, c: Tensor, W_h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """All steps, time-major: A (T, N, 4H) -> hs (T, N, H), cs (T, N, H), gate activations
    (T, N, 4H). Time-major so that each step's slice of a buffer is contiguous."""
    T, N, H4 = A.size(0), A.size(1), A.size(2)
    H = H4 // 4
    W_hT = W_h.t()
    hs = A.new_empty(T, N, H)  # preallocated: each step writes its row in place
    cs = A.new_empty(T, N, H)
    acts = A.new_empty(T, N, H4)
    for t in range(T):
        _fwd_step(A[t], h, c, W_hT, hs[t], cs[t], acts[t])
        h, c = hs[t], cs[t]
    return hs, cs, acts


def _backward_loop(
    dhs: Tensor, dh: Tensor, dc: Tensor, acts: Tensor, cs: Tensor, c0: Tensor, W_h: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """All steps backwards, time-major: returns dA (T, N, 4H) (the gradient of the
    pre-activations), dh0, dc0 (N, H). ``dh``, ``dc`` are the gradients reaching h_n and c_n."""
    T = dhs.size(0)
    dA = acts.new_empty(acts.shape)
    for s in range(T):
        t = T - 1 - s
        c_prev = c0 if t == 0 else cs[t - 1]
        dh, dc = _bwd_step(dhs[t] + dh, dc, acts[t], cs[t], c_prev, W_h, dA[t])
    return dA, dh, dc


def _make_loops(step_f, step_b):
    """The same loops in Python, around given (e.g. torch.compile'd) step functions."""

    def forward_loop(A, h, c, W_h):
        T, N, H4 = A.shape
        W_hT = W_h.t()
        hs, cs, acts = A.new_empty(T, N, H4 // 4), A.new_empty(T, N, H4 // 4), A.new_empty(A.shape)
        for t in range(T):
            step_f(A[t], h, c, W_hT, hs[t], cs[t], acts[t])
            h, c = hs[t], cs[t]
        return hs, cs, acts

    def backward_loop(dhs, dh, dc, acts, cs, c0, W_h):
        T = dhs.shape[0]
        dA = acts.new_empty(acts.shape)
        for t in reversed(range(T)):
            c_prev = c0 if t == 0 else cs[t - 1]
            dh, dc = step_b(dhs[t] + dh, dc, acts[t], cs[t], c_prev, W_h, dA[t])
        return dA, dh, dc

    return forward_loop, backward_loop


_LOOPS: dict[str, tuple] = {}  # backend -> (forward_loop, backward_loop), built once
_LOOP_NOTES: dict[str, str] = {}


def _loops(backend: str):
    """The (forward_loop, backward_loop) pair of a backend, built and cached on first use;
    raises RuntimeError when the backend cannot be built here."""
    if backend in _LOOPS:
        return _LOOPS[backend]
    if backend == "eager":
        pair = (_forward_loop, _backward_loop)
    elif backend == "script":
        with warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.compile since torch 2.x, but it still
            # compiles loops without a C++ toolchain, which torch.compile needs on a CPU.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            try:
                pair = (torch.jit.script(_forward_loop), torch.jit.script(_backward_loop))
            except Exception as e:  # no source, no torch.jit, ...
                raise RuntimeError(f"torch.jit.script failed: {type(e).__name__}: {e}") from e
    elif backend == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError("torch.compile is not available in this torch version")
        # Compile the step functions, not the loops: a loop would be unrolled T times and
        # recompiled for every new T.
        pair = _make_loops(torch.compile(_fwd_step), torch.compile(_bwd_step))
    else:
        raise ValueError(f"backend must be 'auto', 'script', 'compile' or 'eager', got {backend!r}")
    _LOOPS[backend] = pair
    return pair


class _LSTMRecurrence(torch.autograd.Function):
    """(A (T, N, 4H), h0, c0 (N, H), W_h (4H, H)) -> (hs (T, N, H), h_n, c_n (N, H)), time-major,
    with the hand-written backward of the loop."""

    @staticmethod
    def forward(ctx, A, h0, c0, W_h, loops):
        forward_loop, backward_loop = loops
        hs, cs, acts = forward_loop(A, h0, c0, W_h)
        ctx.save_for_backward(hs, cs, acts, h0, c0, W_h)
        ctx.backward_loop = backward_loop
        T = A.shape[0]
        return hs, hs[T - 1].clone(), cs[T - 1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dhs, dh_n, dc_n):
        hs, cs, acts, h0, c0, W_h = ctx.saved_tensors
        dA, dh0, dc0 = ctx.backward_loop(dhs.contiguous(), dh_n, dc_n, acts, cs, c0, W_h)
        dW_h = None
        if ctx.needs_input_grad[3]:
            # dW_h = sum_t da_t^T h_{t-1}: one GEMM over all N*T rows instead of T small ones.
            H4, H = W_h.shape
            h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]], 0)
            dW_h = dA.reshape(-1, H4).t().mm(h_prev.reshape(-1, H))
        return dA, dh0, dc0, dW_h, None


class FastLSTM(Recurrent):
    """A one-layer, batch-first LSTM, a drop-in for ``torch.nn.LSTM(D, H, batch_first=True)``.

    Parameters, ``state_dict`` keys and initialisation are ``torch.nn.LSTM``'s:
    ``weight_ih_l0`` = W_x (4H, D), ``weight_hh_l0`` = W_h (4H, H), ``bias_ih_l0`` and
    ``bias_hh_l0`` (4H,) (b = their sum), gate order i, f, g, o, all U(-1/sqrt(H), 1/sqrt(H)) in
    that order, so with the same seed both modules start from the same weights, and either loads
    the other's ``state_dict`` with ``strict=True``.

    ``forward(x, hx=None)``: x (N, T, D); ``hx = (h0, c0)``, each (1, N, H) as torch.nn.LSTM
    takes it (or (N, H)), zeros if None. Returns ``(out, (h_n, c_n))``: out (N, T, H), and h_n,
    c_n in the layout hx had ((1, N, H) when hx is None).

    ``backend``: ``"auto"`` (TorchScript if it works here, else eager), ``"script"``,
    ``"compile"`` (``torch.compile`` of the step functions; eager if compilation fails on the
    first call) or ``"eager"``. ``self.backend`` is the one in use; ``self.backend_note`` says
    why when it differs from the one asked for.
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        backend: str = "auto",
    ):
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        if backend not in ("auto", "script", "compile", "eager"):
            raise ValueError(
                f"backend must be 'auto', 'script', 'compile' or 'eager', got {backend!r}"
            )
        self.backend_requested = backend
        self.backend_note = ""
        tried = ["script", "eager"] if backend == "auto" else [backend, "eager"]
        for name in tried:
            try:
                self._pair = _loops(name)
            except RuntimeError as e:
                self.backend_note += f"{name} unavailable ({e}); "
                continue
            self.backend = name
            break
        self._compile_checked = self.backend != "compile"

    def _recurrence(self, A, h0, c0, W_h):
        if self._compile_checked:
            return _LSTMRecurrence.apply(A, h0, c0, W_h, self._pair)
        # torch.compile compiles lazily, so it can only fail here, on the first call: then run
        # (and stay) eager. The backward is tried too, on detached copies.
        try:
            with torch.enable_grad():
                probe = [t.detach().requires_grad_(True) for t in (A, h0, c0, W_h)]
                out = _LSTMRecurrence.apply(*probe, self._pair)
                sum(o.sum() for o in out).backward()
        except Exception as e:  # a missing compiler, an unsupported platform, ...
            self.backend_note += f"compile failed on first call ({type(e).__name__}: {e}); "
            self.backend, self._pair = "eager", _loops("eager")
        self._compile_checked = True
        return _LSTMRecurrence.apply(A, h0, c0, W_h, self._pair)

    def _initial(self, name: str, s, x: Tensor) -> tuple[Tensor, bool]:
        """An initial state as (N, H), and whether it came in torch.nn's (1, N, H) layout."""
        N, H = x.shape[0], self.hidden_size
        if s is None:
            return x.new_zeros(N, H), True
        if not isinstance(s, Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(s).__name__}")
        if tuple(s.shape) == (1, N, H):
            s, batched = s[0], True
        elif tuple(s.shape) == (N, H):
            batched = False
        else:
            raise ValueError(f"{name} must be (1, {N}, {H}) or ({N}, {H}), got {tuple(s.shape)}")
        if s.dtype != x.dtype or s.device != x.device:
            raise ValueError(f"{name} is {s.dtype} on {s.device} but x is {x.dtype} on {x.device}")
        return s, batched

    def forward(self, x: Tensor, hx=None):
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        self._check_input(x)
        if x.shape[1] == 0:
            raise ValueError("x has no time steps (T = 0)")
        W_x = self.weight_ih_l0
        if x.dtype != W_x.dtype or x.device != W_x.device:
            raise ValueError(
                f"x is {x.dtype} on {x.device} but the parameters are {W_x.dtype} on "
                f"{W_x.device}: move one of them (module.to(x) or x.to(...))"
            )
        if hx is None:
            hx = (None, None)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("hx must be a pair (h0, c0) of tensors, each (1, N, H)")
        (h0, b1), (c0, b2) = self._initial("h0", hx[0], x), self._initial("c0", hx[1], x)
        if hx[0] is not None and hx[1] is not None and b1 != b2:
            raise ValueError("h0 and c0 must have the same layout, both (1, N, H) or both (N, H)")
        b_ih, b_hh = self._biases()
        # The input projections of all T steps: one (T*N, D) x (D, 4H) GEMM, biases folded in,
        # time-major so that every step reads and writes contiguous rows.
        A = F.linear(x.transpose(0, 1), W_x, b_ih + b_hh).contiguous()
        hs, h_n, c_n = self._recurrence(A, h0, c0, self.weight_hh_l0)
        out = hs.transpose(0, 1).contiguous()  # back to batch-first, one copy
        if b1 and b2:
            h_n, c_n = h_n.unsqueeze(0), c_n.unsqueeze(0)
        return out, (h_n, c_n)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", backend={self.backend}"
