"""Pictures of footprints (Fig. 2a) and of a node's feature maps (Fig. 2b).

Drawing only: the footprints come from :mod:`espdsl.analysis.footprint`, the feature maps from
:mod:`espdsl.features`. matplotlib (Agg) draws footprints, as PNG, SVG or PDF by the file's
extension; feature-map grids are written as PNG with Pillow, one pixel per activation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UsageError
from .files import atomic_path

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def picture_format(path: str | Path) -> str:
    """The matplotlib format for ``path``'s extension (png, svg or pdf)."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise UsageError(f"cannot tell the picture format of '{path}'", None,
                         "end the file name in .png, .svg or .pdf")
    return FORMATS[ext]


def crop_window(boxes: Sequence[tuple[int, int, int, int] | None], shape: tuple[int, int],
                margin: int = 2) -> tuple[int, int, int, int]:
    """One window ``(y0, y1, x0, x1)`` (inclusive) holding every box plus ``margin`` pixels,
    clipped to the map."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return 0, shape[0] - 1, 0, shape[1] - 1
    y0 = max(min(b[0] for b in boxes) - margin, 0)
    y1 = min(max(b[1] for b in boxes) + margin, shape[0] - 1)
    x0 = max(min(b[2] for b in boxes) - margin, 0)
    x1 = min(max(b[3] for b in boxes) + margin, shape[1] - 1)
    return y0, y1, x0, x1


def draw_footprints(panels: Sequence[tuple[str, np.ndarray]], path: str | Path, *,
                    title: str = "", columns: int | None = None) -> None:
    """Draw footprint maps side by side, each over the same window (the union of their
    receptive-field boxes): log10 of the path count in colour, holes (no path) in white, each
    map's receptive-field box outlined in red. Written all-or-nothing to ``path``."""
    fmt = picture_format(path)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import colors, patches
    from matplotlib import pyplot as plt

    from .analysis.footprint import support_box

    boxes = [support_box(counts) for _, counts in panels]
    y0, y1, x0, x1 = crop_window(boxes, panels[0][1].shape)
    logs = []
    for _, counts in panels:
        window = np.asarray(counts[y0:y1 + 1, x0:x1 + 1], dtype=np.float64)
        logs.append(np.where(window > 0, np.log10(np.where(window > 0, window, 1)), np.nan))
    finite = [v for v in logs if np.isfinite(v).any()]
    vmin = min(np.nanmin(v) for v in finite) if finite else 0.0
    vmax = max(np.nanmax(v) for v in finite) if finite else 1.0
    norm = colors.Normalize(vmin, vmax if vmax > vmin else vmin + 1)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    n = len(panels)
    cols = columns or min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 0.8, 3.2 * rows + 0.5), dpi=100,
                             squeeze=False)
    try:
        image = None
        for ax, (label, _), box, data in zip(axes.flat, panels, boxes, logs):
            image = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest",
                              extent=(x0 - 0.5, x1 + 0.5, y1 + 0.5, y0 - 0.5))
            if box is not None:
                by0, by1, bx0, bx1 = box
                ax.add_patch(patches.Rectangle((bx0 - 0.5, by0 - 0.5), bx1 - bx0 + 1, by1 - by0 + 1,
                                               fill=False, edgecolor="red", linewidth=1.0))
            ax.set_title(label, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        if image is not None:
            bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
            bar.set_label("log10 paths (white: none)", fontsize=8)
            bar.ax.tick_params(labelsize=7)
        if title:
            fig.suptitle(title, fontsize=10)
        with atomic_path(path) as tmp:
            fig.savefig(str(tmp), format=fmt, metadata={"Software": None} if fmt == "png" else None)
    finally:
        plt.close(fig)


def channel_grid(maps: np.ndarray, columns: int = 16, gap: int = 2) -> np.ndarray:
    """The channels of a ``(C, H, W)`` map tiled in a grid, each normalised to 0..255 on its
    own (min to max; a constant channel is mid-grey), as a uint8 image.

    >>> channel_grid(np.arange(8.0).reshape(2, 2, 2), columns=2, gap=1)
    array([[  0,  85, 255,   0,  85],
           [170, 255, 255, 170, 255]], dtype=uint8)
    """
    c, h, w = maps.shape
    cols = min(columns, c)
    rows = (c + cols - 1) // cols
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 255, np.uint8)
    for i in range(c):
        m = maps[i].astype(np.float64)
        lo, hi = m.min(), m.max()
        tile = np.full((h, w), 128.0) if hi == lo else (m - lo) / (hi - lo) * 255
        r, q = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = np.rint(tile)
    return out


def colour_map(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """A 2-d array as an RGB uint8 image through a matplotlib colour map (min to max)."""
    import matplotlib
    lo, hi = float(values.min()), float(values.max())
    scaled = np.zeros_like(values, dtype=np.float64) if hi == lo else (values - lo) / (hi - lo)
    return (matplotlib.colormaps[name](scaled)[..., :3] * 255).round().astype(np.uint8)
