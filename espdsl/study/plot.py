"""A study's plots (matplotlib, headless): what each ``plots:`` entry asks for, as PNG, SVG or
PDF at a chosen resolution.

Kinds: ``scatter`` (x against y, every point labelled; labels placed by adjustText so they do
not overlap each other or the points), ``line`` (y, or two y on twin axes, against x; one line
per ``series`` value), ``bubble`` (x against y, circle area proportional to ``size``, as the
paper's Fig. 9) and ``bar`` (y per row). Where the paper prints the plotted figure, its values
are drawn too (open markers or red bars), and the legend, outside the axes, tells "espdsl" from
"paper". Counts on the axes carry SI units (350 k, 2.5 G), other values thousands separators;
sizes in MB print two decimals, as the paper prints them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .run import StudyResult
from .spec import Plot
from .table import number

LABELS = {"params": "parameters", "macs": "MACs (convolutions)", "size_mb": "network size (MB)",
          "params_mb": "parameters x 4 bytes (MB)", "peak_mb": "peak activation memory (MB)",
          "conv_out_mb": "convolution outputs (MB, Fig. 3g)", "rf": "receptive field (px)",
          "latency_ms": "latency (ms per frame)", "fps": "inference speed (frames/s)",
          "size_bytes": "network size (bytes)", "peak_bytes": "peak activation memory (bytes)",
          "erf": "effective receptive field of the module (px)"}


def value(row: dict[str, Any], column: str) -> Any:
    """A row's value for a plot column: a row field, a setting or a figure."""
    if column in row["settings"]:
        return row["settings"][column]
    return row.get(column)


def paper_value(row: dict[str, Any], column: str) -> float | None:
    """The paper's printed value of ``column`` for ``row`` in the column's units, if any."""
    c = row["paper"].get(column)
    if not c:
        return None
    from .spec import parse_printed
    printed = parse_printed(c["printed"])
    return float(printed.value) * printed.scale


PLOT_FORMATS = ("png", "svg", "pdf")
DEFAULT_DPI = 150
COUNTS = ("params", "macs", "size_bytes", "peak_bytes", "module_params", "down_params")


def parse_formats(text: str) -> list[str]:
    """``"png,svg"`` -> ``["png", "svg"]``, refusing unknown formats.

    >>> parse_formats("png, SVG,pdf")
    ['png', 'svg', 'pdf']
    """
    from ..errors import UsageError
    formats = list(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in PLOT_FORMATS]
    if bad or not formats:
        raise UsageError(f"unknown plot format '{bad[0] if bad else text}'", None,
                         f"a comma-separated list of {', '.join(PLOT_FORMATS)}")
    return formats


def draw(result: StudyResult, plot: Plot, path: str | Path, *,
         formats: tuple[str, ...] | list[str] = ("png",), dpi: int = DEFAULT_DPI) -> list[Path]:
    """Write ``plot`` of ``result`` beside ``path`` (its stem) in each of ``formats``; returns
    the files written, none when a column it needs is missing from every row (e.g. the latency
    without ``--bench``)."""
    rows = [r for r in result.rows if plot.groups is None or r["group"] in plot.groups]
    needed = [c for c in [plot.x, *plot.y, plot.size] if c]
    rows = [r for r in rows if all(value(r, c) is not None for c in needed)]
    if not rows:
        return []
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=dpi)
    written = []
    try:
        {"scatter": _scatter, "line": _line, "bubble": _bubble, "bar": _bar}[plot.kind](ax, rows, plot)
        ax.set_title(plot.title or result.study.title, fontsize=10)
        if plot.logx:
            ax.set_xscale("log")
        if plot.logy:
            ax.set_yscale("log")
        _format_axis(ax.xaxis, plot.x if plot.kind != "bar" else None)
        _format_axis(ax.yaxis, plot.y[0] if len(plot.y) == 1 or plot.kind == "line" else None)
        ax.grid(True, alpha=0.3)
        if plot.kind == "scatter":
            _place_labels(ax)
        fig.tight_layout()
        for fmt in formats:
            target = Path(path).with_suffix(f".{fmt}")
            meta = {"Software": None} if fmt == "png" else {"Creator": None} if fmt == "pdf" \
                else {"Date": None}
            fig.savefig(str(target), format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight")
            written.append(target)
    finally:
        plt.close(fig)
    return written


def _format_axis(axis: Any, column: str | None) -> None:
    """SI units for counts (350 k, 2.5 G), thousands separators for other large values, two
    decimals for sizes in MB."""
    from matplotlib.ticker import FuncFormatter

    from ..units import si
    if column in COUNTS:
        fmt = FuncFormatter(lambda v, _: si(v) if v else "0")
        axis.set_major_formatter(fmt)
        if axis.get_scale() == "log":  # the minor ticks a log axis labels: the same units
            axis.set_minor_formatter(FuncFormatter(
                lambda v, _: si(v) if str(round(v / 10 ** math.floor(math.log10(v))))[0] in "1235"
                else ""))
    elif column is not None and column.endswith("_mb"):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2f}"))
    elif column is not None:
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000
                                               else f"{v:g}"))


