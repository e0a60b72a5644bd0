"""The figures of one study row: from the IR (no torch) and from the built module (its size).

* ``params``: trainable parameters; ``macs``: convolution and transposed-convolution MACs at the
  row's input; ``peak_bytes`` / ``peak_mb``: peak activation memory (live tensors, MB = 2^20);
  ``conv_out_mb``: Fig. 3g's memory convention; ``rf``, ``stride``: receptive field and stride of
  the output; all from :func:`espdsl.analyze`.
* ``size_bytes`` / ``size_mb``: the **network size** as the paper measures it: the bytes of the
  checkpoint file of the model's weights, as PyTorch of 2018 wrote it (``torch.save`` of the
  state_dict in the legacy, non-zip format; parameters and batch-norm running statistics, no
  ``num_batches_tracked``, which PyTorch 0.3 did not have), in MB of 1,024,000 bytes (1000 KB
  of 1024 bytes). Cut to the paper's digits this reproduces all six sizes of Table 2g and the
  authors' own checkpoint files (see docs/studies.md).
* ``params_mb``: the plain storage of the parameters, 4 bytes each, MB = 10^6 bytes.

>>> import espdsl
>>> from espdsl.analysis import analyze_ir
>>> ir = espdsl.load("espnet_c", alpha3=3)
>>> f = figures(ir, analyze_ir(ir), [])
>>> f["params"], f["rf"]
(187529, 1423)
>>> checkpoint_bytes(espdsl.build_ir(ir)), size_mb(773566)
(773566, 0.755435546875)
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Sequence

from ..analysis.walk import MB, Analysis
from ..ir import IR
from .spec import Quantity

#: The paper's megabyte for network sizes: 1000 KB of 1024 bytes.
SIZE_MB = 1_024_000
#: A timer for ``--bench``: (IR, built module) -> milliseconds per frame.
Timer = Callable[[IR, Any], float]


def size_mb(nbytes: int) -> float:
    """Bytes in the paper's network-size MB (1,024,000 bytes)."""
    return nbytes / SIZE_MB


def checkpoint_bytes(model: Any) -> int:
    """Bytes of the model's weights saved as the authors' 2018 PyTorch saved them.

    The state_dict without ``num_batches_tracked`` and without ``_metadata``, written by
    ``torch.save`` in the legacy (pre-1.6) format into memory; nothing touches the disk.
    """
    import io

    import torch

    state = OrderedDict((k, v) for k, v in model.state_dict().items()
                        if not k.endswith("num_batches_tracked"))
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    return buffer.tell()


def figures(ir: IR, analysis: Analysis, quantities: Sequence[Quantity]) -> dict[str, Any]:
    """Every figure of a row that the IR gives (all but the size), plus the study's quantities."""
    t = analysis.totals
    out: dict[str, Any] = {
        "params": t.params, "macs": t.macs, "peak_bytes": t.memory.peak,
        "peak_mb": t.memory.peak / MB, "conv_out_mb": t.memory.fig3g_mb, "rf": t.rf,
        "stride": t.stride, "params_mb": t.params * 4 / 10 ** 6,
    }
    for q in quantities:
        out[q.name] = quantity(analysis, q)
    return out


def quantity(analysis: Analysis, q: Quantity) -> Any:
    """``q.of`` over ``q.scopes`` (summed for params, MACs and Fig. 3g memory); None when the
    network has no such scope (e.g. ``level3.0`` with alpha3 = 0)."""
    if any(s not in analysis.scopes and s not in analysis.nodes for s in q.scopes):
        return None
    stats = [analysis.scope(s) for s in q.scopes]
    if q.of in ("params", "macs"):
        return sum(getattr(s, q.of) for s in stats)
    if q.of == "conv_out_mb":
        return sum(s.memory.fig3g_mb for s in stats)
    if q.of == "peak_mb":
        return max(s.memory.peak for s in stats) / MB
    return max(getattr(s, q.of) for s in stats)  # rf, rf_own, stride: the widest


def built_figures(model: Any, timer: Timer | None = None, ir: IR | None = None) -> dict[str, Any]:
    """The figures that need the built module: its size, and its latency with ``timer``."""
    nbytes = checkpoint_bytes(model)
    out: dict[str, Any] = {"size_bytes": nbytes, "size_mb": size_mb(nbytes)}
    if timer is not None:
        ms = timer(ir, model)
        out["latency_ms"], out["fps"] = ms, 1000.0 / ms
    return out


def bench_latency_ms(ir: IR, model: Any, runs: int = 200, warmup: int = 10) -> float:
    """Milliseconds per frame of ``model`` on this machine with the paper's protocol (the row's
    input, the mean of 200 runs after 10 warm-up runs), timed by :func:`espdsl.bench.bench` on
    the optimized inference build: what ``espdsl zoo --bench`` puts in its latency column.

    >>> import espdsl
    >>> ir = espdsl.load("cbr", M=3, N=8, input_size=(1, 3, 32, 32))
    >>> bench_latency_ms(ir, espdsl.build_ir(ir), runs=3, warmup=1) > 0
    True
    """
    from ..bench import bench
    return bench(model, runs=runs, warmup=warmup, matmul=False).mean_ms
