#!/usr/bin/env bash
# The CI job after `dvc repro`: promote the model the pipeline trained, through the envguard
# MLflow server. It needs MLFLOW_TRACKING_URI and the CI's MLflow user in
# MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
#
# Exit 0: promoted to @production. Exit 1: not (yet): below the AUC bar, or the server's reasons
# (missing approvals, ...) are printed; rerun the job once they are met.
set -euo pipefail
cd "$(dirname "$0")/.."

model=$(cat outputs/model.txt)
python - <<'PY'
import json, sys, yaml
bar = yaml.safe_load(open("params.yaml"))["promote"]["min_auc"]
auc = json.load(open("metrics/evaluate.json"))["auc"]
print(f"holdout auc {auc:.3f} (bar {bar})")
sys.exit(0 if auc >= bar else 1)
PY

envguard promote "$model" --to staging
envguard approvals list "$model"
if ! envguard promote "$model" --to production --dry-run; then
    echo "ci/promote.sh: $model is not ready for production; the reasons are above" >&2
    exit 1
fi
envguard promote "$model" --to production
