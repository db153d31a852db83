"""The rules say which agent queue each business unit's case tasks go to, and warn when a unit
has no queue of its own (its tasks would silently land in ``default``)."""

from tests.conftest import Stack

RULES = {
    "business_units": [
        {"id": "store-a", "name": "Store A", "owner": {"name": "Olga", "email": "o@a.test"}},
        {"id": "store-b", "name": "Store B", "owner": {"name": "Rui", "email": "r@a.test"}},
    ],
    "default_business_unit": "store-a",
}


async def test_a_unit_without_its_own_queue_is_named_in_a_warning(stack: Stack) -> None:
    retailer = await stack.retailer()
    assert (await retailer.put("/v1/queues/store-b", {"skills": []})).status_code in (200, 201)

    saved = await retailer.put("/v1/alert-rules", RULES)

    assert saved.status_code == 201, saved.text
    body = saved.json()
    assert body["task_queues"] == {"store-a": "default", "store-b": "store-b"}
    [warning] = body["warnings"]
    assert "store-a" in warning and "'default'" in warning and "PUT /v1/queues/store-a" in warning


async def test_creating_the_queue_clears_the_warning(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.put("/v1/alert-rules", RULES)
    await retailer.put("/v1/queues/store-a", {"skills": []})
    await retailer.put("/v1/queues/store-b", {"skills": []})

    body = (await retailer.get("/v1/alert-rules")).json()

    assert body["task_queues"] == {"store-a": "store-a", "store-b": "store-b"}
    assert body["warnings"] == []
