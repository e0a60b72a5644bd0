"""What a reduced-precision build costs: its class maps against the fp32 build's, beside its
time and size (``espdsl precision``).

For each build (the fp32 optimized build is the reference; bf16, fp16, an int8 checkpoint from
``espdsl quantize``), on each image: the fraction of pixels whose class equals the fp32 class,
and the mean IoU between the two maps (fp32's map as the ground truth, over the classes that
either map uses); then the median time of a forward (the builds interleaved, round by round)
and the bytes of the weights the build holds.

>>> import numpy as np
>>> a, b = np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]])
>>> agreement(a, b), round(mean_iou(a, b), 4)     # IoU: class 0 1/2, class 1 2/3
(0.75, 0.5833)
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of pixels with the same class."""
    return float((np.asarray(a) == np.asarray(b)).mean())


def mean_iou(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean over the classes present in either map of |both| / |either|."""
    reference, other = np.asarray(reference), np.asarray(other)
    ious = []
    for c in np.union1d(np.unique(reference), np.unique(other)):
        r, o = reference == c, other == c
        ious.append((r & o).sum() / (r | o).sum())
    return float(np.mean(ious)) if ious else 1.0


def weight_bytes(model: Any) -> int:
    """Bytes of the tensors a model holds for inference (parameters, buffers in its
    state_dict, and the constants of a converted int8 graph), each storage counted once."""
    import torch
    seen: dict[tuple, int] = {}

    def add(t: Any) -> None:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()

    net = getattr(model, "net", None)
    if net is not None and hasattr(net, "graph"):           # an int8 network: its graph's constants
        for node in net.graph.nodes:
            if node.op == "get_attr":
                obj = net
                for part in node.target.split("."):
                    obj = getattr(obj, part)
                add(obj)
    else:
        for t in model.state_dict().values():
            add(t)
    return sum(seen.values())


@dataclass
class BuildScore:
    """One build: its name, the per-image agreement and mIoU with fp32, times, weight bytes."""

    name: str
    agreement: list[float] = field(default_factory=list)
    miou: list[float] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    bytes: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agreement": list(self.agreement), "miou": list(self.miou),
                "median_ms": self.median_ms, "times_ms": list(self.times_ms),
                "weight_bytes": self.bytes}


def score_builds(builds: dict[str, Any], images: Sequence[str | Path], *, runs: int = 5,
                 warmup: int = 1) -> list[BuildScore]:
    """Score ``builds`` (name -> model; the first is the reference) on ``images`` (read and
    preprocessed by the first build's spec ``predict:`` section)."""
    import torch

    from .bench import interleave
    from .predict import config_for, preprocess, read_image, segment
    names = list(builds)
    ref_model = builds[names[0]]
    cfg = config_for(ref_model)
    scores = [BuildScore(n, bytes=weight_bytes(m)) for n, m in builds.items()]
    first = None
    for path in images:
        image = read_image(path)
        maps = [segment(m, image, cfg) for m in builds.values()]
        for s, classes in zip(scores, maps):
            s.agreement.append(agreement(maps[0], classes))
            s.miou.append(mean_iou(maps[0], classes))
        if first is None:
            first = preprocess(image, cfg)
    with torch.inference_mode():
        fns = [(lambda m=m: m(first)) for m in builds.values()]
        t = interleave(fns, runs, warmup, "cpu", matmul=False)
    for s, times in zip(scores, t.times_ms):
        s.times_ms = times
    return scores


def format_scores(scores: list[BuildScore], images: Sequence[str | Path], threads: int) -> str:
    """A table: build, agreement and mIoU with fp32 (mean over images; the lowest), median ms,
    speed-up over the reference, weight bytes."""
    from tabulate import tabulate
    ref = scores[0].median_ms
    rows = []
    for s in scores:
        rows.append([s.name, f"{100 * statistics.fmean(s.agreement):.2f}%",
                     f"{100 * min(s.agreement):.2f}%", f"{100 * statistics.fmean(s.miou):.2f}%",
                     f"{s.median_ms:.1f}", f"{ref / s.median_ms:.2f}x", f"{s.bytes:,}"])
    head = (f"class maps against {scores[0].name} on {len(images)} image(s); time: median of "
            f"{len(scores[0].times_ms)} interleaved rounds, {threads} threads")
    return "\n".join([head, tabulate(rows, headers=["build", "pixels agree", "lowest", "mIoU",
                                                    "median ms", "speed-up", "weight bytes"],
                                     colalign=("left",) + ("right",) * 6)])
