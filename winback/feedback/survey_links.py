"""Signed per-invite survey links: no sign-in, the signature is the authority.

Signed with ``itsdangerous`` and a secret of their own (``WINBACK_SURVEY_SECRET``), as unsubscribe
links are, so rotating any other secret leaves links already sent working; earlier secrets in
``WINBACK_SURVEY_OLD_SECRETS`` still verify. The payload names the retailer and the invite, so a
link cannot be altered into another customer's or another store's survey. The token carries the
invite's creation time as its signing time, so one invite always has the same link, and a link
older than a year (``MAX_AGE_DAYS``, the longest an invite may live) is refused whatever the
database says; the row's own ``expires_at`` is checked by the page.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from winback.platform.settings import Settings

_SALT = "winback-survey-v1"
DEV_SURVEY_SECRET = "winback-dev-survey-secret"  # the embedded stack's, with a warning
MAX_AGE_DAYS = 366

log = logging.getLogger(__name__)
_warned = False


@dataclass(frozen=True)
class SurveyTarget:
    retailer_id: str
    invite_id: int


class InvalidSurveyLink(ValueError):
    """Forged, altered or malformed."""


class ExpiredSurveyLink(ValueError):
    """Genuine, but older than the links' lifetime."""


def _serializer(settings: Settings, issued_at: int | None = None) -> URLSafeTimedSerializer:
    global _warned
    if settings.survey_secret is None:
        if not _warned:
            log.warning(
                "WINBACK_SURVEY_SECRET is unset: survey links use a dev secret anyone can read; "
                "set one anywhere but your laptop"
            )
            _warned = True
        secret = DEV_SURVEY_SECRET
    else:
        secret = settings.survey_secret.get_secret_value()
    old = [s.get_secret_value() for s in settings.survey_old_secrets]
    if issued_at is None:
        return URLSafeTimedSerializer([*old, secret], salt=_SALT)  # signs with the last key
    fixed: int = issued_at

    class _IssuedAt(TimestampSigner):
        def get_timestamp(self) -> int:
            return fixed

    return URLSafeTimedSerializer([*old, secret], salt=_SALT, signer=_IssuedAt)


def make_survey_token(
    settings: Settings, retailer_id: str, invite_id: int, issued_at: datetime | None = None
) -> str:
    """``issued_at``: the invite's creation (the same link every time); default now."""
    at = int(issued_at.timestamp()) if issued_at is not None else None
    return str(_serializer(settings, at).dumps([retailer_id, invite_id]))


def verify_survey_token(settings: Settings, token: str) -> SurveyTarget:
    """The invite a genuine, unexpired token names; else one of the two errors above."""
    try:
        payload = _serializer(settings).loads(token, max_age=MAX_AGE_DAYS * 86400)
    except SignatureExpired as err:
        raise ExpiredSurveyLink("this survey link has expired") from err
    except BadSignature as err:
        raise InvalidSurveyLink("bad signature") from err
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], int)):
        raise InvalidSurveyLink("unreadable token")
    return SurveyTarget(str(payload[0]), payload[1])


def survey_url(
    settings: Settings, retailer_id: str, invite_id: int, issued_at: datetime | None = None
) -> str:
    """The hosted page: ``GET`` shows the question, ``POST`` records the answer once."""
    token = make_survey_token(settings, retailer_id, invite_id, issued_at)
    return f"{settings.public_base_url.rstrip('/')}/s/{token}"
