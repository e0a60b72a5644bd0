"""The espdsl checkpoint format, checked as untrusted data before anything in it is used.

A checkpoint someone shared is data, never instructions (the way ``torch.load(weights_only=True)``
treats pickles and safetensors treats headers): every key, type and nesting level is checked
against :data:`FIELDS` first, stored spec names must be identifiers, texts and counts must be
within the limits (:mod:`espdsl.limits`). Each problem is refused with one line naming the
file and the field, e.g. ``net.pt: error: stored spec name '../x' is not a name; hint: ...``.

Nothing a checkpoint holds ever becomes a path: the stored specs are registered as texts in
memory (:meth:`espdsl.registry.Registry.add_text`), so loading one touches no file but itself.

>>> import torch
>>> check({"format": "espdsl-checkpoint", "version": 1, "name": "n", "kind": "model",
...        "specs": {"n": "model: n"}, "params": {}, "input_size": [1, 3, 8, 8],
...        "state_dict": {"w": torch.zeros(1)}}, "net.pt")
>>> check({"format": "espdsl-checkpoint", "version": 1, "name": "n", "kind": "model",
...        "specs": {"../x": "model: x"}, "params": {}, "input_size": [1, 3, 8, 8],
...        "state_dict": {}}, "net.pt")
Traceback (most recent call last):
...
espdsl.errors.WeightsError: net.pt: error: stored spec name '../x' is not a name; hint: names are identifiers (letters, digits, '_'); this checkpoint was not written by espdsl, or was altered
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator, Mapping

from . import limits
from .errors import Loc, WeightsError, did_you_mean, quote, show
from .ir import NAME_RE

FORMAT = "espdsl-checkpoint"
VERSION = 1
ALTERED = "this checkpoint was not written by espdsl, or was altered"
MAX_SPECS = 1_000      # stored specs: ESPNet holds 6; more is not a checkpoint espdsl wrote
MAX_PARAMS = 1_000     # stored parameters


# what counts as a tensor: torch.Tensor (None), or espdsl.checkpoint_peek's stand-in in a peek
_TENSOR: contextvars.ContextVar[type | None] = contextvars.ContextVar("tensor", default=None)


@contextlib.contextmanager
def tensors_are(kind: type) -> Iterator[None]:
    """Within the block, :func:`check` takes ``kind`` for tensors (a peek without torch)."""
    token = _TENSOR.set(kind)
    try:
        yield
    finally:
        _TENSOR.reset(token)


def _is_tensor(value: Any) -> bool:
    kind = _TENSOR.get()
    if kind is None:
        import torch
        kind = torch.Tensor
    return isinstance(value, kind)


def _fail(message: str, where: Loc, hint: str = ALTERED) -> None:
    raise WeightsError(message, where, hint)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name(value: Any, what: str, where: Loc) -> None:
    """An identifier within the ``name_length`` limit (a full match: no trailing newline)."""
    if not isinstance(value, str):
        _fail(f"{what} {show(value)} is a {_type_name(value)}, not a name", where)
    cap = limits.current().name_length
    if len(value) > cap:
        raise limits.exceeded("name_length", f"{what} {quote(value)} is longer than the "
                              "name_length limit", where)
    if not NAME_RE.fullmatch(value):
        _fail(f"{what} {quote(value)} is not a name", where,
              f"names are identifiers (letters, digits, '_'); {ALTERED}")


def _check_format(value: Any, where: Loc) -> None:
    if value != FORMAT:
        _fail(f"'format' is {show(value)}, not {FORMAT!r}", where)


def _check_version(value: Any, where: Loc) -> None:
    if not _is_int(value):
        _fail(f"'version' is a {_type_name(value)}, not a whole number", where)
    if value != VERSION:
        _fail(f"espdsl checkpoint version {show(value)} is not supported", where,
              f"this espdsl reads version {VERSION}")


def _check_name(value: Any, where: Loc) -> None:
    _name(value, "stored network name", where)


def _check_kind(value: Any, where: Loc) -> None:
    if value not in ("block", "model"):
        _fail(f"'kind' is {show(value)}, not 'block' or 'model'", where)


def _check_specs(value: Any, where: Loc) -> None:
    if not isinstance(value, Mapping):
        _fail(f"'specs' is a {_type_name(value)}, not a mapping of names to YAML texts", where)
    if not value:
        _fail("'specs' is empty: it holds no spec to rebuild the network from", where)
    if len(value) > MAX_SPECS:
        _fail(f"'specs' holds {len(value):,} specs, more than {MAX_SPECS:,}", where)
    cap = limits.current().file_bytes
    for name, text in value.items():
        _name(name, "stored spec name", where)
        if not isinstance(text, str):
            _fail(f"stored spec '{name}' is a {_type_name(text)}, not YAML text", where)
        if len(text.encode("utf-8", "surrogatepass")) > cap:
            raise limits.exceeded("file_bytes", f"stored spec '{name}' is larger than "
                                  f"{limits.describe('file_bytes')}", where)


def _check_params(value: Any, where: Loc) -> None:
    if not isinstance(value, Mapping):
        _fail(f"'params' is a {_type_name(value)}, not a mapping of names to values", where)
    if len(value) > MAX_PARAMS:
        _fail(f"'params' holds {len(value):,} values, more than {MAX_PARAMS:,}", where)
    for name, item in value.items():
        _name(name, "stored parameter name", where)
        if type(item) not in (bool, int, float, str):
            _fail(f"stored parameter '{name}' is a {_type_name(item)}, not a bool, int, float "
                  "or str", where)


def _check_input_size(value: Any, where: Loc) -> None:
    if not isinstance(value, list) or not 2 <= len(value) <= 4 or not all(map(_is_int, value)):
        _fail(f"'input_size' is {show(value)}, not a list of 2 to 4 whole numbers", where)
    cap = limits.current().int
    for dim in value:
        if dim < 1:
            _fail(f"'input_size' {show(value)} holds {dim}, not a size >= 1", where)
        if dim > cap:
            raise limits.exceeded("int", f"'input_size' holds {dim:,}, larger than the int "
                                  "limit", where)


def _check_state_dict(value: Any, where: Loc) -> None:
    if not isinstance(value, Mapping):
        _fail(f"'state_dict' is a {_type_name(value)}, not a mapping of names to tensors", where)
    for key, tensor in value.items():
        if not isinstance(key, str):
            _fail(f"'state_dict' key {show(key)} is a {_type_name(key)}, not text", where)
        if not _is_tensor(tensor):
            _fail(f"'state_dict' entry {quote(key)} is a {_type_name(tensor)}, not a tensor", where)


def _check_passes(value: Any, where: Loc) -> None:
    from .passes import PASSES
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        _fail(f"'passes' is {show(value)}, not a list of pass names", where)
    for name in value:
        if name not in PASSES:
            _fail(f"stored pass {quote(name)} is not one of espdsl's passes", where,
                  did_you_mean(name, PASSES))


QUANTIZED_KEYS = {"scheme": str, "float": list, "observers": Mapping, "torch": str,
                  "torchao": str, "calibration": int,
                  # the accuracy-aware fallback (--validate): images, target and reached
                  # pixel agreement with fp32, as fractions
                  "validation": int, "min_agreement": float, "agreement": float,
                  "concat": str}     # "fp32": --float-concat


def _check_quantized(value: Any, where: Loc) -> None:
    """The int8 recipe of ``espdsl quantize``: its scheme, the modules kept in floating point
    (stored names) and the calibrated observers' statistics (tensors); nothing else."""
    if not isinstance(value, Mapping):
        _fail(f"'quantized' is a {_type_name(value)}, not a mapping", where)
    for key, item in value.items():
        kind = QUANTIZED_KEYS.get(key) if isinstance(key, str) else None
        if kind is None:
            _fail(f"unknown key {show(key)} in 'quantized'", where,
                  did_you_mean(str(key), QUANTIZED_KEYS) + f"; {ALTERED}")
        if not isinstance(item, kind) or isinstance(item, bool):
            _fail(f"'quantized' {key} is a {_type_name(item)}, not a {kind.__name__}", where)
    for key in ("scheme", "float", "observers"):
        if key not in value:
            _fail(f"'quantized' has no '{key}'", where)
    if len(value["float"]) > MAX_SPECS * 100 or not all(isinstance(n, str) and len(n) <= 1_000
                                                       for n in value["float"]):
        _fail("'quantized' float is not a list of module names", where)
    for key, tensor in value["observers"].items():
        if not isinstance(key, str) or not _is_tensor(tensor):
            _fail(f"'quantized' observers entry {show(key)} is not a named tensor", where)
    for key in ("min_agreement", "agreement"):
        if key in value and not 0.0 <= value[key] <= 1.0:      # NaN fails too
            _fail(f"'quantized' {key} is {show(value[key])}, not a fraction of pixels (0 to 1)",
                  where)
    if value.get("concat", "int8") not in ("int8", "fp32"):
        _fail(f"'quantized' concat is {show(value['concat'])}, not 'int8' or 'fp32'", where)
    if value.get("validation", 0) < 0 or value.get("calibration", 0) < 0:
        _fail("'quantized' counts a negative number of images", where)


