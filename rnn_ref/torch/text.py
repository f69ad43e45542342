"""Character language models and classifiers in PyTorch (chapter ch12_text). Being written."""

from __future__ import annotations

__all__: list[str] = []
