"""The masking methods and PII patterns of the gx plugin, one by one, on small data."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from envguard_gx.commands import PROGRESS_MIN_BYTES, _progress
from envguard_gx.masking import ColumnMasking, MaskingPlan, parse_rule_option
from envguard_gx.pii import (
    CARD_CANDIDATE,
    PII_PATTERNS,
    PiiPattern,
    contains_luhn_card,
    luhn_valid,
    scrub_array,
    scrub_text,
)

from envguard.errors import ConfigError, InputError
from envguard.policy.schema import ColumnRule

ADVERSARIAL = {
    "Write to JOHN.DOE@EXAMPLE.COM today": "Write to [EMAIL] today",
    "john [at] example [dot] com": "[EMAIL]",
    "jane(at)corp(dot)co(dot)uk, thanks": "[EMAIL], thanks",
    "ops AT acme DOT org": "[EMAIL]",
    "josé.müller@exämple.de schreibt": "[EMAIL] schreibt",
    "SSN 123-45-6789 / 987 65 4321": "SSN [SSN] / [SSN]",
    "+44 20 7946 0958, +1 (555) 123-4567, +33 1 23 45 67 89": "[PHONE], [PHONE], [PHONE]",
    "(555) 123-4567 or 555.123.4567 or 020 7946 0958": "[PHONE] or [PHONE] or [PHONE]",
    "card 4111 1111 1111 1111 and 4539-1488-0343-6467": "card [CARD] and [CARD]",
    "order 4111 1111 1111 1112": "order 4111 1111 1111 1112",
    "hosts 192.168.0.1,10.0.0.254.": "hosts [IP],[IP].",
    "on 2024-01-15, version 3.11, total 12.50": "on 2024-01-15, version 3.11, total 12.50",
    "日本語のテキスト 🚀": "日本語のテキスト 🚀",
    "": "",
    "line one\nmail a@b.co": "line one\nmail [EMAIL]",
}


def test_scrub_in_python_and_in_pyarrow_agree() -> None:
    values = [*ADVERSARIAL, None]
    scrubbed = scrub_array(pa.array(values)).to_pylist()
    assert scrubbed == [*ADVERSARIAL.values(), None]
    for raw, expected in ADVERSARIAL.items():
        assert scrub_text(raw) == expected


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert contains_luhn_card("x 4539 1488 0343 6467 y")
    assert not contains_luhn_card("x 4539 1488 0343 6468 y")
    assert re.search(CARD_CANDIDATE, "4539148803436468")


@pytest.mark.parametrize("pattern", PII_PATTERNS, ids=lambda p: p.name)
def test_patterns_keep_the_fast_path_and_find_what_they_replace(pattern: PiiPattern) -> None:
    """pandas runs these with pyarrow's RE2 only when it need not fall back to Python's re:
    no \\s, \\d, \\w or \\b. Unicode text is where the fallback would hit."""
    search = pattern.search_regex
    series = pd.Series(["ünïcödé", "ascii"], dtype=pd.StringDtype("pyarrow"))
    assert not series.array._needs_python_regex(search)
    assert re.compile(search).groups == 0
    assert re.compile(pattern.scrub_regex).groups == 3
    found = [raw for raw in ADVERSARIAL if re.search(search, raw)]
    assert found, f"no adversarial example for {pattern.name}"
    for raw in found:
        assert pattern.token in ADVERSARIAL[raw]
    for scrubbed in ADVERSARIAL.values():
        assert not re.search(search, scrubbed)


def test_generalize_and_redact_and_hash() -> None:
    key = b"k" * 32
    year = ColumnMasking("d", ColumnRule(method="generalize", to="year"))
    month = ColumnMasking("d", ColumnRule(method="generalize", to="month"))
    dates = pa.array(["1984-07-02", " 2001-12-31T10:00", "July 4", None])
    assert year.apply(dates, key).to_pylist() == ["1984", "2001", None, None]
    assert month.apply(dates, key).to_pylist() == ["1984-07", "2001-12", None, None]
    ranges = ColumnMasking("n", ColumnRule(method="generalize", width=100))
    numbers = pa.array(["150", "-1", "99.9", "n/a", None])
    assert ranges.apply(numbers, key).to_pylist() == [
        "[100, 200)",
        "[-100, 0)",
        "[0, 100)",
        None,
        None,
    ]
    codes = ColumnMasking("p", ColumnRule(method="generalize", keep=2))
    assert codes.apply(pa.array(["SW1A", "É1", None]), key).to_pylist() == ["SW", "É1", None]
    redact = ColumnMasking("r", ColumnRule(method="redact", replacement="<gone>"))
    assert redact.apply(pa.array(["x", None]), key).to_pylist() == ["<gone>", None]
    assert re.fullmatch(redact.output_format or "", "<gone>")
    tokens = ColumnMasking("h", ColumnRule(method="hash")).apply(
        pa.array(["a", "b", "a", None]), key
    )
    first, second, third, missing = tokens.to_pylist()
    assert first == third != second
    assert missing is None
    assert re.fullmatch(r"tok_[0-9a-f]{32}", first)
    numbers_hashed = ColumnMasking("h", ColumnRule(method="hash")).apply(pa.array([7, 7]), key)
    assert len(set(numbers_hashed.to_pylist())) == 1


def test_plan_and_rule_options() -> None:
    assert parse_rule_option("income=generalize,width=10000") == (
        "income",
        ColumnRule(method="generalize", width=10000),
    )
    assert parse_rule_option(" d = generalize,to=month")[1].to == "month"
    with pytest.raises(InputError, match="expected COLUMN=METHOD"):
        parse_rule_option("email")
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        parse_rule_option("email=hash,oops")
    with pytest.raises(ConfigError, match="exactly one of to"):
        MaskingPlan({"d": ColumnRule(method="generalize")})
    plan = MaskingPlan({"a": ColumnRule(method="drop"), "b": ColumnRule(method="redact")})
    assert plan.output_columns(["a", "b", "c"]) == ["b", "c"]
    batch = pa.RecordBatch.from_pydict({"a": ["x"], "b": ["y"], "c": ["z"]})
    assert plan.mask(batch, b"").to_pydict() == {"b": ["[REDACTED]"], "c": ["z"]}


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    with _progress(PROGRESS_MIN_BYTES * 2) as update:
        assert update is None  # pytest's captured stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with _progress(PROGRESS_MIN_BYTES - 1) as update:
        assert update is None
    with _progress(PROGRESS_MIN_BYTES * 2) as update:
        assert update is not None
        update(PROGRESS_MIN_BYTES)
        update(PROGRESS_MIN_BYTES * 2)
