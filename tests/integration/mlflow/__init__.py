"""The MLflow plugin against a local sqlite store and a real ``mlflow server``."""
