"""The Ed25519 key that signs audit checkpoints: loaded from settings, generated once in the
embedded mode, cached per process."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from workflows import evidence_verifier as ev

logger = logging.getLogger("workflows.checkpoints")


class SigningKeyMissing(Exception):
    """No key to sign checkpoints with; the message says what to set."""


# --- the key --------------------------------------------------------------------------------

_KEYS: dict[tuple[str, str], Ed25519PrivateKey] = {}


def _key_generate(path: Path) -> Ed25519PrivateKey:
    """A new key at `path` (mode 0600), unless another process made one first."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _key_read(path)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    message = (
        f"Baton generated an audit signing key at {path} (the embedded mode does this on first use). "
        "Keep a copy of its public key (the auditors' checkpoints page) outside Baton."
    )
    logger.warning(message)
    print(message, file=sys.stderr)  # noqa: T201  (also when logging is quiet)
    return key


def _key_read(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyMissing(f"{path} does not hold an Ed25519 private key.")
    return key


def signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key: AUDIT_SIGNING_KEY (PEM), else AUDIT_SIGNING_KEY_FILE,
    generated there on first use only where AUDIT_SIGNING_KEY_GENERATE (embedded)."""
    pem: str = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    file: str = str(getattr(settings, "AUDIT_SIGNING_KEY_FILE", "") or "")
    cache_key = (pem, file)
    if cache_key in _KEYS:
        return _KEYS[cache_key]
    if pem:
        # An environment variable may carry the PEM's line breaks as '\n'.
        loaded = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise SigningKeyMissing("AUDIT_SIGNING_KEY does not hold an Ed25519 private key.")
        key = loaded
    elif file and Path(file).exists():
        key = _key_read(Path(file))
    elif file and getattr(settings, "AUDIT_SIGNING_KEY_GENERATE", False):
        key = _key_generate(Path(file))
    else:
        where = f" ({file} does not exist)" if file else ""
        raise SigningKeyMissing(
            "No audit signing key: set AUDIT_SIGNING_KEY to an Ed25519 private key in PEM, or "
            f"AUDIT_SIGNING_KEY_FILE to a file holding one{where}. Make one with: "
            'python -c "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey; '
            "from cryptography.hazmat.primitives import serialization as s; "
            "print(Ed25519PrivateKey.generate().private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, "
            's.NoEncryption()).decode())"'
        )
    _KEYS[cache_key] = key
    return key


def signing_key_present() -> Ed25519PrivateKey | None:
    """The signing key if one is configured or was generated already; never generates one
    (pages that only read must not write a key file)."""
    pem = getattr(settings, "AUDIT_SIGNING_KEY", "")
    file = str(getattr(settings, "AUDIT_SIGNING_KEY_FILE", "") or "")
    if not pem and not (file and Path(file).exists()):
        return None
    return signing_key()


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey | None = None) -> str:
    public = (key or signing_key()).public_key() if not isinstance(key, Ed25519PublicKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_id(key: Ed25519PrivateKey | Ed25519PublicKey | None = None) -> str:
    public = (key or signing_key()).public_key() if not isinstance(key, Ed25519PublicKey) else key
    return ev.key_id(ev.public_key_raw(public))
