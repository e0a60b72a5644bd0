"""The optimization passes: each exact on its own against the default build (every zoo spec and
library block), what each rewrites, the planned build's semantics, exports of the optimized
graph, and the authors' checkpoints through the optimized build.

Expected values are derived by hand from the architecture (the reference README's wiring) or
measured with torch (the default build, torch.fx's own conv-bn fusion, onnxruntime), never read
back from the code under test.
"""
from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import espdsl
from conftest import block_params, load_module
from espdsl.errors import UsageError
from espdsl.passes import DEFAULT, PASSES, Program, optimize_model, run
from espdsl.passes.memory import lifetimes

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "espnet-reference"
IMAGE = "frankfurt_000000_000294_leftImg8bit"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference data not found at {REF} "
                               "(needs ../shared/espnet-reference beside the project)")

SMALL = {"espnet": {"alpha2": 1, "alpha3": 2}, "espnet_b": {"alpha2": 1, "alpha3": 1},
         "espnet_a": {"alpha2": 1, "alpha3": 1}, "espnet_c": {"alpha2": 1, "alpha3": 2}}
ZOO = {name: SMALL.get(name, {}) for name in espdsl.list_models()}   # every zoo spec
ZOO_SIZE = (2, 3, 64, 96)          # batch 2: the plan covers the batch dimension too
BLOCK_SIZE = 12


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random batch-norm statistics and affine parameters, PReLU slopes and biases, so every
    pass has something to get wrong."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo, hi in ((m.running_mean, -1, 1), (m.running_var, 0.5, 2),
                                  (m.weight, 0.5, 1.5), (m.bias, -0.5, 0.5)):
                    t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


@functools.lru_cache(maxsize=None)
def case(name: str):
    """(default model, input) for a zoo spec or a library block; built once (the passes read the
    model, never change it)."""
    if name in ZOO:
        model = espdsl.create_model(name, input_size=ZOO_SIZE, **ZOO[name])
        shape = ZOO_SIZE
    else:
        params = block_params(name)
        m = params.get("M", 16)
        shape = (1, m, BLOCK_SIZE, BLOCK_SIZE)
        model = espdsl.create_block(name, input_size=shape, **params)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    return randomized(model), x


NAMES = [*ZOO, *espdsl.list_blocks()]


# a pass that only acts on a channels-last graph is tested on one
ALONE = {"avgpool_to_conv": ["channels_last", "avgpool_to_conv"]}


# the ImageNet families of issue 16 run every pass together by default, each pass alone when slow;
# only the exact passes (the precision passes are tested in test_precision.py)
HEAVY = {"efficientnet", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf",
         "mnasnet1_0"}


def _pass_cases():
    for name in NAMES:
        for passes, pid in zip([ALONE.get(p, [p]) for p in DEFAULT] + [list(DEFAULT)],
                               [*DEFAULT, "all"]):
            marks = [pytest.mark.slow] if name in HEAVY and pid != "all" else []
            yield pytest.param(name, passes, id=f"{name}-{pid}", marks=marks)


@pytest.mark.parametrize("name, passes", list(_pass_cases()))
def test_every_pass_is_exact_on_its_own(name, passes):
    model, x = case(name)
    with torch.no_grad():
        ref = model(x)
        fast = optimize_model(model, passes)
        got, again = fast(x), fast(x)
    scale = ref.abs().max().item()
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= 1e-5 * scale, name
    assert torch.equal(got, again)           # a planned build gives the same twice


