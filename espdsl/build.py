"""Building a ``torch.nn.Module`` from the IR.

The IR is emitted as a :class:`torch.fx.Graph`: ops with state (``OpDef.has_module``) become
submodules at their dotted IR path, so ``state_dict`` keys follow the spec's node names; the
rest become calls to torch functions. The result is a ``GraphModule`` with readable generated
``forward`` code (``print(model.code)``) that ``torch.fx``, ``torch.jit.trace`` and
``torch.onnx.export`` accept.

Two tables make the op set open: :data:`MODULES` (the module of each op built as one: those
with state, and ``dropout``, whose module follows ``train()``/``eval()``) and :data:`EMITTERS`
(how each op becomes graph nodes). A new op is one entry in :data:`espdsl.ops.OPS`, one emitter
here (plus a module factory if it is a module), one analysis handler and one code-generator
entry.

An optimized IR (see :mod:`espdsl.passes`) may carry build decisions in ``ir.meta``:
``layout`` (``"channels_last"``: parameters and the input are converted, every op keeps the
layout) and ``memory_plan`` (values written into views of one preallocated workspace with
``out=`` variants, the output into recycled tensors). With a plan, :func:`build` returns a
:class:`~espdsl.runtime.PlannedModule` holding both graphs.

>>> import espdsl, torch
>>> m = espdsl.create_block("esp", M=16, N=16, K=4)
>>> m(torch.zeros(1, 16, 8, 8)).shape
torch.Size([1, 16, 8, 8])
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from .ir import IR, Node, class_name
from .limits import check_build
from .ops import OPS, pair
from .passes.rewrite import consumers
from .passes.layout import layout_of
from .passes.precision import FLOAT32, FP32_PARAMS, dtype_of
from .runtime import (Affine, ChannelScale, LayerNorm2d, OutputPool, StochasticDepth,
                      PlannedModule, Workspace, channel_shuffle, concat_into,
                      depth_to_space, memory_format, pointwise_conv, pointwise_to_space,
                      prelu_channels_last, prelu_into)

__all__ = ["build", "make_module", "MODULES", "EMITTERS", "Builder", "channel_shuffle"]

WORKSPACE, OUTPUTS = "_workspace", "_outputs"     # the planned graph's own submodules


# -- the modules of stateful ops ----------------------------------------------------------------
def _conv(node: Node, cin: int) -> nn.Module:
    a = node.attrs
    return nn.Conv2d(cin, a["out"], a["kernel"], a["stride"], a["padding"], a["dilation"],
                     a["groups"], a["bias"])


def _deconv(node: Node, cin: int) -> nn.Module:
    a = node.attrs
    return nn.ConvTranspose2d(cin, a["out"], a["kernel"], a["stride"], a["padding"],
                              a["output_padding"], a["groups"], a["bias"], a["dilation"])


def _dropout(node: Node, cin: int) -> nn.Module:
    cls = nn.Dropout2d if node.attrs["channelwise"] else nn.Dropout
    return cls(node.attrs["p"])


MODULES: dict[str, Callable[[Node, int], nn.Module]] = {
    "conv": _conv,
    "deconv": _deconv,
    "linear": lambda node, c: nn.Linear(c, node.attrs["out"], bias=node.attrs["bias"]),
    "dropout": _dropout,
    "batchnorm": lambda node, c: nn.BatchNorm2d(c, eps=node.attrs["eps"],
                                                momentum=node.attrs["momentum"]),
    "prelu": lambda node, c: nn.PReLU(1 if node.attrs["shared"] else c, init=node.attrs["init"]),
    "affine": lambda node, c: Affine(c),
    "stochastic_depth": lambda node, c: StochasticDepth(node.attrs["p"], node.attrs["mode"]),
    "layernorm": lambda node, c: LayerNorm2d(c, eps=node.attrs["eps"]),
    "groupnorm": lambda node, c: nn.GroupNorm(node.attrs["groups"], c, eps=node.attrs["eps"]),
    "scale": lambda node, c: ChannelScale(c, node.attrs["init"]),
}


def make_module(node: Node, in_channels: int) -> nn.Module:
    """The module of a node whose op is built as one (conv, deconv, linear, batchnorm, prelu,
    affine, dropout)."""
    return MODULES[node.op](node, in_channels)


# -- emitting graph nodes -----------------------------------------------------------------------
class Builder:
    """Emits one fx graph for an IR; emitters call :meth:`call` and :meth:`module`."""

    def __init__(self, ir: IR, plan: dict | None = None):
        self.ir = ir
        self.graph = fx.Graph()
        self.plan = plan
        self.node: Node | None = None      # the IR node being emitted (names the fx nodes)
        self.values: dict[str, Any] = {}   # IR node -> its fx value
        self.dtypes: dict[str, str] = {}   # IR node -> the dtype of its fx value
        self._casts: dict[tuple[str, str], fx.Node] = {}

    def value(self, name: str, dtype: str | None = None) -> fx.Node:
        """The fx value of IR node ``name``, converted (once) to ``dtype`` when it differs."""
        value = self.values[name]
        if value is None or dtype is None or self.dtypes.get(name, FLOAT32) == dtype:
            return value
        if (name, dtype) not in self._casts:
            self._casts[name, dtype] = self.call("to", (value, getattr(torch, dtype)),
                                                 kind="call_method")
        return self._casts[name, dtype]

    def call(self, target: Any, args: tuple, kwargs: dict | None = None,
             kind: str = "call_function") -> fx.Node:
        # fx makes the name unique; we only suggest the IR path as its stem
        name = self.node.name.replace(".", "_") if self.node is not None else None
        return self.graph.create_node(kind, target, args, kwargs or {}, name=name)

    def module(self, args: tuple, kwargs: dict | None = None) -> fx.Node:
        """Call the current node's own module (installed at its IR path)."""
        return self.call(self.node.name, args, kwargs, kind="call_module")

    def attr(self, path: str) -> fx.Node:
        return self.graph.get_attr(path)


