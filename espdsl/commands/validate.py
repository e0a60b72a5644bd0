"""``espdsl validate``: resolve a spec and lint its graph without building anything."""
from __future__ import annotations

import click

from .options import blocks_option, input_option, param_option, parse_params, parse_size, spec_argument


@click.command("validate")
@spec_argument
@param_option
@input_option()
@blocks_option
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...]) -> None:
    """Check SPEC: grammar, names, parameters, channels, shapes; exit 2 on the first error."""
    from ..api import load
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **parse_params(params))
    click.echo(f"ok: {ir.kind} '{ir.name}' resolves to {len(ir.graph) - 1} ops, "
               f"{'x'.join(map(str, ir.input_shape))} -> {'x'.join(map(str, ir.output_shape))}")
