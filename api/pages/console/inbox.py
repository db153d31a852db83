"""The inbox page: my tasks, my queues' tasks, all tasks (supervisors), and the actions on a row.

The list comes from ``winback.tasks.inbox`` (what ``GET /v1/tasks`` lists, in the same order);
claim, release and reassign go through ``winback.tasks.commands`` to the task's workflow, as the
JSON routes do. With htmx a row action answers with the new row (the page does not reload);
without JavaScript it redirects back to the inbox.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, TemporalClientDep
from api.live import bell_of
from api.pages.console.auth import ConsoleActionDep, ConsoleUser, ConsoleUserDep, safe_next
from api.pages.console.refusals import REFUSALS, in_words
from api.pages.console.templating import render
from api.routers.tasks.tasks import TaskId
from winback.platform.clock import utcnow
from winback.tasks import commands as task_commands
from winback.tasks.agent_models import SKILL_PATTERN
from winback.tasks.inbox import (
    InboxQuery,
    InboxView,
    find_agent,
    list_agents,
    list_tasks,
    retailer_queues,
    view_counts,
    views_for,
)
from winback.tasks.models import HumanTask
from winback.tasks.supervision import may_reassign

router = APIRouter(prefix="/console", include_in_schema=False)

BackDep = Annotated[str, Form(max_length=2000, description="The page to go back to.")]
VIEW_NAMES = {InboxView.MINE: "Mine", InboxView.QUEUES: "My queues", InboxView.ALL: "All"}


async def _inbox_context(
    session: SessionDep,
    user: ConsoleUser,
    view: str,
    queue: str | None,
    skill: str | None,
) -> dict[str, object]:
    agent = user.agent
    views = views_for(agent)
    if view not in views:
        view = InboxView.QUEUES
    if skill is not None and not SKILL_PATTERN.fullmatch(skill):
        skill = None
    now = utcnow()
    tasks = await list_tasks(
        session,
        agent=agent,
        query=InboxQuery(view=view, queue=queue or None, skill=skill or None, limit=200),
        now=now,
    )
    queues = await retailer_queues(session, retailer_id=agent.retailer_id)
    skills = sorted({s for q in queues for s in q.skills} | {s for t in tasks for s in t.skills})
    filters = {k: v for k, v in (("view", view), ("queue", queue), ("skill", skill)) if v}
    return {
        "user": user,
        "agent": agent,
        "now": now,
        "tasks": tasks,
        "overdue": {t.id for t in tasks if task_commands.is_overdue(t, now)},
        "view": view,
        "views": [(v, VIEW_NAMES[v]) for v in views],
        "counts": await view_counts(session, agent=agent),
        "queue": queue or "",
        "skill": skill or "",
        "queue_names": sorted({q.name for q in queues} | {t.queue for t in tasks}),
        "skills": skills,
        "rows_url": "/console/inbox?" + urlencode(filters),
        "page_url": "/console?" + urlencode(filters),
    }


@router.get("", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    user: ConsoleUserDep,
    session: SessionDep,
    view: Annotated[str, Query(max_length=20)] = InboxView.QUEUES,
    queue: Annotated[str | None, Query(max_length=60)] = None,
    skill: Annotated[str | None, Query(max_length=80)] = None,
    done: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """The inbox, live: new tasks appear and taken ones grey out without a reload."""
    context = await _inbox_context(session, user, view, queue, skill)
    context["done"] = done
    return render(request, "console/inbox.html", context)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_rows(
    request: Request,
    user: ConsoleUserDep,
    session: SessionDep,
    view: Annotated[str, Query(max_length=20)] = InboxView.QUEUES,
    queue: Annotated[str | None, Query(max_length=60)] = None,
    skill: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """The inbox section alone (views with counts, and the rows): what the live page swaps in."""
    context = await _inbox_context(session, user, view, queue, skill)
    return render(request, "console/_inbox.html", context)


async def _task(session: SessionDep, user: ConsoleUser, task_id: str) -> HumanTask | None:
    return await task_commands.find_task(
        session, retailer_id=user.agent.retailer_id, task_id=task_id
    )


async def _row_answer(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    task: HumanTask | None,
    task_id: str,
    message: str | None,
    ok: bool,
    back: str,
) -> Response:
    bell_of(request.app).ring()
    if not request.headers.get("HX-Request"):  # a plain form post: back to the page it was on
        return RedirectResponse(safe_next(back), status_code=status.HTTP_303_SEE_OTHER)
    if task is None:
        return render(request, "console/_gone_row.html", {"task_id": task_id})
    now = utcnow()
    agents = await list_agents(session, retailer_id=user.agent.retailer_id)
    return render(
        request,
        "console/_row.html",
        {
            "task": task,
            "agent": user.agent,
            "user": user,
            "now": now,
            "overdue": {task.id} if task_commands.is_overdue(task, now) else set(),
            "message": message,
            "ok": ok,
            "agents": agents,
        },
    )


@router.post("/tasks/{task_id:path}/claim", response_class=HTMLResponse)
async def claim(
    request: Request,
    task_id: TaskId,
    user: ConsoleActionDep,
    session: SessionDep,
    client: TemporalClientDep,
    back: BackDep = "/console",
) -> Response:
    """Claims the task for me; if someone was quicker, the row says who holds it."""
    return await _holder_change(
        request, session, client, user, task_id, back, task_commands.claim, "Claimed. It is yours."
    )


@router.post("/tasks/{task_id:path}/release", response_class=HTMLResponse)
async def release(
    request: Request,
    task_id: TaskId,
    user: ConsoleActionDep,
    session: SessionDep,
    client: TemporalClientDep,
    back: BackDep = "/console",
) -> Response:
    """Gives a task I hold back to its queue."""
    return await _holder_change(
        request,
        session,
        client,
        user,
        task_id,
        back,
        task_commands.release,
        "Released to the queue.",
    )


async def _holder_change(
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
    user: ConsoleUser,
    task_id: str,
    back: str,
    command: Callable[..., Awaitable[HumanTask]],
    done: str,
) -> Response:
    """Claim or release: sent to the workflow; a refusal is said in words on the row as it is."""
    task = await _task(session, user, task_id)
    message, ok = None, False
    if task is not None:
        try:
            task = await command(session, client, task=task, agent_id=user.agent.agent_id)
            message, ok = done, True
        except REFUSALS as exc:
            message = in_words(exc)
            task = await _task(session, user, task_id)
    return await _row_answer(request, session, user, task, task_id, message, ok, back)


@router.post("/tasks/{task_id:path}/reassign", response_class=HTMLResponse)
async def reassign(
    request: Request,
    task_id: TaskId,
    user: ConsoleActionDep,
    session: SessionDep,
    client: TemporalClientDep,
    to_agent_id: Annotated[str, Form(max_length=60)] = "",
    back: BackDep = "/console",
) -> Response:
    """Hands the task to another agent (supervisors, as in the JSON API)."""
    task = await _task(session, user, task_id)
    message, ok = None, False
    if task is not None:
        if not await may_reassign(session, agent=user.agent, task=task):
            message = "Only a supervisor can reassign tasks."
        elif (
            await find_agent(session, retailer_id=user.agent.retailer_id, agent_id=to_agent_id)
            is None
        ):
            message = f"There is no agent {to_agent_id!r}."
        else:
            try:
                task = await task_commands.reassign(
                    session,
                    client,
                    task=task,
                    to_agent_id=to_agent_id,
                    by_agent_id=user.agent.agent_id,
                )
                message, ok = f"Reassigned to {to_agent_id}.", True
            except REFUSALS as exc:
                message = in_words(exc)
                task = await _task(session, user, task_id)
    return await _row_answer(request, session, user, task, task_id, message, ok, back)
