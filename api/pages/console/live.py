"""The console's event stream (server-sent events): the inbox changed, or a shopper is calling.

The stream asks the database every ``POLL_SECONDS`` (and at once when this process rings the
bell) for the inbox's version and for new screen pops. Polling the database, not an in-process
broadcast, is what lets it see tasks the worker opens and claims made through other API
processes. Events:

- ``inbox``: something in the retailer's inbox changed; the page fetches its rows again.
- ``screenpop``: the HTML of the caller's panel, for the agents of the queue the call goes to.
- ``signed-out``: the session expired; the page goes to the sign-in page.
"""

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from api.deps import get_session_factory
from api.live import POLL_SECONDS, bell_of
from api.pages.console.auth import SESSION_HOURS, ConsoleUserDep
from api.pages.console.tasks import panel_for
from api.pages.console.templating import templates
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.tasks.inbox import inbox_version
from winback.tasks.screen_pops import latest_pop_id, pops_for

router = APIRouter(prefix="/console", include_in_schema=False)
HEARTBEAT_SECONDS = 15


def sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@router.get("/events")
async def events(
    request: Request,
    user: ConsoleUserDep,
    factory: Annotated[SessionFactory, Depends(get_session_factory)],
) -> StreamingResponse:
    """The live stream one open console page listens to."""
    agent = user.agent
    expires_at = user.web.expires_at(SESSION_HOURS * 3600)
    bell = bell_of(request.app)
    async with factory() as session:
        version = await inbox_version(session, retailer_id=agent.retailer_id)
        last_pop = await latest_pop_id(session, retailer_id=agent.retailer_id)

    async def stream() -> AsyncIterator[str]:
        nonlocal version, last_pop
        yield "retry: 2000\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            if time.time() >= expires_at:
                yield sse("signed-out", "/console/sign-in")
                return
            async with factory() as session:
                pops = await pops_for(session, agent=agent, after_id=last_pop)
                for pop in pops:
                    assert pop.id is not None
                    last_pop = pop.id
                    panel = await panel_for(session, agent.retailer_id, pop.customer_id)
                    html = templates.get_template("console/_screen_pop.html").render(
                        pop=pop, customer=panel, now=utcnow()
                    )
                    yield sse("screenpop", html)
                now_version = await inbox_version(session, retailer_id=agent.retailer_id)
            changed = now_version != version
            if changed:
                version = now_version
                yield sse("inbox", "changed")
            if pops or changed:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ": still here\n\n"  # keeps proxies from closing an idle stream
            await bell.wait(POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
