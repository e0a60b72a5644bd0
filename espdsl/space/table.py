"""Formatting a space run: terminal table, Markdown report, CSV and JSON (nothing here computes
a figure; see :mod:`espdsl.space.run`)."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..study.table import number
from .run import ExploreResult

FORMATS = ["table", "markdown", "csv", "json"]
FIGURES = ["params", "macs", "peak_mb", "conv_out_mb", "rf", "stride"]
SHOWN = [("params", "params"), ("macs", "MACs"), ("peak_mb", "peak MB"), ("rf", "rf"),
         ("latency_ms", "latency ms"), ("machine", "machine")]


def settings_of(result: ExploreResult) -> list[str]:
    space = result.space
    return [a.name for a in space.axes] + list(space.derived)


def columns(result: ExploreResult) -> list[str]:
    """Every column of the CSV, in order."""
    return (["name", *settings_of(result), *FIGURES, "peak_bytes", "feasible", "violation", "front",
             "latency_ms", "machine", "latency_front"])


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "x".join(map(str, value))
    return "" if value is None else value


def format_rows(result: ExploreResult, rows: list[dict[str, Any]], fmt: str) -> str:
    """``rows`` of ``result`` as ``table``, ``markdown``, ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns(result), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(r.get(k)) for k in columns(result)})
        return out.getvalue()
    from tabulate import tabulate
    shown = [(k, t) for k, t in SHOWN if any(r.get(k) is not None for r in rows)]
    head = ["name", *settings_of(result), *[t for _, t in shown]]
    body = [[r["name"], *[_cell(r.get(k)) for k in settings_of(result)],
             *[number(r.get(k), k) if k != "machine" else r.get(k) or "" for k, _ in shown]]
            for r in rows]
    return tabulate(body, head, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)


def summary(result: ExploreResult) -> str:
    """How the rows were found, in a few lines."""
    space = result.space
    lines = [f"space {space.name}: {space.size:,} points "
             f"({len(space.axes)} axes: {', '.join(a.name for a in space.axes)})"]
    if result.mode == "enumerate":
        lines.append(f"enumerated: {len(result.rows):,} networks analysed, {result.skipped:,} "
                     f"removed by 'when', {result.failed:,} do not resolve")
    else:
        lines.append(f"searched: {result.sampler} (seed {result.seed}), {result.trials:,} "
                     f"evaluations, {len(result.rows):,} distinct networks"
                     + (f", stored in {result.storage}" if result.storage else ""))
    if result.first_error:
        lines.append(f"first that does not resolve: {result.first_error}")
    cons = ", ".join(c.text for c in space.constraints) or "none"
    objs = ", ".join(f"{o.sense} {o.figure}" for o in space.objectives)
    lines.append(f"constraints: {cons}; feasible: {len(result.feasible):,}")
    lines.append(f"objectives: {objs}; Pareto front: {len(result.front()):,} networks")
    if result.measured_on:
        lines.append("latency measured on: " + "; ".join(result.measured_on))
    return "\n".join(lines)


def report(result: ExploreResult) -> str:
    """The Markdown report: how the rows were found, the references, the front."""
    space = result.space
    parts = [f"# {space.title}", "", space.doc, "", "```", summary(result), "```", ""]
    if result.references:
        parts += ["## References", "", format_rows(result, result.references, "markdown"), ""]
    parts += ["## Pareto front", "", format_rows(result, result.front(), "markdown"), ""]
    for machine in result.measured_on:
        timed = [r for r in result.front() + result.references if r.get("machine") == machine]
        parts += [f"Latency on {machine}: " + ", ".join(
            f"{r['name']} {r['latency_ms']:.2f} ms" for r in timed), ""]
    return "\n".join(parts)
