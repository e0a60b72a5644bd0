"""Every op beyond ESPNet against its torch counterpart: the built module computes what the torch
module (or function) computes, the IR's shape is the real tensor's, parameters are the torch
module's, MACs are fvcore's count on the torch module, and the receptive field is the
gradient's. Element-wise work follows the documented per-value counts."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import espdsl
from conftest import load_module
from espdsl.analysis.check import check_rf, fvcore_conv_macs
from espdsl.build import build
from espdsl.errors import EspdslError
from espdsl.registry import default_registry
from espdsl.resolve import resolve
from espdsl.spec import parse_spec

C, H, W = 4, 24, 20          # not square: a swapped axis shows


def ir_of(nodes: str, channels: int = C, size: tuple[int, int] = (H, W)):
    text = f"model: t\ninput: {{channels: {channels}, size: [{size[0]}, {size[1]}]}}\nnodes:\n{nodes}"
    return resolve(parse_spec(text, "t.yaml"), {}, registry=default_registry())


def se_gate(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(F.adaptive_avg_pool2d(x, 1))


class ChannelsLast(nn.Module):
    """A torch module applied over channels at each pixel (ConvNeXt's LayerNorm2d)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """timm's LayerScale2d: a learned per-channel factor, no bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


# name: (spec nodes, the torch counterpart, receptive field (H, W) by hand or None)
CASES = {
    "conv [3, 3] dilation [1, 2]": (
        "  - {name: op, op: conv, out: 8, kernel: 3, dilation: [1, 2], bias: true}",
        lambda: nn.Conv2d(C, 8, 3, padding=(1, 2), dilation=(1, 2), bias=True), (3, 5)),
    "conv [3, 1] stride [2, 1]": (
        "  - {name: op, op: conv, out: 6, kernel: [3, 1], stride: [2, 1], groups: 2}",
        lambda: nn.Conv2d(C, 6, (3, 1), stride=(2, 1), padding=(1, 0), groups=2, bias=False),
        (3, 1)),
    "deconv [3, 2] stride [2, 1]": (
        "  - {name: op, op: deconv, out: 8, kernel: [3, 2], stride: [2, 1], padding: [1, 0], "
        "output_padding: [1, 0]}",
        lambda: nn.ConvTranspose2d(C, 8, (3, 2), stride=(2, 1), padding=(1, 0),
                                   output_padding=(1, 0), bias=False), None),
    "avgpool [3, 1]": (
        "  - {name: op, op: avgpool, kernel: [3, 1], stride: [2, 1], padding: [1, 0]}",
        lambda: nn.AvgPool2d((3, 1), (2, 1), (1, 0)), (3, 1)),
    "maxpool [2, 3]": (
        "  - {name: op, op: maxpool, kernel: [2, 3], stride: [2, 1], padding: [0, 1]}",
        lambda: nn.MaxPool2d((2, 3), (2, 1), (0, 1)), (2, 3)),
    "global_avgpool": (
        "  - {name: op, op: global_avgpool}",
        lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (H, W)),
    "global_avgpool keepdims": (
        "  - {name: op, op: global_avgpool, keepdims: true}",
        lambda: nn.AdaptiveAvgPool2d(1), (H, W)),
    "global_maxpool": (
        "  - {name: op, op: global_maxpool}",
        lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()), (H, W)),
    "flatten + linear": (
        "  - {name: flat, op: flatten}\n  - {name: op, op: linear, out: 10}",
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, 10)), (H, W)),
    "linear without bias": (
        "  - {name: pool, op: global_avgpool}\n  - {name: op, op: linear, out: 7, bias: false}",
        lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(C, 7, bias=False)),
        (H, W)),
    "relu6": ("  - {name: op, op: relu6}", nn.ReLU6, (1, 1)),
    "hardsigmoid": ("  - {name: op, op: hardsigmoid}", nn.Hardsigmoid, (1, 1)),
    "hardswish": ("  - {name: op, op: hardswish}", nn.Hardswish, (1, 1)),
    "sigmoid": ("  - {name: op, op: sigmoid}", nn.Sigmoid, (1, 1)),
    "silu": ("  - {name: op, op: silu}", nn.SiLU, (1, 1)),
    "mul (an SE gate)": (
        "  - {name: pool, op: global_avgpool, keepdims: true}\n  - {name: gate, op: sigmoid}\n"
        "  - {name: op, op: mul, from: [input, gate]}", lambda: se_gate, (H, W)),
    "slice": ("  - {name: op, op: slice, start: 1, stop: -1}", lambda: lambda x: x[:, 1:-1], (1, 1)),
    "dropout": ("  - {name: op, op: dropout, p: 0.3}", lambda: nn.Dropout(0.3), (1, 1)),
    "dropout channelwise": ("  - {name: op, op: dropout, p: 0.3, channelwise: true}",
                            lambda: nn.Dropout2d(0.3), (1, 1)),
    "stochastic_depth": ("  - {name: op, op: stochastic_depth, p: 0.3}", nn.Identity, (1, 1)),
    "layernorm over channels": ("  - {name: op, op: layernorm, eps: 0.001}",
                                lambda: ChannelsLast(nn.LayerNorm(C, eps=0.001)), (1, 1)),
    "groupnorm": ("  - {name: op, op: groupnorm, groups: 2}", lambda: nn.GroupNorm(2, C), None),
    "gelu": ("  - {name: op, op: gelu}", nn.GELU, (1, 1)),
    "gelu tanh": ("  - {name: op, op: gelu, approximate: tanh}",
                  lambda: nn.GELU(approximate="tanh"), (1, 1)),
    "scale": ("  - {name: op, op: scale, init: 0.1}", lambda: LayerScale(C), (1, 1)),
    "softmax": ("  - {name: op, op: softmax}", lambda: nn.Softmax(dim=1), (1, 1)),
    "tanh": ("  - {name: op, op: tanh}", nn.Tanh, (1, 1)),
    "pad constant": ("  - {name: op, op: pad, padding: [1, 2], value: 0.5}",
                     lambda: nn.ConstantPad2d((2, 2, 1, 1), 0.5), (1, 1)),
    "pad reflect": ("  - {name: op, op: pad, padding: 2, mode: reflect}",
                    lambda: nn.ReflectionPad2d(2), (1, 1)),
    "upsample bicubic": ("  - {name: op, op: upsample, mode: bicubic}",
                         lambda: lambda x: F.interpolate(x, scale_factor=2.0, mode="bicubic",
                                                         align_corners=False), None),
    "upsample to a node's size": (
        "  - {name: small, op: avgpool, kernel: 2}\n"
        "  - {name: op, op: upsample, from: [small, input]}",
        lambda: lambda x: F.interpolate(F.avg_pool2d(x, 2), size=x.shape[2:], mode="bilinear",
                                        align_corners=False), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_op_against_its_torch_counterpart(case):
    nodes, make, rf = CASES[case]
    ir = ir_of(nodes)
    model = build(ir).eval()
    ref = make()
    if isinstance(ref, nn.Module):
        ref.eval()
        with torch.no_grad():   # the same weights, taken in order
            ours = [p for p in model.parameters()]
            theirs = [p for p in ref.parameters()]
            assert [p.shape for p in ours] == [p.shape for p in theirs]
            for a, b in zip(ours, theirs):
                b.copy_(a)
    torch.manual_seed(0)
    x = torch.randn(2, C, H, W)
    with torch.no_grad():
        got, want = model(x), ref(x)
    assert tuple(got.shape[1:]) == ir.node(ir.output).shape == tuple(want.shape[1:])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    totals = espdsl.analyze(ir).totals
    assert totals.params == sum(p.numel() for p in ref.parameters()) if isinstance(ref, nn.Module) \
        else totals.params == 0
    if isinstance(ref, nn.Module):
        assert totals.macs == fvcore_conv_macs(ref, torch.zeros(ir.input_shape))
    if rf is not None:
        assert (totals.rf_h, totals.rf_w) == rf
        row = check_rf(model, ir, totals)
        assert row.ok, row


def test_deconv_and_upsample_fields_against_the_gradient():
    # periodic fields (they depend on the output position): checked position by position
    for nodes in (CASES["deconv [3, 2] stride [2, 1]"][0], CASES["upsample to a node's size"][0],
                  CASES["upsample bicubic"][0]):
        ir = ir_of(nodes, size=(48, 40))
        stats = espdsl.analyze(ir).totals
        row = check_rf(build(ir).eval(), ir, stats)
        assert row.ok, row


def test_global_pooling_counts_like_fvcore():
    # fvcore counts adaptive_avg_pool2d as one operation per input value
    from fvcore.nn import FlopCountAnalysis
    counts = FlopCountAnalysis(nn.AdaptiveAvgPool2d(1), torch.zeros(1, C, H, W)).by_operator()
    totals = espdsl.analyze(ir_of("  - {name: op, op: global_avgpool}")).totals
    assert totals.elementwise_by_op["global_avgpool"] == counts["adaptive_avg_pool2d"] == C * H * W


# operations per output value, from each op's formula (exp counted as one)
PER_VALUE = {"relu6": 2, "hardsigmoid": 4, "hardswish": 5, "sigmoid": 4, "silu": 5,
             "gelu": 5, "tanh": 1, "softmax": 3, "layernorm": 7, "scale": 1}


@pytest.mark.parametrize("op", sorted(PER_VALUE))
def test_activation_work_per_value(op):
    totals = espdsl.analyze(ir_of(f"  - {{name: a, op: {op}}}")).totals
    assert totals.elementwise == PER_VALUE[op] * C * H * W and totals.macs == 0


def test_data_movement_and_dropout_are_listed_as_ignored():
    ir = ir_of("  - {name: s, op: slice, stop: 2}\n  - {name: d, op: dropout}\n"
               "  - {name: f, op: flatten}\n  - {name: m, op: mul, from: [f, f]}")
    totals = espdsl.analyze(ir).totals
    assert sorted(totals.ignored) == ["dropout", "flatten", "slice"]
    assert totals.elementwise == 2 * H * W      # the one mul, of 2 x H x W values
    # the input and the product: the slice, dropout and flatten are views of the input
    assert totals.memory.peak == (C * H * W + 2 * H * W) * 4


def test_rectangular_receptive_field_is_reported_per_axis():
    # ERFNet's factorised pair with dilation 2: 3x1 then 1x3 (d = 2): 3 rows, 5 columns
    ir = ir_of("  - {name: a, op: conv, kernel: [3, 1]}\n"
               "  - {name: b, op: conv, kernel: [1, 3], dilation: [1, 2]}")
    totals = espdsl.analyze(ir).totals
    assert totals.rf == (3, 5) and totals.rf_h == 3 and totals.rf_w == 5 and totals.stride == 1
    assert totals.macs == H * W * C * C * (3 + 3)
    assert espdsl.analyze(ir).scope("a").rf == (3, 1)


def test_vector_shapes_in_the_ir_and_the_summary():
    ir = ir_of("  - {name: pool, op: global_avgpool}\n  - {name: fc, op: linear, out: 3}")
    assert ir.node("pool").shape == (C,) and ir.output_shape == (1, 3)
    from espdsl.summary import summarize
    rows, totals = summarize(ir)
    assert rows[-1]["shape"] == [1, 3] and totals["params"] == C * 3 + 3


@pytest.mark.parametrize("nodes, message", [
    ("  - {name: p, op: global_avgpool}\n  - {name: c, op: conv, out: 4}",
     "op 'conv' needs a feature map (C, H, W), its input is a vector (4,)"),
    ("  - {name: l, op: linear, out: 4}", "op 'linear' needs a vector (C,), its input is a feature map 4x24x20"),
    ("  - {name: s, op: slice, start: 3, stop: 2}", "slice 3:2 of 4 channels is empty or out of range"),
    ("  - {name: p, op: avgpool, kernel: 2}\n  - {name: m, op: mul, from: [p, input]}",
     "mul inputs do not broadcast: 4x12x10, 4x24x20"),
    ("  - {name: c, op: conv, kernel: [3, 1, 1]}", "[3, 1, 1] is too long; hint: a pair is [h, w]"),
    ("  - {name: c, op: conv, kernel: [3, k]}", "unknown name 'k'"),
    ("  - {name: u, op: upsample, scale: 2, from: [input, input]}", "upsample takes a scale or a second input"),
    ("  - {name: d, op: dropout, p: 1.0}", "dropout p must be in [0, 1)"),
])
def test_bad_use_of_the_new_ops_is_one_located_line(nodes, message):
    with pytest.raises(EspdslError) as info:
        ir_of(nodes)
    text = str(info.value)
    assert message in text and re.match(r"t\.yaml:\d+:\d+: error: ", text) and "\n" not in text


def test_new_ops_export_to_python_and_onnx(tmp_path):
    nodes = "\n".join([
        "  - {name: c, op: conv, out: 6, kernel: [3, 1], stride: [2, 1], groups: 2}",
        "  - {name: h, op: hardswish}",
        "  - {name: r6, op: relu6}",
        "  - {name: s1, op: slice, stop: 3}",
        "  - {name: s2, op: slice, from: r6, start: 3}",
        "  - {name: g, op: global_avgpool, keepdims: true, from: s2}",
        "  - {name: gs, op: hardsigmoid}",
        "  - {name: m, op: mul, from: [s1, gs]}",
        "  - {name: dc, op: deconv, out: 4, kernel: [3, 2], stride: [2, 1], padding: [1, 0], "
        "output_padding: [1, 0]}",
        "  - {name: up, op: upsample, from: [dc, input], mode: nearest}",
        "  - {name: ap, op: avgpool, kernel: [3, 1], stride: [2, 1], padding: [1, 0]}",
        "  - {name: mp, op: maxpool, kernel: [2, 3], stride: [2, 1], padding: [0, 1]}",
        "  - {name: sg, op: sigmoid}",
        "  - {name: fl, op: flatten}",
        "  - {name: fc1, op: linear, out: 5}",
        "  - {name: gm, op: global_maxpool, from: mp}",
        "  - {name: d, op: dropout}",
        "  - {name: fc2, op: linear, out: 5, bias: false}",
        "  - {name: sum, op: add, from: [fc1, fc2]}",
        "  - {name: act, op: silu}"])
    ir = ir_of(nodes)
    model = build(ir).eval()
    plain, x, y = exported_python_matches(ir, model, tmp_path)
    with torch.no_grad():
        # the generated file is plain torch: the same model at another batch size
        assert plain(torch.randn(3, C, H, W)).shape == (3, 5)
    exported_onnx_matches(model, x, y, tmp_path)


def exported_python_matches(ir, model, tmp_path):
    """The generated .py module computes what the built one does; (it, the input, output)."""
    from espdsl.codegen import to_python
    x = torch.randn(1, C, H, W)
    with torch.no_grad():
        y = model(x)
    path = tmp_path / "net.py"
    path.write_text(to_python(ir))
    plain = load_module(path).T().eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(plain(x), y)
    return plain, x, y


def exported_onnx_matches(model, x, y, tmp_path):
    """ONNX Runtime computes what the built module does."""
    import onnxruntime
    onnx_path = tmp_path / "net.onnx"
    torch.onnx.export(model, (x,), str(onnx_path), dynamo=False)
    session = onnxruntime.InferenceSession(str(onnx_path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), y, rtol=1e-4, atol=1e-5)


def test_ops_of_issue_16_export_to_python_and_onnx(tmp_path):
    nodes = "\n".join([
        "  - {name: c, op: conv, out: 8, kernel: 3}",
        "  - {name: ln, op: layernorm}",
        "  - {name: gn, op: groupnorm, groups: 4}",
        "  - {name: g, op: gelu}",
        "  - {name: s, op: scale, init: 0.5}",
        "  - {name: sd, op: stochastic_depth, p: 0.2}",
        "  - {name: t, op: tanh}",
        "  - {name: p, op: pad, padding: [1, 2], mode: reflect}",
        "  - {name: p0, op: pad, padding: 1, value: 0.25}",
        "  - {name: up, op: upsample, mode: bicubic}",
        "  - {name: sm, op: softmax}"])
    ir = ir_of(nodes)
    model = build(ir).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.5)
    plain, x, y = exported_python_matches(ir, model, tmp_path)
    assert y.shape == (1, 8, 2 * (H + 4), 2 * (W + 6))
    exported_onnx_matches(model, x, y, tmp_path)


def test_groupnorm_reads_the_whole_map():
    ir = ir_of("  - {name: op, op: groupnorm, groups: 2}")
    totals = espdsl.analyze(ir).totals
    assert totals.rf_h >= H and totals.rf_w >= W
    with pytest.raises(EspdslError, match="groupnorm groups=3 must divide channels 4"):
        ir_of("  - {name: op, op: groupnorm, groups: 3}")
