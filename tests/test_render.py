"""espdsl render: real dot output for every zoo model and library block, counts checked
against the IR, the paper's colour rule (Fig. 4), Fig. 1b labels, determinism, a missing dot."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import espdsl
from espdsl.cli import main
from espdsl.registry import default_registry
from espdsl.render import render, to_digraph

from conftest import block_params

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAME = r'("(?:[^"\\]|\\.)*"|\S+)'


SPECS = [(m, {}) for m in espdsl.list_models()] + [(b, block_params(b)) for b in espdsl.list_blocks()]


def laid_out(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Node names and edges as dot itself reads the source (``dot -Tplain``)."""
    plain = subprocess.run(["dot", "-Tplain"], input=source, capture_output=True, text=True,
                           check=True).stdout
    unq = lambda s: s[1:-1].replace('\\"', '"') if s.startswith('"') else s  # noqa: E731
    nodes = [unq(m.group(1)) for m in re.finditer(rf"^node {NAME}", plain, re.M)]
    edges = [(unq(m.group(1)), unq(m.group(2)))
             for m in re.finditer(rf"^edge {NAME} {NAME}", plain, re.M)]
    return nodes, edges


def expected(ir: espdsl.IR, opened: set[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """The drawn nodes and edges computed from the IR alone: each IR node goes to the outermost
    scope on its path that is not opened (itself when all are); IR edges between two different
    such units are drawn once."""
    def unit(name: str) -> str:
        scope = ir.node(name).scope
        parts = scope.split(".") if scope else []
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            if path in ir.scopes and path not in opened:
                return path
        return name
    units = {unit(n) for n in ir.graph.nodes}
    edges = {(unit(a), unit(b)) for a, b in ir.graph.edges if unit(a) != unit(b)}
    return units, edges


def nested_models(ir: espdsl.IR) -> set[str]:
    models = set(espdsl.list_models())
    opened = {""}
    for s in ir.scopes.values():
        if s.kind == "block" and s.block in models:
            parts = s.path.split(".")
            opened.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return opened


@pytest.mark.parametrize("name,params", SPECS, ids=[s[0] for s in SPECS])
def test_every_spec_renders_svg_and_png_with_one_node_per_unit(name, params, tmp_path):
    svg = render(name, tmp_path / f"{name}.svg", **params)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")
    png = render(name, tmp_path / f"{name}.png", dpi=48, **params)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(png) as img:
        assert img.size[0] > 50 and img.size[1] > 50

    ir = espdsl.load(name, **params)
    units, edges = expected(ir, nested_models(ir))
    nodes, drawn = laid_out(to_digraph(ir).source)
    assert sorted(nodes) == sorted(units)              # exactly one node per unit
    assert sorted(drawn) == sorted(edges)              # exactly one edge per IR edge between units


def test_espnet_network_level_counts_from_the_yaml():
    # zoo/espnet.yaml: input + 14 encoder nodes (espnet_c.yaml) + 9 decoder nodes = 24 boxes;
    # edges, read off the two files: 18 in the encoder (input->level1/sample1/sample2, ...,
    # b3->classifier) and 11 from/in the decoder (encoder.classifier->br, ..., conv->classifier).
    nodes, edges = laid_out(to_digraph("espnet").source)
    assert len(nodes) == 24 and len(edges) == 29
    assert ("encoder.b2", "level3_C") in edges and ("encoder.level1", "cat_l1") in edges
    # the residual and strided edges into a repeat collapse to one drawn edge
    assert edges.count(("encoder.level2_0", "encoder.level2")) == 1


def test_esp_block_matches_fig_1b():
    # Fig. 1b, K=5: input, reduce, 5 dilated branches, 3 HFF sums, concat, residual add, BR = 13;
    # edges: 1 (in->reduce) + 5 (reduce->branches) + 6 (sums) + 5 (->concat) + 3 (add, add, BR).
    src = to_digraph("esp", M=100, N=100).source
    nodes, edges = laid_out(src)
    assert len(nodes) == 13 and len(edges) == 20
    for text in ("conv 1x1", "conv 3x3<", "conv 3x3, d=2", "conv 3x3, d=4", "conv 3x3, d=8",
                 "conv 3x3, d=16", "concat", "(100, 20)", "(20, 20)", "br"):
        assert text in src, text
    assert ("input", "sum") in edges                   # the residual connection


def test_expand_all_draws_every_ir_node_and_edge():
    ir = espdsl.load("espnet", alpha2=1, alpha3=1)
    nodes, edges = laid_out(to_digraph(ir, expand="all").source)
    assert len(nodes) == ir.graph.number_of_nodes()
    assert len(edges) == ir.graph.number_of_edges()


def test_expand_one_node_inside_a_network():
    ir = espdsl.load("espnet")
    opened = nested_models(ir) | {"encoder.level2_0"}
    units, edges = expected(ir, opened)
    src = to_digraph(ir, expand="encoder.level2_0").source
    nodes, drawn = laid_out(src)
    assert sorted(nodes) == sorted(units) and sorted(drawn) == sorted(edges)
    assert len(nodes) == 24 - 1 + 12                   # strided ESP: reduce, 5, 3 sums, cat, bn, act
    assert "conv 3x3, s=2" in src and 'subgraph "cluster_encoder.level2_0"' in src


def test_colours_follow_fig_4():
    # Fig. 4: the strided conv, strided ESPs and the input pyramid shrink the map (red); the
    # decoder's deconvolutions grow it (green).
    src = to_digraph("espnet").source
    fills = dict(re.findall(r'^\s*"?([\w.]+)"? \[label=.*fillcolor="(#\w+)"', src, re.M))
    red = {n for n, c in fills.items() if c == "#f8cecc"}
    green = {n for n, c in fills.items() if c == "#d5e8d4"}
    assert red == {"encoder.level1", "encoder.sample1", "encoder.sample2", "encoder.level2_0",
                   "encoder.level3_0"}
    assert green == {"up_l3", "up_l2", "classifier"}
    assert "esp x 2 (alpha2)" in src and "esp x 8 (alpha3)" in src
    assert "(64, 64)" in src and "(131, 128)" in src and "(19, 64)" in src   # Fig. 4 channels


def test_level_bands_group_the_encoder():
    src = to_digraph("espnet").source
    bands = re.split(r"subgraph ", src)
    level2 = next(b for b in bands if "l = 2  (1/4)" in b and "encoder.level2_0" in b)
    for name in ("encoder.sample2", "encoder.level2_0", "encoder.level2", "encoder.cat2", "encoder.b2"):
        assert f'"{name}" [' in level2.split("}")[0]


def test_dot_is_byte_identical_across_processes(tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"espnet{seed}.dot"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "espdsl", "render", "espnet", "--expand",
                        "encoder.level3_0", "--annotate", "shape,params", "-o", str(out)],
                       env=env, check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert to_digraph("esp", M=64, N=64).source == to_digraph("esp", M=64, N=64).source


def test_params_annotation_matches_the_built_module():
    model = espdsl.create_model("espnet")
    own = sum(p.numel() for n, p in model.named_parameters() if n.startswith("encoder.level2_0."))
    src = to_digraph("espnet", annotate="params,shape").source
    line = next(l for l in src.splitlines() if l.lstrip().startswith('"encoder.level2_0"'))
    assert f"{own:,} params" in line and "64x128x256" in line
    assert 'label="64x128x256"' in src                 # edge labels carry the tensor shape


def test_macs_and_rf_annotations():
    pytest.importorskip("espdsl.analysis")
    src = to_digraph("esp", M=100, N=100, annotate="macs,rf").source
    line = next(l for l in src.splitlines() if l.lstrip().startswith("d16 ["))
    # 3x3 conv, 20 -> 20 channels, on 56x56: 20*20*9*56*56 MACs; RF after a 1x1 reduce: 1 + 2*16
    assert f"{20 * 20 * 9 * 56 * 56 / 1e6:.3g}M MACs" in line and "RF 33" in line


def test_cli_without_dot(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    runner = CliRunner()
    res = runner.invoke(main, ["render", "espnet", "-o", str(tmp_path / "net.svg")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "apt-get install graphviz" in lines[0]
    assert "brew install graphviz" in lines[0] and "graphviz.org/download" in lines[0]
    assert list(tmp_path.glob("net*")) == []
    res = runner.invoke(main, ["render", "espnet", "-o", str(tmp_path / "net.dot")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "net.dot").read_text().startswith("digraph espnet {")


def test_cli_bad_input(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["render", "espnet", "--expand", "encoder.levl2_0", "-o",
                               str(tmp_path / "x.svg")])
    assert res.exit_code == 2 and "did you mean 'encoder.level2_0'" in res.output
    res = runner.invoke(main, ["render", "espnet", "--expand", "encoder.cat1", "-o",
                               str(tmp_path / "x.svg")])
    assert res.exit_code == 2 and "single concat op" in res.output
    res = runner.invoke(main, ["render", "espnet", "-o", str(tmp_path / "x.jpg")])
    assert res.exit_code == 2 and ".svg, .png, .pdf or .dot" in res.output
    res = runner.invoke(main, ["render", "espnet", "--annotate", "flops", "-o", str(tmp_path / "x.dot")])
    assert res.exit_code == 2 and "unknown annotation 'flops'" in res.output
    assert not list(tmp_path.iterdir())


def test_cli_block_file_with_params_and_pdf(tmp_path):
    blocks = Path(espdsl.registry.data_dir("blocks"))
    out = tmp_path / "esp.pdf"
    res = CliRunner().invoke(main, ["render", str(blocks / "esp.yaml"), "-p", "M=100", "-p", "N=100",
                                    "--rankdir", "LR", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:5] == b"%PDF-"
