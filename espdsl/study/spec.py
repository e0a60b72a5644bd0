"""Study files: YAML in, a :class:`Study` of plain rows out, every key and value located.

A study names a base spec, parameters shared by every row, and rows: named ``variants``
(parameter overrides), a ``grid`` (every combination of some axes), or both; optionally the
paper's printed value of each row, extra quantities, ratios, plots and notes. A study with
``include`` is a collection that runs other studies. Nothing is resolved here: parameters are
checked against their specs when the study runs (:mod:`espdsl.study.run`). See
``docs/studies.md``.

>>> s = parse_study('''
... study: demo
... base: espnet_c
... params: {alpha2: 2}
... grid: {name: "a3_{alpha3}", axes: {alpha3: [3, 5]}}
... paper: {a3_3: {params: "0.187 M"}}
... ''', "demo.yaml")
>>> [(r.name, r.params) for r in s.rows]
[('a3_3', {'alpha3': 3}), ('a3_5', {'alpha3': 5})]
>>> p = s.rows[0].paper["params"]
>>> p.value, p.decimals, p.scale
(Decimal('0.187'), 3, 1000000)
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import Loc, StudyError, did_you_mean
from ..expr import render_template
from ..registry import data_dir
from ..schema import schema_error, validator
from ..source import Document, parse_yaml, read_yaml

#: Figures every row gets (see :mod:`espdsl.study.measure`), in table order.
STANDARD = ["params", "size_mb", "macs", "peak_mb", "rf"]
#: Figures a row may also carry: plain-storage size, Fig. 3g memory, the bench's latency.
EXTRA = ["size_bytes", "params_mb", "conv_out_mb", "peak_bytes", "stride", "latency_ms", "fps"]
ROW_FIELDS = ["name", "base", "group"]
_PRINTED = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*(M|K|k|G|MB|x|×)?\s*", re.ASCII)
_SCALE = {"M": 10 ** 6, "K": 10 ** 3, "k": 10 ** 3, "G": 10 ** 9}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\.(\w+)(?:\s*([/-])\s*([A-Za-z_]\w*)\.(\w+))?"
                          r"(?::([^{}]*))?\}")


@dataclass(frozen=True)
class Printed:
    """A value as the paper prints it: ``'0.183 M'`` is 0.183 million, to 3 decimals."""

    text: str
    value: Decimal
    decimals: int
    scale: int
    loc: Loc | None = None


@dataclass
class Match:
    """Search the listed values of some parameters for the row closest to ``to`` in ``by``."""

    to: str
    by: str
    search: dict[str, list]
    loc: Loc | None = None


@dataclass
class Row:
    """One row of a study before it runs: which spec, with which parameters."""

    name: str
    base: str
    params: dict[str, Any]
    locs: dict[str, Loc]                       # where each parameter value stands
    paper: dict[str, Printed] = field(default_factory=dict)
    group: str = ""
    doc: str = ""
    match: Match | None = None
    loc: Loc | None = None
    keys: dict[str, Loc] = field(default_factory=dict)   # where each parameter name stands


@dataclass
class Quantity:
    """A figure of part of the network: ``of`` summed (or taken) over spec node ``scopes``."""

    name: str
    of: str
    scopes: list[str]
    doc: str = ""
    loc: Loc | None = None


@dataclass
class Ratio:
    """A claim of the form "row ``of`` has r times the ``quantity`` of row ``to``"."""

    name: str
    of: str
    to: str
    quantity: str
    paper: Printed | None = None
    doc: str = ""
    loc: Loc | None = None


@dataclass
class Plot:
    """One PNG: ``kind`` over columns of the rows (see docs/studies.md)."""

    name: str
    kind: str
    x: str | None = None
    y: list[str] = field(default_factory=list)
    size: str | None = None
    series: str | None = None
    label: str = "name"
    groups: list[str] | None = None
    title: str = ""
    logx: bool = False
    logy: bool = False
    loc: Loc | None = None


@dataclass
class Study:
    """A parsed study file (or a collection of studies, when ``parts`` is not empty)."""

    name: str
    title: str
    doc: str
    file: str
    params: dict[str, Any] = field(default_factory=dict)
    locs: dict[str, Loc] = field(default_factory=dict)
    keys: dict[str, Loc] = field(default_factory=dict)
    input: tuple[int, ...] | None = None
    rounding: str = "truncate"
    blocks: list[Path] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    quantities: list[Quantity] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    columns: list[str] | None = None
    notes: list[tuple[str, Loc]] = field(default_factory=list)
    parts: list["Study"] = field(default_factory=list)
    document: Document | None = None

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def settings(self) -> list[str]:
        """Every parameter some row sets, in the order they first appear."""
        seen: dict[str, None] = dict.fromkeys(self.params)
        for r in self.rows:
            seen.update(dict.fromkeys(r.params))
            if r.match:
                seen.update(dict.fromkeys(r.match.search))
        return list(seen)

    def columns_known(self) -> list[str]:
        return (ROW_FIELDS + STANDARD + EXTRA + [q.name for q in self.quantities]
                + self.settings())


def studies_dir() -> Path:
    """The folder of the studies shipped with espdsl (``zoo/studies``)."""
    return data_dir("zoo") / "studies"


def list_studies() -> list[str]:
    """Names of the shipped studies.

    >>> "fig5" in list_studies()
    True
    """
    return sorted(p.stem for p in studies_dir().glob("*.yaml"))


def find_study(ref: str | Path, relative_to: str | Path | None = None, loc: Loc | None = None) -> Path:
    """The file of a study given by name (a shipped one) or by path.

    >>> find_study("fig5").name, str(find_study("mine.yaml", "studies/x.yaml"))
    ('fig5.yaml', 'studies/mine.yaml')
    """
    text = str(ref)
    if isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if relative_to is not None and not path.is_absolute():
            path = Path(relative_to).parent / path
        return path
    path = studies_dir() / f"{text}.yaml"
    if not path.is_file():
        raise StudyError(f"unknown study '{text}'", loc, did_you_mean(text, list_studies()))
    return path


def read_study(ref: str | Path, *, _seen: tuple = ()) -> Study:
    """Read a study by name or path (its name must match the file's stem)."""
    path = find_study(ref)
    doc = read_yaml(path)
    study = study_from_document(doc, _seen=_seen + (str(path.resolve()),))
    if study.name != path.stem:
        raise StudyError(f"study '{study.name}' is defined in a file named '{path.stem}.yaml'",
                         doc.loc(("study",)), f"rename the file to '{study.name}.yaml' or the study "
                         f"to '{path.stem}'")
    return study


def parse_study(text: str, file: str = "<string>") -> Study:
    """Parse study text (YAML) into a :class:`Study`."""
    return study_from_document(parse_yaml(text, file))


def parse_printed(raw: Any, loc: Loc | None = None) -> Printed:
    """A printed value: ``'0.183 M'``, ``'1.40'``, ``33``, ``'6.5x'``.

    >>> parse_printed("1.40").decimals, parse_printed("6.5x").value
    (2, Decimal('6.5'))
    """
    text = str(raw)
    m = _PRINTED.fullmatch(text)
    if not m or isinstance(raw, bool):
        raise StudyError(f"cannot read the printed value {raw!r}", loc,
                         "write a number as printed, quoted to keep its digits, with an optional "
                         "M, K or G for millions, thousands, billions: e.g. '0.183 M' or '1.40'")
    number = m.group(1)
    decimals = len(number.split(".")[1]) if "." in number else 0
    return Printed(text.strip(), Decimal(number), decimals, _SCALE.get(m.group(2) or "", 1), loc)


def study_from_document(doc: Document, *, _seen: tuple = ()) -> Study:
    """Check a parsed document against ``study.schema.json`` and build the :class:`Study`."""
    if not isinstance(doc.data, dict):
        raise StudyError("a study is a YAML mapping starting with 'study: NAME'", doc.loc(()))
    err = schema_error(validator("study.schema.json"), doc, StudyError)
    if err:
        raise err
    data = doc.data
    study = Study(name=data["study"], title=data.get("title", data["study"]), doc=data.get("doc", ""),
                  file=doc.file, rounding=data.get("rounding", "truncate"), document=doc,
                  notes=[(n, doc.loc(("notes", i))) for i, n in enumerate(data.get("notes", []))])
    if "include" in data:
        _collection(study, doc, _seen)
        return study
    study.params = dict(data.get("params") or {})
    study.locs = {k: doc.loc(("params", k)) for k in study.params}
    study.keys = {k: doc.key_loc(("params", k)) for k in study.params}
    study.input = _input(data.get("input"), doc)
    study.blocks = [Path(doc.file).parent / b for b in data.get("blocks", [])]
    base = data.get("base")
    study.rows = [_variant(v, ("variants", i), base, doc) for i, v in enumerate(data.get("variants", []))]
    if "grid" in data:
        study.rows += _grid(data["grid"], base, doc)
    if not study.rows:
        raise StudyError("a study needs 'variants', a 'grid' or 'include'", doc.loc(()),
                         "see docs/studies.md")
    _check_names(study, doc)
    for name, values in (data.get("paper") or {}).items():
        rows = [r for r in study.rows if r.name == name]
        if not rows:
            raise StudyError(f"'paper' names no row '{name}'", doc.key_loc(("paper", name)),
                             did_you_mean(name, [r.name for r in study.rows]))
        rows[0].paper.update({k: parse_printed(v, doc.loc(("paper", name, k))) for k, v in values.items()})
    study.quantities = [Quantity(q["name"], q["of"], [q["scope"]] if isinstance(q["scope"], str)
                                 else list(q["scope"]), q.get("doc", ""), doc.loc(("quantities", i)))
                        for i, q in enumerate(data.get("quantities", []))]
    study.ratios = [Ratio(r["name"], r["of"], r["to"], r["quantity"],
                          parse_printed(r["paper"], doc.loc(("ratios", i, "paper"))) if "paper" in r else None,
                          r.get("doc", ""), doc.loc(("ratios", i)))
                    for i, r in enumerate(data.get("ratios", []))]
    study.plots = [_plot(p, ("plots", i), doc) for i, p in enumerate(data.get("plots", []))]
    study.columns = data.get("columns")
    _check_references(study, doc)
    return study


def _collection(study: Study, doc: Document, seen: tuple) -> None:
    other = [k for k in ("base", "params", "variants", "grid", "paper", "quantities", "ratios",
                         "plots", "columns", "input", "blocks") if k in doc.data]
    if other:
        raise StudyError(f"a collection ('include') cannot also have '{other[0]}'",
                         doc.key_loc((other[0],)), "put rows in a study of their own and include it")
    for i, ref in enumerate(doc.data["include"]):
        loc = doc.loc(("include", i))
        path = find_study(ref, doc.file if ("/" in ref or ref.endswith((".yaml", ".yml"))) else None, loc)
        if str(path.resolve()) in seen:
            raise StudyError(f"study '{ref}' includes itself", loc, "a collection cannot include itself")
        try:
            part = read_study(path, _seen=seen)
        except StudyError as exc:
            raise exc.with_context(f"included at {loc}") from None
        if part.name in [p.name for p in study.parts]:
            raise StudyError(f"study '{part.name}' is included twice", loc, "list each study once")
        study.parts.append(part)


def _input(raw: Any, doc: Document) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        return tuple(raw)
    parts = re.split(r"[x,×]", str(raw).strip().lower())
    if not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts) or len(parts) not in (2, 3, 4):
        raise StudyError(f"bad input size '{raw}'", doc.loc(("input",)), "write e.g. 1x3x512x1024")
    return tuple(int(p) for p in parts)


