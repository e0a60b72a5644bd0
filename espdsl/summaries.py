"""Exact network totals without the IR: one summary per distinct block instance.

A design-space search asks the same four figures of thousands of networks: parameters, MACs,
peak activation memory and receptive field. :func:`espdsl.analyze` resolves every network into
its flat IR (a node per primitive op) and walks it; but the networks of a space are made of the
same few block instances (an ESP module with N = 128, K = 4 at 64x128 ...) in different numbers
and orders. Here the resolver (:class:`~espdsl.resolve.Resolver`, the same binding, checks and
errors) records each distinct block instance, keyed by (block, arguments, input shape), once as a
:class:`Summary`: its own ops and its sub-blocks as single steps (a repeat's copies, or a seq's
steps, are recorded the same way, as one step). A network then costs the steps of its own level
plus a dictionary look-up per block instance. The levels a space changes in every network (its
root, ESPNet's encoder) are new instances each time, but their node entries recur: each entry is
memoised per the parameter values it reads and the earlier values it takes
(:meth:`_Summarizer.entry`), so a new level costs a look-up per entry too.

The figures compose exactly:

* parameters, MACs and Fig. 3g memory are sums;
* the receptive field of a block's outputs is a function of the field of its input: memoised
  per (summary, input field, outputs wanted), computed by the same rules as the walk
  (:mod:`espdsl.analysis.field`);
* the peak memory of the network is :func:`espdsl.liveness.peak_bytes`'s walk (tensors die
  after their last consumer, views keep their base alive, the network input is held): a block
  runs as one step whose own peak is memoised per (summary, its input's bytes, whether the input
  is used after it, which of its tensors the caller still needs).

The numbers equal ``espdsl.analyze(...).totals`` (tests/test_summaries.py compares them on every zoo
spec and on samples of design spaces).

>>> import espdsl
>>> t = espdsl.totals("espnet_c", alpha3=3)
>>> a = espdsl.analyze("espnet_c", alpha3=3).totals
>>> (t.params, t.macs, t.peak_bytes, t.rf) == (a.params, a.macs, a.memory.peak, a.rf)
True
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from . import limits
from .analysis.field import ORIGIN, Field, broadcast, merge, whole
from .analysis.handlers import HANDLERS, Work
from .analysis.walk import BYTES_PER_VALUE, MB, _both
from .errors import Loc, ResolveError, UsageError
from .ir import Node
from .ops import OPS, Shape, numel, spatial
from .registry import Registry
from .resolve import Resolver, Value, _hashable, _resolve
from .spec import NodeSpec, Spec

IN = "<in>"                         # a summary's name for its block's input
Fields = tuple[Field, Field]        # along H, along W
_ORIGINS: Fields = (ORIGIN, ORIGIN)


@dataclass(frozen=True)
class Totals:
    """The whole network's figures, as ``espdsl.analyze(...).totals`` gives them."""

    name: str
    params: int
    macs: int
    peak_bytes: int
    fig3g_bytes: int
    rf: int | float | tuple
    stride: int | float | tuple
    output_shape: tuple[int, ...]

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB

    @property
    def conv_out_mb(self) -> float:
        return self.fig3g_bytes / MB

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "peak_bytes": self.peak_bytes,
                "peak_mb": self.peak_mb, "conv_out_mb": self.conv_out_mb, "rf": self.rf,
                "stride": self.stride}


class _Op:
    """One primitive op of a summary (names relative to the summary)."""

    __slots__ = ("name", "inputs", "shape", "work", "nbytes", "view", "in_hw")

    def __init__(self, name: str, inputs: tuple[str, ...], shape: Shape, work: Work | None,
                 nbytes: int, view: bool, in_shapes: Sequence[Shape]):
        self.name, self.inputs, self.shape, self.work = name, inputs, shape, work
        self.nbytes, self.view = nbytes, view
        self.in_hw = tuple(spatial(s) for s in in_shapes)    # (H, W) of each input


class _Sub:
    """A block instance inside a summary: its summary, placed at ``prefix`` on ``input``."""

    __slots__ = ("summary", "prefix", "inputs")

    def __init__(self, summary: "Summary", prefix: str, input: str):
        self.summary, self.prefix, self.inputs = summary, prefix, (input,)


