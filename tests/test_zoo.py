"""`espdsl zoo`: the paper's studies as data. Every count is derived here by hand from the
module definitions (or read from the authors' checkpoints), never from espdsl's own output;
the paper's printed values are quoted from the paper."""
from __future__ import annotations

import io
import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import espdsl
from conftest import ROOT
from espdsl.cli import main
from espdsl.study.run import run
from espdsl.study.table import format_result

C = 20  # classes


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def fig5_result():
    return run("fig5")


@pytest.fixture(scope="module")
def fig5(fig5_result):
    return {r["name"]: r for r in fig5_result.rows}


@pytest.fixture(scope="module")
def table2():
    result = run("table2")
    return result, {(r["study"], r["name"]): r for part in result.parts for r in part.rows}


# -- hand formulas (trainable parameters: conv weights, BN 2 per channel, PReLU 1 per channel) --
def cbr(m: int, n: int, k: int = 3) -> int:
    return k * k * m * n + 3 * n


def strided_esp(m: int, n: int, K: int) -> int:
    d = n // K          # reduce: 3x3 stride 2, M -> d; the K branches give 9 d N in all; BN + PReLU
    return 9 * m * d + 9 * d * n + 3 * n


def esp(n: int, K: int = 5, reduce: int = 1) -> int:
    d = n // K          # reduce: reduce^2 N d; branches 9 d N; BR
    return reduce * reduce * n * d + 9 * d * n + 3 * n


def espnet_a(K: int, down_K: int, a2: int = 2, a3: int = 3, down: str = "esp") -> int:
    downs = (strided_esp(16, 64, down_K) + strided_esp(64, 128, down_K) if down == "esp"
             else cbr(16, 64) + cbr(64, 128))
    return cbr(3, 16) + downs + a2 * esp(64, K) + a3 * esp(128, K) + 128 * C


