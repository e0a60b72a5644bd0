"""`espdsl compile`, `validate` and `list` from the command line."""
from __future__ import annotations

import json

import onnx
import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result


def test_compile_espnet_prints_the_papers_count():
    result = run("compile", "zoo/espnet.yaml")
    assert result.exit_code == 0, result.output
    assert "total trainable parameters: 364,569" in result.output
    assert "input 1x3x512x1024 -> output 1x20x512x1024" in result.output
    result = run("compile", "zoo/espnet.yaml", "-p", "alpha3=3")
    assert "total trainable parameters: 202,649" in result.output


def test_compile_json_per_node():
    result = run("compile", "espnet_c", "-p", "alpha3=5", "--format", "json", "--input", "1x3x256x512")
    data = json.loads(result.output)
    assert data["params"] == 252_297 and data["output"] == [1, 20, 32, 64]
    rows = {r["name"]: r for r in data["nodes"]}
    assert rows["level3"]["block"] == "esp x 5 (alpha3)"
    assert rows["cat2"]["in_channels"] == [64, 64, 3] and rows["cat2"]["out_channels"] == 131
    model = espdsl.create_model("espnet_c", alpha3=5)
    for name, row in rows.items():  # per-node params agree with the built module's submodules
        sub = model.get_submodule(name) if name in dict(model.named_children()) else None
        if sub is not None:
            assert row["params"] == sum(p.numel() for p in sub.parameters()), name
    assert sum(r["params"] for r in data["nodes"]) == 252_297


@pytest.mark.parametrize("suffix", [".onnx", ".ts"])
def test_compile_exports(tmp_path, suffix):
    out = tmp_path / f"esp{suffix}"
    result = run("compile", "esp", "-p", "M=16", "-p", "N=16", "--input", "1x16x32x32", "-o", str(out))
    assert result.exit_code == 0, result.output
    x = torch.randn(1, 16, 32, 32)
    if suffix == ".onnx":
        onnx.checker.check_model(onnx.load(str(out)))
    else:
        ts = torch.jit.load(str(out))
        assert ts(x).shape == (1, 16, 32, 32)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp files left behind


def test_compile_refuses_unknown_output_type_and_writes_nothing(tmp_path):
    out = tmp_path / "model.h5"
    result = run("compile", "esp", "-p", "M=8", "-p", "N=8", "-o", str(out))
    assert result.exit_code == 2 and "unknown output type '.h5'" in result.output
    assert not any(tmp_path.iterdir())


def test_compile_into_missing_folder_creates_it(tmp_path):
    """Like predict -o: the missing folders are made (and nothing else is left behind)."""
    out = tmp_path / "no" / "such" / "m.py"
    result = run("compile", "esp", "-p", "M=8", "-p", "N=8", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["m.py"]


def test_output_under_a_file_fails_and_leaves_nothing(tmp_path):
    (tmp_path / "f").write_text("a file")
    result = run("compile", "esp", "-p", "M=8", "-p", "N=8", "-o", str(tmp_path / "f" / "x" / "m.py"))
    assert result.exit_code == 2 and "cannot create folder" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_render_into_missing_folder_creates_it(tmp_path):
    out = tmp_path / "pics" / "esp.dot"
    result = run("render", "esp", "-p", "M=8", "-p", "N=8", "-o", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("digraph"), result.output


def test_validate_and_list():
    result = run("validate", "espnet")
    assert result.exit_code == 0 and "1x3x512x1024 -> 1x20x512x1024" in result.output
    result = run("list")
    assert result.exit_code == 0
    for name in espdsl.list_blocks() + espdsl.list_models():
        assert f"  {name} " in result.output


def test_every_command_is_in_the_help_and_the_readme():
    from pathlib import Path
    import click
    commands = set(main.list_commands(click.Context(main)))
    assert commands >= {"compile", "validate", "list", "analyze", "compare", "render", "predict"}
    help_text = run("--help").output
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in commands:
        assert f"  {name} " in help_text, name
        assert f"`espdsl {name}" in readme, name


def test_user_blocks_from_the_command_line(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "twoconv.yaml").write_text(
        "block: twoconv\nparams: {M: {type: int}, N: {type: int}}\n"
        "nodes:\n  - {name: a, op: conv, out: N, kernel: 3}\n  - {name: b, op: conv, out: N, kernel: 3}\n")
    result = run("compile", "espnet_c", "-p", "module=twoconv", "-p", "alpha2=1", "-p", "alpha3=1",
                 "--blocks", str(folder), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["nodes"]}
    assert rows["level3"]["block"] == "twoconv x 1 (alpha3)"
    assert rows["level3"]["params"] == 2 * 9 * 128 * 128
    assert "twoconv" in run("list", "--blocks", str(folder)).output
    missing = run("compile", "espnet_c", "-p", "module=twoconv")
    assert missing.exit_code == 2 and "unknown block or model 'twoconv'" in missing.output


@pytest.mark.parametrize("args", [["--help"], ["validate", "espnet"], ["analyze", "espnet"],
                                  ["list"], ["compare"], ["render", "espnet", "-o", "{tmp}/n.dot"],
                                  ["compile", "espnet", "--optimize"], ["bench", "--help"]])
def test_commands_that_need_no_tensors_do_not_import_torch(args, tmp_path):
    """In a fresh process: importing torch alone takes about a second."""
    import subprocess
    import sys
    code = ("import sys\nfrom espdsl.cli import main\n"
            f"sys.argv = ['espdsl'] + {[a.format(tmp=tmp_path) for a in args]!r}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
            "print('torch' in sys.modules, code, file=sys.stderr)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stderr.strip().splitlines()[-1] == "False 0", run.stderr


def test_compile_without_export_builds_nothing():
    """A conv with 10^8 output channels would need ~4 GB of weights; without -o nothing is built."""
    import subprocess
    import sys
    import textwrap
    spec = textwrap.dedent("""\
        model: huge
        input: {channels: 3, size: [8, 8]}
        nodes:
          - {name: wide, op: conv, out: 100000000, kernel: 3}
        """)
    code = ("import sys, pathlib, tempfile\nfrom espdsl.cli import main\n"
            "p = pathlib.Path(tempfile.mkdtemp()) / 'huge.yaml'\n"
            f"p.write_text({spec!r})\n"
            "sys.argv = ['espdsl', 'compile', str(p)]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
            "print('torch' in sys.modules, code, file=sys.stderr)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stderr.strip().splitlines()[-1] == "False 0", run.stderr
    assert "2,700,000,000" in run.stdout      # 3 x 3 x 3 x 10^8 weights, counted, not allocated
