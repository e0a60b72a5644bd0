"""Formatting analysis results as a terminal table, Markdown, CSV or JSON (computing lives in
:mod:`.walk`, :mod:`.compare` and :mod:`.check`; nothing here computes a figure).

>>> from espdsl.analysis.compare import compare
>>> print(format_compare(compare(["resnet"]), "csv").splitlines()[1])
resnet,180000,180000,2.392578125,2.392578125,5,5,564480000,
"""
from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import one_line
from .formulas import FIG3G_PARAMS, FORMULAS

if TYPE_CHECKING:     # kept out of the import: the CLI reads FORMATS at start-up
    from .check import CheckRow
    from .walk import Analysis, Stats

FORMATS = ["table", "markdown", "csv", "json"]
MARK = "*"


def _int(v: Any) -> str:
    if isinstance(v, (tuple, list)):      # (along H, along W): a rectangular field
        return "x".join(_int(x) for x in v)
    return "" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


def axes_text(v: Any) -> str:
    """A receptive field or stride: '33', '3x5' where H and W differ, '0.5'.

    >>> axes_text(33), axes_text((3, 5)), axes_text(0.5)
    ('33', '3x5', '0.5')
    """
    if isinstance(v, (tuple, list)):
        return "x".join(axes_text(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _mb(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _paper_text(paper: dict | None, thousands: bool = True) -> str:
    if not paper:
        return ""
    differs = paper["differs"]
    params = f"{paper['params']:,}" if thousands else str(paper["params"])
    parts = [params + (MARK if "params" in differs else ""),
             f"{paper['memory_mb']:.2f} MB" + (MARK if "memory_mb" in differs else ""),
             f"{paper['rf']}x{paper['rf']}" + (MARK if "rf" in differs else "")]
    return ", ".join(parts)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


def _notes(rows: list[dict]) -> list[str]:
    """One line per printed value that differs from the paper's own formula, and per module
    compared at settings of its own."""
    notes = [f"{row['module']} {key}: {text}" for row in rows if row["paper"]
             for key, text in row["paper"]["differs"].items()]
    notes += [f"{row['module']} {key} (compiled vs formula): {text}" for row in rows
              for key, text in row.get("notes", {}).items()]
    notes += [f"{row['module']} at " + ", ".join(f"{k} = {v}" for k, v in
                                                 FORMULAS[row["module"]].settings.items())
              + " (a down-sampler that concatenates its pooled input needs N > M)"
              for row in rows if row["module"] in FORMULAS and FORMULAS[row["module"]].settings]
    missing = [row["module"] for row in rows if row["paper"] is None]
    if missing:
        notes.append(f"no printed values for: {', '.join(missing)} (not in Fig. 3g, or not "
                     "configured as in Fig. 3g)")
    return notes


def format_compare(rows: list[dict], fmt: str = "table", *, settings: dict | None = None,
                   size: tuple[int, int] = (56, 56)) -> str:
    """The compare rows in ``fmt``; JSON is the list of row objects as they are."""
    from tabulate import tabulate

    from .compare import COLUMNS
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        extra = ["gridding"] if rows and "gridding" in rows[0] else []
        return _csv(["module", *COLUMNS, *extra], [[row["module"], *("" if row[c] is None else
                                                             axes_text(row[c]) if isinstance(
                                                                 row[c], (tuple, list)) else row[c]
                                                             for c in COLUMNS[:-1]),
                                            _paper_text(row["paper"], thousands=False),
                                            *(row[k] for k in extra)]
                                           for row in rows])
    table = [[row["module"], _int(row["params_formula"]), _int(row["params"]),
              _mb(row["memory_mb_formula"]), _mb(row["memory_mb"]), _int(row["rf_formula"]),
              _int(row["rf"]), _int(row["macs"]), _paper_text(row["paper"])] for row in rows]
    extra = ["gridding"] if rows and "gridding" in rows[0] else []   # compare --gridding
    for line, row in zip(table, rows):
        line += [row[k] for k in extra]
    headers = ["module", *COLUMNS, *extra] if fmt == "markdown" else [
        "module", "params\nformula", "\nbuilt", "MB\nformula", "\nbuilt", "rf\nformula",
        "\nbuilt", "MACs\nbuilt", "paper\n(Fig. 3g)", *extra]
    import tabulate as tabulate_module
    padding = tabulate_module.MIN_PADDING
    if fmt != "markdown":
        tabulate_module.MIN_PADDING = 0  # the terminal table fits 100 columns
    try:
        body = tabulate(table, headers=headers, disable_numparse=True,
                        tablefmt="github" if fmt == "markdown" else "simple",
                        colalign=("left",) + ("right",) * 7 + ("left",) * (1 + len(extra)))
    finally:
        tabulate_module.MIN_PADDING = padding
    settings = settings or dict(FIG3G_PARAMS)
    where = (", ".join(f"{k} = {v}" for k, v in settings.items())
             + f", W x H = {size[1]} x {size[0]}")
    notes = _notes(rows)
    if fmt == "markdown":
        lines = ["# Fig. 3g of the ESPNet paper, reproduced by espdsl", "",
                 f"Settings: {where}. Memory: outputs of the convolutions, 4 bytes a value, "
                 "MB = 2^20 bytes. `params`, `memory_mb`, `rf` and `macs` are computed from the "
                 "compiled blocks; `*_formula` are the paper's formulas; `paper` is what Fig. 3g "
                 f"prints, marked {MARK} where it differs from its own formula.", "", body]
        if notes:
            lines += ["", *[f"- {note}" for note in notes]]
        lines += ["", "Regenerate with: `espdsl compare --format markdown -o analysis/fig3g.md`"]
        return "\n".join(lines) + "\n"
    import textwrap
    wrapped = [line for note in notes for line in textwrap.wrap(
        f"{MARK} {note}", 100, subsequent_indent="  ", break_on_hyphens=False)]
    return "\n".join([f"Fig. 3g modules at {where}", body, *([""] + wrapped if notes else [])])


def _stats_row(level: int, name: str, stats: Stats, totals: Stats | None = None,
               units: str = "exact") -> list[Any]:
    from ..units import count, share
    whole = totals if totals is not None else stats
    if stats is whole:  # the total row: its share is 100%, left blank
        return [name, stats.label, "x".join(map(str, stats.shape[1:])), count(stats.params, units),
                "", count(stats.macs, units), "", count(stats.elementwise, units),
                f"{stats.memory.peak_mb:.2f}", f"{axes_text(stats.rf)}/{axes_text(stats.stride)}"]
    return [name, stats.label, "x".join(map(str, stats.shape[1:])), count(stats.params, units),
            share(stats.params, whole.params), count(stats.macs, units),
            share(stats.macs, whole.macs), count(stats.elementwise, units),
            f"{stats.memory.peak_mb:.2f}", f"{axes_text(stats.rf)}/{axes_text(stats.stride)}"]


# The terminal table fits 100 columns: the output shape without the batch, each count's share
# of the total beside it, rf/stride in one column; conv-output memory (Fig. 3g's convention) is
# in the totals below it and in CSV/JSON.
HEADERS = ["node", "block", "output CxHxW", "params", "%", "MACs", "%", "elem. ops", "peak MB",
           "rf/stride"]


def format_analysis(result: Analysis, fmt: str = "table", depth: int = 1,
                    checks: list[CheckRow] | None = None, units: str = "exact",
                    check_note: str | None = None) -> str:
    """The per-node table (spec nodes down to ``depth``) and the totals, in ``fmt``: each
    node's parameters and MACs with its share of the total; ``units`` ``exact`` (integers),
    ``human`` (SI prefixes) or ``both`` in tables; the totals always show both."""
    from ..units import si
    from tabulate import tabulate
    rows = result.rows(depth)
    totals = result.totals
    if fmt == "json":
        doc: dict[str, Any] = {
            "model": result.ir.name, "parameters": dict(result.ir.params),
            "input": list(result.ir.input_shape),
            "nodes": [{**stats.as_dict(), "level": level} for level, _, stats in rows],
            "totals": totals.as_dict()}
        if checks is not None:
            doc["check"] = [c.as_dict() for c in checks]
            if check_note:
                doc["check_note"] = check_note
        return json.dumps(doc, indent=2, default=str)
    if fmt == "csv":
        keys = ["name", "block", "level", "shape", "params", "macs", "elementwise",
                "memory_fig3g_bytes", "memory_peak_bytes", "rf", "stride"]
        lines = [[*(stats.as_dict()[k] if k != "level" else level for k in keys)]
                 for level, _, stats in rows]
        lines.append([*(totals.as_dict()[k] if k != "level" else 0 for k in keys)])
        lines = [["x".join(map(str, v)) if isinstance(v, list) else v for v in line]
                 for line in lines]
        lines[-1][0] = "total"
        return _csv(keys, lines)
    table = [_stats_row(level, scope.path, stats, totals, units) for level, scope, stats in rows]
    table.append(_stats_row(1, "total", totals, totals, units))
    tablefmt = "github" if fmt == "markdown" else "simple"
    import tabulate as tabulate_module
    padding = tabulate_module.MIN_PADDING
    if fmt != "markdown":
        tabulate_module.MIN_PADDING = 0
    try:
        body = tabulate(table, headers=HEADERS, tablefmt=tablefmt, disable_numparse=True,
                        colalign=("left", "left", "left") + ("right",) * 7)
    finally:
        tabulate_module.MIN_PADDING = padding
    from ..paramtext import param_text
    params = param_text({k: v for k, v in result.ir.params.items()
                         if isinstance(v, (int, float, str, bool))})
    inp = "x".join(map(str, result.ir.input_shape))
    split = ", ".join(f"{k} {v:,}" for k, v in totals.params_by_kind.items())
    macs = ", ".join(f"{k} {v:,}" for k, v in totals.macs_by_op.items())
    work = ", ".join(f"{k} {v:,}" for k, v in totals.elementwise_by_op.items())
    lines = [f"{result.ir.name} ({params}) at input {inp}", "", body, "",
             f"params: {totals.params:,} = {si(totals.params)} ({split})",
             f"MACs: {totals.macs:,} = {si(totals.macs)} ({macs or 'none'})",
             f"element-wise ops: {totals.elementwise:,} ({work or 'none'})",
             f"not counted (data movement): {', '.join(sorted(totals.ignored)) or 'none'}",
             f"memory: conv outputs {totals.memory.fig3g_mb:.2f} MB (Fig. 3g convention), "
             f"peak live {totals.memory.peak_mb:.2f} MB (input included)",
             f"receptive field: {axes_text(totals.rf)} px, stride {axes_text(totals.stride)}"
             + (" (H x W)" if isinstance(totals.rf, tuple) or isinstance(totals.stride, tuple)
                else "")]
    if totals.unknown:
        lines.append("UNKNOWN ops (no handler, not counted): "
                     + ", ".join(f"{k} x{v}" for k, v in totals.unknown.items()))
    if fmt != "markdown":  # the terminal: every line within 100 columns
        import textwrap
        lines = [part for line in lines for part in (
            [line] if line is body or len(line) <= 100 else
            textwrap.wrap(line, 100, subsequent_indent="  ", break_on_hyphens=False))]
    if checks is not None:
        import textwrap
        note = textwrap.wrap(check_note, 100, break_on_hyphens=False) if check_note else []
        lines += ["", *note, format_checks(checks, tablefmt)]
    return "\n".join(lines)


def format_checks(checks: list[CheckRow], tablefmt: str = "simple") -> str:
    from tabulate import tabulate
    table = [[c.quantity, _int(c.analytic) if isinstance(c.analytic, int) else c.analytic,
              _int(c.measured) if isinstance(c.measured, int) else c.measured, c.source,
              {True: "ok", False: "DIFFERS", None: "n/a"}[c.ok], c.note] for c in checks]
    return tabulate(table, headers=["check", "analytic", "independent", "measured by", "", "note"],
                    tablefmt=tablefmt, disable_numparse=True)


def format_gridding(rows: list[dict], fmt: str = "table") -> str:
    """Rows of :func:`espdsl.analysis.gridding.gridding_nodes` in ``fmt``."""
    from tabulate import tabulate

    from .gridding import FIELDS
    header = ["node", "over", *FIELDS]
    if fmt == "json":
        return json.dumps(rows, indent=2)

    def cell(key: str, v: Any) -> Any:
        if v is None:
            return ""
        if key == "box":
            return "x".join(map(str, v))
        if key in ("holes", "odd", "spread"):
            return f"{v:.4f}"
        return v

    table = [[cell(k, row.get(k)) for k in header] for row in rows]
    if fmt == "csv":
        return _csv(header, table)
    return tabulate(table, headers=header, disable_numparse=True,
                    tablefmt="github" if fmt == "markdown" else "simple")
