"""The parsed spec: a block or a model file as plain dataclasses, with source locations.

A spec file is YAML checked against ``spec.schema.json`` (shipped with the package, so editors
can use it too), then turned into :class:`Spec`. Nothing is evaluated here: expressions and name
templates stay text until :mod:`espdsl.resolve` binds the parameters. See ``docs/grammar.md``.

>>> spec = parse_spec("block: tiny\\nparams: {N: 8}\\nnodes:\\n  - {name: c, op: conv, out: N}\\n")
>>> spec.name, spec.kind, list(spec.params), spec.nodes[0].args
('tiny', 'block', ['N'], {'out': 'N'})
"""
from __future__ import annotations

import keyword
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import doccache, limits
from .errors import Loc, SpecError, did_you_mean, quote
from .expr import FUNCTIONS, Function, _parse, check_text
from .ir import NAME_RE
from .schema import schema_error, validator
from .declaration import check_declaration
from .source import Document, parse_yaml, read_text

PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
NODE_KEYS = ("name", "op", "block", "from", "for", "when", "repeat", "seq", "optional", "doc",
             "outputs")
STEP_KEYS = ("op", "block", "optional", "doc")
TOP_KEYS = ("block", "model", "doc", "params", "input", "nodes", "output", "blocks", "predict", "meta",
            "weights", "functions", "defaults")


@dataclass
class ParamDecl:
    """A declared parameter: its type, default (text or value; None means required), choices.

    ``unset`` marks a parameter declared with ``default: null``: it is optional and, when no
    value is given, bound to None, and ``optional:`` block arguments that evaluate to None are
    not passed (a network can forward a module's parameter without imposing a default).
    """

    name: str
    type: str
    default: Any = None
    choices: list | None = None
    min: float | None = None
    max: float | None = None
    doc: str = ""
    loc: Loc | None = None
    unset: bool = False


@dataclass
class NodeSpec:
    """One entry of ``nodes`` (or one step of a ``seq``), unevaluated."""

    path: tuple                      # where it stands in the document, for locations
    name: str | None = None          # a name template, e.g. 'd{2 ** k}'
    op: str | None = None            # a primitive op (template)
    block: str | None = None         # a block or model name (template)
    from_: list[str] | None = None   # input name templates; None: the previous node
    for_: str | None = None          # 'k in range(K)'
    when: Any = None                 # condition expression
    repeat: Any = None               # count expression
    seq: list["NodeSpec"] | None = None
    args: dict[str, Any] = field(default_factory=dict)       # op attributes / block params
    optional: dict[str, Any] = field(default_factory=dict)   # block params passed only if declared
    doc: str = ""
    outputs: list[str] | None = None  # a block node cut at these inner nodes (a backbone)


@dataclass
class Spec:
    """A parsed block or model file."""

    name: str
    kind: str                                   # 'block' or 'model'
    params: dict[str, ParamDecl]
    nodes: list[NodeSpec]
    doc: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    blocks: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    document: Document | None = None
    file: str = "<string>"
    functions: dict[str, Function] = field(default_factory=dict)   # the spec's own functions
    defaults: dict[str, Any] = field(default_factory=dict)         # scoped defaults (text)

    def loc(self, path: tuple) -> Loc:
        return self.document.loc(path) if self.document else Loc(self.file)

    def key_loc(self, path: tuple) -> Loc:
        return self.document.key_loc(path) if self.document else Loc(self.file)


def _node_shape_error(err: Any) -> bool:
    """A node's or a step's structure (name, exactly one of op/block/seq, keys a step may not
    have): the schema says it for editors; :func:`_node` says it better, with the key."""
    path = tuple(err.absolute_path)
    return (err.validator in ("oneOf", "required", "not") and len(path) in (2, 4)
            and path[0] == "nodes" and (len(path) == 2 or path[2] == "seq"))


def _schema_error(doc: Document) -> SpecError | None:
    data = doc.data
    err = schema_error(validator("spec.schema.json"), doc, ignore=_node_shape_error)
    if err is None:
        return None
    has = [k for k in ("block", "model") if isinstance(data, dict) and k in data]
    if len(has) != 1:
        what = "both 'block' and 'model'" if has else "neither 'block' nor 'model'"
        return SpecError(f"a spec names {what}", doc.loc(()),
                         "start the file with 'block: NAME' or 'model: NAME'")
    if err.message.endswith("is a required property"):
        err.hint = "see docs/grammar.md for the keys a spec has"
    return err


