"""Time ``espdsl.analyze`` against fvcore's ``FlopCountAnalysis`` on the built ESPNet at
1024x512, in one run, and check both count the same convolution MACs.

    /work/venv/bin/python benchmarks/bench_analyze.py [--repeat 5]

fvcore traces and runs the model; espdsl reads the IR. The goal (issue 4) is at least 30x.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import espdsl
from espdsl.analysis.check import fvcore_conv_macs
from espdsl.build import build

SIZE = (1, 3, 512, 1024)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def full(analysis):
    """Read everything ``espdsl analyze`` prints, so lazily computed figures are included."""
    for _, _, stats in analysis.rows(1):
        stats.memory.peak, stats.rf_own
    analysis.totals.memory.peak
    return analysis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median is shown)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    ir = espdsl.load("espnet", input_size=SIZE)
    model = build(ir).eval()
    x = torch.zeros(SIZE)

    t_ir, analysis = timed(lambda: full(espdsl.analyze(ir)), max(args.repeat, 5))
    t_spec, _ = timed(lambda: full(espdsl.analyze("espnet", input_size=SIZE)), max(args.repeat, 5))
    t_fv, fv = timed(lambda: fvcore_conv_macs(model, x), args.repeat)

    ours = analysis.totals.macs
    print(f"ESPNet {'x'.join(map(str, SIZE))}, {analysis.totals.params:,} parameters")
    print(f"espdsl.analyze(ir)            {t_ir * 1e3:9.1f} ms   conv MACs {ours:,}")
    print(f"espdsl.analyze('espnet') spec {t_spec * 1e3:9.1f} ms   (resolving the YAML included)")
    print(f"fvcore FlopCountAnalysis      {t_fv * 1e3:9.1f} ms   conv MACs {fv:,}")
    print(f"speed-up: {t_fv / t_ir:.0f}x on the IR, {t_fv / t_spec:.0f}x from the spec (goal >= 30x)")
    print(f"conv MACs identical: {ours == fv}")


if __name__ == "__main__":
    main()
