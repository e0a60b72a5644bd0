"""``espdsl analyze``: parameters, MACs, element-wise work, memory and receptive field of a
spec, per node and in total, from the IR alone (``--check`` also builds and measures it)."""
from __future__ import annotations

import click

from ..analysis.format import FORMATS
from ..errors import UsageError
from ..files import atomic_path
from .options import (AsciiIntRange, blocks_option, input_option, param_option, parse_params, parse_size,
                      spec_argument)


@click.command("analyze")
@spec_argument
@param_option
@input_option()
@blocks_option
@click.option("--depth", default=1, show_default=True, type=AsciiIntRange(1, 32),
              help="How many levels of nested spec nodes to list.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--check", type=click.Choice(["measure", "gridding"]), is_flag=False,
              flag_value="measure", default=None,
              help="measure (--check alone): build the module and set independent measurements "
                   "beside the figures (params, fvcore and ptflops MACs, traced peak memory, "
                   "gradient receptive field). gridding: holes, lattice and path-count spread of "
                   "the footprint of each node's centre pixel, per channel group.")
@click.option("--check-at", "check_at", type=click.Choice(["small", "full"]), default="small",
              show_default=True,
              help="Run --check's measurements at a reduced input where the network resolves to "
                   "the same ops with the same attributes (each side / 8, 4 or 2; the size is "
                   "printed), or at the full input size.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead.")
@click.option("--units", type=click.Choice(["exact", "human", "both"]), default="human",
              show_default=True, help="Counts in the table: exact integers (364,569), SI units "
                                      "(365 k) or both; the totals always show both.")
def command(spec: str, params: tuple[str, ...], input_size: str | None, blocks: tuple[str, ...],
            depth: int, fmt: str, check: str | None, check_at: str, output: str | None,
            units: str) -> None:
    """Analyse SPEC (a zoo/block name or a YAML path): per spec node and in total."""
    from ..analysis.format import format_analysis
    from ..analysis.walk import analyze_ir
    from ..api import load
    values = parse_params(params)
    ir = load(spec, input_size=parse_size(input_size), blocks=blocks, **values)
    if check == "gridding":
        from ..analysis.format import format_gridding
        from ..analysis.gridding import gridding_nodes
        return _write(format_gridding(gridding_nodes(ir, depth), fmt), output)
    result = analyze_ir(ir)
    checks = None
    if check:
        checks, note = _checks(ir, result, check_at,
                               lambda size: load(spec, input_size=size, blocks=blocks, **values))
    _write(format_analysis(result, fmt, depth, checks, units,
                           check_note=note if check else None), output)
    if checks is not None and any(c.ok is False for c in checks):
        failed = ", ".join(f"{c.quantity} ({c.source})" for c in checks if c.ok is False)
        raise UsageError(f"check failed: the analysis and the measurement disagree on {failed}",
                         None, "this is a bug in espdsl's analysis: please report it")


def _write(text: str, output: str | None) -> None:
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


def _checks(ir, result, check_at: str, resolve_at) -> list:
    """The cross-checks, at a reduced input that proves the same where there is one; the
    receptive field again at full size if the reduced input is too small to see it."""
    from ..analysis.check import check, check_rf, reduced_input
    from ..analysis.walk import analyze_ir
    small = reduced_input(ir, resolve_at) if check_at == "small" else None
    if small is None:
        return check(ir, result), None
    small_result = analyze_ir(small)
    rf_small = _field_kind(small, small_result.totals.rf) == _field_kind(ir, result.totals.rf) \
        in ("inside", "whole")
    rows = check(small, small_result, rf=rf_small)
    if not rf_small:  # the field would not sit in the reduced input as it does in the full one
        from ..build import build
        rows.append(check_rf(build(ir).eval(), ir, result.totals))
    size = "x".join(map(str, small.input_shape))
    full = "x".join(map(str, ir.input_shape))
    where = "" if rf_small else f"; the receptive field at {full}, where it fits as it does there"
    return rows, (f"Cross-checks at input {size}: the network resolves there to the same ops with "
                  f"the same attributes as at {full}, so the same counting rules are checked"
                  f"{where} (--check-at full measures everything at {full}).")


def _field_kind(ir, rf) -> str:
    """'inside' when the receptive field fits well inside the input (with room for the
    positions the check probes), 'whole' when it spans it along both axes, else 'partial'."""
    h, w = ir.input_shape[2:]
    rh, rw = rf if isinstance(rf, tuple) else (rf, rf)
    if rh >= h and rw >= w:
        return "whole"
    if 2 * rh <= h and 2 * rw <= w:
        return "inside"
    return "partial"
