"""Issue 17's two times, each command in a fresh process, interleaved over repeats (medians):

* ``espdsl analyze espnet --check``: the cross-checks at the reduced input (1x3x64x128, where
  ESPNet resolves to the same ops and attributes), against ``--check-at full`` (1x3x512x1024);
* ``espdsl compile espnet -o net.ts``: the TorchScript export as it is (the trace not re-run to
  check it), against the same with ``torch.jit.trace``'s default ``check_trace=True``.

Wall time and the CPU time of the child (user + system) are printed, with the machine's load
average before and after: on a shared machine the wall time grows with the load, the CPU time
much less.

    python benchmarks/bench_check_export.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECKED_TRACE = (
    "import sys, torch\n"
    "_trace = torch.jit.trace\n"
    "torch.jit.trace = lambda *a, **k: _trace(*a, **{**k, 'check_trace': True})\n"
    "from espdsl.cli import main\n"
    "sys.argv = ['espdsl', 'compile', 'espnet', '-o', sys.argv[1]]\n"
    "main()\n")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and child CPU seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = [sys.executable]
    out = Path(tempfile.mkdtemp()) / "net.ts"
    cases = {
        "analyze espnet --check (reduced input)": py + ["-m", "espdsl", "analyze", "espnet", "--check"],
        "analyze espnet --check --check-at full": py + ["-m", "espdsl", "analyze", "espnet", "--check",
                                                        "--check-at", "full"],
        "compile espnet -o net.ts": py + ["-m", "espdsl", "compile", "espnet", "-o", str(out)],
        "compile espnet -o net.ts, check_trace=True": py + ["-c", CHECKED_TRACE, str(out)],
    }
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; {args.repeat} interleaved rounds")
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, cmd in cases.items():
            times[name].append(timed(cmd))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':<46} {'wall s':>8} {'CPU s':>8}")
    for name, rows in times.items():
        print(f"{name:<46} {statistics.median(w for w, _ in rows):8.2f} "
              f"{statistics.median(c for _, c in rows):8.2f}")
    for a, b in (("analyze espnet --check (reduced input)", "analyze espnet --check --check-at full"),
                 ("compile espnet -o net.ts", "compile espnet -o net.ts, check_trace=True")):
        ratio = statistics.median(w for w, _ in times[a]) / statistics.median(w for w, _ in times[b])
        print(f"{a}: {ratio:.2f}x the wall time of '{b}'")


if __name__ == "__main__":
    main()
