"""Key maps: how the state_dict keys of another implementation become a spec's keys.

A spec names its modules its own way (``stage2_0.right_dw.conv``); torchvision, the authors of a
paper or timm name the same tensors theirs (``stage2.0.branch2.3``). A key map, declared in the
spec's ``weights:`` section beside the nodes it names, rewrites the other names into the spec's,
so their checkpoints load with nothing missing or unexpected::

    weights:
      torchvision:
        doc: torchvision.models.shufflenet_v2_x1_0
        keys:
          - ["^stage{s}.0.", "stage{s}_0."]          # the strided first unit
          - ["^stage{s}.{i}.", "stage{s}.{i - 1}."]  # the repeated ones
          - ["branch2.3.", "right_dw.conv."]
          - ["^encoder.output_conv.", null]          # null: a tensor the network does not use

Rules: a pattern is a run of dotted segments (a trailing dot is allowed and ignored); a
segment is any text a framework writes in a key except ``.``, ``{`` and ``}`` (letters,
digits, ``_``, ``-`` as in timm's ``block1-0``, ...); in a segment, ``{name}`` matches a run of
digits and binds ``name`` to its integer value (``layer{l}``, ``{i}``); a leading ``^`` makes
the rule match only at the start of a key. A key is rewritten from the left: at each segment,
the first rule whose pattern matches there replaces the segments it matched with its target (a
name template whose ``{expression}`` parts use the bound names and the spec's parameters,
evaluated safely by :mod:`espdsl.expr`, conditionals and list indexing included:
``"{['dw', 'project'][b] if s == 1 else ...}"``), and rewriting goes on after them; where no
rule matches, the segment is kept. A ``null`` target drops the key. A third entry
``reshape`` lets the tensor change layout to the model's shape when both hold the same number of
values (a ``[4C, C]`` linear weight into a ``[4C, C, 1, 1]`` 1x1 convolution, a ``[C, 1, 1]``
scale into ``[C]``). Loading stays strict: the rewritten keys must be exactly the model's, with
the same shapes. ``espdsl keymap SPEC --weights FILE`` shows every rewrite
(:func:`report`).

>>> km = KeyMap.parse("tv", {"keys": [["^stage{s}.0.", "stage{s}_0."],
...                                   ["^stage{s}.{i}.", "stage{s}.{i - 1}."],
...                                   ["branch2.3.", "right_dw.conv."]]})
>>> km.rewrite("stage2.0.branch2.3.weight"), km.rewrite("stage3.5.branch2.3.weight")
('stage2_0.right_dw.conv.weight', 'stage3.4.right_dw.conv.weight')
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import EspdslError, Loc, SpecError, did_you_mean
from .expr import render_template, template_names

_SEGMENT = re.compile(r"(?:[^.{}\s]|\{[A-Za-z_][A-Za-z0-9_]*\})+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _segment_regex(part: str) -> re.Pattern:
    """``layer{l}`` -> ``layer(?P<l>[0-9]+)``."""
    out, last = "", 0
    for m in _PLACEHOLDER.finditer(part):
        out += re.escape(part[last:m.start()]) + f"(?P<{m.group(1)}>[0-9]+)"
        last = m.end()
    return re.compile(out + re.escape(part[last:]))


@dataclass(frozen=True)
class Rule:
    """One ``[pattern, target]`` pair."""

    pattern: str
    target: str | None
    anchored: bool
    parts: tuple[re.Pattern, ...]    # one regex per segment
    reshape: bool = False            # may change a tensor's layout to the model's

    def match(self, segments: list[str], pos: int) -> dict[str, int] | None:
        """The bound names when the pattern matches ``segments`` at ``pos``, else None."""
        if (self.anchored and pos) or pos + len(self.parts) > len(segments):
            return None
        env: dict[str, int] = {}
        for part, seg in zip(self.parts, segments[pos:]):
            m = part.fullmatch(seg)
            if m is None:
                return None
            env.update((k, int(v)) for k, v in m.groupdict().items())
        return env


@dataclass(frozen=True)
class KeyMap:
    """A named, ordered list of rules (see the module doc)."""

    name: str
    rules: tuple[Rule, ...]
    doc: str = ""

    @staticmethod
    def parse(name: str, data: Mapping[str, Any], loc: Loc | None = None,
              rule_loc: Any = None, params: Any = None, check: bool = True) -> "KeyMap":
        """A key map from its spec data (``{doc, keys: [[pattern, target], ...]}``);
        ``rule_loc(i)`` locates rule ``i`` for errors; ``params``: the spec's parameter names
        a target may use besides the pattern's (None: only the pattern's); ``check``: check the
        names at all (a spec's maps were checked when it was read)."""
        where = (lambda i: rule_loc(i)) if rule_loc else (lambda i: loc)
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise SpecError(f"key map '{name}' needs a list 'keys' of [pattern, target] pairs", loc,
                            'e.g. keys: [["^fc.", "classifier."]]')
        rules = []
        for i, item in enumerate(data["keys"]):
            if (not isinstance(item, (list, tuple)) or len(item) not in (2, 3)
                    or not isinstance(item[0], str)
                    or not (item[1] is None or isinstance(item[1], str))
                    or len(item) == 3 and item[2] != "reshape"):
                raise SpecError(f"rule {i} of key map '{name}' must be [pattern, target] or "
                                f"[pattern, target, reshape] (target text or null), got {item!r}",
                                where(i), 'e.g. ["^stage{s}.0.", "stage{s}_0."]')
            pattern, target = item[0], item[1]
            anchored = pattern.startswith("^")
            body = pattern[1:] if anchored else pattern
            body = body[:-1] if body.endswith(".") else body
            parts = tuple(body.split(".")) if body else ()
            if not parts or not all(_SEGMENT.fullmatch(p) for p in parts):
                raise SpecError(f"rule {i} of key map '{name}': bad pattern '{pattern}'", where(i),
                                "a pattern is dotted segments of key text (no spaces or "
                                "braces), or {name} for a number, optionally starting with ^")
            names = [n for p in parts for n in _PLACEHOLDER.findall(p)]
            if len(set(names)) != len(names):
                raise SpecError(f"rule {i} of key map '{name}': a placeholder is used twice in "
                                f"'{pattern}'", where(i))
            if target is not None and check:
                known = set(names) | set(params or ())
                try:   # every name the target uses must come from the pattern or the params
                    if params is None:
                        render_template(target, {n: 1 for n in names})
                    else:
                        for used in template_names(target):
                            if used not in known:
                                raise SpecError(f"unknown name '{used}' in target "
                                                f"'{target}'", None,
                                                did_you_mean(used, sorted(known)))
                except EspdslError as exc:
                    raise SpecError(f"rule {i} of key map '{name}': {exc.message}", where(i),
                                    exc.hint) from None
            rules.append(Rule(pattern, target, anchored, tuple(_segment_regex(p) for p in parts),
                              len(item) == 3))
        return KeyMap(name, tuple(rules), str(data.get("doc", "")))

    def rewrite(self, key: str, params: Mapping[str, Any] | None = None) -> str | None:
        """The spec's name for checkpoint key ``key`` (None: the key is dropped); ``params``:
        the model's bound parameters, which targets may use."""
        return self.trace(key, params)[0]

    def trace(self, key: str, params: Mapping[str, Any] | None = None
              ) -> tuple[str | None, list[int], bool]:
        """``key`` rewritten, the indices of the rules that matched (in order), and whether
        one of them allows a reshape."""
        segments = key.split(".")
        out: list[str] = []
        used: list[int] = []
        pos = 0
        reshape = False
        while pos < len(segments):
            for index, rule in enumerate(self.rules):
                env = rule.match(segments, pos)
                if env is None:
                    continue
                used.append(index)
                reshape = reshape or rule.reshape
                if rule.target is None:
                    return None, used, reshape
                text = render_template(rule.target, {**(params or {}), **env}).strip(".")
                out += text.split(".") if text else []
                pos += len(rule.parts)
                break
            else:
                out.append(segments[pos])
                pos += 1
        return ".".join(out), used, reshape

    def translate(self, state: Mapping[str, Any], shapes: Mapping[str, tuple] | None = None,
                  params: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """``state`` with every key rewritten, and the keys dropped; two keys that rewrite to
        the same name raise :class:`SpecError`. With the model's ``shapes``, a tensor whose key
        went through a ``reshape`` rule takes the model's shape when it holds as many values."""
        out: dict[str, Any] = {}
        origin: dict[str, str] = {}
        dropped: list[str] = []
        for key, value in state.items():
            try:
                new, _, reshape = self.trace(key, params)
            except EspdslError:   # a target that does not apply to this key: left as it is
                new, reshape = key, False
            if new is None:
                dropped.append(key)
                continue
            if new in out:
                raise SpecError(f"key map '{self.name}' sends both '{origin[new]}' and '{key}' "
                                f"to '{new}'", None, "make the rules tell them apart")
            want = (shapes or {}).get(new)
            if (reshape and want is not None and hasattr(value, "reshape")
                    and tuple(value.shape) != tuple(want) and value.numel() == _numel(want)):
                value = value.reshape(want)
            out[new], origin[new] = value, key
        return out, dropped


def _numel(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def key_maps(meta: Mapping[str, Any]) -> list[KeyMap]:
    """The key maps of a spec's (or an IR's) ``weights`` section, in declaration order.

    >>> import espdsl
    >>> [k.name for k in key_maps(espdsl.load("resnet18").meta)]
    ['torchvision']
    """
    section = meta.get("weights") or {}
    return [KeyMap.parse(name, data, check=False) for name, data in section.items()]


@dataclass
class Report:
    """What a key map does to a checkpoint, key by key (:func:`report`): ``rows`` holds
    (checkpoint key, the spec's key or None when dropped, the rules that matched);
    ``unexpected``: rewritten keys the model lacks; ``missing``: model keys nothing reached;
    ``shapes``: (key, checkpoint shape, model shape) that disagree even after a reshape rule."""

    keymap: str | None
    rows: list[tuple[str, str | None, list[str]]]
    unexpected: list[str]
    missing: list[str]
    shapes: list[tuple[str, tuple, tuple]]

    @property
    def ok(self) -> bool:
        return not (self.unexpected or self.missing or self.shapes)


OPTIONAL_SUFFIX = "num_batches_tracked"   # BatchNorm's counter: may be absent (see weights)


def report(km: KeyMap | None, ckpt: Mapping[str, tuple], model: Mapping[str, tuple],
           params: Mapping[str, Any] | None = None) -> Report:
    """Rewrite every key of a checkpoint (its shapes ``ckpt``) through ``km`` (None: keys as
    they are) and compare with the model's shapes; nothing is loaded.

    >>> km = KeyMap.parse("tv", {"keys": [["^block1-{i}.", "stage1.{i}."], ["fc.", "head.", "reshape"]]})
    >>> r = report(km, {"block1-0.w": (4, 2), "fc.w": (4, 2), "x": (1,)}, {"stage1.0.w": (4, 2), "head.w": (4, 2, 1, 1), "y": (1,)})
    >>> r.rows[0], r.unexpected, r.missing, r.shapes
    (('block1-0.w', 'stage1.0.w', ['^block1-{i}.']), ['x'], ['y'], [])
    """
    rows: list[tuple[str, str | None, list[str]]] = []
    rewritten: dict[str, tuple] = {}
    reshapable: set[str] = set()
    for key, shape in ckpt.items():
        failed = ""
        if km is None:
            new, used, reshape = key, [], False
        else:
            try:
                new, used, reshape = km.trace(key, params)
            except EspdslError as exc:   # shown on its row; the key stays as it is
                new, used, reshape, failed = key, [], False, f"a target failed: {exc.message}"
        rows.append((key, new, [km.rules[i].pattern for i in used] if km and not failed
                     else [failed] if failed else []))
        if new is not None:
            rewritten[new] = tuple(shape)
            if reshape:
                reshapable.add(new)
    shapes = [(k, rewritten[k], tuple(model[k])) for k in model if k in rewritten
              and tuple(model[k]) != rewritten[k]
              and not (k in reshapable and _numel(model[k]) == _numel(rewritten[k]))]
    return Report(km.name if km else None, rows,
                  unexpected=[k for k in rewritten if k not in model],
                  missing=[k for k in model if k not in rewritten
                           and not k.endswith(OPTIONAL_SUFFIX)],
                  shapes=shapes)