class Summary:
    """One block instance (or a root network): its steps, and its figures on demand."""

    def __init__(self, steps: list, in_shape: Shape, out: str, inner: Any,
                 bound: dict, size: int):
        self.steps, self.in_shape, self.out, self._inner = steps, in_shape, out, inner
        self.bound, self.size = bound, size
        self.params = self.macs = self.fig3g = 0
        self.ops: dict[str, _Op] = {}
        self.subs: dict[str, _Sub] = {}
        for step in steps:
            if isinstance(step, _Op):
                self.ops[step.name] = step
            else:
                self.subs[step.prefix] = step
                self.params += step.summary.params
                self.macs += step.summary.macs
                self.fig3g += step.summary.fig3g
        # plain strings and tuples of them, which the garbage collector stops walking: a run
        # over a space keeps a summary per network
        self._owner: dict[str, tuple[str, str] | None] = {}
        self._roots: dict[str, str] = {}
        self._nbytes: dict[str, int] = {}
        self._peaks: dict[tuple, tuple[int, int]] = {}
        self._fields: dict[tuple, dict[str, Fields]] = {}
        self._unused: dict[tuple, str | None] = {}
        self.placed: dict[tuple[str, str], tuple[Value, dict[str, Value]]] = {}
        self.last: dict[str, int] = {}   # name -> index of the last step that reads it (or its view)
        self.srcs: list[tuple[str, ...]] = []   # what each step reads: inputs and their roots
        for index, step in enumerate(steps):
            srcs = dict.fromkeys(step.inputs)
            for src in step.inputs:
                srcs[self.root(src)] = None
            self.srcs.append(tuple(srcs))
            for src in srcs:
                self.last[src] = index
        # which tensors of each sub-block this level reads (sorted: a key of its memos)
        reads: dict[str, set[str]] = {prefix: set() for prefix in self.subs}
        for name in self.last:
            self.owner(name)
            found = self._owner[name]
            if found is not None:
                reads[found[0]].add(found[1])
        self.reads: dict[str, tuple[str, ...]] = {p: tuple(sorted(r)) for p, r in reads.items()}

    @property
    def inner(self) -> dict[str, tuple[str, Shape]]:
        """The block's named values: name -> (tensor name relative to the block, shape).
        Made on first use (the recorded values, their prefix and input until then): a summary
        replayed only where it was recorded never needs them relative (see
        :meth:`_Summarizer.replay`)."""
        if isinstance(self._inner, tuple):
            values, head, input = self._inner
            cut = len(head)
            self._inner = {k: (IN if v.node == input else v.node[cut:], v.shape)
                           for k, v in values.items() if k != "input"}
        return self._inner

    def wants(self, prefix: str, routed: dict[str, set[str]]) -> tuple[str, ...]:
        """The tensors of sub-block ``prefix`` this level reads or passes on (sorted)."""
        more = routed.get(prefix)
        return self.reads[prefix] if not more else tuple(sorted(more.union(self.reads[prefix])))

    def _route(self, names: Iterable[str]) -> dict[str, set[str]]:
        """``names`` of this level's sub-blocks' tensors, by sub-block prefix."""
        out: dict[str, set[str]] = {}
        for name in names:
            found = self._owner.get(name, _MISSING)
            if found is _MISSING:
                self.owner(name)
                found = self._owner[name]
            if found is not None:
                out.setdefault(found[0], set()).add(found[1])
        return out

    # -- names ----------------------------------------------------------------------------------
    def owner(self, name: str) -> tuple[_Sub, str] | None:
        """The sub-block step that makes ``name`` and the name inside it (None: an own op)."""
        found = self._owner.get(name, _MISSING)
        if found is _MISSING:
            found = None
            if name not in self.ops and name != IN:
                parts = name.split(".")
                for k in range(1, len(parts)):
                    prefix = ".".join(parts[:k])
                    if prefix in self.subs:
                        found = (prefix, ".".join(parts[k:]))
                        break
            self._owner[name] = found
        return None if found is None else (self.subs[found[0]], found[1])

    def shape(self, name: str) -> Shape:
        if name == IN:
            return self.in_shape
        if name in self.ops:
            return self.ops[name].shape
        sub, inner = self.owner(name)
        return sub.summary.shape(inner) if inner != IN else self.shape(sub.inputs[0])

    def nbytes(self, name: str) -> int:
        """Bytes per sample of a tensor made at this level (a view: 0)."""
        if name in self.ops:
            return self.ops[name].nbytes
        found = self._nbytes.get(name)
        if found is None:
            sub, inner = self.owner(name)
            found = self._nbytes[name] = sub.summary.nbytes(inner)
        return found

    def root(self, name: str) -> str:
        """The tensor that holds ``name``'s memory (itself unless it is a view)."""
        if name in self._roots:
            return self._roots[name]
        root = name
        if name in self.ops:
            op = self.ops[name]
            if op.view and op.inputs:
                root = self.root(op.inputs[0])
        elif name != IN:
            sub, inner = self.owner(name)
            deep = sub.summary.root(inner)
            root = self.root(sub.inputs[0]) if deep == IN else (
                f"{sub.prefix}.{deep}" if deep != inner else name)
        self._roots[name] = root
        return root

    # -- peak memory ----------------------------------------------------------------------------
    def peak(self, xb: int, x_after: bool, escapes: tuple[str, ...]) -> tuple[int, int]:
        """(peak, live at the end) in bytes per sample when this block runs with its input
        (``xb`` bytes) live on entry, held to the end when ``x_after``, and ``escapes`` (names
        of its tensors the caller reads later) kept; the walk of :func:`~espdsl.analysis.walk.
        _peak`, a sub-block being one step."""
        key = (xb, x_after, escapes)
        if key in self._peaks:
            return self._peaks[key]
        keep = set(escapes)
        keep |= {self.root(n) for n in escapes}
        used, srcs = self.last, self.srcs
        routed = self._route(keep)
        live = peak = xb
        for index, step in enumerate(self.steps):
            if isinstance(step, _Op):
                live += step.nbytes
                peak = max(peak, live)
                for src in srcs[index]:
                    if used[src] == index and src not in keep:
                        if src == IN:
                            if not x_after:
                                live -= xb
                        else:
                            live -= self.nbytes(src)
                if step.name not in used and step.name not in keep:
                    live -= step.nbytes
            else:
                src = step.inputs[0]
                root = self.root(src)
                sub_xb = xb if root == IN else self.nbytes(root)
                after = used[root] > index or root in keep or (root == IN and x_after)
                wanted = self.wants(step.prefix, routed)
                sub_peak, sub_end = step.summary.peak(sub_xb, after, wanted)
                peak = max(peak, live - sub_xb + sub_peak)
                live += sub_end - sub_xb
        self._peaks[key] = (peak, live)
        return peak, live

    # -- what no output uses --------------------------------------------------------------------
    def unused(self, wanted: tuple[str, ...]) -> str | None:
        """An op of this block that none of the ``wanted`` tensors depends on (None: there is
        none). ``espdsl.analyze`` prunes those (:mod:`espdsl.prune`); the figures here would
        count them. A dead op is read by dead ops only, so some dead op is read by none: the
        check is local, level by level, a sub-block being asked for what its level reads."""
        if wanted in self._unused:
            return self._unused[wanted]
        found = None
        routed = self._route(wanted)
        for step in self.steps:
            if isinstance(step, _Op):
                if step.name not in self.last and step.name not in wanted:
                    found = step.name
                    break
                continue
            want = self.wants(step.prefix, routed)
            inner = step.summary.unused(want) if want else (
                step.summary.steps and step.summary.unused(()))
            if inner:
                found = f"{step.prefix}.{inner}"
                break
        self._unused[wanted] = found
        return found

    # -- receptive field ------------------------------------------------------------------------
    def fields(self, start: tuple[Lazy, Lazy], wanted: tuple[str, ...]) -> dict[str, tuple[Lazy, Lazy]]:
        """The receptive fields of the ``wanted`` tensors of this block when its input has the
        fields ``start``; :func:`~espdsl.analysis.walk._propagate`, a sub-block being one step.
        Fields are :data:`Lazy`: a field and a move still to be applied (:func:`_real`).

        Starts and ends of fields move apart, and by the same amount at every position: every
        op takes the smallest start and the largest end of the input pixels it reads
        (:meth:`Field.through`, :func:`merge`, broadcasts). So the fields are computed once
        per input field moved to start and end at 0 (:func:`_normal`), and the move is carried
        along, not applied: only a merge of several inputs needs real fields."""
        ph, pw = start
        (h, dh), (w, dw) = ph, pw
        one = ph is pw        # one object: so it stays inside (see _fields_at)
        key = (h, w, one, wanted)
        base = self._fields.get(key)
        if base is None:
            base = self._fields[key] = self._fields_at(h, w, one, wanted)
        if dh is None and dw is None:
            return base
        out = {}
        for n, (fh, fw) in base.items():
            mh = _moved(fh, dh)
            out[n] = (mh, mh if one and fw is fh else _moved(fw, dw))
        return out

    def _fields_at(self, h0: Field, w0: Field, one: bool,
                   wanted: tuple[str, ...]) -> dict[str, tuple[Lazy, Lazy]]:
        first = (h0, None)
        # one object where the walk has one (``is`` decides whether W is computed apart)
        fields: dict[str, tuple[Lazy, Lazy]] = {IN: (first, first if one else (w0, None))}
        routed = self._route(wanted)
        for step in self.steps:
            if isinstance(step, _Sub):
                head = step.prefix + "."
                want = self.wants(step.prefix, routed)
                if want:
                    inner = step.summary.fields(fields[step.inputs[0]], want)
                    for k, v in inner.items():
                        fields[head + k] = v
                continue
            work = step.work
            out_hw = spatial(step.shape)
            if len(step.inputs) == 1:       # no merge: the move is carried through
                ph, pw = fields[step.inputs[0]]
                same = ph is pw and (work is None or work.window_w is None)
                h = ph if work is None else _through(ph, work.window)
                w = h if same else pw if work is None else _through(pw, work.windows[1])
                fields[step.name] = (h, w)
                continue
            real: dict[int, Field] = {}
            ins = []
            for i in step.inputs:
                ph, pw = fields[i]
                fh = _real(ph, real)
                ins.append((fh, fh if pw is ph else _real(pw, real)))
            if len(ins) > 1:
                ins = [tuple(broadcast(f[axis]) if hw[axis] == 1 < out_hw[axis] else f[axis]
                             for axis in (0, 1)) for f, hw in zip(ins, step.in_hw)]
            if not ins:
                ins = [_ORIGINS]
            same = all(f[0] is f[1] for f in ins) and (work is None or work.window_w is None)
            mh = merge((f[0] for f in ins), out_hw[0])
            if same:
                mw = mh
            else:
                mw = merge((f[1] for f in ins), out_hw[1])
            h = _normal(mh)
            if work is not None:
                h = _through(h, work.window)
            if same or mw is mh and (work is None or all(map(_pointwise, work.windows))):
                w = h        # one object where the walk's fields are one
            else:
                w = _normal(mw)
                if work is not None:
                    w = _through(w, work.windows[1])
            fields[step.name] = (h, w)
        return {n: fields[n] for n in wanted}


