"""Writing output files all-or-nothing: a failed command leaves nothing half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import UsageError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.
    Missing folders on the way are created (like ``predict -o``) and removed again on failure.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    with created_folder(folder, path):
        with _atomic_in(path, folder) as tmp:
            yield tmp


@contextlib.contextmanager
def created_folder(folder: str | Path, target: str | Path | None = None) -> Iterator[Path]:
    """Create ``folder`` (and its missing parents) the way ``mkdir -p`` does, for the block;
    if the block fails, remove again the folders this call created (those still empty), so a
    failed command leaves nothing behind.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with created_folder(root / "a" / "b") as f:
    ...     _ = (f / "x.txt").write_text("x")
    >>> (root / "a" / "b" / "x.txt").read_text()
    'x'
    >>> try:
    ...     with created_folder(root / "c" / "d"):
    ...         raise RuntimeError("failed")
    ... except RuntimeError:
    ...     pass
    >>> (root / "c").exists()
    False
    """
    folder = Path(folder)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = target if target is not None else folder
        raise UsageError(f"cannot write {what}: cannot create folder {folder}: "
                         f"{exc.strerror or exc}", None,
                         "choose an output path you can write to") from None
    try:
        yield folder
    except BaseException:
        for made in missing:  # innermost first
            try:
                made.rmdir()
            except OSError:
                break
        raise


@contextlib.contextmanager
def _atomic_in(path: Path, folder: Path) -> Iterator[Path]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", None,
                         "choose an output folder you can write to") from None
    os.close(fd)
    umask = os.umask(0)   # mkstemp makes 0600 files; give the result the usual permissions
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as exc:  # e.g. the target is a folder
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}", None,
                             "choose another output path") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
