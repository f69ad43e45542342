"""Torch backend: functional cells under the equations' symbols, and ``nn.Module``s whose
``state_dict`` keys are ``torch.nn``'s. Device-agnostic: tensors stay where they are."""

from .gru import GRU, gru_forward, gru_step
from .lstm import LSTM, lstm_forward, lstm_step
from .rnn import RNN, rnn_forward, rnn_step

__all__ = [
    "rnn_step",
    "rnn_forward",
    "RNN",
    "lstm_step",
    "lstm_forward",
    "LSTM",
    "gru_step",
    "gru_forward",
    "GRU",
    "default_device",
]

# ch07-ch10 and Part II (ch11-): each module lists its public names in its own __all__.
from . import multimodal as _multimodal  # noqa: E402
from . import multimodal_captioner as _multimodal_captioner  # noqa: E402
from . import pytorch as _pytorch  # noqa: E402
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
    _pytorch,
    _timeseries,
    _text,
    _vision,
    _speech,
    _multimodal,
    _multimodal_captioner,
    _recsys,
):
    globals().update({_n: getattr(_m, _n) for _n in _m.__all__})
    __all__ += list(_m.__all__)
del _m


def default_device():
    """``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
