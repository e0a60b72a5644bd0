"""``plan_memory``: a static buffer plan from the tensors' lifetimes (``ir.meta["memory_plan"]``).

Why: under glibc's default malloc a large tensor is a fresh ``mmap`` each time (above 32 MiB
always, smaller ones whenever the heap top was trimmed), and every first touch of a page is a
page fault. The eager ESPNet (alpha3 = 8, 1x3x512x1024) takes about 48,000 page faults a
forward (~190 MiB of fresh pages); process-wide allocator settings would hide that, but a
library must not change its host process's malloc.

What: every value whose op can write into a given buffer (``OpDef.writes_into_buffer``:
concatenation, sums, affine, average pooling, depth_to_space; PReLU and 1x1 convolutions as
matrix products when their output is at least :data:`LARGE_BYTES`) gets a slot in one
workspace. A value lives from the op that makes it to its last reader; values whose lifetimes
overlap get disjoint slots, placed greedily largest first at the lowest offset that fits
(TFLite's "greedy by size"). Inputs of a concatenation that can write into a channel slice are
written in place, into their channels of the concatenation's slot. The network output is not
in the workspace (a caller keeps it): the builder writes it into a recycled tensor that is
reused only when nobody holds it any more (:class:`espdsl.runtime.OutputPool`). What is left to
the allocator is small, or a convolution output that the PReLU after it frees at once, so the
heap stays warm: no page faults per forward (``espdsl bench`` counts them).

>>> import espdsl
>>> from espdsl.passes import Program
>>> plan = plan_memory(Program(espdsl.load("esp", M=16, N=16))).ir.meta["memory_plan"]
>>> sorted(plan["slots"]), sorted(plan["pieces"])   # the sums are written into the concat
(['cat', 'sum'], ['s16', 's4', 's8'])
>>> plan["output"]         # ESP ends in a PReLU, planned only when large: the caller's tensor
False
"""
from __future__ import annotations

import copy
from typing import Any

from ..ir import IR
from ..ops import OPS, numel, pointwise
from .layout import layout_of
from .precision import FLOAT32, dtype_of, element_bytes
from .rewrite import consumers

ALIGN = 16                          # slot offsets in elements (64 bytes of float32)
BYTES = 4
LARGE_BYTES = 8 * 2 ** 20          # see COSTLY
# ops whose out= form costs more than a fresh tensor that does not page-fault (a 1x1 convolution
# as a matrix product is slower than oneDNN below a few MB; PReLU takes two passes): planned only
# from LARGE_BYTES, where a fresh tensor would fault. Other convolutions have no out= form (with
# a zeroed destination and oneDNN's fused sum they measured slower than a fresh tensor: 221 vs
# 205 ms a forward, one thread): their outputs are freed by the PReLU that follows at once.
COSTLY = {"conv", "prelu"}
# results that may share memory with their input: views, and channel_shuffle, whose reshapes
# return a view when a group holds one channel
VIEW_OPS = {"shuffle"} | {name for name, op in OPS.items() if op.view}
WHOLE_OUT = {"conv", "concat"}      # out= forms that need a whole buffer, not a channel slice
IN_PLACE = {"add", "affine"}        # element-wise: the result may overwrite an input
# out= forms that convert while they write (a bf16 graph's output goes into an fp32 tensor)
CONVERTING = {"depth_to_space", "concat", "add", "affine", "prelu"}


def lifetimes(ir: IR) -> dict[str, tuple[int, int]]:
    """Node -> (index of the op that makes it, index of its last reader); the graph output
    and any value a view of it may stand for live to the end (``len(nodes)``)."""
    order = [n.name for n in ir.nodes()]
    index = {name: i for i, name in enumerate(order)}
    users = consumers(ir)
    end: dict[str, int] = {}
    for name in reversed(order):
        last = index[name]
        for user in users[name]:
            if user == "":
                last = len(order)
            else:
                last = max(last, index[user])
                if ir.node(user).op in VIEW_OPS:
                    last = max(last, end[user])
        end[name] = last
    return {name: (index[name], end[name]) for name in order}


def arena_dtype(ir: IR) -> str:
    """The workspace's dtype: the graph's own (``float32``, or that of :mod:`.precision`)."""
    return (ir.meta.get("precision") or {}).get("dtype", FLOAT32)


def _plannable(ir: IR, name: str, large_bytes: int) -> bool:
    node = ir.node(name)
    if node.op == "input" or not OPS[node.op].writes_into_buffer(node.attrs):
        return False
    if len(node.shape) != 3:        # vectors are small; the workspace holds feature maps
        return False
    if dtype_of(ir, name) != arena_dtype(ir):   # values kept in fp32 are left to the allocator
        return False
    if node.op in COSTLY:
        c, h, w = node.shape
        return ir.batch * c * h * w * element_bytes(arena_dtype(ir)) >= large_bytes
    return True


