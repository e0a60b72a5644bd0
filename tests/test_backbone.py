"""Backbones: a classifier cut at named nodes, and pruning of what no output depends on."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.errors import ResolveError
from espdsl.summary import summarize

from conftest import ROOT

BACKBONE = ROOT / "docs" / "examples" / "backbone.yaml"
# The head on layer3/layer4, by hand: two 1x1 lateral convolutions (256 -> 128 and 512 -> 128,
# no bias) and a 1x1 classifier 128 -> 21 (no bias).
HEAD = 256 * 128 + 512 * 128 + 128 * 21
FC = 512 * 1000 + 1000           # ResNet-18's classifier, which nothing reads
RESNET18 = 11_689_512            # torchvision's count (tests/test_torchvision.py checks it)


def test_backbone_counts_513000_fewer_parameters_than_the_whole_classifier():
    ir = espdsl.load(BACKBONE)
    _, totals = summarize(ir)
    assert FC == 513_000
    assert totals["params"] == RESNET18 + HEAD - FC
    assert [(p["path"], p["params"]) for p in totals["pruned"]] == [
        ("backbone.avgpool", 0), ("backbone.fc", FC)]
    assert not any(n.name.startswith(("backbone.fc", "backbone.avgpool")) for n in ir.nodes())


def test_the_count_equals_the_parameters_torch_uses_in_the_forward():
    """Independently of the analysis: a forward and backward pass, then count the parameters
    that received a gradient (an unused one would have grad None)."""
    ir = espdsl.load(BACKBONE, input_size=(1, 3, 64, 64))
    model = espdsl.build_ir(ir)
    model(torch.randn(1, 3, 64, 64)).square().sum().backward()
    used = sum(p.numel() for p in model.parameters() if p.grad is not None)
    assert used == sum(p.numel() for p in model.parameters())  # nothing unused was built
    assert used == summarize(ir)[1]["params"] == RESNET18 + HEAD - FC
    assert not [k for k in model.state_dict() if k.startswith("backbone.fc")]


def test_without_outputs_the_dead_nodes_are_pruned_and_validate_warns(tmp_path):
    text = BACKBONE.read_text().replace("model: backbone", "model: net").replace(
        ", outputs: [layer3, layer4]", "")
    text += "  - {name: extra, op: conv, from: lat3, out: 8, kernel: 1}\n" \
            "  - {name: out, op: identity, from: head}\n"
    spec = tmp_path / "net.yaml"
    spec.write_text(text)
    assert summarize(espdsl.load(spec))[1]["params"] == RESNET18 + HEAD - FC
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in result.output.splitlines() if "warning:" in ln]
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "name: backbone" in ln)) + 1
    assert warnings == [
        f"{spec}:{line}:5: warning: node 'backbone.avgpool' feeds no output; it is pruned; "
        "hint: cut the block where you take from it, e.g. outputs: [...] on its node",
        f"{spec}:{line}:5: warning: node 'backbone.fc' (513,000 parameters) feeds no output; "
        "it is pruned; hint: cut the block where you take from it, e.g. outputs: [...] on its node",
        f"{spec}:{line + 6}:5: warning: node 'extra' (1,024 parameters) feeds no output; it is "
        "pruned; hint: remove it, or use it"]
    # with 'outputs:' the cut is on purpose: no warning
    result = CliRunner().invoke(main, ["validate", str(BACKBONE)])
    assert result.exit_code == 0 and "warning" not in result.output


def test_compile_says_what_was_pruned_and_render_leaves_it_out():
    result = CliRunner().invoke(main, ["compile", str(BACKBONE)])
    assert result.exit_code == 0
    assert result.output.rstrip().endswith(
        "pruned (no output uses them): backbone.avgpool, backbone.fc; 513,000 parameters not counted")
    dot = espdsl.to_digraph(BACKBONE, expand="all").source
    assert "layer4" in dot and "avgpool" not in dot and "backbone.fc" not in dot


def test_outputs_must_name_inner_nodes(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(BACKBONE.read_text().replace("model: backbone", "model: net").replace(
        "outputs: [layer3, layer4]", "outputs: [layer3, layr4]"))
    with pytest.raises(ResolveError, match=r"'outputs' names 'layr4', not a node of 'backbone'"
                                           r".*did you mean 'layer4'"):
        espdsl.load(spec)
