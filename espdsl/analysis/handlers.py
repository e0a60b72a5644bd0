"""One handler per primitive op: what one IR node costs and how it moves the receptive field.

Each handler turns a node (its resolved attributes, input shapes and output shape) into a
:class:`Work` record. The walk in :mod:`espdsl.analysis.walk` is generic: it knows nothing about
any op and only sums and propagates what these handlers return. An op without a handler is
reported as *unknown* by the walk, never counted as zero.

Units (per sample; the walk multiplies by the batch):

* ``macs``: multiply-accumulates of convolutions. conv: ``H_out W_out C_out (C_in / g) k^2``;
  deconv (transposed convolution): ``H_in W_in C_in (C_out / g) k^2`` (every input pixel is
  scattered through the whole kernel). Dilation changes neither; a bias adds no MAC (fvcore and
  the paper count the same way).
* ``elementwise``: arithmetic operations per output value, other than convolution MACs:
  batchnorm 2 (inference: one scale, one shift), affine 2, prelu 1, relu 1, add ``inputs - 1``,
  avgpool ``k^2`` (``k^2 - 1`` additions and a division), maxpool ``k^2 - 1`` comparisons,
  bilinear upsample 7 (four products, three sums). Pure data movement (input, concat, shuffle,
  nearest upsample, depth_to_space) is deliberately *ignored*: it is listed as such, not
  counted as zero work.
* ``window``: which input pixels (along one axis) output pixel ``o`` reads: the index range
  ``[rate*o + lo[o % period], rate*o + hi[o % period]]`` (:class:`Window`). Convolution and
  pooling: ``[s*o - p, s*o - p + d(k - 1)]``; transposed convolution: the inputs whose taps land
  on ``o`` (depends on ``o`` modulo the stride); up-sampling: the source pixel(s) PyTorch reads.

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
from ..ops import Shape

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

    macs: dict[str, int] = field(default_factory=dict)  # {'conv': n} or {'deconv': n}
    elementwise: int = 0         # arithmetic operations besides convolution MACs
    status: str = COUNTED        # COUNTED, or IGNORED for pure data movement
    window: Window = POINT       # input pixels an output pixel reads, along one axis
    conv_output: bool = False    # counts in Fig. 3g's memory (outputs of convolutions)


Handler = Callable[[Node, list[Shape]], Work]


def _numel(shape: Shape) -> int:
    c, h, w = shape
    return c * h * w


def _conv(node: Node, ins: list[Shape]) -> Work:
    a = node.attrs
    cout, ho, wo = node.shape
    macs = ho * wo * cout * (ins[0][0] // a["groups"]) * a["kernel"] ** 2
    return Work({"conv": macs}, window=Window.strided(
        a["stride"], -a["padding"], a["dilation"] * (a["kernel"] - 1) + 1), conv_output=True)


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
    macs = hi * wi * cin * (node.shape[0] // a["groups"]) * a["kernel"] ** 2
    return Work({"deconv": macs},
                window=deconv_window(a["kernel"], a["stride"], a["padding"], a["dilation"]),
                conv_output=True)


def _per_value(ops_per_value: int) -> Handler:
    return lambda node, ins: Work(elementwise=ops_per_value * _numel(node.shape))


def _pool(per_window: Callable[[int], int]) -> Handler:
    def handler(node: Node, ins: list[Shape]) -> Work:
        k, a = node.attrs["kernel"], node.attrs
        return Work(elementwise=per_window(k) * _numel(node.shape),
                    window=Window.strided(a["stride"], -a["padding"], k))
    return handler


def _add(node: Node, ins: list[Shape]) -> Work:
    return Work(elementwise=(len(ins) - 1) * _numel(node.shape))


def _moves(node: Node, ins: list[Shape]) -> Work:
    return Work(status=IGNORED)


def upsample_window(scale: float, mode: str) -> Window:
    """Source pixels of ``F.interpolate(scale_factor=scale)``: nearest reads
    ``floor(o / scale)``; bilinear (align_corners false) the two around ``(o + 0.5) / scale - 0.5``
    (away from the border, where PyTorch clamps).

    >>> w = upsample_window(2.0, "bilinear")
    >>> [(w.rate * o + w.lo[o], w.rate * o + w.hi[o]) for o in range(2)]
    [(Fraction(-1, 1), Fraction(0, 1)), (Fraction(0, 1), Fraction(1, 1))]
    """
    import math
    inverse = 1 / Fraction(scale).limit_denominator(1000)
    period = inverse.denominator   # outputs per group that repeats shifted by whole inputs
    ranges = []
    for o in range(period):
        if mode == "nearest":
            src = math.floor(o * inverse)
            ranges.append((src, src))
        else:
            pos = (o + Fraction(1, 2)) * inverse - Fraction(1, 2)
            low = math.floor(pos)
            ranges.append((low, low + (pos != low)))
    return Window.from_ranges(inverse, ranges)


def _upsample(node: Node, ins: list[Shape]) -> Work:
    window = upsample_window(node.attrs["scale"], node.attrs["mode"])
    if node.attrs["mode"] == "nearest":
        return Work(status=IGNORED, window=window)
    # bilinear: every output value blends a 2x2 neighbourhood
    return Work(elementwise=7 * _numel(node.shape), window=window)


def _depth_to_space(node: Node, ins: list[Shape]) -> Work:
    # output pixel o along one axis comes from input pixel o // s, like nearest up-sampling
    return Work(status=IGNORED, window=upsample_window(float(node.attrs["factor"]), "nearest"))


HANDLERS: dict[str, Handler] = {
    "input": _moves,
    "conv": _conv,
    "deconv": _deconv,
    "batchnorm": _per_value(2),
    "prelu": _per_value(1),
    "relu": _per_value(1),
    "avgpool": _pool(lambda k: k * k),
    "maxpool": _pool(lambda k: k * k - 1),
    "concat": _moves,
    "add": _add,
    "shuffle": _moves,
    "identity": _moves,
    "upsample": _upsample,
    "affine": _per_value(2),
    "depth_to_space": _depth_to_space,
}
