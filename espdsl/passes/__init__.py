"""Optimization passes: IR -> IR rewrites for inference, like torch.fx passes.

A pass takes a :class:`Program` (the IR and, optionally, the weights as a state_dict) and
returns a new one; passes compose in any order and each is exact on its own (the test suite
checks every pass against the default build on every zoo spec and library block). Without
weights a pass rewrites the graph only, so the optimized graph can be analysed, rendered and
exported without torch. Rewrites are ordinary IR (ops of :data:`espdsl.ops.OPS`); build
decisions (layout, memory plan) go into ``ir.meta`` for the builder.

================================ ========================================================
pass                             what it does
================================ ========================================================
``dedupe``                       drop nodes that recompute a value (same op, attributes,
                                 inputs, no state)
``fold_batchnorm``               batch norms into the convolutions that feed them, through
                                 concatenations and sums where that is exact
``batchnorm_to_affine``          every other batch norm into a per-channel ``affine``
``deconv_to_depth_to_space``     stride == kernel transposed convolutions into a 1x1
                                 convolution and ``depth_to_space``
``channels_last``                build in NHWC memory layout
``avgpool_to_conv``              in NHWC, average poolings into depthwise convolutions
``plan_memory``                  a static buffer plan from the tensors' lifetimes
``bf16``, ``fp16``               compute and store in a 16-bit float type, fp32 in and out
                                 (not in :data:`DEFAULT`: ``optimize=True, dtype="bf16"``)
``inductor``                     run the planned build compiled by torch's inductor (not in
                                 :data:`DEFAULT`: ``optimize=True, backend="inductor"``)
================================ ========================================================

:data:`DEFAULT` runs all but the precision passes, in this order (the inference pipeline of
``optimize=True``); :func:`pipeline` gives it for a dtype (the precision pass goes before
``plan_memory``) and a backend.

>>> import espdsl
>>> ir = espdsl.optimize("espnet", alpha3=1)
>>> sorted({n.op for n in ir.nodes()})
['add', 'affine', 'concat', 'conv', 'depth_to_space', 'input', 'prelu']
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ..errors import UsageError, did_you_mean
from ..ir import IR
from .affine import batchnorm_to_affine
from .backend import INDUCTOR, check_backend, inductor
from .cse import dedupe
from .deconv import deconv_to_depth_to_space
from .fold import fold_batchnorm
from .layout import channels_last
from .pool import avgpool_to_conv
from .memory import plan_memory
from .precision import DTYPES, to_bf16, to_fp16

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Program:
    """What passes transform: the IR and, when there are weights, a state_dict of tensors keyed
    like the built module's (``None``: the graph alone)."""

    ir: IR
    state: dict[str, Any] | None = None


Pass = Callable[[Program], Program]

PASSES: dict[str, Pass] = {
    "dedupe": dedupe,
    "fold_batchnorm": fold_batchnorm,
    "batchnorm_to_affine": batchnorm_to_affine,
    "deconv_to_depth_to_space": deconv_to_depth_to_space,
    "channels_last": channels_last,
    "avgpool_to_conv": avgpool_to_conv,
    "plan_memory": plan_memory,
    "bf16": to_bf16,
    "fp16": to_fp16,
    INDUCTOR: inductor,
}
DEFAULT: tuple[str, ...] = tuple(p for p in PASSES if p not in DTYPES and p != INDUCTOR)


def pipeline(dtype: str | None = None, backend: str | None = None) -> tuple[str, ...]:
    """The passes of ``optimize=True`` for ``dtype`` (``None``/``"fp32"``, ``"bf16"``,
    ``"fp16"``) and ``backend`` (``None``/``"eager"``, ``"inductor"``).

    >>> pipeline("bf16")[-2:], pipeline("bf16", "inductor")[-3:]
    (('bf16', 'plan_memory'), ('bf16', 'plan_memory', 'inductor'))
    """
    tail = (INDUCTOR,) if check_backend(backend) == INDUCTOR else ()
    if dtype in (None, "fp32"):
        return DEFAULT + tail
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype '{dtype}' for the optimized build", None,
                         did_you_mean(dtype, [*DTYPES, "fp32"]) + " (fp32, bf16, fp16)")
    return tuple(p for p in DEFAULT if p != "plan_memory") + (dtype, "plan_memory") + tail


def get_pass(name: str | Pass) -> Pass:
    """The pass named ``name`` (a callable is its own pass); an unknown name lists the known
    ones."""
    if callable(name):
        return name
    if name not in PASSES:
        raise UsageError(f"unknown pass '{name}'", None,
                         did_you_mean(name, PASSES) + f" (passes: {', '.join(PASSES)})")
    return PASSES[name]


def run(program: Program, passes: Sequence[str | Pass] = DEFAULT) -> Program:
    """Apply ``passes`` (names, or pass functions) in order; the result's
    ``ir.meta["passes"]`` lists them."""
    fns = [get_pass(p) for p in passes]
    names = [p if isinstance(p, str) else getattr(getattr(p, "func", p), "__name__", "custom")
             for p in passes]
    for fn in fns:
        program = fn(program)
    done = list(program.ir.meta.get("passes", [])) + names
    program.ir.meta = {**program.ir.meta, "passes": done}
    return program


def optimize(spec: Any, passes: Sequence[str] = DEFAULT, *, input_size: Sequence[int] | None = None,
             blocks: Iterable[str | Path] = (), **params: Any) -> IR:
    """The optimized IR of a spec (name or path, resolved with ``params``) or of an IR: the
    graph only, no weights and no torch (for analysis, rendering, inspection).

    >>> import espdsl
    >>> ir = espdsl.optimize("cbr", M=3, N=8)
    >>> [n.op for n in ir.nodes()], ir.meta["layout"]
    (['input', 'conv', 'prelu'], 'channels_last')
    """
    if not isinstance(spec, IR):
        from ..loading import load
        spec = load(spec, input_size=input_size, blocks=blocks, **params)
    elif params or input_size is not None:
        raise UsageError("an IR is already resolved: input_size and parameters do not apply",
                         None, "pass the spec name or path instead")
    return run(Program(spec), passes).ir


def optimize_model(model: "nn.Module", passes: Sequence[str] = DEFAULT) -> "nn.Module":
    """An inference-only model equivalent to ``model`` (built by espdsl, weights loaded): the
    passes rewrite its IR and weights, and the result is built from them, parameters frozen."""
    import torch

    from ..build import build
    ir = getattr(model, "espdsl_ir", None)
    if ir is None:
        raise UsageError("the model was not built by espdsl (it has no espdsl_ir)", None,
                         "build it with espdsl.create_model")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    device = next((t.device for t in state.values()), None)
    program = run(Program(ir, state), passes)
    with torch.no_grad():
        fast = build(program.ir, device=device)
        fast.load_state_dict(program.state, strict=True)
    fast.requires_grad_(False)
    fast.eval()
    if hasattr(model, "espdsl_specs"):
        fast.espdsl_specs = model.espdsl_specs
    return fast
