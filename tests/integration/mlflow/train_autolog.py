"""A training script as a data scientist writes it, in the style of MLflow's autologging examples.

It knows nothing of envguard: the tests run it as a subprocess with only ENVGUARD_ENV and
MLFLOW_TRACKING_URI set, on a customers table whose data has production lineage.
"""

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

mlflow.autolog()

customers = pd.read_csv("customers.csv")
X = customers.drop(columns=["churned"])
y = customers["churned"]

model = LogisticRegression(max_iter=200)
model.fit(X, y)
print("accuracy", model.score(X, y))
