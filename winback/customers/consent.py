"""Consent per customer and channel, with the history of every change.

``set_consent`` is the one way consent changes: it updates the customer's flag and, only when
the value actually changes, writes a ``ConsentChange`` row with its source and time. The send
activity reads the flag right before every provider call.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.customers.consent_models import CONSENT_CHANNELS, ConsentChange
from winback.customers.models import Customer


async def set_consent(
    session: AsyncSession,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str,
    at: datetime,
) -> bool:
    """Sets the customer's consent on ``channel`` (email, sms, voice); True if it changed.

    A repeat of the current value writes nothing. The caller commits; the customer must belong
    to a retailer (it is flushed first if it has no id yet).
    """
    if channel not in CONSENT_CHANNELS:
        raise ValueError(f"unknown consent channel {channel!r}")
    attribute = f"consent_{channel}"
    if getattr(customer, attribute) == granted:
        return False
    setattr(customer, attribute, granted)
    customer.updated_at = at
    session.add(customer)
    if customer.id is None:
        await session.flush()
    assert customer.id is not None
    session.add(
        ConsentChange(
            retailer_id=customer.retailer_id,
            customer_id=customer.id,
            channel=channel,
            granted=granted,
            source=source,
            at=at,
        )
    )
    return True


@dataclass(frozen=True)
class ConsentEntry:
    channel: str
    granted: bool
    source: str
    at: datetime


async def consent_history(session: AsyncSession, customer: Customer) -> list[ConsentEntry]:
    """Every change of the customer's consent, oldest first."""
    rows = (
        await session.exec(
            select(ConsentChange)
            .where(
                ConsentChange.retailer_id == customer.retailer_id,
                ConsentChange.customer_id == customer.id,
            )
            .order_by(col(ConsentChange.at), col(ConsentChange.id))
        )
    ).all()
    return [ConsentEntry(r.channel, r.granted, r.source, r.at) for r in rows]
