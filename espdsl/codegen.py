"""Generating a standalone PyTorch source file from the IR (``espdsl compile SPEC -o net.py``).

The file needs only torch; its module hierarchy and ``state_dict`` keys are the same as the
built GraphModule's, so weights move between the two. Written from ``templates/module.py.j2``.
One :class:`PyOp` per op in :data:`CODEGEN` says how it is written: the expression in
``forward``, the module it makes in ``__init__`` (ops with state) and the helper it needs.
An optimized IR's layout (``ir.meta["layout"]``) is written into the file too; its memory plan
is a build-time matter and is not (the file is a plain eager module).

>>> import espdsl
>>> source = to_python(espdsl.load("cbr", M=3, N=16))
>>> "self.conv = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)" in source
True
"""
from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2

from . import __version__
from .errors import EspdslError
from .ir import IR, Node, class_name
from .ops import pair
from .passes.layout import layout_of
from .registry import data_dir
from .summary import scope_params


def _access(path: str) -> str:
    """``encoder.level2.0.c1`` -> ``self.encoder.level2[0].c1``."""
    out = "self"
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


@dataclass(frozen=True)
class PyOp:
    """How one op is written in the generated source."""

    call: Callable[[Node, list[str]], str]              # the forward expression
    module: Callable[[Node, int], str] | None = None    # __init__ expression (ops with state)
    helper: str | None = None                           # a helper the template must define


def _conv_module(node: Node, cin: int) -> str:
    a = node.attrs
    cls = "nn.Conv2d" if node.op == "conv" else "nn.ConvTranspose2d"
    args = [str(cin), str(a["out"]), str(a["kernel"]), f"stride={a['stride']}",
            f"padding={a['padding']}"]
    if node.op == "deconv" and a["output_padding"] != 0:
        args.append(f"output_padding={a['output_padding']}")
    if a["dilation"] != 1:
        args.append(f"dilation={a['dilation']}")
    if a["groups"] != 1:
        args.append(f"groups={a['groups']}")
    args.append(f"bias={a['bias']}")
    return f"{cls}({', '.join(args)})"


def _own(node: Node, args: list[str]) -> str:
    return f"{_access(node.name)}({args[0]})"


def _upsample(node: Node, args: list[str]) -> str:
    a = node.attrs
    extra = ", align_corners=False" if a["mode"] in ("bilinear", "bicubic") else ""
    size = f"size={args[1]}.shape[2:]" if len(args) == 2 else f"scale_factor={a['scale']!r}"
    return f"F.interpolate({args[0]}, {size}, mode={a['mode']!r}{extra})"


def _global(pool: str) -> Callable[[Node, list[str]], str]:
    def call(node: Node, args: list[str]) -> str:
        pooled = f"{pool}({args[0]}, 1)"
        return pooled if node.attrs["keepdims"] else f"torch.flatten({pooled}, 1)"
    return call


def _dropout_module(node: Node, cin: int) -> str:
    cls = "nn.Dropout2d" if node.attrs["channelwise"] else "nn.Dropout"
    return f"{cls}(p={node.attrs['p']!r})"


def _pad(node: Node, args: list[str]) -> str:
    ph, pw = pair(node.attrs["padding"])
    value = f", value={node.attrs['value']!r}" if node.attrs["mode"] == "constant" else ""
    return f"F.pad({args[0]}, ({pw}, {pw}, {ph}, {ph}), mode={node.attrs['mode']!r}{value})"


def _function(name: str) -> PyOp:
    return PyOp(lambda n, args: f"{name}({args[0]})")


