"""What a newcomer reads: totals that explain themselves, errors aimed at the command line."""
from __future__ import annotations

import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="espdsl")


def test_optimized_build_reports_trained_and_folded_parameters():
    """The two counts from torch itself: the parameters of the default and the optimized build."""
    plain = espdsl.create_model("espnet", alpha3=3)
    fast = espdsl.create_model("espnet", alpha3=3, optimize=True)
    trained = sum(p.numel() for p in plain.parameters())
    folded = sum(p.numel() for p in fast.parameters())
    result = run("compile", "espnet", "-p", "alpha3=3", "--optimize")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert trained == 202_649
    assert f"parameters: {trained:,} as trained" in text
    assert f"; {folded:,} after folding batch norms" in text


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_errors_from_the_command_line_point_at_it():
    assert one_error(run("compile", "espnet_c", "-p", "module=mobilenett")) == (
        "-p module=mobilenett: error: unknown block or model 'mobilenett'; "
        "hint: did you mean 'mobilenet'?")
    assert one_error(run("compile", "esp", "-p", "M=8", "-p", "N=4")) == (
        "-p N=4: error: parameter 'd' of block 'esp' must be >= 1, got 0; "
        "hint: d = N // K must be >= 1, so N >= K (here N=4, K=5)")
    assert one_error(run("compile", "espnet", "-p", "K=1")).startswith(
        "-p K=1: error: parameter 'K' of model 'espnet' must be >= 2, got 1")
    assert one_error(run("validate", "esp", "-p", "N=8")).endswith(
        "hint: pass -p M=... (input channels (inferred from the input))")


def test_sizes_say_how_they_were_read():
    assert one_error(run("compile", "espnet", "--input", "1x3x256")) == (
        "--input 1x3x256: error: input has 1 channels (read as C x H x W), model 'espnet' "
        "takes 3; hint: write N x C x H x W or H x W, e.g. 1x3x3x256")


def test_python_errors_keep_the_keyword_form():
    import pytest
    from espdsl.errors import ResolveError
    with pytest.raises(ResolveError, match=r"hint: pass M=\.\.\. "):
        espdsl.load("esp", N=8)


def test_a_spec_without_input_says_what_it_assumed(tmp_path):
    spec = tmp_path / "noin.yaml"
    spec.write_text("model: noin\nnodes:\n  - {name: c, block: cbr, N: 8}\n")
    result = run("compile", str(spec))
    assert result.exit_code == 0
    assert "note: the spec has no input: section; assumed 3 channels at 56x56" in \
        " ".join(result.output.split())
    result = run("compile", str(spec), "--input", "1x3x32x32")
    assert "assumed" not in result.output


def test_onnx_has_dynamic_batch_and_size_and_an_opset(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort

    from espdsl.export import export
    result = run("compile", "espnet_c", "-p", "alpha3=2", "--input", "1x3x64x128", "--opset", "17",
                 "-o", str(tmp_path / "cli.onnx"))
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(tmp_path / "cli.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # exported at 1x3x64x128, run at another batch and size, against the torch module
    ir = espdsl.load("espnet_c", alpha3=2, input_size=(1, 3, 64, 128))
    model = espdsl.build_ir(ir).eval()
    export(model, ir, tmp_path / "net.onnx")
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 96, 160)).astype(np.float32)
    (y,) = session.run(None, {"input": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert y.shape == want.shape == (2, 20, 12, 20)
    assert np.abs(y - want).max() <= 1e-4 * np.abs(want).max()


def test_torchscript_export_gives_the_models_outputs(tmp_path):
    from espdsl.export import export
    ir = espdsl.load("espnet_c", alpha3=2, input_size=(1, 3, 64, 128))
    model = espdsl.build_ir(ir).eval()
    export(model, ir, tmp_path / "net.ts")
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        assert torch.equal(torch.jit.load(str(tmp_path / "net.ts"))(x), model(x))


def test_render_without_output_prints_dot_that_dot_reads(tmp_path):
    import shutil
    import subprocess
    result = run("render", "esp", "-p", "M=8", "-p", "N=8")
    assert result.exit_code == 0 and result.output.startswith("digraph esp {")
    assert "conv 3x3, d=4" in result.output
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=result.output, capture_output=True, text=True)
        assert svg.returncode == 0 and "<svg" in svg.stdout


def test_a_spec_as_a_python_dict():
    import pytest
    from espdsl.errors import EspdslError
    net = {"model": "tiny", "input": {"channels": 3, "size": [32, 32]},
           "nodes": [{"name": "c1", "block": "cbr", "N": 8, "stride": 2},
                     {"name": "c2", "op": "conv", "out": 4, "kernel": 1}]}
    model = espdsl.create_model(net)
    # by hand: cbr 3 -> 8 (3x3, no bias) + BN + PReLU, then a 1x1 conv 8 -> 4 without bias
    assert sum(p.numel() for p in model.parameters()) == 3 * 9 * 8 + 2 * 8 + 8 + 8 * 4
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 4, 16, 16)
    with pytest.raises(EspdslError, match=r"^<dict tiny>:\d+:\d+: error: unknown block or model 'cbrr'"):
        espdsl.load({**net, "nodes": [{"name": "c1", "block": "cbrr", "N": 8}]})


def test_plots_in_every_format_at_a_dpi(tmp_path):
    from PIL import Image
    out = tmp_path / "t2c"
    result = run("zoo", "table2c", "-o", str(out), "--plot-format", "png,svg,pdf", "--dpi", "100")
    assert result.exit_code == 0, result.output
    assert (out / "params.svg").read_text().lstrip().startswith("<?xml")
    assert (out / "params.pdf").read_bytes().startswith(b"%PDF")
    with Image.open(out / "params.png") as png:
        dpi = png.info.get("dpi")
        assert dpi is not None and round(dpi[0]) == 100
    bad = run("zoo", "table2c", "-o", str(tmp_path / "x"), "--plot-format", "png,jpg")
    assert bad.exit_code == 2 and "unknown plot format 'jpg'" in bad.output
    assert not (tmp_path / "x").exists()
