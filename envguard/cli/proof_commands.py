"""``envguard proof verify``: check a masking proof without any of the masking plugin's
dependencies (servers and auditors verify proofs; only the masking job needs Great Expectations).
"""

from __future__ import annotations

from pathlib import Path

import click

from envguard.cli.output import emit_json, kv_lines

__all__ = ["register"]


@click.group("proof")
def proof_group() -> None:
    """Verify masking proofs (written by envguard mask)."""


@proof_group.command("verify")
@click.argument("proof", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="The masked file the proof is about (default: the file the proof sits beside).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def proof_verify(proof: Path, data: Path | None, as_json: bool) -> int:
    """Check PROOF: its signature against the policy's keys trusted for masking, its digest
    against the data, its validation, and its policy.

    Exit 0 when valid; 1 with every reason when not; 2 when a file cannot be read.
    """
    from envguard.proofs import verify_proof
    from envguard.runtime import current

    runtime = current()
    result = verify_proof(runtime.policy, proof, data, environ=runtime.environ)
    if as_json:
        emit_json(result.to_dict())
        return 0 if result.valid else 1
    name, sha = result.proof.subject
    status = click.style(
        "VALID" if result.valid else "INVALID", bold=True, fg="green" if result.valid else "red"
    )
    click.echo(f"{proof}: {status}")
    pairs = [
        ("proof id", result.proof.proof_id),
        ("subject", f"{name} (sha256 {sha})"),
        ("data", f"{result.data_path} (sha256 {result.data_sha256})" if result.data_path else "-"),
        ("signer", result.signer or "-"),
        ("sources", ", ".join(f"{n} ({d[:12]}…)" for n, d in result.proof.sources) or "-"),
    ]
    click.echo(kv_lines(pairs))
    for note in result.notes:
        click.echo(f"note: {note}")
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    return 0 if result.valid else 1


def register(cli: click.Group) -> None:
    cli.add_command(proof_group)
