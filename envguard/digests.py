"""Content digests: the sha256 that names a piece of data everywhere in envguard.

A regular file is hashed through memory maps of ``WINDOW_SIZE`` bytes at a time: the bytes go
from the page cache straight into ``hashlib`` without a copy, one window is mapped at a time so
memory stays constant, and the hashing runs at ``hashlib.sha256``'s own speed (the benchmark
``python -m tests.benchmarks masking`` compares the two on the same bytes). Anything that cannot
be mapped (an empty file, a pipe) is read in ``CHUNK_SIZE`` pieces into one reused buffer. A file
of at most ``CHUNK_SIZE`` bytes is read in one call: mapping it would cost more than copying it.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from pathlib import Path
from typing import Any

from envguard.errors import InputError

__all__ = ["CHUNK_SIZE", "WINDOW_SIZE", "sha256_bytes", "sha256_file"]

#: Bytes mapped at once (a multiple of the allocation granularity).
WINDOW_SIZE = 64 << 20
#: Bytes read per call when a file cannot be mapped.
CHUNK_SIZE = 256 << 10


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _hash_mapped(stream: Any, size: int, digest: Any) -> None:
    fileno = stream.fileno()
    for offset in range(0, size, WINDOW_SIZE):
        length = min(WINDOW_SIZE, size - offset)
        with mmap.mmap(fileno, length, offset=offset, access=mmap.ACCESS_READ) as window:
            if hasattr(window, "madvise"):
                window.madvise(mmap.MADV_SEQUENTIAL)
            with memoryview(window) as view:
                digest.update(view)


def _hash_read(stream: Any, digest: Any, chunk_size: int) -> None:
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        read = stream.readinto(view)
        if not read:
            break
        digest.update(view[:read])


def sha256_file(path: Path | str, chunk_size: int = CHUNK_SIZE) -> str:
    """Hex sha256 of the file's bytes; :class:`InputError` naming the file if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and 0 < info.st_size <= chunk_size:
                digest.update(stream.read())  # a small file (a logged artifact): one read
                return digest.hexdigest()
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                try:
                    _hash_mapped(stream, info.st_size, digest)
                    return digest.hexdigest()
                except (OSError, ValueError):  # not mappable here: read it instead
                    digest = hashlib.sha256()
                    stream.seek(0)
            _hash_read(stream, digest, chunk_size)
    except IsADirectoryError:
        raise InputError(str(path), "is a folder; name a file") from None
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return digest.hexdigest()
