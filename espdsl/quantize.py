"""int8 post-training static quantization with PyTorch's PT2E flow (``espdsl quantize``).

The flow is torch's own, from torchao (where ``torch.ao.quantization``'s PT2E code moved: torch
2.13 ships neither ``quantize_pt2e`` nor the x86 quantizer): the optimized fp32 network
(:mod:`espdsl.passes`) is captured with ``torch.export``, annotated by torchao's
``X86InductorQuantizer`` (int8 activations per tensor from histogram observers, int8 weights
per channel), calibrated on real images preprocessed by the spec's ``predict:`` section,
converted, and compiled by inductor (``freezing``), which lowers the quantized patterns to
oneDNN's int8 (VNNI) convolutions. Nothing here writes a quantizer by hand.

What is int8 and what is not (printed by ``espdsl quantize``): every convolution, dilated and
depthwise ones too, and the transposed convolutions (``deconv_to_depth_to_space`` made them
1x1 convolutions and a ``depth_to_space``) take int8 inputs and weights; sums that follow a
convolution fuse into it. PReLU, the ``affine`` ops and concatenations of values that are not
int8 stay fp32 (the quantizer has no int8 recipe for them: each is dequantized, computed in
fp32 and requantized for the next convolution, fused by inductor). The :func:`stem` (the
layers on the image itself) stays fp32 like in the bf16 build, plus any module named with
``keep_float``.

The file is an espdsl checkpoint (``torch.load(weights_only=True)``; no pickled code, no
``torch.export`` archive, which unpickles): the fp32 weights, the specs, and the quantization
recipe with every observer's calibrated statistics (tensors). Loading rebuilds the optimized
network, runs the same export and ``prepare_pt2e``, puts the statistics back into the
observers and converts: the same int8 network, without the calibration images.
"""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from .errors import Loc, UsageError, WeightsError

SCHEME = "pt2e-x86-inductor"
OBSERVER = "activation_post_process"


def _torchao() -> Any:
    try:
        from torchao.quantization.pt2e import quantize_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    except ImportError as exc:
        raise UsageError(f"int8 quantization needs torchao ({exc})", None,
                         "pip install torchao") from None
    return quantize_pt2e, xiq


def _quantizer(ir: Any, keep: Iterable[str], concat: str = "int8") -> Any:
    _, xiq = _torchao()
    q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    for name in keep:
        q.set_module_name_qconfig(name, None)
    if concat == "fp32":      # no int8 concatenations: no scale shared by their inputs
        q.set_function_type_qconfig(torch.cat, None)
    return q


def float_modules(ir: Any, keep_float: Iterable[str] = ()) -> list[str]:
    """The modules left in fp32: the stem, and every module under a ``keep_float`` prefix."""
    from .build import MODULES
    from .passes.precision import stem
    prefixes = tuple(keep_float)
    names = [n.name for n in ir.nodes() if n.op in MODULES]
    return sorted(set(stem(ir)) & set(names)
                  | {n for n in names if prefixes and (n.startswith(prefixes))})


def _prepared(fp32: Any, example: Any, keep: Sequence[str], concat: str = "int8") -> Any:
    quantize_pt2e, _ = _torchao()
    with torch.no_grad():
        captured = torch.export.export(fp32, (example,)).module()
    return quantize_pt2e.prepare_pt2e(captured, _quantizer(fp32.espdsl_ir, keep, concat))


