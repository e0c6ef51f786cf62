"""The demo's machinery: each step's command, run, printed, and checked against the story."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from envguard.demo.processes import Processes
from envguard.demo.server import DemoServer

__all__ = ["Step", "Story", "run_demo"]

# The people of the story, as MLflow users of the demo's server and ENVGUARD_ACTOR on the command
# line; their roles are the default policy's [roles].
USERS = ("ada", "grace", "linus", "margaret")
SERVER_DEADLINE_S = 600.0  # MLflow migrates two databases at its first start; minutes when busy


@dataclass
class Step:
    """One command of the story, and the decision the story expects of it."""

    title: str
    command: list[str]
    expect_exit: int
    env: Mapping[str, str] = field(default_factory=dict)
    explain: str = ""
    expect_text: Sequence[str] = ()  # each must appear in the output, else the step failed
    tail: int | None = None  # print only the last N lines of the output (a long traceback)
    user: str | None = None  # act as this MLflow user of the demo's server


class Story:
    def __init__(self, workdir: Path, processes: Processes, server: DemoServer) -> None:
        self.workdir = workdir
        self.processes = processes
        self.server = server
        self.failures: list[str] = []
        self.report: Path | None = None
        self.number = 0
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ENVGUARD_", "MLFLOW_", "_MLFLOW"))
        }
        self.base_env.update(
            ENVGUARD_ACTOR="ada",
            NO_COLOR="1",
            MLFLOW_DISABLE_TELEMETRY="true",
            DVC_NO_ANALYTICS="1",
            GIT_AUTHOR_NAME="envguard demo",
            GIT_AUTHOR_EMAIL="demo@envguard.invalid",
            GIT_COMMITTER_NAME="envguard demo",
            GIT_COMMITTER_EMAIL="demo@envguard.invalid",
        )

    def say(self, text: str) -> None:
        click.echo(text)

    def run(self, step: Step) -> str:
        self.number += 1
        click.echo()
        click.echo(click.style(f"[{self.number}] {step.title}", bold=True))
        env = {**self.base_env, **step.env}
        shown = dict(step.env)
        if step.user is not None:
            env.update(self.server.credentials(step.user), ENVGUARD_ACTOR=step.user)
            shown["MLFLOW_TRACKING_USERNAME"] = step.user
        prefix = " ".join(f"{k}={v}" for k, v in shown.items())
        command = " ".join(step.command)
        click.echo(click.style(f"$ {prefix + ' ' if prefix else ''}{command}", fg="cyan"))
        began = time.monotonic()
        code, output = self.processes.run(step.command, env)
        took = time.monotonic() - began
        lines = output.rstrip().splitlines()
        if step.tail is not None and len(lines) > step.tail:
            click.echo(f"    ... ({len(lines) - step.tail} lines above)")
            lines = lines[-step.tail :]
        for line in lines:
            click.echo(f"    {line}")
        missing = [text for text in step.expect_text if text not in output]
        if code == step.expect_exit and not missing:
            verdict = click.style("as expected", fg="green")
        else:
            problems = (
                [f"exit {code}, expected {step.expect_exit}"] if code != step.expect_exit else []
            )
            problems += [f"missing {missing!r} in the output"] if missing else []
            verdict = click.style(f"UNEXPECTED ({'; '.join(problems)})", fg="red", bold=True)
            self.failures.append(step.title)
        click.echo(f"  -> {step.explain or 'done'} [{verdict}, {took:.1f} s]")
        return output


def run_demo(workdir: Path | None) -> int:
    """Play the story in ``workdir`` (a new temporary folder when None, kept afterwards so that
    the report can be opened). The demo's MLflow server is stopped whatever happens. Returns the
    exit code: 0 only when every decision was the expected one."""
    from envguard.demo.acts import ACTS

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="envguard-demo-")) if workdir is None else workdir
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    processes = Processes(folder)
    server = DemoServer(folder, folder / "envguard.toml", USERS)
    story = Story(folder, processes, server)
    try:
        for act in ACTS:
            act(story)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: stopping the demo's MLflow server", err=True)
        return 130
    except RuntimeError as exc:  # the server did not start
        click.echo(click.style(f"demo FAILED: {exc}", fg="red", bold=True), err=True)
        return 1
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    click.echo()
    if story.failures:
        failed = ", ".join(story.failures)
        click.echo(click.style(f"demo FAILED in {elapsed:.0f} s: {failed}", fg="red", bold=True))
        return 1
    done = f"demo finished in {elapsed:.0f} s; every decision was as expected."
    click.echo(click.style(done, fg="green", bold=True))
    click.echo(f"Workspace: {folder}")
    if story.report is not None:
        click.echo(f"Evidence report: {story.report}")
    return 0
