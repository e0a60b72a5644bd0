"""Editing the IR functionally: a pass lists the nodes of the new graph and what each removed
name now stands for; :func:`rebuild` makes the new, linted IR (scopes and the output follow
the renaming). Plain data: nothing here needs torch.

>>> import espdsl
>>> ir = espdsl.load("cbr", M=3, N=8)
>>> kept = [n for n in ir.nodes() if n.op != "prelu"]
>>> rebuild(ir, kept, {"act": "bn"}).output
'bn'
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Iterable

import networkx as nx

from ..ir import IR, Node


def consumers(ir: IR) -> dict[str, list[str]]:
    """Node name -> the nodes that read it, in execution order (the graph output counts as a
    reader named ``""``)."""
    users: dict[str, list[str]] = {n.name: [] for n in ir.nodes()}
    for node in ir.nodes():
        for src in dict.fromkeys(node.inputs):
            users[src].append(node.name)
    users[ir.output].append("")
    return users


def _follow(rename: dict[str, str], name: str) -> str:
    seen = set()
    while name in rename and name not in seen:
        seen.add(name)
        name = rename[name]
    return name


def rebuild(ir: IR, nodes: Iterable[Node], rename: dict[str, str] | None = None,
            meta: dict | None = None, *, rename_inputs: bool = True) -> IR:
    """A new IR with ``nodes`` (in execution order), every reference to a key of ``rename``
    pointing at its value (node inputs too, unless ``rename_inputs`` is false: the pass set
    them), nodes nothing uses dropped, and ``meta`` merged into the old meta."""
    rename = rename or {}
    fixed = [dataclasses.replace(n, inputs=[_follow(rename, i) for i in n.inputs])
             for n in nodes] if rename_inputs else list(nodes)
    output = _follow(rename, ir.output)
    needed = {output}
    for node in reversed(fixed):                      # dead code: nothing downstream reads it
        if node.name in needed or node.op == "input":
            needed.update(node.inputs)
    graph = nx.DiGraph()
    for node in fixed:
        if node.name in needed or node.op == "input":
            graph.add_node(node.name, node=node)
            for src in node.inputs:
                graph.add_edge(src, node.name)
    scopes = {path: dataclasses.replace(s, output=_follow(rename, s.output) if s.output else s.output,
                                        inputs=[_follow(rename, i) for i in s.inputs])
              for path, s in ir.scopes.items()}
    new = copy.copy(ir)
    new.graph, new.output, new.scopes = graph, output, scopes
    new.meta = {**ir.meta, **(meta or {})}
    new.lint()
    return new


def replace(node: Node, **changes) -> Node:
    """A copy of ``node`` with fields (``op``, ``attrs``, ``inputs``, ...) changed."""
    return dataclasses.replace(node, **changes)