def quantize_model(model: Any, inputs: Sequence[Any], keep_float: Iterable[str] = (),
                   compile: bool = True, validate: Sequence[Any] = (),
                   min_agreement: float | None = None,
                   concat: str = "int8") -> "QuantizedModule":
    """The int8 network of ``model`` (built by espdsl, fp32, weights loaded), calibrated on
    ``inputs`` (network inputs, already preprocessed). With ``validate`` (other network inputs)
    and ``min_agreement`` (a fraction of pixels), the convolutions that cost the class map most
    go back to fp32 until the converted network's class maps agree with fp32 on that fraction
    of the validation pixels (:mod:`espdsl.quantize_fallback`); the search is
    ``result.fallback``. ``concat="fp32"``: no concatenation in int8 (the x86 quantizer makes
    one int8 when all its inputs are, with one scale for them all)."""

    from .passes import optimize_model
    from .quantize_fallback import logits_noise, search
    if not inputs:
        raise UsageError("quantization needs calibration images", None, "give --calibrate IMAGE...")
    if "passes" in model.espdsl_ir.meta:
        raise UsageError("quantize the default build (its checkpoint rebuilds the network)", None,
                         "build it without optimize=True")
    if validate and min_agreement is None:
        raise UsageError("validation images need a target agreement", None,
                         "give --min-agreement PCT")
    fp32 = optimize_model(model.eval())
    keep = float_modules(fp32.espdsl_ir, keep_float)
    if concat not in CONCAT:
        raise UsageError(f"unknown concat precision '{concat}'", None, "int8 or fp32")
    prepared = _calibrated(fp32, inputs, keep, concat)
    report = None
    if validate:
        quantize_pt2e, _ = _torchao()
        with torch.no_grad():
            refs = [fp32(v) for v in validate]
        tried = {(): prepared}

        def real(extra: list[str]) -> float:
            key = tuple(sorted(extra))
            if key not in tried:
                tried.clear()
                tried[key] = _calibrated(fp32, inputs, sorted(set(keep) | set(extra)), concat)
            net = quantize_pt2e.convert_pt2e(copy.deepcopy(tried[key]))
            return logits_noise(net, validate, refs)[1]

        report = search(prepared, validate, refs, float(min_agreement), real)
        keep = sorted(set(keep) | set(report.kept))
        prepared = tried[tuple(sorted(report.kept))]
    stats = {k: v.detach().clone() for k, v in prepared.state_dict().items() if OBSERVER in k}
    recipe = {"scheme": SCHEME, "float": keep, "observers": stats,
              "torch": str(torch.__version__), "torchao": _version("torchao"),
              "calibration": len(inputs)}
    if concat != "int8":
        recipe["concat"] = concat
    if report is not None:
        recipe.update(validation=len(validate), min_agreement=report.target,
                      agreement=report.real)
    result = _convert(prepared, fp32, model, recipe, compile)
    result.fallback = report
    return result


CONCAT = ("int8", "fp32")


def _calibrated(fp32: Any, inputs: Sequence[Any], keep: Sequence[str],
                concat: str = "int8") -> Any:
    prepared = _prepared(fp32, inputs[0], keep, concat)
    with torch.no_grad():
        for x in inputs:
            prepared(x)
    return prepared


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def _convert(prepared: Any, fp32: Any, default: Any, recipe: dict,
             compile: bool) -> "QuantizedModule":
    quantize_pt2e, _ = _torchao()
    net = quantize_pt2e.convert_pt2e(prepared)
    return QuantizedModule(net, fp32, default, recipe, compile)


def requantize(default: Any, recipe: dict, loc: Loc | None = None,
               compile: bool = True) -> "QuantizedModule":
    """The int8 network stored as ``recipe`` (see the module doc) of ``default``, the fp32
    network built from the checkpoint."""
    from .passes import optimize_model
    fp32 = optimize_model(default.eval())
    if recipe.get("scheme") != SCHEME:
        raise WeightsError(f"unknown quantization scheme '{recipe.get('scheme')}'", loc,
                           f"this espdsl reads {SCHEME}")
    example = torch.zeros(tuple(fp32.espdsl_ir.input_shape))
    if recipe.get("concat", "int8") not in CONCAT:
        raise WeightsError(f"unknown concat precision '{recipe.get('concat')}'", loc,
                           "int8 or fp32")
    prepared = _prepared(fp32, example, list(recipe["float"]), recipe.get("concat", "int8"))
    stats = recipe["observers"]
    mine = {k for k in prepared.state_dict() if OBSERVER in k}
    if mine != set(stats):
        raise WeightsError(
            f"the quantization statistics do not fit the network ({len(set(stats) - mine)} "
            f"unknown, {len(mine - set(stats))} missing; saved with torch {recipe.get('torch')}, "
            f"torchao {recipe.get('torchao')})", loc, "quantize the network again with this "
            "version")
    prepared.load_state_dict(stats, strict=False)
    return _convert(prepared, fp32, default, recipe, compile)


class QuantizedModule(nn.Module):
    """An int8 network: the converted PT2E graph (``net``), compiled by inductor on its first
    call (``compile=False``: run as converted, torch's reference int8 arithmetic in fp32, slow
    but the same class maps). ``espdsl_ir`` is the optimized fp32 IR with
    ``meta["quantized"] = "int8"``."""

    def __init__(self, net: nn.Module, fp32: nn.Module, default: nn.Module, recipe: dict,
                 compile: bool = True):
        super().__init__()
        self.net = net
        ir = fp32.espdsl_ir
        self.espdsl_ir = copy.copy(ir)
        self.espdsl_ir.meta = {**ir.meta, "quantized": "int8"}
        self.espdsl_specs = getattr(default, "espdsl_specs", None)
        self.espdsl_recipe = recipe
        object.__setattr__(self, "_default", default)   # what a checkpoint stores; not a child
        self._compile = compile
        self._compiled: Any = None
        self._lock = threading.Lock()
        self.fallback: Any = None       # the accuracy-aware search, when quantize_model ran one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._compile:
            return self.net(x)
        with self._lock:
            if self._compiled is None:
                self._compiled = torch.compile(self.net)
        # freezing folds the int8 weights into oneDNN's packed form; it must be inductor's
        # config while compiling (``options={"freezing": True}`` fails on qconv_prepack)
        from torch._inductor import config
        with config.patch(freezing=True):
            return self._compiled(x)

    def train(self, mode: bool = True) -> "QuantizedModule":
        if mode:
            raise UsageError("an int8 network is for inference only", None,
                             "train the fp32 network")
        self.training = False         # the exported graph is in inference form already
        return self


