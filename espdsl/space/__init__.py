"""Design spaces: which networks the grammar can say are best for a budget (``espdsl explore``).

A space file names a base spec, axes over its parameters, constraints and objectives
(:mod:`.spec`); running it analyses every point, or a search's points, exactly
(:mod:`espdsl.summaries`), ranks the Pareto fronts (:mod:`.run`, :mod:`.search`), measures the
front's latency where asked (:mod:`.latency`) and writes the rows, the front's pinned specs and
the plots (:mod:`.write`). ``parse`` -> ``run`` -> ``table`` / ``plot`` / ``write``.

>>> import espdsl
>>> r = espdsl.explore("espnet_c_levels", limit=0, trials=60, seed=1)
>>> r.mode, r.trials, len(r.front()) > 0
('search', 60, True)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .run import ExploreResult, pareto_ranks, run
from .spec import Space, SpaceError, list_spaces, parse_space, read_space


def explore(space: str | Path | Space, out: str | Path | None = None, *, seed: int = 0,
            limit: int | None = None, trials: int | None = None, sampler: str = "nsga2",
            storage: str | Path | None = None, resume: bool = False, progress: bool = False,
            latency: bool | None = None, executor: str | Any = "local", top: int | None = None,
            runs: int | None = None, warmup: int | None = None) -> ExploreResult:
    """Run a design space (a shipped space's name, a path, or a :class:`Space`) and, with
    ``out``, write its folder (all or nothing). See :func:`espdsl.space.run.run` for the
    options; ``.rows`` of the result are plain dicts, ``.front()`` the Pareto front."""
    result = run(space, seed=seed, limit=limit, trials=trials, sampler=sampler, storage=storage,
                 resume=resume, progress=progress, latency=latency, executor=executor, top=top,
                 runs=runs, warmup=warmup)
    if out is not None:
        from .write import write_space
        write_space(result, out)
    return result


__all__ = ["explore", "run", "read_space", "parse_space", "list_spaces", "Space", "SpaceError",
           "ExploreResult", "pareto_ranks"]
