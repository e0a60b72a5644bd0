"""Resolving a spec into the IR: bind parameters, expand ``for``/``repeat``/``seq``, evaluate
``when``, instantiate blocks, infer channels and shapes, and locate every error.

>>> from espdsl.registry import default_registry
>>> reg = default_registry()
>>> ir = resolve(reg.get("esp"), {"M": 100, "N": 100, "K": 5}, registry=reg)
>>> ir.output_shape
(1, 100, 56, 56)
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import networkx as nx

from . import limits
from .errors import EspdslError, Loc, ResolveError, SpecError, did_you_mean, quote, shorten, show
from .expr import FUNCTIONS_KEY, check_text, evaluate, parse_for, render_template
from .ir import IR, Node, Scope, name_problem
from .origin import cli_values, hint_for, origin_text, param_loc
from .prune import prune
from .ops import OPS, OpError, Pair, Shape, complete_attrs, pair, pair_text
from .registry import Registry
from .spec import PARAM_TYPES, NodeSpec, ParamDecl, Spec

DEFAULT_BLOCK_SIZE = (56, 56)
REPEAT_INDEX, REPEAT_COUNT = "i", "count"   # what a repeat binds in its copies' arguments


class Value(NamedTuple):
    """A tensor flowing between nodes: the IR node that produces it and its (C, H, W). A named
    tuple: made often, and a run over a design space keeps many (a tuple of strings and
    numbers is one the garbage collector stops walking)."""

    node: str
    shape: Shape


@dataclass(frozen=True)
class Recipe:
    """A resolved block instance, recorded at ``path`` on input node ``input``; replaying it
    elsewhere moves every name from under ``path`` to under the new path."""

    path: str
    input: str
    nodes: list[Node]
    scopes: list[Scope]
    output: Value
    inner: dict[str, Value]
    bound: dict[str, Any]


def parse_cli_value(text: str) -> Any:
    """Turn a ``-p key=value`` text into int, float, bool or str.

    >>> [parse_cli_value(v) for v in ["5", "0.5", "true", "b1"]]
    [5, 0.5, True, 'b1']
    """
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if not text.isascii():     # int() takes '٣' and float() '１.５': no one means those
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def check_value(value: Any, want: type, what: str, loc: Loc | None) -> Any:
    """``value`` as a ``want`` (int, float, bool or str) that can stand in a network: an int
    within the ``int`` limit, a finite float, a str within ``expr_length``; else a located error.

    The one check for parameter values (from ``-p``, keywords, defaults and block arguments)
    and op attributes. A whole float is accepted for an int (``-p alpha3=3.0``), an int for a
    float.

    >>> check_value(3.0, int, "parameter 'n'", None)
    3
    >>> check_value(1e100, int, "parameter 'n'", None)
    Traceback (most recent call last):
    ...
    espdsl.errors.LimitError: error: parameter 'n' is 1e+100, larger than the int limit; hint: the int limit is 2,147,483,647; raise it with 'espdsl --limit int=...' (or ESPDSL_LIMITS, or espdsl.limits.override(int=...) in Python)
    """
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 2 ** 1000 else math.inf
    if want is int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(limits.check_int(value, what, loc))
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ResolveError(f"{what} must be {want.__name__}, got {type(value).__name__} "
                           f"{show(value)}", loc)
    if want is int:
        limits.check_int(value, what, loc)
    elif want is float and not math.isfinite(value):
        raise ResolveError(f"{what} must be a finite number, got {value}", loc)
    elif want is str:
        check_text(value, loc, what)
    return value


def coerce(value: Any, decl: ParamDecl, loc: Loc | None, owner: str) -> Any:
    """Check a parameter value against its declaration (type, choices, bounds)."""
    want = PARAM_TYPES[decl.type]
    if value is None and decl.unset:
        return None
    if want is list:
        return _coerce_list(value, decl, loc, owner)
    if isinstance(value, str) and decl.type != "str":
        value = parse_cli_value(value)
    value = check_value(value, want, f"parameter '{decl.name}' of {owner}", loc)
    if decl.choices is not None and value not in decl.choices:
        raise ResolveError(f"parameter '{decl.name}' of {owner} must be one of {decl.choices}, got "
                           f"{show(value)}", loc,
                           did_you_mean(str(value), map(str, decl.choices)))
    if decl.min is not None and value < decl.min:
        raise ResolveError(f"parameter '{decl.name}' of {owner} must be >= {decl.min}, got {value}", loc)
    if decl.max is not None and value > decl.max:
        raise ResolveError(f"parameter '{decl.name}' of {owner} must be <= {decl.max}, got {value}", loc)
    return value


def _coerce_list(value: Any, decl: ParamDecl, loc: Loc | None, owner: str) -> list:
    """A list parameter: a list (or the text of a list expression, as ``-p widths=[16,24]``
    gives) of ints, floats or strs, within the ``range`` limit; ``min``/``max`` bound each
    number."""
    what = f"parameter '{decl.name}' of {owner}"
    if isinstance(value, str):
        value = evaluate(value, {}, loc)
    if not isinstance(value, list):
        raise ResolveError(f"{what} must be a list, got {type(value).__name__} {show(value)}", loc,
                           "e.g. [16, 24, 40]")
    if len(value) > limits.current().range:
        raise limits.exceeded("range", f"{what} holds {len(value):,} items, more than the range "
                              "limit", loc)
    out = []
    for item in value:
        kind = float if isinstance(item, float) else str if isinstance(item, str) else int
        item = check_value(item, kind, f"an entry of {what}", loc)
        if kind is not str and (decl.min is not None and item < decl.min
                                or decl.max is not None and item > decl.max):
            raise ResolveError(f"an entry of {what} is {item}, outside [{decl.min}, {decl.max}]",
                               loc)
        out.append(item)
    return out


@dataclass(frozen=True)
class Default:
    """A scoped default (``defaults:``), evaluated where it is declared both ways a parameter
    reads a value: as a name template for str parameters (``act: silu`` is the text 'silu'),
    as an expression for the others (``eps: eps``). Which one applies is known only where it
    lands; an expression that does not evaluate is an error only there."""

    text: str
    value: Any
    error: EspdslError | None
    loc: Loc | None

    @staticmethod
    def of(raw: Any, env: dict, loc: Loc | None) -> "Default":
        text = render_template(raw, env, loc)
        try:
            value, error = _hashable(evaluate(raw, env, loc)), None
        except EspdslError as exc:
            value, error = None, exc
        return Default(text, value, error, loc)

    def get(self, as_text: bool) -> Any:
        if as_text:
            return self.text
        if self.error is not None:
            raise self.error
        return list(self.value) if isinstance(self.value, tuple) else self.value

    def __hash__(self) -> int:
        return hash((self.text, self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Default) and (self.text, self.value) == (other.text, other.value)


class Resolver:
    """Builds one IR. A fresh resolver per call; it holds the graph being made.

    ``blocks`` is the chain of block instances being resolved (for the ``block_depth`` limit);
    the graph's size (ops plus scopes) is kept within ``ir_size`` as it grows, and a repeat or a
    ``for`` is refused as soon as its first copy shows that all of them would not fit.

    A subclass may record block instances as something other than :class:`Recipe` (it names
    its own per-spec cache in ``cache_name`` and overrides ``record``, ``replay``, ``add_node``
    and ``finish``): :mod:`espdsl.totals` keeps one summary per distinct block instance.
    """

    cache_name = "_recipes"     # the per-spec cache of recorded block instances

    def __init__(self, registry: Registry, registry_state: tuple | None = None,
                 blocks: tuple[str, ...] = (), inherited: dict[str, Any] | None = None):
        self.registry = registry
        self.inherited: dict[str, Any] = dict(inherited or {})  # scoped defaults from above
        self.registry_state = registry.state() if registry_state is None else registry_state
        self.graph = nx.DiGraph()
        self.scopes: dict[str, Scope] = {}
        self.blocks = blocks
        self.limits = limits.current()
        self.cut: set[str] = set()   # block instances cut by 'outputs:' (see espdsl.prune)

    # -- graph ----------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Ops plus spec-node instances so far (what the ``ir_size`` limit counts)."""
        return len(self.graph) + len(self.scopes)

    def grow(self, more: int, loc: Loc | None) -> None:
        """Refuse to add ``more`` entries when the IR would pass the ``ir_size`` limit."""
        if self.size + more > self.limits.ir_size:
            raise limits.exceeded("ir_size", f"the network would hold more than "
                                  f"{self.limits.ir_size:,} ops and node instances", loc)

    def add_scope(self, scope: Scope) -> Scope:
        self.grow(1, scope.loc)
        self.scopes[scope.path] = scope
        return scope

    def add_node(self, name: str, op: str, inputs: list[Value], attrs: dict, shape: Shape,
                 scope: str, loc: Loc | None) -> Value:
        self.grow(1, loc)
        if name in self.graph:
            raise ResolveError(f"two nodes resolve to the same name '{name}'", loc,
                               "give each node instance a unique name (use the loop variable)")
        node = Node(name, op, [v.node for v in inputs], attrs, shape, scope, loc)
        self.graph.add_node(name, node=node)
        for v in inputs:
            self.graph.add_edge(v.node, name)
        return Value(name, shape)

    # -- parameters -----------------------------------------------------------------------------
    def bind(self, spec: Spec, args: dict[str, tuple[Any, Loc | None]], in_channels: int | None,
             call_loc: Loc | None) -> dict[str, Any]:
        """Bind a spec's parameters from the caller's arguments and the defaults, in order."""
        for key, (_, loc) in args.items():
            if key not in spec.params:
                raise ResolveError(f"unknown parameter '{key}' for {spec.kind} '{spec.name}'",
                                   loc or call_loc, did_you_mean(key, spec.params))
        env: dict[str, Any] = {FUNCTIONS_KEY: spec.functions} if spec.functions else {}
        for decl in spec.params.values():
            if decl.name in args:
                value, loc = args[decl.name]
            elif decl.name == "M" and in_channels is not None:
                value, loc = in_channels, call_loc
            elif decl.unset:
                env[decl.name] = None
                continue
            elif decl.default is not None:
                loc = decl.loc
                value = (render_template(decl.default, env, spec.loc(("params", decl.name)))
                         if decl.type == "str" else
                         [evaluate(v, env, _value_loc(spec, decl)) for v in decl.default]
                         if isinstance(decl.default, list) else
                         evaluate(decl.default, env, _value_loc(spec, decl)))
            else:
                raise ResolveError(f"{spec.kind} '{spec.name}' needs parameter '{decl.name}'",
                                   call_loc if call_loc and call_loc.line else decl.loc,
                                   f"pass {hint_for(decl.name)} ({decl.doc or decl.type})")
            try:
                env[decl.name] = coerce(value, decl, loc, f"{spec.kind} '{spec.name}'")
            except ResolveError as exc:
                if decl.name not in args and decl.default is not None and decl.type != "str":
                    exc.hint = _constraint_hint(decl, env, exc.hint)
                    cli = [param_loc(n) for n in re.findall(r"[A-Za-z_]\w*", str(decl.default))
                           if n in args and param_loc(n) is not None]
                    if cli and not self.blocks:  # the root spec: its arguments are the -p items
                        exc.loc = cli[0]
                raise
        if "M" in env and in_channels is not None and env["M"] != in_channels:
            raise ResolveError(f"channel mismatch: {spec.kind} '{spec.name}' is given M={env['M']} "
                               f"but its input has {in_channels} channels", args.get("M", (0, call_loc))[1],
                               f"drop M (it is inferred) or set M={in_channels}")
        return env

    # -- specs ----------------------------------------------------------------------------------
    def instantiate(self, spec: Spec, args: dict[str, tuple[Any, Loc | None]], prefix: str,
                    inp: Value, call_loc: Loc | None) -> tuple[Value, dict[str, Value], dict]:
        """Resolve ``spec``'s nodes under ``prefix`` on input ``inp``.

        Returns the output value, every named value inside (relative names, dotted for nested
        blocks) and the bound parameters.
        """
        env = self.bind(spec, args, inp.shape[0], call_loc)
        if spec.kind == "model" and "channels" in spec.input:
            want = evaluate(spec.input["channels"], env, spec.loc(("input", "channels")))
            if want != inp.shape[0]:
                raise ResolveError(f"channel mismatch: model '{spec.name}' takes {want} input "
                                   f"channels, its input has {inp.shape[0]}", call_loc)
        _check_order(spec)
        outer = self.inherited
        if spec.defaults:
            self.inherited = {**outer, **{
                key: Default.of(raw, env, spec.loc(("defaults", key)))
                for key, raw in spec.defaults.items()}}
        try:
            return self._instantiate(spec, env, prefix, inp)
        finally:
            self.inherited = outer

    def _instantiate(self, spec: Spec, env: dict, prefix: str,
                     inp: Value) -> tuple[Value, dict[str, Value], dict]:
        values: dict[str, Value] = {"input": inp}
        prev = inp
        for entry in spec.nodes:
            if entry.for_ is not None:
                var, iter_text = parse_for(entry.for_, spec.loc(entry.path + ("for",)))
                items = evaluate(iter_text, env, spec.loc(entry.path + ("for",)).shifted(
                    len(entry.for_) - len(iter_text)))
                floc = spec.loc(entry.path + ("for",))
                if not isinstance(items, list):
                    raise SpecError(f"'for' needs a list or range, got {show(items)}", floc)
                base, last = prev, prev
                for i, item in enumerate(items):
                    before = self.size
                    out = self.entry(spec, entry, {**env, var: item}, base, values, prefix)
                    last = out or last
                    if i == 0:
                        self.fits(self.size - before, len(items) - 1, floc, "iterations")
                prev = last
            else:
                prev = self.entry(spec, entry, env, prev, values, prefix) or prev
        out = prev
        if spec.output is not None:
            out = self.lookup(spec, render_template(spec.output, env, spec.loc(("output",))),
                              values, spec.loc(("output",)))
        return out, values, {k: v for k, v in env.items() if not k.startswith("#")}

    # -- block instances ------------------------------------------------------------------------
    def instance(self, spec: Spec, args: dict[str, tuple[Any, Loc | None]], path: str, inp: Value,
                 call_loc: Loc | None) -> tuple[Value, dict[str, Value], dict]:
        """A block instance at ``path``: resolved once per (spec, arguments, input shape,
        registry state) into a :class:`Recipe`, then replayed under each instance's prefix.

        ESPNet holds 115 block instances of a dozen distinct kinds; replaying them is several
        times faster than resolving each one again (the same idea as einops' cached recipes).
        """
        if len(self.blocks) >= self.limits.block_depth:
            chain = " -> ".join(self.blocks[:3] + ("...",) + self.blocks[-2:] + (spec.name,))
            raise limits.exceeded("block_depth", f"blocks nested more than "
                                  f"{self.limits.block_depth} deep ({chain}); does a block "
                                  "include itself?", call_loc)
        key = (tuple(sorted((k, type(v), _hashable(v)) for k, (v, _) in args.items())), inp.shape,
               self.registry_state, tuple(sorted((k, _hashable(v))
                                                 for k, v in self.inherited.items())))
        try:
            recipes = spec.__dict__.setdefault(self.cache_name, {})
            recipe = recipes.get(key)
        except TypeError:  # an unhashable argument: resolve without the cache
            recipes, recipe = None, None
        if recipe is None:
            recipe = self.record(spec, args, path, inp, call_loc)
            if recipes is not None:
                recipes[key] = recipe
        return self.replay(recipe, path, inp)

    def record(self, spec: Spec, args: dict, path: str, inp: Value,
               call_loc: Loc | None) -> "Recipe":
        """Resolve one instance apart, under its real path (so errors name it fully)."""
        scratch = Resolver(self.registry, self.registry_state, self.blocks + (spec.name,),
                           self.inherited)
        scratch_in = scratch.add_node(inp.node, "input", [], {}, inp.shape, "", None)
        out, inner, bound = scratch.instantiate(spec, args, path + ".", scratch_in, call_loc)
        nodes = [n for n in scratch.nodes() if n.name != inp.node]
        return Recipe(path, inp.node, nodes, list(scratch.scopes.values()), out,
                      {k: v for k, v in inner.items() if k != "input"}, bound)

    def nodes(self) -> list[Node]:
        return [data["node"] for _, data in self.graph.nodes(data=True)]

    def finish(self, spec: Spec, out: Value, env: dict, batch: int) -> IR:
        """The linted IR of a resolved root ``spec`` with output ``out``."""
        ir = IR(spec.name, spec.kind, self.graph, out.node, batch, env, self.scopes, spec.file,
                spec.meta)
        prune(ir, self.cut)
        ir.lint()
        return ir

    def replay(self, recipe: "Recipe", path: str, inp: Value) -> tuple[Value, dict[str, Value], dict]:
        """Add a recorded instance at ``path`` on input ``inp``."""
        cut = len(recipe.path)
        self.grow(len(recipe.nodes) + len(recipe.scopes), recipe.scopes[0].loc if recipe.scopes
                  else None)

        def move(name: str) -> str:
            return inp.node if name == recipe.input else path + name[cut:]

        for s in recipe.scopes:  # Scope(...) directly: dataclasses.replace is 3x slower
            self.scopes[move(s.path)] = Scope(
                move(s.path), s.kind, s.block, move(s.parent), [move(i) for i in s.inputs],
                move(s.output), s.in_shapes, s.out_shape, dict(s.params), s.repeat,
                s.repeat_expr, s.loc)
        for n in recipe.nodes:
            name = move(n.name)
            if name in self.graph:
                raise ResolveError(f"two nodes resolve to the same name '{name}'", n.loc,
                                   "give each node instance a unique name")
            inputs = [move(i) for i in n.inputs]
            self.graph.add_node(name, node=Node(name, n.op, inputs, dict(n.attrs), n.shape,
                                                move(n.scope), n.loc))
            for src in inputs:
                self.graph.add_edge(src, name)
        out = Value(move(recipe.output.node), recipe.output.shape)
        inner = {k: Value(move(v.node), v.shape) for k, v in recipe.inner.items()}
        return out, inner, dict(recipe.bound)

    def entry(self, spec: Spec, entry: NodeSpec, env: dict, default_from: Value,
              values: dict[str, Value], prefix: str) -> Value | None:
        """Resolve one node entry in one binding; None when its ``when`` is false."""
        if entry.when is not None and not _condition(entry.when, env, spec.loc(entry.path + ("when",))):
            return None
        name_loc = spec.loc(entry.path + ("name",))
        name = render_template(entry.name, env, name_loc)
        problem = name_problem(name, self.limits.name_length)
        if problem:
            raise SpecError(f"invalid node name {quote(name)}: {problem}", name_loc,
                            "a node name is an identifier (letters, digits, '_'), not 'input', "
                            "a Python keyword or a torch.nn.Module attribute")
        if name in values:
            raise SpecError(f"node name {quote(name)} is used twice", name_loc,
                            "node names must be unique")
        if entry.from_ is None:
            inputs = [default_from]
        else:
            inputs = []
            for i, f in enumerate(entry.from_):
                floc = spec.loc(entry.path + ("from", i))
                inputs += [self.lookup(spec, ref, values, floc)
                           for ref in expand_refs(f, env, floc)]
        path = prefix + name
        loc = spec.loc(entry.path)
        if entry.repeat is not None or entry.seq is not None:
            count = None
            if entry.repeat is not None:
                rloc = spec.loc(entry.path + ("repeat",))
                count = evaluate(entry.repeat, env, rloc)
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise SpecError(f"repeat must be a whole number >= 0, got "
                                    f"{show(count)}", rloc)
                if count > self.limits.repeat:
                    raise limits.exceeded("repeat", f"repeat count {count:,} is more than the "
                                          "repeat limit", rloc)
            if len(inputs) != 1:
                raise ResolveError(f"'{name}' takes one input, got {len(inputs)}", loc,
                                   "concatenate or add the inputs in a node of their own first")
            scope = self.add_scope(Scope(
                path, "repeat" if count is not None else "seq",
                "" if count is None else render_template(entry.block or entry.op, env),
                _parent(prefix), [inputs[0].node], in_shapes=[inputs[0].shape], loc=loc,
                repeat=count, repeat_expr=None if entry.repeat is None else str(entry.repeat)))
            value = self.copies(spec, entry, env, path, name, count, inputs[0], values, prefix)
            scope.output, scope.out_shape = value.node, value.shape
        else:
            value, inner = self.unit(spec, entry, env, path, inputs, prefix)
            if entry.outputs is not None:
                value, inner = self.cut_at(spec, entry, env, path, inner)
            values.update({f"{name}.{k}": v for k, v in inner.items()})
        values[name] = value
        return value

    def copies(self, spec: Spec, entry: NodeSpec, env: dict, path: str, name: str,
               count: int | None, inp: Value, values: dict[str, Value], prefix: str) -> Value:
        """The ``count`` copies of a ``repeat`` (or the steps of a ``seq``: ``count`` None) at
        ``path``, each on the one before, from ``inp``; their values go into ``values`` as
        ``name.i`` and ``name.i.k``. Returns the last one's value."""
        value = inp
        steps = entry.seq if entry.seq is not None else itertools.repeat(entry, count)
        for i, step in enumerate(steps):
            before = self.size
            step_env = env if count is None else {**env, REPEAT_INDEX: i, REPEAT_COUNT: count}
            value, inner = self.unit(spec, step, step_env, f"{path}.{i}", [value], prefix)
            if i == 0 and count:
                self.fits(self.size - before, count - 1,
                          spec.loc(entry.path + ("repeat",)), "copies")
            values.update({f"{name}.{i}.{k}": v for k, v in inner.items()})
            values[f"{name}.{i}"] = value
        return value

    def cut_at(self, spec: Spec, entry: NodeSpec, env: dict, path: str,
               inner: dict[str, Value]) -> tuple[Value, dict[str, Value]]:
        """``outputs: [layer3, layer4]``: the block instance at ``path`` ends at those inner
        nodes (its value is the last); only they (and what is inside them) stay reachable, and
        what none of the network's outputs needs is pruned later (:mod:`espdsl.prune`)."""
        oloc = spec.key_loc(entry.path + ("outputs",))
        names = [render_template(n, env, oloc) for n in entry.outputs]
        for n in names:
            if n not in inner:
                raise ResolveError(f"'outputs' names {quote(n)}, not a node of '{path}'", oloc,
                                   did_you_mean(n, [k for k in inner if "." not in k]))
        kept = {k: v for k, v in inner.items()
                if any(k == n or k.startswith(n + ".") for n in names)}
        value = inner[names[-1]]
        scope = self.scopes[path]
        scope.output, scope.out_shape = value.node, value.shape
        self.cut.add(path)
        return value, kept

    def fits(self, each: int, more: int, loc: Loc | None, what: str) -> None:
        """Refuse early when ``more`` further copies of ``each`` entries would pass ``ir_size``."""
        if more > 0 and self.size + each * more > self.limits.ir_size:
            raise limits.exceeded("ir_size", f"the network would hold about "
                                  f"{self.size + each * more:,} ops and node instances "
                                  f"({more + 1:,} {what} of about {each:,} each), more than the "
                                  "ir_size limit", loc)

    def unit(self, spec: Spec, entry: NodeSpec, env: dict, path: str, inputs: list[Value],
             prefix: str) -> tuple[Value, dict[str, Value]]:
        """One op or one block instance at ``path``."""
        loc = spec.loc(entry.path)
        parent = path.rsplit(".", 1)[0] if "." in path[len(prefix):] else _parent(prefix)
        if entry.op is not None:
            return self.op(spec, entry, env, path, inputs, parent, loc), {}
        kind_loc = spec.loc(entry.path + ("block",))
        kind = render_template(entry.block, env, kind_loc)
        if kind in OPS:
            raise SpecError(f"'{kind}' is a primitive op, not a block", kind_loc,
                            f"write 'op: {kind}' instead of 'block: {kind}'")
        try:
            sub = self.registry.get(kind, kind_loc)
        except EspdslError as exc:
            given = [k for k, v in cli_values().items() if v.split("=", 1)[-1] == kind]
            if given:  # the name came from the command line: point there
                exc.loc, exc.context = param_loc(given[0]), ""
            elif exc.loc is None:
                exc.loc = kind_loc
            raise
        if len(inputs) != 1:
            raise ResolveError(f"block '{kind}' takes one input, '{path}' has {len(inputs)}", loc,
                               "concatenate or add the inputs in a node of their own first")
        args = {}
        for key in entry.args:
            if key not in sub.params:    # before evaluating it: its value may mean nothing here
                raise ResolveError(f"unknown parameter '{key}' for {sub.kind} '{sub.name}'",
                                   spec.key_loc(entry.path + (key,)),
                                   did_you_mean(key, sub.params) or
                                   "its parameters: " + ", ".join(sub.params))
        for key, raw in entry.args.items():
            aloc = spec.key_loc(entry.path + (key,))
            decl = sub.params.get(key)
            args[key] = (render_template(raw, env, aloc) if decl and decl.type == "str"
                         else evaluate(raw, env, aloc), aloc)
        for key, raw in entry.optional.items():
            if key in sub.params and key not in args:
                aloc = spec.key_loc(entry.path + ("optional", key))
                decl = sub.params[key]
                if _is_unset(raw, env):  # an unset parameter is not passed on
                    continue
                args[key] = (render_template(raw, env, aloc) if decl.type == "str"
                             else evaluate(raw, env, aloc), aloc)
        for key, value in self.inherited.items():   # scoped defaults: below explicit arguments
            if key in sub.params and key not in args and key != "M":
                args[key] = (value.get(sub.params[key].type == "str"), value.loc)
        scope = self.add_scope(Scope(path, "block", kind, parent, [inputs[0].node],
                                     in_shapes=[inputs[0].shape], loc=loc))
        try:
            out, inner, bound = self.instance(sub, args, path, inputs[0], loc)
        except EspdslError as exc:
            raise exc.with_context(f"in '{path}' ({kind}) at {loc}") from None
        scope.params, scope.output, scope.out_shape = bound, out.node, out.shape
        return out, inner      # without 'input': recorded instances keep none

    def op(self, spec: Spec, entry: NodeSpec, env: dict, path: str, inputs: list[Value],
           parent: str, loc: Loc) -> Value:
        op_loc = spec.loc(entry.path + ("op",))
        op = render_template(entry.op, env, op_loc)
        if op not in OPS or op == "input":
            hint = did_you_mean(op, [o for o in OPS if o != "input"])
            if op in self.registry:
                hint = f"'{op}' is a block: write 'block: {op}'"
            raise SpecError(f"unknown op {quote(op)}", op_loc, hint)
        opdef = OPS[op]
        if entry.optional:
            raise SpecError("'optional' applies to blocks, not ops", spec.key_loc(entry.path + ("optional",)))
        attrs = {}
        for key, raw in entry.args.items():
            aloc = spec.loc(entry.path + (key,))
            if key not in opdef.attrs:
                raise SpecError(f"unknown attribute '{key}' for op '{op}'",
                                spec.key_loc(entry.path + (key,)),
                                did_you_mean(key, opdef.attrs) if opdef.attrs else f"'{op}' takes no attributes")
            attr = opdef.attrs[key]
            value = (render_template(raw, env, aloc) if attr.type is str
                     else evaluate(raw, env, aloc))
            what = f"attribute '{key}' of op '{op}'"
            if attr.type is Pair:
                if isinstance(value, list):      # a YAML list: each entry is an expression
                    value = [evaluate(v, env, aloc) for v in value]
                try:
                    value = Pair.coerce(value)
                except ValueError as exc:
                    raise SpecError(f"{what} must be an int or [h, w], got {show(value)} "
                                    f"({exc})", aloc, f"e.g. '{key}: 3' or '{key}: [3, 1]'") from None
                parts = list(value) if isinstance(value, tuple) else [value]
                for part in parts:
                    check_value(part, int, what, aloc)
            else:
                value = check_value(value, attr.type, what, aloc)
                parts = [value]
            for part in parts:
                if attr.min is not None and part < attr.min:
                    raise SpecError(f"{what} must be at least {attr.min}, got {show(value)}", aloc)
                if attr.max is not None and part > attr.max:
                    raise SpecError(f"{what} must be at most {attr.max}, got {show(value)}", aloc)
            attrs[key] = value
        for key, attr in opdef.attrs.items():
            if key not in attrs and key in self.inherited:   # a scoped default
                default = self.inherited[key]
                attrs[key] = check_value(default.get(attr.type is str),
                                         attr.type if attr.type is not Pair else int,
                                         f"scoped default '{key}' for op '{op}'", default.loc)
            if key not in attrs:
                if attr.required:
                    raise SpecError(f"op '{op}' needs attribute '{key}'", loc, f"add '{key}: ...' ({attr.doc})")
                attrs[key] = attr.default
        n_in = len(inputs)
        if not opdef.min_inputs <= n_in <= opdef.max_inputs:
            want = (f"{opdef.min_inputs}" if opdef.min_inputs == opdef.max_inputs
                    else f"at least {opdef.min_inputs}")
            raise ResolveError(f"op '{op}' takes {want} input(s), '{path}' has {n_in}", loc,
                               "list the inputs with 'from: [a, b]'")
        in_shapes = [v.shape for v in inputs]
        _check_even_kernel(op, attrs, spec.loc(entry.path + ("kernel",)) if "kernel" in entry.args
                           else loc)
        attrs = complete_attrs(op, attrs, in_shapes)
        try:
            shape = opdef.out_shape(attrs, in_shapes)
        except OpError as exc:
            where = spec.loc(entry.path + (exc.field,)) if exc.field and exc.field in entry.args else loc
            what = (f"{exc}" if op not in ("concat", "add", "mul")
                    else f"channel/shape mismatch at {op} '{path}': {exc}")
            raise ResolveError(what, where, exc.hint) from None
        except (ArithmeticError, ValueError) as exc:  # e.g. a float scale too large for a size
            raise ResolveError(f"op '{op}' at '{path}' has no output size ({exc})", loc) from None
        if min(shape) < 1:
            raise ResolveError(f"op '{op}' at '{path}' would output an empty tensor "
                               f"{'x'.join(map(str, shape))} from {'x'.join(map(str, in_shapes[0]))}",
                               loc, "use a larger input, or a smaller kernel, stride or padding")
        for dim in shape:
            limits.check_int(dim, f"the output {shorten('x'.join(map(str, shape)))} of '{path}'",
                             loc)
        if op == "identity":
            return inputs[0]
        self.add_scope(Scope(path, "op", op, parent, [v.node for v in inputs], path, in_shapes,
                             shape, loc=loc))
        return self.add_node(path, op, inputs, attrs, shape, path, loc)

    def lookup(self, spec: Spec, name: str, values: dict[str, Value], loc: Loc) -> Value:
        if name in values:
            return values[name]
        known = [k for k in values if "." not in k]
        raise ResolveError(f"undefined input {quote(name)}", loc, did_you_mean(name, known))


