"""``channels_last``: build the graph in NHWC memory layout (``ir.meta["layout"]``).

oneDNN's convolutions read and write NHWC directly; in NCHW they reorder to a blocked layout
and back around every call. Measured on ESPNet (alpha3 = 8, 1x3x512x1024, torch 2.13 CPU):
the eager model in channels-last runs in 0.49x the time of the same model in NCHW. The
builder converts the parameters once and the values where they enter the NHWC part; every op
keeps the layout, and the output comes back in channels-last layout (as torch's own
channels-last models return it: same shape and values, other strides).

Values with at most :data:`FEW` channels that no convolution made (the image, and poolings of
it: ESPNet's input reinforcement) stay in the caller's NCHW layout (``ir.meta["nchw"]``): with
3 floats a pixel NHWC vectorises poorly (a 3x3 stride-2 average pooling of the 3x512x1024 image,
one thread: 3.7 ms in NCHW, 5.9 ms in NHWC plus 1.2 ms to convert the image). The pass after
this one, :mod:`.pool`'s ``avgpool_to_conv``, turns such poolings into NHWC depthwise
convolutions, which are faster still, and the image goes NHWC too.

>>> import espdsl
>>> from espdsl.passes import Program
>>> ir = channels_last(Program(espdsl.load("espnet_c", alpha3=1))).ir
>>> ir.meta["layout"], ir.meta["nchw"]
('channels_last', ['input', 'sample1.pool0', 'sample2.pool0', 'sample2.pool1'])
"""
from __future__ import annotations

import copy
from typing import Any

LAYOUT = "channels_last"
FEW = 4                                          # channels
STAY = {"input", "avgpool", "maxpool", "relu", "upsample"}   # ops as good in either layout


def channels_last(program: Any) -> Any:
    from . import Program
    ir = copy.copy(program.ir)
    nchw: set[str] = set()
    for node in ir.nodes():
        if node.op in STAY and node.shape[0] <= FEW and all(i in nchw for i in node.inputs):
            nchw.add(node.name)
    ir.meta = {**ir.meta, "layout": LAYOUT, "nchw": sorted(nchw)}
    return Program(ir, program.state)


def layout_of(ir: Any, name: str) -> str | None:
    """The layout node ``name`` is built in: ``"channels_last"`` or None (NCHW)."""
    layout = ir.meta.get("layout")
    return None if layout is None or name in ir.meta.get("nchw", ()) else layout
