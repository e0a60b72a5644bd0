"""The colour legend of ``espdsl predict``: each class's colour beside its name, as a PNG.

>>> import numpy as np
>>> from espdsl.predict import PredictConfig
>>> cfg = PredictConfig("RGB", [], ["road", "sky"], np.array([[128, 64, 128], [70, 130, 180]], np.uint8))
>>> img = legend_image(cfg)
>>> img.shape[0] == 2 * ROW + 2 * PAD, img[PAD + ROW // 2, PAD + 4].tolist()
(True, [128, 64, 128])
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .predict import PredictConfig

ROW = 20       # pixels per class
PAD = 8
SWATCH = 28
WIDTH = 240


def legend_image(cfg: "PredictConfig") -> np.ndarray:
    """An H x W x 3 uint8 image: one row per class id, its colour swatch and ``id name``."""
    from PIL import Image, ImageDraw
    count = len(cfg.class_names)
    img = Image.new("RGB", (WIDTH, count * ROW + 2 * PAD), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, name in enumerate(cfg.class_names):
        top = PAD + i * ROW
        color = tuple(int(c) for c in cfg.palette[i]) if i < len(cfg.palette) else (0, 0, 0)
        draw.rectangle([PAD, top + 2, PAD + SWATCH, top + ROW - 3], fill=color, outline=(0, 0, 0))
        draw.text((PAD + SWATCH + 8, top + 4), f"{i:>2}  {name}", fill=(0, 0, 0))
    return np.asarray(img)


def write_legend(cfg: "PredictConfig", path) -> None:
    """Write the legend PNG to ``path``, all or nothing."""
    from PIL import Image

    from .files import atomic_path
    with atomic_path(path) as tmp:
        Image.fromarray(legend_image(cfg)).save(tmp, format="PNG")
