"""Design-space files: YAML in, a :class:`Space` of plain data out, every key and value located.

A space names a base spec, fixed parameters, **axes** (a list of values, an integer
``range``, ``choices``; with ``per: [2, 3]`` one axis per place), **derived** parameters
(expressions over the axes), **when** conditions, **constraints** on analysed figures
(``params <= 400000``) and **objectives** (``{min: params}``, ``{max: rf}``, ``{min: latency}``).
Nothing is resolved here: parameters are checked against the base spec when the space runs.
Expressions go through espdsl's evaluator (:mod:`espdsl.expr`), never Python's ``eval``. See
``docs/explore.md``.

>>> s = parse_space('''
... space: demo
... base: espnet_c
... axes:
...   alpha3: {range: [1, 3]}
...   module: {choices: [esp, mobilenet], per: [2, 3]}
... derived: {K: "4 if module2 == 'esp' else 5"}
... when: ["alpha3 >= 2"]
... constraints: ["params <= 400000"]
... objectives: [{min: params}, {max: rf}]
... ''', "demo.yaml")
>>> [(a.name, a.values) for a in s.axes]
[('alpha3', [1, 2, 3]), ('module2', ['esp', 'mobilenet']), ('module3', ['esp', 'mobilenet'])]
>>> s.size, [(o.sense, o.figure) for o in s.objectives]
(12, [('min', 'params'), ('max', 'rf')])
>>> s.point({"alpha3": 1, "module2": "esp", "module3": "esp"}) is None
True
>>> s.point({"alpha3": 2, "module2": "esp", "module3": "mobilenet"})
{'alpha3': 2, 'module2': 'esp', 'module3': 'mobilenet', 'K': 4}
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EspdslError, Loc, StudyError, did_you_mean
from ..expr import evaluate, render_template
from ..registry import data_dir
from ..schema import schema_error, validator
from ..source import Document, parse_yaml, read_yaml
from ..study.spec import _input

#: Figures a row has without building the network (``espdsl.totals``), and the measured one.
FIGURES = ["params", "macs", "peak_mb", "peak_bytes", "conv_out_mb", "rf", "stride"]
MEASURED = ["latency"]
DEFAULT_LIMIT = 50_000
DEFAULT_TRIALS = 2_000
DEFAULT_POPULATION = 50
_CONSTRAINT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S.*)$")


class SpaceError(StudyError):
    """Raised when a design-space file (``espdsl explore``) is malformed, names an unknown
    parameter or figure, or an expression in it fails."""


@dataclass
class Axis:
    """One parameter and the values it takes."""

    name: str
    values: list
    loc: Loc | None = None
    integer_range: tuple[int, int, int] | None = None   # (lo, hi, step) for a range


@dataclass
class Constraint:
    """``figure op bound``: e.g. ``params <= 400000``."""

    figure: str
    op: str
    bound: float
    text: str
    loc: Loc | None = None

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.bound, "<": value < self.bound,
                ">=": value >= self.bound, ">": value > self.bound}[self.op]

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bound, relative to it (0 when it holds)."""
        if self.holds(value):
            return 0.0
        return abs(value - self.bound) / max(abs(self.bound), 1.0) + 1e-9


@dataclass
class Objective:
    sense: str          # 'min' or 'max'
    figure: str
    loc: Loc | None = None


@dataclass
class Reference:
    name: str
    base: str
    params: dict[str, Any]
    doc: str = ""
    loc: Loc | None = None


