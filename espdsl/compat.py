"""Living beside a torchvision whose compiled operators do not load.

The torchvision wheels on PyPI are built against the CUDA build of torch; next to the CPU build
(what espdsl installs) their compiled library ``torchvision._C`` fails to load, and then
``import torchvision`` dies in ``torchvision._meta_registrations`` ("operator torchvision::nms
does not exist"), which registers fake kernels for exactly those missing operators. fvcore and
ptflops import torchvision whenever it is installed, so without care a mere
``pip install torchvision`` would break ``espdsl analyze --check``. torchvision's *model
definitions* are plain Python and need none of the compiled operators, so replacing
``torchvision._meta_registrations`` by an empty module before the first import lets everything
espdsl uses (fvcore, ptflops, and torchvision's models in the parity tests) import and run.

:func:`guard_torchvision` does that only when it is needed: when torchvision is installed, not yet
imported, and its compiled operators cannot be loaded. Where they load (a matching torch and
torchvision) it changes nothing.

>>> guard_torchvision() in (True, False)
True
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

META = "torchvision._meta_registrations"


def _compiled_ops_load(package: Path) -> bool:
    """Does torchvision's compiled library load and register ``torchvision::nms``?"""
    import torch

    for lib in sorted(package.glob("_C*")):
        if lib.suffix not in (".so", ".pyd", ".dylib"):
            continue
        try:
            torch.ops.load_library(str(lib))
        except (OSError, RuntimeError):
            return False
        try:
            torch.ops.torchvision.nms
        except (AttributeError, RuntimeError):
            return False
        return True
    return False


def guard_torchvision() -> bool:
    """Stub ``torchvision._meta_registrations`` when torchvision is installed but its compiled
    operators do not load (see the module doc). Returns whether the stub is in place."""
    if sys.modules.get(META) is not None and getattr(sys.modules[META], "__espdsl_stub__", False):
        return True
    if "torchvision" in sys.modules or META in sys.modules:
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    if _compiled_ops_load(Path(spec.origin).parent):
        return False
    stub = types.ModuleType(META)
    stub.__doc__ = "espdsl: torchvision's compiled operators do not load here (see espdsl.compat)"
    stub.__espdsl_stub__ = True
    sys.modules[META] = stub
    return True


def import_torchvision() -> types.ModuleType:
    """``import torchvision`` after :func:`guard_torchvision` (ImportError when not installed)."""
    guard_torchvision()
    import torchvision

    return torchvision
