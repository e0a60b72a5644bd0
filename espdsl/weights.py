"""Checkpoints: load published weights into a compiled spec, save and reload espdsl's own.

Loading is strict by default: every tensor of the model must come from the checkpoint and
every tensor of the checkpoint must land in the model, with the same shape. When they do not
fit, the error names the first mismatches with both shapes and, when the shapes tell, which
parameter values would fit (found by re-resolving the spec with candidate values).

BatchNorm's ``num_batches_tracked`` counters are optional: old PyTorch versions (like the one
the ESPNet authors used) did not save them, and they only matter for training with
``momentum=None``. A checkpoint without them keeps the model's own counters.

An espdsl checkpoint (``save_checkpoint``) holds the weights plus the YAML text of every spec
the network was built from (the root and each block it uses) and the bound parameters, all as
plain types so ``torch.load(weights_only=True)`` reads it; ``load_checkpoint_model`` rebuilds
the network from the checkpoint alone, even if the library's blocks changed since.

>>> import espdsl, tempfile, pathlib
>>> model = espdsl.create_model("espnet_c", alpha3=3)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "net.pt"
>>> save_checkpoint(model, path)
>>> again = espdsl.create_model(path)
>>> again.espdsl_ir.params["alpha3"], sum(p.numel() for p in again.parameters())
(3, 187529)
"""
from __future__ import annotations

import os
import pickle
import stat
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from . import limits
from .errors import EspdslError, Loc, WeightsError
from .checkpoint_schema import FORMAT, VERSION
from .keymap import key_maps

OPTIONAL_SUFFIX = "num_batches_tracked"
SHOWN = 3            # mismatches named in an error line
MAX_TRIALS = 40      # re-resolutions spent looking for parameter values that fit

Shapes = dict[str, tuple[int, ...]]


# -- reading ------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The object stored in ``path``, read with ``weights_only=True`` onto the CPU."""
    path = Path(path)
    loc = Loc(str(path))
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as exc:    # missing, a name too long, a NUL character
        missing = isinstance(exc, FileNotFoundError) or isinstance(exc, ValueError)
        raise WeightsError("no such checkpoint file" if missing else
                           f"cannot read the checkpoint ({getattr(exc, 'strerror', None) or exc})",
                           loc, "check the path given to --weights") from None
    if stat.S_ISDIR(mode):
        raise WeightsError("is a folder, not a checkpoint file", loc, "give a .pth/.pt file")
    if not stat.S_ISREG(mode):                  # a FIFO would block, a device never end
        raise WeightsError("is not a regular file", loc, "give a .pth/.pt file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive; very old versions a raw pickle (protocol byte 0x80)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise WeightsError("not a PyTorch checkpoint (neither a zip archive nor a pickle)", loc,
                           "give a state_dict file written by torch.save")
    _check_size(path, head.startswith(b"PK"), loc)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text:
            what = text.split("Unsupported global:", 1)[1].strip().split(" was not", 1)[0]
            raise WeightsError(f"holds Python objects, not only tensors ({what[:100]}); espdsl "
                               "reads checkpoints with weights_only=True", loc,
                               "save model.state_dict() instead of the model object") from None
        raise WeightsError(f"corrupt checkpoint ({text.splitlines()[0][:120]})", loc,
                           "give a state_dict file written by torch.save") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, AttributeError, KeyError,
            IndexError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"corrupt checkpoint ({first[:120]})", loc,
                           "give a state_dict file written by torch.save") from None
    if not isinstance(obj, Mapping):
        raise WeightsError(f"holds a {type(obj).__name__}, not a state_dict", loc,
                           "save model.state_dict(), not the model object")
    return dict(obj)


def _check_size(path: Path, is_zip: bool, loc: Loc) -> None:
    """Refuse a checkpoint whose tensors would take more than the ``param_memory`` limit, from
    the zip directory (uncompressed sizes: a small compressed archive can unpack to gigabytes)
    or the file size, before reading any tensor."""
    cap = limits.current().param_memory
    size = path.stat().st_size
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                size = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise WeightsError(f"corrupt checkpoint ({str(exc)[:120] or type(exc).__name__})", loc,
                               "give a state_dict file written by torch.save") from None
    if size > cap:
        raise limits.exceeded("param_memory", f"the checkpoint holds {limits.format_bytes(size)}, "
                              "more than the param_memory limit", loc)


