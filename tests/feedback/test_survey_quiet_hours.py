"""Survey texts and calls keep the retailer's quiet hours, in the shopper's zone.

On a time-skipping server of its own (no ``shared_server`` mark): skipping an hour on the
session's shared server fires every timer the earlier modules left behind, and the skip's RPC
timed out under that load.
"""

import asyncio
from datetime import datetime, timedelta

import pytest

from tests.conftest import RetailerClient, Stack
from tests.feedback.test_surveys_api import PHONE, RULES, ZONE, ask, cadence, sent
from tests.support.api import eventually

pytestmark = [pytest.mark.both_databases]


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer(country="ES")
    assert (await retailer.put("/v1/alert-rules", RULES)).status_code == 201
    return retailer


async def test_a_survey_text_waits_out_the_quiet_hours_in_the_shoppers_zone(
    stack: Stack, retailer: RetailerClient
) -> None:
    now = (await stack.env.get_current_time()).astimezone(ZONE)  # the server's clock
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    quiet = cadence(start.strftime("%H:%M"), end.strftime("%H:%M"))
    assert (await retailer.put("/v1/cadence", quiet)).status_code == 201

    await ask(retailer, "sms")
    await asyncio.sleep(1)
    assert await sent(retailer, "survey") == []  # 11 pm somewhere is no time for a text
    await stack.env.sleep(timedelta(hours=1, minutes=1))  # the server's clock: past the hours

    [text] = await eventually(lambda: sent(retailer, "survey"), what="the text, in the morning")
    assert text["status"] == "sent" and text["to_address"] == PHONE
    assert datetime.fromisoformat(text["created_at"]) >= end.replace(second=0, microsecond=0)
