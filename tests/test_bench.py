"""`espdsl bench` and espdsl.bench(): the figures it derives from its timings are consistent and
use independently known work; comparisons interleave; bad input is one line. No test checks a
time (the machine is shared): full-size timings live in benchmarks/."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.bench import BenchResult, Comparison, format_bench
from espdsl.cli import main

# cbr 3 -> 8, 3x3, stride 1 at 32x32: 32*32*8*3*9 MACs (by hand)
CBR = {"M": 3, "N": 8}
CBR_MACS = 32 * 32 * 8 * 3 * 9


def test_bench_result_figures_follow_from_the_timings():
    r = espdsl.bench("cbr", params=CBR, input_size=(1, 3, 32, 32), runs=5, warmup=1)
    assert isinstance(r, BenchResult) and r.runs == 5 and r.macs == CBR_MACS
    assert r.min_ms <= r.median_ms <= r.max_ms and r.min_ms > 0
    assert r.fps == pytest.approx(1000 / r.median_ms)
    assert r.gflops == pytest.approx(2 * CBR_MACS / (r.median_ms * 1e6))
    assert r.matmul_gflops > 0 and r.matmul_fraction == pytest.approx(r.gflops / r.matmul_gflops)
    assert r.optimized and r.device == "cpu" and r.faults_per_run is not None
    d = r.as_dict()
    assert json.loads(json.dumps(d))["macs"] == CBR_MACS and len(d["times_ms"]) == 5


def test_bench_vs_default_interleaves_two_builds():
    c = espdsl.bench("espnet", params={"alpha2": 1, "alpha3": 1}, input_size=(1, 3, 64, 128),
                     runs=4, warmup=1, vs="default", matmul=False)
    assert isinstance(c, Comparison)
    assert c.a.optimized and not c.b.optimized
    assert c.a.macs == c.b.macs == espdsl.analyze("espnet", input_size=(1, 3, 64, 128),
                                                   alpha2=1, alpha3=1).totals.macs
    assert len(c.round_ratios) == 4 and c.ratio == pytest.approx(c.a.median_ms / c.b.median_ms)
    assert "ratio A/B" in format_bench(c)


def test_bench_takes_an_ir_or_a_built_model_and_sets_threads_back():
    ir = espdsl.load("cbr", input_size=(1, 3, 32, 32), **CBR)
    before = torch.get_num_threads()
    r = espdsl.bench(ir, runs=2, warmup=0, threads=1, matmul=False, optimize=False)
    assert r.threads == 1 and torch.get_num_threads() == before and not r.optimized
    model = espdsl.create_model("espnet_c", alpha2=1, alpha3=1, input_size=(1, 3, 64, 64))
    r = espdsl.bench(model, runs=2, warmup=0, matmul=False)
    assert r.optimized and r.input_size == (1, 3, 64, 64)


def test_bench_command_table_and_json():
    args = ["bench", "cbr", "-p", "M=3", "-p", "N=8", "--input", "1x3x32x32", "--runs", "3",
            "--warmup", "1"]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "median ms" in table.output and "of matmul" in table.output
    out = CliRunner().invoke(main, [*args, "--format", "json", "--vs", "default"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["a"]["macs"] == CBR_MACS and data["b"]["optimized"] is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_cuda_without_a_gpu_is_one_line():
    result = CliRunner().invoke(main, ["bench", "cbr", "-p", "M=3", "-p", "N=8", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA GPU is available" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bench_bad_input_size_is_one_line():
    result = CliRunner().invoke(main, ["bench", "cbr", "-p", "M=3", "-p", "N=8", "--input", "32x32"])
    assert result.exit_code == 2 and "bad input size" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_on_cuda_times_with_events():
    r = espdsl.bench("espnet", params={"alpha3": 1}, input_size=(1, 3, 256, 512), runs=5,
                     warmup=2, device="cuda")
    assert r.device == "cuda" and r.faults_per_run is None and 0 < r.min_ms <= r.max_ms
    assert r.matmul_gflops > 0
