"""Where the root parameters and the input size of a resolve came from, for error locations.

The command line sets them (``-p module=mobilenett``, ``--input 1x3x256``); the resolver reads
them here, so an error caused by such a value names the command-line item instead of a line
deep inside a library spec, and hints use the command-line form (``-p M=...``). From Python
nothing is set and errors point into the spec, with hints in keyword form (``M=...``).

>>> with given({"module": "-p module=mobilenett"}, style="cli"):
...     str(param_loc("module")), hint_for("M")
('-p module=mobilenett', '-p M=...')
>>> param_loc("module") is None, hint_for("M")
(True, 'M=...')
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from .errors import Loc

_ORIGINS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("espdsl_origins", default={})
_STYLE: contextvars.ContextVar[str] = contextvars.ContextVar("espdsl_origin_style", default="python")


@contextlib.contextmanager
def given(origins: dict[str, str], style: str = "cli") -> Iterator[None]:
    """Within the block, parameter ``name`` (and ``"input"``) came from ``origins[name]``."""
    t1, t2 = _ORIGINS.set({**_ORIGINS.get(), **origins}), _STYLE.set(style)
    try:
        yield
    finally:
        _ORIGINS.reset(t1)
        _STYLE.reset(t2)


def param_loc(name: str) -> Loc | None:
    """A location naming the command-line item that set ``name`` (None if none did)."""
    text = _ORIGINS.get().get(name)
    return Loc(text) if text else None


def origin_text(name: str) -> str | None:
    return _ORIGINS.get().get(name)


def hint_for(name: str) -> str:
    """How to set parameter ``name`` where the user is: ``-p M=...`` or ``M=...``."""
    return f"-p {name}=..." if _STYLE.get() == "cli" else f"{name}=..."


def cli_values() -> dict[str, str]:
    """The command-line parameter items, by parameter name."""
    return {k: v for k, v in _ORIGINS.get().items() if k not in ("input", "input_reading")}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """One command-line command: :func:`note` fills in what its options set."""
    with given({}, style="cli"):
        t = _ORIGINS.set({})
        try:
            yield
        finally:
            _ORIGINS.reset(t)


def note(name: str, text: str) -> None:
    """Record that ``name`` was set by the command-line item ``text`` (inside
    :func:`command_line`; elsewhere nothing is recorded)."""
    if _STYLE.get() == "cli":
        _ORIGINS.get()[name] = text
