"""``espdsl validate``: resolve a spec and lint its graph without building anything."""
from __future__ import annotations

import click

from .options import blocks_option, input_option, param_option, parse_params, parse_size, spec_argument


@click.command("validate")
@spec_argument
@param_option
@input_option()
@blocks_option
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...]) -> None:
    """Check SPEC: grammar, names, parameters, channels, shapes; exit 2 on the first error."""
    from ..api import load
    from ..prune import dead_nodes
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **parse_params(params))
    for dead in dead_nodes(ir):
        what = f" ({dead['params']:,} parameters)" if dead["params"] else ""
        hint = ("; hint: cut the block where you take from it, e.g. outputs: [...] on its node"
                if "." in dead["path"] else "; hint: remove it, or use it")
        click.echo(f"{_where(ir, dead['path'])}warning: node '{dead['path']}'{what} feeds no "
                   f"output; it is pruned{hint}", err=True)
    if ir.meta.get("assumed_input"):
        click.echo(f"note: {ir.meta['assumed_input']}", err=True)
    click.echo(f"ok: {ir.kind} '{ir.name}' resolves to {len(ir.graph) - 1} ops, "
               f"{'x'.join(map(str, ir.input_shape))} -> {'x'.join(map(str, ir.output_shape))}")


def _where(ir, path: str) -> str:
    """``file:line:col: `` of the root spec's node that holds ``path`` (the user's own file)."""
    top = ir.scopes.get(path.split(".")[0])
    loc = top.loc if top is not None else None
    if loc is None:
        from ..prune import dead_nodes
        loc = next((d["loc"] for d in dead_nodes(ir) if d["path"] == path), None)
    return f"{loc}: " if loc is not None and getattr(loc, "file", None) else ""
