"""Validation of a masked table with Great Expectations, built from the masking rules.

The suite, per batch of the masked output:

- every masked column (``hash``, ``redact``, ``generalize``) matches its output format
  (``expect_column_values_to_match_regex``) and is not null where the source was not
  (``expect_column_values_to_not_be_null`` with ``mostly`` = the source's non-null share);
- every other text column, including ``scrub`` columns and columns no rule names, matches none of
  the PII patterns (``expect_column_values_to_not_match_regex_list``; one expectation per column
  rather than one per kind, since each expectation has a fixed cost) and holds no
  Luhn-valid card number (``expect_column_values_to_contain_no_payment_card``, defined here);
- the table has exactly the expected columns, so dropped columns are absent
  (``expect_table_columns_to_match_set``).

The fast path, and why each part matters on a million rows:

- results are asked for with ``SUMMARY`` and ``partial_unexpected_count = 0``, no unexpected rows
  and no index query: Great Expectations then returns counts, never a value from the data;
- the DataFrame's strings are pyarrow-backed and the patterns avoid ``\\s``, ``\\d``, ``\\w`` and
  ``\\b``, so pandas evaluates every regex with pyarrow's RE2 instead of Python's ``re``;
- the pandas engine's fingerprint of the whole DataFrame (an md5 of every row, used only to name
  batches) is skipped while envguard validates (:func:`_no_dataframe_fingerprint`);
- batches are large (see ``VALIDATION_ROWS``): each ``validate`` call has a fixed cost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from envguard.proofs import ValidationCheck
from envguard_gx.masking import ColumnMasking
from envguard_gx.pii import CARD_CANDIDATE, PII_PATTERNS, contains_luhn_card

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["RESULT_FORMAT", "MaskedTableValidator", "arrow_to_pandas"]

#: Counts only: no partial list of unexpected values, no rows, no index query.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}

PII_CHECK = "no e-mail addresses, phone numbers, SSNs or IPv4 addresses"
CARD_CHECK = "no payment card numbers (Luhn)"

_fingerprint_lock = threading.Lock()


@contextmanager
def _no_dataframe_fingerprint() -> Iterator[None]:
    """Skip the pandas engine's md5 of the whole DataFrame while validating.

    Great Expectations hashes every DataFrame smaller than ``HASH_THRESHOLD`` bytes to name the
    batch (``pandas_data_fingerprint``); it has no setting for it. On a million rows that hash
    costs more than the expectations themselves. envguard names its data by the output file's
    sha256 instead.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    with _fingerprint_lock:
        saved = engine.HASH_THRESHOLD
        engine.HASH_THRESHOLD = 0
        try:
            yield
        finally:
            engine.HASH_THRESHOLD = saved


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """A DataFrame whose text columns stay pyarrow strings (zero copy; regexes run in RE2)."""
    import pandas as pd
    import pyarrow as pa

    arrow_strings = pd.StringDtype("pyarrow")
    mapping = {pa.string(): arrow_strings, pa.large_string(): arrow_strings}
    return table.to_pandas(types_mapper=mapping.get)


def _card_expectation_class() -> type[Any]:
    """``expect_column_values_to_contain_no_payment_card``: a column map expectation whose
    metric pre-filters rows with RE2 and runs the Luhn check only on candidate rows."""
    global _CARD_EXPECTATION  # noqa: PLW0603 - classes register with GX once per process
    if _CARD_EXPECTATION is not None:
        return _CARD_EXPECTATION
    import numpy as np
    import pandas as pd
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesContainNoPaymentCard(ColumnMapMetricProvider):
        condition_metric_name = "column_values.envguard_no_payment_card"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
            text = column.astype(str)
            candidates = text.str.contains(CARD_CANDIDATE, regex=True).to_numpy(
                dtype=bool, na_value=False
            )
            clean = np.ones(len(text), dtype=bool)
            for position in np.flatnonzero(candidates):
                clean[position] = not contains_luhn_card(text.iloc[position])
            return pd.Series(clean, index=column.index)

    class ExpectColumnValuesToContainNoPaymentCard(ColumnMapExpectation):
        """Expect no value to hold a 13-19 digit number that passes the Luhn check."""

        map_metric = "column_values.envguard_no_payment_card"
        success_keys = ("mostly",)

    _CARD_EXPECTATION = ExpectColumnValuesToContainNoPaymentCard
    _ = ColumnValuesContainNoPaymentCard
    return _CARD_EXPECTATION


