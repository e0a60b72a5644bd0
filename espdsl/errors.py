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
        return text.replace("\n", " ")

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
