"""``fold_batchnorm``: fold inference batch norms into the convolutions that feed them.

A batch norm computes ``y = x * s + t`` per channel with ``s = gamma / sqrt(var + eps)`` and
``t = beta - mean * s``. When ``x`` is made by convolutions only, through concatenations (each
piece takes its slice of ``s`` and ``t``) and sums (every term is scaled by ``s``; ``t`` is added
once, to the first term's bias), and nothing else reads those intermediate values, the scale
goes into the convolution weights and the shift into their biases, and the batch norm vanishes.
That is exact (up to float rounding); anything else (a sum with a value used elsewhere, such as
ESP's residual input or its hierarchical sums, or a pooled image in a concatenation) is left
for :func:`~espdsl.passes.affine.batchnorm_to_affine`.

In ESPNet (alpha3 = 8) this folds 5 of 21 batch norms: the three after a convolution (level1,
the decoder's 3x3 conv, the ``br`` after the encoder's classifier), the one after ``up_l2``'s
transposed convolution, and ``combine_l2_l3``'s over the concatenation of ``level3_C`` and
``up_l3`` (torch.fx's conv-bn fusion finds 3: it only looks directly behind a convolution).

>>> import espdsl
>>> from espdsl.passes import Program
>>> ir = fold_batchnorm(Program(espdsl.load("cbr", M=3, N=8))).ir
>>> [n.op for n in ir.nodes()], ir.node("conv").attrs["bias"]
(['input', 'conv', 'prelu'], True)
"""
from __future__ import annotations

from typing import Any

from ..ir import IR, Node
from .rewrite import consumers, rebuild, replace

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
Term = tuple[str, int, bool]     # (convolution, its first channel in the batch norm, gets shift)


def _terms(ir: IR, users: dict[str, list[str]], name: str, offset: int, shift: bool) -> list[Term] | None:
    """The convolutions whose outputs make ``name`` linearly (see the module doc), or None."""
    node = ir.node(name)
    if len(users[name]) != 1:
        return None
    if node.op == "conv" or (node.op == "deconv" and node.attrs["groups"] == 1):
        return [(name, offset, shift)]
    if node.op == "concat":
        out, start = [], offset
        for src in node.inputs:
            got = _terms(ir, users, src, start, shift)
            if got is None:
                return None
            out += got
            start += ir.node(src).shape[0]
        return out
    if node.op == "add" and len(set(node.inputs)) == len(node.inputs):
        out = []
        for i, src in enumerate(node.inputs):
            got = _terms(ir, users, src, offset, shift and i == 0)
            if got is None:
                return None
            out += got
        return out
    return None


def bn_affine(state: dict[str, Any], name: str, eps: float) -> tuple[Any, Any]:
    """The per-channel scale ``s`` and shift ``t`` of batch norm ``name`` in ``state``."""
    gamma, beta = state[f"{name}.weight"], state[f"{name}.bias"]
    mean, var = state[f"{name}.running_mean"], state[f"{name}.running_var"]
    scale = gamma / (var + eps).sqrt()
    return scale, beta - mean * scale


def _fold_weights(state: dict[str, Any], node: Node, offset: int, shift: bool,
                  scale: Any, bias: Any) -> None:
    out = node.attrs["out"]
    s, t = scale[offset:offset + out], bias[offset:offset + out]
    weight = state[f"{node.name}.weight"]
    if node.op == "conv":        # [out, in / groups, k, k]
        state[f"{node.name}.weight"] = weight * s.view(-1, 1, 1, 1)
    else:                        # transposed: [in, out, k, k]
        state[f"{node.name}.weight"] = weight * s.view(1, -1, 1, 1)
    old = state.get(f"{node.name}.bias")
    new = old * s if old is not None else s * 0
    state[f"{node.name}.bias"] = new + t if shift else new


def fold_batchnorm(program: Any) -> Any:
    """Fold every batch norm that is exactly foldable; repeat until none is left."""
    from . import Program
    ir, state = program.ir, dict(program.state) if program.state is not None else None
    while True:
        users = consumers(ir)
        folds: dict[str, list[Term]] = {}
        taken: set[str] = set()
        for node in ir.nodes():
            if node.op != "batchnorm":
                continue
            terms = _terms(ir, users, node.inputs[0], 0, True)
            if terms and not taken & {t[0] for t in terms}:
                folds[node.name] = terms
                taken.update(t[0] for t in terms)
        if not folds:
            return Program(ir, state)
        biased = {conv for terms in folds.values() for conv, _, _ in terms}
        if state is not None:
            for bn, terms in folds.items():
                scale, shift = bn_affine(state, bn, ir.node(bn).attrs["eps"])
                for conv, offset, gets_shift in terms:
                    _fold_weights(state, ir.node(conv), offset, gets_shift, scale, shift)
                for key in BN_KEYS:
                    state.pop(f"{bn}.{key}", None)
        nodes = [replace(n, attrs={**n.attrs, "bias": True}) if n.name in biased else n
                 for n in ir.nodes() if n.name not in folds]
        ir = rebuild(ir, nodes, {bn: ir.node(bn).inputs[0] for bn in folds})
