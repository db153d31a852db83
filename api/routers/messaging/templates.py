"""Message templates: the defaults, and the retailer's own (checked by rendering on save)."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from sqlmodel import select

from api.deps import RetailerDep, SessionDep
from winback.messaging.template_models import (
    MessageTemplate,
    MessageTemplateCreate,
    MessageTemplatePublic,
)
from winback.messaging.template_runner import template_runner
from winback.messaging.templates import DEFAULT_TEMPLATES, TemplateSource
from winback.platform.clock import utcnow
from winback.platform.db import retry_on_conflict

router = APIRouter(prefix="/v1/templates", tags=["templates"])
TemplateName = Annotated[str, Path(pattern=r"^[a-z0-9_\-]{1,100}$", max_length=100)]


@router.get("", response_model=list[MessageTemplatePublic])
async def list_templates(retailer: RetailerDep, session: SessionDep) -> list[MessageTemplatePublic]:
    """The retailer's templates, plus the defaults it has not replaced."""
    own = (
        await session.exec(
            select(MessageTemplate).where(MessageTemplate.retailer_id == retailer.id)
        )
    ).all()
    mine = {t.name: MessageTemplatePublic.model_validate(t) for t in own}
    defaults = {
        name: MessageTemplatePublic.model_validate(
            {"name": name, "is_default": True, **asdict(src)}
        )
        for name, src in DEFAULT_TEMPLATES.items()
        if name not in mine
    }
    return sorted([*mine.values(), *defaults.values()], key=lambda t: t.name)


@router.put("/{name}", response_model=MessageTemplatePublic)
async def put_template(
    name: TemplateName, body: MessageTemplateCreate, retailer: RetailerDep, session: SessionDep
) -> MessageTemplatePublic:
    """Creates or replaces a template; it must render against a sample cart, within the time
    and size bounds (a 422 says which was passed)."""
    if body.channel == "email" and not body.subject:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "subject: an email needs one")
    # In another process, bounded in time: a hostile template never stalls this event loop.
    problem = await template_runner().check(
        TemplateSource(body.channel, body.body, body.subject, body.html)
    )
    if problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"template: {problem}")

    async def upsert() -> MessageTemplate:
        row = (
            await session.exec(
                select(MessageTemplate).where(
                    MessageTemplate.retailer_id == retailer.id, MessageTemplate.name == name
                )
            )
        ).first() or MessageTemplate(retailer_id=retailer.id, name=name, **body.model_dump())
        row.sqlmodel_update(body.model_dump())
        row.updated_at = utcnow()
        session.add(row)
        return row

    # Two PUTs of a new template at once: the loser of the insert replaces it, no 409.
    row = await retry_on_conflict(session, upsert, keep=[retailer])
    return MessageTemplatePublic.model_validate(row)
