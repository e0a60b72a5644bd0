"""Architecture pictures with graphviz: a network like the paper's Fig. 4, a block like Fig. 1b.

:func:`to_digraph` returns a ``graphviz.Digraph`` (it displays itself in Jupyter);
:func:`render` writes .svg, .png, .pdf (through the real ``dot`` program) or .dot (no program
needed). What is drawn is the spec, not the traced op graph: one box per spec node, repeats
collapsed ("esp x 2 (alpha2)"), nested networks as clusters; ``expand`` opens blocks to show
their insides (see :mod:`espdsl.render.view` for the folding rule).

>>> import espdsl
>>> g = to_digraph("espnet")
>>> type(g).__name__, "esp x 8 (alpha3)" in g.source
('Digraph', True)
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..files import atomic_path

from ..ir import IR
from .view import Unit, View, default_opened, fold, resolve_expand

if TYPE_CHECKING:     # imported where used: the CLI reads FORMATS and ANNOTATIONS at start-up
    import graphviz

FORMATS = (".svg", ".png", ".pdf", ".dot")
ANNOTATIONS = ("shape", "params", "macs", "rf")
INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz "
                "(macOS), or see https://graphviz.org/download/; .dot output works without it")


def _load(spec_or_ir: Any, blocks: Iterable[str | Path], params: dict[str, Any]) -> tuple[IR, list[str]]:
    from ..loading import _registry, load
    models = _registry(blocks).names("model")
    if isinstance(spec_or_ir, IR):
        if params:
            raise UsageError("parameters cannot be applied to an already resolved IR", None,
                             "pass the spec name or path instead, or load it with the parameters")
        return spec_or_ir, models
    return load(spec_or_ir, blocks=blocks, **params), models


def _annotations(annotate: str | Iterable[str]) -> list[str]:
    items = [annotate] if isinstance(annotate, str) else list(annotate)
    names = [p.strip() for item in items for p in item.split(",") if p.strip()]
    for name in names:
        if name not in ANNOTATIONS:
            from ..errors import did_you_mean
            raise UsageError(f"unknown annotation '{name}'", None,
                             did_you_mean(name, ANNOTATIONS) + f" (choose from {', '.join(ANNOTATIONS)})")
    return names


def _notes(ir: IR, names: list[str]):
    from ..summary import scope_params
    from .style import shape_text
    analysis = None
    if {"macs", "rf"} & set(names):
        try:
            from ..analysis import analyze  # written alongside; optional until it lands
        except ImportError:
            raise UsageError("annotations 'macs' and 'rf' need espdsl.analysis, which this "
                             "install does not have", None, "use --annotate shape,params") from None
        analysis = analyze(ir)

    def notes(unit: Unit) -> list[str]:
        if unit.scope is None:
            return []
        out = []
        for name in names:
            if name == "shape":
                out.append(shape_text(unit.out_shape))
            elif name == "params":
                out.append(f"{scope_params(ir, unit.id):,} params")
            elif name == "macs":
                out.append(f"{_si(analysis.scope(unit.id).macs)} MACs")
            elif name == "rf":
                out.append(f"RF {_rf(analysis.scope(unit.id).rf)}")
        return out
    return notes


def _si(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:g}"


def _rf(rf: Any) -> str:
    if isinstance(rf, (tuple, list)):
        return "x".join(str(v) for v in rf) if len(set(rf)) > 1 else str(rf[0])
    return str(rf)


def view(spec_or_ir: Any, *, expand: str | Iterable[str] | None = None,
         blocks: Iterable[str | Path] = (), **params: Any) -> View:
    """The folded picture (units and edges) that :func:`to_digraph` draws.

    >>> v = view("espnet")
    >>> len(v.units), len(v.edges)
    (24, 29)
    """
    ir, models = _load(spec_or_ir, blocks, params)
    return fold(ir, resolve_expand(ir, expand, default_opened(ir, models)))


def to_digraph(spec_or_ir: Any, *, expand: str | Iterable[str] | None = None,
               rankdir: str = "TB", annotate: str | Iterable[str] = (),
               edge_labels: bool | None = None, blocks: Iterable[str | Path] = (),
               **params: Any) -> graphviz.Digraph:
    """Draw a spec (a zoo/block name, a YAML path, or a resolved :class:`IR`) as a Digraph.

    ``expand``: a node path, several, or ``"all"``, to draw those blocks' insides.
    ``annotate``: any of 'shape', 'params', 'macs', 'rf' (a list or comma-separated text).
    ``edge_labels``: write each edge's tensor shape on it (default: when annotating 'shape').

    >>> g = to_digraph("esp", M=100, N=100)
    >>> "conv 3x3, d=16" in g.source
    True
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise UsageError(f"unknown rankdir '{rankdir}'", None, "use TB (top to bottom) or LR")
    from .style import digraph
    names = _annotations(annotate)
    v = view(spec_or_ir, expand=expand, blocks=blocks, **params)
    return digraph(v, rankdir=rankdir, notes=_notes(v.ir, names) if names else None,
                   edge_labels="shape" in names if edge_labels is None else edge_labels)


def dot_program() -> str:
    """The path of Graphviz's ``dot``, or a :class:`UsageError` saying how to install it."""
    found = shutil.which("dot")
    if not found:
        raise UsageError("the Graphviz 'dot' program is not installed (not found on PATH)",
                         None, INSTALL_HINT)
    return found


def render(spec_or_ir: Any, path: str | Path, *, dpi: int | None = None,
           **options: Any) -> Path:
    """Write the picture to ``path``: .svg, .png or .pdf via ``dot``, or the .dot source.

    Options are those of :func:`to_digraph` (expand, rankdir, annotate, blocks, spec params).
    Nothing is written unless the whole picture is (the file appears atomically).

    >>> import tempfile, pathlib
    >>> out = render("br", pathlib.Path(tempfile.mkdtemp()) / "br.dot", M=16)
    >>> out.read_text().startswith("digraph br")
    True
    """
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown output type '{path.suffix}' for {path}", None,
                         "use .svg, .png, .pdf or .dot")
    program = dot_program() if fmt != ".dot" else None
    graph = to_digraph(spec_or_ir, **options)
    if dpi is not None:
        graph.graph_attr["dpi"] = str(dpi)
    source = graph.source
    if program is None:
        data = source.encode()
    else:
        proc = subprocess.run([program, f"-T{fmt[1:]}"], input=source.encode(),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise UsageError(f"dot failed to render {path}: {msg[0] if msg else 'no message'}",
                             None, "write .dot and inspect it, or report the spec that fails")
        data = proc.stdout
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


__all__ = ["to_digraph", "render", "view", "dot_program", "FORMATS", "ANNOTATIONS"]
