"""A training step that reads DVC-tracked data with pandas inside an MLflow run.

It knows nothing of envguard: the tests run it as a subprocess with only ENVGUARD_ENV and
MLFLOW_TRACKING_URI set (ENVGUARD_CONFIG too, for the warn-mode policy).
"""

import sys

import mlflow
import pandas as pd

with mlflow.start_run() as run:
    print(run.info.run_id, flush=True)
    for path in sys.argv[1:]:
        frame = pd.read_csv(path)
        mlflow.log_metric(f"rows_{path.split('.')[0]}", len(frame))
