"""Writing a study's output folder, all or nothing.

``DIR/<row>.yaml`` for each row: its base spec with every parameter pinned to the value the row
ran with, renamed after the row, compiling alone (``espdsl compile DIR/<row>.yaml``). The blocks
it uses are copied into ``DIR/blocks/`` and named by ``blocks: [blocks]``, so the folder keeps
the exact definitions it was computed with; the registry accepts such a copy beside the
library's only while the two are identical, so a folder written by another version of espdsl
fails loudly instead of compiling to a different network. On request ``DIR/<row>.py`` and
``DIR/<row>.onnx``; always ``DIR/<study>.md`` (the report), ``.csv``, ``.json`` and the plots.

Everything is written into a temporary folder beside ``DIR`` and moved into place at the end;
an existing ``DIR`` is replaced only if it is empty or an earlier ``espdsl zoo`` output.
"""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..errors import UsageError
from ..files import created_folder
from .plot import draw
from .run import Built, StudyResult
from .table import format_result

EMITS = ("yaml", "py", "onnx")
MARKER = ".espdsl-zoo"


def write_study(result: StudyResult, out: str | Path, emit: Iterable[str] = ("yaml",), *,
                plot_formats: Iterable[str] = ("png",), dpi: int | None = None) -> list[Path]:
    """Write ``result`` into the folder ``out``; returns the files written (inside ``out``).

    >>> import pathlib, tempfile
    >>> from espdsl.study.run import run
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "t2c"
    >>> files = write_study(run("table2c"), out)
    >>> sorted(p.name for p in out.glob("*.yaml")), (out / "blocks" / "esp.yaml").is_file()
    ... # doctest: +NORMALIZE_WHITESPACE
    (['strided_conv.yaml', 'strided_conv_enc.yaml', 'strided_esp.yaml',
      'strided_esp_enc.yaml'], True)
    """
    out = Path(out)
    emit = list(dict.fromkeys(emit))
    bad = [e for e in emit if e not in EMITS]
    if bad:
        raise UsageError(f"unknown --emit kind '{bad[0]}'", None, f"choose from {', '.join(EMITS)}")
    _check_target(out)
    from .plot import DEFAULT_DPI, parse_formats
    plots = (parse_formats(",".join(plot_formats)), dpi or DEFAULT_DPI)
    return write_folder(out, lambda tmp: _write_into(result, tmp, emit, plots))


def write_folder(out: Path, fill: Callable[[Path], list[Path]]) -> list[Path]:
    """Fill a temporary folder beside ``out`` and move it into place (all or nothing); the
    folders above ``out`` are created as needed, and removed again if nothing is written."""
    with created_folder(out.parent, out):
        return _write_atomic(out, fill)


def _write_atomic(out: Path, fill: Callable[[Path], list[Path]]) -> list[Path]:
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}", None,
                         "choose an output folder you can write to") from None
    try:
        files = [f.relative_to(tmp) for f in fill(tmp)]
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _swap(tmp, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}", None,
                         "check the disk and the folder's permissions; nothing was written") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [out / f for f in files]


def _check_target(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"{out} exists and is not a folder", None, "give -o a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UsageError(f"{out} holds files that espdsl zoo did not write", None,
                             "choose a new or empty folder (zoo replaces only its own output)")


def _swap(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_into(result: StudyResult, folder: Path, emit: list[str],
                plots: tuple[list[str], int]) -> list[Path]:
    plot_formats, dpi = plots
    study = result.study
    files: list[Path] = []
    if result.parts:
        for part in result.parts:
            sub = folder / part.study.name
            sub.mkdir()
            files += _write_into(part, sub, emit, plots)
    else:
        documents: dict[str, Any] = {}
        for name, built in result.built.items():
            files += _emit_row(result, name, built, folder, emit, documents)
        for plot in study.plots:
            files += draw(result, plot, folder / plot.name, formats=plot_formats, dpi=dpi)
    for fmt, suffix in (("markdown", "md"), ("csv", "csv"), ("json", "json")):
        path = folder / f"{study.name}.{suffix}"
        text = format_result(result, fmt)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        files.append(path)
    (folder / MARKER).write_text(f"espdsl {__version__} zoo {study.name}\n", encoding="utf-8")
    return files


def _emit_row(result: StudyResult, name: str, built: Built, folder: Path, emit: list[str],
              documents: dict[str, Any]) -> list[Path]:
    files = []
    if "yaml" in emit:
        blocks = folder / "blocks"
        used = sorted({s.block for s in built.ir.scopes.values() if s.kind == "block"})
        for block in used:
            target = blocks / f"{block}.yaml"
            if not target.exists():
                blocks.mkdir(exist_ok=True)
                shutil.copyfile(result.registry.path(block), target)
                files.append(target)
        path = folder / f"{name}.yaml"
        path.write_text(pinned_spec(built, name, result.study.name, bool(used), documents),
                        encoding="utf-8")
        files.append(path)
    if "py" in emit:
        from ..codegen import to_python
        path = folder / f"{name}.py"  # named after the row, like its spec
        path.write_text(to_python(dataclasses.replace(built.ir, name=name)), encoding="utf-8")
        files.append(path)
    if "onnx" in emit:
        from ..export import export
        path = folder / f"{name}.onnx"
        export(built.model, built.ir, path)
        files.append(path)
    return files


def _round_trip() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.width, yaml.preserve_quotes = 4096, True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def pinned_spec(built: Built, name: str, study: str, has_blocks: bool,
                cache: dict[str, Any] | None = None) -> str:
    """The row's base spec renamed ``name`` with every parameter's default pinned to the value
    the row ran with (its input size too), comments and layout kept. ``cache`` keeps each base
    file's round-trip document between rows (every field written here is set for each row)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = _round_trip()
    spec, ir = built.spec, built.ir
    cache = {} if cache is None else cache
    if spec.file not in cache:
        cache[spec.file] = yaml.load(Path(spec.file).read_text(encoding="utf-8"))
    data = cache[spec.file]
    data[spec.kind] = name
    params = data.get("params") or {}
    for key, value in ir.params.items():
        if isinstance(params.get(key), dict):
            params[key]["default"] = value
        elif key in params:
            params[key] = value
    if spec.kind == "model":
        shape = ir.input_shape  # (N, C, H, W)
        size = CommentedSeq([shape[2], shape[3]])
        size.fa.set_flow_style()
        section = data.get("input")
        if section is None:
            section = CommentedMap()
            section.fa.set_flow_style()
            data.insert(list(data).index("nodes"), "input", section)
        section["channels"], section["size"] = shape[1], size
    if has_blocks:
        data["blocks"] = ["blocks"]
    elif "blocks" in data:
        del data["blocks"]
    data.yaml_set_start_comment(
        f"Written by `espdsl zoo {study}` (espdsl {__version__}): row '{name}', the {spec.kind} "
        f"'{spec.name}' with every\nparameter pinned to the value the row ran with. It compiles "
        f"alone: espdsl compile {name}.yaml\n"
        + ("blocks/ holds copies of the blocks it uses (accepted while identical to the "
           "library's).\n" if has_blocks else ""))
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
