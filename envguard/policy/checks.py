"""Checks that a schema cannot express: references, overlaps, counts and keys.

Each check reads the raw table defensively (a field of the wrong type is already reported by the
schema) so that every problem in a file is reported in one pass, whatever else is wrong.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from envguard.errors import PolicyProblem
from envguard.uris import Location, normalize_uri, parse_location

__all__ = ["check_references", "load_public_key", "problems_from_validation"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def problems_from_validation(
    error: ValidationError, file: str, prefix: str, allowed: Mapping[tuple[str, ...], list[str]]
) -> Iterator[PolicyProblem]:
    """Turn pydantic's errors into one :class:`PolicyProblem` each, with a dotted field path."""
    for item in error.errors(include_url=False):
        loc = tuple(str(part) for part in item["loc"])
        field = ".".join((prefix, *loc)) if prefix else ".".join(loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            parent = tuple(p for p in loc[:-1])
            known = allowed.get(_schema_path(parent), [])
            hint = difflib.get_close_matches(loc[-1], known, n=1)
            message = "unknown key"
            if hint:
                message += f"; did you mean {hint[0]!r}?"
            elif known:
                message += f"; expected one of: {', '.join(known)}"
            yield PolicyProblem(file, field, message)
        elif kind == "missing":
            yield PolicyProblem(file, field, "required field is missing")
        else:
            got = item.get("input")
            shown = _short(got)
            yield PolicyProblem(file, field, f"{_lower_first(item['msg'])}, got {shown}")


def _schema_path(loc: tuple[str, ...]) -> tuple[str, ...]:
    """Map a concrete location (``environments.prod``) to its schema path (``environments.*``)."""
    out: list[str] = []
    dynamic_after = {"environments", "promotion", "signers", "columns", "roles", "aliases"}
    previous = ""
    for part in loc:
        if part.isdigit():
            continue  # an item of a list of tables: same schema as the list
        out.append("*" if previous in dynamic_after else part)
        previous = part
    return tuple(out)


def _lower_first(text: str) -> str:
    text = text.replace("Input should be", "expected").replace("Input", "value")
    return text[:1].lower() + text[1:]


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM or base64; ValueError if not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode())
        except ValueError as exc:
            raise ValueError(f"not a readable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"expected an Ed25519 key, got {type(key).__name__}")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not PEM and not base64") from None
    if len(raw) != 32:
        raise ValueError(f"base64 must decode to 32 bytes for Ed25519, got {len(raw)}")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def check_references(raw: Mapping[str, Any], file: str, prefix: str) -> Iterator[PolicyProblem]:
    """Every cross-field problem in ``raw`` (the policy table, before the schema)."""

    def at(*parts: str) -> str:
        return ".".join((prefix, *parts)) if prefix else ".".join(parts)

    envs = _table(raw.get("environments"))
    declared = [name for name in envs if isinstance(name, str)]
    known = ", ".join(declared) or "none"

    def unknown_env(value: Any, *field: str) -> Iterator[PolicyProblem]:
        if isinstance(value, str) and value not in envs:
            yield PolicyProblem(
                file,
                at(*field),
                f"environment {value!r} is not declared; declared environments: {known}",
            )

    if "environments" in raw and isinstance(raw["environments"], Mapping) and not envs:
        yield PolicyProblem(file, at("environments"), "declare at least one environment")
    for name in declared:
        if not _NAME.match(name):
            yield PolicyProblem(
                file,
                at("environments", name),
                "environment names are lower-case letters, digits, '-' and '_', "
                "starting with a letter",
            )

    yield from unknown_env(raw.get("default_env"), "default_env")

    yield from _registry(raw, file, at, unknown_env)
    yield from _promotion(raw, file, at, unknown_env)
    yield from _overlaps(envs, file, at)

    for name, signer in _table(raw.get("signers")).items():
        key = _table(signer).get("public_key")
        if isinstance(key, str):
            try:
                load_public_key(key)
            except ValueError as exc:
                yield PolicyProblem(
                    file,
                    at("signers", name, "public_key"),
                    f"not a valid Ed25519 public key: {exc}",
                )

    for column, rule in _table(_table(raw.get("masking")).get("columns")).items():
        yield from _column_params(rule, file, at("masking", "columns", column))


def _registry(
    raw: Mapping[str, Any], file: str, at: Any, unknown_env: Any
) -> Iterator[PolicyProblem]:
    registry = _table(raw.get("registry"))
    for section in ("aliases", "stages", "models"):
        seen: dict[str, tuple[str, Any]] = {}
        for key, value in _table(registry.get(section)).items():
            yield from unknown_env(value, "registry", section, key)
            folded = key.casefold()
            if folded in seen and seen[folded][1] != value:
                yield PolicyProblem(
                    file,
                    at("registry", section, key),
                    f"{key!r} and {seen[folded][0]!r} are the same name (case-insensitive) "
                    f"but map to different environments",
                )
            seen.setdefault(folded, (key, value))


