"""envguard's custom OpenLineage facets.

Each facet carries ``_producer`` (this plugin, by version) and ``_schemaURL`` (its JSON schema,
shipped in ``schemas/`` beside this module and documented in ``docs/openlineage.md``):

==============================  ===========  =============================================
facet key                       attached to  what it says
==============================  ===========  =============================================
``envguard_environment``        run          environment, tier, actor, policy sha256
``envguard_origin``             dataset      the origin environment envguard recorded
``envguard_maskingProof``       dataset      the masking proof behind a masked output:
                                             proof id, signer, whether it verifies now
==============================  ===========  =============================================
"""

from __future__ import annotations

import attr
from openlineage.client.facet_v2 import DatasetFacet, RunFacet

from envguard import __version__

__all__ = [
    "PRODUCER",
    "SCHEMA_BASE",
    "EnvironmentRunFacet",
    "MaskingProofDatasetFacet",
    "OriginDatasetFacet",
]

PRODUCER = f"https://envguard.invalid/envguard/{__version__}/plugins/envguard_openlineage"
SCHEMA_BASE = "https://envguard.invalid/spec/openlineage/1-0-0"


@attr.define
class EnvironmentRunFacet(RunFacet):
    """Where a run (or step) ran, as envguard's policy names it."""

    environment: str
    tier: str | None = None
    actor: str | None = None
    policySha256: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/EnvguardEnvironmentRunFacet.json#/$defs/EnvguardEnvironmentRunFacet"


@attr.define
class OriginDatasetFacet(DatasetFacet):
    """The environment a dataset comes from (its first recorded origin)."""

    origin: str
    tier: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/EnvguardOriginDatasetFacet.json#/$defs/EnvguardOriginDatasetFacet"


@attr.define
class MaskingProofDatasetFacet(DatasetFacet):
    """The signed masking proof (in-toto statement in a DSSE envelope) behind a masked output,
    verified again when the export was made."""

    proofId: str
    sources: list[str] = attr.field(factory=list)
    signer: str | None = None
    verified: bool = False
    problems: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return (
            f"{SCHEMA_BASE}/EnvguardMaskingProofDatasetFacet.json"
            "#/$defs/EnvguardMaskingProofDatasetFacet"
        )
