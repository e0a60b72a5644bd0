"""Every command that writes files writes only the output the user named, whatever its input
holds: hostile text in a spec, a study, a checkpoint or on the command line is data, never a
path. For each such command: a run on a valid spec full of hostile text writes nothing but the
named output, and a run on hostile input that is refused writes nothing at all. "Anywhere" is
the working folder's parent (``tmp_path``) and the temporary folder (kept inside it).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from espdsl.cli import main

EVIL = '../../evil \\"\\"\\" $(touch pwned) <b>bold</b> ]; x [label=y'
NET = f"""model: net
doc: "{EVIL}"
params:
  C: 4
  s: {{type: str, default: "../../evil", choices: ["../../evil", "/tmp/evil"]}}
input: {{channels: 3, size: [16, 16]}}
nodes:
  - {{name: a, op: conv, out: C, kernel: 3, doc: "{EVIL}"}}
  - {{name: b, op: conv, out: 2, kernel: 1}}
meta: {{path: "../../evil", cmd: "$(touch pwned)"}}
predict:
  classes: [{{name: "../../evil", color: [1, 2, 3]}}, {{name: "<b>", color: [4, 5, 6]}}]
"""
BAD_NET = NET.replace("name: b,", "name: ../../evil,")
STUDY = "study: s\nbase: net.yaml\nvariants:\n  - {name: a, params: {C: 4}}\n  - {name: b, params: {C: 8}}\n"
BAD_STUDY = STUDY.replace("name: b,", "name: '../../evil',")
IMAGE = "x'; touch pwned ;'.png"

# command -> (arguments on valid input, on hostile input, the named output)
COMMANDS = {
    "compile-py": (["compile", "net.yaml", "-o", "out/net.py"], ["compile", "bad.yaml", "-o", "out/net.py"], "out/net.py"),
    "compile-pt": (["compile", "net.yaml", "-o", "out/net.pt"], ["compile", "bad.yaml", "-o", "out/net.pt"], "out/net.pt"),
    "render": (["render", "net.yaml", "-o", "out/net.dot"], ["render", "bad.yaml", "-o", "out/net.dot"], "out/net.dot"),
    "analyze": (["analyze", "net.yaml", "-o", "out/a.txt"], ["analyze", "bad.yaml", "-o", "out/a.txt"], "out/a.txt"),
    "compare": (["compare", "--modules", "esp,cbr", "-p", "N=8", "--size", "8x8", "-o", "out/c.txt"],
                ["compare", "--modules", "esp,../../evil", "-o", "out/c.txt"], "out/c.txt"),
    "schema": (["schema", "spec", "-o", "out/s.json"], ["schema", "../../evil", "-o", "out/s.json"], "out/s.json"),
    "predict": (["predict", "net.pt", IMAGE, "-o", "out/p"], ["predict", "bad.pt", IMAGE, "-o", "out/p"], "out/p"),
    "zoo": (["zoo", "s.yaml", "-o", "out/z", "--emit", "yaml,py"], ["zoo", "bad_s.yaml", "-o", "out/z"], "out/z"),
}


@pytest.fixture
def work(tmp_path, monkeypatch):
    """``tmp_path/work`` holding the inputs (a hostile checkpoint beside a good one), the working
    folder; ``tmp_path/tmp`` the temporary folder."""
    import torch
    import espdsl
    from espdsl.weights import save_checkpoint
    folder, tmp = tmp_path / "work", tmp_path / "tmp"
    folder.mkdir()
    tmp.mkdir()
    (folder / "out").mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    (folder / "net.yaml").write_text(NET, encoding="utf-8")
    (folder / "bad.yaml").write_text(BAD_NET, encoding="utf-8")
    (folder / "s.yaml").write_text(STUDY, encoding="utf-8")
    (folder / "bad_s.yaml").write_text(BAD_STUDY, encoding="utf-8")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / IMAGE)
    save_checkpoint(espdsl.create_model(folder / "net.yaml"), folder / "net.pt")
    raw = torch.load(folder / "net.pt", weights_only=True)
    raw["specs"]["../../evil"] = raw["specs"]["net"]
    torch.save(raw, folder / "bad.pt")
    return folder


def files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_writes_only_its_named_output(work, tmp_path, name):
    good, bad, output = COMMANDS[name]
    named = work / output
    before = files(tmp_path)
    result = CliRunner().invoke(main, bad)
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert files(tmp_path) == before, f"refused hostile input wrote: {set(files(tmp_path)) - set(before)}"
    result = CliRunner().invoke(main, good)
    assert result.exit_code == 0, (result.output, result.exception)
    changed = {p for p, t in files(tmp_path).items() if before.get(p) != t}
    outside = {p for p in changed if p != named and named not in p.parents}
    assert changed and not outside, f"{name} wrote outside {output}: {outside}"
    # '../../evil' from the working folder or the output folder: nothing there
    assert not any((base / "evil").exists() for base in (tmp_path, tmp_path.parent, work))
    assert not any("evil" in p.name for p in changed), changed
