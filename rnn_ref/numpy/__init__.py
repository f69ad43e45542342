"""NumPy backend: pure functions, ``forward -> (out, cache)`` and ``backward(dout, cache)``."""

from .bptt import grad_check, rnn_loss_and_grads, truncated_bptt_chunks, truncated_bptt_grads
from .gradcheck import numerical_gradient, rel_error
from .gradients import (
    clip_by_norm,
    clip_by_value,
    identity_init,
    jacobian_norms,
    jacobian_product,
    orthogonal_init,
    scaled_init,
)
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
from .sequences import fit_ar, mae, mse, one_hot, predict_ar, sliding_windows

__all__ = [
    # ch01_sequences
    "sliding_windows",
    "one_hot",
    "fit_ar",
    "predict_ar",
    "mse",
    "mae",
    # ch03_bptt
    "rnn_loss_and_grads",
    "grad_check",
    "truncated_bptt_chunks",
    "truncated_bptt_grads",
    # ch04_gradients
    "jacobian_product",
    "jacobian_norms",
    "clip_by_norm",
    "clip_by_value",
    "orthogonal_init",
    "identity_init",
    "scaled_init",
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

# Part I, second half (ch07-ch09), and Part II (ch11-): each module lists its public names in its
# own __all__.
from . import ctc as _ctc  # noqa: E402
from . import multimodal as _multimodal  # noqa: E402
from . import recsys as _recsys  # noqa: E402
from . import seq2seq as _seq2seq  # noqa: E402
from . import speech as _speech  # noqa: E402
from . import text as _text  # noqa: E402
from . import timeseries as _timeseries  # noqa: E402
from . import training as _training  # noqa: E402
from . import variants as _variants  # noqa: E402
from . import vision as _vision  # noqa: E402

for _m in (
    _variants,
    _training,
    _seq2seq,
    _timeseries,
    _text,
    _ctc,
    _speech,
    _vision,
    _multimodal,
    _recsys,
):
    globals().update({_n: getattr(_m, _n) for _n in _m.__all__})
    __all__ += list(_m.__all__)
del _m
