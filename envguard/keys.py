"""Keys: this installation's Ed25519 signing key, the masking HMAC key, and the trusted signers.

Each secret is read from its environment variable (``signing.key_env``, ``masking.key_env``),
else from its file (``signing.key_file``, ``masking.key_file``, relative to the policy), which is
generated on first use with mode 0600. Creation is atomic (``O_EXCL``): two processes starting at
once end up with the same key.

Trusted public keys for a purpose (``masking``, ``checkpoint``, ``approval``) are the policy's
``signers`` allowed that purpose, plus this installation's own key when ``signing.trust_own_key``.
A key is named by its key id: the hex sha256 of its 32 raw public bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envguard.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from envguard.policy import Policy

__all__ = [
    "LazySigner",
    "SigningKey",
    "TrustedKey",
    "key_id",
    "masking_key",
    "signing_key",
    "trusted_keys",
    "verify_signature",
]

DEFAULT_MASKING_KEY_FILE = ".envguard/masking.key"


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    name: str  # the signer's name in the policy, or "self"
    public_raw: bytes
    purposes: tuple[str, ...]

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_raw: bytes
    source: str  # where it came from: the variable's name or the file's path

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def _read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; created with ``make()`` (mode 0600, atomically) when it is missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, make())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def _private_from_text(text: bytes, source: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stripped = text.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(stripped, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"expected an Ed25519 key, got {type(key).__name__}")
            return key
        raw = base64.b64decode(stripped, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(
            f"{source}: not an Ed25519 private key (PEM, or base64 of 32 bytes): {exc}. "
            f"Set it to a PEM or base64 Ed25519 private key, or unset it to use the key file"
        ) from None


def _new_private_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_signing_cache: dict[tuple[str, str], SigningKey] = {}


def signing_key(policy: Policy, environ: Mapping[str, str] | None = None) -> SigningKey:
    """This installation's signing key (from the variable, else the file, generated if absent)."""
    from cryptography.hazmat.primitives import serialization

    environ = os.environ if environ is None else environ
    key_env = policy.signing_key_env
    value = environ.get(key_env, "")
    if value.strip():
        text, source = value.encode(), f"${key_env}"
    else:
        path = policy.signing_key_file
        source = str(path)
        cached = _signing_cache.get((source, ""))
        if cached is not None:
            return cached
        text = _read_or_create(path, _new_private_pem)
    private = _private_from_text(text, source)
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = SigningKey(private, public_raw, source)
    if not value.strip():
        _signing_cache[(source, "")] = key
    return key


class LazySigner:
    """This installation's signing key, loaded (with cryptography) when it first signs or is
    asked its key id: a command that signs nothing, such as ``envguard data check`` between two
    checkpoints, never reads the key. A key that cannot be loaded raises then
    (:class:`~envguard.errors.ConfigError`), and what was to be signed is not written."""

    def __init__(self, policy: Policy, environ: Mapping[str, str] | None = None) -> None:
        self._policy = policy
        self._environ = environ
        self._key: SigningKey | None = None

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = signing_key(self._policy, self._environ)
        return self._key

    @property
    def key_id(self) -> str:
        return self.key.key_id

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def masking_key(policy: Policy, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key for ``hash`` masking (from the variable, else the file, generated if absent).

    A key given in the variable is used as its UTF-8 bytes; it must be at least 16 bytes long.
    """
    environ = os.environ if environ is None else environ
    spec = policy.spec.masking
    value = environ.get(spec.key_env, "")
    if value:
        key, source = value.encode(), f"${spec.key_env}"
    else:
        path = policy.resolve_path(spec.key_file or DEFAULT_MASKING_KEY_FILE)
        key = _read_or_create(path, lambda: secrets.token_hex(32).encode()).strip()
        source = str(path)
    if len(key) < 16:
        raise ConfigError(
            f"{source}: the masking key is {len(key)} bytes; use at least 16 random bytes "
            f"(for example: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def trusted_keys(
    policy: Policy, purpose: str, environ: Mapping[str, str] | None = None
) -> dict[str, TrustedKey]:
    """Key id -> trusted key, for one purpose."""
    from envguard.policy.checks import load_public_key

    found: dict[str, TrustedKey] = {}
    for name, signer in policy.spec.signers.items():
        if purpose in signer.purposes:
            trusted = TrustedKey(name, load_public_key(signer.public_key), tuple(signer.purposes))
            found[trusted.key_id] = trusted
    if policy.spec.signing.trust_own_key:
        own = signing_key(policy, environ)
        found.setdefault(
            own.key_id, TrustedKey("self", own.public_raw, ("masking", "checkpoint", "approval"))
        )
    return found


def verify_signature(
    policy: Policy,
    purpose: str,
    keyid: str,
    signature: bytes,
    data: bytes,
    environ: Mapping[str, str] | None = None,
) -> TrustedKey:
    """The trusted key that made ``signature`` over ``data``; ValueError if none did."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = trusted_keys(policy, purpose, environ)
    trusted = keys.get(keyid)
    if trusted is None:
        raise ValueError(
            f"signed by key {keyid[:16]}…, which the policy does not trust for {purpose} "
            f"(trusted: {', '.join(k.name for k in keys.values()) or 'none'})"
        )
    try:
        Ed25519PublicKey.from_public_bytes(trusted.public_raw).verify(signature, data)
    except InvalidSignature:
        raise ValueError(f"the signature does not verify with key {trusted.name!r}") from None
    return trusted