def _variant(raw: dict, path: tuple, base: str | None, doc: Document) -> Row:
    params = dict(raw.get("params") or {})
    row = Row(raw["name"], raw.get("base", base), params,
              {k: doc.loc(path + ("params", k)) for k in params},
              {k: parse_printed(v, doc.loc(path + ("paper", k))) for k, v in (raw.get("paper") or {}).items()},
              raw.get("group", ""), raw.get("doc", ""), None, doc.loc(path),
              {k: doc.key_loc(path + ("params", k)) for k in params})
    if "match" in raw:
        m = raw["match"]
        row.match = Match(m["to"], m["by"], {k: list(v) for k, v in m["search"].items()},
                          doc.loc(path + ("match",)))
    if row.base is None:
        raise StudyError(f"row '{row.name}' has no base spec", row.loc,
                         "give the study a 'base:' or the variant its own")
    return row


def _grid(grid: dict, base: str | None, doc: Document) -> list[Row]:
    axes = grid["axes"]
    rows = []
    for combo in itertools.product(*axes.values()):
        env = dict(zip(axes, combo))
        name = render_template(grid["name"], env, doc.loc(("grid", "name")))
        params = {k: v for k, v in env.items() if k != "base"}
        row = Row(name, str(env.get("base", base)) if env.get("base", base) else None, params,
                  {k: doc.loc(("grid", "axes", k, axes[k].index(v))) for k, v in params.items()},
                  group=grid.get("group", ""), doc=grid.get("doc", ""), loc=doc.loc(("grid",)),
                  keys={k: doc.key_loc(("grid", "axes", k)) for k in params})
        if row.base is None:
            raise StudyError("grid rows have no base spec", doc.loc(("grid",)),
                             "give the study a 'base:' or make 'base' an axis")
        rows.append(row)
    return rows


