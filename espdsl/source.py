"""Reading YAML safely while remembering where every key and value stood.

ruamel.yaml's round-trip loader builds on the safe constructor (no arbitrary Python objects) and
records line and column for every mapping key, mapping value and sequence item. We turn its
result into plain dicts and lists plus a table of locations keyed by the path to each value, so
nothing downstream depends on ruamel.

ruamel's loader is pure Python: it was two thirds of a cold ``espdsl.analyze("espnet")``. When
PyYAML's libyaml binding is installed (it comes with fvcore), files are first read from libyaml's
event stream (C, with the line and column of every event), and plain scalars are resolved with
ruamel's own YAML 1.2 resolver, so values and locations are ruamel's (a test compares both on
every library file). Anything outside the common subset (a syntax error, a tag, an anchor, a
duplicate key, a date) goes through ruamel, whose errors and rules stay the reference.

>>> doc = parse_yaml("a:\\n  b: [1, 2]\\n", "x.yaml")
>>> doc.data
{'a': {'b': [1, 2]}}
>>> str(doc.loc(("a", "b", 1)))
'x.yaml:2:10'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import limits
from .errors import EspdslError, Loc, SpecError, quote

PathKey = tuple  # a path into the document: keys and list indices


@dataclass
class Document:
    """A parsed YAML file: plain data plus the location of every value and key."""

    data: Any
    file: str
    values: dict[PathKey, Loc] = field(default_factory=dict)
    keys: dict[PathKey, Loc] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def loc(self, path: PathKey) -> Loc:
        """Location of the value at ``path``; falls back to the nearest enclosing value."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Loc(self.file, 1, 1))

    def key_loc(self, path: PathKey) -> Loc:
        """Location of the mapping key that ends ``path`` (or of its value if unknown)."""
        return self.keys.get(tuple(path)) or self.loc(path)


