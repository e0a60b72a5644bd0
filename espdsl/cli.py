"""The ``espdsl`` command line: a thin click layer over the library.

Every command lives in its own module under :mod:`espdsl.commands` and defines a click command
named ``command`` (or a list ``commands``); this file only gathers them and turns espdsl's errors
into one line on stderr with exit code 2 (a traceback only with ``--debug``).
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from . import __version__, commands
from .errors import EspdslError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EspdslError as exc:
            if ctx.meta.get("espdsl.debug"):
                raise
            click.echo(str(exc), err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="espdsl")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """espdsl: write efficient CNN modules and networks as YAML; compile, analyse, render them."""
    ctx.meta["espdsl.debug"] = debug


for _info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    _mod = importlib.import_module(f"{commands.__name__}.{_info.name}")
    for _cmd in getattr(_mod, "commands", [getattr(_mod, "command", None)]):
        if _cmd is not None:
            main.add_command(_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
