"""``espdsl quantize``: int8 post-training static quantization (PT2E, x86 quantizer), calibrated
on images."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from .options import blocks_option, param_option, parse_params, spec_argument


class Percent(click.FloatRange):
    """A percentage 0-100 written in ASCII (``float()`` would also take other scripts' digits)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = value.strip() if isinstance(value, str) else None
        if text is not None and not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text):
            self.fail(f"{value!r} is not a percentage in ASCII digits, e.g. 99 or 99.5", param, ctx)
        return super().convert(value, param, ctx)


@click.command("quantize", short_help="int8 network calibrated on images (PyTorch PT2E, x86 quantizer).")
@spec_argument
@param_option
@blocks_option
@click.option("--weights", type=click.Path(dir_okay=False),
              help="The fp32 checkpoint (not needed when SPEC is an espdsl .pt checkpoint).")
@click.option("--calibrate", "images", required=True, multiple=True, metavar="IMAGE",
              help="A calibration image (repeat, or one option followed by several paths); read "
                   "and preprocessed by the spec's predict: section.")
@click.option("--keep-float", "keep", multiple=True, metavar="PREFIX",
              help="Leave the modules under this IR path prefix in fp32 (repeatable); the stem "
                   "on the image always stays fp32.")
@click.option("--validate", "validate", multiple=True, metavar="IMAGE",
              help="A validation image (repeatable; not a calibration image): convolutions go "
                   "back to fp32, the costliest first, until the int8 class maps agree with fp32 "
                   "on --min-agreement percent of its pixels; what was kept and why is printed.")
@click.option("--min-agreement", type=Percent(0, 100), default=99.0, show_default=True,
              metavar="PCT",
              help="The pixel agreement with fp32 to reach on the --validate images.")
@click.option("--float-concat", is_flag=True,
              help="No int8 concatenations (by default one is int8 when all its inputs are, "
                   "with one scale shared by them): the sums and concatenations of an ESP "
                   "module's branches stay fp32.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The int8 network, an espdsl checkpoint (.pt): load it with "
                   "espdsl.create_model, 'espdsl predict', 'espdsl bench'.")
@click.argument("more_images", nargs=-1, metavar="")
def command(spec: str, params: tuple[str, ...], blocks: tuple[str, ...], weights: str | None,
            images: tuple[str, ...], keep: tuple[str, ...], validate: tuple[str, ...],
            min_agreement: float, float_concat: bool, output: str,
            more_images: tuple[str, ...]) -> None:
    """Quantize SPEC with --weights to int8, calibrated on the --calibrate images; write -o.

    \b
    espdsl quantize espnet -p alpha3=8 --weights espnet_p_2_q_8.pth --calibrate a.png b.png -o net_int8.pt
    espdsl quantize espnet -p alpha3=8 --weights espnet_p_2_q_8.pth --calibrate a.png b.png --validate c.png --min-agreement 99 -o net_int8.pt
    """
    from ..api import create_model
    from ..predict import check_image
    from ..quantize import calibration_inputs, quantize_model, report, save_quantized

    if not output.endswith(".pt"):
        raise UsageError(f"the int8 network is an espdsl checkpoint: {output} must end in .pt",
                         None, "e.g. -o net_int8.pt")
    paths = [*images, *more_images]
    for image in [*paths, *validate]:
        check_image(image)
    both = sorted({str(Path(p).resolve()) for p in paths}
                  & {str(Path(p).resolve()) for p in validate})
    if both:
        raise UsageError(f"{both[0]} is both a calibration and a validation image", None,
                         "validate on images the calibration did not see")
    if weights is None and not spec.endswith((".pt", ".pth")):
        raise UsageError("quantize needs --weights (calibrating random weights means nothing)",
                         None, "add --weights CHECKPOINT")
    model = create_model(spec, weights=weights, blocks=blocks, optimize=False,
                         **parse_params(params)).eval()
    qmodel = quantize_model(model, calibration_inputs(model, paths), keep_float=keep,
                            validate=calibration_inputs(model, validate) if validate else (),
                            min_agreement=min_agreement / 100 if validate else None,
                            concat="fp32" if float_concat else "int8")
    save_quantized(qmodel, output)
    for line in report(qmodel):
        click.echo(line)
    if qmodel.fallback is not None:
        for line in qmodel.fallback.lines():
            click.echo(line)
    click.echo(f"calibrated on {len(paths)} image(s); wrote {Path(output)}")
