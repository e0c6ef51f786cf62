"""A training script as a data scientist writes it, in the style of MLflow's own examples.

It knows nothing of envguard: the tests run it as a subprocess with only ENVGUARD_ENV and
MLFLOW_TRACKING_URI set (plus ENVGUARD_CONFIG, the one more variable docs/mlflow.md allows).
"""

from pathlib import Path

import mlflow
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.model_selection import train_test_split

mlflow.autolog()

db = load_diabetes(as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(db.data, db.target, random_state=0)
training = pd.concat([X_train, y_train], axis=1)
training.to_csv("training.csv", index=False)

with mlflow.start_run() as run:
    dataset = mlflow.data.from_pandas(training, source="training.csv", name="diabetes-train")
    mlflow.log_input(dataset, context="training")

    lr = ElasticNet(alpha=0.05, l1_ratio=0.5, random_state=42)
    lr.fit(X_train, y_train)
    predictions = lr.predict(X_test)

    Path("notes.txt").write_text("random forest on the diabetes data\n")
    mlflow.log_artifact("notes.txt")
    mlflow.sklearn.log_model(lr, name="model")

print(run.info.run_id)
