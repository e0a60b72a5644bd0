"""The closed set of primitive operations: their attributes, shape rules and parameter counts.

Every node of the resolved IR is one of these ops. This table is the single source of truth for
what an op accepts (names, types, defaults) and what it produces; the resolver, the builder, the
analysis and the renderer all read it and nothing else.

Shapes are per sample: a feature map is ``(C, H, W)``, a vector (after global pooling or
``flatten``) is ``(C,)``; the batch size never changes inside a network. ``OpDef.takes`` says
which an op accepts (``map``, ``vector`` or ``any``). Kernel sizes, strides, paddings and
dilations are *pairs*: an int for a square window, ``[h, w]`` for a rectangular one
(``kernel: [3, 1]``); the IR keeps an int when both are equal.

=============== ============================================================================
op              meaning
=============== ============================================================================
input           the network (or block) input; exactly one
conv            2-d convolution: ``out``, ``kernel``, ``stride``, ``padding`` (default
                ``dilation * (kernel - 1) // 2``), ``dilation``, ``groups``, ``bias`` (false)
deconv          2-d transposed convolution: ``out``, ``kernel``, ``stride``, ``padding`` (0),
                ``output_padding``, ``dilation``, ``groups``, ``bias`` (default false)
linear          fully connected layer on a vector: ``out``, ``bias`` (default true)
batchnorm       batch normalisation over channels: ``eps`` (default 1e-5), ``momentum`` (0.1)
prelu           PReLU with one slope per channel (``shared: true`` for a single slope), ``init``
relu            ReLU, ``max(x, 0)``
relu6           ``min(max(x, 0), 6)`` (MobileNetV2)
hardsigmoid     ``relu6(x + 3) / 6`` (MobileNetV3's gates)
hardswish       ``x * hardsigmoid(x)`` (MobileNetV3)
sigmoid         ``1 / (1 + exp(-x))`` (squeeze-and-excitation gates)
silu            ``x * sigmoid(x)`` (swish; EfficientNet)
avgpool         average pooling: ``kernel``, ``stride`` (default kernel), ``padding``,
                ``count_include_pad`` (default true)
maxpool         max pooling: ``kernel``, ``stride`` (default kernel), ``padding``
global_avgpool  the mean over H and W: a vector ``(C,)``, or ``(C, 1, 1)`` with ``keepdims``
global_maxpool  the maximum over H and W, likewise
flatten         a feature map as a vector ``(C * H * W,)`` in (c, h, w) order
concat          concatenation along channels of two or more inputs of equal H and W
add             element-wise sum of two or more inputs of equal shape
mul             element-wise product of two or more inputs, broadcasting sizes of 1 (a
                ``(C, 1, 1)`` gate times a ``(C, H, W)`` map: squeeze-and-excitation)
slice           channels ``start`` to ``stop`` (Python's ``x[:, start:stop]``, negative counts
                from the end): ShuffleNetV2's channel split is two slices
shuffle         channel shuffle with ``groups`` groups (ShuffleNet)
dropout         ``p`` (0.5), ``channelwise`` (false: elements; true: whole channels, like
                ``nn.Dropout2d``); the identity at inference
identity        passes its input through (resolved away: it makes no IR node)
upsample        resize by ``scale`` (default 2) with ``mode`` nearest, bilinear or bicubic
                (``align_corners`` false); with a second input, to that input's H and W
affine          per-channel ``x * weight + bias`` (a batch norm in inference form; made by the
                optimization passes, see :mod:`espdsl.passes`)
stochastic_depth  ``p``, ``mode`` (row or batch): drops the whole residual branch per sample
                (row) or per batch, scaling by 1 / (1 - p) (torchvision.ops.StochasticDepth);
                the identity at inference
layernorm       layer normalisation over channels at each pixel (ConvNeXt's LayerNorm2d; on
                a vector, nn.LayerNorm): ``eps`` (1e-5), a weight and a bias per channel
groupnorm       group normalisation (nn.GroupNorm): ``groups``, ``eps`` (1e-5)
gelu            ``x * Phi(x)`` (``approximate``: none or tanh)
scale           a learned per-channel scale without bias, ``init`` (1.0): layer scale
softmax         softmax over channels
tanh            hyperbolic tangent
pad             ``padding`` (an int or [h, w], each side) with ``mode`` constant (``value``,
                default 0) or reflect
depth_to_space  ONNX's DepthToSpace in DCR order with ``factor`` s: input channel
                ``(i * s + j) * C + c`` goes to output ``(c, h * s + i, w * s + j)``; with a 1x1
                convolution it replaces a transposed convolution whose stride equals its kernel
=============== ============================================================================

Ops the optimization passes create (``affine``, ``depth_to_space``) are ordinary ops: every
table (analysis handlers, the fx builder, the ``.py`` code generator, the renderer) has an
entry for them, so an optimized IR analyses, renders and exports like any other.
``OpDef.writes_into_buffer`` says whether the builder can write the op's result into a buffer of a
static memory plan (:mod:`espdsl.passes.memory`) instead of a fresh allocation; ``OpDef.view``
whether its result is a view of its input (no new memory; it keeps the input alive).

>>> OPS["conv"].out_shape({"out": 8, "kernel": 3, "stride": 2, "padding": 1, "dilation": 1,
...                        "groups": 1}, [(3, 32, 32)])
(8, 16, 16)
>>> OPS["conv"].out_shape({"out": 8, "kernel": (3, 1), "stride": 1, "padding": (1, 0),
...                        "dilation": 1, "groups": 1}, [(3, 32, 32)])
(8, 32, 32)
>>> OPS["global_avgpool"].out_shape({"keepdims": False}, [(1280, 7, 7)])
(1280,)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable

Shape = tuple[int, ...]          # (C, H, W) for a feature map, (C,) for a vector
MAP, VECTOR, ANY = "map", "vector", "any"


class OpError(ValueError):
    """Raised by a shape rule when inputs do not fit; the resolver adds the location."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.field = field


