"""``espdsl footprint``: draw the footprint of one output pixel (Fig. 2a) for any spec."""
from __future__ import annotations

import click

from ..errors import UsageError
from .options import (blocks_option, input_option, is_ascii_int, param_option, parse_params,
                      parse_size, spec_argument)


def parse_at(text: str | None) -> tuple[int, int] | None:
    """``"12,40"`` -> ``(12, 40)``."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(is_ascii_int(p) for p in parts):
        raise UsageError(f"bad pixel '--at {text}'", None, "write --at y,x, e.g. --at 28,28")
    return int(parts[0]), int(parts[1])


def parse_channel_option(text: str) -> object:
    """``all``, ``groups`` or ``a:b``."""
    if text in ("all", "groups"):
        return None if text == "all" else "groups"
    start, sep, stop = text.partition(":")
    if not sep or not is_ascii_int(start) or not is_ascii_int(stop):
        raise UsageError(f"bad --channels '{text}'", None, "write all, groups or START:STOP")
    return (int(start), int(stop))


@click.command("footprint", short_help="Draw how many paths lead to one output pixel (Fig. 2a).")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("--node", default=None, help="Spec node or IR node (default: the output).")
@click.option("--at", "at", default=None, metavar="Y,X", help="Output pixel (default: the centre).")
@click.option("--channels", default="groups", show_default=True, metavar="all|groups|A:B",
              help="groups: one panel per piece of the concat behind the node (all when none).")
@click.option("--source", default=None, metavar="block|NODE",
              help="Count over this node's map instead of the network input (block: the "
                   "node's own input).")
@click.option("--beside", "beside", multiple=True, metavar="KEY=VALUE",
              help="Draw a second row with these parameters changed, e.g. --beside hff=false.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Picture to write (.png, .svg or .pdf).")
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            node: str | None, at: str | None, channels: str, source: str | None,
            beside: tuple[str, ...], output: str) -> None:
    """Draw the footprint of pixel --at of --node of SPEC: log path counts over the input,
    holes white, receptive-field boxes red.

    \b
    espdsl footprint esp -p M=100 -p N=100 --beside hff=false -o esp_hff.png
    """
    from ..analysis.footprint import footprint_ir
    from ..analysis.gridding import grid_stats
    from ..api import load
    from ..pictures import draw_footprints, picture_format

    picture_format(output)
    pixel, chosen = parse_at(at), parse_channel_option(channels)
    settings = [parse_params(params)]
    if beside:
        settings.append({**settings[0], **parse_params(beside)})
    panels, lines = [], []
    for values in settings:
        ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **values)
        fp = _footprint(footprint_ir, ir, node, pixel, chosen, source)
        changed = parse_params(beside) if beside else {}
        tag = " ".join(f"{k}={ir.params.get(k, values.get(k))}" for k in changed)
        maps = fp.groups + [("all", fp.counts)] if fp.groups else [(fp.channels, fp.counts)]
        box = fp.box
        centre = ((box[0] + box[1]) // 2, (box[2] + box[3]) // 2) if box else (0, 0)
        for label, counts in maps:
            stats = grid_stats(counts, centre)
            panels.append((f"{tag} {label}".strip(), counts))
            lines.append(f"{tag + ' ' if tag else ''}{label}: support {stats['support']:,}, box "
                         f"{'x'.join(map(str, stats['box'] or (0, 0)))}, holes "
                         f"{stats['holes'] or 0:.1%}, lattice {stats['lattice']}")
    title = f"{spec} {fp.node} pixel {fp.at[0]},{fp.at[1]} over {fp.source}"
    draw_footprints(panels, output, title=title,
                    columns=len(panels) // len(settings) if len(settings) > 1 else None)
    click.echo("\n".join(lines))
    click.echo(f"wrote {output}", err=True)


def _footprint(fn, ir, node, pixel, chosen, source):
    if chosen != "groups":
        return fn(ir, node, pixel, chosen, source=source)
    try:
        return fn(ir, node, pixel, "groups", source=source)
    except UsageError as exc:   # no concat behind the node: one panel for all channels
        if "not made by a concat" not in exc.message:
            raise
        return fn(ir, node, pixel, None, source=source)
