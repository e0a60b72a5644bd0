"""Searching a space too large to enumerate with Optuna (NSGA-II, or random sampling as the
baseline), one trial per point, in a study that an SQLite storage keeps between runs.

Each trial suggests every axis (integer ranges as integers, lists and choices as categories),
analyses the point exactly and reports the objectives; constraint violations go to
``trial.set_constraint`` (NSGA-II ranks feasible points first), a point that a ``when`` condition removes or that
does not resolve is pruned. With a storage, trials already in the study count towards
``trials`` (``resume``) and their rows are analysed again (the analysis is exact and cheap)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .spec import Space


def _optuna() -> Any:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def search(space: Space, evaluator: Any, *, trials: int, seed: int, sampler: str,
           storage: str | Path | None, resume: bool, progress: bool) -> Any:
    """Run (or continue) the study; returns it. Rows accumulate in ``evaluator``."""
    optuna = _optuna()
    from .run import objective_value

    objectives = [o for o in space.objectives if o.figure != "latency"]
    if not objectives:
        raise UsageError(f"space '{space.name}' has only measured objectives", None,
                         "a search needs an objective the analysis gives (params, macs, ...)")
    def make(seed: int) -> Any:
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.NSGAIISampler(population_size=space.population, seed=seed)

    chosen = make(seed)
    url = None
    if storage is not None:
        path = Path(storage)
        if path.exists() and not resume:
            raise UsageError(f"{path} holds an earlier search", None,
                             "continue it with --resume, or delete the file to start again")
        if resume and not path.exists():
            raise UsageError(f"--resume: no search stored at {path}", None,
                             "run once without --resume first")
        url = f"sqlite:///{path.resolve()}"
    name = f"{space.name}-{sampler}-seed{seed}"
    study = optuna.create_study(study_name=name, storage=url, sampler=chosen,
                                directions=["minimize" if o.sense == "min" else "maximize"
                                            for o in objectives], load_if_exists=resume)
    axes = space.axes
    for trial in study.trials:                 # earlier runs: their rows, analysed again
        if all(a.name in trial.params for a in axes):
            evaluator({a.name: trial.params[a.name] for a in axes})
    left = trials - len(study.trials)
    if study.trials:
        # a resumed run: a sampler seeded as the first one would draw its points again
        study.sampler = make(seed + len(study.trials))

    def objective(trial: Any) -> Any:
        values = {}
        for axis in axes:
            if axis.integer_range is not None:
                lo, hi, step = axis.integer_range
                values[axis.name] = trial.suggest_int(axis.name, lo, hi - (hi - lo) % step, step=step)
            else:
                values[axis.name] = trial.suggest_categorical(axis.name, axis.values)
        row = evaluator(values)
        if row is None:
            raise optuna.TrialPruned()
        for i, c in enumerate(space.constraints):       # NSGA-II: feasible points first
            trial.set_constraint(f"c{i}", c.violation(objective_value(row, c.figure)))
        return tuple(objective_value(row, o.figure) for o in objectives)

    if left > 0:
        from tqdm import tqdm
        with tqdm(total=left, disable=None if progress else True, file=sys.stderr,
                  unit="trial", leave=False, desc=space.name) as bar:
            study.optimize(objective, n_trials=left, callbacks=[lambda s, t: bar.update()],
                           catch=())
    return study
