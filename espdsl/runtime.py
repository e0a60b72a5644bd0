"""What built modules call at run time: torch functions for the ops that are not one torch call,
the modules of stateful ops torch lacks, and the machinery of a planned (optimized) build.

* :func:`channel_shuffle`, :func:`depth_to_space` (with ``out=``), :func:`pointwise_conv`
  (a 1x1 convolution as one matrix product, with ``out=``);
* :class:`Affine`: the module of the ``affine`` op (an inference batch norm);
* :class:`OutputPool`: recycled output tensors, handed out only when nobody else holds them;
* :class:`PlannedModule`: an optimized model; it runs the planned graph (every buffer
  preallocated by the memory plan) when it can, and the plain graph of the same IR otherwise.

>>> import torch
>>> x = torch.arange(8.).view(1, 8, 1, 1)           # 2 channels, factor 2: (i, j, c) order
>>> depth_to_space(x, 2)[0].tolist()
[[[0.0, 2.0], [4.0, 6.0]], [[1.0, 3.0], [5.0, 7.0]]]
"""
from __future__ import annotations

import math
import sys
import threading
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

CHANNELS_LAST = "channels_last"


def memory_format(layout: str | None) -> torch.memory_format:
    """The torch memory format of an IR layout (``None``: contiguous NCHW)."""
    return torch.channels_last if layout == CHANNELS_LAST else torch.contiguous_format


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (N, g*c, H, W) -> transpose the (g, c) channel grid."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def depth_to_space(x: torch.Tensor, factor: int, out: torch.Tensor | None = None,
                   channels_last: bool = False) -> torch.Tensor:
    """ONNX DepthToSpace, DCR order: input channel ``(i * s + j) * C + c`` goes to output pixel
    ``(h * s + i, w * s + j)`` of channel ``c``. Writes into ``out`` when given (any layout);
    otherwise the result is contiguous in ``channels_last`` layout or in NCHW. Plain tensor
    ops without data-dependent branches, so torch.fx and torch.jit can trace it."""
    s = factor
    if out is not None:
        src = x.unflatten(1, (s, s, -1)).permute(0, 3, 4, 1, 5, 2)     # n, c, h, i, w, j
        out.unflatten(3, (-1, s)).unflatten(2, (-1, s)).copy_(src)
        return out
    if channels_last:       # n, h, w, (i, j, c) -> n, h, i, w, j, c: runs of c values move
        nhwc = x.permute(0, 2, 3, 1).unflatten(3, (s, s, -1)).permute(0, 1, 3, 2, 4, 5)
        return nhwc.flatten(3, 4).flatten(1, 2).permute(0, 3, 1, 2)
    return x.unflatten(1, (s, s, -1)).permute(0, 3, 4, 1, 5, 2).flatten(4, 5).flatten(2, 3)


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   out: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution (stride 1, no groups) as one matrix product written into ``out``:
    (N*H*W, Cin) @ (Cin, Cout) in channels-last layout, (Cout, Cin) @ (Cin, H*W) in NCHW.

    >>> cl = torch.channels_last
    >>> x, w = torch.randn(2, 3, 4, 5).contiguous(memory_format=cl), torch.randn(6, 3, 1, 1)
    >>> out = torch.empty(2, 6, 4, 5).contiguous(memory_format=cl)
    >>> torch.allclose(pointwise_conv(x, w, None, out), torch.conv2d(x, w), atol=1e-5)
    True
    >>> out = torch.empty(2, 6, 4, 5)
    >>> torch.allclose(pointwise_conv(x.contiguous(), w, None, out), torch.conv2d(x, w), atol=1e-5)
    True
    """
    n, cin, h, w = x.shape
    w2 = weight.view(weight.shape[0], cin)
    if not out.is_contiguous(memory_format=torch.channels_last) or out.is_contiguous():
        for b in range(n):                      # NCHW: (Cout, Cin) @ (Cin, H*W) per sample
            cols, dest = x[b].reshape(cin, h * w), out[b].view(out.shape[1], h * w)
            if bias is None:
                torch.mm(w2, cols, out=dest)
            else:
                torch.addmm(bias.view(-1, 1), w2, cols, out=dest)
        return out
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, cin)
    dest = out.permute(0, 2, 3, 1).view(n * h * w, out.shape[1])
    if bias is None:
        torch.mm(rows, w2.t(), out=dest)
    else:
        torch.addmm(bias, rows, w2.t(), out=dest)
    return out


def pointwise_to_space(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       factor: int, out: torch.Tensor, block_bytes: int = 2 ** 20) -> torch.Tensor:
    """A 1x1 convolution to ``s * s * C`` channels (DCR order) and ``depth_to_space(s)`` in one:
    the matrix product runs over a few rows of pixels at a time, into a scratch block that stays
    in cache, and each block is copied straight to its place in ``out`` (any layout, a channel
    slice too): the ``s * s * C`` channel intermediate never goes to memory.

    >>> cl = torch.channels_last
    >>> x, w = torch.randn(1, 3, 4, 6).contiguous(memory_format=cl), torch.randn(8, 3, 1, 1)
    >>> out = torch.empty(1, 2, 8, 12).contiguous(memory_format=cl)
    >>> ref = depth_to_space(torch.conv2d(x, w), 2)
    >>> torch.allclose(pointwise_to_space(x, w, None, 2, out, block_bytes=64), ref, atol=1e-5)
    True
    """
    n, cin, h, w = x.shape
    s, c = factor, out.shape[1]
    rows_x = x.permute(0, 2, 3, 1).reshape(n, h * w, cin)
    wt = weight.view(weight.shape[0], cin).t()
    dst = out.permute(0, 2, 3, 1).unflatten(2, (w, s)).unflatten(1, (h, s))  # n, h, i, w, j, c
    rows = max(1, min(h, block_bytes // (w * s * s * c * x.element_size())))
    # the product in the input's dtype; the copy converts when ``out`` has another (fp32 logits)
    scratch = torch.empty(rows * w, s * s * c, dtype=x.dtype, device=out.device)
    for b in range(n):
        for top in range(0, h, rows):
            take = min(rows, h - top)
            block = scratch[:take * w]
            part = rows_x[b, top * w:(top + take) * w]
            if bias is None:
                torch.mm(part, wt, out=block)
            else:
                torch.addmm(bias, part, wt, out=block)
            dst[b, top:top + take].copy_(block.view(take, w, s, s, c).permute(0, 2, 1, 3, 4))
    return out


def concat_into(out: torch.Tensor, pieces: list[torch.Tensor], starts: list[int]) -> torch.Tensor:
    """Copy ``pieces`` into their channels of ``out``, a concatenation whose other inputs were
    written there in place by their own ops.

    >>> out = torch.zeros(1, 3, 1, 1)
    >>> concat_into(out, [torch.ones(1, 2, 1, 1)], [1]).flatten().tolist()
    [0.0, 1.0, 1.0]
    """
    for piece, start in zip(pieces, starts):
        out[:, start:start + piece.shape[1]].copy_(piece)
    return out


def prelu_into(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """PReLU written into ``out`` (torch's PReLU has no ``out=``): ``x + (a - 1) min(x, 0)``,
    two passes, the second in place.

    >>> x, a = torch.tensor([[[[-2.0]], [[3.0]]]]), torch.tensor([0.25, 0.5])
    >>> prelu_into(x, a, torch.empty(1, 2, 1, 1)).flatten().tolist()
    [-0.5, 3.0]
    """
    torch.clamp(x, max=0, out=out)
    return torch.addcmul(x, out, (weight - 1).view(1, -1, 1, 1), out=out)


def prelu_channels_last(x: torch.Tensor, weight: torch.Tensor,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """PReLU of a channels-last tensor as a 2-d PReLU over rows of ``k * C`` values (``weight``
    repeated ``k`` times, ``k * C`` a multiple of 64): torch's bf16 PReLU vectorises over the
    channels, and with ESPNet's 20 or 25 channels it runs scalar (one thread, bf16
    1x20x256x512: 48 ms; this way 0.6 ms, as fp32). Same values; written into ``out`` when given.

    >>> x = torch.randn(1, 20, 4, 8).contiguous(memory_format=torch.channels_last).bfloat16()
    >>> w = torch.rand(20).bfloat16()
    >>> torch.equal(prelu_channels_last(x, w), torch.prelu(x, w))
    True
    """
    n, c, h, w = x.shape
    k = 64 // math.gcd(c, 64)
    if torch.compiler.is_compiling():     # inductor writes its own vectorised loop for PReLU
        y = torch.prelu(x, weight)
    elif (weight.numel() == c and x.is_contiguous(memory_format=torch.channels_last)
            and (n * h * w) % k == 0):
        rows = x.permute(0, 2, 3, 1).reshape(-1, k * c)
        y = torch.prelu(rows, weight.repeat(k)).view(n, h, w, c).permute(0, 3, 1, 2)
    else:
        y = torch.prelu(x, weight)
    return y if out is None else out.copy_(y)


class Affine(nn.Module):
    """``x * weight + bias`` per channel: a batch norm in inference form (``affine`` op).

    With ``mixed`` (set by a bf16 build, which keeps an affine's parameters in fp32: rounding
    the shift to bf16 moves the class map) it runs as torch's batch norm with mean 0 and
    variance 1, which computes in fp32 and writes the input's 16-bit dtype (one pass;
    ``addcmul`` of mixed dtypes is 50x slower).

    >>> m = Affine(2)
    >>> _ = m.weight.data.fill_(2.0), m.bias.data.fill_(1.0)
    >>> m(torch.ones(1, 2, 1, 1)).flatten().tolist()
    [3.0, 3.0]
    >>> m.mixed = True
    >>> m(torch.ones(1, 2, 1, 1, dtype=torch.bfloat16)).flatten().tolist()
    [3.0, 3.0]
    """

    mixed: bool

    def __init__(self, channels: int, mixed: bool = False):
        super().__init__()
        self.mixed = mixed
        # parameters (so they count and move like a batch norm's), frozen: inference only
        self.weight = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.register_buffer("_mean", torch.zeros(channels), persistent=False)
        self.register_buffer("_var", torch.ones(channels), persistent=False)

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if self.mixed:
            mean, var = self._mean.to(self.weight.dtype), self._var.to(self.weight.dtype)
            if out is None:
                return torch.batch_norm(x, self.weight, self.bias, mean, var, False, 0.0, 0.0,
                                        False)
            torch.ops.aten.native_batch_norm.out(
                x, self.weight, self.bias, mean, var, False, 0.0, 0.0, out=out,
                save_mean=x.new_empty(0, dtype=self.weight.dtype),
                save_invstd=x.new_empty(0, dtype=self.weight.dtype))
            return out
        shift, scale = self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1)
        if out is None:
            return torch.addcmul(shift, x, scale)
        return torch.addcmul(shift, x, scale, out=out)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, zero the input per sample (``row``) or
    for the whole batch (``batch``) with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; the identity at inference.

    >>> StochasticDepth(0.5).eval()(torch.ones(2, 1)).tolist()
    [[1.0], [1.0]]
    """

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        keep = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep.div_(1.0 - self.p)


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels of each pixel (ConvNeXt's LayerNorm2d); a
    vector is normalised as by nn.LayerNorm.

    >>> m = LayerNorm2d(2)
    >>> [round(v, 4) for v in m(torch.tensor([[[[1.0]], [[3.0]]]])).flatten().tolist()]
    [-1.0, 1.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            return super().forward(x)
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ChannelScale(nn.Module):
    """A learned scale per channel, no bias (layer scale): ``x * weight``, ``weight`` of shape
    ``[C]``.

    >>> ChannelScale(2, init=0.5)(torch.ones(1, 2, 1, 1)).flatten().tolist()
    [0.5, 0.5]
    """

    def __init__(self, channels: int, init: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.weight.view(1, -1, 1, 1) if x.ndim == 4 else self.weight)


class Workspace(nn.Module):
    """One preallocated tensor (``arena``) and every planned value as a view into it
    (attributes ``v0``, ``v1``, ...; each slot in its own layout). The views follow the arena
    when the model moves.

    Channel slices of slots (``s0``, ``s1``, ...: ``(slot, first channel, channels)``) are where
    a concatenation's inputs are written in place.

    >>> ws = Workspace(12, [(0, 4, (1, 1, 2, 2), None), (4, 8, (1, 2, 2, 2), "channels_last")],
    ...                slices=[(1, 1, 1)])
    >>> ws.v1.shape, ws.v1.is_contiguous(memory_format=torch.channels_last), ws.s0.shape
    (torch.Size([1, 2, 2, 2]), True, torch.Size([1, 1, 2, 2]))
    """

    def __init__(self, numel: int, slots: list[tuple[int, int, tuple[int, ...], str | None]],
                 device: Any = None, dtype: torch.dtype = torch.float32,
                 slices: list[tuple[int, int, int]] = ()):
        super().__init__()
        self.register_buffer("arena", torch.empty(numel, device=device, dtype=dtype),
                             persistent=False)
        self._slots, self._slices = list(slots), list(slices)
        self._make_views()

    def _make_views(self) -> None:
        views = []
        for i, (offset, numel, shape, layout) in enumerate(self._slots):
            flat = self.arena[offset:offset + numel]
            n, c, h, w = shape
            view = (flat.view(n, h, w, c).permute(0, 3, 1, 2) if layout == CHANNELS_LAST
                    else flat.view(n, c, h, w))
            object.__setattr__(self, f"v{i}", view)
            views.append(view)
        for i, (slot, start, channels) in enumerate(self._slices):
            object.__setattr__(self, f"s{i}", views[slot][:, start:start + channels])

    def _apply(self, fn: Any, recurse: bool = True) -> "Workspace":
        super()._apply(fn, recurse)
        self._make_views()
        return self


def _holders(t: torch.Tensor) -> tuple[int, int, int]:
    """References to ``t`` (the tensor object), to its storage from other tensors (views), and
    to its Python storage object: any of them grows when anyone else keeps the tensor, a view
    of it, or its storage."""
    storage = t.untyped_storage()
    return sys.getrefcount(t), torch._C._storage_Use_Count(storage._cdata), sys.getrefcount(storage)


class OutputPool(nn.Module):
    """Output tensors of one shape and layout, recycled across calls.

    A planned model writes its result into a tensor from here instead of a fresh allocation
    (a fresh 40 MB output costs ~10,000 page faults a call). A tensor is handed out again only
    when nobody else holds it, a view of it or its storage, so a caller keeping a result never
    sees it overwritten; with ``keep`` tensors all held, it allocates a fresh one.

    >>> pool = OutputPool((1, 2, 3, 3), None)
    >>> a = pool(torch.zeros(1)); b = pool(torch.zeros(1))
    >>> a is b                                  # a is still held, so b is another tensor
    False
    >>> del a; pool(torch.zeros(1)) is not b    # a's tensor is free again and comes back
    True
    """

    def __init__(self, shape: tuple[int, ...], layout: str | None, keep: int = 2):
        super().__init__()
        self.shape, self.layout, self.keep = tuple(shape), layout, keep
        self._pool: list[list[Any]] = []       # [tensor, its holders when only we hold it]

    def forward(self, like: torch.Tensor) -> torch.Tensor:
        for entry in self._pool:
            t = entry[0]
            if t.device == like.device and t.dtype == like.dtype and _holders(t) == entry[1]:
                return t
        with torch.inference_mode(False):       # a normal tensor, writable in any mode
            t = torch.empty(self.shape, dtype=like.dtype, device=like.device,
                            memory_format=memory_format(self.layout))
        if len(self._pool) < self.keep:
            entry = [t, None]
            self._pool.append(entry)
            entry[1] = _holders(t)
        return t

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        state["_pool"] = []
        return state


def compiled_of(model: Any) -> Any:
    """The inductor-compiled forward of an optimized model built with ``backend="inductor"``
    (``(x, out) -> out`` for a feature map) once a call made it, else None. (A function, not an
    attribute: a model's attributes are names its nodes may not take.)

    >>> compiled_of(torch.nn.Identity()) is None
    True
    """
    return getattr(model, "_compiled", None)


class PlannedModule(fx.GraphModule):
    """An optimized model: a ``GraphModule`` of the IR's plain graph that also holds the same
    graph with a static memory plan (``planned``: every planned value written into a
    preallocated workspace, the output into a recycled tensor).

    A call runs the planned graph when the input has the planned shape, dtype and device, no
    gradient is needed, nothing is tracing or compiling the model and no other thread is inside
    it; otherwise the plain graph (``forward``, ``graph``, ``code``), which gives the same
    result. Parameters and state_dict are the plain graph's, shared with the planned one.
    Inference only: ``train()`` raises. Make one with :func:`espdsl.build.build`.

    With ``ir.meta["backend"] == "inductor"`` (:mod:`espdsl.passes.backend`) a call that would
    run the planned graph runs the plain graph compiled by inductor instead (compiled on the
    first such call), writing into the same recycled output tensor.
    """

    def attach(self, planned: fx.GraphModule, ir: Any,
               rebuild: Callable[[Any, dict[str, torch.Tensor]], "PlannedModule"]) -> "PlannedModule":
        """Hold ``planned`` beside the plain graph; ``rebuild(ir, state)`` makes a copy (a
        module-level function of the builder, so that a pickle names it and this layer never
        imports the builder)."""
        object.__setattr__(self, "_planned", planned)   # shares our modules: not a child
        object.__setattr__(self, "_rebuild", rebuild)
        self.espdsl_ir = ir
        self._shape = tuple(ir.input_shape)
        # a reduced-precision graph takes fp32 and converts it; otherwise the workspace's dtype
        self._input_dtype = torch.float32 if ir.meta.get("precision") else None
        self._lock = threading.Lock()
        self._inductor = ir.meta.get("backend") == "inductor"
        object.__setattr__(self, "_compiled", None)
        return self

    @property
    def planned(self) -> fx.GraphModule:
        """The graph that writes into the memory plan's buffers."""
        return self._planned

    def train(self, mode: bool = True) -> "PlannedModule":
        if mode:
            from .errors import UsageError
            raise UsageError("an optimized model is for inference only (batch norms are folded, "
                             "buffers are planned)", None,
                             "train the model built without optimize=True")
        return super().train(False)

    def _can_plan(self, x: Any) -> bool:
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return False
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != self._shape or x.requires_grad:
            return False
        arena = self._planned._workspace.arena
        return arena.device == x.device and x.dtype == (self._input_dtype or arena.dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and self._can_plan(args[0]) \
                and self._lock.acquire(blocking=False):
            try:
                return self._run_compiled(args[0]) if self._inductor else self._planned(args[0])
            finally:
                self._lock.release()
        return super().__call__(*args, **kwargs)

    def _forward_into(self) -> fx.GraphModule:
        """The plain graph with a second input ``out`` that the result is copied into, as a
        module of its own: dynamo keeps compiled code per code object (at most
        ``recompile_limit`` entries each), and every GraphModule's forward is its own."""
        graph = fx.Graph()
        result = graph.graph_copy(self.graph, {})
        with graph.inserting_before(next(n for n in graph.nodes if n.op != "placeholder")):
            out = graph.placeholder("out")
        graph.output(graph.call_method("copy_", (out, result)))
        into = fx.GraphModule(nn.Module(), fx.Graph(), class_name=type(self).__name__ + "Into")
        for name, child in self.named_children():       # adopted, not copied
            into.add_module(name, child)
        into.graph = graph
        return into

    def _run_compiled(self, x: torch.Tensor) -> torch.Tensor:
        # freezing must be inductor's setting while it compiles (guards check it on each call);
        # it makes the weights constants, packed once for oneDNN, and applies only without
        # autograd (the model is inference only and this input needs no gradient)
        from torch._inductor import config
        into = len(self.espdsl_ir.output_shape) == 4     # a feature map: the recycled tensor
        if self._compiled is None:
            fn = self._forward_into() if into else self.forward
            object.__setattr__(self, "_compiled", torch.compile(fn, dynamic=False))
        with torch.no_grad(), config.patch(freezing=True):
            return self._compiled(x, self._planned._outputs(x)) if into else self._compiled(x)

    def _drop_compiled(self) -> None:
        if getattr(self, "_compiled", None) is not None:
            object.__setattr__(self, "_compiled", None)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._drop_compiled()       # the compiled graph holds the old weights as constants
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn: Any, recurse: bool = True) -> "PlannedModule":
        self._drop_compiled()       # moved or converted: compile again for the new tensors
        return super()._apply(fn, recurse)

    # a copy (deepcopy, pickle, torch.save) is the same IR built again with a copy of the state
    def __reduce__(self) -> tuple:
        return (self._rebuild, (self.espdsl_ir, self.state_dict()))

    def __deepcopy__(self, memo: dict) -> "PlannedModule":
        import copy
        return self._rebuild(self.espdsl_ir, copy.deepcopy(self.state_dict(), memo))
