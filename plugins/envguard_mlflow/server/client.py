"""The CLI's client of an envguard-guarded MLflow server.

It finds the server and the credentials exactly as MLflow's own client does:
``MLFLOW_TRACKING_URI``, ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` (or a
token, TLS settings, ... through ``mlflow.utils.rest_utils``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from envguard.errors import ConfigError, EnvGuardError, InputError

__all__ = ["RegistryClient", "ServerRefused", "parse_model_version"]

_MODEL_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


class ServerRefused(EnvGuardError):
    """The server refused (HTTP 403): a denied promotion or approval. Exit code 1."""

    exit_code = 1


def parse_model_version(uri: str) -> tuple[str, str]:
    match = _MODEL_VERSION.match(uri.strip())
    if not match:
        raise InputError(uri, "name a model version as models:/NAME/VERSION (e.g. models:/fraud/3)")
    return match["name"], match["version"]


class RegistryClient:
    """envguard's routes on the server, as the user MLflow's variables name."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        import mlflow
        from mlflow.utils.credentials import get_default_host_creds

        self.uri = tracking_uri or mlflow.get_tracking_uri()
        if not self.uri.startswith(("http://", "https://")):
            raise ConfigError(
                f"MLFLOW_TRACKING_URI is {self.uri!r}: approvals and promotions are recorded "
                f"by an envguard-guarded server; set MLFLOW_TRACKING_URI to its http(s) URL"
            )
        self.creds = get_default_host_creds(self.uri)

    def call(
        self,
        method: str,
        endpoint: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        from mlflow.utils.rest_utils import http_request

        kwargs: dict[str, Any] = {"params": params} if params else {}
        if body is not None:
            kwargs["json"] = body
        response = http_request(
            self.creds, endpoint, method, raise_on_status=False, max_retries=0, **kwargs
        )
        try:
            data = response.json()
        except (ValueError, json.JSONDecodeError):
            data = {"message": response.text}
        if response.status_code == 200 and isinstance(data, dict):
            return data
        message = data.get("message", response.text) if isinstance(data, dict) else response.text
        if response.status_code == 403:
            raise ServerRefused(message)
        if response.status_code == 404 and "envguard" in endpoint and not data.get("error_code"):
            raise ConfigError(
                f"{self.uri} does not serve envguard's routes: start it with "
                f"`envguard server` (or `mlflow server --app-name envguard`)"
            )
        raise InputError(f"{method} {endpoint}", f"HTTP {response.status_code}: {message}")
