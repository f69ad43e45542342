"""The seeds' code as written (chapter 17, ``ch17_errata``): faithful NumPy transcriptions of
the seed functions that the errata chapter's exercise starts from, kept as they are.

Each function says where it comes from (seed file and the seed's own section), what is wrong
with it (or, for the GRU, why it is a different convention rather than an error), and which
function of :mod:`rnn_ref.numpy` computes the right thing. They are here so
that the errors can be measured (``tests/test_numpy_errata.py`` pins each one down against the
reference: a gradient check that fails, a value that is never negative, a mean that is 0 where
the squared error is not) and so that the exercise's locked transcriptions can be checked to be
these ones. Nothing else in the course calls them. Do not "fix" them: their errors are the point.

Conventions, as in :mod:`rnn_ref.numpy.lstm` and :mod:`rnn_ref.numpy.gru`: ``x`` (N, D),
``h_prev`` and ``c_prev`` (N, H); LSTM ``W_x`` (4H, D), ``W_h`` (4H, H), ``b`` (4H,) in gate
order i, f, g, o; GRU ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,) in gate order
r, z, n (``torch.nn.GRU``'s).
"""

from __future__ import annotations

import numpy as np

from ._activations import sigmoid

__all__ = [
    "seed002_mse",
    "seed003_gru_step",
    "seed003_lstm_step_backward",
    "seed004_lstm_step",
]


def seed004_lstm_step(x, state, params):
    """Seed 004 §3.2's LSTM step, as written: the candidate ("memory gate") is a *sigmoid*, and
    every gate reads the previous cell through a full matrix (``W_c`` (3H, H), blocks i, f, o).

    What is wrong: the candidate must be ``tanh`` (with a sigmoid, ``i * g > 0``, so a cell that
    starts at 0 never goes negative); cell terms are peepholes, which the LSTM of chapter 5 and
    of the libraries does not have (and which are diagonal, with the output gate reading the new
    cell). The right step is :func:`rnn_ref.numpy.lstm_step_forward`.

    Args:
        x: (N, D); state: ``(h_prev, c_prev)``, each (N, H); params: ``W_x`` (4H, D), ``W_h``
            (4H, H), ``b`` (4H,), ``W_c`` (3H, H).

    Returns:
        ``(h, c)``, each (N, H).
    """
    h_prev, c_prev = state
    H = h_prev.shape[1]
    a = x @ params["W_x"].T + h_prev @ params["W_h"].T + params["b"]
    p = c_prev @ params["W_c"].T  # W_ci c_{t-1}, W_cf c_{t-1}, W_co c_{t-1}
    i = sigmoid(a[:, :H] + p[:, :H])
    f = sigmoid(a[:, H : 2 * H] + p[:, H : 2 * H])
    g = sigmoid(a[:, 2 * H : 3 * H])  # the seed's "memory gate"
    o = sigmoid(a[:, 3 * H :] + p[:, 2 * H :])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c


def seed003_lstm_step_backward(dstate, x, state, params):
    """Seed 003 §1.5's LSTM backward step, line by line (its ``dc`` argument is ignored, as in
    the seed, whose function does not take one).

    What is wrong, line by line: ``dc = dh * tanh(c)`` is the output gate's factor, not the
    cell's gradient (it must be ``dh * o * (1 - tanh(c)**2)`` plus the ``dc`` from step t+1);
    ``di`` lacks the factor ``g`` and ``df`` the factor ``c_prev``; ``dg`` uses the sigmoid's
    derivative for the tanh candidate and is then dropped for ``ddg = 1 - g**2``, which has no
    upstream gradient at all. There are no gradients for ``W_h`` or ``b``. The right step is
    :func:`rnn_ref.numpy.lstm_step_backward`.

    Args:
        dstate: ``(dh, dc)``, each (N, H); x (N, D); state ``(h_prev, c_prev)``; params as in
            :func:`rnn_ref.numpy.lstm_step_forward`.

    Returns:
        ``(dx, (dh_prev, dc_prev), {"W_x": dW_x})``.
    """
    dh, _dc_ignored = dstate
    h_prev, c_prev = state
    H = h_prev.shape[1]
    a = x @ params["W_x"].T + h_prev @ params["W_h"].T + params["b"]
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])
    g, o = np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
    c = f * c_prev + i * g
    W_xi, W_xf, W_xg, W_xo = np.split(params["W_x"], 4)
    W_ih, W_fh, W_gh, W_oh = np.split(params["W_h"], 4)
    dc = dh * np.tanh(c)
    di = dc * i * (1 - i)
    dg = dc * g * (1 - g)  # noqa: F841  (computed in the seed, never used)
    df = dc * f * (1 - f)
    ddg = 1 - g**2
    do = dh * np.tanh(c)
    do = do * o * (1 - o)
    dx = di @ W_xi + df @ W_xf + do @ W_xo + ddg @ W_xg
    dW_x = np.concatenate([di, df, ddg, do], axis=1).T @ x
    dh_prev = di @ W_ih + df @ W_fh + do @ W_oh + ddg @ W_gh
    dc_prev = f * dc
    return dx, (dh_prev, dc_prev), {"W_x": dW_x}


def seed003_gru_step(x, h_prev, params):
    """Seed 003 §1.4's GRU step, as written: the reset gate multiplies ``h_prev`` *before* the
    recurrent product, and each gate has one bias (``b_x + b_h`` folded).

    The cell itself is not wrong: it is Cho et al.'s original GRU, which is
    :func:`rnn_ref.numpy.gru_step_forward` with ``reset="before"`` (the folded bias changes
    nothing there). It is not ``torch.nn.GRU``'s cell (``r * (W_hn h + b_hn)``), and the seed
    does not say which it is. The errors of §1.4 are around it: it names the gates "input,
    update and output" (a GRU has a reset and an update gate and no output gate), calls z the
    "input gate" and r the "update gate", initialises ``W_hh`` twice in one line, uses an
    output layer whose weights are never defined, and its backward pass is wrong.

    Args:
        x (N, D); h_prev (N, H); params: ``W_x`` (3H, D), ``W_h`` (3H, H), ``b_x``, ``b_h`` (3H,).

    Returns:
        h (N, H).
    """
    W_xr, W_xz, W_xn = np.split(params["W_x"], 3)
    W_hr, W_hz, W_hn = np.split(params["W_h"], 3)
    b_r, b_z, b_n = np.split(params["b_x"] + params["b_h"], 3)  # one bias per gate
    z = sigmoid(h_prev @ W_hz.T + x @ W_xz.T + b_z)  # the seed's "input gate"
    r = sigmoid(h_prev @ W_hr.T + x @ W_xr.T + b_r)  # the seed's "update gate"
    n = np.tanh((r * h_prev) @ W_hn.T + x @ W_xn.T + b_n)
    return z * h_prev + (1 - z) * n


def seed002_mse(y, y_pred):
    """Seed 002 §5.2's "MSE", as written: the mean of the *un-squared* differences.

    What is wrong: errors of opposite sign cancel (the result is 0 for errors -1, +1), and it
    can be negative. The mean squared error is ``np.mean((y - y_pred) ** 2)``.
    """
    return np.mean(y - y_pred)
