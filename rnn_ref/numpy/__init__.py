"""NumPy backend: pure functions, ``forward -> (out, cache)`` and ``backward(dout, cache)``."""

from .gradcheck import numerical_gradient, rel_error
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .lstm import (
    lstm_backward,
    lstm_forward,
    lstm_peephole_backward,
    lstm_peephole_forward,
    lstm_peephole_step_backward,
    lstm_peephole_step_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from .output import (
    softmax_loss_backward,
    softmax_loss_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

__all__ = [
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "gru_step_forward",
    "gru_step_backward",
    "gru_forward",
    "gru_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "lstm_peephole_step_forward",
    "lstm_peephole_step_backward",
    "lstm_peephole_forward",
    "lstm_peephole_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "softmax_loss_forward",
    "softmax_loss_backward",
    "numerical_gradient",
    "rel_error",
]