Lazy = tuple   # (normalised Field, move or None): the field moved by the move (see :func:`_shift`)


def _add(m: tuple | None, n: tuple | None) -> tuple | None:
    if m is None:
        return n
    if n is None:
        return m
    a, b = m[0] + n[0], m[1] + n[1]
    if type(a) is int and type(b) is int:     # the common case: no Fraction to make whole
        return a, b
    return whole(a), whole(b)


def _moved(p: Lazy, move: tuple | None) -> Lazy:
    return p if move is None else (p[0], _add(p[1], move))


def _real(p: Lazy, seen: dict[int, Field]) -> Field:
    """The field a lazy field stands for (one object per lazy object, as ``is`` is read)."""
    f = seen.get(id(p))
    if f is None:
        f = seen[id(p)] = _shift(p[0], p[1])
    return f


_THROUGH: dict[tuple, Lazy] = {}


def _through(p: Lazy, window: Any) -> Lazy:
    """``f.through(window)`` of a lazy field ``f``, memoised on its normalised field (see
    :meth:`Summary.fields`), the move kept apart."""
    g, move = p
    key = (g, window)
    out = _THROUGH.get(key)
    if out is None:
        if len(_THROUGH) > 100_000:
            _THROUGH.clear()
        out = _THROUGH[key] = _normal(g.through(window))
    return out[0], _add(out[1], move)


