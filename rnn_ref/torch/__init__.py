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


def default_device():
    """``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
