"""Timing a network with the paper's protocol: an RGB input of 1024x512 (the spec's own input
size by default), averaged over 200 timed runs (ESPNet, Sec. 4), after warm-up runs.

:func:`bench` is the one entry point (``espdsl bench`` is a thin layer over it, and other
commands may call it for a latency column)::

    bench(model, *, params=None, input_size=None, runs=200, warmup=10, threads=None,
          device="cpu", optimize=True, weights=None, blocks=(), vs=None, matmul=True,
          progress=False, seed=0, dtype="fp32", backend=None) -> BenchResult | Comparison

``model`` is a spec (zoo/block name or YAML path, resolved with ``params``), a resolved
:class:`~espdsl.ir.IR`, or a module built by espdsl. It returns a :class:`BenchResult`
(``as_dict()`` gives plain numbers): every run's time, the median, min, max and mean in ms,
frames/s (batch / median), the achieved GFLOP/s (2 x the analysis' MACs per median run), the
fraction of this machine's fp32 matmul throughput measured in the same run (a 2048x2048
matmul interleaved with the runs), and minor page faults per run (CPU). With ``vs`` (another
spec, ``"default"``: the same spec without optimization, or ``"fp32"``: its fp32 optimized
build) the two run interleaved, A B A B,
so the machine's drift hits both alike, and a :class:`Comparison` gives their ratio.
``dtype`` (``"bf16"``, ``"fp16"``) times the reduced-precision optimized build (the input
stays fp32); an int8 network is a checkpoint from ``espdsl quantize``, given as ``model``.
``backend="inductor"`` times the optimized build compiled by inductor
(:mod:`espdsl.passes.backend`; it compiles in the first warm-up run).

On CUDA the runs are timed with CUDA events and the device is synchronised around them.

>>> r = bench("cbr", params={"M": 3, "N": 8}, input_size=(1, 3, 32, 32), runs=3, warmup=1,
...           matmul=False)
>>> len(r.times_ms), r.macs == 3 * 8 * 9 * 32 * 32
(3, True)
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import UsageError

MATMUL_N = 2048
MATMUL_EVERY = 10         # one matmul sample after this many rounds


@dataclass
class BenchResult:
    """The timings of one model (see the module doc for what each figure means)."""

    name: str
    params: dict[str, Any]
    input_size: tuple[int, ...]
    device: str
    threads: int
    optimized: bool
    warmup: int
    times_ms: list[float]
    macs: int                                   # per run, from espdsl's analysis
    matmul_gflops: float | None = None          # fp32 matmul throughput in the same run
    faults_per_run: float | None = None         # minor page faults a run (CPU)
    device_name: str = ""
    dtype: str = "fp32"                         # the build's precision
    backend: str = "eager"                      # how the optimized build runs (passes.backend)

    @property
    def runs(self) -> int:
        return len(self.times_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)

    @property
    def fps(self) -> float:
        return self.input_size[0] * 1000.0 / self.median_ms

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s: 2 x MACs per median run."""
        return 2 * self.macs / (self.median_ms * 1e6)

    @property
    def matmul_fraction(self) -> float | None:
        return self.gflops / self.matmul_gflops if self.matmul_gflops else None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able figures."""
        return {
            "name": self.name, "params": dict(self.params), "input": list(self.input_size),
            "device": self.device, "device_name": self.device_name, "threads": self.threads,
            "optimized": self.optimized, "runs": self.runs, "warmup": self.warmup,
            "median_ms": self.median_ms, "mean_ms": self.mean_ms, "min_ms": self.min_ms,
            "max_ms": self.max_ms, "fps": self.fps, "macs": self.macs, "gflops": self.gflops,
            "matmul_gflops": self.matmul_gflops, "matmul_fraction": self.matmul_fraction,
            "faults_per_run": self.faults_per_run, "dtype": self.dtype, "backend": self.backend,
            "times_ms": list(self.times_ms),
        }


@dataclass
class Comparison:
    """Two models timed interleaved; ``ratio`` is A's median time over B's (below 1: A is
    faster), ``round_ratios`` the same per round."""

    a: BenchResult
    b: BenchResult
    round_ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.a.median_ms / self.b.median_ms

    @property
    def median_round_ratio(self) -> float:
        return statistics.median(self.round_ratios)

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a.as_dict(), "b": self.b.as_dict(), "ratio": self.ratio,
                "median_round_ratio": self.median_round_ratio}


# -- what is timed ------------------------------------------------------------------------------
@dataclass
class _Subject:
    name: str
    params: dict[str, Any]
    model: Any
    ir: Any
    optimized: bool
    source: Any = None       # the IR before optimization passes, when known: its MACs count
    dtype: str = "fp32"
    backend: str = "eager"

    @property
    def macs(self) -> int:
        """The network's MACs: those of the spec's own graph (a pass may express other work as
        MACs, e.g. an average pooling as a depthwise convolution), else of the graph it runs."""
        return _macs(self.source if self.source is not None else self.ir)


def _subject(model: Any, params: dict[str, Any], input_size: Sequence[int] | None,
             optimize: bool, weights: str | Path | None, blocks: Iterable[str | Path],
             device: Any, dtype: str = "fp32", backend: str | None = None) -> _Subject:
    import torch.nn as nn

    from .api import build_ir, create_model, load
    from .ir import IR
    if isinstance(model, (str, Path)) and str(model).endswith((".pt", ".pth")) and weights is None:
        model = create_model(model, **params)     # an espdsl checkpoint (int8 from quantize)
    if isinstance(model, nn.Module):
        ir = getattr(model, "espdsl_ir", None)
        if ir is None:
            raise UsageError("bench needs a model built by espdsl (it reads the analysis' MACs)",
                             None, "build it with espdsl.create_model")
        built, optimized = model, "passes" in ir.meta
    else:
        if isinstance(model, IR):
            if params or input_size is not None:
                raise UsageError("an IR is already resolved: parameters and input size do not "
                                 "apply", None, "pass the spec name or path instead")
            ir = model
        else:
            ir = load(model, input_size=input_size, blocks=blocks, **params)
        built = build_ir(ir)
        if weights is not None:
            from .weights import load_weights
            load_weights(built, weights)
        optimized = False
    if dtype not in ("fp32", None) and not optimize:
        raise UsageError(f"dtype '{dtype}' is a build of the optimized network", None,
                         "drop --no-optimize")
    from .passes.backend import EAGER, backend_of, check_backend
    if check_backend(backend) != EAGER and not optimize:
        raise UsageError(f"backend '{backend}' runs the optimized network", None,
                         "drop --no-optimize")
    if optimize and not optimized:
        from .passes import optimize_model, pipeline
        built, optimized = optimize_model(built.eval(), pipeline(dtype, backend)), True
    built = built.to(device).eval()
    source = None if isinstance(model, nn.Module) else ir
    run_ir = built.espdsl_ir
    prec = run_ir.meta.get("quantized") or (run_ir.meta.get("precision") or {}).get("dtype")
    return _Subject(ir.name, dict(ir.params), built, run_ir, optimized, source,
                    {"bfloat16": "bf16", "float16": "fp16"}.get(prec, prec or "fp32"),
                    backend_of(run_ir))


def _macs(ir: Any) -> int:
    from .analysis import analyze_ir
    return analyze_ir(ir).totals.macs


class _Clock:
    """Times one call: perf_counter on the CPU, CUDA events around it on a GPU."""

    def __init__(self, device: Any):
        import torch
        self.cuda = device.type == "cuda"
        self.torch = torch

    def __call__(self, fn: Callable[[], Any]) -> float:
        torch = self.torch
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end))
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


def _faults() -> int:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):      # pragma: no cover - not on POSIX
        return 0


def matmul_gflops(device: Any, clock: _Clock, n: int = MATMUL_N) -> float:
    """fp32 GFLOP/s of one n x n matmul on ``device`` (2 n^3 operations)."""
    import torch
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    ms = clock(lambda: torch.mm(a, b, out=out))
    return 2 * n ** 3 / (ms * 1e6)


def bench(model: Any, *, params: dict[str, Any] | None = None,
          input_size: Sequence[int] | None = None, runs: int = 200, warmup: int = 10,
          threads: int | None = None, device: str = "cpu", optimize: bool = True,
          weights: str | Path | None = None, blocks: Iterable[str | Path] = (),
          vs: Any = None, matmul: bool = True, progress: bool = False,
          seed: int = 0, dtype: str = "fp32", backend: str | None = None
          ) -> BenchResult | Comparison:
    """Time ``model`` (see the module doc); with ``vs``, time both interleaved."""
    import torch

    from .predict import resolve_device
    if runs < 1 or warmup < 0:
        raise UsageError(f"runs must be at least 1 and warmup at least 0 (got {runs}, {warmup})",
                         None, "e.g. --runs 200 --warmup 10")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be at least 1 (got {threads})", None, "e.g. --threads 2")
    dev = resolve_device(device)
    params = dict(params or {})
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        subjects = [_subject(model, params, input_size, optimize, weights, blocks, dev, dtype,
                             backend)]
        if vs is not None:
            if isinstance(vs, str) and vs == "default":
                if isinstance(model, torch.nn.Module):
                    raise UsageError("vs='default' needs a spec or an IR to build the default "
                                     "model from", None, "pass the spec instead of a module")
                subjects.append(_subject(model, params, input_size, False, weights, blocks, dev))
            elif isinstance(vs, str) and vs == "fp32":     # the same network, fp32 optimized
                if isinstance(model, torch.nn.Module):
                    raise UsageError("vs='fp32' needs a spec to build the fp32 network from",
                                     None, "pass the spec (and --weights) instead")
                subjects.append(_subject(model, params, input_size, True, weights, blocks, dev))
            else:
                other = _declared(vs, params, blocks)
                subjects.append(_subject(vs, other, input_size, optimize, None, blocks, dev,
                                         dtype, backend))
        return _run(subjects, runs, warmup, dev, matmul, progress, seed)
    finally:
        torch.set_num_threads(old_threads)


def _declared(spec: Any, params: dict[str, Any], blocks: Iterable[str | Path]) -> dict[str, Any]:
    """``params`` restricted to those ``spec`` declares (``--vs`` compares two specs)."""
    from .api import _registry, open_spec
    from .ir import IR
    if isinstance(spec, IR) or not isinstance(spec, (str, Path)):
        return {}
    declared = open_spec(spec, _registry(blocks)).params
    return {k: v for k, v in params.items() if k in declared}


@dataclass
class Timings:
    """What :func:`interleave` measured: per callable, every run's ms and its page faults; the
    matmul GFLOP/s samples taken between rounds."""

    times_ms: list[list[float]]
    faults: list[int]
    matmul_gflops: list[float]


def interleave(fns: Sequence[Callable[[], Any]], runs: int, warmup: int, device: Any = "cpu",
               matmul: bool = True, progress: bool = False) -> Timings:
    """Run ``fns`` in rounds (A B C, A B C, ...) after ``warmup`` untimed rounds, timing every
    call (CUDA events on a GPU) and counting minor page faults; a fp32 matmul sample is taken
    before the first round and after every :data:`MATMUL_EVERY` rounds, so the machine's
    throughput is measured under the same conditions as the models."""
    import torch

    dev = torch.device(device)
    clock = _Clock(dev)
    times: list[list[float]] = [[] for _ in fns]
    faults = [0 for _ in fns]
    rates: list[float] = []
    for _ in range(warmup):
        for fn in fns:
            fn()
    if matmul:
        rates.append(matmul_gflops(dev, clock))
    rounds: Iterable[int] = range(runs)
    if progress:
        from tqdm import tqdm
        rounds = tqdm(rounds, desc="bench", unit="round", leave=False)
    for r in rounds:
        for i, fn in enumerate(fns):
            before = _faults()
            times[i].append(clock(fn))
            faults[i] += _faults() - before
        if matmul and (r + 1) % MATMUL_EVERY == 0:
            rates.append(matmul_gflops(dev, clock))
    return Timings(times, faults, rates)


def _run(subjects: list[_Subject], runs: int, warmup: int, dev: Any, matmul: bool,
         progress: bool, seed: int) -> BenchResult | Comparison:
    import torch

    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(tuple(s.ir.input_shape), generator=gen).to(dev) for s in subjects]
    with torch.inference_mode():
        fns = [(lambda s=s, x=x: s.model(x)) for s, x in zip(subjects, inputs)]
        t = interleave(fns, runs, warmup, dev, matmul, progress)
    rate = statistics.median(t.matmul_gflops) if t.matmul_gflops else None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    results = [BenchResult(s.name, s.params, tuple(s.ir.input_shape), dev.type,
                           torch.get_num_threads(), s.optimized, warmup, times, s.macs, rate,
                           f / runs if dev.type == "cpu" else None, name, s.dtype, s.backend)
               for s, times, f in zip(subjects, t.times_ms, t.faults)]
    if len(results) == 1:
        return results[0]
    return Comparison(results[0], results[1],
                      [a / b for a, b in zip(t.times_ms[0], t.times_ms[1])])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


# -- formatting ---------------------------------------------------------------------------------
def format_bench(result: BenchResult | Comparison, fmt: str = "table") -> str:
    """A terminal table (or JSON) of a :func:`bench` result."""
    import json
    if fmt == "json":
        return json.dumps(result.as_dict(), indent=2)
    from tabulate import tabulate
    rows = [result] if isinstance(result, BenchResult) else [result.a, result.b]
    table = []
    for r in rows:
        from .paramtext import titled
        label = titled(r.name, r.params or {})
        frac = f"{100 * r.matmul_fraction:.0f}%" if r.matmul_fraction is not None else "-"
        faults = f"{r.faults_per_run:,.0f}" if r.faults_per_run is not None else "-"
        build = ("optimized" if r.optimized else "default") + (
            f" {r.dtype}" if r.dtype != "fp32" else "") + (
            f" ({r.backend})" if r.backend != "eager" else "")
        table.append([label, build, f"{r.median_ms:.1f}",
                      f"{r.min_ms:.1f}", f"{r.max_ms:.1f}", f"{r.mean_ms:.1f}", f"{r.fps:.2f}",
                      f"{r.gflops:.1f}", frac, faults])
    head = rows[0]
    lines = [f"{'x'.join(map(str, head.input_size))} on {head.device} ({head.device_name}, "
             f"{head.threads} threads), {head.runs} runs after {head.warmup} warm-up"
             + (", interleaved" if len(rows) > 1 else ""),
             tabulate(table, headers=["model", "build", "median ms", "min", "max", "mean", "fps",
                                      "GFLOP/s", "of matmul", "faults/run"],
                      colalign=("left", "left") + ("right",) * 8)]
    if head.matmul_gflops:
        lines.append(f"fp32 matmul {MATMUL_N}x{MATMUL_N}: {head.matmul_gflops:.1f} GFLOP/s "
                     f"(median of samples interleaved with the runs); "
                     f"{2 * head.macs / 1e9:.2f} GFLOP per run from the analysis' MACs")
    if isinstance(result, Comparison):
        lines.append(f"ratio A/B: {result.ratio:.3f} (median of per-round ratios "
                     f"{result.median_round_ratio:.3f}); A is {1 / result.ratio:.2f}x as fast")
    return "\n".join(lines)
