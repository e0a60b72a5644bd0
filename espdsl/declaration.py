"""A parameter declaration that contradicts itself is refused where it is written.

``{type: str, default: x, min: 3}`` used to pass until a value arrived, then fail with a
``TypeError`` from comparing a text with a number. Here type, default, ``min``/``max`` and
``choices`` are checked against each other when the spec is read: bounds only on numbers,
``min <= max``, every choice of the declared type and within the bounds, a literal default of
the declared type, within the bounds and among the choices. A default that is an expression
(a number parameter's default written as text, a str default with ``{...}``) is checked when it
is evaluated, like any value.

>>> from espdsl.spec import parse_spec
>>> parse_spec("block: b\\nparams:\\n  s: {type: str, default: x, min: 3}\\nnodes: [{name: a, op: relu}]\\n")
Traceback (most recent call last):
...
espdsl.errors.SpecError: <string>:3:35: error: parameter 's' is a str: 'min' applies to int and float parameters; hint: drop 'min', or declare the type int or float
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .errors import SpecError, show

if TYPE_CHECKING:  # pragma: no cover
    from .source import Document
    from .spec import ParamDecl

NUMERIC = ("int", "float")


def _fits(value: Any, ptype: str) -> bool:
    """Would :func:`espdsl.resolve.check_value` take ``value`` as a ``ptype``?"""
    if isinstance(value, bool):
        return ptype == "bool"
    if ptype == "int":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)
                                          and value.is_integer())
    if ptype == "float":
        return isinstance(value, (int, float))
    return isinstance(value, {"bool": bool, "str": str, "list": list}[ptype])


def _literal(value: Any, ptype: str) -> bool:
    """A default written as a value, not an expression (checked now, not when evaluated)."""
    if value is None:
        return False
    if isinstance(value, str):
        return ptype == "str" and "{" not in value
    return True


def check_declaration(decl: "ParamDecl", doc: "Document", path: tuple) -> None:
    """Refuse a declaration whose type, default, bounds and choices contradict each other, at
    the key that does (``doc``/``path`` locate the declaration)."""
    def loc(key: str | None = None, *more: Any) -> Any:
        raw = doc.data.get("params", {}).get(decl.name) if isinstance(doc.data, dict) else None
        if key is None or not isinstance(raw, dict):
            return doc.loc(path)
        return doc.loc(path + (key,) + more)

    what = f"parameter '{decl.name}'"
    for key in ("min", "max"):
        bound = getattr(decl, key)
        if bound is not None and decl.type not in NUMERIC:
            raise SpecError(f"{what} is {_a(decl.type)}: '{key}' applies to int and float "
                            "parameters", loc(key), f"drop '{key}', or declare the type int or float")
    if decl.min is not None and decl.max is not None and decl.min > decl.max:
        raise SpecError(f"{what} has min {decl.min} greater than max {decl.max}", loc("min"),
                        "no value could satisfy both; swap them")

    def within(value: Any, where: Any, role: str) -> None:
        if decl.min is not None and value < decl.min:
            raise SpecError(f"{what}: {role} {show(value)} is below its min {decl.min}", where,
                            "change the value or the bound")
        if decl.max is not None and value > decl.max:
            raise SpecError(f"{what}: {role} {show(value)} is above its max {decl.max}", where,
                            "change the value or the bound")

    if decl.choices is not None:
        for i, choice in enumerate(decl.choices):
            if not _fits(choice, decl.type):
                raise SpecError(f"{what} is {_a(decl.type)}, but choice {show(choice)} is "
                                f"{_a(type(choice).__name__)}", loc("choices", i),
                                f"every choice must be {_a(decl.type)}")
            if decl.type in NUMERIC:
                within(choice, loc("choices", i), "choice")
    default = decl.default
    if _literal(default, decl.type):
        if not _fits(default, decl.type):
            raise SpecError(f"{what} is {_a(decl.type)}, but its default {show(default)} is "
                            f"{_a(type(default).__name__)}", loc("default"),
                            f"give {_a(decl.type)} default, or declare the type "
                            f"{_type_of(default)}")
        if decl.type in NUMERIC:
            within(default, loc("default"), "default")
        if decl.choices is not None and default not in decl.choices:
            raise SpecError(f"{what}: default {show(default)} is not one of its choices "
                            f"{show(decl.choices)}", loc("default"),
                            "add it to the choices or pick one of them")


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _type_of(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", list: "list"}.get(type(value), "str")
