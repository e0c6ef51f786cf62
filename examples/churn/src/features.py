"""Features of the churn model, and the train/holdout split. Works on masked data: birth_date
is a year, income a band such as "[40000, 50000)", postcode its first three digits."""

import pandas as pd


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "birth_year": frame["birth_date"].astype(str).str[:4].astype(int),
            "income": frame["income"].astype(str).str.extract(r"(\d+)")[0].astype(float) / 1000,
            "region": frame["postcode"].astype(str).str[:1].astype(int),
        }
    )


def split(frame: pd.DataFrame, every: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, holdout rows): every ``every``-th customer is held out."""
    held = frame.index % every == 0
    return frame[~held], frame[held]
