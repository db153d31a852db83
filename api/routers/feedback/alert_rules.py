"""Alert rules: which answers open a case, who owns it, the SLAs. Versioned like cadences."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api.deps import RetailerDep, SessionDep
from winback.feedback.alert_rules import AlertRulesIn, AlertRulesPublic
from winback.feedback.alert_rules_store import current_rules, list_rules, rules_version, save_rules
from winback.feedback.case_queues import with_task_queues
from winback.platform.db import retry_on_conflict

router = APIRouter(prefix="/v1/alert-rules", tags=["feedback"])


@router.get("", response_model=AlertRulesPublic)
async def read_alert_rules(retailer: RetailerDep, session: SessionDep) -> AlertRulesPublic:
    """The rules new answers are classified by (404 until the retailer sets some)."""
    rules = await current_rules(session, retailer_id=retailer.id)
    if rules is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no alert rules yet: PUT /v1/alert-rules")
    return await with_task_queues(session, retailer_id=retailer.id, rules=rules)


@router.put("", response_model=AlertRulesPublic, status_code=status.HTTP_201_CREATED)
async def replace_alert_rules(
    body: AlertRulesIn, retailer: RetailerDep, session: SessionDep
) -> AlertRulesPublic:
    """Stores a new version of the rules. Open cases keep the version they opened under.
    ``task_queues`` shows where each business unit's case tasks go; ``warnings`` names every
    unit without a queue of its own (its tasks go to ``default``)."""
    saved = await retry_on_conflict(  # two saves at once: consecutive versions, no 409
        session, lambda: save_rules(session, retailer_id=retailer.id, rules=body), keep=[retailer]
    )
    return await with_task_queues(session, retailer_id=retailer.id, rules=saved)


@router.get("/versions", response_model=list[AlertRulesPublic])
async def read_alert_rules_versions(
    retailer: RetailerDep, session: SessionDep
) -> list[AlertRulesPublic]:
    """Every stored version, oldest first."""
    return await list_rules(session, retailer_id=retailer.id)


@router.get("/versions/{version}", response_model=AlertRulesPublic)
async def read_alert_rules_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1)], retailer: RetailerDep, session: SessionDep
) -> AlertRulesPublic:
    """One version, as cases opened under it see it."""
    found = await rules_version(session, retailer_id=retailer.id, version=version)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert rules version {version}")
    return found
