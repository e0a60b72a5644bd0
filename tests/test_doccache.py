"""The persistent cache of checked spec files (espdsl.doccache): what comes back equals a fresh
read, and nothing that should miss (an edit, other limits, another reader) is served."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from espdsl import doccache, limits
from espdsl.errors import LimitError, SpecError
from espdsl.ir import Scope
from espdsl.source import parse_yaml
from espdsl.spec import _read_spec

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "blocks").glob("*.yaml")) + sorted((ROOT / "zoo").glob("*.yaml"))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(doccache.ENV, str(folder))
    return folder


def _same(a, b) -> None:
    assert a.data == b.data and json.dumps(a.data) == json.dumps(b.data)  # types too
    assert a.values == b.values and a.keys == b.keys and a.lines == b.lines and a.file == b.file


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_hit_is_the_document_a_fresh_read_gives(cache, path):
    text = path.read_text()
    spec = _read_spec(path)                       # a miss: parsed, checked, stored
    assert len(list(cache.glob("*.json"))) == 1
    hit = doccache.fetch(text, str(path))
    assert hit is not None
    _same(hit, parse_yaml(text, str(path)))
    again = _read_spec(path)                      # a hit: same spec
    assert again.name == spec.name and again.params == spec.params
    assert [n.name for n in again.nodes] == [n.name for n in spec.nodes]


def test_locations_name_the_file_read_now(cache, tmp_path):
    text = "block: b\nnodes:\n  - {name: x, op: relu}\n"
    doccache.keep(text, parse_yaml(text, "first.yaml"))
    doc = doccache.fetch(text, str(tmp_path / "second.yaml"))
    assert str(doc.loc(("nodes", 0, "op"))) == f"{tmp_path / 'second.yaml'}:3:19"


def test_an_edit_misses_and_is_checked(cache, tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("block: b\nnodes:\n  - {name: x, op: relu}\n")
    _read_spec(path)
    path.write_text("block: b\ncolour: red\nnodes:\n  - {name: x, op: relu}\n")
    with pytest.raises(SpecError, match="colour") as err:
        _read_spec(path)
    assert f"{path}:2:1" in str(err.value)


def test_a_file_that_fails_is_never_stored(cache, tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("block: b\ncolour: red\nnodes:\n  - {name: x, op: relu}\n")
    for _ in range(2):
        with pytest.raises(SpecError, match="colour"):
            _read_spec(path)
    assert not list(cache.glob("*.json"))


def test_lower_limits_miss(cache, tmp_path):
    """A file stored under the default limits is refused under lower ones, as if never cached."""
    path = tmp_path / "b.yaml"
    path.write_text("block: b\nnodes:\n" + "".join(f"  - {{name: x{i}, op: relu}}\n" for i in range(20)))
    _read_spec(path)
    with limits.override(yaml_values=20), pytest.raises(LimitError, match="yaml_values"):
        _read_spec(path)


def test_a_corrupt_or_foreign_entry_is_a_miss(cache):
    text = "block: b\nnodes:\n  - {name: x, op: relu}\n"
    doccache.keep(text, parse_yaml(text, "b.yaml"))
    (entry,) = cache.glob("*.json")
    for body in ("{not json", "[]", json.dumps({"key": "other", "data": 1, "values": [], "keys": []}),
                 json.dumps({"key": entry.stem, "data": {}, "values": [[1]], "keys": []})):
        entry.write_text(body)
        assert doccache.fetch(text, "b.yaml") is None


def test_off_and_unwritable(tmp_path, monkeypatch):
    text = "block: b\nnodes:\n  - {name: x, op: relu}\n"
    monkeypatch.setenv(doccache.ENV, "off")
    doccache.keep(text, parse_yaml(text, "b.yaml"))
    assert doccache.cache_dir() is None and doccache.fetch(text, "b.yaml") is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(doccache.ENV, str(blocker / "cache"))   # cannot be created
    doccache.keep(text, parse_yaml(text, "b.yaml"))             # no error
    assert doccache.fetch(text, "b.yaml") is None


def test_only_plain_json_data_is_stored(cache):
    text = "a: 1\n"
    doc = parse_yaml(text, "a.yaml")
    doc.data = {"a": (1, 2)}                       # a tuple would come back as a list
    doccache.keep(text, doc)
    assert not list(cache.glob("*.json"))


def test_cli_fills_and_uses_the_cache(cache):
    def analyze() -> str:
        run = subprocess.run([sys.executable, "-m", "espdsl", "analyze", "espnet"],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout
    first = analyze()
    assert len(list(cache.glob("*.json"))) >= 4    # espnet and the blocks it uses
    assert analyze() == first


def test_replay_builds_every_scope_field():
    """resolve's replay constructs Scope positionally (faster than dataclasses.replace): this
    fails when Scope gains a field, so the call is updated with it."""
    assert [f.name for f in fields(Scope)] == [
        "path", "kind", "block", "parent", "inputs", "output", "in_shapes", "out_shape",
        "params", "repeat", "repeat_expr", "loc"]


def test_the_folder_stays_bounded(cache, monkeypatch):
    monkeypatch.setattr(doccache, "MAX_ENTRIES", 5)
    monkeypatch.setattr(doccache, "KEEP_ENTRIES", 3)
    texts = [f"block: b{i}\nnodes:\n  - {{name: x, op: relu}}\n" for i in range(7)]
    for i, text in enumerate(texts):
        doccache.keep(text, parse_yaml(text, "b.yaml"))
        entry = cache / f"{doccache._key(text)}.json"
        os.utime(entry, ns=(i * 10**9, i * 10**9))          # written in this order
    assert len(list(cache.glob("*.json"))) <= 5
    assert doccache.fetch(texts[-1], "b.yaml") is not None  # the newest stay
    assert doccache.fetch(texts[0], "b.yaml") is None       # the oldest went first


def test_a_warm_cache_imports_no_yaml_reader_and_no_jsonschema(cache):
    """What makes a cold analysis fast: with the spec files cached, neither YAML reader nor
    jsonschema is imported at all."""
    code = ("import sys, espdsl\n"
            "espdsl.analyze('espnet').totals.memory.peak\n"
            "print(sorted(m for m in ('yaml', 'ruamel.yaml', 'jsonschema') if m in sys.modules))\n")

    def modules() -> str:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()
    assert modules() != "[]"          # the first read parses and checks
    assert modules() == "[]"