@dataclass
class Space:
    """A parsed space file."""

    name: str
    title: str
    doc: str
    file: str
    base: str
    params: dict[str, Any] = field(default_factory=dict)
    input: tuple[int, ...] | None = None
    blocks: list[Path] = field(default_factory=list)
    axes: list[Axis] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)
    when: list[tuple[str, Loc]] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    objectives: list[Objective] = field(default_factory=list)
    name_template: str | None = None
    references: list[Reference] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    trials: int = DEFAULT_TRIALS
    population: int = DEFAULT_POPULATION
    latency_top: int = 10
    latency_runs: int = 200
    latency_warmup: int = 10
    document: Document | None = None
    derived_locs: dict[str, Loc] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Points before the ``when`` conditions: the product of the axes' sizes."""
        return math.prod(len(a.values) for a in self.axes)

    def point(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The parameters of a point (its axis values and derived values), or None when a
        ``when`` condition does not hold."""
        env = {**self.params, **values}
        for key, raw in self.derived.items():
            loc = self.derived_locs.get(key)
            if isinstance(raw, str) and "{" in raw:
                env[key] = render_template(raw, env, loc)
            else:
                env[key] = evaluate(raw, env, loc)
        for text, loc in self.when:
            if not evaluate(text, env, loc):
                return None
        return {k: env[k] for k in [*values, *self.derived]}

    def label(self, values: dict[str, Any]) -> str:
        """A point's row name."""
        if self.name_template:
            text = render_template(self.name_template, {**self.params, **values})
        else:
            text = "_".join(f"{a.name}{values[a.name]}" for a in self.axes)
        return re.sub(r"[^A-Za-z0-9_]", "_", text)

    def helpers(self) -> set[str]:
        """Names read by a derived value, a condition or the name template: an axis among them
        need not be a parameter of the base spec (e.g. a width multiplier that sets channels)."""
        texts = [str(v) for v in self.derived.values()] + [t for t, _ in self.when]
        texts.append(self.name_template or "")
        return {n for text in texts for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}

    def figures_used(self) -> list[str]:
        return list(dict.fromkeys([c.figure for c in self.constraints]
                                  + [o.figure for o in self.objectives]))


def spaces_dir() -> Path:
    """The folder of the spaces shipped with espdsl (``zoo/spaces``)."""
    return data_dir("zoo") / "spaces"


def list_spaces() -> list[str]:
    """Names of the shipped spaces.

    >>> "espnet_c_levels" in list_spaces()
    True
    """
    return sorted(p.stem for p in spaces_dir().glob("*.yaml"))


def find_space(ref: str | Path) -> Path:
    """The file of a space given by name (a shipped one) or by path."""
    text = str(ref)
    if isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text)
    path = spaces_dir() / f"{text}.yaml"
    if not path.is_file():
        raise SpaceError(f"unknown space '{text}'", None, did_you_mean(text, list_spaces()))
    return path


def read_space(ref: str | Path) -> Space:
    """Read a space by name or path (its name must match the file's stem)."""
    path = find_space(ref)
    if not path.is_file():
        raise SpaceError(f"no such space file: {path}", None, "give a .yaml file or a shipped "
                         f"space's name ({', '.join(list_spaces())})")
    doc = read_yaml(path)
    space = space_from_document(doc)
    if space.name != path.stem:
        raise SpaceError(f"space '{space.name}' is defined in a file named '{path.stem}.yaml'",
                         doc.loc(("space",)), f"rename the file to '{space.name}.yaml' or the "
                         f"space to '{path.stem}'")
    return space


def parse_space(text: str, file: str = "<string>") -> Space:
    """Parse space text (YAML) into a :class:`Space`."""
    return space_from_document(parse_yaml(text, file))


def space_from_document(doc: Document) -> Space:
    """Check a parsed document against ``space.schema.json`` and build the :class:`Space`."""
    if not isinstance(doc.data, dict):
        raise SpaceError("a space is a YAML mapping starting with 'space: NAME'", doc.loc(()))
    err = schema_error(validator("space.schema.json"), doc, SpaceError)
    if err:
        raise err
    data = doc.data
    if "axes" not in data:
        raise SpaceError("a space needs 'axes'", doc.loc(()),
                         "e.g. axes: {alpha3: {range: [1, 10]}, module: [esp, mobilenet]}")
    search = data.get("search") or {}
    latency = data.get("latency") or {}
    space = Space(name=data["space"], title=data.get("title", data["space"]),
                  doc=data.get("doc", ""), file=doc.file, base=data["base"],
                  params=dict(data.get("params") or {}), input=_input(data.get("input"), doc),
                  blocks=[Path(doc.file).parent / b for b in data.get("blocks", [])],
                  name_template=data.get("name"), document=doc,
                  limit=search.get("limit", DEFAULT_LIMIT),
                  trials=search.get("trials", DEFAULT_TRIALS),
                  population=search.get("population", DEFAULT_POPULATION),
                  latency_top=latency.get("top", 10), latency_runs=latency.get("runs", 200),
                  latency_warmup=latency.get("warmup", 10))
    for name, raw in data["axes"].items():
        space.axes += _axes(name, raw, ("axes", name), doc)
    names = [a.name for a in space.axes]
    for name in names:
        if names.count(name) > 1:
            raise SpaceError(f"axis '{name}' is defined twice", doc.key_loc(("axes",)),
                             "a 'per' axis makes one axis per place: name + place")
        if name in space.params:
            raise SpaceError(f"'{name}' is both a fixed parameter and an axis",
                             doc.key_loc(("params", name)), "drop one of them")
    space.derived = dict(data.get("derived") or {})
    space.derived_locs = {k: doc.loc(("derived", k)) for k in space.derived}
    for key in space.derived:
        if key in names or key in space.params:
            raise SpaceError(f"derived '{key}' is also an axis or a fixed parameter",
                             doc.key_loc(("derived", key)), "give it one definition")
    space.when = [(t, doc.loc(("when", i))) for i, t in enumerate(data.get("when", []))]
    space.constraints = [_constraint(t, doc.loc(("constraints", i)), space)
                         for i, t in enumerate(data.get("constraints", []))]
    for i, raw in enumerate(data["objectives"]):
        sense, figure = next(iter(raw.items()))
        loc = doc.loc(("objectives", i, sense))
        _check_figure(figure, loc, allow_measured=True)
        space.objectives.append(Objective(sense, figure, loc))
    if len({o.figure for o in space.objectives}) != len(space.objectives):
        raise SpaceError("an objective is listed twice", doc.loc(("objectives",)),
                         "list each figure once")
    for i, ref in enumerate(data.get("references", [])):
        space.references.append(Reference(ref["name"], ref.get("base", space.base),
                                          dict(ref.get("params") or {}), ref.get("doc", ""),
                                          doc.loc(("references", i))))
    _check_expressions(space)
    return space


