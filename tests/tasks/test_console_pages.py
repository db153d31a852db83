"""The agents' console over HTTP (no browser): sign-in and sessions, CSRF, retailer scoping,
and the signed inbound-call webhook that pops the caller's panel. The browser tests in
``tests/browser/console/`` drive the same pages in Chromium."""

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import RetailerClient, Stack
from tests.support.agents import AgentClient, add_agent
from tests.support.api import eventually
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.tasks.screen_pop_models import ScreenPop

CALL_CADENCE = cadence({"channel": "agent_call", "delay": "1h", "sla": "4h"})
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(stack: Stack, agent: AgentClient) -> httpx.AsyncClient:
    """A browser-like client (its own cookie jar) signed in as ``agent``."""
    browser = httpx.AsyncClient(transport=stack.api._transport, base_url="http://test")
    page = await browser.get("/console/sign-in")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    signed = await browser.post(
        "/console/sign-in", data={"token": agent.token, "csrf_token": csrf.group(1)}
    )
    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    return browser


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None
    return found.group(1)


async def open_call_task(retailer: RetailerClient, agent: AgentClient) -> dict[str, Any]:
    await retailer.event(
        "c1",
        "item_added",
        items=items(450.0),
        customer=SHOPPER,
        consent=ALL_CONSENT,
        page="/products/boots",
    )
    await retailer.stack.env.sleep(timedelta(hours=2))
    (task,) = await eventually(agent.tasks, what="the call task")
    return task


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await retailer.set_cadence(CALL_CADENCE)
    return retailer


async def test_pages_need_a_session_and_a_wrong_token_is_refused_in_words(
    stack: Stack, acme: RetailerClient
) -> None:
    anonymous = await stack.api.get("/console?view=mine")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/sign-in?next=%2Fconsole%3Fview%3Dmine"

    page = await stack.api.get("/console/sign-in")
    wrong = await stack.api.post(
        "/console/sign-in", data={"token": "wba_nope", "csrf_token": csrf_of(page.text)}
    )
    assert wrong.status_code == 401
    assert "not an agent&#39;s token" in wrong.text

    forged = await stack.api.post("/console/sign-in", data={"token": "x", "csrf_token": "forged"})
    assert forged.status_code == 403


@pytest.mark.both_databases
async def test_an_agent_signs_in_works_a_task_and_signs_out(
    stack: Stack, acme: RetailerClient
) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    browser = await sign_in(stack, ana)
    inbox = await browser.get("/console")
    assert inbox.status_code == 200
    assert task["title"] in inbox.text

    no_token = await browser.post(f"/console/tasks/{task['id']}/claim", data={})
    assert no_token.status_code == 403
    assert (await ana.task(task["id"]))["status"] == "open"

    claimed = await browser.post(
        f"/console/tasks/{task['id']}/claim",
        data={"csrf_token": csrf_of(inbox.text)},
        headers={"HX-Request": "true"},
    )
    assert "Claimed. It is yours." in claimed.text
    assert (await ana.task(task["id"]))["claimed_by"] == "ana"

    page = await browser.get(f"/console/tasks/{task['id']}")
    assert "Item 0" in page.text and "/products/boots" in page.text
    refused = await browser.post(
        f"/console/tasks/{task['id']}/complete",
        data={"csrf_token": csrf_of(page.text), "outcome": "teleported"},
    )
    assert refused.status_code == 409
    assert "The workflow does not accept that outcome." in refused.text
    done = await browser.post(
        f"/console/tasks/{task['id']}/complete",
        data={"csrf_token": csrf_of(page.text), "outcome": "voicemail", "notes": "left one"},
    )
    assert done.status_code == 303
    assert (await ana.task(task["id"]))["status"] == "done"
    again = await browser.post(  # a double submit: the applied result, not an error
        f"/console/tasks/{task['id']}/complete",
        data={"csrf_token": csrf_of(page.text), "outcome": "voicemail", "notes": "left one"},
    )
    assert again.status_code == 303
    late = await browser.post(  # a different outcome on a finished task is refused in words
        f"/console/tasks/{task['id']}/complete",
        data={"csrf_token": csrf_of(page.text), "outcome": "no_answer"},
    )
    assert late.status_code == 409
    assert re.search(r"already finished|no longer open", late.text), late.text

    out = await browser.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await browser.get("/console")).status_code == 303
    await browser.aclose()


async def test_another_retailers_agent_sees_none_of_it(stack: Stack, acme: RetailerClient) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    other = await stack.retailer("Other")
    eve = await add_agent(other, "eve", is_supervisor=True)
    browser = await sign_in(stack, eve)
    inbox = await browser.get("/console?view=all")
    assert task["title"] not in inbox.text
    assert (await browser.get(f"/console/tasks/{task['id']}")).status_code == 404
    claim = await browser.post(
        f"/console/tasks/{task['id']}/claim", data={"csrf_token": csrf_of(inbox.text)}
    )
    assert claim.status_code == 303
    assert (await ana.task(task["id"]))["status"] == "open"
    lookup = await browser.get("/console/customers", params={"q": SHOPPER["phone"]})
    assert lookup.status_code == 404
    await browser.aclose()


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


