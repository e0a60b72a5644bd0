"""espdsl footprint and espdsl features: pictures written all-or-nothing, one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from espdsl.cli import main
from espdsl.features import lattice_energy


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_footprint_png_and_svg(tmp_path):
    out = tmp_path / "fp.png"
    result = run("footprint", "c", "-p", "M=1", "-p", "N=1", "-p", "n=3", "-p", "dilation=2",
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "all: support 9, box 5x5, holes 64.0%, lattice 2" in result.output
    assert Image.open(out).format == "PNG"
    svg = tmp_path / "esp.svg"
    result = run("footprint", "esp", "-p", "M=20", "-p", "N=20", "-p", "K=3", "--beside",
                 "hff=false", "--at", "20,20", "-o", str(svg))
    assert result.exit_code == 0, result.output
    assert "hff=False d4: support 9, box 9x9, holes 88.9%, lattice 4" in result.output
    assert "hff=True s4: support 17, box 9x9, holes 79.0%, lattice 2" in result.output
    assert svg.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("args, message", [
    (["--at", "3"], "error: bad pixel '--at 3'; hint: write --at y,x"),
    (["--at", "99,0"], "error: pixel 99,0 is outside 'act' (56x56)"),
    (["--node", "cnv"], "error: no node 'cnv' in 'cbr'; hint: did you mean"),
    (["--channels", "x"], "error: bad --channels 'x'"),
])
def test_footprint_errors(tmp_path, args, message):
    out = tmp_path / "fp.png"
    result = run("footprint", "cbr", "-p", "M=3", "-p", "N=8", *args, "-o", str(out))
    assert result.exit_code == 2
    assert result.output.splitlines()[0].startswith(message), result.output
    assert len(result.output.splitlines()) == 1 and not out.exists()
    result = run("footprint", "cbr", "-p", "M=3", "-p", "N=8", "-o", str(tmp_path / "fp.gif"))
    assert result.exit_code == 2 and "end the file name in .png, .svg or .pdf" in result.output


def test_lattice_energy_of_a_grid():
    maps = np.zeros((2, 32, 32))
    maps[0, ::4, ::4] = 1.0                  # a lattice of period 4
    maps[1] = np.linspace(0, 1, 32)[None, :]  # a smooth ramp
    assert lattice_energy(maps[:1], 4) == pytest.approx(1.0)
    assert lattice_energy(maps[1:], 4) < 0.02


def test_features_with_and_without_hff(tmp_path, reference_dir):
    weights = reference_dir / "weights" / "encoder" / "espnet_p_2_q_8.pth"
    image = reference_dir / "frankfurt_000000_000294_leftImg8bit.png"
    energies = {}
    for hff in ("true", "false"):
        out = tmp_path / f"hff_{hff}"
        result = run("features", "espnet_c", "-p", "alpha3=8", "-p", f"hff={hff}", "--weights",
                     str(weights), str(image), "--node", "level3.7", "-o", str(out))
        assert result.exit_code == 0, result.output
        names = sorted(p.name for p in out.iterdir())
        assert names == [f"{image.stem}_level3_7_bn_act_channels.png",
                         f"{image.stem}_level3_7_bn_act_mean_abs.png"]
        grid = Image.open(out / names[0])
        assert grid.size == (16 * 128 + 15 * 2, 8 * 64 + 7 * 2)    # 128 channels of 64x128
        line = result.output.splitlines()[0]
        energies[hff] = {int(k): float(v) for k, v in
                         (part.split(": ") for part in line.split("lattice energy ")[1].split(", "))}
    # the same trained weights without HFF: more of the variance on the lattices of the large
    # dilations (8, 16), and for this checkpoint on the period-2 lattice too
    for period in (8, 16):
        assert energies["false"][period] > 1.4 * energies["true"][period]
    assert energies["false"][2] > 2 * energies["true"][2]


def test_features_bad_node_writes_nothing(tmp_path, reference_dir):
    out = tmp_path / "new"
    result = run("features", "espnet_c", "--weights", str(tmp_path / "missing.pth"),
                 str(reference_dir / "frankfurt_000000_000294_leftImg8bit.png"), "--node",
                 "levl3", "-o", str(out))
    assert result.exit_code == 2
    assert result.output.startswith("error: no node 'levl3' in 'espnet_c'; hint: did you mean")
    assert not out.exists()
