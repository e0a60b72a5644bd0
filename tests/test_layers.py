"""The import layers of pyproject.toml's [tool.importlinter] contracts hold: the grammar, the
resolver, the limits and the runtime import nothing above them, and the analysis, the passes,
rendering and the summaries never reach up into the API, the CLI or the studies. Imports inside
functions count (grimp reads every import statement)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept(capsys, monkeypatch):
    lint = pytest.importorskip("importlinter.cli", reason="import-linter is in the test extra")
    monkeypatch.chdir(ROOT)
    code = lint.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                             no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out


def test_the_contracts_name_modules_that_exist():
    import tomllib

    import espdsl
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    package = Path(espdsl.__file__).parent
    names = {m for c in contracts["contracts"] for key in ("source_modules", "forbidden_modules")
             for m in c[key]}
    for name in sorted(names):
        rel = Path(*name.split(".")[1:])
        assert (package / rel).is_dir() or (package / rel).with_suffix(".py").is_file(), name
