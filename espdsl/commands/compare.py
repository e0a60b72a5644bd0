"""``espdsl compare``: the paper's Fig. 3g, formulas beside the compiled blocks."""
from __future__ import annotations

import click

from ..analysis.format import FORMATS
from ..analysis.formulas import FIG3G_PARAMS, MODULES
from ..errors import UsageError
from ..files import atomic_path
from .options import blocks_option, param_option, parse_params, parse_size


@click.command("compare", short_help="Compare modules like the paper's Fig. 3g (params, memory, receptive field).")
@click.option("--modules", default=",".join(MODULES), show_default=True, metavar="A,B,...",
              help="Blocks to compare (library or --blocks ones).")
@param_option
@click.option("--size", default="56x56", show_default=True, metavar="HxW",
              help="Feature map size W x H of Fig. 3g's memory column.")
@blocks_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--gridding", is_flag=True, help="Add a gridding column: the holes of the centre "
              "pixel's footprint and each channel group's lattice (docs/gridding.md).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead.")
def command(modules: str, params: tuple[str, ...], size: str, blocks: tuple[str, ...], fmt: str,
            gridding: bool, output: str | None) -> None:
    """Fig. 3g: parameters, memory and receptive field of each module, from the paper's formulas
    and from the compiled block (defaults: M=N=100, n=3, K=5, g=2, 56x56; a -p a block does
    not declare is not passed to it)."""
    from ..analysis.compare import compare
    from ..analysis.format import format_compare
    names = [m.strip() for m in modules.split(",") if m.strip()]
    if not names:
        raise UsageError("--modules is empty", None, "e.g. --modules esp,mobilenet")
    hw = parse_size(size)
    if len(hw) != 2:
        raise UsageError(f"bad size '{size}'", None, "write H x W, e.g. 56x56")
    overrides = parse_params(params)
    rows = compare(names, overrides, hw, blocks, gridding=gridding)
    text = format_compare(rows, fmt, settings={**FIG3G_PARAMS, **overrides}, size=hw)
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
