"""Encryption at rest for retailers' provider secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key is ``WINBACK_SECRETS_KEY``. Without it the embedded stack uses a fixed dev key derived
from a constant, and says so once: anything encrypted with it is only as secret as this file.
"""

import base64
import hashlib
import hmac
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


def address_digest(settings: Settings, address: str) -> str:
    """A keyed, one-way digest of a contact address (an email, lower-cased; a phone, E.164):
    what the suppression list keeps of an erased shopper, so that the address can be matched
    again without being stored. Keyed with ``WINBACK_PRIVACY_HASH_KEY``, else derived from the
    secrets key, so it cannot be reversed by hashing guessed addresses without the server's key.
    """
    if settings.privacy_hash_key is not None:
        key = settings.privacy_hash_key.get_secret_value().encode()
    else:
        key = hashlib.sha256(b"winback address digest|" + _secrets_key_bytes(settings)).digest()
    normalised = address.strip().lower()
    return "hmac-sha256:" + hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def _secrets_key_bytes(settings: Settings) -> bytes:
    if settings.secrets_key is None:
        return dev_key()
    return settings.secrets_key.get_secret_value().encode()
