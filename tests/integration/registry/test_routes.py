"""The route classifier, over synthetic routes and over MLflow's real route table."""

from __future__ import annotations

import pytest
from envguard_mlflow.server.routes import GUARDED, Route, RouteClass, RouteTable, classify


@pytest.mark.parametrize(
    ("path", "method", "message", "expected"),
    [
        (
            "/api/2.0/mlflow/registered-models/alias",
            "POST",
            "mlflow.SetRegisteredModelAlias",
            RouteClass.GUARDED,
        ),
        (
            "/api/2.0/mlflow/registered-models/get",
            "GET",
            "mlflow.GetRegisteredModel",
            RouteClass.READ,
        ),
        ("/api/2.0/mlflow/runs/search", "POST", "mlflow.SearchRuns", RouteClass.READ),
        (
            "/api/2.0/mlflow/experiments/create",
            "POST",
            "mlflow.CreateExperiment",
            RouteClass.UNRELATED,
        ),
        (
            "/api/2.0/mlflow/registered-models/update",
            "PATCH",
            "mlflow.UpdateRegisteredModel",
            RouteClass.UNRELATED,
        ),
        # A write MLflow adds one day on a registry path: unknown, so refused.
        (
            "/api/3.0/mlflow/registered-models/promote",
            "POST",
            "mlflow.PromoteModel",
            RouteClass.UNKNOWN,
        ),
        (
            "/ajax-api/4.0/mlflow/model-versions/{version}/move",
            "PUT",
            "move_version",
            RouteClass.UNKNOWN,
        ),
        ("/api/2.0/mlflow/gateway/thing", "POST", "new_gateway_thing", RouteClass.UNRELATED),
    ],
)
def test_classify(path: str, method: str, message: str, expected: RouteClass) -> None:
    assert classify(path, method, message) is expected


def test_lookup_matches_flask_and_fastapi_path_parameters() -> None:
    table = RouteTable(
        [
            Route(
                "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}",
                "PUT",
                "upload_artifact",
                "fastapi",
                RouteClass.GUARDED,
            ),
            Route(
                "/api/2.0/mlflow/logged-models/<model_id>/tags/<tag_key>",
                "DELETE",
                "mlflow.DeleteLoggedModelTag",
                "flask",
                RouteClass.GUARDED,
            ),
        ]
    )
    upload = table.lookup("/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/m/w.bin", "PUT")
    assert upload is not None
    assert upload.check == "artifact-write"
    assert table.lookup("/api/2.0/mlflow-artifacts/artifacts/x", "GET") is None
    tag = table.lookup("/api/2.0/mlflow/logged-models/m-1/tags/envguard.env", "DELETE", "flask")
    assert tag is not None
    assert tag.check == "delete-envguard-tag"
    assert table.lookup("/api/2.0/mlflow/logged-models/m-1/tags/a/b", "DELETE") is None


def test_mlflows_own_route_table_is_classified() -> None:
    """Every guarded message exists in this MLflow, and the only unknown registry write in
    MLflow's Flask table is the prompt-lab run (refused until envguard classifies it)."""
    from mlflow.server import app
    from mlflow.server.handlers import get_endpoints

    names = {
        getattr(getattr(t, "DESCRIPTOR", None), "full_name", getattr(t, "__name__", ""))
        for _, t, _ in get_endpoints(lambda cls: cls)
    }
    missing = sorted(m for m in GUARDED if m not in names and m.startswith("mlflow."))
    assert not missing, f"messages this MLflow no longer has: {missing}"
    table = RouteTable.from_apps(app)
    unknown = sorted({r.path for r in table.unknown()})
    assert unknown == ["/ajax-api/2.0/mlflow/runs/create-promptlab-run"]
    alias = table.lookup("/ajax-api/2.0/mlflow/registered-models/alias", "POST", "flask")
    assert alias is not None
    assert alias.check == "set-alias"