def shufflenet(n: int, g: int, K: int) -> int:
    d = max(g, n // K // g * g)   # grouped 1x1 N -> d, BR, 3x3 depth-wise, BN, grouped 1x1 d -> N, BN, PReLU
    return 2 * n * d // g + 3 * d + 9 * d + 2 * d + 2 * n + n


MODULE = {  # a module N -> N at K = 5 (Fig. 3's definitions, plus BN + PReLU as built)
    "esp": lambda n: esp(n),
    "mobilenet": lambda n: 9 * n + 3 * n + n * n + 3 * n,
    "shufflenet": lambda n: shufflenet(n, g=4, K=4),
    "inception": lambda n: 5 * n * (n // 5) + 9 * (n // 5) * n + 3 * n,
    "resnext": lambda n: 5 * (2 * n * (n // 5) + 9 * (n // 5) ** 2) + 3 * n,
    "resnet": lambda n: 18 * n * n + 6 * n,
    "asp": lambda n: 5 * 9 * n * n + 3 * n,
}


def espnet_c_conv_down(module: str) -> int:
    """ESPNet-C, alpha2 = 2, alpha3 = 3, strided 3x3 CBRs down-sampling (Fig. 5)."""
    stem = cbr(3, 16) + 3 * 19 + cbr(19, 64) + 3 * 131 + cbr(131, 128) + 3 * 256 + 256 * C
    return stem + 2 * MODULE[module](64) + 3 * MODULE[module](128)


# -- the studies' rows ---------------------------------------------------------------------------
@pytest.mark.parametrize("module", list(MODULE))
def test_fig5_rows_count_as_the_modules_are_defined(fig5, module):
    assert fig5[module]["params"] == espnet_c_conv_down(module)
    assert fig5[module]["settings"]["down"] == "conv"


def test_fig5_other_rows(fig5):
    stem = espnet_c_conv_down("esp") - 2 * esp(64) - 3 * esp(128)
    resnet = 2 * MODULE["resnet"](64) + 3 * MODULE["resnet"](128)
    assert fig5["resnet_sesp"]["params"] == 187_529 - 2 * esp(64) - 3 * esp(128) + resnet
    strided_resnet = lambda m, n: 9 * m * n + 9 * n * n + 6 * n   # no residual when M != N
    assert fig5["resnet_own"]["params"] == (stem - cbr(19, 64) - cbr(131, 128) + strided_resnet(19, 64)
                                            + strided_resnet(131, 128) + resnet)
    assert fig5["shufflenet"]["params"] == stem + 2 * shufflenet(64, 4, 4) + 3 * shufflenet(128, 4, 4)
    for name in ("shufflenet_params", "shufflenet_macs"):
        g, K = fig5[name]["settings"]["g"], fig5[name]["settings"]["K"]
        assert fig5[name]["params"] == stem + 2 * shufflenet(64, g, K) + 3 * shufflenet(128, g, K)
    assert fig5["esp"]["down_params"] == cbr(19, 64) + cbr(131, 128)


def test_fig5_module_params_and_the_resnet_ratio(fig5, fig5_result):
    assert fig5["esp"]["module_params"] == 2 * esp(64) + 3 * esp(128)
    assert fig5["resnet"]["module_params"] == 2 * MODULE["resnet"](64) + 3 * MODULE["resnet"](128)
    assert fig5["esp_sesp"]["params"] == 187_529          # the authors' ESPNet-C, Table 2g
    ratios = {r["name"]: r for r in fig5_result.ratios}
    assert ratios["resnet_fig5"]["value"] == pytest.approx(1_204_514 / 282_146)
    assert ratios["resnet_vs_espnet_c"]["value"] == pytest.approx(1_204_514 / 187_529)
    assert not any(r["paper"]["match"] for r in ratios.values() if r["paper"])  # no reading gives 6.5


def test_fig5_shufflenet_search_finds_the_closest_count(fig5):
    """Brute force over the same values with torch's own parameter count."""
    target = sum(p.numel() for p in espdsl.create_model(
        "espnet_c", alpha3=3, down="conv", module="esp").parameters())
    best = None
    for g in [1, 2, 4, 8]:
        for K in range(2, 9):
            try:
                model = espdsl.create_model("espnet_c", alpha3=3, down="conv", module="shufflenet",
                                            g=g, K=K)
            except espdsl.EspdslError:
                continue
            n = sum(p.numel() for p in model.parameters())
            if best is None or abs(n - target) < abs(best[2] - target):
                best = (g, K, n)
    row = fig5["shufflenet_params"]
    assert (row["settings"]["g"], row["settings"]["K"], row["params"]) == best
    assert row["match"]["chosen"] == {"g": best[0], "K": best[1]}
    assert row["match"]["diff"] == best[2] - target
    assert (best[0], best[1]) != (4, 4)                  # the paper's setting is not the match


def test_table2_counts(table2):
    _, rows = table2
    assert rows["table2c", "strided_conv"]["params"] == espnet_a(5, 4, down="conv") == 199_456
    assert rows["table2c", "strided_esp"]["params"] == espnet_a(5, 4) == 183_328
    assert rows["table2d", "C1"]["params"] == (187_529 - 2 * esp(64) - 3 * esp(128)
                                              + 2 * esp(64, reduce=3) + 3 * esp(128, reduce=3))
    assert rows["table2d", "C1"]["params"] == 276_617
    assert rows["table2d", "C3"]["params"] == rows["table2d", "C2"]["params"] == 187_529
    assert rows["table2d", "C3"]["module_rf"] == 3 and rows["table2d", "C2"]["module_rf"] == 33
    for K in (2, 4, 5, 6, 7, 8):
        assert rows["table2e", f"K{K}"]["params"] == espnet_a(K, 4)
        assert rows["table2e", f"K{K}_all"]["params"] == espnet_a(K, K)
        assert rows["table2e", f"K{K}"]["erf"] == 2 * 2 ** (K - 1) + 1   # (n - 1) 2^(K-1) + 1
    assert [rows["table2e", f"K{K}"]["params"] for K in (2, 4, 5, 6, 7, 8)] == [
        358_688, 215_328, 183_328, 165_408, 152_608, 143_648]
    assert [rows["table2f", n]["params"] for n in ("espnet_a_star", "espnet_b", "espnet_c", "espnet")] \
        == [183_328, 186_464, 187_529, 202_649]


def test_the_paper_truncates(table2):
    """Table 2e's reading fits all six counts when truncated to three decimals, not rounded."""
    _, rows = table2
    for K in (2, 4, 5, 6, 7, 8):
        assert rows["table2e", f"K{K}"]["paper"]["params"]["match"], K
        assert rows["table2e", f"K{K}"]["paper"]["params"]["truncate"]
    assert not rows["table2e", "K7"]["paper"]["params"]["round"]      # 152,608 -> 0.153
    assert not rows["table2e", "K5_all"]["paper"]["params"]["match"]  # K in every module: 168,352
    g = [rows["table2g", f"{b}_a3_{a}"]["paper"] for b in ("espnet_c", "espnet") for a in (3, 5, 8)]
    assert all(p["params"]["truncate"] and p["size_mb"]["truncate"] for p in g)
    assert not all(p["size_mb"]["round"] for p in g)


def test_table2g_counts_and_sizes_against_the_authors_checkpoints(reference_dir, table2):
    """The authors' six checkpoints: their trainable parameters, and their files re-saved the
    way the size convention saves our built models, byte for byte."""
    rows = {name: r for (study, name), r in table2[1].items() if study == "table2g"}
    printed = {"espnet_c": ["0.75", "1.01", "1.40"], "espnet": ["0.82", "1.07", "1.46"]}
    for base, folder in (("espnet_c", "encoder"), ("espnet", "decoder")):
        for alpha3, size in zip((3, 5, 8), printed[base]):
            path = reference_dir / "weights" / folder / f"espnet_p_2_q_{alpha3}.pth"
            state = torch.load(path, map_location="cpu", weights_only=True)
            row = rows[f"{base}_a3_{alpha3}"]
            assert row["params"] == sum(v.numel() for k, v in state.items()
                                        if not k.endswith(("running_mean", "running_var")))
            buffer = io.BytesIO()
            torch.save(OrderedDict(state), buffer, _use_new_zipfile_serialization=False)
            assert row["size_bytes"] == buffer.tell()
            # the convention: bytes / (1000 * 1024), truncated to the paper's two decimals; it
            # holds for the authors' own files as they lie on disk too
            for nbytes in (row["size_bytes"], path.stat().st_size):
                assert f"{int(nbytes / 1_024_000 * 100) / 100:.2f}" == size


def test_size_convention_without_reference_data(table2):
    rows = {name: r for (study, name), r in table2[1].items() if study == "table2g"}
    for a3 in (3, 5, 8):   # one ESP module at level 3 more or less than the released alpha3 = 3
        assert rows[f"espnet_c_a3_{a3}"]["params"] == 187_529 + (a3 - 3) * esp(128)
        assert rows[f"espnet_a3_{a3}"]["params"] == 202_649 + (a3 - 3) * esp(128)
    got = [f"{int(rows[n]['size_bytes'] * 100 / 1_024_000) / 100:.2f}" for n in
           ("espnet_c_a3_3", "espnet_c_a3_5", "espnet_c_a3_8", "espnet_a3_3", "espnet_a3_5", "espnet_a3_8")]
    assert got == ["0.75", "1.01", "1.40", "0.82", "1.07", "1.46"]
    # 4 bytes a parameter in MB of 10^6 cannot give 0.82 for ESPNet at alpha3 = 3
    assert round(202_649 * 4 / 1e6, 2) == 0.81


def test_fig9_grid():
    rows = run("fig9").rows
    assert len(rows) == 28
    for r in rows:
        a2, a3 = r["settings"]["alpha2"], r["settings"]["alpha3"]
        assert r["name"] == f"a2_{a2}_a3_{a3}"
        assert r["params"] == 202_649 + (a2 - 2) * esp(64) + (a3 - 3) * esp(128)


# -- written folders -------------------------------------------------------------------------------
def test_every_written_spec_compiles_alone_with_the_same_count(tmp_path):
    out = tmp_path / "f"
    code, stdout, stderr = cli("zoo", "table2f", "-o", str(out), "--emit", "yaml,py")
    assert code == 0, stderr
    rows = {r["name"]: r for r in json.loads((out / "table2f.json").read_text())["rows"]}
    for name, row in rows.items():
        spec = out / f"{name}.yaml"
        assert "table2f" not in spec.read_text().split("model:")[1]  # no reference to the study
        model = espdsl.create_model(spec)
        assert sum(p.numel() for p in model.parameters()) == row["params"], name
        namespace: dict = {}
        exec(compile((out / f"{name}.py").read_text(), f"{name}.py", "exec"), namespace)
        standalone = namespace[next(k for k in namespace if k.lower() == name.replace("_", ""))]()
        assert sum(p.numel() for p in standalone.parameters()) == row["params"], name
    for copy in (out / "blocks").iterdir():   # the blocks travel with the specs, unchanged
        assert copy.read_bytes() == (ROOT / ("zoo" if copy.stem.startswith("espnet") else "blocks")
                                     / copy.name).read_bytes()
    code, stdout, _ = cli("compile", str(out / "espnet.yaml"))
    assert code == 0 and "total trainable parameters: 202,649" in stdout
    assert sorted(p.name for p in out.glob("*.png")) == ["params.png"]


def test_fig5_folder_and_reruns(tmp_path):
    out = tmp_path / "fig5"
    code, stdout, stderr = cli("zoo", "fig5", "-o", str(out))
    assert code == 0, stderr
    assert "| `resnet`" not in stdout and "resnet" in stdout      # the terminal table
    names = {p.name for p in out.iterdir()}
    assert {"fig5.md", "fig5.csv", "fig5.json", "params_macs.png", "size.png", "blocks"} <= names
    assert "speed.png" not in names                                # needs --bench
    rows = json.loads((out / "fig5.json").read_text())["rows"]
    for row in rows:
        assert espdsl.analyze(out / f"{row['name']}.yaml").totals.params == row["params"]
    for row in rows[::5]:
        code, stdout, _ = cli("compile", str(out / f"{row['name']}.yaml"), "--format", "json")
        assert json.loads(stdout)["params"] == row["params"]
    assert (out / "fig5.md").read_text() == (ROOT / "analysis" / "fig5.md").read_text()
    code, _, _ = cli("zoo", "fig5", "-o", str(out), "-p", "classes=19")  # replaces its own output
    assert code == 0
    assert json.loads((out / "fig5.json").read_text())["rows"][0]["settings"]["classes"] == 19


def test_generated_analysis_files_regenerate_byte_for_byte(fig5_result, table2):
    for name, result in (("fig5", fig5_result), ("table2", table2[0])):
        text = format_result(result, "markdown")
        assert text == (ROOT / "analysis" / f"{name}.md").read_text(encoding="utf-8"), name
    page = (ROOT / "docs" / "paper.md").read_text(encoding="utf-8")
    table = page[page.index("| row          |"):]
    assert table[:table.index("\n\n")] in format_result(fig5_result, "markdown")  # docs' table


# -- the bench hook, with a real timer -------------------------------------------------------------
def test_latency_column_and_plot_from_a_timer(tmp_path):
    import time

    study = tmp_path / "tiny.yaml"
    study.write_text(
        "study: tiny\nbase: espnet_c\ninput: 1x3x64x128\nparams: {alpha2: 1, alpha3: 1}\n"
        "variants:\n  - {name: esp, params: {module: esp}}\n  - {name: mobilenet, params: {module: mobilenet}}\n"
        "plots:\n  - {name: speed, kind: scatter, x: fps, y: params}\n")

    def timer(ir, model):                 # a real measurement: one forward pass, in ms
        x = torch.zeros(ir.input_shape)
        with torch.no_grad():
            start = time.perf_counter()
            model.eval()(x)
            return (time.perf_counter() - start) * 1000

    result = run(study, timer=timer)
    assert all(r["latency_ms"] > 0 and r["fps"] == pytest.approx(1000 / r["latency_ms"])
               for r in result.rows)
    from espdsl.study.write import write_study
    files = write_study(result, tmp_path / "out")
    assert tmp_path / "out" / "speed.png" in files


def test_bench_hook_times_with_espdsl_bench(tmp_path):
    """The latency column comes from espdsl.bench: the mean of its timed runs."""
    from espdsl.study.measure import bench_latency_ms
    study = tmp_path / "tiny.yaml"
    study.write_text("study: tiny\nbase: espnet_c\ninput: 1x3x64x128\nparams: {alpha2: 1, alpha3: 1}\n"
                     "variants:\n  - {name: esp, params: {module: esp}}\n")
    result = run(study, timer=lambda ir, model: bench_latency_ms(ir, model, runs=3, warmup=1))
    assert all(r["latency_ms"] > 0 and r["fps"] == pytest.approx(1000 / r["latency_ms"])
               for r in result.rows)


def test_zoo_bench_runs_from_the_command_line(tmp_path):
    """--runs/--warmup reach the timer; a nonsensical count is refused before any work."""
    study = tmp_path / "tiny.yaml"
    study.write_text("study: tiny\nbase: espnet_c\ninput: 1x3x64x128\nparams: {alpha2: 1, alpha3: 1}\n"
                     "variants:\n  - {name: esp, params: {module: esp}}\n")
    code, out, err = cli("zoo", str(study), "--bench", "--runs", "2", "--warmup", "0",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["latency_ms"] > 0
    code, out, err = cli("zoo", str(study), "--bench", "--runs", "0", "-o", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "runs must be at least 1" in err
    assert not (tmp_path / "o").exists()


# -- bad input ----------------------------------------------------------------------------------
BAD = [
    ("unknown-key", "study: bad\nbase: espnet_c\nvariant: []\n",
     r"^bad\.yaml:3:1: error: unknown key 'variant'; hint: did you mean 'variants'\?$"),
    ("unknown-param", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a, params: {alpha4: 3}}\n",
     r"^bad\.yaml:4:24: error: row 'a': 'alpha4' is not a parameter of model 'espnet_c'; hint: did you mean 'alpha3'\?"),
    ("bad-value", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a, params: {down: strided}}\n",
     r"^bad\.yaml:4:30: error: parameter 'down' of model 'espnet_c' must be one of"),
    ("unknown-row", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a}\nratios:\n"
     "  - {name: r, of: a, to: b, quantity: params}\n",
     r"^bad\.yaml:6:5: error: unknown row 'b'"),
    ("unknown-column", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a}\nplots:\n"
     "  - {name: p, kind: scatter, x: macs, y: parms}\n",
     r"^bad\.yaml:6:5: error: unknown column 'parms'; hint: did you mean 'params'\?"),
    ("does-not-resolve", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a, params: {module: shufflenet, g: 3}}\n",
     r"^bad\.yaml:4:5: error: row 'a' \(espnet_c with module=shufflenet, g=3\) does not resolve: groups=3"),
    ("duplicate-row", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a}\n  - {name: a}\n",
     r"^bad\.yaml:5:5: error: two rows are named 'a'"),
    ("printed", "study: bad\nbase: espnet_c\nvariants:\n  - {name: a, paper: {params: about 0.2}}\n",
     r"^bad\.yaml:4:31: error: cannot read the printed value 'about 0.2'"),
    ("yaml", "study: bad\nbase: [espnet_c\n", r"^bad\.yaml:3:1: error: invalid YAML"),
    ("name", "study: other\nbase: espnet_c\nvariants:\n  - {name: a}\n",
     r"^bad\.yaml:1:8: error: study 'other' is defined in a file named 'bad\.yaml'"),
]


