"""``espdsl predict``: segment images with a spec and its weights; write class maps and colours."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .options import blocks_option, param_option, parse_params, spec_argument


@click.command("predict")
@spec_argument
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@param_option
@blocks_option
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Checkpoint to load (not needed when SPEC is an espdsl .pt checkpoint).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <stem>_classes.png, <stem>_color.png, <stem>_overlay.png.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda",
              help="Where to run the network.")
@click.option("--original-size", is_flag=True,
              help="Resize the outputs back to each image's size (default: the network's).")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Run the optimized inference build (espdsl.passes; same class maps).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Precision of the optimized build (class maps may differ from fp32 on a few "
                   "pixels: 'espdsl precision' measures it). int8: give the checkpoint from "
                   "'espdsl quantize' as SPEC.")
@click.option("--backend", default="eager", show_default=True,
              type=click.Choice(["eager", "inductor"]),
              help="How the optimized build runs: its planned graph op by op, or compiled by "
                   "torch's inductor on the first image (tens of seconds; pays over many images).")
def command(spec: str, images: tuple[str, ...], params: tuple[str, ...], blocks: tuple[str, ...],
            weights: str | None, out_dir: str, device: str, original_size: bool,
            optimize: bool, dtype: str, backend: str) -> None:
    """Segment IMAGE... with SPEC and --weights; write three PNGs per image into -o DIR.

    \b
    espdsl predict zoo/espnet.yaml -p alpha3=8 --weights espnet_p_2_q_8.pth city.png -o out/
    """
    is_checkpoint = spec.endswith((".pt", ".pth"))
    if is_checkpoint:
        from ..checkpoint_peek import peek
        peek(spec)                    # a malformed checkpoint refused before torch is imported
    from ..api import create_model
    from ..passes.precision import fallback
    from ..predict import check_image, config_for, predict_files, resolve_device

    resolve_device(device)            # fail on a missing GPU or a bad image before loading anything
    for image in images:
        check_image(image)
    if weights is None and not is_checkpoint:
        raise UsageError("predict needs --weights (an untrained network predicts noise)", None,
                         "add --weights CHECKPOINT, or give an espdsl .pt checkpoint as SPEC")
    note = fallback(dtype, device)
    if note:
        click.echo(note, err=True)
        dtype = "fp32"
    # create_model rebuilds an espdsl .pt checkpoint by itself when no weights are given
    model = create_model(spec, weights=weights, blocks=blocks, optimize=optimize,
                         dtype=dtype, backend=None if backend == "eager" else backend,
                         **parse_params(params))
    cfg = config_for(model)
    declared = model.espdsl_ir.meta.get("predict", {}).get("classes") or []
    if len(declared) != len(cfg.class_names):
        click.echo(f"note: the spec's predict section names {len(declared)} classes, the model has "
                   f"{len(cfg.class_names)}; using generated colours", err=True)
    written = predict_files(model, cfg, images, out_dir, device=device, original_size=original_size)
    count = len({p.name.rsplit("_", 1)[0] for p in written if p.name != "legend.png"})
    click.echo(f"wrote {len(written)} files for {count} image(s) into {Path(out_dir)}")