_CARD_EXPECTATION: type[Any] | None = None


@dataclass(frozen=True)
class _Planned:
    check: str
    column: str | None
    expectation: Any  # a great_expectations Expectation


class MaskedTableValidator:
    """Validates batches of one masked output and sums the outcome over all of them."""

    def __init__(self, masks: Mapping[str, ColumnMasking], output_columns: list[str]) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.masks = dict(masks)
        self.output_columns = list(output_columns)
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        source = self.context.data_sources.add_pandas("envguard-masked")
        asset = source.add_dataframe_asset("masked-output")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("batch")
        self.totals: dict[tuple[str | None, str], ValidationCheck] = {}
        self.rows = 0

    @staticmethod
    def text_columns(table: pa.Table, masks: Mapping[str, ColumnMasking]) -> list[str]:
        """Columns checked for PII: text columns whose values have no fixed output format."""
        import pyarrow as pa

        found = []
        for field in table.schema:
            masking = masks.get(field.name)
            if masking is not None and masking.output_format is not None:
                continue
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                found.append(field.name)
        return found

    def _plan(self, table: pa.Table, source_non_null: Mapping[str, int]) -> list[_Planned]:
        import great_expectations.expectations as gxe

        rows = table.num_rows
        planned = [
            _Planned(
                "columns are exactly the unmasked and masked ones (dropped columns absent)",
                None,
                gxe.ExpectTableColumnsToMatchSet(column_set=self.output_columns, exact_match=True),
            )
        ]
        present = set(table.column_names)
        for name, masking in self.masks.items():
            pattern = masking.output_format
            if pattern is None or name not in present:
                continue
            planned.append(
                _Planned(
                    f"{masking.method} format",
                    name,
                    gxe.ExpectColumnValuesToMatchRegex(column=name, regex=pattern),
                )
            )
            share = source_non_null.get(name, rows) / rows if rows else 0.0
            planned.append(
                _Planned(
                    "not null where the source was not",
                    name,
                    gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=min(share, 1.0)),
                )
            )
        card = _card_expectation_class()
        patterns = [pii.search_regex for pii in PII_PATTERNS]
        for name in self.text_columns(table, self.masks):
            planned.append(
                _Planned(
                    PII_CHECK,
                    name,
                    gxe.ExpectColumnValuesToNotMatchRegexList(column=name, regex_list=patterns),
                )
            )
            planned.append(_Planned(CARD_CHECK, name, card(column=name)))
        return planned

    def validate(self, table: pa.Table, source_non_null: Mapping[str, int]) -> None:
        """Validate one batch of the masked output; add its counts to the totals."""
        import great_expectations as gx

        planned = self._plan(table, source_non_null)
        suite = gx.ExpectationSuite(name="envguard-masking", expectations=[])
        for item in planned:
            suite.add_expectation(item.expectation)
        with _no_dataframe_fingerprint():
            batch = self.batch_definition.get_batch(
                batch_parameters={"dataframe": arrow_to_pandas(table)}
            )
            result = batch.validate(suite, result_format=RESULT_FORMAT)
        self.rows += table.num_rows
        for item, outcome in zip(planned, result.results, strict=True):
            self._add(item, outcome)

    def _add(self, item: _Planned, outcome: Any) -> None:
        counts = outcome.result or {}
        check = ValidationCheck(
            expectation=str(outcome.expectation_config.type),
            column=item.column,
            check=item.check,
            success=bool(outcome.success),
            element_count=int(counts.get("element_count") or 0),
            unexpected_count=int(counts.get("unexpected_count") or 0),
            missing_count=int(counts.get("missing_count") or 0),
        )
        key = (item.column, item.check)
        before = self.totals.get(key)
        if before is not None:
            check = replace(
                check,
                success=before.success and check.success,
                element_count=before.element_count + check.element_count,
                unexpected_count=before.unexpected_count + check.unexpected_count,
                missing_count=before.missing_count + check.missing_count,
            )
        self.totals[key] = check

    @property
    def checks(self) -> list[ValidationCheck]:
        return list(self.totals.values())

    @property
    def failures(self) -> list[ValidationCheck]:
        return [check for check in self.totals.values() if not check.success]
