"""espdsl: a declarative block grammar for efficient CNNs, compiled to PyTorch.

Write a module (ESP, MobileNet, ShuffleNet, ...) or a whole network (ESPNet) as YAML; get a
resolved IR you can analyse and render, and a real ``torch.nn.Module``.

Names load lazily (module ``__getattr__``): ``import espdsl`` imports neither torch nor the
resolver; ``espdsl.create_model`` imports torch when first called, ``espdsl.analyze`` never does.

>>> import espdsl
>>> espdsl.create_model("espnet", alpha3=3)  # doctest: +ELLIPSIS
Espnet(...)
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from . import limits
from .errors import (EspdslError, ExprError, LimitError, Loc, RegistryError, ResolveError,
                     SpecError, StudyError, UsageError, WeightsError)

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "create_model": "api", "create_block": "api", "load": "api", "build_ir": "api",
    "list_blocks": "api", "list_models": "api", "open_spec": "api",
    "IR": "ir", "Node": "ir", "Scope": "ir",
    "analyze": "analysis", "render": "render", "to_digraph": "render",
    "optimize": "passes", "bench": "bench",
    "run_study": "study", "list_studies": "study",
    "footprint": "analysis.footprint",
    "totals": "api", "explore": "space", "list_spaces": "space",
}

__all__ = [
    "create_model", "create_block", "load", "build_ir", "list_blocks", "list_models", "open_spec",
    "IR", "Node", "Scope", "EspdslError", "SpecError", "ExprError", "RegistryError",
    "ResolveError", "StudyError", "UsageError", "WeightsError", "LimitError", "Loc",
    "__version__", "analyze", "render", "to_digraph", "run_study", "list_studies", "optimize",
    "bench", "limits", "footprint", "totals", "explore", "list_spaces",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value          # later look-ups skip this function
        return value
    # subpackages (espdsl.registry, espdsl.analysis, ...) as attributes, like a plain import
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'espdsl' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The import system binds a loaded subpackage as an attribute of its package; the public
    functions ``espdsl.render`` and ``espdsl.bench`` share their module's name and must win."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("render", "bench") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
