"""Receptive fields as exact index maps, right through strides, dilation, branches and
up-sampling.

The field of a node says, for its output pixel ``o`` (along one axis), the first and last pixel
of the network input it depends on: ``start(o) = stride*o + a[o % period]``,
``end(o) = stride*o + b[o % period]``. A plain strided network has period 1 (every pixel's
field has the same shape); transposed convolutions and up-sampling make the shape depend on
``o`` modulo the up-sampling factor, which the period keeps exact. A merge (add, concat) takes
the union of its inputs' fields (the smallest start, the largest end), so parallel branches of
different dilation, and paths whose centres are offset, are both right. The receptive field
*size* is the widest ``end - start + 1`` over the period.

Image borders are ignored (the field of an interior pixel), as in the paper.

>>> from espdsl.analysis.handlers import Window
>>> f = ORIGIN.through(Window.strided(1, -1, 3)).through(Window.strided(2, -1, 3))
>>> f.size, f.stride, f.interval(10)
(5, 2, (18, 22))
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
from typing import Iterable

from .handlers import Window


@dataclass(frozen=True)
class Field:
    """Input pixels ``[stride*o + a[o % period], stride*o + b[o % period]]`` for output ``o``.

    ``step``: the effective stride of the output pixels (input pixels per output pixel), which
    is ``stride`` except where a broadcast input made the field constant (``stride`` 0) while
    the output keeps the resolution of the map it was merged with."""

    stride: Fraction
    a: tuple[Fraction | None, ...]
    b: tuple[Fraction | None, ...]
    step: Fraction | None = None

    def __post_init__(self) -> None:
        if self.step is None:
            object.__setattr__(self, "step", self.stride)

    def __hash__(self) -> int:   # kept: fields are the keys of the summaries' memos
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.stride, self.a, self.b, self.step))
            object.__setattr__(self, "_hash", h)
        return h

    @property
    def period(self) -> int:
        return len(self.a)

    def interval(self, o: int) -> tuple[Fraction, Fraction] | None:
        r = o % self.period
        if self.a[r] is None:
            return None
        return self.stride * o + self.a[r], self.stride * o + self.b[r]

    @property
    def size(self) -> Fraction:
        """The widest field over output positions (1 for the input itself)."""
        spans = [b - a + 1 for a, b in zip(self.a, self.b) if a is not None]
        return max(spans) if spans else 0

    def through(self, w: Window) -> "Field":
        """The field after an op reading input pixels ``w`` for each output pixel."""
        if w.period == 1 and w.rate == 1 and w.lo[0] == 0 and w.hi[0] == 0:
            return self  # point-wise
        period = w.period
        while not ((w.rate * period).denominator == 1 and (w.rate * period) % self.period == 0):
            period += w.period
        stride = self.stride * w.rate
        a: list[Fraction | None] = []
        b: list[Fraction | None] = []
        for o in range(period):
            r = o % w.period
            if w.lo[r] is None:
                a.append(None)
                b.append(None)
                continue
            lo, hi = int(w.rate * o + w.lo[r]), int(w.rate * o + w.hi[r])
            first, last = self._hull(lo, hi)
            a.append(None if first is None else whole(first - stride * o))
            b.append(None if last is None else whole(last - stride * o))
        return Field(whole(stride), tuple(a), tuple(b), whole(self.step * w.rate))

    def _hull(self, lo: int, hi: int) -> tuple[Fraction | None, Fraction | None]:
        """Union of the fields of input pixels ``lo .. hi`` (one period is enough at each end)."""
        starts = [iv[0] for i in range(lo, min(hi, lo + self.period - 1) + 1)
                  if (iv := self.interval(i))]
        ends = [iv[1] for i in range(max(lo, hi - self.period + 1), hi + 1)
                if (iv := self.interval(i))]
        return (min(starts) if starts else None), (max(ends) if ends else None)


ORIGIN = Field(1, (0,), (0,))  # plain ints where exact; Fractions only after up-sampling


def whole(x: int | Fraction) -> int | Fraction:
    """A whole Fraction as an int: equal, with the same hash, and int arithmetic is many
    times faster (a transposed convolution's rate 1/2 makes Fractions of whole strides).

    >>> whole(Fraction(8, 2)), whole(Fraction(1, 2)), whole(3)
    (4, Fraction(1, 2), 3)
    """
    return int(x) if type(x) is Fraction and x.denominator == 1 else x


def broadcast(f: Field) -> Field:
    """The field of a size-1 axis read by every output position (a ``(C, 1, 1)`` gate times a
    map): the same pixels for every ``o``, i.e. stride 0.

    >>> broadcast(Field(224, (-3,), (626,))).interval(5)
    (-3, 626)
    """
    iv = f.interval(0)
    return f if iv is None else Field(0, (iv[0],), (iv[1],), 0)


def merge(fields: Iterable[Field], size: int | None = None) -> Field:
    """The union of the fields of a merge's inputs (inputs of one resolution share a stride;
    should they not, the largest stride is kept and the union taken position by position).

    With a broadcast input (stride 0, see :func:`broadcast`) the union is taken over the
    ``size`` output positions of the map and holds for each of them: exact when the broadcast
    field covers the others' (a squeeze-and-excitation gate pools the map it scales), else the
    hull of them all."""
    fields = list(fields)
    if len(fields) == 1:
        return fields[0]
    step = max(f.step for f in fields)
    if any(f.stride == 0 for f in fields) and size is not None:
        ivs = []
        for f in fields:
            ends = range(min(size, f.period)) if f.stride == 0 else \
                [*range(min(size, f.period)), *range(max(0, size - f.period), size)]
            ivs += [iv for o in ends if (iv := f.interval(o))]
        return Field(0, (min(iv[0] for iv in ivs),), (max(iv[1] for iv in ivs),), step)
    stride = max(f.stride for f in fields)
    period = lcm(*(f.period for f in fields))
    a: list[Fraction | None] = []
    b: list[Fraction | None] = []
    for o in range(period):
        ivs = [iv for f in fields if (iv := f.interval(o))]
        a.append(whole(min(iv[0] for iv in ivs) - stride * o) if ivs else None)
        b.append(whole(max(iv[1] for iv in ivs) - stride * o) if ivs else None)
    return Field(stride, tuple(a), tuple(b), step)
