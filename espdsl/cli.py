"""The ``espdsl`` command line: a thin click layer over the library.

Every command lives in its own module under :mod:`espdsl.commands` and defines a click command
named ``command``; this file only lists them and turns espdsl's errors into one line on stderr
with exit code 2 (a traceback only with ``--debug``).

Commands load lazily (click's documented ``LazyGroup`` pattern): the group knows the command
names from the package's file listing and imports a command's module only when that command
runs or its help is shown, and command modules import nothing heavy at module level. So
``espdsl --help``, ``validate``, ``analyze``, ``render``, ``list`` and ``compare`` never import
torch (``tests/test_cli.py`` checks this in a fresh process).
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from . import __version__, commands
from .errors import EspdslError


class LazyGroup(click.Group):
    """A group whose commands are the modules of :mod:`espdsl.commands`, imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(commands.__path__)
                      if not info.name.startswith("_") and info.name != "options")

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(f"{commands.__name__}.{name.replace('-', '_')}")
        return module.command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EspdslError as exc:
            if ctx.meta.get("espdsl.debug"):
                raise
            click.echo(str(exc), err=True)
            sys.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="espdsl")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """espdsl: write efficient CNN modules and networks as YAML; compile, analyse, render them."""
    ctx.meta["espdsl.debug"] = debug


if __name__ == "__main__":  # pragma: no cover
    main()
