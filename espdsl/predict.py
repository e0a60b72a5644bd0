"""Running a segmentation model on images: preprocessing, inference, class maps, colours.

Everything dataset-specific is data, declared in the spec's ``predict:`` section (see
``zoo/espnet.yaml``): the channel order, the preprocessing steps in order, the class names
and their colours. A step is one of::

    normalize: {mean: [...], std: [...]}    # per channel, in the declared channel order
    resize: {size: [H, W], mode: bilinear, antialias: false}
    divide: 255

Each image gives three PNGs: ``<stem>_classes.png`` (uint8 class ids), ``<stem>_color.png``
(the palette) and ``<stem>_overlay.png`` (the image blended with the colours).

>>> cfg = PredictConfig.from_meta({"channels": "RGB", "steps": [{"divide": 255}],
...                                "classes": [{"name": "a", "color": [0, 0, 0]},
...                                            {"name": "b", "color": [255, 0, 0]}]})
>>> import numpy as np
>>> x = preprocess(np.full((4, 6, 3), 255, np.uint8), cfg)
>>> tuple(x.shape), float(x.max())
((1, 3, 4, 6), 1.0)
>>> colorize(np.array([[0, 1]], np.uint8), cfg.palette).tolist()
[[[0, 0, 0], [255, 0, 0]]]
"""
from __future__ import annotations

import colorsys
import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import limits
from .errors import Loc, SpecError, UsageError, shorten
from .files import atomic_path
from .limits import check_forward

CHANNEL_ORDERS = ("RGB", "BGR")
OUTPUTS = ("classes", "color", "overlay")


# -- the predict section ------------------------------------------------------------------------
@dataclass
class PredictConfig:
    """A spec's ``predict:`` section, checked."""

    channels: str = "RGB"
    steps: list[tuple[str, Any]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    palette: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    alpha: float = 0.5

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None, source: str = "<spec>") -> "PredictConfig":
        """Check and read a ``predict:`` mapping; errors name the spec file and the key."""
        meta = dict(meta or {})
        loc = Loc(source)

        def bad(what: str, hint: str) -> SpecError:
            return SpecError(f"predict: {what}", loc, hint)

        channels = str(meta.get("channels", "RGB")).upper()
        if channels not in CHANNEL_ORDERS:
            raise bad(f"unknown channel order '{meta.get('channels')}'", "use RGB or BGR")
        steps = []
        for i, raw in enumerate(meta.get("steps") or []):
            if not isinstance(raw, dict) or len(raw) != 1:
                raise bad(f"steps[{i}] must be a mapping with one key",
                          f"one of {', '.join(STEPS)}, e.g. '- divide: 255'")
            (name, arg), = raw.items()
            if name not in STEPS:
                from .errors import did_you_mean
                raise bad(f"steps[{i}]: unknown step '{name}'", did_you_mean(str(name), STEPS))
            steps.append((name, _check_step(name, arg, i, bad)))
        names, colors = [], []
        for i, entry in enumerate(meta.get("classes") or []):
            if not isinstance(entry, dict) or "name" not in entry or "color" not in entry:
                raise bad(f"classes[{i}] needs a name and a color", "e.g. {name: road, color: [128, 64, 128]}")
            color = entry["color"]
            if (not isinstance(color, list) or len(color) != 3
                    or not all(isinstance(c, int) and 0 <= c <= 255 for c in color)):
                raise bad(f"classes[{i}].color must be three integers 0..255", "e.g. [128, 64, 128]")
            names.append(str(entry["name"]))
            colors.append(color)
        alpha = meta.get("overlay_alpha", 0.5)
        if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise bad("overlay_alpha must be a number in 0..1", "e.g. 0.5")
        return cls(channels, steps, names, np.array(colors, np.uint8).reshape(-1, 3), float(alpha))

    def for_classes(self, count: int) -> "PredictConfig":
        """This config for a model with ``count`` outputs; unnamed classes get generated colours."""
        if count == len(self.class_names):
            return self
        names = [f"class {i}" for i in range(count)]
        return PredictConfig(self.channels, self.steps, names, default_palette(count), self.alpha)


