"""Signed one-click unsubscribe links (RFC 8058), one per retailer, customer and channel.

Tokens are signed with ``itsdangerous`` and a secret of their own
(``WINBACK_UNSUBSCRIBE_SECRET``), never one shared with anything else: rotating the admin token
or the secrets key leaves emailed links working. The payload names the retailer, the customer
and the channel, so a token cannot be forged, altered, or used for another customer or store.
Rotation: the new secret signs, and every secret in ``WINBACK_UNSUBSCRIBE_OLD_SECRETS`` still
verifies, so links already sent keep working until those are dropped.
"""

import logging
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from winback.platform.settings import Settings, get_settings
from workflows.vocabulary import PROVIDER_CHANNELS

CHANNELS = PROVIDER_CHANNELS
_SALT = "winback-unsubscribe-v2"
DEV_UNSUBSCRIBE_SECRET = "winback-dev-unsubscribe-secret"  # the embedded stack's, with a warning

log = logging.getLogger(__name__)
_warned = False


@dataclass(frozen=True)
class UnsubscribeTarget:
    retailer_id: str
    customer_id: int
    channel: str


class InvalidToken(ValueError):
    """Forged, altered or malformed."""


def _serializer(settings: Settings) -> URLSafeSerializer:
    global _warned
    current = settings.unsubscribe_secret
    if current is None:
        if not _warned:
            log.warning(
                "WINBACK_UNSUBSCRIBE_SECRET is unset: unsubscribe links use a dev secret anyone "
                "can read; set one anywhere but your laptop"
            )
            _warned = True
        secret = DEV_UNSUBSCRIBE_SECRET
    else:
        secret = current.get_secret_value()
    # itsdangerous signs with the last key and verifies with any of them.
    old = [s.get_secret_value() for s in settings.unsubscribe_old_secrets]
    return URLSafeSerializer([*old, secret], salt=_SALT)


def make_token(
    retailer_id: str, customer_id: int, channel: str, *, settings: Settings | None = None
) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"no unsubscribe for channel {channel!r}")
    return str(_serializer(settings or get_settings()).dumps([retailer_id, customer_id, channel]))


def verify_token(token: str, *, settings: Settings | None = None) -> UnsubscribeTarget:
    """The target of a genuine token; ``InvalidToken`` for anything else."""
    try:
        payload = _serializer(settings or get_settings()).loads(token)
    except BadSignature as err:
        raise InvalidToken("bad signature") from err
    if not (isinstance(payload, list) and len(payload) == 3):
        raise InvalidToken("unreadable token")  # signed by us, so only if the format changes
    retailer_id, customer_id, channel = payload
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
