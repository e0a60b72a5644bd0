"""Shared test helpers."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from espdsl.compat import guard_torchvision

# With torchvision installed (the test extra has it), fvcore, ptflops and the parity tests
# import it; its PyPI wheel's compiled operators do not load beside the CPU build of torch, so
# every test process stubs torchvision._meta_registrations first (see espdsl/compat.py).
guard_torchvision()

# Every test run reads and writes its own, initially empty, cache of checked spec files
# (espdsl.doccache), never the user's ~/.cache/espdsl; subprocesses inherit it.
os.environ["ESPDSL_CACHE_DIR"] = tempfile.mkdtemp(prefix="espdsl-test-cache-")

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "espnet-reference"

# Parameters that make every library block build as Fig. 3g's module (M = N = 100, n = 3, K = 5,
# g = 2); blocks take only the ones they declare.
FIG3G = {"M": 100, "N": 100, "n": 3, "K": 5, "g": 2}


# Down-samplers that concatenate a pooled input (M channels) to N - M new ones need N > M.
GROWS = {"erfnet_down": {"N": 200}, "eesp_down": {"N": 200},
         "regnet_bottleneck": {"N": 96}}   # RegNet: widths are multiples of the group width (8)


def block_params(name: str) -> dict:
    """Fig. 3g's settings restricted to the parameters a library block declares (N = 2M for
    the down-samplers of GROWS)."""
    import espdsl
    from espdsl.registry import default_registry

    declared = default_registry().get(name).params
    return {k: v for k, v in {**FIG3G, **GROWS.get(name, {})}.items() if k in declared}


def load_module(path: Path):
    """Import a generated ``.py`` file (``espdsl compile -o net.py``) as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (needs ../shared/espnet-reference)")
    return REFERENCE