_FROM_FOR = re.compile(r"(.+?)\s+for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)")


def expand_refs(text: str, env: dict, loc: Loc) -> list[str]:
    """Expand one ``from`` entry: a name template, or ``template for k in range(...)``.

    >>> expand_refs("s{2 ** k} for k in range(1, 4)", {}, None)
    ['s2', 's4', 's8']
    """
    m = _FROM_FOR.fullmatch(str(text).strip())
    if not m:
        return [render_template(text, env, loc)]
    items = evaluate(m.group(3), env, loc.shifted(m.start(3)) if loc else None)
    if not isinstance(items, list):
        raise SpecError(f"'for' in 'from' needs a list or range, got {show(items)}", loc)
    return [render_template(m.group(1), {**env, m.group(2): item}, loc) for item in items]


def _hashable(value: Any) -> Any:
    """A list parameter as a tuple, for the recipe cache's key."""
    return tuple(value) if isinstance(value, list) else value


def _check_even_kernel(op: str, attrs: dict, loc: Loc | None) -> None:
    """Refuse a convolution with an even kernel and no padding given.

    An odd kernel k has one 'same' padding, (k - 1) // 2 on each side, and PyTorch,
    torchvision and timm agree on it. An even kernel has none: ``(k - 1) // 2`` pads one side
    short, TensorFlow's 'SAME' pads the far side one more (asymmetric, which a Conv2d cannot
    hold), and patchify stems (a 4x4 stride-4 convolution, ConvNeXt's) pad nothing. The shapes
    can agree while the numbers differ, so the spec must say which it means.
    """
    if op != "conv" or attrs.get("padding") is not None:
        return
    (kh, kw), (dh, dw) = pair(attrs["kernel"]), pair(attrs["dilation"])
    if (dh * (kh - 1)) % 2 or (dw * (kw - 1)) % 2:
        raise SpecError(f"conv with the even kernel {pair_text(attrs['kernel'])} needs an explicit "
                        "padding", loc, "there is no symmetric 'same' padding for an even kernel: "
                        "write 'padding: 0' for a patchify stem (ConvNeXt's 4x4 stride 4, "
                        "timm's get_padding gives ((stride - 1) + dilation * (kernel - 1)) // 2), "
                        f"or 'padding: {dh * (kh - 1) // 2}' for PyTorch's (kernel - 1) // 2")


