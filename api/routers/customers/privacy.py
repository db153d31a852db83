"""A customer's data on request: export it all as JSON, or erase it. Every request is audited
(`GET /v1/privacy-requests`): who asked, when, through what, and what it covered."""

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import col, select
from temporalio.service import RPCError

from api.deps import RetailerDep, SessionDep, SettingsDep, TemporalClientDep, hash_key
from winback.customers.identity import EMAIL_PATTERN
from winback.customers.phones import normalize_phone
from winback.customers.privacy import (
    CustomerExport,
    Subject,
    erase_customer_data,
    export_customer_data,
    pending_subject,
    stop_workflows,
)
from winback.customers.privacy_models import (
    PrivacyKind,
    PrivacyRequest,
    PrivacyRequestPublic,
    PrivacyStatus,
)
from winback.retailers.models import Retailer

router = APIRouter(tags=["privacy"])


class SubjectIn(BaseModel):
    """Whom the request is about: any of these (all that are given are matched)."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(
        default=None, max_length=40, description="Any format; without `+`, the store's country."
    )
    customer_id: str | None = Field(
        default=None, max_length=200, description="The retailer's own customer id."
    )
    requested_by: str = Field(
        min_length=1,
        max_length=150,
        description="Who asked, for the audit (e.g. `dpo@acme.example, ticket 4411`).",
    )

    @model_validator(mode="after")
    def _someone(self) -> "SubjectIn":
        if not (self.email or self.phone or self.customer_id):
            raise ValueError("give at least one of 'email', 'phone' or 'customer_id'")
        if self.email is not None and not EMAIL_PATTERN.fullmatch(self.email):
            raise ValueError(f"email: {self.email!r} is not an email address")
        return self

    def subject(self, retailer: Retailer) -> Subject:
        phone = None
        if self.phone:
            try:
                phone = normalize_phone(self.phone, retailer.country)
            except ValueError as err:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"phone: {err}"
                ) from None
        return Subject(
            email=self.email.lower() if self.email else None,
            phone=phone,
            external_id=self.customer_id,
        )


class ErasureDone(BaseModel):
    request_id: int
    subject: str
    erased: dict[str, int] = Field(description="How many rows of each kind lost their PII.")
    workflows_stopped: list[str]
    workflows_pending: bool = Field(
        description="True if Temporal could not be reached: the carts are opted out (no send "
        "goes out) and their workflows are told on the next request for them."
    )


def _who(request: Request, given: str) -> str:
    key = request.headers.get("X-API-Key", "")
    return f"{given} (api key {hash_key(key)[:8]})"


@router.post("/v1/customers/export", response_model=CustomerExport)
async def export_customer(
    body: SubjectIn,
    request: Request,
    retailer: RetailerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CustomerExport:
    """Everything Winback holds about the customer (matched by email, phone or the retailer's
    customer id): contact and consent with its history, carts with items, cart events,
    messages, suppressions, survey answers, cases and tasks. An unknown subject gets an empty
    list. Audited."""
    return await export_customer_data(
        session,
        retailer=retailer,
        subject=body.subject(retailer),
        source="api",
        requested_by=_who(request, body.requested_by),
        settings=settings,
    )


@router.post("/v1/customers/erase", response_model=ErasureDone)
async def erase_customer(
    body: SubjectIn,
    request: Request,
    retailer: RetailerDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> ErasureDone:
    """Erases the customer's personal data from customers, carts, cart events, messages,
    provider events, answers, cases and tasks; stops their open carts' workflows (an
    `opted_out` signal with reason `customer_erased`) and terminates their open cases'
    workflows; and keeps only a keyed digest of each address on the suppression list, so the
    shopper is never messaged again. Safe to repeat. Audited."""
    erasure = await erase_customer_data(
        session,
        retailer=retailer,
        subject=body.subject(retailer),
        source="api",
        requested_by=_who(request, body.requested_by),
        settings=settings,
    )
    await session.commit()
    stopped: list[str] = []
    pending = False
    try:
        stopped = await stop_workflows(client, erasure)
        await session.commit()
    except RPCError:
        await session.rollback()
        pending = True
    assert erasure.request.id is not None
    return ErasureDone(
        request_id=erasure.request.id,
        subject=erasure.request.subject,
        erased=dict(erasure.request.summary),
        workflows_stopped=stopped,
        workflows_pending=pending,
    )


@router.get("/v1/privacy-requests", response_model=list[PrivacyRequestPublic])
async def list_privacy_requests(
    retailer: RetailerDep,
    session: SessionDep,
    status_filter: Annotated[
        Literal["pending", "done"] | None, Query(alias="status", description="`pending` or `done`.")
    ] = None,
) -> list[PrivacyRequestPublic]:
    """The audit of exports and erasures, newest first; `?status=pending` lists data requests
    (from Shopify) that wait for their export to be downloaded."""
    query = select(PrivacyRequest).where(PrivacyRequest.retailer_id == retailer.id)
    if status_filter:
        query = query.where(PrivacyRequest.status == status_filter)
    rows = await session.exec(query.order_by(col(PrivacyRequest.id).desc()).limit(500))
    return [PrivacyRequestPublic.model_validate(r) for r in rows]


@router.get("/v1/privacy-requests/{request_id}/export", response_model=CustomerExport)
async def fulfil_data_request(
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    retailer: RetailerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CustomerExport:
    """The export a pending data request asked for (Shopify's `customers/data_request`), for
    the retailer to hand to the customer. Marks the request done."""
    row = await session.get(PrivacyRequest, request_id)
    if row is None or row.retailer_id != retailer.id or row.kind != PrivacyKind.EXPORT:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no data request {request_id}")
    if row.status != PrivacyStatus.PENDING:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"data request {request_id} is already done; POST /v1/customers/export for a new one",
        )
    row.requested_by = f"{row.requested_by}; downloaded by {_who(request, 'the retailer')}"
    return await export_customer_data(
        session,
        retailer=retailer,
        subject=pending_subject(row),
        source=row.source,
        requested_by=row.requested_by,
        settings=settings,
        pending=row,
    )
