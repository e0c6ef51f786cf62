"""Synthetic production customer data with PII, for the demo (deterministic, stdlib only)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

__all__ = ["COLUMNS", "write_customers"]

COLUMNS = [
    "customer_id",
    "name",
    "email",
    "phone",
    "ssn",
    "birth_date",
    "postcode",
    "income",
    "notes",
    "churned",
]

_FIRST = [
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Alan",
    "Barbara",
    "Edsger",
    "Frances",
    "Ken",
    "Radia",
    "Donald",
    "Katherine",
    "Tim",
    "Shafi",
    "John",
    "Hedy",
]
_LAST = [
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Thompson",
    "Perlman",
    "Knuth",
    "Johnson",
    "Berners-Lee",
    "Goldwasser",
    "Backus",
    "Lamarr",
]
_NOTES = [
    "Called from {phone} about a late invoice.",
    "Prefers e-mail: {email_upper}.",
    "Card on file {card}, expires soon.",
    "Logged in from {ip} twice today.",
    "SSN confirmed as {ssn_spaced} by phone.",
    "No issues reported.",
    "Asked to be contacted at {email_obfuscated}.",
]


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = d * 2 if i % 2 == 0 else d
        total += v - 9 if v > 9 else v
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def write_customers(path: Path, rows: int = 400, seed: int = 5) -> Path:
    """Write ``rows`` customers with names, e-mails, phones, SSNs, cards and IPs in free text."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible on purpose
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for n in range(rows):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            email = f"{first}.{last}{n}@example.com".lower()
            phone = (
                f"+1 ({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
            )
            ssn = f"{rng.randint(100, 899):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999)}"
            note = rng.choice(_NOTES).format(
                phone=phone,
                email_upper=email.upper(),
                card=_luhn_card(rng),
                ip=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                ssn_spaced=ssn.replace("-", " "),
                email_obfuscated=email.replace("@", " [at] ").replace(".", " [dot] "),
            )
            income = rng.randint(18, 250) * 1000
            writer.writerow(
                [
                    f"C{n:05d}",
                    f"{first} {last}",
                    email,
                    phone,
                    ssn,
                    f"{rng.randint(1940, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    f"{rng.randint(10000, 99999)}",
                    income,
                    note,
                    int(rng.random() < (0.15 + (income < 50000) * 0.25)),
                ]
            )
    return path
