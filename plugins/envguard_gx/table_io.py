"""Reading and writing tables in chunks, so that memory does not grow with the file.

CSV is read with pyarrow's streaming reader (every column as text, so that ``00123`` stays
``00123``; an empty cell is null; quoted values may hold newlines) in blocks of ``block_size``
bytes. Parquet is read batch by batch. Both writers take record batches as they come.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from envguard.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TableFormat", "TableReader", "TableWriter", "format_of", "open_reader", "open_writer"]

TableFormat = str  # "csv" or "parquet"
BLOCK_SIZE = 16 << 20  # bytes of CSV per chunk
PARQUET_BATCH_ROWS = 262_144


def format_of(path: Path) -> TableFormat:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError(str(path), "unknown format: name a .csv or .parquet file")


class TableReader(Protocol):
    schema: pa.Schema
    total_bytes: int

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def bytes_read(self) -> int: ...


class TableWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as stream:
        try:
            return next(csv.reader(stream))
        except StopIteration:
            raise InputError(str(path), "the CSV file is empty: it has no header row") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(str(path), f"not a readable CSV file: {exc}") from None


class CsvReader:
    def __init__(self, path: Path, block_size: int = BLOCK_SIZE) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        header = _csv_header(path)
        if len(set(header)) != len(header):
            raise InputError(str(path), "the CSV header names a column twice")
        self.path = path
        self.total_bytes = path.stat().st_size
        self._stream = open(path, "rb")  # noqa: SIM115 - closed when the batches are exhausted
        try:
            self._reader = pcsv.open_csv(
                self._stream,
                read_options=pcsv.ReadOptions(block_size=block_size, use_threads=True),
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            self._stream.close()
            raise InputError(str(path), f"not a readable CSV file: {exc}") from None
        self.schema = self._reader.schema

    def bytes_read(self) -> int:
        return 0 if self._stream.closed else self._stream.tell()

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        try:
            while True:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    return
                except pa.ArrowInvalid as exc:
                    raise InputError(str(self.path), f"not a readable CSV file: {exc}") from None
                yield batch
        finally:
            self._stream.close()


class ParquetReader:
    def __init__(self, path: Path, batch_rows: int = PARQUET_BATCH_ROWS) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(str(path), f"not a readable Parquet file: {exc}") from None
        self.path = path
        self.schema = self._file.schema_arrow
        self.total_bytes = path.stat().st_size
        self._batch_rows = batch_rows
        self._rows_read = 0

    def bytes_read(self) -> int:
        rows = self._file.metadata.num_rows or 1
        return int(self.total_bytes * min(self._rows_read / rows, 1.0))

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._file.iter_batches(batch_size=self._batch_rows):
                self._rows_read += batch.num_rows
                yield batch
        finally:
            self._file.close()


def open_reader(path: Path) -> TableReader:
    if not path.is_file():
        raise InputError(str(path), "file not found" if not path.exists() else "not a file")
    return CsvReader(path) if format_of(path) == "csv" else ParquetReader(path)


class _ArrowWriter:
    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def open_writer(path: Path, fmt: TableFormat, schema: pa.Schema) -> TableWriter:
    """A writer of ``schema``'s batches into ``path`` (``fmt`` is the format of the final name)."""
    if fmt == "csv":
        import pyarrow.csv as pcsv

        return _ArrowWriter(pcsv.CSVWriter(str(path), schema))
    import pyarrow.parquet as pq

    return _ArrowWriter(pq.ParquetWriter(str(path), schema))
