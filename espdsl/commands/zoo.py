"""``espdsl zoo``: list the paper's studies, or run one: pinned specs, tables and plots."""
from __future__ import annotations

import click

from ..errors import UsageError
from .options import AsciiIntRange, param_option, parse_params

FORMATS = ["table", "markdown", "csv", "json"]
EMITS = ("yaml", "py", "onnx")


@click.command("zoo", short_help="The paper's studies (Fig. 5, Table 2, Fig. 9) as data: specs, tables, plots.")
@click.argument("study", required=False, metavar="[STUDY]")
@param_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for each row's pinned spec, the tables and the plots (all or nothing).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="What to print (markdown: the full report).")
@click.option("--emit", default="yaml", show_default=True, metavar="yaml,py,onnx",
              help="What to write per row into the -o folder.")
@click.option("--plot-format", "plot_format", default="png", show_default=True,
              metavar="png,svg,pdf", help="Formats of the plots written into the -o folder.")
@click.option("--dpi", type=AsciiIntRange(30, 1200), default=150, show_default=True,
              help="Resolution of the plots (PNG pixels per inch; the figure is 7.5 x 4.6 in).")
@click.option("--bench", is_flag=True,
              help="Add each row's measured latency and a latency plot (uses espdsl bench).")
@click.option("--runs", type=AsciiIntRange(), default=200, show_default=True,
              help="With --bench: timed runs per row (the paper averages 200).")
@click.option("--warmup", type=AsciiIntRange(), default=10, show_default=True,
              help="With --bench: untimed runs first.")
def command(study: str | None, params: tuple[str, ...], out_dir: str | None, fmt: str, emit: str,
            plot_format: str, dpi: int, bench: bool, runs: int, warmup: int) -> None:
    """Without STUDY, list the studies; with one (a name or a study YAML path), run it.

    \b
    espdsl zoo fig5 -o out/fig5              # 12 networks: specs, fig5.md/.csv/.json, PNGs
    espdsl zoo table2 --format markdown      # the report of Table 2c-g
    espdsl zoo fig9 -p classes=19 -o out/fig9
    """
    from ..study import list_studies, read_study, run_study
    from ..study.table import format_result, list_text

    if study is None:
        if params or out_dir or bench:
            raise UsageError("give a STUDY to run", None, "espdsl zoo lists them; e.g. espdsl zoo fig5 -o out")
        click.echo(list_text([read_study(name) for name in list_studies()]))
        return
    kinds = [e.strip() for e in emit.split(",") if e.strip()]
    bad = [k for k in kinds if k not in EMITS]
    if bad or not kinds:
        raise UsageError(f"unknown --emit kind '{bad[0] if bad else emit}'", None,
                         f"a comma-separated list of {', '.join(EMITS)}")
    from ..study.plot import parse_formats
    formats = parse_formats(plot_format)  # refused before any work
    result = run_study(study, parse_params(params), out=out_dir, emit=kinds, bench=bench,
                       runs=runs, warmup=warmup, progress=True, plot_formats=formats, dpi=dpi)
    click.echo(format_result(result, fmt).rstrip("\n"))
    if out_dir:
        click.echo(f"wrote {out_dir}", err=True)
