"""Key maps: the rule semantics, located errors, and strict loading through a spec's map."""
from __future__ import annotations

import pytest
import torch

import espdsl
from espdsl.errors import SpecError, WeightsError
from espdsl.keymap import KeyMap
from espdsl.weights import load_weights


def km(*rules):
    return KeyMap.parse("m", {"keys": [list(r) for r in rules]})


def test_rules_rewrite_from_the_left_first_match_wins():
    m = km(["^stage{s}.0.", "stage{s}_0."], ["^stage{s}.{i}.", "stage{s}.{i - 1}."],
           ["branch2.3.", "right_dw.conv."], ["^fc.", "classifier."])
    assert m.rewrite("stage2.0.branch2.3.weight") == "stage2_0.right_dw.conv.weight"
    assert m.rewrite("stage4.3.branch2.3.bias") == "stage4.2.right_dw.conv.bias"
    assert m.rewrite("fc.weight") == "classifier.weight"
    assert m.rewrite("conv5.0.weight") == "conv5.0.weight"          # no rule: kept


def test_anchored_rules_match_only_at_the_start():
    m = km(["^conv1.", "stem.conv."])
    assert m.rewrite("conv1.weight") == "stem.conv.weight"
    assert m.rewrite("layer1.0.conv1.weight") == "layer1.0.conv1.weight"
    assert km(["conv1.", "c."]).rewrite("layer1.0.conv1.weight") == "layer1.0.c.weight"


def test_null_drops_a_key_and_empty_targets_remove_segments():
    m = km(["^encoder.output_conv.", None], ["^module.", ""])
    assert m.rewrite("encoder.output_conv.weight") is None
    assert m.rewrite("module.fc.weight") == "fc.weight"
    state, dropped = m.translate({"encoder.output_conv.bias": 1, "a.b": 2})
    assert state == {"a.b": 2} and dropped == ["encoder.output_conv.bias"]


def test_two_keys_onto_one_name_is_an_error():
    with pytest.raises(SpecError, match="sends both 'a.weight' and 'b.weight' to 'c.weight'"):
        km(["a.", "c."], ["b.", "c."]).translate({"a.weight": 1, "b.weight": 2})


@pytest.mark.parametrize("rule, message", [
    ('["stage{s.0", "x"]', "bad pattern 'stage{s.0'"),
    ('["^stage{s}.{i}.", "stage{j}."]', "unknown name 'j'"),
    ('["^a.{i}.{i}.", "b."]', "a placeholder is used twice"),
    ('["^a.", 3]', "3 is not of type 'string', 'null'"),
])
def test_bad_rules_are_located_errors(tmp_path, rule, message):
    spec = tmp_path / "net.yaml"
    spec.write_text("model: net\ninput: {channels: 3, size: [8, 8]}\n"
                    "nodes:\n  - {name: c, op: conv, out: 4}\n"
                    f"weights:\n  other:\n    keys:\n      - {rule}\n")
    with pytest.raises(SpecError) as info:
        espdsl.load(str(spec))
    assert message in str(info.value) and str(info.value).startswith(f"{spec}:8:")


def _net(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(
        "model: net\ninput: {channels: 3, size: [8, 8]}\nnodes:\n"
        "  - {name: stem, block: conv_bn, N: 4, n: 3}\n"
        "  - {name: pool, op: global_avgpool}\n  - {name: head, op: linear, out: 2}\n"
        "weights:\n  theirs:\n    doc: a Sequential of conv, bn, pool, flatten, linear\n    keys:\n"
        '      - ["^0.", "stem.conv."]\n      - ["^1.", "stem.bn."]\n      - ["^4.", "head."]\n')
    return spec


def test_a_checkpoint_with_other_names_loads_through_the_map(tmp_path):
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),
                              torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
    with torch.no_grad():
        ref[1].running_mean.uniform_(-1, 1)
    model = espdsl.create_model(str(_net(tmp_path)))
    fit = load_weights(model, ref.state_dict())
    assert fit.ok and fit.keymap == "theirs"
    torch.testing.assert_close(model.state_dict()["stem.bn.running_mean"], ref[1].running_mean)
    torch.testing.assert_close(model.state_dict()["head.weight"], ref[4].weight)


def test_loading_stays_strict_through_a_map(tmp_path):
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    model = espdsl.create_model(str(_net(tmp_path)))
    with pytest.raises(WeightsError) as info:
        load_weights(model, ref.state_dict())
    text = str(info.value)
    assert "not even through its 'theirs' key map" in text
    assert "head.weight checkpoint [3, 4] vs model [2, 4]" in text and "\n" not in text
