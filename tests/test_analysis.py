"""`espdsl.analyze` and `espdsl analyze`: the analytic figures against the issue's numbers and
against independent measurements on the built module (fvcore, ptflops, the gradient of the
centre output pixel, a TorchDispatchMode tracking live tensors)."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import espdsl
from conftest import block_params
from espdsl.analysis.check import check, check_rf, fvcore_conv_macs, measure_peak, truncate
from espdsl.analysis.handlers import HANDLERS
from espdsl.build import build
from espdsl.cli import main
from espdsl.ops import OPS


def test_espnet_full_size_from_the_spec_alone():
    # the issue: 364,569 parameters, 4,709,441,536 convolution MACs (fvcore's "conv" count on
    # the authors' implementation, transposed convolutions included); no torch run needed
    totals = espdsl.analyze("zoo/espnet.yaml", input_size=(1, 3, 512, 1024)).totals
    assert totals.params == 364_569
    assert totals.macs == 4_709_441_536
    assert totals.macs_by_op["conv"] + totals.macs_by_op["deconv"] == 4_709_441_536


def test_espnet_cli_json():
    result = CliRunner().invoke(main, ["analyze", "zoo/espnet.yaml", "--input", "1x3x512x1024",
                                       "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["totals"]["params"] == 364_569 and doc["totals"]["macs"] == 4_709_441_536
    assert [n["name"] for n in doc["nodes"]][:2] == ["encoder", "br"]
    assert sum(n["params"] for n in doc["nodes"]) == 364_569


def test_espnet_small_input_against_fvcore_and_built_module():
    ir = espdsl.load("espnet", input_size=(1, 3, 64, 128))
    totals = espdsl.analyze(ir).totals
    model = build(ir).eval()
    assert totals.macs == fvcore_conv_macs(model, torch.zeros(1, 3, 64, 128))
    assert totals.macs * 64 == 4_709_441_536   # all shapes divide: MACs scale with H * W
    assert totals.params == sum(p.numel() for p in model.parameters())
    peak = measure_peak(model, ir.input_shape)
    assert abs(totals.memory.peak - peak) <= 0.1 * peak


@pytest.mark.parametrize("name", espdsl.list_blocks())
def test_every_library_block_against_measurements(name):
    # Fig. 3g's settings (those the block declares) at 56x56: larger than every field (<= 33)
    ir = espdsl.load(name, **block_params(name))
    rows = check(ir)
    for row in rows:
        assert row.ok, (row.quantity, row.source, row.analytic, row.measured, row.note)
    assert {r.source for r in rows} >= {"built module", "fvcore by_operator() conv + linear",
                                         "ptflops (conv, linear modules)"}


def _espnet_c_levels():
    ir = espdsl.load("espnet_c", alpha2=1, alpha3=1)
    result = espdsl.analyze(ir)
    return [(s.path, s.output, result.scope(s.path).rf) for s in ir.top_level()]


# cat3 and b3 (a concat and a BR after level 3) are left out to save time: the classifier's
# field runs through both
@pytest.mark.parametrize("path, output, rf", [level for level in _espnet_c_levels()
                                              if level[0] not in ("cat3", "b3")])
def test_espnet_c_levels_receptive_field(path, output, rf):
    # one module per level (alpha2 = alpha3 = 1) keeps the field (<= 783 px) measurable;
    # the input is the field plus a margin, a multiple of 8 so the strides divide
    side = (rf + 40) // 8 * 8
    ir = espdsl.load("espnet_c", alpha2=1, alpha3=1, input_size=(1, 3, side, side))
    part = truncate(ir, output)
    stats = espdsl.analyze(ir).scope(path)
    row = check_rf(build(part).eval(), part, stats)
    assert row.ok, row
    assert row.measured == rf


def test_espnet_c_field_sizes():
    # ESP's own field (n - 1) 2^(K-1) + 1 = 33 at stride 4 and 8 on top of the strided stem
    assert [rf for _, _, rf in _espnet_c_levels()] == [3, 3, 7, 3, 3, 135, 263, 263, 263, 527,
                                                        783, 783, 783, 783]


UPDOWN = """
block: updown
params: {M: {type: int}, mode: {type: str, default: deconv}}
nodes:
  - {name: down, op: conv, out: 4, kernel: 3, stride: 2}
  - {name: wide, op: conv, out: 4, kernel: 3, dilation: 3}
  - {name: up, op: deconv, out: 4, kernel: 2, stride: 2, when: mode == 'deconv'}
  - {name: up, op: upsample, scale: 2, mode: "{mode}", when: mode != 'deconv'}
  - {name: side, op: conv, out: 4, kernel: 3, from: input}
  - {name: cat, op: concat, from: [up, side]}
  - {name: out, op: conv, out: 4, kernel: 3}
