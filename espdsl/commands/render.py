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
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .svg, .png, .pdf (need Graphviz's dot) or .dot.")
@click.option("--expand", "expand", multiple=True, metavar="NODE|all",
              help="Draw the inside of a node, e.g. encoder.level2_0, or 'all' (repeatable).")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Flow top-to-bottom or left-to-right.")
@click.option("--annotate", default="", metavar="LIST",
              help=f"Comma-separated extras on each box: {','.join(ANNOTATIONS)}.")
@click.option("--dpi", type=AsciiIntRange(30, 600), default=None, help="Resolution of .png output.")
def command(spec: str, params: tuple[str, ...], blocks: tuple[str, ...], output: str,
            expand: tuple[str, ...], rankdir: str, annotate: str, dpi: int | None) -> None:
    """Render SPEC (a zoo/block name or a YAML path) as a graph picture.

    A network draws one box per spec node (repeats collapsed, down-sampling red, up-sampling
    green, banded by spatial level); a block, or --expand NODE, draws the module's inside.
    """
    from ..render import render
    if Path(output).suffix.lower() not in FORMATS:
        raise UsageError(f"unknown output type '{Path(output).suffix}' for {output}", None,
                         "use .svg, .png, .pdf or .dot")
    render(spec, output, expand=list(expand) or None, rankdir=rankdir,
           annotate=annotate.split(",") if annotate else (), blocks=blocks, dpi=dpi,
           **parse_params(params))
    click.echo(f"wrote {output}")
