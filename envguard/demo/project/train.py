"""Train the churn model: a data scientist's script, plain MLflow, nothing of envguard in it.

python train.py DATA.csv        (MLFLOW_TRACKING_URI names the tracking server)
"""

import sys

import mlflow
import pandas as pd
import sklearn
from features import features
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

path = sys.argv[1]
frame = pd.read_csv(path)
X_train, X_test, y_train, y_test = train_test_split(
    features(frame), frame["churned"], random_state=0, stratify=frame["churned"]
)

mlflow.set_experiment("churn")
with mlflow.start_run(run_name="train") as run:
    mlflow.log_input(mlflow.data.from_pandas(frame, source=path, name="customers"), "training")
    model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    mlflow.log_metric("auc", auc)
    mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name="churn",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )

done = mlflow.get_run(run.info.run_id)
print(f"run {run.info.run_id} finished: auc {auc:.3f}")
print("tags on the run:")
for key, value in sorted(done.data.tags.items()):
    if not key.startswith("mlflow."):
        print(f"  {key} = {value}")
print("tags on its dataset input:")
for tag in done.inputs.dataset_inputs[0].tags:
    print(f"  {tag.key} = {tag.value}")
