"""The per-node summary that ``espdsl compile`` prints: plain rows, formatted apart.

>>> import espdsl
>>> rows, totals = summarize(espdsl.load("espnet_c", alpha3=3))
>>> rows[0]["name"], rows[0]["block"], rows[0]["params"]
('level1', 'cbr', 480)
>>> totals["params"]
187529
"""
from __future__ import annotations

import json
from typing import Any

from .ir import IR, Scope


def scope_params(ir: IR, path: str) -> int:
    """Trainable parameters of the primitives inside a scope ('' for the whole network)."""
    return sum(ir.node_params(node) for node in ir.nodes_in(path))


def block_label(scope: Scope) -> str:
    """What a spec node is: 'esp', 'esp x 2 (alpha2)', 'seq', 'concat', ..."""
    if scope.kind == "repeat":
        expr = f" ({scope.repeat_expr})" if scope.repeat_expr and not scope.repeat_expr.isdigit() else ""
        return f"{scope.block} x {scope.repeat}{expr}"
    if scope.kind == "seq":
        return "seq"
    return scope.block


def summarize(ir: IR) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per top-level spec node (name, block, channels, output shape, params) and totals."""
    rows = []
    for scope in ir.top_level():
        rows.append({
            "name": scope.path,
            "block": block_label(scope),
            "in_channels": [s[0] for s in scope.in_shapes],
            "out_channels": scope.out_shape[0],
            "shape": [ir.batch, *scope.out_shape],
            "params": scope_params(ir, scope.path),
        })
    totals = {
        "name": ir.name,
        "params": scope_params(ir, ""),
        "input": list(ir.input_shape),
        "output": list(ir.output_shape),
        "parameters": dict(ir.params),
        "assumed_input": ir.meta.get("assumed_input"),
        "pruned": [{"path": p["path"], "params": p["params"]} for p in ir.meta.get("pruned", [])],
    }
    return rows, totals


def format_summary(rows: list[dict], totals: dict, fmt: str = "table") -> str:
    """Render the summary as a terminal table or JSON."""
    import textwrap

    from tabulate import tabulate  # 25 ms to import: only when a table is printed
    if fmt == "json":
        return json.dumps({"model": totals["name"], "parameters": totals["parameters"],
                           "input": totals["input"], "output": totals["output"],
                           "params": totals["params"], "pruned": totals.get("pruned", []),
                           "nodes": rows}, indent=2)
    table = [[r["name"], r["block"],
              f"{'+'.join(map(str, r['in_channels']))} -> {r['out_channels']}",
              "x".join(map(str, r["shape"])), f"{r['params']:,}"] for r in rows]
    from .paramtext import titled
    head = titled(totals["name"], totals["parameters"])
    body = tabulate(table, headers=["node", "block", "channels", "output", "params"],
                    colalign=("left", "left", "left", "left", "right"))
    inp, out = "x".join(map(str, totals["input"])), "x".join(map(str, totals["output"]))
    assumed = totals.get("assumed_input")
    note = "\n" + "\n".join(textwrap.wrap(f"note: {assumed}", 100)) if assumed else ""
    text = (f"{head}\n{body}\n\ninput {inp} -> output {out}{note}\n"
            f"total trainable parameters: {totals['params']:,}")
    pruned = totals.get("pruned")
    if pruned:
        from .prune import pruned_text
        text += "\n" + pruned_text(pruned)
    return text


def params_by_kind(ir: IR) -> dict[str, int]:
    """Trainable parameters by kind (conv: weights and biases of convolutions, linear layers and
    transposed convolutions; bn; affine; prelu; ...), sorted by name.

    >>> import espdsl
    >>> params_by_kind(espdsl.load("cbr", M=3, N=16))
    {'bn': 32, 'conv': 432, 'prelu': 16}
    """
    from collections import Counter

    from .ops import OPS
    counts: Counter = Counter()
    for node in ir.nodes():
        if node.op == "input":
            continue
        ins = [ir.node(i).shape for i in node.inputs]
        for kind, n in OPS[node.op].param_counts(node.attrs, ins, node.shape).items():
            counts["conv" if kind == "bias" else kind] += n
    return {k: counts[k] for k in sorted(counts) if counts[k]}


def folding_note(trained: IR, optimized: IR) -> str:
    """How the inference passes changed the parameter count, kind by kind.

    >>> import espdsl
    >>> print(folding_note(espdsl.load("espnet"), espdsl.optimize("espnet")))  # doctest: +NORMALIZE_WHITESPACE
    parameters: 364,569 as trained (bn 3,772, conv 358,931, prelu 1,866); 364,627 after folding
    batch norms into the convolutions before them (scale into the weights, shift into a bias) or
    into per-channel affines (affine 3,540, conv 359,221, prelu 1,866)
    """
    import textwrap

    def kinds(ir: IR) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in params_by_kind(ir).items())
    text = (f"parameters: {scope_params(trained, ''):,} as trained ({kinds(trained)}); "
            f"{scope_params(optimized, ''):,} after folding batch norms into the convolutions "
            f"before them (scale into the weights, shift into a bias) or into per-channel affines "
            f"({kinds(optimized)})")
    return "\n".join(textwrap.wrap(text, 100, break_on_hyphens=False))
