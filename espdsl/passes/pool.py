"""``avgpool_to_conv``: in a channels-last graph, an average pooling becomes a depthwise
convolution whose weights are all ``1 / (kh kw)`` (what the pooling divides by when padded
zeros count, or when there is no padding).

Why: torch's average pooling vectorises poorly in NHWC on few channels, so :mod:`.layout` keeps
ESPNet's image poolings in NCHW; oneDNN's depthwise convolution reads NHWC directly. Measured
(two threads, torch 2.13 CPU, 3x3 stride 2 over the 3x512x1024 image): average pooling 3.2 ms in
NCHW, 2.9 ms in NHWC; the depthwise convolution 0.7 ms in NHWC (and 18 ms in NCHW, so the pass
does nothing unless the graph is channels-last). Once no pooling of the image stays NCHW, the
image itself is converted to NHWC once, where it enters (instead of inside each convolution
that reads it). Same values up to float rounding (``sum(x / 9)`` instead of ``sum(x) / 9``).
Run it after ``channels_last``.

>>> import espdsl
>>> from espdsl.passes import Program, channels_last
>>> ir = avgpool_to_conv(channels_last(Program(espdsl.load("espnet_c", alpha3=1)))).ir
>>> [(n.op, n.attrs["groups"]) for n in ir.nodes() if n.name.startswith("sample")]
[('conv', 3), ('conv', 3), ('conv', 3)]
>>> ir.meta["nchw"]
[]
"""
from __future__ import annotations

import copy
from typing import Any

from ..ir import Node
from ..ops import pair
from .layout import LAYOUT
from .rewrite import consumers, rebuild, replace


def rewritable(node: Node) -> bool:
    if node.op != "avgpool":
        return False
    a = node.attrs
    return a["count_include_pad"] or pair(a["padding"]) == (0, 0)


def avgpool_to_conv(program: Any) -> Any:
    from . import Program
    ir = program.ir
    if ir.meta.get("layout") != LAYOUT:
        return program
    state = dict(program.state) if program.state is not None else None
    nodes, done = [], set()
    for node in ir.nodes():
        if rewritable(node):
            kh, kw = pair(node.attrs["kernel"])
            channels = node.shape[0]
            node = replace(node, op="conv", attrs={
                "out": channels, "kernel": node.attrs["kernel"], "stride": node.attrs["stride"],
                "padding": node.attrs["padding"], "dilation": 1, "groups": channels,
                "bias": False})
            done.add(node.name)
            if state is not None:
                import torch
                like = next(iter(state.values()), None)
                state[f"{node.name}.weight"] = torch.full(
                    (channels, 1, kh, kw), 1.0 / (kh * kw),
                    dtype=like.dtype if like is not None else torch.float32,
                    device=like.device if like is not None else None)
        nodes.append(node)
    new = rebuild(ir, nodes)
    # what stays NCHW: what did, is not a convolution now, and reads only NCHW values; the
    # image only while something NCHW still reads it (else it is converted once, as it enters)
    old = set(ir.meta.get("nchw", ())) - done
    kept: set[str] = set()
    for node in new.nodes():
        if node.name in old and all(i in kept for i in node.inputs):
            kept.add(node.name)
    users = consumers(new)
    nchw = sorted(n.name for n in new.nodes() if n.name in kept
                  and (n.op != "input" or any(u in kept for u in users[n.name])))
    new = copy.copy(new)
    new.meta = {**new.meta, "nchw": nchw}
    return Program(new, state)
