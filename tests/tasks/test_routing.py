"""Skills routing of agent tasks (pure functions: no server, no database)."""

from winback.customers.models import Customer
from winback.tasks.agent_models import Queue
from winback.tasks.routing import choose_queue, skills_for_cart


def _queue(name: str, *skills: str) -> Queue:
    return Queue(retailer_id="acme", name=name, skills=list(skills))


QUEUES = [
    _queue("default"),
    _queue("shoes-es", "category:shoes", "lang:es"),
    _queue("shoes", "category:shoes"),
    _queue("spanish", "lang:es"),
]


def test_a_cart_needs_its_items_categories_and_the_shoppers_language() -> None:
    items = [
        {"sku": "1", "category": "Running Shoes"},
        {"sku": "2", "category": "running shoes "},
        {"sku": "3", "category": "Socks & Tights"},
        {"sku": "4"},
    ]

    needed = skills_for_cart(items, Customer(retailer_id="acme", locale="es_MX"))

    assert needed == {"category:running-shoes", "category:socks-tights", "lang:es"}


def test_without_a_locale_only_categories_are_needed() -> None:
    assert skills_for_cart([{"category": "Bags"}], Customer(retailer_id="acme")) == {
        "category:bags"
    }
    assert skills_for_cart([], None) == set()


def test_the_queue_matching_most_skills_wins() -> None:
    assert choose_queue(QUEUES, ["category:shoes", "lang:es"]) == "shoes-es"
    assert choose_queue(QUEUES, ["lang:es"]) == "shoes-es"  # a tie goes to the first by name
    assert choose_queue(QUEUES, ["lang:es", "category:bags"]) == "shoes-es"


def test_no_match_goes_to_the_default_queue() -> None:
    assert choose_queue(QUEUES, ["lang:fr"]) == "default"
    assert choose_queue([], ["lang:es"]) == "default"


def test_a_requested_queue_skips_routing_when_it_exists() -> None:
    assert choose_queue(QUEUES, ["category:shoes", "lang:es"], requested="spanish") == "spanish"
    assert choose_queue(QUEUES, ["category:shoes"], requested="gone") == "shoes"
