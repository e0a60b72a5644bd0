"""The grammar's features, each on a small spec written here: parameters and overrides,
expressions, repetition, branches over an index, HFF sums, conditions, seq, references into
blocks, module kind as a parameter, user block folders."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import espdsl
from espdsl.expr import evaluate, render_template
from espdsl.errors import EspdslError, ExprError
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, env, want", [
    ("N // K", {"N": 100, "K": 5}, 20),
    ("2 ** k", {"k": 4}, 16),
    ("min(N, 64) + max(1, K)", {"N": 100, "K": 5}, 69),
    ("N - (K - 1) * (N // K) if K > 1 else N", {"N": 64, "K": 5}, 16),
    ("stride == 1 and M == N", {"stride": 1, "M": 3, "N": 3}, True),
    ("not hff or K < 2", {"hff": True, "K": 5}, False),
    ("'s' if hff else 'd'", {"hff": False}, "d"),
    ("range(1, K)", {"K": 4}, [1, 2, 3]),
    ("(n - 1) * 2 ** (K - 1) + 1", {"n": 3, "K": 8}, 257),
])
def test_expressions(text, env, want):
    assert evaluate(text, env) == want


@pytest.mark.parametrize("text", [
    "().__class__", "open('x')", "[c for c in 'ab']", "lambda: 1", "N.real", "x[0:1]", "x[5]", "N[0]",
    "__import__('os')", "2 ** 10000", "range(10 ** 9)",
])
def test_expressions_reject_everything_else(text):
    with pytest.raises(EspdslError):
        evaluate(text, {"N": 1, "x": [1]})


def test_templates():
    assert render_template("d{2 ** k}", {"k": 3}) == "d8"
    assert render_template("{'s' if k > 1 else 'd'}{2 ** k}", {"k": 2}) == "s4"
    assert render_template("plain", {}) == "plain"


TOY = """\
model: toy
params:
  width: 8
  depth: {type: int, default: 2, min: 0}
  wide: {type: bool, default: "width > 8"}
input: {channels: 3, size: [16, 16]}
nodes:
  - {name: stem, op: conv, out: width, kernel: 3, stride: 2}
  - for: k in range(3)
    name: "b{k}"
    op: conv
    out: "width // 2 if k == 0 else width"
    kernel: 3
    dilation: "2 ** k"
  - {name: cat, op: concat, from: ["b{k} for k in range(3)"]}
  - {name: extra, op: conv, out: "2 * width", when: wide}
  - {name: body, block: cbr, N: 16, repeat: depth}
  - name: head
    seq:
      - {op: conv, out: 4}
      - {block: br}
"""


def test_small_network_features(tmp_path):
    spec = write(tmp_path / "toy.yaml", TOY)
    ir = espdsl.load(spec)
    # branches take their index; the default input of a 'for' node is the node before it
    assert [ir.node(f"b{k}").attrs["dilation"] for k in range(3)] == [1, 2, 4]
    assert [ir.node(f"b{k}").inputs for k in range(3)] == [["stem"]] * 3
    assert ir.node("cat").shape == (4 + 8 + 8, 8, 8)
    assert "extra" not in ir.graph                      # when: width > 8 is false
    assert ir.scopes["body"].kind == "repeat" and ir.scopes["body"].repeat == 2
    assert ir.scopes["body"].repeat_expr == "depth"
    assert ir.node("body.0.conv").inputs == ["cat"]      # the default input: the previous node
    assert ir.node("body.1.conv").inputs == ["body.0.act"]
    assert ir.node("head.1.bn").inputs == ["head.0"]
    assert ir.output_shape == (1, 4, 8, 8)
    # overrides from Python reach defaults that depend on them
    wide = espdsl.load(spec, width=16, depth=3)
    assert "extra" in wide.graph and wide.scopes["body"].repeat == 3
    assert wide.node("body.0.conv").inputs == ["extra"]
    model = espdsl.build_ir(wide)
    assert "body.2.conv.weight" in model.state_dict()
    assert espdsl.load(spec, depth=0).node("head.0").inputs == ["cat"]


def test_reference_into_a_block_instance():
    ir = espdsl.load("espnet", alpha3=3)
    assert ir.node("level3_C.conv").inputs == ["encoder.b2.act"]
    assert ir.node("cat_l1").inputs == ["up_l2.1.act", "encoder.level1.act"]
    camvid = espdsl.load("espnet", alpha3=3, classes=12, skip="b1")
    assert camvid.node("cat_l1").inputs == ["up_l2.1.act", "encoder.b1.act"]
    assert camvid.node("conv.conv").attrs["out"] == 12


USER_BLOCK = """\
block: dwres
doc: A user block living outside espdsl - depth-wise K-branch pyramid with running sums.
params:
  M: {type: int}
  N: {type: int}
  K: {type: int, default: 3}