class Pair:
    """The type of an attribute that is an int or an ``[h, w]`` pair (kernel, stride, ...).

    >>> Pair.coerce([3, 1]), Pair.coerce([3, 3]), Pair.coerce(2)
    ((3, 1), 3, 2)
    """

    __name__ = "int or [h, w]"

    @staticmethod
    def coerce(value: Any) -> int | tuple[int, int]:
        """An int, or a tuple of two ints (an int when both are equal); ValueError otherwise."""
        def whole(v: Any) -> int:
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{v!r} is not a whole number")
            return v
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"{list(value)!r} has {len(value)} entries, not 2 (h, w)")
            h, w = whole(value[0]), whole(value[1])
            return h if h == w else (h, w)
        return whole(value)


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``(h, w)`` of a pair attribute.

    >>> pair(3), pair((3, 1))
    ((3, 3), (3, 1))
    """
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def pair_text(value: int | tuple[int, int]) -> str:
    """'3' or '3x1'."""
    h, w = pair(value)
    return str(h) if h == w else f"{h}x{w}"


def numel(shape: Shape) -> int:
    """Values in one sample of a map or a vector."""
    return prod(shape)


def spatial(shape: Shape) -> tuple[int, int]:
    """(H, W) of a map; a vector counts as 1 x 1."""
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def shape_text(shape: Shape) -> str:
    """'64x56x56' for a map, '1000' for a vector."""
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: its type, default (None: required), a one-line doc and the
    smallest and largest values it takes (each entry of a pair; checked by the resolver,
    located)."""

    type: type
    default: Any = None
    doc: str = ""
    required: bool = False
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class OpDef:
    """A primitive op: attribute schema, arity, what inputs it takes, shape and parameter rules."""

    name: str
    doc: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    min_inputs: int = 1
    max_inputs: int = 1
    shape: Callable[[dict, list[Shape]], Shape] | None = None
    params: Callable[[dict, list[Shape], Shape], dict[str, int]] | None = None
    has_module: bool = False  # built as an nn.Module with state (appears in state_dict)
    out_buffer: Callable[[dict], bool] | None = None  # can the result go into a planned buffer?
    takes: str = ANY          # MAP: (C, H, W) inputs only; VECTOR: (C,) only; ANY: either
    view: bool = False        # the result is a view of the input: no new memory at inference

    def out_shape(self, attrs: dict, inputs: list[Shape]) -> Shape:
        """The output shape; :class:`OpError` when the inputs do not fit."""
        self.check_inputs(inputs)
        return self.shape(attrs, inputs) if self.shape else inputs[0]

    def check_inputs(self, inputs: list[Shape]) -> None:
        """Inputs must be maps or vectors as ``takes`` says, and all of one rank."""
        for s in inputs:
            if self.takes == MAP and len(s) != 3:
                raise OpError(f"op '{self.name}' needs a feature map (C, H, W), its input is a "
                              f"vector ({s[0]},)", hint="apply it before global pooling or "
                              "flatten; a vector takes linear, activations, dropout, add, mul")
            if self.takes == VECTOR and len(s) != 1:
                raise OpError(f"op '{self.name}' needs a vector (C,), its input is a feature map "
                              f"{shape_text(s)}", hint="pool it first (global_avgpool) or "
                              "flatten it; on a map, a 1x1 conv is the same layer")
        if len({len(s) for s in inputs}) > 1:
            raise OpError(f"op '{self.name}' mixes feature maps and vectors: "
                          + ", ".join(shape_text(s) for s in inputs),
                          hint="pool the maps to vectors (global_avgpool) or use "
                          "global_avgpool with keepdims: true to keep (C, 1, 1)")

    def writes_into_buffer(self, attrs: dict) -> bool:
        """Can the builder write this node's result into a buffer of a static memory plan?"""
        return self.out_buffer is not None and self.out_buffer(attrs)

    def param_counts(self, attrs: dict, inputs: list[Shape], out: Shape) -> dict[str, int]:
        """Trainable parameters by kind: ``conv``, ``linear``, ``bias``, ``bn``, ``prelu``."""
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


