r"""Deep (stacked), bidirectional and multi-layer recurrent networks, and the "RRNN" of seed 004,
in NumPy (chapter ch07_variants).

**Wrappers over any cell.** ``cell`` names one of the sequence functions of :mod:`rnn_ref.numpy`:
``"rnn"`` (:func:`~rnn_ref.numpy.rnn_forward`), ``"lstm"`` (:func:`~rnn_ref.numpy.lstm_forward`)
or ``"gru"`` (:func:`~rnn_ref.numpy.gru_forward`, PyTorch's reset placement). A *state* is what
that function takes: an (N, H) array for rnn and gru, a pair ``(h, c)`` of (N, H) arrays for
lstm; a *params* dict is the cell's (``W_xh, W_hh, b_h``; ``W_x, W_h, b``; ``W_x, W_h, b_x,
b_h``).

- Stacked (deep) RNN, layers :math:`l = 1, \dots, L`, with :math:`h^{(0)}_t = x_t`:
  :math:`h^{(l)}_t = \mathrm{cell}_l(h^{(l-1)}_t, h^{(l)}_{t-1})`; the output is
  :math:`h^{(L)}_{1:T}`. Layer l reads the H_{l-1} outputs of layer l-1, so the sizes may differ.
- Bidirectional: a forward cell reads :math:`x_1, \dots, x_T`, a reverse cell (its own
  parameters) reads :math:`x_T, \dots, x_1`; the output at position t is
  :math:`[\overrightarrow{h}_t; \overleftarrow{h}_t]`, where :math:`\overleftarrow{h}_t` is the
  reverse cell's state after it has read :math:`x_T, \dots, x_t` (as ``torch.nn`` stores it).
- Multi-layer: ``torch.nn.RNN/LSTM/GRU(batch_first=True, num_layers=L, bidirectional=...)``,
  with torch's state layout (L * dirs, N, H), index ``layer * dirs + direction``.

Backward passes return gradients in the same structures as the forward inputs.
**The RRNN** of seed 004 §3.3 is at the end of the module (:func:`rrnn_step_forward`).
Shapes are batch-first; no input is modified in place.
"""

from __future__ import annotations

import inspect

import numpy as np

from ._activations import sigmoid
from ._checks import as_float_array, get_params, sequence_inputs
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .rnn import rnn_backward, rnn_forward

__all__ = [
    "stacked_forward",
    "stacked_backward",
    "bidirectional_forward",
    "bidirectional_backward",
    "multilayer_forward",
    "multilayer_backward",
    "rrnn_init",
    "rrnn_step_forward",
    "rrnn_step_backward",
    "rrnn_forward",
    "rrnn_backward",
]

CELLS = ("rnn", "lstm", "gru")
_FORWARD = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward}
_BACKWARD = {"rnn": rnn_backward, "lstm": lstm_backward, "gru": gru_backward}
_HIDDEN_KEY = {"rnn": "W_hh", "lstm": "W_h", "gru": "W_h"}  # its second dimension is H


# ---------------------------------------------------------------------------------------------
# Helpers: one cell over one sequence, with messages that say which layer / direction failed
# ---------------------------------------------------------------------------------------------


def _check_cell(cell) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of 'rnn', 'lstm', 'gru', got {cell!r}")
    return cell