"""


@pytest.mark.parametrize("mode", ["deconv", "bilinear", "nearest"])
def test_field_through_up_sampling_and_offset_paths(tmp_path, mode):
    # a strided path brought back up by a 2x2 stride-2 deconvolution (or interpolation) and
    # merged with a full-resolution path, as in ESPNet's decoder: the field's extent depends on
    # the output pixel's parity; both positions are checked
    (tmp_path / "updown.yaml").write_text(UPDOWN)
    ir = espdsl.load("updown", blocks=[tmp_path], M=2, mode=mode, input_size=(48, 48))
    stats = espdsl.analyze(ir).totals
    assert stats.field.period == 2
    row = check_rf(build(ir).eval(), ir, stats)
    assert row.ok, row


def test_decoder_field_through_transposed_convolutions():
    # the decoder's 2x2 stride-2 deconvolutions offset paths by a pixel: the field depends on
    # the output pixel modulo 8; every residue's exact position is checked (3-10 s)
    ir = espdsl.load("espnet", K=2, alpha2=1, alpha3=1, input_size=(1, 3, 160, 160))
    stats = espdsl.analyze(ir).totals
    assert stats.field.period == 8
    row = check_rf(build(ir).eval(), ir, stats)
    assert row.ok, row


def test_grouped_dilated_and_transposed_macs():
    for name, params in [("shufflenet", {"M": 64, "N": 64, "g": 4}),
                         ("esp", {"M": 32, "N": 40, "K": 4, "stride": 2}),
                         ("up", {"M": 16, "N": 8, "n": 3})]:
        ir = espdsl.load(name, input_size=(20, 24), **params)
        assert espdsl.analyze(ir).totals.macs == fvcore_conv_macs(build(ir), torch.zeros(ir.input_shape))


def test_every_op_has_a_handler_and_a_missing_one_is_reported(monkeypatch):
    assert set(HANDLERS) == set(OPS)
    monkeypatch.delitem(HANDLERS, "prelu")
    totals = espdsl.analyze("cbr", M=3, N=8).totals
    assert totals.unknown == {"prelu": 1}
    assert totals.ignored == {}
    assert espdsl.analyze("esp", M=10, N=10).totals.ignored == {"concat": 1}


def test_elementwise_work_is_counted_per_op():
    t = espdsl.analyze("resnet", M=8, N=8, input_size=(4, 4)).totals
    values = 8 * 4 * 4
    # 2 batch norms (2 ops a value), 2 PReLUs (1), one add (1)
    assert t.elementwise_by_op == {"batchnorm": 4 * values, "prelu": 2 * values, "add": values}


def test_scopes_and_batch():
    a = espdsl.analyze("espnet_c", alpha3=3, input_size=(2, 3, 64, 128))
    assert a.scope("") is a.totals
    assert sum(a.scope(s.path).params for s in a.ir.top_level()) == a.totals.params == 187_529
    assert a.scope("level3.0").params == a.scope("level3.1").params
    assert a.totals.macs == 2 * espdsl.analyze("espnet_c", alpha3=3, input_size=(1, 3, 64, 128)).totals.macs
    with pytest.raises(espdsl.UsageError, match="level9"):
        a.scope("level9")


def test_analyze_check_cli_and_bad_input():
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", "esp", "-p", "M=8", "-p", "N=8", "--input", "40x40",
                                  "--check"])
    assert result.exit_code == 0, result.stderr
    assert "fvcore" in result.stdout and "DIFFERS" not in result.stdout
    result = runner.invoke(main, ["analyze", "zoo/espnet.yaml", "--input", "1x3x512"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(main, ["analyze", "zoo/espnet.yaml", "--format", "csv", "--depth", "2"])
    assert result.exit_code == 0 and result.stdout.splitlines()[-1].startswith("total,")
