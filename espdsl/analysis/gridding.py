"""Gridding, measured on footprints: the holes a dilated convolution leaves, and where the paths
of each channel group land.

For one output pixel (the centre by default) and each output channel group (the pieces of the
concat behind the node; the whole node when there is none) :func:`gridding` reads the footprint
(:mod:`.footprint`) and reports:

* ``holes``: the share of pixels inside the support's bounding box (the receptive field) that
  no path reaches;
* ``lattice``: the greatest common divisor of the offsets of the reached pixels from the centre
  pixel, per axis: 1 is the full grid; 2 means every reached pixel sits at an even offset (the
  sublattice a stack of rate-2 convolutions can never leave);
* ``odd``: the share of the path-count mass at pixels with an odd offset along at least one
  axis (0 on a sublattice of step 2; 3/4 when the mass is spread evenly over the four parity
  classes);
* ``spread``: the participation ratio ``(sum c)^2 / (sum c^2) / support``: 1 when every reached
  pixel carries the same count, small when a few pixels carry most paths.

>>> rows = gridding_ir(stack("esp", 1, K=3, hff=False))
>>> [(r["group"], r["support"], round(r["holes"], 3), r["lattice"]) for r in rows]
[('d1', 9, 0.0, 1), ('d2', 9, 0.64, 2), ('d4', 9, 0.889, 4), ('all', 25, 0.691, 1)]
"""
from __future__ import annotations

from math import gcd
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from ..ir import IR
from .footprint import concat_pieces, footprint_ir, support_box

FIELDS = ["group", "channels", "support", "box", "holes", "lattice", "odd", "spread"]


def grid_stats(counts: np.ndarray, centre: tuple[int, int]) -> dict[str, Any]:
    """The gridding figures of one footprint (see the module doc); ``centre``: the source pixel
    the offsets are measured from.

    >>> c = np.zeros((5, 5), dtype=np.int64); c[::2, ::2] = 1
    >>> s = grid_stats(c, (2, 2)); s["support"], s["holes"], s["lattice"], s["odd"]
    (9, 0.64, 2, 0.0)
    """
    box = support_box(counts)
    if box is None:
        return {"support": 0, "box": None, "holes": None, "lattice": None, "odd": None,
                "spread": None}
    y0, y1, x0, x1 = box
    ys, xs = np.nonzero(counts)
    values = counts[ys, xs].astype(np.float64)
    dy, dx = ys - centre[0], xs - centre[1]
    gy, gx = (int(np.gcd.reduce(np.abs(d))) for d in (dy, dx))
    # all offsets 0 along an axis (a 1-pixel-wide footprint): that axis sets no lattice
    lattice = gcd(gy, gx) if gy and gx else (gy or gx or 1)
    total = values.sum()
    odd = float(values[(dy % 2 != 0) | (dx % 2 != 0)].sum() / total)
    area = (y1 - y0 + 1) * (x1 - x0 + 1)
    return {"support": int(len(ys)), "box": (y1 - y0 + 1, x1 - x0 + 1),
            "holes": 1 - len(ys) / area, "lattice": lattice, "odd": odd,
            "spread": float(total ** 2 / (values ** 2).sum() / len(ys))}


def source_centre(ir: IR, node: str, at: tuple[int, int], source: str) -> tuple[int, int]:
    """The source pixel under output pixel ``at``: the centre of the footprint of a single
    path-count probe, i.e. of the support's bounding box when the field is symmetric."""
    fp = footprint_ir(ir, node, at, source=source)
    y0, y1, x0, x1 = fp.box
    return (y0 + y1) // 2, (x0 + x1) // 2


