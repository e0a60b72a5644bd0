"""The bad-input corpus: whatever a spec file, a command line, a checkpoint or an image holds,
espdsl answers with exit code 2 and one line, ``path:line:col: error: ...`` where a place
exists, no traceback, and writes nothing. The bombs (the cases marked ``timed``) are refused in
under a second, before the work they ask for grows. (Earlier cases live in test_errors.py.)

Each case: id, the files it writes (name -> text or bytes; ``{img}`` makes a small PNG), the
command line (``{d}`` is the case's folder), where the error points (``file:line:token``, the
column found from the token in that line, or ``file:`` for a file without a line, or None), a
message regex, and whether it is timed.
"""
from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from espdsl.cli import main
from espdsl.registry import data_dir

ZOO = data_dir("zoo")

HEAD = "model: net\nparams:\n  C: 16\n  s: {type: str, default: x}\ninput: {channels: 3, size: [32, 32]}\nnodes:\n"


def net(*nodes: str) -> str:
    return HEAD + "".join(f"  - {n}\n" for n in nodes)


def bomb(levels: int = 8, width: int = 10) -> str:
    lines = ["model: net", "meta:", "  l0: &l0 [" + ", ".join(["1"] * width) + "]"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines + ["nodes: [{name: a, op: relu}]", ""])


def checkpoint_zip(entries: dict[str, bytes], compress: bool = False) -> bytes:
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def espdsl_checkpoint(**change: object) -> bytes:
    """A real ``torch.save`` file in espdsl's checkpoint format (a one-op network stored with
    its spec text), with ``change`` applied; a value of ``DROP`` removes the key."""
    import io

    import torch
    raw: dict = {"format": "espdsl-checkpoint", "version": 1, "name": "net", "kind": "model",
                 "specs": {"net": "model: net\ninput: {channels: 3, size: [16, 16]}\n"
                                  "nodes: [{name: a, op: relu}]\n"},
                 "params": {}, "input_size": [1, 3, 16, 16], "state_dict": {}}
    raw.update(change)
    raw = {k: v for k, v in raw.items() if v is not DROP}
    buf = io.BytesIO()
    torch.save(raw, buf)
    return buf.getvalue()


DROP = object()
EVIL = "block: evil\nparams: {M: 3}\nnodes: [{name: a, op: relu}]\n"
PREDICT_CKPT = ["predict", "net.pt", "a.png", "-o", "out"]


def decl(line: str) -> str:
    return f"model: net\nparams:\n  {line}\ninput: {{channels: 3, size: [8, 8]}}\nnodes: [{{name: a, op: relu}}]\n"


def section(text: str) -> str:
    return "model: net\ninput: {channels: 3, size: [8, 8]}\nnodes: [{name: a, op: relu}]\n" + text


WIDE = "block: wide\nparams: {M: {type: int}}\nnodes:\n  - {for: j in range(500), name: 'c{j}', op: relu, from: input}\n"
SELF = "block: loop\nparams: {M: {type: int}}\nnodes:\n  - {name: inner, block: loop}\n"

