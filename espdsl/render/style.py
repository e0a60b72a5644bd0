"""How a :class:`~espdsl.render.view.View` looks: labels, colours and clusters of a Digraph.

The look follows the ESPNet paper: boxes say what a node is and its (in, out) channels
("esp (64, 64)", "esp x 2 (alpha2)"), down-sampling nodes are red and up-sampling nodes green
(Fig. 4), a block's inside shows each convolution's kernel and dilation ("conv 3x3, d=4",
Fig. 1b), sums are small circles, and nodes are banded by spatial level l.

>>> import espdsl
>>> from espdsl.render.view import fold
>>> ir = espdsl.load("esp", M=100, N=100)
>>> op_text(ir.node("d4.conv"))
'conv 3x3, d=4'
"""
from __future__ import annotations

import dataclasses
import html
from typing import Callable

import graphviz

from ..ir import IR, Node, Scope
from ..ops import Shape, pair, pair_text, slice_range
from ..summary import block_label
from .view import GLOBAL, ROOT, Unit, View, level_runs, member_level

FONT = "Helvetica"
DOWN = ("#f8cecc", "#b85450")      # (fill, border): red, as in Fig. 4
UP = ("#d5e8d4", "#5f9e4f")        # green, as in Fig. 4
BLOCK = ("#dae8fc", "#6c8ebf")
OP = ("#f5f5f5", "#8c8c8c")
MERGE = ("#fff2cc", "#c9a227")     # concat and add
BANDS = ["#fcfcfc", "#f1f4f9", "#e6ecf5", "#dbe4f1", "#d0dcec"]

def _windowed(node: Node, in_channels: int | None) -> str:
    """Convolutions and pooling: 'conv 3x3, d=4', 'dwconv 3x3', 'avgpool 3x3, s=2', 'conv 3x1'
    (ERFNet's factorised convolutions), 'conv 1x3, d=2' (dilated along W only)."""
    a = node.attrs
    kh, kw = pair(a.get("kernel", 1))
    name = node.op
    extra = []
    groups = a.get("groups", 1) or 1
    if node.op == "conv" and groups > 1:
        if groups == in_channels:
            name = "dwconv"
        else:
            name, extra = "gconv", [f"g={groups}"]
    dh, dw = pair(a.get("dilation") or 1)
    # a dilation along an axis where the kernel is 1 changes nothing: not shown
    dh, dw = (dh if kh > 1 else 1), (dw if kw > 1 else 1)
    if max(dh, dw) > 1:
        extra.append(f"d={max(dh, dw)}" if dh == dw or 1 in (kh, kw) else f"d={dh}x{dw}")
    stride = a.get("stride") or a.get("kernel", 1)
    if max(pair(stride)) > 1:
        extra.append(f"s={pair_text(stride)}")
    if node.op in ("conv", "deconv") and a.get("bias"):
        extra.append("bias")
    return f"{name} {kh}x{kw}" + (", " + ", ".join(extra) if extra else "")


def _named(text: str) -> Callable[[Node, int | None], str]:
    return lambda node, in_channels: text


