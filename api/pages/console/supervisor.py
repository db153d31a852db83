"""The supervisor's page: queue load, tasks past their SLA, escalations, agents' open tasks."""

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.pages.console.auth import ConsoleUserDep
from api.pages.console.templating import render
from winback.platform.clock import utcnow
from winback.tasks.supervision import overview

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor_page(
    request: Request, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    """For supervisors only (an agent marked ``is_supervisor``)."""
    if not user.agent.is_supervisor:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the supervisor view is for supervisors")
    now = utcnow()
    return render(
        request,
        "console/supervisor.html",
        {
            "user": user,
            "agent": user.agent,
            "now": now,
            "overview": await overview(session, retailer_id=user.agent.retailer_id, now=now),
        },
    )