def _check_name(name: str, what: str, doc: Document, path: tuple, loc: Loc) -> None:
    """Spec and parameter names are identifiers within the ``name_length`` limit (checked here
    with a full match: a JSON Schema pattern's ``$`` lets a trailing newline through), and a
    parameter name is not a Python keyword (expressions could not name it)."""
    cap = limits.current().name_length
    if len(name) > cap:
        raise limits.exceeded("name_length", f"{what} {quote(name)} is longer than the "
                              "name_length limit", loc)
    if not NAME_RE.fullmatch(name):
        raise SpecError(f"invalid {what} {quote(name)}", loc,
                        "names are identifiers: letters, digits and '_', not starting with a digit")
    if what == "parameter name" and keyword.iskeyword(name):
        raise SpecError(f"invalid {what} {quote(name)}: a Python keyword", loc,
                        f"expressions could not use it; call it e.g. '{name}_'")


def _param_decl(name: str, raw: Any, doc: Document, path: tuple) -> ParamDecl:
    loc = doc.key_loc(path)
    if not isinstance(raw, dict):
        raw = {"default": raw}
    default = raw.get("default")
    unset = "default" in raw and default is None
    ptype = raw.get("type")
    if ptype is None:
        if unset:
            raise SpecError(f"parameter '{name}' is unset (default: null) and has no type", loc,
                            "write e.g. '{type: int, default: null}'")
        if default is None:
            raise SpecError(f"parameter '{name}' needs a type or a default", loc,
                            "write e.g. '{type: int}' or '{default: 3}'")
        ptype = {bool: "bool", int: "int", float: "float", list: "list"}.get(type(default), "str")
        if ptype == "str" and not isinstance(default, str):
            ptype = "str"
    return ParamDecl(name, ptype, default, raw.get("choices"), raw.get("min"), raw.get("max"),
                     raw.get("doc", ""), loc, unset)


def _node(raw: dict, path: tuple, doc: Document, *, step: bool) -> NodeSpec:
    kinds = [k for k in ("op", "block", "seq") if k in raw]
    loc = doc.loc(path)
    allowed = STEP_KEYS if step else NODE_KEYS
    if len(kinds) != 1 or (step and "seq" in raw):
        want = "'op' or 'block'" if step else "'op', 'block' or 'seq'"
        got = " and ".join(f"'{k}'" for k in kinds) or "none of them"
        raise SpecError(f"a node needs exactly one of {want}, found {got}", loc,
                        "e.g. '{name: c1, op: conv, out: 16}' or '{name: l2, block: esp, N: 64}'")
    if not step and "name" not in raw:
        raise SpecError("a node needs a 'name'", loc, "add 'name: ...' (an identifier)")
    reserved_in_step = [k for k in NODE_KEYS if k in raw and k not in allowed]
    if reserved_in_step:
        raise SpecError(f"'{reserved_in_step[0]}' is not allowed in a seq step", doc.key_loc(
            path + (reserved_in_step[0],)), "a step takes 'op' or 'block' and its arguments")
    frm = raw.get("from")
    node = NodeSpec(
        path=path,
        name=str(raw["name"]) if "name" in raw else None,
        op=raw.get("op"), block=raw.get("block"),
        from_=[frm] if isinstance(frm, str) else frm,
        for_=raw.get("for"), when=raw.get("when"), repeat=raw.get("repeat"),
        args={k: v for k, v in raw.items() if k not in NODE_KEYS},
        optional=dict(raw.get("optional") or {}), doc=raw.get("doc", ""),
        outputs=[raw["outputs"]] if isinstance(raw.get("outputs"), str) else raw.get("outputs"),
    )
    if node.outputs is not None and "block" not in raw:
        raise SpecError("'outputs' cuts a block at inner nodes; this node has no block",
                        doc.key_loc(path + ("outputs",)), "e.g. {name: backbone, block: resnet18, "
                        "outputs: [layer3, layer4]}")
    if "seq" in raw:
        node.seq = [_node(s, path + ("seq", i), doc, step=True) for i, s in enumerate(raw["seq"])]
        if node.args:
            key = next(iter(node.args))
            raise SpecError(f"unknown key '{key}' on a seq node", doc.key_loc(path + (key,)),
                            "arguments go on the steps of the seq")
    return node


