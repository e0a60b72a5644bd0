"""What a picture of an IR shows: the IR folded into drawn units, clusters and edges.

Rendering never draws the flat op graph of a network; it draws the nodes a user wrote. A set of
*opened* scopes decides the zoom: every IR node is drawn as (folded into) the outermost scope
on its path that is not opened, or as itself when every scope on its path is opened. Opened
scopes other than the root become clusters. By default the root is opened, and so is every
nested *model* (ESPNet's ``encoder`` is the ESPNet-C model), so ESPNet reads like the paper's
Fig. 4d; ``expand`` opens more (a block shows its inside like Fig. 1b; ``"all"`` opens
everything, down to the primitives).

Edges: an IR edge ``u -> v`` is drawn as ``unit(u) -> unit(v)`` when the two units differ; edges
inside one unit vanish, and several IR edges between the same two units are drawn once.

Nothing here knows about graphviz: this module is plain data, styled by :mod:`.style`.

>>> import espdsl
>>> v = fold(espdsl.load("esp", M=100, N=100))
>>> len(v.units), len(v.edges)
(13, 20)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from ..errors import UsageError, did_you_mean
from ..ir import IR, Node, Scope
from ..ops import Shape, spatial

ROOT = ""
GLOBAL = math.inf      # the level of vectors and 1 x 1 maps made from larger ones


@dataclass
class Unit:
    """One drawn box: a folded scope, a primitive node, or the network input."""

    id: str                       # the scope path, or the IR node name for the input
    container: str                # the opened scope it is drawn in ('' for the root)
    nodes: list[str]              # the IR nodes folded into it, in execution order
    scope: Scope | None           # the folded scope (None for the input)
    in_shapes: list[Shape]
    out_shape: Shape
    level: float                  # spatial level l = log2(input H / output H); GLOBAL for 1x1

    @property
    def sampling(self) -> str | None:
        """'down' when the unit shrinks the feature map (global pooling too: a vector counts as
        1 x 1), 'up' when it grows it, else None."""
        if not self.in_shapes:
            return None
        h_in = max(spatial(s)[0] for s in self.in_shapes)
        h_out = spatial(self.out_shape)[0]
        if h_out < h_in:
            return "down"
        if h_out > h_in:
            return "up"
        return None


@dataclass
class Edge:
    """One drawn edge standing for one or more IR edges between two units."""

    tail: str
    head: str
    shapes: list[Shape] = field(default_factory=list)   # distinct shapes carried, in order


@dataclass
class View:
    """The folded picture of an IR."""

    ir: IR
    opened: list[str]                 # opened scope paths (the root first), in IR order
    units: list[Unit]                 # in execution order of their first node
    edges: list[Edge]                 # in execution order of the head's first IR edge
    unit_of: dict[str, str]           # IR node name -> unit id

    def unit(self, unit_id: str) -> Unit:
        if not hasattr(self, "_by_id"):
            self._by_id = {u.id: u for u in self.units}
        return self._by_id[unit_id]

    def members(self, container: str) -> list[str]:
        """Units and opened child scopes drawn directly in ``container``, in flow order."""
        units = [u.id for u in self.units if u.container == container]
        clusters = [p for p in self.opened if p and self.ir.scopes[p].parent == container]
        return units + clusters

    def member_of(self, unit_id: str, container: str) -> str | None:
        """The member of ``container`` that holds unit ``unit_id`` (itself or a cluster)."""
        unit = self.unit(unit_id)
        if unit.container == container:
            return unit.id
        path = unit.container
        while path and self.ir.scopes[path].parent != container:
            path = self.ir.scopes[path].parent or ""
        return path or None


def spatial_level(in_h: int, out_h: int) -> float:
    """l = log2(input H / output H): 0 at full resolution, 3 at 1/8 (whole when exact);
    :data:`GLOBAL` for a 1 x 1 output of a larger input (global pooling, vectors).

    >>> spatial_level(224, 28), spatial_level(224, 1)
    (3.0, inf)
    """
    if out_h == 1 < in_h:
        return GLOBAL
    l = math.log2(in_h / out_h) if out_h else 0.0
    return float(round(l)) if abs(l - round(l)) < 1e-9 else round(l, 2)


def _prefixes(path: str) -> list[str]:
    parts = path.split(".") if path else []
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def default_opened(ir: IR, models: Iterable[str]) -> set[str]:
    """The root, plus every scope instantiating a model (a network nested in a network)."""
    names = set(models)
    opened = {ROOT}
    for scope in ir.scopes.values():
        if scope.path and scope.kind == "block" and scope.block in names:
            opened.update(p for p in _prefixes(scope.path) if p in ir.scopes)
    return opened


def expandable(ir: IR) -> list[str]:
    """Scope paths that hold more than one spec node (what ``--expand`` accepts)."""
    return [s.path for s in ir.scopes.values() if s.path and s.kind != "op" and ir.children(s.path)]


def resolve_expand(ir: IR, expand: str | Iterable[str] | None, opened: set[str]) -> set[str]:
    """Add the scopes named by ``expand`` ('all', a path, or several; commas allowed)."""
    if expand is None:
        return opened
    items = [expand] if isinstance(expand, str) else list(expand)
    names = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    out = set(opened)
    for name in names:
        if name == "all":
            out.update(s.path for s in ir.scopes.values() if s.kind != "op")
            continue
        if name not in ir.scopes:
            choices = expandable(ir)
            guess = did_you_mean(name, choices)
            raise UsageError(f"cannot expand '{name}': {ir.name} has no node of that name",
                             None, guess or "expandable nodes: " + ", ".join(choices[:12])
                             + (", ..." if len(choices) > 12 else "") + " (or 'all')")
        scope = ir.scopes[name]
        if scope.kind == "op" or not ir.children(name):
            raise UsageError(f"cannot expand '{name}': it is a single {scope.block} op", None,
                             "expand a block, repeat or seq node, or 'all'")
        out.update(p for p in _prefixes(name) if p in ir.scopes)
    return out


def fold(ir: IR, opened: set[str] | None = None) -> View:
    """Fold the IR's nodes into drawn units (see the module doc for the rule)."""
    opened = {ROOT} if opened is None else set(opened) | {ROOT}
    in_h = ir.node("input").shape[1]
    units: dict[str, Unit] = {}
    unit_of: dict[str, str] = {}
    for node in ir.nodes():
        uid = _unit_id(ir, node, opened)
        unit_of[node.name] = uid
        if uid in units:
            units[uid].nodes.append(node.name)
            continue
        scope = ir.scopes.get(uid) if node.op != "input" else None
        if scope is not None:
            in_shapes, out_shape = list(scope.in_shapes), scope.out_shape
            container = scope.parent or ROOT
        else:
            in_shapes = [ir.node(i).shape for i in node.inputs]
            out_shape, container = node.shape, _container(ir, node, opened)
        units[uid] = Unit(uid, container, [node.name], scope, in_shapes, out_shape,
                          spatial_level(in_h, spatial(out_shape)[0]))
    edges: dict[tuple[str, str], Edge] = {}
    for node in ir.nodes():
        for src in dict.fromkeys(node.inputs):
            tail, head = unit_of[src], unit_of[node.name]
            if tail == head:
                continue
            edge = edges.setdefault((tail, head), Edge(tail, head))
            shape = ir.node(src).shape
            if shape not in edge.shapes:
                edge.shapes.append(shape)
    order = [p for p in ir.scopes if p in opened]
    return View(ir, order, list(units.values()), list(edges.values()), unit_of)


