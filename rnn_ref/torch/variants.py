"""(Being written.) Torch reference code of the chapter on variants; its public names go in
``__all__``, which :mod:`rnn_ref.torch` re-exports."""

__all__: list[str] = []
