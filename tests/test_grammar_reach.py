"""The grammar as researchers write networks (issue 16): built-in functions with their
reference semantics, a spec's own functions, list parameters and indexing, indexed repeats,
scoped defaults, block parameters named before their values are read, calls named in refusals,
even kernels, and every family choice of inverted_residual as a parameter."""
from __future__ import annotations

import math
import re

import pytest
import torch

import espdsl
from espdsl.errors import EspdslError
from espdsl.expr import evaluate, make_divisible
from espdsl.registry import default_registry
from espdsl.resolve import resolve
from espdsl.spec import parse_spec


def ir_of(text: str, **params):
    return resolve(parse_spec(text, "t.yaml"), params, registry=default_registry())


def error_of(text: str, **params) -> str:
    with pytest.raises(EspdslError) as info:
        ir_of(text, **params)
    line = str(info.value)
    assert re.match(r"t\.yaml:\d+:\d+: error: ", line) and "\n" not in line, line
    return line


# -- built-ins ----------------------------------------------------------------------------------
def test_make_divisible_is_torchvisions(tv_make_divisible):
    values = [v / 4 for v in range(1, 2000)] + [32 * w for w in (0.35, 0.5, 0.75, 1.1, 1.4)]
    for divisor in (1, 3, 8, 16):
        for v in values:
            assert make_divisible(v, divisor) == tv_make_divisible(v, divisor), (v, divisor)
    assert evaluate("make_divisible(v, 8, 16)", {"v": 9}) == tv_make_divisible(9, 8, 16) == 16


@pytest.fixture()
def tv_make_divisible():
    try:
        from espdsl.compat import import_torchvision
        return import_torchvision().models._utils._make_divisible
    except ImportError:
        pytest.skip("torchvision is not installed")


@pytest.mark.parametrize("text, want", [
    ("ceil(2.1)", 3), ("floor(-2.1)", -3), ("round(2.5)", 2), ("round(3.5)", 4),
    ("log(8, 2)", 3.0), ("exp(0)", 1.0), ("sqrt(16)", 4.0), ("min(3, 1)", 1),
    ("[16, 24, 40][1]", 24), ("[16, 24, 40][-1]", 40),
])
def test_builtins_follow_python(text, want):
    assert evaluate(text, {}) == want
    assert type(evaluate(text, {})) is type(want)


@pytest.mark.parametrize("text, message", [
    ("math.ceil(2.5)", "call to 'math.ceil' is not allowed .*; hint: did you mean 'ceil'\\?"),
    ("foo(1)", "call to 'foo' is not allowed .*allowed functions: abs"),
    ("max(1, key=2)", "keyword arguments are not allowed \\(in the call to 'max'\\)"),
    ("[1, 2][0:1]", "slices are not allowed"),
    ("[1, 2][2]", "index 2 is out of range for a list of 2"),
])
def test_refusals_name_what_they_refuse(text, message):
    with pytest.raises(EspdslError, match=message):
        evaluate(text, {})


# -- a spec's own functions, list parameters, indexed repeats -----------------------------------
NET = """model: t
params:
  widths: {type: list, default: [8, 16, 24]}
  depths: {type: list, default: [1, 2, 3]}
functions:
  ch: {args: [c, w], body: "make_divisible(c * w, 8)"}
  %s
input: {channels: 3, size: [32, 32]}
nodes:
  - {for: j in range(len(widths)), name: "stage{j}", from: "{'stage' + str(j - 1) if j else 'input'}",
     block: conv_bn, repeat: "depths[j]", N: "ch(widths[j], 1.5)", n: 3,
     stride: "2 if i == 0 else 1"}
"""


def test_stage_table_as_lists_functions_and_indexed_repeats():
    ir = ir_of(NET % "")
    # one node per stage: copy i of stage j is named stage{j}.{i}, as torchvision/timm number
    assert [p for p, s in ir.scopes.items() if s.kind == "block"] == [
        "stage0.0", "stage1.0", "stage1.1", "stage2.0", "stage2.1", "stage2.2"]
    # widths by the function: make_divisible(8 * 1.5) = 16, 24, 40 (hand-computed)
    assert [ir.node(f"stage{j}.0.conv").attrs["out"] for j in range(3)] == [16, 24, 40]
    # the first copy of each stage strides, the others do not
    assert [ir.node(f"stage2.{i}.conv").attrs["stride"] for i in range(3)] == [2, 1, 1]
    assert ir.output_shape == (1, 40, 4, 4)
    assert ir_of(NET % "", widths=[8, 8], depths=[1, 1]).output_shape == (1, 16, 8, 8)
    assert ir_of(NET % "", widths="[8, 8]", depths="[4, 1]").output_shape == (1, 16, 8, 8)


