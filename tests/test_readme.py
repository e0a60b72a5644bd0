"""Every command the README and the docs show runs as written (the way doctests run docstrings).

The rule, for README.md and every docs/*.md page (new sections included, nothing to register):

- Fenced blocks tagged ``bash``, ``sh``, ``shell`` or ``console`` run as one bash script
  (``set -euo pipefail``): each line is a command, ``\\`` continues a line, ``# ...`` comments
  are kept by bash. Lines in a ``console`` block (or in a ``text`` block) that start with ``$ ``
  are commands and the lines after them, up to the next ``$ `` line, are their printed output
  (stdout and stderr together): the test checks it line by line (trailing spaces ignored; a line
  ``...`` matches any number of lines). A shown error line (``error:``) may exit non-zero.
- Blocks tagged ``python`` run in a fresh interpreter; blocks made of ``>>>`` lines run as
  doctests. Untagged blocks (usage synopses) and ``yaml``/``json``/``text`` blocks without
  ``$ `` lines are data and do not run.
- Where: every block runs in its own copy of the repository's data folders (``zoo``, ``blocks``,
  ``docs``, ``analysis``, ``benchmarks``, ``templates``, ``notes``; the package itself is the
  installed one, as ``espdsl`` on PATH and ``python -m espdsl``), beside a link ``../shared`` to
  the reference data when this checkout has it. So ``espdsl compile zoo/espnet.yaml`` works as
  on a fresh clone, a command that writes (``-o docs/espnet.svg``) never touches the checkout,
  and blocks that read ``../shared/espnet-reference`` skip with a reason where it is absent.
- Not run: the commands of :data:`SKIP` (installing, and this suite itself), each with its
  reason; in a chain ``a && b`` only the skipped part is left out. A block can say more with an
  HTML comment on the line just before it: ``<!-- docs-test: skip REASON -->`` (not run) or
  ``<!-- docs-test: slow REASON -->`` (run only with ``-m slow``).
"""
from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import espdsl

from conftest import REFERENCE, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COPIED = ("zoo", "blocks", "docs", "analysis", "benchmarks", "templates", "notes")
SHELL = {"bash", "sh", "shell", "console"}

#: Commands shown but not run, and why (a regular expression matched against one command of a
#: chain ``a && b``, or a whole line).
SKIP = {
    r"^pip install\b": "installs into the environment the tests run in; CI (.ci/run) runs it",
    r"^(sudo )?apt(-get)? install\b": "installs a system package (graphviz); CI (.ci/run) runs it",
    r"^brew install\b": "installs a system package on macOS",
    r"^python -m pytest\b": "the test suite itself (this test is part of it)",
}
#: Scripts shown in the docs that take minutes at full size: run only with ``-m slow``.
SLOW = {
    r"^python benchmarks/bench_\w+\.py": "a full-size benchmark (minutes); run with -m slow",
}
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|slow)\s*(.*?)\s*-->")


@dataclass
class Block:
    """One fenced code block of a page."""
    page: Path
    line: int          # the line of the opening fence, 1-based
    lang: str
    text: str
    directive: tuple[str, str] | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the directive comment just before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(m.group(1)):])
            i += 1
        prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        d = DIRECTIVE.search(prev)
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n",
                           (d.group(1), d.group(2)) if d else None))
        i += 1
    return found


def is_console(block: Block) -> bool:
    return block.lang in {"console", "text", ""} and any(
        ln.startswith("$ ") for ln in block.text.splitlines())


def runnable(block: Block) -> bool:
    if is_console(block):
        return True
    if block.lang in SHELL:
        return True
    return block.lang in {"python", "py", "pycon"}


def logical_lines(text: str) -> list[str]:
    """Lines with ``\\`` continuations joined."""
    out, cur = [], ""
    for ln in text.splitlines():
        if ln.rstrip().endswith("\\"):
            cur += ln.rstrip()[:-1] + " "
            continue
        out.append(cur + ln)
        cur = ""
    if cur:
        out.append(cur)
    return out


def _matches(table: dict[str, str], command: str) -> str | None:
    command = command.strip()
    return next((why for pattern, why in table.items() if re.search(pattern, command)), None)


def shell_script(lines: list[str]) -> tuple[str, list[str]]:
    """The script to run (skipped commands dropped from their chains) and the reasons."""
    script, skipped = [], []
    for line in lines:
        code = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
        kept = []
        for part in code.split("&&"):
            why = _matches(SKIP, part)
            if why:
                skipped.append(f"{part.strip()}: {why}")
            elif part.strip():
                kept.append(part.strip())
        if kept:
            script.append(" && ".join(kept))
    return "\n".join(script), skipped


