"""``espdsl list``: the blocks and models espdsl knows, what each is, and its parameters."""
from __future__ import annotations

import re

import click

from .options import blocks_option

WIDTH = 100


@click.command("list")
@click.argument("pattern", default="*")
@blocks_option
@click.option("--kind", type=click.Choice(["all", "block", "model"]), default="all", show_default=True)
def command(pattern: str, blocks: tuple[str, ...], kind: str) -> None:
    """List blocks and models (optionally matching a glob PATTERN): the first sentence of each
    one's doc, then its parameters (name=default; [name] is optional and unset by default)."""
    from ..api import _registry
    reg = _registry(blocks)
    kinds = [k for k in ("block", "model") if kind in ("all", k)]
    names = {k: reg.names(k, pattern) for k in kinds}
    width = max((len(n) for ns in names.values() for n in ns), default=0) + 2
    for k in kinds:
        click.echo(f"{k}s:")
        for name in names[k]:
            spec = reg.get(name)
            for line in entry_lines(name, spec.doc, spec.params.values(), width):
                click.echo(line)


def entry_lines(name: str, doc: str, params, width: int) -> list[str]:
    """``name``, the doc's first sentence and the parameters, wrapped to :data:`WIDTH` columns
    in a column of their own.

    >>> from types import SimpleNamespace as P
    >>> for line in entry_lines("c", "A convolution. More.", [P(name="M", default=None, unset=False),
    ...                                                       P(name="g", default=None, unset=True),
    ...                                                       P(name="n", default=1, unset=False)], 4):
    ...     print(line)
      c   A convolution.
          M, [g], n=1
    """
    import textwrap
    indent = " " * (2 + width)
    sentence = first_sentence(doc)
    params_text = ", ".join(f"[{p.name}]" if p.unset and p.default is None
                            else f"{p.name}={p.default}" if p.default is not None else p.name
                            for p in params)
    room = WIDTH - len(indent)
    if len(sentence) > room:
        sentence = sentence[:room - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    lines = [f"  {name:<{width}}{sentence}".rstrip()]
    lines += textwrap.wrap(params_text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                           break_on_hyphens=False) if params_text else []
    return lines


_SENTENCE_END = re.compile(r"(?<!\bFig)(?<!\be\.g)(?<!\bi\.e)(?<!\bal)(?<!\bvs)(?<!\bcf)(?<!\bEq)"
                           r"\.(?:\s+(?=[A-Z`(\[])|\s*$)")


def first_sentence(doc: str) -> str:
    """The first sentence of a spec's ``doc`` (abbreviations such as "Fig." do not end it).

    >>> first_sentence("EESP unit of ESPNetv2 (Mehta et al., CVPR 2019, Fig. 4b). It splits.")
    'EESP unit of ESPNetv2 (Mehta et al., CVPR 2019, Fig. 4b).'
    """
    text = " ".join(doc.split())
    m = _SENTENCE_END.search(text)
    return text[:m.start() + 1] if m else text
