"""Untrusted files: an espdsl checkpoint is data, never instructions. Loading one is checked
against the format (every key, type and size) before anything in it is used, and writes no file
at all: its stored specs are registered as texts in memory.

Every hostile checkpoint here is a real file written by ``torch.save``, loaded through
``create_model`` and ``espdsl predict``; each test checks the error line and that nothing
appeared anywhere: not in the working folder, not in its parent, not in the temporary folder.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.errors import EspdslError, WeightsError
from espdsl.weights import save_checkpoint

NET = ("model: tiny\ninput: {channels: 3, size: [16, 16]}\nparams: {N: 8}\n"
       "nodes:\n  - {name: a, block: cbr, N: N}\n  - {name: b, op: conv, out: 2, kernel: 1}\n")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, dict]:
    """A real espdsl checkpoint of a small network using a library block, and what it holds."""
    folder = tmp_path_factory.mktemp("good")
    (folder / "tiny.yaml").write_text(NET)
    path = folder / "net.pt"
    save_checkpoint(espdsl.create_model(folder / "tiny.yaml", N=4), path)
    return path, torch.load(path, weights_only=True)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """``tmp_path/work`` as the working folder, ``tmp_path/tmp`` as the temporary folder; the
    returned function lists every file under ``tmp_path`` (the parent of the working folder)."""
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def files() -> set[Path]:
        return {p for p in tmp_path.rglob("*")}
    return files


def altered(good: tuple[Path, dict], folder: Path, change) -> Path:
    """``good``'s checkpoint with ``change`` applied to a copy of its dict, saved as net.pt."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good[1].items()}
    change(raw)
    path = folder / "net.pt"
    torch.save(raw, path)
    return path


def rename(name: str):
    """The root spec stored under ``name`` (and the checkpoint's name pointing at it)."""
    def change(raw: dict) -> None:
        raw["specs"][name] = raw["specs"].pop("tiny")
        raw["name"] = name
    return change


def add_spec(name: str):
    def change(raw: dict) -> None:
        raw["specs"][name] = "block: evil\nparams: {M: 3}\nnodes: [{name: a, op: relu}]\n"
    return change


HOSTILE = {
    "absolute": "{root}/evil",
    "dotdot": "../../evil",
    "dotdot-yaml": "../evil.yaml",
    "nul": "evil\x00.yaml",
    "long": "e" * 5000,
    "newline": "tiny\n",
    "slash": "sub/evil",
}


def hostile(key: str, root: Path) -> str:
    return HOSTILE[key].replace("{root}", str(root))


