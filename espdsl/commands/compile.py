"""``espdsl compile``: resolve a spec, print its per-node summary, optionally build and export.

Without ``-o`` or ``--weights`` nothing needs real tensors, so nothing is built and torch is
not even imported: the summary comes from the IR (a ``conv`` with ``out: 100000000`` is then a
line of text, not tens of GB). With them, the module is built, weights loaded, and exported."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from ..export import EXPORT_HINT, EXPORTS, TRACED
from .options import (AsciiIntRange, blocks_option, input_option, param_option, parse_params,
                      parse_size, spec_argument)


@click.command("compile")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Export to .pt (espdsl checkpoint), .onnx, .ts (TorchScript) or .py (standalone PyTorch source).")
@click.option("--weights", type=click.Path(), help="Load a checkpoint into the model.")
@click.option("--optimize", is_flag=True,
              help="The inference build (espdsl.passes: batch norms folded, channels-last, "
                   "memory plan): its summary, and what -o exports.")
@click.option("--dtype", default="fp32", show_default=True,
              type=click.Choice(["fp32", "bf16", "fp16"]),
              help="With --optimize: the precision of the build (espdsl.passes.precision); a .pt "
                   "export keeps it.")
@click.option("--opset", type=AsciiIntRange(7, 30), default=None,
              help="ONNX opset of a .onnx export (default: the exporter's).")
@click.option("--static-shape", is_flag=True,
              help="ONNX: fix batch, height and width to --input (default: dynamic axes).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            output: str | None, weights: str | None, optimize: bool, dtype: str,
            opset: int | None, static_shape: bool, fmt: str) -> None:
    """Compile SPEC (a zoo/block name or a YAML path) to PyTorch and print its summary."""
    from ..api import load
    from ..summary import format_summary, summarize

    if dtype != "fp32" and not optimize:
        raise UsageError(f"--dtype {dtype} is a build of the optimized network", None,
                         "add --optimize")
    if dtype != "fp32" and output and Path(output).suffix.lower() != ".pt":
        raise UsageError(f"a {dtype} build exports to .pt (an espdsl checkpoint that keeps the "
                         f"precision pass), not {Path(output).suffix}", None,
                         "use -o NET.pt, or export the fp32 build")
    if output and Path(output).suffix.lower() not in EXPORTS:
        raise UsageError(f"unknown output type '{Path(output).suffix}' for {output}", None,
                         EXPORT_HINT)
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **parse_params(params))
    model = source = fit = None
    trained = ir
    if output and Path(output).suffix.lower() in TRACED:
        from ..limits import check_forward
        check_forward(ir, keep_all=True)  # a trace holds every activation; before building
    if output or weights:
        from ..api import build_ir
        model = build_ir(ir)
        if weights:
            from ..weights import load_weights
            fit = load_weights(model, weights)
        if optimize:
            from ..passes import optimize_model, pipeline
            source, model = model, optimize_model(model.eval(), pipeline(dtype))
            ir = model.espdsl_ir
    elif optimize:
        from ..passes import optimize, pipeline
        ir = optimize(ir, pipeline(dtype))
    rows, totals = summarize(ir)
    if output:
        from ..export import export
        export(model, ir, Path(output), source, opset=opset, dynamic=not static_shape)
    click.echo(format_summary(rows, totals, fmt))
    if optimize and fmt != "json":
        from ..summary import folding_note
        click.echo(folding_note(trained, ir))
    if fit is not None and fit.keymap and fmt != "json":
        dropped = f"; {len(fit.dropped)} tensors it does not use dropped" if fit.dropped else ""
        click.echo(f"weights: through the spec's '{fit.keymap}' key map{dropped}")
    if output and fmt != "json":
        click.echo(f"wrote {output}")
