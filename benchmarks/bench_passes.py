"""What each optimization pays: ESPNet (alpha3 = 8, 1x3x512x1024) built with growing prefixes of
the pass pipeline and with each refinement of the memory plan switched off, timed interleaved
in one process (espdsl.bench.interleave), against the plain eager module (the ``.py`` export).

Wall time and process CPU time (user + system, all threads) are both shown: on a shared machine
the CPU time of a one-thread run is the steadier measure of the work a build does.

    python benchmarks/bench_passes.py [--rounds 11] [--threads 1]
"""
from __future__ import annotations

import argparse
import functools
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

import espdsl
from espdsl.passes import optimize_model
from espdsl.passes.memory import plan_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import SIZE, WEIGHTS, plain_module  # noqa: E402

GRAPH = ["dedupe", "fold_batchnorm", "batchnorm_to_affine", "deconv_to_depth_to_space"]
CL = ["channels_last", "avgpool_to_conv"]
VARIANTS = {
    "channels_last": ["channels_last"],
    "+ avgpool_to_conv": CL,
    "+ dedupe, fold_batchnorm, batchnorm_to_affine": [*GRAPH[:3], *CL],
    "+ deconv_to_depth_to_space": [*GRAPH, *CL],
    "+ plan_memory (all of it)": [*GRAPH, *CL, "plan_memory"],
    "  plan without concat pieces in place": [*GRAPH, *CL,
                                              functools.partial(plan_memory, pieces=False)],
    "  plan without sums/affines in place": [*GRAPH, *CL,
                                             functools.partial(plan_memory, in_place_ops=False)],
    "  plan without the fused 1x1 + depth_to_space": [*GRAPH, *CL,
                                                      functools.partial(plan_memory, fuse=False)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    weights = WEIGHTS if WEIGHTS.is_file() else None
    default = espdsl.create_model("espnet", weights=weights, alpha3=8).eval()
    import tempfile
    plain = plain_module(default.espdsl_ir, default.state_dict(), Path(tempfile.mkdtemp()))
    models = {"plain eager (.py)": plain, "default build": default}
    for name, passes in VARIANTS.items():
        models[name] = optimize_model(default, passes)
    x = torch.randn(SIZE)
    times: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    faults: dict[str, int] = {k: 0 for k in models}
    for _ in range(2):
        for m in models.values():
            m(x)
    for _ in range(args.rounds):                     # interleaved rounds
        for name, m in models.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, t0 = time.process_time(), time.perf_counter()
            m(x)
            times[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    base_t, base_c = statistics.median(times["plain eager (.py)"]), statistics.median(cpu["plain eager (.py)"])
    print(f"ESPNet alpha3=8 at {'x'.join(map(str, SIZE))}, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds\n")
    print(f"| {'build':48s} | wall ms | vs plain | cpu ms | vs plain | faults/forward |")
    print(f"|{'-' * 50}|--------:|---------:|-------:|---------:|---------------:|")
    for name in models:
        t, c = statistics.median(times[name]), statistics.median(cpu[name])
        print(f"| {name:48s} | {t:7.1f} | {t / base_t:7.2f}x | {c:6.1f} | {c / base_c:7.2f}x "
              f"| {faults[name] / args.rounds:14,.0f} |")


if __name__ == "__main__":
    main()
