"""`espdsl compile SPEC -o net.py`: standalone PyTorch source equivalent to the compiled module."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import espdsl
from conftest import block_params
from espdsl.cli import main


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, params, size", [
    ("espnet", {"alpha3": 2, "skip": "b1"}, (1, 3, 64, 96)),
    ("espnet_c", {"alpha3": 1, "module": "shufflenet"}, (1, 3, 32, 32)),
    *[(b, {**block_params(b), "M": 100}, (1, 100, 12, 12))
      for b in ["esp", "mobilenet", "shufflenet", "inception", "resnext", "asp", "resnet", "up"]],
])
def test_generated_source_matches_the_compiled_module(name, params, size, tmp_path):
    declared = espdsl.open_spec(name, espdsl.registry.default_registry()).params
    params = {k: v for k, v in params.items() if k in declared}
    out = tmp_path / f"gen_{name}.py"
    args = ["compile", name, "--input", "x".join(map(str, size)), "-o", str(out)]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    source = out.read_text()
    assert "espdsl" not in source.split('"""', 2)[2]  # only torch is imported
    compiled = espdsl.create_model(name, input_size=size, **params) if name.startswith("espnet") \
        else espdsl.create_block(name, input_size=size, **params)
    compiled.eval()
    with torch.no_grad():  # random BN statistics, so the comparison sees them
        for m in compiled.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    cls = [v for k, v in vars(load_module(out)).items()
           if isinstance(v, type) and issubclass(v, torch.nn.Module)][0]
    standalone = cls().eval()
    standalone.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(size)
    with torch.no_grad():
        torch.testing.assert_close(standalone(x), compiled(x), rtol=0, atol=0)


def test_generated_source_runs_as_a_script(tmp_path):
    out = tmp_path / "net.py"
    CliRunner().invoke(main, ["compile", "esp", "-p", "M=8", "-p", "N=8", "-o", str(out)])
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "torch.Size([1, 8, 56, 56])"