def _window_axes(a: dict, keys: tuple[str, ...]) -> list[tuple[int, ...]]:
    """Per axis (H, then W): the values of ``keys`` (kernel, stride, padding, dilation)."""
    values = [pair(a[k]) if k in a else (1, 1) for k in keys]
    return [tuple(v[axis] for v in values) for axis in (0, 1)]


def _conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    if a["out"] < 1:
        raise OpError(f"out must be at least 1, got {a['out']}", field="out")
    _check_groups(a["groups"], c, a["out"])
    for key in ("kernel", "stride", "dilation"):
        if min(pair(a[key])) < 1:
            raise OpError(f"{key} must be at least 1, got {pair_text(a[key])}", field=key)
    if min(pair(a["padding"])) < 0:
        raise OpError(f"padding must be at least 0, got {pair_text(a['padding'])}", field="padding")
    (kh, sh, ph, dh), (kw, sw, pw, dw) = _window_axes(a, ("kernel", "stride", "padding", "dilation"))
    ho, wo = _spatial(h, kh, sh, ph, dh), _spatial(w, kw, sw, pw, dw)
    if ho < 1 or wo < 1:
        raise OpError(f"input {h}x{w} is too small for kernel {pair_text(a['kernel'])} "
                      f"(dilation {pair_text(a['dilation'])}, padding {pair_text(a['padding'])})",
                      hint="use a larger input size")
    return (a["out"], ho, wo)


