"""Resource limits: what espdsl refuses before doing work that could hang or exhaust memory.

Each limit is checked where the work would start, from plain data (the YAML events, the IR, a
file's header), never by trying: a spec that would expand to a billion values, a repeat count
of 10 ** 9 or a convolution with 10 ** 8 channels is refused at once with one located line
whose hint names the limit and how to raise it. The table of defaults is in ``docs/limits.md``
(a test keeps it equal to :data:`LIMITS`).

Raise a limit for one command with ``espdsl --limit NAME=VALUE COMMAND ...`` (repeatable), for
every command with the environment variable ``ESPDSL_LIMITS="NAME=VALUE,NAME=VALUE"``, and in
Python with :func:`override`. Byte limits take units: ``16GiB``, ``512MiB``, ``2GB``.

>>> current().repeat
10000
>>> with override(repeat=20000, param_memory="16GiB"):
...     current().repeat, current().param_memory
(20000, 17179869184)
>>> current().repeat
10000
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .errors import LimitError, Loc, UsageError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from .ir import IR

ENV = "ESPDSL_LIMITS"
GiB = 1 << 30
BYTES_PER_VALUE = 4  # fp32


def _limit(default: int, doc: str, unit: str = "") -> Any:
    from dataclasses import field
    return field(default=default, metadata={"doc": doc, "unit": unit})


@dataclass(frozen=True)
class Limits:
    """The limits in force; every field is a whole number (bytes for ``unit == "bytes"``)."""

    file_bytes: int = _limit(256 << 10, "size of one spec file", "bytes")
    yaml_values: int = _limit(10_000, "values (scalars, lists, mappings) of one YAML "
                                       "document, an alias counted again at each use")
    yaml_depth: int = _limit(64, "nesting of YAML lists and mappings")
    name_length: int = _limit(128, "characters of an identifier: node, parameter, block, model")
    expr_length: int = _limit(1_000, "characters of an expression, a name template or a str "
                                     "parameter")
    int: int = _limit(2 ** 31 - 1, "magnitude of an integer parameter or op attribute, and of "
                                   "every tensor dimension (input size included)")
    range: int = _limit(4_096, "items of a range(), a list or a string in an expression, and "
                               "iterations of a 'for'")
    repeat: int = _limit(10_000, "copies of one repeated node")
    block_depth: int = _limit(32, "blocks nested inside blocks")
    ir_size: int = _limit(1_000_000, "ops plus spec-node instances of one resolved network; "
                                     "a repeat or a 'for' is refused as soon as its first copy "
                                     "shows the total would pass it")
    param_memory: int = _limit(2 * GiB, "fp32 parameters of a model, before it is built; the "
                                        "tensors of a checkpoint, before it is read", "bytes")
    activation_memory: int = _limit(8 * GiB, "fp32 activations of one forward pass at the input "
                                             "size, before espdsl runs one: the peak of live "
                                             "tensors for inference, every tensor for a trace "
                                             "or an export (which hold them)", "bytes")
    image_pixels: int = _limit(100_000_000, "pixels of one image given to predict, before it is "
                                            "decoded")


LIMITS: dict[str, Any] = {f.name: f for f in fields(Limits)}
MAX_SETTABLE = 2 ** 63 - 1  # what torch and ONNX can hold in an int64

_override: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("espdsl_limits",
                                                                          default=None)


def current() -> Limits:
    """The limits in force: an :func:`override`, else the defaults updated from ``ESPDSL_LIMITS``."""
    limits = _override.get()
    return limits if limits is not None else _from_env(os.environ.get(ENV, ""))


@lru_cache(maxsize=8)
def _from_env(text: str) -> Limits:
    items = [t for t in re.split(r"[,\s]+", text) if t]
    return replace(Limits(), **parse_settings(items, source=ENV))


@contextlib.contextmanager
def override(**values: int | str) -> Iterator[Limits]:
    """Limits raised (or lowered) for the ``with`` block; values are numbers or texts like '16GiB'."""
    unknown = [k for k in values if k not in LIMITS]
    if unknown:
        raise UsageError(f"unknown limit '{unknown[0]}'", None, did_you_mean(unknown[0], LIMITS))
    limits = replace(current(), **{k: parse_value(k, v) for k, v in values.items()})
    token = _override.set(limits)
    try:
        yield limits
    finally:
        _override.reset(token)


@contextlib.contextmanager
def pinned() -> Iterator[Limits]:
    """The limits in force, held for the ``with`` block: inside it :func:`current` skips the
    environment (resolving ESPNet asks about 1,800 times). An :func:`override` inside still wins.

    >>> with pinned() as held:
    ...     current() is held
    True
    """
    held = _override.get()
    if held is not None:
        yield held
        return
    held = current()
    token = _override.set(held)
    try:
        yield held
    finally:
        _override.reset(token)


_UNITS = {"": 1, "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9,
          "gb": 10 ** 9, "t": 10 ** 12, "tb": 10 ** 12, "kib": 1 << 10, "mib": 1 << 20,
          "gib": 1 << 30, "tib": 1 << 40}


def parse_value(name: str, value: int | str, source: str = "--limit") -> int:
    """A limit's value from a number or a text such as ``20000``, ``1_000_000`` or ``16GiB``.

    >>> parse_value("param_memory", "1.5GiB"), parse_value("repeat", "20_000")
    (1610612736, 20000)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"{source}: limit {name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    else:
        m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _UNITS:
            raise UsageError(f"{source}: bad value {value!r} for limit {name}", None,
                             "write a whole number, optionally with a unit: 20000, 16GiB, 2GB")
        number = int(float(m.group(1).replace("_", "")) * _UNITS[unit])
    if not 1 <= number <= MAX_SETTABLE:
        raise UsageError(f"{source}: limit {name} must be between 1 and {MAX_SETTABLE:,}, "
                         f"got {number:,}")
    return number


