"""(Being written.) Reference code of the chapter on variants; its public names go in ``__all__``,
which :mod:`rnn_ref.numpy` re-exports."""

__all__: list[str] = []
