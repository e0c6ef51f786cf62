"""Documentation is part of the feature: every policy field and every hook is documented (and
every hook tested), and the code in docs/ runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from envguard import hookspecs
from envguard.policy import schema_fields
from tests.conftest import EXAMPLE_POLICY, ROOT

DOCS = ROOT / "docs"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("envguard_"))
#: Pages read top to bottom as one session: their blocks run in order, in one folder that starts
#: empty (see test_walkthrough_runs_in_order). The other pages' blocks each run on their own.
WALKTHROUGHS = ("quickstart.md",)
#: A Python block of a walkthrough whose first line names a file (``# train.py``) is that file.
FILE_BLOCK = re.compile(r"# ([\w./-]+\.py)\n")


def test_every_policy_field_is_documented() -> None:
    text = (DOCS / "policy.md").read_text()
    missing = []
    for path, fields in schema_fields().items():
        for field in fields:
            dotted = ".".join((*path, field)).replace("*", "NAME")
            if f"`{dotted}`" not in text:
                missing.append(dotted)
    assert not missing, f"docs/policy.md does not document: {missing}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook: str) -> None:
    assert f"### `{hook}(" in (DOCS / "hooks.md").read_text(), f"{hook} not in docs/hooks.md"
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py"]
    assert any(hook in p.read_text() for p in tests), f"no test mentions {hook}"


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name in WALKTHROUGHS:
            continue
        for match in re.finditer(rf"```{language}\n(.*?)```", page.read_text(), re.S):
            found.append((page.name, match.group(1)))
    return found


def docs_env() -> dict[str, str]:
    """The environment a reader's shell has: this Python's scripts first, no ENVGUARD_ENV."""
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    for name in ("ENVGUARD_ENV", "ENVGUARD_CONFIG", "ENVGUARD_LINEAGE_URL"):
        env.pop(name, None)
    return env


def docs_workspace(folder: Path) -> dict[str, str]:
    """The folder a reader of the docs is in: the example policy, customers.csv registered as
    production data in the lineage log. Returns the environment to run commands with."""
    shutil.copy(EXAMPLE_POLICY, folder / "envguard.toml")
    (folder / "customers.csv").write_text("id,email\n1,ada@example.com\n")
    env = docs_env()
    subprocess.run(
        [sys.executable, "-m", "envguard", "data", "register", "customers.csv", "--env", "prod"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def output_matches(expected: list[str], actual: str) -> bool:
    """Does ``actual`` print exactly the ``expected`` lines? ``...`` inside a line stands for
    any text (a temporary path, a time, a random token); a line that is only ``...`` stands for
    any number of lines."""
    pattern = ""
    for line in expected:
        if line == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += "[^\n]*".join(map(re.escape, line.split("..."))) + r"\n"
    lines = actual.rstrip("\n").splitlines()
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in lines)) is not None


def run_console(page: str, session: str, folder: Path, env: dict[str, str]) -> None:
    """Run a console block's ``$ command`` lines in ``folder`` (one bash, so ``export`` and
    ``$?`` carry from one command to the next) and check what each printed (standard output
    and error together) against the lines after it."""
    commands: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    script = "rc=0\n" + "\n".join(
        f"echo '>>> {i}'\n(exit $rc); {cmd} 2>&1; rc=$?" for i, (cmd, _) in enumerate(commands)
    )
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=folder, env=env, check=False
    ).stdout
    outputs = re.split(r"^>>> \d+\n", out, flags=re.M)[1:]
    assert len(outputs) == len(commands), out
    for (command, expected), actual in zip(commands, outputs, strict=True):
        assert output_matches(expected, actual), f"{page}: {command}\n{actual}"


@pytest.mark.parametrize(("page", "code"), blocks("python"))
def test_python_in_docs_runs(page: str, code: str, tmp_path: Path) -> None:
    env = docs_workspace(tmp_path)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"{page}: {result.stderr}"


@pytest.mark.parametrize(("page", "session"), blocks("console"))
def test_console_sessions_in_docs_print_what_they_show(
    page: str, session: str, tmp_path: Path
) -> None:
    """``$ command`` lines run in a folder holding the example policy; the lines after each
    are what it must print (standard output and error together)."""
    run_console(page, session, tmp_path, docs_workspace(tmp_path))


@pytest.mark.parametrize("page", WALKTHROUGHS)
def test_walkthrough_runs_in_order(page: str, tmp_path: Path) -> None:
    """A walkthrough is followed as a reader follows it: in one empty folder, top to bottom.
    Console blocks run and must print what they show; a Python block whose first line names a
    file is written to that file; any other Python block runs; other blocks are not run."""
    env = docs_env()
    text = (DOCS / page).read_text()
    ran = 0
    for match in re.finditer(r"```(\w+)\n(.*?)```", text, re.S):
        language, code = match.groups()
        if language == "console":
            run_console(page, code, tmp_path, env)
        elif language == "python" and (named := FILE_BLOCK.match(code)):
            (tmp_path / named.group(1)).write_text(code)
        elif language == "python":
            script = tmp_path / "snippet.py"
            script.write_text(code)
            result = subprocess.run(
                [sys.executable, str(script)],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env=env,
                check=False,
            )
            assert result.returncode == 0, f"{page}: {result.stderr}"
        else:
            continue
        ran += 1
    assert ran, f"{page} has no block to run"


def test_output_matching_stands_in_only_where_asked() -> None:
    assert output_matches(["a ... c"], "a b b c\n")
    assert output_matches(["x", "...", "z"], "x\n1\n2\nz\n")
    assert output_matches(["x", "...", "z"], "x\nz\n")
    assert not output_matches(["a ... c"], "a b\nc\n")
    assert not output_matches(["x", "z"], "x\ny\nz\n")
    assert not output_matches(["x"], "x\ny\n")


def test_hook_example_in_docs_is_a_working_plugin() -> None:
    """The plugin example in docs/hooks.md registers and answers through the plugin manager."""
    from envguard.plugins import PluginManager

    (code,) = [c for page, c in blocks("python") if "envguard_check_promotion" in c]
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(textwrap.dedent(code), "hooks.md", "exec"), namespace)  # noqa: S102
    module = type(sys)("docs_example")
    module.__dict__.update(namespace)
    manager = PluginManager(environ={})
    manager.register(module, "docs-example")
    assert manager.infos["docs-example"].hooks == ["envguard_check_promotion"]
