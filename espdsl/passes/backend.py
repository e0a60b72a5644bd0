"""``inductor``: run the planned build as one graph compiled by torch's inductor
(``ir.meta["backend"]``), not as the planned fx graph op by op.

What: the optimized model (:class:`espdsl.runtime.PlannedModule`) compiles its plain graph with
``torch.compile`` (inductor, ``freezing``: the weights become constants, the convolutions'
weights are packed once into oneDNN's blocked layout) on its first planned call, and from then
on runs the compiled graph wherever it would run the planned one; the result is written into
the planned build's recycled output tensor (:class:`espdsl.runtime.OutputPool`), so the large
output is not a fresh allocation each call. Inductor does its own buffer planning for the
values inside; the memory plan stays in the model for every call the compiled graph does not
take (another input size, gradients, another thread inside).

Why: the planned graph runs ~450 torch ops a forward on ESPNet, each a pass over memory and a
parallel region of its own. Inductor fuses every batch norm, PReLU, concatenation copy and
dtype conversion between two convolutions into one C++ loop, and ESP's hierarchical sums into
the convolutions (oneDNN's sum post-op): bf16 ESPNet (alpha3 = 8, 1x3x512x1024) runs in
~40 parallel regions of fused work plus the convolutions (``benchmarks/bench_precision.py``).

Costs: the first call compiles (ESPNet on 2 shared cores: 41 s cold; torch caches the result
on disk, and later processes took 12-30 s); the compiled loops are split for the number of threads torch
had then; weights loaded afterwards (``load_state_dict``) drop the compiled graph, which is
compiled again. Needs a C++ compiler.

>>> import espdsl
>>> from espdsl.passes import Program
>>> inductor(Program(espdsl.load("cbr", M=3, N=8))).ir.meta["backend"]
'inductor'
"""
from __future__ import annotations

import copy
from typing import Any

from ..errors import UsageError, did_you_mean

EAGER, INDUCTOR = "eager", "inductor"
BACKENDS = (EAGER, INDUCTOR)


def inductor(program: Any) -> Any:
    from . import Program
    ir = copy.copy(program.ir)
    ir.meta = {**ir.meta, "backend": INDUCTOR}
    return Program(ir, program.state)


def backend_of(ir: Any) -> str:
    """How a build of ``ir`` runs: ``"eager"`` (the planned fx graph) or ``"inductor"``."""
    return ir.meta.get("backend", EAGER)


def check_backend(backend: str | None) -> str:
    """``backend`` if known (``None``: ``"eager"``); otherwise a usage error.

    >>> check_backend(None), check_backend("inductor")
    ('eager', 'inductor')
    """
    if backend is None:
        return EAGER
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}'", None,
                         did_you_mean(backend, BACKENDS))
    return backend