def _is_unset(raw: Any, env: dict) -> bool:
    """Is an ``optional:`` argument a bare reference to an unset (``default: null``) parameter?

    >>> _is_unset("g", {"g": None}), _is_unset("{g}", {"g": None}), _is_unset("K", {"K": 5})
    (True, True, False)
    """
    if raw is None:
        return True
    name = str(raw).strip()
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1].strip()
    return name in env and env[name] is None


def _constraint_hint(decl: ParamDecl, env: dict[str, Any], hint: str | None) -> str:
    """A parameter computed from others broke its bound: name the constraint on those others,
    e.g. d = N // K >= 1 means N >= K."""
    import re as _re
    text = str(decl.default)
    used = [n for n in dict.fromkeys(_re.findall(r"[A-Za-z_]\w*", text)) if n in env]
    values = ", ".join(f"{n}={env[n]}" for n in used)
    m = _re.fullmatch(r"\s*([A-Za-z_]\w*)\s*//\s*([A-Za-z_]\w*)\s*", text)
    bound = []
    if decl.min is not None:
        bound.append(f">= {decl.min}")
    if decl.max is not None:
        bound.append(f"<= {decl.max}")
    need = f"{decl.name} = {text} must be {' and '.join(bound)}"
    if m and decl.min == 1:
        need += f", so {m.group(1)} >= {m.group(2)}"
    out = f"{need} (here {values})" if values else need
    return f"{out}; {hint}" if hint else out