ALL = [b for page in PAGES for b in blocks_of(page) if runnable(b)]


@pytest.fixture(scope="module")
def shims(tmp_path_factory) -> dict[str, str]:
    """An environment where ``espdsl`` and ``python`` are this interpreter and its espdsl."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, body in (("espdsl", f'exec "{sys.executable}" -m espdsl "$@"'),
                       ("python", f'exec "{sys.executable}" "$@"')):
        path = bin_dir / name
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    package_root = str(Path(espdsl.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "100"
    env["MPLBACKEND"] = "Agg"
    return env


def checkout(tmp_path: Path) -> Path:
    """A fresh copy of the repository's data folders, with ``../shared`` beside it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, repo / name)
    for name in ("README.md", "pyproject.toml", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copyfile(ROOT / name, repo / name)
    if REFERENCE.is_dir():
        (tmp_path / "shared").symlink_to(REFERENCE.parent, target_is_directory=True)
    return repo


def check_output(expected: list[str], got: str, where: str) -> None:
    """``got`` line by line against ``expected`` (``...`` matches any lines)."""
    pattern = []
    for line in expected:
        pattern.append(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line.rstrip()) + r"\n")
    got_lines = "".join(ln.rstrip() + "\n" for ln in got.splitlines())
    assert re.fullmatch("".join(pattern), got_lines), (
        f"{where}: the page shows\n" + "\n".join(expected) + "\nthe command printed\n" + got)


def run_bash(script: str, repo: Path, env: dict, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("block", [
    pytest.param(b, marks=pytest.mark.slow) if (b.directive and b.directive[0] == "slow")
    or any(_matches(SLOW, ln) for ln in logical_lines(b.text)) else b
    for b in ALL], ids=[b.id for b in ALL])
def test_block_runs_as_written(block: Block, tmp_path, shims):
    if block.directive and block.directive[0] == "skip":
        pytest.skip(f"{block.id}: {block.directive[1] or 'marked skip'}")
    if "../shared/" in block.text and not REFERENCE.is_dir():
        pytest.skip(f"{block.id} reads the reference data, not found at {REFERENCE}")
    repo = checkout(tmp_path)
    if is_console(block):
        _run_console(block, repo, shims)
    elif block.lang in SHELL:
        script, skipped = shell_script(logical_lines(block.text))
        if script:
            done = run_bash(script, repo, shims)
            assert done.returncode == 0, f"{block.id} failed:\n{script}\n{done.stdout}\n{done.stderr}"
        elif skipped:
            pytest.skip("; ".join(skipped))
    elif block.text.lstrip().startswith(">>>"):
        _run_doctest(block, repo)
    else:
        path = repo / "_block.py"
        path.write_text(block.text, encoding="utf-8")
        done = subprocess.run([sys.executable, str(path)], cwd=repo, env=shims,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{block.id} failed:\n{block.text}\n{done.stdout}\n{done.stderr}"


def _run_console(block: Block, repo: Path, env: dict) -> None:
    steps: list[tuple[str, list[str]]] = []
    for line in logical_lines(block.text):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    ran = 0
    for command, expected in steps:
        script, skipped = shell_script([command])
        if not script:
            continue
        done = run_bash(script + " 2>&1", repo, env)
        shows_error = any("error:" in ln for ln in expected)
        assert done.returncode == 0 or shows_error, (
            f"{block.id}: '{command}' failed:\n{done.stdout}{done.stderr}")
        while expected and not expected[-1].strip():
            expected.pop()
        if expected:
            check_output(expected, done.stdout, f"{block.id}: {command}")
        ran += 1
    if not ran:
        pytest.skip(f"{block.id}: every command is in SKIP")


def _run_doctest(block: Block, repo: Path) -> None:
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        test = doctest.DocTestParser().get_doctest(block.text, {}, block.id, str(block.page),
                                                   block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"{block.id}: {runner.failures} doctest example(s) failed"
    finally:
        os.chdir(cwd)


def test_the_pages_have_blocks_to_run():
    """The extraction itself: the README's quick start is found and split as documented."""
    readme = [b for b in ALL if b.page.name == "README.md"]
    assert readme and readme[0].lang in SHELL
    script, skipped = shell_script(logical_lines(readme[0].text))
    assert script.splitlines()[0] == "espdsl compile zoo/espnet.yaml"
    assert [s.split(":")[0] for s in skipped][:2] == ["pip install torch==2.13.0", "pip install ."]
