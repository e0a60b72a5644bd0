"""Key-map tooling (issue 16): patterns over any key text, rules that reshape, targets that read
the spec's parameters, the ``espdsl keymap`` dry run, and load errors in full on request."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.errors import SpecError, WeightsError
from espdsl.keymap import KeyMap, report
from espdsl.weights import load_weights


def km(*rules, params=None):
    return KeyMap.parse("m", {"keys": [list(r) for r in rules]}, params=params)


def test_patterns_match_any_key_text():
    # torchvision's RegNet names its blocks 'block1-0'
    m = km(["^trunk_output.block{s}.block{t}-{i}.", "stage{s}.{i}."], ["f.", ""])
    assert m.rewrite("trunk_output.block2.block2-3.f.a.0.weight") == "stage2.3.a.0.weight"
    assert km(["model@v2:", "m."]).rewrite("model@v2:.w") == "m.w"
    with pytest.raises(SpecError, match="bad pattern 'a b'"):
        km(["a b", "c."])


def test_targets_read_the_specs_parameters():
    m = km(["^features.{j}.block.{b}.", "b{j}.{(['dw', 'project'] if se[j] == 0 else "
                                         "['dw', 'se', 'project'])[b]}."], params=["se"])
    assert m.rewrite("features.1.block.2.w", {"se": [0, 1]}) == "b1.project.w"
    assert m.rewrite("features.0.block.1.w", {"se": [0, 1]}) == "b0.project.w"
    with pytest.raises(SpecError, match="unknown name 'sse' in target"):
        km(["^a.{j}.", "b{sse[j]}."], params=["se"])


def test_a_reshape_rule_changes_layout_when_the_numbers_agree():
    state = {"fc.weight": torch.arange(8.0).reshape(4, 2), "gamma": torch.ones(3, 1, 1)}
    shapes = {"mix.weight": (4, 2, 1, 1), "scale.weight": (3,)}
    m = km(["fc.", "mix.", "reshape"], ["gamma", "scale.weight", "reshape"])
    out, _ = m.translate(state, shapes)
    assert out["mix.weight"].shape == (4, 2, 1, 1) and out["scale.weight"].shape == (3,)
    assert torch.equal(out["mix.weight"].flatten(), torch.arange(8.0))
    # without the flag the layouts stay, and a real disagreement stays visible
    assert km(["fc.", "mix."]).translate(state, shapes)[0]["mix.weight"].shape == (4, 2)
    rep = report(m, {"fc.weight": (4, 3)}, {"mix.weight": (4, 2, 1, 1)})
    assert rep.shapes == [("mix.weight", (4, 3), (4, 2, 1, 1))]


def test_a_linear_checkpoint_loads_into_a_pointwise_convolution(tmp_path):
    spec = tmp_path / "mix.yaml"
    spec.write_text("""model: mix
input: {channels: 4, size: [3, 3]}
nodes:
  - {name: expand, op: conv, out: 16, bias: true}
  - {name: gamma, op: scale}
weights:
  channels_last:
    keys:
      - ["^pwconv1.", "expand.", reshape]
      - ["^ls.", "gamma.weight", reshape]
""")
    lin = torch.nn.Linear(4, 16)
    gamma = torch.rand(16, 1, 1)
    model = espdsl.create_model(str(spec)).eval()
    fit = load_weights(model, {"pwconv1.weight": lin.weight.detach(),
                               "pwconv1.bias": lin.bias.detach(), "ls": gamma})
    assert fit.ok and fit.keymap == "channels_last"
    x = torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        want = lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) * gamma
        torch.testing.assert_close(model(x), want)


@pytest.fixture(scope="module")
def v3_small_weights(tmp_path_factory):
    from espdsl.compat import import_torchvision
    try:
        tv = import_torchvision()
    except ImportError:
        pytest.skip("torchvision is not installed")
    path = tmp_path_factory.mktemp("w") / "v3s.pth"
    torch.save(tv.models.mobilenet_v3_small().state_dict(), path)
    return path


def test_keymap_command_shows_every_rewrite(v3_small_weights):
    result = CliRunner().invoke(main, ["keymap", "mobilenet_v3_small", "--weights",
                                       str(v3_small_weights)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "key map: torchvision"
    row = next(line for line in lines if line.strip().startswith("features.4.block.2.fc1.weight"))
    # block 4 of the Small table: an expansion, then dw, then SE (index 2)
    assert "-> b4.se.fc1.weight" in row and "[^features.{j}.block.{b}.]" in row
    assert lines[-1] == "fits: the checkpoint loads strictly"
    state = torch.load(v3_small_weights, weights_only=True)
    assert sum("->" in line for line in lines) == len(state)


def test_keymap_command_lists_both_sides_of_a_mismatch_in_full(v3_small_weights):
    result = CliRunner().invoke(main, ["keymap", "mobilenet_v3_large", "--weights",
                                       str(v3_small_weights)])
    assert result.exit_code == 1
    out = result.output
    ckpt = espdsl.create_model("mobilenet_v3_large").state_dict()
    state = torch.load(v3_small_weights, weights_only=True)
    from espdsl.keymap import key_maps
    m = key_maps(espdsl.load("mobilenet_v3_large").meta)[0]
    params = espdsl.load("mobilenet_v3_large").params
    mapped, _ = m.translate(state, None, params)
    unexpected = [k for k in mapped if k not in ckpt]
    missing = [k for k in ckpt if k not in mapped and not k.endswith("num_batches_tracked")]
    assert unexpected and missing
    section = out.split("checkpoint keys the model lacks")[1].split("model keys the checkpoint")[0]
    assert [line.strip() for line in section.splitlines()[1:]] == unexpected
    section = out.split("model keys the checkpoint lacks")[1].split("shapes that disagree")[0]
    assert [line.strip() for line in section.splitlines()[1:]] == missing
    assert "a target failed: index 2 is out of range" in out


def test_load_error_in_full_on_request(v3_small_weights):
    model = espdsl.create_model("mobilenet_v3_large")
    with pytest.raises(WeightsError) as short:
        load_weights(model, v3_small_weights)
    assert "more)" in str(short.value) and "espdsl keymap SPEC --weights FILE" in str(short.value)
    with pytest.raises(WeightsError) as full:
        load_weights(model, v3_small_weights, full=True)
    text = str(full.value)
    assert "more)" not in text and text.count("missing from the checkpoint") > 3
    assert text.count("not in the model") > 3