def _numbers(value: Any, n: int | None = None) -> bool:
    return (isinstance(value, list) and (n is None or len(value) == n)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def _check_step(name: str, arg: Any, i: int, bad: Callable[[str, str], SpecError]) -> Any:
    if name == "normalize":
        if not isinstance(arg, dict) or not _numbers(arg.get("mean"), 3) or not _numbers(arg.get("std"), 3):
            raise bad(f"steps[{i}].normalize needs mean and std, three numbers each",
                      "e.g. {mean: [123.7, 116.3, 103.5], std: [58.4, 57.1, 57.4]}")
        if any(s == 0 for s in arg["std"]):
            raise bad(f"steps[{i}].normalize: std must not be 0", "use the dataset's std")
        return {"mean": [float(v) for v in arg["mean"]], "std": [float(v) for v in arg["std"]]}
    if name == "resize":
        if not isinstance(arg, dict) or not _numbers(arg.get("size"), 2) or min(arg["size"]) < 1:
            raise bad(f"steps[{i}].resize needs size: [H, W]", "e.g. {size: [512, 1024], mode: bilinear}")
        mode = arg.get("mode", "bilinear")
        if mode not in ("bilinear", "bicubic", "nearest", "area"):
            raise bad(f"steps[{i}].resize: unknown mode '{mode}'", "use bilinear, bicubic, nearest or area")
        return {"size": [int(v) for v in arg["size"]], "mode": mode,
                "antialias": bool(arg.get("antialias", False))}
    if not isinstance(arg, (int, float)) or isinstance(arg, bool) or arg == 0:
        raise bad(f"steps[{i}].divide needs a non-zero number", "e.g. 255")
    return float(arg)


def _normalize(x: torch.Tensor, arg: dict) -> torch.Tensor:
    mean = torch.tensor(arg["mean"], dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(arg["std"], dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _resize(x: torch.Tensor, arg: dict) -> torch.Tensor:
    size = tuple(arg["size"])
    if tuple(x.shape[-2:]) == size:
        return x
    if arg["mode"] in ("nearest", "area"):
        return F.interpolate(x, size=size, mode=arg["mode"])
    return F.interpolate(x, size=size, mode=arg["mode"], align_corners=False,
                         antialias=arg["antialias"])


STEPS: dict[str, Callable[[torch.Tensor, Any], torch.Tensor]] = {
    "normalize": _normalize,
    "resize": _resize,
    "divide": lambda x, d: x / d,
}


def default_palette(count: int) -> np.ndarray:
    """``count`` distinct colours (evenly spaced hues), for models without a declared palette.

    >>> default_palette(3).tolist()
    [[230, 23, 23], [23, 230, 23], [23, 23, 230]]
    """
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(i / max(count, 1), 0.9, 0.9)]
                     for i in range(count)], np.uint8).reshape(-1, 3)


# -- images ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _open_image(path: Path) -> Iterator[Any]:
    """A PIL image opened lazily (only its header read), refused before decoding when it has
    more pixels than the ``image_pixels`` limit; read errors become one located line."""
    from PIL import Image, UnidentifiedImageError

    try:
        is_file = path.is_file()
    except (OSError, ValueError):   # a name too long for a path, a NUL character
        is_file = False
    if not is_file:
        raise UsageError(f"no such image file: {shorten(path)}", None, "check the image paths")
    cap = limits.current().image_pixels
    try:
        with warnings.catch_warnings():
            # the image_pixels limit decides, not Pillow's warning at 89 M pixels
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > cap:
                    raise limits.exceeded("image_pixels", f"the image is {width}x{height}, "
                                          f"{width * height:,} pixels, more than the "
                                          "image_pixels limit", Loc(str(path)))
                yield img
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, twice its warning
        raise limits.exceeded("image_pixels", f"the image is too large for Pillow "
                              f"({str(exc)[:100]})", Loc(str(path))) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UsageError(f"cannot read {path} as an image ({type(exc).__name__}: "
                         f"{str(exc)[:120]})", None, "give PNG or JPEG files") from None


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an H x W x 3 uint8 RGB array (EXIF orientation applied, as OpenCV does)."""
    from PIL import ImageOps

    with _open_image(Path(path)) as img:
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def check_image(path: str | Path) -> None:
    """Raise the read error of :func:`read_image` without decoding the whole file."""
    with _open_image(Path(path)) as img:
        img.verify()


def preprocess(image: np.ndarray, cfg: PredictConfig) -> torch.Tensor:
    """An H x W x 3 uint8 RGB image -> the (1, 3, h, w) float32 network input, by ``cfg.steps``."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(torch.float32)
    if cfg.channels == "BGR":
        x = x.flip(-1)
    x = x.permute(2, 0, 1).unsqueeze(0)
    for name, arg in cfg.steps:
        x = STEPS[name](x, arg)
    return x.contiguous()


