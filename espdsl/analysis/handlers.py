"""One handler per primitive op: what one IR node costs and how it moves the receptive field.

Each handler turns a node (its resolved attributes, input shapes and output shape) into a
:class:`Work` record. The walk in :mod:`espdsl.analysis.walk` is generic: it knows nothing about
any op and only sums and propagates what these handlers return. An op without a handler is
reported as *unknown* by the walk, never counted as zero.

Units (per sample; the walk multiplies by the batch):

* ``macs``: multiply-accumulates of convolutions and linear layers. conv:
  ``H_out W_out C_out (C_in / g) kh kw``; deconv (transposed convolution):
  ``H_in W_in C_in (C_out / g) kh kw`` (every input pixel is scattered through the whole
  kernel); linear: ``C_in C_out``. Dilation changes neither; a bias adds no MAC (fvcore and the
  paper count the same way).
* ``elementwise``: arithmetic operations per output value, other than those MACs, counted from
  the op's defining formula (``exp`` counts as one): batchnorm 2 (inference: one scale, one
  shift), affine 2, prelu 1, relu 1, relu6 2 (two clamps), hardsigmoid 4 (add, two clamps,
  divide), hardswish 5 (hardsigmoid and a product), sigmoid 4 (negate, exp, add, divide), silu
  5 (sigmoid and a product), add and mul ``inputs - 1``, avgpool ``kh kw`` (``kh kw - 1``
  additions and a division), maxpool ``kh kw - 1`` comparisons, global_avgpool ``H W`` per
  channel (as fvcore counts ``adaptive_avg_pool2d``: one per input value), global_maxpool
  ``H W - 1`` comparisons per channel, bilinear upsample 7 (four products, three sums),
  bicubic upsample 31 (sixteen products, fifteen sums), layernorm and groupnorm 7 (per value:
  one sum for the mean, a subtraction, a square, one sum for the variance, a normalisation, a
  scale and a shift; a groupnorm output reads the whole map), gelu 5 (a division, erf, an addition, two products), scale 1, softmax 3
  (exp, a sum, a division), tanh 1 (like exp). Pure data movement (input, concat, slice,
  flatten, shuffle, nearest upsample, depth_to_space, pad) and dropout and stochastic depth
  (the identity at inference) are deliberately *ignored*: listed as such, not counted as zero
  work.
* ``window``: which input pixels (along H; ``window_w`` along W when it differs) output pixel
  ``o`` reads: the index range ``[rate*o + lo[o % period], rate*o + hi[o % period]]``
  (:class:`Window`). Convolution and pooling: ``[s*o - p, s*o - p + d(k - 1)]``; transposed
  convolution: the inputs whose taps land on ``o`` (depends on ``o`` modulo the stride);
  up-sampling: the source pixel(s) PyTorch reads; global pooling and flatten: the whole axis
  (a vector depends on every position of the map it came from).

>>> from espdsl.ir import Node
>>> conv = Node("c", "conv", ["input"], {"out": 8, "kernel": 3, "stride": 1, "padding": 2,
...             "dilation": 2, "groups": 1, "bias": False}, (8, 10, 10), "c")
>>> w = HANDLERS["conv"](conv, [(4, 10, 10)])
>>> w.macs, w.window
({'conv': 28800}, Window(period=1, rate=1, lo=(-2,), hi=(2,)))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from ..ir import Node
from ..ops import Shape, numel, pair

COUNTED, IGNORED = "counted", "ignored"


@dataclass(frozen=True)
class Window:
    """Input index range read by output pixel ``o`` along one axis:
    ``[rate*o + lo[o % period], rate*o + hi[o % period]]`` (``None`` entries: reads nothing)."""

    period: int
    rate: Fraction
    lo: tuple[Fraction | None, ...]
    hi: tuple[Fraction | None, ...]

    @staticmethod
    def strided(stride: int, start: int, size: int) -> "Window":
        """Output ``o`` reads ``[stride*o + start, stride*o + start + size - 1]``."""
        return Window(1, stride, (start,), (start + size - 1,))  # ints: exact and fast

    @staticmethod
    def from_ranges(rate: Fraction, ranges: list[tuple[int, int] | None]) -> "Window":
        """From the absolute ranges of outputs ``0 .. len(ranges) - 1`` (one period)."""
        lo = tuple(None if r is None else r[0] - rate * o for o, r in enumerate(ranges))
        hi = tuple(None if r is None else r[1] - rate * o for o, r in enumerate(ranges))
        return Window(len(ranges), rate, lo, hi)


POINT = Window.strided(1, 0, 1)


@dataclass(frozen=True)
class Work:
    """What one primitive node costs, per sample, and how it changes the receptive field."""

    macs: dict[str, int] = field(default_factory=dict)  # {'conv': n}, {'deconv': n}, {'linear': n}
    elementwise: int = 0         # arithmetic operations besides convolution MACs
    status: str = COUNTED        # COUNTED, or IGNORED for pure data movement
    window: Window = POINT       # input pixels an output pixel reads, along H
    conv_output: bool = False    # counts in Fig. 3g's memory (outputs of convolutions)
    window_w: Window | None = None   # along W, when it differs from ``window``

    @property
    def windows(self) -> tuple[Window, Window]:
        """(along H, along W)."""
        return self.window, self.window if self.window_w is None else self.window_w


Handler = Callable[[Node, list[Shape]], Work]


def _axes(h: Window, w: Window) -> dict:
    """``window``/``window_w`` keywords of a :class:`Work` (``window_w`` only if it differs)."""
    return {"window": h, "window_w": None if w == h else w}


def _conv(node: Node, ins: list[Shape]) -> Work:
    a = node.attrs
    cout, ho, wo = node.shape
    (kh, sh, ph, dh), (kw, sw, pw, dw) = (
        tuple(pair(a[k])[axis] for k in ("kernel", "stride", "padding", "dilation"))
        for axis in (0, 1))
    macs = ho * wo * cout * (ins[0][0] // a["groups"]) * kh * kw
    return Work({"conv": macs}, conv_output=True, **_axes(
        Window.strided(sh, -ph, dh * (kh - 1) + 1), Window.strided(sw, -pw, dw * (kw - 1) + 1)))


def deconv_window(kernel: int, stride: int, padding: int, dilation: int) -> Window:
    """Output ``o`` of a transposed convolution receives input ``i`` through tap ``j`` when
    ``o + padding = i * stride + j * dilation``; which ``i`` depends on ``o`` modulo the stride.

    >>> w = deconv_window(2, 2, 0, 1)   # 2x2, stride 2: output o reads input o // 2 only
    >>> [(w.rate * o + w.lo[o], w.rate * o + w.hi[o]) for o in range(2)]
    [(Fraction(0, 1), Fraction(0, 1)), (Fraction(0, 1), Fraction(0, 1))]
    """
    ranges: list[tuple[int, int] | None] = []
    for o in range(stride):
        ins = [(o + padding - j * dilation) // stride for j in range(kernel)
               if (o + padding - j * dilation) % stride == 0]
        ranges.append((min(ins), max(ins)) if ins else None)
    return Window.from_ranges(Fraction(1, stride), ranges)


def _deconv(node: Node, ins: list[Shape]) -> Work:
    a = node.attrs
    cin, hi, wi = ins[0]
    kh, kw = pair(a["kernel"])
    macs = hi * wi * cin * (node.shape[0] // a["groups"]) * kh * kw
    h, w = (deconv_window(*(pair(a[k])[axis] for k in ("kernel", "stride", "padding", "dilation")))
            for axis in (0, 1))
    return Work({"deconv": macs}, conv_output=True, **_axes(h, w))


def _linear(node: Node, ins: list[Shape]) -> Work:
    return Work({"linear": ins[0][0] * node.shape[0]}, conv_output=True)


def _per_value(ops_per_value: int) -> Handler:
    return lambda node, ins: Work(elementwise=ops_per_value * numel(node.shape))


def _pool(per_window: Callable[[int], int]) -> Handler:
    def handler(node: Node, ins: list[Shape]) -> Work:
        a = node.attrs
        (kh, sh, ph), (kw, sw, pw) = (tuple(pair(a[k])[axis] for k in ("kernel", "stride", "padding"))
                                      for axis in (0, 1))
        return Work(elementwise=per_window(kh * kw) * numel(node.shape),
                    **_axes(Window.strided(sh, -ph, kh), Window.strided(sw, -pw, kw)))
    return handler


def whole_axis(size: int) -> Window:
    """The one output of a global reduction over ``size`` pixels reads all of them (its stride
    is ``size``, like a pooling window as large as the map)."""
    return Window.strided(size, 0, size)


def _global(per_window: Callable[[int], int]) -> Handler:
    def handler(node: Node, ins: list[Shape]) -> Work:
        c, h, w = ins[0]
        return Work(elementwise=c * per_window(h * w), **_axes(whole_axis(h), whole_axis(w)))
    return handler


def _flatten(node: Node, ins: list[Shape]) -> Work:
    c, h, w = ins[0]
    return Work(status=IGNORED, **_axes(whole_axis(h), whole_axis(w)))


def _merge_values(node: Node, ins: list[Shape]) -> Work:
    return Work(elementwise=(len(ins) - 1) * numel(node.shape))


def _moves(node: Node, ins: list[Shape]) -> Work:
    return Work(status=IGNORED)


def resample_window(inverse: Fraction, mode: str) -> Window:
    """Source pixels PyTorch's ``interpolate`` reads when an output pixel stands for
    ``inverse`` input pixels: nearest reads ``floor(o * inverse)``; bilinear (align_corners
    false) the two around ``(o + 0.5) * inverse - 0.5`` (away from the border, where PyTorch
    clamps). With ``scale_factor=s`` PyTorch uses ``inverse = 1 / s``; with ``size``, input
    size / output size.

    >>> w = resample_window(Fraction(1, 2), "bilinear")
    >>> [(w.rate * o + w.lo[o], w.rate * o + w.hi[o]) for o in range(2)]
    [(Fraction(-1, 1), Fraction(0, 1)), (Fraction(0, 1), Fraction(1, 1))]
    """
    import math
    period = inverse.denominator   # outputs per group that repeats shifted by whole inputs
    ranges = []
    for o in range(period):
        if mode == "nearest":
            src = math.floor(o * inverse)
            ranges.append((src, src))
        else:
            pos = (o + Fraction(1, 2)) * inverse - Fraction(1, 2)
            low = math.floor(pos)
            if mode == "bicubic":   # four taps around pos (the outer ones weigh 0 on a grid point)
                ranges.append((low - 1, low + 2))
            else:
                ranges.append((low, low + (pos != low)))
    return Window.from_ranges(inverse, ranges)


def upsample_window(scale: float, mode: str) -> Window:
    """The window of ``F.interpolate(scale_factor=scale)`` along one axis.

    >>> w = upsample_window(2.0, "nearest")
    >>> [(w.rate * o + w.lo[o], w.rate * o + w.hi[o]) for o in range(2)]
    [(Fraction(0, 1), Fraction(0, 1)), (Fraction(0, 1), Fraction(0, 1))]
    """
    return resample_window(1 / Fraction(scale).limit_denominator(1000), mode)


def _upsample(node: Node, ins: list[Shape]) -> Work:
    mode = node.attrs["mode"]
    if len(ins) == 2:       # to the size of the second input
        (_, hi, wi), (_, ho, wo) = ins[0], node.shape
        h, w = resample_window(Fraction(hi, ho), mode), resample_window(Fraction(wi, wo), mode)
    else:
        h = w = upsample_window(node.attrs["scale"], mode)
    if mode == "nearest":
        return Work(status=IGNORED, **_axes(h, w))
    # bilinear: every output value blends a 2x2 neighbourhood; bicubic a 4x4 one
    per = 31 if mode == "bicubic" else 7
    return Work(elementwise=per * numel(node.shape), **_axes(h, w))


def _groupnorm(node: Node, ins: list[Shape]) -> Work:
    """Every output reads the whole map (its group's statistics): a window of ``2 H - 1``
    centred on it covers the map from any position."""
    c, h, w = ins[0]
    return Work(elementwise=7 * numel(node.shape),
                **_axes(Window.strided(1, 1 - h, 2 * h - 1), Window.strided(1, 1 - w, 2 * w - 1)))


def _pad(node: Node, ins: list[Shape]) -> Work:
    ph, pw = pair(node.attrs["padding"])
    return Work(status=IGNORED, **_axes(Window.strided(1, -ph, 1), Window.strided(1, -pw, 1)))


def _depth_to_space(node: Node, ins: list[Shape]) -> Work:
    # output pixel o along one axis comes from input pixel o // s, like nearest up-sampling
    return Work(status=IGNORED, window=upsample_window(float(node.attrs["factor"]), "nearest"))


HANDLERS: dict[str, Handler] = {
    "input": _moves,
    "conv": _conv,
    "deconv": _deconv,
    "linear": _linear,
    "batchnorm": _per_value(2),
    "prelu": _per_value(1),
    "relu": _per_value(1),
    "relu6": _per_value(2),
    "hardsigmoid": _per_value(4),
    "hardswish": _per_value(5),
    "sigmoid": _per_value(4),
    "silu": _per_value(5),
    "avgpool": _pool(lambda k: k),
    "maxpool": _pool(lambda k: k - 1),
    "global_avgpool": _global(lambda k: k),
    "global_maxpool": _global(lambda k: k - 1),
    "flatten": _flatten,
    "concat": _moves,
    "add": _merge_values,
    "mul": _merge_values,
    "slice": _moves,
    "shuffle": _moves,
    "dropout": _moves,
    "identity": _moves,
    "upsample": _upsample,
    "affine": _per_value(2),
    "depth_to_space": _depth_to_space,
    "stochastic_depth": _moves,
    "layernorm": _per_value(7),
    "groupnorm": _groupnorm,
    "gelu": _per_value(5),
    "scale": _per_value(1),
    "softmax": _per_value(3),
    "tanh": _per_value(1),
    "pad": _pad,
}
