"""How the CLI shows results and errors: plain lines for people, ``--json`` for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import click

__all__ = ["emit_json", "error_payload", "heading", "kv_lines", "style_outcome"]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def heading(text: str) -> str:
    return click.style(text, bold=True)


def kv_lines(pairs: Iterable[tuple[str, Any]]) -> str:
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in items)


_OUTCOME_COLOURS = {"allow": "green", "deny": "red", "warn": "yellow", "record": "cyan"}


def style_outcome(outcome: str) -> str:
    return click.style(outcome.upper(), fg=_OUTCOME_COLOURS.get(outcome), bold=True)


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The JSON shape of an error, for ``--json`` callers."""
    from envguard.errors import Denied, PolicyError

    data: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, PolicyError):
        data["problems"] = [
            {"file": p.file, "field": p.field, "message": p.message} for p in exc.problems
        ]
    if isinstance(exc, Denied):
        data["decision"] = exc.decision.to_dict()
    return data


def wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def print_error(exc: BaseException, argv: list[str]) -> None:
    if wants_json(argv):
        emit_json(error_payload(exc))
    lines = str(exc).splitlines() or [type(exc).__name__]
    prefix = click.style("error:", fg="red", bold=True)
    for line in lines:
        click.echo(f"{prefix} {line}", err=True)
    sys.stderr.flush()