nodes:
  - {name: reduce, op: conv, out: N}
  - for: k in range(K)
    name: "p{k}"
    op: conv
    from: reduce
    kernel: 3
    dilation: "k + 1"
    groups: N
  - {name: s0, op: identity, from: p0}
  - for: k in range(1, K)
    name: "s{k}"
    op: add
    from: ["s{k - 1}", "p{k}"]
  - {name: out, op: add, from: ["s{K - 1}", reduce]}
  - {name: shuffle, op: shuffle, groups: 2}
  - {name: act, op: relu}
"""


def test_user_block_folder_extends_the_library(tmp_path):
    folder = tmp_path / "myblocks"
    folder.mkdir()
    write(folder / "dwres.yaml", USER_BLOCK)
    assert "dwres" in espdsl.list_blocks(blocks=[folder])
    assert "dwres" not in espdsl.list_blocks()
    block = espdsl.create_block("dwres", M=8, N=8, blocks=[folder])
    assert block(torch.randn(1, 8, 12, 12)).shape == (1, 8, 12, 12)
    # as the module kind of ESPNet-C, without editing the network
    ir = espdsl.load("espnet_c", module="dwres", alpha2=1, alpha3=1, blocks=[folder])
    assert ir.scopes["level3.0"].block == "dwres"
    # from a spec that names the folder itself (relative to the spec file)
    net = write(tmp_path / "net.yaml", """\
        model: net
        blocks: [myblocks]
        input: {channels: 3, size: [16, 16]}
        nodes:
          - {name: stem, block: cbr, N: 8}
          - {name: mine, block: dwres, N: 8, K: 4}
        """)
    model = espdsl.create_model(net)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)
    assert "mine.p3.weight" in model.state_dict()


def test_installed_package_works_outside_the_repository(tmp_path):
    # run from an empty folder: data (blocks, zoo, schema) must come with the package
    run = subprocess.run([sys.executable, "-m", "espdsl", "compile", "espnet", "-p", "alpha3=3",
                          "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert '"params": 202649' in run.stdout


def test_replayed_block_instances_are_wired_to_their_own_inputs():
    # ESPNet resolves each distinct block instance once and replays it; every copy must still
    # read its own predecessor and sit in its own scope
    ir = espdsl.load("espnet", alpha3=8)
    for i in range(1, 8):
        assert ir.node(f"encoder.level3.{i}.c1.conv").inputs == [f"encoder.level3.{i - 1}.bn.act"]
        assert ir.node(f"encoder.level3.{i}.sum").inputs == [f"encoder.level3.{i}.cat",
                                                              f"encoder.level3.{i - 1}.bn.act"]
        assert ir.scopes[f"encoder.level3.{i}"].parent == "encoder.level3"
        assert ir.scopes[f"encoder.level3.{i}.bn"].parent == f"encoder.level3.{i}"
    assert ir.node("encoder.level3.0.c1.conv").inputs == ["encoder.level3_0.act"]
    assert ir.scopes["combine_l2_l3.1"].params["M"] == 40   # same block, other arguments


def test_editing_a_block_file_is_seen_by_the_next_load(tmp_path):
    folder = tmp_path / "blocks"
    folder.mkdir()
    block = write(folder / "twice.yaml", """\
        block: twice
        params: {M: {type: int}}
        nodes:
          - {name: a, op: conv, kernel: 3}
        """)
    net = write(tmp_path / "net.yaml", """\
        model: net
        input: {channels: 4, size: [8, 8]}
        nodes:
          - {name: x, block: twice}
          - {name: y, block: twice}
        """)
    assert espdsl.load(net, blocks=[folder]).node("y.a").attrs["kernel"] == 3
    block.write_text(block.read_text().replace("kernel: 3", "kernel: 5, dilation: 2"))
    ir = espdsl.load(net, blocks=[folder])
    assert ir.node("y.a").attrs["kernel"] == 5 and ir.node("y.a").attrs["dilation"] == 2


def test_an_unset_parameter_is_not_passed_on(tmp_path):
    """`default: null`: the network forwards a module knob only when it is given."""
    write(tmp_path / "grouped.yaml", """\
        block: grouped
        params: {M: {type: int}, g: {type: int, default: 2}}
        nodes:
          - {name: a, op: conv, kernel: 3, groups: g}
        """)
    net = write(tmp_path / "net.yaml", """\
        model: net
        params:
          g: {type: int, default: null}
        input: {channels: 8, size: [8, 8]}
        nodes:
          - {name: x, block: grouped, optional: {g: g}}
        """)
    assert espdsl.load(net, blocks=[tmp_path]).node("x.a").attrs["groups"] == 2   # the block's own
    assert espdsl.load(net, blocks=[tmp_path], g=4).node("x.a").attrs["groups"] == 4
    assert espdsl.load(net, blocks=[tmp_path]).params["g"] is None


def test_the_network_knobs_reach_the_modules():
    ir = espdsl.load("espnet_c", module="shufflenet", alpha2=1, alpha3=1)
    assert ir.scopes["level2.0"].params["g"] == 2                 # shufflenet's own default
    ir = espdsl.load("espnet_c", module="shufflenet", alpha2=1, alpha3=1, g=4, K=4)
    assert ir.scopes["level2.0"].params["g"] == 4 and ir.scopes["level2.0"].params["d"] == 16
    ir = espdsl.load("espnet_c", alpha2=1, alpha3=1, down="conv")
    assert ir.scopes["level2_0"].block == ir.scopes["level3_0"].block == "cbr"
    assert ir.node("level3_0.conv").attrs["kernel"] == 3 and ir.node("level3_0.conv").attrs["stride"] == 2
    ir = espdsl.load("espnet_c", alpha2=1, alpha3=1, down="module", module="resnet")
    assert ir.scopes["level3_0"].block == "resnet" and ir.scopes["level3_0"].params["stride"] == 2
    ir = espdsl.load("espnet_a", alpha2=1, alpha3=1, K=6, down_K=4)
    assert ir.scopes["level2_0"].params["K"] == 4 and ir.scopes["level2.0"].params["K"] == 6


def test_esp_reduce_kernel_and_plain_branches():
    """Table 2d: a 3x3 reduce adds 8 N d weights; SPC-s keeps the weights, not the field."""
    def conv_weights(**p):
        model = espdsl.create_block("esp", M=100, N=100, K=5, **p)
        return sum(t.numel() for t in model.parameters() if t.dim() == 4)

    assert conv_weights() == 100 * 20 + 9 * 20 * 100                     # Fig. 3g: 20,000
    assert conv_weights(reduce_n=3) == 9 * 100 * 20 + 9 * 20 * 100
    assert conv_weights(dilated=False) == conv_weights()
    assert espdsl.analyze("esp", M=100, N=100, dilated=False).totals.rf == 3
    assert espdsl.analyze("esp", M=100, N=100, reduce_n=3).totals.rf == 35


def test_a_block_copy_is_accepted_only_while_identical(tmp_path):
    from conftest import ROOT

    folder = tmp_path / "blocks"
    folder.mkdir()
    (folder / "cbr.yaml").write_bytes((ROOT / "blocks" / "cbr.yaml").read_bytes())
    net = write(tmp_path / "net.yaml", """\
        model: net
        input: {channels: 3, size: [8, 8]}
        blocks: [blocks]
        nodes:
          - {name: x, block: cbr, N: 4}
        """)
    assert espdsl.load(net).output_shape == (1, 4, 8, 8)
    (folder / "cbr.yaml").write_text((ROOT / "blocks" / "cbr.yaml").read_text().replace("n: {type: int, default: 3", "n: {type: int, default: 5"))
    with pytest.raises(espdsl.RegistryError, match=r"'cbr' is defined twice: .* a copy is accepted only while it is identical"):
        espdsl.load(net)


SCALARS = ["010", "0o10", "1_000", "0x1F", "0b101", "1e3", "1E3", "1e-5", ".5", "+1", "-0", "1.",
           "on", "yes", "No", "~", "Null", "NULL", "", ".inf", "-.Inf", ".nan", "True", "TRUE",
           "tRue", "1:30", "0.001", "3.", "-1.5e+3", "08", "+0x10", "_1", "12e", "0o", "1.2.3",
           "'quoted'", '"a: b"', "a b c", "2024-01-01", "!!str 5", "&x 1", "{a: 1, a: 2}"]


@pytest.mark.parametrize("path", sorted((ROOT / "blocks").glob("*.yaml")) + sorted((ROOT / "zoo").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_fast_yaml_reader_gives_ruamels_values_and_locations(path):
    from espdsl.source import _parse_fast, _parse_ruamel
    text = path.read_text()
    fast, ref = _parse_fast(text, str(path)), _parse_ruamel(text, str(path))
    assert fast is not None
    assert fast.data == ref.data and fast.values == ref.values and fast.keys == ref.keys


@pytest.mark.parametrize("scalar", SCALARS)
def test_yaml_scalars_read_as_ruamel_reads_them(scalar):
    """YAML 1.2 through ruamel is the reference ('on' is a string, '1e-5' a float); what the fast
    reader leaves (tags, anchors, dates, duplicate keys) goes to ruamel and fails or reads the same."""
    import math

    from espdsl.errors import SpecError
    from espdsl.source import _parse_ruamel, parse_yaml
    text = f"k: {scalar}\nlist: [{scalar if not scalar.startswith('{') else 1}, x]\n"
    try:
        ref = _parse_ruamel(text, "t.yaml")
    except SpecError as exc:
        with pytest.raises(SpecError) as got:
            parse_yaml(text, "t.yaml")
        assert str(got.value) == str(exc)
        return
    doc = parse_yaml(text, "t.yaml")
    a, b = doc.data["k"], ref.data["k"]
    assert type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))
    assert doc.values == ref.values and doc.keys == ref.keys
