"""``espdsl analyze``: parameters, MACs, element-wise work, memory and receptive field of a
spec, per node and in total, from the IR alone (``--check`` also builds and measures it)."""
from __future__ import annotations

import click

from ..analysis.format import FORMATS
from ..errors import UsageError
from ..files import atomic_path
from .options import (AsciiIntRange, blocks_option, input_option, param_option, parse_params, parse_size,
                      spec_argument)


@click.command("analyze")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("--depth", default=1, show_default=True, type=AsciiIntRange(1, 32),
              help="How many levels of nested spec nodes to list.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--check", is_flag=True,
              help="Build the module and set independent measurements beside the figures "
                   "(params, fvcore and ptflops MACs, traced peak memory, gradient receptive field).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead.")
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            depth: int, fmt: str, check: bool, output: str | None) -> None:
    """Analyse SPEC (a zoo/block name or a YAML path): per spec node and in total."""
    from ..analysis.format import format_analysis
    from ..analysis.walk import analyze_ir
    from ..api import load
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **parse_params(params))
    result = analyze_ir(ir)
    checks = None
    if check:
        from ..analysis.check import check as run_checks
        checks = run_checks(ir, result)
    text = format_analysis(result, fmt, depth, checks)
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)
    if checks is not None and any(c.ok is False for c in checks):
        failed = ", ".join(f"{c.quantity} ({c.source})" for c in checks if c.ok is False)
        raise UsageError(f"check failed: the analysis and the measurement disagree on {failed}",
                         None, "this is a bug in espdsl's analysis: please report it")