async def test_an_inbound_call_is_popped_once_and_queued_or_forwarded(
    stack: Stack, acme: RetailerClient
) -> None:
    ana = await add_agent(acme, "ana")
    await open_call_task(acme, ana)
    path = f"/v1/webhooks/twilio/{acme.id}/voice-inbound"
    form = {"CallSid": "CA" + "1" * 32, "From": "(415) 555-2671", "To": "+14155550000"}
    unsigned = await stack.api.post(path, data=form)
    assert unsigned.status_code == 403

    token = "test-twilio-auth-token"
    providers = await acme.put("/v1/providers", {"twilio_auth_token": token})
    assert providers.status_code in (200, 422), providers.text
    if providers.status_code == 422:  # a token alone is not a whole provider: set an account
        providers = await acme.put(
            "/v1/providers",
            {
                "twilio_account_sid": "AC" + "0" * 32,
                "twilio_auth_token": token,
                "twilio_from_number": "+14155550000",
            },
        )
        assert providers.status_code == 200, providers.text
    url = "http://localhost:8000" + path
    headers = {"X-Twilio-Signature": twilio_signature(token, url, form)}
    answered = await stack.api.post(path, data=form, headers=headers)
    assert answered.status_code == 200, answered.text
    assert "<Enqueue>default</Enqueue>" in answered.text
    again = await stack.api.post(path, data=form, headers=headers)
    assert again.status_code == 200
    async with stack.sessions() as session:
        from sqlmodel import select

        pops = (await session.exec(select(ScreenPop))).all()
    assert len(pops) == 1 and pops[0].caller == "+14155552671"
    assert pops[0].customer_id is not None

    await acme.put("/v1/providers", {"inbound_call_forward_to": "+1 415 555 0199"})
    form["CallSid"] = "CA" + "2" * 32
    headers = {"X-Twilio-Signature": twilio_signature(token, url, form)}
    forwarded = await stack.api.post(path, data=form, headers=headers)
    assert "<Dial>+14155550199</Dial>" in forwarded.text


@pytest.mark.both_databases
async def test_the_supervisor_sees_queue_load_past_sla_escalations_and_agents(
    stack: Stack, acme: RetailerClient
) -> None:
    ana = await add_agent(acme, "ana")
    sue = await add_agent(acme, "sue", is_supervisor=True, email="sue@acme.example")
    queue = await acme.put("/v1/queues/default", {"supervisor_id": "sue"})
    assert queue.status_code in (200, 201), queue.text
    task = await open_call_task(acme, ana)

    agent_view = await sign_in(stack, ana)
    assert (await agent_view.get("/console/supervisor")).status_code == 403
    inbox = await agent_view.get("/console?view=all")  # not a view agents have: my queues
    assert 'data-view="all"' not in inbox.text
    await agent_view.aclose()

    await stack.env.sleep(timedelta(hours=5))  # past the 4 h SLA: the task escalates

    async def escalated() -> bool:
        return int((await ana.task(task["id"]))["escalation_level"]) > 0

    await eventually(escalated, what="the escalation")
    supervisor = await sign_in(stack, sue)
    page = await supervisor.get("/console/supervisor")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "Queue load" in text and '<th scope="row">default</th><td>1</td>' in text
    assert task["title"] in text and "Escalated \N{MULTIPLICATION SIGN}1" in text
    assert "level 1" in text
    inbox = await supervisor.get("/console?view=all")
    assert 'data-view="all"' in inbox.text and "Overdue" in inbox.text
    bo = await add_agent(acme, "bo")
    handed = await supervisor.post(
        f"/console/tasks/{task['id']}/reassign",
        data={"csrf_token": csrf_of(inbox.text), "to_agent_id": bo.id},
    )
    assert handed.status_code == 303
    assert (await ana.task(task["id"]))["claimed_by"] == "bo"
    await supervisor.aclose()


@pytest.mark.both_databases
async def test_a_call_pops_for_the_queue_its_cart_routes_to_and_for_supervisors(
    stack: Stack, acme: RetailerClient
) -> None:
    shoes = await acme.put("/v1/queues/shoes", {"skills": ["category:shoes"]})
    assert shoes.status_code in (200, 201), shoes.text
    ana = await add_agent(acme, "ana", queues=["shoes"])
    bo = await add_agent(acme, "bo", queues=["default"])
    sue = await add_agent(acme, "sue", is_supervisor=True, queues=[])
    await acme.event(
        "c9",
        "item_added",
        items=[{"sku": "B1", "name": "Boot", "price": 90.0, "category": "Shoes"}],
        customer=SHOPPER,
        consent=ALL_CONSENT,
    )
    async with stack.sessions() as session:
        from winback.platform.clock import utcnow
        from winback.retailers.models import Retailer
        from winback.tasks.inbox import find_agent
        from winback.tasks.screen_pops import pops_for, record_inbound_call

        retailer = await session.get(Retailer, acme.id)
        assert retailer is not None
        pop = await record_inbound_call(
            session, retailer=retailer, call_sid="CA9", caller="+1 415-555-2671", at=utcnow()
        )
        assert pop.queue == "shoes" and pop.customer_id is not None
        unknown = await record_inbound_call(
            session, retailer=retailer, call_sid="CA10", caller="anonymous", at=utcnow()
        )
        assert unknown.customer_id is None and unknown.queue == "default"
        seen = {}
        for agent in (ana, bo, sue):
            row = await find_agent(session, retailer_id=acme.id, agent_id=agent.id)
            assert row is not None
            seen[agent.id] = [p.call_sid for p in await pops_for(session, agent=row, after_id=0)]
    assert seen == {"ana": ["CA9"], "bo": ["CA10"], "sue": ["CA9", "CA10"]}