def _pointwise(window: Any) -> bool:
    """Does :meth:`Field.through` give the field itself?"""
    return window.period == 1 and window.rate == 1 and window.lo[0] == 0 and window.hi[0] == 0


def _normal(f: Field) -> tuple[Field, tuple | None]:
    """``f`` with its starts moved by ``-a`` and its ends by ``-b`` (``a``, ``b``: the first
    position's), and that move (None: none needed)."""
    a, b = f.a[0], f.b[0]
    if a is None or (a == 0 and b == 0):
        return f, None
    if len(f.a) == 1:
        return Field(f.stride, (0,), (0,), f.step), (a, b)
    return Field(f.stride, tuple(None if x is None else whole(x - a) for x in f.a),
                 tuple(None if x is None else whole(x - b) for x in f.b), f.step), (a, b)


def _shift(f: Field, move: tuple | None) -> Field:
    if move is None:
        return f
    a, b = move
    if len(f.a) == 1 and f.a[0] is not None:
        return Field(f.stride, (whole(f.a[0] + a),), (whole(f.b[0] + b),), f.step)
    return Field(f.stride, tuple(None if x is None else whole(x + a) for x in f.a),
                 tuple(None if x is None else whole(x + b) for x in f.b), f.step)


_MISSING = object()
_CONTEXTS: dict[tuple, int] = {}     # see _Summarizer.context (never reused: never cleared)
_TOKENS = itertools.count()
_RELATIVE: dict[tuple, tuple] = {}   # (recorded step, head, input) -> relative step and costs
_COSTS: dict[tuple, tuple[Work | None, int]] = {}


