"""Building a ``torch.nn.Module`` from the IR.

The IR is emitted as a :class:`torch.fx.Graph`: ops with state (conv, deconv, batchnorm, prelu)
become submodules at their dotted IR path, so ``state_dict`` keys follow the spec's node names;
the rest become calls to torch functions. The result is a ``GraphModule`` with readable
generated ``forward`` code (``print(model.code)``) that ``torch.fx``, ``torch.jit.trace`` and
``torch.onnx.export`` accept.

>>> import espdsl, torch
>>> m = espdsl.create_block("esp", M=16, N=16, K=4)
>>> m(torch.zeros(1, 16, 8, 8)).shape
torch.Size([1, 16, 8, 8])
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from .ir import IR, Node


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (N, g*c, H, W) -> transpose the (g, c) channel grid."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def make_module(node: Node, in_channels: int) -> nn.Module:
    """The stateful module for an op that has one (conv, deconv, batchnorm, prelu)."""
    a = node.attrs
    if node.op == "conv":
        return nn.Conv2d(in_channels, a["out"], a["kernel"], a["stride"], a["padding"],
                         a["dilation"], a["groups"], a["bias"])
    if node.op == "deconv":
        return nn.ConvTranspose2d(in_channels, a["out"], a["kernel"], a["stride"], a["padding"],
                                  a["output_padding"], a["groups"], a["bias"], a["dilation"])
    if node.op == "batchnorm":
        return nn.BatchNorm2d(in_channels, eps=a["eps"], momentum=a["momentum"])
    if node.op == "prelu":
        return nn.PReLU(1 if a["shared"] else in_channels, init=a["init"])
    raise KeyError(node.op)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) or "Net"


def build(ir: IR) -> fx.GraphModule:
    """Emit ``ir`` as a ``GraphModule``; every stateful op sits at its IR path."""
    root = nn.Module()
    graph = fx.Graph()

    def call(kind: str, target, args: tuple, kwargs: dict | None = None) -> fx.Node:
        # fx makes the name unique; we only suggest the IR path as its stem
        return graph.create_node(kind, target, args, kwargs or {}, name=node.name.replace(".", "_"))

    values: dict[str, fx.Node] = {}
    for node in ir.nodes():
        ins = [values[i] for i in node.inputs]
        a = node.attrs
        if node.op == "input":
            values[node.name] = graph.placeholder("x")
            continue
        if node.op in ("conv", "deconv", "batchnorm", "prelu"):
            _install(root, node.name, make_module(node, ir.node(node.inputs[0]).shape[0]))
            out = call("call_module", node.name, (ins[0],))
        elif node.op == "relu":
            out = call("call_function", F.relu, (ins[0],))
        elif node.op == "avgpool":
            out = call("call_function", F.avg_pool2d, (ins[0], a["kernel"], a["stride"], a["padding"]),
                                      {"count_include_pad": a["count_include_pad"]})
        elif node.op == "maxpool":
            out = call("call_function", F.max_pool2d, (ins[0], a["kernel"], a["stride"], a["padding"]))
        elif node.op == "concat":
            out = call("call_function", torch.cat, (list(ins), 1))
        elif node.op == "add":
            out = ins[0]
            for other in ins[1:]:
                out = call("call_function", operator.add, (out, other))
        elif node.op == "shuffle":
            out = call("call_function", channel_shuffle, (ins[0], a["groups"]))
        elif node.op == "upsample":
            kwargs = {"scale_factor": a["scale"], "mode": a["mode"]}
            if a["mode"] == "bilinear":
                kwargs["align_corners"] = False
            out = call("call_function", F.interpolate, (ins[0],), kwargs)
        else:  # pragma: no cover - lint() guarantees the op set
            raise KeyError(node.op)
        values[node.name] = out
    graph.output(values[ir.output])
    graph.lint()
    gm = fx.GraphModule(root, graph, class_name=_camel(ir.name))
    gm.espdsl_ir = ir  # keep what it was built from (not part of the state_dict)
    return gm


def _install(root: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` under ``root``, creating empty parents on the way."""
    *parents, leaf = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    root.add_module(leaf, module)
