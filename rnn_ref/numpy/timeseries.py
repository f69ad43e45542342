"""Time-series forecasting in NumPy (chapter ch11_timeseries). Being written."""

from __future__ import annotations

__all__: list[str] = []
