"""Reduced precision: the bf16/fp16 pass, the int8 flow (espdsl quantize), accuracy reports."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import espdsl
from espdsl.accuracy import agreement, mean_iou, weight_bytes
from espdsl.cli import main
from espdsl.passes import optimize_model, pipeline
from espdsl.passes.precision import bf16_supported, fallback, stem
from espdsl.runtime import compiled_of

ROOT = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("ESPDSL_REFERENCE", ROOT.parent / "shared" / "espnet-reference"))
IMAGE = "frankfurt_000000_000294_leftImg8bit"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference data not found at {REF} "
                               "(needs ../shared/espnet-reference beside the project)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def randomized(model):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def small_espnet():
    return randomized(espdsl.create_model("espnet", alpha2=1, alpha3=1,
                                          input_size=(1, 3, 64, 128)))


# -- bf16 ---------------------------------------------------------------------------------------
def test_bf16_graph_runs_bf16_convolutions_and_returns_fp32(small_espnet):
    fast = optimize_model(small_espnet, pipeline("bf16"))
    ir = fast.espdsl_ir
    kept = set(stem(ir))
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(
        name, (i[0].dtype, o.dtype, m.weight.dtype)))
        for name, m in fast.named_modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        out = fast(x)
    for h in hooks:
        h.remove()
    assert fast._can_plan(x)                       # the planned graph ran, not the plain one
    assert fast.planned._workspace.arena.dtype == torch.bfloat16
    assert out.dtype == torch.float32
    low = {name: d for name, d in seen.items() if name not in kept}
    assert len(low) > 20 and set(low.values()) == {(torch.bfloat16,) * 3}, low
    assert {seen[n] for n in kept if n in seen} == {(torch.float32,) * 3}
    # the affines keep fp32 parameters (the shift rounded to bf16 moves the class map)
    affines = {name: m for name, m in fast.named_modules() if type(m).__name__ == "Affine"}
    assert affines and all(m.weight.dtype == torch.float32 and m.mixed == (name not in kept)
                           for name, m in affines.items())


def test_bf16_is_close_to_fp32_and_planned_equals_plain(small_espnet):
    x = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    fp32 = optimize_model(small_espnet)
    fast = optimize_model(small_espnet, pipeline("bf16"))
    with torch.no_grad():
        ref, got, plain = fp32(x), fast(x), fast.forward(x)
    scale = ref.abs().max().item()
    # bf16 keeps 8 bits of mantissa: relative rounding 2^-9 per op, a few dozen ops deep
    assert (got - ref).abs().max().item() < 0.1 * scale
    torch.testing.assert_close(got, plain, rtol=0, atol=1e-2 * scale)


def test_bf16_workspace_takes_half_the_bytes():
    ir32 = espdsl.optimize("espnet", alpha3=2)
    ir16 = espdsl.optimize("espnet", pipeline("bf16"), alpha3=2)
    p32, p16 = ir32.meta["memory_plan"], ir16.meta["memory_plan"]
    assert p16["dtype"] == "bfloat16"
    # the stem's values are not planned in bf16 (they stay fp32): at most half, not much less
    assert 0.3 * p32["planned_bytes"] < p16["planned_bytes"] <= 0.5 * p32["planned_bytes"]


def test_pipeline_names_and_unknown_dtype():
    assert pipeline(None) == pipeline("fp32")
    assert pipeline("bf16")[-2:] == ("bf16", "plan_memory")
    with pytest.raises(espdsl.errors.UsageError, match="unknown dtype 'bf61'"):
        pipeline("bf61")


def test_bf16_fallback_line_matches_the_cpu():
    note = fallback("bf16")
    assert (note is None) == bf16_supported()
    assert fallback("fp16", "cpu") and fallback("fp16", "cuda") is None


def test_bf16_checkpoint_round_trip(tmp_path):
    out = tmp_path / "net16.pt"
    result = run("compile", "espnet_c", "-p", "alpha3=1", "--optimize", "--dtype", "bf16",
                 "-o", out)
    assert result.exit_code == 0, result.output
    model = espdsl.create_model(out)
    assert "bf16" in model.espdsl_ir.meta["passes"]
    assert model.planned._workspace.arena.dtype == torch.bfloat16
    bad = run("compile", "espnet_c", "--optimize", "--dtype", "bf16", "-o", tmp_path / "n.onnx")
    assert bad.exit_code == 2 and "exports to .pt" in bad.output


def test_dtype_needs_optimize():
    with pytest.raises(espdsl.errors.UsageError, match="optimized network"):
        espdsl.create_model("espnet_c", alpha3=1, dtype="bf16")
    with pytest.raises(espdsl.errors.UsageError, match="calibrated on images"):
        espdsl.create_model("espnet_c", alpha3=1, optimize=True, dtype="int8")


@needs_ref
def test_bf16_keeps_the_class_map_on_the_reference_image():
    """Authors' weights, the reference image at half size (256x512): bf16 agrees with fp32 on
    at least 99.5% of the pixels."""
    x = torch.from_numpy(np.load(REF / "outputs" / f"{IMAGE}_input.npy"))
    x = F.avg_pool2d(x, 2)
    model = espdsl.create_model("espnet", weights=REF / "weights/decoder/espnet_p_2_q_8.pth",
                                alpha3=8, input_size=(1, 3, 256, 512)).eval()
    with torch.no_grad():
        ref = optimize_model(model)(x).argmax(1).numpy()
        got = optimize_model(model, pipeline("bf16"))(x).argmax(1).numpy()
    assert agreement(ref, got) >= 0.995, agreement(ref, got)


# -- accuracy ------------------------------------------------------------------------------------
def test_agreement_and_miou_by_hand():
    a = np.array([[0, 0, 2, 2], [1, 1, 1, 1]])
    b = np.array([[0, 2, 2, 2], [1, 1, 1, 0]])
    assert agreement(a, b) == 6 / 8
    # class 0: both 1, either 3 -> 1/3; class 1: 3/4; class 2: 2/3
    assert mean_iou(a, b) == pytest.approx((1 / 3 + 3 / 4 + 2 / 3) / 3)
    assert mean_iou(a, a) == 1.0


def test_weight_bytes_halve_in_bf16(small_espnet):
    fp32 = optimize_model(small_espnet)
    bf16 = optimize_model(small_espnet, pipeline("bf16"))
    n32 = sum(t.numel() for t in fp32.state_dict().values())
    assert weight_bytes(fp32) == 4 * n32
    assert 2 * n32 < weight_bytes(bf16) < 4 * n32


# -- int8 ----------------------------------------------------------------------------------------
TINYQ = """model: tinyq
params: {classes: {type: int, default: 3}}
input: {channels: 3, size: [32, 64]}
predict:
  channels: RGB
  steps:
    - resize: {size: [32, 64], mode: bilinear}
    - divide: 255
  classes:
    - {name: a, color: [10, 20, 30]}
    - {name: b, color: [200, 100, 0]}
    - {name: c, color: [0, 255, 255]}
