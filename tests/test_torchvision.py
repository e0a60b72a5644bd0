"""Parity with torchvision 0.28 (the test extra installs it with --no-deps, see the README):
resnet18, mobilenet_v2 and shufflenet_v2_x1_0 written as specs have torchvision's parameter
count, load torchvision's state_dict through the key map beside the spec (strict), compute the
same outputs, and espdsl's MACs are fvcore's count on the torchvision model."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.analysis.check import fvcore_conv_macs
from espdsl.cli import main
from espdsl.compat import import_torchvision
from espdsl.weights import load_weights

# the numbers (torchvision's model cards say the same: Weights.meta["num_params"])
PARAMS = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872, "shufflenet_v2_x1_0": 2_278_604}
WEIGHTS = {"resnet18": "ResNet18_Weights", "mobilenet_v2": "MobileNet_V2_Weights",
           "shufflenet_v2_x1_0": "ShuffleNet_V2_X1_0_Weights"}


@pytest.fixture(scope="module")
def tv():
    try:
        return import_torchvision()
    except ImportError:
        pytest.skip("torchvision is not installed (the test extra's: "
                    "pip install --no-deps torchvision==0.28.0)")


def reference(tv, name: str) -> torch.nn.Module:
    """torchvision's model with every weight and batch-norm statistic random (not the init's
    zeros and ones, so a swapped or missed tensor shows in the outputs)."""
    torch.manual_seed(0)
    model = getattr(tv.models, name)()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parity_with_torchvision(tv, name):
    ref = reference(tv, name)
    meta = getattr(tv.models, WEIGHTS[name]).DEFAULT.meta
    assert sum(p.numel() for p in ref.parameters()) == PARAMS[name] == meta["num_params"]

    model = espdsl.create_model(name).eval()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    fit = load_weights(model, ref.state_dict())              # strict
    assert fit.ok and fit.keymap == "torchvision" and fit.dropped == []

    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=1e-5)

    totals = espdsl.analyze(name).totals
    assert totals.params == PARAMS[name]
    macs = fvcore_conv_macs(ref, torch.zeros(1, 3, 224, 224))   # conv + linear, on torchvision's
    assert totals.macs == macs
    assert round(totals.macs / 1e9, 3) == meta["_ops"]          # torchvision's GFLOPS column


def test_compile_with_a_torchvision_state_dict(tv, tmp_path):
    ref = reference(tv, "resnet18")
    weights = tmp_path / "resnet18-torchvision.pth"
    torch.save(ref.state_dict(), weights)
    out = tmp_path / "resnet18.pt"
    result = CliRunner().invoke(main, ["compile", "resnet18", "--weights", str(weights),
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "weights: through the spec's 'torchvision' key map" in result.output
    again = espdsl.create_model(str(out)).eval()      # an espdsl checkpoint: espdsl's keys
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(again(x), ref(x), rtol=0, atol=1e-5)
