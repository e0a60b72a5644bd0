"""A small, safe evaluator for the expressions in specs; never ``eval``.

Expressions are parsed with :mod:`ast` and walked over a closed set of node types: literals,
names bound by the spec, arithmetic (``+ - * / // % **``), comparisons, ``and``/``or``/``not``,
conditionals (``a if c else b``), list and tuple literals, and calls to ``min``, ``max``, ``abs``,
``int``, ``float``, ``str``, ``len``, ``round`` and ``range``. Anything else (attributes,
subscripts, lambdas, comprehensions, dunder names) is rejected with the column where it stands.

String fields that name things (node names, ``from``, ``block``) are *templates*: literal text
with ``{expression}`` parts, e.g. ``d{2 ** k}``.

>>> evaluate("N // K if K > 0 else N", {"N": 100, "K": 5})
20
>>> render_template("d{2 ** k}", {"k": 3})
'd8'
"""
from __future__ import annotations

import ast
import math
import operator
import re
from functools import lru_cache
from typing import Any, Callable, Mapping

from .errors import ExprError, Loc

_MAX_POW_EXP = 64
_MAX_RANGE = 4096
_MAX_INT_BITS = 256


def _range(*args: int) -> list[int]:
    for a in args:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError("range() takes integers")
    r = range(*args)
    if len(r) > _MAX_RANGE:
        raise ValueError(f"range() longer than {_MAX_RANGE}")
    return list(r)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "int": int, "float": float, "str": str, "len": len,
    "round": round, "range": _range, "floor": math.floor, "ceil": math.ceil,
}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


class _Evaluator:
    def __init__(self, text: str, env: Mapping[str, Any], loc: Loc | None):
        self.text, self.env, self.loc = text, env, loc

    def fail(self, node: ast.AST | None, message: str, hint: str | None = None) -> ExprError:
        col = getattr(node, "col_offset", 0) if node is not None else 0
        loc = self.loc.shifted(col) if self.loc else None
        return ExprError(f"{message} in expression '{self.text}'", loc, hint)

    def run(self, node: ast.AST) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"'{type(node).__name__}' is not allowed",
                            "expressions allow numbers, names, arithmetic, comparisons, "
                            "'a if c else b' and min/max/range/...")
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self.run(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        raise self.fail(node, f"literal {node.value!r} is not allowed")

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        from .errors import did_you_mean
        raise self.fail(node, f"unknown name '{node.id}'",
                        did_you_mean(node.id, list(self.env) + list(FUNCTIONS)))

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator '{type(node.op).__name__}' is not allowed")
        left, right = self.run(node.left), self.run(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > _MAX_POW_EXP:
            raise self.fail(node, f"exponent {right} is too large")
        try:
            value = op(left, right)
        except ZeroDivisionError:
            raise self.fail(node, "division by zero") from None
        except TypeError as exc:
            raise self.fail(node, f"type error ({exc})") from None
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise self.fail(node, "result is too large")
        return value

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        try:
            return _UNARY[type(node.op)](self.run(node.operand))
        except (KeyError, TypeError) as exc:
            raise self.fail(node, f"bad unary operation ({exc})") from None

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            value: Any = True
            for v in node.values:
                value = self.run(v)
                if not value:
                    return value
            return value
        value = False
        for v in node.values:
            value = self.run(v)
            if value:
                return value
        return value

    def _Compare(self, node: ast.Compare) -> Any:
        left = self.run(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.run(comp)
            try:
                if not _CMPOPS[type(op)](left, right):
                    return False
            except (KeyError, TypeError) as exc:
                raise self.fail(node, f"bad comparison ({exc})") from None
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

    def _List(self, node: ast.List) -> Any:
        return [self.run(e) for e in node.elts]

    _Tuple = _List

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            name = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise self.fail(node, f"call to '{name}' is not allowed",
                            "allowed functions: " + ", ".join(sorted(FUNCTIONS)))
        args = [self.run(a) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise self.fail(node, f"{node.func.id}() failed ({exc})") from None


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """The parsed expression (cached by text: specs evaluate the same few texts many times)."""
    return ast.parse(text, mode="eval")




def evaluate(text: Any, env: Mapping[str, Any], loc: Loc | None = None) -> Any:
    """Evaluate an expression; non-strings (YAML numbers and booleans) pass through.

    >>> evaluate("2 ** (K - 1) * (n - 1) + 1", {"K": 5, "n": 3})
    33
    """
    if not isinstance(text, str):
        return text
    try:
        tree = _parse(text.strip())
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression '{text}': {exc.msg}", loc,
                        "write Python-like arithmetic, e.g. 'N // K' or '2 ** k'") from None
    return _Evaluator(text, env, loc).run(tree)


_TEMPLATE = re.compile(r"\{([^{}]*)\}")


def render_template(text: Any, env: Mapping[str, Any], loc: Loc | None = None) -> str:
    """Fill ``{expression}`` parts of a name template.

    >>> render_template("level{l}_0", {"l": 2})
    'level2_0'
    """
    if not isinstance(text, str):
        return str(text)

    def fill(match: re.Match) -> str:
        sub = loc.shifted(match.start(1)) if loc else None
        return str(evaluate(match.group(1), env, sub))

    return _TEMPLATE.sub(fill, text)


def parse_for(text: str, loc: Loc | None) -> tuple[str, str]:
    """Split a ``for`` clause ``"k in range(K)"`` into the loop variable and its expression."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)", str(text))
    if not m:
        raise ExprError(f"bad 'for' clause '{text}'", loc, "write it as 'k in range(K)'")
    return m.group(1), m.group(2)
