"""Normal forms of the locations a policy assigns to environments.

A policy names MLflow tracking and registry URIs, artifact locations, DVC remotes (by name or
URL), S3 buckets and prefixes, and hosts. Integrations meet the same locations spelled in other
ways (``S3://Bucket/``, ``http://Host:5000/``, a bare bucket name). Everything is compared in the
normal form defined here, so that a spelling cannot move a location out of its environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Location", "normalize_uri", "parse_location", "s3_location"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306}


def normalize_uri(uri: str) -> str:
    """``uri`` with scheme and host lower-cased, default ports and trailing ``/`` removed.

    Paths keep their case (S3 keys and file paths are case-sensitive); ``user:password@`` is
    dropped, because credentials do not change which environment a location belongs to.
    """
    text = uri.strip()
    if "://" not in text:
        return text.rstrip("/") or text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme.split("+")[0]) != port:
        netloc = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Location:
    """A location in normal form: ``scheme`` plus ``authority`` plus a ``/``-separated ``path``.

    ``contains`` answers whether another location lies at or below this one, by whole path
    segments (``s3://b/pro`` does not contain ``s3://b/prod/x``).
    """

    scheme: str
    authority: str
    path: str

    def contains(self, other: Location) -> bool:
        if (self.scheme, self.authority) != (other.scheme, other.authority):
            return False
        if not self.path:
            return True
        return other.path == self.path or other.path.startswith(self.path + "/")

    def overlaps(self, other: Location) -> bool:
        return self.contains(other) or other.contains(self)

    def __str__(self) -> str:
        tail = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{self.authority}{tail}"


def s3_location(bucket: str, key: str = "") -> Location:
    """The location of an S3 bucket, or of a key (or prefix) inside it."""
    return Location("s3", bucket.lower(), key.strip("/"))


def parse_location(uri: str) -> Location:
    """Parse a URI (or a bare S3 bucket name) into a :class:`Location`.

    ``s3a://`` and ``s3n://`` are S3; a bare word without ``://`` is taken as an S3 bucket name.
    ``file:`` URIs and plain paths keep their path.
    """
    text = uri.strip()
    if "://" not in text:
        if text.startswith("/"):
            return Location("file", "", text.strip("/"))
        return s3_location(text)
    parts = urlsplit(normalize_uri(text))
    scheme = parts.scheme
    if scheme in {"s3a", "s3n"}:
        scheme = "s3"
    return Location(scheme, parts.netloc, parts.path.strip("/"))
