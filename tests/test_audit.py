"""The places where text from a spec, a study, a checkpoint, an image path or the command line
could become a file path, a module name, a regex, a format string or code, each with a test
that a hostile value is refused or made inert (the table is in docs/security.md; the places
tested elsewhere name their test there).
"""
from __future__ import annotations

import re
import time

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.errors import EspdslError


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("pattern", ["(a+)+", "a*", "a\\d", "[ab]", "a|b"])
def test_key_map_patterns_are_never_regexes(pattern):
    """A key map's pattern is dotted segments of key text and {name}: regex syntax in it is
    literal text (the literal parts reach re only through re.escape), so it matches the key
    that spells it and nothing a regex would have matched, and a pattern built to backtrack
    answers at once."""
    from espdsl.keymap import KeyMap
    rule = KeyMap.parse("other", {"keys": [[f"^{pattern}.", "b."]]}).rules[0]
    assert rule.match([pattern, "weight"], 0) == {}
    for key in ("a", "aa", "ab", "b", "a1"):
        assert rule.match([key, "weight"], 0) is None
    start = time.perf_counter()
    assert KeyMap.parse("x", {"keys": [["(a+)+", "b"]]}).rules[0].match(["a" * 5000 + "!"], 0) \
        is None
    assert time.perf_counter() - start < 1.0


def test_list_patterns_are_globs_not_regexes():
    """``espdsl list PATTERN`` goes through fnmatch: regex syntax matches nothing, and a pattern
    built to backtrack answers at once."""
    code, out = run("list", "(e+)+$")
    assert code == 0 and "esp" not in out
    start = time.perf_counter()
    code, out = run("list", "*e" * 40 + "x")
    assert code == 0 and time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name", ["../../x", "os.path", "options", "_private", "compile.py"])
def test_command_names_never_become_module_names(name):
    """The CLI imports a command's module only for a name in the package's own listing."""
    code, out = run(name)
    assert code == 2 and f"No such command '{name}'" in out


@pytest.mark.parametrize("name", ["__class__", "__dict__", "current"])
def test_limit_names_never_become_attributes(name):
    code, out = run("--limit", f"{name}=1", "list")
    assert code == 2 and f"unknown limit '{name}'" in out


@pytest.mark.parametrize("section, text", [
    ("ratios", "  - {name: r, of: a, to: a, quantity: __class__}\n"),
    ("columns", "  - {name: r, of: __dict__, scope: a}\n"),
])
def test_study_quantities_never_become_attributes(tmp_path, section, text):
    """A study's quantities name fields of the analysis (getattr): only a closed set passes."""
    study = tmp_path / "s.yaml"
    study.write_text("study: s\nbase: espnet_c\nvariants: [{name: a, params: {alpha3: 1}}]\n"
                     f"{section}:\n{text}")
    code, out = run("zoo", str(study))
    assert code == 2 and out.startswith(f"{study}:5:"), out


def test_a_checkpoints_stored_blocks_folders_are_never_read(tmp_path):
    """A stored spec's ``blocks:`` (folders relative to a spec file) is not followed: every
    block a checkpoint uses is stored in it, and a checkpoint is not a folder."""
    spec = tmp_path / "net.yaml"
    spec.write_text("model: net\ninput: {channels: 3, size: [8, 8]}\n"
                    "nodes: [{name: a, block: cbr, N: 4}]\n")
    path = tmp_path / "net.pt"
    from espdsl.weights import save_checkpoint
    save_checkpoint(espdsl.create_model(spec), path)
    raw = torch.load(path, weights_only=True)
    # followed, the first would be refused as "no such block folder"
    raw["specs"]["net"] += f"blocks: [{tmp_path / 'nowhere'}, ../../etc, /dev]\n"
    torch.save(raw, path)
    model = espdsl.create_model(str(path))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_render_labels_escape_spec_text(tmp_path):
    """Spec text reaches Graphviz only inside escaped HTML labels (and dot runs without a shell)."""
    spec = tmp_path / "net.yaml"
    evil = '<i>x</i> \\"]; evil [label=y'
    spec.write_text(f'model: net\nparams:\n  s: {{type: str, default: "{evil}"}}\n'
                    "input: {channels: 3, size: [8, 8]}\nnodes: [{name: a, op: relu}]\n")
    out = tmp_path / "net.dot"
    code, text = run("render", str(spec), "-o", str(out))
    assert code == 0, text
    dot = out.read_text()
    assert "<i>x</i>" not in dot and "&lt;i&gt;x&lt;/i&gt;" in dot
    assert '"]; evil' not in dot


def test_the_spec_cache_names_files_by_digest(tmp_path, monkeypatch):
    """The parsed-spec cache names its files after a digest of the text, never the text."""
    from espdsl import doccache
    cache = tmp_path / "cache"
    monkeypatch.setenv("ESPDSL_CACHE_DIR", str(cache))
    spec = tmp_path / "net.yaml"
    spec.write_text('model: net\ndoc: "../../evil"\ninput: {channels: 3, size: [8, 8]}\n'
                    "nodes: [{name: a, op: relu}]\n")
    espdsl.load(spec)
    names = [p.name for p in cache.rglob("*") if p.is_file()]
    assert doccache.cache_dir() is not None and names
    assert all(re.fullmatch(r"[0-9a-f]{16,}\.json", n) for n in names), names
    assert not (tmp_path.parent / "evil").exists()
