"""Which agent queue a business unit's case tasks go to, said out loud.

A case task asks for the queue named after its business unit; without such a queue it lands in
``default``, where agents of other units may work it. The rules' responses show the queue each
unit routes to now and warn about every unit without its own queue.
"""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.feedback.alert_rules import AlertRulesPublic
from winback.tasks.agent_models import DEFAULT_QUEUE, Queue


async def with_task_queues(
    session: AsyncSession, *, retailer_id: str, rules: AlertRulesPublic
) -> AlertRulesPublic:
    units = [unit.id for unit in rules.business_units]
    existing = set(
        await session.exec(
            select(Queue.name).where(Queue.retailer_id == retailer_id, col(Queue.name).in_(units))
        )
    )
    queues = {unit: unit if unit in existing else DEFAULT_QUEUE for unit in units}
    warnings = [
        f"business_units.{unit}: no agent queue named {unit!r}, so its case tasks go to queue "
        f"{DEFAULT_QUEUE!r}; create it with PUT /v1/queues/{unit}"
        for unit, queue in queues.items()
        if queue != unit
    ]
    return rules.model_copy(update={"task_queues": queues, "warnings": warnings})
