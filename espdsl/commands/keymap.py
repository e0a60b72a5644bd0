"""``espdsl keymap``: a dry run of a spec's key map on a checkpoint, every key shown."""
from __future__ import annotations

import click

from .options import blocks_option, input_option, param_option, parse_params, parse_size, spec_argument


@click.command("keymap")
@spec_argument
@click.option("--weights", "weights", required=True, metavar="FILE",
              help="The checkpoint (a state_dict file) whose keys are rewritten.")
@click.option("--map", "map_name", default=None, metavar="NAME",
              help="The key map of the spec's 'weights:' section (default: the one that fits "
                   "best; 'none': the keys as they are).")
@param_option
@input_option()
@blocks_option
def command(spec: str, weights: str, map_name: str | None, params: tuple[str, ...],
            input_size: str | None, blocks: tuple[str, ...]) -> None:
    """Show how SPEC's key map rewrites every key of a checkpoint (source -> target, the rules
    that matched), then every key left unmatched on both sides and every shape that disagrees.
    Exit 0 when the checkpoint would load strictly, 1 when it would not."""
    from ..keymap_view import keymap_dry_run, render_report
    rep = keymap_dry_run(spec, weights, map_name, input_size=parse_size(input_size),
                         blocks=blocks, **parse_params(params))
    click.echo(render_report(rep))
    raise SystemExit(0 if rep.ok else 1)