def _place_labels(ax: Any) -> None:
    """Move the point labels apart so none overlaps another or a point (adjustText)."""
    from adjustText import adjust_text
    texts = [t for t in ax.texts if getattr(t, "_espdsl_label", False)]
    if texts:
        adjust_text(texts, ax=ax, expand=(1.2, 1.4),
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _scatter(ax: Any, rows: list[dict], plot: Plot) -> None:
    y = plot.y[0]
    xs, ys = [value(r, plot.x) for r in rows], [value(r, y) for r in rows]
    handles = [ax.scatter(xs, ys, s=40, zorder=3, label="espdsl")]
    for r, xv, yv in zip(rows, xs, ys):
        text = ax.text(xv, yv, str(value(r, plot.label)), fontsize=8)
        text._espdsl_label = True
    handles += _paper(ax, rows, plot.x, y)
    ax.set_xlabel(_label(plot.x))
    ax.set_ylabel(_label(y))
    if len(handles) > 1:
        _legend(ax, handles)


def _line(ax: Any, rows: list[dict], plot: Plot) -> None:
    series = _series(rows, plot.series)
    axes = [ax] if len(plot.y) == 1 else [ax, ax.twinx()]
    colors = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    handles = []
    for i, (y, axis) in enumerate(zip(plot.y, axes)):
        for j, (name, members) in enumerate(series.items()):
            members = sorted(members, key=lambda r: value(r, plot.x))
            color = colors[(i * len(series) + j) % len(colors)]
            which = _label(y) if len(plot.y) > 1 else ""
            what = ", ".join(t for t in (which, f"{plot.series} = {name}" if plot.series else "") if t)
            text = f"espdsl: {what}" if what else "espdsl"
            (line,) = axis.plot([value(r, plot.x) for r in members], [value(r, y) for r in members],
                                marker="o", color=color, label=text)
            handles.append(line)
            handles += _paper(axis, members, plot.x, y, color,
                              f"paper: {what}" if what else "paper (printed)")
        if len(axes) > 1:
            axis.set_ylabel(_label(y), color=colors[i * len(series) % len(colors)])
        else:
            axis.set_ylabel(_label(y))
        if len(axes) > 1:
            _format_axis(axis.yaxis, y)
    ax.set_xlabel(_label(plot.x))
    _legend(ax, handles)


def _legend(ax: Any, handles: list[Any]) -> None:
    """The legend outside the axes, on the right: it never covers a data point."""
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02 if len(
        ax.figure.axes) == 1 else 1.12, 1.0), borderaxespad=0.0, frameon=False)


def _series(rows: list[dict], column: str | None) -> dict[Any, list[dict]]:
    if not column:
        return {"": rows}
    out: dict[Any, list[dict]] = {}
    for r in rows:
        out.setdefault(value(r, column), []).append(r)
    return out


def _bubble(ax: Any, rows: list[dict], plot: Plot) -> None:
    sizes = [float(value(r, plot.size)) for r in rows]
    biggest = max(sizes) or 1.0
    xs, ys = [value(r, plot.x) for r in rows], [value(r, plot.y[0]) for r in rows]
    ax.scatter(xs, ys, s=[1400 * s / biggest for s in sizes], alpha=0.45, edgecolors="black",
               linewidths=0.6, zorder=3)
    for xv, yv, s in zip(xs, ys, sizes):
        # truncated to two decimals, as the paper prints sizes (Table 2g: 1.46, not 1.47)
        ax.annotate(f"{math.floor(s * 100) / 100:.2f}", (xv, yv), ha="center", va="center",
                    fontsize=7, zorder=4)
    ax.set_xlabel(_label(plot.x))
    ax.set_ylabel(_label(plot.y[0]))
    if all(isinstance(v, int) for v in xs + ys):   # depth multipliers: whole-number ticks only
        ax.set_xticks(sorted(set(xs)))
        ax.set_yticks(sorted(set(ys)))
    ax.margins(0.15)
    ax.text(0.01, 0.01, f"circle area proportional to {_label(plot.size)}; printed: its value "
            "(truncated, as the paper prints)", transform=ax.transAxes, fontsize=7, va="bottom")


def _bar(ax: Any, rows: list[dict], plot: Plot) -> None:
    y = plot.y[0]
    names = [str(value(r, plot.label)) for r in rows]
    positions = list(range(len(rows)))
    bars = ax.bar(positions, [value(r, y) for r in rows], color="tab:blue", label="espdsl", zorder=3)
    ax.bar_label(bars, labels=[_bar_text(value(r, y), y) for r in rows], fontsize=7, padding=2)
    printed = [(p, paper_value(r, y)) for p, r in zip(positions, rows)]
    printed = [(p, v) for p, v in printed if v is not None]
    if printed:
        paper = ax.scatter([p for p, _ in printed], [v for _, v in printed], marker="_", s=600,
                           color="tab:red", linewidths=2.5, label="paper (printed)", zorder=4)
        _legend(ax, [bars, paper])
    ax.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(_label(y))


def _bar_text(v: Any, column: str) -> str:
    """A bar's label: SI units for counts, two decimals for sizes in MB (as the paper prints)."""
    from ..units import si
    if column in COUNTS and isinstance(v, int):
        return f"{v:,}" if v < 10 ** 6 else si(v)
    if column.endswith("_mb"):
        return f"{v:.2f}"
    return number(v, column)


def _paper(ax: Any, rows: list[dict], x: str, y: str, color: str = "tab:red",
           label: str = "paper (printed)") -> list[Any]:
    points = [(value(r, x), paper_value(r, y)) for r in rows]
    points = [(a, b) for a, b in points if b is not None]
    if not points:
        return []
    handle = ax.scatter([a for a, _ in points], [b for _, b in points], marker="o", s=70,
                        facecolors="none", edgecolors=color, linewidths=1.4, zorder=4,
                        label=label)
    return [handle]
