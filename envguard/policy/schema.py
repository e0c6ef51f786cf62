"""The policy's schema: every field, its type, its default and what it means.

The field descriptions here are the reference; ``docs/policy.md`` documents each of them and a
test fails when a field is missing there. Unknown keys are errors: a typo in a security policy
must never be ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MASKING_METHODS",
    "AlertsSpec",
    "ColumnRule",
    "EnvironmentSpec",
    "LineageSpec",
    "MaskingSpec",
    "PolicySpec",
    "PromotionRule",
    "RegistrySpec",
    "SignerSpec",
    "SigningSpec",
    "WebhookSpec",
]

Tier = Literal["prod", "non-prod"]
Mode = Literal["enforce", "warn", "audit"]
MaskingMethod = Literal["hash", "redact", "drop", "generalize", "scrub"]
MASKING_METHODS: tuple[str, ...] = ("hash", "redact", "drop", "generalize", "scrub")
Purpose = Literal["masking", "checkpoint", "approval"]
_ALL_PURPOSES: tuple[Purpose, ...] = ("masking", "checkpoint", "approval")
LineageRequirement = Literal["masked", "non-prod", "any"]

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EnvironmentSpec(_Strict):
    """One environment and the locations that belong to it."""

    tier: Tier = Field(description="`prod` or `non-prod`: what the boundary protects.")
    description: str = Field("", description="Free text shown in reports.")
    mlflow_tracking_uris: list[str] = Field(
        default_factory=list, description="MLflow tracking server URIs of this environment."
    )
    mlflow_registry_uris: list[str] = Field(
        default_factory=list,
        description="MLflow model registry URIs, when they differ from the tracking URIs.",
    )
    artifact_locations: list[str] = Field(
        default_factory=list,
        description="Where this environment's MLflow artifacts live (S3 or file URIs).",
    )
    dvc_remotes: list[str] = Field(
        default_factory=list, description="DVC remotes of this environment, by name or URL."
    )
    s3: list[str] = Field(
        default_factory=list,
        description="S3 buckets (`acme-ml-prod`) or prefixes (`s3://shared/prod/`).",
    )
    hosts: list[str] = Field(
        default_factory=list,
        description="Other hosts or database URLs of this environment (used by the pytest guard).",
    )


class RegistrySpec(_Strict):
    """How the MLflow model registry maps onto environments. Names match case-insensitively."""

    aliases: dict[str, str] = Field(
        default_factory=dict, description='Registry alias -> environment (`production = "prod"`).'
    )
    stages: dict[str, str] = Field(
        default_factory=dict, description='Legacy stage -> environment (`Production = "prod"`).'
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Registered model name -> environment, for registries that keep one "
        "registered model per environment.",
    )


class PromotionRule(_Strict):
    """What a model version needs before it may enter one environment."""

    approvals: int = Field(0, ge=0, description="How many distinct approvals are required.")
    approver_roles: list[str] = Field(
        default_factory=list,
        description="Roles whose holders' approvals count; empty means any identity.",
    )
    separation_of_duties: bool = Field(
        True,
        description="The run's creator and the model version's creator never count as approvers.",
    )
    allowed_sources: list[str] = Field(
        default_factory=list,
        description="Environments a version may come from (where it was last); empty means any.",
    )
    lineage: LineageRequirement = Field(
        "masked",
        description="`masked`: production data in the lineage only with a masking proof that "
        "verifies; `non-prod`: no production data at all; `any`: no lineage check.",
    )
    require_evaluation_in: str | None = Field(
        None, description="An environment in which an evaluation run of the version must exist."
    )
    override_roles: list[str] = Field(
        default_factory=list,
        description="Roles allowed an explicit, recorded emergency override; empty means none.",
    )


class ColumnRule(_Strict):
    """How one column is masked. Written as a method name or as a table with parameters."""

    method: MaskingMethod = Field(description="`hash`, `redact`, `drop`, `generalize` or `scrub`.")
    to: Literal["year", "month"] | None = Field(
        None, description="`generalize` of dates: keep the year or the year and month."
    )
    width: int | None = Field(
        None, gt=0, description="`generalize` of numbers: the width of the ranges."
    )
    keep: int | None = Field(
        None, ge=0, description="`generalize` of codes (postcodes): how many leading characters."
    )
    replacement: str | None = Field(None, description="`redact`: the text put in place.")

    @model_validator(mode="before")
    @classmethod
    def _method_name(cls, value: Any) -> Any:
        return {"method": value} if isinstance(value, str) else value


class MaskingSpec(_Strict):
    """Masking rules and where the hashing key comes from."""

    key_env: str = Field(
        "ENVGUARD_MASKING_KEY", description="Environment variable holding the HMAC key."
    )
    key_file: str | None = Field(
        None,
        description="File holding the HMAC key, relative to the policy; generated on first use "
        "when the variable is unset (default `.envguard/masking.key`).",
    )
    columns: dict[str, ColumnRule] = Field(default_factory=dict, description="Column name -> rule.")


class SignerSpec(_Strict):
    """A public key whose signatures envguard trusts."""

    public_key: str = Field(description="Ed25519 public key: PEM, or base64 of the 32 raw bytes.")
    purposes: list[Purpose] = Field(
        default_factory=lambda: list(_ALL_PURPOSES),
        description="What this key may sign: `masking` proofs, log `checkpoint`s, `approval`s.",
    )


class SigningSpec(_Strict):
    """This installation's own signing key."""

    key_env: str = Field(
        "ENVGUARD_SIGNING_KEY",
        description="Environment variable holding the Ed25519 private key (PEM or base64).",
    )
    key_file: str = Field(
        ".envguard/signing.key",
        description="File holding the private key, relative to the policy; generated on first "
        "use when neither it nor the variable exists.",
    )
    trust_own_key: bool = Field(
        True,
        description="Trust this installation's own public key as a signer for every purpose. "
        "Turn off when proofs must come from the keys listed in `signers` only.",
    )


