"""The demo's story, step by step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from envguard.demo.data import write_customers

__all__ = ["Step", "run_demo"]


@dataclass
class Step:
    title: str
    command: list[str]
    expect_exit: int
    env: Mapping[str, str] = field(default_factory=dict)
    explain: str = ""


class Story:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.failures: list[str] = []
        self.report: Path | None = None
        self.number = 0
        self.base_env = {
            **os.environ,
            "ENVGUARD_ACTOR": "ada",
            "NO_COLOR": "1",
            "DVC_NO_ANALYTICS": "1",
        }
        self.base_env.pop("ENVGUARD_CONFIG", None)
        self.base_env.pop("ENVGUARD_LINEAGE_URL", None)

    def say(self, text: str) -> None:
        click.echo(text)

    def run(self, step: Step) -> str:
        self.number += 1
        click.echo()
        click.echo(click.style(f"[{self.number}] {step.title}", bold=True))
        env = {**self.base_env, **step.env}
        shown = " ".join(f"{k}={v}" for k, v in step.env.items())
        click.echo(
            click.style(f"$ {shown + ' ' if shown else ''}{' '.join(step.command)}", fg="cyan")
        )
        argv = step.command
        if argv[0] == "envguard":
            argv = [sys.executable, "-m", "envguard", *argv[1:]]
        result = subprocess.run(
            argv, cwd=self.workdir, env=env, capture_output=True, text=True, check=False
        )
        output = (result.stdout + result.stderr).rstrip()
        for line in output.splitlines():
            click.echo(f"    {line}")
        if result.returncode == step.expect_exit:
            verdict = click.style("as expected", fg="green")
        else:
            verdict = click.style(
                f"UNEXPECTED (exit {result.returncode}, expected {step.expect_exit})",
                fg="red",
                bold=True,
            )
            self.failures.append(step.title)
        if step.explain:
            click.echo(f"  -> {step.explain} [{verdict}]")
        return output


def run_demo(workdir: Path | None) -> int:
    """Play the story in ``workdir`` (a new temporary folder when None, kept afterwards so that
    the report can be opened). Returns the exit code."""
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="envguard-demo-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    story = Story(folder)
    _play(story, folder)
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


def _play(story: Story, folder: Path) -> None:
    from envguard.cli.policy_commands import default_policy_text

    story.say(click.style("envguard demo", bold=True) + f" — workspace {folder}")
    story.say("A team with three environments: train and test (non-production) and prod.")
    (folder / "envguard.toml").write_text(default_policy_text(), encoding="utf-8")
    raw = write_customers(folder / "prod" / "customers.csv")
    story.say(
        f"Synthetic production customer data with PII: {raw.relative_to(folder)} "
        f"(names, e-mails, phones, SSNs, card numbers and IPs in free text)."
    )

    story.run(
        Step(
            "The policy is valid",
            ["envguard", "policy", "validate"],
            0,
            explain="every problem would be listed at once, with file and field",
        )
    )
    story.run(
        Step(
            "Where am I?",
            ["envguard", "env"],
            0,
            {"ENVGUARD_ENV": "train"},
            explain="the environment comes from ENVGUARD_ENV, else the policy's default",
        )
    )
    story.run(
        Step(
            "The platform team declares the customer table production data",
            ["envguard", "data", "register", "prod/customers.csv", "--env", "prod"],
            0,
            {"ENVGUARD_ACTOR": "margaret", "ENVGUARD_ENV": "prod"},
            explain="recorded by content digest in the lineage log",
        )
    )
    story.run(
        Step(
            "A training job in `train` wants the raw production data",
            ["envguard", "data", "check", "prod/customers.csv"],
            1,
            {"ENVGUARD_ENV": "train"},
            explain="refused: production data in a non-production environment",
        )
    )
    dev = folder / "dev"
    dev.mkdir(exist_ok=True)
    shutil.copy(raw, dev / "customers_export.csv")
    story.say("\nSomeone copies the raw file into the development folder under another name...")
    story.run(
        Step(
            "...and a data check in `train` still knows where it came from",
            ["envguard", "data", "check", "dev/customers_export.csv"],
            1,
            {"ENVGUARD_ENV": "train"},
            explain="a copy has the same digest, so it keeps its production origin",
        )
    )
    story.run(
        Step(
            "In `prod`, the same data may be used",
            ["envguard", "data", "check", "prod/customers.csv"],
            0,
            {"ENVGUARD_ENV": "prod"},
            explain="allowed, and recorded",
        )
    )
    story.run(
        Step(
            "The data scientist masks the production data, as the refusal said",
            ["envguard", "mask", "prod/customers.csv", "-o", "dev/customers_masked.csv"],
            0,
            {"ENVGUARD_ENV": "train"},
            explain="masked per the policy's column rules, validated with Great Expectations, "
            "and a signed proof written and recorded",
        )
    )
    story.run(
        Step(
            "The masked data may be used in `train`",
            ["envguard", "data", "check", "dev/customers_masked.csv"],
            0,
            {"ENVGUARD_ENV": "train"},
            explain="allowed: its production lineage passes through a masking proof that verifies",
        )
    )
    story.run(
        Step(
            "Anyone can verify the proof",
            ["envguard", "proof", "verify", "dev/customers_masked.csv.envguard-proof.json"],
            0,
            explain="signature, digest of the data, validation and policy all hold",
        )
    )
    story.run(Step("Every decision is in the lineage log", ["envguard", "audit", "log"], 0))
    story.run(
        Step(
            "Sign a checkpoint of the log",
            ["envguard", "audit", "checkpoint"],
            0,
            explain="truncating or rewriting the log is now detectable",
        )
    )
    story.run(
        Step(
            "The auditor verifies the log",
            ["envguard", "audit", "verify"],
            0,
            explain="the hash chain and every signed checkpoint verify",
        )
    )
    story.run(
        Step(
            "The auditor's evidence report, organised by I&S-05's auditing guidelines",
            ["envguard", "audit", "report", "-o", "report.html", "--json", "report.json"],
            0,
            explain="one self-contained HTML file; open it in a browser",
        )
    )
    story.report = folder / "report.html"
