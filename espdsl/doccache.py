"""A persistent cache of spec files already read and checked, keyed by their text (like .pyc).

Reading a spec file means parsing its YAML (PyYAML's libyaml binding, 11 ms to import the first
time in a process) and checking it against the grammar's JSON Schema (about 1 ms a file once
``jsonschema`` is warm, several times that cold); loading ESPNet reads seven files. A file that
parsed and passed the schema once is stored as JSON, its data and the line and column of every
key and value, under a key made of its text, the limits it was read under and the reader's own
version (espdsl's version and the size and modification time of the reader's modules and of the
schema), so any change to any of them is a miss. What comes back is the same :class:`Document`
the reader gives, with the current file's name in every location; everything after the schema
(names, parameters, key maps, resolving) still runs.

Where: ``$ESPDSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/espdsl``, else ``~/.cache/espdsl``;
``ESPDSL_CACHE_DIR=off`` turns it off. It holds at most :data:`MAX_ENTRIES` entries of a few
kB (the oldest go first); deleting the folder is always safe. Entries are read with :func:`json.loads` (plain data, no
code), written atomically (a temporary file, then a rename); an unreadable, corrupt or foreign
entry is a miss, and a cache that cannot be written is skipped without a word.

>>> import tempfile, os
>>> from espdsl.source import parse_yaml
>>> before = os.environ.get("ESPDSL_CACHE_DIR")
>>> os.environ["ESPDSL_CACHE_DIR"] = tempfile.mkdtemp()
>>> text = "a:\\n  b: [1, 2]\\n"
>>> fetch(text, "x.yaml") is None
True
>>> keep(text, parse_yaml(text, "x.yaml"))
>>> doc = fetch(text, "y.yaml")
>>> doc.data, str(doc.loc(("a", "b", 1)))
({'a': {'b': [1, 2]}}, 'y.yaml:2:10')
>>> if before is None: del os.environ["ESPDSL_CACHE_DIR"]
... else: os.environ["ESPDSL_CACHE_DIR"] = before
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import limits
from .errors import Loc
from .source import Document

ENV = "ESPDSL_CACHE_DIR"
FORMAT = 1  # bump when the Document's shape or the reader's output changes
MAX_ENTRIES = 2000  # past this, a write removes the oldest entries down to KEEP_ENTRIES
KEEP_ENTRIES = 1500
_OFF = {"off", "0", "no", "false", "none"}
# the modules and data whose change must invalidate what they produced
_READERS = ("source.py", "spec.py", "schema.py", "spec.schema.json")


def cache_dir() -> Path | None:
    """The folder entries go in, or None when the cache is turned off."""
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF or not env.strip() else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "espdsl"


@lru_cache(maxsize=1)
def _reader_version() -> str:
    from . import __version__
    here = Path(__file__).resolve().parent
    stamps = []
    for name in _READERS:
        try:
            st = (here / name).stat()
            stamps.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            stamps.append(f"{name}:?")
    return f"{FORMAT}|{__version__}|{'|'.join(stamps)}"


def _key(text: str) -> str:
    digest = hashlib.sha256()
    digest.update(_reader_version().encode())
    digest.update(repr(limits.current()).encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def fetch(text: str, file: str) -> Document | None:
    """The checked :class:`Document` of ``text`` if it is in the cache (locations in ``file``)."""
    folder = cache_dir()
    if folder is None:
        return None
    key = _key(text)
    try:
        entry = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if entry.get("key") != key:
            return None
        doc = Document(data=entry["data"], file=file, lines=text.splitlines())
        doc.values = {tuple(p): Loc(file, line, col) for p, line, col in entry["values"]}
        doc.keys = {tuple(p): Loc(file, line, col) for p, line, col in entry["keys"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return doc


def keep(text: str, doc: Document) -> None:
    """Store a :class:`Document` that parsed and passed the schema (plain JSON data only)."""
    folder = cache_dir()
    if folder is None or not _plain(doc.data, 0):
        return
    key = _key(text)
    entry = {"key": key, "data": doc.data,
             "values": [[list(p), loc.line, loc.col] for p, loc in doc.values.items()],
             "keys": [[list(p), loc.line, loc.col] for p, loc in doc.keys.items()]}
    try:
        body = json.dumps(entry, ensure_ascii=False, allow_nan=False)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, folder / f"{key}.json")
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(folder)
    except (OSError, ValueError, TypeError, UnicodeError):
        return


def _prune(folder: Path) -> None:
    """Bound the folder: every edit of a spec file adds an entry (a few kB). Only writes prune,
    and writes are misses, so a cache in use is rarely listed."""
    entries = [e for e in os.scandir(folder) if e.name.endswith(".json") and e.is_file()]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[:len(entries) - KEEP_ENTRIES]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def _plain(value: Any, depth: int) -> bool:
    """Only what JSON gives back unchanged: str-keyed dicts, lists, str, int, finite float,
    bool, None (a value of another type would come back as something else)."""
    if depth > 200:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or type(value) in (str, int, bool)
