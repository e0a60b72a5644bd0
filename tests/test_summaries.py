"""espdsl.totals (one summary per distinct block instance) against espdsl.analyze (the flat IR
walk): every figure equal on every zoo spec, every library block and samples of design spaces."""
from __future__ import annotations

import itertools
import random

import pytest

import espdsl
from espdsl.api import _registry, open_spec
from espdsl.summaries import Snapshot, totals_of

from conftest import block_params

MODULES = ["esp", "mobilenet", "shufflenet", "inception", "resnext", "resnet", "asp"]
SPACE = list(itertools.product(range(1, 6), range(1, 11), range(2, 9), MODULES))


def same(t, a) -> None:
    assert (t.params, t.macs, t.peak_bytes, t.fig3g_bytes, t.rf, t.stride) == (
        a.params, a.macs, a.memory.peak, a.memory.fig3g, a.rf, a.stride)


@pytest.mark.parametrize("name", espdsl.list_models())
def test_zoo_models(name):
    same(espdsl.totals(name), espdsl.analyze(name).totals)


@pytest.mark.parametrize("name", espdsl.list_blocks())
def test_library_blocks(name):
    params = block_params(name)
    same(espdsl.totals(name, **params), espdsl.analyze(name, **params).totals)


def test_espnet_space_sample_equals_analyze():
    """The issue's 2,450-network space (alpha2 x alpha3 x K x module on the full ESPNet):
    a fixed random sample plus the corners, through one snapshot registry as a search runs."""
    reg = Snapshot(_registry(()))
    spec = open_spec("espnet", reg)
    sample = random.Random(19).sample(SPACE, 30) + [(1, 1, 2, m) for m in MODULES] + \
        [(5, 10, 8, m) for m in MODULES]
    for a2, a3, k, m in sample:
        p = dict(alpha2=a2, alpha3=a3, K=k, module=m)
        same(totals_of(spec, p, registry=reg), espdsl.analyze("espnet", **p).totals)


def test_batch_and_input_size():
    same(espdsl.totals("espnet_c", input_size=(2, 3, 256, 512), alpha3=2),
         espdsl.analyze("espnet_c", input_size=(2, 3, 256, 512), alpha3=2).totals)


def test_same_errors_as_the_resolver():
    with pytest.raises(espdsl.EspdslError) as flat:
        espdsl.analyze("espnet_c", module="shufflenet", g=3)
    with pytest.raises(espdsl.EspdslError) as fast:
        espdsl.totals("espnet_c", module="shufflenet", g=3)
    assert str(fast.value) == str(flat.value)


def test_mobilenet_v2_stages_defaults_are_mobilenet_v2():
    """The MobileNetV2 space's base with its defaults is torchvision's MobileNetV2 1.0:
    3,504,872 parameters and 300,774,272 MACs at 224x224 (the zoo spec's doc)."""
    t = espdsl.totals(str(espdsl.space.spec.spaces_dir() / "bases" / "mobilenet_v2_stages.yaml"))
    assert (t.params, t.macs) == (3_504_872, 300_774_272)


def test_scoped_defaults_reach_ops_two_blocks_down(tmp_path):
    """A model's ``defaults: {kernel: k}`` sets the kernel of a conv inside a block inside a
    block: the summaries (recorded apart, memoised per unit) must see it, per value of k."""
    (tmp_path / "inner.yaml").write_text(
        "block: inner\nparams:\n  M: {type: int}\n  N: {type: int}\n"
        "nodes:\n  - {name: conv, op: conv, out: N}\n")
    (tmp_path / "outer.yaml").write_text(
        "block: outer\nparams:\n  M: {type: int}\nnodes:\n  - {name: a, block: inner, N: 8}\n")
    net = tmp_path / "net.yaml"
    net.write_text("model: net\ninput: {channels: 3, size: [32, 32]}\n"
                   "params:\n  k: {type: int, default: 5}\ndefaults: {kernel: k}\n"
                   "nodes:\n  - {name: o, block: outer}\n")
    for k in (3, 5, 7, 3):
        t = espdsl.totals(str(net), blocks=[tmp_path], k=k)
        a = espdsl.analyze(str(net), blocks=[tmp_path], k=k).totals
        same(t, a)
        assert t.rf == k