def _cost(node: Node, ins: list[Shape]) -> tuple[Work | None, int]:
    """The handler's :class:`Work` and the parameters of one op (memoised on its attributes
    and shapes: the same op recurs in every network of a space)."""
    try:
        key = (node.op, tuple(node.attrs.items()), tuple(ins), node.shape)
        hit = _COSTS.get(key)
    except TypeError:
        key, hit = None, None
    if hit is None:
        handler = HANDLERS.get(node.op)
        hit = (handler(node, ins) if handler else None,
               sum(OPS[node.op].param_counts(node.attrs, ins, node.shape).values()))
        if key is not None:
            if len(_COSTS) > 100_000:
                _COSTS.clear()
            _COSTS[key] = hit
    return hit


class _Reads(dict):
    """An environment that notes the names looked up in it."""

    def __init__(self, env: dict):
        super().__init__(env)
        self.seen: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)


@dataclass(frozen=True)
class _Made:
    """What one node entry added (see :meth:`_Summarizer.entry`)."""

    looked: tuple[tuple[str, Value], ...]   # the earlier values it took, by name
    value: Value | None                     # its value (None: its 'when' was false)
    name: str | None                        # its name among the values
    steps: list
    made: list[str]                         # the ops it made
    in_shapes: list[tuple[str, list[Shape]]]
    values: dict[str, Value]                # what it added to the values (its name last)
    count: int                              # ops (a sub-block: its size)
    scopes: int


