"""``espdsl render``: draw a network (paper Fig. 4 style) or a block's inside (Fig. 1b) to a file."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from ..render import ANNOTATIONS, FORMATS
from .options import AsciiIntRange, blocks_option, param_option, parse_params, spec_argument


@click.command("render")
@spec_argument
@param_option
@blocks_option
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Output file: .svg, .png, .pdf (need Graphviz's dot) or .dot; without -o "
                   "the DOT source goes to stdout (pipe it to dot, e.g. | dot -Tsvg > net.svg).")
@click.option("--expand", "expand", multiple=True, metavar="NODE|all",
              help="Draw the inside of a node, e.g. encoder.level2_0, or 'all' (repeatable).")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Flow top-to-bottom or left-to-right.")
@click.option("--annotate", default="", metavar="LIST",
              help=f"Comma-separated extras on each box: {','.join(ANNOTATIONS)}.")
@click.option("--dpi", type=AsciiIntRange(30, 600), default=None, help="Resolution of .png output.")
@click.option("--plot-format", "plot_format", default=None, metavar="png,svg,pdf,dot",
              help="Write the picture in each of these formats, beside -o (its stem).")
def command(spec: str, params: tuple[str, ...], blocks: tuple[str, ...], output: str | None,
            expand: tuple[str, ...], rankdir: str, annotate: str, dpi: int | None,
            plot_format: str | None) -> None:
    """Render SPEC (a zoo/block name or a YAML path) as a graph picture.

    A network draws one box per spec node (repeats collapsed, down-sampling red, up-sampling
    green, banded by spatial level); a block, or --expand NODE, draws the module's inside.
    """
    from ..render import render
    if output is None:
        from ..render import to_digraph
        click.echo(to_digraph(spec, expand=list(expand) or None, rankdir=rankdir,
                              annotate=annotate.split(",") if annotate else (), blocks=blocks,
                              **parse_params(params)).source, nl=False)
        return
    if Path(output).suffix.lower() not in FORMATS:
        raise UsageError(f"unknown output type '{Path(output).suffix}' for {output}", None,
                         "use .svg, .png, .pdf or .dot")
    targets = [Path(output)]
    if plot_format:
        kinds = list(dict.fromkeys(f.strip().lower() for f in plot_format.split(",") if f.strip()))
        bad = [k for k in kinds if f".{k}" not in FORMATS]
        if bad or not kinds:
            raise UsageError(f"unknown plot format '{bad[0] if bad else plot_format}'", None,
                             "a comma-separated list of png, svg, pdf, dot")
        targets = [Path(output).with_suffix(f".{k}") for k in kinds]
    for target in targets:
        render(spec, target, expand=list(expand) or None, rankdir=rankdir,
               annotate=annotate.split(",") if annotate else (), blocks=blocks, dpi=dpi,
               **parse_params(params))
        click.echo(f"wrote {target}")