def _axes(name: str, raw: Any, path: tuple, doc: Document) -> list[Axis]:
    loc = doc.loc(path)
    if isinstance(raw, list):
        return [Axis(name, list(raw), loc)]
    places = raw.get("per")
    if "range" in raw and "choices" in raw:
        raise SpaceError(f"axis '{name}' has both 'range' and 'choices'", loc, "keep one")
    if "range" in raw:
        lo, hi = raw["range"]
        step = raw.get("step", 1)
        if lo > hi:
            raise SpaceError(f"axis '{name}': range [{lo}, {hi}] is empty", doc.loc(path + ("range",)),
                             "write [lo, hi] with lo <= hi (both included)")
        values, rng = list(range(lo, hi + 1, step)), (lo, hi, step)
    elif "choices" in raw:
        values, rng = list(raw["choices"]), None
    else:
        raise SpaceError(f"axis '{name}' has no values", loc,
                         "give a list, {range: [lo, hi]} or {choices: [...]}")
    if "step" in raw and "range" not in raw:
        raise SpaceError(f"axis '{name}': 'step' goes with 'range'", doc.key_loc(path + ("step",)))
    if len(set(map(repr, values))) != len(values):
        raise SpaceError(f"axis '{name}' lists a value twice", loc, "list each value once")
    if places is None:
        return [Axis(name, values, loc, rng)]
    return [Axis(f"{name}{p}", list(values), loc, rng) for p in places]


def _constraint(text: str, loc: Loc, space: Space) -> Constraint:
    m = _CONSTRAINT.fullmatch(text)
    assert m is not None  # the schema's pattern
    figure, op, rhs = m.groups()
    _check_figure(figure, loc, allow_measured=False)
    try:
        bound = evaluate(rhs, dict(space.params), loc.shifted(m.start(3)) if loc else None)
    except EspdslError as exc:
        raise SpaceError(exc.message, exc.loc, exc.hint) from None
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise SpaceError(f"constraint '{text}': the bound is not a number", loc,
                         "write e.g. 'params <= 400000' or 'macs <= 5e9'")
    return Constraint(figure, op, float(bound), text, loc)


def _check_figure(figure: str, loc: Loc, allow_measured: bool) -> None:
    known = FIGURES + (MEASURED if allow_measured else [])
    if figure not in known:
        hint = did_you_mean(figure, known) or f"figures: {', '.join(known)}"
        if figure in MEASURED:
            hint = "latency is measured on the front after the analysis: it can be an objective"
        raise SpaceError(f"unknown figure '{figure}'", loc, hint)


def _check_expressions(space: Space) -> None:
    """Evaluate the derived values, the conditions and the name on the first point, so a typo
    is a located error before anything runs."""
    first = {a.name: a.values[0] for a in space.axes}
    try:
        env = {**space.params, **first}
        for key, raw in space.derived.items():
            loc = space.derived_locs[key]
            env[key] = (render_template(raw, env, loc) if isinstance(raw, str) and "{" in raw
                        else evaluate(raw, env, loc))
        for text, loc in space.when:
            evaluate(text, env, loc)
    except EspdslError as exc:
        raise SpaceError(exc.message, exc.loc, exc.hint) from None
    if space.name_template:
        loc = space.document.loc(("name",)) if space.document else None
        try:
            render_template(space.name_template, {**space.params, **first}, loc)
        except EspdslError as exc:
            raise SpaceError(exc.message, exc.loc or loc, exc.hint) from None
