"""Running a study: a :class:`~espdsl.study.spec.Study` and parameter overrides in, rows of
plain figures out (formatting, files and plots live apart).

Each row binds its base spec's parameters (shared < ``-p`` overrides < the row's own), resolves
it to the IR, analyses it, builds it (for its size) and compares every figure the paper prints.
A row with ``match`` first searches the listed values of its parameters for the network closest
to its reference row. Errors name the row and where it stands in the study file.

>>> result = run("table2c")
>>> [(r["name"], r["params"], r["paper"]["params"]["match"])
...  for r in result.rows]  # doctest: +NORMALIZE_WHITESPACE
[('strided_conv', 199456, False), ('strided_esp', 183328, True),
 ('strided_conv_enc', 274000, True), ('strided_esp_enc', 183568, True)]
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

from ..analysis.walk import analyze_ir
from ..errors import EspdslError, Loc, StudyError, UsageError, did_you_mean
from ..ir import IR
from ..registry import Registry, default_registry
from ..resolve import coerce, resolve
from ..spec import Spec
from .measure import SIZE_MB, Timer, built_figures, figures
from .paper import compare, exact
from .spec import Match, Row, Study, read_study


@dataclass
class Built:
    """What writing a row's files needs (kept out of the plain rows)."""

    spec: Spec
    ir: IR
    model: Any


@dataclass
class StudyResult:
    """The rows of a study (plain dicts), its ratios, and for a collection the parts' results."""

    study: Study
    rows: list[dict[str, Any]]
    ratios: list[dict[str, Any]] = field(default_factory=list)
    parts: list["StudyResult"] = field(default_factory=list)
    built: dict[str, Built] = field(default_factory=dict)
    registry: Registry | None = None

    def results(self) -> Iterator["StudyResult"]:
        """This result and, for a collection, every part's, in order."""
        yield self
        for part in self.parts:
            yield from part.results()

    def comparisons(self) -> list[dict[str, Any]]:
        """Every printed value the paper gives, with how it compares (for the rounding check)."""
        out = []
        for res in self.results():
            for row in res.rows:
                out += [{"study": res.study.name, "row": row["name"], "quantity": q, **c}
                        for q, c in row["paper"].items()]
            out += [{"study": res.study.name, "row": r["name"], "quantity": "ratio", **r["paper"]}
                    for r in res.ratios if r["paper"]]
        return out


def run(study: Study | str | Path, params: dict[str, Any] | None = None, *,
        timer: Timer | None = None, progress: bool = False) -> StudyResult:
    """Run ``study`` (a :class:`Study`, a shipped study's name or a path) with ``params``
    overriding its shared parameters; ``timer`` (see :func:`~.measure.bench_latency_ms`) adds a
    latency column; ``progress`` shows a bar over the rows on stderr."""
    from tqdm import tqdm

    study = study if isinstance(study, Study) else read_study(study)
    overrides = dict(params or {})
    bar = tqdm(total=sum(len(s.rows) for s in _leaves(study)), disable=None if progress else True,
               file=sys.stderr, unit="row", leave=False)
    try:
        result = _run(study, overrides, timer, bar)
    finally:
        bar.close()
    return result


def _leaves(study: Study) -> Iterator[Study]:
    if study.parts:
        for part in study.parts:
            yield from _leaves(part)
    else:
        yield study


def _run(study: Study, overrides: dict[str, Any], timer: Timer | None, bar: Any) -> StudyResult:
    if study.parts:
        used: set[str] = set()
        parts = []
        for part in study.parts:
            mine = {k: v for k, v in overrides.items() if _applies(part, k)}
            used |= set(mine)
            parts.append(_run(part, mine, timer, bar))
        unused = sorted(set(overrides) - used)
        if unused:
            raise UsageError(f"-p {unused[0]}: no study of '{study.name}' has it as a parameter "
                             "that some row leaves open", None,
                             "check the name; a parameter every row sets is not overridden")
        return StudyResult(study, [], parts=parts)
    reg = default_registry()
    for folder in study.blocks:
        reg.add_dir(folder, loc=Loc(study.file))
    specs = {row.base: _open(row, study, reg) for row in study.rows}
    _unknown_overrides(study, {k for k in overrides if not any(k in s.params for s in specs.values())},
                       specs)
    _check_shadowed(study, overrides)
    from ..api import build_ir  # torch, imported only when a study runs

    rows: dict[str, dict[str, Any]] = {}
    result = StudyResult(study, [], registry=reg)
    for row in sorted(study.rows, key=lambda r: r.match is not None):  # references first
        bar.set_description(f"{study.name}: {row.name}")
        spec = specs[row.base]
        settings = _settings(study, row, overrides, spec)
        match = None
        if row.match:
            settings, match = _search(study, row, row.match, settings, spec, reg,
                                      rows[row.match.to][row.match.by])
        ir = _resolve(study, row, spec, settings, reg)
        analysis = analyze_ir(ir)
        model = build_ir(ir)
        rows[row.name] = {
            "study": study.name, "name": row.name, "base": row.base, "group": row.group,
            "doc": row.doc, "settings": settings,
            **figures(ir, analysis, study.quantities), **built_figures(model, timer, ir),
            "match": match,
        }
        rows[row.name]["paper"] = {q: compare(_exact(rows[row.name], q), printed, study.rounding)
                                   for q, printed in row.paper.items()}
        result.built[row.name] = Built(spec, ir, model)
        bar.update()
    result.rows = [rows[r.name] for r in study.rows]
    result.ratios = [_ratio(r, rows, study.rounding) for r in study.ratios]
    return result


