"""``espdsl compile``: resolve and build a spec, print its per-node summary, optionally export."""
from __future__ import annotations

from pathlib import Path

import click

from ..api import build_ir, load
from ..errors import UsageError
from ..export import EXPORTS, export
from ..summary import format_summary, summarize
from .options import (blocks_option, input_option, param_option, parse_params, parse_size,
                      spec_argument)


@click.command("compile")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Export to .pt (espdsl checkpoint), .onnx, .ts (TorchScript) or .py (standalone PyTorch source).")
@click.option("--weights", type=click.Path(), help="Load a checkpoint into the model.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            output: str | None, weights: str | None, fmt: str) -> None:
    """Compile SPEC (a zoo/block name or a YAML path) to PyTorch and print its summary."""
    if output and Path(output).suffix.lower() not in EXPORTS:
        raise UsageError(f"unknown output type '{Path(output).suffix}' for {output}", None,
                         "use .pt (espdsl checkpoint), .onnx, .ts (TorchScript) or .py (PyTorch source)")
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **parse_params(params))
    model = build_ir(ir)
    if weights:
        from ..weights import load_weights
        load_weights(model, weights)
    rows, totals = summarize(ir)
    if output:
        export(model, ir, Path(output))
    click.echo(format_summary(rows, totals, fmt))
    if output and fmt != "json":
        click.echo(f"wrote {output}")