Emitter = Callable[[Builder, Node, list[fx.Node], "fx.Node | None"], fx.Node]


def _out(out: fx.Node | None) -> dict:
    return {"out": out} if out is not None else {}


def _emit_conv(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    if out is None:
        return b.module((ins[0],))
    bias = b.attr(f"{node.name}.bias") if node.attrs["bias"] else None
    return b.call(pointwise_conv, (ins[0], b.attr(f"{node.name}.weight"), bias, out))


def _emit_prelu(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    if dtype_of(b.ir, node.name) != FLOAT32 and layout_of(b.ir, node.name):   # 16-bit NHWC
        return b.call(prelu_channels_last, (ins[0], b.attr(f"{node.name}.weight")), _out(out))
    if out is None:
        return b.module((ins[0],))
    return b.call(prelu_into, (ins[0], b.attr(f"{node.name}.weight"), out))


def _emit_add(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    if out is not None:
        result = b.call(torch.add, (ins[0], ins[1]), {"out": out})
        for other in ins[2:]:
            result = b.call("add_", (result, other), kind="call_method")
        return result
    result = ins[0]
    for other in ins[1:]:
        result = b.call(operator.add, (result, other))
    return result


def _emit_avgpool(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    a = node.attrs
    if out is None:
        return b.call(F.avg_pool2d, (ins[0], a["kernel"], a["stride"], a["padding"]),
                      {"count_include_pad": a["count_include_pad"]})
    k, s, p = (list(pair(a[key])) for key in ("kernel", "stride", "padding"))
    return b.call(torch.ops.aten.avg_pool2d.out, (ins[0], k, s, p, False, a["count_include_pad"],
                                                   None), {"out": out})


def _emit_upsample(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    kwargs: dict[str, Any] = {"mode": node.attrs["mode"]}
    if len(ins) == 2:   # to the size of the second input, read at run time (any input size)
        shape = b.call(getattr, (ins[1], "shape"))
        kwargs["size"] = b.call(operator.getitem, (shape, slice(2, None)))
    else:
        kwargs["scale_factor"] = node.attrs["scale"]
    if node.attrs["mode"] in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    return b.call(F.interpolate, (ins[0],), kwargs)


def _emit_pad(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    ph, pw = pair(node.attrs["padding"])
    kwargs: dict[str, Any] = {"mode": node.attrs["mode"]}
    if node.attrs["mode"] == "constant":
        kwargs["value"] = node.attrs["value"]
    return b.call(F.pad, (ins[0], (pw, pw, ph, ph)), kwargs)


def _emit_concat(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    if out is None:
        return b.call(torch.cat, (list(ins), 1))
    pieces = (b.plan or {}).get("pieces", {})
    rest, starts, start = [], [], 0
    for src, value in zip(node.inputs, ins):
        if pieces.get(src, (None,))[0] != node.name:     # not written here in place
            rest.append(value)
            starts.append(start)
        start += b.ir.node(src).shape[0]
    return b.call(concat_into, (out, rest, starts))


def _emit_depth_to_space(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    conv = (b.plan or {}).get("fused", {}).get(node.name)
    if conv is not None and out is not None:      # with the 1x1 conv before it, in blocks
        src = b.ir.node(conv)
        bias = b.attr(f"{conv}.bias") if src.attrs["bias"] else None
        x = b.value(src.inputs[0], dtype_of(b.ir, conv))
        return b.call(pointwise_to_space, (x, b.attr(f"{conv}.weight"),
                                           bias, node.attrs["factor"], out))
    flags = {"channels_last": True} if layout_of(b.ir, node.name) else {}
    return b.call(depth_to_space, (ins[0], node.attrs["factor"]), {**_out(out), **flags})


def _emit_global(pool: Callable) -> Emitter:
    def emit(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
        pooled = b.call(pool, (ins[0], 1))
        return pooled if node.attrs["keepdims"] else b.call(torch.flatten, (pooled, 1))
    return emit


def _emit_mul(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    result = ins[0]
    for other in ins[1:]:
        result = b.call(operator.mul, (result, other))
    return result


def _emit_slice(b: Builder, node: Node, ins: list[fx.Node], out: fx.Node | None) -> fx.Node:
    # Python's slice rules are the op's (negative counts from the end, None: to the end)
    index = (slice(None), slice(node.attrs["start"], node.attrs["stop"]))
    return b.call(operator.getitem, (ins[0], index))


def _function(fn: Callable) -> Emitter:
    return lambda b, node, ins, out: b.call(fn, (ins[0],))


EMITTERS: dict[str, Emitter] = {
    "conv": _emit_conv,
    "deconv": lambda b, node, ins, out: b.module((ins[0],)),
    "batchnorm": lambda b, node, ins, out: b.module((ins[0],)),
    "prelu": _emit_prelu,
    "affine": lambda b, node, ins, out: b.module((ins[0],), _out(out)),
    "linear": lambda b, node, ins, out: b.module((ins[0],)),
    "dropout": lambda b, node, ins, out: b.module((ins[0],)),
    "relu": _function(F.relu),
    "relu6": _function(F.relu6),
    "hardsigmoid": _function(F.hardsigmoid),
    "hardswish": _function(F.hardswish),
    "sigmoid": _function(torch.sigmoid),
    "silu": _function(F.silu),
    "avgpool": _emit_avgpool,
    "maxpool": lambda b, node, ins, out: b.call(F.max_pool2d, (
        ins[0], node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"])),
    "concat": _emit_concat,
    "global_avgpool": _emit_global(F.adaptive_avg_pool2d),
    "global_maxpool": _emit_global(F.adaptive_max_pool2d),
    "flatten": lambda b, node, ins, out: b.call(torch.flatten, (ins[0], 1)),
    "add": _emit_add,
    "mul": _emit_mul,
    "slice": _emit_slice,
    "shuffle": lambda b, node, ins, out: b.call(channel_shuffle, (ins[0], node.attrs["groups"])),
    "upsample": _emit_upsample,
    "depth_to_space": _emit_depth_to_space,
    "stochastic_depth": lambda b, node, ins, out: b.module((ins[0],)),
    "layernorm": lambda b, node, ins, out: b.module((ins[0],)),
    "groupnorm": lambda b, node, ins, out: b.module((ins[0],)),
    "scale": lambda b, node, ins, out: b.module((ins[0],)),
    "gelu": lambda b, node, ins, out: b.call(F.gelu, (ins[0],),
                                             {"approximate": node.attrs["approximate"]}),
    "softmax": lambda b, node, ins, out: b.call(F.softmax, (ins[0], 1)),
    "tanh": _function(torch.tanh),
    "pad": _emit_pad,
}


def emit(ir: IR, plan: dict | None = None) -> fx.Graph:
    """The fx graph of ``ir``; with a memory plan, planned values are written into
    ``self._workspace.v<i>`` (or a channel slice ``s<i>``) and the output into a tensor from
    ``self._outputs``."""
    b = Builder(ir, plan)
    slots = {name: i for i, name in enumerate(plan["slots"])} if plan else {}
    pieces = {name: i for i, name in enumerate(plan.get("pieces", {}))} if plan else {}
    skipped = set(plan.get("fused", {}).values()) if plan else set()
    values = b.values
    users = consumers(ir)
    low = (ir.meta.get("precision") or {}).get("dtype")
    x = None
    for node in ir.nodes():
        b.node = node
        if node.op == "input":
            x = values[node.name] = b.graph.placeholder("x")
            kwargs: dict[str, Any] = {}
            if layout_of(ir, node.name):
                kwargs["memory_format"] = memory_format(layout_of(ir, node.name))
            readers = [u for u in users[node.name] if u]
            if low and readers and all(dtype_of(ir, u) == low for u in readers):
                kwargs["dtype"] = getattr(torch, low)      # converted once, as it enters
                b.dtypes[node.name] = low
            if kwargs:
                values[node.name] = b.call("contiguous" if "dtype" not in kwargs else "to",
                                           (x,), kwargs, kind="call_method")
            continue
        if node.name in skipped:          # computed by the op it is fused into
            values[node.name] = None
            b.dtypes[node.name] = dtype_of(ir, node.name)
            continue
        out = None
        if node.name in slots:
            out = b.attr(f"{WORKSPACE}.v{slots[node.name]}")
        elif node.name in pieces:
            out = b.attr(f"{WORKSPACE}.s{pieces[node.name]}")
        elif plan and plan.get("output") and node.name == ir.output:
            out = b.call(OUTPUTS, (x,), kind="call_module")
        dtype = dtype_of(ir, node.name)
        ins = [b.value(i, dtype if low else None) for i in node.inputs]
        mine = layout_of(ir, node.name)
        if mine and out is None and node.op != "conv":   # convs take either layout themselves
            ins = [b.call("contiguous", (v,), {"memory_format": memory_format(mine)},
                          kind="call_method") if layout_of(ir, i) != mine else v
                   for i, v in zip(node.inputs, ins)]
        values[node.name] = EMITTERS[node.op](b, node, ins, out)
        b.dtypes[node.name] = dtype
    b.node = None
    result = values[ir.output]
    if low and not (plan and plan.get("output")):        # the caller gets fp32
        result = b.value(ir.output, ir.meta["precision"]["out_dtype"])
    b.graph.output(result)
    b.graph.lint()
    return b.graph


def build(ir: IR, *, device: Any = None) -> fx.GraphModule | PlannedModule:
    """Emit ``ir`` as a ``GraphModule``; every stateful op sits at its IR path.

    ``device``: where parameters are created; ``"meta"`` allocates nothing (for shapes and
    state_dict keys only). An IR with a memory plan gives a :class:`PlannedModule`. Anywhere
    else than ``"meta"``, refused before allocating anything when the parameters pass the
    ``param_memory`` limit.
    """
    if str(device) != "meta":
        check_build(ir)
    root = nn.Module()
    place = torch.device(device) if device is not None else contextlib.nullcontext()
    with place:
        for node in ir.nodes():
            if node.op in MODULES:
                _install(root, node.name, make_module(node, ir.node(node.inputs[0]).shape[0]))
    layout = ir.meta.get("layout")
    if layout:
        root.to(memory_format=memory_format(layout))
    if ir.meta.get("precision"):
        for node in ir.nodes():
            if node.op not in MODULES or dtype_of(ir, node.name) == FLOAT32:
                continue
            if node.op in FP32_PARAMS:     # 16-bit values, fp32 parameters
                root.get_submodule(node.name).mixed = True
            else:
                root.get_submodule(node.name).to(getattr(torch, dtype_of(ir, node.name)))
    plan = ir.meta.get("memory_plan") if str(device) != "meta" else None
    if not plan:
        gm = _graph_module(root, emit(ir), class_name(ir.name))
        gm.espdsl_ir = ir  # keep what it was built from (not part of the state_dict)
        return gm
    slots = [(offset, numel, (ir.batch, *ir.node(name).shape), layout_of(ir, name))
             for name, (offset, numel) in plan["slots"].items()]
    index = {name: i for i, name in enumerate(plan["slots"])}
    slices = [(index[concat], start, ir.node(piece).shape[0])
              for piece, (concat, start) in plan.get("pieces", {}).items()]
    some = next(iter(root.parameters()), None)
    # children of both graphs (non-persistent: not in the state_dict); they move with the model
    root.add_module(WORKSPACE, Workspace(plan["arena"], slots, slices=slices,
                                         device=some.device if some is not None else device,
                                         dtype=getattr(torch, plan.get("dtype", FLOAT32))))
    root.add_module(OUTPUTS, OutputPool(ir.output_shape, layout_of(ir, ir.output)))
    planned = _graph_module(root, emit(ir, plan), class_name(ir.name) + "Planned")
    model = _graph_module(root, emit(ir), class_name(ir.name), cls=PlannedModule)
    return model.attach(planned, ir, rebuild_planned)


def _graph_module(root: nn.Module, graph: fx.Graph, name: str,
                  cls: type = fx.GraphModule) -> fx.GraphModule:
    """``fx.GraphModule(root, graph)`` without its per-target copy of ``root``'s module tree
    (tens of thousands of new containers for a deep network): the tree is adopted as it is."""
    gm = cls(nn.Module(), fx.Graph(), class_name=name)
    for child, module in root.named_children():
        gm.add_module(child, module)
    gm.graph = graph
    return gm


def _install(root: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` under ``root``, creating empty parents on the way."""
    *parents, leaf = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    root.add_module(leaf, module)


def rebuild_planned(ir: IR, state: dict[str, torch.Tensor]) -> PlannedModule:
    """An optimized model built again from its IR with ``state`` loaded: how a
    :class:`~espdsl.runtime.PlannedModule` is copied, pickled and unpickled."""
    some = next(iter(state.values()), None)
    with torch.no_grad():
        model = build(ir, device=some.device if some is not None else None)
        model.load_state_dict(state, strict=True)
    return model.requires_grad_(False).eval()
