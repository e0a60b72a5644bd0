"""The resolved IR: a flat DAG of primitive ops with hierarchical names.

Every IR node is one op from :data:`espdsl.ops.OPS`, named by its dotted path in the module
hierarchy (``level2.0.d4``), with its inputs, fully resolved attributes and its output shape.
Every spec node instance (a block, a repeat group, a seq group or a single op) is recorded as a
:class:`Scope`, so analysis and rendering can fold primitives back into the nodes a user wrote.
The IR is plain data: nothing here needs torch.

>>> import espdsl
>>> ir = espdsl.load("esp", M=100, N=100, K=5)
>>> ir.lint()
>>> [n.name for n in ir.nodes()][:3]
['input', 'c1.conv', 'd1.conv']
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from .errors import Loc, ResolveError
from .ops import OPS, OpError, Shape, complete_attrs

if TYPE_CHECKING:
    import networkx as nx

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Node names become attributes of a torch.nn.Module (the built GraphModule, the optimized
# build's PlannedModule, the .py export): none may shadow a public attribute those have (a test
# compares this with dir() of each), none may start with '_' (torch keeps its internals there),
# and 'input' names the network input.
RESERVED_NAMES = frozenset("""
    input T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
    graph code recompile print_readable to_folder add_submodule delete_submodule
    delete_all_unused_submodules meta shape_env espdsl_ir attach planned
