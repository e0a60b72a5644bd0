"""Liveness of the activations of a resolved IR: how many bytes are alive at the worst moment
when nodes run in topological order and each tensor is freed after its last consumer (inference).

It sits below both the analysis (:mod:`espdsl.analysis.walk` reports it per scope) and the limits
(:func:`espdsl.limits.check_forward` refuses a forward pass that would pass the memory limit),
so neither reaches into the other.

>>> import espdsl
>>> peak_bytes(espdsl.load("espnet")) / 2 ** 20   # MiB, ESPNet at 1x3x512x1024
56.0
"""
from __future__ import annotations

from typing import Sequence

from .ir import IR, Node
from .ops import OPS, numel

BYTES_PER_VALUE = 4     # fp32: the analysis counts activations as the fp32 network holds them


def peak(ir: IR, members: Sequence[Node], output: str, nbytes: dict[str, int],
          base: dict[str, str]) -> int:
    """Peak live bytes when ``members`` run alone in order (see the module doc). A view
    (``base``: view -> the value it views) allocates nothing and keeps its base alive."""
    inside = {n.name for n in members}
    external = {base.get(i, i) for n in members for i in n.inputs if i not in inside}
    last: dict[str, int] = {}
    for index, node in enumerate(members):
        for src in node.inputs:
            last[src] = index
            if src in base:
                last[base[src]] = index
    succ = ir.graph.succ
    escapes = {n for n in inside if n == output or any(s not in inside for s in succ[n])}
    escapes |= {base[n] for n in escapes if n in base}
    live = sum(nbytes[i] for i in external)
    worst = live
    for index, node in enumerate(members):
        live += nbytes[node.name]
        worst = max(worst, live)
        for src in set(node.inputs) | {base[i] for i in node.inputs if i in base}:
            if src in inside and last[src] == index and src not in escapes:
                live -= nbytes[src]
        if node.name not in last and node.name not in escapes:  # never used: dies at once
            live -= nbytes[node.name]
    return worst


def peak_bytes(ir: IR) -> int:
    """Peak bytes of live tensors when the whole network runs forward once (inference, the
    input held by the caller): ``analyze(ir).totals.memory.peak`` without the rest of the
    analysis.

    >>> import espdsl
    >>> ir = espdsl.load("espnet")
    >>> peak_bytes(ir) == espdsl.analyze(ir).totals.memory.peak
    True
    """
    order = ir.nodes()
    nbytes, base = tensor_bytes(order, ir.batch)
    return peak(ir, [n for n in order if n.op != "input"], ir.output, nbytes, base)


def tensor_bytes(order: Sequence[Node], batch: int) -> tuple[dict[str, int], dict[str, str]]:
    """Bytes of each node's output, and the tensor each view shares (a view allocates none)."""
    nbytes: dict[str, int] = {}
    base: dict[str, str] = {}
    for node in order:
        if OPS[node.op].view and node.inputs:     # a view: no new memory, keeps its base
            base[node.name] = base.get(node.inputs[0], node.inputs[0])
            nbytes[node.name] = 0
        else:
            nbytes[node.name] = batch * numel(node.shape) * BYTES_PER_VALUE
    return nbytes, base
