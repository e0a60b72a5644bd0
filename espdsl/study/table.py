"""Formatting a study's result: terminal table, Markdown report, CSV and JSON (nothing here
computes a figure; see :mod:`espdsl.study.run`).

The Markdown report is what ``analysis/fig5.md`` and ``analysis/table2.md`` are: the setup, one
table per group of rows (each figure beside the paper's print, marked ``*`` with ours and the
relative difference where they differ), the searches, the ratios, the rounding check over
every printed value, and the study's notes with their computed numbers filled in.

>>> from espdsl.study.run import run
>>> format_result(run("table2c"), "csv").splitlines()[1].split(",")[:6]
['table2c', 'strided_conv', 'espnet_a', '', 'alpha2=2 alpha3=3 K=5 down_K=4 reading=fig4a down=conv', '199456']
"""
from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from typing import Any, Sequence

from tabulate import tabulate

from .measure import SIZE_MB
from .paper import mark
from .run import StudyResult
from .spec import EXTRA, Study, placeholders

FORMATS = ["table", "markdown", "csv", "json"]
FIGURES = [("params", "params"), ("size_mb", "size MB"), ("macs", "MACs"), ("peak_mb", "peak MB"),
           ("rf", "rf")]
LATENCY = [("latency_ms", "latency ms"), ("fps", "frames/s")]
CSV_FIGURES = ["params", "size_bytes", "size_mb", "params_mb", "macs", "peak_bytes", "peak_mb",
               "conv_out_mb", "rf", "stride", "latency_ms", "fps"]


def number(value: Any, key: str = "") -> str:
    """A figure as the tables show it: integers with thousands separators, sizes in 4 decimals.

    >>> number(187529), number(0.755435, "size_mb"), number(12.5, "peak_mb"), number(None)
    ('187,529', '0.7554', '12.50', '')
    """
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if key in ("size_mb", "params_mb"):
        return f"{value:.4f}"
    if isinstance(value, float) and value.is_integer() and key in ("rf", "stride"):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def format_result(result: StudyResult, fmt: str = "table") -> str:
    """The result in ``fmt``: ``table`` (terminal), ``markdown`` (the report), ``csv``, ``json``."""
    if fmt == "json":
        return json.dumps(as_json(result), indent=2, default=str)
    if fmt == "csv":
        return _csv(result)
    return _report(result, markdown=fmt == "markdown", level=1)


def as_json(result: StudyResult) -> dict[str, Any]:
    """The result as plain JSON data: rows, ratios, the rounding check and the parts."""
    study = result.study
    doc: dict[str, Any] = {"study": study.name, "title": study.title, "rounding": study.rounding}
    if result.parts:
        doc["parts"] = [as_json(p) for p in result.parts]
    else:
        doc["rows"] = result.rows
        doc["ratios"] = result.ratios
    doc["paper_values"] = rounding_check(result)
    return doc


