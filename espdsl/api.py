"""The Python API: load a spec into the IR, build modules, list what the library holds.

>>> import espdsl
>>> model = espdsl.create_model("espnet_c", alpha3=3)
>>> sum(p.numel() for p in model.parameters())
187529
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import UsageError
from .ir import IR
from .loading import SpecRef, _is_file, _registry, load, open_spec, spec_from_dict  # noqa: F401
from .resolve import resolve
from .spec import Spec

if TYPE_CHECKING:                      # torch is imported only when a module is built
    from torch import nn

    from .summaries import Totals


def build_ir(ir: IR) -> "nn.Module":
    """Build a resolved IR into a ``torch.fx.GraphModule`` (refused, before torch is even
    imported, when its parameters pass the ``param_memory`` limit)."""
    from .limits import check_build
    check_build(ir)
    from .build import build
    return build(ir)


def create_model(spec: SpecRef, weights: str | Path | None = None, *,
                 input_size: Sequence[int] | None = None, blocks: Iterable[str | Path] = (),
                 strict: bool = True, optimize: bool | None = None, dtype: str | None = None,
                 backend: str | None = None, **params: Any) -> "nn.Module":
    """Build a model from a spec (a zoo name such as ``"espnet"`` or a path) and parameters.

    With ``weights``, load a checkpoint into it (strict by default). A path to an espdsl
    checkpoint (``.pt`` saved by ``espdsl compile ... -o net.pt``) may stand for ``spec``
    itself. With ``optimize=True`` the result is the inference build of :mod:`espdsl.passes`
    (batch norms folded, channels-last, a static memory plan; same outputs, inference only);
    a checkpoint saved from an optimized model comes back optimized unless ``optimize=False``.
    ``dtype`` (with ``optimize=True``): ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (CUDA),
    the reduced-precision build of :mod:`espdsl.passes.precision`; on a CPU without bf16
    instructions ``"bf16"`` builds fp32 and warns. ``backend="inductor"`` (with
    ``optimize=True``) runs the optimized build compiled by torch's inductor, compiled on the
    first call (:mod:`espdsl.passes.backend`); the default, ``"eager"``, runs the planned
    graph. An int8 network comes from ``espdsl quantize`` (a checkpoint:
    ``create_model("net_int8.pt")``).

    >>> import espdsl, torch
    >>> m = espdsl.create_model("espnet", alpha3=3).eval()
    >>> m(torch.zeros(1, 3, 64, 128)).shape
    torch.Size([1, 20, 64, 128])
    """
    text = str(spec)
    passes = None
    if dtype not in (None, "fp32"):
        from .passes import pipeline
        from .passes.precision import fallback
        if not optimize:
            raise UsageError(f"dtype '{dtype}' is a build of the optimized network", None,
                             "add optimize=True (--optimize)")
        if dtype == "int8":
            raise UsageError("an int8 network is calibrated on images", None,
                             "make one with 'espdsl quantize SPEC --weights W --calibrate "
                             "IMAGE... -o net_int8.pt' and load that file")
        note = fallback(dtype) if dtype == "bf16" else None   # fp16: built here, run on CUDA
        if note:
            import warnings
            warnings.warn(note, RuntimeWarning, stacklevel=2)
            dtype = "fp32"
        passes = pipeline(dtype, backend)
    elif backend is not None:
        from .passes import pipeline
        from .passes.backend import EAGER, check_backend
        if check_backend(backend) != EAGER:
            if not optimize:
                raise UsageError(f"backend '{backend}' runs the optimized network", None,
                                 "add optimize=True (--optimize)")
            passes = pipeline(None, backend)
    if not isinstance(spec, Spec) and text.endswith((".pt", ".pth")) and weights is None:
        from .weights import load_checkpoint_model
        model = load_checkpoint_model(text, optimize=optimize and passes is None, **params)
        if passes is None:
            return model
    else:
        ir = load(spec, input_size=input_size, blocks=blocks, **params)
        model = build_ir(ir)
        if weights is not None:
            from .weights import load_weights
            load_weights(model, weights, strict=strict)
    if optimize:
        from .passes import DEFAULT, optimize_model
        if "passes" in model.espdsl_ir.meta:      # a checkpoint that came back optimized
            raise UsageError("the checkpoint holds an optimized network", None,
                             "give optimize=False, or a checkpoint of the default build")
        return optimize_model(model.eval(), passes or DEFAULT)
    return model


def create_block(kind: str, *, input_size: Sequence[int] | None = None,
                 blocks: Iterable[str | Path] = (), **params: Any) -> "nn.Module":
    """Build one block of the library (or a user block) as a module.

    >>> import espdsl
    >>> m = espdsl.create_block("esp", M=100, N=100, K=5)
    >>> sum(p.numel() for n, p in m.named_parameters() if p.dim() == 4)
    20000
    """
    reg = _registry(blocks)
    spec = open_spec(kind, reg)
    if spec.kind != "block":
        raise UsageError(f"'{kind}' is a model, not a block", None, "use espdsl.create_model")
    return build_ir(resolve(spec, params, registry=reg, input_size=input_size))


def list_blocks(pattern: str = "*", blocks: Iterable[str | Path] = ()) -> list[str]:
    """Names of the library's blocks (plus any in ``blocks`` folders), filtered by a glob.

    >>> import espdsl
    >>> espdsl.list_blocks("res*")
    ['resnet', 'resnet_basic', 'resnext']
    """
    return _registry(blocks).names("block", pattern)


def list_models(pattern: str = "*", blocks: Iterable[str | Path] = ()) -> list[str]:
    """Names of the zoo's models, filtered by a glob.

    >>> import espdsl
    >>> espdsl.list_models("espnet*")
    ['espnet', 'espnet_a', 'espnet_b', 'espnet_c', 'espnetv2']
    """
    return _registry(blocks).names("model", pattern)


def totals(spec: Any, input_size: Sequence[int] | None = None, *,
           blocks: Iterable[str | Path] = (), **params: Any) -> "Totals":
    """Parameters, MACs, peak memory and receptive field of a spec (a name, a path or a
    :class:`~espdsl.spec.Spec`): ``espdsl.analyze(...).totals``, without building the IR.

    >>> import espdsl
    >>> t = espdsl.totals("espnet", alpha2=3, alpha3=5, K=6, module="mobilenet")
    >>> a = espdsl.analyze("espnet", alpha2=3, alpha3=5, K=6, module="mobilenet").totals
    >>> (t.params, t.macs, t.peak_bytes, t.rf) == (a.params, a.macs, a.memory.peak, a.rf)
    True
    """
    from .summaries import totals_of     # the upper layer calls the lower, never back
    reg = _registry(blocks)
    return totals_of(open_spec(spec, reg), params, registry=reg, input_size=input_size)
