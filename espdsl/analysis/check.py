"""Cross-checks: the analytic figures against independent measurements on the built module.

* parameters: ``sum(p.numel())`` of the built module;
* MACs of convolutions and linear layers: fvcore's ``FlopCountAnalysis(...).by_operator()``
  "conv" (transposed convolutions included) plus "linear", and ptflops with every module but
  convolutions and linear layers ignored (ptflops adds one operation per output value for a
  bias, so it is compared with the MACs plus those additions);
* receptive field, along H and W: the gradient of the centre output pixel with respect to the
  input (of the whole output for a vector), with the weights set so no path can cancel (every
  convolution and linear weight positive, batch norm the identity, PReLU slope 1, max pooling
  measured as average pooling of the same window, eval mode); the field is the extent of the
  non-zero gradient;
* peak memory: a ``TorchDispatchMode`` that records every tensor an op returns and drops it when
  its storage's last tensor dies (weak references), plus the input the caller holds.

>>> import espdsl
>>> rows = check(espdsl.load("cbr", M=3, N=8, input_size=(16, 16)))
>>> all(r.ok for r in rows)
True
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import weakref
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..ir import IR
from ..ops import numel
from .walk import Analysis, analyze_ir

PEAK_TOLERANCE = 0.10


@dataclass
class CheckRow:
    """One analytic figure beside an independent measurement of it."""

    quantity: str
    analytic: Any
    measured: Any
    source: str
    ok: bool | None          # None: could not be measured (e.g. input smaller than the field)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fvcore_conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """fvcore's count for its "conv" (convolution and transposed convolution) and "linear"
    operators: what espdsl calls MACs."""
    from ..compat import guard_torchvision
    guard_torchvision()     # fvcore may import torchvision (see espdsl.compat)
    from fvcore.nn import FlopCountAnalysis

    flops = FlopCountAnalysis(model.eval(), x)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        counts = flops.by_operator()
    return int(counts.get("conv", 0) + counts.get("linear", 0))


def ptflops_conv_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """ptflops's MACs with every module but convolutions and linear layers ignored and
    functionals not counted; a bias adds one per output value (see :func:`bias_adds`)."""
    from ..compat import guard_torchvision
    guard_torchvision()     # ptflops imports torchvision.ops when torchvision is installed
    with _without_torchvision():
        from ptflops import get_model_complexity_info

    ignore = [nn.BatchNorm2d, nn.PReLU, nn.ReLU, nn.AvgPool2d, nn.MaxPool2d, nn.Upsample,
              nn.Dropout, nn.Dropout2d]
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink), torch.no_grad():
        macs, _ = get_model_complexity_info(
            model.eval(), tuple(input_shape[1:]), as_strings=False, print_per_layer_stat=False,
            ignore_modules=ignore, backend="pytorch",
            backend_specific_config={"count_functional": False},
            input_constructor=lambda _: {"x": torch.zeros(input_shape)})
    return int(macs)


@contextlib.contextmanager
def _without_torchvision():
    """Import ptflops without torchvision (seconds to import): ptflops only wants
    ``torchvision.ops.DeformConv2d`` from it, which espdsl never builds, and skips it on an
    ImportError. A torchvision already imported is left alone."""
    import sys
    if "torchvision" in sys.modules:
        yield
        return
    sys.modules["torchvision"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        yield
    finally:
        del sys.modules["torchvision"]


def bias_adds(ir: IR) -> int:
    """One addition per output value of every convolution or linear layer with a bias (what
    ptflops adds to its MACs), times the batch."""
    return ir.batch * sum(numel(n.shape) for n in ir.nodes()
                          if n.op in ("conv", "deconv", "linear") and n.attrs.get("bias"))


def rf_probe(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A copy of ``model`` whose paths cannot cancel (see the module doc), weights frozen.

    Weights are ``1 / fan_in``, so every layer averages and values stay near 1: the smallest
    gradient inside ESPNet-C's field is ~1e-8, far from float32's underflow."""
    probe = copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
    with torch.no_grad():
        for module in probe.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan = module.weight[0].numel()
                module.weight.fill_(1.0 / fan)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
            elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)) and module.weight is not None:
                # a normalised map sums to zero over its channels whatever the input: unequal
                # weights keep every path visible in the gradient of that sum
                module.weight.copy_(torch.linspace(0.5, 1.5, module.weight.numel()))
                module.bias.zero_()
            elif isinstance(module, nn.PReLU):
                module.weight.fill_(1.0)
    if isinstance(probe, torch.fx.GraphModule):
        # max pooling routes gradient to one pixel; bounded activations (ReLU6, the hard and
        # soft sigmoids) saturate where residual sums grow: the probe measures connectivity,
        # so they become the identity (every value is positive anyway)
        swap: dict[Any, Any] = {F.max_pool2d: F.avg_pool2d,
                                F.adaptive_max_pool2d: F.adaptive_avg_pool2d}
        swap.update({fn: _identity for fn in (F.relu6, F.hardsigmoid, F.hardswish, torch.sigmoid,
                                              F.silu, F.gelu, torch.tanh, F.softmax)})
        for node in probe.graph.nodes:
            if node.op == "call_function" and node.target in swap:
                node.target = swap[node.target]
        probe.recompile()
    return probe


