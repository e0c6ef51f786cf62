"""Train the churn model on the masked customers and register it in MLflow. Plain MLflow:
envguard's plugin tags the run, checks the data at log_input and records the lineage."""

import json
from pathlib import Path

import mlflow
import pandas as pd
import sklearn
import yaml
from features import features, split
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

params = yaml.safe_load(Path("params.yaml").read_text())
source = "data/masked/customers.csv"
frame = pd.read_csv(source)
training, _ = split(frame, params["split"]["holdout_every"])

mlflow.set_experiment("churn")
with mlflow.start_run(run_name="train") as run:
    mlflow.log_input(mlflow.data.from_pandas(frame, source=source, name="customers"), "training")
    mlflow.log_params(params["train"])
    model = LogisticRegression(C=params["train"]["C"], max_iter=params["train"]["max_iter"])
    model.fit(features(training), training["churned"])
    auc = roc_auc_score(training["churned"], model.predict_proba(features(training))[:, 1])
    mlflow.log_metric("train_auc", auc)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name="churn",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )

version = info.registered_model_version
Path("outputs").mkdir(exist_ok=True)
Path("outputs/model.txt").write_text(f"models:/churn/{version}\n")
Path("metrics").mkdir(exist_ok=True)
Path("metrics/train.json").write_text(json.dumps({"train_auc": auc}) + "\n")
print(f"run {run.info.run_id}: models:/churn/{version}, train auc {auc:.3f}")
