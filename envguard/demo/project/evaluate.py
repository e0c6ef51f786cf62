"""Evaluate a registered churn model version: plain MLflow, run in the `test` environment.

    python evaluate.py models:/churn/VERSION DATA.csv

The tag envguard.evaluates names the version this run evaluates: the evidence the promotion rule
``require_evaluation_in = "test"`` looks for.
"""

import sys

import mlflow
import pandas as pd
from features import features
from sklearn.metrics import roc_auc_score

uri, path = sys.argv[1], sys.argv[2]
frame = pd.read_csv(path)
model = mlflow.sklearn.load_model(uri)

mlflow.set_experiment("churn-evaluation")
with mlflow.start_run(run_name="evaluate") as run:
    mlflow.set_tag("envguard.evaluates", uri)
    mlflow.log_input(mlflow.data.from_pandas(frame, source=path, name="holdout"), "evaluation")
    auc = roc_auc_score(frame["churned"], model.predict_proba(features(frame))[:, 1])
    mlflow.log_metric("auc", auc)
print(f"evaluation run {run.info.run_id} of {uri}: auc {auc:.3f}")
