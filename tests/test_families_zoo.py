"""The families issue 16 adds to the zoo, each against torchvision 0.28 (random weights and
batch-norm statistics, loaded strictly through the spec's own key map): EfficientNet-B0..B7 (one
spec, the variant a parameter), MobileNetV3 Large and Small, RegNetY-400MF (from its width
rule), MnasNet 1.0, and MobileNetV2's width multiplier. Counts are the issue's and torchvision's
model cards'; MACs are fvcore's convolution + linear count on torchvision's model."""
from __future__ import annotations

import pytest
import torch

import espdsl
from espdsl.analysis.check import fvcore_conv_macs
from espdsl.weights import load_weights
from test_torchvision import reference, tv  # noqa: F401  (the fixture)

# zoo spec, its parameters, torchvision's builder, its weights enum, the count
FAMILIES = {
    "efficientnet_b0": ("efficientnet", {}, "EfficientNet_B0_Weights", 5_288_548),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}, "MobileNet_V3_Large_Weights", 5_483_032),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, "MobileNet_V3_Small_Weights", 2_542_856),
    "regnet_y_400mf": ("regnet_y_400mf", {}, "RegNet_Y_400MF_Weights", 4_344_144),
    "mnasnet1_0": ("mnasnet1_0", {}, "MNASNet1_0_Weights", 4_383_312),
}
SIZE = 64      # a small input: outputs are compared here (full size: the slow tests)


def parity(tv, builder: str, spec: str, params: dict, size: int = SIZE, ref=None,
           **kwargs) -> float:
    """Build both, load torchvision's state_dict strictly through the spec's key map, and
    return the largest output difference on a random batch."""
    if ref is None:
        ref = reference(tv, builder) if not kwargs else _reference_with(tv, builder, **kwargs)
    model = espdsl.create_model(spec, **params).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    fit = load_weights(model, ref.state_dict())                       # strict
    assert fit.ok and fit.keymap == "torchvision" and fit.dropped == []
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        return (model(x) - ref(x)).abs().max().item()


def hooked_macs(model: torch.nn.Module, size: int) -> int:
    """Convolution and linear MACs of one forward pass of ``model``, counted by forward hooks
    on torch's modules (fvcore's rule, which the slow tests run itself: a convolution costs
    its output values times C_in / groups times the kernel area, a linear layer C_in C_out)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def _reference_with(tv, builder: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(tv.models, builder)(**kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("builder", sorted(FAMILIES))
def test_family_against_torchvision(tv, builder):
    spec, params, weights, count = FAMILIES[builder]
    meta = getattr(tv.models, weights).DEFAULT.meta
    assert count == meta["num_params"]
    ref = reference(tv, builder)
    assert parity(tv, builder, spec, params, ref=ref) <= 1e-5
    ir = espdsl.load(spec, input_size=(1, 3, SIZE, SIZE), **params)
    totals = espdsl.analyze(ir).totals
    assert totals.params == count
    assert totals.macs == hooked_macs(ref, SIZE)


# conv + linear MACs at the spec's own input size, counted by fvcore on torchvision's models
# (FlopCountAnalysis, "conv" + "linear"; the slow test test_family_macs_are_fvcores reruns it)
FVCORE_MACS = {"efficientnet_b0": 385_814_752, "mobilenet_v3_large": 216_589_760,
               "mobilenet_v3_small": 56_510_400, "regnet_y_400mf": 401_842_848,
               "mnasnet1_0": 314_415_872}


def test_full_size_macs_are_fvcores():
    for builder, (spec, params, _, _) in FAMILIES.items():
        assert espdsl.analyze(spec, **params).totals.macs == FVCORE_MACS[builder], builder


def test_full_size_macs_match_torchvisions_model_cards(tv):
    # analyze counts convolution and linear MACs; torchvision's GFLOPS column is the same count
    for builder, (spec, params, weights, _) in FAMILIES.items():
        meta = getattr(tv.models, weights).DEFAULT.meta
        macs = espdsl.analyze(spec, **params).totals.macs
        assert round(macs / 1e9, 3) == meta["_ops"], builder


@pytest.mark.parametrize("variant, count", [(3, 12_233_232), (7, 66_347_960)])
def test_efficientnet_variants_count_exactly(tv, variant, count):
    # counted on the IR only (B7 is too large to build in the default suite)
    meta = getattr(tv.models, f"EfficientNet_B{variant}_Weights").DEFAULT.meta
    assert count == meta["num_params"]
    assert espdsl.analyze("efficientnet", variant=variant).totals.params == count


def test_efficientnet_resolution_follows_the_variant():
    # the paper's Table / torchvision's transforms: 224, 240, 260, 300, 380, 456, 528, 600
    sizes = [espdsl.load("efficientnet", variant=v, input_size=(32, 32)).params["resolution"]
             for v in range(8)]
    assert sizes == [224, 240, 260, 300, 380, 456, 528, 600]


def test_efficientnet_b0_is_short():
    # the whole family in at most 40 lines of YAML, its key map aside
    from conftest import ROOT
    text = (ROOT / "zoo" / "efficientnet.yaml").read_text()
    assert len(text.split("\nweights:")[0].splitlines()) <= 40


@pytest.mark.parametrize("width", [0.5, 1.4])
def test_mobilenet_v2_width_multiplier(tv, width):
    assert parity(tv, "mobilenet_v2", "mobilenet_v2", {"width": width}, width_mult=width) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("variant", range(1, 8))
def test_efficientnet_variants_against_torchvision(tv, variant):
    builder = f"efficientnet_b{variant}"
    ref = reference(tv, builder)
    assert parity(tv, builder, "efficientnet", {"variant": variant}, ref=ref) <= 1e-5
    size = espdsl.load("efficientnet", variant=variant).input_shape[2]
    assert espdsl.analyze("efficientnet", variant=variant).totals.macs == fvcore_conv_macs(
        ref, torch.zeros(1, 3, size, size))


@pytest.mark.slow
@pytest.mark.parametrize("builder", sorted(FAMILIES))
def test_family_macs_are_fvcores(tv, builder):
    spec, params, _, _ = FAMILIES[builder]
    ref = reference(tv, builder)
    size = espdsl.load(spec, **params).input_shape[2]
    assert espdsl.analyze(spec, **params).totals.macs == fvcore_conv_macs(
        ref, torch.zeros(1, 3, size, size))


@pytest.mark.slow
def test_regnet_y_800mf_from_the_same_rule(tv):
    params = {"d": 14, "w_0": 56, "w_a": 38.84, "w_m": 2.4, "gw": 16}
    assert parity(tv, "regnet_y_800mf", "regnet_y_400mf", params) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("builder", sorted(FAMILIES))
def test_family_at_full_size(tv, builder):
    spec, params, _, _ = FAMILIES[builder]
    assert parity(tv, builder, spec, params, size=224) <= 1e-5