def test_repeat_binds_its_count():
    text = """model: t
input: {channels: 3, size: [8, 8]}
nodes:
  - {name: s, block: conv_bn, repeat: 3, N: "4 * (count - i)"}
"""
    ir = ir_of(text)
    assert [ir.node(f"s.{i}.conv").attrs["out"] for i in range(3)] == [12, 8, 4]


def test_recursive_functions_stop_at_a_bound():
    line = error_of((NET % 'loop: {args: [v], body: "loop(v + 1)"}').replace(
        '"ch(widths', '"loop(0) + ch(widths'))
    assert "calls to 'loop' nest more than 16 deep" in line
    assert line.startswith("t.yaml:7:")      # located at the function's body


def test_function_bodies_are_checked_when_read():
    with pytest.raises(EspdslError, match=r"^t\.yaml:7:\d+: error: cannot parse the body of "
                                          r"function 'bad'"):
        parse_spec(NET % 'bad: {args: [v], body: "v +"}', "t.yaml")
    with pytest.raises(EspdslError, match="function 'max' is a built-in"):
        parse_spec(NET % 'max: {args: [v], body: "v"}', "t.yaml")


def test_functions_see_only_their_arguments():
    line = error_of((NET % 'leak: {args: [v], body: "v + widths[0]"}').replace(
        "ch(widths[j], 1.5)", "leak(widths[j])"))
    assert "unknown name 'widths'" in line


# -- scoped defaults ----------------------------------------------------------------------------
DEFAULTS = """model: t
params:
  eps: {type: float, default: 0.001}
input: {channels: 3, size: [8, 8]}
defaults: {eps: eps, act: hardswish}
nodes:
  - {name: a, block: conv_bn, N: 4}
  - {name: b, block: conv_bn, N: 4, act: relu, eps: 0.01}
  - {name: c, op: batchnorm}
  - {name: d, block: inverted_residual, t: 2}
"""


def test_scoped_defaults_flow_down_below_explicit_arguments():
    ir = ir_of(DEFAULTS)
    assert ir.node("a.bn").attrs["eps"] == 0.001 and ir.node("a.act").op == "hardswish"
    assert ir.node("b.bn").attrs["eps"] == 0.01 and ir.node("b.act").op == "relu"   # explicit wins
    assert ir.node("c").attrs["eps"] == 0.001                 # an op attribute of that name too
    assert ir.node("d.expand.bn").attrs["eps"] == 0.001        # through a block into its blocks
    assert ir.node("d.dw.act").op == "hardswish"
    assert ir_of(DEFAULTS, eps=0.1).node("d.project.bn").attrs["eps"] == 0.1


def test_an_inner_specs_defaults_win_over_the_outer():
    # efficientnet sets act: silu below it; a network around it asking relu keeps relu for its
    # own nodes and does not reach inside
    ir = ir_of("""model: t
input: {channels: 3, size: [32, 32]}
defaults: {act: relu, eps: 0.01}
nodes:
  - {name: pre, block: conv_bn, N: 3}
  - {name: net, block: efficientnet}
""")
    assert ir.node("pre.act").op == "relu" and ir.node("pre.bn").attrs["eps"] == 0.01
    assert ir.node("net.stem.act").op == "silu" and ir.node("net.stage2.0.se.act").op == "silu"
    # efficientnet declares a parameter eps: the outer default sets it (it is a parameter of the
    # node 'net'), and efficientnet's own defaults pass that value on inside
    assert ir.node("net.stage2.0.dw.bn").attrs["eps"] == 0.01


# -- block parameters ---------------------------------------------------------------------------
def test_an_unknown_block_parameter_is_named_before_its_value_is_read():
    text = """model: t
input: {channels: 16, size: [8, 8]}
nodes:
  - {name: a, block: inverted_residual, se_ratio: 0.25, se_actt: relu}
"""
    line = error_of(text)
    assert "unknown parameter 'se_actt' for block 'inverted_residual'" in line
    assert "did you mean 'se_act'?" in line and "unknown name 'relu'" not in line


