"""The churn model's features, shared by train.py and evaluate.py."""

import pandas as pd


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """Birth year and income (thousands). Raw and masked data both have them: masking keeps the
    year of birth_date and turns income into a band such as ``[40000, 50000)``."""
    return pd.DataFrame(
        {
            "birth_year": frame["birth_date"].astype(str).str[:4].astype(int),
            "income": frame["income"].astype(str).str.extract(r"(\d+)")[0].astype(float) / 1000,
        }
    )
