"""One masking run: read the input in chunks, mask, write, validate, and prove.

One pass over the data, in bounded memory: each batch the reader yields (about 1 MiB of CSV) is
masked and written at once; masked batches gather until ``batch_rows`` rows (or
``VALIDATION_BYTES``) and are then validated together, and the counts of every group are summed
(:class:`~envguard_gx.validation.MaskedTableValidator`). The source's and the output's sha256 are
computed from the bytes as they are read and written. Peak memory therefore depends on
``batch_rows``, not on the file.

The output is written to a temporary file beside it and renamed into place only when the whole
validation passed; then the proof is written beside it. When the validation fails, nothing is
left behind: no output (it may hold what the validation found) and no proof.
"""

from __future__ import annotations

import os
import platform
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard.proofs import (
    MaskingFacts,
    MaskingProof,
    ValidationCheck,
    create_proof,
    proof_path_for,
)
from envguard_gx.masking import ColumnMasking, MaskingPlan
from envguard_gx.table_io import TableReader, TableWriter, format_of, open_reader, open_writer

if TYPE_CHECKING:
    import pyarrow as pa

    from envguard.policy import Policy
    from envguard.policy.schema import ColumnRule
    from envguard.proofs import MaskingProof
    from envguard_gx.validation import MaskedTableValidator

__all__ = ["VALIDATION_BYTES", "VALIDATION_ROWS", "MaskingOutcome", "mask_file"]

#: A batch is validated when this many masked rows (or bytes) have gathered: large batches keep
#: Great Expectations' fixed cost per call small, the bounds keep memory bounded.
VALIDATION_ROWS = 250_000
VALIDATION_BYTES = 32 << 20


@dataclass
class MaskingOutcome:
    """What a masking run did; ``proof`` is None when the validation failed."""

    input_path: Path
    output_path: Path
    input_sha256: str
    rows: int
    columns: dict[str, dict[str, Any]]
    checks: list[ValidationCheck]
    output_sha256: str | None = None
    proof: MaskingProof | None = None
    failures: list[ValidationCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and self.proof is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "input": {"path": str(self.input_path), "sha256": self.input_sha256},
            "output": {
                "path": str(self.output_path) if self.passed else None,
                "sha256": self.output_sha256,
            },
            "proof": (
                {"path": str(self.proof.path), "proof_id": self.proof.proof_id}
                if self.proof
                else None
            ),
            "rows": self.rows,
            "columns": self.columns,
            "validation": {
                "success": not self.failures,
                "checks": [c.to_dict() for c in self.checks],
                "failed": [c.to_dict() for c in self.failures],
            },
        }


def tool_versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {"python": platform.python_version()}
    for name in ("great_expectations", "pandas", "pyarrow"):
        found[name] = version(name.replace("_", "-"))
    return found


def _rules(policy: Policy, extra: Mapping[str, ColumnRule]) -> dict[str, ColumnRule]:
    return {**policy.spec.masking.columns, **extra}


