"""Resource limits (espdsl.limits): each refused early, located, with the limit named in the hint;
raised with --limit, ESPDSL_LIMITS or limits.override; the docs table equals the defaults."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import espdsl
from espdsl import limits
from espdsl.cli import main
from espdsl.errors import EspdslError, LimitError

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def refused_at_once(*args):
    """Run a command that must be refused before its work starts: well under a second."""
    start = time.perf_counter()
    result = run(*args)
    assert time.perf_counter() - start < 1.0
    assert result.exit_code == 2
    return result


def alias_bomb(levels: int = 8, width: int = 10) -> str:
    """The billion laughs in YAML: each anchor a list of ``width`` aliases of the one before."""
    lines = ["model: bomb", "meta:", "  l0: &l0 [" + ", ".join(["1"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines + ["nodes:", "  - {name: a, op: relu}", ""])


def test_the_docs_table_is_the_defaults():
    assert limits.markdown_table() in (ROOT / "docs" / "limits.md").read_text()
    assert set(limits.LIMITS) == {f.name for f in limits.fields(limits.Limits)}


def test_override_and_environment(monkeypatch):
    assert limits.current().repeat == 10_000
    with limits.override(repeat="2_000", param_memory="1.5GiB") as lim:
        assert (lim.repeat, lim.param_memory) == (2000, 3 * 2 ** 29)
        assert limits.current() is lim
    assert limits.current().repeat == 10_000
    monkeypatch.setenv(limits.ENV, "repeat=7, ir_size=5k")
    assert (limits.current().repeat, limits.current().ir_size) == (7, 5000)
    monkeypatch.setenv(limits.ENV, "repat=7")
    with pytest.raises(EspdslError, match=r"ESPDSL_LIMITS: unknown limit 'repat'.*did you mean 'repeat'"):
        limits.current()


def test_alias_bomb_is_refused_at_the_alias_before_expansion(tmp_path):
    spec = tmp_path / "bomb.yaml"
    spec.write_text(alias_bomb())
    result = refused_at_once("validate", spec)
    # by hand: the root mapping, 'model', 'bomb', 'meta' and its mapping are 5 values; anchor
    # l0 is a list of 10 (11 values), l1 of 10 aliases of l0 (111), l2 1,111; each with its
    # key, 1,243 values come before l3's list, whose aliases of l2 add 1,111 each: the 8th
    # takes it to 10,131, past 10,000. Line 6 is l3; its 8th alias is at column 11 + 7 * 5 + 1.
    assert result.output.startswith(f"{spec}:6:47: error: the YAML document expands to more "
                                    "than 10,000 values"), result.output
    assert "hint: the yaml_values limit is 10,000; raise it with 'espdsl --limit yaml_values=" \
        in result.output
    # aliases are allowed: three levels expand to 5 + 12 + 112 + 1,112 values, and 'nodes' with
    # its list, mapping and two pairs adds 7: 1,248
    for folder, limit in (("a", 1247), ("b", 1248)):
        small = tmp_path / folder / "bomb.yaml"  # a file of its own: parsed specs are cached
        small.parent.mkdir()
        small.write_text(alias_bomb(levels=3, width=10))
        with limits.override(yaml_values=limit):
            if limit == 1247:
                with pytest.raises(LimitError, match="more than 1,247 values"):
                    espdsl.load(small)
            else:
                espdsl.load(small)


def test_alias_counting_is_exact():
    from espdsl.source import parse_yaml
    text = alias_bomb(levels=3, width=10)
    doc = parse_yaml(text, "x.yaml")  # the expanded document, counted independently below
    values = 0

    def count(v):
        nonlocal values
        values += 1
        if isinstance(v, dict):
            for k, x in v.items():
                values += 1  # the key is a value of the YAML document too
                count(x)
        elif isinstance(v, list):
            for x in v:
                count(x)

    count(doc.data)
    with limits.override(yaml_values=values):
        parse_yaml(text, "x.yaml")
    with limits.override(yaml_values=values - 1), pytest.raises(LimitError):
        parse_yaml(text, "x.yaml")


def test_deep_yaml_is_refused_at_its_bracket(tmp_path):
    spec = tmp_path / "deep.yaml"
    spec.write_text("model: deep\nnodes: [{name: a, op: relu}]\nmeta: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run("validate", spec)
    assert result.exit_code == 2
    # the root mapping is level 1, so the 64th bracket (column 7 + 63) is the 65th level
    assert result.output.startswith(f"{spec}:3:{7 + 63}: error: YAML nested more than 64 levels deep")


def test_repeat_bomb(tmp_path):
    spec = tmp_path / "rep.yaml"
    spec.write_text("model: rep\ninput: {channels: 3, size: [8, 8]}\n"
                    "nodes:\n  - {name: a, op: relu, repeat: '10 ** 9'}\n")
    result = refused_at_once("compile", spec)
    assert result.output.startswith(f"{spec}:4:34: error: repeat count 1,000,000,000 is more "
                                    "than the repeat limit; hint: the repeat limit is 10,000")
    assert run("--limit", "repeat=2000000000", "--limit", "ir_size=5", "validate",
               spec).output.startswith(f"{spec}:4:34: error: the network would hold about")


def test_ir_size_is_refused_after_the_first_copy(tmp_path):
    # 300 iterations of a block of 300 convolutions and an add, each op with its scope, plus
    # the block's scope: 603 entries a copy; with the input and the root scope, about
    # 2 + 300 * 603 = 180,902 in all. Refused once the first copy has shown its size.
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    (blocks / "wide.yaml").write_text(
        "block: wide\nparams: {M: {type: int}}\n"
        "nodes:\n  - {for: j in range(300), name: 'c{j}', op: conv, from: input}\n"
        "  - {name: cat, op: add, from: ['c{j} for j in range(2)']}\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("model: net\nblocks: [blocks]\ninput: {channels: 3, size: [4, 4]}\n"
                    "nodes:\n  - {for: k in range(300), name: 'w{k}', block: wide, from: input}\n")
    result = run("--limit", "ir_size=10000", "validate", spec)
    assert result.exit_code == 2
    assert result.output.startswith(
        f"{spec}:5:11: error: the network would hold about 180,902 ops and node instances (300 "
        "iterations of about 603 each), more than the ir_size limit; hint: the ir_size limit is "
        "10,000"), result.output


def test_block_including_itself(tmp_path):
    (tmp_path / "loop.yaml").write_text(
        "block: loop\nparams: {M: {type: int}}\nnodes:\n  - {name: inner, block: loop}\n")
    result = run("validate", "loop", "-p", "M=3", "--blocks", tmp_path)
    assert result.exit_code == 2
    assert "blocks nested more than 32 deep (loop -> loop -> loop -> ... -> loop -> loop -> " \
           "loop); does a block include itself?" in result.output
    assert "hint: the block_depth limit is 32" in result.output


def test_recursion_that_ends_is_allowed(tmp_path):
    (tmp_path / "halve.yaml").write_text(
        "block: halve\nparams: {M: {type: int}, depth: {type: int}}\nnodes:\n"
        "  - {name: pool, op: avgpool, kernel: 2}\n"
        "  - {name: inner, block: halve, depth: depth - 1, when: depth > 1}\n")
    ir = espdsl.load("halve", M=3, depth=5, input_size=(64, 64), blocks=[tmp_path])
    assert ir.output_shape == (1, 3, 2, 2)


def test_parameter_memory_before_building(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("model: big\ninput: {channels: 16, size: [8, 8]}\n"
                    "nodes:\n  - {name: a, op: conv, out: 100000000, kernel: 3}\n")
    out = tmp_path / "big.pt"
    result = refused_at_once("compile", spec, "-o", out)
    assert not out.exists()
    # 16 * 9 * 10^8 weights, fp32: computed by hand, not by the code under test
    assert result.output.startswith(
        f"{spec}:4:5: error: building 'big' needs 53.6 GiB of parameters (14,400,000,000 "
        "parameters), more than the param_memory limit; the largest is 'a' (conv, 53.6 GiB); "
        "hint: the param_memory limit is 2 GiB"), result.output
    with pytest.raises(LimitError, match="53.6 GiB of parameters"):
        espdsl.create_model(spec)
    # nothing to allocate, nothing refused: the IR, the summary, a meta-device build
    assert espdsl.load(spec).output_shape == (1, 100000000, 8, 8)
    assert run("compile", spec).exit_code == 0
    from espdsl.build import build
    assert sum(p.numel() for p in build(espdsl.load(spec), device="meta").parameters()) == 14_400_000_000


def test_activation_memory_before_a_forward(tmp_path):
    out = tmp_path / "net.onnx"
    result = run("compile", "esp", "-p", "M=16", "-p", "N=16", "--input", "1x16x20000x20000",
                 "-o", out)
    assert result.exit_code == 2
    # every tensor of the esp block at 20000x20000, fp32: more than 8 GiB, refused before tracing
    assert re.match(r"^\S+esp.yaml:\d+:\d+: error: tracing 'esp' on 1x16x20000x20000 "
                    r"needs [\d.]+ GiB of activations", result.output), result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert run("compile", "esp", "-p", "M=16", "-p", "N=16", "--input", "1x16x20000x20000"
               ).exit_code == 0  # no forward pass: nothing to refuse


def test_int_limit_on_parameters_attributes_and_sizes(tmp_path):
    result = run("compile", "espnet", "-p", "alpha3=1e100")
    assert result.output.startswith("-p alpha3=1e100: error: parameter 'alpha3' of model 'espnet' is 1e+100, "
                                    "larger than the int limit; hint: the int limit is 2,147,483,647")
    assert "larger than the int limit" in run("validate", "espnet", "--input",
                                              "1x3x3000000000x8").output
    spec = tmp_path / "net.yaml"
    spec.write_text("model: net\ninput: {channels: 3, size: [8, 8]}\n"
                    "nodes:\n  - {name: a, op: upsample, scale: 1.0e+300}\n")
    assert "larger than the int limit" in run("validate", spec).output


def test_expression_length_is_quoted_shortened(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text("model: long\ninput: {channels: 3, size: [8, 8]}\nnodes:\n"
                    "  - {name: a, op: conv, out: '" + "+".join(["Q"] * 2000) + "'}\n")
    result = run("validate", spec)
    line = result.output.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1
    assert f"{spec}:4:31: error: expression of 3,999 characters is longer than the expr_length " \
           "limit: 'Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+...+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q+Q' (3,999 characters)" \
           in line
    assert len(line) < 400 + len(str(spec))


def test_predict_refuses_a_large_image_from_its_header(tmp_path):
    import numpy as np
    from PIL import Image
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(image)
    out = tmp_path / "out"
    result = run("--limit", "image_pixels=1000", "predict", "espnet", "-p", "alpha3=1",
                 "--weights", "x.pth", image, "-o", out)
    assert result.exit_code == 2
    assert result.output.startswith(f"{image}: error: the image is 48x32, 1,536 pixels, more "
                                    "than the image_pixels limit"), result.output
    assert not out.exists()


def test_checkpoint_that_unpacks_beyond_the_limit(tmp_path):
    import zipfile
    ckpt = tmp_path / "bomb.pth"
    with zipfile.ZipFile(ckpt, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data/0", b"\0" * (4 << 20))  # 4 MiB of zeros, a few KB packed
    assert ckpt.stat().st_size < 100_000
    result = run("--limit", "param_memory=1MiB", "compile", "cbr", "-p", "M=3", "-p", "N=8",
                 "--weights", ckpt)
    assert result.exit_code == 2
    assert result.output.startswith(f"{ckpt}: error: the checkpoint holds 4 MiB, more than the "
                                    "param_memory limit"), result.output


def test_bad_limit_settings():
    assert run("--limit", "repeat=abc", "list").output.startswith(
        "error: --limit: bad value 'abc' for limit repeat")
    assert "did you mean 'repeat'" in run("--limit", "rep=3", "list").output
    assert "must be between 1 and" in run("--limit", "repeat=0", "list").output
    assert run("list", env={limits.ENV: "repeat=x"}).exit_code == 2


def test_node_names_never_shadow_a_module_attribute():
    """Every attribute of the modules espdsl builds (torch.nn.Module, torch.fx.GraphModule, the
    optimized build's PlannedModule) is refused as a node name, read from the objects here."""
    import torch.fx as fx
    from torch import nn
    from espdsl.ir import name_problem
    planned = espdsl.create_model("cbr", M=3, N=4, optimize=True)
    objects = [nn.Module(), fx.GraphModule(nn.Module(), fx.Graph()), planned]
    names = {n for obj in objects for n in set(dir(obj)) | set(vars(obj))}
    children = {n for obj in objects for n, _ in obj.named_children()}
    accepted = sorted(n for n in names - children if name_problem(n) is None)
    assert accepted == []
    assert name_problem("level1") is None and name_problem("b1") is None
