"""The closed set of primitive operations: their attributes, shape rules and parameter counts.

Every node of the resolved IR is one of these ops. This table is the single source of truth for
what an op accepts (names, types, defaults) and what it produces; the resolver, the builder, the
analysis and the renderer all read it and nothing else.

Shapes are per sample, ``(C, H, W)``; the batch size never changes inside a network.

========== ==================================================================================
op         meaning
========== ==================================================================================
input      the network (or block) input; exactly one
conv       2-d convolution: ``out``, ``kernel``, ``stride``, ``padding`` (default
           ``dilation * (kernel - 1) // 2``), ``dilation``, ``groups``, ``bias`` (default false)
deconv     2-d transposed convolution: ``out``, ``kernel``, ``stride``, ``padding`` (default 0),
           ``output_padding``, ``dilation``, ``groups``, ``bias`` (default false)
batchnorm  batch normalisation over channels: ``eps`` (default 1e-5), ``momentum`` (0.1)
prelu      PReLU with one slope per channel (``shared: true`` for a single slope), ``init`` 0.25
relu       ReLU
avgpool    average pooling: ``kernel``, ``stride`` (default kernel), ``padding``,
           ``count_include_pad`` (default true)
maxpool    max pooling: ``kernel``, ``stride`` (default kernel), ``padding``
concat     concatenation along channels of two or more inputs of equal H and W
add        element-wise sum of two or more inputs of equal shape
shuffle    channel shuffle with ``groups`` groups (ShuffleNet)
identity   passes its input through (resolved away: it makes no IR node)
upsample   resize by ``scale`` with ``mode`` nearest or bilinear (``align_corners`` false)
affine     per-channel ``x * weight + bias`` (a batch norm in inference form; made by the
           optimization passes, see :mod:`espdsl.passes`)
depth_to_space  ONNX's DepthToSpace in DCR order with ``factor`` s: input channel
           ``(i * s + j) * C + c`` goes to output ``(c, h * s + i, w * s + j)``; with a 1x1
           convolution it replaces a transposed convolution whose stride equals its kernel
========== ==================================================================================

Ops the optimization passes create (``affine``, ``depth_to_space``) are ordinary ops: every
table (analysis handlers, the fx builder, the ``.py`` code generator, the renderer) has an
entry for them, so an optimized IR analyses, renders and exports like any other.
``OpDef.writes_into_buffer`` says whether the builder can write the op's result into a buffer of a
static memory plan (:mod:`espdsl.passes.memory`) instead of a fresh allocation.

>>> OPS["conv"].out_shape({"out": 8, "kernel": 3, "stride": 2, "padding": 1, "dilation": 1,
...                        "groups": 1}, [(3, 32, 32)])
(8, 16, 16)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Shape = tuple[int, int, int]


class OpError(ValueError):
    """Raised by a shape rule when inputs do not fit; the resolver adds the location."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.field = field


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: its type, default (None: required) and a one-line doc."""

    type: type
    default: Any = None
    doc: str = ""
    required: bool = False


@dataclass(frozen=True)
class OpDef:
    """A primitive op: attribute schema, arity, shape rule and parameter rule."""

    name: str
    doc: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    min_inputs: int = 1
    max_inputs: int = 1
    shape: Callable[[dict, list[Shape]], Shape] | None = None
    params: Callable[[dict, list[Shape], Shape], dict[str, int]] | None = None
    has_module: bool = False  # built as an nn.Module with state (appears in state_dict)
    out_buffer: Callable[[dict], bool] | None = None  # can the result go into a planned buffer?

    def out_shape(self, attrs: dict, inputs: list[Shape]) -> Shape:
        return self.shape(attrs, inputs) if self.shape else inputs[0]

    def writes_into_buffer(self, attrs: dict) -> bool:
        """Can the builder write this node's result into a buffer of a static memory plan?"""
        return self.out_buffer is not None and self.out_buffer(attrs)

    def param_counts(self, attrs: dict, inputs: list[Shape], out: Shape) -> dict[str, int]:
        """Trainable parameters by kind: ``conv``, ``bias``, ``bn``, ``prelu``."""
        return self.params(attrs, inputs, out) if self.params else {}


