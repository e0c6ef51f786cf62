"""envguard's bundled alert sinks: every violation, at a gate or in a scan, goes to the log, a
file, and webhooks, as the policy's ``[alerts]`` table says.

A webhook delivery is an HTTP POST of JSON with two headers: ``X-Envguard-Timestamp`` (Unix
seconds) and ``X-Envguard-Signature: sha256=HEX``, the HMAC-SHA256 of
``f"{timestamp}.{body}"`` keyed with the secret in ``secret_env``. A receiver recomputes it and
rejects stale timestamps, so deliveries can be neither forged nor replayed. Alerts fail open,
but are never dropped: a delivery that fails is appended to ``alerts.spool_file`` and retried
with the next violation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard import hookimpl
from envguard.decisions import Decision
from envguard.policy import Policy

if TYPE_CHECKING:
    from envguard.policy.schema import WebhookSpec

__all__ = ["deliver", "envguard_on_violation", "sign"]

log = logging.getLogger("envguard.alerts")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The value of ``X-Envguard-Signature`` for one delivery."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def _hostname() -> str:
    import socket  # here: every envguard command loads this plugin, few send a violation

    return socket.gethostname()


def _payload(decision: Decision, policy: Policy) -> dict[str, Any]:
    return {
        "type": "envguard.violation",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": _hostname(),
        "policy_sha256": policy.sha256,
        "decision": decision.to_dict(),
    }


def deliver(hook: WebhookSpec, body: bytes) -> None:
    """POST ``body`` to the webhook; raises OSError (or a subclass) when it is not accepted."""
    secret = os.environ.get(hook.secret_env, "").encode()
    if not secret:
        raise OSError(f"${hook.secret_env} is not set: deliveries to {hook.url} must be signed")
    if not hook.url.startswith(("http://", "https://")):
        raise OSError(f"{hook.url}: only http and https webhooks are supported")
    import urllib.request  # here: http.client and ssl cost every envguard command ~10 ms

    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "envguard-alerts",
            "X-Envguard-Timestamp": timestamp,
            "X-Envguard-Signature": sign(secret, timestamp, body),
        },
    )
    with urllib.request.urlopen(request, timeout=hook.timeout) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise OSError(f"{hook.url} answered HTTP {response.status}")


def _spool(policy: Policy, url: str, body: bytes) -> None:
    path = policy.resolve_path(policy.spec.alerts.spool_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"url": url, "body": body.decode()}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _retry_spooled(policy: Policy, hooks: dict[str, WebhookSpec]) -> None:
    path = policy.resolve_path(policy.spec.alerts.spool_file)
    if not path.exists():
        return
    claimed = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.rename(claimed)
    except FileNotFoundError:
        return
    for line in claimed.read_text("utf-8").splitlines():
        item = json.loads(line)
        hook = hooks.get(item["url"])
        body = item["body"].encode()
        try:
            if hook is None:
                raise OSError("no longer configured")
            deliver(hook, body)
        except OSError as exc:
            log.warning("alert to %s still not delivered (%s); kept in the spool", item["url"], exc)
            _spool(policy, item["url"], body)
    claimed.unlink()


def _append(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(body + b"\n")


@hookimpl
def envguard_on_violation(decision: Decision, policy: Policy) -> None:
    """Send one violation to every sink the policy configures."""
    spec = policy.spec.alerts
    if spec.log:
        log.warning("%s", decision.explain())
    body = json.dumps(_payload(decision, policy), sort_keys=True).encode()
    if spec.file:
        _append(policy.resolve_path(spec.file), body)
    hooks = {hook.url: hook for hook in spec.webhooks if hook.enabled}
    if not hooks:
        return
    import urllib.error  # here: every envguard command loads this plugin

    _retry_spooled(policy, hooks)
    for hook in hooks.values():
        try:
            deliver(hook, body)
        except (OSError, urllib.error.URLError) as exc:
            log.warning("alert to %s not delivered (%s); spooled for retry", hook.url, exc)
            _spool(policy, hook.url, body)
