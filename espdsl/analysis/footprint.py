"""Footprints: for one output pixel of a node, how many paths lead to it from each input pixel.

The footprint of output pixel ``at`` of a node is the gradient of that pixel with respect to the
network input (summed over input channels) when every convolution weight is 1, every batch norm
and activation is the identity, every pooling or up-sampling window sums its support and every
merge adds: the number of paths through the graph from each input pixel to the output pixel.
Where it is not zero is the exact support (the pixels the output can depend on at all, image
borders and holes included); its bounding box is the receptive field.

It is computed over the IR, one rule per op (:data:`RULES`), backwards from the output pixel, on
the smallest window of each map that holds a non-zero value, so the cost follows the receptive
field, not the image. Channels are kept compressed: wherever a convolution with all-one weights
gives every input channel of a group the same map, that map is stored once.

Counts are computed in float64. While every value met on the way stays below 2^53 they are exact
integers and come back as ``int64`` (``Footprint.exact``); beyond, they are float64 with a
relative error of a few units in the last place per op (the support stays exact: a count of
paths never rounds to zero). ``exact=True`` computes in Python integers instead (numpy object
arrays: exact at any size, much slower).

>>> import espdsl
>>> fp = espdsl.footprint("c", M=1, N=1, n=3, dilation=2, input_size=(9, 9))
>>> print(fp.counts)
[[0 0 0 0 0 0 0 0 0]
 [0 0 0 0 0 0 0 0 0]
 [0 0 1 0 1 0 1 0 0]
 [0 0 0 0 0 0 0 0 0]
 [0 0 1 0 1 0 1 0 0]
 [0 0 0 0 0 0 0 0 0]
 [0 0 1 0 1 0 1 0 0]
 [0 0 0 0 0 0 0 0 0]
 [0 0 0 0 0 0 0 0 0]]
>>> fp.box, fp.holes
((2, 6, 2, 6), 16)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UsageError, did_you_mean
from ..ir import IR, Node
from ..ops import Shape, pair, slice_range
from .handlers import resample_window, upsample_window

EXACT_LIMIT = 2.0 ** 53     # float64 holds every integer below this exactly

# Taps of one op along one axis: output ``o = P*q + r`` reads input ``Q*q + t`` for each ``t``
# in ``taps[r]``.
Taps = tuple[int, int, list[list[int]]]


@dataclass
class Adjoint:
    """The path counts into one node's output, compressed: channel ``c`` holds the map
    ``rows[idx[c]]``, a window of the node's ``(H, W)`` map starting at ``origin``."""

    rows: np.ndarray            # (R, h, w)
    idx: np.ndarray             # (C,) row of each channel
    origin: tuple[int, int]     # (y0, x0) of the window in the node's map

    def channel_sum(self) -> np.ndarray:
        """The sum of the maps of all channels, (h, w)."""
        weights = np.bincount(self.idx, minlength=len(self.rows))[None, :]
        return _weighted_rows(weights, self.rows)[0]


@dataclass
class Footprint:
    """The footprint of one output pixel over a source map (see the module doc).

    ``counts``: paths from each source pixel (summed over the source's channels), ``(H, W)``;
    ``groups``: ``(label, counts)`` per channel group when asked for with ``channels="groups"``;
    ``exact``: the counts are exact integers (int64 or Python ints); ``box``: the support's
    bounding box ``(y0, y1, x0, x1)``, inclusive (None when empty)."""

    node: str
    at: tuple[int, int]
    source: str
    channels: str
    counts: np.ndarray
    exact: bool
    groups: list[tuple[str, np.ndarray]] = field(default_factory=list)

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return support_box(self.counts)

    @property
    def support(self) -> int:
        """Pixels reached by at least one path."""
        return int(np.count_nonzero(self.counts))

    @property
    def holes(self) -> int:
        """Pixels inside the bounding box that no path reaches."""
        box = self.box
        if box is None:
            return 0
        y0, y1, x0, x1 = box
        return (y1 - y0 + 1) * (x1 - x0 + 1) - self.support