@lru_cache(maxsize=1)
def _ruamel() -> tuple[Any, Any, Any, Any]:
    """ruamel.yaml's loader, with a scanner and a composer that enforce the limits (imported
    only when a file needs the reference reader: ruamel takes ~15 ms to import)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.events import AliasEvent
    from ruamel.yaml.scanner import RoundTripScanner

    class _DepthScanner(RoundTripScanner):
        """ruamel's scanner, refusing flow brackets nested deeper than ``yaml_depth`` as it meets
        them: it looks ahead over nested ``[`` and ``{`` in quadratic time, so 3,000 brackets would
        take a second and 50,000 hours before the composer saw the first one."""

        def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:
            cap = limits.current().yaml_depth
            if len(self.indents) + len(self.flow_context) >= cap:  # as the composer counts
                mark = self.reader.get_mark()
                raise limits.exceeded("yaml_depth", f"YAML nested more than {cap} levels deep",
                                      Loc(self.loader.espdsl_file, mark.line + 1, mark.column + 1))
            super().fetch_flow_collection_start(TokenClass, to_push)


    class _CountingComposer(Composer):
        """ruamel's composer, counting values as they are composed, each alias as many values as
        its anchor holds, and the nesting depth: an alias bomb (anchors of anchors) or a deeply
        nested document is refused at the alias or the bracket that passes the limit, before any
        expansion and before Python's recursion limit."""

        def __init__(self, loader: Any = None) -> None:
            super().__init__(loader)
            self.warn_double_anchors = False  # YAML lets an anchor be redefined; no stderr noise
            self.limits = limits.current()
            self.values = 0
            self.sizes: dict[int, int] = {}   # id(anchored node) -> values it stands for
            self.nesting = 0
            self.open_anchors: set[str] = set()   # anchors whose newest node is being composed

        def _loc(self, mark: Any) -> Loc:
            return Loc(self.loader.espdsl_file, mark.line + 1, mark.column + 1)

        def _count(self, n: int, mark: Any) -> None:
            self.values += n
            if self.values > self.limits.yaml_values:
                raise limits.exceeded("yaml_values", f"the YAML document expands to more than "
                                      f"{self.limits.yaml_values:,} values (aliases counted at each "
                                      "use)", self._loc(mark))

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                if event.anchor in self.open_anchors:
                    raise SpecError(f"YAML alias '*{event.anchor}' refers to the node that holds "
                                    "it (a value that contains itself)", self._loc(event.start_mark),
                                    f"an alias may only repeat a finished node; copy the part of "
                                    f"'&{event.anchor}' it needs")
                node = super().compose_node(parent, index)
                self._count(self.sizes.get(id(node), 1), event.start_mark)
                return node
            if self.nesting >= self.limits.yaml_depth:
                raise limits.exceeded("yaml_depth", f"YAML nested more than {self.limits.yaml_depth} "
                                      "levels deep", self._loc(event.start_mark))
            before = self.values
            self._count(1, event.start_mark)
            self.nesting += 1
            anchor = getattr(event, "anchor", None)
            if anchor is not None:   # an alias names the newest node of its anchor
                self.open_anchors.add(anchor)
            try:
                node = super().compose_node(parent, index)
            finally:
                self.nesting -= 1
                self.open_anchors.discard(anchor)
            if anchor is not None:
                self.sizes[id(node)] = self.values - before
            return node

    return YAML, MarkedYAMLError, _DepthScanner, _CountingComposer


def parse_yaml(text: str, file: str) -> Document:
    """Parse YAML text into a :class:`Document`; syntax errors become located :class:`SpecError`.

    Aliases are allowed (a spec may share a mapping), but the document with every alias
    expanded must stay within the ``yaml_values`` limit and its nesting within ``yaml_depth``.
    """
    fast = _parse_fast(text, file)
    return fast if fast is not None else _parse_ruamel(text, file)


def _parse_ruamel(text: str, file: str) -> Document:
    YAML, MarkedYAMLError, scanner, composer = _ruamel()
    yaml = YAML(typ="rt", pure=True)
    yaml.Scanner, yaml.Composer = scanner, composer
    yaml.espdsl_file = file
    try:
        raw = yaml.load(text)
    except EspdslError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise SpecError(f"invalid YAML: {problem}", loc) from None
    except RecursionError:  # pragma: no cover - the composer's depth limit comes first
        raise limits.exceeded("yaml_depth", "YAML nested too deeply", Loc(file, 1, 1)) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SpecError(f"invalid YAML: {first[:200]}", Loc(file, 1, 1)) from None
    doc = Document(data=None, file=file)
    doc.lines = text.splitlines()
    doc.values[()] = Loc(file, 1, 1)
    doc.data = _plain(raw, (), doc)
    return doc


class _Unusual(Exception):
    """The fast reader met something it leaves to ruamel."""


_RESOLVER: Any = None
_NUMBER = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


def _scalar(value: str, style: str | None) -> Any:
    """A scalar as ruamel's YAML 1.2 round-trip loader gives it (plain types)."""
    if style:                          # quoted or block scalars are strings
        return value
    return _plain_scalar(value)


@lru_cache(maxsize=4096)
def _plain_scalar(value: str) -> Any:
    global _RESOLVER
    if _RESOLVER is None:
        from ruamel.yaml.nodes import ScalarNode
        from ruamel.yaml.resolver import VersionedResolver
        _RESOLVER = (VersionedResolver(version=(1, 2)), ScalarNode)
    resolver, node = _RESOLVER
    tag = str(resolver.resolve(node, value, (True, False)))
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag in _NUMBER:
        text = value.replace("_", "")
        sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if tag.endswith("float"):
            low = body.lower()
            if low in (".inf", ".nan"):
                return sign * float(low[1:])
            return sign * float(body)
        for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
            if body[:2].lower() == prefix:
                return sign * int(body[2:], base)
        return sign * int(body)
    raise _Unusual(tag)                # timestamps, merge keys, ...


def _parse_fast(text: str, file: str) -> Document | None:
    """The document from libyaml's events, or None (no libyaml, or something unusual)."""
    try:
        import yaml
        loader_cls = yaml.CSafeLoader
    except (ImportError, AttributeError):
        return None
    doc = Document(data=None, file=file)
    doc.lines = text.splitlines()
    doc.values[()] = Loc(file, 1, 1)
    loader = loader_cls(text)
    try:
        events = iter(lambda: loader.get_event() if loader.check_event() else None, None)
        data = _build(events, doc)
    except (yaml.YAMLError, _Unusual, StopIteration, ValueError):
        return None
    finally:
        loader.dispose()
    doc.data = data
    return doc


def _build(events: Any, doc: Document) -> Any:
    import yaml
    stack: list[tuple[Any, Any, Any]] = []       # (container, path, pending key or index)
    root: Any = None
    pending_root = True
    cap = limits.current()
    values = 0           # counted as the ruamel composer counts them (keys included)
    for event in events:
        if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentStartEvent)):
            continue
        if isinstance(event, (yaml.DocumentEndEvent, yaml.StreamEndEvent)):
            if isinstance(event, yaml.DocumentEndEvent):
                continue
            break
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            container, _, _ = stack.pop()
            if not stack:
                root, pending_root = container, False
            continue
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Unusual("anchor")
        if getattr(event, "tag", None) not in (None, "!"):     # an explicit tag
            raise _Unusual("tag")
        mark = event.start_mark
        values += 1
        if values > cap.yaml_values:
            raise limits.exceeded("yaml_values", f"the YAML document expands to more than "
                                  f"{cap.yaml_values:,} values (aliases counted at each use)",
                                  Loc(doc.file, mark.line + 1, mark.column + 1))
        if len(stack) >= cap.yaml_depth:
            raise limits.exceeded("yaml_depth", f"YAML nested more than {cap.yaml_depth} levels "
                                  "deep", Loc(doc.file, mark.line + 1, mark.column + 1))
        path: tuple = ()
        if stack:
            container, cpath, slot = stack[-1]
            if isinstance(container, dict):
                if slot is _KEY:             # this event is a key
                    if not isinstance(event, yaml.ScalarEvent):
                        raise _Unusual("complex key")
                    key = _scalar(event.value, event.style)
                    if key in container or not isinstance(key, str):
                        raise _Unusual("key")            # ruamel's error, or espdsl's
                    sub = cpath + (key,)
                    doc.keys[sub] = Loc(doc.file, mark.line + 1, mark.column + 1)
                    stack[-1] = (container, cpath, key)
                    continue
                path = cpath + (slot,)
            else:
                path = cpath + (len(container),)
            doc.values[path] = _past_quote(doc, mark.line, mark.column)
        if isinstance(event, yaml.ScalarEvent):
            value: Any = _scalar(event.value, event.style)
            if isinstance(value, float) and not math.isfinite(value):
                raise _Unusual("not finite")                # located by the ruamel path
        elif isinstance(event, yaml.MappingStartEvent):
            value = {}
        elif isinstance(event, yaml.SequenceStartEvent):
            value = []
        else:                                            # pragma: no cover
            raise _Unusual(type(event).__name__)
        if stack:
            container, cpath, slot = stack[-1]
            if isinstance(container, dict):
                container[slot] = value
                stack[-1] = (container, cpath, _KEY)
            else:
                container.append(value)
        if isinstance(value, (dict, list)):
            stack.append((value, path, _KEY if isinstance(value, dict) else None))
        elif not stack:
            root, pending_root = value, False
    if pending_root:
        return None
    return root


