"""From a reference to a resolved IR: a spec given as a name, a path, a dict or a
:class:`~espdsl.spec.Spec`, opened against the registry (the library, the zoo and user
``blocks`` folders) and resolved with parameters.

It sits just above the resolver, so that the analysis, the passes, rendering and the summaries
can take a spec name as well as an IR without reaching up into :mod:`espdsl.api`, which
re-exports :func:`load` and :func:`open_spec`.

>>> load("esp", M=64, N=64, K=4).output_shape
(1, 64, 56, 56)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .ir import IR
from .registry import Registry, default_registry
from .resolve import resolve
from .spec import Spec, read_spec

SpecRef = str | Path | Spec | dict


def _registry(blocks: Iterable[str | Path] = ()) -> Registry:
    reg = default_registry()
    for path in blocks:
        reg.add_dir(path)
    return reg


def open_spec(spec: SpecRef, registry: Registry) -> Spec:
    """A :class:`Spec` from a spec object, a dict (the YAML document as Python data), a path
    to a YAML file, or a registered name.

    >>> import espdsl
    >>> net = {"model": "tiny", "input": {"channels": 3, "size": [32, 32]},
    ...        "nodes": [{"name": "c1", "block": "cbr", "N": 8, "stride": 2}]}
    >>> espdsl.load(net).output_shape
    (1, 8, 16, 16)
    """
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return spec_from_dict(spec)
    text = str(spec)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")) or "/" in text or _is_file(text):
        return read_spec(text)
    return registry.get(text)


def spec_from_dict(data: dict) -> Spec:
    """Parse a spec given as Python data (what the YAML file would hold): the same checks as a
    file; errors point into the YAML text of the dict, named ``<dict NAME>``."""
    import yaml

    from .errors import UsageError
    from .spec import parse_spec
    name = data.get("model") or data.get("block") or "spec"
    try:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    except yaml.YAMLError as exc:
        raise UsageError(f"a spec dict holds only plain data (dicts, lists, str, int, float, "
                         f"bool, None): {str(exc).splitlines()[0]}", None,
                         "write the spec as it would appear in a YAML file") from None
    return parse_spec(text, file=f"<dict {name}>")


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL character
        return False


def open_beside(ref: str, file: str | Path, registry: Registry) -> Spec:
    """Open ``ref`` as written in the data file ``file`` (a study or a space): a relative YAML
    path is read from that file's folder, a name from ``registry``.

    >>> open_beside("espnet_c", "zoo/studies/fig5.yaml", default_registry()).name
    'espnet_c'
    """
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        path = Path(ref)
        ref = str(path if path.is_absolute() else Path(file).parent / path)
    return open_spec(ref, registry)


def load(spec: SpecRef, *, input_size: Sequence[int] | None = None,
         blocks: Iterable[str | Path] = (), **params: Any) -> IR:
    """Resolve a spec (a zoo/block name or a path) with parameters into the linted IR.

    >>> import espdsl
    >>> espdsl.load("espnet", alpha3=3).output_shape
    (1, 20, 512, 1024)
    """
    reg = _registry(blocks)
    return resolve(open_spec(spec, reg), params, registry=reg, input_size=input_size)
