"""Ending every workflow a test started, so nothing of it runs on in later tests.

On the shared time-skipping server a workflow a test left running (a cart waiting out its 7
days, a case waiting for an agent) would keep waking up whenever a later test skips time, with
workflow tasks on a task queue nobody polls any more. The stack's client records each workflow
it starts (the API starts them all through it); the fixture terminates the ones still running
when the test ends.
"""

import contextlib
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.service import RPCError


class StartedWorkflows(Interceptor):
    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recorder(next, self.ids)

    def client(self, base: Client) -> Client:
        """``base`` (its connection and interceptors) recording the workflows it starts."""
        config = base.config()
        config["interceptors"] = [*config["interceptors"], self]
        return Client(**config)

    async def terminate_running(self, client: Client) -> None:
        for workflow_id in dict.fromkeys(self.ids):
            with contextlib.suppress(RPCError):  # already finished: nothing to end
                await client.get_workflow_handle(workflow_id).terminate("the test is over")


class _Recorder(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, ids: list[str]) -> None:
        super().__init__(next)
        self._ids = ids

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        self._ids.append(input.id)  # signal-with-start comes this way too
        return await super().start_workflow(input)
