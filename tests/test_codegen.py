"""`espdsl compile SPEC -o net.py`: standalone PyTorch source equivalent to the compiled module."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import espdsl
from conftest import block_params, load_module
from espdsl.cli import main


@pytest.mark.parametrize("name, params, size", [
    ("espnet", {"alpha3": 2, "skip": "b1"}, (1, 3, 64, 96)),
    ("espnet_c", {"alpha3": 1, "module": "shufflenet"}, (1, 3, 32, 32)),
    *[(b, {**block_params(b), "M": 100}, (1, 100, 12, 12))
      for b in ["esp", "mobilenet", "shufflenet", "inception", "resnext", "asp", "resnet", "up"]],
])
def test_generated_source_matches_the_compiled_module(name, params, size, tmp_path):
    declared = espdsl.open_spec(name, espdsl.registry.default_registry()).params
    params = {k: v for k, v in params.items() if k in declared}
    out = tmp_path / f"gen_{name}.py"
    args = ["compile", name, "--input", "x".join(map(str, size)), "-o", str(out)]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    source = out.read_text()
    assert "espdsl" not in source.split('"""', 2)[2]  # only torch is imported
    compiled = espdsl.create_model(name, input_size=size, **params) if name.startswith("espnet") \
        else espdsl.create_block(name, input_size=size, **params)
    compiled.eval()
    with torch.no_grad():  # random BN statistics, so the comparison sees them
        for m in compiled.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    cls = [v for k, v in vars(load_module(out)).items()
           if isinstance(v, type) and issubclass(v, torch.nn.Module)][0]
    standalone = cls().eval()
    standalone.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(size)
    with torch.no_grad():
        torch.testing.assert_close(standalone(x), compiled(x), rtol=0, atol=0)


def test_generated_source_runs_as_a_script(tmp_path):
    out = tmp_path / "net.py"
    CliRunner().invoke(main, ["compile", "esp", "-p", "M=8", "-p", "N=8", "-o", str(out)])
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "torch.Size([1, 8, 56, 56])"


HOSTILE = [
    '"""', "'''", '"', "\\", "a\\", "\\n", "\n", "\r\n", "\t", "\x00", "\x1b[2J", "\u2028",
    "\ud800", "Ω ≈ √ × 😀", '"""\nimport os; os.system("touch pwned")\n"""',
    "__import__('os').system('touch pwned')", "'); open('pwned', 'w'); ('",
    "{{ 7 * 7 }}", "{% include 'x' %}", "\\N{BULLET}", "\\x41\\u0041", "a" * 2000,
]


def write_hostile_export(text: str, base) -> tuple:
    """A spec whose str parameter (default and -p), folder name and doc carry ``text``,
    compiled to .py in a folder of its own; returns (result, out, spec folder)."""
    import json
    safe = "".join(c for c in text[:40] if c not in "/\0" and not 0xD800 <= ord(c) <= 0xDFFF)
    folder = base / f"spec{len(list(base.iterdir()))}{safe}"
    folder.mkdir()
    spec = folder / "net.yaml"
    # JSON strings are YAML double-quoted scalars: the text arrives exactly. A str default is a
    # name template ('{...}' parts are expressions), so text with braces goes in -p only.
    default = "x" if "{" in text or "}" in text else text
    spec.write_text("model: net\ndoc: " + json.dumps(text) + "\nparams:\n"
                    "  label: {type: str, default: " + json.dumps(default) + "}\n"
                    "  note: {type: str, default: x}\n"
                    "input: {channels: 3, size: [8, 8]}\n"
                    "nodes:\n  - {name: conv, op: conv, out: 4, kernel: 3}\n")
    run_dir = folder / "run"
    run_dir.mkdir()
    out = run_dir / "net.py"
    result = CliRunner().invoke(main, ["compile", str(spec), "-o", str(out), "-p",
                                       "note=" + text])
    return result, out, folder


def test_hostile_text_makes_valid_inert_code(tmp_path):
    """Every hostile text: the .py file parses, runs (in a folder of its own, one subprocess
    for all of them) and creates nothing but what it prints; its docstring holds the text."""
    import ast
    import json
    outs = []
    for text in HOSTILE:
        result, out, folder = write_hostile_export(text, tmp_path)
        if len(text) > 1000 or "\ud800" in text:  # too long for a str parameter; not Unicode
            assert result.exit_code == 2, result.output
            assert "expr_length limit" in result.output or "lone surrogate" in result.output
            assert not out.exists()
            continue
        assert result.exit_code == 0, (text, result.output)
        ast.parse(out.read_text(encoding="utf-8"))
        doc = load_module(out).__doc__
        assert f"note={text!r}" in doc  # the text, exactly, from the command line
        if "{" not in text:
            assert f"label={text!r}" in doc  # and from the spec
        outs.append(out)
    runner = ("import contextlib, io, json, os, runpy, sys\n"
              "shapes = []\n"
              "for path in json.loads(sys.argv[1]):\n"
              "    os.chdir(os.path.dirname(path))\n"
              "    with contextlib.redirect_stdout(io.StringIO()) as buf:\n"
              "        runpy.run_path(path, run_name='__main__')\n"
              "    shapes.append(buf.getvalue().strip())\n"
              "print(json.dumps(shapes))\n")
    run = subprocess.run([sys.executable, "-c", runner, json.dumps([str(o) for o in outs])],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["torch.Size([1, 4, 8, 8])"] * len(outs)
    for out in outs:  # nothing but the file itself (no marker file, no cache)
        assert sorted(p.name for p in out.parent.iterdir()) == ["net.py"]
        assert sorted(p.name for p in out.parent.parent.iterdir()) == ["net.yaml", "run"]
    assert not list(tmp_path.rglob("pwned"))


def test_class_names_are_identifiers_for_any_spec_name():
    from espdsl.ir import class_name as _camel
    import keyword
    for name in ["espnet_c", "none", "true", "_1", "class_", "a__b", "x", "_"]:
        camel = _camel(name)
        assert camel.isidentifier() and not keyword.iskeyword(camel), (name, camel)
    assert _camel("espnet_c") == "EspnetC" and _camel("none") == "NetNone"
