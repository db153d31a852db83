"""Signed shopper identity: which contact typed into a page Winback may trust.

An email or phone that reaches Winback from a browser could be anyone's, so on its own it is
never used to message anybody. The retailer's backend, which knows who is signed in, signs each
value with the retailer's identity secret (HMAC-SHA256 of the value trimmed and lower-cased, hex),
and ``winback.js`` sends value and signature together. Only values whose signature checks become
the cart's contact; the rest are dropped, so an unsigned cart stays anonymous: it still gets the
on-site nudge, and follow-ups wait for a server-side source (an API event, a platform webhook).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.platform.clock import utcnow
from winback.platform.columns import utc_column
from winback.platform.crypto import decrypt, encrypt
from winback.platform.settings import Settings

SIGNED_FIELDS = ("id", "email", "phone")


def sign_identity(secret: str, value: str) -> str:
    """What the retailer's backend computes (the README shows it in Python and JavaScript)."""
    message = value.strip().lower().encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, value: str, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign_identity(secret, value), signature or "")


class IdentitySecret(SQLModel, table=True):
    """One per retailer, Fernet-encrypted at rest like the provider secrets."""

    __tablename__ = "identity_secret"

    retailer_id: str = SQLField(foreign_key="retailer.id", primary_key=True, max_length=40)
    secret_enc: str
    created_at: datetime = utc_column(nullable=False, default_now=True)


class IdentitySecretCreated(BaseModel):
    identity_secret: str = Field(description="Shown once. Keep it on your server only.")
    created_at: datetime


class IdentitySecretStatus(BaseModel):
    set: bool
    created_at: datetime | None


async def rotate_identity_secret(
    session: AsyncSession, *, retailer_id: str, settings: Settings
) -> IdentitySecretCreated:
    """A new secret; signatures made with the old one stop verifying at once."""
    plain = secrets.token_urlsafe(32)
    row = await session.get(IdentitySecret, retailer_id) or IdentitySecret(
        retailer_id=retailer_id, secret_enc=""
    )
    row.secret_enc, row.created_at = encrypt(settings, plain), utcnow()
    session.add(row)
    await session.flush()
    return IdentitySecretCreated(identity_secret=plain, created_at=row.created_at)


async def identity_secret(
    session: AsyncSession, *, retailer_id: str, settings: Settings
) -> str | None:
    row = await session.get(IdentitySecret, retailer_id)
    return decrypt(settings, row.secret_enc) if row is not None else None


class ClientIdentity(BaseModel):
    """``winback.identify(...)`` as the page sends it: values with their signatures."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=20)
    timezone: str | None = Field(default=None, max_length=64)
    id_signature: str | None = Field(default=None, max_length=128)
    email_signature: str | None = Field(default=None, max_length=128)
    phone_signature: str | None = Field(default=None, max_length=128)


@dataclass
class TrustedIdentity:
    """What survives the check: signed contact fields, and the harmless ones."""

    fields: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    @property
    def has_contact(self) -> bool:
        return any(f in self.fields for f in SIGNED_FIELDS)


def trusted_identity(identity: ClientIdentity, secret: str | None) -> TrustedIdentity:
    """Keeps ``id``/``email``/``phone`` only with a valid signature; ``name`` only alongside a
    signed one (it goes into messages); ``locale`` and ``timezone`` always (they choose the
    nudge's language and never address anyone)."""
    result = TrustedIdentity()
    for name in SIGNED_FIELDS:
        value = getattr(identity, name)
        if value is None:
            continue
        signature = getattr(identity, f"{name}_signature")
        if secret is not None and signature_matches(secret, value, signature):
            result.fields[name] = value.strip()
        else:
            result.dropped.append(name)
    if identity.name is not None:
        if result.has_contact:
            result.fields["name"] = identity.name
        else:
            result.dropped.append("name")
    for name in ("locale", "timezone"):
        value = getattr(identity, name)
        if value is not None:
            result.fields[name] = value
    return result
