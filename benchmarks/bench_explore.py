"""Variants analysed per second: the 2,450-network ESPNet space through ``espdsl.analyze`` (the
old path: resolve the flat IR, walk it) and through ``espdsl.totals`` (one summary per distinct
block instance), interleaved in one process, with the machine's load printed.

    /work/venv/bin/python benchmarks/bench_explore.py [--rounds 3] [--sample 150]

The space is alpha2 1..5 x alpha3 1..10 x K 2..8 x the seven modules of Fig. 5 (esp,
mobilenet, shufflenet, inception, resnext, resnet, asp) on the full ESPNet at 1024x512. Each
round times the old path on a random sample of the space (it is slow) and the new path on the
whole space twice: cold (every summary cache emptied first) and warm (caches kept, as in a
search that comes back to the same blocks). Every figure of the sample is checked equal.

It also times ``espdsl.analyze`` of one spec (cold: parsed specs kept, nothing resolved yet;
warm: the resolver's block recipes kept) beside fvcore's ``FlopCountAnalysis`` of the built
model (the issue-4 comparison in ``bench_analyze.py``).
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import time

import espdsl
from espdsl.api import _registry, open_spec
from espdsl.summaries import Snapshot, clear_caches, totals_of

MODULES = ["esp", "mobilenet", "shufflenet", "inception", "resnext", "resnet", "asp"]
SPACE = [dict(alpha2=a2, alpha3=a3, K=k, module=m)
         for a2, a3, k, m in itertools.product(range(1, 6), range(1, 11), range(2, 9), MODULES)]


def old(points: list[dict]) -> list[tuple]:
    out = []
    for p in points:
        t = espdsl.analyze("espnet", **p).totals
        out.append((t.params, t.macs, t.memory.peak, t.rf))
    return out


def new(points: list[dict], spec, reg) -> list[tuple]:
    out = []
    for p in points:
        t = totals_of(spec, p, registry=reg)
        out.append((t.params, t.macs, t.peak_bytes, t.rf))
    return out


CPU: list[float] = []     # CPU seconds of the last timed call (the machine is shared)


def timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    CPU[:] = [time.process_time() - cpu]
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=150, help="variants of the old path a round")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    rng = random.Random(0)
    old_rates, cold_rates, warm_rates = [], [], []
    cpu_rates: list[tuple[float, float, float]] = []
    for r in range(args.rounds):
        sample = rng.sample(SPACE, args.sample)
        t_old, ref = timed(lambda: old(sample))
        c_old = CPU[0]
        clear_caches()
        reg = Snapshot(_registry(()))
        spec = open_spec("espnet", reg)
        t_cold, rows = timed(lambda: new(SPACE, spec, reg))
        c_cold = CPU[0]
        t_warm, rows2 = timed(lambda: new(SPACE, spec, reg))
        c_warm = CPU[0]
        cpu_rates.append((len(sample) / c_old, len(SPACE) / c_cold, len(SPACE) / c_warm))
        index = {tuple(sorted(p.items())): row for p, row in zip(SPACE, rows)}
        same = all(index[tuple(sorted(p.items()))] == want for p, want in zip(sample, ref))
        assert same and rows == rows2, "espdsl.totals differs from espdsl.analyze"
        old_rates.append(len(sample) / t_old)
        cold_rates.append(len(SPACE) / t_cold)
        warm_rates.append(len(SPACE) / t_warm)
        print(f"round {r + 1}: analyze {old_rates[-1]:7.1f}/s   totals cold {cold_rates[-1]:7.1f}/s   "
              f"warm {warm_rates[-1]:7.1f}/s   ({len(sample)} sampled rows equal)  "
              f"load {os.getloadavg()[0]:.2f}")
        print(f"         per CPU second: analyze {cpu_rates[-1][0]:7.1f}/s   totals cold "
              f"{cpu_rates[-1][1]:7.1f}/s   warm {cpu_rates[-1][2]:7.1f}/s")
    o, c, w = (statistics.median(x) for x in (old_rates, cold_rates, warm_rates))
    print(f"median: espdsl.analyze {o:.1f} variants/s; espdsl.totals {c:.0f}/s cold ({c / o:.1f}x), "
          f"{w:.0f}/s warm ({w / o:.1f}x); goal >= 1000/s")
    co, cc, cw = (statistics.median(x[i] for x in cpu_rates) for i in range(3))
    print(f"per CPU second (what a quiet machine would give): analyze {co:.1f}/s; totals "
          f"{cc:.0f}/s cold ({cc / co:.1f}x), {cw:.0f}/s warm ({cw / co:.1f}x)")
    single()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def single() -> None:
    """``espdsl.analyze('espnet')`` cold and warm beside fvcore, interleaved."""
    import torch

    from espdsl.analysis.check import fvcore_conv_macs
    from espdsl.build import build

    size = (1, 3, 512, 1024)
    model = build(espdsl.load("espnet", input_size=size)).eval()
    x = torch.zeros(size)
    reg = _registry(())
    spec = open_spec("espnet", reg)
    cold, warm, tot, fv = [], [], [], []
    with torch.no_grad():
        for _ in range(3):
            spec.__dict__.pop("_recipes", None)
            for name in reg.names():
                reg.get(name).__dict__.pop("_recipes", None)
            cold.append(timed(lambda: espdsl.analyze("espnet", input_size=size).totals.memory.peak)[0])
            warm.append(timed(lambda: espdsl.analyze("espnet", input_size=size).totals.memory.peak)[0])
            tot.append(timed(lambda: espdsl.totals("espnet", input_size=size))[0])
            fv.append(timed(lambda: fvcore_conv_macs(model, x))[0])
    c, w, t, f = (statistics.median(v) * 1e3 for v in (cold, warm, tot, fv))
    print(f"one ESPNet 1024x512: analyze cold {c:.1f} ms, warm {w:.1f} ms, totals warm {t:.2f} ms; "
          f"fvcore {f:.0f} ms ({f / c:.0f}x cold, {f / w:.0f}x warm, {f / t:.0f}x totals)")


if __name__ == "__main__":
    main()
