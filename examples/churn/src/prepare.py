"""The customer extract (synthetic here): in real life, a query against the production database.

Writes data/raw/customers.csv with the PII a real extract has (names, e-mails, phones, SSNs).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
rng = np.random.default_rng(params["seed"])
n = params["customers"]
first = rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Hedy"], n)
last = rng.choice(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson"], n)
income = rng.integers(18, 250, n) * 1000
year = rng.integers(1940, 2005, n)
churn_p = 0.1 + 0.3 * (income < 50_000) + 0.15 * (year > 1990)
frame = pd.DataFrame(
    {
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
        "email": [
            f"{a}.{b}{i}@example.com".lower()
            for i, (a, b) in enumerate(zip(first, last, strict=True))
        ],
        "phone": [
            f"+1 (555) {rng.integers(200, 999)}-{rng.integers(0, 9999):04d}" for _ in range(n)
        ],
        "ssn": [
            f"{rng.integers(100, 899)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"
            for _ in range(n)
        ],
        "birth_date": [f"{y}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}" for y in year],
        "postcode": rng.integers(10000, 99999, n),
        "income": income,
        "notes": rng.choice(["No issues.", "Asked for a callback.", "Late invoice."], n),
        "churned": (rng.random(n) < churn_p).astype(int),
    }
)
Path("data/raw").mkdir(parents=True, exist_ok=True)
frame.to_csv("data/raw/customers.csv", index=False)
print(f"data/raw/customers.csv: {n} customers")