class _Summarizer(Resolver):
    """The resolver, recording block instances as :class:`Summary` objects (see the module doc)
    instead of flat recipes. Binding, evaluation, shapes and errors are the resolver's own."""

    cache_name = "_summaries"

    def __init__(self, registry: Any, registry_state: tuple | None = None,
                 blocks: tuple[str, ...] = (), inherited: dict[str, Any] | None = None):
        super().__init__(registry, registry_state, blocks, inherited)
        self.steps: list = []
        self.made: set[str] = set()
        self.in_shapes: dict[str, list[Shape]] = {}   # op -> its inputs' shapes
        self.input_shape: Shape | None = None
        self.count = 0
        self.extra_scopes = 0     # scopes counted for the size limit but not made (hits)
        self.offset = 0           # the size of the network around it (a repeat recorded apart)
        self.tracking: set[str] | None = None   # the names an entry being memoised reads
        self.looked: list[tuple[str, Value]] = []   # ... and the values it takes
        self.untracked = False

    @property
    def scope_count(self) -> int:
        return len(self.scopes) + self.extra_scopes

    @property
    def size(self) -> int:
        return self.offset + self.count + self.scope_count

    def add_node(self, name: str, op: str, inputs: list[Value], attrs: dict, shape: Shape,
                 scope: str, loc: Any) -> Value:
        if op == "input":
            self.input_shape = shape
            return Value(name, shape)
        self.in_shapes[name] = [v.shape for v in inputs]
        self.grow(1, loc)
        if name in self.made:
            raise ResolveError(f"two nodes resolve to the same name '{name}'", loc,
                               "give each node instance a unique name (use the loop variable)")
        self.made.add(name)
        self.count += 1
        self.steps.append(Node(name, op, [v.node for v in inputs], attrs, shape, scope, loc))
        return Value(name, shape)

    def bind(self, spec: Spec, args: dict[str, tuple[Any, Any]], in_channels: int | None,
             call_loc: Any) -> dict[str, Any]:
        """The resolver's binding, memoised per (spec, argument values and types, context:
        the limits among them): a root is bound twice (once to learn its input)."""
        try:
            key = (tuple([(k, type(v), v) for k, (v, _) in args.items()]),   # in their order
                   in_channels if "M" in spec.params else None, self.context)
            env = spec.__dict__.setdefault("_summary_binds", {}).get(key)
        except TypeError:            # an unhashable argument: no memo
            return super().bind(spec, args, in_channels, call_loc)
        if env is None:
            env = spec.__dict__["_summary_binds"][key] = super().bind(spec, args, in_channels,
                                                                       call_loc)
        return dict(env)

    def entry(self, spec: Spec, entry: NodeSpec, env: dict, default_from: Value,
              values: dict[str, Value], prefix: str) -> Value | None:
        """One node entry in one binding, memoised per (spec node, prefix, the values of the
        parameters it reads, the values it takes from earlier nodes): a hit adds the entry's
        steps, names and values as they were made, without evaluating anything again. This is
        what makes the levels a design space changes in every network cheap: ESPNet's encoder is
        a new block instance in each variant, but its nodes, repeats included, recur."""
        if entry.outputs is not None or self.tracking is not None:
            return super().entry(spec, entry, env, default_from, values, prefix)
        memo = spec.__dict__.get("_summary_entries")
        if memo is None:
            memo = spec.__dict__["_summary_entries"] = {}
        base = (id(entry), prefix, default_from if entry.from_ is None else None,
                self.context if self._context is None else self._context)
        try:
            for names, table in memo.get(base, ()):
                for made in table.get(tuple([env.get(n, _MISSING) for n in names]), ()):
                    for n, v in made.looked:
                        got = values.get(n, _MISSING)
                        if got is not v and got != v:
                            break
                    else:
                        if self._again_entry(made, values):
                            return made.value
        except TypeError:            # an unhashable value (a list from a 'for'): no memo
            return super().entry(spec, entry, env, default_from, values, prefix)
        reads = _Reads(env)
        self.tracking, self.looked, self.untracked = reads.seen, [], False
        steps, count, scopes, known = len(self.steps), self.count, self.scope_count, len(values)
        try:
            value = super().entry(spec, entry, reads, default_from, values, prefix)
        finally:
            self.tracking = None
        if self.untracked:
            return value
        names = tuple(sorted(reads.seen))
        try:
            key = tuple(env.get(n, _MISSING) for n in names)
            hash(key)
            hash(tuple(self.looked))
        except TypeError:
            return value
        new = self.steps[steps:]
        made_names = [s.name for s in new if isinstance(s, Node)]
        tables = memo.setdefault(base, [])
        table = next((t for n, t in tables if n == names), None)
        if table is None:
            table = {}
            tables.append((names, table))
        # one dict, not a pair per value: what stays in memory is what the garbage collector
        # walks, and a run over a space keeps every entry
        added = dict(itertools.islice(values.items(), known, None))
        table.setdefault(key, []).append(_Made(
            tuple(self.looked), value, None if value is None else next(reversed(added)), new,
            made_names,
            [(n, self.in_shapes[n]) for n in made_names], added, self.count - count,
            self.scope_count - scopes))
        return value

    def copies(self, spec: Spec, entry: NodeSpec, env: dict, path: str, name: str,
               count: int | None, inp: Value, values: dict[str, Value], prefix: str) -> Value:
        """A repeat's copies (a seq's steps) recorded apart as one summary, as a block instance
        is: a level holds them as one step, and their fields and peak are memoised with that
        summary (ESPNet's levels are repeats whose count is an axis of the space)."""
        if not count and entry.seq is None:
            return super().copies(spec, entry, env, path, name, count, inp, values, prefix)
        scratch = _Summarizer(self.registry, self.registry_state, self.blocks, self.inherited)
        scratch.offset, scratch.tracking = self.size, self.tracking   # the same limit, reads
        out = Resolver.copies(scratch, spec, entry, env, path, name, count, inp, values, prefix)
        self.untracked = self.untracked or scratch.untracked
        summary = scratch.summarize(path + ".", inp.node, inp.shape, out, {}, {})
        summary.placed[(path, inp.node)] = out, {}     # the values are made: none to move
        self.replay(summary, path, inp)
        return out

    def _again_entry(self, made: "_Made", values: dict[str, Value]) -> bool:
        """Add a memoised entry; False (nothing added) where it would not be added as it was
        (a name taken, the size limit): then it is resolved again, to fail as it should."""
        if made.name is not None and made.name in values \
                or made.made and not self.made.isdisjoint(made.made) \
                or self.size + made.count + made.scopes > self.limits.ir_size:
            return False
        self.steps += made.steps
        if made.made:
            self.made.update(made.made)
            self.in_shapes.update(made.in_shapes)
        self.count += made.count
        self.extra_scopes += made.scopes
        values.update(made.values)
        return True

    def lookup(self, spec: Spec, name: str, values: dict[str, Value], loc: Any) -> Value:
        value = super().lookup(spec, name, values, loc)
        if self.tracking is not None:
            self.looked.append((name, value))
        return value

    def unit(self, spec: Spec, entry: Any, env: dict, path: str, inputs: list[Value],
             prefix: str) -> tuple[Value, dict[str, Value]]:
        """One op or block instance. A block instance is memoised per (spec node, the values of
        the parameters its arguments read, input shape): a hit adds its scope and replays the
        summary without evaluating the arguments again."""
        if entry.op is None and len(inputs) != 1:
            return self._untracked_unit(spec, entry, env, path, inputs, prefix)
        memo = spec.__dict__.setdefault("_summary_units", {})
        base = (id(entry), tuple([v.shape for v in inputs]), self.context)
        seen = memo.get(base)
        try:
            for names, table in seen or ():
                hit = table.get(tuple([env.get(n, _MISSING) for n in names]))
                if hit is not None and hit[0] is entry:
                    if self.tracking is not None:
                        self.tracking.update(names)
                    return self._again(hit, path, inputs, prefix)
        except TypeError:            # an unhashable value (a list from a 'for'): no memo
            return self._untracked_unit(spec, entry, env, path, inputs, prefix)
        reads = _Reads(env)
        self.replayed = None
        out, inner = super().unit(spec, entry, reads, path, inputs, prefix)
        if self.tracking is not None:
            self.tracking.update(reads.seen)
        scope = self.scopes.get(path)
        if entry.op is not None and scope is not None and scope.kind == "op":
            node = self.steps[-1]           # the op just added (an identity adds none)
            self.replayed = (node.op, node.attrs, node.shape)
        if self.replayed is not None:
            names = tuple(sorted(reads.seen))
            try:
                key = tuple(env.get(n, _MISSING) for n in names)
                hash(key)
            except TypeError:
                return out, inner
            tables = memo.setdefault(base, [])
            table = next((t for n, t in tables if n == names), None)
            if table is None:
                table = {}
                tables.append((names, table))
            table[key] = (entry, scope.block, scope.loc, self.replayed)
        return out, inner

    def _untracked_unit(self, spec: Spec, entry: Any, env: dict, path: str,
                        inputs: list[Value], prefix: str) -> tuple[Value, dict[str, Value]]:
        """A unit resolved without its reads noted: the entry around it is not memoised."""
        self.untracked = True
        return super().unit(spec, entry, env, path, inputs, prefix)

    @property
    def inherited(self) -> dict[str, Any]:
        return self._inherited

    @inherited.setter
    def inherited(self, value: dict[str, Any]) -> None:
        self._inherited, self._context = value, None

    @property
    def context(self) -> int:
        """What the memos' keys share besides the node: the registry's state, the chain of
        blocks, the limits and the scoped defaults from above (they reach an op's attributes
        and a block's arguments without passing through the env), as one small number."""
        if self._context is None:
            key = (self.registry_state, self.blocks, self.limits,
                   tuple(sorted((k, _hashable(v)) for k, v in self.inherited.items())))
            self._context = _CONTEXTS.get(key)
            if self._context is None:
                self._context = _CONTEXTS[key] = next(_TOKENS)
        return self._context

    def _again(self, hit: tuple, path: str, inputs: list[Value],
               prefix: str) -> tuple[Value, dict[str, Value]]:
        _, kind, loc, summary = hit
        self.grow(1, loc)                   # its scope, counted (nothing reads it)
        self.extra_scopes += 1
        if isinstance(summary, tuple):      # an op: (op, attributes, output shape)
            op, attrs, shape = summary
            return self.add_node(path, op, inputs, attrs, shape, path, loc), {}
        out, inner, _ = self.replay(summary, path, inputs[0])
        return out, inner

    def summarize(self, head: str, input: str, in_shape: Shape, out: Value,
                  inner: dict[str, Value], bound: dict) -> Summary:
        """This level's steps as a :class:`Summary`, names made relative to ``head``."""
        cut = len(head)

        def rel(name: str) -> str:
            return IN if name == input else name[cut:]

        steps: list = []
        own_params = own_macs = own_fig3g = 0
        for step in self.steps:
            # a memoised entry adds the same step objects again: each is made relative once
            key = (id(step), head, input)
            hit = _RELATIVE.get(key)
            if hit is None or hit[0] is not step:
                if len(_RELATIVE) > 200_000:
                    _RELATIVE.clear()
                hit = _RELATIVE[key] = (step, *self._relative(step, rel))
            steps.append(hit[1])
            own_params += hit[2]
            own_macs += hit[3]
            own_fig3g += hit[4]
        summary = Summary(steps, in_shape, rel(out.node), (inner, head, input), bound,
                          self.count + self.scope_count)
        summary.params += own_params
        summary.macs += own_macs
        summary.fig3g += own_fig3g
        return summary

    def _relative(self, step: Any, rel: Any) -> tuple[Any, int, int, int]:
        """A recorded step with its names made relative (``rel``), and its own parameters,
        MACs and Fig. 3g bytes (an op's; a sub-block's are its summary's)."""
        if isinstance(step, _Sub):
            return _Sub(step.summary, rel(step.prefix), rel(step.inputs[0])), 0, 0, 0
        in_shapes = self.in_shapes[step.name]
        work, params = _cost(step, in_shapes)
        view = bool(OPS[step.op].view and step.inputs)
        op = _Op(rel(step.name), tuple([rel(i) for i in step.inputs]), step.shape, work,
                 0 if view else numel(step.shape) * BYTES_PER_VALUE, view, in_shapes)
        if work is None:
            return op, params, 0, 0
        return op, params, sum(work.macs.values()), \
            numel(step.shape) * BYTES_PER_VALUE if work.conv_output else 0

    def record(self, spec: Spec, args: dict, path: str, inp: Value, call_loc: Any) -> Summary:
        scratch = _Summarizer(self.registry, self.registry_state, self.blocks + (spec.name,),
                              self.inherited)
        out, inner, bound = scratch.instantiate(spec, args, path + ".", inp, call_loc)
        inner.pop("input", None)     # the scratch's own dict, used by nothing else
        summary = scratch.summarize(path + ".", inp.node, inp.shape, out, inner, bound)
        # where it was recorded, its values are the scratch's own: replay needs no re-basing
        # (the encoder of a design space is recorded per variant, with ~200 named values)
        summary.placed[(path, inp.node)] = out, inner
        return summary

    def replay(self, summary: Summary, path: str, inp: Value) -> tuple[Value, dict[str, Value], dict]:
        self.replayed = summary
        self.grow(summary.size, None)
        self.count += summary.size
        self.steps.append(_Sub(summary, path, inp.node))
        placed = summary.placed.get((path, inp.node))
        if placed is None:
            head = path + "."

            def move(name: str) -> str:
                return inp.node if name == IN else head + name

            out = Value(move(summary.out), inp.shape if summary.out == IN else
                        summary.shape(summary.out))
            inner = {k: Value(move(n), s) for k, (n, s) in summary.inner.items()}
            if len(summary.placed) < 64:
                summary.placed[(path, inp.node)] = out, inner
        else:
            out, inner = placed      # read, never changed, by the resolver
        return out, inner, dict(summary.bound)

    def finish(self, spec: Spec, out: Value, env: dict, batch: int) -> Totals:
        if self.cut:  # pruning needs the whole graph, which summaries never build
            cut = ", ".join(sorted(self.cut))
            raise UsageError(f"'{spec.name}' cuts blocks with outputs: ({cut})", spec.loc(()),
                             "use espdsl.analyze, which prunes what no output uses")
        root = self.summarize("", "input", self.input_shape, out, {}, env)
        dead = root.unused((root.out,))
        if dead:
            raise UsageError(f"'{spec.name}' holds ops its output does not use ('{dead}')",
                             spec.loc(()), "use espdsl.analyze, which prunes what no output uses")
        xb = numel(root.in_shape) * BYTES_PER_VALUE
        peak, _ = root.peak(xb, True, (root.out,))
        origin = (ORIGIN, None)
        h, w = (_ORIGINS if root.out == IN else
                (_shift(*p) for p in root.fields((origin, origin), (root.out,))[root.out]))
        return Totals(spec.name, root.params, root.macs * batch, peak * batch,
                      root.fig3g * batch, _both(h.size, w.size), _both(h.step, w.step),
                      (batch, *out.shape))


