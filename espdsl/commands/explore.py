"""``espdsl explore``: a design space's networks analysed, its Pareto front found and written."""
from __future__ import annotations

import click

from .options import AsciiIntRange

FORMATS = ["table", "markdown", "csv", "json"]


@click.command("explore", short_help="Design spaces: Pareto fronts of networks under budgets.")
@click.argument("space", required=False, metavar="[SPACE]")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the rows, the front (tables and pinned specs) and the plots "
                   "(all or nothing).")
@click.option("--limit", type=AsciiIntRange(1, None), default=None,
              help="Enumerate the space when it has at most this many points, else search "
                   "(default: the space's search.limit).")
@click.option("--trials", type=AsciiIntRange(1, None), default=None, help="Evaluations of a search (default: the "
              "space's search.trials).")
@click.option("--seed", type=AsciiIntRange(0, None), default=0, show_default=True, help="Seed of the search.")
@click.option("--sampler", type=click.Choice(["nsga2", "random"]), default="nsga2",
              show_default=True, help="Optuna's NSGA-II, or random sampling (a baseline).")
@click.option("--storage", type=click.Path(dir_okay=False), default=None,
              help="SQLite file keeping the search (default: OUTPUT.optuna.db beside -o; "
                   "'none': in memory, several times faster, not resumable).")
@click.option("--resume", is_flag=True, help="Continue the search stored in --storage.")
@click.option("--latency/--no-latency", default=None,
              help="Measure the front's latency (default: when an objective is latency).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Where latency is measured: here, or one Ray task per "
              "network (ray.init(): a running cluster, else a local instance).")
@click.option("--top", type=AsciiIntRange(1, None), default=None, help="Measure at most this many front networks.")
@click.option("--runs", type=AsciiIntRange(1, None), default=None, help="Timed runs per network (the paper: 200).")
@click.option("--warmup", type=AsciiIntRange(0, None), default=None, help="Untimed runs first (default 10).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="How to print the front.")
def command(space: str | None, out_dir: str | None, limit: int | None, trials: int | None,
            seed: int, sampler: str, storage: str | None, resume: bool, latency: bool | None,
            executor: str, top: int | None, runs: int | None, warmup: int | None,
            fmt: str) -> None:
    """Without SPACE, list the shipped spaces; with one (a name or a space YAML path), run it.

    \b
    espdsl explore espnet_c_levels -o out/levels        # enumerated: 2,450 networks
    espdsl explore mobilenet_v2_stages -o out/mnv2 --trials 3000 --seed 0
    espdsl explore mobilenet_v2_stages -o out/mnv2 --trials 6000 --resume
    """
    from ..errors import UsageError
    from ..space import explore, list_spaces, read_space
    from ..space.table import format_rows, summary

    if space is None:
        if out_dir:
            raise UsageError("give a SPACE to run", None, "espdsl explore lists them")
        for name in list_spaces():
            s = read_space(name)
            click.echo(f"{name:<24} {s.size:>14,} points  {s.title}")
        return
    if storage is None and out_dir:
        storage = f"{out_dir.rstrip('/')}.optuna.db"
    elif storage == "none":
        storage = None
    result = explore(space, out_dir, seed=seed, limit=limit, trials=trials, sampler=sampler,
                     storage=storage, resume=resume, progress=True, latency=latency,
                     executor=executor, top=top, runs=runs, warmup=warmup)
    click.echo(summary(result))
    click.echo(format_rows(result, result.references + result.front(), fmt).rstrip("\n"))
    if out_dir:
        click.echo(f"wrote {out_dir}", err=True)
