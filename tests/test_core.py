"""The compiler on the paper's networks and modules: exact parameter counts and shapes, and every
block and model building, running, linting, tracing and exporting."""
from __future__ import annotations

import io

import pytest
import torch

import espdsl
from conftest import block_params


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("alpha3, want", [(3, 202_649), (5, 267_417), (8, 364_569)])
def test_espnet_parameters(alpha3, want):
    # Table 2g of the paper and the authors' released models (reference README)
    assert n_params(espdsl.create_model("zoo/espnet.yaml", alpha3=alpha3)) == want


@pytest.mark.parametrize("alpha3, want", [(3, 187_529), (5, 252_297), (8, 349_449)])
def test_espnet_c_parameters(alpha3, want):
    assert n_params(espdsl.create_model("zoo/espnet_c.yaml", alpha3=alpha3)) == want


def test_espnet_b_parameters():
    # Table 2f: ESPNet-B with alpha2 = 2, alpha3 = 3 has 0.186 M parameters (exactly 186,464)
    assert n_params(espdsl.create_model("zoo/espnet_b.yaml", alpha2=2, alpha3=3)) == 186_464


def test_output_shapes_full_size():
    # shapes from the IR at full size (no allocation), then one real forward at a small size
    assert espdsl.load("espnet").output_shape == (1, 20, 512, 1024)
    assert espdsl.load("espnet_c").output_shape == (1, 20, 64, 128)
    model = espdsl.create_model("espnet", alpha3=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 128)).shape == (1, 20, 64, 128)


@pytest.mark.slow
def test_output_shapes_real_forward_1024x512():
    x = torch.randn(1, 3, 512, 1024)
    with torch.no_grad():
        assert espdsl.create_model("espnet").eval()(x).shape == (1, 20, 512, 1024)
        assert espdsl.create_model("espnet_c").eval()(x).shape == (1, 20, 64, 128)


# Fig. 3g: M = N = 100, n = 3, K = 5, d = N / K = 20, g = 2
FIG3G_CONV_WEIGHTS = {
    "esp": 100 * 20 + 5 * 3 ** 2 * 20 ** 2,                   # Md + K n^2 d^2 = 20,000
    "mobilenet": 100 * (3 ** 2 + 100),                        # M(n^2 + N) = 10,900
    "shufflenet": 20 // 2 * (100 + 100) + 3 ** 2 * 20,        # d/g (M + N) + n^2 d = 2,180
    "inception": 5 * (100 * 20 + 3 ** 2 * 20 ** 2),           # K(Md + n^2 d^2) = 28,000
    "resnext": 5 * (100 * 20 + 20 ** 2 * 3 ** 2 + 20 * 100),  # K(Md + d^2 n^2 + dN) = 38,000
    "asp": 5 * 100 * 100 * 3 ** 2,                            # K M N n^2 = 450,000
    "resnet": 2 * 3 ** 2 * 100 * 100,                         # 2 n^2 M N = 180,000
}


def test_fig3g_formulas_are_the_issue_numbers():
    assert FIG3G_CONV_WEIGHTS == {"esp": 20_000, "mobilenet": 10_900, "shufflenet": 2_180,
                                  "inception": 28_000, "resnext": 38_000, "asp": 450_000,
                                  "resnet": 180_000}