def _plot(raw: dict, path: tuple, doc: Document) -> Plot:
    y = raw.get("y", [])
    plot = Plot(raw["name"], raw["kind"], raw.get("x"), [y] if isinstance(y, str) else list(y),
                raw.get("size"), raw.get("series"), raw.get("label", "name"), raw.get("groups"),
                raw.get("title", ""), raw.get("logx", False), raw.get("logy", False), doc.loc(path))
    need = {"scatter": ("x", "y"), "line": ("x", "y"), "bubble": ("x", "y", "size"), "bar": ("y",)}
    for key in need[plot.kind]:
        if not getattr(plot, key):
            raise StudyError(f"a {plot.kind} plot needs '{key}'", plot.loc,
                             "see docs/studies.md for what each kind of plot takes")
    return plot


def _check_names(study: Study, doc: Document) -> None:
    seen: dict[str, Row] = {}
    for row in study.rows:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", row.name):
            raise StudyError(f"invalid row name '{row.name}'", row.loc,
                             "row names are identifiers (they name the written spec files)")
        if row.name in seen:
            raise StudyError(f"two rows are named '{row.name}'", row.loc, "row names must be unique")
        seen[row.name] = row


def _check_references(study: Study, doc: Document) -> None:
    """Rows, quantities and columns named by matches, ratios, plots, columns and notes exist."""
    rows = [r.name for r in study.rows]
    plain = [r.name for r in study.rows if r.match is None]
    known = study.columns_known()
    figures = STANDARD + EXTRA + [q.name for q in study.quantities]

    def need(name: str, choices: list[str], what: str, loc: Loc | None) -> None:
        if name not in choices:
            raise StudyError(f"unknown {what} '{name}'", loc, did_you_mean(name, choices))

    for row in study.rows:
        for key in row.paper:
            need(key, figures, "quantity", row.paper[key].loc)
        if row.match:
            need(row.match.to, plain, "reference row (one that does not itself search)", row.match.loc)
    for q in study.quantities:
        if q.name in STANDARD + EXTRA or q.name in study.settings():
            raise StudyError(f"quantity '{q.name}' shadows a column of the same name", q.loc,
                             "give it another name")
    for r in study.ratios:
        need(r.of, rows, "row", r.loc)
        need(r.to, rows, "row", r.loc)
        need(r.quantity, figures, "quantity", r.loc)
    for p in study.plots:
        for col in [p.x, *p.y, p.size, p.series, p.label]:
            if col is not None:
                need(col, known, "column", p.loc)
        for g in p.groups or []:
            need(g, sorted({r.group for r in study.rows}), "group", p.loc)
    for i, col in enumerate(study.columns or []):
        need(col, study.settings() + EXTRA, "setting or figure", doc.loc(("columns", i)))
    for text, loc in study.notes:
        for m in _PLACEHOLDER.finditer(text):
            for row, col in ((m.group(1), m.group(2)), (m.group(4), m.group(5))):
                if row is not None:
                    need(row, rows, "row in a note", loc)
                    need(col, figures + study.settings(), "column in a note", loc)


def placeholders(text: str) -> list[re.Match]:
    """The ``{row.column}``, ``{row.column/row2.column:fmt}`` and ``{row.column-row2.column}``
    placeholders of a note."""
    return list(_PLACEHOLDER.finditer(text))