_KEY = object()


def read_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file, with a located error if it cannot be read (see
    :func:`read_text`)."""
    return parse_yaml(read_text(path), str(path))


def read_text(path: str | Path) -> str:
    """The text of a spec file, with a located error if it cannot be read.

    Only regular files are read (not a folder, a FIFO or ``/dev/zero``), only up to the
    ``file_bytes`` limit, and only UTF-8.
    """
    path = Path(path)
    cap = limits.current().file_bytes
    try:
        if not path.exists():
            raise FileNotFoundError
        if not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise SpecError(f"{what}, not a spec file", Loc(str(path)),
                            "give a .yaml spec file (or a block or model name)")
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}", None, hint="check the path") from None
    except (OSError, ValueError) as exc:  # e.g. a name too long, a NUL character
        raise SpecError(f"cannot read the file: {getattr(exc, 'strerror', None) or exc}",
                        Loc(str(path))) from None
    if len(data) > cap:
        raise limits.exceeded("file_bytes", f"the file is larger than {limits.describe('file_bytes')}",
                              Loc(str(path)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                        Loc(str(path), line, col), "save it as UTF-8") from None
    return text


def _past_quote(doc: Document, line: int, col: int) -> Loc:
    """1-based location of a scalar's text: past its opening quote, if it has one."""
    text = doc.lines[line] if line < len(doc.lines) else ""
    if col < len(text) and text[col] in "'\"":
        col += 1
    return Loc(doc.file, line + 1, col + 1)


def _text(text: str, loc: Loc) -> str:
    """YAML text as valid Unicode: JSON-style escaped surrogate pairs ('\\ud83d\\ude00', which
    YAML leaves as two characters) joined into one; a lone surrogate refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(f"text with a lone surrogate U+{ord(text[exc.start]):04X}", loc,
                        "write valid Unicode") from None
    return text


def _plain(node: Any, path: PathKey, doc: Document) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag and isinstance(node, (CommentedMap, CommentedSeq)):
        raise SpecError(f"YAML tag {tag} is not allowed (tags are not allowed in specs)", doc.loc(path))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            sub = path + (key,)
            try:
                kline, kcol = node.lc.key(key)
                doc.keys[sub] = Loc(doc.file, kline + 1, kcol + 1)
                vline, vcol = node.lc.value(key)
                doc.values[sub] = _past_quote(doc, vline, vcol)
            except (KeyError, TypeError, AttributeError):
                pass
            if not isinstance(key, str):
                raise SpecError(f"mapping key {quote(key)} is a {type(key).__name__}, not text",
                                doc.key_loc(sub), f"quote it: '{key}': ...")
            _text(key, doc.key_loc(sub))
            out[key] = _plain(value, sub, doc)
        return out
    if isinstance(node, CommentedSeq):
        out = []
        for i, value in enumerate(node):
            sub = path + (i,)
            try:
                line, col = node.lc.item(i)
                doc.values[sub] = _past_quote(doc, line, col)
            except (KeyError, TypeError, AttributeError):
                pass
            out.append(_plain(value, sub, doc))
        return out
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            raise SpecError(f"{float(node)} is not a finite number", doc.loc(path),
                            "specs hold finite numbers only")
        return float(node)
    if isinstance(node, str):
        return _text(str(node), doc.loc(path))
    raise SpecError(f"unsupported YAML value of type {type(node).__name__} (dates, binary data "
                    "and tags are not allowed)", doc.loc(path), "quote it to make it text")