def _unit_id(ir: IR, node: Node, opened: set[str]) -> str:
    for path in _prefixes(node.scope):
        if path in ir.scopes and path not in opened:
            return path
    return node.name


def _container(ir: IR, node: Node, opened: set[str]) -> str:
    inner = [p for p in _prefixes(node.scope) if p in ir.scopes and p in opened]
    return inner[-1] if inner else ROOT


def flow_order(view: View, container: str) -> list[str]:
    """Members of ``container`` in a topological order that keeps equal spatial levels together.

    Greedy: among the members whose inputs are placed, take one at the level just placed if
    there is one, else the one created first. So ESPNet-C's level-2 input pyramid comes after
    every level-1 node, and ESPNet's decoder reads l = 3, 2, 1, 0.
    """
    members = view.members(container)
    index = {m: i for i, m in enumerate(members)}
    level = {m: member_level(view, m) for m in members}
    import networkx as nx
    g = nx.DiGraph()
    g.add_nodes_from(members)
    for e in view.edges:
        a, b = view.member_of(e.tail, container), view.member_of(e.head, container)
        if a in index and b in index and a != b:
            g.add_edge(a, b)
    waiting = {m: g.in_degree(m) for m in members}
    ready = [m for m in members if not waiting[m]]
    order: list[str] = []
    last: float | None = None
    while ready:
        same = [m for m in ready if level[m] == last]
        pick = min(same or ready, key=index.__getitem__)
        ready.remove(pick)
        order.append(pick)
        last = level[pick]
        for nxt in g.successors(pick):
            waiting[nxt] -= 1
            if not waiting[nxt]:
                ready.append(nxt)
    return order


def member_level(view: View, member: str) -> float | None:
    """A unit's level, or a cluster's when all its units share one (None when they do not)."""
    levels = {u.level for u in view.units if u.id == member or _inside(u.container, member)}
    return levels.pop() if len(levels) == 1 else None


def _inside(path: str, scope: str) -> bool:
    return bool(scope) and (path == scope or path.startswith(scope + "."))


def level_runs(view: View, container: str) -> list[tuple[float | None, list[str]]]:
    """Consecutive members (in :func:`flow_order`) at the same spatial level: the level bands.

    A cluster spanning several levels forms a run of its own with level None (no band).
    """
    runs: list[tuple[float | None, list[str]]] = []
    for m in flow_order(view, container):
        lvl = member_level(view, m)
        if runs and lvl is not None and runs[-1][0] == lvl:
            runs[-1][1].append(m)
        else:
            runs.append((lvl, [m]))
    return runs
