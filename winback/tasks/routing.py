"""Skills routing: a task goes to the queue whose skills best match what it needs.

Skills read ``category:<product category>`` and ``lang:<language>``; a task needs the categories
of the cart's items and the shopper's language. No match: the default queue.
"""

import re
from collections.abc import Sequence
from typing import Any

from winback.customers.models import Customer
from winback.tasks.agent_models import DEFAULT_QUEUE, Queue


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_\-]+", "-", text.strip().lower()).strip("-")[:60]


def skills_for_cart(items: Sequence[dict[str, Any]], customer: Customer | None) -> set[str]:
    needed = {f"category:{_slug(i['category'])}" for i in items if i.get("category")}
    if customer is not None and customer.locale:
        needed.add(f"lang:{_slug(customer.locale.replace('_', '-').split('-')[0])}")
    return needed


def choose_queue(queues: list[Queue], needed: list[str], requested: str | None = None) -> str:
    """The requested queue if it exists, else the best skills match, else the default queue."""
    names = {q.name for q in queues}
    if requested and requested in names:
        return requested
    best, best_score = DEFAULT_QUEUE, 0
    for queue in sorted(queues, key=lambda q: q.name):
        score = len(set(queue.skills) & set(needed))
        if score > best_score:
            best, best_score = queue.name, score
    return best
