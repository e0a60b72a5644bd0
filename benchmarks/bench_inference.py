"""Inference speed of ESPNet (alpha3 = 8, the authors' Cityscapes checkpoint) at 1x3x512x1024,
five ways, in one process, interleaved round by round (A B C D E, A B C D E, ...):

* plain eager: the ``.py`` export of the default IR (``espdsl compile -o net.py``), a plain
  ``nn.Module`` like the authors' code;
* default: ``espdsl.create_model`` (the torch.fx GraphModule);
* optimized: ``create_model(..., optimize=True)`` (espdsl.passes, memory plan);
* onnxruntime: ONNX Runtime on the ``.onnx`` export of the optimized graph;
* torch.compile: ``torch.compile`` of the optimized build (its plain graph; compile time shown);
* convolutions alone: every convolution of the optimized graph on its own (same shapes, layout
  and kernels, preallocated inputs): the ceiling of any schedule built on these kernels.

Ratios are to the plain eager module, per round then the median over rounds (robust on a shared
machine) and as a ratio of medians. A 2048x2048 fp32 matmul is timed between rounds; "of matmul"
is each column's achieved GFLOP/s (2 x the analysis' MACs) over its median. Page faults are
counted per forward. Process-wide allocator settings are left at glibc's defaults.

    python benchmarks/bench_inference.py [--rounds 21] [--threads N] [--no-compile] [--no-onnx]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import espdsl
from espdsl.bench import MATMUL_N, interleave
from espdsl.codegen import to_python
from espdsl.export import export

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "espnet-reference"
WEIGHTS = REF / "weights" / "decoder" / "espnet_p_2_q_8.pth"
IMAGE = REF / "outputs" / "frankfurt_000000_000294_leftImg8bit_input.npy"
SIZE = (1, 3, 512, 1024)


def plain_module(ir, state, folder: Path) -> torch.nn.Module:
    path = folder / "espnet_plain.py"
    path.write_text(to_python(ir))
    spec = importlib.util.spec_from_file_location("espnet_plain", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Espnet().eval()
    net.load_state_dict(state, strict=True)
    return net


def convolutions_alone(fast) -> "Callable[[], None]":
    """Every convolution of the optimized graph alone, in its planned form (same shapes, layout,
    kernels; a 1x1 convolution fused with depth_to_space through the same runtime function),
    on preallocated inputs: the time no schedule around these kernels can beat, so its "of
    matmul" is the ceiling of the optimized build on this machine."""
    from espdsl.passes.layout import layout_of
    from espdsl.runtime import pointwise_to_space

    ir = fast.espdsl_ir
    fused = {conv: space for space, conv in (ir.meta.get("memory_plan") or {}).get("fused", {}).items()}
    calls = []
    for node in ir.nodes():
        if node.op not in ("conv", "deconv"):
            continue
        src = ir.node(node.inputs[0])
        fmt = torch.channels_last if layout_of(ir, src.name) else torch.contiguous_format
        x = torch.randn(ir.batch, *src.shape).contiguous(memory_format=fmt)
        a = node.attrs
        w = torch.randn(a["out"], src.shape[0] // a["groups"], *((a["kernel"],) * 2
                        if isinstance(a["kernel"], int) else a["kernel"]))
        b = torch.randn(a["out"]) if a["bias"] else None
        if node.name in fused:
            space = ir.node(fused[node.name])
            out = torch.empty(ir.batch, *space.shape).contiguous(memory_format=fmt)
            calls.append(lambda x=x, w=w, b=b, f=space.attrs["factor"], out=out:
                         pointwise_to_space(x, w, b, f, out))
        elif node.op == "conv":
            calls.append(lambda x=x, w=w.contiguous(memory_format=fmt), b=b, a=a: torch.conv2d(
                x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"]))
        else:
            calls.append(lambda x=x, w=w, b=b, a=a: torch.conv_transpose2d(
                x, w.transpose(0, 1).contiguous(), b, a["stride"], a["padding"],
                a["output_padding"], a["groups"], a["dilation"]))

    def run(_x=None) -> None:
        for call in calls:
            call()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch (and ONNX Runtime) threads; default: torch's own setting")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    weights = WEIGHTS if WEIGHTS.is_file() else None
    if weights is None:
        print(f"note: {WEIGHTS} not found: random weights (timings are the same)", file=sys.stderr)
    x = torch.from_numpy(np.load(IMAGE)) if IMAGE.is_file() else torch.randn(SIZE)

    default = espdsl.create_model("espnet", weights=weights, alpha3=8).eval()
    ir = default.espdsl_ir
    fast = espdsl.create_model("espnet", weights=weights, alpha3=8, optimize=True)
    folder = Path(tempfile.mkdtemp(prefix="espdsl-bench-"))
    plain = plain_module(ir, default.state_dict(), folder)
    columns = {"plain eager (.py)": plain, "default build": default, "optimized": fast}
    ceiling = convolutions_alone(fast)
    notes = []
    if not args.no_onnx:
        import onnxruntime as ort
        path = folder / "espnet_opt.onnx"
        export(fast, fast.espdsl_ir, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        columns["onnxruntime (optimized .onnx)"] = lambda _x: torch.from_numpy(session.run(None, feed)[0])
    if not args.no_compile:
        start = time.perf_counter()
        compiled = torch.compile(fast)
        compiled(x)
        notes.append(f"torch.compile: {time.perf_counter() - start:.1f} s to compile")
        columns["torch.compile (optimized)"] = compiled

    ref = plain(x)
    scale = ref.abs().max().item()
    for name, fn in columns.items():
        diff = (fn(x) - ref).abs().max().item()
        notes.append(f"{name}: max |logit - plain| = {diff:.2e} ({diff / scale:.1e} of max |logit|)")

    fns = [(lambda fn=fn: fn(x)) for fn in columns.values()] + [ceiling]
    names = [*columns, "convolutions alone (ceiling)"]
    t = interleave(fns, args.rounds, args.warmup, "cpu", matmul=True, progress=False)
    macs = espdsl.analyze(ir).totals.macs
    rate = statistics.median(t.matmul_gflops)
    base = t.times_ms[0]
    print(f"ESPNet alpha3=8 at {'x'.join(map(str, SIZE))}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds; "
          f"{2 * macs / 1e9:.2f} GFLOP a frame; fp32 matmul {MATMUL_N}x{MATMUL_N}: "
          f"{rate:.0f} GFLOP/s (median of {len(t.matmul_gflops)} samples)\n")
    print(f"| {'column':32s} | median ms | min ms | vs plain (per round) | vs plain (medians) "
          f"| GFLOP/s | of matmul | faults/forward |")
    print(f"|{'-' * 34}|----------:|-------:|---------------------:|-------------------:"
          f"|--------:|----------:|---------------:|")
    for name, times, faults in zip(names, t.times_ms, t.faults):
        med = statistics.median(times)
        per_round = statistics.median(a / b for a, b in zip(times, base))
        gflops = 2 * macs / (med * 1e6)
        print(f"| {name:32s} | {med:9.1f} | {min(times):6.1f} | {per_round:19.2f}x | "
              f"{med / statistics.median(base):17.2f}x | {gflops:7.1f} | {100 * gflops / rate:8.0f}% "
              f"| {faults / args.rounds:14,.0f} |")
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
