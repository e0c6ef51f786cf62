"""``envguard audit lineage`` on a model version with 1,000 ancestors, in a store of 100k events.

The model version was registered from one run that used 500 datasets, each derived from a raw
production file (registered with its origin); 10 of the derivations are masking steps carrying a
signed proof, verified again by every answer; the version has approvals and promotions. 100,000
unrelated events fill the rest of the store. The baseline, measured in the same run and
interleaved with it: the bare store query the answer starts from, ``store.ancestors(version)``.
Both are repeated and the medians reported; the answer also renders the tree.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "audit_lineage"
NOISE = 100_000
USED = 500
MASKED = 10
REPEAT = 7
MODEL = "models:/fraud/1"
RUN = "run:" + "a" * 32


def _drafts(envelope: dict[str, Any], proof: str) -> list[Any]:
    from envguard.lineage.events import EventDraft, Link

    stamp = {"actor": "ada", "environment": "train", "policy_sha256": "p" * 64}
    drafts = []
    for i in range(USED):
        raw, data = f"sha256:{i:064x}", f"sha256:{i + 10**6:064x}"
        drafts.append(EventDraft("dataset.registered", [raw], payload={"origin": "prod"}, **stamp))
        if i < MASKED:
            drafts.append(
                EventDraft(
                    "proof.recorded",
                    [proof, data],
                    [Link(raw, data, "masked")],
                    payload={"envelope": envelope},
                    **stamp,
                )
            )
        else:
            drafts.append(
                EventDraft(
                    "derivation",
                    [f"dvc-stage:/repo:prepare-{i}"],
                    [Link(raw, data, "derived")],
                    payload={"step": "dvc-stage", "stage": f"prepare-{i}"},
                    **stamp,
                )
            )
        drafts.append(EventDraft("dataset.used", [data], [Link(data, RUN, "used-by")], **stamp))
    drafts.append(EventDraft("mlflow.run.created", [RUN], **stamp))
    drafts.append(
        EventDraft("mlflow.model_version.created", [MODEL, RUN], [Link(RUN, MODEL, "registered")])
    )
    for outcome in ("denied", "allowed"):
        drafts.append(
            EventDraft(
                f"promotion.{outcome}",
                [MODEL],
                payload={"move": "alias production", "decision": {"outcome": outcome}},
                **stamp,
            )
        )
    return drafts


def _noise(start: int, count: int) -> list[Any]:
    from envguard.lineage.events import EventDraft, Link

    return [
        EventDraft(
            "derivation",
            [f"run:noise-{i % 997}"],
            [Link(f"noise:{i}", f"noise:{i + 1}")],
            payload={"i": i},
            actor="bob",
            environment="train",
            policy_sha256="p" * 64,
            time="2026-11-26T00:00:00.000000Z",
        )
        for i in range(start, start + count)
    ]


def run() -> dict[str, Any]:
    from envguard.cli.lineage_view import render_tree
    from envguard.lineage.provenance import gather_provenance
    from envguard.policy import load_policy
    from envguard.proofs import MaskingFacts, ValidationCheck, create_proof
    from envguard.runtime import Runtime
    from tests.conftest import EXAMPLE_POLICY

    folder = Path(tempfile.mkdtemp(prefix="envguard-bench-"))
    try:
        shutil.copy(EXAMPLE_POLICY, folder / "envguard.toml")
        environ = {
            "ENVGUARD_CONFIG": str(folder / "envguard.toml"),
            "ENVGUARD_LINEAGE_URL": f"sqlite:///{folder / 'lineage.db'}",
            "ENVGUARD_ENV": "train",
        }
        runtime = Runtime(environ=environ)
        policy = load_policy(folder / "envguard.toml")
        check = ValidationCheck("expect_column_values_to_match_regex", "email", "h", True, 1, 0, 0)
        facts = MaskingFacts(
            output_name="masked.csv",
            output_sha256=f"{10**6:064x}",
            sources=[("raw.csv", f"{0:064x}")],
            columns={"email": {"method": "hash"}},
            checks=(check,),
            row_count=1,
            validator={"engine": "great_expectations", "version": "1.x"},
        )
        proof = create_proof(policy, facts, folder / "masked.csv.envguard-proof.json", "ada", None)
        store = runtime.store
        half = NOISE // 2
        for start in range(0, half, 20_000):
            store.append_many(_noise(start, min(20_000, half - start)))
        store.append_many(_drafts(dict(proof.envelope), f"proof:{proof.proof_id}"))
        for start in range(half, NOISE, 20_000):
            store.append_many(_noise(start, min(20_000, NOISE - start)))
        events = store.count()
        ancestors = {e.src for e in store.ancestors(MODEL)}
        answer_s: list[float] = []
        bare_s: list[float] = []
        gather_provenance(runtime, MODEL)  # warm both paths once
        for _ in range(REPEAT):
            start = time.perf_counter()
            store.ancestors(MODEL)
            bare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            answer = gather_provenance(runtime, MODEL)
            tree = render_tree(answer)
            answer_s.append(time.perf_counter() - start)
        verified = sum(1 for d in answer["datasets"] for m in d["masking"] if m.get("verifies"))
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    answer_ms = statistics.median(answer_s) * 1000
    bare_ms = statistics.median(bare_s) * 1000
    return {
        "name": NAME,
        "command": f"gather_provenance + render_tree (envguard audit lineage {MODEL}) over a "
        f"version with {len(ancestors):,} ancestors in a SQLite store of {events:,} events; "
        f"median of {REPEAT}",
        "baseline": "store.ancestors(version): the bare indexed walk the answer starts from, "
        "interleaved in the same run",
        "results": {
            "events_in_store": events,
            "ancestors": len(ancestors),
            "masking_proofs_verified": verified,
            "tree_lines": tree.count("\n") + 1,
            "audit_lineage_ms": round(answer_ms, 1),
            "bare_ancestors_ms": round(bare_ms, 1),
            "ratio": round(answer_ms / bare_ms, 2),
        },
        "goals": {"audit_lineage_ms": "<= 2000"},
        "met": answer_ms <= 2000,
    }