def place(blocks: dict[str, tuple[int, int, int]]) -> tuple[dict[str, tuple[int, int]], int]:
    """Offsets for blocks ``name -> (size, first, last)``: largest first, each at the lowest
    offset where it overlaps no placed block that is alive at the same time. Returns
    ``(name -> (offset, size), total size)``."""
    placed: list[tuple[int, int, int, int]] = []     # offset, size, first, last
    slots: dict[str, tuple[int, int]] = {}
    for name, (size, first, last) in sorted(blocks.items(), key=lambda kv: (-kv[1][0], kv[0])):
        busy = sorted((o, s) for o, s, f, l in placed if not (l < first or last < f))
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, -(-(o + s) // ALIGN) * ALIGN)
        placed.append((offset, size, first, last))
        slots[name] = (offset, size)
    total = max((o + s for o, s, _, _ in placed), default=0)
    return slots, total


def in_place_pieces(ir: IR, planned: set[str]) -> dict[str, tuple[str, int]]:
    """Concatenation inputs written straight into their channels of the concatenation's buffer
    (so the concatenation copies only the others): ``piece -> (concat, first channel)``. A
    piece goes into the first planned concatenation that reads it, if its op can write into a
    channel slice (not a convolution) and it is read there once."""
    pieces: dict[str, tuple[str, int]] = {}
    for node in ir.nodes():
        if node.op != "concat" or node.name not in planned:
            continue
        start = 0
        for src in node.inputs:
            if (src in planned and src not in pieces and ir.node(src).op not in WHOLE_OUT
                    and node.inputs.count(src) == 1
                    and layout_of(ir, src) == layout_of(ir, node.name)):
                pieces[src] = (node.name, start)
            start += ir.node(src).shape[0]
    return pieces


def streamed(ir: IR, planned: set[str]) -> dict[str, str]:
    """``depth_to_space -> the 1x1 convolution it reads``, for a convolution read by nothing
    else and a depth_to_space that writes into the plan: built as one op that never stores the
    convolution's ``s * s * C`` channels (the matrix product runs in blocks that stay in cache;
    ESPNet's last layer, one thread: 9.4 instead of 15.4 ms)."""
    users = consumers(ir)
    fused = {}
    for node in ir.nodes():
        src = ir.node(node.inputs[0]) if node.inputs else None
        if (node.op == "depth_to_space" and node.name in planned and src.op == "conv"
                and pointwise(src.attrs) and users[src.name] == [node.name]):
            fused[node.name] = src.name
    return fused


def in_place(ir: IR, has_slot: set[str], spans: dict[str, tuple[int, int]]) -> dict[str, str]:
    """``result -> input`` for element-wise ops (sums, affines) written over an input that
    dies there (same shape and layout): the memory just read is written again while it is in
    cache, instead of a third region (one thread, 8 MB: a sum 0.58 -> 0.22 ms)."""
    index = {n.name: i for i, n in enumerate(ir.nodes())}
    over: dict[str, str] = {}
    taken: set[str] = set()
    for node in ir.nodes():
        if node.op not in IN_PLACE or node.name not in has_slot:
            continue
        for src in dict.fromkeys(node.inputs):
            if (src in has_slot and src not in taken and spans[src][1] == index[node.name]
                    and ir.node(src).shape == node.shape
                    and layout_of(ir, src) == layout_of(ir, node.name)):
                over[node.name] = src
                taken.add(src)
                break
    return over


def plan_memory(program: Any, large_bytes: int | None = None, *, pieces: bool = True,
                in_place_ops: bool = True, fuse: bool = True) -> Any:
    """The plan (see the module doc); ``large_bytes`` overrides :data:`LARGE_BYTES`, and
    ``pieces``, ``in_place_ops``, ``fuse`` switch its refinements off (to measure what each
    pays: ``benchmarks/bench_passes.py``)."""
    from . import Program
    large = LARGE_BYTES if large_bytes is None else large_bytes
    ir = program.ir
    spans = lifetimes(ir)
    end = len(spans)
    planned = {n.name for n in ir.nodes()
               if spans[n.name][1] < end and _plannable(ir, n.name, large)}
    out = ir.node(ir.output)
    # the output goes into the caller's tensor (in the precision's out_dtype, when it has one)
    output = out.op not in VIEW_OPS and _plannable(ir, out.name, large) and (
        "precision" not in ir.meta or out.op in CONVERTING)
    fused = streamed(ir, planned | ({out.name} if output else set())) if fuse else {}
    planned -= set(fused.values())
    for space, conv in fused.items():            # the fused op reads the conv's input
        for src in ir.node(conv).inputs:
            first, last = spans[src]
            spans[src] = (first, max(last, spans[space][0]))
    into = in_place_pieces(ir, planned) if pieces else {}
    for piece, (concat, _) in into.items():        # the buffer lives while any piece does
        first, last = spans[concat]
        spans[concat] = (min(first, spans[piece][0]), max(last, spans[piece][1]))
    over = in_place(ir, planned - set(into), spans) if in_place_ops else {}

    def root(name: str) -> str:                    # the value whose memory ``name`` reuses
        while name in over:
            name = over[name]
        return name

    blocks: dict[str, tuple[int, int, int]] = {}
    for name in (n.name for n in ir.nodes()):
        if name in planned and name not in into:
            size, first, last = blocks.get(root(name), (ir.batch * numel(ir.node(name).shape),
                                                         *spans[name]))
            blocks[root(name)] = (size, min(first, spans[name][0]), max(last, spans[name][1]))
    slots, arena = place(blocks)
    plan = {
        "arena": arena,
        "slots": {name: list(slots[root(name)]) for name in (n.name for n in ir.nodes())
                  if name in planned and name not in into},
        "pieces": {name: list(where) for name, where in into.items()},
        "in_place": dict(over),
        "output": output,
        "fused": dict(fused),
        "planned_bytes": sum(size for size, _, _ in blocks.values())
        * element_bytes(arena_dtype(ir)),
        "dtype": arena_dtype(ir),
    }
    new = copy.copy(ir)
    new.meta = {**ir.meta, "memory_plan": plan}
    return Program(new, program.state)
