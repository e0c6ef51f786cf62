"""envguard's own digest of a dataset input: sha256 of the data, or of the source file.

MLflow's ``Dataset.digest`` is an 8-character md5 over at most the first 10,000 rows: two
datasets that differ after row 10,000 have the same MLflow digest. envguard computes a full
sha256 where it can and records both:

- the live dataset object (a pandas DataFrame or numpy arrays) when the caller still holds it:
  ``mlflow.log_input(dataset)`` and autologging pass the entity to the store, not the data, so
  the object is found on the calling frames by identity of name and MLflow digest;
- else the data an autologger made the dataset from: autologging (``sklearn`` and others) builds
  the dataset from the ``fit`` arguments and logs it from MLflow's worker thread while ``fit``
  still holds them (scikit-learn's autologger waits for that worker before ``fit`` returns), so
  the frames of every thread are searched for a DataFrame, arrays or a sparse matrix of the
  entity's shape (its ``profile``: rows and elements, or features and targets shapes) whose
  MLflow digest is the entity's (the same digest function MLflow used), and that data is hashed.
  Only objects of the right shape are digested, so the search reads every frame of every thread
  however many other arrays they hold;
- else a source that is a local file: sha256 of the file (cached by path, size and mtime);
- else none (``sha256`` is ``None``, and the facts say why).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from types import FrameType, SimpleNamespace
from typing import Any

__all__ = ["DatasetFacts", "dataset_facts", "file_sha256"]

_FRAMES = 16
_CHUNK = 1 << 20
_file_cache: dict[tuple[int, ...], str] = {}
_FILE_CACHE_MAX = 10_000


@dataclass(frozen=True)
class DatasetFacts:
    """What envguard knows of one dataset input, before any decision about it."""

    name: str
    mlflow_digest: str  # MLflow's own digest (md5 prefix of at most 10,000 rows)
    source_type: str
    source_uri: str | None  # the source's uri/path when it has one
    sha256: str | None  # envguard's full content digest
    sha256_of: str  # "data", "file", or why there is none ("no-data", "source-missing", ...)

    def problem(self) -> str | None:
        """Why envguard has no content digest of this dataset, with the fix; None when it has
        one, or when the source is remote (judged by its URI: bucket, remote)."""
        if self.sha256 is not None or self.sha256_of == "remote-source":
            return None
        if self.sha256_of == "source-missing":
            return (
                f"dataset {self.name!r}: its source {self.source_uri} resolves to nothing, so "
                "envguard cannot digest it; it is recorded by name only. Fix the source path "
                "(mlflow.data.from_pandas(df, source=PATH) with a PATH that exists), or log the "
                "dataset object itself"
            )
        return (
            f"dataset {self.name!r} ({self.source_type or 'no source'}): envguard has no content "
            f"digest of it ({self.sha256_of}); it is recorded by name and MLflow digest "
            f"{self.mlflow_digest or '(none)'} only. Log it with mlflow.log_input(dataset) while "
            "the data is in memory, or give it a local file source"
        )

    def tags(self) -> dict[str, str]:
        # MLflow's digest is the input's own dataset.digest; the lineage record holds both digests
        tags = {"envguard.sha256_of": self.sha256_of}
        if self.sha256:
            tags["envguard.sha256"] = self.sha256
        return tags


def file_sha256(path: str) -> str:
    """sha256 of a file (envguard's content digest); cached while the same file (device and
    inode, whatever path names it) keeps its size, mtime and ctime."""
    from envguard.digests import sha256_file

    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _file_cache.get(key)
    if cached is None:
        if len(_file_cache) >= _FILE_CACHE_MAX:
            _file_cache.clear()
        cached = _file_cache[key] = sha256_file(path)
    return cached


def _array_bytes(digest: Any, array: Any) -> None:
    import numpy as np

    arr = np.asarray(array)
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.kind in "biufcmMV?":
        digest.update(np.ascontiguousarray(arr).tobytes())
    else:
        digest.update("\x1f".join(map(repr, arr.ravel().tolist())).encode())


def data_sha256(dataset: Any) -> str | None:
    """sha256 over a dataset's whole content (column names, dtypes, every value), else None."""
    digest = hashlib.sha256()
    frame = getattr(dataset, "df", None)
    if frame is not None and hasattr(frame, "columns"):
        digest.update(b"pandas\0")
        _array_bytes(digest, frame.index.to_numpy())
        for column, series in frame.items():  # each column once, duplicate names too
            digest.update(f"\0{column!r}\0{series.dtype}\0".encode())
            _array_bytes(digest, series.to_numpy())
        return digest.hexdigest()
    features = getattr(dataset, "features", None)
    if features is not None:
        digest.update(b"numpy\0")
        parts = features.items() if isinstance(features, dict) else [("", features)]
        targets = getattr(dataset, "targets", None)
        if targets is not None:
            parts = [*parts, ("\0targets", targets)]
        for name, value in sorted(parts, key=lambda kv: kv[0]):
            digest.update(f"\0{name}\0".encode())
            _array_bytes(digest, value)
        return digest.hexdigest()
    return None


