"""The JSON Schemas shipped with espdsl (``espdsl/<name>.schema.json``: ``spec`` for block and
model files, ``study`` for studies) and located errors from them.

A schema checks a file's structure before anything reads it; the first (best) violation
becomes one located error: the key or value it is about, and a did-you-mean for unknown keys
and enumerated values. Editors use the same files (``espdsl schema`` prints them) for
completion, hover docs and checks while typing.

>>> "spec" in schema_names() and schema("spec")["title"]
'espdsl spec (a block or a model)'

>>> from espdsl.source import parse_yaml
>>> doc = parse_yaml("study: s\\nbase: espnet\\nvariant: []\\n", "s.yaml")
>>> print(schema_error(validator("study.schema.json"), doc))
s.yaml:3:1: error: unknown key 'variant'; hint: did you mean 'variants'?
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Type

from .errors import SpecError, UsageError, did_you_mean, quote, shorten, show
from .source import Document

if TYPE_CHECKING:  # pragma: no cover
    import jsonschema

SUFFIX = ".schema.json"


def schema_names() -> list[str]:
    """Names of the shipped schemas, e.g. ``['spec', 'study']``."""
    return sorted(entry.name[:-len(SUFFIX)] for entry in resources.files("espdsl").iterdir()
                  if entry.name.endswith(SUFFIX))


def schema_text(name: str = "spec") -> str:
    """A shipped schema's text, exactly as in the package."""
    names = schema_names()
    if name not in names:
        raise UsageError(f"no schema named {quote(name)}", None, did_you_mean(name, names))
    return resources.files("espdsl").joinpath(name + SUFFIX).read_text(encoding="utf-8")


def schema(name: str = "spec") -> dict[str, Any]:
    """A shipped schema as a dict."""
    return json.loads(schema_text(name))


@lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.protocols.Validator:
    """The validator for a schema file shipped in the package, e.g. ``spec.schema.json``."""
    import jsonschema  # 40 ms to import: only when a file is checked (espdsl.doccache skips it)
    text = resources.files("espdsl").joinpath(name).read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_error(check: jsonschema.protocols.Validator, doc: Document,
                 error: Type[SpecError] = SpecError,
                 ignore: Callable[[Any], bool] | None = None) -> SpecError | None:
    """The best-matching violation of ``doc`` as one located error, or None if it is valid
    (violations ``ignore`` picks are left to the caller's own, more precise checks)."""
    import jsonschema
    errors = [e for e in check.iter_errors(doc.data) if not (ignore and ignore(e))]
    if not errors:
        return None
    err = jsonschema.exceptions.best_match(errors)
    path = tuple(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0] if extra else "?"
        return error(f"unknown key {quote(key)}", doc.key_loc(path + (key,)),
                     did_you_mean(str(key), allowed))
    if err.validator == "required":
        return error(shorten(err.message, 200), doc.loc(path),
                     "see the documentation for the keys it takes")
    if err.validator == "pattern":
        return error(f"invalid name {show(err.instance)}", doc.loc(path),
                     "names are identifiers: letters, digits and '_', not starting with a digit")
    if err.validator == "enum":
        return error(f"{show(err.instance)} is not allowed here", doc.loc(path),
                     did_you_mean(str(err.instance), map(str, err.validator_value)))
    where = shorten("/".join(map(str, path)) or "top level")
    hint = None
    if err.validator in ("minItems", "maxItems") and "description" in err.schema:
        hint = err.schema["description"]      # e.g. what a pair [h, w] is
    return error(f"at {where}: {shorten(err.message, 200)}", doc.loc(path), hint)