CODEGEN: dict[str, PyOp] = {
    "conv": PyOp(_own, _conv_module),
    "deconv": PyOp(_own, _conv_module),
    "batchnorm": PyOp(_own, lambda n, c: f"nn.BatchNorm2d({c}, eps={n.attrs['eps']!r}, "
                                         f"momentum={n.attrs['momentum']!r})"),
    "prelu": PyOp(_own, lambda n, c: f"nn.PReLU({1 if n.attrs['shared'] else c}, "
                                     f"init={n.attrs['init']!r})"),
    "affine": PyOp(_own, lambda n, c: f"Affine({c})", helper="Affine"),
    "linear": PyOp(_own, lambda n, c: f"nn.Linear({c}, {n.attrs['out']}, bias={n.attrs['bias']})"),
    "dropout": PyOp(_own, _dropout_module),
    "relu": _function("F.relu"),
    "relu6": _function("F.relu6"),
    "hardsigmoid": _function("F.hardsigmoid"),
    "hardswish": _function("F.hardswish"),
    "sigmoid": _function("torch.sigmoid"),
    "silu": _function("F.silu"),
    "avgpool": PyOp(lambda n, args: f"F.avg_pool2d({args[0]}, {n.attrs['kernel']}, "
                                    f"{n.attrs['stride']}, {n.attrs['padding']}, "
                                    f"count_include_pad={n.attrs['count_include_pad']})"),
    "maxpool": PyOp(lambda n, args: f"F.max_pool2d({args[0]}, {n.attrs['kernel']}, "
                                    f"{n.attrs['stride']}, {n.attrs['padding']})"),
    "global_avgpool": PyOp(_global("F.adaptive_avg_pool2d")),
    "global_maxpool": PyOp(_global("F.adaptive_max_pool2d")),
    "flatten": PyOp(lambda n, args: f"torch.flatten({args[0]}, 1)"),
    "concat": PyOp(lambda n, args: f"torch.cat([{', '.join(args)}], 1)"),
    "add": PyOp(lambda n, args: " + ".join(args)),
    "mul": PyOp(lambda n, args: " * ".join(args)),
    "slice": PyOp(lambda n, args: "{}[:, {}:{}]".format(
        args[0], n.attrs["start"] or "", "" if n.attrs["stop"] is None else n.attrs["stop"])),
    "shuffle": PyOp(lambda n, args: f"channel_shuffle({args[0]}, {n.attrs['groups']})",
                    helper="channel_shuffle"),
    "upsample": PyOp(_upsample),
    "depth_to_space": PyOp(lambda n, args: f"depth_to_space({args[0]}, {n.attrs['factor']})",
                           helper="depth_to_space"),
    "stochastic_depth": PyOp(_own, lambda n, c: f"StochasticDepth({n.attrs['p']!r}, "
                                                f"{n.attrs['mode']!r})", helper="StochasticDepth"),
    "layernorm": PyOp(_own, lambda n, c: f"LayerNorm2d({c}, eps={n.attrs['eps']!r})",
                      helper="LayerNorm2d"),
    "groupnorm": PyOp(_own, lambda n, c: f"nn.GroupNorm({n.attrs['groups']}, {c}, "
                                         f"eps={n.attrs['eps']!r})"),
    "scale": PyOp(_own, lambda n, c: f"ChannelScale({c}, {n.attrs['init']!r})",
                  helper="ChannelScale"),
    "gelu": PyOp(lambda n, args: f"F.gelu({args[0]}, approximate={n.attrs['approximate']!r})"),
    "softmax": PyOp(lambda n, args: f"F.softmax({args[0]}, 1)"),
    "tanh": _function("torch.tanh"),
    "pad": PyOp(_pad),
}
HELPERS = ("channel_shuffle", "depth_to_space", "Affine", "StochasticDepth", "LayerNorm2d",
           "ChannelScale")


def doc_text(text: object) -> str:
    r"""Any text made safe inside a triple-quoted docstring: quotes and backslashes escaped,
    every character that is not printable (newlines, NUL, terminal escapes, line separators)
    written as its escape; printable unicode stays as it is.

    >>> print(doc_text('say "hi"\\ \n ×'))
    say \"hi\"\\ \n ×
    """
    out = []
    for c in str(text):
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)


