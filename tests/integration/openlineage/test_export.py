"""``envguard audit export --format openlineage``: valid RunEvents, to a file and over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.integration.openlineage.spec import SPEC, SPEC_URL
from tests.lineage.test_provenance import RUN, WEIGHTS, Story, _story

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]
SCHEMAS = Path(__file__).resolve().parents[3] / "plugins" / "envguard_openlineage" / "schemas"


def _validator(ref: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    resources = [(SPEC_URL, Resource.from_contents(SPEC))]
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    return Draft202012Validator({"$ref": ref}, registry=registry, format_checker=FormatChecker())


def _validate(event: dict[str, Any]) -> None:
    _validator(f"{SPEC_URL}#/$defs/RunEvent").validate(event)
    facets = [*event["run"]["facets"].values()]
    for dataset in (*event["inputs"], *event["outputs"]):
        facets.extend(dataset["facets"].values())
    for facet in facets:
        if facet["_schemaURL"].startswith("https://envguard.invalid/"):
            _validator(facet["_schemaURL"]).validate(facet)


@pytest.fixture
def story(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Story:
    monkeypatch.setenv("ENVGUARD_LINEAGE_URL", f"sqlite:///{tmp_path / 'lineage.db'}")
    return _story(workspace)


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A tiny OpenLineage receiver on 127.0.0.1 that keeps what it is sent."""
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_export_to_a_file_is_valid_openlineage(
    story: Story, tmp_path: Path, envguard_cli: Cli
) -> None:
    out = tmp_path / "lineage.jsonl"
    result = envguard_cli("audit", "export", "--format", "openlineage", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    for event in events:
        _validate(event)
    assert f"{len(events)} OpenLineage events" in result.stdout
    by_job: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event)
    run = by_job[f"mlflow-run:{RUN[4:]}"]
    assert [e["eventType"] for e in run] == ["START", "COMPLETE"]
    assert run[0]["run"]["runId"] == run[1]["run"]["runId"]
    assert [d["name"] for d in run[1]["inputs"]] == [story.masked]
    assert [d["name"] for d in run[1]["outputs"]] == [WEIGHTS]
    environment = run[0]["run"]["facets"]["envguard_environment"]
    assert (environment["environment"], environment["tier"], environment["actor"]) == (
        "train",
        "non-prod",
        "ada",
    )
    assert len(environment["policySha256"]) == 64
    masks = by_job["envguard.mask"]
    assert len(masks) == 4  # two masking steps, START and COMPLETE each
    proofs = {
        e["outputs"][0]["name"]: e["outputs"][0]["facets"]["envguard_maskingProof"] for e in masks
    }
    assert proofs[story.masked]["verified"] is True
    assert proofs[story.masked]["proofId"] == story.proof
    assert proofs[story.masked]["signer"] == "self"
    assert proofs[story.masked]["sources"] == [story.raw]
    assert proofs[story.forged]["verified"] is False
    assert proofs[story.forged]["problems"]
    (registered,) = {e["run"]["runId"]: e for e in by_job["envguard.data.register"]}.values()
    origin = registered["outputs"][0]["facets"]["envguard_origin"]
    assert (origin["origin"], origin["tier"]) == ("prod", "prod")


def test_export_posts_each_event_to_a_url(
    story: Story,
    tmp_path: Path,
    envguard_cli: Cli,
    receiver: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    url, received = receiver
    out = tmp_path / "lineage.jsonl"
    assert envguard_cli("audit", "export", "-o", str(out)).exit_code == 0
    posted = envguard_cli("audit", "export", "--format", "openlineage", "-o", url)
    assert posted.exit_code == 0, posted.stderr
    expected = [json.loads(line) for line in out.read_text().splitlines()]
    for _path, body in received:  # the client's transport adds its own tags facet
        assert body["run"]["facets"].pop("tags")["_producer"].startswith("https://github.com/")
    assert [body for _path, body in received] == expected
    assert {path for path, _body in received} == {"/api/v1/lineage"}
    for _path, body in received:
        _validate(body)


def test_an_unreachable_url_is_one_clear_error(story: Story, envguard_cli: Cli) -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/lineage"
    result = envguard_cli("audit", "export", "-o", url)
    assert result.exit_code == 2
    assert f"{url}: event 1 of" in result.stderr
    assert "Traceback" not in result.stderr