def _applies(study: Study, key: str) -> bool:
    """Does ``-p key=...`` reach some row of ``study``: a row whose base declares ``key`` and
    that does not set it itself?"""
    reg = default_registry()
    for leaf in _leaves(study):
        for row in leaf.rows:
            if key in row.params or (row.match and key in row.match.search):
                continue
            try:
                if key in _open(row, leaf, reg).params:
                    return True
            except EspdslError:
                return True  # let the part's own run report its broken base
    return False


def _open(row: Row, study: Study, reg: Registry) -> Spec:
    from ..loading import open_beside
    try:
        return open_beside(row.base, study.file, reg)
    except EspdslError as exc:
        raise StudyError(f"row '{row.name}': base spec '{row.base}': {exc.message}", row.loc,
                         exc.hint, f"at {exc.loc}" if exc.loc else None) from None


def _unknown_overrides(study: Study, unknown: set[str], specs: dict[str, Spec] | None = None) -> None:
    if not unknown:
        return
    key = sorted(unknown)[0]
    known = sorted({p for s in (specs or {}).values() for p in s.params})
    bases = ", ".join(sorted(specs)) if specs else "its studies"
    raise UsageError(f"-p {key}: no spec of study '{study.name}' ({bases}) has a parameter '{key}'",
                     None, did_you_mean(key, known) if known else "check the parameter name")


def _check_shadowed(study: Study, overrides: dict[str, Any]) -> None:
    for key in overrides:
        if all(key in r.params or (r.match and key in r.match.search) for r in study.rows):
            raise UsageError(f"-p {key}: every row of study '{study.name}' sets {key} itself, so "
                             "the override would change nothing", None,
                             f"edit the study (a copy: {study.file}) to vary {key}")


def _settings(study: Study, row: Row, overrides: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """The parameters the study sets for ``row``, checked against its spec."""
    out: dict[str, Any] = {}
    layers = [(study.params, study.locs, study.keys), (overrides, {}, {}),
              (row.params, row.locs, row.keys)]
    for values, locs, keys in layers:
        for key, value in values.items():
            loc = locs.get(key) or row.loc
            decl = spec.params.get(key)
            if decl is None:
                raise StudyError(f"row '{row.name}': '{key}' is not a parameter of "
                                 f"{spec.kind} '{spec.name}'", keys.get(key) or loc,
                                 did_you_mean(key, spec.params))
            out[key] = coerce(value, decl, loc, f"{spec.kind} '{spec.name}'")
    return out


def _resolve(study: Study, row: Row, spec: Spec, settings: dict[str, Any], reg: Registry) -> IR:
    try:
        return resolve(spec, settings, registry=reg, input_size=study.input)
    except EspdslError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        raise StudyError(f"row '{row.name}' ({spec.name} with {shown}) does not resolve: "
                         f"{exc.message}", row.loc, exc.hint,
                         f"at {exc.loc}" if exc.loc else exc.context) from None


def _search(study: Study, row: Row, match: Match, settings: dict[str, Any], spec: Spec,
            reg: Registry, target: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Try every combination of the listed values; keep the one closest to ``target`` (the
    first listed on a tie). Combinations that do not resolve (e.g. groups that do not divide
    the channels) are skipped and counted."""
    keys = list(match.search)
    for key in keys:
        if key not in spec.params:
            raise StudyError(f"row '{row.name}': cannot search '{key}': it is not a parameter of "
                             f"{spec.kind} '{spec.name}'", match.loc, did_you_mean(key, spec.params))
    tried, skipped, first_error = [], 0, None
    for combo in itertools.product(*match.search.values()):
        values = {k: coerce(v, spec.params[k], match.loc, f"{spec.kind} '{spec.name}'")
                  for k, v in zip(keys, combo)}
        try:
            ir = resolve(spec, {**settings, **values}, registry=reg, input_size=study.input)
        except EspdslError as exc:
            skipped += 1
            first_error = first_error or exc
            continue
        tried.append((values, getattr(analyze_ir(ir).totals, match.by)))
    if not tried:
        raise StudyError(f"row '{row.name}': no combination of {', '.join(keys)} resolves",
                         match.loc, f"first failure: {first_error.message}" if first_error else None)
    ranked = sorted(tried, key=lambda t: abs(t[1] - target))  # stable: ties keep listed order
    chosen, value = ranked[0]
    info = {"to": match.to, "by": match.by, "target": target, "chosen": chosen, "value": value,
            "diff": value - target, "rel_diff": (value - target) / target if target else None,
            "tried": len(tried), "skipped": skipped,
            "closest": [{**v, match.by: x} for v, x in ranked[:5]]}
    return {**settings, **chosen}, info


def _exact(row: dict[str, Any], quantity: str) -> Any:
    """A row's figure as an exact number (sizes from their integer bytes)."""
    if quantity == "size_mb":
        return Fraction(row["size_bytes"], SIZE_MB)
    if quantity == "params_mb":
        return Fraction(row["params"] * 4, 10 ** 6)
    return row.get(quantity)


def _ratio(ratio: Any, rows: dict[str, dict[str, Any]], rounding: str) -> dict[str, Any]:
    a, b = _exact(rows[ratio.of], ratio.quantity), _exact(rows[ratio.to], ratio.quantity)
    value = None if a is None or not b else exact(a) / exact(b)
    return {"name": ratio.name, "of": ratio.of, "to": ratio.to, "quantity": ratio.quantity,
            "value": None if value is None else float(value), "doc": ratio.doc,
            "paper": compare(value, ratio.paper, rounding) if ratio.paper else None}
