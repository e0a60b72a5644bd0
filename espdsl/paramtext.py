"""One rendering of a parameter set, everywhere: headers, titles, errors, file names.

Unset parameters (``None``: a ``default: null`` nobody set) are left out; the others keep the
spec's declaration order and print as ``name=value``.

>>> param_text({"alpha2": 2, "alpha3": 8, "g": None, "hff": True, "module": "esp"})
'alpha2=2, alpha3=8, hff=True, module=esp'
>>> titled("espnet", {"alpha3": 3, "g": None})
'espnet (alpha3=3)'
>>> titled("cbr", {"g": None})
'cbr'
>>> file_stem("espnet", {"alpha3": 3, "module": "esp"})
'espnet_alpha3=3_module=esp'
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import one_line


def shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that are set (not None), in their order."""
    return {k: v for k, v in params.items() if v is not None}


def param_text(params: Mapping[str, Any], sep: str = ", ") -> str:
    """``alpha2=2, alpha3=8, ...`` without the unset ones, on one line."""
    return one_line(sep.join(f"{k}={v}" for k, v in shown(params).items()))


def titled(name: str, params: Mapping[str, Any]) -> str:
    """``name (k=v, ...)``, or ``name`` alone when nothing is set."""
    text = param_text(params)
    return f"{name} ({text})" if text else name


def file_stem(name: str, params: Mapping[str, Any]) -> str:
    """A file name stem for ``name`` with these parameters (``_`` between the settings)."""
    text = param_text(params, sep="_")
    safe = "".join(c if c.isalnum() or c in "=._-" else "-" for c in text)
    return f"{name}_{safe}" if safe else name
