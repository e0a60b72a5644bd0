"""The key-map dry run behind ``espdsl keymap``: build the spec, read a checkpoint, rewrite
its keys through a key map (:func:`espdsl.keymap.report`) and show every key.

>>> import espdsl, torch, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pth"
>>> torch.save(espdsl.create_model("espnet_c", alpha3=1).state_dict(), path)
>>> rep = keymap_dry_run("espnet_c", path, "none", alpha3=1)
>>> rep.ok, len(rep.rows) > 10
(True, True)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import UsageError
from .keymap import Report, key_maps, report


def keymap_dry_run(spec: str, weights: str | Path, map_name: str | None = None, *,
                   input_size: Sequence[int] | None = None, blocks: Iterable[str] = (),
                   **params: Any) -> Report:
    """The :class:`~espdsl.keymap.Report` of the checkpoint ``weights`` under the spec's key
    map ``map_name`` (None: the map that leaves the fewest mismatches; ``"none"``: no map)."""
    from .api import create_model
    from .weights import read_checkpoint, state_dict_from
    model = create_model(spec, input_size=input_size, blocks=blocks, **params)
    ckpt = {k: tuple(v.shape) for k, v in
            state_dict_from(read_checkpoint(weights)).items()}
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ir = model.espdsl_ir
    maps = {km.name: km for km in key_maps(ir.meta)}
    if map_name is not None and map_name != "none" and map_name not in maps:
        from .errors import did_you_mean
        raise UsageError(f"spec '{ir.name}' has no key map '{map_name}'", None,
                         did_you_mean(map_name, list(maps) + ["none"]) if maps
                         else "it has no 'weights:' section; use --map none")
    if map_name == "none":
        return report(None, ckpt, own, ir.params)
    if map_name is not None:
        return report(maps[map_name], ckpt, own, ir.params)
    tries = [report(None, ckpt, own, ir.params)] + [report(km, ckpt, own, ir.params)
                                                    for km in maps.values()]
    return min(tries, key=lambda r: len(r.unexpected) + len(r.missing) + len(r.shapes))


def _dims(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def render_report(rep: Report) -> str:
    """Every key's rewrite, then both sides' leftovers in full and the shape disagreements."""
    lines = [f"key map: {rep.keymap or 'none (keys as they are)'}"]
    width = max((len(src) for src, _, _ in rep.rows), default=0)
    for src, dst, rules in rep.rows:
        target = "(dropped)" if dst is None else dst
        how = "  [" + "; ".join(rules) + "]" if rules else ""
        lines.append(f"  {src:<{width}} -> {target}{how}")
    lines.append(f"checkpoint keys the model lacks ({len(rep.unexpected)}):")
    lines += [f"  {k}" for k in rep.unexpected]
    lines.append(f"model keys the checkpoint lacks ({len(rep.missing)}):")
    lines += [f"  {k}" for k in rep.missing]
    lines.append(f"shapes that disagree ({len(rep.shapes)}):")
    lines += [f"  {k}: checkpoint {_dims(a)} vs model {_dims(b)}" for k, a, b in rep.shapes]
    lines.append("fits: the checkpoint loads strictly" if rep.ok else
                 f"does not fit: {len(rep.unexpected)} unexpected, {len(rep.missing)} missing, "
                 f"{len(rep.shapes)} of another shape")
    return "\n".join(lines)
