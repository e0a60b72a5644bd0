"""The JSON Schemas shipped with espdsl (``espdsl/*.schema.json``) and located errors from them.

A schema checks a file's structure before anything reads it; the first (best) violation
becomes one located error: the key or value it is about, and a did-you-mean for unknown keys
and enumerated values.

>>> from espdsl.source import parse_yaml
>>> doc = parse_yaml("study: s\\nbase: espnet\\nvariant: []\\n", "s.yaml")
>>> print(schema_error(validator("study.schema.json"), doc))
s.yaml:3:1: error: unknown key 'variant'; hint: did you mean 'variants'?
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Type

import jsonschema

from .errors import SpecError, did_you_mean
from .source import Document


@lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.protocols.Validator:
    """The validator for a schema file shipped in the package, e.g. ``spec.schema.json``."""
    text = resources.files("espdsl").joinpath(name).read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_error(check: jsonschema.protocols.Validator, doc: Document,
                 error: Type[SpecError] = SpecError) -> SpecError | None:
    """The best-matching violation of ``doc`` as one located error, or None if it is valid."""
    errors = list(check.iter_errors(doc.data))
    if not errors:
        return None
    err = jsonschema.exceptions.best_match(errors)
    path = tuple(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0] if extra else "?"
        return error(f"unknown key '{key}'", doc.key_loc(path + (key,)),
                     did_you_mean(str(key), allowed))
    if err.validator == "required":
        return error(err.message, doc.loc(path), "see the documentation for the keys it takes")
    if err.validator == "pattern":
        return error(f"invalid name {err.instance!r}", doc.loc(path),
                     "names are identifiers: letters, digits and '_', not starting with a digit")
    if err.validator == "enum":
        return error(f"{err.instance!r} is not allowed here", doc.loc(path),
                     did_you_mean(str(err.instance), map(str, err.validator_value)))
    where = "/".join(map(str, path)) or "top level"
    hint = None
    if err.validator in ("minItems", "maxItems") and "description" in err.schema:
        hint = err.schema["description"]      # e.g. what a pair [h, w] is
    return error(f"at {where}: {err.message}", doc.loc(path), hint)