NET = """\
model: net
input: {channels: 3, size: [64, 64]}
params:
  w: {type: bool, default: true}
  src: {type: str, default: a}
  n: {type: int, default: 2}
  m: {type: int, default: 2}
  k: {type: int, default: 3}
nodes:
  - {name: a, op: conv, out: 8, kernel: 3}
  - {name: b, op: conv, out: 8, kernel: 5, stride: 2, from: a}
  - {name: p, op: conv, out: 16, kernel: k, from: "{src}"}
  - {name: r, block: cbr, N: 16, n: k, repeat: n}
  - {name: s, op: add, from: [r, r.0.conv]}
  - {name: q, seq: [{op: conv, out: 8, kernel: k, dilation: 2}, {block: br}]}
  - {name: t, op: add, from: [q, q.0]}
  - {name: extra, op: conv, out: 8, kernel: 3, when: w}
  - {name: z, op: relu, repeat: m}
  - {name: pooled, op: avgpool, kernel: 32, stride: 32, from: b}
  - {name: gate, op: conv, out: 8, kernel: 1}
  - {name: out, op: mul, from: [z, gate]}
"""


def test_memoised_entries_part_what_their_reads_part(tmp_path):
    """Node entries (repeats and seqs with them) are memoised per the parameters they read and
    the values they take from earlier nodes. Networks that differ only in a value read by a
    'when', a 'from' template, a repeat count (0 included) or an argument deep in a repeated
    block must still differ, in whatever order a search meets them: one snapshot registry,
    a shuffled order, every figure equal to espdsl.analyze's."""
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    reg = Snapshot(_registry(()))
    spec = open_spec(str(net), reg)
    points = [dict(w=w, src=s, n=n, m=m, k=k) for w in (True, False) for s in "ab"
              for n in (1, 2, 3) for m in (0, 2) for k in (1, 3, 5)]
    random.Random(7).shuffle(points)
    seen = set()
    for p in points + points[:10]:      # and again, from the memos
        t = totals_of(spec, p, registry=reg)
        same(t, espdsl.analyze(str(net), **p).totals)
        seen.add((t.params, t.macs, t.peak_bytes, t.rf))
    # the points do differ: each (w, src, n, k) in its own figures (ReLU copies add none)
    assert len(seen) == len({(p["w"], p["src"], p["n"], p["k"]) for p in points})


def test_parameters_as_command_line_text_and_bad_values_after_good_ones():
    """``-p K=6`` gives the text '6': the same network as the number (bindings are memoised per
    argument, with its type); a value out of bounds after a good one is still refused, with
    the resolver's error."""
    reg = Snapshot(_registry(()))
    spec = open_spec("espnet", reg)
    want = espdsl.analyze("espnet", K=6, module="shufflenet").totals
    for value in ("6", 6, "6"):
        same(totals_of(spec, {"K": value, "module": "shufflenet"}, registry=reg), want)
    with pytest.raises(espdsl.EspdslError) as flat:
        espdsl.analyze("espnet", K=1)
    with pytest.raises(espdsl.EspdslError) as fast:
        totals_of(spec, {"K": 1}, registry=reg)
    assert str(fast.value) == str(flat.value)


def test_a_bare_name_is_checked_as_an_expression_is():
    """The short way for an argument that is one parameter's name gives what the expression
    tree gives: the value, the same refusals, keywords as constants."""
    from espdsl.errors import ExprError
    from espdsl.expr import evaluate
    assert evaluate("K", {"K": 5}) == 5 and evaluate("s", {"s": "ab"}) == "ab"
    assert evaluate("True", {"True": 3}) is True
    with pytest.raises(ExprError, match="result is too large"):
        evaluate("K", {"K": 2 ** 300})
    with pytest.raises(ExprError, match="not a finite number"):
        evaluate("x", {"x": float("inf")})


def test_ops_no_output_uses_are_refused_not_counted(tmp_path):
    """espdsl.analyze prunes what the output does not depend on (here the unused 5x5
    convolution, 3 * 8 * 25 weights); the totals would count it, so they refuse, naming it."""
    net = tmp_path / "dead.yaml"
    net.write_text("model: dead\ninput: {channels: 3, size: [32, 32]}\nnodes:\n"
                   "  - {name: a, op: conv, out: 8, kernel: 3}\n"
                   "  - {name: unused, op: conv, out: 8, kernel: 5, from: input}\n"
                   "  - {name: b, op: relu, from: a}\n")
    assert espdsl.analyze(str(net)).totals.params == 3 * 8 * 9
    with pytest.raises(espdsl.EspdslError, match="does not use \\('unused'\\)"):
        espdsl.totals(str(net))
