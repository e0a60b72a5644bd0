"""`espdsl predict`: preprocessing declared in the spec, reference agreement, outputs, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import espdsl
from espdsl.cli import main
from espdsl.errors import SpecError, UsageError
from espdsl.predict import PredictConfig, config_for, preprocess, read_image

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "espnet-reference"
IMAGE = "frankfurt_000000_000294_leftImg8bit"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference data not found at {REF} "
                               "(needs ../shared/espnet-reference beside the project)")
# from the reference README: road and bicycle of the Cityscapes palette, unlabeled is black
ROAD, BICYCLE = (128, 64, 128), (119, 11, 32)


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- a tiny user model with its own predict section (fast, and proves nothing is hard-coded) ------
TINY = """model: tiny
params: {classes: {type: int, default: 3}}
input: {channels: 3, size: [32, 64]}
predict:
  channels: RGB
  steps:
    - resize: {size: [32, 64], mode: bilinear}
    - divide: 255
  overlay_alpha: 0.25
  classes:
    - {name: a, color: [10, 20, 30]}
    - {name: b, color: [200, 100, 0]}
    - {name: c, color: [0, 255, 255]}
nodes:
  - {name: body, block: cbr, N: 8, stride: 2}
  - {name: head, block: c, N: classes}
  - {name: up, op: upsample, scale: 2}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY)
    torch.manual_seed(0)
    weights = folder / "tiny.pth"
    torch.save(espdsl.create_model(spec).state_dict(), weights)
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(40, 80), (64, 128), (33, 50)]):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        images.append(path)
    return spec, weights, images


def test_tiny_writes_three_consistent_pngs_per_image(tiny, tmp_path):
    spec, weights, images = tiny
    out = tmp_path / "new" / "out"        # created on demand
    result = run("predict", spec, "--weights", weights, *images, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"img{i}_{k}.png" for i in range(3) for k in ("classes", "color", "overlay")]
        + ["legend.png"])
    # the legend: a swatch per class in the palette's colour (rows of espdsl.legend.ROW px)
    from espdsl.legend import PAD, ROW
    legend = np.array(Image.open(out / "legend.png"))
    swatches = [legend[PAD + i * ROW + ROW // 2, PAD + 4].tolist() for i in range(3)]
    assert swatches == [[10, 20, 30], [200, 100, 0], [0, 255, 255]]
    model = espdsl.create_model(spec, weights=weights).eval()
    palette = np.array([[10, 20, 30], [200, 100, 0], [0, 255, 255]], np.uint8)
    for path in images:
        classes = np.array(Image.open(out / f"{path.stem}_classes.png"))
        assert classes.dtype == np.uint8 and classes.shape == (32, 64)
        # independent computation: resize, /255, the built module, argmax
        img = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)[None].float()
        x = torch.nn.functional.interpolate(img, size=(32, 64), mode="bilinear",
                                            align_corners=False) / 255
        with torch.no_grad():
            expected = model(x)[0].argmax(0).numpy()
        np.testing.assert_array_equal(classes, expected)
        color = np.array(Image.open(out / f"{path.stem}_color.png"))
        np.testing.assert_array_equal(color, palette[classes])
        overlay = np.array(Image.open(out / f"{path.stem}_overlay.png")).astype(float)
        small = np.array(Image.open(path).resize((64, 32), Image.BILINEAR)).astype(float)
        assert np.abs(overlay - (0.75 * small + 0.25 * palette[classes])).mean() < 3


def test_original_size_gives_the_images_size(tiny, tmp_path):
    spec, weights, images = tiny
    result = run("predict", spec, "--weights", weights, images[2], "-o", tmp_path, "--original-size")
    assert result.exit_code == 0, result.output
    for kind in ("classes", "color", "overlay"):
        assert Image.open(tmp_path / f"img2_{kind}.png").size == (50, 33)


def test_bad_input_one_line_and_nothing_written(tiny, tmp_path):
    spec, weights, images = tiny
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    out = tmp_path / "out"
    one_error_line(run("predict", spec, "--weights", weights, images[0], text, "-o", out),
                   "cannot read", "notes.png", "as an image")
    assert not out.exists()
    one_error_line(run("predict", spec, "--weights", weights, tmp_path / "gone.png", "-o", out),
                   "no such image file")
    one_error_line(run("predict", spec, "--weights", tmp_path / "gone.pth", images[0], "-o", out),
                   "gone.pth", "no such checkpoint file")
    one_error_line(run("predict", spec, "--weights", text, images[0], "-o", out),
                   "not a PyTorch checkpoint")
    one_error_line(run("predict", spec, "--weights", weights, images[0], "-o", text / "sub"),
                   "cannot write to output folder")
    one_error_line(run("predict", spec, "-p", "classes=5", "--weights", weights, images[0], "-o", out),
                   "does not fit tiny", "try -p classes=3")
    one_error_line(run("predict", spec, images[0], "-o", out), "needs --weights")
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / images[0].name).write_bytes(images[0].read_bytes())
    one_error_line(run("predict", spec, "--weights", weights, images[0], twin / images[0].name,
                       "-o", out), "would write the same outputs")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error(tiny, tmp_path):
    spec, weights, images = tiny
    one_error_line(run("predict", spec, "--weights", weights, images[0], "-o", tmp_path,
                       "--device", "cuda"), "no CUDA GPU is available", "--device cpu")


