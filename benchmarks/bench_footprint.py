"""Time ``espdsl.footprint`` of the ESPNet output pixel at 512x1024 (the goal, issue 18: under
1 s), and against the autograd path count (all-ones float64 network, one-hot backward) at a
smaller size, interleaved in one run, checking both give the same counts.

    /work/venv/bin/python benchmarks/bench_footprint.py [--repeat 5]

The footprint walks the IR backwards over the receptive-field window with channels compressed;
autograd runs the whole network forward and backward over every channel.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import espdsl
from espdsl.analysis.footprint import footprint_ir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_footprint import autograd_counts  # noqa: E402  (the tests' independent reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", default="128x256", help="size for the autograd comparison")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")

    ir = espdsl.load("espnet")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fp = footprint_ir(ir)
        times.append(time.perf_counter() - start)
    c = ir.node(ir.output).shape[0]
    print(f"espnet 512x1024, output pixel {fp.at}, all {c} channels: median "
          f"{statistics.median(times):.3f} s, best {min(times):.3f} s over {args.repeat} "
          f"(goal < 1 s); support {fp.support:,} px, box {fp.box}, max count {fp.counts.max():.3e}")

    h, w = map(int, args.small.split("x"))
    small = espdsl.load("espnet", input_size=(h, w))
    fps, grads = [], []
    for _ in range(args.repeat):        # interleaved: footprint, autograd, footprint, ...
        start = time.perf_counter()
        fp = footprint_ir(small)
        fps.append(time.perf_counter() - start)
        start = time.perf_counter()
        ref = autograd_counts(small, fp.node, fp.at, 0, c)
        grads.append(time.perf_counter() - start)
    rel = float(np.max(np.abs(fp.counts - ref) / np.maximum(ref, 1e-300)))
    supports = bool(np.array_equal(fp.counts != 0, ref != 0))
    print(f"espnet {h}x{w}: footprint {statistics.median(fps):.3f} s, autograd "
          f"{statistics.median(grads):.3f} s (median of {args.repeat}, interleaved): "
          f"{statistics.median(grads) / statistics.median(fps):.1f}x; supports equal: "
          f"{supports}; largest relative difference {rel:.1e}")


if __name__ == "__main__":
    main()
