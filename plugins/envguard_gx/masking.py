"""The masking methods, applied to one pyarrow column at a time.

- ``hash``: keyed HMAC-SHA256 of the value's text, shown as ``tok_`` + 32 hex characters (128
  bits). The key (:func:`envguard.keys.masking_key`) makes a dictionary attack useless without
  it; the same value gives the same token with the same key, so masked tables still join.
- ``redact``: the value replaced by ``replacement`` (default ``[REDACTED]``).
- ``drop``: the column removed.
- ``generalize``: dates to the year (``to = "year"``, ``1984``) or month (``1984-07``); numbers
  to ranges of ``width`` (``[30000, 40000)``); codes to their first ``keep`` characters.
- ``scrub``: free text with e-mails, phones, SSNs, Luhn-valid card numbers and IPv4 addresses
  replaced (:mod:`envguard_gx.pii`).

Null stays null, so that "not null where the source was not" can be checked. A value that a
``generalize`` rule cannot read (a date that is no date) becomes null rather than pass through,
and the validation then fails on that column.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envguard.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from envguard.policy.schema import ColumnRule

__all__ = ["TOKEN_PREFIX", "ColumnMasking", "MaskingPlan", "parse_rule_option"]

TOKEN_PREFIX = "tok_"  # noqa: S105 - a token format, not a password
TOKEN_HEX = 32
DEFAULT_REDACTION = "[REDACTED]"


@dataclass(frozen=True)
class ColumnMasking:
    """One column's rule, checked, with the output format validation expects of it."""

    column: str
    rule: ColumnRule

    @property
    def method(self) -> str:
        return self.rule.method

    @property
    def generalization(self) -> str | None:
        """``year``, ``month``, ``range`` or ``prefix`` for ``generalize``; else None."""
        if self.method != "generalize":
            return None
        if self.rule.to is not None:
            return self.rule.to
        if self.rule.width is not None:
            return "range"
        return "prefix"

    @property
    def output_format(self) -> str | None:
        """A regex every non-null output value matches (RE2 and Python), or None for free text."""
        if self.method == "hash":
            return rf"^{TOKEN_PREFIX}[0-9a-f]{{{TOKEN_HEX}}}$"
        if self.method == "redact":
            return "^" + re.escape(self.rule.replacement or DEFAULT_REDACTION) + "$"
        formats = {
            "year": r"^[0-9]{4}$",
            "month": r"^[0-9]{4}-[0-9]{2}$",
            "range": r"^\[-?[0-9]+, -?[0-9]+\)$",
            "prefix": rf"^.{{0,{self.rule.keep}}}$",
        }
        return formats.get(self.generalization or "")

    def describe(self) -> dict[str, Any]:
        """The rule as recorded in the proof."""
        return self.rule.model_dump(exclude_none=True)

    def apply(self, values: pa.Array, key: bytes) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.method == "hash":
            return _hash_tokens(values, key)
        if self.method == "redact":
            text = self.rule.replacement or DEFAULT_REDACTION
            return pc.if_else(pc.is_null(values), pa.scalar(None, pa.string()), text)
        if self.method == "scrub":
            from envguard_gx.pii import scrub_array

            return scrub_array(values)
        kind = self.generalization
        if kind in ("year", "month"):
            return _generalize_date(values, kind)
        if kind == "range":
            return _generalize_number(values, int(self.rule.width or 1))
        return pc.utf8_slice_codeunits(_as_text(values), 0, int(self.rule.keep or 0))


def _as_text(values: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def _hash_tokens(values: pa.Array, key: bytes) -> pa.Array:
    """HMAC each distinct value once, then spread the tokens back over the rows."""
    import pyarrow as pa

    encoded = _as_text(values).dictionary_encode()
    tokens = [
        TOKEN_PREFIX + hmac.digest(key, value.encode(), "sha256")[: TOKEN_HEX // 2].hex()
        for value in encoded.dictionary.to_pylist()
    ]
    return pa.array(tokens, pa.string()).take(encoded.indices)


def _generalize_date(values: pa.Array, to: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    width = 4 if to == "year" else 7
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return pc.strftime(values, format="%Y" if to == "year" else "%Y-%m")
    text = pc.utf8_trim_whitespace(_as_text(values))
    readable = pc.match_substring_regex(text, r"^[0-9]{4}-[0-9]{2}")
    return pc.if_else(
        readable, pc.utf8_slice_codeunits(text, 0, width), pa.scalar(None, pa.string())
    )


def _generalize_number(values: pa.Array, width: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = pc.cast(values, pa.float64())
    else:
        text = pc.utf8_trim_whitespace(_as_text(values))
        readable = pc.match_substring_regex(text, r"^-?[0-9]+(\.[0-9]+)?$")
        numbers = pc.cast(pc.if_else(readable, text, pa.scalar(None, pa.string())), pa.float64())
    low = pc.cast(pc.multiply(pc.floor(pc.divide(numbers, float(width))), float(width)), pa.int64())
    high = pc.add(low, width)
    return pc.binary_join_element_wise(
        "[", pc.cast(low, pa.string()), ", ", pc.cast(high, pa.string()), ")", ""
    )


class MaskingPlan:
    """Which columns of a table are masked how, from the policy's rules and ``--rule`` options."""

    def __init__(self, rules: Mapping[str, ColumnRule]) -> None:
        self.rules = {
            name: ColumnMasking(name, _checked(name, rule)) for name, rule in rules.items()
        }

    def for_columns(self, columns: list[str]) -> dict[str, ColumnMasking]:
        """The rules that apply to a table with these columns, in the table's order."""
        return {name: self.rules[name] for name in columns if name in self.rules}

    def output_columns(self, columns: list[str]) -> list[str]:
        return [c for c in columns if c not in self.rules or self.rules[c].method != "drop"]

    def mask(self, batch: pa.RecordBatch, key: bytes) -> pa.RecordBatch:
        import pyarrow as pa

        names, arrays = [], []
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            rule = self.rules.get(name)
            if rule is not None and rule.method == "drop":
                continue
            names.append(name)
            if rule is None:
                arrays.append(column)
                continue
            try:
                arrays.append(rule.apply(column, key))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InputError(
                    f"column {name!r}",
                    f"cannot {rule.method} values of type {column.type}: {exc}; choose another "
                    f"method for it (drop or redact work on any type)",
                ) from None
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _checked(column: str, rule: ColumnRule) -> ColumnRule:
    where = f"masking.columns.{column}"
    if rule.method == "generalize":
        given = [k for k in ("to", "width", "keep") if getattr(rule, k) is not None]
        if len(given) != 1:
            raise ConfigError(
                f"{where}: generalize needs exactly one of to (dates), width (numbers) or keep "
                f"(codes); got {', '.join(given) or 'none'}"
            )
    return rule


def parse_rule_option(text: str) -> tuple[str, ColumnRule]:
    """``COLUMN=METHOD[,param=value...]`` (``--rule income=generalize,width=10000``)."""
    from pydantic import ValidationError

    from envguard.policy.schema import ColumnRule

    column, sep, spec = text.partition("=")
    if not sep or not column.strip() or not spec.strip():
        raise InputError(f"--rule {text}", "expected COLUMN=METHOD, e.g. --rule email=hash")
    method, *params = spec.split(",")
    data: dict[str, Any] = {"method": method.strip()}
    for param in params:
        name, sep, value = param.partition("=")
        if not sep:
            raise InputError(f"--rule {text}", f"parameter {param!r}: expected NAME=VALUE")
        data[name.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    try:
        return column.strip(), ColumnRule.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'method'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"--rule {text}", problems) from None
