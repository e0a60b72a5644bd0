"""``espdsl precision``: class maps of the bf16/fp16/int8 builds against the fp32 build, beside
their time and size."""
from __future__ import annotations

import click

from ..errors import UsageError
from .options import AsciiIntRange, blocks_option, param_option, parse_params, spec_argument


@click.command("precision", short_help="Pixel agreement and mIoU of reduced-precision builds with fp32, time, size.")
@spec_argument
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@param_option
@blocks_option
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Checkpoint to load (not needed when SPEC is an espdsl .pt checkpoint).")
@click.option("--dtype", "dtypes", multiple=True, default=("bf16",), show_default=True,
              type=click.Choice(["bf16", "fp16"]), help="Builds to compare with fp32 (repeatable).")
@click.option("--int8", "int8", type=click.Path(dir_okay=False),
              help="Also an int8 network from 'espdsl quantize'.")
@click.option("--runs", default=5, show_default=True, type=AsciiIntRange(1, None),
              help="Timed rounds (the builds interleaved).")
@click.option("--threads", type=AsciiIntRange(1, None), default=None,
              help="CPU threads for torch (default: torch's own setting).")
def command(spec: str, images: tuple[str, ...], params: tuple[str, ...], blocks: tuple[str, ...],
            weights: str | None, dtypes: tuple[str, ...], int8: str | None, runs: int,
            threads: int | None) -> None:
    """Compare the fp32 optimized build of SPEC with its --dtype builds (and --int8) on IMAGE...:
    pixel agreement and mIoU of the class maps, median ms, weight bytes.

    \b
    espdsl precision espnet -p alpha3=8 --weights espnet_p_2_q_8.pth city.png --int8 net_int8.pt
    """
    import torch

    from ..accuracy import format_scores, score_builds
    from ..api import create_model
    from ..passes.precision import fallback
    from ..predict import check_image

    for image in images:
        check_image(image)
    if weights is None and not spec.endswith((".pt", ".pth")):
        raise UsageError("precision needs --weights (random weights give meaningless class maps)",
                         None, "add --weights CHECKPOINT")
    if threads:
        torch.set_num_threads(threads)
    p = parse_params(params)
    builds = {"fp32": create_model(spec, weights=weights, blocks=blocks, optimize=True, **p)}
    for dtype in dict.fromkeys(dtypes):
        note = fallback(dtype)
        if note:
            click.echo(note, err=True)
            continue
        builds[dtype] = create_model(spec, weights=weights, blocks=blocks, optimize=True,
                                     dtype=dtype, **p)
    if int8:
        builds["int8"] = create_model(int8)
    scores = score_builds(builds, images, runs=runs)
    click.echo(format_scores(scores, images, torch.get_num_threads()))
