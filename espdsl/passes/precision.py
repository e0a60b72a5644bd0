"""``bf16`` and ``fp16``: run the graph in a 16-bit float type (``ir.meta["precision"]``).

What: every value but the input and the network output is computed and stored in the 16-bit
type: convolutions (oneDNN's bf16 kernels accumulate in fp32 and round the result), PReLU,
affines, sums, concatenations and the memory plan's workspace, which then takes half the bytes.
The caller's input stays fp32 and is converted once, where it enters (with the layout change);
the output is written as fp32 (``out_dtype``): an op that copies into its output
(``depth_to_space``, a concatenation) writes fp32 directly, anything else is converted at the
end. Nodes named in ``precision["float32"]`` compute in fp32, their inputs converted.

Why: on a CPU with AVX-512 BF16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``) the bf16
convolutions take about half the time of fp32 ones and every element-wise op moves half the
bytes. Without those instructions oneDNN emulates bf16 and is slower than fp32:
:func:`bf16_supported` tells, and ``espdsl.create_model(..., dtype="bf16")`` then builds fp32
and says so. ``fp16`` is for CUDA (CPUs have no fast fp16 convolutions).

With weights, the weights of every 16-bit node are rounded to the type (after
``fold_batchnorm`` and ``batchnorm_to_affine``, so the folded weights are rounded once). Run it
before ``plan_memory``, which sizes the workspace in the 16-bit type.

>>> import espdsl
>>> from espdsl.passes import Program, channels_last
>>> p = to_bf16(channels_last(Program(espdsl.load("espnet_c", alpha3=1))))
>>> p.ir.meta["precision"]["dtype"], p.ir.meta["precision"]["out_dtype"]
('bfloat16', 'float32')
>>> dtype_of(p.ir, "level2_0.c1.conv"), dtype_of(p.ir, "level1.conv"), dtype_of(p.ir, "input")
('bfloat16', 'float32', 'float32')
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

FLOAT32 = "float32"
# ops computed in the 16-bit type whose parameters stay fp32 (an affine's shift rounded to bf16
# moves ESPNet's class map on 0.2% of the pixels; the batch-norm kernel reads fp32 parameters)
FP32_PARAMS = {"affine"}
FEW = 4                        # channels: a value this narrow computed from the image is image
FILTERS = {"conv", "deconv", "linear"}      # ops that end the stem
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}    # pass name -> torch dtype name
ELEMENT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def stem(ir: Any) -> list[str]:
    """The nodes that work on the image itself: the image and what only pools or filters it to
    a few channels (:data:`FEW`), the convolutions that read those, and the element-wise ops
    and concatenations after them, up to the next convolution. They stay fp32: they are cheap
    (3 input channels keep a convolution memory-bound), and the image rounded to bf16 moves
    ESPNet's class map on 0.2% of the pixels (measured: 99.45% -> 99.63% agreement).

    >>> import espdsl
    >>> stem(espdsl.load("espnet_c", alpha3=1))
    ['b1.act', 'b1.bn', 'cat1', 'level1.act', 'level1.bn', 'level1.conv', 'sample1.pool0', 'sample2.pool0', 'sample2.pool1']
    """
    image: set[str] = set()
    kept: set[str] = set()
    for node in ir.nodes():
        if node.op == "input" or (node.inputs and all(i in image for i in node.inputs)
                                  and node.shape[0] <= FEW):
            image.add(node.name)
        elif node.inputs and (all(i in image for i in node.inputs) or (
                node.op not in FILTERS and all(i in image or i in kept for i in node.inputs))):
            kept.add(node.name)
    return sorted((image | kept) - {n.name for n in ir.nodes() if n.op == "input"})


def lower_precision(program: Any, dtype: str = "bfloat16",
                    float32: Iterable[str] | None = None) -> Any:
    """The graph (and weights) in ``dtype`` (``"bfloat16"`` or ``"float16"``); the nodes in
    ``float32`` (default: the :func:`stem`) stay fp32."""
    from . import Program
    import torch

    keep = sorted(set(stem(program.ir) if float32 is None else float32))
    ir = copy.copy(program.ir)
    ir.meta = {**ir.meta, "precision": {"dtype": dtype, "float32": keep, "out_dtype": FLOAT32}}
    state = program.state
    if state is not None:
        low = getattr(torch, dtype)
        names = {n.name for n in ir.nodes()}

        def lowered(key: str) -> bool:
            node = key.rsplit(".", 1)[0]
            return (node in names and dtype_of(ir, node) == dtype
                    and ir.node(node).op not in FP32_PARAMS)

        state = {key: value.to(low) if value.is_floating_point() and lowered(key) else value
                 for key, value in state.items()}
    return Program(ir, state)


def to_bf16(program: Any) -> Any:
    return lower_precision(program, "bfloat16")


def to_fp16(program: Any) -> Any:
    return lower_precision(program, "float16")


def dtype_of(ir: Any, name: str) -> str:
    """The dtype node ``name`` computes in (``"float32"`` in a graph without the pass)."""
    prec = ir.meta.get("precision")
    if not prec or name in prec["float32"] or ir.node(name).op == "input":
        return FLOAT32
    return prec["dtype"]


def element_bytes(dtype: str) -> int:
    return ELEMENT_BYTES[dtype]


def bf16_supported() -> bool:
    """Does this CPU run bf16 convolutions natively (AVX-512 BF16 or AMX), per oneDNN?"""
    import torch
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):      # a torch without oneDNN
        return False


def fallback(dtype: str, device: str = "cpu") -> str | None:
    """One line saying why ``dtype`` does not pay on ``device`` and what runs instead (None: it
    does): bf16 on a CPU without bf16 instructions, fp16 on a CPU."""
    if not str(device).startswith("cpu"):
        return None
    if dtype == "bf16" and not bf16_supported():
        return ("note: this CPU has no bf16 instructions (AVX-512 BF16 or AMX; oneDNN would "
                "emulate them, slower than fp32): running the fp32 optimized build instead")
    if dtype == "fp16":
        return ("note: fp16 is for CUDA (CPU convolutions have no fast fp16 kernels): running the "
                "fp32 optimized build instead")
    return None
