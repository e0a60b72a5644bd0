"""``espdsl schema``: print (or write) the JSON Schema of the spec format or of another format."""
from __future__ import annotations

import click

from ..files import atomic_path
from ..schema import schema_names, schema_text


@click.command("schema", short_help="Print the JSON Schema of the spec format (for editors).")
@click.argument("name", default="spec", metavar="[spec|study|...]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead.")
@click.option("--list", "list_", is_flag=True, help="List the schemas espdsl ships.")
def command(name: str, output: str | None, list_: bool) -> None:
    """Print the JSON Schema of NAME (default: spec, the block and model files).

    \b
    espdsl schema -o spec.schema.json
    then start a spec with  # yaml-language-server: $schema=spec.schema.json
    """
    if list_:
        click.echo("\n".join(schema_names()))
        return
    text = schema_text(name)
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
