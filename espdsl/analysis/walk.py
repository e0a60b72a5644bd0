"""The generic walk: one pass over the IR applying :data:`~espdsl.analysis.handlers.HANDLERS`,
then folding the per-node figures into every scope (block, repeat, seq, op) of the spec.

Definitions (see ``docs/analysis.md``):

* ``params``: trainable parameters from :mod:`espdsl.ops` (split ``conv``, ``bias``, ``bn``,
  ``prelu``).
* ``macs``, ``elementwise``: see :mod:`espdsl.analysis.handlers`; times the batch.
* ``memory.fig3g``: Fig. 3g's convention, the bytes of the outputs of the convolutions inside
  the scope (4 bytes a value; ``fig3g_mb`` divides by 2^20).
* ``memory.peak``: bytes of the tensors alive at the worst moment when the scope runs alone in
  topological order (inference): its inputs are held by the caller the whole time and count; a
  tensor is freed right after its last consumer inside the scope has run; values used outside
  the scope (its outputs) live to the end.
* ``rf``, ``stride``: receptive field (pixels of the network input, along one axis; the widest
  over output positions) and effective stride of the scope's output, exact through strides,
  dilation, parallel branches and up-sampling (:mod:`.field`). Each axis is followed on its own
  (``field`` along H, ``field_w`` along W): ``rf`` is a number when both agree and ``(h, w)``
  when a rectangular kernel, stride or up-sampling makes them differ; ``rf_h``, ``rf_w`` are
  always numbers. An input of size 1 along an axis that meets a larger one in a merge (a
  ``(C, 1, 1)`` gate times a map) is broadcast: every output position reads all of its field.
  ``rf_own``, ``stride_own``: the same measured from the scope's own inputs (a module's own
  receptive field, as in Fig. 3g).

>>> import espdsl
>>> a = espdsl.analyze("esp", M=100, N=100, K=5)
>>> a.totals.params_by_kind["conv"], a.totals.rf, round(a.totals.memory.fig3g_mb, 4)
(20000, 33, 1.4355)
"""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

from ..errors import UsageError, did_you_mean
from ..ir import IR, Node, Scope
from ..ops import OPS, numel, spatial
from .field import ORIGIN, Field, broadcast, merge
from .handlers import COUNTED, HANDLERS, Work
from .. import liveness
from ..liveness import BYTES_PER_VALUE

MB = 2 ** 20


Fields = tuple[Field, Field]     # along H, along W


def _number(x: Fraction) -> int | float:
    return int(x) if x.denominator == 1 else float(x)


def _both(h: Fraction, w: Fraction) -> int | float | tuple:
    return _number(h) if h == w else (_number(h), _number(w))


class Memory:
    """Activation memory in bytes, in the two conventions (see the module doc); the peak is
    computed when first read."""

    def __init__(self, fig3g: int = 0, peak: int | Callable[[], int] = 0):
        self.fig3g = fig3g
        self._peak = peak

    @property
    def peak(self) -> int:
        if callable(self._peak):
            self._peak = self._peak()
        return self._peak

    @property
    def fig3g_mb(self) -> float:
        return self.fig3g / MB

    @property
    def peak_mb(self) -> float:
        return self.peak / MB

    def __repr__(self) -> str:
        return f"Memory(fig3g={self.fig3g}, peak={self.peak})"


