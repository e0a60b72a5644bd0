"""Running a design space: every point (or a search's points) analysed exactly, the constraints
kept, the Pareto fronts ranked, latency measured on the front.

A point's figures come from :func:`espdsl.summaries.totals_of` (equal to ``espdsl.analyze``).
A space of at most ``limit`` points is enumerated; a larger one is searched with Optuna's
NSGA-II (or random sampling, the baseline) in an SQLite storage that a later run can resume.
``latency`` is measured, never estimated (:mod:`.latency`), on the front's first ``top``
networks.

>>> from espdsl.space.spec import parse_space
>>> s = parse_space('''
... space: demo
... base: espnet_c
... axes: {alpha3: {range: [1, 4]}, K: [4, 8]}
... constraints: ["params <= 200000"]
... objectives: [{min: params}, {max: rf}]
... ''')
>>> r = run(s)
>>> r.mode, len(r.rows), [row["name"] for row in r.front()]
('enumerate', 8, ['alpha31_K8', 'alpha32_K8', 'alpha33_K8', 'alpha34_K8'])
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EspdslError, Loc, UsageError, did_you_mean
from ..registry import Registry, default_registry
from ..resolve import coerce
from ..spec import Spec
from ..summaries import Snapshot, Totals, totals_of
from .spec import Space, SpaceError, read_space

SAMPLERS = ("nsga2", "random")


@dataclass
class ExploreResult:
    """Rows of a space run (plain dicts), how they were found, and the fronts."""

    space: Space
    rows: list[dict[str, Any]]
    references: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "enumerate"          # 'enumerate' or 'search'
    sampler: str | None = None
    seed: int | None = None
    trials: int = 0                  # evaluations asked for (search)
    skipped: int = 0                 # points a 'when' condition removed
    failed: int = 0                  # points that do not resolve
    first_error: str | None = None
    storage: str | None = None
    measured_on: list[str] = field(default_factory=list)
    spec: Spec | None = None
    registry: Registry | None = None

    def front(self, rank: int = 1) -> list[dict[str, Any]]:
        """The rows of Pareto front ``rank`` (1: the non-dominated rows), by the first
        objective."""
        first = self.space.objectives[0]
        rows = [r for r in self.rows if r.get("front") == rank]
        return sorted(rows, key=lambda r: (objective_value(r, first.figure) or 0)
                      * (1 if first.sense == "min" else -1))

    def settings(self, row: dict[str, Any]) -> dict[str, Any]:
        """The base spec's parameters of a row (fixed ones, axes and derived values)."""
        space, declared = self.space, self.spec.params
        names = [*space.params, *(a.name for a in space.axes), *space.derived]
        return {k: row.get(k, space.params.get(k)) for k in names if k in declared}

    @property
    def feasible(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["feasible"]]


def objective_value(row: dict[str, Any], figure: str) -> float | None:
    """A row's figure as one number (a rectangular receptive field: its smaller side)."""
    key = "latency_ms" if figure == "latency" else figure
    value = row.get(key)
    if isinstance(value, (list, tuple)):
        return float(min(value))
    return None if value is None else float(value)


def run(space: Space | str | Path, *, seed: int = 0, limit: int | None = None,
        trials: int | None = None, sampler: str = "nsga2", storage: str | Path | None = None,
        resume: bool = False, progress: bool = False, latency: bool | None = None,
        executor: str | Any = "local", top: int | None = None, runs: int | None = None,
        warmup: int | None = None) -> ExploreResult:
    """Run ``space`` (a :class:`Space`, a shipped space's name or a path).

    Enumerated when it has at most ``limit`` points (default: the space's ``search.limit``),
    else searched for ``trials`` evaluations with ``sampler`` (``nsga2`` or ``random``) seeded
    by ``seed``, in an Optuna study stored at ``storage`` (an SQLite file; in memory when None)
    that ``resume`` continues. ``latency`` (default: when an objective is latency) measures the
    front's first ``top`` networks with ``executor`` (``local``, ``ray`` or an object with a
    ``measure(jobs)`` method)."""
    space = space if isinstance(space, Space) else read_space(space)
    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler '{sampler}'", None, did_you_mean(sampler, SAMPLERS))
    reg = default_registry()
    for folder in space.blocks:
        reg.add_dir(folder, loc=Loc(space.file))
    reg = Snapshot(reg)
    spec = _open(space.base, space, reg, space.document.loc(("base",)) if space.document else None)
    evaluator = Evaluator(space, spec, reg)
    limit = space.limit if limit is None else limit
    result = ExploreResult(space, [], spec=spec, registry=reg, seed=seed)
    if space.size <= limit:
        result.mode = "enumerate"
        _enumerate(space, evaluator, progress)
    else:
        from .search import search
        result.mode, result.sampler = "search", sampler
        result.trials = space.trials if trials is None else trials
        result.storage = None if storage is None else str(storage)
        search(space, evaluator, trials=result.trials, seed=seed, sampler=sampler,
               storage=storage, resume=resume, progress=progress)
    result.rows = evaluator.rows()
    result.skipped, result.failed, result.first_error = (evaluator.skipped, evaluator.failed,
                                                          evaluator.first_error)
    result.references = [_reference(ref, space, reg) for ref in space.references]
    rank(result.rows, space)
    want = any(o.figure == "latency" for o in space.objectives) if latency is None else latency
    if want:
        from .latency import measure_front
        measure_front(result, executor=executor, top=top or space.latency_top,
                      runs=space.latency_runs if runs is None else runs,
                      warmup=space.latency_warmup if warmup is None else warmup,
                      progress=progress)
    return result


