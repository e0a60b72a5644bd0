"""Analysis of a spec from its IR alone: parameters, MACs, element-wise work, activation memory
and receptive field per node and per scope (:func:`analyze`), the paper's Fig. 3g comparison
(:mod:`.compare`, :mod:`.formulas`) and cross-checks against the built module (:mod:`.check`).

>>> import espdsl
>>> espdsl.analyze("mobilenet", M=100, N=100).totals.params_by_kind["conv"]
10900
"""
from .handlers import HANDLERS, Work
from .walk import Analysis, Memory, Stats, analyze, analyze_ir

__all__ = ["analyze", "analyze_ir", "Analysis", "Stats", "Memory", "HANDLERS", "Work"]
