"""Per-retailer lookups that every ingestion request makes, cached for a few seconds.

The storefront's hot path asks the same two questions on every event: whose API key (or
publishable key) is this, and what is that retailer's name and country. Reading them from the
database each time was two queries per event, and a read before the event's write (on SQLite
that read's snapshot is what made concurrent writers fail with "database is locked"). Answers are
kept per process for ``TTL_SECONDS``:

- the cache is keyed by a digest of the whole credential and holds only what that credential's
  own retailer row says, so one retailer's key never answers with another retailer's data;
- a change made through this process (retailer update, key rotation, revocation, new origins)
  clears it at once (``invalidate``); another process sees the change within ``TTL_SECONDS``;
- a publishable key's expiry is checked on every use, cached or not;
- it holds at most ``MAX_ENTRIES`` answers (then starts over), so made-up keys cannot grow it.
"""

import hashlib
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from winback.platform.caching import TtlCache
from winback.platform.clock import utcnow
from winback.retailers.models import ApiKey, Retailer
from winback.retailers.publishable_keys import PublishableKey, normalize_origin


class RetailerIdentity(Protocol):
    """What the event pipeline needs of a retailer: a ``Retailer`` row or a ``RetailerRef``."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def country(self) -> str: ...


@dataclass(frozen=True)
class RetailerRef:
    """A retailer's identity as of the lookup: immutable, safe to share between requests."""

    id: str
    name: str
    country: str


@dataclass(frozen=True)
class ClientKeyRef:
    """A publishable key as of the lookup (its origins and expiry), with its retailer."""

    key: str
    retailer: RetailerRef
    allowed_origins: tuple[str, ...]
    expires_at_ts: float | None

    def is_valid(self) -> bool:
        return self.expires_at_ts is None or self.expires_at_ts > utcnow().timestamp()

    def allows(self, origin: str) -> bool:
        """``PublishableKey.allows`` without building a table model per request."""
        try:
            return normalize_origin(origin) in self.allowed_origins
        except ValueError:
            return False


_API_KEYS: TtlCache[RetailerRef] = TtlCache()
_CLIENT_KEYS: TtlCache[ClientKeyRef] = TtlCache()


def invalidate() -> None:
    """Forgets every cached answer of this process: call after changing a retailer or a key."""
    _API_KEYS.clear()
    _CLIENT_KEYS.clear()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cached_retailer_of_api_key(key: str) -> RetailerRef | None:
    """The cached answer of ``retailer_of_api_key``, if any: no session needed on a hit."""
    return _API_KEYS.get(_digest(key))


def cached_client_key(key: str) -> ClientKeyRef | None:
    """The cached answer of ``client_key`` for a key still valid, if any (expiry checked)."""
    cached = _CLIENT_KEYS.get(_digest(key))
    return cached if cached is not None and cached.is_valid() else None


async def retailer_of_api_key(session: AsyncSession, key: str) -> RetailerRef | None:
    """The retailer a full API key belongs to (one joined query on a miss), or None. A business
    unit's key is never cached here: it opens no ingestion route, and revoking it needs no
    invalidation."""
    digest = _digest(key)
    cached = _API_KEYS.get(digest)
    if cached is not None:
        return cached
    row = (
        await (await session.connection()).execute(
            select(Retailer.id, Retailer.name, Retailer.country)  # type: ignore[call-overload]
            .join(ApiKey, ApiKey.retailer_id == Retailer.id)
            .where(ApiKey.key_hash == digest, ApiKey.business_unit.is_(None))  # type: ignore[union-attr]
        )
    ).first()
    if row is None:
        return None
    ref = RetailerRef(id=row.id, name=row.name, country=row.country)
    _API_KEYS.put(digest, ref)
    return ref


async def client_key(session: AsyncSession, key: str) -> ClientKeyRef | None:
    """A publishable key still valid, with its retailer (one joined query on a miss), or None."""
    digest = _digest(key)
    cached = _CLIENT_KEYS.get(digest)
    if cached is None:
        row = (
            await (await session.connection()).execute(
                select(  # type: ignore[call-overload]
                    PublishableKey.key,
                    PublishableKey.allowed_origins,
                    PublishableKey.expires_at,
                    Retailer.id,
                    Retailer.name,
                    Retailer.country,
                )
                .join(Retailer, Retailer.id == PublishableKey.retailer_id)
                .where(PublishableKey.key == key)
            )
        ).first()
        if row is None:
            return None
        cached = ClientKeyRef(
            key=row.key,
            retailer=RetailerRef(id=row.id, name=row.name, country=row.country),
            allowed_origins=tuple(row.allowed_origins or ()),
            expires_at_ts=row.expires_at.timestamp() if row.expires_at else None,
        )
        _CLIENT_KEYS.put(digest, cached)
    return cached if cached.is_valid() else None