# -- CSV ----------------------------------------------------------------------------------------
def _csv(result: StudyResult) -> str:
    results = [r for r in result.results() if not r.parts]
    quantities = _unique(q.name for r in results for q in r.study.quantities)
    paper = _unique(q for r in results for row in r.rows for q in row["paper"])
    header = (["study", "name", "base", "group", "settings"] + CSV_FIGURES + quantities
              + ["match"] + [f"paper_{q}{s}" for q in paper for s in ("", "_match", "_rel_diff")])
    lines = []
    for res in results:
        for row in res.rows:
            line = [row["study"], row["name"], row["base"], row["group"], _settings_text(row["settings"])]
            line += [row.get(k, "") for k in CSV_FIGURES + quantities]
            line.append(_match_text(row["match"]) if row["match"] else "")
            for q in paper:
                c = row["paper"].get(q)
                line += ["", "", ""] if c is None else [c["printed"], c["match"],
                                                      "" if c["rel_diff"] is None else c["rel_diff"]]
            lines.append(["" if v is None else v for v in line])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return buf.getvalue().rstrip("\n")


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def _settings_text(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


# -- the report ---------------------------------------------------------------------------------
def _report(result: StudyResult, markdown: bool, level: int) -> str:
    study = result.study
    h = "#" * level
    lines: list[str] = [f"{h} {study.title}" if markdown else study.title]
    if study.doc and markdown:
        lines += ["", study.doc.strip()]
    if level == 1 and markdown:
        lines += ["", _conventions(result)]
    if result.parts:
        for part in result.parts:
            lines += ["", _report(part, markdown, level + 1)]
    else:
        lines += ["", _setup(result, markdown)]
        lines += _tables(result, markdown, level)
        lines += _searches(result, markdown)
        lines += _ratios(result, markdown)
    if level == 1:
        check = _rounding_lines(result, markdown)
        if check:
            lines += [""] + check
    if study.notes and markdown:
        for text, _ in study.notes:
            lines += ["", render_note(text, result)]
    if level == 1 and markdown:
        lines += ["", f"Generated by `espdsl zoo {study.name} --format markdown` "
                      f"(numbers computed by espdsl; the paper's are quoted as printed)."]
    if not markdown:  # the terminal: prose within 100 columns (tables keep their rows)
        lines = [part for block in lines for line in block.split("\n") for part in (
            _wrap(line) if len(line) > 100 and "  " not in line.strip() else [line])]
    return "\n".join(lines).rstrip("\n") + ("\n" if level == 1 and markdown else "")


def _setup(result: StudyResult, markdown: bool) -> str:
    study = result.study
    bases = _unique(r["base"] for r in result.rows)
    built = next(iter(result.built.values()), None)
    shape = "x".join(map(str, built.ir.input_shape)) if built else "?"
    shared = ", ".join(f"{k} = {v}" for k, v in result.rows[0]["settings"].items()
                       if k in study.params and all(r["settings"].get(k) == v for r in result.rows))
    code = (lambda s: f"`{s}`") if markdown else (lambda s: s)
    return (f"Base {', '.join(code(b) for b in bases)}" + (f" with {shared}" if shared else "")
            + f"; input {shape}.")


def _conventions(result: StudyResult) -> str:
    text = ("`params`: trainable parameters; `size MB`: the network size as the paper measures "
            f"it, the bytes of the weights' checkpoint / {SIZE_MB:,} (docs/studies.md); `MACs`: "
            "convolutions; `peak MB`: live activations, MB = 2^20 bytes; `rf`: receptive field of "
            "the output, pixels.")
    study = result.study
    if result.comparisons():
        text += (f" The paper's values are compared with ours {_cut(study.rounding)} to the "
                 "digits printed; `*` marks a difference (ours, then the relative difference).")
    return text


def _cut(rounding: str) -> str:
    return "truncated" if rounding == "truncate" else "rounded"


def _tables(result: StudyResult, markdown: bool, level: int) -> list[str]:
    study = result.study
    chosen = study.columns if study.columns is not None else _varying(result)
    settings = [c for c in chosen if c not in EXTRA]
    extra = [c for c in chosen if c in EXTRA] + [q.name for q in study.quantities]
    latency = [(k, t) for k, t in LATENCY if any(k in r for r in result.rows)]
    paper = _unique(q for r in result.rows for q in r["paper"])
    show_base = len({r["base"] for r in result.rows}) > 1
    headers = (["row"] + (["base"] if show_base else []) + settings + [t for _, t in FIGURES]
               + extra + [t for _, t in latency] + [f"paper {q}" for q in paper])
    out: list[str] = []
    groups = _unique(r["group"] for r in result.rows)
    for group in groups:
        rows = [r for r in result.rows if r["group"] == group]
        table = []
        for r in rows:
            line = [f"`{r['name']}`" if markdown else r["name"]]
            line += [r["base"]] if show_base else []
            line += [_setting(r, k) for k in settings]
            line += [number(r.get(k), k) for k, _ in FIGURES]
            line += [number(r.get(k), k) for k in extra]
            line += [number(r.get(k), k) for k, _ in latency]
            line += [mark(r["paper"][q]) if q in r["paper"] else "" for q in paper]
            table.append(line)
        align = (["left"] * (1 + show_base + len(settings)) + ["right"] * (len(FIGURES) + len(extra)
                                                                         + len(latency))
                 + ["left"] * len(paper))
        if markdown:
            body = tabulate(table, headers=headers, tablefmt="github", disable_numparse=True,
                            colalign=align)
        else:  # the terminal: two-line headers, no extra padding, so more tables fit 100 columns
            import tabulate as tabulate_module
            padding, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0
            try:
                body = tabulate(table, headers=[h.replace(" ", "\n", 1) if " " in h and len(h) > 6
                                                else h.replace("_", "\n", 1) if len(h) > 6 else h
                                                for h in headers],
                                tablefmt="simple", disable_numparse=True, colalign=align)
            finally:
                tabulate_module.MIN_PADDING = padding
        if group:
            out += ["", f"{'#' * (level + 1)} {group}" if markdown else f"{group}:"]
        out += ["", body]
        docs = [f"- `{r['name']}`: {r['doc'].strip()}" for r in rows if r["doc"]]
        if docs and markdown:
            out += [""] + docs
        printed = [c["match"] for r in rows for c in r["paper"].values()]
        if len(groups) > 1 and printed:   # which reading explains how many printed values
            out += ["", f"Printed values these rows reproduce: {sum(printed)} of {len(printed)}."]
    return out


def _varying(result: StudyResult) -> list[str]:
    keys = _unique(k for r in result.rows for k in r["settings"])
    return [k for k in keys if len({repr(r["settings"].get(k)) for r in result.rows}) > 1]


def _setting(row: dict[str, Any], key: str) -> str:
    value = row["settings"].get(key, "")
    if row["match"] and key in row["match"]["chosen"]:
        return f"{value} (searched)"
    return "" if value is None else str(value)


def _match_text(m: dict[str, Any]) -> str:
    chosen = ", ".join(f"{k}={v}" for k, v in m["chosen"].items())
    rel = "" if m["rel_diff"] is None else f" ({m['rel_diff'] * 100:+.1f}%)"
    return (f"{chosen}: {m['by']} {m['value']:,} vs {m['to']} {m['target']:,}, "
            f"{m['diff']:+,}{rel}")


def _searches(result: StudyResult, markdown: bool) -> list[str]:
    out = []
    for r in result.rows:
        m = r["match"]
        if not m:
            continue
        name = f"`{r['name']}`" if markdown else r["name"]
        space = " x ".join(f"{k} in {v}" for k, v in result.study.row(r["name"]).match.search.items())
        nxt = "; ".join(", ".join(f"{k}={v:,}" if k == m["by"] else f"{k}={v}" for k, v in c.items())
                        for c in m["closest"][1:4])
        out.append(f"- {name}: searched {space} ({m['tried']} combinations resolve"
                   + (f", {m['skipped']} do not" if m["skipped"] else "")
                   + f") for the {m['by']} closest to `{m['to']}`'s; chose {_match_text(m)}"
                   + (f". Next closest: {nxt}." if nxt else "."))
    if out:
        out = ["", "Matched complexity:" if not markdown else "Matching complexity:", ""] + out
    return out


def _ratios(result: StudyResult, markdown: bool) -> list[str]:
    if not result.ratios:
        return []
    table = [[f"`{r['name']}`" if markdown else r["name"], f"{r['of']} / {r['to']}", r["quantity"],
              "" if r["value"] is None else f"{r['value']:.2f}",
              mark(r["paper"]) if r["paper"] else ""] for r in result.ratios]
    body = tabulate(table, headers=["ratio", "rows", "of", "ours", "paper"],
                    tablefmt="github" if markdown else "simple", disable_numparse=True)
    docs = [f"- `{r['name']}`: {r['doc'].strip()}" for r in result.ratios if r["doc"]]
    if markdown:
        return ["", "Ratios between rows:", "", body] + (["", *docs] if docs else [])
    return ["", "Ratios:", "", body]


def _wrap(text: str) -> list[str]:
    import textwrap
    return textwrap.wrap(text, 100, subsequent_indent="  ", break_on_hyphens=False)


# -- rounding check -----------------------------------------------------------------------------
def rounding_check(result: StudyResult) -> dict[str, Any]:
    """For each compared quantity, how many printed values truncation and rounding each
    reproduce; and the values where the two differ or neither reproduces the print."""
    values = result.comparisons()
    by: dict[str, dict[str, int]] = {}
    for v in values:
        counts = by.setdefault(v["quantity"], {"printed": 0, "truncate": 0, "round": 0})
        counts["printed"] += 1
        counts["truncate"] += v["truncate"]
        counts["round"] += v["round"]
    return {"printed": len(values), "truncate": sum(v["truncate"] for v in values),
            "round": sum(v["round"] for v in values), "by_quantity": by,
            "telling": [v for v in values if v["truncate"] != v["round"] or not v["truncate"]]}


def _rounding_lines(result: StudyResult, markdown: bool) -> list[str]:
    check = rounding_check(result)
    if not check["printed"]:
        return []
    text = (f"Rounding check: of {check['printed']} printed values, ours truncated to the printed "
            f"digits reproduce {check['truncate']}, rounded {check['round']}"
            + (" (the others are listed below)." if check["truncate"] < check["printed"] else "."))
    fmt = "github" if markdown else "simple"
    if not markdown:
        table = [[v["study"], v["row"], v["quantity"], v["printed"], v["ours_truncate"] or "",
                  v["ours_round"] or "", _verdict(v)] for v in check["telling"]
                 if v["truncate"] < 1]
        if not table:
            return [text.replace(" (the others are listed below).", ".")]
        legend = ("A paper cell 'P * ours X, d%' is a printed value P that ours does not "
                  "reproduce: ours cut to the printed digits is X, d% away from P.")
        return [*_wrap(text), *_wrap(legend), "", tabulate(table, headers=["study", "row", "value", "printed", "truncated",
                                                   "rounded", "reproduced by"],
                                   tablefmt=fmt, disable_numparse=True)]
    counts = [[q, c["printed"], c["truncate"], c["round"]] for q, c in check["by_quantity"].items()]
    lines = [text, "", tabulate(counts, headers=["value", "printed", "truncated reproduces",
                                                 "rounded reproduces"], tablefmt=fmt,
                                disable_numparse=True)]
    table = [[v["study"], f"`{v['row']}`", v["quantity"], v["printed"], v["ours_truncate"] or "",
              v["ours_round"] or "", _verdict(v)] for v in check["telling"]]
    if table:
        lines += ["", "Values where truncating and rounding differ, or neither reproduces the "
                      "print:", "", tabulate(table, headers=["study", "row", "value", "printed",
                                                             "truncated", "rounded", "reproduced by"],
                                             tablefmt=fmt, disable_numparse=True)]
    return lines


def _verdict(v: dict[str, Any]) -> str:
    modes = [m for m in ("truncate", "round") if v[m]]
    return " and ".join(modes) if modes else "neither"


# -- notes --------------------------------------------------------------------------------------
def render_note(text: str, result: StudyResult) -> str:
    """A note with its ``{row.column}`` / ``{row.column/row2.column:fmt}`` placeholders filled."""
    rows = {r["name"]: r for r in result.rows}
    out, last = [], 0
    for m in placeholders(text):
        value = _note_value(rows[m.group(1)], m.group(2))
        if m.group(3):
            other = _note_value(rows[m.group(4)], m.group(5))
            value = (float(Fraction(value) / Fraction(other)) if m.group(3) == "/"
                     else value - other)
        spec = m.group(6)
        shown = format(value, spec) if spec else number(value, m.group(2))
        out += [text[last:m.start()], shown]
        last = m.end()
    return ("".join(out) + text[last:]).strip()


def _note_value(row: dict[str, Any], column: str) -> Any:
    if column in row["settings"]:
        return row["settings"][column]
    return row.get(column)


def list_text(studies: Sequence[Study]) -> str:
    """The shipped studies, one line each: name, rows and title."""
    table = [[s.name, "collection: " + ", ".join(p.name for p in s.parts) if s.parts
              else f"{len(s.rows)} rows", s.title] for s in studies]
    return tabulate(table, headers=["study", "rows", "title"], tablefmt="simple", disable_numparse=True)