def test_predict_section_is_checked(tmp_path):
    with pytest.raises(SpecError, match="unknown step 'normalise'.*did you mean 'normalize'"):
        PredictConfig.from_meta({"steps": [{"normalise": {}}]}, "x.yaml")
    with pytest.raises(SpecError, match="channel order"):
        PredictConfig.from_meta({"channels": "BRG"})
    with pytest.raises(UsageError, match="no predict: section"):
        config_for(espdsl.create_model("espnet_a", alpha3=0, alpha2=0))
    # a model with other outputs than the declared classes gets generated colours
    cfg = config_for(espdsl.create_model("espnet", classes=12, alpha3=0, alpha2=0))
    assert len(cfg.class_names) == 12 and len({tuple(c) for c in cfg.palette}) == 12


def test_zoo_declares_the_references_preprocessing_and_palette():
    meta = espdsl.load("espnet").meta["predict"]
    cfg = PredictConfig.from_meta(meta)
    assert cfg.channels == "BGR" and [s for s, _ in cfg.steps] == ["normalize", "resize", "divide"]
    assert len(cfg.class_names) == 20 and cfg.class_names[0] == "road"
    assert tuple(cfg.palette[0]) == ROAD and tuple(cfg.palette[18]) == BICYCLE
    assert tuple(cfg.palette[19]) == (0, 0, 0)
    assert espdsl.load("espnet_c").meta["predict"] == meta


# -- the reference -----------------------------------------------------------------------------
@needs_ref
def test_preprocessing_matches_the_reference_input():
    cfg = config_for(espdsl.create_model("espnet", alpha3=0, alpha2=0))
    x = preprocess(read_image(REF / f"{IMAGE}.png"), cfg)
    ref = np.load(REF / "outputs" / f"{IMAGE}_input.npy")
    assert x.shape == ref.shape and x.dtype == torch.float32
    assert np.abs(x.numpy() - ref).max() < 1e-5


@needs_ref
def test_predict_agrees_with_the_reference_class_map(tmp_path):
    result = run("predict", ROOT / "zoo/espnet.yaml", "-p", "alpha3=8", "--weights",
                 REF / "weights/decoder/espnet_p_2_q_8.pth", REF / f"{IMAGE}.png", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    ours = np.array(Image.open(tmp_path / f"{IMAGE}_classes.png"))
    ref = np.array(Image.open(REF / "outputs" / f"{IMAGE}_decoder_p2_q8_classes.png"))
    assert ours.shape == ref.shape == (512, 1024)
    agreement = (ours == ref).mean()
    assert agreement >= 0.999, agreement
    color = np.array(Image.open(tmp_path / f"{IMAGE}_color.png"))
    assert (color[ours == 0] == ROAD).all() and color.shape == (512, 1024, 3)
