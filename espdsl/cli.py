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

from . import __version__, commands, limits, origin
from .errors import EspdslError, one_line


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

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """click's main, with its usage errors (a bad option, a missing argument) printed as
        one line like espdsl's own errors instead of the usage block."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare 'espdsl': the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f"; hint: see '{ctx.command_path} --help'" if ctx is not None else ""
            message = exc.format_message().rstrip(".")
            click.echo(one_line(f"error: {message}{hint}"), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="espdsl")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--limit", "limit_items", multiple=True, metavar="NAME=VALUE",
              help="Raise (or lower) a resource limit for this command, e.g. --limit "
                   "repeat=20000 --limit param_memory=16GiB (repeatable; see docs/limits.md).")
@click.pass_context
def main(ctx: click.Context, debug: bool, limit_items: tuple[str, ...]) -> None:
    """espdsl: write efficient CNN modules and networks as YAML; compile, analyse, render them."""
    ctx.meta["espdsl.debug"] = debug
    ctx.with_resource(origin.command_line())  # -p/--input errors point at the command line
    limits.current()  # a bad ESPDSL_LIMITS fails every command at once, not only those it limits
    if limit_items:
        ctx.with_resource(limits.override(**limits.parse_settings(limit_items)))


if __name__ == "__main__":  # pragma: no cover
    main()