def test_fold_batchnorm_folds_the_five_exact_ones_in_espnet():
    ir = espdsl.load("espnet", alpha3=8)
    folded = run(Program(ir), ["fold_batchnorm"]).ir
    before = {n.name for n in ir.nodes() if n.op == "batchnorm"}
    after = {n.name for n in folded.nodes() if n.op == "batchnorm"}
    assert len(before) == 21
    # behind a convolution: level1, the decoder's conv, br (behind the encoder's classifier),
    # up_l2's BR (behind a transposed conv); through a concat: combine_l2_l3's BR over
    # [level3_C conv, up_l3 transposed conv]. The rest follow a concat or sum of values that
    # are used elsewhere too (ESP's hierarchical sums and residual, pooled images, PReLUs).
    assert before - after == {"encoder.level1.bn", "conv.bn", "br", "up_l2.1.bn",
                              "combine_l2_l3.0.bn"}
    # torch.fx's own fusion only looks directly behind a convolution: 3 of 21
    from torch.fx.experimental.optimization import fuse
    fx_fused = fuse(espdsl.create_model("espnet", alpha3=8).eval())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fx_fused.modules()) == 18


def test_optimized_espnet_parameter_count_by_hand():
    # folding removes 2C batch-norm values and adds C bias values: level1 (C=16), br (20),
    # up_l2.1 (20), conv (20), and combine_l2_l3.0 (40 -> biases on level3_C and up_l3, 20
    # each): -116. The two biased 2x2 transposed convs become 1x1 convs with 4 x 20 biases:
    # +60 each. The other batch norms become affine ops with the same 2C values. The image's
    # two 3x3 average poolings become depthwise convolutions with constant weights: +2 x 27.
    result = subprocess_free_summary("espnet", alpha3=8)
    assert result == 364_569 - 116 + 120 + 2 * 27


def subprocess_free_summary(spec: str, **params) -> int:
    from espdsl.summary import scope_params
    return scope_params(espdsl.optimize(spec, **params), "")


def test_dedupe_drops_the_second_pooling_of_the_image():
    ir = espdsl.load("espnet", alpha3=1)
    new = run(Program(ir), ["dedupe"]).ir
    assert {n.name for n in ir.nodes()} - {n.name for n in new.nodes()} == {"encoder.sample2.pool0"}
    assert new.node("encoder.sample2.pool1").inputs == ["encoder.sample1.pool0"]


