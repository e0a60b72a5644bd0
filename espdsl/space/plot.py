"""A space run's plots (matplotlib, headless): one PNG per pair of objectives, every feasible
network a faint dot, the Pareto front drawn as a staircase with its networks labelled, and the
references (e.g. the paper's own network) as labelled stars; the front of the pair itself is
the black staircase, every few of its networks labelled."""
from __future__ import annotations

import itertools
from pathlib import Path

from ..study.plot import LABELS, _format_axis
from .run import ExploreResult, objective_value


def plot_pairs(result: ExploreResult) -> list[tuple[str, str]]:
    """The objective pairs drawn (latency only when measured)."""
    figures = [o.figure for o in result.space.objectives
               if o.figure != "latency" or any(r.get("latency_ms") for r in result.rows)]
    if len(figures) == 1:
        figures = [figures[0], "params" if figures[0] != "params" else "macs"]
    return list(itertools.combinations(figures, 2))


def draw_pair(result: ExploreResult, x: str, y: str, path: str | Path, labels: int = 8) -> bool:
    """Write the plot of ``y`` against ``x`` to ``path``; False when no row has both."""
    rows = [r for r in result.feasible
            if objective_value(r, x) is not None and objective_value(r, y) is not None]
    if not rows:
        return False
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    senses = {o.figure: o.sense for o in result.space.objectives}
    measured = "latency" in (x, y)
    front = [r for r in rows if (r.get("latency_front") if measured else r.get("front") == 1)]
    front.sort(key=lambda r: objective_value(r, x))
    fig, ax = plt.subplots(figsize=(7.2, 5), dpi=110)
    try:
        others = [r for r in rows if r not in front]
        ax.scatter([objective_value(r, x) for r in others], [objective_value(r, y) for r in others],
                   s=10, color="tab:gray", alpha=0.25, linewidths=0,
                   label=f"dominated or off this pair ({len(others)})", zorder=2)
        fx, fy = [objective_value(r, x) for r in front], [objective_value(r, y) for r in front]
        ax.scatter(fx, fy, s=30, color="tab:red", zorder=4,
                   label=f"Pareto front over all objectives ({len(front)})")
        pair_front = _pair_front(rows, x, y, senses)
        ax.step([objective_value(r, x) for r in pair_front],
                [objective_value(r, y) for r in pair_front], where="post", color="black",
                linewidth=1.0, zorder=5, label=f"front of this pair ({len(pair_front)}, labelled)")
        texts = []
        step = max(1, -(-len(pair_front) // labels))
        for r in pair_front[::step]:
            texts.append(ax.annotate(r["name"], (objective_value(r, x), objective_value(r, y)),
                                     fontsize=6, xytext=(5, -3), textcoords="offset points",
                                     zorder=6))
        for ref in result.references:
            rx, ry = objective_value(ref, x), objective_value(ref, y)
            if rx is None or ry is None:
                continue
            ax.scatter([rx], [ry], marker="*", s=160, color="tab:blue", edgecolors="black",
                       linewidths=0.6, zorder=5)
            texts.append(ax.annotate(ref["name"], (rx, ry), fontsize=8, color="tab:blue",
                                     xytext=(6, -10), textcoords="offset points"))
        ax.set_xlabel(_label(x, senses))
        ax.set_ylabel(_label(y, senses))
        # the zoo's conventions: SI units on counts (2.5 G, not 1e9), separators elsewhere
        _format_axis(ax.xaxis, "latency_ms" if x == "latency" else x)
        _format_axis(ax.yaxis, "latency_ms" if y == "latency" else y)

        ax.set_title(f"{result.space.name}: {y} against {x} ({len(rows):,} feasible networks)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(str(path), format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return True


def _pair_front(rows: list[dict], x: str, y: str, senses: dict[str, str]) -> list[dict]:
    """The rows no other row beats in both ``x`` and ``y``, ordered by ``x``."""
    sx = 1 if senses.get(x, "min") == "min" else -1
    sy = 1 if senses.get(y, "min") == "min" else -1
    ordered = sorted(rows, key=lambda r: (sx * objective_value(r, x), sy * objective_value(r, y)))
    out, best = [], None
    for r in ordered:
        v = sy * objective_value(r, y)
        if best is None or v < best:
            out.append(r)
            best = v
    return sorted(out, key=lambda r: objective_value(r, x))


def _label(figure: str, senses: dict[str, str]) -> str:
    text = LABELS.get("latency_ms" if figure == "latency" else figure, figure)
    sense = senses.get(figure)
    return f"{text} ({'lower' if sense == 'min' else 'higher'} is better)" if sense else text