nodes:
  - {name: body, block: cbr, N: 10, stride: 2}
  - {name: esp, block: esp, N: 10, K: 5}
  - {name: head, block: c, N: classes}
  - {name: up, op: deconv, out: classes, kernel: 2, stride: 2}
"""


@pytest.fixture(scope="module")
def tinyq(tmp_path_factory):
    pytest.importorskip("torchao", reason="int8 quantization needs torchao")
    folder = tmp_path_factory.mktemp("tinyq")
    spec = folder / "tinyq.yaml"
    spec.write_text(TINYQ)
    weights = folder / "tinyq.pth"
    torch.save(randomized(espdsl.create_model(spec)).state_dict(), weights)
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)).save(path)
        images.append(path)
    return spec, weights, images


def test_quantize_round_trip_through_create_model_and_predict(tinyq, tmp_path):
    from espdsl.predict import config_for, predict_files
    from espdsl.quantize import calibration_inputs, quantize_model
    spec, weights, images = tinyq
    out = tmp_path / "net_int8.pt"
    result = run("quantize", spec, "--weights", weights, "--calibrate", images[0], images[1],
                 "-o", out)
    assert result.exit_code == 0, result.output
    assert "int8 convolutions in the converted graph" in result.output
    assert "prelu" in result.output and "concat" in result.output
    # the file is a plain espdsl checkpoint: weights_only loading, observer statistics inside
    raw = torch.load(out, weights_only=True)
    assert raw["quantized"]["scheme"] == "pt2e-x86-inductor" and raw["quantized"]["observers"]
    loaded = espdsl.create_model(out)
    loaded._compile = False                       # inductor is slow to start; same graph
    assert loaded.espdsl_ir.meta["quantized"] == "int8"
    convs = [n for n in loaded.net.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    int8 = [n for n in convs if "dequantize" in str(n.args[1].target)]
    assert int8, "no convolution reads int8 weights"
    # the same int8 network as quantizing again with the same images
    model = espdsl.create_model(spec, weights=weights).eval()
    again = quantize_model(model, calibration_inputs(model, images[:2]), compile=False)
    x = calibration_inputs(model, images[2:])[0]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), again(x), rtol=0, atol=0)
        ref = optimize_model(model)(x)
    assert agreement(loaded(x).argmax(1).numpy(), ref.argmax(1).numpy()) > 0.8
    written = predict_files(loaded, config_for(loaded), [images[2]], tmp_path / "pred")
    names = {p.name for p in written}  # the class map, its overlay (and more), the colour legend
    assert {"img2_classes.png", "img2_overlay.png", "legend.png"} <= names, names
    assert all(p.is_file() for p in written)


def test_quantize_bad_input_is_one_line(tinyq, tmp_path):
    spec, weights, images = tinyq
    result = run("quantize", spec, "--calibrate", images[0], "-o", tmp_path / "q.pt")
    assert result.exit_code == 2 and "needs --weights" in result.output
    result = run("quantize", spec, "--weights", weights, "--calibrate", images[0],
                 "-o", tmp_path / "q.onnx")
    assert result.exit_code == 2 and "must end in .pt" in result.output
    assert not (tmp_path / "q.pt").exists()


# -- CUDA fp16 -----------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 is for CUDA: no GPU here")
def test_fp16_on_cuda_is_close_to_fp32(small_espnet):
    fp32 = optimize_model(small_espnet).to("cuda")
    fast = optimize_model(small_espnet, pipeline("fp16")).to("cuda")
    x = torch.randn(1, 3, 64, 128, device="cuda")
    with torch.no_grad():
        ref, got = fp32(x), fast(x)
    assert got.dtype == torch.float32
    assert fast.planned._workspace.arena.dtype == torch.float16
    assert (got - ref).abs().max().item() < 0.05 * ref.abs().max().item()


# -- bf16 through inductor (backend="inductor") --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    spec = tmp_path_factory.mktemp("tiny16") / "tinyq.yaml"
    spec.write_text(TINYQ)
    return randomized(espdsl.create_model(spec))


def test_inductor_backend_matches_the_planned_build_and_recycles_the_output(tiny_net):
    x = torch.randn(1, 3, 32, 64, generator=torch.Generator().manual_seed(5))
    fp32 = optimize_model(tiny_net)
    eager = optimize_model(tiny_net, pipeline("bf16"))
    fast = optimize_model(tiny_net, pipeline("bf16", "inductor"))
    assert fast.espdsl_ir.meta["backend"] == "inductor" and compiled_of(fast) is None
    with torch.no_grad():
        ref, planned, got = fp32(x), eager(x), fast(x)
    assert compiled_of(fast) is not None and compiled_of(eager) is None
    assert got.dtype == torch.float32 and got.shape == ref.shape
    scale = ref.abs().max().item()
    # the same bf16 graph, fused: inductor rounds to bf16 at fewer points (2^-9 relative each)
    torch.testing.assert_close(got, planned, rtol=0, atol=2e-2 * scale)
    assert (got - ref).abs().max().item() < 0.1 * scale
    where = got.data_ptr()
    del got
    with torch.no_grad():
        again, other = fast(x), fast(torch.flip(x, [3]))
    assert again.data_ptr() == where                # nobody held it: the same tensor again
    assert other.data_ptr() != where                # `again` is held: another one
    torch.testing.assert_close(again, planned, rtol=0, atol=2e-2 * scale)
    compiled = compiled_of(fast)
    torch.testing.assert_close(fast(x), again, rtol=0, atol=0)     # with autograd on: the same
    assert compiled_of(fast) is compiled
    # another input size runs the plain graph (same values as the planned build's plain graph)
    small = torch.randn(1, 3, 16, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(fast(small), eager(small), rtol=0, atol=0)
    fast.load_state_dict(fast.state_dict())        # new weights: compiled again on next call
    assert compiled_of(fast) is None
    # the same spec with other weights in the same process gets its own compiled graph
    # (freezing made the first one's weights constants)
    halved = espdsl.api.build_ir(tiny_net.espdsl_ir).eval()
    halved.load_state_dict({k: v * 0.5 if v.is_floating_point() else v
                            for k, v in tiny_net.state_dict().items()})
    eager2 = optimize_model(halved, pipeline("bf16"))
    fast2 = optimize_model(halved, pipeline("bf16", "inductor"))
    with torch.no_grad():
        planned2, got2 = eager2(x), fast2(x)
    scale2 = planned2.abs().max().item()
    assert compiled_of(fast2) is not None and (planned2 - planned).abs().max().item() > 0.1 * scale2
    torch.testing.assert_close(got2, planned2, rtol=0, atol=2e-2 * scale2)


def test_backend_needs_optimize_and_a_known_name():
    assert pipeline("bf16", "inductor")[-1] == "inductor" and "inductor" not in pipeline("bf16")
    assert pipeline(None, "eager") == pipeline()
    with pytest.raises(espdsl.errors.UsageError, match="runs the optimized network"):
        espdsl.create_model("espnet_c", alpha3=1, backend="inductor")
    with pytest.raises(espdsl.errors.UsageError, match="did you mean 'inductor'"):
        espdsl.create_model("espnet_c", alpha3=1, optimize=True, dtype="bf16", backend="indutor")


@needs_ref
@pytest.mark.slow
def test_bf16_inductor_keeps_the_class_map_on_the_reference_image():
    """The issue's criterion at the issue's size: authors' weights, the reference input at
    512x1024, >= 99.5% of the pixels of the fp32 build's class map. (At 256x512 both bf16 builds
    sit at the threshold: eager 99.51%, inductor 99.49-99.54% depending on where it rounds.)"""
    x = torch.from_numpy(np.load(REF / "outputs" / f"{IMAGE}_input.npy"))
    model = espdsl.create_model("espnet", weights=REF / "weights/decoder/espnet_p_2_q_8.pth",
                                alpha3=8).eval()
    fast = optimize_model(model, pipeline("bf16", "inductor"))
    with torch.no_grad():
        ref = optimize_model(model)(x).argmax(1).numpy()
        got = fast(x).argmax(1).numpy()
    assert compiled_of(fast) is not None
    assert agreement(ref, got) >= 0.995, agreement(ref, got)


def test_bench_backend_inductor_times_the_compiled_build(tmp_path):
    import json
    spec = tmp_path / "tinyq.yaml"
    spec.write_text(TINYQ)
    result = run("bench", spec, "--runs", 2, "--warmup", 1, "--dtype", "bf16", "--backend",
                 "inductor", "--vs", "fp32", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert (got["a"]["dtype"], got["a"]["backend"]) == ("bf16", "inductor")
    assert (got["b"]["dtype"], got["b"]["backend"]) == ("fp32", "eager")
    bad = run("bench", spec, "--runs", 1, "--backend", "inductor", "--no-optimize")
    assert bad.exit_code == 2 and "optimized" in bad.output


# -- int8 accuracy: the fake-quantization simulation, the accuracy-aware fallback ----------------
def test_simulation_equals_torchaos_converted_graph(tinyq):
    """The sensitivity search measures a fake-quantized copy of the calibrated graph; it must
    compute what convert_pt2e's quantize/dequantize graph computes."""
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from espdsl.passes import optimize_model as optimize
    from espdsl.quantize import _calibrated, calibration_inputs, float_modules
    from espdsl.quantize_fallback import simulated
    spec, weights, images = tinyq
    model = espdsl.create_model(spec, weights=weights).eval()
    fp32 = optimize(model)
    xs = calibration_inputs(model, images)
    prepared = _calibrated(fp32, xs[:2], float_modules(fp32.espdsl_ir))
    sim, fakes, owners, any_of = simulated(prepared)
    converted = convert_pt2e(copy.deepcopy(prepared))
    with torch.no_grad():
        ref, got, flt = converted(xs[2]), sim(xs[2]), fp32(xs[2])
        for f in fakes.values():
            f.on = False
        off = sim(xs[2])
    assert (ref - flt).abs().max() > 1e-3          # quantization changes the logits ...
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)   # ... and the copy sees the same
    torch.testing.assert_close(off, flt, rtol=0, atol=1e-5)   # every point off: fp32
    # every convolution outside the stem owns its weights' point
    convs = {n.meta["nn_module_stack"][next(reversed(n.meta["nn_module_stack"]))][0]
             for n in converted.graph.nodes if n.target == torch.ops.aten.conv2d.default}
    owned = {m for mods in owners.values() for m in mods}
    assert owned and owned <= convs
    # the ESP module's concatenation is int8 (tinyq's esp: five branches, their sums): its
    # points belong to the five branch convolutions, any one of which makes it fp32
    branches = {f"esp.d{d}.conv" for d in (1, 2, 4, 8, 16)}
    assert any_of and all(set(owners[n]) == branches for n in any_of), (any_of, owners)


