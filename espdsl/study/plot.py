"""A study's plots as PNG files (matplotlib, headless): what each ``plots:`` entry asks for.

Kinds: ``scatter`` (x against y, every point labelled), ``line`` (y, or two y on twin axes,
against x; one line per ``series`` value), ``bubble`` (x against y, circle area proportional to
``size``, as the paper's Fig. 9) and ``bar`` (y per row). Where the paper prints the plotted
figure, its values are drawn too (open markers), so a difference shows at a glance.
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
          "size_bytes": "network size (bytes)", "peak_bytes": "peak activation memory (bytes)"}


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


def draw(result: StudyResult, plot: Plot, path: str | Path) -> bool:
    """Write ``plot`` of ``result`` to ``path`` (PNG); False (nothing written) when a column it
    needs is missing from every row (e.g. the latency without ``--bench``)."""
    rows = [r for r in result.rows if plot.groups is None or r["group"] in plot.groups]
    needed = [c for c in [plot.x, *plot.y, plot.size] if c]
    rows = [r for r in rows if all(value(r, c) is not None for c in needed)]
    if not rows:
        return False
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
    try:
        {"scatter": _scatter, "line": _line, "bubble": _bubble, "bar": _bar}[plot.kind](ax, rows, plot)
        ax.set_title(plot.title or result.study.title, fontsize=10)
        if plot.logx:
            ax.set_xscale("log")
        if plot.logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(str(path), format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return True


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _scatter(ax: Any, rows: list[dict], plot: Plot) -> None:
    y = plot.y[0]
    xs, ys = [value(r, plot.x) for r in rows], [value(r, y) for r in rows]
    ax.scatter(xs, ys, s=40, zorder=3)
    for r, xv, yv in zip(rows, xs, ys):
        ax.annotate(str(value(r, plot.label)), (xv, yv), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    _paper(ax, rows, plot.x, y)
    ax.set_xlabel(_label(plot.x))
    ax.set_ylabel(_label(y))


def _line(ax: Any, rows: list[dict], plot: Plot) -> None:
    series = _series(rows, plot.series)
    axes = [ax] if len(plot.y) == 1 else [ax, ax.twinx()]
    colors = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    handles = []
    for i, (y, axis) in enumerate(zip(plot.y, axes)):
        for j, (name, members) in enumerate(series.items()):
            members = sorted(members, key=lambda r: value(r, plot.x))
            color = colors[(i * len(series) + j) % len(colors)]
            text = _label(y) if not plot.series else f"{_label(y)}, {plot.series} = {name}"
            (line,) = axis.plot([value(r, plot.x) for r in members], [value(r, y) for r in members],
                                marker="o", color=color, label=text)
            handles.append(line)
            handles += _paper(axis, members, plot.x, y, color,
                              f"paper, {plot.series} = {name}" if plot.series else "paper")
        if len(axes) > 1:
            axis.set_ylabel(_label(y), color=colors[i * len(series) % len(colors)])
        else:
            axis.set_ylabel(_label(y))
    ax.set_xlabel(_label(plot.x))
    ax.legend(handles=handles, fontsize=8, loc="best")


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
    ax.bar_label(bars, labels=[number(value(r, y), y) for r in rows], fontsize=7, padding=2)
    printed = [(p, paper_value(r, y)) for p, r in zip(positions, rows)]
    printed = [(p, v) for p, v in printed if v is not None]
    if printed:
        ax.scatter([p for p, _ in printed], [v for _, v in printed], marker="_", s=600,
                   color="tab:red", linewidths=2.5, label="paper", zorder=4)
        ax.legend(fontsize=8)
    ax.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(_label(y))


def _paper(ax: Any, rows: list[dict], x: str, y: str, color: str = "tab:red",
           label: str = "paper") -> list[Any]:
    points = [(value(r, x), paper_value(r, y)) for r in rows]
    points = [(a, b) for a, b in points if b is not None]
    if not points:
        return []
    handle = ax.scatter([a for a, _ in points], [b for _, b in points], marker="o", s=70,
                        facecolors="none", edgecolors=color, linewidths=1.4, zorder=4,
                        label=label)
    return [handle]