def mask_file(
    policy: Policy,
    input_path: Path,
    output_path: Path,
    extra_rules: Mapping[str, ColumnRule] | None = None,
    actor: str = "unknown",
    environ: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = VALIDATION_ROWS,
) -> MaskingOutcome:
    """Mask ``input_path`` into ``output_path`` and write its proof when validation passes.

    ``batch_rows`` is how many masked rows are validated at once: memory grows with it, Great
    Expectations' fixed cost per call shrinks with it."""
    from envguard.keys import masking_key
    from envguard_gx.validation import MaskedTableValidator

    if input_path.resolve() == output_path.resolve():
        raise InputError(str(output_path), "the output must not overwrite the input")
    output_format = format_of(output_path)
    if batch_rows < 1:
        raise InputError("--batch-rows", f"must be at least 1, not {batch_rows}")
    reader = open_reader(input_path)
    plan = MaskingPlan(_rules(policy, extra_rules or {}))
    source_columns = list(reader.schema.names)
    masks = plan.for_columns(source_columns)
    output_columns = plan.output_columns(source_columns)
    key = masking_key(policy, environ) if any(m.method == "hash" for m in masks.values()) else b""
    validator = MaskedTableValidator(masks, output_columns)
    columns = {
        name: (masks[name].describe() if name in masks else {"method": "keep"})
        for name in source_columns
    }
    outcome = MaskingOutcome(input_path, output_path, "", 0, columns, [])

    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        outcome.rows, output_sha256 = _stream(
            reader, plan, key, masks, validator, tmp, output_format, progress, batch_rows
        )
        outcome.input_sha256 = reader.sha256()
        outcome.checks = validator.checks
        outcome.failures = validator.failures
        if outcome.failures:
            return outcome
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)

    from importlib.metadata import version

    outcome.output_sha256 = output_sha256
    facts = MaskingFacts(
        output_name=output_path.name,
        output_sha256=outcome.output_sha256,
        sources=[(input_path.name, outcome.input_sha256)],
        columns=columns,
        checks=outcome.checks,
        row_count=outcome.rows,
        validator={"engine": "great_expectations", "version": version("great-expectations")},
        tools=tool_versions(),
    )
    outcome.proof = create_proof(policy, facts, proof_path_for(output_path), actor, environ)
    _record_proof(outcome.proof, facts, output_path)
    return outcome


def _record_proof(proof: MaskingProof, facts: MaskingFacts, output_path: Path) -> None:
    """Record the masking in the lineage log: a ``masked`` link from each source to the output,
    with the signed proof (its envelope) so that the data-use gate can verify it again. When the
    store is unreachable the event waits in its spool; without it the masked data would still
    count as production data at the gate (the failure is on the safe side)."""
    from envguard.lineage import Link
    from envguard.runtime import current

    runtime = current()
    output = f"sha256:{facts.output_sha256}"
    draft = runtime.draft(
        "proof.recorded",
        entities=[f"proof:{proof.proof_id}", output],
        links=[Link(f"sha256:{sha}", output, "masked") for _name, sha in facts.sources],
        payload={
            "output": str(output_path.resolve()),
            "proof": str(proof.path),
            "columns": {name: dict(rule) for name, rule in facts.columns.items()},
            "envelope": dict(proof.envelope),
        },
    )
    runtime.store.append(draft, required=False)


def _stream(
    reader: TableReader,
    plan: MaskingPlan,
    key: bytes,
    masks: Mapping[str, ColumnMasking],
    validator: MaskedTableValidator,
    tmp: Path,
    output_format: str,
    progress: Callable[[int], None] | None,
    batch_rows: int,
) -> tuple[int, str]:
    """Mask every batch into ``tmp`` and validate the masked batches in groups of
    ``batch_rows``; the row count and the output's sha256."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0
    non_null: dict[str, int] = {}
    rows = 0

    def flush() -> None:
        nonlocal pending_rows, pending_bytes
        if pending:
            validator.validate(pa.Table.from_batches(pending), non_null)
        pending.clear()
        non_null.clear()
        pending_rows = pending_bytes = 0

    writer: TableWriter | None = None
    try:
        for batch in _batches_or_empty(reader):
            masked = plan.mask(batch, key)
            if writer is None:
                writer = open_writer(tmp, output_format, masked.schema)
            writer.write(masked)
            rows += batch.num_rows
            pending.append(masked)
            pending_rows += masked.num_rows
            pending_bytes += masked.nbytes
            for name in masks:
                column = batch.column(name)
                non_null[name] = non_null.get(name, 0) + len(column) - column.null_count
            if pending_rows >= batch_rows or pending_bytes >= VALIDATION_BYTES:
                flush()
            if progress is not None:
                progress(reader.bytes_read())
        flush()
    finally:
        if writer is not None:
            writer.close()
    assert writer is not None  # _batches_or_empty yields at least one batch
    return rows, writer.sha256()


def _batches_or_empty(reader: TableReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches; one empty batch of its schema when the input has no rows."""
    import pyarrow as pa

    seen = False
    for batch in reader.batches():
        seen = True
        yield batch
    if not seen:
        yield pa.RecordBatch.from_pylist([], schema=reader.schema)
