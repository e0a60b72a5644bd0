"""A look at an espdsl checkpoint's structure before torch is imported.

Importing torch takes about 2 s here, so a checkpoint refused only after ``torch.load`` is
refused in over 2 s. :func:`peek` reads the checkpoint's pickle (``*/data.pkl`` of the zip)
with an unpickler that builds plain containers and stand-ins for tensors, and nothing else: a
global other than the few that ``torch.save`` writes for tensors stops the peek, and the file
then goes to torch's ``weights_only`` loader as before. So the peek can only refuse earlier
what :func:`espdsl.checkpoint_schema.check` would refuse later; it never accepts anything on
its own (every checkpoint is still read by ``torch.load(weights_only=True)`` and checked again).

>>> import tempfile, pathlib, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "net.pt"
>>> torch.save({"format": "espdsl-checkpoint", "version": 1, "name": "n", "kind": "model",
...             "specs": {"../x": "model: x"}, "params": {}, "input_size": [1, 3, 8, 8],
...             "state_dict": {"w": torch.zeros(2)}}, path)
>>> peek(path)
Traceback (most recent call last):
...
espdsl.errors.WeightsError: ...net.pt: error: stored spec name '../x' is not a name; hint: ...
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import stat
import zipfile
from pathlib import Path
from typing import Any

from .checkpoint_schema import FORMAT, check, tensors_are

MAX_PICKLE = 64 * 2 ** 20     # a larger pickle is left to torch's loader


class Tensor:
    """Stands for a tensor or a storage in a peek (named so that errors name a tensor as the
    full load does); holds nothing, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _rebuild(*args: Any, **kwargs: Any) -> Tensor:
    return Tensor()


class _Unknown(Exception):
    """A global the peek does not know: torch's loader decides."""


class _Peeker(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name.startswith("_rebuild_"):
            return _rebuild
        if module == "torch" and name.endswith("Storage"):
            return Tensor
        raise _Unknown(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Tensor:
        return Tensor()


def peek(path: str | Path) -> None:
    """Refuse the espdsl checkpoint at ``path`` if its structure breaks the format (one
    :class:`~espdsl.errors.WeightsError`, as the full load gives); return quietly when it fits,
    or when the peek cannot tell (no such regular file, not a zip, an unknown global, not an
    espdsl checkpoint)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):   # a FIFO would block: the full load says so
            return
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
            if len(names) != 1 or archive.getinfo(names[0]).file_size > MAX_PICKLE:
                return
            data = archive.read(names[0])
        raw = _Peeker(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - whatever the peek cannot read, torch's loader judges
        return
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        with tensors_are(Tensor):
            check(raw, str(path))
