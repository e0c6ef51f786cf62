"""Reading and writing tables in chunks, so that memory does not grow with the file.

CSV is read with pyarrow's streaming reader (every column as text, so that ``00123`` stays
``00123``; an empty cell is null; quoted values may hold newlines) in blocks of ``BLOCK_SIZE``
bytes. The block size bounds memory: the reader reads up to 32 blocks ahead on a background
thread (pyarrow's readahead queue), so 16 MiB blocks held up to 512 MiB of the file, and a file
smaller than that whole; 1 MiB blocks hold at most 32 MiB. The bytes are hashed as the reader
takes them (:class:`HashingInput`), so the source digest names exactly the bytes that were masked
and costs no second pass over the file.

Parquet is read batch by batch through a 1 MiB read buffer, so that a column chunk is not read
whole; its digest is taken over the file before reading (Parquet is read out of order, footer
first). Both writers take record batches as they come and write through
:class:`HashingOutput`, which hashes the output's bytes as they are written.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from envguard.digests import sha256_file
from envguard.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "HashingInput",
    "HashingOutput",
    "TableFormat",
    "TableReader",
    "TableWriter",
    "format_of",
    "open_reader",
    "open_writer",
]

TableFormat = str  # "csv" or "parquet"
BLOCK_SIZE = 1 << 20  # bytes of CSV per block; up to 32 blocks are read ahead
PARQUET_BATCH_ROWS = 65_536
PARQUET_BUFFER = 1 << 20


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

    def sha256(self) -> str:
        """The input's sha256; for CSV, valid once :meth:`batches` is exhausted."""
        ...


class TableWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...

    def sha256(self) -> str:
        """The sha256 of every byte written; valid after :meth:`close`."""
        ...


class HashingInput(io.FileIO):
    """A file opened for reading that hashes every byte read from it, in order.

    pyarrow's CSV reader reads it front to back on its own thread; :meth:`finish` hashes anything
    left after the last batch, so the digest always covers the whole file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "r")
        self._digest = hashlib.sha256()

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if data:
            self._digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        if count:
            with memoryview(buffer) as view:
                self._digest.update(view[:count])
        return count or 0

    def readall(self) -> bytes:
        data = super().readall()
        self._digest.update(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) not in ((0, io.SEEK_CUR), (self.tell(), io.SEEK_SET)):
            raise io.UnsupportedOperation("a hashing input is read front to back")
        return self.tell()

    def finish(self) -> str:
        """Hash what is left unread, close, and return the hex digest."""
        if not self.closed:
            while self.read(1 << 20):
                pass
            self.close()
        return self._digest.hexdigest()


class HashingOutput(io.FileIO):
    """A new file that hashes every byte written to it (the output's digest, with no re-read)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "x")
        self._digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        with memoryview(data) as view:
            written = 0
            while written < view.nbytes:  # a raw write may be partial
                written += super().write(view[written:]) or 0
            self._digest.update(view)
        return written

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


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
        self._stream = HashingInput(path)  # closed when the batches are exhausted
        self._sha256: str | None = None
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
        return self.total_bytes if self._stream.closed else self._stream.tell()

    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("the CSV digest is known once every batch was read")
        return self._sha256

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        try:
            while True:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise InputError(str(self.path), f"not a readable CSV file: {exc}") from None
                yield batch
            self._sha256 = self._stream.finish()
        finally:
            self._stream.close()


class ParquetReader:
    def __init__(self, path: Path, batch_rows: int = PARQUET_BATCH_ROWS) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._sha256 = sha256_file(path)
        try:
            self._file = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER)
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

    def sha256(self) -> str:
        return self._sha256

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
    def __init__(self, path: Path, fmt: TableFormat, schema: pa.Schema) -> None:
        self._sink = HashingOutput(path)
        try:
            if fmt == "csv":
                import pyarrow.csv as pcsv

                self._writer: Any = pcsv.CSVWriter(self._sink, schema)
            else:
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self._sink, schema)
        except BaseException:
            self._sink.close()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._sink.close()

    def sha256(self) -> str:
        return self._sink.hexdigest()


def open_writer(path: Path, fmt: TableFormat, schema: pa.Schema) -> TableWriter:
    """A writer of ``schema``'s batches into the new file ``path`` (``fmt`` is the format of the
    final name), hashing what it writes."""
    return _ArrowWriter(path, fmt, schema)