class Snapshot(Registry):
    """A registry frozen for a run over many networks: each spec is read once and the files
    are not looked at again (a :class:`~espdsl.registry.Registry` checks every file's identity
    on every look-up, so that edits are seen)."""

    def __init__(self, registry: Registry):
        super().__init__()
        self._files, self._kinds = dict(registry._files), dict(registry._kinds)
        self._state = registry.state()
        self._specs: dict[str, Spec] = {}

    def state(self) -> tuple:
        return self._state

    def get(self, name: str, loc: Loc | None = None) -> Spec:
        spec = self._specs.get(name)
        if spec is None:
            spec = self._specs[name] = super().get(name, loc)
        return spec


def totals_of(spec: Spec, params: dict[str, Any] | None = None, *, registry: Any,
              input_size: Sequence[int] | None = None) -> Totals:
    """:func:`espdsl.totals` of a parsed spec with a registry (what a design-space run
    calls)."""
    with limits.pinned():
        return _resolve(spec, params, registry=registry, input_size=input_size,
                        resolver=_Summarizer)


def clear_caches(registry: Registry | None = None) -> None:
    """Forget every summary (of the specs of ``registry``, the default one when None) and the
    memoised op costs and fields: the next run starts cold (benchmarks)."""
    from .registry import default_registry
    reg = registry or default_registry()
    for name in reg.names():
        spec = reg.get(name)
        for attr in (_Summarizer.cache_name, "_summary_units", "_summary_entries",
                     "_summary_binds"):
            spec.__dict__.pop(attr, None)
    _THROUGH.clear()
    _COSTS.clear()
    _RELATIVE.clear()
