"""``upsert_customer`` for many events at once, in set statements (the ingestion batches).

A cart's first event usually carries the shopper's contact. Through the ORM, matching and
updating its customer was a unit of work per event (up to three selects, a flush of the
customer, a flush per consent change): most of a first event's CPU. Here the customers of a
whole batch of one retailer are read in one statement, matched and changed in memory by exactly
``upsert_customer``'s rules (the retailer's id, else email, else phone; whatever the event tells
overwrites; a consent flag that changes is recorded with its source), and written with one
insert of the new ones, one update per set of changed columns and one insert of the consent
history. Events apply in order, so a customer made or changed by an earlier event of the batch
is the one a later event finds.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from winback.customers.consent_models import CONSENT_CHANNELS, ConsentChange
from winback.customers.identity import ConsentIn, CustomerIn
from winback.customers.models import Customer

CUSTOMER: Table = Customer.__table__  # type: ignore[attr-defined]
CONSENT_CHANGE: Table = ConsentChange.__table__  # type: ignore[attr-defined]
MATCH_FIELDS = ("external_id", "email", "phone")  # in the order ``upsert_customer`` tries them
GIVEN_FIELDS = ("email", "phone", "name", "locale", "timezone")
COLUMNS = (
    "id",
    *MATCH_FIELDS,
    "name",
    "locale",
    "timezone",
    *(f"consent_{c}" for c in CONSENT_CHANNELS),
    "updated_at",
)


@dataclass(eq=False)
class CustomerState:
    """One customer as the batch leaves it; ``id`` is None until a new one is inserted."""

    values: dict[str, Any]
    new: bool = False
    changed: set[str] = field(default_factory=set)

    @property
    def id(self) -> int | None:
        value = self.values.get("id")
        return None if value is None else int(value)

    @property
    def has_contact(self) -> bool:
        return bool(self.values.get("email") or self.values.get("phone"))

    def set(self, column: str, value: Any) -> None:
        if self.values.get(column) != value:
            self.values[column] = value
            self.changed.add(column)


@dataclass
class _ConsentChange:
    customer: CustomerState
    channel: str
    granted: bool
    at: datetime


class CustomerBatch:
    """The customers one batch of one retailer's events touches, matched and written at once.

    ``load`` reads every customer the batch could meet; ``upsert`` applies one event's contact
    and consent (in memory); ``write`` stores everything in the caller's transaction."""

    def __init__(self, retailer_id: str, rows: list[dict[str, Any]], source: str) -> None:
        self.retailer_id = retailer_id
        self.source = source
        self._by_id: dict[int, CustomerState] = {}
        # Per match field and value, the customers that had it, oldest first: a match is the
        # first that still has it (the lowest id, as the ORM's query found).
        self._index: dict[str, dict[str, list[CustomerState]]] = {f: {} for f in MATCH_FIELDS}
        self._new: list[CustomerState] = []
        self._consents: list[_ConsentChange] = []
        for row in sorted(rows, key=lambda r: r["id"]):  # the lowest id wins a shared email
            state = CustomerState(values=row)
            self._by_id[row["id"]] = state
            self._remember(state)

    @classmethod
    async def load(
        cls,
        conn: AsyncConnection,
        retailer_id: str,
        *,
        ids: set[int],
        given: list[CustomerIn],
        source: str = "cart_event",
    ) -> "CustomerBatch":
        """Reads the customers with these ids and those any of ``given`` could match."""
        keys = {f: {v for g in given if (v := getattr(g, _given_name(f)))} for f in MATCH_FIELDS}
        conditions = [CUSTOMER.c.id.in_(ids)] if ids else []
        conditions += [CUSTOMER.c[f].in_(values) for f, values in keys.items() if values]
        rows: list[dict[str, Any]] = []
        if conditions:
            result = await conn.execute(
                select(*(CUSTOMER.c[c] for c in COLUMNS)).where(
                    CUSTOMER.c.retailer_id == retailer_id, or_(*conditions)
                )
            )
            rows = [dict(zip(COLUMNS, row, strict=True)) for row in result]
        return cls(retailer_id, rows, source)

    def known(self, customer_id: int | None) -> CustomerState | None:
        """A customer this batch read or made, by id."""
        return None if customer_id is None else self._by_id.get(customer_id)

    def upsert(
        self,
        existing_id: int | None,
        given: CustomerIn | None,
        consent: ConsentIn | None,
        at: datetime,
    ) -> CustomerState:
        """``upsert_customer``: the cart's customer, else the one ``given`` matches, else a new
        one; then what the event tells, and the consent changes with their history."""
        customer = self.known(existing_id)
        if customer is None and given is not None:
            customer = self._match(given)
        if customer is None:
            customer = CustomerState(
                values={
                    "id": None,
                    **dict.fromkeys((*MATCH_FIELDS, "name", "locale", "timezone")),
                    **{f"consent_{c}": False for c in CONSENT_CHANNELS},
                },
                new=True,
            )
            self._new.append(customer)
        if given is not None:
            for name in GIVEN_FIELDS:
                value = getattr(given, name)
                if value is not None:
                    customer.set(name, value)
            if given.id is not None:
                customer.set("external_id", given.id)
            self._remember(customer)
        customer.values["updated_at"] = at
        customer.changed.add("updated_at")
        if consent is not None:
            for channel in CONSENT_CHANNELS:
                granted = getattr(consent, channel)
                column = f"consent_{channel}"
                if granted is not None and customer.values[column] != granted:
                    customer.set(column, granted)
                    self._consents.append(_ConsentChange(customer, channel, granted, at))
        return customer

    async def write(self, conn: AsyncConnection) -> None:
        """Inserts the new customers (their ids are then known), updates the changed ones and
        records the consent changes."""
        if self._new:
            columns = [c for c in COLUMNS if c != "id"]
            made = await conn.execute(
                insert(CUSTOMER).returning(CUSTOMER.c.id, sort_by_parameter_order=True),
                [
                    {"retailer_id": self.retailer_id, **{c: s.values[c] for c in columns}}
                    for s in self._new
                ],
            )
            for state, (pk,) in zip(self._new, made, strict=True):
                state.values["id"] = pk
                state.changed.clear()
                self._by_id[pk] = state
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for state in self._by_id.values():
            if state.changed:
                names = tuple(sorted(state.changed))
                by_columns[names].append(
                    {"pk": state.id, **{f"new_{c}": state.values[c] for c in names}}
                )
                state.changed.clear()
        for names, params in by_columns.items():
            statement = (
                update(CUSTOMER)
                .where(CUSTOMER.c.id == bindparam("pk"))
                .values({c: bindparam(f"new_{c}") for c in names})
            )
            await conn.execute(statement, params)
        if self._consents:
            await conn.execute(
                insert(CONSENT_CHANGE),
                [
                    {
                        "retailer_id": self.retailer_id,
                        "customer_id": change.customer.id,
                        "channel": change.channel,
                        "granted": change.granted,
                        "source": self.source,
                        "at": change.at,
                    }
                    for change in self._consents
                ],
            )
            self._consents.clear()
        self._new.clear()

    def _match(self, given: CustomerIn) -> CustomerState | None:
        for name in MATCH_FIELDS:
            value = getattr(given, _given_name(name))
            for state in self._index[name].get(value, []) if value else []:
                if state.values.get(name) == value:
                    return state
        return None

    def _remember(self, state: CustomerState) -> None:
        for name in MATCH_FIELDS:
            value = state.values.get(name)
            if value:
                states = self._index[name].setdefault(value, [])
                if state not in states:
                    states.append(state)


def _given_name(column: str) -> str:
    """``CustomerIn`` calls the retailer's id ``id``; the table calls it ``external_id``."""
    return "id" if column == "external_id" else column
