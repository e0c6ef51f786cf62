"""Masking streams: memory does not grow with the file, and the validation, the digests and the
proof still cover every row."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.benchmarks.bench_masking import run_measured
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

ENVGUARD = str(Path(sys.executable).with_name("envguard"))
WIDE_MB = 192
#: How much more memory masking the wide file may take than masking a one-row file. Holding the
#: file (its bytes, or its parsed columns) would cost at least WIDE_MB; envguard before streaming
#: took about 1.2 times the file's size more (pyarrow's CSV reader read 32 blocks of 16 MiB ahead).
GROWTH_LIMIT_MB = 80


def _wide_csv(path: Path, size: int) -> int:
    """A CSV of about ``size`` bytes with long rows (a ~1 KiB text holding a quoted newline, in
    the ``ssn`` column, which the example policy drops); the number of rows."""
    filler = "lorem ipsum dolor sit amet " * 19 + "\nconsectetur adipiscing elit " * 18
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,ssn,city\n")
        while out.tell() < size:
            out.write(
                "".join(
                    f'{i},Ada Lovelace,"{filler}{i}",Zürich\n' for i in range(rows, rows + 10_000)
                )
            )
            rows += 10_000
    return rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.integration
def test_memory_does_not_grow_with_the_file_and_every_row_is_validated(workspace: Path) -> None:
    tiny = workspace / "tiny.csv"
    tiny.write_text('id,name,ssn,city\n1,Ada Lovelace,"a\nb",Zürich\n', encoding="utf-8")
    wide = workspace / "wide.csv"
    try:
        rows = _wide_csv(wide, WIDE_MB << 20)

        small = run_measured([ENVGUARD, "mask", str(tiny), "-o", "tiny-masked.csv"], workspace)
        assert small["returncode"] == 0, small["stderr"]
        large = run_measured(
            [
                ENVGUARD,
                "mask",
                str(wide),
                "-o",
                "wide-masked.csv",
                "--batch-rows",
                "50000",
                "--json",
            ],
            workspace,
        )
        assert large["returncode"] == 0, large["stderr"]

        growth = large["peak_mb"] - small["peak_mb"]
        assert growth < GROWTH_LIMIT_MB, (
            f"masking a {WIDE_MB} MiB CSV took {large['peak_mb']:.0f} MiB at peak, "
            f"{growth:.0f} MiB more than a one-row CSV"
        )

        outcome = json.loads(large["stdout"])
        assert outcome["passed"]
        assert outcome["rows"] == rows
        column_checks = [c for c in outcome["validation"]["checks"] if c["column"]]
        assert {c["column"] for c in column_checks} == {"id", "name", "city"}
        # counts of all the validation batches (rows / 50,000 of them) add up to every row
        assert all(c["element_count"] == rows and c["success"] for c in column_checks)
        masked = workspace / "wide-masked.csv"
        assert outcome["input"]["sha256"] == _sha256(wide)
        assert outcome["output"]["sha256"] == _sha256(masked)
        with masked.open(encoding="utf-8") as stream:
            assert stream.readline() == '"id","name","city"\n'
            assert stream.readline() == '"0","[REDACTED]","Zürich"\n'
        assert not list(workspace.glob(".wide-masked*"))
    finally:  # two files of ~190 MiB each: not left for pytest's kept temporary folders
        wide.unlink(missing_ok=True)
        (workspace / "wide-masked.csv").unlink(missing_ok=True)


def test_pii_in_the_last_batch_only_fails_the_whole_run(workspace: Path, envguard_cli: Cli) -> None:
    lines = [f"{i},Ada Lovelace,note {i}\n" for i in range(200)]
    lines[-1] = '199,Ada Lovelace,"last\nrow: ada@example.com"\n'
    (workspace / "notes.csv").write_text("id,name,remark\n" + "".join(lines), encoding="utf-8")

    failed = envguard_cli("mask", "notes.csv", "-o", "out.csv", "--batch-rows", "100", "--json")
    assert failed.exit_code == 1
    outcome = failed.json()
    assert outcome["rows"] == 200
    assert [
        (c["column"], c["unexpected_count"], c["element_count"])
        for c in outcome["validation"]["failed"]
    ] == [("remark", 1, 200)]
    assert "ada@example.com" not in failed.stdout + failed.stderr
    assert not list(workspace.glob("out.csv*"))
    assert not list(workspace.glob(".out.csv*"))

    passed = envguard_cli(
        "mask", "notes.csv", "-o", "out.csv", "--batch-rows", "100", "--rule", "remark=scrub"
    )
    assert passed.exit_code == 0, passed.stderr
    assert "200 rows" in passed.stdout
    assert Path("out.csv.envguard-proof.json").is_file()


def test_batch_rows_must_be_positive(workspace: Path, envguard_cli: Cli) -> None:
    (workspace / "t.csv").write_text("id\n1\n", encoding="utf-8")
    result = envguard_cli("mask", "t.csv", "-o", "o.csv", "--batch-rows", "0")
    assert result.exit_code == 2
    assert "--batch-rows" in result.stderr
