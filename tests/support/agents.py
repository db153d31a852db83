"""Agents in the API tests: a client that sends its token, and making one."""

from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import RetailerClient, Stack


@dataclass
class AgentClient:
    stack: Stack
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Agent-Token": self.token}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.stack.api.get(path, headers=self.headers, **kwargs)

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.stack.api.post(path, headers=self.headers, json=json)

    async def tasks(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.get("/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return list(response.json())

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


async def add_agent(retailer: RetailerClient, agent_id: str, **fields: Any) -> AgentClient:
    response = await retailer.post("/v1/agents", {"id": agent_id, "name": agent_id, **fields})
    assert response.status_code == 201, response.text
    return AgentClient(retailer.stack, agent_id, response.json()["token"])
