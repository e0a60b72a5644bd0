"""One exception hierarchy for espdsl.

Every error a user can cause carries where it happened (file, line, column) and, where we can
tell, what would be right (``hint``). The CLI prints ``str(err)``, one line, and exits 2.

>>> err = SpecError("unknown block 'espp'", Loc("net.yaml", 4, 12), hint="did you mean 'esp'?")
>>> str(err)
"net.yaml:4:12: error: unknown block 'espp'; hint: did you mean 'esp'?"
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Loc:
    """A place in a source file; line and column count from 1."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def shifted(self, offset: int) -> "Loc":
        """The location ``offset`` characters further along the same line."""
        return Loc(self.file, self.line, self.col + offset) if self.line else self


class EspdslError(Exception):
    """Base of every error espdsl raises on purpose (bad specs, bad files, bad options)."""

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None,
                 context: str | None = None):
        self.message = message
        self.loc = loc
        self.hint = hint
        self.context = context
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        text = f"{where}error: {self.message}"
        if self.hint:
            text += f"; hint: {self.hint}"
        if self.context:
            text += f" ({self.context})"
        return one_line(text)

    def with_context(self, context: str) -> "EspdslError":
        """Add where the failing block was instantiated, keeping the innermost context first."""
        if self.context is None:
            self.context = context
        return self


class SpecError(EspdslError):
    """Raised when a spec file is malformed: YAML syntax, unknown keys, wrong types, bad names."""


class ExprError(SpecError):
    """Raised when an expression in a spec cannot be parsed or evaluated."""


class StudyError(SpecError):
    """Raised when a study file (``espdsl zoo``) is malformed, names an unknown parameter, row or
    column, or one of its rows does not resolve."""


class RegistryError(EspdslError):
    """Raised when a block or model name is not known to the registry."""


class ResolveError(SpecError):
    """Raised when a well-formed spec does not resolve to a valid graph (channels, shapes, cycles)."""


class WeightsError(EspdslError):
    """Raised when a checkpoint is missing, corrupt or does not fit the model."""


class UsageError(EspdslError):
    """Raised for bad command-line or API arguments that are not about a spec file."""


class LimitError(EspdslError):
    """Raised when a spec, a command line or a file would exceed a resource limit
    (:mod:`espdsl.limits`); the hint names the limit and how to raise it."""


def one_line(text: str) -> str:
    """``text`` on one printable line: line breaks and tabs become spaces, other control
    characters their escapes (a message never moves the cursor or splits a log line).

    >>> one_line("a\\nb\\x1b[2J")
    'a b\\\\x1b[2J'
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " if c in "\n\r\t" else repr(c)[1:-1]
                   for c in text)


def quote(text: object, width: int = 60) -> str:
    """``text`` quoted for a message: on one line and, when long, shortened in the middle with
    its length said (an error about a 4,000-character expression stays readable).

    >>> quote("N // K")
    "'N // K'"
    >>> quote("Q + " * 1000, width=20)
    "'Q + Q + ...Q + Q + ' (4,000 characters)"
    """
    text = str(text)
    shown = one_line(text)
    if len(shown) <= width:
        return f"'{shown}'"
    half = (width - 3) // 2
    return f"'{shown[:half]}...{shown[-half:]}' ({len(text):,} characters)"


def shorten(text: object, width: int = 60) -> str:
    """``text`` on one line, cut in the middle when longer than ``width`` (length said)."""
    text = str(text)
    if len(text) <= width:
        return one_line(text)
    half = (width - 3) // 2
    return f"{one_line(text[:half])}...{one_line(text[-half:])} ({len(text):,} characters)"


def show(value: object, width: int = 60) -> str:
    """``repr(value)`` for a message, shortened like :func:`quote` when long.

    >>> show(3), show("b2"), show(list(range(100)), width=20)
    ('3', "'b2'", '[0, 1, 2... 98, 99] (390 characters)')
    """
    return shorten(repr(value), width)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest known choice, or listing them all.

    >>> did_you_mean("mobilnet", ["esp", "mobilenet"])
    "did you mean 'mobilenet'?"
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    shown = ", ".join(choices[:20]) + (", ..." if len(choices) > 20 else "")
    return f"valid choices: {shown}"