def parse_settings(items: Iterable[str], source: str = "--limit") -> dict[str, int]:
    """``["repeat=20000", "param_memory=16GiB"]`` -> ``{"repeat": 20000, "param_memory": ...}``."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"{source}: bad setting {item!r}", None,
                             "write NAME=VALUE, e.g. --limit repeat=20000")
        if name not in LIMITS:
            raise UsageError(f"{source}: unknown limit '{name}'", None, did_you_mean(name, LIMITS))
        out[name] = parse_value(name, value, source)
    return out


def describe(name: str, value: int | None = None) -> str:
    """A limit's value for people: ``4 GiB``, ``10,000``."""
    value = getattr(current(), name) if value is None else value
    if LIMITS[name].metadata["unit"] == "bytes":
        return format_bytes(value)
    return f"{value:,}"


def format_bytes(n: int | float) -> str:
    """Bytes for people, in binary units.

    >>> format_bytes(4 * GiB), format_bytes(1536), format_bytes(40_000_000_000)
    ('4 GiB', '1.5 KiB', '37.3 GiB')
    """
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{int(n)} bytes"


def markdown_table() -> str:
    """The table of limits and their defaults, as ``docs/limits.md`` shows it."""
    rows = ["| limit | default | what it bounds |", "| --- | --- | --- |"]
    for name, f in LIMITS.items():
        default = f.default
        shown = format_bytes(default) if f.metadata["unit"] == "bytes" else f"{default:,}"
        rows.append(f"| `{name}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows) + "\n"


def exceeded(name: str, message: str, loc: Loc | None = None) -> LimitError:
    """The error for a limit passed: ``message`` says what and how much; the hint says how to
    raise the limit."""
    hint = (f"the {name} limit is {describe(name)}; raise it with 'espdsl --limit {name}=...' "
            f"(or {ENV}, or espdsl.limits.override({name}=...) in Python)")
    return LimitError(message, loc, hint)


def check_int(value: int | float, what: str, loc: Loc | None = None) -> int | float:
    """``value`` if its magnitude is within the ``int`` limit, else a located :class:`LimitError`.

    >>> check_int(1e100, "parameter 'alpha3'")
    Traceback (most recent call last):
    ...
    espdsl.errors.LimitError: error: parameter 'alpha3' is 1e+100, larger than the int limit; hint: the int limit is 2,147,483,647; raise it with 'espdsl --limit int=...' (or ESPDSL_LIMITS, or espdsl.limits.override(int=...) in Python)
    """
    if abs(value) > current().int:
        if isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = f"{value:,}" if value.bit_length() < 200 else f"about 2**{value.bit_length() - 1}"
        raise exceeded("int", f"{what} is {shown}, larger than the int limit", loc)
    return value


# -- memory, from the IR -------------------------------------------------------------------------
def check_build(ir: "IR") -> None:
    """Refuse to build ``ir`` when its fp32 parameters pass ``param_memory`` (before allocating).

    >>> import espdsl
    >>> check_build(espdsl.load("espnet"))
    >>> with override(param_memory="1MiB"):
    ...     check_build(espdsl.load("espnet"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    espdsl.errors.LimitError: ...: error: building 'espnet' needs 1.4 MiB of parameters (364,569 ...
    """
    from .ops import OPS
    sizes = [(ir.node_params(n) * BYTES_PER_VALUE, n) for n in ir.nodes()
             if OPS[n.op].params is not None]   # only ops with parameters: a 13,000-op net in ms
    total = sum(size for size, _ in sizes)
    if total > current().param_memory:
        _refuse("param_memory", f"building '{ir.name}' needs {format_bytes(total)} of parameters "
                f"({total // BYTES_PER_VALUE:,} parameters)", sizes)


def check_forward(ir: "IR", *, keep_all: bool = False) -> None:
    """Refuse to run ``ir`` forward at its input size (batch included) when its fp32 activations
    pass ``activation_memory``, before allocating the input.

    Inference (``keep_all=False``: ``predict``) holds the peak of live tensors, as the analysis
    computes it (PyTorch frees each value after its last use); a trace, an ONNX export or a
    backward pass (``keep_all=True``) holds about every activation: measured here, tracing
    ESPNet at alpha3 = 40 grew the process by 1,036 MiB for 1,360 MiB of activations (56 MiB of
    them live at the peak), an ONNX export by 458 MiB, a plain forward by 212 MiB.

    >>> import espdsl
    >>> check_forward(espdsl.load("espnet"))
    >>> with override(activation_memory="100MiB"):
    ...     check_forward(espdsl.load("espnet"), keep_all=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    espdsl.errors.LimitError: ...: error: tracing 'espnet' on 1x3x512x1024 needs 620.4 MiB of activations...
    """
    from .ops import numel
    sizes = [(ir.batch * numel(n.shape) * BYTES_PER_VALUE, n) for n in ir.nodes()]
    if keep_all:
        total, what = sum(size for size, _ in sizes), "tracing"
    else:
        from .liveness import peak_bytes
        total, what = peak_bytes(ir), "running"
    if total > current().activation_memory:
        shape = "x".join(map(str, ir.input_shape))
        _refuse("activation_memory", f"{what} '{ir.name}' on {shape} needs "
                f"{format_bytes(total)} of activations", sizes)


def _refuse(name: str, what: str, sizes: list) -> None:
    """The limit error, located at the largest node the spec wrote (the input is the caller's)."""
    size, node = max((s for s in sizes if s[1].op != "input"), key=lambda s: s[0],
                     default=sizes[0])
    raise exceeded(name, f"{what}, more than the {name} limit; the largest is '{node.name}' "
                         f"({node.op}, {format_bytes(size)})", node.loc)
