"""The library beyond ESPNet: block parameter counts from their papers' formulas (counted on the
built torch modules), ERFNet and ESPNetv2 against their publications, the authors' key maps,
the optimization passes on the new ops, `espdsl compare` on the new blocks, and their drawings."""
from __future__ import annotations

import re

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.weights import load_weights


def conv_weights(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))


# block, parameters, convolution weights by the paper's formula (worked by hand)
BLOCKS = [
    ("inverted_residual", dict(M=24, N=24, t=6), 6 * 24 * (24 + 9 + 24)),      # tM(M + n^2 + N)
    ("inverted_residual", dict(M=32, N=16, t=1), 32 * 9 + 32 * 16),             # t = 1: no expansion
    ("se", dict(M=64, r=4), 2 * 64 * 16),                                       # 2MS
    ("shufflenet_v2", dict(M=116), 58 * 58 * 2 + 9 * 58),                       # N^2/2 + n^2 N/2
    ("shufflenet_v2", dict(M=24, N=116, stride=2), 9 * 24 + 24 * 58 + 24 * 58 + 9 * 58 + 58 * 58),
    ("eesp", dict(M=128, N=128, K=4), 128 * 32 // 4 + (9 + 32) * 32 * 4),     # Md/K + (n^2 + d)dK
    ("non_bottleneck_1d", dict(M=64, d=2), 12 * 64 * 64),                       # 12 M^2
    ("erfnet_down", dict(M=16, N=64), 9 * 16 * 48),                             # 9M(N - M)
    ("resnet_basic", dict(M=64, N=128, stride=2), 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128),
]


@pytest.mark.parametrize("name, params, weights", BLOCKS, ids=lambda v: str(v))
def test_block_convolution_weights_follow_the_papers(name, params, weights):
    block = espdsl.create_block(name, **params)
    assert conv_weights(block) == weights
    with torch.no_grad():
        assert block.eval()(torch.randn(1, params["M"], 16, 16)).shape[1] == params.get("N", params["M"])


def test_shufflenet_v2_unit_splits_shuffles_and_keeps_the_identity_half():
    block = espdsl.create_block("shufflenet_v2", M=8).eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        y = block(x)
    # after the 2-group shuffle, even channels are the untouched first half (torchvision's x1)
    torch.testing.assert_close(y[:, 0::2], x[:, :4])


def test_erfnet_against_the_papers():
    totals = espdsl.analyze("erfnet").totals
    # ESPNet paper Table 1: ERFNet 2.06 M. The authors' module holds 2,066,836 (torch's count of
    # erfnet.Net(20)), of which the encoder's 1x1 output_conv (128 x 20 + 20) is never run by
    # the full network: the spec is the network that runs.
    assert totals.params == 2_064_256 == 2_066_836 - (128 * 20 + 20)
    assert round(totals.params / 1e6, 2) == 2.06
    assert espdsl.load("erfnet").output_shape == (1, 20, 512, 1024)
    # the encoder alone, with the classifier of the authors' first training stage
    decoder = espdsl.analyze("erfnet").scope("decoder").params
    assert espdsl.analyze("erfnet_encoder").totals.params == 2_064_256 - decoder + 128 * 20 + 20


def test_erfnet_authors_checkpoint_keys_load_through_their_map():
    model = espdsl.create_model("erfnet", input_size=(1, 3, 64, 128))
    theirs = dict(model.state_dict())
    theirs["encoder.output_conv.weight"] = torch.zeros(20, 128, 1, 1)   # in the authors' file
    theirs["encoder.output_conv.bias"] = torch.zeros(20)
    fit = load_weights(model, theirs)
    assert fit.keymap == "authors"
    assert fit.dropped == ["encoder.output_conv.weight", "encoder.output_conv.bias"]


# sacmehta/ESPNetv2 imagenet/README.md: s, parameters (M), FLOPs (M: convolution MACs)
ESPNETV2 = [(0.5, 1.24, 28.37), (1.0, 1.67, 85.72), (1.25, 1.96, 123.39), (1.5, 2.31, 168.6),
            (2.0, 3.49, 284.8)]


@pytest.mark.parametrize("s, params, flops", ESPNETV2)
def test_espnetv2_against_the_authors_table(s, params, flops):
    totals = espdsl.analyze("espnetv2", s=s).totals
    assert round(totals.params / 1e6, 2) == params
    assert abs(totals.macs_by_op["conv"] / 1e6 - flops) < 0.011   # the table cuts, not rounds
    assert totals.macs_by_op["linear"] == (1024 if s <= 1.5 else 1280) * 1000


def test_espnetv2_exact_counts_at_s1():
    # torch and fvcore on the authors' EESPNet(1000, s=1.0): 1,670,072 parameters, 3,130 of them
    # in modules its forward never calls (the down-samplers' unused PReLU, level5_0's inp_reinf);
    # 85,720,404 convolution MACs at 224 x 224
    totals = espdsl.analyze("espnetv2").totals
    assert totals.params == 1_670_072 - 3_130
    assert totals.macs_by_op["conv"] == 85_720_404


def _authors_names(key: str) -> str:
    """The authors' names for the spec's keys (sacmehta/ESPNetv2 imagenet/Model.py)."""
    key = re.sub(r"spp_dw(\d+)\.", r"spp_dw.\1.", key)
    key = re.sub(r"^level(\d)_0_reinf\.inp_reinf\.", r"level\1_0.inp_reinf.", key)
    return re.sub(r"^level(\d)_0_act\.", r"level\1_0.act.", key)


def test_espnetv2_authors_checkpoint_keys_load_through_their_map():
    model = espdsl.create_model("espnetv2", input_size=(1, 3, 64, 64))
    theirs = {_authors_names(k): v for k, v in model.state_dict().items()}
    for level, channels in (2, 32), (3, 64), (4, 128), (5, 256):     # built, never run
        theirs[f"level{level}_0.eesp.module_act.weight"] = torch.zeros(channels)
    theirs["level5_0.inp_reinf.0.conv.weight"] = torch.zeros(3, 3, 3, 3)
    fit = load_weights(model, theirs)
    assert fit.keymap == "authors" and len(fit.dropped) == 5


@pytest.mark.parametrize("name, size", [("mobilenet_v2", 64), ("shufflenet_v2_x1_0", 64),
                                        ("erfnet", 64), ("espnetv2", 64)])
def test_optimized_build_of_the_new_models_is_exact(name, size):
    torch.manual_seed(0)
    model = espdsl.create_model(name, input_size=(1, 3, size, size)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    fast = espdsl.passes.optimize_model(model)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    assert not any(n.op == "batchnorm" for n in fast.espdsl_ir.nodes())


def test_compare_takes_the_new_blocks_with_their_formulas():
    modules = "inverted_residual,se,shufflenet_v2,eesp,eesp_down,non_bottleneck_1d,erfnet_down,resnet_basic"
    result = CliRunner().invoke(main, ["compare", "--modules", modules, "--format", "json"])
    assert result.exit_code == 0, result.output
    import json
    rows = json.loads(result.output)
    assert [r["module"] for r in rows] == modules.split(",")
    for row in rows:
        assert row["params_formula"] == row["params"], row
        assert row["rf_formula"] == row["rf"], row
        assert abs(row["memory_mb_formula"] - row["memory_mb"]) < 1e-9, row


def test_drawings_of_the_new_ops_and_blocks():
    unit = espdsl.to_digraph("shufflenet_v2", M=116).source
    for text in ("channels 0:58", "channels 58:116", "dwconv 3x3", "shuffle, g=2", "concat"):
        assert text in unit, text
    net = espdsl.to_digraph("erfnet").source
    assert "non_bottleneck_1d x 5" in net and "non_bottleneck_1d x 8" in net
    se = espdsl.to_digraph("se", M=64, expand="all").source
    assert "global avgpool" in se and "\u00d7" in se and "global (1x1, vectors)" in se
    nb = espdsl.to_digraph("non_bottleneck_1d", M=64, d=2).source
    assert "conv 3x1, d=2, bias" in nb and "conv 1x3, d=2, bias" in nb
