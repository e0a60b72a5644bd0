"""Footprints against autograd: the gradient of one output pixel of an all-ones network.

The reference below evaluates the IR with torch's own functional ops in float64: every
convolution weight 1, batch norms and activations the identity, every pooling a sum over its
window, an up-sampling's interpolation weights replaced by 1 where they are not zero, mul like
add. The gradient of one output pixel with respect to the input, summed over the input's
channels, counts the paths from each input pixel; the footprint must equal it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import espdsl
from espdsl.analysis.footprint import RULES, footprint_ir
from espdsl.errors import UsageError
from espdsl.ops import pair, slice_range

from conftest import block_params

PASS_THROUGH = {"batchnorm", "affine", "prelu", "relu", "relu6", "hardsigmoid", "hardswish",
                "sigmoid", "silu", "dropout", "identity"}


def _support_resample(x: torch.Tensor, size: tuple[int, int], kwargs: dict) -> torch.Tensor:
    """``F.interpolate`` with every non-zero interpolation weight replaced by 1 (the weights
    read off by interpolating each basis image)."""
    n, c, h, w = x.shape
    basis = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    weights = (F.interpolate(basis, **kwargs).reshape(h * w, -1) != 0).to(torch.float64)
    return (x.reshape(n, c, h * w) @ weights).reshape(n, c, *size)


def ones_network(ir, x: torch.Tensor, upto: str) -> dict[str, torch.Tensor]:
    """Values of every node up to ``upto`` in the all-ones network."""
    values = {"input": x}
    for node in ir.nodes():
        if node.op == "input":
            continue
        a, ins = node.attrs, [values[i] for i in node.inputs]
        op = node.op
        if op == "conv":
            g, cin = a["groups"], ins[0].shape[1]
            weight = torch.ones(a["out"], cin // g, *pair(a["kernel"]), dtype=torch.float64)
            y = F.conv2d(ins[0], weight, None, pair(a["stride"]), pair(a["padding"]),
                         pair(a["dilation"]), g)
        elif op == "deconv":
            g, cin = a["groups"], ins[0].shape[1]
            weight = torch.ones(cin, a["out"] // g, *pair(a["kernel"]), dtype=torch.float64)
            y = F.conv_transpose2d(ins[0], weight, None, pair(a["stride"]), pair(a["padding"]),
                                   pair(a["output_padding"]), g, pair(a["dilation"]))
        elif op == "linear":
            y = ins[0] @ torch.ones(ins[0].shape[1], a["out"], dtype=torch.float64)
        elif op in PASS_THROUGH:
            y = ins[0]
        elif op in ("avgpool", "maxpool"):
            y = F.avg_pool2d(ins[0], pair(a["kernel"]), pair(a["stride"] or a["kernel"]),
                             pair(a["padding"]), count_include_pad=True, divisor_override=1)
        elif op in ("global_avgpool", "global_maxpool"):
            y = ins[0].sum(dim=(2, 3), keepdim=a["keepdims"])
        elif op == "flatten":
            y = ins[0].flatten(1)
        elif op == "concat":
            y = torch.cat(ins, 1)
        elif op in ("add", "mul"):
            y = ins[0]
            for other in ins[1:]:
                y = y + other
        elif op == "slice":
            start, stop = slice_range(a, ins[0].shape[1])
            y = ins[0][:, start:stop]
        elif op == "shuffle":
            n, c, h, w = ins[0].shape
            y = ins[0].reshape(n, a["groups"], c // a["groups"], h, w).transpose(1, 2)
            y = y.reshape(n, c, h, w)
        elif op == "upsample":
            kwargs = {"mode": a["mode"]}
            if len(ins) == 2:
                kwargs["size"] = tuple(ins[1].shape[2:])
            else:
                kwargs["scale_factor"] = a["scale"]
            if a["mode"] == "bilinear":
                kwargs["align_corners"] = False
            y = _support_resample(ins[0], tuple(node.shape[1:]), kwargs)
        elif op == "depth_to_space":
            s = a["factor"]
            y = ins[0].unflatten(1, (s, s, -1)).permute(0, 3, 4, 1, 5, 2).flatten(4, 5).flatten(2, 3)
        else:
            raise AssertionError(f"the reference has no rule for {op}")
        values[node.name] = y
        if node.name == upto:
            break
    return values


def autograd_counts(ir, node: str, at, start: int, stop: int) -> np.ndarray:
    x = torch.zeros(ir.input_shape, dtype=torch.float64, requires_grad=True)
    y = ones_network(ir, x, node)[node]
    pixel = y[0, start:stop] if y.dim() == 2 else y[0, start:stop, at[0], at[1]]
    (grad,) = torch.autograd.grad(pixel.sum(), x)
    return grad[0].sum(0).numpy()


def assert_matches(ir, node=None, at=None, channels=None, rel=0.0):
    fp = footprint_ir(ir, node, at, channels)
    c = ir.node(fp.node).shape[0]
    start, stop = (0, c) if channels is None else (channels.start, channels.stop)
    expected = autograd_counts(ir, fp.node, fp.at, start, stop)
    assert np.array_equal(fp.counts != 0, expected != 0), "supports differ"
    if rel == 0.0:
        assert fp.exact
        assert fp.counts.dtype == np.int64
        assert np.array_equal(fp.counts, expected.astype(np.int64))
    else:
        np.testing.assert_allclose(fp.counts.astype(np.float64), expected, rtol=rel, atol=0)
    return fp


# Blocks whose counts pass 2^53 whatever their input channels (fixed inner widths): float64
# autograd itself rounds there, so they are compared to 1e-12 relative and against the exact
# Python-integer footprint.
BEYOND_2_53 = {"erfnet_decoder"}


def _small(name: str) -> dict:
    """Fig. 3g's settings with 50 channels (100 out for the down-samplers that grow), so that
    every count stays below 2^53 and float64 autograd is exact too."""
    params = block_params(name)
    scale = {k: v // 2 for k, v in params.items() if k in ("M", "N")}
    return {**params, **scale}


def _cases():
    for name in espdsl.list_blocks():
        params = _small(name)
        if name == "esp":
            for K in range(2, 9):
                for hff in (True, False):
                    yield name, {**params, "K": K, "hff": hff}
        elif "hff" in espdsl.load(name, **params).params:
            for hff in (True, False):
                yield name, {**params, "hff": hff}
        else:
            yield name, params


@pytest.mark.parametrize("name, params", list(_cases()),
                         ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items() if k in ("K", "hff")))
def test_blocks_equal_autograd(name, params):
    ir = espdsl.load(name, input_size=(14, 18), **params)
    h, w = ir.node(ir.output).shape[1:] if len(ir.node(ir.output).shape) == 3 else (1, 1)
    for at in {(h // 2, w // 2), (0, w - 1)}:      # the centre and a corner (borders)
        if name in BEYOND_2_53:
            fp = assert_matches(ir, at=at, rel=1e-12)
            assert fp.counts.max() >= 2.0 ** 53
            ints = footprint_ir(ir, at=at, exact=True).counts
            np.testing.assert_allclose(ints.astype(np.float64), fp.counts, rtol=1e-13)
        else:
            assert_matches(ir, at=at)


def test_channel_range_and_inner_node():
    ir = espdsl.load("esp", M=40, N=40, K=4, input_size=(17, 17))
    assert_matches(ir, "d4", (3, 9), range(2, 7))
    fp = footprint_ir(ir, channels="groups")
    total = sum(m for _, m in fp.groups)
    assert np.array_equal(total, fp.counts)
    assert np.array_equal(fp.counts, footprint_ir(ir).counts)


def test_espnet_c_relative():
    ir = espdsl.load("espnet_c", input_size=(64, 128))
    fp = assert_matches(ir, rel=1e-9)
    assert not fp.exact and fp.counts.dtype == np.float64
    assert_matches(ir, at=(1, 14), rel=1e-9)


def test_network_with_decoder_and_resampling():
    # deconvolutions (espnet), bilinear up-sampling and pooling (erfnet_decoder, pyramid)
    ir = espdsl.load("espnet", input_size=(32, 64), alpha3=2)
    assert_matches(ir, at=(7, 40), rel=1e-9)
    ir = espdsl.load("mobilenet_v2", input_size=(32, 32))
    assert_matches(ir, at=None, rel=1e-9)


def test_exact_python_ints_agree():
    ir = espdsl.load("esp", M=8, N=8, K=3, input_size=(12, 12))
    a, b = footprint_ir(ir), footprint_ir(ir, exact=True)
    assert b.counts.dtype == object
    assert np.array_equal(a.counts, b.counts.astype(np.int64))


def test_single_dilated_conv_is_fig2a():
    # Fig. 2a: one active pixel through a 3x3 kernel of dilation 2 leaves a grid of holes
    fp = espdsl.footprint("c", M=1, N=1, n=3, dilation=2, input_size=(11, 11))
    assert fp.box == (3, 7, 3, 7)
    assert fp.support == 9 and fp.holes == 16
    assert sorted(zip(*np.nonzero(fp.counts))) == [(y, x) for y in (3, 5, 7) for x in (3, 5, 7)]


def test_block_source():
    ir = espdsl.load("espnet_a", input_size=(320, 320), alpha2=1, alpha3=1)
    fp = footprint_ir(ir, "level3.0", source="block")
    assert fp.source == ir.scopes["level3.0"].inputs[0]
    assert fp.counts.shape == ir.node(fp.source).shape[1:]
    assert fp.box[1] - fp.box[0] + 1 == 33      # one ESP module's field, K = 5


@pytest.mark.parametrize("kwargs, message", [
    ({"node": "levl3"}, r"^error: no node 'levl3' in 'espnet_a'; hint: did you mean"),
    ({"at": (99, 0)}, r"^error: pixel 99,0 is outside 'classifier.conv' \(8x8\)"),
    ({"channels": (5, 50)}, r"^error: channels 5:50 are outside the node's 20 channels"),
    ({"node": "level1", "channels": "groups"}, r"^error: 'level1.act' is not made by a concat"),
])
def test_bad_arguments(kwargs, message):
    ir = espdsl.load("espnet_a", input_size=(64, 64), alpha2=1, alpha3=1)
    with pytest.raises(UsageError, match=message):
        footprint_ir(ir, **kwargs)


def test_unknown_op_is_reported(monkeypatch):
    monkeypatch.delitem(RULES, "prelu")
    ir = espdsl.load("cbr", M=3, N=4, input_size=(8, 8))
    with pytest.raises(UsageError, match=r"footprint has no rule for op 'prelu' \(node 'act'\)"):
        footprint_ir(ir)
