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

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: folder {folder} does not exist", None,
                         "create the folder first or choose another output path")
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