def test_an_even_kernel_without_padding_is_refused():
    text = """model: t
input: {channels: 3, size: [16, 16]}
nodes:
  - {name: stem, op: conv, out: 8, kernel: 4, stride: 4%s}
"""
    line = error_of(text % "")
    assert "conv with the even kernel 4 needs an explicit padding" in line
    assert "padding: 0" in line and line.startswith("t.yaml:4:")
    assert ir_of(text % ", padding: 0").output_shape == (1, 8, 4, 4)


# -- inverted_residual's family choices ---------------------------------------------------------
def block(**params) -> torch.nn.Module:
    return espdsl.create_block("inverted_residual", **params).eval()


def test_expansion_follows_the_widths():
    # MobileNetV3's first bneck: hidden 16 on 16 channels has no expansion (torchvision's rule)
    names = dict(block(M=16, N=16, hidden=16, se_ratio=0.25, family="mobilenet_v3")
                 .named_modules())
    assert "expand.conv" not in names and "dw.conv" in names
    assert "expand.conv" in dict(block(M=16, N=24, hidden=64).named_modules())
    # an explicit switch still works both ways
    assert "expand.conv" in dict(block(M=16, hidden=16, expand=True).named_modules())


def test_fractional_t_rounds_like_torchvisions_mobilenet_v2():
    # hidden = round(M * t), halves to even: 20 * 2.5 = 50; 5 * 2.5 = 12.5 -> 12; 7 * 2.5 -> 18
    for m, want in [(20, 50), (5, 12), (7, 18)]:
        assert block(M=m, t=2.5).dw.conv.weight.shape[0] == want == int(round(m * 2.5))


@pytest.mark.parametrize("family, act, gate, width", [
    # SE width: EfficientNet max(1, M // 4) of the input; MobileNetV3 make_divisible(hidden // 4, 8)
    ("efficientnet", torch.nn.functional.silu, torch.sigmoid, 40 // 4),
    ("mobilenet_v3", torch.relu, torch.nn.functional.hardsigmoid, 64),   # (240 // 4 = 60) -> 64
])
def test_families_set_the_se_choices(family, act, gate, width):
    m = block(M=40, N=40, t=6, se_ratio=0.25, family=family, act="silu")
    assert m.se.fc1.weight.shape[0] == width
    x = torch.randn(1, 40, 8, 8)
    with torch.no_grad():
        silu = torch.nn.functional.silu
        h = silu(m.dw.bn(m.dw.conv(silu(m.expand.bn(m.expand.conv(x))))))
        s = gate(m.se.fc2(act(m.se.fc1(h.mean((2, 3), keepdim=True)))))
        want = m.project.bn(m.project.conv(h * s)) + x
        torch.testing.assert_close(m(x), want)


def test_stochastic_depth_is_the_identity_at_inference_and_counts_nothing():
    m = block(M=16, N=16, drop_path=0.5)
    x = torch.randn(2, 16, 8, 8)
    plain = espdsl.create_block("inverted_residual", M=16, N=16).eval()
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(m(x), plain(x), rtol=0, atol=0)
    a = espdsl.analyze(espdsl.load("inverted_residual", M=16, N=16, drop_path=0.5)).totals
    b = espdsl.analyze(espdsl.load("inverted_residual", M=16, N=16)).totals
    assert (a.params, a.macs, a.elementwise) == (b.params, b.macs, b.elementwise)
    assert a.ignored.get("stochastic_depth") == 1
    # in training it drops whole samples' branches: some sample comes out as its input alone
    m.train()
    torch.manual_seed(0)
    with torch.no_grad():
        outs = [m(x) for _ in range(20)]
    assert any(torch.equal(y[k], x[k]) for y in outs for k in range(2))


def test_dilation_and_momentum_reach_the_depthwise_convolution():
    m = block(M=16, N=16, d=2, momentum=0.01)
    assert m.dw.conv.dilation == (2, 2) and m.dw.conv.padding == (2, 2)
    assert m.dw.bn.momentum == 0.01 and m.project.bn.momentum == 0.01