def test_avgpool_to_conv_makes_depthwise_averages_and_converts_the_image_once():
    ir = run(Program(espdsl.load("espnet", alpha3=1)), ["dedupe", "channels_last"]).ir
    assert ir.meta["nchw"] == ["encoder.sample1.pool0", "encoder.sample2.pool1", "input"]
    model = espdsl.create_model("espnet", alpha3=1, input_size=(1, 3, 64, 96))
    fast = optimize_model(model, ["dedupe", "channels_last", "avgpool_to_conv"])
    new = fast.espdsl_ir
    assert new.meta["nchw"] == []
    pool = new.node("encoder.sample1.pool0")
    assert (pool.op, pool.attrs["groups"], pool.attrs["kernel"], pool.attrs["stride"]) == ("conv", 3, 3, 2)
    weight = fast.state_dict()["encoder.sample1.pool0.weight"]
    assert weight.shape == (3, 1, 3, 3) and torch.all(weight == 1 / 9)
    x = torch.randn(1, 3, 64, 96)
    code = fast.code
    assert code.count("contiguous(memory_format = torch.channels_last)") == 1   # the image, once
    with torch.no_grad():
        ref = model.eval()(x)
        assert (fast(x) - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_avgpool_to_conv_leaves_what_it_cannot_express():
    """Without channels-last it changes nothing (a depthwise convolution is slower than the
    pooling in NCHW); padded zeros left out of the average are not a convolution."""
    ir = espdsl.load("espnet", alpha3=1)
    assert run(Program(ir), ["avgpool_to_conv"]).ir is ir
    from espdsl.registry import default_registry
    from espdsl.resolve import resolve
    from espdsl.spec import parse_spec
    spec = parse_spec(
        "block: b\nparams: {M: {type: int, default: 4}}\nnodes:\n"
        "  - {name: p, op: avgpool, kernel: 3, stride: 1, padding: 1, count_include_pad: false}\n"
        "  - {name: q, op: avgpool, kernel: 3, stride: 1, padding: 1}\n")
    new = espdsl.optimize(resolve(spec, {}, registry=default_registry()),
                          ["channels_last", "avgpool_to_conv"])
    assert [new.node(n).op for n in ("p", "q")] == ["avgpool", "conv"]


def test_deconv_rewrite_keeps_the_macs_and_the_receptive_field():
    ir = espdsl.load("espnet", alpha3=2)
    new = run(Program(ir), ["deconv_to_depth_to_space"]).ir
    assert not [n for n in new.nodes() if n.op == "deconv"]
    assert [n.name for n in new.nodes() if n.op == "depth_to_space"] == [
        "up_l3.0.to_space", "up_l2.0.to_space", "classifier.to_space"]
    a, b = espdsl.analyze(ir).totals, espdsl.analyze(new).totals
    # 20 -> 20, 2x2 stride 2 from 256x512: H W Cin Cout k^2 either way
    assert b.macs == a.macs and b.rf == a.rf and b.stride == a.stride
    assert a.macs_by_op["deconv"] == (64 * 128 + 128 * 256 + 256 * 512) * 20 * 20 * 4


def test_memory_plan_never_shares_memory_between_live_values():
    ir = espdsl.optimize("espnet", alpha3=3)
    plan = ir.meta["memory_plan"]
    spans = lifetimes(ir)
    slots, over = plan["slots"], plan["in_place"]

    def group(name):                 # a result written over an input shares its memory
        while name in over:
            name = over[name]
        return name

    assert slots and plan["output"] and over
    items = list(slots.items())
    for i, (a, (oa, na)) in enumerate(items):
        assert oa + na <= plan["arena"]
        for b, (ob, nb) in items[i + 1:]:
            (fa, la), (fb, lb) = spans[a], spans[b]
            if not (la < fb or lb < fa) and group(a) != group(b):    # alive together
                assert oa + na <= ob or ob + nb <= oa, (a, b)
    for piece, (concat, _) in plan["pieces"].items():   # a piece lives in its concat's slot
        oc, nc = slots[concat]
        fp, lp = spans[piece]
        for b, (ob, nb) in items:
            fb, lb = spans[b]
            if group(b) != group(concat) and not (lp < fb or lb < fp):
                assert oc + nc <= ob or ob + nb <= oc, (piece, b)
    for result, src in over.items():  # only over an input read last by that very op
        assert src in ir.node(result).inputs and spans[src][1] == spans[result][0]
    assert plan["arena"] * 4 < plan["planned_bytes"]     # slots are reused


def test_planned_model_keeps_held_outputs_and_falls_back_on_other_shapes():
    model, x = case("espnet")
    fast = optimize_model(model)
    from espdsl.runtime import PlannedModule
    assert isinstance(fast, PlannedModule) and isinstance(fast, torch.fx.GraphModule)
    with torch.no_grad():
        y1 = fast(x)
        kept = y1.clone()
        y2 = fast(torch.randn_like(x))
        assert torch.equal(y1, kept) and y1.data_ptr() != y2.data_ptr()
        ptr = y1.data_ptr()
        del y1
        y3 = fast(x)                                      # y1's tensor was free again
        assert y3.data_ptr() == ptr and torch.equal(y3, kept)
        small = torch.randn(1, 3, 32, 64)                 # not the planned shape
        ref = model(small)
        assert (fast(small) - ref).abs().max() <= 1e-5 * ref.abs().max()
    with pytest.raises(UsageError, match="inference only"):
        fast.train()


def test_optimized_model_traces_and_scripts_through_the_plain_graph():
    model, x = case("espnet")
    fast = optimize_model(model)
    with torch.no_grad():
        ref = fast(x)
        traced = torch.jit.trace(fast, x)
        torch.testing.assert_close(traced(x), ref, rtol=0, atol=1e-6)
        gm = torch.fx.symbolic_trace(fast)
        torch.testing.assert_close(gm(x), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["espnet", "esp", "up"])
def test_py_and_onnx_exports_of_the_optimized_graph_agree_with_it(name, tmp_path):
    import onnxruntime as ort

    from espdsl.codegen import to_python
    model, x = case(name)
    fast = optimize_model(model)
    with torch.no_grad():
        ours = fast(x)
    # .py: a plain module of the optimized graph, loaded with the optimized weights
    path = tmp_path / f"opt_{name}.py"
    path.write_text(to_python(fast.espdsl_ir))
    source = path.read_text()
    assert "espdsl" not in source.split('"""', 2)[2]
    cls = [v for v in vars(load_module(path)).values()
           if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == path.stem][-1]
    plain = cls().eval()
    plain.load_state_dict(fast.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), ours, rtol=0, atol=1e-6)
    # .onnx through the CLI: onnxruntime on the exported optimized graph
    onnx_path = tmp_path / f"opt_{name}.onnx"
    from espdsl.export import export
    export(fast, fast.espdsl_ir, onnx_path, source_model=model)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(got - ours.numpy()).max() <= 1e-5 * ours.abs().max().item()


