"""Malformed specs: each gives one line `path:line:col: error: ...` with a hint, exit code 2,
no traceback, and nothing written."""
from __future__ import annotations

import re
import textwrap

import pytest
from click.testing import CliRunner

from espdsl.cli import main

HEAD = """\
model: net
params:
  C: 16
input: {channels: 3, size: [32, 32]}
nodes:
"""

# (id, nodes text, line of the error, token it points at, message regex, hint regex); the
# expected column is where the token stands in that line, found from the text itself.
CASES = [
    ("unknown-block", "  - {name: a, block: espp, N: 16}\n", 6, "espp",
     r"unknown block or model 'espp'", r"did you mean 'esp'\?"),
    ("unknown-param", "  - {name: a, block: esp, N: 16, KK: 3}\n", 6, "KK",
     r"unknown parameter 'KK' for block 'esp'", r"did you mean 'K'\?"),
    ("concat-spatial-mismatch",
     "  - {name: a, op: conv, out: C, kernel: 3, stride: 2}\n"
     "  - {name: b, op: conv, out: C, kernel: 3, from: input}\n"
     "  - {name: c, op: concat, from: [a, b]}\n", 8, "{",
     r"channel/shape mismatch at concat 'c': concat inputs differ in spatial size: 16x16, 32x32",
     r"same resolution"),
    ("add-channel-mismatch",
     "  - {name: a, op: conv, out: C}\n"
     "  - {name: b, op: conv, out: 2 * C, from: input}\n"
     "  - {name: s, op: add, from: [a, b]}\n", 8, "{",
     r"channel/shape mismatch at add 's': add inputs differ in shape: 16x32x32, 32x32x32",
     r"equal channels"),
    ("cycle",
     "  - {name: a, op: conv, out: C, from: b}\n"
     "  - {name: b, op: conv, out: C, from: a}\n", 7, "a}",
     r"cycle in the graph: (a -> b -> a|b -> a -> b)", r"DAG"),
    ("undefined-from",
     "  - {name: level1, op: conv, out: C}\n"
     "  - {name: b, op: conv, out: C, from: levle1}\n", 7, "levle1",
     r"undefined input 'levle1'", r"did you mean 'level1'\?"),
    ("groups-do-not-divide", "  - {name: a, op: conv, out: C, groups: 3}\n", 6, "3}",
     r"groups=3 must divide both in channels 3 and out channels 16", r"groups that fit: 1"),
    ("bad-expression", "  - {name: a, op: conv, out: 'C //'}\n", 6, "C //",
     r"cannot parse expression 'C //'", r"N // K"),
    ("unsafe-expression", "  - {name: a, op: conv, out: 'C + __import__(\"os\").getpid()'}\n", 6,
     "__import__", r"is not allowed in expression", r"allowed functions|expressions allow"),
    ("unknown-name-in-expression", "  - {name: a, op: conv, out: '2 * CC'}\n", 6, "CC'",
     r"unknown name 'CC' in expression '2 \* CC'", r"did you mean 'C'\?"),
    ("invalid-node-name", "  - {name: my-node, op: conv, out: C}\n", 6, "my-node",
     r"invalid node name 'my-node'", r"identifier"),
    ("reserved-node-name", "  - {name: input, op: relu}\n", 6, "input",
     r"invalid node name 'input'", r"identifier"),
    ("unknown-op", "  - {name: a, op: convv, out: C}\n", 6, "convv",
     r"unknown op 'convv'", r"did you mean 'conv'\?"),
    ("unknown-op-attribute", "  - {name: a, op: conv, out: C, kernal: 3}\n", 6, "kernal",
     r"unknown attribute 'kernal' for op 'conv'", r"did you mean 'kernel'\?"),
    ("duplicate-name", "  - {name: a, op: relu}\n  - {name: a, op: relu}\n", 7, "a,",
     r"node name 'a' is used twice", r"unique"),
    ("op-written-as-block", "  - {name: a, block: conv}\n", 6, "conv",
     r"'conv' is a primitive op, not a block", r"op: conv"),
    ("wrong-type", "  - {name: a, block: esp, N: 16, hff: 3}\n", 6, "hff",
     r"parameter 'hff' of block 'esp' must be bool, got int 3", None),
    ("concat-one-input", "  - {name: a, op: concat}\n", 6, "{",
     r"op 'concat' takes at least 2 input\(s\)", r"from: \[a, b\]"),
]