def _promotion(
    raw: Mapping[str, Any], file: str, at: Any, unknown_env: Any
) -> Iterator[PolicyProblem]:
    roles = _table(raw.get("roles"))
    for target, rule_value in _table(raw.get("promotion")).items():
        yield from unknown_env(target, "promotion", target)
        rule = _table(rule_value)
        for i, source in enumerate(_strings(rule.get("allowed_sources"))):
            yield from unknown_env(source, "promotion", target, f"allowed_sources[{i}]")
        yield from unknown_env(
            rule.get("require_evaluation_in"), "promotion", target, "require_evaluation_in"
        )
        required = rule.get("approvals")
        wanted = set(_strings(rule.get("approver_roles")))
        if isinstance(required, int) and not isinstance(required, bool) and required > 0:
            holders = {
                who
                for who, held in roles.items()
                if not wanted or wanted.intersection(_strings(held))
            }
            if roles and len(holders) < required:
                what = f"role {' or '.join(sorted(wanted))}" if wanted else "any role"
                yield PolicyProblem(
                    file,
                    at("promotion", target, "approvals"),
                    f"requires {required} approvals but only {len(holders)} "
                    f"identit{'y holds' if len(holders) == 1 else 'ies hold'} {what}; "
                    f"add holders under [roles] or lower the count",
                )
            elif not roles and wanted:
                yield PolicyProblem(
                    file,
                    at("promotion", target, "approver_roles"),
                    f"nobody holds {', '.join(sorted(wanted))}: declare identities under [roles]",
                )


_PARAMS = {"to": "generalize", "width": "generalize", "keep": "generalize", "replacement": "redact"}


def _column_params(rule: Any, file: str, field: str) -> Iterator[PolicyProblem]:
    table = {"method": rule} if isinstance(rule, str) else _table(rule)
    method = table.get("method")
    for param, owner in _PARAMS.items():
        if param in table and isinstance(method, str) and method != owner:
            yield PolicyProblem(
                file, f"{field}.{param}", f"only applies to method {owner!r}, not {method!r}"
            )
    if method == "generalize":
        given = [p for p in ("to", "width", "keep") if p in table]
        if len(given) != 1:
            yield PolicyProblem(
                file,
                field,
                "generalize needs exactly one of 'to' (dates), 'width' (numbers) or 'keep' (codes)",
            )


def _overlaps(envs: Mapping[str, Any], file: str, at: Any) -> Iterator[PolicyProblem]:
    """Two environments may not claim the same (or an overlapping) location."""
    claims: dict[str, list[tuple[str, str, str, Any]]] = {
        "S3 location": [],
        "DVC remote": [],
        "MLflow URI": [],
        "host": [],
    }
    for env, spec_value in envs.items():
        spec = _table(spec_value)
        for field in ("s3", "artifact_locations"):
            for i, uri in enumerate(_strings(spec.get(field))):
                loc = parse_location(uri)
                kind = "S3 location" if loc.scheme == "s3" else "MLflow URI"
                claims[kind].append((env, f"{field}[{i}]", uri, loc))
        for i, remote in enumerate(_strings(spec.get("dvc_remotes"))):
            claims["DVC remote"].append((env, f"dvc_remotes[{i}]", remote, normalize_uri(remote)))
        for field in ("mlflow_tracking_uris", "mlflow_registry_uris"):
            for i, uri in enumerate(_strings(spec.get(field))):
                claims["MLflow URI"].append((env, f"{field}[{i}]", uri, normalize_uri(uri)))
        for i, host in enumerate(_strings(spec.get("hosts"))):
            claims["host"].append((env, f"hosts[{i}]", host, normalize_uri(host).lower()))
    for kind, items in claims.items():
        for n, (env_a, field_a, uri_a, key_a) in enumerate(items):
            for env_b, field_b, uri_b, key_b in items[n + 1 :]:
                if env_a == env_b:
                    continue
                same = (
                    key_a.overlaps(key_b)
                    if isinstance(key_a, Location) and isinstance(key_b, Location)
                    else key_a == key_b
                )
                if same:
                    yield PolicyProblem(
                        file,
                        at("environments", env_b, field_b),
                        f"{kind} {uri_b!r} is also claimed by environment {env_a!r} "
                        f"({field_a} = {uri_a!r}); a location belongs to one environment only",
                    )