def _functions(raw: dict, doc: Document) -> dict[str, Function]:
    """A spec's ``functions:`` section: each ``name: {args: [a, b], body: "expression"}``;
    names and arguments are identifiers, a built-in is not redefined, and the body parses
    (errors located at the body). What a body may call is checked when it runs.

    >>> spec = parse_spec("block: b\\nparams: {M: {type: int}}\\nfunctions:\\n"
    ...                   "  half: {args: [v], body: v // 2}\\nnodes: [{name: c, op: relu}]\\n")
    >>> spec.functions["half"].args
    ('v',)
    """
    out: dict[str, Function] = {}
    for name, item in raw.items():
        path = ("functions", name)
        _check_name(str(name), "function name", doc, path, doc.key_loc(path))
        if name in FUNCTIONS:
            raise SpecError(f"function '{name}' is a built-in", doc.key_loc(path),
                            "give the spec's own function another name")
        if not isinstance(item, dict) or not isinstance(item.get("body"), str):
            raise SpecError(f"function '{name}' needs a 'body' expression", doc.loc(path),
                            "e.g. {args: [v, d], body: 'max(d, int(v + d / 2) // d * d)'}")
        args = item.get("args") or []
        for j, arg in enumerate(args):
            _check_name(str(arg), "parameter name", doc, path + ("args", j),
                        doc.loc(path + ("args", j)))
        if len(set(args)) != len(args):
            raise SpecError(f"function '{name}' names an argument twice", doc.loc(path + ("args",)))
        body_loc = doc.loc(path + ("body",))
        check_text(item["body"], body_loc)
        try:
            _parse(item["body"].strip())
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise SpecError(f"cannot parse the body of function '{name}': "
                            f"{getattr(exc, 'msg', exc)}", body_loc,
                            "a body is one expression over the arguments") from None
        out[name] = Function(str(name), tuple(map(str, args)), item["body"], body_loc)
    return out


def spec_from_document(doc: Document, *, schema_checked: bool = False) -> Spec:
    """Validate a parsed document against the grammar and build the :class:`Spec`
    (``schema_checked``: the document is known to pass the JSON Schema, e.g. it came from
    :mod:`espdsl.doccache`)."""
    if not isinstance(doc.data, dict):
        raise SpecError("a spec is a YAML mapping with 'block' or 'model' and 'nodes'", doc.loc(()))
    err = None if schema_checked else _schema_error(doc)
    if err:
        raise err
    data = doc.data
    kind = "block" if "block" in data else "model"
    _check_name(data[kind], f"{kind} name", doc, (kind,), doc.loc((kind,)))
    for name in data.get("params") or {}:
        _check_name(name, "parameter name", doc, ("params", name), doc.key_loc(("params", name)))
    params = {name: _param_decl(name, raw, doc, ("params", name))
              for name, raw in (data.get("params") or {}).items()}
    for p in params.values():
        if p.type not in PARAM_TYPES:
            raise SpecError(f"unknown parameter type '{p.type}'", p.loc, did_you_mean(p.type, PARAM_TYPES))
        check_declaration(p, doc, ("params", p.name))
    nodes = [_node(n, ("nodes", i), doc, step=False) for i, n in enumerate(data["nodes"])]
    for name, section in (data.get("weights") or {}).items():   # key maps: checked here, located
        from .keymap import KeyMap
        KeyMap.parse(name, section, doc.loc(("weights", name)),
                     lambda i, name=name: doc.loc(("weights", name, "keys", i)), params=params)
    functions = _functions(data.get("functions") or {}, doc)
    defaults = dict(data.get("defaults") or {})
    for key in defaults:
        _check_name(key, "parameter name", doc, ("defaults", key), doc.key_loc(("defaults", key)))
    return Spec(
        functions=functions, defaults=defaults,
        name=data[kind], kind=kind, params=params, nodes=nodes, doc=data.get("doc", ""),
        input=data.get("input") or {}, output=data.get("output"), blocks=data.get("blocks") or [],
        meta={k: data[k] for k in ("predict", "meta", "weights") if k in data}, document=doc,
        file=doc.file,
    )


def parse_spec(text: str, file: str = "<string>") -> Spec:
    """Parse spec text (YAML) into a :class:`Spec`."""
    return spec_from_document(parse_yaml(text, file))


def read_spec(path: str | Path) -> Spec:
    """Read a spec file; the name it declares must match the file's stem.

    Parsed specs are cached by the file's identity (path, modification time, size): a spec is
    plain data that resolving never changes, and YAML parsing is most of the cost of a load.
    """
    try:
        stat = os.stat(path)  # the file itself (device, inode), not its resolved path: faster
        key = (str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError):
        key = None
    if key is None:
        return _read_spec(Path(path))
    return _read_spec_cached(Path(path), key)


@lru_cache(maxsize=256)
def _read_spec_cached(path: Path, key: tuple) -> Spec:
    return _read_spec(path)


def _read_spec(path: Path) -> Spec:
    text = read_text(path)
    doc = doccache.fetch(text, str(path))
    if doc is not None:
        spec = spec_from_document(doc, schema_checked=True)
    else:
        spec = spec_from_document(parse_yaml(text, str(path)))
        doccache.keep(text, spec.document)
    stem = Path(path).stem
    if spec.name != stem:
        raise SpecError(f"{spec.kind} '{spec.name}' is defined in a file named '{stem}.yaml'",
                        spec.loc((spec.kind,)), f"rename the file to '{spec.name}.yaml' or the "
                        f"{spec.kind} to '{stem}'")
    return spec
