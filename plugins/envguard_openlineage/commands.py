"""``envguard audit export --format openlineage -o FILE|URL``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envguard.errors import ConfigError, InputError

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

__all__ = ["export_command", "post_events", "write_events"]

DEFAULT_ENDPOINT = "api/v1/lineage"


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["openlineage"]),
    default="openlineage",
    show_default=True,
    help="The export format.",
)
@click.option(
    "-o",
    "--output",
    "target",
    required=True,
    help="A file (JSON lines, one event a line) or an http(s):// URL to POST each event to "
    f"(a URL without a path posts to /{DEFAULT_ENDPOINT}).",
)
@click.option("--namespace", default="envguard", show_default=True, help="OpenLineage namespace.")
@click.option("--since", help="Only events recorded at or after this UTC time (ISO 8601).")
def export_command(fmt: str, target: str, namespace: str, since: str | None) -> None:
    """Export the lineage log as OpenLineage RunEvents: runs, datasets and masking steps, with
    envguard's environment and masking-proof facets."""
    try:
        from envguard_openlineage.events import build_events
    except ImportError as exc:
        raise ConfigError(
            f"the OpenLineage export needs openlineage-python ({exc.name} is missing); "
            "install it with: pip install 'envguard[openlineage]'"
        ) from None
    from envguard.cli.audit_commands import _since
    from envguard.runtime import current

    events = build_events(current(), namespace, _since(since))
    if target.startswith(("http://", "https://")):
        post_events(events, target)
    else:
        write_events(events, Path(target))
    runs = len({e.run.runId for e in events})
    click.echo(f"{len(events)} OpenLineage events ({runs} run(s)) sent to {target}")


def write_events(events: list[RunEvent], path: Path) -> None:
    """JSON lines, written atomically: a reader never sees half an export."""
    from openlineage.client.serde import Serde

    text = "".join(Serde.to_json(event) + "\n" for event in events)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(str(path), f"cannot write the export: {exc.strerror}") from None


def post_events(events: list[RunEvent], url: str) -> None:
    """POST each event with the OpenLineage client's HTTP transport."""
    from urllib.parse import urlsplit

    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    parts = urlsplit(url)
    if not parts.netloc:
        raise InputError(url, "not a URL: use http(s)://HOST[:PORT][/PATH]")
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = parts.path.strip("/") or DEFAULT_ENDPOINT
    config = HttpConfig(url=base, endpoint=endpoint, timeout=10.0, retry={"total": 2})
    client = OpenLineageClient(transport=HttpTransport(config))
    for number, event in enumerate(events, 1):
        try:
            client.emit(event)
        except Exception as exc:  # noqa: BLE001 - the transport raises what requests raises
            raise InputError(
                url,
                f"event {number} of {len(events)} was not accepted "
                f"({type(exc).__name__}: {exc}); check the URL and that the receiver is up",
            ) from None
