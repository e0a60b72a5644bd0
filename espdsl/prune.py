"""Pruning: drop what no output depends on, before anything is counted, built or drawn.

A classifier used as a backbone (``block: resnet18`` with its ``layer3`` and ``layer4`` taken by
the nodes after it) still holds its pooling and fully connected layers; nothing reads them.
:func:`prune` removes every IR node the output does not depend on, and every spec-node instance
left with no node, and records them in ``ir.meta["pruned"]``: so the parameter counts, the
built module, its ``state_dict`` and the drawings are those of the network that runs.

Pruned nodes that a spec cut on purpose (``outputs: [layer3, layer4]`` on a block node) are
"cut"; the others are "dead" and :func:`dead_nodes` reports them (``espdsl validate`` warns).

>>> import espdsl
>>> ir = espdsl.load("docs/examples/backbone.yaml")
>>> [(p["path"], p["params"], p["cut"]) for p in ir.meta["pruned"]]
[('backbone.avgpool', 0, True), ('backbone.fc', 513000, True)]
"""
from __future__ import annotations

from typing import Any

from .ir import IR


def prune(ir: IR, cut: set[str] | frozenset[str] = frozenset()) -> IR:
    """Remove, in place, the nodes ``ir.output`` does not depend on; returns ``ir``.

    ``cut`` holds the paths of scopes (block instances) whose output was cut by ``outputs:``:
    pruned instances inside them count as cut, not dead. A scope whose own output was pruned
    ends, from now on, at its last kept node.
    """
    import networkx as nx

    live = nx.ancestors(ir.graph, ir.output) | {ir.output, "input"}
    dead = [n for n in ir.graph if n not in live]
    if not dead:
        return ir
    dead_params = {n: ir.node_params(ir.node(n)) for n in dead}
    ir.graph.remove_nodes_from(dead)
    kept_scopes = {""}
    for node in ir.nodes():
        scope = node.scope
        while scope and scope not in kept_scopes:
            kept_scopes.add(scope)
            scope = ir.scopes[scope].parent or ""
    gone = [p for p in ir.scopes if p not in kept_scopes]
    pruned: list[dict[str, Any]] = []
    for path in gone:
        scope = ir.scopes[path]
        if scope.parent in kept_scopes:  # report the outermost pruned instances only
            inside = [n for n in dead_params if n == path or n.startswith(path + ".")]
            pruned.append({"path": path, "block": scope.block, "kind": scope.kind,
                           "params": sum(dead_params[n] for n in inside),
                           "cut": any(path.startswith(c + ".") for c in cut),
                           "loc": scope.loc})
    for path in gone:
        del ir.scopes[path]
    order = {n: i for i, n in enumerate(ir.graph)}
    for scope in ir.scopes.values():
        if scope.output and scope.output not in ir.graph:
            inside = [n.name for n in ir.nodes_in(scope.path)]
            last = max(inside, key=order.__getitem__)
            scope.output, scope.out_shape = last, ir.node(last).shape
    ir.meta = {**ir.meta, "pruned": ir.meta.get("pruned", []) + pruned}
    return ir


def dead_nodes(ir: IR) -> list[dict[str, Any]]:
    """The pruned spec-node instances the spec did not cut on purpose."""
    return [p for p in ir.meta.get("pruned", []) if not p["cut"]]


def pruned_note(ir: IR) -> str | None:
    """One line saying what was pruned, for summaries; None when nothing was.

    >>> import espdsl
    >>> print(pruned_note(espdsl.load("docs/examples/backbone.yaml")))
    pruned (no output uses them): backbone.avgpool, backbone.fc; 513,000 parameters not counted
    """
    pruned = ir.meta.get("pruned")
    return pruned_text(pruned) if pruned else None


def pruned_text(pruned: list[dict[str, Any]]) -> str:
    """``pruned (no output uses them): a, b; N parameters not counted``."""
    total = sum(p["params"] for p in pruned)
    return (f"pruned (no output uses them): {', '.join(p['path'] for p in pruned)}; "
            f"{total:,} parameters not counted")
