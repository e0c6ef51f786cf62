"""The story the demo plays, act by act (:data:`ACTS`, in order).

1. :func:`setting` — the policy, a git + DVC repository with a production and a development
   remote, the demo's MLflow server (started here, ready by act 3), production customer data.
2. :func:`data` — the data registered as production, refused in ``train``, masked with a proof.
3. :func:`training` — a training script refused at ``mlflow.log_input`` on the raw data, allowed
   and tagged on the masked data.
4. :func:`smuggling` — the raw file pushed to the development remote, caught by its digest.
5. :func:`promotion` — to production: refused without approvals, the trainer's own approval
   refused, two approvals, promoted.
6. :func:`tampering` — a database edit moves the production alias past the server; the
   auditor's ``envguard audit scan`` finds it.
7. :func:`audit` — lineage of the model version, the log verified, the evidence report.

Each act is a function of the :class:`~envguard.demo.story.Story`; a new act slots into
:data:`ACTS` between two others (after :func:`promotion`, the production alias exists).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from importlib import resources

from envguard.demo.data import write_customers
from envguard.demo.story import SERVER_DEADLINE_S, Step, Story

__all__ = [
    "ACTS",
    "MODEL",
    "audit",
    "data",
    "promotion",
    "setting",
    "smuggling",
    "tampering",
    "training",
]

MODEL = "churn"
VERSION = f"models:/{MODEL}/1"
RAW = "data/customers.csv"
MASKED = "data/customers_masked.csv"
TRAIN = {"ENVGUARD_ENV": "train"}
PROD = {"ENVGUARD_ENV": "prod", "ENVGUARD_ACTOR": "margaret"}


def setting(story: Story) -> None:
    from envguard.cli.policy_commands import default_policy_text

    folder = story.workdir
    story.say(click_bold("envguard demo") + f" — workspace {folder}")
    story.say("A team with three environments: train and test (non-production) and prod.")
    (folder / "envguard.toml").write_text(default_policy_text(), encoding="utf-8")
    for name in ("train.py", "evaluate.py", "features.py"):
        text = resources.files("envguard.demo").joinpath("project", name).read_text("utf-8")
        (folder / name).write_text(text, encoding="utf-8")
    story.server.start()
    story.say(
        f"Starting the team's MLflow server in the background: mlflow server --app-name envguard "
        f"(basic auth, envguard's registry gate) on {story.server.url}, "
        f"users {', '.join(story.server.passwords)}."
    )
    story.say("Loading MLflow, pandas, scikit-learn, DVC and Great Expectations once...")
    story.processes.preload()
    raw = write_customers(folder / RAW)
    story.say(
        f"Synthetic production customer data with PII: {raw.relative_to(folder)} "
        f"(names, e-mails, phones, SSNs, card numbers and IPs in free text)."
    )
    story.run(
        Step(
            "The policy is valid",
            ["envguard", "policy", "validate"],
            0,
            explain="every problem would be listed at once, with file and field",
        )
    )
    story.processes.run(["git", "init", "-q"], story.base_env)
    story.run(Step("A DVC repository in git", ["dvc", "init", "-q"], 0))
    (folder / ".gitignore").write_text("/mlflow/\n/remotes/\n/.envguard/\n/report.*\n")
    for name in ("prod-data", "dev-data"):
        (folder / "remotes" / name).mkdir(parents=True, exist_ok=True)
        story.run(
            Step(
                f"The {name} remote (a local folder here; a bucket in real life)",
                ["dvc", "remote", "add", name, f"remotes/{name}"],
                0,
            )
        )
    story.run(
        Step(
            "Which environment each remote belongs to",
            ["envguard", "dvc", "status"],
            0,
            expect_text=("prod-data", "dev-data"),
            explain="the policy maps prod-data to prod and dev-data to train",
        )
    )


def data(story: Story) -> None:
    story.run(
        Step(
            "The platform team versions the customer table and pushes it to production storage",
            ["dvc", "add", "-q", RAW],
            0,
            PROD,
        )
    )
    story.run(Step("...", ["dvc", "push", "-q", "-r", "prod-data"], 0, PROD))
    story.run(
        Step(
            "...and declares it production data",
            ["envguard", "data", "register", RAW, "--env", "prod"],
            0,
            PROD,
            explain="recorded by content digest in the lineage log",
        )
    )
    story.run(
        Step(
            "A data scientist in `train` asks whether she may use it",
            ["envguard", "data", "check", RAW],
            1,
            TRAIN,
            expect_text=(f"DENY {RAW} in train (non-prod)",),
            explain="refused: production data in a non-production environment, with the fix",
        )
    )
    story.run(
        Step(
            "She masks it, as the refusal said",
            ["envguard", "mask", RAW, "-o", MASKED],
            0,
            TRAIN,
            explain="masked per the policy's column rules, validated with Great Expectations, "
            "and a signed proof written and recorded",
        )
    )
    story.run(
        Step(
            "Anyone can verify the proof",
            ["envguard", "proof", "verify", f"{MASKED}.envguard-proof.json"],
            0,
            explain="signature, digest of the data, validation and policy all hold",
        )
    )


def training(story: Story) -> None:
    story.say("\nWaiting for the MLflow server...")
    story.server.ready(SERVER_DEADLINE_S)
    story.say(f"export MLFLOW_TRACKING_URI={story.server.url}  (and each user's credentials)")
    story.run(
        Step(
            "Her training script (plain MLflow, no envguard in it) on the raw production data",
            ["python", "train.py", RAW],
            1,
            TRAIN,
            user="ada",
            tail=6,
            expect_text=("envguard deny", "has production lineage from 'prod'", "envguard mask"),
            explain="refused at mlflow.log_input, before MLflow recorded the dataset",
        )
    )
    story.run(
        Step(
            "The same script on the masked data",
            ["python", "train.py", MASKED],
            0,
            TRAIN,
            user="ada",
            expect_text=("envguard.env = train", "envguard.sha256 = "),
            explain="allowed: its production lineage passes through a proof that verifies; "
            f"the run, its dataset and its model carry their environment; {VERSION} registered",
        )
    )


def smuggling(story: Story) -> None:
    folder = story.workdir
    shutil.copy(folder / RAW, folder / "data" / "churn_export.csv")
    story.say(
        "\nSomeone copies the raw file to data/churn_export.csv and pushes it to the development "
        "remote, where plain DVC lets it in..."
    )
    story.run(Step("...", ["dvc", "add", "-q", "data/churn_export.csv"], 0, TRAIN))
    story.run(
        Step("...", ["dvc", "push", "-q", "-r", "dev-data", "data/churn_export.csv.dvc"], 0, TRAIN)
    )
    dvc_file = (folder / "data" / "churn_export.csv.dvc").read_text(encoding="utf-8")
    md5 = re.search(r"md5: ([0-9a-f]{32})", dvc_file)
    stored = f"remotes/dev-data/files/md5/{md5[1][:2]}/{md5[1][2:]}" if md5 else "(missing)"
    story.run(
        Step(
            "...but the object in the development remote still has its production origin",
            ["envguard", "data", "check", stored],
            1,
            TRAIN,
            expect_text=(f"DENY {stored} in train (non-prod)",),
            explain="a copy has the same digest: renaming or moving it launders nothing",
        )
    )


def promotion(story: Story) -> None:
    story.run(
        Step(
            "The trainer moves her model to @staging (the test environment)",
            ["envguard", "promote", VERSION, "--to", "staging"],
            0,
            user="ada",
            explain="allowed: no approvals needed for test, and its lineage is masked",
        )
    )
    story.run(
        Step(
            "An evaluation run in `test`",
            ["python", "evaluate.py", VERSION, MASKED],
            0,
            {"ENVGUARD_ENV": "test"},
            user="ada",
            explain="the evidence the prod rule asks for (require_evaluation_in = test)",
        )
    )
    story.run(
        Step(
            "She promotes it to production",
            ["envguard", "promote", VERSION, "--to", "production"],
            1,
            user="ada",
            expect_text=("needs 2 approval(s)",),
            explain="refused by the server: the policy asks for two approvals",
        )
    )
    story.run(
        Step(
            "She approves it herself (she holds the approver role)",
            ["envguard", "approve", VERSION, "--to", "prod"],
            1,
            user="ada",
            expect_text=("separation-of-duties",),
            explain="refused: the trainer never counts as her model's approver",
        )
    )
    for user in ("grace", "linus"):
        story.run(
            Step(
                f"{user.capitalize()} reviews the evaluation and approves",
                ["envguard", "approve", VERSION, "--to", "prod", "--comment", "AUC checked"],
                0,
                user=user,
                explain="recorded by the server, signed, bound to the version's files",
            )
        )
    story.run(
        Step(
            "The promotion again",
            ["envguard", "promote", VERSION, "--to", "production"],
            0,
            user="ada",
            expect_text=("@production",),
            explain="allowed: two approvals by others, evaluated in test, masked lineage",
        )
    )


def audit(story: Story) -> None:
    story.run(
        Step(
            "The auditor asks where the production model came from",
            ["envguard", "audit", "lineage", VERSION],
            0,
            explain="the run, its data, the approvals and the decisions, from the lineage log",
        )
    )
    story.run(
        Step(
            "Sign a checkpoint of the log",
            ["envguard", "audit", "checkpoint"],
            0,
            explain="truncating or rewriting the log is now detectable",
        )
    )
    story.run(
        Step(
            "The auditor verifies the log",
            ["envguard", "audit", "verify"],
            0,
            expect_text=(": intact",),
            explain="the hash chain and every signed checkpoint verify",
        )
    )
    story.run(
        Step(
            "The auditor's evidence report, organised by I&S-05's auditing guidelines",
            ["envguard", "audit", "report", "-o", "report.html", "--json", "report.json"],
            0,
            explain="one self-contained HTML file; open it in a browser",
        )
    )
    story.report = story.workdir / "report.html"


def click_bold(text: str) -> str:
    import click

    return click.style(text, bold=True)


def tampering(story: Story) -> None:
    """Someone with access to MLflow's database goes around the gate; the scan finds it."""
    import sqlite3

    from envguard.cli.policy_commands import default_policy_text

    story.say(
        "\nSomeone with write access to MLflow's database registers other weights as version 2"
        " and moves @production to it with two SQL statements, past the server."
    )
    with sqlite3.connect(story.server.database) as db:
        db.execute(
            "CREATE TEMP TABLE copied AS SELECT * FROM model_versions WHERE name = ?", (MODEL,)
        )
        db.execute("UPDATE copied SET version = 2 WHERE version = 1")
        db.execute("DELETE FROM copied WHERE version != 2")
        db.execute("INSERT INTO model_versions SELECT * FROM copied")
        db.execute(
            "UPDATE registered_model_aliases SET version = 2 WHERE name = ? AND alias = ?",
            (MODEL, "production"),
        )
    # The auditor's policy names the systems to sweep: this demo's server as the production
    # registry, and the two DVC remotes (the example buckets do not exist here).
    text = re.sub(
        r"(?m)^(mlflow_tracking_uris|mlflow_registry_uris|artifact_locations|s3) = .*$",
        r"\1 = []",
        default_policy_text(),
    )
    text = text.replace(
        'mlflow_registry_uris = []\nartifact_locations = []\ndvc_remotes = ["prod-data"]',
        f'mlflow_registry_uris = ["{story.server.url}"]\nartifact_locations = []\n'
        'dvc_remotes = ["prod-data"]',
    )
    (story.workdir / "auditor.toml").write_text(text, encoding="utf-8")
    story.run(
        Step(
            "The auditor's scan of the real systems (registry, DVC remotes, the log)",
            ["envguard", "audit", "scan"],
            1,
            {"ENVGUARD_CONFIG": "auditor.toml", "ENVGUARD_ENV": "prod"},
            user="margaret",
            expect_text=("registry-bypass", "models:/churn/2"),
            explain="caught: @production points at a version no promotion allowed; the "
            "remotes' objects carry no envguard tags (no `envguard dvc install` here)",
        )
    )


ACTS: list[Callable[[Story], None]] = [
    setting,
    data,
    training,
    smuggling,
    promotion,
    tampering,
    audit,
]
