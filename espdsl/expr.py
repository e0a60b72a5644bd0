"""A small, safe evaluator for the expressions in specs; never ``eval``.

Expressions are parsed with :mod:`ast` and walked over a closed set of node types: literals,
names bound by the spec, arithmetic (``+ - * / // % **``), comparisons, ``and``/``or``/``not``,
conditionals (``a if c else b``), list and tuple literals, indexing a list (``widths[i]``,
``widths[-1]``; no slices) and calls to the built-in functions in :data:`FUNCTIONS` (``min``,
``max``, ``abs``, ``int``, ``float``, ``str``, ``len``, ``round``, ``range``, ``floor``,
``ceil``, ``log``, ``exp``, ``sqrt``, ``make_divisible``) or to the pure functions a spec
declares (``functions:``; see :class:`Function`). Anything else (attributes, slices, lambdas,
comprehensions, dunder names) is rejected with the column where it stands.

``round`` is Python's: halves go to the even neighbour (``round(2.5) == 2``), as torchvision's
MobileNetV2 rounds its hidden widths (``int(round(inp * expand_ratio))``); ``floor``/``ceil``
return ints; ``log`` is the natural logarithm, ``log(x, b)`` to base ``b``;
``make_divisible(v, d, min_value=d)`` is torchvision's ``_make_divisible`` exactly (the nearest
multiple of ``d``, at least ``min_value``, and never more than 10% below ``v``).

String fields that name things (node names, ``from``, ``block``) are *templates*: literal text
with ``{expression}`` parts, e.g. ``d{2 ** k}``.

>>> evaluate("N // K if K > 0 else N", {"N": 100, "K": 5})
20
>>> render_template("d{2 ** k}", {"k": 3})
'd8'
>>> evaluate("make_divisible(32 * 1.2, 8), widths[i]", {"widths": [16, 24], "i": 1})
[40, 24]
"""
from __future__ import annotations

import ast
import keyword
import math
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

from . import limits
from .errors import ExprError, Loc, did_you_mean, quote

# Fixed guards (not limits a user would raise): they keep every step of an evaluation small.
_MAX_POW_EXP = 64      # |exponent| of **
_MAX_INT_BITS = 256    # any integer met while evaluating
_MAX_DEPTH = 100       # nesting of the expression's syntax tree (the evaluator recurses on it)
_MAX_NDIGITS = 64      # round(x, n)
MAX_CALL_DEPTH = 16    # nesting of calls to a spec's own functions (recursion stops here)
FUNCTIONS_KEY = "#functions"   # where an environment carries a spec's functions (not a name)


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > _MAX_NDIGITS:
        raise ValueError(f"round() takes at most {_MAX_NDIGITS} digits")
    return round(x, ndigits)


def make_divisible(v: Any, divisor: Any, min_value: Any = None) -> int:
    """torchvision's ``_make_divisible`` (from the TensorFlow MobileNet code): ``v`` rounded
    to the nearest multiple of ``divisor``, at least ``min_value`` (default ``divisor``), and
    one ``divisor`` more when rounding down lost more than 10%.

    >>> make_divisible(32 * 1.2, 8), make_divisible(16 * 0.75, 8), make_divisible(35.2, 8)
    (40, 16, 32)
    """
    for x in (v, divisor) + (() if min_value is None else (min_value,)):
        if not _is_number(x):
            raise TypeError(f"make_divisible() takes numbers, got {type(x).__name__}")
    if divisor <= 0:
        raise ValueError("make_divisible() needs a positive divisor")
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def _log(x: Any, base: Any = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "int": int, "float": float, "str": str, "len": len,
    "round": _round, "range": range, "floor": math.floor, "ceil": math.ceil,
    "log": _log, "exp": math.exp, "sqrt": math.sqrt, "make_divisible": make_divisible,
}


