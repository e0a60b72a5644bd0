"""Writing a space run's output folder, all or nothing.

``DIR/<space>.md`` (the report), ``DIR/rows.csv`` / ``rows.json`` / ``rows.md`` (every analysed
network), ``DIR/front.csv`` / ``front.json`` / ``front.md`` (the Pareto front), one PNG per
objective pair, and ``DIR/front/<name>.yaml``: each front network's base spec with every
parameter pinned, compiling alone (with copies of its blocks in ``DIR/front/blocks/``), as
``espdsl zoo`` writes its rows (:func:`espdsl.study.write.pinned_spec`). Everything is written
into a temporary folder and moved into place at the end; an existing ``DIR`` is replaced only if
it is empty or an earlier ``espdsl explore`` output.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from ..study.run import Built
from ..study.write import pinned_spec, write_folder
from .plot import draw_pair, plot_pairs
from .run import ExploreResult
from .table import format_rows, report

MARKER = ".espdsl-explore"


def write_space(result: ExploreResult, out: str | Path) -> list[Path]:
    """Write ``result`` into the folder ``out``; returns the files written."""
    out = Path(out)
    _check_target(out)
    return write_folder(out, lambda tmp: _write_into(result, tmp))


def _check_target(out: Path) -> None:
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist", None,
                         "create it first or choose another output folder")
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"{out} exists and is not a folder", None, "give -o a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UsageError(f"{out} holds files that espdsl explore did not write", None,
                             "choose a new or empty folder (explore replaces only its own output)")


def _write_into(result: ExploreResult, folder: Path) -> list[Path]:
    files: list[Path] = []
    rows = sorted(result.rows, key=lambda r: r["name"])
    front = result.front()
    for stem, chosen in (("rows", rows), ("front", front)):
        for fmt, suffix in (("markdown", "md"), ("csv", "csv"), ("json", "json")):
            path = folder / f"{stem}.{suffix}"
            text = format_rows(result, chosen, fmt)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            files.append(path)
    path = folder / f"{result.space.name}.md"
    path.write_text(report(result) + "\n", encoding="utf-8")
    files.append(path)
    files += _pinned(result, front, folder / "front")
    for x, y in plot_pairs(result):
        path = folder / f"{y}_vs_{x}.png"
        if draw_pair(result, x, y, path):
            files.append(path)
    (folder / MARKER).write_text(f"espdsl {__version__} explore {result.space.name}\n",
                                 encoding="utf-8")
    return files


def _pinned(result: ExploreResult, front: list[dict], folder: Path) -> list[Path]:
    """The front's networks as spec files that compile alone."""
    from ..resolve import resolve

    if not front:
        return []
    folder.mkdir()
    space, spec, reg = result.space, result.spec, result.registry
    files: list[Path] = []
    documents: dict = {}
    for row in front:
        ir = resolve(spec, result.settings(row), registry=reg,
                     input_size=space.input)
        used = sorted({s.block for s in ir.scopes.values() if s.kind == "block"})
        for block in used:
            target = folder / "blocks" / f"{block}.yaml"
            if not target.exists():
                target.parent.mkdir(exist_ok=True)
                shutil.copyfile(reg.path(block), target)
                files.append(target)
        path = folder / f"{row['name']}.yaml"
        text = pinned_spec(Built(spec, ir, None), row["name"], space.name, bool(used), documents)
        path.write_text(text.replace("`espdsl zoo ", "`espdsl explore "), encoding="utf-8")
        files.append(path)
    return files
