"""Writing a built model to a file: an espdsl checkpoint, ONNX, TorchScript or PyTorch source.

Used by ``espdsl compile -o`` and by ``espdsl zoo --emit``; written all-or-nothing.
"""
from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .files import atomic_path
from .limits import check_forward

EXPORTS = (".pt", ".onnx", ".ts", ".py")
EXPORT_HINT = "use .pt (espdsl checkpoint), .onnx, .ts (TorchScript) or .py (PyTorch source)"
TRACED = (".onnx", ".ts")   # exports that run a forward pass on an example input


def export(model, ir, path: Path, source_model=None, *, opset: int | None = None,
           dynamic: bool = True) -> None:
    """Write ``model`` (built from ``ir``) to ``path``: .pt (espdsl checkpoint), .onnx, .ts
    (TorchScript) or .py (standalone PyTorch source). An optimized model goes to .pt as
    ``source_model`` (its unoptimized original) plus the passes, which loading re-applies.

    ONNX: ``opset`` (default: the exporter's) and, with ``dynamic``, the batch, height and width
    of the input and output as named dynamic axes (``batch``, ``height``, ``width``), so one file
    runs any batch and any size the network takes."""
    import torch

    suffix = path.suffix.lower()
    if suffix not in EXPORTS:
        raise UsageError(f"unknown output type '{path.suffix}' for {path}", None, EXPORT_HINT)
    example = None
    if suffix in TRACED:  # refused before the example input is allocated
        check_forward(ir, keep_all=True)
        example = torch.zeros(ir.input_shape)
    model.eval()
    with atomic_path(path) as tmp:
        if suffix == ".pt":
            from .weights import save_checkpoint
            save_checkpoint(source_model if source_model is not None else model, tmp,
                            passes=ir.meta.get("passes") if source_model is not None else None)
        elif suffix == ".py":
            from .codegen import to_python
            tmp.write_text(to_python(ir), encoding="utf-8")
        elif suffix == ".onnx":
            axes = None
            if dynamic:
                out_rank = len(ir.output_shape) if len(ir.node(ir.output).shape) == 3 else 2
                axes = {"input": {0: "batch", 2: "height", 3: "width"},
                        "output": {0: "batch", 2: "out_height", 3: "out_width"}
                        if out_rank == 4 else {0: "batch"}}
            kwargs = {"opset_version": opset} if opset is not None else {}
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"],
                              output_names=["output"], dynamo=False, dynamic_axes=axes, **kwargs)
        else:
            # check_trace=False: the trace is not run again three times to compare (most of the
            # time of an export); tests/test_cli.py compares the saved module with the model
            torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(tmp))