@dataclass
class Stats:
    """The figures of one IR node or one scope."""

    name: str
    label: str                     # op name, or what the scope is ('esp', 'esp x 2', 'seq')
    shape: tuple[int, ...]         # output (N, C, H, W)
    params: int = 0
    params_by_kind: dict[str, int] = dc_field(default_factory=dict)
    macs: int = 0
    macs_by_op: dict[str, int] = dc_field(default_factory=dict)
    elementwise: int = 0
    elementwise_by_op: dict[str, int] = dc_field(default_factory=dict)
    ignored: dict[str, int] = dc_field(default_factory=dict)   # op -> nodes deliberately not counted
    unknown: dict[str, int] = dc_field(default_factory=dict)   # op -> nodes no handler knows
    memory: Memory = dc_field(default_factory=Memory)
    field: Field = ORIGIN          # receptive field from the network input, along H (.field)
    field_w: Field = ORIGIN        # the same along W
    own: Callable[[], Fields] | None = dc_field(default=None, repr=False)  # computes fields_own

    @property
    def fields_own(self) -> Fields:
        """The receptive fields (H, W) measured from the scope's own inputs (on demand)."""
        if self.own is not None:
            self._fields_own, self.own = self.own(), None
        return getattr(self, "_fields_own", (ORIGIN, ORIGIN))

    @property
    def field_own(self) -> Field:
        return self.fields_own[0]

    @property
    def rf_exact(self) -> Fraction:
        """Along H (see ``rf_w`` for W)."""
        return self.field.size

    @property
    def stride_exact(self) -> Fraction:
        return self.field.step

    @property
    def rf_h(self) -> int | float:
        return _number(self.field.size)

    @property
    def rf_w(self) -> int | float:
        return _number(self.field_w.size)

    @property
    def rf(self) -> int | float | tuple:
        """The receptive field; ``(h, w)`` where the axes differ."""
        return _both(self.field.size, self.field_w.size)

    @property
    def stride(self) -> int | float | tuple:
        return _both(self.field.step, self.field_w.step)

    @property
    def rf_own(self) -> int | float | tuple:
        h, w = self.fields_own
        return _both(h.size, w.size)

    @property
    def stride_own(self) -> int | float | tuple:
        h, w = self.fields_own
        return _both(h.step, w.step)

    def add(self, other: "Stats") -> None:
        """Add the additive figures of ``other`` (params, MACs, work, Fig. 3g memory)."""
        self.params += other.params
        self.macs += other.macs
        self.elementwise += other.elementwise
        self.memory.fig3g += other.memory.fig3g
        for mine, theirs in ((self.params_by_kind, other.params_by_kind),
                             (self.macs_by_op, other.macs_by_op),
                             (self.elementwise_by_op, other.elementwise_by_op),
                             (self.ignored, other.ignored), (self.unknown, other.unknown)):
            for key, value in theirs.items() if theirs else ():
                mine[key] = mine.get(key, 0) + value

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able figures."""
        return {
            "name": self.name, "block": self.label, "shape": list(self.shape),
            "params": self.params, "params_by_kind": dict(self.params_by_kind),
            "macs": self.macs, "macs_by_op": dict(self.macs_by_op),
            "elementwise": self.elementwise, "elementwise_by_op": dict(self.elementwise_by_op),
            "ignored": dict(self.ignored), "unknown": dict(self.unknown),
            "memory_fig3g_bytes": self.memory.fig3g, "memory_peak_bytes": self.memory.peak,
            "memory_fig3g_mb": self.memory.fig3g_mb, "memory_peak_mb": self.memory.peak_mb,
            "rf": _plain(self.rf), "stride": _plain(self.stride), "rf_own": _plain(self.rf_own),
            "stride_own": _plain(self.stride_own),
        }


class Analysis:
    """Per-node and per-scope figures of one resolved IR (from :func:`analyze`)."""

    def __init__(self, ir: IR, nodes: dict[str, Stats], scopes: dict[str, Stats]):
        self.ir = ir
        self.nodes = nodes      # IR node name -> Stats
        self.scopes = scopes    # scope path -> Stats ('' is the whole network)

    @property
    def totals(self) -> Stats:
        return self.scopes[""]

    def scope(self, path: str) -> Stats:
        """Figures of a scope path ('' = total), or of a single IR node by name.

        >>> import espdsl
        >>> espdsl.analyze("espnet_c", alpha3=3).scope("level2_0").params
        9156
        """
        if path in self.scopes:
            return self.scopes[path]
        if path in self.nodes:
            return self.nodes[path]
        raise UsageError(f"'{path}' is neither a scope nor a node of {self.ir.name}", None,
                         did_you_mean(path, list(self.scopes) + list(self.nodes)))

    def rows(self, depth: int = 1) -> list[tuple[int, Scope, Stats]]:
        """``(level, scope, stats)`` for the spec's nodes down to ``depth`` levels, in order."""
        out: list[tuple[int, Scope, Stats]] = []
        children: dict[str, list[Scope]] = {}
        for scope in self.ir.scopes.values():
            if scope.parent is not None:
                children.setdefault(scope.parent, []).append(scope)

        def visit(path: str, level: int) -> None:
            for child in children.get(path, []):
                out.append((level, child, self.scopes[child.path]))
                if level < depth:
                    visit(child.path, level + 1)

        visit("", 1)
        return out

    def __repr__(self) -> str:
        t = self.totals
        return (f"Analysis({self.ir.name}: params={t.params:,} macs={t.macs:,} rf={t.rf} "
                f"peak={t.memory.peak_mb:.2f} MB)")


def _node_stats(node: Node, work: Work | None, ins: list, batch: int) -> Stats:
    stats = Stats(node.name, node.op, (batch, *node.shape))
    if node.op in OPS and node.op != "input":
        split = OPS[node.op].param_counts(node.attrs, ins, node.shape)
        stats.params_by_kind = {k: v for k, v in split.items() if v}
        stats.params = sum(split.values())
    if work is None:
        stats.unknown = {node.op: 1}
        return stats
    stats.macs_by_op = {k: v * batch for k, v in work.macs.items()}
    stats.macs = sum(stats.macs_by_op.values())
    if work.status == COUNTED:
        if work.elementwise or not work.macs:
            stats.elementwise_by_op = {node.op: work.elementwise * batch}
        stats.elementwise = work.elementwise * batch
    else:
        stats.ignored = {node.op: 1}
    values = batch * numel(node.shape)
    stats.memory = Memory(fig3g=values * BYTES_PER_VALUE if work.conv_output else 0,
                          peak=0)
    stats.own = lambda: (ORIGIN.through(work.windows[0]), ORIGIN.through(work.windows[1]))
    return stats


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


