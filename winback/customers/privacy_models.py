"""The audit of every data request about a customer: an export or an erasure, who asked,
when, through what, and what it covered (counts, never the data itself).

The subject is kept masked (``j***@example.com``) with the digest of its address, so the audit
proves what was done without keeping what was erased. A request that waits for the retailer
(Shopify's ``customers/data_request``, downloaded later) keeps the subject's identifiers in
``pending_subject`` until it is fulfilled or the customer is erased.
"""

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column


class PrivacyKind:
    EXPORT = "export"
    ERASE = "erase"


class PrivacyStatus:
    PENDING = "pending"  # waits for the retailer to download the export
    DONE = "done"


class PrivacyRequest(SQLModel, table=True):
    __tablename__ = "privacy_request"

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    kind: str = Field(max_length=10)
    source: str = Field(max_length=40, description="api | shopify")
    requested_by: str = Field(max_length=200)
    reference: str | None = Field(default=None, max_length=200, description="e.g. Shopify's id")
    subject: str = Field(max_length=500, description="Masked: what the request was about.")
    subject_digest: str | None = Field(default=None, max_length=100, index=True)
    pending_subject: dict[str, Any] = json_column()
    status: str = Field(default=PrivacyStatus.DONE, max_length=10, index=True)
    summary: dict[str, Any] = json_column()
    created_at: datetime = utc_column(nullable=False, default_now=True)
    completed_at: datetime | None = utc_column()


class PrivacyRequestPublic(SQLModel):
    id: int
    kind: str
    source: str
    requested_by: str
    reference: str | None
    subject: str
    status: str
    summary: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
