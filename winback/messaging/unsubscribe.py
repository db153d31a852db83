"""Signed one-click unsubscribe links (RFC 8058), one per retailer, customer and channel.

A token is ``<base64url payload>.<base64url HMAC-SHA256 of the payload>``; the payload names the
retailer, the customer and the channel, so a token cannot be forged, altered, or used for another
customer or store. The key is derived from the server's admin token for now
(``HMAC(admin_token, "unsubscribe")``); it moves to a dedicated secrets key when settings get one.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from winback.platform.settings import Settings, get_settings
from workflows.vocabulary import PROVIDER_CHANNELS

CHANNELS = PROVIDER_CHANNELS
_CONTEXT = b"winback-unsubscribe-v1"


@dataclass(frozen=True)
class UnsubscribeTarget:
    retailer_id: str
    customer_id: int
    channel: str


class InvalidToken(ValueError):
    """Forged, altered or malformed."""


def _key(settings: Settings) -> bytes:
    # TODO(issue 5): derive from the dedicated secrets key once settings have one.
    secret = settings.admin_token.get_secret_value().encode()
    return hmac.new(secret, b"unsubscribe", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: bytes) -> bytes:
    return hmac.new(_key(settings), _CONTEXT + b"." + payload, hashlib.sha256).digest()


def make_token(
    retailer_id: str, customer_id: int, channel: str, *, settings: Settings | None = None
) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"no unsubscribe for channel {channel!r}")
    settings = settings or get_settings()
    payload = json.dumps([retailer_id, customer_id, channel], separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(settings, payload))}"


def verify_token(token: str, *, settings: Settings | None = None) -> UnsubscribeTarget:
    """The target of a genuine token; ``InvalidToken`` for anything else."""
    settings = settings or get_settings()
    try:
        encoded_payload, encoded_mac = token.split(".")
        payload, given = _unb64(encoded_payload), _unb64(encoded_mac)
    except (ValueError, binascii.Error) as err:
        raise InvalidToken("malformed token") from err
    if not hmac.compare_digest(_mac(settings, payload), given):
        raise InvalidToken("bad signature")
    try:
        retailer_id, customer_id, channel = json.loads(payload)
    except (ValueError, TypeError) as err:  # signed by us, so only if the format changes
        raise InvalidToken("unreadable token") from err
    if not isinstance(customer_id, int) or channel not in CHANNELS:
        raise InvalidToken("unreadable token")
    return UnsubscribeTarget(str(retailer_id), customer_id, channel)


def unsubscribe_url(
    retailer_id: str, customer_id: int, channel: str, *, settings: Settings | None = None
) -> str:
    """The link for ``List-Unsubscribe`` and the footer: GET shows a confirmation page,
    POST (RFC 8058 one-click) unsubscribes at once."""
    settings = settings or get_settings()
    token = make_token(retailer_id, customer_id, channel, settings=settings)
    return f"{settings.public_base_url.rstrip('/')}/v1/unsubscribe/{token}"
