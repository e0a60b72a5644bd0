"""Comparing computed figures with the values the paper prints, at the paper's own digits.

A printed ``0.152 M`` is three decimals of millions. A computed 152,608 reads ``0.152`` when cut
(truncated) to three decimals and ``0.153`` when rounded: which the paper does is a finding, so
every comparison records both, and the study's ``rounding`` decides the mark.

>>> from espdsl.study.spec import parse_printed
>>> c = compare(152_608, parse_printed("0.152 M"), "truncate")
>>> c["ours"], c["match"], c["truncate"], c["round"]
('0.152', True, True, False)
>>> round(compare(199_456, parse_printed("0.274 M"), "truncate")["rel_diff"], 4)
-0.2721
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from typing import Any

from .spec import Printed

_MODES = {"truncate": ROUND_DOWN, "round": ROUND_HALF_UP}
_CTX = Context(prec=50)


def exact(value: Any) -> Fraction:
    """An int, float or Fraction as an exact fraction."""
    return value if isinstance(value, Fraction) else Fraction(value)


def cut(value: Any, decimals: int, rounding: str) -> Decimal:
    """``value`` to ``decimals`` places, truncated or rounded half up.

    >>> str(cut(Fraction(773566, 1024000), 2, "truncate")), str(cut(0.755, 1, "round"))
    ('0.75', '0.8')
    """
    f = exact(value)
    d = _CTX.divide(Decimal(f.numerator), Decimal(f.denominator))
    return d.quantize(Decimal(1).scaleb(-decimals), rounding=_MODES[rounding])


def compare(value: Any, printed: Printed, rounding: str) -> dict[str, Any]:
    """How a computed ``value`` (in base units: a count, MB, pixels) reads against ``printed``.

    Returns ``printed`` (the text), ``ours`` (the value in the printed unit and digits, cut by
    ``rounding``), ``match``, ``rel_diff`` ((ours exact - printed) / printed) and whether
    truncating and rounding would each match.
    """
    if value is None:
        return {"printed": printed.text, "ours": None, "match": False, "rel_diff": None,
                "truncate": False, "round": False, "ours_truncate": None, "ours_round": None}
    scaled = exact(value) / printed.scale
    ours = {mode: cut(scaled, printed.decimals, mode) for mode in _MODES}
    target = Fraction(printed.value)
    rel = float((scaled - target) / target) if target else None
    return {"printed": printed.text, "ours": str(ours[rounding]),
            "match": ours[rounding] == printed.value, "rel_diff": rel,
            "truncate": ours["truncate"] == printed.value, "round": ours["round"] == printed.value,
            "ours_truncate": str(ours["truncate"]), "ours_round": str(ours["round"])}


def mark(comparison: dict[str, Any]) -> str:
    """``0.183 M`` when it matches; ``0.274 M * ours 0.199, -27.2%`` when it does not.

    >>> from espdsl.study.spec import parse_printed
    >>> mark(compare(199_456, parse_printed("0.274 M"), "truncate"))
    '0.274 M * ours 0.199, -27.2%'
    """
    if comparison["match"]:
        return comparison["printed"]
    if comparison["ours"] is None:
        return f"{comparison['printed']} * (not computed)"
    rel = comparison["rel_diff"]
    diff = "" if rel is None else f", {rel * 100:+.1f}%" if abs(rel) >= 0.001 else f", {rel * 100:+.2f}%"
    return f"{comparison['printed']} * ours {comparison['ours']}{diff}"
