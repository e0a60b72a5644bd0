"""Whole-process times of the commands issue 10 names, each in a fresh process, interleaved
over repeats (medians shown), and the cold analysis against fvcore:

* ``espdsl compile espnet -p alpha3=100`` and ``=1000`` (no export: nothing is built, torch is
  not imported) with t(1000)/t(100), and the same with ``-o net.pt`` (builds the module);
* ``espdsl --help``, ``validate``, ``analyze``, ``render``, ``list``, ``compare``: total time
  and whether torch was imported;
* ``espdsl.analyze("espnet")`` cold (a fresh process, modules imported, the first call: reading
  the spec files included) against fvcore's ``FlopCountAnalysis`` cold (a fresh process, model
  built, the first count); espdsl with its cache of checked spec files (espdsl.doccache) warm and
  empty, and both with and without collecting the garbage the imports left before the timer
  (otherwise a full collection over networkx's or torch's objects lands in the first call).

    python benchmarks/bench_build.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = ("import sys, time\nt0 = time.perf_counter()\nfrom espdsl.cli import main\n"
         "sys.argv = ['espdsl'] + {args!r}\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
         "print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n")

ANALYZE = ("import gc, time\nimport espdsl.api, espdsl.analysis.walk, espdsl.resolve\n"
           "from espdsl.analysis import analyze\n{collect}t = time.perf_counter()\n"
           "a = analyze('espnet', input_size=(1, 3, 512, 1024)); a.totals.memory.peak\n"
           "print(time.perf_counter() - t)\n")
FVCORE = ("import gc, time, torch, espdsl\nfrom espdsl.analysis.check import fvcore_conv_macs\n"
          "import fvcore.nn\nm = espdsl.create_model('espnet').eval()\n"
          "x = torch.zeros(1, 3, 512, 1024)\n{collect}t = time.perf_counter()\n"
          "fvcore_conv_macs(m, x)\nprint(time.perf_counter() - t)\n")
# the garbage the imports left: collected before the timer, or left to whoever allocates next
COLLECT = {"as is": "", "gc.collect() first": "gc.collect()\n"}


def whole(args: list[str]) -> tuple[float, bool]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                         text=True, cwd=ROOT)
    took = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {run.stderr[-500:]}")
    return took, "TORCH True" in run.stderr


def inner(code: str, env: dict | None = None) -> float:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=env)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-500:])
    return float(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="espdsl-build-"))
    cases = {
        "compile espnet -p alpha3=100": ["compile", "espnet", "-p", "alpha3=100"],
        "compile espnet -p alpha3=1000": ["compile", "espnet", "-p", "alpha3=1000"],
        "compile ... alpha3=100 -o net.pt": ["compile", "espnet", "-p", "alpha3=100", "-o", str(out / "a.pt")],
        "compile ... alpha3=1000 -o net.pt": ["compile", "espnet", "-p", "alpha3=1000", "-o", str(out / "b.pt")],
        "--help": ["--help"],
        "validate espnet": ["validate", "espnet"],
        "analyze espnet": ["analyze", "espnet"],
        "render espnet -o net.dot": ["render", "espnet", "-o", str(out / "n.dot")],
        "list": ["list"],
        "compare": ["compare"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    torch_seen: dict[str, bool] = {}
    for _ in range(args.repeat):          # interleaved: every case once per repeat
        for name, argv in cases.items():
            took, used = whole(argv)
            times[name].append(took)
            torch_seen[name] = used
    # espdsl's cold analysis three ways: its cache of checked spec files warm (the usual case:
    # any earlier read of the same files), that cache empty (first read ever), and both
    # sides with the imports' garbage collected before the timer
    cache = Path(tempfile.mkdtemp(prefix="espdsl-doccache-"))
    warm_env = {**os.environ, "ESPDSL_CACHE_DIR": str(cache)}
    inner(ANALYZE.format(collect=""), warm_env)                        # fills the cache
    cold: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for how, collect in COLLECT.items():
            cold.setdefault(("espdsl, spec cache warm", how), []).append(
                inner(ANALYZE.format(collect=collect), warm_env))
            empty = {**os.environ, "ESPDSL_CACHE_DIR": tempfile.mkdtemp(prefix="espdsl-doccache-")}
            cold.setdefault(("espdsl, spec cache empty", how), []).append(
                inner(ANALYZE.format(collect=collect), empty))
            cold.setdefault(("fvcore", how), []).append(inner(FVCORE.format(collect=collect)))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"whole-process times, median of {args.repeat} fresh processes (python {sys.version.split()[0]})\n")
    print(f"| {'command':42s} | median s | min s | imports torch |")
    print(f"|{'-' * 44}|---------:|------:|:-------------:|")
    for name in cases:
        print(f"| espdsl {name:35s} | {med[name]:8.2f} | {min(times[name]):5.2f} | "
              f"{'yes' if torch_seen[name] else 'no':^13} |")
    r1 = med["compile espnet -p alpha3=1000"] / med["compile espnet -p alpha3=100"]
    r2 = med["compile ... alpha3=1000 -o net.pt"] / med["compile ... alpha3=100 -o net.pt"]
    print(f"\nt(1000)/t(100): compile {r1:.2f}, compile -o net.pt {r2:.2f} "
          "(alpha3 = 100 -> 1000 is 9.5x the nodes)")
    print(f"\ncold analysis of ESPNet at 1024x512 (a fresh process, modules imported, the first "
          f"call), medians of {args.repeat}:\n")
    print("| who | imports' garbage | ms | fvcore / this |")
    print("|---|---|---:|---:|")
    for how in COLLECT:
        fv = statistics.median(cold[("fvcore", how)])
        for who in ("espdsl, spec cache warm", "espdsl, spec cache empty", "fvcore"):
            t = statistics.median(cold[(who, how)])
            print(f"| {who} | {how} | {t * 1e3:.1f} | {fv / t:.1f}x |")

if __name__ == "__main__":
    main()
