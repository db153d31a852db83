"""The task-inbox activities as fakes, under their real activity names, for workflow-logic tests.

Human-task workflows (carts' calls, feedback cases) open, remind, escalate and close inbox rows
through these four activities; the fake keeps what the workflow asked, with its workflow time.
"""

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import activity

from workflows.tasks.types import (
    EscalateTaskInput,
    EscalateTaskResult,
    OpenTaskInput,
    OpenTaskResult,
    RemindTaskInput,
    TaskChange,
)


@dataclass
class FakeTaskInbox:
    opened: list[OpenTaskInput] = field(default_factory=list)
    reminded: list[RemindTaskInput] = field(default_factory=list)
    escalated: list[EscalateTaskInput] = field(default_factory=list)
    closed: list[TaskChange] = field(default_factory=list)

    @activity.defn(name="open_task")
    async def open_task(self, input: OpenTaskInput) -> OpenTaskResult:
        self.opened.append(input)
        return OpenTaskResult(queue=input.spec.queue or "default", skills=[])

    @activity.defn(name="remind_task")
    async def remind_task(self, input: RemindTaskInput) -> None:
        self.reminded.append(input)

    @activity.defn(name="escalate_task")
    async def escalate_task(self, input: EscalateTaskInput) -> EscalateTaskResult:
        self.escalated.append(input)
        return EscalateTaskResult(queue=f"escalated-{input.level}", priority=1 + input.level)

    @activity.defn(name="close_task")
    async def close_task(self, change: TaskChange) -> None:
        self.closed.append(change)

    def activities(self) -> list[object]:
        return [self.open_task, self.remind_task, self.escalate_task, self.close_task]

    def opened_at(self) -> list[datetime]:
        return [t.at for t in self.opened]