class WebhookSpec(_Strict):
    """An HTTP endpoint that receives every violation as signed JSON."""

    url: str = Field(description="Where to POST each violation (http or https).")
    secret_env: str = Field(
        "ENVGUARD_WEBHOOK_SECRET",
        description="Environment variable holding the HMAC-SHA256 key that signs each delivery.",
    )
    timeout: float = Field(5.0, gt=0, le=60, description="Seconds to wait for the endpoint.")
    enabled: bool = Field(True, description="Send to this webhook (false keeps it configured).")


class AlertsSpec(_Strict):
    """Where violations go, besides the lineage log (the `envguard_on_violation` sinks)."""

    log: bool = Field(True, description="Log every violation at WARNING level.")
    file: str | None = Field(
        None,
        description="Append every violation as a JSON line to this file (relative to the policy).",
    )
    webhooks: list[WebhookSpec] = Field(
        default_factory=list, description="HTTP endpoints that receive every violation."
    )
    spool_file: str = Field(
        ".envguard/alerts-spool.jsonl",
        description="Deliveries that failed wait here and are retried with the next violation.",
    )


class LineageSpec(_Strict):
    """Where the lineage and audit log lives."""

    url: str = Field(
        "sqlite:///.envguard/lineage.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the policy.",
    )
    checkpoint_every: int = Field(1000, ge=1, description="Sign a checkpoint every N events.")
    spool_dir: str = Field(
        ".envguard/spool",
        description="Where events wait, relative to the policy, while the store is unreachable.",
    )


class PolicySpec(_Strict):
    """The whole policy (`envguard.toml`, or `[tool.envguard]` in `pyproject.toml`)."""

    version: Literal[1] = Field(1, description="Schema version of this file.")
    default_env: str | None = Field(
        None, description="Environment used when `ENVGUARD_ENV` is not set."
    )
    mode: Mode = Field(
        "enforce",
        description="`enforce` blocks, `warn` warns and allows, `audit` only records.",
    )
    strict_uris: bool = Field(
        False, description="Refuse MLflow, S3 and DVC locations that no environment lists."
    )
    environments: dict[str, EnvironmentSpec] = Field(
        min_length=1, description="Environment name -> its tier and locations."
    )
    registry: RegistrySpec = Field(
        default_factory=RegistrySpec, description="Aliases, stages and models -> environments."
    )
    promotion: dict[str, PromotionRule] = Field(
        default_factory=dict, description="Target environment -> what a promotion needs."
    )
    roles: dict[str, list[str]] = Field(
        default_factory=dict, description="Identity -> the roles it holds."
    )
    masking: MaskingSpec = Field(default_factory=MaskingSpec, description="Masking rules.")
    signers: dict[str, SignerSpec] = Field(
        default_factory=dict, description="Signer name -> public key trusted for proofs."
    )
    signing: SigningSpec = Field(
        default_factory=SigningSpec, description="This installation's own signing key."
    )
    lineage: LineageSpec = Field(default_factory=LineageSpec, description="The lineage store.")
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, description="Alert sinks.")
