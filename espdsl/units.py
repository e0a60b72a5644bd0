"""Human-readable units beside exact integers: 4,709,441,536 MACs is 4.71 G.

SI prefixes of 1000 (k, M, G, T), three significant digits, the way papers print counts
("0.36 M parameters", "4.71 GMACs").

>>> si(364569), si(4709441536), si(999), si(0)
('365 k', '4.71 G', '999', '0')
>>> count(364569, "exact"), count(364569, "human"), count(364569, "both")
('364,569', '365 k', '364,569 (365 k)')
>>> share(9156, 364569)
'2.5%'
"""
from __future__ import annotations

UNITS = ("exact", "human", "both")
_PREFIXES = [(10 ** 12, "T"), (10 ** 9, "G"), (10 ** 6, "M"), (10 ** 3, "k")]


def si(n: int | float) -> str:
    """``n`` with an SI prefix and three significant digits."""
    for scale, prefix in _PREFIXES:
        if abs(n) >= scale:
            v = n / scale
            digits = 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0
            return f"{v:.{digits}f} {prefix}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def count(n: int, units: str = "exact") -> str:
    """An integer as ``exact`` (364,569), ``human`` (365 k) or ``both``."""
    if units == "human":
        return si(n)
    if units == "both":
        return f"{n:,} ({si(n)})" if abs(n) >= 1000 else f"{n:,}"
    return f"{n:,}"


def share(part: int | float, whole: int | float) -> str:
    """``part`` as a percentage of ``whole``, one decimal ('' when the whole is 0)."""
    return f"{100 * part / whole:.1f}%" if whole else ""