@pytest.mark.parametrize("case,text,pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_study_files(tmp_path, monkeypatch, case, text, pattern):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(text)
    code, stdout, stderr = cli("zoo", "bad.yaml", "-o", "out")
    assert code == 2, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]   # nothing written


def test_bad_command_lines(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for args, message in [
        (["zoo", "fig6"], "unknown study 'fig6'; hint: did you mean"),
        (["zoo", "fig5", "-p", "alpha=3"], "no spec of study 'fig5' (espnet_c) has a parameter 'alpha'"),
        (["zoo", "fig9", "-p", "alpha3=4"], "every row of study 'fig9' sets alpha3 itself"),
        (["zoo", "fig5", "--emit", "yaml,h5"], "unknown --emit kind 'h5'"),
        (["zoo", "table2c", "-o", str(tmp_path / "mine")], "holds files that espdsl zoo did not write"),
        (["zoo", "table2c", "-o", str(tmp_path / "mine" / "notes.txt" / "x")], "cannot create folder"),
    ]:
        code, _, stderr = cli(*args)
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, (args, stderr)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_output_folder_is_created_like_predicts(tmp_path):
    out = tmp_path / "out" / "t2c"
    code, _, stderr = cli("zoo", "table2c", "-o", str(out))
    assert code == 0, stderr
    assert (out / "table2c.md").is_file() and (out / "strided_esp.yaml").is_file()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["t2c"]


def test_list_and_help():
    code, stdout, _ = cli("zoo")
    assert code == 0
    for name in ("fig5", "fig9", "table2", "table2c", "table2d", "table2e", "table2f", "table2g"):
        assert re.search(rf"^{name}\s", stdout, re.M), name
    assert espdsl.list_studies() == sorted(espdsl.list_studies())


def test_every_shipped_study_matches_the_schema():
    import jsonschema
    from ruamel.yaml import YAML

    schema = json.loads((ROOT / "espdsl" / "study.schema.json").read_text())
    for path in sorted((ROOT / "zoo" / "studies").glob("*.yaml")):
        jsonschema.validate(YAML(typ="safe").load(path.read_text()), schema)