def _conv_params(a: dict, ins: list[Shape], out: Shape) -> dict[str, int]:
    cin = ins[0][0]
    kh, kw = pair(a["kernel"])
    counts = {"conv": a["out"] * (cin // a["groups"]) * kh * kw}
    if a["bias"]:
        counts["bias"] = a["out"]
    return counts


def _deconv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    _check_groups(a["groups"], c, a["out"])
    axes = _window_axes(a, ("kernel", "stride", "padding", "dilation", "output_padding"))
    for k, s, p, d, op in axes:
        if op >= max(s, d):
            raise OpError("output_padding must be smaller than stride or dilation",
                          field="output_padding")

    def size(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
        return (n - 1) * s - 2 * p + d * (k - 1) + op + 1

    return (a["out"], size(h, *axes[0]), size(w, *axes[1]))


def _linear_shape(a: dict, ins: list[Shape]) -> Shape:
    if a["out"] < 1:
        raise OpError(f"out must be at least 1, got {a['out']}", field="out")
    return (a["out"],)


def _linear_params(a: dict, ins: list[Shape], out: Shape) -> dict[str, int]:
    counts = {"linear": a["out"] * ins[0][0]}
    if a["bias"]:
        counts["bias"] = a["out"]
    return counts


def _pool_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    (kh, sh, ph), (kw, sw, pw) = _window_axes(a, ("kernel", "stride", "padding"))
    if min(kh, kw, sh, sw) < 1:
        raise OpError("kernel and stride must be at least 1", field="kernel")
    if ph * 2 > kh or pw * 2 > kw:
        raise OpError(f"padding {pair_text(a['padding'])} must be at most half the kernel "
                      f"{pair_text(a['kernel'])}", field="padding")
    ho, wo = _spatial(h, kh, sh, ph, 1), _spatial(w, kw, sw, pw, 1)
    if ho < 1 or wo < 1:
        raise OpError(f"input {h}x{w} is too small for a {pair_text(a['kernel'])} window",
                      hint="use a larger input size")
    return (c, ho, wo)


def _global_shape(a: dict, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    return (c, 1, 1) if a["keepdims"] else (c,)


def _flatten_shape(a: dict, ins: list[Shape]) -> Shape:
    return (numel(ins[0]),)


def _concat_shape(a: dict, ins: list[Shape]) -> Shape:
    rest = {s[1:] for s in ins}
    if len(rest) > 1:
        raise OpError("concat inputs differ in spatial size: "
                      + ", ".join("x".join(map(str, s[1:])) for s in ins),
                      hint="concatenate feature maps of the same resolution")
    return (sum(s[0] for s in ins), *ins[0][1:])


def _add_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(set(ins)) > 1:
        raise OpError("add inputs differ in shape: " + ", ".join(shape_text(s) for s in ins),
                      hint="add needs equal channels and spatial size")
    return ins[0]


def _mul_shape(a: dict, ins: list[Shape]) -> Shape:
    out = tuple(max(dims) for dims in zip(*ins))
    for s in ins:
        if any(d not in (1, o) for d, o in zip(s, out)):
            raise OpError("mul inputs do not broadcast: " + ", ".join(shape_text(s) for s in ins),
                          hint="each size must equal the others or be 1, e.g. a 64x1x1 gate "
                          "times a 64x56x56 map")
    return out


def slice_range(a: dict, channels: int) -> tuple[int, int]:
    """``(start, stop)`` of a slice on ``channels`` channels, negatives resolved (Python's rule).

    >>> slice_range({"start": 0, "stop": None}, 116), slice_range({"start": -58, "stop": None}, 116)
    ((0, 116), (58, 116))
    """
    start = a["start"] + channels if a["start"] < 0 else a["start"]
    stop = channels if a["stop"] is None else a["stop"] + channels if a["stop"] < 0 else a["stop"]
    return start, stop


def _slice_shape(a: dict, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    start, stop = slice_range(a, c)
    if not 0 <= start < stop <= c:
        raise OpError(f"slice {a['start']}:{'' if a['stop'] is None else a['stop']} of {c} "
                      f"channels is empty or out of range", field="start",
                      hint=f"channels run from 0 to {c}: e.g. start: 0, stop: {c // 2}")
    return (stop - start, *ins[0][1:])


def _shuffle_shape(a: dict, ins: list[Shape]) -> Shape:
    if a["groups"] < 1 or ins[0][0] % a["groups"]:
        raise OpError(f"shuffle groups={a['groups']} must divide channels {ins[0][0]}",
                      hint=_divisor_hint(ins[0][0], ins[0][0]), field="groups")
    return ins[0]


def _dropout_shape(a: dict, ins: list[Shape]) -> Shape:
    if not 0.0 <= a["p"] < 1.0:
        raise OpError(f"dropout p must be in [0, 1), got {a['p']}", field="p")
    if a["channelwise"] and len(ins[0]) != 3:
        raise OpError("channelwise dropout drops whole channels of a feature map; this input is "
                      f"a vector ({ins[0][0]},)", field="channelwise",
                      hint="use channelwise: false on vectors")
    return ins[0]


def _upsample_shape(a: dict, ins: list[Shape]) -> Shape:
    if a["mode"] not in UPSAMPLE_MODES:
        raise OpError(f"unknown upsample mode '{a['mode']}'",
                      hint="use " + ", ".join(UPSAMPLE_MODES), field="mode")
    c, h, w = ins[0]
    if len(ins) == 2:
        if a["scale"] is not None:
            raise OpError("upsample takes a scale or a second input giving the size, not both",
                          field="scale", hint="drop 'scale' to resize to the second input's size")
        return (c, ins[1][1], ins[1][2])
    if a["scale"] <= 0:
        raise OpError(f"scale must be positive, got {a['scale']}", field="scale")
    return (c, int(h * a["scale"]), int(w * a["scale"]))


UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic")
PAD_MODES = ("constant", "reflect")


def _choice(key: str, allowed: tuple[str, ...]) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, ins: list[Shape]) -> Shape:
        if a[key] not in allowed:
            raise OpError(f"unknown {key} {a[key]!r}", hint="use " + " or ".join(allowed),
                          field=key)
        return ins[0]
    return shape


def _groupnorm_shape(a: dict, ins: list[Shape]) -> Shape:
    if ins[0][0] % a["groups"]:
        raise OpError(f"groupnorm groups={a['groups']} must divide channels {ins[0][0]}",
                      hint=_divisor_hint(ins[0][0], ins[0][0]), field="groups")
    return ins[0]


def _pad_shape(a: dict, ins: list[Shape]) -> Shape:
    _choice("mode", PAD_MODES)(a, ins)
    c, h, w = ins[0]
    ph, pw = pair(a["padding"])
    if a["mode"] == "reflect" and (ph >= h or pw >= w):
        raise OpError(f"reflect padding {pair_text(a['padding'])} must be smaller than the input "
                      f"{h}x{w}", field="padding")
    return (c, h + 2 * ph, w + 2 * pw)


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
    "out": Attr(int, None, "output channels (default: input channels)", min=1),
    "kernel": Attr(Pair, 1, "kernel size: k, or [kh, kw]", min=1),
    "stride": Attr(Pair, 1, "stride: s, or [sh, sw]", min=1),
    "dilation": Attr(Pair, 1, "dilation: d, or [dh, dw]", min=1),
    "groups": Attr(int, 1, "groups (in channels for depth-wise)", min=1),
    "bias": Attr(bool, False, "learn a bias"),
}


OPS: dict[str, OpDef] = {op.name: op for op in [
    OpDef("input", "the input of the network or block", min_inputs=0, max_inputs=0),
    OpDef("conv", "2-d convolution", {
        **_CONV_ATTRS,
        "padding": Attr(Pair, None, "zero padding (default dilation*(kernel-1)//2 per axis)", min=0),
    }, shape=_conv_shape, params=_conv_params, has_module=True,
          out_buffer=pointwise, takes=MAP),
    OpDef("deconv", "2-d transposed convolution", {
        **_CONV_ATTRS,
        "padding": Attr(Pair, 0, "padding", min=0),
        "output_padding": Attr(Pair, 0, "extra size added to one side of the output", min=0),
    }, shape=_deconv_shape, params=_conv_params, has_module=True, takes=MAP),
    OpDef("linear", "fully connected layer on a vector", {
        "out": Attr(int, None, "output features", required=True, min=1),
        "bias": Attr(bool, True, "learn a bias"),
    }, shape=_linear_shape, params=_linear_params, has_module=True, takes=VECTOR),
    OpDef("batchnorm", "batch normalisation", {
        "eps": Attr(float, 1e-5, "added to the variance", min=0),
        "momentum": Attr(float, 0.1, "running statistics momentum", min=0, max=1),
    }, params=_per_channel("bn", 2), has_module=True, takes=MAP),
    OpDef("prelu", "PReLU, one slope per channel", {
        "shared": Attr(bool, False, "one slope for all channels"),
        "init": Attr(float, 0.25, "initial slope"),
    }, params=_prelu_params, has_module=True, out_buffer=_always),
    OpDef("relu", "ReLU"),
    OpDef("relu6", "ReLU clipped at 6"),
    OpDef("hardsigmoid", "relu6(x + 3) / 6"),
    OpDef("hardswish", "x * hardsigmoid(x)"),
    OpDef("sigmoid", "1 / (1 + exp(-x))"),
    OpDef("silu", "x * sigmoid(x) (swish)"),
    OpDef("avgpool", "average pooling", {
        "kernel": Attr(Pair, None, "window size: k, or [kh, kw]", required=True, min=1),
        "stride": Attr(Pair, None, "stride (default: kernel)", min=1),
        "padding": Attr(Pair, 0, "zero padding", min=0),
        "count_include_pad": Attr(bool, True, "count padded zeros in the average"),
    }, shape=_pool_shape, out_buffer=_always, takes=MAP),
    OpDef("maxpool", "max pooling", {
        "kernel": Attr(Pair, None, "window size: k, or [kh, kw]", required=True, min=1),
        "stride": Attr(Pair, None, "stride (default: kernel)", min=1),
        "padding": Attr(Pair, 0, "padding", min=0),
    }, shape=_pool_shape, takes=MAP),
    OpDef("global_avgpool", "mean over H and W", {
        "keepdims": Attr(bool, False, "keep (C, 1, 1) instead of a vector (C,)"),
    }, shape=_global_shape, takes=MAP),
    OpDef("global_maxpool", "maximum over H and W", {
        "keepdims": Attr(bool, False, "keep (C, 1, 1) instead of a vector (C,)"),
    }, shape=_global_shape, takes=MAP),
    OpDef("flatten", "a feature map as a vector", shape=_flatten_shape, takes=MAP, view=True),
    OpDef("concat", "concatenation along channels", min_inputs=2, max_inputs=64,
          shape=_concat_shape, out_buffer=_always),
    OpDef("add", "element-wise sum", min_inputs=2, max_inputs=64, shape=_add_shape,
          out_buffer=_always),
    OpDef("mul", "element-wise product, broadcasting sizes of 1", min_inputs=2, max_inputs=64,
          shape=_mul_shape),
    OpDef("slice", "a range of channels", {
        "start": Attr(int, 0, "first channel (negative: from the end)"),
        "stop": Attr(int, None, "one past the last channel (default: all; negative: from the end)"),
    }, shape=_slice_shape, view=True),
    OpDef("shuffle", "channel shuffle", {"groups": Attr(int, None, "groups", required=True, min=1)},
          shape=_shuffle_shape, takes=MAP),
    OpDef("dropout", "dropout (the identity at inference)", {
        "p": Attr(float, 0.5, "probability of zeroing", min=0, max=1),
        "channelwise": Attr(bool, False, "drop whole channels (nn.Dropout2d)"),
    }, shape=_dropout_shape, view=True),
    OpDef("identity", "passes its input through"),
    OpDef("upsample", "resize by a scale factor, or to a second input's size", {
        "scale": Attr(float, None, "scale factor (default 2 with one input)", min=0),
        "mode": Attr(str, "bilinear", "nearest, bilinear or bicubic"),
    }, max_inputs=2, shape=_upsample_shape, takes=MAP),
    OpDef("affine", "per-channel scale and shift (inference batch norm)",
          params=_per_channel("affine", 2), has_module=True, out_buffer=_always, takes=MAP),
    OpDef("stochastic_depth", "drops the residual branch in training; the identity at inference", {
        "p": Attr(float, 0.0, "probability of dropping the branch", min=0, max=1),
        "mode": Attr(str, "row", "row (per sample) or batch"),
    }, shape=_choice("mode", ("row", "batch")), view=True),
    OpDef("layernorm", "layer normalisation over channels", {
        "eps": Attr(float, 1e-5, "added to the variance", min=0),
    }, params=_per_channel("norm", 2), has_module=True),
    OpDef("groupnorm", "group normalisation", {
        "groups": Attr(int, None, "groups of channels", required=True, min=1),
        "eps": Attr(float, 1e-5, "added to the variance", min=0),
    }, shape=_groupnorm_shape, params=_per_channel("norm", 2), has_module=True, takes=MAP),
    OpDef("gelu", "x * Phi(x)", {
        "approximate": Attr(str, "none", "none (erf) or tanh"),
    }, shape=_choice("approximate", ("none", "tanh"))),
    OpDef("scale", "learned per-channel scale (layer scale)", {
        "init": Attr(float, 1.0, "initial scale"),
    }, params=_per_channel("scale", 1), has_module=True),
    OpDef("softmax", "softmax over channels"),
    OpDef("tanh", "hyperbolic tangent"),
    OpDef("pad", "constant or reflect padding", {
        "padding": Attr(Pair, None, "pixels added on each side: p, or [ph, pw]", required=True,
                        min=0),
        "mode": Attr(str, "constant", "constant or reflect"),
        "value": Attr(float, 0.0, "the constant (mode constant)"),
    }, shape=_pad_shape, takes=MAP),
    OpDef("depth_to_space", "channels to space (ONNX DepthToSpace, DCR order)", {
        "factor": Attr(int, None, "block size s", required=True, min=1),
    }, shape=_depth_to_space_shape, out_buffer=_always, takes=MAP),
]}


def complete_attrs(op: str, attrs: dict, in_shapes: list[Shape]) -> dict:
    """Fill defaults that depend on other attributes or on the input (padding, out, stride,
    scale)."""
    a = dict(attrs)
    if op in ("conv", "deconv"):
        if a.get("out") is None:
            a["out"] = in_shapes[0][0]
        if a.get("padding") is None:
            (kh, kw), (dh, dw) = pair(a["kernel"]), pair(a["dilation"])
            a["padding"] = Pair.coerce([dh * (kh - 1) // 2, dw * (kw - 1) // 2])
    if op in ("avgpool", "maxpool") and a.get("stride") is None:
        a["stride"] = a["kernel"]
    if op == "upsample" and a.get("scale") is None and len(in_shapes) < 2:
        a["scale"] = 2.0
    return a
