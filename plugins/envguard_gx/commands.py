"""``envguard mask``: mask a CSV or Parquet file, validate it, and write its proof.

Only click and the core are imported here; pyarrow, pandas and Great Expectations load when the
command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from envguard.cli.output import emit_json

__all__ = ["mask_command"]

#: Inputs at least this large get a progress bar (on a terminal only).
PROGRESS_MIN_BYTES = 8 << 20


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error when it is a terminal and the input is long."""
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label="masking", file=sys.stderr) as bar:
        done = 0

        def update(position: int) -> None:
            nonlocal done
            if position > done:
                bar.update(position - done)
                done = position

        yield update


@click.command("mask")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The masked file (.csv or .parquet); its proof is written beside it.",
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="COLUMN=METHOD[,NAME=VALUE...]",
    help="Add or override a column's rule, e.g. --rule email=hash or "
    "--rule income=generalize,width=10000. Repeatable.",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Rows validated at once (default 250,000): memory grows with it, the fixed cost per "
    "Great Expectations call shrinks with it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def mask_command(
    input_path: Path,
    output_path: Path,
    rules: tuple[str, ...],
    batch_rows: int | None,
    as_json: bool,
) -> int:
    """Mask INPUT (CSV or Parquet) into OUTPUT with the policy's [masking.columns] rules, validate
    the result with Great Expectations, and write OUTPUT.envguard-proof.json.

    Every text column is checked for e-mails, phones, SSNs, card numbers and IPv4 addresses,
    including columns no rule names. Exit 0 when masked and proven; 1 when the validation
    failed (nothing is written, and the failed columns are listed with counts, never values);
    2 for bad input or configuration.
    """
    from envguard.runtime import current
    from envguard_gx.masking import parse_rule_option
    from envguard_gx.masking_run import VALIDATION_ROWS, mask_file

    runtime = current()
    extra = dict(parse_rule_option(text) for text in rules)
    size = input_path.stat().st_size if input_path.is_file() else 0
    with _progress(size) as progress:
        outcome = mask_file(
            runtime.policy,
            input_path,
            output_path,
            extra,
            actor=runtime.actor,
            environ=runtime.environ,
            progress=progress,
            batch_rows=batch_rows or VALIDATION_ROWS,
        )
    if as_json:
        emit_json(outcome.to_dict())
        return 0 if outcome.passed else 1
    masked = ", ".join(
        f"{name} {rule['method']}"
        for name, rule in outcome.columns.items()
        if rule["method"] != "keep"
    )
    if not outcome.passed:
        click.echo(
            f"envguard mask: validation failed; {output_path} was not written and no proof "
            f"was made",
            err=True,
        )
        for check in outcome.failures:
            where = f"column {check.column}" if check.column else "table"
            count = (
                f"{check.unexpected_count} of {check.element_count} values"
                if check.column
                else "failed"
            )
            click.echo(f"  - {where}: {check.check}: {count}", err=True)
        click.echo(
            "fix: add rules for these columns in [masking.columns] (or --rule COLUMN=scrub), "
            "then run envguard mask again",
            err=True,
        )
        return 1
    assert outcome.proof is not None
    click.echo(
        f"masked {input_path} -> {output_path} ({outcome.rows} rows; {masked or 'no rules'})"
    )
    click.echo(f"validation: passed ({len(outcome.checks)} checks)")
    click.echo(f"proof: {outcome.proof.path} (id {outcome.proof.proof_id[:16]})")
    return 0
