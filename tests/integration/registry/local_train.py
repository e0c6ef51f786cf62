"""Trains, registers and tries to promote a model with the plain MLflow client, against the local
registry MLFLOW_TRACKING_URI names (no server): envguard's registry store decides. Prints JSON."""

from __future__ import annotations

import json
import os
import sys

import mlflow
from mlflow import MlflowClient

from envguard import runtime
from envguard.errors import EnvGuardDenied

client = MlflowClient()
alias = client.set_registered_model_alias
out: dict[str, object] = {"denied": {}, "moved": []}


def attempt(label: str, move: object) -> None:
    try:
        move()  # type: ignore[operator]
        out["moved"].append(label)  # type: ignore[attr-defined]
    except EnvGuardDenied as exc:
        out["denied"][label] = {  # type: ignore[index]
            "rules": [r.rule for r in exc.decision.reasons],
            "message": str(exc),
        }


if sys.argv[1] == "train":
    mlflow.set_experiment("fraud")
    with mlflow.start_run() as run:
        mlflow.log_text("weights-1", "model/weights.bin")
    source = f"{run.info.artifact_uri}/model"
    client.create_registered_model("fraud")
    version = client.create_model_version("fraud", source, run.info.run_id).version
    out["version"], out["weights"] = version, source.removeprefix("file://") + "/weights.bin"
    attempt("@staging", lambda: alias("fraud", "staging", version))
    attempt("@production", lambda: alias("fraud", "production", version))
    attempt(
        "Production",
        lambda: client.transition_model_version_stage("fraud", version, "Production"),
    )
    os.environ["ENVGUARD_ENV"] = "test"  # the evaluation runs in `test`
    runtime.reset()
    with mlflow.start_run(tags={"envguard.evaluates": f"models:/fraud/{version}"}):
        mlflow.log_metric("auc", 0.93)
else:
    attempt("@production", lambda: alias("fraud", "production", "1"))
    unset = client.delete_registered_model_alias
    attempt("delete @production", lambda: unset("fraud", "production"))
print(json.dumps(out))