def test_logits_noise_and_module_costs_by_hand():
    from espdsl.quantize_fallback import Noise, logits_noise, module_costs
    ref = torch.zeros(1, 2, 1, 4)
    ref[0, 0] = torch.tensor([2.0, 2.0, 0.0, 0.0])
    ref[0, 1] = torch.tensor([0.0, 0.0, 2.0, 2.0])
    out = ref.clone()
    out[0, 1, 0, 0] = 3.0                              # one pixel flips; noise 9 of signal 16
    noise, agree = logits_noise(lambda x: out, [None], [ref])
    assert noise == pytest.approx(9 / 16) and agree == 3 / 4
    costs = [Noise("a", ("c1",), 0.4), Noise("b", ("d1", "d2"), 0.2), Noise("c", (), 0.9)]
    assert module_costs(costs) == [("c1", 0.4), ("d1", 0.1), ("d2", 0.1)]
    assert Noise("x", (), 0.001).sqnr_db == pytest.approx(30.0)


def test_fallback_keeps_convolutions_in_fp32_until_the_target(tinyq, tmp_path):
    from espdsl.predict import config_for, preprocess, read_image
    spec, weights, images = tinyq
    out = tmp_path / "q.pt"
    result = run("quantize", spec, "--weights", weights, "--calibrate", images[0], images[1],
                 "--validate", images[2], "--min-agreement", 100, "-o", out)
    assert result.exit_code == 0, result.output
    assert "validation: all int8" in result.output and "target 100.00%" in result.output
    recipe = torch.load(out, weights_only=True)["quantized"]
    assert recipe["validation"] == 1 and recipe["min_agreement"] == 1.0
    kept = [line.split()[1] for line in result.output.splitlines()
            if line.startswith("  fp32: ")]
    assert set(kept) <= set(recipe["float"])
    # the stored agreement is the loaded network's, measured here with the project's metric
    loaded = espdsl.create_model(out)
    loaded._compile = False
    fp32 = optimize_model(espdsl.create_model(spec, weights=weights).eval())
    x = preprocess(read_image(images[2]), config_for(loaded))
    with torch.no_grad():
        measured = agreement(fp32(x).argmax(1).numpy(), loaded(x).argmax(1).numpy())
    assert measured == pytest.approx(recipe["agreement"], abs=1e-9)
    reached = f"{100 * measured:.2f}% (the converted network)"
    assert reached in result.output
    assert (measured >= 1.0) != ("target not reached" in result.output)
    # what was kept reads fp32 weights in the converted graph
    for node in loaded.net.graph.nodes:
        if node.target == torch.ops.aten.conv2d.default:
            stack = node.meta["nn_module_stack"]
            module = stack[next(reversed(stack))][0]
            int8 = "dequantize" in str(getattr(node.args[1], "target", ""))
            assert int8 == (module not in recipe["float"]), module