# key -> (required, check); checked in this order: format and version first, so a newer
# format is named as such before its fields are
FIELDS: dict[str, tuple[bool, Callable[[Any, Loc], None]]] = {
    "format": (True, _check_format),
    "version": (True, _check_version),
    "name": (True, _check_name),
    "kind": (True, _check_kind),
    "specs": (True, _check_specs),
    "params": (True, _check_params),
    "input_size": (True, _check_input_size),
    "state_dict": (True, _check_state_dict),
    "passes": (False, _check_passes),
    "quantized": (False, _check_quantized),
}


def check(raw: Mapping[Any, Any], file: str) -> None:
    """Refuse ``raw`` (what ``torch.load`` read from ``file``) unless it is an espdsl checkpoint
    in every key, type and size; the first problem is raised as a :class:`WeightsError`."""
    where = Loc(str(file))
    for key in raw:
        if key not in FIELDS:
            _fail(f"unknown key {quote(key) if isinstance(key, str) else show(key)} in the "
                  "espdsl checkpoint", where,
                  did_you_mean(str(key), FIELDS) + f"; {ALTERED}")
    for key, (required, check_field) in FIELDS.items():
        if key not in raw:
            if required:
                _fail(f"the espdsl checkpoint has no '{key}'", where)
            continue
        check_field(raw[key], where)
    if raw["name"] not in raw["specs"]:
        _fail(f"the stored network '{raw['name']}' is not among the stored specs", where,
              did_you_mean(raw["name"], raw["specs"]) + f"; {ALTERED}")
