"""Reading YAML safely while remembering where every key and value stood.

ruamel.yaml's round-trip loader builds on the safe constructor (no arbitrary Python objects) and
records line and column for every mapping key, mapping value and sequence item. We turn its
result into plain dicts and lists plus a table of locations keyed by the path to each value, so
nothing downstream depends on ruamel.

>>> doc = parse_yaml("a:\\n  b: [1, 2]\\n", "x.yaml")
>>> doc.data
{'a': {'b': [1, 2]}}
>>> str(doc.loc(("a", "b", 1)))
'x.yaml:2:10'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import Loc, SpecError

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


def parse_yaml(text: str, file: str) -> Document:
    """Parse YAML text into a :class:`Document`; syntax errors become located :class:`SpecError`."""
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise SpecError(f"invalid YAML: {problem}", loc) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        raise SpecError(f"invalid YAML: {exc}".splitlines()[0], Loc(file)) from None
    doc = Document(data=None, file=file)
    doc.lines = text.splitlines()
    doc.values[()] = Loc(file, 1, 1)
    doc.data = _plain(raw, (), doc)
    return doc


def read_yaml(path: str | Path) -> Document:
    """Read and parse a YAML file, with a located error if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no such file: {path}", None, hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    return parse_yaml(text, str(path))


def _past_quote(doc: Document, line: int, col: int) -> Loc:
    """1-based location of a scalar's text: past its opening quote, if it has one."""
    text = doc.lines[line] if line < len(doc.lines) else ""
    if col < len(text) and text[col] in "'\"":
        col += 1
    return Loc(doc.file, line + 1, col + 1)


def _plain(node: Any, path: PathKey, doc: Document) -> Any:
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
            if not isinstance(key, (str, int, float, bool)):
                raise SpecError(f"mapping keys must be plain scalars, got {type(key).__name__}",
                                doc.key_loc(sub))
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
        return float(node)
    if isinstance(node, str):
        return str(node)
    raise SpecError(f"unsupported YAML value of type {type(node).__name__} (tags are not allowed)",
                    doc.loc(path))