def test_fallback_bad_input_is_one_line(tinyq, tmp_path):
    spec, weights, images = tinyq
    for extra, message in [(["--validate", images[0]], "is both a calibration and a validation"),
                           (["--validate", images[2], "--min-agreement", "101"], "101"),
                           (["--validate", images[2], "--min-agreement", "٩٩"], "ASCII digits")]:
        result = run("quantize", spec, "--weights", weights, "--calibrate", images[0], *extra,
                     "-o", tmp_path / "q.pt")
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "q.pt").exists()


def test_float_concat_leaves_no_int8_concatenation_and_round_trips(tinyq, tmp_path):
    spec, weights, images = tinyq
    out = tmp_path / "q.pt"
    result = run("quantize", spec, "--weights", weights, "--calibrate", images[0], "--float-concat",
                 "-o", out)
    assert result.exit_code == 0, result.output
    assert torch.load(out, weights_only=True)["quantized"]["concat"] == "fp32"
    loaded = espdsl.create_model(out)
    cats = [n for n in loaded.net.graph.nodes if n.target == torch.ops.aten.cat.default]
    assert cats and not any("dequantize" in str(getattr(a, "target", ""))
                            for n in cats for a in n.args[0])
    assert "concat            0 int8" in result.output


def test_predict_backend_inductor_writes_the_class_maps_of_the_planned_build(tinyq, tmp_path):
    """`predict --backend inductor` runs the same bf16 network compiled; its class maps agree
    with the eager-planned build's (bf16 rounding moves a few pixels near a tie at most)."""
    from torch._dynamo.utils import counters
    spec, weights, images = tinyq
    maps, compiled_frames = {}, {}
    for backend in ("eager", "inductor"):
        out = tmp_path / backend
        before = counters["stats"]["unique_graphs"]
        result = run("predict", spec, *images, "--weights", weights, "--dtype", "bf16",
                     "--backend", backend, "-o", out)
        assert result.exit_code == 0, result.output
        compiled_frames[backend] = counters["stats"]["unique_graphs"] - before
        maps[backend] = [np.array(Image.open(out / f"{p.stem}_classes.png")) for p in images]
    assert compiled_frames == {"eager": 0, "inductor": 1}, compiled_frames
    for eager, compiled in zip(maps["eager"], maps["inductor"]):
        assert eager.shape == compiled.shape
        assert agreement(eager, compiled) >= 0.98, agreement(eager, compiled)
    bad = run("predict", spec, images[0], "--weights", weights, "--backend", "inductor",
              "--no-optimize", "-o", tmp_path / "bad")
    assert bad.exit_code == 2 and "optimized" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()
