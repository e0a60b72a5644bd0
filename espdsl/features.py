"""The feature maps of one node of a trained network for one image (Fig. 2b).

The network is built only up to the node (:func:`espdsl.analysis.check.truncate`), its weights
taken from the full model after the whole checkpoint has been loaded into it (strictly, so a
checkpoint that does not fit fails as in ``espdsl predict``), and the image is preprocessed
exactly as ``espdsl predict`` does (the spec's ``predict:`` section).

>>> import espdsl, numpy as np
>>> model = espdsl.create_model("espnet_c", alpha3=3).eval()   # images are resized to 512x1024
>>> name, maps = node_features(model, np.zeros((64, 128, 3), np.uint8), "level2.0")
>>> name, maps.shape
('level2.0.bn.act', (64, 128, 256))
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import UsageError
from .files import atomic_path

if TYPE_CHECKING:
    from torch import nn

OUTPUTS = ("channels", "mean_abs")


def node_features(model: "nn.Module", image: np.ndarray, node: str) -> tuple[str, np.ndarray]:
    """``(IR node name, (C, H, W) float32 activations)`` of ``node`` (a spec or IR node) of a
    built espdsl model for one H x W x 3 uint8 RGB image."""
    import torch

    from .analysis.check import truncate
    from .analysis.footprint import resolve_node
    from .build import build
    from .predict import config_for, preprocess

    ir = model.espdsl_ir
    name = resolve_node(ir, node)
    if len(ir.node(name).shape) != 3:
        raise UsageError(f"node '{node}' holds a vector, not feature maps", None,
                         "name a node before global pooling")
    part = build(truncate(ir, name)).eval()
    full = model.state_dict()
    part.load_state_dict({k: full[k] for k in part.state_dict()}, strict=True)
    x = preprocess(image, config_for(model))
    with torch.no_grad():
        y = part(x)
    return name, y[0].float().numpy()


def lattice_energy(maps: np.ndarray, period: int) -> float:
    """The share of the feature maps' variance that repeats with ``period`` pixels along both
    axes: per channel, the variance of the ``period`` x ``period`` phase-class means over the
    channel's variance, averaged over channels. A grid of holes left by dilation ``period``
    shows here; smooth image content gives about ``1 / (cells per phase class)``.

    >>> grid = np.zeros((1, 8, 8)); grid[0, ::2, ::2] = 1
    >>> lattice_energy(grid, 2), round(lattice_energy(np.random.default_rng(0).random((4, 64, 64)), 2), 2)
    (1.0, 0.0)
    """
    c, h, w = maps.shape
    h2, w2 = h // period * period, w // period * period
    m = maps[:, :h2, :w2].astype(np.float64)
    m = m - m.mean(axis=(1, 2), keepdims=True)
    phases = m.reshape(c, h2 // period, period, w2 // period, period).mean(axis=(1, 3))
    var = (m ** 2).mean(axis=(1, 2))
    keep = var > 0
    if not keep.any():
        return 0.0
    return float(((phases ** 2).mean(axis=(1, 2))[keep] / var[keep]).mean())


def output_paths(out_dir: Path, image: Path, name: str) -> dict[str, Path]:
    return {kind: out_dir / f"{image.stem}_{name}_{kind}.png" for kind in OUTPUTS}


def write_features(maps: np.ndarray, paths: dict[str, Path], columns: int = 16,
                   zoom: int = 1) -> None:
    """The channel grid (each channel normalised) and the mean absolute activation (colour
    map) as PNGs, each pixel repeated ``zoom`` times; both appear or neither does."""
    from PIL import Image

    from .pictures import channel_grid, colour_map

    arrays = {"channels": channel_grid(maps, columns),
              "mean_abs": colour_map(np.abs(maps).mean(0))}
    arrays = {k: v.repeat(zoom, 0).repeat(zoom, 1) for k, v in arrays.items()}
    with atomic_path(paths["channels"]) as t1, atomic_path(paths["mean_abs"]) as t2:
        for kind, tmp in zip(OUTPUTS, (t1, t2)):
            Image.fromarray(arrays[kind]).save(tmp, format="PNG")