@pytest.mark.parametrize("key", sorted(HOSTILE))
@pytest.mark.parametrize("how", ["extra", "root"])
def test_hostile_spec_names_write_nothing_through_create_model(good, sandbox, tmp_path, key, how):
    name = hostile(key, tmp_path)
    path = altered(good, Path.cwd(), add_spec(name) if how == "extra" else rename(name))
    before = sandbox()
    with pytest.raises(EspdslError) as info:
        espdsl.create_model(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: error: stored "), text
    if key == "long":
        assert "longer than the name_length limit" in text, text
    else:
        assert " is not a name; hint: names are identifiers" in text, text
    assert "\n" not in text
    assert sandbox() == before, "loading a checkpoint wrote a file"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.yaml").exists()


@pytest.mark.parametrize("key", ["absolute", "dotdot", "nul"])
def test_hostile_spec_names_write_nothing_through_predict(good, sandbox, tmp_path, key):
    import numpy as np
    from PIL import Image
    path = altered(good, Path.cwd(), add_spec(hostile(key, tmp_path)))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save("a.png")
    before = sandbox()
    result = CliRunner().invoke(main, ["predict", "net.pt", "a.png", "-o", "out"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("net.pt: error: stored spec name "), lines
    assert "Traceback" not in result.output
    assert sandbox() == before, "predict on a hostile checkpoint wrote a file"


MALFORMED = [
    # (id, change, message)
    ("missing-specs", lambda r: r.pop("specs"), r"the espdsl checkpoint has no 'specs'"),
    ("missing-name", lambda r: r.pop("name"), r"the espdsl checkpoint has no 'name'"),
    ("missing-state", lambda r: r.pop("state_dict"), r"has no 'state_dict'"),
    ("extra-key", lambda r: r.update(spec={}), r"unknown key 'spec' in the espdsl checkpoint; "
                                               r"hint: did you mean 'specs'\?"),
    ("specs-list", lambda r: r.update(specs=["model: x"]), r"'specs' is a list, not a mapping"),
    ("specs-empty", lambda r: r.update(specs={}), r"'specs' is empty"),
    ("spec-not-text", lambda r: r["specs"].update(cbr=b"x"), r"stored spec 'cbr' is a bytes, not YAML text"),
    ("spec-name-int", lambda r: r["specs"].update({3: "x"}), r"stored spec name 3 is a int, not a name"),
    ("spec-too-big", lambda r: r["specs"].update(cbr="#" * (300 << 10)), r"stored spec 'cbr' is larger than 256 KiB"),
    ("name-not-stored", lambda r: r.update(name="other"), r"the stored network 'other' is not among the stored specs"),
    ("name-int", lambda r: r.update(name=7), r"stored network name 7 is a int, not a name"),
    ("kind-bad", lambda r: r.update(kind="script"), r"'kind' is 'script', not 'block' or 'model'"),
    ("kind-mismatch", lambda r: r.update(kind="block"), r"the checkpoint says 'tiny' is a block, its stored spec defines a model"),
    ("version-text", lambda r: r.update(version="1"), r"'version' is a str, not a whole number"),
    ("version-2", lambda r: r.update(version=2), r"espdsl checkpoint version 2 is not supported; hint: this espdsl reads version 1"),
    ("params-list", lambda r: r.update(params=[1]), r"'params' is a list, not a mapping"),
    ("param-tensor", lambda r: r["params"].update(N=torch.zeros(1)), r"stored parameter 'N' is a Tensor, not a bool, int, float or str"),
    ("param-name", lambda r: r["params"].update({"a b": 1}), r"stored parameter name 'a b' is not a name"),
    ("param-value-type", lambda r: r["params"].update(N=0.5), r"^net.pt: error: parameter 'N' of model 'tiny' must be int, got float 0.5"),
    ("param-value-huge", lambda r: r["params"].update(N=2 ** 40), r"^net.pt: error: parameter 'N' of model 'tiny' is 1,099,511,627,776, larger than the int limit"),
    ("input-size-text", lambda r: r.update(input_size="1x3x16x16"), r"'input_size' is '1x3x16x16', not a list of 2 to 4 whole numbers"),
    ("input-size-zero", lambda r: r.update(input_size=[1, 3, 0, 16]), r"'input_size' \[1, 3, 0, 16\] holds 0, not a size >= 1"),
    ("input-size-huge", lambda r: r.update(input_size=[1, 3, 2 ** 40, 16]), r"'input_size' holds 1,099,511,627,776, larger than the int limit"),
    ("input-size-bool", lambda r: r.update(input_size=[True, 3, 16, 16]), r"not a list of 2 to 4 whole numbers"),
    ("state-list", lambda r: r.update(state_dict=[torch.zeros(1)]), r"'state_dict' is a list, not a mapping"),
    ("state-value", lambda r: r["state_dict"].update(w=3), r"'state_dict' entry 'w' is a int, not a tensor"),
    ("passes-unknown", lambda r: r.update(passes=["rm_rf"]), r"stored pass 'rm_rf' is not one of espdsl's passes"),
    ("passes-text", lambda r: r.update(passes="fold_batchnorm"), r"'passes' is 'fold_batchnorm', not a list of pass names"),
    ("quantized-text", lambda r: r.update(quantized="int8"), r"'quantized' is a str, not a mapping"),
    ("quantized-unknown-key", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "code": "import os"}), r"unknown key 'code' in 'quantized'"),
    ("quantized-observer-not-tensor", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {"a.activation_post_process": [1.0]}}), r"'quantized' observers entry 'a.activation_post_process' is not a named tensor"),
    ("quantized-agreement-percent", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "min_agreement": 99.0}), r"'quantized' min_agreement is 99.0, not a fraction of pixels \(0 to 1\)"),
    ("quantized-agreement-nan", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "agreement": float("nan")}), r"'quantized' agreement is nan, not a fraction"),
    ("quantized-validation-text", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "validation": "1"}), r"'quantized' validation is a str, not a int"),
    ("quantized-validation-negative", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "validation": -1}), r"'quantized' counts a negative number of images"),
    ("quantized-concat-bad", lambda r: r.update(quantized={"scheme": "pt2e-x86-inductor", "float": [], "observers": {}, "concat": "int4"}), r"'quantized' concat is 'int4', not 'int8' or 'fp32'"),
    ("quantized-no-scheme", lambda r: r.update(quantized={"float": [], "observers": {}}), r"'quantized' has no 'scheme'"),
    ("spec-bad-yaml", lambda r: r["specs"].update(tiny="model: tiny\nnodes: [\n"), r"^net.pt:spec/tiny:\d+:\d+: error: invalid YAML"),
    ("spec-other-name", lambda r: r["specs"].update(cbr=r["specs"]["cbr"].replace("block: cbr", "block: cbx")),
     r"^net.pt:spec/cbr:1:\d+: error: block 'cbx' is stored under the name 'cbr'"),
    ("spec-missing-block", lambda r: r["specs"].pop("cbr"), r"^net.pt:spec/tiny:5:\d+: error: unknown block or model 'cbr'"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_checkpoints_give_one_located_line(good, sandbox, case):
    import re
    import time
    import numpy as np
    from PIL import Image
    _, change, message = case
    altered(good, Path.cwd(), change)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save("a.png")
    before = sandbox()
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["predict", "net.pt", "a.png", "-o", "out"])
    elapsed = time.perf_counter() - start
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("net.pt"), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert sandbox() == before
    assert elapsed < 1.0, f"refused in {elapsed:.2f} s"


