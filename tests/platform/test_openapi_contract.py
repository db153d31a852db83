"""The OpenAPI document tells the truth: schemathesis generates requests for every operation
from the document, sends them to the real app (SQLite, the time-skipping Temporal server, a
worker) as a retailer, an agent and the admin, and checks that no answer is a 5xx, every status
is declared and every body matches its declared schema.

A bounded number of examples per operation keeps it well under a minute; the generation is
seeded, so a failure reproduces.
"""

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import ADMIN_TOKEN, Stack
from tests.support.agents import add_agent

EXAMPLES_PER_OPERATION = 3
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _cases(operation: Any) -> list[Any]:
    drawn: list[Any] = []

    @seed(20261201)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def draw(case: Any) -> None:
        drawn.append(case)

    draw()
    return drawn


async def test_every_answer_matches_the_document(stack: Stack) -> None:
    retailer = await stack.retailer()
    agent = await add_agent(retailer, "ana")
    credentials = {
        "X-API-Key": retailer.api_key,
        "X-Agent-Token": agent.token,
        "X-Admin-Token": ADMIN_TOKEN,
    }
    document = (await stack.api.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for case in _cases(operation):
            kwargs = case.as_transport_kwargs(base_url="http://test")
            headers = {
                k: v for k, v in kwargs.get("headers", {}).items() if k.lower() != "connection"
            }
            headers.update(credentials)
            request: dict[str, Any] = {
                "method": kwargs["method"],
                "url": kwargs["url"],
                "headers": headers,
                "params": kwargs.get("params") or None,
            }
            if "json" in kwargs:
                request["json"] = kwargs["json"]
            elif "data" in kwargs:
                data = kwargs["data"]
                request["content" if isinstance(data, bytes | str) else "data"] = data
            try:
                response = await stack.api.request(**request)
            except httpx.InvalidURL as err:  # a path httpx itself refuses to send
                pytest.fail(f"{operation.label}: {err}")
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, FailureGroup) as err:
                failures.append(f"{operation.label} -> {response.status_code}: {err}"[:1500])
    assert sent > 100
    assert failures == []