def _spatial(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_groups(groups: int, cin: int, cout: int) -> None:
    if groups < 1 or cin % groups or cout % groups:
        raise OpError(f"groups={groups} must divide both in channels {cin} and out channels {cout}",
                      hint=_divisor_hint(cin, cout), field="groups")


def _divisor_hint(a: int, b: int) -> str:
    from math import gcd
    g = gcd(a, b)
    divisors = [d for d in range(1, g + 1) if g % d == 0]
    return "groups that fit: " + ", ".join(map(str, divisors[-8:]))


def _conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    _check_groups(a["groups"], c, a["out"])
    for key in ("kernel", "stride", "dilation"):
        if a[key] < 1:
            raise OpError(f"{key} must be at least 1, got {a[key]}", field=key)
    ho = _spatial(h, a["kernel"], a["stride"], a["padding"], a["dilation"])
    wo = _spatial(w, a["kernel"], a["stride"], a["padding"], a["dilation"])
    if ho < 1 or wo < 1:
        raise OpError(f"input {h}x{w} is too small for kernel {a['kernel']} "
                      f"(dilation {a['dilation']}, padding {a['padding']})",
                      hint="use a larger input size")
    return (a["out"], ho, wo)


def _conv_params(a: dict, ins: list[Shape], out: Shape) -> dict[str, int]:
    cin = ins[0][0]
    counts = {"conv": a["out"] * (cin // a["groups"]) * a["kernel"] ** 2}
    if a["bias"]:
        counts["bias"] = a["out"]
    return counts


def _deconv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    _check_groups(a["groups"], c, a["out"])
    if a["output_padding"] >= max(a["stride"], a["dilation"]):
        raise OpError("output_padding must be smaller than stride or dilation", field="output_padding")

    def size(s: int) -> int:
        return ((s - 1) * a["stride"] - 2 * a["padding"] + a["dilation"] * (a["kernel"] - 1)
                + a["output_padding"] + 1)

    return (a["out"], size(h), size(w))


def _pool_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    if a["padding"] * 2 > a["kernel"]:
        raise OpError(f"padding {a['padding']} must be at most half the kernel {a['kernel']}",
                      field="padding")
    return (c, _spatial(h, a["kernel"], a["stride"], a["padding"], 1),
            _spatial(w, a["kernel"], a["stride"], a["padding"], 1))


def _concat_shape(a: dict, ins: list[Shape]) -> Shape:
    hw = {s[1:] for s in ins}
    if len(hw) > 1:
        raise OpError("concat inputs differ in spatial size: "
                      + ", ".join(f"{h}x{w}" for _, h, w in ins),
                      hint="concatenate feature maps of the same resolution")
    return (sum(s[0] for s in ins), ins[0][1], ins[0][2])


def _add_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(set(ins)) > 1:
        raise OpError("add inputs differ in shape: " + ", ".join("x".join(map(str, s)) for s in ins),
                      hint="add needs equal channels and spatial size")
    return ins[0]


def _shuffle_shape(a: dict, ins: list[Shape]) -> Shape:
    if a["groups"] < 1 or ins[0][0] % a["groups"]:
        raise OpError(f"shuffle groups={a['groups']} must divide channels {ins[0][0]}",
                      hint=_divisor_hint(ins[0][0], ins[0][0]), field="groups")
    return ins[0]


def _upsample_shape(a: dict, ins: list[Shape]) -> Shape:
    if a["mode"] not in ("nearest", "bilinear"):
        raise OpError(f"unknown upsample mode '{a['mode']}'", hint="use nearest or bilinear",
                      field="mode")
    c, h, w = ins[0]
    return (c, int(h * a["scale"]), int(w * a["scale"]))


def _depth_to_space_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    s = a["factor"]
    if s < 1 or c % (s * s):
        raise OpError(f"depth_to_space factor {s}: channels {c} are not a multiple of {s * s}",
                      field="factor")
    return (c // (s * s), h * s, w * s)


def _always(a: dict) -> bool:
    return True


def pointwise(a: dict) -> bool:
    """A 1x1 convolution without stride, padding or groups: one matrix product."""
    return a["kernel"] == 1 and a["stride"] == 1 and a["padding"] == 0 and a["groups"] == 1


def _per_channel(kind: str, per: int) -> Callable[[dict, list[Shape], Shape], dict[str, int]]:
    return lambda a, ins, out: {kind: per * ins[0][0]}


def _prelu_params(a: dict, ins: list[Shape], out: Shape) -> dict[str, int]:
    return {"prelu": 1 if a["shared"] else ins[0][0]}


_CONV_ATTRS = {
    "out": Attr(int, None, "output channels (default: input channels)"),
    "kernel": Attr(int, 1, "kernel size (square)"),
    "stride": Attr(int, 1, "stride"),
    "dilation": Attr(int, 1, "dilation"),
    "groups": Attr(int, 1, "groups (in channels for depth-wise)"),
    "bias": Attr(bool, False, "learn a bias"),
}

OPS: dict[str, OpDef] = {op.name: op for op in [
    OpDef("input", "the input of the network or block", min_inputs=0, max_inputs=0),
    OpDef("conv", "2-d convolution", {
        **_CONV_ATTRS,
        "padding": Attr(int, None, "zero padding (default dilation*(kernel-1)//2)"),
    }, shape=_conv_shape, params=_conv_params, has_module=True,
          out_buffer=pointwise),
    OpDef("deconv", "2-d transposed convolution", {
        **_CONV_ATTRS,
        "padding": Attr(int, 0, "padding"),
        "output_padding": Attr(int, 0, "extra size added to one side of the output"),
    }, shape=_deconv_shape, params=_conv_params, has_module=True),
    OpDef("batchnorm", "batch normalisation", {
        "eps": Attr(float, 1e-5, "added to the variance"),
        "momentum": Attr(float, 0.1, "running statistics momentum"),
    }, params=_per_channel("bn", 2), has_module=True),
    OpDef("prelu", "PReLU, one slope per channel", {
        "shared": Attr(bool, False, "one slope for all channels"),
        "init": Attr(float, 0.25, "initial slope"),
    }, params=_prelu_params, has_module=True, out_buffer=_always),
    OpDef("relu", "ReLU"),
    OpDef("avgpool", "average pooling", {
        "kernel": Attr(int, None, "window size", required=True),
        "stride": Attr(int, None, "stride (default: kernel)"),
        "padding": Attr(int, 0, "zero padding"),
        "count_include_pad": Attr(bool, True, "count padded zeros in the average"),
    }, shape=_pool_shape, out_buffer=_always),
    OpDef("maxpool", "max pooling", {
        "kernel": Attr(int, None, "window size", required=True),
        "stride": Attr(int, None, "stride (default: kernel)"),
        "padding": Attr(int, 0, "padding"),
    }, shape=_pool_shape),
    OpDef("concat", "concatenation along channels", min_inputs=2, max_inputs=64,
          shape=_concat_shape, out_buffer=_always),
    OpDef("add", "element-wise sum", min_inputs=2, max_inputs=64, shape=_add_shape,
          out_buffer=_always),
    OpDef("shuffle", "channel shuffle", {"groups": Attr(int, None, "groups", required=True)},
          shape=_shuffle_shape),
    OpDef("identity", "passes its input through"),
    OpDef("upsample", "resize by a scale factor", {
        "scale": Attr(float, 2.0, "scale factor"),
        "mode": Attr(str, "bilinear", "nearest or bilinear"),
    }, shape=_upsample_shape),
    OpDef("affine", "per-channel scale and shift (inference batch norm)",
          params=_per_channel("affine", 2), has_module=True, out_buffer=_always),
    OpDef("depth_to_space", "channels to space (ONNX DepthToSpace, DCR order)", {
        "factor": Attr(int, None, "block size s", required=True),
    }, shape=_depth_to_space_shape, out_buffer=_always),
]}


def complete_attrs(op: str, attrs: dict, in_shapes: list[Shape]) -> dict:
    """Fill defaults that depend on other attributes or on the input (padding, out, stride)."""
    a = dict(attrs)
    if op in ("conv", "deconv"):
        if a.get("out") is None:
            a["out"] = in_shapes[0][0]
        if a.get("padding") is None:
            a["padding"] = a["dilation"] * (a["kernel"] - 1) // 2
    if op in ("avgpool", "maxpool") and a.get("stride") is None:
        a["stride"] = a["kernel"]
    return a