""".split())


def name_problem(name: str, max_length: int | None = None) -> str | None:
    """Why ``name`` cannot name a node (None when it can).

    >>> [name_problem(n) for n in ["level1", "my-node", "class", "training", "_modules"]]
    [None, 'not an identifier', 'a Python keyword', 'an attribute of torch.nn.Module', "starts with '_' (torch's internals)"]
    """
    if max_length is not None and len(name) > max_length:
        return f"longer than the name_length limit ({len(name):,} > {max_length:,} characters)"
    if not NAME_RE.fullmatch(name):
        return "not an identifier"
    if keyword.iskeyword(name):
        return "a Python keyword"
    if name.startswith("_"):
        return "starts with '_' (torch's internals)"
    if name == "input":
        return "reserved for the input"
    if name in RESERVED_NAMES:
        return "an attribute of torch.nn.Module"
    return None


def class_name(name: str) -> str:
    """The Python class name of a built spec: ``espnet_c`` -> ``EspnetC``; always an identifier
    that is not a keyword (``none`` -> ``NetNone``, ``_1`` -> ``Net1``).

    >>> class_name("espnet_c"), class_name("none"), class_name("_1")
    ('EspnetC', 'NetNone', 'Net1')
    """
    camel = "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))
    if not camel.isidentifier() or keyword.iskeyword(camel):
        camel = "Net" + "".join(c for c in camel if c.isalnum() or c == "_")
    return camel if camel.isidentifier() else "Net"


@dataclass
class Node:
    """One primitive op in the IR."""

    name: str                # dotted path, unique; the module path for ops with state
    op: str                  # a key of OPS
    inputs: list[str]        # names of the producing nodes, in argument order
    attrs: dict[str, Any]    # every attribute resolved to a plain value
    shape: Shape             # output (C, H, W)
    scope: str               # path of the innermost spec-node instance that made it
    loc: Loc | None = None   # the spec node it came from


@dataclass
class Scope:
    """One instance of a spec node: a block, a repeat or seq group, or a single op."""

    path: str                 # dotted path, '' for the root
    kind: str                 # 'root', 'block', 'repeat', 'seq' or 'op'
    block: str                # block/model name, or the op name for kind 'op'
    parent: str | None        # path of the enclosing scope (None for the root)
    inputs: list[str] = field(default_factory=list)   # IR nodes feeding it
    output: str = ""          # IR node holding its result
    in_shapes: list[Shape] = field(default_factory=list)
    out_shape: Shape = (0, 0, 0)
    params: dict[str, Any] = field(default_factory=dict)  # bound parameters (blocks)
    repeat: int | None = None          # kind 'repeat': how many copies
    repeat_expr: str | None = None     # kind 'repeat': the spec text, e.g. 'alpha2'
    loc: Loc | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1] if self.path else ""


@dataclass
class IR:
    """A resolved network or block: the op graph, its scopes and what it was resolved from."""

    name: str                       # spec name, e.g. 'espnet'
    kind: str                       # 'model' or 'block'
    graph: nx.DiGraph               # node name -> {'node': Node}; edges producer -> consumer
    output: str                     # name of the node holding the result
    batch: int = 1
    params: dict[str, Any] = field(default_factory=dict)   # the root's bound parameters
    scopes: dict[str, Scope] = field(default_factory=dict)
    source: str = ""                # file the root spec came from
    meta: dict[str, Any] = field(default_factory=dict)     # extra spec sections (e.g. predict)

    # -- access -------------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        """All nodes in execution order (the order they were created, which is topological)."""
        return [data["node"] for _, data in self.graph.nodes(data=True)]

    def node(self, name: str) -> Node:
        return self.graph.nodes[name]["node"]

    def node_params(self, node: Node) -> int:
        """Trainable parameters of one node (from its op's rule in :data:`espdsl.ops.OPS`)."""
        ins = [self.node(i).shape for i in node.inputs]
        return sum(OPS[node.op].param_counts(node.attrs, ins, node.shape).values())

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, *self.node("input").shape)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, *self.node(self.output).shape)

    def top_level(self) -> list[Scope]:
        """The instances of the root spec's own nodes, in order."""
        return [s for s in self.scopes.values() if s.parent == ""]

    def children(self, path: str) -> list[Scope]:
        return [s for s in self.scopes.values() if s.parent == path]

    def nodes_in(self, path: str) -> list[Node]:
        """The primitive nodes inside a scope (all of them for the root '')."""
        if not path:
            return [n for n in self.nodes() if n.op != "input"]
        prefix = path + "."
        return [n for n in self.nodes() if n.name == path or n.scope == path
                or n.scope.startswith(prefix)]

    # -- checks -------------------------------------------------------------------------------
    def lint(self) -> None:
        """Check the graph's invariants; raise :class:`ResolveError` naming the first broken one.

        Checks: exactly one input node; every op is known; names are valid, unique paths; every
        input exists and comes earlier (topological order); edges match inputs; the graph is
        acyclic; stored shapes equal what the op's shape rule gives; scopes exist; the output
        exists.
        """
        seen: set[str] = set()
        inputs = [n for n in self.nodes() if n.op == "input"]
        if len(inputs) != 1:
            raise ResolveError(f"IR must have exactly one input node, found {len(inputs)}")
        for node in self.nodes():
            where = node.loc
            if node.op not in OPS:
                raise ResolveError(f"node '{node.name}' has unknown op '{node.op}'", where)
            if not all(NAME_RE.fullmatch(p) or (p.isascii() and p.isdigit()) for p in node.name.split(".")):
                raise ResolveError(f"node name '{node.name}' is not a dotted identifier path", where)
            for src in node.inputs:
                if src not in seen:
                    raise ResolveError(f"node '{node.name}' uses '{src}' before it is defined; "
                                       "nodes must be topologically ordered", where)
                if not self.graph.has_edge(src, node.name):
                    raise ResolveError(f"edge {src} -> {node.name} is missing", where)
            if self.graph.in_degree(node.name) != len(set(node.inputs)):
                raise ResolveError(f"node '{node.name}' has edges that are not among its inputs", where)
            if node.op != "input":
                opdef = OPS[node.op]
                if not opdef.min_inputs <= len(node.inputs) <= opdef.max_inputs:
                    raise ResolveError(f"node '{node.name}' ({node.op}) has {len(node.inputs)} inputs",
                                       where)
                in_shapes = [self.node(s).shape for s in node.inputs]
                try:
                    shape = opdef.out_shape(complete_attrs(node.op, node.attrs, in_shapes), in_shapes)
                except OpError as exc:
                    raise ResolveError(f"node '{node.name}': {exc}", where) from None
                if tuple(shape) != tuple(node.shape):
                    raise ResolveError(f"node '{node.name}' stores shape {node.shape}, its op "
                                       f"gives {shape}", where)
            if node.scope and node.scope not in self.scopes:
                raise ResolveError(f"node '{node.name}' names unknown scope '{node.scope}'", where)
            seen.add(node.name)
        import networkx as nx
        if not nx.is_directed_acyclic_graph(self.graph):
            raise ResolveError("the graph has a cycle: " + " -> ".join(
                e[0] for e in nx.find_cycle(self.graph)))
        if self.output not in self.graph:
            raise ResolveError(f"output '{self.output}' is not a node")

    # -- display ------------------------------------------------------------------------------
    def dump(self) -> str:
        """A readable listing, one node a line (like ``torch.fx.Graph.print_tabular``).

        >>> import espdsl
        >>> print(espdsl.load("cbr", M=3, N=16, stride=2).dump())  # doctest: +NORMALIZE_WHITESPACE
        input  input      -     3x56x56
        conv   conv       input 16x28x28  out=16 kernel=3 stride=2 groups=1 dilation=1 bias=False padding=1
        bn     batchnorm  conv  16x28x28  eps=0.001 momentum=0.1
        act    prelu      bn    16x28x28  shared=False init=0.25
        """
        rows = [(n.name, n.op, ",".join(n.inputs) or "-", "x".join(map(str, n.shape)),
                 " ".join(f"{k}={v}" for k, v in n.attrs.items())) for n in self.nodes()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(f"{r[i]:<{widths[i]}}" for i in range(4)).rstrip() + "  " + r[4]
                         if r[4] else "  ".join(f"{r[i]:<{widths[i]}}" for i in range(4)).rstrip()
                         for r in rows)
