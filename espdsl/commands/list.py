"""``espdsl list``: the blocks and models espdsl knows, with their parameters."""
from __future__ import annotations

import click

from .options import blocks_option


@click.command("list")
@click.argument("pattern", default="*")
@blocks_option
@click.option("--kind", type=click.Choice(["all", "block", "model"]), default="all", show_default=True)
def command(pattern: str, blocks: tuple[str, ...], kind: str) -> None:
    """List blocks and models (optionally matching a glob PATTERN) and their parameters."""
    from ..api import _registry
    reg = _registry(blocks)
    for k in ("block", "model"):
        if kind not in ("all", k):
            continue
        names = reg.names(k, pattern)
        click.echo(f"{k}s:")
        for name in names:
            spec = reg.get(name)
            params = ", ".join(f"{p.name}={p.default}" if p.default is not None or p.unset else p.name
                               for p in spec.params.values())
            click.echo(f"  {name:<12} {params}")