def colorize(classes: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class ids (H x W) -> colours (H x W x 3 uint8); ids past the palette are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = palette[:256]
    return lut[classes]


def blend(image: np.ndarray, color: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * image + alpha * color``, rounded, uint8."""
    out = (1.0 - alpha) * image.astype(np.float32) + alpha * color.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """An H x W x 3 uint8 image resized to ``size`` = (h, w) (bilinear, for overlays)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float()
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


# -- inference ---------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda`` (``cuda:N``), checking that the device exists."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA GPU is available on this machine "
                             f"(torch {torch.__version__}, cuda build: {torch.version.cuda or 'none'})",
                             None, "use --device cpu")
        return torch.device(name)
    raise UsageError(f"unknown device '{name}'", None, "use cpu or cuda")


@torch.no_grad()
def segment(model: nn.Module, image: np.ndarray, cfg: PredictConfig, *,
            device: torch.device | str = "cpu", original_size: bool = False) -> np.ndarray:
    """Class ids (uint8) for one RGB image: at the network's output resolution, or resized back
    to the image's size (logits bilinearly, then argmax) with ``original_size``."""
    x = preprocess(image, cfg).to(device)
    logits = model(x)
    if original_size and tuple(logits.shape[-2:]) != tuple(image.shape[:2]):
        logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    if logits.shape[1] > 256:
        raise UsageError(f"the model has {logits.shape[1]} classes; class maps hold at most 256",
                         None, None)
    return logits[0].argmax(0).to(torch.uint8).cpu().numpy()


def output_paths(out_dir: Path, image: Path) -> dict[str, Path]:
    return {kind: out_dir / f"{image.stem}_{kind}.png" for kind in OUTPUTS}


def write_outputs(image: np.ndarray, classes: np.ndarray, cfg: PredictConfig,
                  paths: dict[str, Path]) -> None:
    """Write the three PNGs; all appear together or none does."""
    from PIL import Image

    color = colorize(classes, cfg.palette)
    overlay = blend(resize_image(image, classes.shape), color, cfg.alpha)
    arrays = {"classes": classes, "color": color, "overlay": overlay}
    with atomic_path(paths["classes"]) as t1, atomic_path(paths["color"]) as t2, \
            atomic_path(paths["overlay"]) as t3:
        for kind, tmp in zip(OUTPUTS, (t1, t2, t3)):
            Image.fromarray(arrays[kind]).save(tmp, format="PNG")


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create the output folder if needed and check it can be written."""
    import tempfile

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {out}: {exc.strerror or exc}", None,
                         "choose a folder you can write to") from None
    return out


def predict_files(model: nn.Module, cfg: PredictConfig, images: Iterable[str | Path],
                  out_dir: str | Path, *, device: str = "cpu", original_size: bool = False,
                  progress: bool | None = None) -> list[Path]:
    """Segment each image and write its three PNGs into ``out_dir``; returns the paths written.

    Every input is checked before any work starts (readable image, no two with the same
    stem), so bad input fails fast and writes nothing.
    """
    from tqdm import tqdm

    images = [Path(p) for p in images]
    if not images:
        raise UsageError("no images given", None, "name one or more image files")
    seen: dict[str, Path] = {}
    for path in images:
        check_image(path)
        if path.stem in seen and seen[path.stem].resolve() != path.resolve():
            raise UsageError(f"{seen[path.stem]} and {path} would write the same outputs "
                             f"({path.stem}_*.png)", None, "predict them into different folders")
        seen[path.stem] = path
    images = list(dict.fromkeys(images))
    if hasattr(model, "espdsl_ir"):
        check_forward(model.espdsl_ir)
    dev = resolve_device(device)
    out = prepare_output_dir(out_dir)
    model = model.to(dev).eval()
    written: list[Path] = []
    # disable=None: a bar only on a terminal, never in logs
    bar = tqdm(images, unit="img", disable=True if len(images) < 2 or progress is False else None)
    for path in bar:
        image = read_image(path)
        classes = segment(model, image, cfg, device=dev, original_size=original_size)
        paths = output_paths(out, path)
        write_outputs(image, classes, cfg, paths)
        written.extend(paths.values())
    from .legend import write_legend
    write_legend(cfg, out / "legend.png")   # which colour is which class, once per folder
    written.append(out / "legend.png")
    return written


def config_for(model: nn.Module) -> PredictConfig:
    """The ``predict:`` section of the spec a model was built from, fitted to its class count."""
    ir = getattr(model, "espdsl_ir", None)
    if ir is None:
        raise UsageError("the model was not built by espdsl", None, "build it with espdsl.create_model")
    if "predict" not in ir.meta:
        raise UsageError(f"spec '{ir.name}' has no predict: section (preprocessing, classes, "
                         f"colours)", Loc(ir.source) if ir.source else None,
                         "add one to the spec; see the one in zoo/espnet.yaml")
    cfg = PredictConfig.from_meta(ir.meta["predict"], ir.source or ir.name)
    return cfg.for_classes(ir.output_shape[1])