@dataclass(frozen=True)
class Function:
    """A pure function a spec declares (``functions: {name: {args: [a, b], body: "..."}}``):
    its body is an expression over its arguments and other functions only (never the spec's
    parameters), evaluated like every expression; calls nest at most ``MAX_CALL_DEPTH`` deep,
    so a recursive function stops with a located error.

    >>> f = {"half": Function("half", ("v",), "v // 2")}
    >>> evaluate("half(half(x))", {"x": 20, FUNCTIONS_KEY: f})
    5
    """

    name: str
    args: tuple[str, ...]
    body: str
    loc: Loc | None = None

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
            ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
            ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~",
            ast.Is: "is", ast.IsNot: "is not"}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_NUMBER = (int, float)


def _is_number(x: Any) -> bool:
    return isinstance(x, _NUMBER) and not isinstance(x, bool)


class _Evaluator:
    def __init__(self, text: str, env: Mapping[str, Any], loc: Loc | None):
        self.text, self.env, self.loc = text, env, loc

    def where(self, node: ast.AST | None) -> Loc | None:
        col = getattr(node, "col_offset", 0) if node is not None else 0
        return self.loc.shifted(col) if self.loc else None

    def fail(self, node: ast.AST | None, message: str, hint: str | None = None) -> ExprError:
        return ExprError(f"{message} in expression {quote(self.text)}", self.where(node), hint)

    def run(self, node: ast.AST) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"'{type(node).__name__}' is not allowed",
                            "expressions allow numbers, names, arithmetic, comparisons, "
                            "'a if c else b' and min/max/range/...")
        return self.check(node, method(node))

    def check(self, node: ast.AST, value: Any) -> Any:
        """Every value met while evaluating stays small and plain: integers of at most
        256 bits, finite floats, strings and lists within the ``range`` limit."""
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if value.bit_length() > _MAX_INT_BITS:
                raise self.fail(node, "result is too large")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, f"result {value} is not a finite number")
        elif isinstance(value, (str, list, range)):
            cap = limits.current().range
            if len(value) > cap:
                kind = {str: "string", list: "list", range: "range()"}[type(value)]
                raise limits.exceeded("range", f"a {kind} of {len(value):,} items in expression "
                                      f"{quote(self.text)}, more than the range limit",
                                      self.where(node))
            if isinstance(value, range):
                return list(value)
        elif isinstance(value, tuple):
            return self.check(node, list(value))
        else:
            raise self.fail(node, f"a value of type {type(value).__name__} is not allowed")
        return value

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
        raise self.fail(node, f"unknown name {quote(node.id)}",
                        did_you_mean(node.id, [k for k in self.env if not k.startswith("#")]
                                     + list(FUNCTIONS)))

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _BINOPS.get(type(node.op))
        symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
        if op is None:
            raise self.fail(node, f"operator '{symbol}' is not allowed")
        left, right = self.run(node.left), self.run(node.right)
        numbers = _is_number(left) and _is_number(right)
        if isinstance(node.op, ast.Pow) and numbers and abs(right) > _MAX_POW_EXP:
            raise self.fail(node, f"exponent {right} is too large")
        if not numbers:
            # text and lists: '+' joins, '*' repeats (checked before it runs); nothing else,
            # so '%' never formats a string
            seq = left if isinstance(left, (str, list)) else right
            count = right if seq is left else left
            fits = (isinstance(node.op, ast.Add) and type(left) is type(right)
                    and isinstance(left, (str, list))
                    or isinstance(node.op, ast.Mult) and isinstance(seq, (str, list))
                    and isinstance(count, int) and not isinstance(count, bool))
            if not fits:
                raise self.fail(node, f"'{symbol}' does not apply to {type(left).__name__} "
                                f"and {type(right).__name__}")
            if isinstance(node.op, ast.Mult) and len(seq) * count > limits.current().range:
                kind = "string" if isinstance(seq, str) else "list"
                raise limits.exceeded("range", f"a {kind} of {len(seq):,} items repeated "
                                      f"{count:,} times in expression {quote(self.text)} is "
                                      "longer than the range limit", self.where(node))
        try:
            return op(left, right)
        except ZeroDivisionError:
            raise self.fail(node, "division by zero") from None
        except (OverflowError, ValueError, TypeError, MemoryError) as exc:
            raise self.fail(node, f"'{symbol}' failed ({_first_line(exc)})") from None

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator '{_SYMBOLS.get(type(node.op), '?')}' is not allowed")
        value = self.run(node.operand)
        if not isinstance(node.op, ast.Not) and not _is_number(value):
            raise self.fail(node, f"a sign does not apply to {type(value).__name__}")
        return op(value)

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
            if type(op) not in _CMPOPS:
                raise self.fail(node, f"operator '{_SYMBOLS.get(type(op), '?')}' is not allowed",
                                "compare with ==, !=, <, <=, >, >=, in or not in")
            try:
                if not _CMPOPS[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise self.fail(node, f"bad comparison ({exc})") from None
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

    def _List(self, node: ast.List) -> Any:
        return [self.run(e) for e in node.elts]

    _Tuple = _List

    def _Subscript(self, node: ast.Subscript) -> Any:
        if isinstance(node.slice, ast.Slice):
            raise self.fail(node, "slices are not allowed", "index one entry: widths[i]")
        seq, index = self.run(node.value), self.run(node.slice)
        if not isinstance(seq, (list, str)):
            raise self.fail(node, f"cannot index a {type(seq).__name__}",
                            "index a list parameter or a list literal: widths[i]")
        if not isinstance(index, int) or isinstance(index, bool):
            raise self.fail(node, f"an index must be a whole number, got {type(index).__name__}")
        if not -len(seq) <= index < len(seq):
            raise self.fail(node, f"index {index} is out of range for a list of {len(seq)}",
                            f"indices run from 0 to {len(seq) - 1} (or from -{len(seq)})")
        return seq[index]

    def functions(self) -> Mapping[str, Function]:
        return self.env.get(FUNCTIONS_KEY) or {}

    def _Call(self, node: ast.Call) -> Any:
        own = self.functions()
        name = node.func.id if isinstance(node.func, ast.Name) else _source(node.func)
        known = sorted(set(FUNCTIONS) | set(own))
        if not isinstance(node.func, ast.Name) or name not in known:
            close = did_you_mean(name.rsplit(".", 1)[-1], known) or ""
            raise self.fail(node, f"call to {quote(name)} is not allowed",
                            (close + "; " if close.startswith("did you mean") else "")
                            + "allowed functions: " + ", ".join(known))
        if node.keywords:
            raise self.fail(node, f"keyword arguments are not allowed (in the call to "
                            f"'{name}')", "pass the arguments in order")
        args = [self.run(a) for a in node.args]
        if name in own:
            return self.call_own(node, own[name], args)
        if node.func.id == "range":
            if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool)
                                                  for a in args):
                raise self.fail(node, "range() takes 1 to 3 integers")
            if len(args) == 3 and args[2] == 0:
                raise self.fail(node, "range() step must not be zero")
            self.check(node, range(min(_range_len(*args), limits.current().range + 1)))
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise self.fail(node, f"{node.func.id}() failed ({_first_line(exc)})") from None


    def call_own(self, node: ast.Call, fn: Function, args: list) -> Any:
        """Evaluate a spec's own function on ``args`` (its body sees only its arguments)."""
        if len(args) != len(fn.args):
            raise self.fail(node, f"{fn.name}() takes {len(fn.args)} argument(s) "
                            f"({', '.join(fn.args)}), got {len(args)}")
        depth = self.env.get("#depth", 0) + 1
        if depth > MAX_CALL_DEPTH:
            raise self.fail(node, f"calls to '{fn.name}' nest more than {MAX_CALL_DEPTH} deep",
                            "a spec's functions may not recurse without bound")
        env = {**dict(zip(fn.args, args)), FUNCTIONS_KEY: self.functions(), "#depth": depth}
        return evaluate(fn.body, env, fn.loc)


