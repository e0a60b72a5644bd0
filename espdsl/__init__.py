"""espdsl: a declarative block grammar for efficient CNNs, compiled to PyTorch.

Write a module (ESP, MobileNet, ShuffleNet, ...) or a whole network (ESPNet) as YAML; get a
resolved IR you can analyse and render, and a real ``torch.nn.Module``.

>>> import espdsl
>>> espdsl.create_model("espnet", alpha3=3)  # doctest: +ELLIPSIS
Espnet(...)
"""
from .api import build_ir, create_block, create_model, list_blocks, list_models, load, open_spec
from .errors import (EspdslError, ExprError, Loc, RegistryError, ResolveError, SpecError,
                     StudyError, UsageError, WeightsError)
from .ir import IR, Node, Scope
from .analysis import analyze
from .render import render, to_digraph
from .study import list_studies, run_study

__version__ = "0.1.0"

__all__ = [
    "create_model", "create_block", "load", "build_ir", "list_blocks", "list_models", "open_spec",
    "IR", "Node", "Scope", "EspdslError", "SpecError", "ExprError", "RegistryError",
    "ResolveError", "StudyError", "UsageError", "WeightsError", "Loc", "__version__", "analyze",
    "render", "to_digraph", "run_study", "list_studies",
]
