"""The installation's signing key: Ed25519, made once, never overwritten.

The private key is a PKCS#8 PEM file readable by its owner only (0600, in a 0700
folder); whoever can read the data folder as the service user can sign, so the
operating system's rights guard it. The key id is the first 16 hex digits of the
SHA-256 of the raw 32-byte public key: short enough to read over the phone when the
recipient checks they were given the right public key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigila.core import InvalidInput

KEY_FILE = "evidence-ed25519.pem"
ALGORITHM = "Ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    """The installation's private key, with what is shown of it."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def installation_key(keys_dir: Path) -> SigningKey:
    """The key under `keys_dir`, made on first use. An existing key is never replaced."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        _create(keys_dir, path)
    data = path.read_bytes()
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput.on("key", f"{path} is not a readable private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidInput.on("key", f"{path} is not an Ed25519 private key")
    return SigningKey(private)


def _create(keys_dir: Path, path: Path) -> None:
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)  # mkdir's mode is cut by the umask, and the folder may exist
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    # Written whole under a temporary name, then linked into place: link() fails when the
    # name exists, so two processes making a key at once end up with one, the first.
    tmp = keys_dir / f".{KEY_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # made meanwhile: theirs is the key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or InvalidInput saying what it is instead."""
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput.on("key", "not a PEM public key") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise InvalidInput.on("key", "not an Ed25519 public key")
    return public


def signature_matches(public: Ed25519PublicKey, data: bytes, signature_b64: bytes) -> bool:
    """Whether the base64 `signature_b64` is `public`'s signature over exactly `data`."""
    try:
        signature = base64.b64decode(b"".join(signature_b64.split()), validate=True)
        public.verify(signature, data)
    except (ValueError, InvalidSignature):
        return False
    return True