def support_box(counts: np.ndarray) -> tuple[int, int, int, int] | None:
    """Inclusive bounding box ``(y0, y1, x0, x1)`` of the non-zero entries of a map."""
    ys, xs = np.nonzero(counts)
    if not len(ys):
        return None
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


# -- spatial transposes ----------------------------------------------------------------------

def _transpose_axis(a: np.ndarray, axis: int, o0: int, taps: Taps, n_in: int
                    ) -> tuple[np.ndarray, int]:
    """Scatter the values of outputs ``o0 .. o0 + len - 1`` (along ``axis``) to the inputs
    they read; returns the input window and its first index."""
    P, Q, phases = taps
    n = a.shape[axis]
    o1 = o0 + n - 1
    moves = []          # (first q, last q, r, t)
    for r, ts in enumerate(phases):
        qa, qb = -((r - o0) // P), (o1 - r) // P          # ceil((o0 - r) / P), floor(...)
        for t in ts:
            lo, hi = max(qa, -(t // Q)), min(qb, (n_in - 1 - t) // Q)   # 0 <= Q q + t < n_in
            if lo <= hi:
                moves.append((lo, hi, r, t))
    if not moves:
        shape = list(a.shape)
        shape[axis] = 0
        return np.zeros(shape, a.dtype), 0
    i0 = min(Q * lo + t for lo, hi, r, t in moves)
    i1 = max(Q * hi + t for lo, hi, r, t in moves)
    shape = list(a.shape)
    shape[axis] = i1 - i0 + 1
    out = np.zeros(shape, a.dtype)
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    for lo, hi, r, t in moves:
        src[axis] = slice(P * lo + r - o0, P * hi + r - o0 + 1, P)
        dst[axis] = slice(Q * lo + t - i0, Q * hi + t - i0 + 1, Q)
        out[tuple(dst)] += a[tuple(src)]
    return out, i0


def _transpose(adj: Adjoint, taps_h: Taps, taps_w: Taps, in_hw: tuple[int, int]
               ) -> tuple[np.ndarray, tuple[int, int]]:
    rows, y0 = _transpose_axis(adj.rows, 1, adj.origin[0], taps_h, in_hw[0])
    rows, x0 = _transpose_axis(rows, 2, adj.origin[1], taps_w, in_hw[1])
    return rows, (y0, x0)


def _window_taps(kernel: int, stride: int, padding: int, dilation: int) -> Taps:
    return 1, stride, [[-padding + dilation * j for j in range(kernel)]]


def _deconv_taps(kernel: int, stride: int, padding: int, dilation: int) -> Taps:
    phases = [[(r + padding - j * dilation) // stride for j in range(kernel)
               if (r + padding - j * dilation) % stride == 0] for r in range(stride)]
    return stride, 1, phases


def _resample_taps(window) -> Taps:
    """Taps from an analysis :class:`~espdsl.analysis.handlers.Window` whose ranges are read
    whole (up-sampling: one source pixel, or the two a bilinear output blends)."""
    P, rate = window.period, Fraction(window.rate)
    Q = rate * P
    assert Q.denominator == 1
    phases = [[] if window.lo[r] is None else
              list(range(int(rate * r + window.lo[r]), int(rate * r + window.hi[r]) + 1))
              for r in range(P)]
    return P, int(Q), phases


def _axes(node: Node, keys: tuple[str, ...]) -> list[tuple[int, ...]]:
    a = node.attrs
    return [tuple(pair(a[k])[axis] if k in a else 1 for k in keys) for axis in (0, 1)]


# -- channel mixing --------------------------------------------------------------------------

def _weighted_rows(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``weights @ rows`` over the first axis of ``rows``, as element-wise sums (no BLAS: a
    handful of rows, where BLAS's threads cost more than they save, and exact for Python
    integers)."""
    out = np.zeros((len(weights), *rows.shape[1:]), rows.dtype)
    for g, r in zip(*np.nonzero(weights)):
        w = int(weights[g, r])
        out[g] += rows[r] if w == 1 else rows[r] * w
    return out


def _group_sums(adj: Adjoint, groups: int) -> np.ndarray:
    """Per group of output channels, the sum of their maps: (groups, h, w)."""
    per = len(adj.idx) // groups
    weights = np.zeros((groups, len(adj.rows)), dtype=np.int64)
    np.add.at(weights, (np.arange(len(adj.idx)) // per, adj.idx), 1)
    return _weighted_rows(weights, adj.rows)


def _mixing(adj: Adjoint, groups: int, cin: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and channel index of the inputs of a ``groups``-grouped all-ones channel mix."""
    return _group_sums(adj, groups), np.arange(cin) // (cin // groups)


# -- rules: (node, input shapes, adjoint of the output) -> adjoint of each input (None: none) ---

Rule = Callable[[Node, list[Shape], Adjoint], list["Adjoint | None"]]


def _hw(shape: Shape) -> tuple[int, int]:
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def _convolution(taps: Callable[[int, int, int, int], Taps]) -> "Rule":
    """Convolution or transposed convolution: all-ones channel mixing per group, then the
    kernel's taps along each axis."""
    def rule(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
        rows, idx = _mixing(adj, node.attrs["groups"], ins[0][0])
        h, w = _axes(node, ("kernel", "stride", "padding", "dilation"))
        rows, origin = _transpose(Adjoint(rows, idx, adj.origin), taps(*h), taps(*w),
                                  _hw(ins[0]))
        return [Adjoint(rows, idx, origin)]
    return rule


_conv = _convolution(_window_taps)
_deconv = _convolution(_deconv_taps)


def _linear(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    rows, idx = _mixing(adj, 1, ins[0][0])
    return [Adjoint(rows, idx, (0, 0))]


def _same(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    return [adj]


def _pool(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    (kh, sh, ph), (kw, sw, pw) = _axes(node, ("kernel", "stride", "padding"))
    rows, origin = _transpose(adj, _window_taps(kh, sh, ph, 1), _window_taps(kw, sw, pw, 1),
                              _hw(ins[0]))
    return [Adjoint(rows, adj.idx, origin)]


def _global(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    h, w = _hw(ins[0])
    rows = np.broadcast_to(adj.rows[:, :1, :1], (len(adj.rows), h, w)).copy()
    return [Adjoint(rows, adj.idx, (0, 0))]


def _flatten(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    c, h, w = ins[0]
    values = adj.rows[adj.idx, 0, 0].reshape(c, h, w)
    return [Adjoint(values, np.arange(c), (0, 0))]


def _concat(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    out, start = [], 0
    for shape in ins:
        out.append(Adjoint(adj.rows, adj.idx[start:start + shape[0]], adj.origin))
        start += shape[0]
    return out


def _spread(adj: Adjoint, shape: Shape, out: Shape) -> Adjoint:
    """The adjoint of an input broadcast to ``out`` (sizes of 1 read by every position)."""
    rows, idx, origin = adj.rows, adj.idx, adj.origin
    if len(shape) == 3 and shape[1:] == (1, 1) and out[1:] != (1, 1):
        rows, origin = rows.sum(axis=(1, 2), keepdims=True), (0, 0)
    if shape[0] == 1 and out[0] != 1:
        rows, idx = _group_sums(Adjoint(rows, idx, origin), 1), np.zeros(1, dtype=np.int64)
    return Adjoint(rows, idx, origin)


def _merge(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    # add, and mul counted like add: a product's paths are those of its factors (the
    # derivative where the other factors are 1)
    return [_spread(adj, shape, node.shape) for shape in ins]


def _slice(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    start, stop = slice_range(node.attrs, ins[0][0])
    zero = len(adj.rows)
    rows = np.concatenate([adj.rows, np.zeros((1, *adj.rows.shape[1:]), adj.rows.dtype)])
    idx = np.full(ins[0][0], zero, dtype=np.int64)
    idx[start:stop] = adj.idx
    return [Adjoint(rows, idx, adj.origin)]


def _shuffle(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    c, g = ins[0][0], node.attrs["groups"]
    # input channel i * (c / g) + j becomes output channel j * g + i
    source = np.arange(c).reshape(g, c // g).T.reshape(-1)      # output k <- input source[k]
    idx = np.empty_like(adj.idx)
    idx[source] = adj.idx
    return [Adjoint(adj.rows, idx, adj.origin)]


def _upsample(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    mode = node.attrs["mode"]
    if len(ins) == 2:
        (_, hi, wi), (_, ho, wo) = ins[0], node.shape
        h, w = resample_window(Fraction(hi, ho), mode), resample_window(Fraction(wi, wo), mode)
    else:
        h = w = upsample_window(node.attrs["scale"], mode)
    rows, origin = _transpose(adj, _resample_taps(h), _resample_taps(w), _hw(ins[0]))
    return [Adjoint(rows, adj.idx, origin), None]


def _depth_to_space(node: Node, ins: list[Shape], adj: Adjoint) -> list[Adjoint | None]:
    s = node.attrs["factor"]
    c = node.shape[0]
    full = np.zeros((len(adj.rows), *(s * n for n in _hw(ins[0]))), adj.rows.dtype)
    y0, x0 = adj.origin
    full[:, y0:y0 + adj.rows.shape[1], x0:x0 + adj.rows.shape[2]] = adj.rows
    pieces = [full[adj.idx][:, i::s, j::s] for i in range(s) for j in range(s)]  # (i, j, c)
    return [Adjoint(np.concatenate(pieces), np.arange(s * s * c), (0, 0))]


RULES: dict[str, Rule] = {
    "conv": _conv,
    "deconv": _deconv,
    "linear": _linear,
    "batchnorm": _same,
    "affine": _same,
    "prelu": _same,
    "relu": _same,
    "relu6": _same,
    "hardsigmoid": _same,
    "hardswish": _same,
    "sigmoid": _same,
    "silu": _same,
    "dropout": _same,
    "identity": _same,
    "avgpool": _pool,
    "maxpool": _pool,
    "global_avgpool": _global,
    "global_maxpool": _global,
    "flatten": _flatten,
    "concat": _concat,
    "add": _merge,
    "mul": _merge,
    "slice": _slice,
    "shuffle": _shuffle,
    "upsample": _upsample,
    "depth_to_space": _depth_to_space,
}
"""How path counts flow back through each op. An op missing here stops :func:`footprint`
with an error naming it (never a silent zero): add one entry to support a new op."""


# -- the walk --------------------------------------------------------------------------------

def _combine(a: Adjoint | None, b: Adjoint) -> Adjoint:
    """The sum of two adjoints of the same node (paths arriving through two consumers)."""
    if a is None:
        return b
    (ay, ax), (by, bx) = a.origin, b.origin
    y0, x0 = min(ay, by), min(ax, bx)
    y1 = max(ay + a.rows.shape[1], by + b.rows.shape[1])
    x1 = max(ax + a.rows.shape[2], bx + b.rows.shape[2])
    keys, inverse = np.unique(a.idx * len(b.rows) + b.idx, return_inverse=True)
    rows = np.zeros((len(keys), y1 - y0, x1 - x0), a.rows.dtype)
    ra, rb = keys // len(b.rows), keys % len(b.rows)
    rows[:, ay - y0:ay - y0 + a.rows.shape[1], ax - x0:ax - x0 + a.rows.shape[2]] += a.rows[ra]
    rows[:, by - y0:by - y0 + b.rows.shape[1], bx - x0:bx - x0 + b.rows.shape[2]] += b.rows[rb]
    return Adjoint(rows, inverse.reshape(-1).astype(np.int64), (y0, x0))


def resolve_node(ir: IR, node: str | None) -> str:
    """The IR node a user's ``node`` names: an IR node, or a spec node (scope) standing for its
    output; the network output when None."""
    if node is None:
        return ir.output
    if node in ir.graph:
        return node
    if node in ir.scopes and ir.scopes[node].output:
        return ir.scopes[node].output
    names = [n.name for n in ir.nodes()] + [p for p in ir.scopes if p]
    raise UsageError(f"no node '{node}' in '{ir.name}'", None,
                     did_you_mean(node, names) or "see 'espdsl analyze --depth 4' for the names")


def resolve_source(ir: IR, node: str, source: str | None) -> str:
    """The node the footprint is measured over: the network input (None), ``"block"`` (the
    input of the spec node ``node`` names) or any node name."""
    if source is None:
        return "input"
    if source == "block":
        scope = ir.scopes.get(node)
        if scope is None or len(set(scope.inputs)) != 1:
            raise UsageError(f"source='block' needs a spec node with one input; '{node}' is "
                             f"{'not a spec node' if scope is None else 'fed by several'}",
                             None, "name a block instance such as 'level3.0', or a source node")
        return scope.inputs[0]
    return resolve_node(ir, source)


def parse_channels(channels: Any, count: int) -> tuple[int, int, str]:
    """``(start, stop, label)`` of the output channels to follow (None: all of them)."""
    if channels is None:
        return 0, count, "all"
    if isinstance(channels, int):
        start, stop = channels, channels + 1
    elif isinstance(channels, range) and channels.step == 1:
        start, stop = channels.start, channels.stop
    elif isinstance(channels, slice) and channels.step in (None, 1):
        start, stop = slice_range({"start": channels.start or 0, "stop": channels.stop}, count)
    elif isinstance(channels, (tuple, list)) and len(channels) == 2:
        start, stop = channels
    else:
        raise UsageError(f"channels must be an int, a range, (start, stop) or 'groups'; got "
                         f"{channels!r}", None, "e.g. channels=range(0, 16)")
    if not 0 <= start < stop <= count:
        raise UsageError(f"channels {start}:{stop} are outside the node's {count} channels", None,
                         f"pick channels in 0:{count}")
    return start, stop, f"{start}:{stop}"


def concat_pieces(ir: IR, name: str) -> list[tuple[str, int, int]]:
    """The channel ranges ``(label, start, stop)`` of the concat that makes ``name``'s channels,
    found back through channel-wise ops (batch norm, activations, a residual add)."""
    seen = set()
    todo = [name]
    while todo:
        node = ir.node(todo.pop(0))
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op == "concat":
            pieces, start = [], 0
            prefix = node.name.rsplit(".", 1)[0] + "." if "." in node.name else ""
            for src in node.inputs:
                c = ir.node(src).shape[0]
                label = src[len(prefix):] if src.startswith(prefix) else src
                pieces.append((label.split(".")[0] if "." in label else label, start, start + c))
                start += c
            return pieces
        if RULES.get(node.op) is _same or node.op == "add":
            todo.extend(node.inputs)
    raise UsageError(f"'{name}' is not made by a concat (through batch norms, activations and "
                     "adds)", None, "use channels=range(...) to pick channels")


def footprint_ir(ir: IR, node: str | None = None, at: Sequence[int] | None = None,
                 channels: Any = None, *, source: str | None = None,
                 exact: bool = False) -> Footprint:
    """The footprint of pixel ``at`` (default: the centre) of ``node`` (default: the output)
    over ``source`` (default: the network input; ``"block"``: the input of the spec node).

    ``channels``: the output channels whose paths are summed (None: all; an int, a range,
    ``(start, stop)``), or ``"groups"`` for one map per piece of the concat behind the node
    (``Footprint.groups``; ``counts`` is then their sum).

    >>> import espdsl
    >>> ir = espdsl.load("esp", M=20, N=20, K=3, input_size=(20, 20))
    >>> fp = footprint_ir(ir, channels="groups")
    >>> [(label, int((m > 0).sum())) for label, m in fp.groups]
    [('d1', 9), ('d2', 9), ('s4', 17)]
    """
    target = resolve_node(ir, node)
    src = resolve_source(ir, node if node is not None else "", source)
    shape = ir.node(target).shape
    h, w = _hw(shape)
    if at is None:
        at = (h // 2, w // 2)
    at = tuple(int(v) for v in at)
    if len(at) != 2 or not (0 <= at[0] < h and 0 <= at[1] < w):
        raise UsageError(f"pixel {','.join(map(str, at))} is outside '{target}' ({h}x{w})", None,
                         f"give y,x with 0 <= y < {h} and 0 <= x < {w}")
    if channels == "groups":
        pieces = concat_pieces(ir, target)
        groups = [(label, _run(ir, target, at, a, b, src, exact)) for label, a, b in pieces]
        total = sum(counts for _, (counts, _) in groups)
        return Footprint(target, at, src, "groups", _finish(total, exact,
                         all(ok for _, (_, ok) in groups))[0], all(ok for _, (_, ok) in groups),
                         [(label, _finish(c, exact, ok)[0]) for label, (c, ok) in groups])
    start, stop, label = parse_channels(channels, shape[0])
    counts, ok = _run(ir, target, at, start, stop, src, exact)
    counts, ok = _finish(counts, exact, ok)
    return Footprint(target, at, src, label, counts, ok)


def _finish(counts: np.ndarray, exact: bool, ok: bool) -> tuple[np.ndarray, bool]:
    if exact:
        return counts, True
    ok = ok and bool(counts.size == 0 or counts.max() < EXACT_LIMIT)
    return (counts.astype(np.int64) if ok else counts), ok


def _run(ir: IR, target: str, at: tuple[int, int], start: int, stop: int, source: str,
         exact: bool) -> tuple[np.ndarray, bool]:
    """Counts over ``source``'s map (summed over its channels) and whether they stayed exact."""
    dtype = object if exact else np.float64
    c = ir.node(target).shape[0]
    idx = np.ones(c, dtype=np.int64)
    idx[start:stop] = 0
    rows = np.array([[[1]], [[0]]], dtype=dtype)
    acc: dict[str, Adjoint] = {target: Adjoint(rows, idx, at)}
    peak = 1.0
    order = [n for n in ir.nodes()]
    position = {n.name: i for i, n in enumerate(order)}
    for node in reversed(order[:position[target] + 1]):
        adj = acc.pop(node.name, None)
        if adj is None:
            continue
        if node.name == source:
            acc[node.name] = adj
            break
        if node.op == "input":
            continue            # paths that bypass the source
        rule = RULES.get(node.op)
        if rule is None:
            raise UsageError(f"footprint has no rule for op '{node.op}' (node '{node.name}')",
                             node.loc, "add an entry to espdsl.analysis.footprint.RULES; ops "
                             "with rules: " + ", ".join(sorted(RULES)))
        ins = [ir.node(i).shape for i in node.inputs]
        for name, new in zip(node.inputs, rule(node, ins, adj)):
            if new is None:
                continue
            if not exact and new.rows.size:
                peak = max(peak, float(np.abs(new.rows).max()))
            acc[name] = _combine(acc.get(name), new)
    h, w = _hw(ir.node(source).shape)
    out = np.zeros((h, w), dtype=dtype)
    adj = acc.get(source)
    if adj is not None and adj.rows.size:
        y0, x0 = adj.origin
        total = adj.channel_sum()
        out[y0:y0 + total.shape[0], x0:x0 + total.shape[1]] = total
    return out, peak < EXACT_LIMIT


def footprint(spec_or_ir: Any, node: str | None = None, at: Sequence[int] | None = None,
              channels: Any = None, *, input_size: Sequence[int] | None = None,
              source: str | None = None, exact: bool = False, blocks: Sequence[str] = (),
              **params: Any) -> Footprint:
    """The footprint of one output pixel of a spec (a zoo/block name, a path or a loaded IR,
    with user ``blocks`` folders as in :func:`espdsl.load`); see :func:`footprint_ir` and the
    module doc.

    >>> import espdsl
    >>> fp = espdsl.footprint("espnet_c", input_size=(64, 128), alpha3=3)
    >>> fp.node, fp.at, fp.box, fp.exact
    ('classifier.conv', (4, 8), (0, 63, 0, 127), False)
    """
    if isinstance(spec_or_ir, IR):
        ir = spec_or_ir
    else:
        from ..loading import load
        ir = load(spec_or_ir, input_size=input_size, blocks=blocks, **params)
    return footprint_ir(ir, node, at, channels, source=source, exact=exact)
