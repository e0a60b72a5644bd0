"""Studies: the paper's controlled comparisons as data (``espdsl zoo``).

A study file names a base spec and its rows (variants or a grid); running it gives one row of
figures per variant beside the paper's printed values, and writes each variant's pinned spec,
the tables and the plots. ``parse`` (:mod:`.spec`) -> ``run`` (:mod:`.run`) -> ``table`` /
``plot`` / ``write``.

>>> import espdsl
>>> rows = espdsl.run_study("table2c").rows
>>> [(r["name"], r["params"]) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
[('strided_conv', 199456), ('strided_esp', 183328),
 ('strided_conv_enc', 274000), ('strided_esp_enc', 183568)]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .run import StudyResult, run
from .spec import Study, list_studies, parse_study, read_study


def run_study(study: str | Path | Study, params: dict[str, Any] | None = None, *,
              out: str | Path | None = None, emit: Iterable[str] = ("yaml",), bench: bool = False,
              runs: int = 200, warmup: int = 10, progress: bool = False,
              plot_formats: Iterable[str] = ("png",), dpi: int | None = None) -> StudyResult:
    """Run a study (a shipped study's name, a path, or a :class:`Study`) and, with ``out``,
    write its folder (all or nothing). ``params`` override the study's shared parameters;
    ``bench`` adds the measured latency (the mean of ``runs`` timed runs after ``warmup``; the
    paper's protocol is 200); ``plot_formats`` (png, svg, pdf) and ``dpi`` for the plots.
    ``.rows`` of the result are plain dicts."""
    from functools import partial

    from ..errors import UsageError
    from .measure import bench_latency_ms

    if bench and (runs < 1 or warmup < 0):
        raise UsageError(f"runs must be at least 1 and warmup at least 0 (got {runs}, {warmup})",
                         None, "e.g. --runs 200 --warmup 10")
    timer = partial(bench_latency_ms, runs=runs, warmup=warmup) if bench else None
    result = run(study, params, timer=timer, progress=progress)
    if out is not None:
        from .write import write_study
        write_study(result, out, emit, plot_formats=plot_formats, dpi=dpi)
    return result


__all__ = ["run_study", "run", "read_study", "parse_study", "list_studies", "Study", "StudyResult"]