# how each op is written in a box: one entry per op of espdsl.ops.OPS
OP_TEXT: dict[str, Callable[[Node, int | None], str]] = {
    "input": _named("input"),
    "conv": _windowed,
    "deconv": _windowed,
    "avgpool": _windowed,
    "maxpool": _windowed,
    "linear": lambda node, c: f"linear{', bias' if node.attrs.get('bias') else ''}",
    "global_avgpool": _named("global avgpool"),
    "global_maxpool": _named("global maxpool"),
    "flatten": _named("flatten"),
    "batchnorm": _named("BN"),
    "affine": _named("BN (scale, shift)"),
    "prelu": _named("PReLU"),
    "relu": _named("ReLU"),
    "relu6": _named("ReLU6"),
    "hardsigmoid": _named("h-sigmoid"),
    "hardswish": _named("h-swish"),
    "sigmoid": _named("sigmoid"),
    "silu": _named("SiLU"),
    "mul": _named("\u00d7"),
    "slice": lambda node, c: ("channels {}:{}".format(*slice_range(node.attrs, c)) if c
                              else "slice"),
    "dropout": lambda node, c: f"dropout{'2d' if node.attrs.get('channelwise') else ''} "
                               f"p={node.attrs.get('p', 0.5):g}",
    "identity": _named("identity"),
    "concat": _named("concat"),
    "add": _named("+"),
    "shuffle": lambda node, c: f"shuffle, g={node.attrs['groups']}",
    "upsample": lambda node, c: (
        f"upsample x{node.attrs['scale']:g} ({node.attrs.get('mode', 'bilinear')})"
        if node.attrs.get("scale") is not None and len(node.inputs) < 2
        else f"resize ({node.attrs.get('mode', 'bilinear')})"),
    "depth_to_space": lambda node, c: f"depth-to-space x{node.attrs['factor']}",
    "stochastic_depth": lambda node, c: f"stochastic depth p={node.attrs.get('p', 0):g}",
    "layernorm": _named("LN"),
    "groupnorm": lambda node, c: f"GN, g={node.attrs['groups']}",
    "gelu": _named("GELU"),
    "scale": _named("scale"),
    "softmax": _named("softmax"),
    "tanh": _named("tanh"),
    "pad": lambda node, c: f"pad {pair_text(node.attrs['padding'])} ({node.attrs.get('mode', 'constant')})",
}


def op_text(node: Node, in_channels: int | None = None) -> str:
    """A primitive as the paper writes it: 'conv 1x1', 'conv 3x3, d=4', 'deconv 2x2, s=2'.

    A convolution with as many groups as input channels is depth-wise ('dwconv 3x3').
    """
    text = OP_TEXT.get(node.op)
    return text(node, in_channels) if text else node.op


def _conv_text(ir: IR, node: Node) -> str:
    return op_text(node, ir.node(node.inputs[0]).shape[0] if node.inputs else None)


def channels(in_shapes: list[Shape], out: Shape) -> str:
    """'(64, 64)'; several inputs are summed visibly: '(64+64+3, 131)'."""
    cin = "+".join(str(s[0]) for s in in_shapes) if in_shapes else "-"
    return f"({cin}, {out[0]})"