def test_a_legitimate_checkpoint_loads_identically(good, sandbox):
    """The in-memory registry rebuilds the same network: same IR, same weights, same output."""
    path, raw = good
    before = sandbox()
    model = espdsl.create_model(str(path)).eval()
    assert sandbox() == before, "loading a good checkpoint wrote a file"
    assert model.espdsl_ir.params["N"] == 4
    assert set(raw["specs"]) == {"tiny", "cbr"}
    state = model.state_dict()
    assert state.keys() == raw["state_dict"].keys()
    assert all(torch.equal(state[k], raw["state_dict"][k]) for k in state)
    reference = espdsl.create_model(path.parent / "tiny.yaml", N=4).eval()
    reference.load_state_dict(raw["state_dict"])
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    # errors inside a stored spec point into it: net.pt:spec/NAME:line:col
    assert {s.loc.file for s in model.espdsl_ir.scopes.values() if s.loc and ":spec/" in
            s.loc.file} == {f"{path}:spec/tiny", f"{path}:spec/cbr"}


def test_a_plain_state_dict_is_not_an_espdsl_checkpoint(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="is a plain state_dict, not an espdsl checkpoint"):
        espdsl.create_model(str(tmp_path / "w.pt"))


@pytest.mark.parametrize("name, message", [
    ("a\x00b.pt", "no such checkpoint file"),
    ("x" * 300 + ".pt", "cannot read the checkpoint (File name too long)"),
    ("fifo.pt", "is not a regular file"),
])
def test_odd_checkpoint_paths_give_one_line(tmp_path, monkeypatch, name, message):
    """A name too long for the file system, a NUL character, a FIFO (which would block
    reading): one line, not an OSError or a hang."""
    import os
    monkeypatch.chdir(tmp_path)
    if name == "fifo.pt":
        os.mkfifo(name)
    with pytest.raises(WeightsError) as info:
        espdsl.create_model(name)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_readme_example(good, sandbox):
    """README's 'Untrusted files': a checkpoint storing a spec under a CI workflow's path gives
    the line the README shows (this test builds the altered checkpoint the README describes)."""
    import numpy as np
    from PIL import Image
    altered(good, Path.cwd(), add_spec("../../.github/workflows/ci"))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save("city.png")
    before = sandbox()
    result = CliRunner().invoke(main, ["predict", "net.pt", "city.png", "-o", "out"])
    assert result.exit_code == 2
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ espdsl predict net.pt city.png -o out\n", 1)[1].split("\n", 1)[0]
    assert result.output == shown + "\n" == (
        "net.pt: error: stored spec name '../../.github/workflows/ci' is not a name; hint: names "
        "are identifiers (letters, digits, '_'); this checkpoint was not written by espdsl, or "
        "was altered\n")
    assert sandbox() == before


