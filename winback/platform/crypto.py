"""Encryption at rest for retailers' provider secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key is ``WINBACK_SECRETS_KEY``. Without it the embedded stack uses a fixed dev key derived
from a constant, and says so once: anything encrypted with it is only as secret as this file.
"""

import base64
import hashlib
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from winback.platform.settings import Settings

log = logging.getLogger(__name__)

_DEV_KEY_SEED = b"winback embedded dev secrets key; set WINBACK_SECRETS_KEY in production"


class SecretsKeyError(RuntimeError):
    """A stored secret cannot be decrypted with the configured key (the key was changed)."""


def dev_key() -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(_DEV_KEY_SEED).digest())


@lru_cache
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


@lru_cache(maxsize=1)
def _warn_dev_key() -> None:
    log.warning(
        "WINBACK_SECRETS_KEY is not set: provider secrets are encrypted with the built-in dev "
        "key. Set it to a Fernet key (Fernet.generate_key()) before storing real keys."
    )


def fernet_for(settings: Settings) -> Fernet:
    if settings.secrets_key is None:
        _warn_dev_key()
        return _fernet(dev_key())
    return _fernet(settings.secrets_key.get_secret_value().encode())


def encrypt(settings: Settings, plain: str) -> str:
    return fernet_for(settings).encrypt(plain.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return fernet_for(settings).decrypt(token.encode()).decode()
    except InvalidToken as err:
        raise SecretsKeyError(
            "a stored provider secret does not decrypt with WINBACK_SECRETS_KEY"
        ) from err
