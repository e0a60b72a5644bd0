"""Why a compiled module differs from its Fig. 3g formula: one note per differing value.

A formula of the paper assumes what its figure assumes (K divides N, M = N, ...). Where a
setting leaves that, the compiled block does something the formula leaves out. Each rule below
names that term and gives its size; :func:`explain` keeps a note only when the formula plus the
term is exactly the compiled value, and says so plainly when nothing here accounts for a
difference (so a note is never a guess).

>>> from espdsl.analysis.formulas import FORMULAS, formula_env
>>> env = formula_env({"K": 8}, (56, 56))
>>> explain("esp", env, {"params_formula": 11568, "params": 12000})["params"]
'N/K = 12.5 rounds down to d = 12; the first branch takes the rest, N - (K - 1)d = 16 channels, so the branches add up to N: the formula Kn^2d^2 leaves out n^2d(N - Kd) = 432'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Env = dict[str, int]


@dataclass(frozen=True)
class Rule:
    """A term a formula leaves out, for the settings where ``applies`` holds."""

    column: str                          # 'params' or 'memory_mb'
    applies: Callable[[Env], bool]
    term: Callable[[Env], float]         # what the compiled value has beyond the formula
    text: Callable[[Env], str]


def _rest(e: Env) -> int:
    return e["N"] - e["K"] * e["d"]


def _rounding(formula_term: str) -> Callable[[Env], str]:
    def text(e: Env) -> str:
        ratio = e["N"] / e["K"]
        return (f"N/K = {ratio:g} rounds down to d = {e['d']}; the first branch takes the rest, "
                f"N - (K - 1)d = {e['N'] - (e['K'] - 1) * e['d']} channels, so the branches add "
                f"up to N: the formula {formula_term} leaves out")
    return text


def _mb(values: float) -> float:
    return values * 4 / 2 ** 20


_ROUNDED = lambda e: e["N"] % e["K"] != 0 and e.get("d") == e["N"] // e["K"]  # noqa: E731

RULES: dict[str, list[Rule]] = {
    "esp": [
        Rule("params", _ROUNDED, lambda e: e["n"] ** 2 * e["d"] * _rest(e),
             lambda e: _rounding("Kn^2d^2")(e) + f" n^2d(N - Kd) = {e['n'] ** 2 * e['d'] * _rest(e):,}"),
        Rule("memory_mb", _ROUNDED, lambda e: _mb(e["W"] * e["H"] * _rest(e)),
             lambda e: _rounding("WHd(K + 1)")(e) + f" WH(N - Kd) = {e['W'] * e['H'] * _rest(e):,} values"),
    ],
    "inception": [
        Rule("params", _ROUNDED, lambda e: e["n"] ** 2 * e["d"] * _rest(e),
             lambda e: _rounding("K(Md + n^2d^2)")(e) + f" n^2d(N - Kd) = {e['n'] ** 2 * e['d'] * _rest(e):,}"),
        Rule("memory_mb", _ROUNDED, lambda e: _mb(e["W"] * e["H"] * _rest(e)),
             lambda e: _rounding("2KWHd")(e) + f" WH(N - Kd) = {e['W'] * e['H'] * _rest(e):,} values"),
    ],
    "resnet": [
        Rule("params", lambda e: e["M"] != e["N"],
             lambda e: e["n"] ** 2 * e["N"] * (e["N"] - e["M"]),
             lambda e: (f"with M != N the second convolution is N -> N (n^2N^2), not M -> N as "
                        f"2n^2MN counts it, and without the identity shortcut no projection is "
                        f"added: the difference is n^2N(N - M) = "
                        f"{e['n'] ** 2 * e['N'] * (e['N'] - e['M']):,}")),
    ],
}


def explain(module: str, env: Env, row: dict[str, Any]) -> dict[str, str]:
    """Notes for the columns where ``row``'s compiled value differs from its formula."""
    notes = {}
    for column in ("params", "memory_mb"):
        want, got = row.get(f"{column}_formula"), row.get(column)
        if want is None or got is None or _same(column, want, got):
            continue
        rules = [r for r in RULES.get(module, []) if r.column == column and r.applies(env)]
        fits = [r for r in rules if _same(column, want + r.term(env), got)]
        if fits:
            notes[column] = fits[0].text(env)
        else:
            diff = f"{got - want:+,}" if column == "params" else f"{got - want:+.4f} MB"
            notes[column] = f"compiled {diff} against the formula; no rule here explains it"
    return notes


def _same(column: str, a: float, b: float) -> bool:
    return a == b if column == "params" else abs(a - b) < 1e-9
