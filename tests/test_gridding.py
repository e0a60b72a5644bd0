"""The gridding figures against counts derived by hand and against HDC's rule."""
from __future__ import annotations

import itertools
from math import gcd

import pytest
from click.testing import CliRunner

from espdsl.analysis.compare import compare
from espdsl.analysis.gridding import dilated_stack, gridding_ir, hdc_ok, stack
from espdsl.cli import main


def _by_group(rows):
    return {r["group"]: r for r in rows}


@pytest.mark.parametrize("hff", [True, False])
def test_one_esp_module_by_hand(hff):
    # K = 5: branch k (k = 0..4) is a 3x3 kernel of dilation 2^k; HFF's group k >= 2 is the
    # union of rates 2 .. 2^k: 9 + 8 (k - 1) pixels; without HFF 9, on the lattice 2^k.
    rows = _by_group(gridding_ir(stack("esp", 1, K=5, hff=hff)))
    labels = ["d1", "d2", "s4", "s8", "s16"] if hff else ["d1", "d2", "d4", "d8", "d16"]
    assert list(rows) == [*labels, "all"]
    for k, label in enumerate(labels):
        box = 2 ** (k + 1) + 1
        support = 9 + 8 * (k - 1) if hff and k >= 2 else 9
        lattice = 1 if k == 0 else 2 if hff else 2 ** k
        assert rows[label]["support"] == support
        assert rows[label]["box"] == (box, box)
        assert rows[label]["holes"] == pytest.approx(1 - support / box ** 2, abs=1e-15)
        assert rows[label]["lattice"] == lattice
    # summed over channels: the same 41 pixels of the 33x33 box with and without HFF
    assert rows["all"]["support"] == 41 and rows["all"]["lattice"] == 1
    # count mass: each 3x3 tap of a branch carries d * M = 20 * 100 paths per output channel,
    # 20 output channels a group: 40,000 a tap; the residual adds 100 at the centre. Only the
    # rate-1 branch's 8 ring pixels sit at odd offsets. HFF counts rate 2 four times, rate 4
    # three times, ... (10 dilated rings instead of 4); every ring adds its centre tap.
    rings = 10 if hff else 4
    centre = 40_000 * (1 + rings) + 100
    total = centre + 8 * 40_000 + rings * 8 * 40_000
    assert rows["all"]["odd"] == pytest.approx(8 * 40_000 / total, rel=1e-12)


def test_asp_equals_esp_without_hff_summed():
    asp = _by_group(gridding_ir(stack("asp", 1, K=5)))
    assert list(asp) == ["all"]
    assert asp["all"]["support"] == 41
    # per tap per branch: 100 input x 100 output channels; no residual
    assert asp["all"]["odd"] == pytest.approx(8 * 10_000 / (5 * 10_000 + 5 * 8 * 10_000))


def test_stacks_leave_the_sublattice_through_the_rate_one_branch():
    for depth in (2, 3):
        for hff in (True, False):
            rows = gridding_ir(stack("esp", depth, K=5, hff=hff))
            assert {r["lattice"] for r in rows} == {1}
    # a plain stack of rate-2 convolutions never does: 7x7 points of a 13x13 box
    rows = gridding_ir(dilated_stack([2, 2, 2]))
    assert (rows[-1]["support"], rows[-1]["box"], rows[-1]["lattice"]) == (49, (13, 13), 2)
    assert rows[-1]["odd"] == 0.0


def test_hff_fills_holes_per_group_not_in_the_sum():
    for depth in (1, 2, 3):
        on = gridding_ir(stack("esp", depth, K=5, hff=True))
        off = gridding_ir(stack("esp", depth, K=5, hff=False))
        assert on[-1]["support"] == off[-1]["support"]
        for a, b in list(zip(on, off))[2:-1]:       # groups 3..K
            assert a["support"] > b["support"] and a["holes"] < b["holes"]


def test_hdc_rule_agrees_with_footprints():
    """HDC's recursion followed to the first layer is exact for non-decreasing rates and never
    wrong when it says 'no holes'."""
    for n in (1, 2, 3):
        for rates in itertools.product(range(1, 6), repeat=n):
            holes = gridding_ir(dilated_stack(rates))[-1]["holes"]
            if hdc_ok(rates):
                assert holes == 0, rates
            elif list(rates) == sorted(rates):
                assert holes > 0, rates
    assert gcd(2, 3) == 1 and not hdc_ok([2, 3])   # the paper's M_2 <= K alone would pass it


def test_cli_analyze_gridding_and_compare_column():
    result = CliRunner().invoke(main, ["analyze", "esp", "-p", "M=100", "-p", "N=100", "--check",
                                       "gridding", "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "node,over,group,channels,support,box,holes,lattice,odd,spread"
    assert "cat,input,s16,80:100,33,33x33,0.9697,2,0.0000,0.8182" in lines
    result = CliRunner().invoke(main, ["compare", "--modules", "esp,resnet", "--gridding",
                                       "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(",paper,gridding")
    assert result.output.splitlines()[2].endswith(",0.0% holes; lattice 1")      # resnet
    rows = {r["module"]: r for r in compare(gridding=True)}
    assert rows["esp"]["gridding"] == "96.2% holes; lattice 1 (groups 1,2,2,2,2)"
    assert rows["mobilenet"]["gridding"] == "0.0% holes; lattice 1"
    # --check alone still measures
    result = CliRunner().invoke(main, ["analyze", "cbr", "-p", "M=3", "-p", "N=8", "--check"])
    assert result.exit_code == 0 and "fvcore" in result.output