def _shown_path(source: str) -> str:
    """The spec path relative to the working folder when it is below it, else its file name."""
    path = Path(source)
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def to_python(ir: IR) -> str:
    """The source of a standalone ``nn.Module`` equivalent to ``build(ir)``."""
    ops = [n for n in ir.nodes() if n.op != "input"]
    stateful = [n for n in ops if CODEGEN[n.op].module is not None]
    children: dict[str, list[str]] = {}  # container path -> child names, in creation order
    for node in stateful:
        parts = node.name.split(".")
        for i in range(1, len(parts)):
            kids = children.setdefault(".".join(parts[:i]), [])
            if parts[i] not in kids:
                kids.append(parts[i])
    init: list[str] = []
    made: set[str] = set()
    for node in stateful:
        parts = node.name.split(".")
        for i in range(1, len(parts)):
            path = ".".join(parts[:i])
            if path in made:
                continue
            made.add(path)
            kids = children[path]
            if all(k.isdigit() for k in kids):  # repeat and seq groups: a ModuleList, like the authors'
                init.append(f"{_access(path)} = nn.ModuleList(nn.Module() for _ in range({len(kids)}))")
                made.update(f"{path}.{k}" for k in kids)
            else:
                init.append(f"{_access(path)} = nn.Module()")
        cin = ir.node(node.inputs[0]).shape[0]
        init.append(f"{_access(node.name)} = {CODEGEN[node.op].module(node, cin)}")

    names: dict[str, str] = {"input": "x"}
    taken = {"x", "self", "torch", "nn", "F", *HELPERS}
    forward: list[str] = []
    if ir.meta.get("layout") == "channels_last":
        init.append("self.to(memory_format=torch.channels_last)")
        if layout_of(ir, "input"):
            forward.append("x = x.contiguous(memory_format=torch.channels_last)")
    for node in ops:
        var = re.sub(r"\W", "_", node.name)
        if keyword.iskeyword(var):
            var += "_"
        base, i = var, 1
        while var in taken:
            var, i = f"{base}_{i}", i + 1
        taken.add(var)
        names[node.name] = var
        args = [names[s] for s in node.inputs]
        if layout_of(ir, node.name) and node.op != "conv":   # where NHWC begins
            args = [a if layout_of(ir, s) else f"{a}.contiguous(memory_format=torch.channels_last)"
                    for s, a in zip(node.inputs, args)]
        forward.append(f"{var} = {CODEGEN[node.op].call(node, args)}")
    helpers = sorted({CODEGEN[n.op].helper for n in ops if CODEGEN[n.op].helper})
    params = ", ".join(f"{k}={v!r}" for k, v in ir.params.items()) or "no parameters"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["doc"] = doc_text  # every text from a spec or a command line, in the docstrings
    optimized = ir.meta.get("passes")
    source = env.get_template("module.py.j2").render(
        title=f"{class_name(ir.name)}: the {ir.kind} '{ir.name}' as a plain PyTorch module.",
        version=__version__, source=_shown_path(ir.source),
        params_text=params, input_shape="x".join(map(str, ir.input_shape)),
        output_shape="x".join(map(str, ir.output_shape)), n_params=scope_params(ir, ""),
        class_name=class_name(ir.name), doc=f"{ir.name} ({params}).", init_lines=init,
        forward_lines=forward, output=names[ir.output], helpers=helpers,
        optimized=", ".join(optimized) if optimized else "",
        input_tuple=", ".join(map(str, ir.input_shape)))
    try:  # the code lines hold only identifiers and numbers; check that it all parses anyway
        ast.parse(source)
    except SyntaxError as exc:  # pragma: no cover - a bug in espdsl, never a file written
        raise EspdslError(f"espdsl generated invalid Python for '{ir.name}' (line {exc.lineno}: "
                          f"{exc.msg})", None, "this is a bug in espdsl: please report it") from None
    return source
