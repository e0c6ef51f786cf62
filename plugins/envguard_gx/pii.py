"""The PII that ``scrub`` removes from free text and that validation looks for in every text
column: e-mail addresses (also upper-case and obfuscated, ``name [at] domain [dot] com``), phone
numbers (international ``+44 20 7946 0958``, North American ``(555) 123-4567``, national
``020 7946 0958``), US social security numbers with dashes or spaces, payment card numbers that
pass the Luhn check, and IPv4 addresses.

Every pattern is written once and used by both sides, so that what validation flags is exactly
what ``scrub`` would have replaced. Each has three groups, ``(before)(PII)(after)``, and a
replacement token; scrubbing rewrites a match as ``\\1TOKEN\\3``.

The patterns are valid for RE2 (pyarrow) and Python's ``re`` alike, and avoid ``\\s``, ``\\d``,
``\\w`` and ``\\b``: pandas runs a regex on pyarrow strings with RE2 (vectorised, fast) unless the
pattern uses one of those, in which case it falls back to Python's ``re`` row by row (about ten
times slower on a million rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CARD_CANDIDATE",
    "PII_PATTERNS",
    "PiiPattern",
    "contains_luhn_card",
    "luhn_valid",
    "scrub_array",
    "scrub_text",
]

_SPACE = r"[ \t]"
_EMAIL_CHAR = r"""[^ \t\r\n@<>()\[\]{},;:"'|]"""
_EMAIL_TLD = r"""[^ \t\r\n@<>()\[\]{},;:"'|.0-9]"""
_OPEN = r"[\[({<]"
_CLOSE = r"[\])}>]"


@dataclass(frozen=True)
class PiiPattern:
    """One kind of PII: ``before`` and ``after`` are the context a match needs (a non-digit, say),
    ``body`` is what is replaced. Groups inside them are non-capturing."""

    name: str  # ssn, email, ...
    check: str  # how a validation check is described
    before: str
    body: str
    after: str
    token: str
    flags: str = ""

    @property
    def scrub_regex(self) -> str:
        """Three capturing groups, for rewriting a match as ``\\1TOKEN\\3``."""
        return f"{self.flags}({self.before})({self.body})({self.after})"

    @property
    def search_regex(self) -> str:
        """No capturing group, for finding (pandas warns about groups in ``contains``)."""
        return f"{self.flags}(?:{self.before})(?:{self.body})(?:{self.after})"

    @property
    def rewrite(self) -> str:
        return rf"\1{self.token}\3"


_NOT_DIGIT_BEFORE = "^|[^0-9]"
# No "[^0-9]|$" after a match: "$" makes pandas scan every value for a newline before each
# regex. A number that runs on ("123-45-67890") is scrubbed too, which errs on the safe side.
_NOT_DIGIT_AFTER = ""

PII_PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "ssn",
        "no US social security numbers",
        _NOT_DIGIT_BEFORE,
        r"[0-9]{3}[ -][0-9]{2}[ -][0-9]{4}",
        _NOT_DIGIT_AFTER,
        "[SSN]",
    ),
    PiiPattern(
        "phone-international",
        "no international phone numbers",
        "",
        r"\+[0-9]{1,3}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{1,4}){1,5}",
        "",
        "[PHONE]",
    ),
    PiiPattern(
        "phone-national",
        "no national phone numbers",
        _NOT_DIGIT_BEFORE,
        r"\([0-9]{3}\)[ .-]?[0-9]{3}[ .-]?[0-9]{4}|[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}"
        r"|0[0-9]{1,4}[ .-][0-9]{3,4}[ .-][0-9]{3,4}",
        _NOT_DIGIT_AFTER,
        "[PHONE]",
    ),
    PiiPattern(
        "email-obfuscated",
        "no obfuscated e-mail addresses",
        "",
        rf"[a-z0-9._%+-]+{_SPACE}*(?:{_OPEN}{_SPACE}*(?:at|@){_SPACE}*{_CLOSE}|{_SPACE}+at{_SPACE}+)"
        rf"{_SPACE}*[a-z0-9-]+(?:{_SPACE}*(?:{_OPEN}{_SPACE}*(?:dot|\.){_SPACE}*{_CLOSE}"
        rf"|{_SPACE}+dot{_SPACE}+){_SPACE}*[a-z0-9-]+)+",
        "",
        "[EMAIL]",
        flags="(?i)",
    ),
    PiiPattern(
        "email",
        "no e-mail addresses",
        "",
        rf"{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_TLD}{{2,}}",
        "",
        "[EMAIL]",
    ),
    PiiPattern(
        "ipv4",
        "no IPv4 addresses",
        "^|[^0-9.]",
        r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}",
        _NOT_DIGIT_AFTER,
        "[IP]",
    ),
)

#: 13 to 19 digits, single spaces or dashes between: may be a card number (RE2 pre-filter).
CARD_CANDIDATE = r"[0-9](?:[ -]?[0-9]){12,18}"
_CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
CARD_TOKEN = "[CARD]"  # noqa: S105 - a placeholder, not a password


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits holds."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_digits(match: re.Match[str]) -> str:
    return match.group(0).replace(" ", "").replace("-", "")


def contains_luhn_card(text: str) -> bool:
    """True when ``text`` holds a 13-19 digit number that passes the Luhn check."""
    return any(luhn_valid(_card_digits(m)) for m in _CARD.finditer(text))


def _scrub_cards(text: str) -> str:
    return _CARD.sub(lambda m: CARD_TOKEN if luhn_valid(_card_digits(m)) else m.group(0), text)


_COMPILED = tuple((re.compile(p.scrub_regex), p.rewrite) for p in PII_PATTERNS)


def scrub_text(text: str) -> str:
    """``text`` with every PII match replaced by its token (Python's ``re``; for single values)."""
    text = _scrub_cards(text)
    for pattern, rewrite in _COMPILED:
        while True:  # a match's boundary character may be the next match's: repeat until clean
            new = pattern.sub(rewrite, text)
            if new == text:
                break
            text = new
    return text


def scrub_array(values: pa.Array) -> pa.Array:
    """Scrub a string array with pyarrow's vectorised RE2; only rows holding a possible card
    number go through Python, for the Luhn check."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    candidates = pc.fill_null(pc.match_substring_regex(text, CARD_CANDIDATE), False)
    if pc.any(candidates).as_py():
        rows = pc.filter(text, candidates).to_pylist()
        text = pc.replace_with_mask(
            text, candidates, pa.array([_scrub_cards(v) for v in rows], pa.string())
        )
    for pattern in PII_PATTERNS:
        for _ in range(8):  # adjacent matches share a boundary character: a few passes
            if not pc.any(pc.match_substring_regex(text, pattern.search_regex)).as_py():
                break
            text = pc.replace_substring_regex(text, pattern.scrub_regex, pattern.rewrite)
    return text
