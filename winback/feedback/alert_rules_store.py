"""Reading and writing a retailer's alert-rules versions. Without any, no case opens."""

from sqlmodel.ext.asyncio.session import AsyncSession

from winback.feedback.alert_rules import AlertRulesIn, AlertRulesPublic
from winback.feedback.models import AlertRulesVersion
from winback.platform import versioned


async def current_rules(session: AsyncSession, *, retailer_id: str) -> AlertRulesPublic | None:
    row = await versioned.latest(session, AlertRulesVersion, retailer_id)
    return None if row is None else AlertRulesPublic(version=row.version, **row.spec)


async def rules_version(
    session: AsyncSession, *, retailer_id: str, version: int
) -> AlertRulesPublic | None:
    row = await versioned.by_version(session, AlertRulesVersion, retailer_id, version)
    return None if row is None else AlertRulesPublic(version=row.version, **row.spec)


async def list_rules(session: AsyncSession, *, retailer_id: str) -> list[AlertRulesPublic]:
    rows = await versioned.all_versions(session, AlertRulesVersion, retailer_id)
    return [AlertRulesPublic(version=row.version, **row.spec) for row in rows]


async def save_rules(
    session: AsyncSession, *, retailer_id: str, rules: AlertRulesIn
) -> AlertRulesPublic:
    """Stores a new version; open cases keep the one they opened under."""
    version = await versioned.save(
        session, AlertRulesVersion, retailer_id, rules.model_dump(mode="json")
    )
    return AlertRulesPublic(version=version, **rules.model_dump())


async def case_taxonomy(session: AsyncSession, *, retailer_id: str) -> tuple[list[str], list[str]]:
    """The root causes and resolution codes an agent chooses from: the retailer's current
    rules (without rules no case opens, so there is nothing to choose)."""
    rules = await current_rules(session, retailer_id=retailer_id)
    if rules is None:
        return [], []
    return list(rules.root_causes), list(rules.resolution_codes)