_ORIGINS: Fields = (ORIGIN, ORIGIN)


def _propagate(ir: IR, members: Sequence[Node], works: dict[str, Work | None]) -> dict[str, Fields]:
    """The receptive fields (H, W) of every node of ``members``; a value made elsewhere (the
    network input, or a scope's inputs) is the origin. An input of size 1 along an axis where
    the node's output is larger is broadcast (see the module doc)."""
    fields: dict[str, Fields] = {}
    for node in members:
        work = works[node.name]
        ins = [fields.get(i, _ORIGINS) for i in node.inputs]
        if len(ins) > 1:
            out_hw = spatial(node.shape)   # a size-1 axis meeting a larger one: broadcast
            sizes = [spatial(ir.node(i).shape) for i in node.inputs]
            ins = [tuple(broadcast(f[axis]) if hw[axis] == 1 < out_hw[axis] else f[axis]
                         for axis in (0, 1)) for f, hw in zip(ins, sizes)]
        if not ins:
            ins = [_ORIGINS]
        same = all(f[0] is f[1] for f in ins) and (work is None or work.window_w is None)
        out_hw = spatial(node.shape)
        h = merge((f[0] for f in ins), out_hw[0])
        if work is not None:
            h = h.through(work.window)
        if same:
            w = h
        else:
            w = merge((f[1] for f in ins), out_hw[1])
            if work is not None:
                w = w.through(work.windows[1])
        fields[node.name] = (h, w)
    return fields


def analyze_ir(ir: IR) -> Analysis:
    """Analyse a resolved IR (no torch needed)."""
    batch = ir.batch
    order = ir.nodes()
    works: dict[str, Work | None] = {}
    node_stats: dict[str, Stats] = {}
    for node in order:
        ins = [ir.node(i).shape for i in node.inputs]
        handler = HANDLERS.get(node.op)
        works[node.name] = handler(node, ins) if handler else None
        node_stats[node.name] = _node_stats(node, works[node.name], ins, batch)
    nbytes, base = liveness.tensor_bytes(order, batch)

    # receptive field from the network input
    absolute = _propagate(ir, order, works)
    for name, (field_h, field_w) in absolute.items():
        node_stats[name].field, node_stats[name].field_w = field_h, field_w

    # members of every scope, in order (the input node belongs to none)
    members: dict[str, list[Node]] = {path: [] for path in ir.scopes}
    for node in order:
        if node.op == "input":
            continue
        path: str | None = node.scope
        while path is not None:
            members[path].append(node)
            path = ir.scopes[path].parent

    scopes: dict[str, Stats] = {}
    from ..summary import block_label
    for path, scope in ir.scopes.items():
        nodes = members[path]
        out = scope.output or (nodes[-1].name if nodes else "input")
        stats = Stats(path, "network" if scope.kind == "root" else block_label(scope),
                      (batch, *ir.node(out).shape))
        for node in nodes:
            stats.add(node_stats[node.name])
        stats.memory._peak = (lambda nodes=nodes, out=out:
                              liveness.peak(ir, nodes, out, nbytes, base))
        stats.field, stats.field_w = absolute.get(out, _ORIGINS)
        stats.own = lambda nodes=nodes, out=out: _propagate(ir, nodes, works).get(out, _ORIGINS)
        scopes[path] = stats
    for node in order:  # a single node alone: its inputs, its output
        stats = node_stats[node.name]
        stats.memory._peak = (sum(nbytes[i] for i in {base.get(i, i) for i in node.inputs})
                              + nbytes[node.name])
    return Analysis(ir, node_stats, scopes)


def analyze(spec: Any, input_size: Sequence[int] | None = None, *,
            blocks: Iterable[str] = (), **params: Any) -> Analysis:
    """Parameters, MACs, element-wise work, memory and receptive field of a spec or an IR.

    ``spec`` is an :class:`~espdsl.ir.IR`, a zoo/block name or a YAML path (then resolved with
    ``input_size`` and ``params`` as in :func:`espdsl.load`).

    >>> import espdsl
    >>> a = espdsl.analyze("espnet", input_size=(1, 3, 512, 1024))
    >>> a.totals.params, a.totals.macs_by_op["conv"] + a.totals.macs_by_op["deconv"]
    (364569, 4709441536)
    """
    if isinstance(spec, IR):
        if input_size is not None or params:
            raise UsageError("an IR is already resolved: input_size and parameters do not apply",
                             None, "pass the spec name or path instead")
        return analyze_ir(spec)
    from ..loading import load
    return analyze_ir(load(spec, input_size=input_size, blocks=blocks, **params))