def _source(node: ast.AST) -> str:
    """The text of a callee that is not a plain name (``math.ceil``), for messages."""
    try:
        return ast.unparse(node)[:60]
    except Exception:  # noqa: BLE001 - only for a message
        return type(node).__name__


def _range_len(*args: int) -> int:
    """len(range(*args)) for integers of any size (len() itself overflows past 2**63)."""
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if step > 0:
        return max(0, (stop - start + step - 1) // step)
    return max(0, (start - stop - step - 1) // -step)


def _first_line(exc: BaseException) -> str:
    """An exception's message for an error line: its first line, at most 120 characters."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """The parsed expression (cached by text: specs evaluate the same few texts many times)."""
    tree = ast.parse(text, mode="eval")
    depth, stack = 0, [(tree, 1)]
    while stack:  # measured without recursion: the evaluator recurses on it
        node, d = stack.pop()
        depth = max(depth, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    if depth > _MAX_DEPTH:
        raise RecursionError(depth)
    return tree


def check_text(text: str, loc: Loc | None, what: str = "expression") -> None:
    """Refuse an expression, a template or a str value longer than the ``expr_length`` limit,
    or that is not valid Unicode (a lone surrogate, e.g. from undecodable command-line bytes,
    could be neither printed nor written to a file)."""
    cap = limits.current().expr_length
    if len(text) > cap:
        raise limits.exceeded("expr_length", f"{what} of {len(text):,} characters is longer than "
                              f"the expr_length limit: {quote(text)}", loc)
    bad = unicode_problem(text)
    if bad is not None:
        raise ExprError(f"{what} {quote(text)} is not valid Unicode ({bad})", loc,
                        "write it as UTF-8 text")


def unicode_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text (None when it is).

    >>> unicode_problem("ok ×"), unicode_problem("a\\udcff")
    (None, 'a lone surrogate U+DCFF at character 2')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start + 1}"
    return None


def evaluate(text: Any, env: Mapping[str, Any], loc: Loc | None = None) -> Any:
    """Evaluate an expression; non-strings (YAML numbers and booleans) pass through.

    >>> evaluate("2 ** (K - 1) * (n - 1) + 1", {"K": 5, "n": 3})
    33
    """
    if not isinstance(text, str):
        return text
    check_text(text, loc)
    if text.isidentifier() and not keyword.iskeyword(text) and text in env:
        value = env[text]     # a bare parameter name, the commonest argument: what _Name and
        if value is None or type(value) is bool or (    # check() give, without the tree
                type(value) is int and value.bit_length() <= _MAX_INT_BITS):
            return value
    try:
        tree = _parse(text.strip())
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression {quote(text)}: {exc.msg}", loc,
                        "write Python-like arithmetic, e.g. 'N // K' or '2 ** k'") from None
    except (RecursionError, MemoryError):
        raise ExprError(f"expression {quote(text)} is nested more than {_MAX_DEPTH} levels deep",
                        loc, "split it into parameters with defaults") from None
    except ValueError as exc:  # e.g. a NUL character
        raise ExprError(f"cannot parse expression {quote(text)}: {_first_line(exc)}", loc,
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
    check_text(text, loc, "template")

    def fill(match: re.Match) -> str:
        sub = loc.shifted(match.start(1)) if loc else None
        return str(evaluate(match.group(1), env, sub))

    return _TEMPLATE.sub(fill, text)


def template_names(text: str) -> set[str]:
    """The names a template's ``{expression}`` parts read (not the functions they call).

    >>> sorted(template_names("b{j}.{(['dw', 'se'] if s else ['x'])[b]}"))
    ['b', 'j', 's']
    """
    names: set[str] = set()
    for match in _TEMPLATE.finditer(text):
        try:
            tree = _parse(match.group(1).strip())
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue     # reported when the template is filled
        called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called
                  and n.id not in ("True", "False", "None")}
    return names


def parse_for(text: str, loc: Loc | None) -> tuple[str, str]:
    """Split a ``for`` clause ``"k in range(K)"`` into the loop variable and its expression."""
    check_text(str(text), loc, "'for' clause")
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)", str(text), re.DOTALL)
    if not m:
        raise ExprError(f"bad 'for' clause {quote(text)}", loc, "write it as 'k in range(K)'")
    return m.group(1), m.group(2)