def _identity(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x


Span = tuple[int, int]


def measure_rf(model: nn.Module, input_shape: tuple[int, ...], shifts: int = 1,
               dtype: torch.dtype = torch.float32) -> list[tuple[tuple[int, int], Span, Span, bool]]:
    """For output pixels ``(h + r, w + r)``, ``r < shifts``, from the centre ``(h, w)``: the first
    and last input row and column they depend on, and whether that touches the border (the
    input is then too small to see the whole field). A vector output counts as one pixel."""
    probe = rf_probe(model, dtype)
    # small inputs: one image per probed pixel, in one batch; the images do not mix (eval
    # mode), so one backward pass gives each pixel's gradient in its own image (a pass per
    # pixel costs several times more where per-op overhead dominates); large ones: a pass each
    per = shifts if input_shape[2] * input_shape[3] <= 256 * 256 else 1
    found = []
    for start in range(0, shifts, per):
        found += _rf_pass(probe, input_shape, range(start, min(shifts, start + per)), dtype)
    return found


def _rf_pass(probe: nn.Module, input_shape: tuple[int, ...], shifts: range,
             dtype: torch.dtype) -> list[tuple[tuple[int, int], Span, Span, bool]]:
    x = torch.ones((len(shifts), *input_shape[1:]), dtype=dtype, requires_grad=True)
    out = probe(x)
    if out.dim() == 2:
        out = out[:, :, None, None]
    h, w = out.shape[2] // 2, out.shape[3] // 2
    pixels = [(min(h + r, out.shape[2] - 1), min(w + r, out.shape[3] - 1)) for r in shifts]
    (grads,) = torch.autograd.grad(sum(out[i, :, oh, ow].sum() for i, (oh, ow) in enumerate(pixels)), x)
    found = []
    for r, (oh, ow) in enumerate(pixels):
        hit = grads[r].abs().sum(0) > 0
        rows = hit.any(1).nonzero().flatten().tolist()
        cols = hit.any(0).nonzero().flatten().tolist()
        if not rows:
            raise RuntimeError(f"no input pixel reaches output pixel {(oh, ow)} of the probe")
        clipped = rows[0] == 0 or rows[-1] == x.shape[2] - 1 or cols[0] == 0 or cols[-1] == x.shape[3] - 1
        found.append(((oh, ow), (rows[0], rows[-1]), (cols[0], cols[-1]), clipped))
    return found


def check_rf(model: nn.Module, ir: IR, stats) -> CheckRow:
    """Receptive field and its exact position for one output pixel per residue of the field's
    period, analytic (``stats.field``, ``stats.field_w``) against the gradient.

    A field that covers the whole input along an axis (after global pooling, or a
    squeeze-and-excitation gate) is checked as such: the gradient must reach every input pixel
    along that axis. A field that only runs past the border is not measurable (``ok`` None)."""
    from math import lcm

    from .format import axes_text
    field_h, field_w = stats.field, stats.field_w
    found = measure_rf(model, ir.input_shape, shifts=lcm(field_h.period, field_w.period))
    sizes = ir.input_shape[2:]
    clipped, whole, ok = False, False, True
    heights, widths = [], []
    for (oh, ow), rows, cols, touches in found:
        heights.append(rows[1] - rows[0] + 1)
        widths.append(cols[1] - cols[0] + 1)
        for field, o, got, n in ((field_h, oh, rows, sizes[0]), (field_w, ow, cols, sizes[1])):
            want = field.interval(o)
            if want is not None and want[0] <= 0 and want[1] >= n - 1:
                whole = True
                ok &= got == (0, n - 1)
            elif got[0] == 0 or got[1] == n - 1:
                clipped = True
            else:
                ok &= want == got
    measured = max(heights) if max(heights) == max(widths) else (max(heights), max(widths))
    if clipped:
        note = f"input too small: needs more than {axes_text(stats.rf)} px around the centre"
    elif not ok:
        note = "position of the field differs"
    elif whole:
        note = (f"the field ({axes_text(stats.rf)} px) covers the whole input: the gradient "
                f"reaches every pixel")
    else:
        note = f"positions agree for {len(found)} output pixel(s)"
    exact = whole or (max(heights) == stats.rf_exact and max(widths) == field_w.size)
    return CheckRow("receptive field", stats.rf, measured, "gradient of centre output pixels",
                    None if clipped else ok and exact, note)


class LiveTensors(TorchDispatchMode):
    """Tracks the bytes of tensors that ops return, while they live; ``peak`` is the maximum.

    Storages listed in ``exclude`` (parameters, buffers, the input) are not counted; views
    count their storage once.
    """

    def __init__(self, exclude: set[int] = frozenset()):
        super().__init__()
        self.exclude = set(exclude)
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.current -= self.sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if not size or key in self.exclude:
                continue
            if key not in self.refs:
                self.refs[key], self.sizes[key] = 0, size
                self.current += size
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)
        self.peak = max(self.peak, self.current)
        return out


