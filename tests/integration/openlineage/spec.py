"""The parts of the OpenLineage 2-0-2 object model that a RunEvent must satisfy, as a JSON Schema.

Written for these tests from the specification (https://openlineage.io/spec/2-0-2/OpenLineage.json,
Apache-2.0), not copied from it: the RunEvent and its run, job, datasets and facets, with the
constraints the specification states (required fields, the eventType values, runId a UUID,
eventTime a date-time, every facet carrying ``_producer`` and ``_schemaURL``). It is registered
under the specification's URL so that envguard's facet schemas, which extend ``RunFacet`` and
``DatasetFacet`` by reference, resolve offline.
"""

from __future__ import annotations

from typing import Any

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def _facets(kind: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"$ref": f"#/$defs/{kind}"}}


def _facet() -> dict[str, Any]:
    return {"type": "object", "allOf": [{"$ref": "#/$defs/BaseFacet"}]}


SPEC: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SPEC_URL,
    "$defs": {
        "BaseEvent": {
            "type": "object",
            "properties": {
                "eventTime": {"type": "string", "format": "date-time"},
                "producer": {"type": "string", "format": "uri"},
                "schemaURL": {"type": "string", "format": "uri"},
            },
            "required": ["eventTime", "producer", "schemaURL"],
        },
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "RunFacet": _facet(),
        "JobFacet": _facet(),
        "DatasetFacet": _facet(),
        "InputDatasetFacet": _facet(),
        "OutputDatasetFacet": _facet(),
        "Run": {
            "type": "object",
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": _facets("RunFacet"),
            },
            "required": ["runId"],
        },
        "Job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": _facets("JobFacet"),
            },
            "required": ["namespace", "name"],
        },
        "Dataset": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": _facets("DatasetFacet"),
            },
            "required": ["namespace", "name"],
        },
        "InputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {"type": "object", "properties": {"inputFacets": _facets("InputDatasetFacet")}},
            ]
        },
        "OutputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {"type": "object", "properties": {"outputFacets": _facets("OutputDatasetFacet")}},
            ]
        },
        "RunEvent": {
            "allOf": [
                {"$ref": "#/$defs/BaseEvent"},
                {
                    "type": "object",
                    "properties": {
                        "eventType": {
                            "type": "string",
                            "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"],
                        },
                        "run": {"$ref": "#/$defs/Run"},
                        "job": {"$ref": "#/$defs/Job"},
                        "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                        "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
                    },
                    "required": ["run", "job"],
                },
            ]
        },
    },
}
