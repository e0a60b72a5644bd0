"""Analysis of a spec from its IR alone: parameters, MACs, element-wise work, activation memory
and receptive field per node and per scope (:func:`analyze`), the paper's Fig. 3g comparison
(:mod:`.compare`, :mod:`.formulas`) and cross-checks against the built module (:mod:`.check`).

>>> import espdsl
>>> espdsl.analyze("mobilenet", M=100, N=100).totals.params_by_kind["conv"]
10900
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"HANDLERS": "handlers", "Work": "handlers", "Analysis": "walk", "Memory": "walk",
         "Stats": "walk", "analyze": "walk", "analyze_ir": "walk"}

__all__ = ["analyze", "analyze_ir", "Analysis", "Stats", "Memory", "HANDLERS", "Work"]


def __getattr__(name: str) -> Any:
    # names load on first use, so `espdsl.analysis.formulas` alone stays cheap (CLI start-up)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
