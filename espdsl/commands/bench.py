"""``espdsl bench``: time a network with the paper's protocol (200 runs of a 1024x512 image)."""
from __future__ import annotations

import click

from ..errors import UsageError
from .options import (AsciiIntRange, blocks_option, input_option, param_option, parse_params,
                      parse_size, spec_argument)


@click.command("bench", short_help="Time a network: median/min/max ms, fps, GFLOP/s, share of matmul throughput.")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("--runs", default=200, show_default=True, type=AsciiIntRange(1, None),
              help="Timed runs (the paper averages 200).")
@click.option("--warmup", default=10, show_default=True, type=AsciiIntRange(0, None),
              help="Untimed runs first.")
@click.option("--threads", type=AsciiIntRange(1, None), default=None,
              help="CPU threads for torch (default: torch's own setting).")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda",
              help="Where to run (cuda: timed with CUDA events).")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Time the optimized inference build (espdsl.passes) or the default one.")
@click.option("--vs", "vs", metavar="SPEC2|default|fp32",
              help="Also time SPEC2 (or 'default': the same spec unoptimized; 'fp32': its fp32 "
                   "optimized build), interleaved A B A B.")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Precision of the optimized build (bf16: CPUs with AVX-512 BF16/AMX; fp16: "
                   "CUDA). An int8 network: give the checkpoint from 'espdsl quantize' as SPEC.")
@click.option("--backend", default="eager", show_default=True,
              type=click.Choice(["eager", "inductor"]),
              help="How the optimized build runs: its planned graph op by op, or compiled by "
                   "torch's inductor (in the first warm-up run).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Load a checkpoint first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            runs: int, warmup: int, threads: int | None, device: str, optimize: bool,
            vs: str | None, dtype: str, backend: str, weights: str | None, fmt: str) -> None:
    """Time SPEC on a random input: median, min and max ms over --runs, frames/s, achieved
    GFLOP/s (from the analysis' MACs) and the fraction of this machine's fp32 matmul
    throughput, measured in the same run.

    \b
    espdsl bench espnet -p alpha3=8 --vs default
    """
    from ..bench import bench, format_bench
    from ..passes.precision import fallback

    size = parse_size(input_size)
    if size is not None and len(size) != 4:
        raise UsageError(f"bad input size '{input_size}'", None, "write N x C x H x W, e.g. 1x3x512x1024")
    note = fallback(dtype, device)
    if note:
        click.echo(note, err=True)
        dtype = "fp32"
    result = bench(spec, params=parse_params(params), input_size=size, runs=runs, warmup=warmup,
                   threads=threads, device=device, optimize=optimize, weights=weights,
                   blocks=blocks, vs=vs, progress=fmt == "table", dtype=dtype,
                   backend=backend)
    click.echo(format_bench(result, fmt))
