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

Rules: a pattern is a run of dotted segments (a trailing dot is allowed and ignored); in a
segment, ``{name}`` matches a run of digits and binds ``name`` to its integer value
(``layer{l}``, ``{i}``); a leading ``^`` makes the rule match only at the start of a key. A key is rewritten from the left: at each segment, the
first rule whose pattern matches there replaces the segments it matched with its target (a
name template whose ``{expression}`` parts use the bound names, evaluated safely by
:mod:`espdsl.expr`), and rewriting goes on after them; where no rule matches, the segment is
kept. A ``null`` target drops the key. Loading stays strict: the rewritten keys must be
exactly the model's, with the same shapes.

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

from .errors import EspdslError, Loc, SpecError
from .expr import render_template

_SEGMENT = re.compile(r"(?:[A-Za-z0-9_]|\{[A-Za-z_][A-Za-z0-9_]*\})+")
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
              rule_loc: Any = None) -> "KeyMap":
        """A key map from its spec data (``{doc, keys: [[pattern, target], ...]}``);
        ``rule_loc(i)`` locates rule ``i`` for errors."""
        where = (lambda i: rule_loc(i)) if rule_loc else (lambda i: loc)
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise SpecError(f"key map '{name}' needs a list 'keys' of [pattern, target] pairs", loc,
                            'e.g. keys: [["^fc.", "classifier."]]')
        rules = []
        for i, item in enumerate(data["keys"]):
            if (not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str)
                    or not (item[1] is None or isinstance(item[1], str))):
                raise SpecError(f"rule {i} of key map '{name}' must be [pattern, target] (target "
                                f"text or null), got {item!r}", where(i),
                                'e.g. ["^stage{s}.0.", "stage{s}_0."]')
            pattern, target = item
            anchored = pattern.startswith("^")
            body = pattern[1:] if anchored else pattern
            body = body[:-1] if body.endswith(".") else body
            parts = tuple(body.split(".")) if body else ()
            if not parts or not all(_SEGMENT.fullmatch(p) for p in parts):
                raise SpecError(f"rule {i} of key map '{name}': bad pattern '{pattern}'", where(i),
                                "a pattern is dotted segments of letters, digits and '_', or "
                                "{name} for a number, optionally starting with ^")
            names = [n for p in parts for n in _PLACEHOLDER.findall(p)]
            if len(set(names)) != len(names):
                raise SpecError(f"rule {i} of key map '{name}': a placeholder is used twice in "
                                f"'{pattern}'", where(i))
            if target is not None:
                try:   # every name the target uses must come from the pattern
                    render_template(target, {n: 1 for n in names})
                except EspdslError as exc:
                    raise SpecError(f"rule {i} of key map '{name}': {exc.message}", where(i),
                                    exc.hint) from None
            rules.append(Rule(pattern, target, anchored, tuple(_segment_regex(p) for p in parts)))
        return KeyMap(name, tuple(rules), str(data.get("doc", "")))

    def rewrite(self, key: str) -> str | None:
        """The spec's name for checkpoint key ``key`` (None: the key is dropped)."""
        segments = key.split(".")
        out: list[str] = []
        pos = 0
        while pos < len(segments):
            for rule in self.rules:
                env = rule.match(segments, pos)
                if env is None:
                    continue
                if rule.target is None:
                    return None
                text = render_template(rule.target, env).strip(".")
                out += text.split(".") if text else []
                pos += len(rule.parts)
                break
            else:
                out.append(segments[pos])
                pos += 1
        return ".".join(out)

    def translate(self, state: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """``state`` with every key rewritten, and the keys dropped; two keys that rewrite to
        the same name raise :class:`SpecError`."""
        out: dict[str, Any] = {}
        origin: dict[str, str] = {}
        dropped: list[str] = []
        for key, value in state.items():
            new = self.rewrite(key)
            if new is None:
                dropped.append(key)
                continue
            if new in out:
                raise SpecError(f"key map '{self.name}' sends both '{origin[new]}' and '{key}' "
                                f"to '{new}'", None, "make the rules tell them apart")
            out[new], origin[new] = value, key
        return out, dropped


def key_maps(meta: Mapping[str, Any]) -> list[KeyMap]:
    """The key maps of a spec's (or an IR's) ``weights`` section, in declaration order.

    >>> import espdsl
    >>> [k.name for k in key_maps(espdsl.load("resnet18").meta)]
    ['torchvision']
    """
    section = meta.get("weights") or {}
    return [KeyMap.parse(name, data) for name, data in section.items()]
