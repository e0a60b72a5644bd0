"""Name-keyed registry of block and model specs.

The library's blocks (``blocks/*.yaml``) and models (``zoo/*.yaml``) ship inside the package; a
user adds folders or files of their own (``--blocks DIR``, or ``blocks:`` in a spec) without
touching espdsl. A name defined twice is an error (unless the second file is a byte-for-byte
copy of the first, as in the folders ``espdsl zoo`` writes), and a miss lists the known names.

>>> reg = default_registry()
>>> "esp" in reg.names("block") and "espnet" in reg.names("model")
True
>>> reg.get("espp")
Traceback (most recent call last):
...
espdsl.errors.RegistryError: error: unknown block or model 'espp'; hint: did you mean 'esp'?
"""
from __future__ import annotations

import fnmatch
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import Loc, RegistryError, SpecError, did_you_mean, quote
from .spec import Spec, parse_spec, read_spec


def data_dir(name: str) -> Path:
    """A data folder shipped with espdsl ('blocks', 'zoo', 'templates').

    Installed, they live inside the package (``espdsl/blocks``); in a source checkout they are
    the top-level folders next to ``espdsl/``.
    """
    packaged = Path(str(resources.files("espdsl"))) / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


class Registry:
    """Specs by name. Files are read lazily and cached."""

    def __init__(self) -> None:
        self._files: dict[str, Path] = {}
        self._kinds: dict[str, str] = {}
        self._texts: dict[str, tuple[str, str]] = {}   # name -> (YAML text, where it came from)
        self._parsed: dict[str, Spec] = {}

    def copy(self) -> "Registry":
        other = Registry()
        other._files, other._kinds = dict(self._files), dict(self._kinds)
        other._texts = dict(self._texts)
        return other

    def add_text(self, name: str, text: str, origin: str) -> None:
        """Register spec text held in memory (an espdsl checkpoint's stored specs): nothing is
        written or read on disk; ``origin`` (e.g. ``net.pt:spec/esp``) stands for the file in
        error locations. The text must define a spec called ``name``.

        >>> reg = Registry()
        >>> reg.add_text("tiny", "block: tiny\\nparams: {M: 3}\\nnodes: [{name: a, op: relu}]\\n", "x.pt:spec/tiny")
        >>> reg.get("tiny").file, reg.names()
        ('x.pt:spec/tiny', ['tiny'])
        """
        if name in self._files or name in self._texts:
            raise RegistryError(f"'{name}' is defined twice", Loc(origin),
                                "each stored spec has its own name")
        self._texts[name] = (text, origin)

    def add_file(self, path: str | Path, kind: str | None = None, loc: Loc | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"no such block file: {path}", loc, "give a .yaml file or a folder of them")
        name = path.stem
        if name in self._texts:
            raise RegistryError(f"'{name}' is defined twice: {self._texts[name][1]} and {path}",
                                loc, "rename one of them")
        if name in self._files and self._files[name].resolve() != path.resolve():
            if _same_text(self._files[name], path):
                return  # a byte-for-byte copy (e.g. the blocks an `espdsl zoo` folder carries)
            raise RegistryError(f"'{name}' is defined twice: {self._files[name]} and {path}", loc,
                                "rename one of them (the file stem is the block name); a copy "
                                "is accepted only while it is identical")
        self._files[name] = path
        if kind:
            self._kinds[name] = kind

    def add_dir(self, path: str | Path, kind: str | None = None, loc: Loc | None = None) -> None:
        """Register every ``*.yaml`` in a folder (or a single file)."""
        path = Path(path)
        try:
            is_file, is_dir = path.is_file(), path.is_dir()
        except (OSError, ValueError):  # a name too long for a path, a NUL character
            is_file = is_dir = False
        if is_file:
            self.add_file(path, kind, loc)
            return
        if not is_dir:
            raise SpecError(f"no such block folder: {quote(path)}", loc,
                            "give an existing folder of .yaml files")
        for file in sorted(path.glob("*.yaml")):
            self.add_file(file, kind, loc)

    def get(self, name: str, loc: Loc | None = None) -> Spec:
        """The spec called ``name``; a miss raises with a did-you-mean."""
        if name in self._texts:
            return self._from_text(name)
        if name not in self._files:
            raise RegistryError(f"unknown block or model {quote(name)}", loc,
                                did_you_mean(name, [*self._files, *self._texts]))
        spec = read_spec(self._files[name])  # cached by file identity: edits are seen
        self._kinds[name] = spec.kind
        return spec

    def _from_text(self, name: str) -> Spec:
        spec = self._parsed.get(name)
        if spec is None:
            text, origin = self._texts[name]
            spec = parse_spec(text, origin)
            if spec.name != name:
                raise SpecError(f"{spec.kind} '{spec.name}' is stored under the name '{name}'",
                                spec.loc((spec.kind,)), "a stored spec's name is the one it "
                                "defines; save the checkpoint again with espdsl")
            self._parsed[name] = spec
            self._kinds[name] = spec.kind
        return spec

    def state(self) -> tuple:
        """Every registered file with its modification time and size: resolved block instances
        are reused only while this stays the same."""
        out = []
        for name, path in sorted(self._files.items()):
            try:
                stat = path.stat()
                out.append((name, str(path), stat.st_mtime_ns, stat.st_size))
            except OSError:
                out.append((name, str(path), None, None))
        out += [(name, origin, len(text), hash(text))
                for name, (text, origin) in sorted(self._texts.items())]
        return tuple(out)

    def kind(self, name: str) -> str:
        return self._kinds.get(name) or self.get(name).kind

    def path(self, name: str) -> Path:
        return self._files[name]

    def names(self, kind: str | None = None, pattern: str = "*") -> list[str]:
        """Known names, optionally of one kind ('block' or 'model'), filtered by a glob pattern."""
        return sorted(n for n in [*self._files, *self._texts]
                      if fnmatch.fnmatch(n, pattern) and (kind is None or self.kind(n) == kind))

    def __contains__(self, name: str) -> bool:
        return name in self._files or name in self._texts


def _same_text(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


@lru_cache(maxsize=1)
def _builtin() -> Registry:
    reg = Registry()
    reg.add_dir(data_dir("blocks"), "block")
    reg.add_dir(data_dir("zoo"), "model")
    return reg


def default_registry() -> Registry:
    """A fresh registry holding the library's blocks and the zoo's models."""
    return _builtin().copy()