def gridding_ir(ir: IR, node: str | None = None, at: Sequence[int] | None = None, *,
                source: str | None = None) -> list[dict[str, Any]]:
    """One row per output channel group of ``node`` (default: the output) plus ``all``: the
    figures of :func:`grid_stats` for pixel ``at`` (default: the centre)."""
    try:
        concat_pieces(ir, ir.output if node is None else _output(ir, node))
        fp = footprint_ir(ir, node, at, "groups", source=source)
        groups = fp.groups
    except UsageError as exc:
        if "not made by a concat" not in exc.message:
            raise
        fp, groups = footprint_ir(ir, node, at, source=source), []
    box = fp.box
    centre = ((box[0] + box[1]) // 2, (box[2] + box[3]) // 2) if box else (0, 0)
    pieces = dict((label, (a, b)) for label, a, b in
                  (concat_pieces(ir, fp.node) if groups else []))
    rows = []
    for label, counts in [*groups, ("all", fp.counts)]:
        a, b = pieces.get(label, (0, ir.node(fp.node).shape[0]))
        rows.append({"group": label, "channels": f"{a}:{b}", **grid_stats(counts, centre)})
    return rows


def _output(ir: IR, node: str) -> str:
    from .footprint import resolve_node
    return resolve_node(ir, node)


def stack(block: str, depth: int, *, channels: int = 100, size: int | None = None,
          **params: Any) -> IR:
    """``depth`` copies of a library block (``channels`` in and out, parameters ``params``) as
    one network, at a square input large enough for the stack's receptive field (``size``).

    >>> stack("esp", 2, K=3).output_shape
    (1, 100, 65, 65)
    """
    from ..registry import default_registry
    from ..resolve import resolve
    from ..spec import parse_spec
    args = ", ".join(f"{k}: {_yaml(v)}" for k, v in params.items())
    size = size or 32 * depth + 1
    text = (f"model: {block}_x{depth}\ninput: {{channels: {channels}, size: [{size}, {size}]}}\n"
            f"nodes:\n  - {{name: m, block: {block}, N: {channels}"
            f"{', ' + args if args else ''}, repeat: {depth}}}\n")
    reg = default_registry()
    return resolve(parse_spec(text), {}, registry=reg)


def dilated_stack(rates: Sequence[int], *, channels: int = 1, kernel: int = 3,
                  size: int | None = None) -> IR:
    """A plain stack of ``kernel`` x ``kernel`` convolutions with the given dilation rates (the
    stacks of HDC, Wang et al. 2018), ``channels`` wide.

    >>> dilated_stack([2, 2]).output_shape
    (1, 1, 19, 19)
    """
    from ..registry import default_registry
    from ..resolve import resolve
    from ..spec import parse_spec
    field = 1 + sum((kernel - 1) * r for r in rates)
    size = size or 2 * field + 1
    name = "dilated_" + "_".join(map(str, rates))
    nodes = "".join(f"  - {{name: l{i}, op: conv, out: {channels}, kernel: {kernel}, "
                    f"dilation: {r}}}\n" for i, r in enumerate(rates))
    text = f"model: {name}\ninput: {{channels: {channels}, size: [{size}, {size}]}}\nnodes:\n{nodes}"
    return resolve(parse_spec(text), {}, registry=default_registry())


def _yaml(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def hdc_m(rates: Sequence[int]) -> list[int]:
    """HDC's recursion (Wang et al., WACV 2018, eq. 4), ``M_n = r_n`` and
    ``M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i)``: the largest gap between
    two reached pixels of the stack's layers ``i .. n``; ``[M_1, ..., M_n]``.

    >>> hdc_m([1, 2, 5]), hdc_m([2, 2, 2])
    ([1, 2, 5], [2, 2, 2])
    """
    m = [rates[-1]]
    for r in reversed(rates[:-1]):
        m.insert(0, max(m[0] - 2 * r, m[0] - 2 * (m[0] - r), r))
    return m


def hdc_ok(rates: Sequence[int]) -> bool:
    """HDC's rule followed down to the first layer: no holes when ``M_1 <= 1``. (The paper
    states the goal as ``M_2 <= kernel`` with rates that share no factor; that alone passes
    stacks whose first layer already grids, such as rates 2, 3.)

    >>> hdc_ok([1, 2, 5]), hdc_ok([2, 2, 2]), hdc_ok([1, 2, 9])
    (True, False, False)
    """
    return hdc_m(rates)[0] <= 1


def node_paths(ir: IR, depth: int = 1) -> list[str]:
    """The spec nodes down to ``depth`` levels (as ``espdsl analyze`` lists them) whose output
    is a feature map, in order."""
    out = []

    def visit(path: str, level: int) -> None:
        for scope in ir.children(path):
            if scope.output and len(ir.node(scope.output).shape) == 3:
                out.append(scope.path)
            if level < depth:
                visit(scope.path, level + 1)
    visit("", 1)
    return out


def gridding_nodes(ir: IR, depth: int = 1) -> list[dict[str, Any]]:
    """:func:`gridding_ir` of the centre pixel of every spec node down to ``depth``, one row per
    node and channel group, with ``node`` and ``over`` added: each node is measured over its own
    input (a module at its own resolution, as the receptive field ``rf_own``), or over the
    network input when it has several."""
    rows = []
    for path in node_paths(ir, depth):
        scope = ir.scopes[path]
        source = "block" if len(set(scope.inputs)) == 1 else None
        over = scope.inputs[0] if source else "input"
        rows += [{"node": path, "over": over, **row} for row in gridding_ir(ir, path, source=source)]
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One line for a module: the hole share of the summed map and each group's lattice.

    >>> summary(gridding_ir(stack("esp", 1, K=3)))
    '69.1% holes; lattice 1 (groups 1,2,2)'
    """
    total = rows[-1]
    text = f"{total['holes']:.1%} holes; lattice {total['lattice']}"
    if len(rows) > 1:
        text += " (groups " + ",".join(str(r["lattice"]) for r in rows[:-1]) + ")"
    return text