def state_dict_from(obj: Mapping[str, Any], where: Loc | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a plain ``state_dict``, an espdsl checkpoint, or the common
    ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers; a ``module.`` prefix (DataParallel)
    is removed.

    >>> import torch
    >>> sorted(state_dict_from({"state_dict": {"module.w": torch.zeros(1)}}))
    ['w']
    """
    if obj.get("format") == FORMAT or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError("holds no tensors", where, "give a PyTorch state_dict saved with torch.save")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


# -- comparing ----------------------------------------------------------------------------------
@dataclass
class Fit:
    """How a checkpoint's tensors fit a model's: what is missing, unexpected, of another shape;
    ``keymap``: the spec's key map its keys went through (None: as they are), ``dropped``: keys
    that map drops (tensors the network does not use)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape: list[str] = field(default_factory=list)
    keymap: str | None = None
    dropped: list[str] = field(default_factory=list)

    @property
    def score(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.shape)

    @property
    def ok(self) -> bool:
        return self.score == 0


def shapes_of(state: Mapping[str, torch.Tensor]) -> Shapes:
    return {k: tuple(v.shape) for k, v in state.items()}


def compare(model: Shapes, ckpt: Shapes) -> Fit:
    """Compare a model's tensor shapes with a checkpoint's; ``num_batches_tracked`` is optional.

    >>> compare({"w": (2, 3), "bn.num_batches_tracked": ()}, {"w": (2, 4), "x": (1,)})
    Fit(missing=[], unexpected=['x'], shape=['w'], keymap=None, dropped=[])
    """
    return Fit(
        missing=[k for k in model if k not in ckpt and not k.endswith(OPTIONAL_SUFFIX)],
        unexpected=[k for k in ckpt if k not in model],
        shape=[k for k in model if k in ckpt and model[k] != ckpt[k]],
    )


def _dims(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def describe(fit: Fit, model: Shapes, ckpt: Shapes, full: bool = False) -> str:
    """One line: the counts and the first few mismatches with both shapes (``full``: all of
    them, both sides)."""
    items = ([f"{k} checkpoint {_dims(ckpt[k])} vs model {_dims(model[k])}" for k in fit.shape]
             + [f"{k} {_dims(model[k])} missing from the checkpoint" for k in fit.missing]
             + [f"{k} {_dims(ckpt[k])} not in the model" for k in fit.unexpected])
    counts = (f"{len(fit.missing)} missing, {len(fit.unexpected)} unexpected, "
              f"{len(fit.shape)} of another shape")
    if full:
        return f"{counts}: " + ", ".join(items)
    more = f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return f"{counts}: " + ", ".join(items[:SHOWN]) + more


# -- hints --------------------------------------------------------------------------------------
def _repeat_counts(ir: Any, ckpt: Shapes) -> dict[str, tuple[int, int]]:
    """For each repeat group of the IR: (copies in the checkpoint, copies in the model)."""
    out = {}
    for scope in ir.scopes.values():
        if scope.kind != "repeat":
            continue
        prefix = scope.path + "."
        idx = {int(k[len(prefix):].split(".", 1)[0]) for k in ckpt
               if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()}
        found = max(idx) + 1 if idx else 0
        if found and found != (scope.repeat or 0):   # 0: the checkpoint lacks the group
            out[scope.path] = (found, scope.repeat or 0)
    return out


def _spec_shapes(source: str, input_shape: tuple[int, ...], params: dict[str, Any]) -> Shapes | None:
    """The state_dict shapes of the spec file ``source`` with ``params`` (built on the meta
    device: nothing is allocated), or None when it does not resolve."""
    from .build import build
    from .registry import default_registry
    from .resolve import resolve
    from .spec import read_spec
    try:
        ir = resolve(read_spec(source), params, registry=default_registry(), input_size=input_shape)
        return shapes_of(build(ir, device="meta").state_dict())
    except (EspdslError, RuntimeError, ValueError, TypeError):
        return None


def _prefix_hint(ir: Any, model: Shapes, ckpt: Shapes) -> str | None:
    """A checkpoint of a part of this network, or of a bigger one holding this network."""
    def fits(inner: Shapes, outer: Shapes) -> bool:
        need = [k for k in inner if not k.endswith(OPTIONAL_SUFFIX)]
        return bool(need) and all(outer.get(k) == inner[k] for k in need)

    for scope in ir.top_level():
        if scope.kind != "block":
            continue
        part = {k[len(scope.path) + 1:]: s for k, s in model.items() if k.startswith(scope.path + ".")}
        if fits(ckpt, part):
            return (f"the checkpoint holds only the '{scope.path}' part of {ir.name} (block "
                    f"{scope.block}): load it into spec {scope.block}")
    for head in sorted({k.split(".", 1)[0] for k in ckpt if "." in k}):
        part = {k[len(head) + 1:]: s for k, s in ckpt.items() if k.startswith(head + ".")}
        if fits(model, part):
            wrappers = _models_wrapping(ir.name, head)
            use = f": load it into spec {' or '.join(wrappers)}" if wrappers else ""
            return (f"the checkpoint holds a bigger network whose '{head}' part fits "
                    f"{ir.name}{use}")
    return None


def _models_wrapping(name: str, node: str) -> list[str]:
    from .registry import default_registry
    reg = default_registry()
    out = []
    for model in reg.names("model"):
        try:
            spec = reg.get(model)
        except EspdslError:
            continue
        if any(n.name == node and n.block == name for n in spec.nodes):
            out.append(model)
    return out


def suggest(ir: Any, model: Shapes, ckpt: Shapes, fit: Fit) -> str | None:
    """A hint naming parameter values under which the checkpoint fits, when the shapes tell.

    Candidate values come from the checkpoint (copies in each repeat group, sizes that differ
    from the model's) and from declared choices; a greedy search re-resolves the spec.
    """
    part = _prefix_hint(ir, model, ckpt)
    if part:
        return part
    source = ir.source
    if not source.endswith((".yaml", ".yml")) or not Path(source).is_file():
        return None
    from .spec import read_spec
    try:
        decls = read_spec(source).params
    except EspdslError:
        return None
    counts = _repeat_counts(ir, ckpt)
    # sizes seen in the checkpoint where the model differs, most frequent first
    seen: Counter[int] = Counter({found: 100 for found, _ in counts.values()})
    had: set[int] = set()
    for k in fit.shape:
        for a, b in zip(ckpt[k], model[k]):
            if a != b:
                seen[a] += 1
                had.add(b)
    sizes = [v for v, _ in seen.most_common(4)]
    repeat_exprs = {str(s.repeat_expr) for s in ir.scopes.values() if s.kind == "repeat"}
    candidates: list[tuple[str, list[Any]]] = []
    for name, decl in decls.items():
        current = ir.params.get(name)
        if decl.choices:
            values = [c for c in decl.choices if c != current]
        elif decl.type == "int":
            values = [v for v in sizes if v != current and (decl.min is None or v >= decl.min)]
        else:
            continue
        if values:
            candidates.append((name, values))
    # first the parameters the mismatch points at: ones that count repeats, or whose value is a
    # size the model has where the checkpoint differs (classes=20 vs 12 outputs)
    # then the parameters with a few choices (cheap to try), then the rest
    candidates.sort(key=lambda c: (not (any(c[0] in e for e in repeat_exprs) and counts
                                        or ir.params.get(c[0]) in had), not decls[c[0]].choices))
    best, best_fit, trials = dict(ir.params), fit, 0
    for _ in range(3):
        improved = False
        for name, values in candidates:
            for value in values:
                if best_fit.ok or trials >= MAX_TRIALS or value == best.get(name):
                    continue
                trials += 1
                trial = {**best, name: value}
                shapes = _spec_shapes(source, ir.input_shape, _declared(trial, decls))
                if shapes is None:
                    continue
                trial_fit = compare(shapes, ckpt)
                if trial_fit.score < best_fit.score:
                    best, best_fit, improved = trial, trial_fit, True
                    break                 # first improvement: go on with the next parameter
        if best_fit.ok or not improved:
            break
    changed = {k: v for k, v in best.items() if ir.params.get(k) != v}
    notes = [f"this checkpoint has {found} {path} modules, the model {had}"
             for path, (found, had) in counts.items()][:2]
    if changed and best_fit.ok:
        flags = " ".join(f"-p {k}={v}" for k, v in changed.items())
        notes.append(f"try {flags} (the checkpoint then fits exactly)")
    return "; ".join(notes) or None


def _declared(params: dict[str, Any], decls: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k in decls}


# -- loading ------------------------------------------------------------------------------------
def load_weights(model: nn.Module, weights: str | Path | Mapping[str, torch.Tensor], *,
                 strict: bool = True, full: bool = False) -> Fit:
    """Load a checkpoint (a path or a state_dict) into ``model``; return how it fit.

    Strict (default): any missing, unexpected or differently shaped tensor raises
    :class:`WeightsError` with one line naming the first mismatches and, when the shapes tell,
    the parameter values that would fit. Not strict: load what fits and return the rest.

    When the keys do not fit as they are, each key map of the spec's ``weights:`` section
    (:mod:`espdsl.keymap`: torchvision's names, the authors' names) is tried in turn; the first
    under which the checkpoint fits exactly is used (``Fit.keymap`` names it). ``full``: the
    error lists every mismatch, both sides (``espdsl keymap SPEC --weights FILE`` shows every
    key's rewrite).

    >>> import espdsl
    >>> model = espdsl.create_model("espnet_c", alpha3=3)
    >>> load_weights(model, espdsl.create_model("espnet_c", alpha3=3).state_dict()).ok
    True
    """
    where = Loc(str(weights)) if isinstance(weights, (str, Path)) else None
    raw = read_checkpoint(weights) if where else dict(weights)
    ckpt_state = state_dict_from(raw, where)
    own = model.state_dict()
    model_shapes, ckpt_shapes = shapes_of(own), shapes_of(ckpt_state)
    fit = compare(model_shapes, ckpt_shapes)
    ir = getattr(model, "espdsl_ir", None)
    tried: tuple[Fit, dict[str, tuple[int, ...]]] | None = None
    if not fit.ok and ir is not None:
        for km in key_maps(ir.meta):
            mapped, dropped = km.translate(ckpt_state, model_shapes, ir.params)
            mapped_shapes = shapes_of(mapped)
            got = compare(model_shapes, mapped_shapes)
            got.keymap, got.dropped = km.name, dropped
            if got.ok:
                ckpt_state, ckpt_shapes, fit = mapped, mapped_shapes, got
                break
            if got.score < fit.score and (tried is None or got.score < tried[0].score):
                tried = (got, mapped_shapes)
    if strict and not fit.ok:
        name = f"{ir.name} ({_fmt_params(ir.params)})" if ir is not None else "the model"
        if tried is not None:          # closer through a key map: say what that leaves
            raise WeightsError(f"checkpoint does not fit {name}, not even through its "
                               f"'{tried[0].keymap}' key map: "
                               f"{describe(tried[0], model_shapes, tried[1], full)}", where,
                               "check the key map's rules and the spec's parameters (-p); "
                               "'espdsl keymap SPEC --weights FILE' shows every key")
        hint = suggest(ir, model_shapes, ckpt_shapes, fit) if ir is not None else None
        raise WeightsError(f"checkpoint does not fit {name}: "
                           f"{describe(fit, model_shapes, ckpt_shapes, full)}", where,
                           hint or "check the spec and its parameters (-p)")
    bad = set(fit.shape)
    merged = dict(own)     # keeps the model's num_batches_tracked when the checkpoint has none
    merged.update({k: v for k, v in ckpt_state.items() if k in own and k not in bad})
    model.load_state_dict(merged, strict=True)
    return fit


def _fmt_params(params: Mapping[str, Any]) -> str:
    from .paramtext import param_text
    return param_text(params)


# -- espdsl's own checkpoints --------------------------------------------------------------------
def _spec_files(ir: Any) -> dict[str, str]:
    """Name -> YAML text of the root spec and every block spec the IR instantiated."""
    files: dict[str, Path] = {ir.name: Path(ir.source)}
    for scope in ir.scopes.values():
        # a scope's loc is where it was instantiated, i.e. a line of its parent's file
        if scope.parent is not None and scope.loc is not None and scope.parent in ir.scopes:
            parent = ir.scopes[scope.parent]
            name = ir.name if parent.kind == "root" else parent.block
            if parent.kind in ("root", "block"):
                files.setdefault(name, Path(scope.loc.file))
    return {name: path.read_text(encoding="utf-8") for name, path in files.items()
            if path.is_file()}


def save_checkpoint(model: nn.Module, path: str | Path, passes: list[str] | None = None) -> None:
    """Write the weights plus the specs and parameters that rebuild the network; ``passes``:
    the optimization passes (:mod:`espdsl.passes`) loading applies to it again.

    Everything but the tensors is plain str/int/float/bool/list/dict, so
    ``torch.load(path, weights_only=True)`` reads it. Write through
    :func:`espdsl.files.atomic_path` for all-or-nothing output.
    """
    ir = getattr(model, "espdsl_ir", None)
    if ir is None:
        raise WeightsError("the model was not built by espdsl (it has no espdsl_ir)", None,
                           "build it with espdsl.create_model")
    specs = getattr(model, "espdsl_specs", None) or _spec_files(ir)
    if ir.name not in specs:
        raise WeightsError(f"cannot find the source of spec '{ir.name}'", Loc(str(ir.source)),
                           "build the model from a spec file or a zoo name")
    extra = {"passes": list(passes)} if passes else {}
    torch.save({
        **extra,
        "format": FORMAT,
        "version": VERSION,
        "name": ir.name,
        "kind": ir.kind,
        "specs": specs,
        "params": {k: v for k, v in ir.params.items() if isinstance(v, (bool, int, float, str))},
        "input_size": list(ir.input_shape),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }, path)


def load_checkpoint_model(path: str | Path, optimize: bool | None = None, **params: Any) -> nn.Module:
    """Rebuild the network stored in an espdsl checkpoint and load its weights.

    ``params`` override stored parameter values (the weights must still fit). A checkpoint
    saved from an optimized model comes back optimized with the same passes unless
    ``optimize`` is False; ``optimize=True`` optimizes any checkpoint.
    """
    from .build import build
    from .checkpoint_schema import check
    from .registry import Registry
    from .resolve import resolve

    loc = Loc(str(path))
    raw = read_checkpoint(path)
    if raw.get("format") != FORMAT:
        raise WeightsError("is a plain state_dict, not an espdsl checkpoint", loc,
                           "give the spec too: create_model(SPEC, weights=PATH) or "
                           "--weights PATH with a spec")
    check(raw, str(path))       # every key, type and size, before anything is used
    name, specs = raw["name"], raw["specs"]
    # the stored texts are registered in memory: nothing a checkpoint holds becomes a path
    reg = Registry()
    for spec_name, text in specs.items():
        reg.add_text(spec_name, text, f"{path}:spec/{spec_name}")
    root = reg.get(name)
    if root.kind != raw["kind"]:
        raise WeightsError(f"the checkpoint says '{name}' is a {raw['kind']}, its stored spec "
                           f"defines a {root.kind}", loc, "this checkpoint was not written by "
                           "espdsl, or was altered")
    root.blocks = []      # every block it used is stored beside it
    unknown = [k for k in params if k not in root.params]
    if unknown:
        from .errors import UsageError, did_you_mean
        raise UsageError(f"unknown parameter '{unknown[0]}' for {root.kind} '{name}' stored in "
                         "the checkpoint", loc, did_you_mean(unknown[0], root.params))
    merged = {**raw["params"], **params}
    declared = {k: v for k, v in merged.items() if k in root.params}
    try:
        ir = resolve(root, declared, registry=reg, input_size=tuple(raw["input_size"]))
    except EspdslError as exc:
        if exc.loc is None:    # a stored value (parameter, input size): the checkpoint says it
            exc.loc = loc
            exc.args = (str(exc),)
        raise
    ir.source = str(path)
    limits.check_build(ir)      # its parameters within param_memory, before torch allocates
    model = build(ir)
    model.espdsl_specs = dict(specs)      # the texts it was built from, to save it again
    try:
        load_weights(model, raw["state_dict"])
    except WeightsError as exc:
        changed = {k: raw["params"][k] for k in params if raw["params"].get(k) != params[k]}
        saved = " ".join(f"-p {k}={v}" for k, v in changed.items())
        raise WeightsError(exc.message, loc, f"it was saved with {saved}: try that" if saved
                           else exc.hint) from None
    if raw.get("quantized") is not None and optimize is not False:   # espdsl quantize
        from .quantize import requantize
        return requantize(model, raw["quantized"], loc)
    stored = raw.get("passes")
    if optimize or (optimize is None and stored):
        from .passes import DEFAULT, optimize_model
        return optimize_model(model.eval(), stored if isinstance(stored, list) and stored
                              else DEFAULT)
    return model
