"""Evaluate the registered model version on the holdout, in the test environment.

The tag envguard.evaluates names the version this run evaluates: the evidence the policy's
require_evaluation_in = "test" looks for when the version is promoted to prod.
"""

import json
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from features import features, split
from sklearn.metrics import roc_auc_score

params = yaml.safe_load(Path("params.yaml").read_text())
uri = Path("outputs/model.txt").read_text().strip()
source = "data/masked/customers.csv"
_, holdout = split(pd.read_csv(source), params["split"]["holdout_every"])
model = mlflow.sklearn.load_model(uri)

mlflow.set_experiment("churn-evaluation")
with mlflow.start_run(run_name="evaluate") as run:
    mlflow.set_tag("envguard.evaluates", uri)
    mlflow.log_input(mlflow.data.from_pandas(holdout, source=source, name="holdout"), "evaluation")
    auc = roc_auc_score(holdout["churned"], model.predict_proba(features(holdout))[:, 1])
    mlflow.log_metric("auc", auc)

Path("metrics/evaluate.json").write_text(json.dumps({"model": uri, "auc": auc}) + "\n")
print(f"evaluation run {run.info.run_id} of {uri}: holdout auc {auc:.3f}")
