"""Time ``espdsl zoo`` as a user runs it: whole processes (Python start, imports, every row
resolved, analysed, built and sized, the folder written with specs, tables and plots).

    python benchmarks/bench_zoo.py [--repeat 3] [--emit yaml]

Interleaved (fig5, paper, fig5, paper, ...) so that the shared machine's load hits both alike;
the median and the range of each are printed. Goals (issue 8): ``espdsl zoo fig5 -o DIR`` well
under 15 s, all the paper's studies together (``espdsl zoo paper``: Fig. 5, Table 2c-g, Fig. 9)
under 60 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"fig5": 15.0, "paper": 60.0}


def once(study: str, emit: str, folder: Path) -> float:
    out = folder / study
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "espdsl", "zoo", study, "-o", str(out), "--emit", emit,
                    "--format", "json"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - start


def rows(folder: Path, study: str) -> int:
    def count(doc: dict) -> int:
        return len(doc.get("rows", [])) + sum(count(p) for p in doc.get("parts", []))
    return count(json.loads((folder / study / f"{study}.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (interleaved)")
    parser.add_argument("--emit", default="yaml", help="what to write per row (yaml,py,onnx)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {s: [] for s in GOALS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeat):
            for study in GOALS:
                times[study].append(once(study, args.emit, folder))
        counts = {s: rows(folder, s) for s in GOALS}
    for study, goal in GOALS.items():
        t = times[study]
        print(f"espdsl zoo {study:<6} -o DIR --emit {args.emit}: {counts[study]:3d} networks, "
              f"median {statistics.median(t):6.2f} s (min {min(t):.2f}, max {max(t):.2f}) "
              f"goal < {goal:.0f} s: {'ok' if statistics.median(t) < goal else 'MISSED'}")


if __name__ == "__main__":
    main()
