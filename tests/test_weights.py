"""Loading the authors' ESPNet checkpoints with exact parity; espdsl's own checkpoints.

Expected values come from ../shared/espnet-reference (the authors' outputs and its README's
parameter table) and from the issue text, never from espdsl itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.errors import WeightsError
from espdsl.weights import load_weights, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "espnet-reference"
IMAGE = "frankfurt_000000_000294_leftImg8bit"
# the reference README's table (paper Table 2g)
PARAMS = {("encoder", 3): 187_529, ("encoder", 5): 252_297, ("encoder", 8): 349_449,
          ("decoder", 3): 202_649, ("decoder", 5): 267_417, ("decoder", 8): 364_569}
SPEC = {"encoder": "zoo/espnet_c.yaml", "decoder": "zoo/espnet.yaml"}

needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference data not found at {REF} "
                               "(needs ../shared/espnet-reference beside the project)")


def ckpt(kind: str, q: int, suffix: str = "") -> Path:
    return REF / "weights" / kind / f"espnet_p_2_q_{q}{suffix}.pth"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def image_input() -> torch.Tensor:
    if not REF.is_dir():
        pytest.skip(f"reference data not found at {REF}")
    return torch.from_numpy(np.load(REF / "outputs" / f"{IMAGE}_input.npy"))


# -- parity ---------------------------------------------------------------------------------------
@needs_ref
@pytest.mark.parametrize("kind,q", sorted(PARAMS))
def test_cityscapes_checkpoint_reproduces_reference_outputs(kind, q, image_input):
    from PIL import Image

    model = espdsl.create_model(ROOT / SPEC[kind], weights=ckpt(kind, q), alpha3=q).eval()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[kind, q]
    with torch.no_grad():
        logits = model(image_input)
    tag = f"{kind}_p2_q{q}"
    if kind == "decoder":
        assert logits.shape == (1, 20, 512, 1024)
        ours = F.avg_pool2d(logits, 8)[0].numpy()
        ref = np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits_pooled8.npy")
    else:
        assert logits.shape == (1, 20, 64, 128)
        ours = logits[0].numpy()
        ref = np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits.npy")
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4
    classes = np.array(Image.open(REF / "outputs" / f"{IMAGE}_{tag}_classes.png"))
    np.testing.assert_array_equal(logits[0].argmax(0).numpy(), classes)


@needs_ref
def test_camvid_checkpoint_loads_with_classes_12_and_b1_skip():
    model = espdsl.create_model("espnet", weights=ckpt("decoder", 8, "_camvid"), classes=12, skip="b1")
    assert sum(p.numel() for p in model.parameters()) == 354_517
    state = read_checkpoint(ckpt("decoder", 8, "_camvid"))
    assert tuple(state["conv.conv.weight"].shape) == (12, 31, 3, 3)   # 12 + 19 (b1) inputs
    assert torch.equal(model.state_dict()["conv.conv.weight"], state["conv.conv.weight"])


@needs_ref
def test_checkpoints_have_no_batch_counters_and_loading_keeps_the_models():
    state = read_checkpoint(ckpt("encoder", 3))
    assert not any(k.endswith("num_batches_tracked") for k in state)
    model = espdsl.create_model("espnet_c", alpha3=3)
    fit = load_weights(model, ckpt("encoder", 3))
    assert fit.ok and fit.missing == [] and fit.unexpected == []
    counters = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    assert counters and all(int(v) == 0 for v in counters.values())
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


# -- mismatches --------------------------------------------------------------------------------------
@needs_ref
def test_wrong_alpha3_names_shapes_and_the_value_that_fits():
    with pytest.raises(WeightsError) as err:
        espdsl.create_model("espnet", weights=ckpt("decoder", 8), alpha3=3)
    text = str(err.value)
    assert "\n" not in text and "espnet_p_2_q_8.pth" in text
    assert "0 missing, 55 unexpected" in text     # 5 modules x 11 tensors
    assert "encoder.level3.3.c1.conv.weight [25, 128, 1, 1]" in text
    assert "this checkpoint has 8 encoder.level3 modules, the model 3" in text
    assert "try -p alpha3=8" in text


@needs_ref
def test_camvid_into_default_espnet_suggests_classes_and_skip():
    with pytest.raises(WeightsError) as err:
        espdsl.create_model("espnet", weights=ckpt("decoder", 8, "_camvid"))
    text = str(err.value)
    assert "encoder.classifier.conv.weight checkpoint [12, 256, 1, 1] vs model [20, 256, 1, 1]" in text
    assert "try -p classes=12 -p skip=b1" in text


@needs_ref
def test_encoder_and_decoder_checkpoints_name_the_right_spec():
    with pytest.raises(WeightsError, match="only the 'encoder' part of espnet .*spec espnet_c"):
        espdsl.create_model("espnet", weights=ckpt("encoder", 8))
    with pytest.raises(WeightsError, match="'encoder' part fits espnet_c: load it into spec espnet"):
        espdsl.create_model("espnet_c", weights=ckpt("decoder", 8))


@needs_ref
def test_not_strict_loads_what_fits_and_reports_the_rest():
    model = espdsl.create_model("espnet", alpha3=3)
    fit = load_weights(model, ckpt("decoder", 8), strict=False)
    assert len(fit.unexpected) == 55 and not fit.missing and not fit.shape
    state = read_checkpoint(ckpt("decoder", 8))
    assert torch.equal(model.state_dict()["classifier.weight"], state["classifier.weight"])


def test_state_dict_wrappers_and_dataparallel_prefix():
    src = espdsl.create_model("espnet_c", alpha3=0, alpha2=0)
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}
    dst = espdsl.create_model("espnet_c", alpha3=0, alpha2=0)
    assert load_weights(dst, wrapped).ok
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


# -- bad files -----------------------------------------------------------------------------------------
def test_bad_checkpoint_files_give_one_line(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    full = tmp_path / "model.pt"
    torch.save(espdsl.create_model("espnet_c", alpha3=0, alpha2=0), full)
    good = tmp_path / "good.pth"
    torch.save(espdsl.create_model("espnet_c", alpha3=0, alpha2=0).state_dict(), good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {tmp_path / "nope.pth": "no such checkpoint file", text: "not a PyTorch checkpoint",
             full: "holds Python objects, not only tensors", cut: "corrupt checkpoint"}
    for path, message in cases.items():
        with pytest.raises(WeightsError, match=message):
            read_checkpoint(path)
        result = run("compile", "espnet_c", "-p", "alpha3=0", "-p", "alpha2=0", "--weights", str(path))
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
        assert "Traceback" not in result.output


# -- espdsl's own checkpoints --------------------------------------------------------------------------
@needs_ref
def test_compile_weights_to_pt_rebuilds_from_the_file_alone(tmp_path):
    out = tmp_path / "enc3.pt"
    result = run("compile", "espnet_c", "-p", "alpha3=3", "--weights", str(ckpt("encoder", 3)),
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    raw = torch.load(out, weights_only=True, map_location="cpu")     # plain types only
    assert raw["params"]["alpha3"] == 3 and {"espnet_c", "esp", "cbr"} <= set(raw["specs"])
    model = espdsl.create_model(out).eval()
    reference = espdsl.create_model("espnet_c", weights=ckpt("encoder", 3), alpha3=3).eval()
    assert sum(p.numel() for p in model.parameters()) == 187_529
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    with pytest.raises(WeightsError, match="saved with -p alpha3=3"):
        espdsl.create_model(out, alpha3=5)      # overriding a parameter must still fit


def test_checkpoint_of_a_user_spec_survives_its_files(tmp_path):
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    (blocks / "twin.yaml").write_text(
        "block: twin\nparams: {M: {type: int}, N: {type: int}}\nnodes:\n"
        "  - {name: a, block: cbr, N: N}\n  - {name: b, block: cbr, N: N}\n")
    spec = tmp_path / "tiny.yaml"
    spec.write_text("model: tiny\nparams: {w: {type: int, default: 8}}\nblocks: [blocks]\n"
                    "input: {channels: 3, size: [32, 32]}\nnodes:\n"
                    "  - {name: body, block: twin, N: w}\n  - {name: head, block: c, N: 2}\n")
    model = espdsl.create_model(spec, w=6)
    path = tmp_path / "tiny.pt"
    from espdsl.weights import save_checkpoint
    save_checkpoint(model, path)
    spec.unlink()
    (blocks / "twin.yaml").unlink()
    again = espdsl.create_model(path)
    x = torch.randn(1, 3, 32, 32)
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.espdsl_ir.params["w"] == 6
    save_checkpoint(again, tmp_path / "again.pt")          # a rebuilt model saves again
    assert espdsl.create_model(tmp_path / "again.pt").espdsl_ir.name == "tiny"


def test_plain_state_dict_is_not_a_spec(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(espdsl.create_model("espnet_c", alpha3=0, alpha2=0).state_dict(), path)
    with pytest.raises(WeightsError, match="plain state_dict, not an espdsl checkpoint"):
        espdsl.create_model(str(path))