def find_live_dataset(name: str, mlflow_digest: str) -> Any:
    """The ``mlflow.data.Dataset`` object on the calling frames that this entity was made from."""
    base = sys.modules.get("mlflow.data.dataset")
    cls = getattr(base, "Dataset", None)
    if cls is None:
        return None
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_FRAMES):
        if frame is None:
            break
        for value in list(frame.f_locals.values()):
            if (
                isinstance(value, cls)
                and getattr(value, "digest", None) == mlflow_digest
                and getattr(value, "name", None) == name
            ):
                return value
        frame = frame.f_back
    return None


#: Without a profile to filter by shape, at most this many candidates of each kind are digested.
_MAX_UNFILTERED = 32
#: How far up each thread's stack to look: to the script's own frames, whatever the thread is
#: doing when MLflow's worker logs the dataset (the caller may already be deep in the next call).
_THREAD_FRAMES = 256


@dataclass(frozen=True)
class _Shape:
    """The shape an entity's ``profile`` gives its data (None: the profile does not say)."""

    rows: int | None = None  # pandas: rows
    elements: int | None = None  # pandas: rows x columns
    features: tuple[int, ...] | None = None  # numpy: features' shape
    targets: tuple[int, ...] | None = None  # numpy: targets' shape

    @classmethod
    def of(cls, profile_json: str | None) -> _Shape:
        try:
            profile = json.loads(profile_json) if profile_json else {}
        except ValueError:
            return cls()
        if not isinstance(profile, dict):
            return cls()

        def shape(key: str) -> tuple[int, ...] | None:
            value = profile.get(key)
            if isinstance(value, list) and all(isinstance(v, int) for v in value):
                return tuple(value)
            return None

        rows, elements = profile.get("num_rows"), profile.get("num_elements")
        return cls(
            rows if isinstance(rows, int) else None,
            elements if isinstance(elements, int) else None,
            shape("features_shape"),
            shape("targets_shape"),
        )

    @property
    def known(self) -> bool:
        return self.rows is not None or self.features is not None

    def fits_frame(self, frame: Any) -> bool:
        if self.rows is None:
            return not self.known
        return len(frame) == self.rows and (self.elements is None or frame.size == self.elements)

    def fits_features(self, array: Any) -> bool:
        return tuple(array.shape) == self.features if self.features else not self.known

    def fits_targets(self, array: Any) -> bool:
        return tuple(array.shape) == self.targets if self.targets else not self.known


def _frames_of_all_threads() -> list[FrameType]:
    """The innermost frames of every thread, this one first."""
    frames = sys._current_frames()
    mine = frames.pop(threading.get_ident(), None)
    return [f for f in (mine, *frames.values()) if f is not None]


