"""Where int8 costs the class map its pixels, and the accuracy-aware fallback of
``espdsl quantize --validate IMAGE --min-agreement PCT``.

What OpenVINO's AccuracyAwareQuantization and ONNX Runtime's quantization debugging do, on
torchao's PT2E graph: the calibrated ``prepare_pt2e`` graph is *simulated* (each observer
replaced by torch's fake quantization at the observer's own scale and zero point: the
quantize/dequantize pair ``convert_pt2e`` puts there), and each quantization point (the int8
input of a convolution, its int8 weights, an int8 concatenation's values) is switched on alone
to measure what it costs: the noise it adds to the logits (``noise``: noise power over the fp32
logits' power; its SQNR is ``-10 log10 noise`` dB) on the validation images. A convolution is
charged with its weights and with its input, shared equally among the convolutions reading that
input. Then the convolutions are reverted to fp32 most costly first, the simulated validation
agreement measured after each, until it reaches the target; the real network (prepared again
without them, calibrated, converted) is measured on the same images, and more convolutions are
reverted while it is still below the target.

>>> fake = Noise("activation_post_process_3", ("encoder.level3.0.c1.conv",), 10 ** -3.2)
>>> round(fake.sqnr_db, 1)
32.0
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

OBSERVER = "activation_post_process"


@dataclass(frozen=True)
class Noise:
    """One quantization point (an observer of the prepared graph), the convolutions whose
    fallback to fp32 removes it (all of them must be reverted), and its measured cost."""

    observer: str
    modules: tuple[str, ...]
    noise: float

    @property
    def sqnr_db(self) -> float:
        return -10 * math.log10(self.noise) if self.noise > 0 else math.inf


@dataclass
class Fallback:
    """What the search did: the validation agreement of the all-int8 network (simulated), the
    convolutions reverted to fp32 in order with their charged noise and the simulated agreement
    after each, the real network's agreement at the end, and the target."""

    target: float
    start: float
    steps: list[tuple[str, float, float]] = field(default_factory=list)   # module, noise, agreement
    real: float = math.nan
    kept: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report ``espdsl quantize`` prints."""
        out = [f"validation: all int8 {100 * self.start:.2f}% of the pixels agree with fp32 "
               f"(simulated); target {100 * self.target:.2f}%"]
        for module, noise, agree in self.steps:
            sq = -10 * math.log10(noise) if noise > 0 else math.inf
            out.append(f"  fp32: {module:28s} int8 alone, logits SQNR {sq:5.1f} dB; "
                       f"validation then {100 * agree:.2f}% (simulated)")
        out.append(f"validation with {len(self.kept)} convolution(s) kept in fp32: "
                   f"{100 * self.real:.2f}% (the converted network)"
                   + ("" if self.real >= self.target else "; target not reached"))
        return out


class FakeQuant(torch.nn.Module):
    """An observer's quantization as torch's fake quantization (``on`` switches it)."""

    def __init__(self, observer: Any):
        super().__init__()
        scale, zero = observer.calculate_qparams()
        self.register_buffer("scale", scale.float())
        self.register_buffer("zero", zero.int())
        self.lo, self.hi = observer.quant_min, observer.quant_max
        self.axis = getattr(observer, "ch_axis", 0)
        self.per_channel = observer.qscheme in (torch.per_channel_symmetric,
                                                torch.per_channel_affine)
        self.on = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.on:
            return x
        if self.per_channel:
            return torch.fake_quantize_per_channel_affine(x, self.scale, self.zero, self.axis,
                                                          self.lo, self.hi)
        return torch.fake_quantize_per_tensor_affine(x, float(self.scale), int(self.zero),
                                                     self.lo, self.hi)


def _module(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def simulated(prepared: Any) -> tuple[Any, dict[str, FakeQuant], dict[str, tuple[str, ...]],
                                      set[str]]:
    """A copy of the calibrated ``prepared`` graph with fake quantization for observers, the
    fake quantizers by observer name, the convolutions that own each point, and the points
    that go as soon as *one* of their owners is fp32 (an int8 concatenation's shared-scale
    points: the quantizer makes a concatenation int8 only when every input comes from an int8
    convolution, so one fp32 branch makes it fp32); the others go when *all* their owners are
    fp32 (a convolution's weights; an input read by several convolutions)."""
    sim = copy.deepcopy(prepared)
    fakes: dict[str, FakeQuant] = {}
    owners: dict[str, tuple[str, ...]] = {}
    any_of: set[str] = set()

    def observer(node: Any) -> bool:
        return getattr(node, "op", None) == "call_module" and OBSERVER in str(node.target)

    for node in sim.graph.nodes:
        if not observer(node):
            continue
        name = str(node.target)
        if name not in fakes:
            fakes[name] = FakeQuant(sim.get_submodule(name))
            setattr(sim, name, fakes[name])
        users = list(node.users)
        if users and all(u.target == torch.ops.aten.conv2d.default for u in users):
            owners[name] = tuple(sorted({_module(u) for u in users}))
        else:
            owners.setdefault(name, ())
    for node in sim.graph.nodes:
        if node.target != torch.ops.aten.cat.default or not all(map(observer, node.args[0])):
            continue
        points = {str(a.target) for a in node.args[0]} | {str(u.target) for u in node.users
                                                          if observer(u)}
        convs: set[str] = set()
        todo = [a.args[0] for a in node.args[0]]
        while todo:
            src = todo.pop()
            if src.target == torch.ops.aten.conv2d.default:
                convs.add(_module(src))
            elif src.target == torch.ops.aten.add.Tensor:
                todo += [a.args[0] if observer(a) else a for a in src.args if hasattr(a, "op")]
        for name in points:
            if not owners.get(name):
                owners[name] = tuple(sorted(convs))
                any_of.add(name)
    return sim, fakes, owners, any_of


def logits_noise(model: Callable, inputs: Sequence[torch.Tensor],
                 refs: Sequence[torch.Tensor]) -> tuple[float, float]:
    """Noise power over signal power of ``model``'s logits against ``refs``, and the fraction
    of pixels whose class agrees, over all ``inputs``."""
    noise = signal = same = total = 0.0
    with torch.no_grad():
        for x, ref in zip(inputs, refs):
            out = model(x)
            noise += float((out - ref).pow(2).sum())
            signal += float(ref.pow(2).sum())
            same += float((out.argmax(1) == ref.argmax(1)).sum())
            total += ref.argmax(1).numel()
    return noise / max(signal, 1e-30), same / total


def point_costs(sim: Any, fakes: dict[str, FakeQuant], owners: dict[str, tuple[str, ...]],
                inputs: Sequence[torch.Tensor], refs: Sequence[torch.Tensor]) -> list[Noise]:
    """Each quantization point alone: the logits' noise it adds (one forward per point)."""
    for f in fakes.values():
        f.on = False
    costs = []
    for name, fake in fakes.items():
        fake.on = True
        costs.append(Noise(name, owners[name], logits_noise(sim, inputs, refs)[0]))
        fake.on = False
    for f in fakes.values():
        f.on = True
    return sorted(costs, key=lambda c: -c.noise)


def module_costs(costs: Sequence[Noise]) -> list[tuple[str, float]]:
    """Each convolution charged with its points' noise (a shared input split equally), most
    costly first."""
    charged: dict[str, float] = {}
    for c in costs:
        for m in c.modules:
            charged[m] = charged.get(m, 0.0) + c.noise / len(c.modules)
    return sorted(charged.items(), key=lambda kv: -kv[1])


def search(prepared: Any, inputs: Sequence[torch.Tensor], refs: Sequence[torch.Tensor],
           target: float, real: Callable[[list[str]], float]) -> Fallback:
    """Revert convolutions to fp32, most costly first, until the validation agreement reaches
    ``target`` (a fraction): simulated first, then ``real(kept)`` (the converted network's
    agreement with those modules in fp32) decides; the simulated order is kept."""
    sim, fakes, owners, any_of = simulated(prepared)
    start = logits_noise(sim, inputs, refs)[1]
    report = Fallback(target, start)
    if start >= target:
        report.real = real([])
        return report
    ranked = iter(module_costs(point_costs(sim, fakes, owners, inputs, refs)))
    kept: set[str] = set()

    def revert(module: str, noise: float) -> float:
        kept.add(module)
        for name, mods in owners.items():
            if mods and (set(mods) <= kept or (name in any_of and kept & set(mods))):
                fakes[name].on = False
        agree = logits_noise(sim, inputs, refs)[1]
        report.steps.append((module, noise, agree))
        report.kept.append(module)
        return agree

    for module, noise in ranked:            # simulated: revert until the target is met
        if revert(module, noise) >= target:
            break
    report.real = real(list(report.kept))
    for module, noise in ranked:            # the simulation was optimistic: one more each time
        if report.real >= target:
            break
        revert(module, noise)
        report.real = real(list(report.kept))
    return report