def calibration_inputs(model: Any, images: Sequence[str | Path]) -> list[Any]:
    """The network inputs of ``images``, read and preprocessed by the spec's ``predict:``
    section; each must come out at the network's input size."""
    from .predict import check_image, config_for, preprocess, read_image
    cfg = config_for(model)
    shape = tuple(model.espdsl_ir.input_shape)
    inputs = []
    for path in images:
        check_image(path)
        x = preprocess(read_image(path), cfg)
        if tuple(x.shape) != (1, *shape[1:]):
            raise UsageError(f"{path}: preprocessed to {'x'.join(map(str, x.shape))}, the network "
                             f"takes {'x'.join(map(str, shape))}", None,
                             "add a resize step to the spec's predict: section")
        inputs.append(x)
    return inputs


def save_quantized(qmodel: Any, path: str | Path) -> None:
    """Write an int8 network as an espdsl checkpoint (all or nothing)."""
    from .files import atomic_path
    from .passes import DEFAULT
    from .weights import save_checkpoint
    with atomic_path(Path(path)) as tmp:
        save_checkpoint(qmodel._default, tmp, passes=list(DEFAULT))
        raw = torch.load(tmp, weights_only=True)
        raw["quantized"] = qmodel.espdsl_recipe
        torch.save(raw, tmp)


def report(qmodel: Any) -> list[str]:
    """What runs in int8 and what stays fp32, and why: one line per op kind of the graph."""
    ir = qmodel.espdsl_ir
    kept = set(qmodel.espdsl_recipe["float"])
    counts: dict[str, list[int]] = {}
    for node in ir.nodes():
        if node.op == "input":
            continue
        entry = counts.setdefault(node.op, [0, 0])
        entry[node.name in kept or node.op not in INT8] += 1
    dq = [n for n in qmodel.net.graph.nodes
          if n.op == "call_function" and n.target == torch.ops.aten.conv2d.default
          and any(getattr(a, "target", None) is not None and "dequantize" in str(a.target)
                  for a in n.args[:2])]
    lines = [f"int8 convolutions in the converted graph: {len(dq)} of "
             f"{sum(1 for n in ir.nodes() if n.op == 'conv')}"]
    def from_int8(a: Any) -> bool:
        return "dequantize" in str(getattr(a, "target", ""))

    cats = [n for n in qmodel.net.graph.nodes if n.target == torch.ops.aten.cat.default]
    if "concat" in counts and cats:       # the graph decides: concatenations of int8 values
        q = sum(1 for n in cats if all(from_int8(a) for a in n.args[0]))
        counts["concat"] = [min(q, sum(counts["concat"])), max(sum(counts["concat"]) - q, 0)]
    for op, (q, f) in sorted(counts.items()):
        why = WHY.get(op, "no int8 recipe in the x86 quantizer")
        if op == "concat" and qmodel.espdsl_recipe.get("concat") == "fp32":
            why = "fp32: --float-concat (no scale shared by a concatenation's inputs)"
        elif op == "concat" and q:
            why = ("int8 in, int8 out where every input is int8 (convolution outputs and their "
                   "sums; one scale shared by the inputs and the output)"
                   + ("; the others read PReLU outputs: fp32" if f else ""))
        if op in INT8:
            why = INT8[op] + (f"; {f} in the stem, --keep-float or the fallback, fp32" if f else "")
        lines.append(f"  {op:15s} {q:3d} int8, {f:3d} fp32: {why}")
    return lines


INT8 = {"conv": "int8 (oneDNN, VNNI), dilated and depthwise included; transposed convolutions "
                "became 1x1 convolutions + depth_to_space (deconv_to_depth_to_space)"}
WHY = {
    "prelu": "the x86 quantizer has no int8 PReLU (dequantized, computed, requantized "
             "for the next convolution; inductor fuses the three)",
    "affine": "a batch norm that could not be folded; no int8 recipe (fused like PReLU)",
    "add": "fp32 values; a sum right after a convolution fuses into it (conv + add)",
    "concat": "int8 only when every input is int8, and these are PReLU or sum outputs",
    "depth_to_space": "data movement after the int8 1x1 convolution",
}