class Evaluator:
    """Analyses points of a space (memoised: a search may come back to a point)."""

    def __init__(self, space: Space, spec: Spec, registry: Registry):
        self.space, self.spec, self.registry = space, spec, registry
        self.done: dict[tuple, dict[str, Any] | None] = {}
        self.skipped = self.failed = 0
        self.first_error: str | None = None
        self.decls = self._check_params()

    def _check_params(self) -> dict[str, Any]:
        space, spec = self.space, self.spec
        doc = space.document
        names = [(a.name, a.loc) for a in space.axes]
        names += [(k, space.derived_locs.get(k)) for k in space.derived]
        names += [(k, doc.key_loc(("params", k)) if doc else None) for k in space.params]
        helpers = space.helpers()
        for name, loc in names:
            if name not in spec.params and name not in helpers:
                raise SpaceError(f"'{name}' is not a parameter of {spec.kind} '{spec.name}'", loc,
                                 did_you_mean(name, spec.params) or "an axis that is not a "
                                 "parameter must be read by a derived value or a condition")
        for axis in space.axes:
            if axis.name not in spec.params:
                continue
            for value in axis.values:
                try:
                    coerce(value, spec.params[axis.name], axis.loc, f"{spec.kind} '{spec.name}'")
                except EspdslError as exc:
                    raise SpaceError(exc.message, axis.loc, exc.hint) from None
        return spec.params

    def __call__(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The row of the point with these axis values (None: removed by 'when' or failed)."""
        key = tuple(values[a.name] for a in self.space.axes)
        if key in self.done:
            return self.done[key]
        space, spec = self.space, self.spec
        try:
            point = space.point(values)
        except EspdslError as exc:
            raise SpaceError(exc.message, exc.loc, exc.hint) from None
        if point is None:
            self.skipped += 1
            self.done[key] = None
            return None
        owner = f"{spec.kind} '{spec.name}'"
        settings = {k: coerce(v, self.decls[k], None, owner) for k, v in space.params.items()
                    if k in self.decls}
        try:
            settings.update({k: coerce(v, self.decls[k], space.derived_locs.get(k), owner)
                             for k, v in point.items() if k in self.decls})
            totals = totals_of(spec, settings, registry=self.registry, input_size=space.input)
        except EspdslError as exc:
            self.failed += 1
            if self.first_error is None:
                shown = ", ".join(f"{k}={v}" for k, v in point.items())
                self.first_error = f"{shown}: {exc.message}"
            self.done[key] = None
            return None
        row = make_row(space.label(values), point, totals, space)
        self.done[key] = row
        return row

    def rows(self) -> list[dict[str, Any]]:
        return [r for r in self.done.values() if r is not None]


def make_row(name: str, point: dict[str, Any], totals: Totals, space: Space) -> dict[str, Any]:
    """A row: name, the point's parameters, the figures, whether the constraints hold."""
    rf = list(totals.rf) if isinstance(totals.rf, tuple) else totals.rf
    stride = list(totals.stride) if isinstance(totals.stride, tuple) else totals.stride
    row: dict[str, Any] = {"name": name, **point, "params": totals.params, "macs": totals.macs,
                           "peak_mb": totals.peak_mb, "peak_bytes": totals.peak_bytes,
                           "conv_out_mb": totals.conv_out_mb, "rf": rf, "stride": stride}
    violations = [c.violation(objective_value(row, c.figure)) for c in space.constraints]
    row["violation"] = sum(violations)
    row["feasible"] = not any(violations)
    row["front"] = None
    return row


def _enumerate(space: Space, evaluator: Evaluator, progress: bool) -> None:
    from tqdm import tqdm

    names = [a.name for a in space.axes]
    combos = itertools.product(*(a.values for a in space.axes))
    with tqdm(total=space.size, disable=None if progress else True, file=sys.stderr,
              unit="net", leave=False, desc=space.name) as bar:
        for combo in combos:
            evaluator(dict(zip(names, combo)))
            bar.update()


def rank(rows: list[dict[str, Any]], space: Space, fronts: int = 3) -> None:
    """Set ``row['front']``: 1 for the non-dominated feasible rows (over the objectives that
    are figures of the analysis), 2 for those only they dominate, ... up to ``fronts``."""
    objectives = [o for o in space.objectives if o.figure != "latency"]
    feasible = [r for r in rows if r["feasible"]]
    for r in rows:
        r["front"] = None
    if not objectives or not feasible:
        return
    ranks = pareto_ranks([[objective_value(r, o.figure) for o in objectives] for r in feasible],
                         [o.sense for o in objectives], fronts)
    for r, k in zip(feasible, ranks):
        r["front"] = k


def pareto_ranks(points: Sequence[Sequence[float]], senses: Sequence[str],
                 fronts: int = 1) -> list[int | None]:
    """Non-dominated sorting: rank 1 for the points no other point dominates, rank 2 once
    those are removed, ... (None past ``fronts``). A point dominates another when it is at
    least as good in every objective and better in one (``senses``: 'min' or 'max').

    >>> pareto_ranks([[1, 5], [2, 2], [3, 3], [1, 5]], ["min", "min"], fronts=2)
    [1, 1, 2, 1]
    """
    import numpy as np

    a = np.asarray(points, dtype=float).reshape(len(points), len(senses))
    a = a * np.array([1.0 if s == "min" else -1.0 for s in senses])
    ranks: list[int | None] = [None] * len(points)
    left = np.arange(len(points))
    for k in range(1, fronts + 1):
        if not len(left):
            break
        sub = a[left]
        le = (sub[:, None, :] <= sub[None, :, :]).all(-1)   # i no worse than j everywhere
        lt = (sub[:, None, :] < sub[None, :, :]).any(-1)    # i better somewhere
        dominated = (le & lt).any(0)
        for i in left[~dominated]:
            ranks[int(i)] = k
        left = left[dominated]
    return ranks


def dominates(a: Sequence[float], b: Sequence[float], senses: Sequence[str]) -> bool:
    """Does ``a`` dominate ``b``?

    >>> dominates([1, 2], [1, 3], ["min", "min"]), dominates([1, 2], [1, 2], ["min", "min"])
    (True, False)
    """
    sign = [1 if s == "min" else -1 for s in senses]
    x = [v * s for v, s in zip(a, sign)]
    y = [v * s for v, s in zip(b, sign)]
    return all(p <= q for p, q in zip(x, y)) and any(p < q for p, q in zip(x, y))


def _open(ref: str, space: Space, reg: Registry, loc: Loc | None) -> Spec:
    from ..loading import open_beside
    try:
        return open_beside(ref, space.file, reg)
    except EspdslError as exc:
        raise SpaceError(f"base spec '{ref}': {exc.message}", loc, exc.hint) from None


def _reference(ref: Any, space: Space, reg: Registry) -> dict[str, Any]:
    spec = _open(ref.base, space, reg, ref.loc)
    try:
        settings = {k: coerce(v, spec.params[k], ref.loc, spec.name)
                    for k, v in ref.params.items() if k in spec.params}
        unknown = [k for k in ref.params if k not in spec.params]
        if unknown:
            raise SpaceError(f"reference '{ref.name}': '{unknown[0]}' is not a parameter of "
                             f"'{spec.name}'", ref.loc, did_you_mean(unknown[0], spec.params))
        totals = totals_of(spec, settings, registry=reg, input_size=space.input)
    except SpaceError:
        raise
    except EspdslError as exc:
        raise SpaceError(f"reference '{ref.name}' does not resolve: {exc.message}", ref.loc,
                         exc.hint) from None
    row = make_row(ref.name, dict(ref.params), totals, space)
    row["base"], row["doc"] = ref.base, ref.doc
    return row


Executor = Callable[[list], list]