@pytest.mark.parametrize("kind", sorted(FIG3G_CONV_WEIGHTS))
def test_fig3g_modules(kind):
    model = espdsl.create_block(kind, **block_params(kind)).eval()
    conv_weights = sum(m.weight.numel() for m in model.modules()
                       if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    assert conv_weights == FIG3G_CONV_WEIGHTS[kind]
    with torch.no_grad():
        assert model(torch.randn(1, 100, 56, 56)).shape == (1, 100, 56, 56)


def test_esp_matches_the_papers_channel_split():
    # footnote 4: N - (K-1) floor(N/K) channels at dilation 1, floor(N/K) at 2^(k-1), k = 2..K
    sd = espdsl.create_block("esp", M=64, N=64, K=5).state_dict()
    assert sd["c1.conv.weight"].shape == (12, 64, 1, 1)
    assert sd["d1.conv.weight"].shape == (16, 12, 3, 3)
    assert [sd[f"d{2 ** k}.conv.weight"].shape[0] for k in range(1, 5)] == [12] * 4
    assert [m.dilation for n, m in espdsl.create_block("esp", M=8, N=8, K=4).named_modules()
            if isinstance(m, torch.nn.Conv2d) and n.startswith("d")] == [(1, 1), (2, 2), (4, 4), (8, 8)]


def test_esp_switches():
    ir = espdsl.load("esp", M=20, N=20, K=4)
    ops = [n.op for n in ir.nodes()]
    assert ops.count("add") == 2 + 1          # s4, s8 and the residual
    no_hff = espdsl.load("esp", M=20, N=20, K=4, hff=False, residual=False)
    assert [n.op for n in no_hff.nodes()].count("add") == 0
    down = espdsl.load("esp", M=20, N=40, stride=2)
    assert down.output_shape == (1, 40, 28, 28)
    assert "act" in down.graph and "bn.act" not in down.graph  # the authors' strided form


def _every_spec():
    return ([("block", b) for b in espdsl.list_blocks()] +
            [("model", m) for m in espdsl.list_models()])


@pytest.mark.parametrize("kind, name", _every_spec(), ids=lambda v: str(v))
def test_every_spec_builds_runs_lints_traces_exports(kind, name, tmp_path):
    if kind == "block":
        params, size = block_params(name), (1, 100, 16, 16)
        params["M"] = 100
        params = {k: v for k, v in params.items()
                  if k in espdsl.open_spec(name, espdsl.registry.default_registry()).params}
    else:
        declared = espdsl.open_spec(name, espdsl.registry.default_registry()).params
        params = {k: 1 for k in ("alpha2", "alpha3") if k in declared}
        size = (1, 3, 64, 64)
    ir = espdsl.load(name, input_size=size, **params)
    ir.lint()
    model = espdsl.build_ir(ir).eval()
    x = torch.randn(size)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == ir.output_shape
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), y)
    scripted = torch.jit.trace(model, x, check_trace=False)   # compared just below
    torch.testing.assert_close(scripted(x), y)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False)
    import onnx
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    assert len(proto.graph.output) == 1
    import onnxruntime
    session = onnxruntime.InferenceSession(buf.getvalue())
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), y, rtol=1e-4, atol=1e-4)


def test_onnx_export_with_the_torch_export_based_exporter(tmp_path):
    model = espdsl.create_model("espnet", alpha3=1).eval()
    x = torch.randn(1, 3, 64, 64)
    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    program.save(str(tmp_path / "espnet.onnx"))
    import onnxruntime
    session = onnxruntime.InferenceSession(str(tmp_path / "espnet.onnx"))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-4)


def test_state_dict_keys_follow_spec_names_and_are_deterministic():
    a = list(espdsl.create_model("espnet", alpha3=3).state_dict())
    b = list(espdsl.create_model("espnet", alpha3=3).state_dict())
    assert a == b
    assert "encoder.level2.0.bn.bn.weight" in a and "encoder.level2_0.act.weight" in a
    assert "combine_l2_l3.1.d16.conv.weight" in a and "up_l2.1.act.weight" in a
    assert "classifier.weight" in a and "encoder.classifier.conv.weight" in a


@pytest.mark.parametrize("module", ["esp", "mobilenet", "shufflenet", "inception", "resnext",
                                    "asp", "resnet"])
def test_every_module_kind_drops_into_espnet_c(module):
    ir = espdsl.load("espnet_c", module=module, alpha2=2, alpha3=3)
    assert {s.block for s in ir.scopes.values() if s.parent in ("level2", "level3")} == {module}
    assert ir.output_shape == (1, 20, 64, 128)


def test_module_kind_is_a_parameter():
    # ESPNet-C with MobileNet modules in place of ESP at levels 2 and 3: no edit to the spec
    ir = espdsl.load("espnet_c", module="mobilenet", alpha2=2, alpha3=3)
    kinds = {s.block for s in ir.scopes.values() if s.parent in ("level2", "level3")}
    assert kinds == {"mobilenet"}
    assert ir.output_shape == (1, 20, 64, 128)
    # the strided down-sampling modules stay ESP
    assert ir.scopes["level2_0"].block == "esp"