def _candidates(shape: _Shape) -> tuple[list[Any], list[Any]]:
    """DataFrames and arrays (numpy, pandas Series, scipy sparse matrices) held by any thread's
    frames that may be the data of an entity of ``shape``."""
    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")
    sparse = sys.modules.get("scipy.sparse")
    issparse = getattr(sparse, "issparse", None)
    array_types = tuple(
        t for t in (getattr(numpy, "ndarray", None), getattr(pandas, "Series", None)) if t
    )
    frames_: list[Any] = []
    arrays: list[Any] = []
    seen: set[int] = set()
    for top in _frames_of_all_threads():
        frame: FrameType | None = top
        for _ in range(_THREAD_FRAMES):
            if frame is None:
                break
            for value in list(frame.f_locals.values()):
                if id(value) in seen:
                    continue
                seen.add(id(value))
                if pandas is not None and isinstance(value, pandas.DataFrame):
                    if shape.fits_frame(value):
                        frames_.append(value)
                elif _is_array(value, array_types, issparse) and (
                    shape.fits_features(value) or shape.fits_targets(value)
                ):
                    arrays.append(value)
            frame = frame.f_back
    if not shape.known:
        return frames_[:_MAX_UNFILTERED], arrays[:_MAX_UNFILTERED]
    return frames_, arrays


def _is_array(value: Any, array_types: tuple[type, ...], issparse: Any) -> bool:
    if array_types and isinstance(value, array_types):
        return True
    return bool(issparse is not None and issparse(value))


def _dense(array: Any) -> Any:
    return array.toarray() if hasattr(array, "toarray") else array


def find_autologged_data(mlflow_digest: str, profile: str | None = None) -> Any:
    """The data an autologger made a dataset from (see the module's docstring), as an object
    :func:`data_sha256` reads (``.df``, or ``.features`` and ``.targets``), else None.
    ``profile``: the entity's profile JSON, whose shapes narrow the search."""
    try:
        from mlflow.data.digest_utils import compute_numpy_digest, compute_pandas_digest
    except ImportError:
        return None
    shape = _Shape.of(profile)
    frames_, arrays = _candidates(shape)
    for frame in frames_:
        if compute_pandas_digest(frame) == mlflow_digest:
            return SimpleNamespace(df=frame)
    features_ = [a for a in arrays if shape.fits_features(a)]
    for features in features_:
        if not shape.known and getattr(features, "ndim", 1) < 2 and len(arrays) > 1:
            continue  # features are a matrix; a lone vector is tried as targets below
        if shape.targets is not None:
            targets_: list[Any] = [a for a in arrays if a is not features and shape.fits_targets(a)]
        else:
            same = [a for a in arrays if a is not features and len(a) == len(features)]
            targets_ = [None] if shape.known else [None, *same]
        dense = _dense(features)
        for targets in targets_:
            try:
                dense_targets = _dense(targets) if targets is not None else None
                digest = compute_numpy_digest(dense, dense_targets)
            except Exception:  # noqa: BLE001, S112 - a candidate MLflow cannot digest is not it
                continue
            if digest == mlflow_digest:
                return SimpleNamespace(features=dense, targets=dense_targets)
    return None


def _source_uri(source_json: str) -> str | None:
    try:
        data = json.loads(source_json) if source_json else {}
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("uri", "path", "url"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return None


def local_source_path(uri: str) -> str | None:
    """The local file a dataset source names, or None (remote, or not a path)."""
    return _local_path(uri) if uri else None


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(uri).path)
    if "://" in uri:
        return None
    return uri


def dataset_facts(dataset: Any) -> DatasetFacts:
    """Digests of an ``mlflow.entities.Dataset`` (see the module's docstring)."""
    name, mlflow_digest = str(dataset.name), str(dataset.digest or "")
    source_uri = _source_uri(dataset.source or "")
    live = find_live_dataset(name, mlflow_digest) if mlflow_digest else None
    if live is None and mlflow_digest and str(dataset.source_type or "") == "code":
        live = find_autologged_data(mlflow_digest, getattr(dataset, "profile", None))
    sha, basis = None, "no-data"
    if live is not None:
        sha = data_sha256(live)
        basis = "data" if sha else "unsupported-dataset-type"
    if sha is None and source_uri:
        path = _local_path(source_uri)
        if path is None:
            basis = "remote-source"
        elif os.path.isfile(path):
            sha, basis = file_sha256(path), "file"
        else:
            basis = "source-missing"
    return DatasetFacts(name, mlflow_digest, str(dataset.source_type or ""), source_uri, sha, basis)
