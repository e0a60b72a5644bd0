"""Options shared by several commands (as decorators, like pip-tools), and their parsing."""
from __future__ import annotations

import re
from typing import Any, Callable

import click

from ..errors import UsageError


def spec_argument(f: Callable) -> Callable:
    return click.argument("spec", metavar="SPEC")(f)


def param_option(f: Callable) -> Callable:
    return click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                        help="Set a spec parameter, e.g. -p alpha3=5 (repeatable).")(f)


def blocks_option(f: Callable) -> Callable:
    return click.option("--blocks", "blocks", multiple=True, metavar="DIR",
                        type=click.Path(exists=True),
                        help="A folder (or file) of user block specs (repeatable).")(f)


def input_option(default: str | None = None) -> Callable:
    return click.option("--input", "input_size", default=default, metavar="NxCxHxW",
                        help="Input size, e.g. 1x3x512x1024 (default: the spec's own).")


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``("alpha3=5", "skip=b1")`` -> ``{"alpha3": 5, "skip": "b1"}``."""
    from ..resolve import parse_cli_value
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(f"bad parameter '{item}'", None, "write -p NAME=VALUE, e.g. -p alpha3=5")
        out[key] = parse_cli_value(value)
        from ..origin import note
        note(key, f"-p {item.strip()}")
    return out


ASCII_INT = re.compile(r"[+-]?[0-9]+")


def is_ascii_int(text: str) -> bool:
    """A whole number written in ASCII digits: ``int()`` also takes '٣' (Arabic-Indic three)
    and ``str.isdigit()`` '²', which no one types for a size or a count.

    >>> is_ascii_int("512"), is_ascii_int("٣"), is_ascii_int("²"), is_ascii_int("1e3")
    (True, False, False, False)
    """
    return ASCII_INT.fullmatch(text) is not None


class AsciiIntRange(click.IntRange):
    """click's ``IntRange`` for counts and sizes, taking ASCII digits only."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not is_ascii_int(value.strip()):
            self.fail(f"{value!r} is not a whole number in ASCII digits (0-9)", param, ctx)
        return super().convert(value, param, ctx)


def parse_size(text: str | None) -> tuple[int, ...] | None:
    """``"1x3x512x1024"`` -> ``(1, 3, 512, 1024)``; also ``"512x1024"`` (H x W); ASCII digits
    only."""
    if text is None:
        return None
    parts = re.split(r"[x,×]", text.strip().lower())
    if len(parts) not in (2, 3, 4) or not all(p.isascii() and p.isdigit() and int(p) > 0
                                              for p in parts):
        raise UsageError(f"bad input size '{text}'", None, "write e.g. 1x3x512x1024 or 512x1024")
    from ..origin import note
    reading = {2: "H x W", 3: "C x H x W", 4: "N x C x H x W"}[len(parts)]
    note("input", f"--input {text.strip()}")
    note("input_reading", reading)
    return tuple(int(p) for p in parts)
