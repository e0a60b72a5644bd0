"""``espdsl compare``: Fig. 3g reproduced, every module's formulas beside what it compiles to.

One row per module with exactly the keys of :data:`COLUMNS` plus ``module``:

* ``params_formula``, ``memory_mb_formula``, ``rf_formula``: the paper's formula evaluated at
  the settings (``None`` for a block Fig. 3g has no formula for);
* ``params``: the convolution weights of the block as compiled; ``memory_mb``: the outputs of
  its convolutions (Fig. 3g's convention); ``rf``: its receptive field; ``macs``: its
  convolution MACs; all from :func:`espdsl.analyze`;
* ``paper``: what Fig. 3g prints for the module (``None`` unless the block is configured as in
  Fig. 3g), with ``differs``: where the print disagrees with the paper's own formula.

>>> rows = compare(["mobilenet"])
>>> rows[0]["params_formula"], rows[0]["params"], rows[0]["paper"]["params"]
(10900, 10900, 11009)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..loading import _registry
from ..errors import UsageError
from ..resolve import resolve
from .explain import explain
from .formulas import FIG3G_ENV, FIG3G_PARAMS, FIG3G_SIZE, FORMULAS, MODULES, differences, formula_env
from .walk import analyze_ir

COLUMNS = ["params_formula", "params", "memory_mb_formula", "memory_mb", "rf_formula", "rf",
           "macs", "paper"]


def compare(modules: Sequence[str] | None = None, params: dict[str, Any] | None = None,
            size: tuple[int, int] | None = None,
            blocks: Iterable[str | Path] = (), gridding: bool = False) -> list[dict[str, Any]]:
    """Fig. 3g's rows for ``modules`` (default: esp, mobilenet, shufflenet, inception, resnext,
    asp, resnet) with Fig. 3g's settings overridden by ``params`` at ``size`` (H, W).

    With ``gridding``, each row also has ``gridding``: :func:`.gridding.summary` of the
    footprint of the centre pixel (:mod:`.gridding`). A parameter a block does not declare is
    not passed to it. A module whose formula names
    ``settings`` of its own (the down-samplers' N = 2M) takes them before ``params``.

    >>> [(r["module"], r["params_formula"], r["params"]) for r in compare(["eesp", "se"])]
    [('eesp', 3300, 3300), ('se', 5000, 5000)]
    """
    reg = _registry(blocks)
    size = tuple(size or FIG3G_SIZE)
    if len(size) != 2:
        raise UsageError(f"bad size {'x'.join(map(str, size))}", None, "write H x W, e.g. 56x56")
    rows = []
    for module in modules or MODULES:
        spec = reg.get(module)
        if spec.kind != "block":
            raise UsageError(f"'{module}' is a model, not a block", None,
                             "compare takes blocks: " + ", ".join(reg.names("block")))
        formula = FORMULAS.get(module)
        settings = {**FIG3G_PARAMS, **(formula.settings if formula else {}), **(params or {})}
        declared = {k: v for k, v in settings.items() if k in spec.params}
        ir = resolve(spec, declared, registry=reg, input_size=size)
        totals = analyze_ir(ir).totals
        row: dict[str, Any] = {"module": module}
        env = formula_env({**declared, **ir.params}, size) if formula else None
        row["params_formula"] = formula.params(env) if formula else None
        row["params"] = totals.params_by_kind.get("conv", 0)
        row["memory_mb_formula"] = formula.memory_mb(env) if formula else None
        row["memory_mb"] = totals.memory.fig3g_mb
        row["rf_formula"] = formula.rf(env) if formula else None
        row["rf"] = totals.rf
        row["macs"] = totals.macs
        row["paper"] = None
        row["notes"] = explain(module, env, row) if formula else {}
        if formula and formula.paper and _as_in_fig3g(env, spec.params):
            row["paper"] = {"params": formula.paper.params, "memory_mb": formula.paper.memory_mb,
                            "rf": formula.paper.rf, "differs": differences(formula)}
        if gridding:     # the summed footprint's holes and each channel group's lattice
            from .gridding import gridding_ir, summary
            row["gridding"] = summary(gridding_ir(ir))
        rows.append(row)
    return rows


def _as_in_fig3g(env: dict[str, int], declared: Iterable[str]) -> bool:
    """Is the module configured as Fig. 3g printed it (the symbols it uses, and W, H)?"""
    keys = (set(declared) & set(FIG3G_ENV)) | {"W", "H"}
    return all(env.get(k) == FIG3G_ENV[k] for k in keys)
