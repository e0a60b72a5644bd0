"""Latency of a space's front, measured: each network built and timed by :func:`espdsl.bench`
with the paper's protocol (the mean of 200 runs after 10 warm-up runs, on the optimized
inference build), where an executor runs it.

Executors take a list of :class:`Job` (plain data: spec file, parameters, input size) and
return one ``{"latency_ms", "machine"}`` per job, in order:

* :class:`LocalExecutor` (the default): one after the other in this process;
* :class:`RayExecutor`: one Ray task per network (``ray.init()`` joins a running cluster or
  starts a local one; give ``address`` for a cluster of the machines to measure on). Each
  task reports the machine it ran on.

Timings from different machines are never put in one ratio: ``machine`` is a column of every
measured row, and the report groups the timings by it.

>>> job = Job("cbr", {"M": 3, "N": 8}, (1, 3, 32, 32), runs=3, warmup=1)
>>> out = LocalExecutor().measure([job])
>>> out[0]["latency_ms"] > 0, sorted(out[0])
(True, ['latency_ms', 'machine'])
"""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError, did_you_mean

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One network to time: a spec (name or path), its parameters and input, the protocol."""

    spec: str
    params: dict[str, Any]
    input_size: tuple[int, ...] | None
    runs: int = 200
    warmup: int = 10
    blocks: tuple[str, ...] = field(default=())


def machine() -> str:
    """This machine, as a latency row names it: host, processor, torch threads."""
    import torch
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()} ({cpu}, torch {torch.__version__}, {torch.get_num_threads()} threads)"


def measure_job(job: Job) -> dict[str, Any]:
    """Build ``job``'s network and time it here (what every executor runs per network)."""
    import espdsl
    from ..study.measure import bench_latency_ms

    ir = espdsl.load(job.spec, input_size=job.input_size, blocks=job.blocks, **job.params)
    model = espdsl.build_ir(ir).eval()
    ms = bench_latency_ms(ir, model, runs=job.runs, warmup=job.warmup)
    return {"latency_ms": ms, "machine": machine()}


class LocalExecutor:
    """Measure one network after another in this process."""

    name = "local"

    def __init__(self, progress: bool = False):
        self.progress = progress

    def measure(self, jobs: list[Job]) -> list[dict[str, Any]]:
        from tqdm import tqdm
        return [measure_job(j) for j in tqdm(jobs, disable=None if self.progress else True,
                                             file=sys.stderr, unit="net", leave=False,
                                             desc="latency")]


class RayExecutor:
    """One Ray task per network. ``address``: a cluster to join (None: ``ray.init()``'s own
    choice, a local instance when none runs); ``init`` keywords pass to ``ray.init``."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus_per_task: int = 1, **init: Any):
        self.address, self.cpus, self.init = address, num_cpus_per_task, init

    def measure(self, jobs: list[Job]) -> list[dict[str, Any]]:
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray", None,
                             "pip install 'espdsl[explore-ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init)
        task = ray.remote(num_cpus=self.cpus)(measure_job)
        return ray.get([task.remote(j) for j in jobs])


def executor_for(kind: str | Any, progress: bool = False) -> Any:
    """An executor by name (``local``, ``ray``), or the object itself."""
    if not isinstance(kind, str):
        return kind
    if kind == "local":
        return LocalExecutor(progress)
    if kind == "ray":
        return RayExecutor(log_to_driver=False)
    raise UsageError(f"unknown executor '{kind}'", None, did_you_mean(kind, EXECUTORS))


def measure_front(result: Any, *, executor: str | Any = "local", top: int = 10, runs: int = 200,
                  warmup: int = 10, progress: bool = False) -> None:
    """Measure the first ``top`` networks of the front and the references; set their
    ``latency_ms`` and ``machine``, and ``latency_front`` (non-dominated among the measured
    rows over every objective, latency included)."""
    from .run import objective_value, pareto_ranks

    if runs < 1 or warmup < 0:
        raise UsageError(f"runs must be at least 1 and warmup at least 0 (got {runs}, {warmup})",
                         None, "e.g. --runs 200 --warmup 10")
    space = result.space
    front = result.front()[:top]
    chosen = front + list(result.references)
    blocks = tuple(str(b) for b in space.blocks)
    jobs = [Job(result.spec.file, result.settings(row), space.input, runs, warmup, blocks)
            for row in front]
    jobs += [Job(_reference_file(ref.base, space), dict(ref.params), space.input, runs, warmup,
                 blocks) for ref in space.references]
    timings = executor_for(executor, progress).measure(jobs)
    for row, timing in zip(chosen, timings):
        row["latency_ms"], row["machine"] = timing["latency_ms"], timing["machine"]
    result.measured_on = sorted({t["machine"] for t in timings})
    measured = front
    if measured:
        ranks = pareto_ranks([[objective_value(r, o.figure) for o in space.objectives]
                              for r in measured], [o.sense for o in space.objectives])
        for row, k in zip(measured, ranks):
            row["latency_front"] = k == 1


def _reference_file(base: str, space: Any) -> str:
    from pathlib import Path
    if "/" in base or base.endswith((".yaml", ".yml")):
        path = Path(base)
        return str(path if path.is_absolute() else Path(space.file).parent / path)
    return base
