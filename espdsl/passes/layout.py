"""``channels_last``: build the graph in NHWC memory layout (``ir.meta["layout"]``).

oneDNN's convolutions read and write NHWC directly; in NCHW they reorder to a blocked layout
and back around every call. Measured on ESPNet (alpha3 = 8, 1x3x512x1024, torch 2.13 CPU):
the eager model in channels-last runs in 0.49x the time of the same model in NCHW. The
builder converts the parameters once and the input at the start of ``forward``; every op keeps
the layout, and the output comes back in channels-last layout (as torch's own channels-last
models return it: same shape and values, other strides).

>>> import espdsl
>>> from espdsl.passes import Program
>>> channels_last(Program(espdsl.load("cbr", M=3, N=8))).ir.meta["layout"]
'channels_last'
"""
from __future__ import annotations

import copy
from typing import Any

LAYOUT = "channels_last"


def channels_last(program: Any) -> Any:
    from . import Program
    ir = copy.copy(program.ir)
    ir.meta = {**ir.meta, "layout": LAYOUT}
    return Program(ir, program.state)