def shape_text(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _block_name(ir: IR, scope: Scope) -> str:
    """The block a scope instantiates; a repeat of ``{module}`` takes its copies' block."""
    if "{" in scope.block:
        kids = ir.children(scope.path)
        if kids:
            return kids[0].block
    return scope.block


def title(ir: IR, unit: Unit) -> str:
    """The first line of a unit's box."""
    scope = unit.scope
    if scope is None:
        return "input"
    if len(unit.nodes) == 1:
        return _conv_text(ir, ir.node(unit.nodes[0]))
    if scope.kind == "op":          # one spec op that a pass rewrote into several
        return " \u2192 ".join(_conv_text(ir, ir.node(n)) for n in unit.nodes)
    if scope.kind == "repeat":
        return block_label(dataclasses.replace(scope, block=_block_name(ir, scope)))
    if scope.kind == "seq":
        parts: list[list] = []          # runs of equal steps: [text, count]
        for kid in ir.children(scope.path):
            inner = ir.nodes_in(kid.path)
            text = _conv_text(ir, inner[0]) if len(inner) == 1 else _block_name(ir, kid)
            if parts and parts[-1][0] == text:
                parts[-1][1] += 1
            else:
                parts.append([text, 1])
        items = [text if count == 1 else f"{text} x {count}" for text, count in parts]
        if len(items) <= 3 and sum(map(len, items)) <= 48:
            return " \u2192 ".join(items)
        return "\n\u2192 ".join(items)     # a long chain: one run a line
    return _block_name(ir, scope)


def principal_op(ir: IR, unit: Unit) -> str | None:
    """The one convolution or linear layer of a folded block ('conv 3x3, s=2' in a conv_bn,
    'dwconv 3x3' in a depth-wise one), or None when it has none or several."""
    if unit.scope is None or unit.scope.kind != "block" or len(unit.nodes) < 2:
        return None
    layers = [ir.node(n) for n in unit.nodes if ir.node(n).op in ("conv", "deconv", "linear")]
    return _conv_text(ir, layers[0]) if len(layers) == 1 else None


def _style(ir: IR, unit: Unit) -> dict[str, str]:
    ops = {ir.node(n).op for n in unit.nodes}
    single = len(unit.nodes) == 1
    if unit.scope is None:
        return {"shape": "box", "style": "rounded,filled", "fillcolor": "white", "color": "#333333"}
    if single and ops == {"add"}:
        return {"shape": "circle", "style": "filled", "fillcolor": MERGE[0], "color": MERGE[1],
                "width": "0.32", "height": "0.32", "fixedsize": "true", "fontsize": "14"}
    if unit.sampling == "down":
        fill, line = DOWN
    elif unit.sampling == "up":
        fill, line = UP
    elif single and ops == {"concat"}:
        fill, line = MERGE
    elif single:
        fill, line = OP
    else:
        fill, line = BLOCK
    shape = "box3d" if unit.scope.kind == "repeat" else "box"
    style = "filled" if shape == "box3d" else "rounded,filled"
    return {"shape": shape, "style": style, "fillcolor": fill, "color": line}


def _local(path: str, container: str) -> str:
    return path[len(container) + 1:] if container and path.startswith(container + ".") else path


def node_label(ir: IR, unit: Unit, notes: list[str]) -> str:
    """An HTML-like label: bold title, (in, out) channels, the node's name, annotations."""
    esc = html.escape
    head = title(ir, unit)
    if unit.scope is None:
        return f'<<b>input</b><br/><font point-size="10">{esc(shape_text(unit.out_shape))}</font>>'
    if len(unit.nodes) == 1 and ir.node(unit.nodes[0]).op == "add":
        return "+"
    # a thin spacer line: the bold title's underscores ("inverted_residual") would otherwise
    # touch the line below
    lines = ["<b>" + "<br/>".join(esc(line) for line in head.split("\n")) + "</b>",
             '<font point-size="3"> </font>']
    detail = principal_op(ir, unit)
    if detail:
        lines.append(f'<font point-size="10">{esc(detail)}</font>')
    if ir.node(unit.nodes[-1]).op != "input":
        lines.append(f'<font point-size="10">{esc(channels(unit.in_shapes, unit.out_shape))}</font>')
    name = _local(unit.id, unit.container)
    kind = unit.scope.block if unit.scope.kind == "block" and len(unit.nodes) == 1 else ""
    tag = f"{name} \u00b7 {kind}" if kind and kind != name else name
    lines.append(f'<font point-size="9" color="#555555">{esc(tag)}</font>')
    if notes:
        lines.append(f'<font point-size="9" color="#1f4e79">{esc(" · ".join(notes))}</font>')
    return "<" + "<br/>".join(lines) + ">"


def cluster_label(ir: IR, path: str) -> str:
    scope = ir.scopes[path]
    kind = block_label(dataclasses.replace(scope, block=_block_name(ir, scope)))
    return f"{scope.name}: {kind} {channels(scope.in_shapes, scope.out_shape)}"


def level_text(level: float) -> str:
    if level == GLOBAL:
        return "global (1x1, vectors)"
    lv = int(level) if float(level).is_integer() else level
    return f"l = {lv}  (1/{2 ** lv:g})" if lv else "l = 0  (full size)"


def graph_label(ir: IR, view: View) -> str:
    esc = html.escape
    from ..paramtext import titled
    head = titled(ir.name, ir.params)
    sub = f"input {shape_text(ir.input_shape)} \u2192 output {shape_text(ir.output_shape)}"
    if ir.meta.get("passes"):
        sub += " \u00b7 optimized for inference"
    rows = [f'<tr><td colspan="2"><b>{esc(head)}</b></td></tr>',
            f'<tr><td colspan="2"><font point-size="10">{esc(sub)}</font></td></tr>']
    kinds = {u.sampling for u in view.units}
    legend = []
    if "down" in kinds:
        legend.append(f'<td bgcolor="{DOWN[0]}" border="1" color="{DOWN[1]}" width="110" height="18" fixedsize="true">'
                      '<font point-size="10"> down-sampling </font></td>')
    if "up" in kinds:
        legend.append(f'<td bgcolor="{UP[0]}" border="1" color="{UP[1]}" width="110" height="18" fixedsize="true">'
                      '<font point-size="10"> up-sampling </font></td>')
    if legend:
        rows.append('<tr><td colspan="2"><table border="0" cellspacing="6"><tr>'
                    + "".join(legend) + '<td width="1"></td></tr></table></td></tr>')
    return '<<table border="0" cellspacing="4" cellpadding="2">' + "".join(rows) + "</table>>"


def branch_groups(view: View, least: int = 3) -> list[list[str]]:
    """Parallel branches, drawn side by side as in Fig. 1b: ``least`` or more units fed only by
    one same unit, in one container at one spatial level (ESP's K dilated convolutions)."""
    feeds: dict[str, list[str]] = {}
    for e in view.edges:
        feeds.setdefault(e.head, []).append(e.tail)
    groups: dict[tuple, list[str]] = {}
    for u in view.units:
        tails = feeds.get(u.id, [])
        if len(tails) == 1:
            groups.setdefault((tails[0], u.container, u.level), []).append(u.id)
    return [g for g in groups.values() if len(g) >= least]


def digraph(view: View, *, rankdir: str = "TB", notes: Callable[[Unit], list[str]] | None = None,
            edge_labels: bool = False) -> graphviz.Digraph:
    """Draw the view: units as boxes inside their clusters and level bands, then the edges."""
    ir = view.ir
    g = graphviz.Digraph(name=ir.name, graph_attr={
        "rankdir": rankdir, "fontname": FONT, "labelloc": "t", "nodesep": "0.25",
        "ranksep": "0.3", "newrank": "true", "ordering": "out", "label": graph_label(ir, view), "fontsize": "14",
        "bgcolor": "white", "pad": "0.2",
    }, node_attr={"fontname": FONT, "fontsize": "12", "margin": "0.12,0.05", "penwidth": "1.2"},
        edge_attr={"fontname": FONT, "fontsize": "8", "fontcolor": "#666666",
                   "color": "#555555", "arrowsize": "0.6"})
    out_unit = view.unit_of[ir.output]

    def draw_unit(sub: graphviz.Digraph, unit: Unit) -> None:
        attrs = _style(ir, unit)
        if unit.id == out_unit:
            attrs["penwidth"] = "2.4"
        sub.node(unit.id, node_label(ir, unit, notes(unit) if notes else []), **attrs)

    def draw(sub: graphviz.Digraph, container: str) -> None:
        runs = level_runs(view, container)
        banded = len({lvl for lvl, _ in runs if lvl is not None}) > 1
        for i, (lvl, members) in enumerate(runs):
            if banded and lvl is not None:
                fill = BANDS[min(int(min(lvl, len(BANDS))), len(BANDS) - 1)] if lvl >= 0 else BANDS[0]
                with sub.subgraph(name=f"cluster_band:{container}:{i}") as band:
                    band.attr(label=level_text(lvl), labeljust="l", style="filled,rounded",
                              fillcolor=fill, color=fill, fontsize="10", fontcolor="#445566")
                    for m in members:
                        draw_member(band, m)
            else:
                for m in members:
                    draw_member(sub, m)

    def draw_member(sub: graphviz.Digraph, member: str) -> None:
        if member in view.opened:
            with sub.subgraph(name=f"cluster_{member}") as c:
                c.attr(label=cluster_label(ir, member), labeljust="l", style="rounded,dashed,filled",
                       fillcolor="white", color="#666666", fontsize="11")
                draw(c, member)
        else:
            draw_unit(sub, view.unit(member))

    draw(g, ROOT)
    for i, group in enumerate(branch_groups(view)):
        with g.subgraph(name=f"branches{i}") as row:
            row.attr(rank="same")
            for uid in group:
                row.node(uid)
    for e in view.edges:
        label = ", ".join(shape_text(s) for s in e.shapes) if edge_labels else None
        g.edge(e.tail, e.head, label=label)
    return g


__all__ = ["digraph", "op_text", "title", "channels", "member_level"]
