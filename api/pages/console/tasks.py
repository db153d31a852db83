"""The task page: what the workflow asks, the form for its outcomes, and the customer beside it.

The form is typed by the kind of task: a root cause is chosen from the retailer's taxonomy, a
resolution from its codes with "won back?", and every kind takes notes. The completion goes to
the workflow through ``winback.tasks.commands.complete``, as ``POST /v1/tasks/.../complete``
does; when the workflow refuses it (wrong outcome, missing data, not the holder, too late) the
page shows why in words and keeps what was typed.
"""

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, TemporalClientDep
from api.live import bell_of
from api.pages.console.auth import ConsoleActionDep, ConsoleUser, ConsoleUserDep
from api.pages.console.refusals import REFUSALS, in_words
from api.pages.console.templating import render
from api.routers.tasks.tasks import TaskId
from winback.customers.view import CustomerView, customer_view, find_customer
from winback.feedback.alert_rules_store import case_taxonomy
from winback.platform.clock import utcnow
from winback.retailers.models import Retailer
from winback.tasks import commands as task_commands
from winback.tasks.inbox import list_agents
from winback.tasks.models import HumanTask
from winback.tasks.supervision import may_reassign
from workflows.vocabulary import CaseTaskKind

router = APIRouter(prefix="/console", include_in_schema=False)
ATTEMPT = re.compile(r"attempt (\d+)")


async def panel_for(
    session: SessionDep, retailer_id: str, customer_id: int | None
) -> CustomerView | None:
    """The customer panel of a task's or a call's customer (None when there is none)."""
    if customer_id is None:
        return None
    retailer = await session.get(Retailer, retailer_id)
    customer = await find_customer(session, retailer_id=retailer_id, customer_id=customer_id)
    if retailer is None or customer is None:
        return None
    return await customer_view(session, retailer=retailer, customer=customer, now=utcnow())


async def _page(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    task: HumanTask,
    *,
    error: str | None = None,
    typed: dict[str, Any] | None = None,
    code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    now = utcnow()
    root_causes, resolution_codes = await case_taxonomy(session, retailer_id=task.retailer_id)
    attempt = ATTEMPT.search(task.title)
    return render(
        request,
        "console/task.html",
        {
            "user": user,
            "agent": user.agent,
            "task": task,
            "now": now,
            "overdue": task_commands.is_overdue(task, now),
            "sla_seconds": (task.due_at - task.created_at).total_seconds(),
            "attempt": int(attempt.group(1)) if attempt else None,
            "root_causes": root_causes if task.kind == CaseTaskKind.ROOT_CAUSE else [],
            "resolution_codes": resolution_codes if task.kind == CaseTaskKind.RESOLUTION else [],
            "customer": await panel_for(session, task.retailer_id, task.customer_id),
            "agents": await list_agents(session, retailer_id=task.retailer_id),
            "may_reassign": await may_reassign(session, agent=user.agent, task=task),
            "error": error,
            "typed": typed or {},
        },
        status_code=code,
    )


async def _task_or_404(session: SessionDep, user: ConsoleUser, task_id: str) -> HumanTask:
    task = await task_commands.find_task(
        session, retailer_id=user.agent.retailer_id, task_id=task_id
    )
    if task is None:  # another retailer's task looks exactly like one that does not exist
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}")
    return task


@router.get("/tasks/{task_id:path}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: TaskId, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    """One task with its outcome form, and the customer's panel beside it."""
    return await _page(request, session, user, await _task_or_404(session, user, task_id))


def completion_data(kind: str, form: dict[str, str]) -> dict[str, Any]:
    """The typed data the workflow checks, from the form's fields."""
    if kind == CaseTaskKind.ROOT_CAUSE:
        facts = [line.strip() for line in form.get("facts", "").splitlines() if line.strip()]
        return {"category": form.get("category", ""), "facts": facts}
    if kind == CaseTaskKind.RESOLUTION:
        data: dict[str, Any] = {"resolution_code": form.get("resolution_code", "")}
        if form.get("won_back") in ("yes", "no"):
            data["won_back"] = form["won_back"] == "yes"
        return data
    return {}


@router.post("/tasks/{task_id:path}/complete", response_class=HTMLResponse)
async def complete(
    request: Request,
    task_id: TaskId,
    user: ConsoleActionDep,
    session: SessionDep,
    client: TemporalClientDep,
) -> Response:
    """Records the outcome; back to the inbox when the workflow accepts it."""
    task = await _task_or_404(session, user, task_id)
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    outcome, notes = form.get("outcome", "")[:40], form.get("notes", "")[:10000]
    if not outcome:
        return await _page(
            request,
            session,
            user,
            task,
            error="Choose an outcome.",
            typed=form,
            code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    try:
        await task_commands.complete(
            session,
            client,
            task=task,
            agent_id=user.agent.agent_id,
            outcome=outcome,
            notes=notes,
            data=completion_data(task.kind, form),
        )
    except REFUSALS as exc:
        task = await _task_or_404(session, user, task_id)
        return await _page(
            request,
            session,
            user,
            task,
            error=in_words(exc),
            typed=form,
            code=status.HTTP_409_CONFLICT,
        )
    bell_of(request.app).ring()
    return RedirectResponse(
        f"/console?done={quote(task_id, safe='')}", status_code=status.HTTP_303_SEE_OTHER
    )
