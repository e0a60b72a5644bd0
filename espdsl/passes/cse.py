"""``dedupe``: nodes without state that apply the same op with the same attributes to the same
inputs compute the same value; keep the first (common-subexpression elimination).

ESPNet's input reinforcement pools the image once for ``sample1`` and twice for ``sample2``,
whose first pooling is ``sample1``'s again: one 3x3 average pooling of the 1024x512 image less.

>>> import espdsl
>>> from espdsl.passes import Program
>>> ir = espdsl.load("espnet", alpha3=1)
>>> len(ir.nodes()) - len(dedupe(Program(ir)).ir.nodes())
1
"""
from __future__ import annotations

from typing import Any

from ..ops import OPS
from .rewrite import rebuild, replace


def dedupe(program: Any) -> Any:
    from . import Program
    ir = program.ir
    seen: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    nodes = []
    for node in ir.nodes():
        node = replace(node, inputs=[rename.get(i, i) for i in node.inputs])
        if node.op != "input" and not OPS[node.op].has_module:
            key = (node.op, tuple(node.inputs), tuple(sorted(node.attrs.items())))
            if key in seen:
                rename[node.name] = seen[key]
                continue
            seen[key] = node.name
        nodes.append(node)
    return Program(rebuild(ir, nodes, rename), program.state)
