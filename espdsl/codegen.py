"""Generating a standalone PyTorch source file from the IR (``espdsl compile SPEC -o net.py``).

The file needs only torch; its module hierarchy and ``state_dict`` keys are the same as the
built GraphModule's, so weights move between the two. Written from ``templates/module.py.j2``.

>>> import espdsl
>>> source = to_python(espdsl.load("cbr", M=3, N=16))
>>> "self.conv = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)" in source
True
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

import jinja2

from . import __version__
from .build import _camel
from .ir import IR, Node
from .registry import data_dir
from .summary import scope_params


def _access(path: str) -> str:
    """``encoder.level2.0.c1`` -> ``self.encoder.level2[0].c1``."""
    out = "self"
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _module_expr(node: Node, cin: int) -> str:
    a = node.attrs
    if node.op in ("conv", "deconv"):
        cls = "nn.Conv2d" if node.op == "conv" else "nn.ConvTranspose2d"
        args = [str(cin), str(a["out"]), str(a["kernel"]), f"stride={a['stride']}",
                f"padding={a['padding']}"]
        if node.op == "deconv" and a["output_padding"]:
            args.append(f"output_padding={a['output_padding']}")
        if a["dilation"] != 1:
            args.append(f"dilation={a['dilation']}")
        if a["groups"] != 1:
            args.append(f"groups={a['groups']}")
        args.append(f"bias={a['bias']}")
        return f"{cls}({', '.join(args)})"
    if node.op == "batchnorm":
        return f"nn.BatchNorm2d({cin}, eps={a['eps']!r}, momentum={a['momentum']!r})"
    if node.op == "prelu":
        return f"nn.PReLU({1 if a['shared'] else cin}, init={a['init']!r})"
    raise KeyError(node.op)


def _call(node: Node, args: list[str]) -> str:
    a, x = node.attrs, args[0] if args else ""
    if node.op in ("conv", "deconv", "batchnorm", "prelu"):
        return f"{_access(node.name)}({x})"
    if node.op == "relu":
        return f"F.relu({x})"
    if node.op == "avgpool":
        return (f"F.avg_pool2d({x}, {a['kernel']}, {a['stride']}, {a['padding']}, "
                f"count_include_pad={a['count_include_pad']})")
    if node.op == "maxpool":
        return f"F.max_pool2d({x}, {a['kernel']}, {a['stride']}, {a['padding']})"
    if node.op == "concat":
        return f"torch.cat([{', '.join(args)}], 1)"
    if node.op == "add":
        return " + ".join(args)
    if node.op == "shuffle":
        return f"channel_shuffle({x}, {a['groups']})"
    if node.op == "upsample":
        extra = ", align_corners=False" if a["mode"] == "bilinear" else ""
        return f"F.interpolate({x}, scale_factor={a['scale']!r}, mode={a['mode']!r}{extra})"
    raise KeyError(node.op)


def _shown_path(source: str) -> str:
    """The spec path relative to the working folder when it is below it, else its file name."""
    path = Path(source)
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def to_python(ir: IR) -> str:
    """The source of a standalone ``nn.Module`` equivalent to ``build(ir)``."""
    stateful = [n for n in ir.nodes() if n.op in ("conv", "deconv", "batchnorm", "prelu")]
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
        init.append(f"{_access(node.name)} = {_module_expr(node, cin)}")

    names: dict[str, str] = {"input": "x"}
    taken = {"x", "self", "torch", "nn", "F", "channel_shuffle"}
    forward: list[str] = []
    for node in ir.nodes():
        if node.op == "input":
            continue
        var = re.sub(r"\W", "_", node.name)
        if keyword.iskeyword(var):
            var += "_"
        base, i = var, 1
        while var in taken:
            var, i = f"{base}_{i}", i + 1
        taken.add(var)
        names[node.name] = var
        forward.append(f"{var} = {_call(node, [names[s] for s in node.inputs])}")
    params = ", ".join(f"{k}={v!r}" for k, v in ir.params.items()) or "no parameters"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    return env.get_template("module.py.j2").render(
        title=f"{_camel(ir.name)}: the {ir.kind} '{ir.name}' as a plain PyTorch module.",
        version=__version__, source=_shown_path(ir.source),
        params_text=params, input_shape="x".join(map(str, ir.input_shape)),
        output_shape="x".join(map(str, ir.output_shape)), n_params=scope_params(ir, ""),
        class_name=_camel(ir.name), doc=f"{ir.name} ({params}).", init_lines=init,
        forward_lines=forward, output=names[ir.output], input_tuple=", ".join(map(str, ir.input_shape)))
