"""``espdsl features``: write one node's feature maps for an image (Fig. 2b)."""
from __future__ import annotations

from pathlib import Path

import click

from .options import AsciiIntRange, blocks_option, param_option, parse_params, spec_argument


@click.command("features", short_help="Write one node's feature maps for an image (Fig. 2b).")
@spec_argument
@click.argument("image", metavar="IMAGE")
@param_option
@blocks_option
@click.option("--weights", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint to load (strictly, as predict does).")
@click.option("--node", required=True, help="Spec node or IR node, e.g. level2.0.")
@click.option("--zoom", default=1, show_default=True, type=AsciiIntRange(1, 8),
              help="Repeat each activation as ZOOM x ZOOM pixels in the pictures.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <stem>_<node>_channels.png and <stem>_<node>_mean_abs.png.")
def command(spec: str, image: str, params: tuple[str, ...], blocks: tuple[str, ...],
            weights: str, node: str, zoom: int, out_dir: str) -> None:
    """Run SPEC with --weights on IMAGE and write the feature maps of --node into -o DIR: every
    channel normalised on its own, in a grid, and the mean absolute activation; print the
    share of variance on lattices of period 2, 4, 8, 16 (gridding shows there).

    \b
    espdsl features espnet_c -p alpha3=8 --weights espnet_p_2_q_8.pth city.png \\
        --node level2.0 -p hff=false -o out/
    """
    import numpy as np

    from ..analysis.footprint import resolve_node
    from ..api import create_model, load
    from ..features import lattice_energy, node_features, output_paths, write_features
    from ..predict import check_image, prepare_output_dir, read_image

    values = parse_params(params)
    ir = load(spec, blocks=blocks, **values)
    name = resolve_node(ir, node)          # a bad --node fails before any weights are read
    check_image(image)
    model = create_model(spec, weights=weights, blocks=blocks, **values).eval()
    _, maps = node_features(model, read_image(image), name)
    out = prepare_output_dir(out_dir)
    paths = output_paths(out, Path(image), name.replace(".", "_"))
    write_features(maps, paths, zoom=zoom)
    click.echo(f"{name}: {maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]}, mean |a| "
               f"{float(np.abs(maps).mean()):.4f}; lattice energy "
               + ", ".join(f"{p}: {lattice_energy(maps, p):.4f}" for p in (2, 4, 8, 16)))
    click.echo(f"wrote {len(paths)} files into {out}", err=True)