CASES = [
    # -- types ------------------------------------------------------------------------------
    ("type-bool-attribute", {"net.yaml": net("{name: a, op: conv, out: C, bias: 3}")},
     ["compile", "net.yaml"], "net.yaml:7:3}", r"attribute 'bias' of op 'conv' must be bool, got int 3", False),
    ("type-param-from-command-line", {"net.yaml": net("{name: a, op: relu}")},
     ["compile", "net.yaml", "-p", "C=abc"], "-p C=abc", r"parameter 'C' of model 'net' must be int, got str 'abc'", False),
    ("type-float-not-finite", {"net.yaml": net("{name: a, op: batchnorm, eps: 'float(\"inf\")'}")},
     ["validate", "net.yaml"], "net.yaml:7:float", r"result inf is not a finite number", False),
    ("type-yaml-inf", {"net.yaml": net("{name: a, op: conv, out: .inf}")},
     ["validate", "net.yaml"], "net.yaml:7:.inf", r"inf is not a finite number", False),
    ("type-yaml-date", {"net.yaml": net("{name: a, op: relu, doc: 2001-12-14}")},
     ["validate", "net.yaml"], "net.yaml:7:2001-", r"unsupported YAML value of type date", False),
    ("type-key-not-text", {"net.yaml": HEAD.replace("  C: 16", "  1: 16") + "  - {name: a, op: relu}\n"},
     ["validate", "net.yaml"], "net.yaml:3:1:", r"mapping key '1' is a int, not text", False),
    ("type-repeat-float", {"net.yaml": net("{name: a, op: relu, repeat: '2.5'}")},
     ["validate", "net.yaml"], "net.yaml:7:2.5", r"repeat must be a whole number >= 0, got 2.5", False),
    # -- names ------------------------------------------------------------------------------
    ("name-python-keyword", {"net.yaml": net("{name: class, op: relu}")},
     ["compile", "net.yaml", "-o", "net.py"], "net.yaml:7:class", r"invalid node name 'class': a Python keyword", False),
    ("name-module-attribute", {"net.yaml": net("{name: parameters, op: relu}")},
     ["compile", "net.yaml"], "net.yaml:7:parameters", r"'parameters': an attribute of torch.nn.Module", False),
    ("name-underscore", {"net.yaml": net("{name: __dict__, op: relu}")},
     ["compile", "net.yaml"], "net.yaml:7:__dict__", r"'__dict__': starts with '_' \(torch's internals\)", False),
    ("name-too-long", {"net.yaml": net("{name: " + "n" * 300 + ", op: relu}")},
     ["validate", "net.yaml"], "net.yaml:7:nnn", r"invalid node name 'n{28}\.\.\.n{28}' \(300 characters\): longer than the name_length limit", False),
    ("name-trailing-newline", {"net.yaml": 'model: "net\\n"\nnodes: [{name: a, op: relu}]\n'},
     ["validate", "net.yaml"], "net.yaml:1:net", r"invalid model name 'net '", False),
    ("name-param-keyword", {"net.yaml": HEAD.replace("  C: 16", "  lambda: 16") + "  - {name: a, op: relu}\n"},
     ["validate", "net.yaml"], "net.yaml:3:lambda", r"invalid parameter name 'lambda': a Python keyword", False),
    # -- references -------------------------------------------------------------------------
    ("ref-inside-block", {"net.yaml": net("{name: e, block: cbr, N: 8}", "{name: b, op: relu, from: e.nope}")},
     ["validate", "net.yaml"], "net.yaml:8:e.nope", r"undefined input 'e.nope'", False),
    ("ref-output", {"net.yaml": net("{name: a, op: relu}") + "output: nowhere\n"},
     ["validate", "net.yaml"], "net.yaml:8:nowhere", r"undefined input 'nowhere'", False),
    ("ref-op-as-module-param", {"net.yaml": net("{name: a, block: '{s}'}")},
     ["validate", "net.yaml", "-p", "s=conv"], "net.yaml:7:{s}", r"'conv' is a primitive op, not a block", False),
    ("ref-for-needs-list", {"net.yaml": net("{for: k in 5, name: 'a{k}', op: relu}")},
     ["validate", "net.yaml"], "net.yaml:7:k in", r"'for' needs a list or range, got 5", False),
    # -- channels ---------------------------------------------------------------------------
    ("channels-input-option", {"net.yaml": net("{name: a, op: relu}")},
     ["validate", "net.yaml", "--input", "1x4x32x32"], "--input 1x4x32x32", r"input has 4 channels \(read as N x C x H x W\), model 'net' takes 3", False),
    ("channels-block-M", {"net.yaml": net("{name: a, block: cbr, M: 5, N: 8}")},
     ["validate", "net.yaml"], "net.yaml:7:M", r"channel mismatch: block 'cbr' is given M=5 but its input has 3 channels", False),
    ("channels-negative-out", {"net.yaml": net("{name: a, op: conv, out: -5}")},
     ["compile", "net.yaml"], "net.yaml:7:-5", r"attribute 'out' of op 'conv' must be at least 1, got -5", False),
    # -- shapes -----------------------------------------------------------------------------
    ("shape-empty-pool", {"net.yaml": net("{name: a, op: avgpool, kernel: 64, stride: 1}")},
     ["validate", "net.yaml"], "net.yaml:7:{", r"input 32x32 is too small for a 64 window", False),
    ("shape-upsample-to-nothing", {"net.yaml": net("{name: a, op: upsample, scale: 0.01}")},
     ["validate", "net.yaml"], "net.yaml:7:{", r"op 'upsample' at 'a' would output an empty tensor 3x0x0", False),
    ("shape-zero-stride", {"net.yaml": net("{name: a, op: maxpool, kernel: 2, stride: 0}")},
     ["validate", "net.yaml"], "net.yaml:7:0}", r"attribute 'stride' of op 'maxpool' must be at least 1, got 0", False),
    ("shape-momentum", {"net.yaml": net("{name: a, op: batchnorm, momentum: 2}")},
     ["validate", "net.yaml"], "net.yaml:7:2}", r"attribute 'momentum' of op 'batchnorm' must be at most 1, got 2.0", False),
    ("shape-upsample-huge", {"net.yaml": net("{name: a, op: upsample, scale: 1.0e+300}")},
     ["validate", "net.yaml"], "net.yaml:7:{", r"the output 3x3200\S+ \(607 characters\) of 'a' is about 2\*\*1001, larger than the int limit", False),
    # -- expressions ------------------------------------------------------------------------
    ("expr-string-format", {"net.yaml": net("{name: a, op: conv, out: \"'%999999999d' % 1\"}")},
     ["validate", "net.yaml"], "net.yaml:7:'%", r"'%' does not apply to str and int", False),
    ("expr-list-repeat", {"net.yaml": net("{name: a, op: conv, out: 'len([0] * 10 ** 12)'}")},
     ["validate", "net.yaml"], "net.yaml:7:[0]", r"a list of 1 items repeated 1,000,000,000,000 times .* longer than the range limit", True),
    ("expr-round-digits", {"net.yaml": net("{name: a, op: conv, out: 'round(5, -10 ** 9)'}")},
     ["validate", "net.yaml"], "net.yaml:7:round", r"round\(\) failed \(round\(\) takes at most 64 digits\)", True),
    ("expr-deep-nesting", {"net.yaml": net("{name: a, op: conv, out: '" + "-" * 150 + "1'}")},
     ["validate", "net.yaml"], "net.yaml:7:---", r"is nested more than 100 levels deep", False),
    ("expr-complex", {"net.yaml": net("{name: a, op: conv, out: '(-8) ** 0.5'}")},
     ["validate", "net.yaml"], "net.yaml:7:(-8)", r"a value of type complex is not allowed", False),
    ("expr-attribute", {"net.yaml": net("{name: a, op: conv, out: '(1).__class__'}")},
     ["validate", "net.yaml"], "net.yaml:7:(1)", r"'Attribute' is not allowed", False),
    ("expr-range-no-args", {"net.yaml": net("{for: k in range(), name: 'a{k}', op: relu}")},
     ["validate", "net.yaml"], "net.yaml:7:range", r"range\(\) takes 1 to 3 integers", False),
    # -- limits -----------------------------------------------------------------------------
    ("limit-alias-bomb", {"net.yaml": bomb()}, ["compile", "net.yaml", "-o", "net.py"],
     # by hand (see test_limits): the 8th alias on l3's line, column 11 + 7 * 5 + 1
     "net.yaml:6:47", r"expands to more than 10,000 values.*hint: the yaml_values limit", True),
    ("limit-repeat-bomb", {"net.yaml": net("{name: a, op: relu, repeat: '10 ** 9'}")},
     ["compile", "net.yaml", "-o", "net.onnx"], "net.yaml:7:10 **", r"repeat count 1,000,000,000 is more than the repeat limit; hint: the repeat limit is 10,000", True),
    ("limit-for-bomb", {"net.yaml": net("{for: 'k in range(10 ** 9)', name: 'a{k}', op: relu}")},
     ["validate", "net.yaml"], "net.yaml:7:range", r"a range\(\) of 4,097 items .*hint: the range limit is 4,096", True),
    ("limit-ir-size", {"blocks/wide.yaml": WIDE, "net.yaml": net("{for: k in range(4000), name: 'w{k}', block: wide, from: input}") + "blocks: [blocks]\n"},
     ["validate", "net.yaml"], "net.yaml:7:k in", r"would hold about 4,004,\d+ ops and node instances \(4,000 iterations of about 1,001 each\).*hint: the ir_size limit is 1,000,000", True),
    ("limit-self-include", {"blocks/loop.yaml": SELF},
     ["validate", "loop", "-p", "M=3", "--blocks", "blocks"], "blocks/loop.yaml:4:{", r"blocks nested more than 32 deep.*hint: the block_depth limit is 32", True),
    ("limit-param-memory", {"net.yaml": net("{name: a, op: conv, out: 100000000, kernel: 3}")},
     # 3 x 9 x 10^8 = 2.7 x 10^9 weights, 4 bytes each: 10.06 GiB
     ["compile", "net.yaml", "-o", "net.pt"], "net.yaml:7:{", r"building 'net' needs 10.1 GiB of parameters \(2,700,000,000 parameters\).*hint: the param_memory limit is 2 GiB", True),
    ("limit-activation-memory", {"net.yaml": net("{name: a, op: conv, out: 64, kernel: 3}")},
     ["compile", "net.yaml", "--input", "1x3x30000x30000", "-o", "net.onnx"], "net.yaml:7:{", r"tracing 'net' on 1x3x30000x30000 needs 2\d\d.\d GiB of activations.*hint: the activation_memory limit is 8 GiB", True),
    ("limit-int-from-command-line", {}, ["compile", "espnet", "-p", "alpha3=1e100"], "-p alpha3=1e100",
     r"parameter 'alpha3' of model 'espnet' is 1e\+100, larger than the int limit", True),
    ("limit-int-input-size", {}, ["validate", "espnet", "--input", "1x3x3000000000x8"], "--input 1x3x3000000000x8",
     r"the input size is 3,000,000,000, larger than the int limit", False),
    ("limit-expression-length", {"net.yaml": net("{name: a, op: conv, out: '" + "+".join(["C"] * 2000) + "'}")},
     ["validate", "net.yaml"], "net.yaml:7:C+C", r"expression of 3,999 characters is longer than the expr_length limit: 'C\+C\+C.*\.\.\..*' \(3,999 characters\)", False),
    ("limit-deep-yaml", {"net.yaml": "model: net\nnodes: [{name: a, op: relu}]\nmeta: " + "[" * 3000 + "]" * 3000 + "\n"},
     # the root mapping is level 1: the 64th bracket (column 7 + 63) is the 65th level
     ["validate", "net.yaml"], "net.yaml:3:70", r"YAML nested more than 64 levels deep", True),
    ("limit-bad-setting", {}, ["--limit", "memory=1GiB", "list"], None, r"--limit: unknown limit 'memory'; hint: did you mean", False),
    # -- files ------------------------------------------------------------------------------
    ("file-is-a-folder", {"net.yaml/x": "x"}, ["validate", "net.yaml"], "net.yaml:", r"a folder, not a spec file", False),
    ("file-not-utf8", {"net.yaml": b"model: net\nnodes: [{name: a, op: relu, doc: \xff}]\n"},
     ["validate", "net.yaml"], "net.yaml:2:\ufffd", r"the file is not UTF-8 text \(byte 0xff\)", False),
    ("file-too-large", {"net.yaml": net("{name: a, op: relu}") + "# " + "x" * 3000 + "\n"},
     ["--limit", "file_bytes=2KiB", "validate", "net.yaml"], "net.yaml:", r"the file is larger than 2 KiB", False),
    ("file-empty", {"net.yaml": ""}, ["validate", "net.yaml"], "net.yaml:1:", r"a spec is a YAML mapping", False),
    ("file-name-mismatch", {"other.yaml": net("{name: a, op: relu}")}, ["validate", "other.yaml"],
     "other.yaml:1:net", r"model 'net' is defined in a file named 'other.yaml'", False),
    ("file-invalid-yaml", {"net.yaml": "model: net\nmeta: [&a 1, &a 2, *a]\nnodes: [{name: a, op: relu}]\nparams: {C: x y: z}\n"},
     ["validate", "net.yaml"], "net.yaml:4:", r"invalid YAML", False),
    ("file-name-too-long", {}, ["validate", "x" * 5000], None,
     r"unknown block or model 'x{28}\.\.\.x{28}' \(5,000 characters\)", False),
    ("file-block-folder-nul", {"net.yaml": net("{name: a, op: relu}") + 'blocks: ["a\\0b"]\n'},
     ["validate", "net.yaml"], "net.yaml:8:[", r"no such block folder: '\S*a\\x00b'", False),
    ("file-bad-option", {}, ["compile", "espnet", "--bogus"], None, r"No such option '--bogus'.*hint: see 'espdsl compile --help'", False),
    # -- checkpoints ------------------------------------------------------------------------
    ("ckpt-text-file", {"w.pth": "not a checkpoint"}, ["compile", "cbr", "-p", "M=3", "-p", "N=8", "--weights", "w.pth", "-o", "net.pt"],
     "w.pth:", r"not a PyTorch checkpoint \(neither a zip archive nor a pickle\)", False),
    ("ckpt-zip-bomb", {"w.pth": checkpoint_zip({"w/data/0": b"\0" * (3 << 20)}, compress=True)},
     ["--limit", "param_memory=1MiB", "compile", "cbr", "-p", "M=3", "-p", "N=8", "--weights", "w.pth"],
     "w.pth:", r"the checkpoint holds 3 MiB, more than the param_memory limit", True),
    ("ckpt-corrupt-zip", {"w.pth": b"PK\x03\x04" + b"\0" * 60},
     ["compile", "cbr", "-p", "M=3", "-p", "N=8", "--weights", "w.pth"], "w.pth:", r"corrupt checkpoint", False),
    ("ckpt-name-dotdot", {"net.pt": espdsl_checkpoint(specs={"net": "model: net", "../x": EVIL}), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"stored spec name '\.\./x' is not a name; hint: names are identifiers", True),
    ("ckpt-name-absolute", {"net.pt": espdsl_checkpoint(specs={"net": "model: net", "/tmp/x": EVIL}), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"stored spec name '/tmp/x' is not a name", True),
    ("ckpt-name-nul", {"net.pt": espdsl_checkpoint(name="n\0et"), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"stored network name 'n\\x00et' is not a name", True),
    ("ckpt-name-long", {"net.pt": espdsl_checkpoint(specs={"net": "model: net", "x" * 5000: EVIL}), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"stored spec name 'x+\.\.\.x+' \(5,000 characters\) is longer than the name_length limit", True),
    ("ckpt-missing-key", {"net.pt": espdsl_checkpoint(specs=DROP), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"the espdsl checkpoint has no 'specs'", True),
    ("ckpt-unknown-key", {"net.pt": espdsl_checkpoint(param={}), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"unknown key 'param' in the espdsl checkpoint; hint: did you mean 'params'\?", True),
    ("ckpt-wrong-type", {"net.pt": espdsl_checkpoint(input_size="16x16"), "a.png": "{img}"},
     PREDICT_CKPT, "net.pt:", r"'input_size' is '16x16', not a list of 2 to 4 whole numbers", True),
    ("ckpt-stored-spec-error", {"net.pt": espdsl_checkpoint(specs={"net": "model: net\nnodes: [{name: a, op: reluu}]\n"}), "a.png": "{img}"},
     # a stored spec's text is located as net.pt:spec/NAME (by hand: 'reluu' at column 23)
     PREDICT_CKPT, "=net.pt:spec/net:2:23: error: ", r"unknown op 'reluu'", True),
    ("ckpt-path-too-long", {"a.png": "{img}"}, ["predict", "x" * 300 + ".pt", "a.png", "-o", "out"],
     "=" + "x" * 300 + ".pt: error: ", r"cannot read the checkpoint \(File name too long\)", True),
    ("ckpt-weights-not-regular", {"a.png": "{img}"}, ["predict", "espnet", "--weights", "/dev/null", "a.png", "-o", "out"],
     "/dev/null:", r"is not a regular file", True),
    ("image-path-too-long", {}, ["predict", "espnet", "--weights", "w.pth", "y" * 300 + ".png", "-o", "out"], None,
     r"no such image file: y{28}\.\.\.y{24}\.png \(304 characters\)", True),
    # -- recursive YAML ----------------------------------------------------------------------
    ("yaml-recursive-mapping", {"net.yaml": "model: net\nmeta: &a {x: *a}\nnodes: [{name: a, op: relu}]\n"},
     ["validate", "net.yaml"], "net.yaml:2:*a", r"YAML alias '\*a' refers to the node that holds it", True),
    ("yaml-recursive-list", {"net.yaml": "model: net\nmeta: {l: &b [1, [2, *b]]}\nnodes: [{name: a, op: relu}]\n"},
     ["compile", "net.yaml", "-o", "net.py"], "net.yaml:2:*b", r"YAML alias '\*b' refers to the node that holds it", True),
    # -- parameter declarations --------------------------------------------------------------
    ("decl-str-min", {"net.yaml": decl("s: {type: str, default: x, min: 3}")},
     ["validate", "net.yaml"], "net.yaml:3:3}", r"parameter 's' is a str: 'min' applies to int and float parameters", True),
    ("decl-min-above-max", {"net.yaml": decl("n: {type: int, min: 8, max: 2}")},
     ["validate", "net.yaml"], "net.yaml:3:8,", r"parameter 'n' has min 8 greater than max 2", True),
    ("decl-default-out-of-bounds", {"net.yaml": decl("n: {type: int, default: 50, max: 10}")},
     ["validate", "net.yaml"], "net.yaml:3:50,", r"parameter 'n': default 50 is above its max 10", True),
    ("decl-default-not-a-choice", {"net.yaml": decl("n: {type: int, default: 3, choices: [1, 2]}")},
     ["validate", "net.yaml"], "net.yaml:3:3,", r"parameter 'n': default 3 is not one of its choices \[1, 2\]", True),
    ("decl-choice-type", {"net.yaml": decl("n: {type: float, choices: [0.5, half]}")},
     ["validate", "net.yaml"], "net.yaml:3:half", r"parameter 'n' is a float, but choice 'half' is a str", True),
    ("decl-default-type", {"net.yaml": decl("s: {type: str, default: 3}")},
     ["validate", "net.yaml"], "net.yaml:3:3}", r"parameter 's' is a str, but its default 3 is an int", True),
    ("decl-unset-untyped", {"net.yaml": decl("u: {default: null}")},
     ["validate", "net.yaml"], "net.yaml:3:u", r"parameter 'u' is unset \(default: null\) and has no type", True),
    # -- unknown keys in sections ------------------------------------------------------------
    ("section-predict", {"net.yaml": section("predict: {channels: BGR, clases: []}\n")},
     ["validate", "net.yaml"], "net.yaml:4:clases", r"unknown key 'clases'; hint: did you mean 'classes'\?", True),
    ("section-predict-step", {"net.yaml": section("predict:\n  steps:\n    - resize: {size: [8, 8], mod: nearest}\n")},
     ["validate", "net.yaml"], "net.yaml:6:mod", r"unknown key 'mod'; hint: did you mean 'mode'\?", True),
    ("section-predict-class", {"net.yaml": section("predict:\n  classes: [{name: road, colour: [1, 2, 3]}]\n")},
     ["validate", "net.yaml"], "net.yaml:5:colour", r"unknown key 'colour'; hint: did you mean 'color'\?", True),
    ("section-weights-keymap", {"net.yaml": section("weights:\n  tv: {keys: [], doc: x, rules: []}\n")},
     ["validate", "net.yaml"], "net.yaml:5:rules", r"unknown key 'rules'", True),
    ("section-param-declaration", {"net.yaml": decl("n: {type: int, defualt: 3}")},
     ["validate", "net.yaml"], "net.yaml:3:defualt", r"unknown key 'defualt'; hint: did you mean 'default'\?", True),
    ("section-input", {"net.yaml": "model: net\ninput: {channels: 3, sise: [8, 8]}\nnodes: [{name: a, op: relu}]\n"},
     ["validate", "net.yaml"], "net.yaml:2:sise", r"unknown key 'sise'; hint: did you mean 'size'\?", True),
    # -- sizes and counts on the command line ------------------------------------------------
    ("size-input-superscript", {}, ["validate", "espnet", "--input", "1x3x²56x256"], None,
     r"bad input size '1x3x²56x256'", True),
    ("size-input-arabic-digits", {}, ["validate", "espnet", "--input", "1x3x٢٥٦x٢٥٦"], None,
     r"bad input size '1x3x٢٥٦x٢٥٦'", True),
    ("size-param-arabic-digit", {}, ["validate", "espnet", "-p", "alpha3=٣"], "-p alpha3=٣",
     r"parameter 'alpha3' of model 'espnet' must be int, got str '٣'", True),
    ("size-runs", {}, ["bench", "cbr", "-p", "M=3", "-p", "N=8", "--runs", "٣"], None,
     r"Invalid value for '--runs': '٣' is not a whole number in ASCII digits", True),
    ("size-depth", {}, ["analyze", "espnet", "--depth", "²"], None,
     r"Invalid value for '--depth': '²' is not a whole number in ASCII digits", True),
    ("size-zoo-warmup", {}, ["zoo", "espnet_ablation", "--bench", "--warmup", "١"], None,
     r"Invalid value for '--warmup': '١' is not a whole number in ASCII digits", True),
    ("size-explore-trials", {}, ["explore", "espnet_c_levels", "--trials", "١٠"], None,
     r"Invalid value for '--trials': '١٠' is not a whole number in ASCII digits", True),
    ("size-precision-runs", {}, ["precision", "cbr", "x.png", "--runs", "³"], None,
     r"Invalid value for '--runs': '³' is not a whole number in ASCII digits", True),
    ("size-compile-opset", {}, ["compile", "espnet", "--opset", "¹⁷"], None,
     r"Invalid value for '--opset': '¹⁷' is not a whole number in ASCII digits", True),
    ("size-footprint-at", {}, ["footprint", "esp", "-p", "M=8", "-p", "N=8", "--at", "²,3",
                               "-o", "fp.png"], None, r"bad pixel '--at ²,3'", True),
    ("size-study-input", {"s.yaml": "study: s\nbase: espnet_c\ninput: 1x3x6²x128\nvariants: [{name: a, params: {alpha3: 1}}]\n"},
     ["zoo", "s.yaml"], "s.yaml:3:1x3", r"bad input size '1x3x6²x128'", True),
    # -- when --------------------------------------------------------------------------------
    ("when-number", {"net.yaml": net("{name: a, op: relu, when: 'C'}")},
     ["validate", "net.yaml"], "net.yaml:7:C'", r"'when' must be true or false, got int 16", True),
    ("when-text", {"net.yaml": net("{name: a, op: relu, when: \"'no'\"}")},
     ["validate", "net.yaml"], "net.yaml:7:'no'", r"'when' must be true or false, got str 'no'", True),
    ("when-literal-number", {"net.yaml": net("{name: a, op: relu, when: 3}")},
     ["validate", "net.yaml"], "net.yaml:7:3}", r"at nodes/0/when: 3 is not of type 'string', 'boolean'", True),
    # -- images -----------------------------------------------------------------------------
    ("image-not-an-image", {"a.png": "text"}, ["predict", "espnet", "--weights", "w.pth", "a.png", "-o", "out"],
     None, r"cannot read a.png as an image", False),
    ("image-too-many-pixels", {"a.png": "{img}"},
     ["--limit", "image_pixels=100", "predict", "espnet", "--weights", "w.pth", "a.png", "-o", "out"],
     "a.png:", r"the image is 16x16, 256 pixels, more than the image_pixels limit", True),
    ("image-missing", {}, ["predict", "espnet", "--weights", "w.pth", "nope.png", "-o", "out"], None,
     r"no such image file: nope.png", False),
    # -- output paths -----------------------------------------------------------------------
    ("out-folder-is-a-file", {"no": "a file"}, ["compile", "cbr", "-p", "M=3", "-p", "N=8", "-o", "no/such/net.py"], None,
     r"cannot write no/such/net.py: cannot create folder no/such: Not a directory", False),
    ("out-unknown-type", {}, ["compile", "cbr", "-p", "M=3", "-p", "N=8", "-o", "net.txt"], None,
     r"unknown output type '.txt'", False),
    ("out-is-a-folder", {"net.py/x": "x"}, ["compile", "cbr", "-p", "M=3", "-p", "N=8", "-o", "net.py"], None,
     r"Invalid value for '-o' / '--output': File 'net.py' is a directory", False),
    ("out-render-type", {}, ["render", "esp", "-p", "M=8", "-p", "N=8", "-o", "esp.jpeg"], None,
     r"unknown output type '.jpeg'", False),
    ("out-predict-dir-is-file", {"out": "a file", "a.png": "{img}"},
     ["predict", "espnet", "--weights", "w.pth", "a.png", "-o", "out"], None,
     r"Invalid value for '-o' / '--output': Directory 'out' is a file; hint: see 'espdsl predict --help'", False),
]


def write_files(folder: Path, files: dict) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "{img}":
            import numpy as np
            from PIL import Image
            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*")}


def expected_prefix(where: str, folder: Path) -> str:
    """``file:line:token`` -> ``file:line:col`` with the column found from the file's text
    (``=PREFIX``: the prefix as written)."""
    if where.startswith("="):
        return where[1:]
    file, _, rest = where.partition(":")
    if not rest:
        return f"{file}: error: "
    line, _, token = rest.partition(":")
    if token == "":
        return f"{file}:{line}:"
    if token.isdigit():  # a column worked out by hand
        return f"{file}:{line}:{token}: error: "
    text = (folder / file).read_bytes().decode("utf-8", "replace").splitlines()[int(line) - 1]
    return f"{file}:{line}:{text.index(token) + 1}: error: "


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    """Each case runs in ``tmp_path/work`` with ``tmp_path/tmp`` as the temporary folder; nothing
    may change anywhere under ``tmp_path`` (the working folder's parent)."""
    name, files, args, where, message, timed = case
    import tempfile
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    write_files(work, files)
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    start = time.perf_counter()
    result = CliRunner().invoke(main, args, prog_name="espdsl")
    elapsed = time.perf_counter() - start
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    if where is None:
        assert line.startswith("error: "), line
    else:
        assert line.startswith(expected_prefix(where, work)), (line, expected_prefix(where, work))
    assert re.search(message, line), line
    assert snapshot(tmp_path) == before, "a refused command wrote something"
    if timed:
        assert elapsed < 1.0, f"{name}: refused in {elapsed:.2f} s"


def test_the_corpus_covers_every_kind():
    kinds = {c[0].split("-")[0] for c in CASES}
    assert kinds == {"type", "name", "ref", "channels", "shape", "expr", "limit", "file", "ckpt",
                     "image", "out", "yaml", "decl", "section", "size", "when"}
    assert len(CASES) >= 40