def _where(fn, where: str, *args):
    """Call ``fn(*args)``; an error from inside names ``where`` (e.g. "layer 1, reverse")."""
    try:
        return fn(*args)
    except (ValueError, TypeError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise type(e)(f"{where}: {msg}") from e


def _run(cell, x, state, params, where):
    """One cell over x (N, T, D): hs (N, T, H), the last state (as the cell's state) and cache."""
    hs, cache = _where(_FORWARD[cell], where, x, state, params)
    if cell == "lstm":
        return hs, (hs[:, -1], cache[4][:, -1]), cache  # cache[4] holds c_1 ... c_T
    return hs, hs[:, -1], cache


def _unrun(cell, dhs, cache, where):
    return _where(_BACKWARD[cell], where, dhs, cache)


def _as_list(name: str, seq, n: int | None = None, what: str = "") -> list:
    if not isinstance(seq, (list, tuple)):
        raise TypeError(f"{name} must be a list{what}, got {type(seq).__name__}")
    if n is not None and len(seq) != n:
        raise ValueError(f"{name} must have {n} entries{what}, got {len(seq)}")
    return list(seq)


def _pair(name: str, value) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (forward, reverse), got {type(value).__name__}")
    return value[0], value[1]


def _check_cache(cache, tag: str, fn: str):
    if not isinstance(cache, tuple) or not cache or cache[0] != tag:
        raise ValueError(f"cache must come from {fn}")
    return cache[1:]


def _check_dout(name: str, dout, shape) -> np.ndarray:
    dout = as_float_array(name, dout, 3)
    if dout.shape != shape:
        raise ValueError(f"{name} must have the shape of the output, {shape}, got {dout.shape}")
    return dout


# ---------------------------------------------------------------------------------------------
# Stacked (deep) RNN
# ---------------------------------------------------------------------------------------------


def stacked_forward(x, states, layers, cell="rnn"):
    """A stack of L recurrent layers: layer l reads the hidden states of layer l-1.

    ``h^{(0)}_t = x_t``, ``h^{(l)}_t = cell_l(h^{(l-1)}_t, h^{(l)}_{t-1})`` for l = 1..L; each
    layer runs over the whole sequence before the next one starts (the loop over layers is
    outside the loop over time, as in ``torch.nn`` and cuDNN).

    Args:
        x: inputs, (N, T, D).
        states: L initial states, one per layer (rnn, gru: (N, H_l); lstm: ``(h0, c0)``).
        layers: L params dicts; layer 0 reads D inputs, layer l reads H_{l-1}.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.

    Returns:
        hs: hidden states of the top layer, (N, T, H_L).
        cache: what :func:`stacked_backward` needs.
    """
    cell = _check_cell(cell)
    layers = _as_list("layers", layers, what=" of params dicts")
    if not layers:
        raise ValueError("layers is empty: a stack needs at least one layer")
    states = _as_list("states", states, len(layers), " (one initial state per layer)")
    x = as_float_array("x", x, 3)
    caches, inp = [], x
    for layer, (state, params) in enumerate(zip(states, layers, strict=True)):
        inp, _, c = _run(cell, inp, state, params, f"layer {layer}")
        caches.append(c)
    return inp, ("stacked", cell, caches, inp.shape)


def stacked_backward(dhs, cache):
    """Backward of :func:`stacked_forward`: the input gradient of layer l is the upstream
    gradient of layer l-1.

    Args:
        dhs: upstream gradients for the top layer's hidden states, (N, T, H_L).
        cache: from :func:`stacked_forward`.

    Returns:
        dx (N, T, D); dstates, a list of L initial-state gradients (lstm: ``(dh0, dc0)``);
        grads, a list of L dicts with the keys of each layer's params.
    """
    cell, caches, shape = _check_cache(cache, "stacked", "stacked_forward")
    d = _check_dout("dhs", dhs, shape)
    dstates, grads = [None] * len(caches), [None] * len(caches)
    for layer in range(len(caches) - 1, -1, -1):
        d, dstates[layer], grads[layer] = _unrun(cell, d, caches[layer], f"layer {layer}")
    return d, dstates, grads


# ---------------------------------------------------------------------------------------------
# Bidirectional RNN
# ---------------------------------------------------------------------------------------------


def _bidirectional(x, states, params, cell, where=""):
    """Both directions; also returns the last state of each (the reverse one's is at t = 0)."""
    state_f, state_r = _pair("states", states)
    params_f, params_r = _pair("params", params)
    hs_f, last_f, cache_f = _run(cell, x, state_f, params_f, where + "forward")
    # The reverse cell reads x_T ... x_1; flipping its outputs back puts the state that has
    # read x_T ... x_t at position t.
    hs_r, last_r, cache_r = _run(cell, x[:, ::-1], state_r, params_r, where + "reverse")
    hs = np.concatenate([hs_f, hs_r[:, ::-1]], axis=2)
    cache = ("bidirectional", cell, cache_f, cache_r, hs_f.shape[2], hs.shape, where)
    return hs, (last_f, last_r), cache


def bidirectional_forward(x, states, params, cell="rnn"):
    """A forward and a reverse cell over the same sequence, outputs concatenated.

    ``hs[:, t, :H] = h_fwd_t`` (the forward cell after x_0 ... x_t) and
    ``hs[:, t, H:] = h_rev_t`` (the reverse cell, which reads x from t = T-1 down to 0, after
    x_{T-1} ... x_t): both halves at position t have seen x_t, and together all of x.

    Args:
        x: inputs, (N, T, D).
        states: ``(state_fwd, state_rev)``, initial states (rnn, gru: (N, H); lstm: ``(h, c)``).
        params: ``(params_fwd, params_rev)``, two params dicts of the cell, both reading D.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.

    Returns:
        hs: (N, T, 2H), forward direction in ``[..., :H]``, reverse in ``[..., H:]``.
        cache: what :func:`bidirectional_backward` needs.
    """
    cell = _check_cell(cell)
    x = as_float_array("x", x, 3)
    hs, _, cache = _bidirectional(x, states, params, cell)
    return hs, cache


def bidirectional_backward(dhs, cache):
    """Backward of :func:`bidirectional_forward`: each half of ``dhs`` goes to its direction
    (the reverse half flipped in time, as its cell saw it), and ``dx`` is the sum of both.

    Args:
        dhs: upstream gradients, (N, T, 2H).
        cache: from :func:`bidirectional_forward`.

    Returns:
        dx (N, T, D), ``(dstate_fwd, dstate_rev)``, ``(grads_fwd, grads_rev)``.
    """
    cell, cache_f, cache_r, H_f, shape, where = _check_cache(
        cache, "bidirectional", "bidirectional_forward"
    )
    dhs = _check_dout("dhs", dhs, shape)
    dx_f, ds_f, g_f = _unrun(cell, dhs[:, :, :H_f], cache_f, where + "forward")
    dx_r, ds_r, g_r = _unrun(cell, dhs[:, ::-1, H_f:], cache_r, where + "reverse")
    return dx_f + dx_r[:, ::-1], (ds_f, ds_r), (g_f, g_r)


# ---------------------------------------------------------------------------------------------
# Multi-layer, optionally bidirectional, in torch.nn's layout
# ---------------------------------------------------------------------------------------------


def _initial_states(h0, cell, L, dirs, N, H, dtype):
    """(L * dirs, N, H) arrays (a pair for lstm), zeros for None, checked."""
    names = ("h0", "c0") if cell == "lstm" else ("h0",)
    if h0 is None:
        return [np.zeros((L * dirs, N, H), dtype) for _ in names]
    if cell == "lstm":
        if not isinstance(h0, (tuple, list)) or len(h0) != 2:
            raise TypeError(f"h0 of an lstm must be a pair (h0, c0), got {type(h0).__name__}")
        arrays = list(h0)
    else:
        arrays = [h0]
    out = []
    for name, a in zip(names, arrays, strict=True):
        a = as_float_array(name, a, 3)
        if a.shape != (L * dirs, N, H):
            raise ValueError(
                f"{name} must be (num_layers * num_directions, N, H) = ({L * dirs}, {N}, {H}), "
                f"got {a.shape}"
            )
        out.append(a)
    return out


def multilayer_forward(x, h0, layers, cell="rnn", bidirectional=False):
    """``torch.nn.RNN/LSTM/GRU(batch_first=True, num_layers=L, bidirectional=...)`` in NumPy.

    Layer 0 reads x (D features), layer l > 0 reads layer l-1's output (dirs * H features).
    State index ``k = layer * dirs + direction`` (direction 1 = reverse), as torch.

    Args:
        x: inputs, (N, T, D).
        h0: initial states, (L * dirs, N, H) (lstm: a pair ``(h0, c0)`` of such arrays), or
            None for zeros.
        layers: L entries: a params dict each (unidirectional) or a pair
            ``(params_fwd, params_rev)`` each (bidirectional). All layers have the same H.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        bidirectional: whether each layer has a reverse direction.

    Returns:
        out: the top layer's outputs, (N, T, dirs * H).
        h_n: the last state of every layer and direction, (L * dirs, N, H) (lstm: ``(h_n, c_n)``);
            for the reverse direction it is its state after reading x_{T-1} ... x_0.
        cache: what :func:`multilayer_backward` needs.
    """
    cell = _check_cell(cell)
    layers = _as_list("layers", layers)
    if not layers:
        raise ValueError("layers is empty: num_layers must be at least 1")
    dirs = 2 if bidirectional else 1
    for layer, entry in enumerate(layers):
        if bidirectional:
            _pair(f"layers[{layer}] (bidirectional)", entry)
        elif not isinstance(entry, dict):
            raise TypeError(
                f"layers[{layer}] must be a params dict (unidirectional), "
                f"got {type(entry).__name__}"
            )
    first = layers[0][0] if bidirectional else layers[0]
    key = _HIDDEN_KEY[cell]
    if not isinstance(first, dict) or key not in first:
        raise KeyError(f"layers[0] must be a {cell} params dict with {key!r}")
    H = np.shape(first[key])[1]
    x = as_float_array("x", x, 3)
    N = x.shape[0]
    inits = _initial_states(h0, cell, len(layers), dirs, N, H, np.result_type(x, np.float64))
    n_states = len(inits)

    def state(k):
        s = tuple(a[k] for a in inits)
        return s if cell == "lstm" else s[0]

    caches, lasts, inp = [], [], x
    for layer, params in enumerate(layers):
        if bidirectional:
            states = (state(2 * layer), state(2 * layer + 1))
            inp, last, c = _bidirectional(inp, states, params, cell, f"layer {layer}, ")
            lasts += list(last)
        else:
            inp, last, c = _run(cell, inp, state(layer), params, f"layer {layer}")
            lasts.append(last)
        caches.append(c)
    if n_states == 2:
        h_n = tuple(np.stack([s[i] for s in lasts]) for i in range(2))
    else:
        h_n = np.stack(lasts)
    cache = ("multilayer", cell, bidirectional, caches, inp.shape, (len(inits), len(layers) * dirs))
    return inp, h_n, cache


def multilayer_backward(dout, cache, dh_n=None):
    """Backward of :func:`multilayer_forward`.

    Args:
        dout: upstream gradients of the top layer's outputs, (N, T, dirs * H).
        cache: from :func:`multilayer_forward`.
        dh_n: optional upstream gradient of ``h_n``, (L * dirs, N, H) (for lstm: of h_n only;
            a loss on c_n is not supported, as in :func:`~rnn_ref.numpy.lstm_backward`). Since
            ``h_n[k]`` *is* an output (the forward direction's at t = T-1, the reverse one's at
            t = 0), it is added to that output's gradient.

    Returns:
        dx (N, T, D); dh0, (L * dirs, N, H) (lstm: ``(dh0, dc0)``); grads, a list like
        ``layers``: a dict per layer, or a pair ``(grads_fwd, grads_rev)`` per layer.
    """
    cell, bidirectional, caches, shape, (n_states, K) = _check_cache(
        cache, "multilayer", "multilayer_forward"
    )
    dirs = 2 if bidirectional else 1
    d = _check_dout("dout", dout, shape)
    N = shape[0]
    if dh_n is not None:
        if isinstance(dh_n, (tuple, list)):
            raise TypeError(
                "dh_n must be one array (L * dirs, N, H): a loss on c_n is not supported"
            )
        dh_n = as_float_array("dh_n", dh_n, 3)
        H = shape[2] // dirs
        if dh_n.shape != (K, N, H):
            raise ValueError(f"dh_n must have the shape of h_n, {(K, N, H)}, got {dh_n.shape}")
    dstates: list = [None] * K
    grads: list = [None] * len(caches)
    for layer in range(len(caches) - 1, -1, -1):
        if dh_n is not None:
            d = d.copy()
            H = dh_n.shape[2]
            d[:, -1, :H] += dh_n[layer * dirs]
            if bidirectional:
                d[:, 0, H:] += dh_n[layer * dirs + 1]
        if bidirectional:
            d, (ds_f, ds_r), grads[layer] = bidirectional_backward(d, caches[layer])
            dstates[2 * layer], dstates[2 * layer + 1] = ds_f, ds_r
        else:
            d, dstates[layer], grads[layer] = _unrun(cell, d, caches[layer], f"layer {layer}")
    if n_states == 2:
        dh0 = tuple(np.stack([s[i] for s in dstates]) for i in range(2))
    else:
        dh0 = np.stack(dstates)
    return d, dh0, grads


# ---------------------------------------------------------------------------------------------
# The "RRNN" of seed 004 §3.3, exactly as its equations are written
# ---------------------------------------------------------------------------------------------

_RRNN_DOC = r"""
Seed 004 §3.3 defines, with f and g unnamed activations,

.. math::

   h_t  &= f(W_{hh} h_{t-1} + W_{xh} x_t + b_h) \\
   r_t  &= g(W_{rr} h_{t-1} + W_{xr} x_t + b_r) \\
   h'_t &= f(W_{h'h} h_{t-1} + W_{x'h} x_t + W_{rh} r_t \odot h_{t-1} + b_{h'}) \\
   o_t  &= g(W_{ho} h'_t + W_{ho'} h_t + b_o)

Reading implemented here: f = tanh, g = sigmoid (the seed says neither);
:math:`W_{rh} r_t \odot h_{t-1}` is :math:`(W_{rh} r_t) \odot h_{t-1}` (so h' has H units, like
h); the state carried to step t+1 is h_t. Sizes: x D, h and h' H, r R ("aux_size"), o O.

==========================  ===========  ==========  ==============================
seed symbol                 code name    shape       multiplies
==========================  ===========  ==========  ==============================
:math:`W_{xh}`              ``W_xh``     (H, D)      x_t, in h_t
:math:`W_{hh}`              ``W_hh``     (H, H)      h_{t-1}, in h_t
:math:`b_h`                 ``b_h``      (H,)
:math:`W_{xr}`              ``W_xr``     (R, D)      x_t, in r_t
:math:`W_{rr}`              ``W_rr``     (R, H)      h_{t-1}, in r_t
:math:`b_r`                 ``b_r``      (R,)
:math:`W_{x'h}`             ``W_xhp``    (H, D)      x_t, in h'_t
:math:`W_{h'h}`             ``W_hhp``    (H, H)      h_{t-1}, in h'_t
:math:`W_{rh}`              ``W_rh``     (H, R)      r_t, then ⊙ h_{t-1}, in h'_t
:math:`b_{h'}`              ``b_hp``     (H,)
:math:`W_{ho}`              ``W_hpo``    (O, H)      **h'_t**, in o_t
:math:`W_{ho'}`             ``W_ho``     (O, H)      **h_t**, in o_t
:math:`b_o`                 ``b_o``      (O,)
==========================  ===========  ==========  ==============================

(The seed's subscripts are swapped relative to what they multiply in o_t: its W_{ho} multiplies
h'_t and its W_{ho'} multiplies h_t. The code names say what they multiply: ``W_hpo`` is
"h-prime to o", ``W_ho`` is "h to o".)

What the equations say, read literally: every right-hand side uses h_{t-1}, and neither r_t nor
h'_t is ever fed back, so the "auxiliary recurrence" does not recur. h_1 ... h_T are exactly a
plain tanh RNN's (:func:`~rnn_ref.numpy.rnn_forward` with ``W_xh, W_hh, b_h``); r_t and h'_t
are functions of (x_t, h_{t-1}) that only shape the output o_t.
"""

_RRNN_KEYS = (
    "W_xh", "W_hh", "b_h", "W_xr", "W_rr", "b_r",
    "W_xhp", "W_hhp", "W_rh", "b_hp", "W_hpo", "W_ho", "b_o",
)  # fmt: skip


def _rrnn_params(params, D: int, H: int) -> dict[str, np.ndarray]:
    # R and O are read off W_rr and W_ho; every other shape is then checked against them.
    first = get_params(params, {"W_rr": (None, H), "W_ho": (None, H)})
    R, O = first["W_rr"].shape[0], first["W_ho"].shape[0]
    return get_params(
        params,
        {
            "W_xh": (H, D), "W_hh": (H, H), "b_h": (H,),
            "W_xr": (R, D), "W_rr": (R, H), "b_r": (R,),
            "W_xhp": (H, D), "W_hhp": (H, H), "W_rh": (H, R), "b_hp": (H,),
            "W_hpo": (O, H), "W_ho": (O, H), "b_o": (O,),
        },
    )  # fmt: skip


def rrnn_init(D: int, H: int, R: int, O: int, rng=None) -> dict[str, np.ndarray]:
    """Random RRNN parameters (float64), every entry U(-1/sqrt(H), 1/sqrt(H)) as ``torch.nn``'s
    recurrent layers (and :class:`rnn_ref.torch.RRNN`) initialise theirs.

    Args:
        D, H, R, O: input, hidden (h and h'), auxiliary (r) and output (o) sizes.
        rng: a ``numpy.random.Generator`` (or a seed for one).

    Returns:
        params with keys ``W_xh, W_hh, b_h, W_xr, W_rr, b_r, W_xhp, W_hhp, W_rh, b_hp, W_hpo,
        W_ho, b_o`` (see :func:`rrnn_step_forward` for the shapes).
    """
    for name, n in (("D", D), ("H", H), ("R", R), ("O", O)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    rng = np.random.default_rng(rng)
    shapes = {
        "W_xh": (H, D), "W_hh": (H, H), "b_h": (H,),
        "W_xr": (R, D), "W_rr": (R, H), "b_r": (R,),
        "W_xhp": (H, D), "W_hhp": (H, H), "W_rh": (H, R), "b_hp": (H,),
        "W_hpo": (O, H), "W_ho": (O, H), "b_o": (O,),
    }  # fmt: skip
    bound = 1.0 / np.sqrt(H)
    return {k: rng.uniform(-bound, bound, size=s) for k, s in shapes.items()}


def _rrnn_core(xw, h_prev, p):
    """One step from the input projections xw = (x W_xh.T + b_h, x W_xr.T + b_r,
    x W_xhp.T + b_hp): returns h, r, m = r W_rh.T, h', o."""
    xh, xr, xhp = xw
    h = np.tanh(xh + h_prev @ p["W_hh"].T)
    r = sigmoid(xr + h_prev @ p["W_rr"].T)
    m = r @ p["W_rh"].T
    hp = np.tanh(xhp + h_prev @ p["W_hhp"].T + m * h_prev)
    o = sigmoid(hp @ p["W_hpo"].T + h @ p["W_ho"].T + p["b_o"])
    return h, r, m, hp, o


def _rrnn_core_backward(dh, do, h_prev, h, r, m, hp, o, p):
    """Pre-activation gradients of one step and dh_prev, given dh (upstream, not through o)."""
    da_o = do * o * (1.0 - o)
    dh = dh + da_o @ p["W_ho"]
    da_hp = (da_o @ p["W_hpo"]) * (1.0 - hp * hp)
    dm = da_hp * h_prev  # gradient of m = W_rh r, which multiplies h_prev elementwise
    da_r = (dm @ p["W_rh"]) * r * (1.0 - r)
    da_h = dh * (1.0 - h * h)
    dh_prev = da_h @ p["W_hh"] + da_r @ p["W_rr"] + da_hp @ p["W_hhp"] + da_hp * m
    return da_h, da_r, da_hp, dm, da_o, dh_prev


def _rrnn_check_step(x, h_prev, params):
    x = as_float_array("x", x, 2)
    h_prev = as_float_array("h_prev", h_prev, 2)
    if x.shape[0] != h_prev.shape[0]:
        raise ValueError(f"x has batch size {x.shape[0]} but h_prev has {h_prev.shape[0]}")
    return x, h_prev, _rrnn_params(params, x.shape[1], h_prev.shape[1])


def rrnn_step_forward(x, h_prev, params):
    """One step of the RRNN of seed 004 §3.3, as read below (after the table of names):

    ``h = tanh(x W_xh.T + h_prev W_hh.T + b_h)``,
    ``r = sigmoid(x W_xr.T + h_prev W_rr.T + b_r)``,
    ``h' = tanh(x W_xhp.T + h_prev W_hhp.T + (r W_rh.T) * h_prev + b_hp)``,
    ``o = sigmoid(h' W_hpo.T + h W_ho.T + b_o)``.

    Args:
        x: input, (N, D).
        h_prev: previous hidden state, (N, H).
        params: see the table below.

    Returns:
        (h, o): the next hidden state (N, H), which is the recurrent state, and the output (N, O).
        cache: what :func:`rrnn_step_backward` needs.
    """
    x, h_prev, p = _rrnn_check_step(x, h_prev, params)
    xw = (x @ p["W_xh"].T + p["b_h"], x @ p["W_xr"].T + p["b_r"], x @ p["W_xhp"].T + p["b_hp"])
    h, r, m, hp, o = _rrnn_core(xw, h_prev, p)
    return (h, o), (x, h_prev, h, r, m, hp, o, p)


def rrnn_step_backward(dout, cache):
    """Backward of :func:`rrnn_step_forward`.

    With ``da_o = do * o(1-o)``: the total gradient of h is ``dh + da_o W_ho``, that of h' is
    ``da_o W_hpo``, so ``da_hp = dh' * (1 - h'^2)``; ``dm = da_hp * h_prev`` (m = r W_rh.T),
    ``da_r = (dm W_rh) * r(1-r)``, ``da_h = dh_total * (1 - h^2)``; h_prev receives
    ``da_h W_hh + da_r W_rr + da_hp W_hhp + da_hp * m``, x receives
    ``da_h W_xh + da_r W_xr + da_hp W_xhp``.

    Args:
        dout: ``(dh, do)``: gradients of the loss with respect to h (N, H) other than through
            this step's o (e.g. from the next step), and with respect to o (N, O).
        cache: from :func:`rrnn_step_forward`.

    Returns:
        dx (N, D), dh_prev (N, H), grads with the keys of params.
    """
    x, h_prev, h, r, m, hp, o, p = cache
    if not isinstance(dout, (tuple, list)) or len(dout) != 2:
        raise TypeError(f"dout must be a pair (dh, do), got {type(dout).__name__}")
    dh = as_float_array("dh", dout[0], 2)
    do = as_float_array("do", dout[1], 2)
    if dh.shape != h.shape:
        raise ValueError(f"dh must have the shape of h, {h.shape}, got {dh.shape}")
    if do.shape != o.shape:
        raise ValueError(f"do must have the shape of o, {o.shape}, got {do.shape}")
    da_h, da_r, da_hp, dm, da_o, dh_prev = _rrnn_core_backward(dh, do, h_prev, h, r, m, hp, o, p)
    grads = {
        "W_xh": da_h.T @ x, "W_hh": da_h.T @ h_prev, "b_h": da_h.sum(axis=0),
        "W_xr": da_r.T @ x, "W_rr": da_r.T @ h_prev, "b_r": da_r.sum(axis=0),
        "W_xhp": da_hp.T @ x, "W_hhp": da_hp.T @ h_prev, "W_rh": dm.T @ r,
        "b_hp": da_hp.sum(axis=0),
        "W_hpo": da_o.T @ hp, "W_ho": da_o.T @ h, "b_o": da_o.sum(axis=0),
    }  # fmt: skip
    dx = da_h @ p["W_xh"] + da_r @ p["W_xr"] + da_hp @ p["W_xhp"]
    return dx, dh_prev, grads


def rrnn_forward(x, h0, params):
    """The RRNN of seed 004 §3.3 over a whole sequence (equations as :func:`rrnn_step_forward`).

    The input projections of all steps (into h, r and h') are computed before the loop.

    Args:
        x: inputs, (N, T, D).
        h0: initial hidden state, (N, H).
        params: ``W_xh, W_hh, b_h, W_xr, W_rr, b_r, W_xhp, W_hhp, W_rh, b_hp, W_hpo, W_ho, b_o``
            (shapes in the table below).

    Returns:
        (hs, os): hidden states h_1 ... h_T (N, T, H) and outputs o_1 ... o_T (N, T, O).
        cache: what :func:`rrnn_backward` needs.
    """
    x, h0 = sequence_inputs(x, h0)
    N, T, D = x.shape
    H = h0.shape[1]
    p = _rrnn_params(params, D, H)
    R, O = p["W_rr"].shape[0], p["W_ho"].shape[0]
    dtype = np.result_type(x, h0, *p.values())
    xw = [x @ p[w].T + p[b] for w, b in (("W_xh", "b_h"), ("W_xr", "b_r"), ("W_xhp", "b_hp"))]
    hs, hps, ms = (np.empty((N, T, H), dtype) for _ in range(3))
    rs, os = np.empty((N, T, R), dtype), np.empty((N, T, O), dtype)
    h = h0
    for t in range(T):
        h, rs[:, t], ms[:, t], hps[:, t], os[:, t] = _rrnn_core([a[:, t] for a in xw], h, p)
        hs[:, t] = h
    return (hs, os), (x, h0, hs, rs, ms, hps, os, p)


def rrnn_backward(dout, cache):
    """Backpropagation through time for :func:`rrnn_forward`.

    Only h carries gradient back in time; at each step the gradient ``dhs[:, t] + dh_next`` and
    ``dos[:, t]`` go through :func:`rrnn_step_backward`'s equations. The parameter gradients,
    sums over time, are one matrix product each after the loop.

    Args:
        dout: ``(dhs, dos)``: upstream gradients for the hidden states (N, T, H) (other than
            through o) and for the outputs (N, T, O).
        cache: from :func:`rrnn_forward`.

    Returns:
        dx (N, T, D), dh0 (N, H), grads with the keys of params.
    """
    x, h0, hs, rs, ms, hps, os, p = cache
    if not isinstance(dout, (tuple, list)) or len(dout) != 2:
        raise TypeError(f"dout must be a pair (dhs, dos), got {type(dout).__name__}")
    dhs = as_float_array("dhs", dout[0], 3)
    dos = as_float_array("dos", dout[1], 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of hs, {hs.shape}, got {dhs.shape}")
    if dos.shape != os.shape:
        raise ValueError(f"dos must have the shape of os, {os.shape}, got {dos.shape}")
    N, T, H = hs.shape
    dtype = np.result_type(dhs, dos, hs)
    da_h, da_hp, dm = (np.empty((N, T, H), dtype) for _ in range(3))
    da_r, da_o = np.empty(rs.shape, dtype), np.empty(os.shape, dtype)
    dh_next = np.zeros((N, H), dtype)
    for t in range(T - 1, -1, -1):
        h_prev = hs[:, t - 1] if t > 0 else h0
        (da_h[:, t], da_r[:, t], da_hp[:, t], dm[:, t], da_o[:, t], dh_next) = _rrnn_core_backward(
            dhs[:, t] + dh_next, dos[:, t], h_prev, hs[:, t], rs[:, t], ms[:, t], hps[:, t],
            os[:, t], p,
        )  # fmt: skip

    def flat(a):
        return a.reshape(N * T, a.shape[2])

    h_prevs = flat(np.concatenate([h0[:, None], hs[:, :-1]], axis=1))
    x2 = flat(x)
    grads = {
        "W_xh": flat(da_h).T @ x2, "W_hh": flat(da_h).T @ h_prevs, "b_h": flat(da_h).sum(0),
        "W_xr": flat(da_r).T @ x2, "W_rr": flat(da_r).T @ h_prevs, "b_r": flat(da_r).sum(0),
        "W_xhp": flat(da_hp).T @ x2, "W_hhp": flat(da_hp).T @ h_prevs,
        "W_rh": flat(dm).T @ flat(rs), "b_hp": flat(da_hp).sum(0),
        "W_hpo": flat(da_o).T @ flat(hps), "W_ho": flat(da_o).T @ flat(hs),
        "b_o": flat(da_o).sum(0),
    }  # fmt: skip
    dx = (flat(da_h) @ p["W_xh"] + flat(da_r) @ p["W_xr"] + flat(da_hp) @ p["W_xhp"]).reshape(
        x.shape
    )
    return dx, dh_next, grads


# The reading of the seed, with its table, ends each RRNN function's docstring (help() shows it).
for _f in (rrnn_step_forward, rrnn_step_backward, rrnn_forward, rrnn_backward, rrnn_init):
    _f.__doc__ = inspect.cleandoc(_f.__doc__) + "\n" + _RRNN_DOC
del _f