def test_optimized_checkpoint_comes_back_optimized(tmp_path):
    from click.testing import CliRunner

    from espdsl.cli import main
    out = tmp_path / "net.pt"
    weights = tmp_path / "w.pth"
    model, x = case("espnet")
    torch.save(model.state_dict(), weights)
    args = ["compile", "espnet", "-p", "alpha2=1", "-p", "alpha3=2", "--input",
            "x".join(map(str, ZOO_SIZE)), "--weights", str(weights), "--optimize", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    again = espdsl.create_model(out)
    assert "passes" in again.espdsl_ir.meta
    plain = espdsl.create_model(out, optimize=False).eval()
    with torch.no_grad():
        ref = model(x)
        for m in (again, plain):
            assert (m(x) - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_optimized_graph_analyses_and_renders_without_torch(tmp_path):
    code = ("import sys, espdsl\n"
            "ir = espdsl.optimize('espnet', alpha3=2)\n"
            "a = espdsl.analyze(ir)\n"
            f"espdsl.render(ir, r'{tmp_path / 'opt.dot'}', expand='all')\n"
            "print(a.totals.macs, 'torch' in sys.modules)\n")
    run_ = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert run_.returncode == 0, run_.stderr
    macs, torch_loaded = run_.stdout.split()
    assert torch_loaded == "False"
    # the spec's MACs, plus the image's two poolings now computed as depthwise 3x3
    # convolutions on 3 channels (to 256x512, then to 128x256)
    pools = 3 * 9 * (256 * 512 + 128 * 256)
    assert int(macs) == espdsl.analyze("espnet", alpha3=2).totals.macs + pools
    text = (tmp_path / "opt.dot").read_text()
    assert "depth-to-space x2" in text and "optimized for inference" in text


def test_unknown_pass_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown pass 'fold_bn'.*fold_batchnorm"):
        espdsl.optimize("cbr", ["fold_bn"], M=3, N=8)


# -- the authors' checkpoints through the optimized build ---------------------------------------
@needs_ref
@pytest.mark.parametrize("kind,q", [(k, q) for k in ("encoder", "decoder") for q in (3, 5, 8)])
def test_cityscapes_class_maps_identical_with_the_optimized_build(kind, q):
    from PIL import Image
    spec = ROOT / ("zoo/espnet_c.yaml" if kind == "encoder" else "zoo/espnet.yaml")
    model = espdsl.create_model(spec, weights=REF / "weights" / kind / f"espnet_p_2_q_{q}.pth",
                                alpha3=q, optimize=True)
    x = torch.from_numpy(np.load(REF / "outputs" / f"{IMAGE}_input.npy"))
    with torch.no_grad():
        logits = model(x)
    tag = f"{kind}_p2_q{q}"
    classes = np.array(Image.open(REF / "outputs" / f"{IMAGE}_{tag}_classes.png"))
    np.testing.assert_array_equal(logits[0].argmax(0).numpy(), classes)
    if kind == "decoder":
        ours = torch.nn.functional.avg_pool2d(logits, 8)[0].numpy()
        ref = np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits_pooled8.npy")
    else:
        ours, ref = logits[0].numpy(), np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits.npy")
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("channels_last", [False, True])
def test_depth_to_space_is_onnx_depth_to_space_dcr(channels_last):
    """Against onnxruntime running ONNX's own DepthToSpace operator (mode DCR)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from espdsl.runtime import depth_to_space
    x = torch.randn(2, 12, 3, 5)
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="DCR")
    graph = helper.make_graph([node], "d2s", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 12, 3, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 6, 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xx = x.contiguous(memory_format=fmt)
    assert torch.equal(depth_to_space(xx, 2, channels_last=channels_last), ref)
    out = torch.empty(2, 3, 6, 10).contiguous(memory_format=fmt)
    assert torch.equal(depth_to_space(xx, 2, out=out), ref) and out.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("name", ["espnet", "mobilenet", "shufflenet", "resnext", "esp"])
def test_plan_with_every_value_planned_is_exact(name):
    """Small test inputs stay below the size from which convolutions and PReLUs are planned;
    plan everything once, so their out= forms (zeroed destination + fused sum, clamp +
    addcmul) are checked too."""
    import functools

    from espdsl.passes.memory import plan_memory
    model, x = case(name)
    passes = [p for p in DEFAULT if p != "plan_memory"] + [functools.partial(plan_memory, large_bytes=0)]
    fast = optimize_model(model, passes)
    ops = {fast.espdsl_ir.node(n).op for n in fast.espdsl_ir.meta["memory_plan"]["slots"]}
    assert {"conv", "prelu"} & ops
    with torch.no_grad():
        ref, got = model(x), fast(x)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_fused_pointwise_conv_keeps_its_input_alive_until_the_fused_op():
    from espdsl.passes.memory import lifetimes
    ir = espdsl.optimize("espnet", alpha3=2)
    plan = ir.meta["memory_plan"]
    assert plan["fused"] == {"up_l3.0.to_space": "up_l3.0", "up_l2.0.to_space": "up_l2.0",
                             "classifier.to_space": "classifier"}
    spans = lifetimes(ir)
    index = {n.name: i for i, n in enumerate(ir.nodes())}
    for space, conv in plan["fused"].items():
        assert conv not in plan["slots"]
        src = ir.node(conv).inputs[0]
        # nothing planned may take src's memory before the fused op has read it
        if src in plan["slots"]:
            o, n = plan["slots"][src]
            for other, (oo, nn_) in plan["slots"].items():
                if other != src and spans[other][0] == index[space] and not (o + n <= oo or oo + nn_ <= o):
                    raise AssertionError((src, other))


def test_plan_without_channels_last_is_exact():
    """The memory plan does not need the channels-last pass (a 1x1 convolution writes NCHW)."""
    import functools

    from espdsl.passes.memory import plan_memory
    model, x = case("espnet")
    fast = optimize_model(model, ["deconv_to_depth_to_space", functools.partial(plan_memory, large_bytes=0)])
    assert "layout" not in fast.espdsl_ir.meta and fast.espdsl_ir.meta["memory_plan"]["fused"]
    with torch.no_grad():
        ref, got = model(x), fast(x)
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_optimized_model_copies_and_pickles_as_itself():
    import copy
    import io

    from espdsl.runtime import PlannedModule
    model, x = case("espnet")
    fast = optimize_model(model)
    with torch.no_grad():
        ref = fast(x)
        buffer = io.BytesIO()
        torch.save(fast, buffer)
        buffer.seek(0)
        for other in (copy.deepcopy(fast), torch.load(buffer, weights_only=False)):
            assert isinstance(other, PlannedModule) and other.espdsl_ir.meta["memory_plan"]
            assert torch.equal(other(x), ref)