async def test_case_tasks_offer_the_taxonomy_and_resolution_codes_as_choices(stack: Stack) -> None:
    from tests.feedback.test_cases_api import ANA, RULES, next_task, work

    acme = await stack.retailer("Acme")
    assert (await acme.put("/v1/alert-rules", RULES)).status_code == 201
    assert (await acme.put("/v1/queues/store-a", {})).status_code == 201
    ana = await add_agent(acme, "ana", queues=["store-a"])
    posted = await acme.post(
        "/v1/feedback",
        {
            "idempotency_key": "survey-1",
            "channel": "email",
            "scale": "nps",
            "score": 3,
            "comment": "My order came two weeks late",
            "customer": ANA,
            "consent": {"email": True},
            "business_unit": "store-a",
        },
    )
    assert posted.status_code == 201, posted.text
    case_id = posted.json()["case_id"]
    await work(ana, await next_task(stack, ana, case_id, "contact_customer"), outcome="reached")

    browser = await sign_in(stack, ana)
    cause = await next_task(stack, ana, case_id, "root_cause")
    page = await browser.get(f"/console/tasks/{cause['id']}")
    assert '<select id="category" name="category" required>' in page.text
    assert all(f'value="{c}"' in page.text for c in RULES["root_causes"])
    assert "two weeks late" in page.text  # the answer that opened the case, beside the form
    csrf = csrf_of(page.text)
    await browser.post(f"/console/tasks/{cause['id']}/claim", data={"csrf_token": csrf})
    allowed = cause["allowed_outcomes"][0]
    refused = await browser.post(
        f"/console/tasks/{cause['id']}/complete",
        data={"csrf_token": csrf, "outcome": allowed, "category": "teleportation"},
    )
    assert refused.status_code == 409
    assert "The workflow needs more about this outcome." in refused.text
    assert "data.category must be one of" in refused.text
    done = await browser.post(
        f"/console/tasks/{cause['id']}/complete",
        data={
            "csrf_token": csrf,
            "outcome": allowed,
            "category": "delivery_late",
            "facts": "Carrier lost the parcel\nWarehouse shipped late",
        },
    )
    assert done.status_code == 303, done.text

    resolution = await next_task(stack, ana, case_id, "resolution")
    page = await browser.get(f"/console/tasks/{resolution['id']}")
    assert all(f'value="{c}"' in page.text for c in RULES["resolution_codes"])
    assert "Won back?" in page.text
    await browser.post(f"/console/tasks/{resolution['id']}/claim", data={"csrf_token": csrf})
    no_answer = await browser.post(
        f"/console/tasks/{resolution['id']}/complete",
        data={
            "csrf_token": csrf,
            "outcome": resolution["allowed_outcomes"][0],
            "resolution_code": "refund",
        },
    )
    assert "data.won_back must be true or false" in no_answer.text
    won = await browser.post(
        f"/console/tasks/{resolution['id']}/complete",
        data={
            "csrf_token": csrf,
            "outcome": resolution["allowed_outcomes"][0],
            "resolution_code": "refund",
            "won_back": "yes",
        },
    )
    assert won.status_code == 303, won.text

    async def resolved() -> dict[str, Any] | None:
        case = (await acme.get(f"/v1/cases/{case_id}")).json()
        return case if case["won_back"] is not None else None

    case = await eventually(resolved, what="the case's resolution")
    assert (case["root_cause"], case["facts"], case["resolution_code"], case["won_back"]) == (
        "delivery_late",
        ["Carrier lost the parcel", "Warehouse shipped late"],
        "refund",
        True,
    )
    await browser.aclose()


@pytest.mark.both_databases
async def test_the_inbox_version_moves_with_every_change_a_live_page_must_show(
    stack: Stack, acme: RetailerClient
) -> None:
    from winback.tasks.inbox import inbox_version

    async def version() -> tuple[int, int, int]:
        async with stack.sessions() as session:
            return await inbox_version(session, retailer_id=acme.id)

    assert await version() == (0, 0, 0)
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    opened = await version()
    assert opened[0] == 1
    assert (await ana.post(f"/v1/tasks/{task['id']}/claim")).status_code == 200
    claimed = await version()
    assert claimed != opened
    await stack.env.sleep(timedelta(hours=5))  # past the SLA: escalated

    async def moved() -> bool:
        return await version() != claimed

    await eventually(moved, what="the escalation to move the version")