def run(args):
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_spec(case, tmp_path):
    name, nodes, line, token, message, hint = case
    spec = tmp_path / "net.yaml"
    text = HEAD + nodes
    spec.write_text(text)
    col = text.splitlines()[line - 1].index(token) + 1
    out = tmp_path / "out.onnx"
    result = run(["compile", str(spec), "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert re.match(rf"^{re.escape(str(spec))}:{line}:{col}: error: ", lines[0]), lines[0]
    assert re.search(message, lines[0]), lines[0]
    if hint:
        assert re.search(r"; hint: .*" + hint, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["net.yaml"]


def test_error_inside_a_block_names_the_block_file_and_the_instance(tmp_path):
    # a residual ESP with M != N: the add inside esp.yaml fails; the line points into esp.yaml
    # and names the instance in the user's file
    from espdsl.registry import data_dir
    spec = tmp_path / "net.yaml"
    spec.write_text(HEAD + "  - {name: a, block: esp, N: 10, residual: true}\n")
    result = run(["validate", str(spec)])
    assert result.exit_code == 2
    esp = data_dir("blocks") / "esp.yaml"
    lines = esp.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "name: sum" in t)
    col = lines[line - 1].index("{") + 1
    assert result.output.startswith(f"{esp}:{line}:{col}: error: channel/shape mismatch at add 'a.sum'")
    assert result.output.rstrip().endswith(f"(in 'a' (esp) at {spec}:6:5)")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("text, line, col, message", [
    ("model: net\nnodes:\n  - {name: a, op: relu\n", 4, 1, r"invalid YAML: expected ',' or '}'"),
    ("model: net\nnodez:\n  - {name: a, op: relu}\n", 2, 1, r"unknown key 'nodez'; hint: did you mean 'nodes'\?"),
    ("block: b\nmodel: net\nnodes: [{name: a, op: relu}]\n", 1, 1, r"both 'block' and 'model'"),
    ("model: net\nnodes:\n  - {name: a, op: relu, seq: [{op: relu}]}\n", 3, 5, r"exactly one of"),
    ("model: net\nnodes:\n  - {op: relu}\n", 3, 5, r"a node needs a 'name'"),
    ("model: net\nnodes: [{name: a, op: relu}]\ndoc: !!python/object/apply:os.system [ls]\n", 3, 6,
     r"tags are not allowed"),
    ("model: net\nnodes: [{name: a, op: relu}]\ndoc: !!python/name:os.system\n", 3, 6,
     r"tags are not allowed"),
])
def test_malformed_file(text, line, col, message, tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(text)
    result = run(["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert re.match(rf"^{re.escape(str(spec))}:{line}:{col}: error: ", result.output), result.output
    assert re.search(message, result.output), result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["compile", "espnet", "-p", "alpha4=3"], r"unknown parameter 'alpha4' for model 'espnet'; hint: did you mean 'alpha3'\?"),
    (["compile", "espnet", "-p", "alpha3=many"], r"parameter 'alpha3' of model 'espnet' must be int"),
    (["compile", "espnet", "-p", "skip=b2"], r"must be one of \['level1', 'b1'\], got 'b2'; hint: valid choices: b1, level1"),
    (["compile", "espnet", "-p", "module=mobilnet"], r"unknown block or model 'mobilnet'; hint: did you mean 'mobilenet'\?"),
    (["compile", "espnett"], r"unknown block or model 'espnett'; hint: did you mean 'espnet'\?"),
    (["compile", "nowhere/net.yaml"], r"no such file: nowhere/net.yaml"),
    (["compile", "espnet", "--input", "1x3x512"], r"input has 1 channels|input size"),
    (["compile", "espnet", "--input", "big"], r"bad input size 'big'"),
    (["compile", "espnet", "-p", "alpha3"], r"bad parameter 'alpha3'; hint: write -p NAME=VALUE"),
])
def test_bad_command_line(args, message):
    result = run(args)
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_debug_shows_the_traceback():
    result = CliRunner().invoke(main, ["--debug", "compile", "espnett"])
    assert result.exit_code != 0 and result.exception is not None