def _condition(raw: Any, env: dict, loc: Loc) -> bool:
    """A ``when:``: true, false, or an expression that gives one (not a number or a text).

    >>> _condition("K > 1", {"K": 3}, Loc("x.yaml", 1, 1))
    True
    >>> _condition("K", {"K": 3}, Loc("x.yaml", 1, 1))
    Traceback (most recent call last):
    ...
    espdsl.errors.ResolveError: x.yaml:1:1: error: 'when' must be true or false, got int 3; hint: write a comparison, e.g. 'K > 0'
    """
    value = evaluate(raw, env, loc)
    if not isinstance(value, bool):
        raise ResolveError(f"'when' must be true or false, got {type(value).__name__} "
                           f"{show(value)}", loc, "write a comparison, e.g. 'K > 0'")
    return value


def _dim(value: Any, what: str, loc: Loc | None) -> int:
    """A tensor dimension: a whole number from 1 to the ``int`` limit."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ResolveError(f"{what} must be a whole number of at least 1, got "
                           f"{show(value)}", loc)
    return limits.check_int(value, what, loc)


def _parent(prefix: str) -> str:
    return prefix[:-1] if prefix.endswith(".") else prefix


def _value_loc(spec: Spec, decl: ParamDecl) -> Loc:
    raw = spec.document.data.get("params", {}).get(decl.name) if spec.document else None
    return spec.loc(("params", decl.name, "default") if isinstance(raw, dict) else ("params", decl.name))


def _check_order(spec: Spec) -> None:
    """Find cycles and forward references among literal node names before resolving.

    The answer depends on the spec alone, and parsed specs are cached, so it is checked once.
    """
    if getattr(spec, "_order_checked", False):
        return
    order: dict[str, int] = {}
    for i, n in enumerate(spec.nodes):
        if n.name and "{" not in n.name and n.for_ is None:
            order.setdefault(n.name, i)
    deps = nx.DiGraph()
    for i, n in enumerate(spec.nodes):
        if n.name not in order or not n.from_:  # loops and templates resolve later
            continue
        for j, f in enumerate(n.from_):
            src = f.split(".")[0]
            if src in order:
                deps.add_edge(src, n.name, loc=spec.loc(n.path + ("from", j)))
    try:
        cycle = nx.find_cycle(deps)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = [u for u, _ in cycle] + [cycle[0][0]]
        u, v = cycle[-1][:2]
        raise ResolveError("cycle in the graph: " + " -> ".join(names), deps.edges[u, v]["loc"],
                           "a network is a DAG: break the cycle by changing a 'from'")
    for u, v, data in deps.edges(data=True):
        if order[u] > order[v]:
            raise ResolveError(f"'{v}' uses '{u}' before it is defined", data["loc"],
                               f"list '{u}' before '{v}' (nodes are written in order)")
    spec._order_checked = True


def resolve(spec: Spec, params: dict[str, Any] | None = None, *, registry: Registry,
            input_size: tuple[int, ...] | None = None) -> IR:
    """Resolve a spec with parameters into a linted :class:`IR`.

    ``input_size`` is ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``; by default a model's
    ``input`` section gives it and a block takes ``M`` channels at 56x56.
    """
    with limits.pinned():
        return _resolve(spec, params, registry=registry, input_size=input_size)


def _resolve(spec: Spec, params: dict[str, Any] | None, *, registry: Registry,
             input_size: tuple[int, ...] | None, resolver: type[Resolver] = Resolver) -> Any:
    params = dict(params or {})
    for path in spec.blocks:
        from pathlib import Path
        base = Path(spec.file).parent
        registry.add_dir((base / path) if not Path(path).is_absolute() else Path(path), loc=spec.loc(("blocks",)))
    r = resolver(registry)
    root_loc = Loc(spec.file)
    args = {k: (v, param_loc(k)) for k, v in params.items()}
    # bind once to learn the input channels and size (a block's M comes from its params)
    probe_env = r.bind(spec, args, None, root_loc)
    batch = 1
    if spec.kind == "model":
        cloc = spec.loc(("input", "channels"))
        channels = _dim(evaluate(spec.input.get("channels", 3), probe_env, cloc),
                        "the input's channels", cloc)
        size = tuple(_dim(evaluate(s, probe_env, spec.loc(("input", "size", i))),
                          "the input size", spec.loc(("input", "size", i)))
                     for i, s in enumerate(spec.input.get("size", DEFAULT_BLOCK_SIZE)))
    else:
        if "M" not in probe_env:
            raise SpecError(f"block '{spec.name}' declares no parameter M (its input channels)",
                            spec.loc(("params",)), "add 'M: {type: int}' to its params")
        channels, size = _dim(probe_env["M"], "M", root_loc), DEFAULT_BLOCK_SIZE
    if input_size is not None:
        if not isinstance(input_size, (tuple, list)):
            raise ResolveError(f"input size must be a tuple of 2 to 4 whole numbers, got "
                               f"{show(input_size)}", root_loc, "e.g. (1, 3, 512, 1024) or (512, 1024)")
        in_loc = param_loc("input") or root_loc
        reading = origin_text("input_reading")
        read = f" (read as {reading})" if reading else ""
        dims = tuple(_dim(d, "the input size", in_loc) for d in input_size)
        if len(dims) == 4:
            batch, c, h, w = dims
            if c != channels:
                raise ResolveError(f"input has {c} channels{read}, {spec.kind} '{spec.name}' takes "
                                   f"{channels}", in_loc, f"use an input of {channels} channels, "
                                   f"e.g. {batch}x{channels}x{h}x{w}")
            size = (h, w)
        elif len(dims) == 3:
            if dims[0] != channels:
                raise ResolveError(f"input has {dims[0]} channels{read}, {spec.kind} "
                                   f"'{spec.name}' takes {channels}", in_loc,
                                   f"write N x C x H x W or H x W, e.g. 1x{channels}x"
                                   f"{dims[1]}x{dims[2]}")
            size = dims[1:]
        elif len(dims) == 2:
            size = dims
        else:
            raise ResolveError(f"input size must be N,C,H,W or H,W, got {input_size}", root_loc)
    shape: Shape = (int(channels), int(size[0]), int(size[1]))
    inp = r.add_node("input", "input", [], {}, shape, "", None)
    r.scopes[""] = Scope("", "root", spec.name, None, [], in_shapes=[shape], loc=root_loc)
    out, _, env = r.instantiate(spec, args, "", inp, root_loc)
    r.scopes[""].output, r.scopes[""].out_shape, r.scopes[""].params = out.node, out.shape, env
    result = r.finish(spec, out, env, batch)
    if isinstance(result, IR) and spec.kind == "model" and input_size is None \
            and not {"channels", "size"} <= set(spec.input):
        missing = " and ".join(k for k in ("channels", "size") if k not in spec.input)
        what = "has no input: section" if not spec.input else f"input: gives no {missing}"
        result.meta = {**result.meta, "assumed_input": (
            f"the spec {what}; assumed {shape[0]} channels at "
            f"{shape[1]}x{shape[2]} (set input: {{channels: C, size: [H, W]}} or pass --input)")}
    return result