def measure_peak(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Peak bytes of live activations in one inference pass, the input included."""
    x = torch.zeros(input_shape)
    exclude = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x]}
    mode = LiveTensors(exclude)
    with torch.no_grad(), mode:
        out = model.eval()(x)
    del out
    return mode.peak + x.untyped_storage().nbytes()


def check(ir: IR, analysis: Analysis | None = None, *, rf: bool = True,
          tools: bool = True) -> list[CheckRow]:
    """Build ``ir`` and set its analytic figures beside independent measurements."""
    from ..limits import check_forward

    check_forward(ir, keep_all=True)  # the gradient receptive field holds every activation
    threads = torch.get_num_threads()
    if math.prod(ir.input_shape) <= SMALL_INPUT:
        # small maps: per-op overhead dominates, and a second thread costs more than it gives
        # (measured on ESPNet at 1x3x64x128, 2 cores: 1.7 s with one thread, 11-13 s with two
        # when the other core is busy)
        torch.set_num_threads(1)
    try:
        return _check(ir, analysis, rf=rf, tools=tools)
    finally:
        torch.set_num_threads(threads)


SMALL_INPUT = 3 * 256 * 256   # values in the input below which the checks run on one thread


def _check(ir: IR, analysis: Analysis | None, *, rf: bool, tools: bool) -> list[CheckRow]:
    from ..build import build
    analysis = analysis or analyze_ir(ir)
    totals = analysis.totals
    model = build(ir).eval()
    shape = ir.input_shape
    rows = [CheckRow("params", totals.params, count_params(model), "built module",
                     totals.params == count_params(model))]
    if tools:
        x = torch.zeros(shape)
        fv = fvcore_conv_macs(model, x)
        rows.append(CheckRow("MACs", totals.macs, fv, 'fvcore by_operator() conv + linear',
                             totals.macs == fv))
        pt = ptflops_conv_macs(model, shape)
        adds = totals.macs + bias_adds(ir)
        rows.append(CheckRow("MACs + bias adds", adds, pt, "ptflops (conv, linear modules)",
                             adds == pt))
    peak = measure_peak(model, shape)
    rows.append(CheckRow("peak memory (MB)", round(totals.memory.peak_mb, 3), round(peak / 2 ** 20, 3),
                         "TorchDispatchMode live tensors",
                         abs(totals.memory.peak - peak) <= PEAK_TOLERANCE * peak,
                         f"{(totals.memory.peak - peak) / peak:+.1%}"))
    if rf:
        rows.append(check_rf(model, ir, totals))
    return rows


def truncate(ir: IR, output: str) -> IR:
    """The part of ``ir`` that computes node ``output``, made the output (to build and measure
    an inner level on its own; scopes are dropped)."""
    import dataclasses

    import networkx as nx

    keep = nx.ancestors(ir.graph, output) | {output}
    graph = nx.DiGraph()
    graph.add_nodes_from((n, d) for n, d in ir.graph.nodes(data=True) if n in keep)  # in order
    graph.add_edges_from((u, v) for u, v in ir.graph.edges if u in keep and v in keep)
    return dataclasses.replace(ir, graph=graph, output=output, scopes={})


def same_program(a: IR, b: IR) -> bool:
    """Do two IRs hold the same ops with the same attributes in the same order (so they differ
    only in the sizes of their maps)?"""
    return [(n.name, n.op, n.inputs, n.attrs, n.shape[0]) for n in a.nodes()] == \
        [(n.name, n.op, n.inputs, n.attrs, n.shape[0]) for n in b.nodes()]


def reduced_input(ir: IR, resolve_at, factors: tuple[int, ...] = (8, 4, 2)):
    """A smaller input at which the cross-checks prove the same as at ``ir``'s: the largest
    reduction (each side divided by 8, 4 or 2) at which the network resolves to the same ops
    with the same attributes (:func:`same_program`) and its smallest map keeps at least 2x2
    pixels. ``resolve_at(size)`` resolves the spec at ``(N, C, H, W)``. Returns the reduced IR,
    or None when no reduction qualifies.

    MAC, parameter and memory counts are then computed by the same handlers on the same ops;
    only the map sizes differ, and those are what the shape rules (checked by ``IR.lint`` on
    every resolve) give.

    >>> import espdsl
    >>> small = reduced_input(espdsl.load("espnet"),
    ...                       lambda size: espdsl.load("espnet", input_size=size))
    >>> small.input_shape
    (1, 3, 64, 128)
    """
    n, c, h, w = ir.input_shape
    maps = [nd.shape for nd in ir.nodes() if len(nd.shape) == 3 and nd.shape[1] > 1]
    if not maps:
        return None
    for f in factors:
        if h % f or w % f:
            continue
        if min(s[1] for s in maps) < 2 * f or min(s[2] for s in maps) < 2 * f:
            continue
        try:
            small = resolve_at((n, c, h // f, w // f))
        except Exception:  # noqa: BLE001 - a size the network cannot take: try a smaller factor
            continue
        if same_program(ir, small):
            return small
    return None
