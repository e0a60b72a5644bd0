"""What a newcomer reads: totals that explain themselves, errors aimed at the command line."""
from __future__ import annotations

import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="espdsl")


def test_optimized_build_reports_trained_and_folded_parameters():
    """The two counts from torch itself: the parameters of the default and the optimized build."""
    plain = espdsl.create_model("espnet", alpha3=3)
    fast = espdsl.create_model("espnet", alpha3=3, optimize=True)
    trained = sum(p.numel() for p in plain.parameters())
    folded = sum(p.numel() for p in fast.parameters())
    result = run("compile", "espnet", "-p", "alpha3=3", "--optimize")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert trained == 202_649
    assert f"parameters: {trained:,} as trained" in text
    assert f"; {folded:,} after folding batch norms" in text