def test_an_unknown_parameter_for_a_checkpoint_is_refused(good):
    """-p names a parameter the stored network does not declare: refused, not ignored."""
    with pytest.raises(EspdslError, match=r"unknown parameter 'n' for model 'tiny' stored in the "
                                          r"checkpoint; hint: valid choices: N"):
        espdsl.create_model(str(good[0]), n=8)


# -- the peek: a malformed checkpoint refused before torch is imported ---------------------------

@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_the_peek_refuses_only_what_the_full_load_refuses(good, sandbox, case):
    """espdsl.checkpoint_peek reads the pickle without torch: where it refuses, its line is the
    full load's line; where it cannot tell, the full load decides."""
    from espdsl.checkpoint_peek import peek
    _, change, _ = case
    path = altered(good, Path.cwd(), change)
    with pytest.raises(EspdslError) as full:
        espdsl.create_model(str(path))
    try:
        peek(path)
    except EspdslError as exc:
        assert str(exc) == str(full.value)


def test_the_peek_passes_a_good_checkpoint(good):
    from espdsl.checkpoint_peek import peek
    assert peek(good[0]) is None


def test_a_hostile_checkpoint_is_refused_before_torch_is_imported(good, tmp_path):
    """The cold-process cost of a refusal is Python and espdsl's CLI, not torch's import."""
    import subprocess
    import sys
    import numpy as np
    from PIL import Image
    altered(good, tmp_path, lambda r: r["specs"].update({"../../x": "block: x"}))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    code = ("import sys\nfrom espdsl.cli import main\ntry:\n"
            "    main(['predict', 'net.pt', 'a.png', '-o', 'out'], standalone_mode=False)\n"
            "except SystemExit as exc:\n    print('exit', exc.code)\n"
            "print('torch imported:', 'torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120,
                         env={**__import__("os").environ,
                              "PYTHONPATH": str(Path(espdsl.__file__).parent.parent)})
    assert "stored spec name '../../x' is not a name" in run.stdout + run.stderr, run
    assert "exit 2" in run.stdout and "torch imported: False" in run.stdout, run
    assert not (tmp_path / "out").exists()


class _Evil:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.target}",)


def test_the_peek_runs_nothing_a_pickle_names(good, sandbox):
    """A global the peek does not know stops it (no call is made); torch's weights_only loader
    then refuses the file with one line."""
    from espdsl.checkpoint_peek import peek
    target = Path.cwd() / "pwned"
    path = altered(good, Path.cwd(), lambda r: r.update(extra=_Evil(target)))
    assert peek(path) is None
    assert not target.exists()
    with pytest.raises(WeightsError, match=r"net.pt: error: ") as refused:
        espdsl.create_model(str(path))
    assert "\n" not in str(refused.value)
    assert not target.exists()
