"""Connecting to Temporal, and registering the search attributes our workflows upsert."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from workflows import search_attributes

log = logging.getLogger(__name__)

# One TypeAdapter per payload type for the whole process. The SDK builds a new payload converter
# for every workflow instance (and again after every cache eviction), and pydantic's own converter
# keeps its adapter cache on that instance, so each new cart paid for building the adapters of
# its input, its activities' results and its signals again: a large part of a cart's first
# workflow task. Shared here, and with the workflow types passed through the sandbox (see
# ``winback.composition.worker_tuning``), each adapter is built once.
_SHARED_TYPE_ADAPTERS = lru_cache(maxsize=1024)(TypeAdapter)


class _SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic's JSON converter with the process-wide adapter cache instead of its own."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter: Any = _SHARED_TYPE_ADAPTERS


class PayloadConverter(CompositePayloadConverter):
    """``temporalio.contrib.pydantic``'s converter, same wire format, shared adapters."""

    def __init__(self) -> None:
        json_converter = _SharedAdaptersJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


# Pydantic's converter handles the datetimes in our workflow dataclasses; every client (API,
# worker, tests) must use the same one.
DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)

_INDEXED_TYPES = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "DOUBLE": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "TEXT": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
}


def search_attribute_flags() -> list[str]:
    """``--search-attribute NAME=Type`` arguments for ``temporal server start-dev``."""
    names = {"KEYWORD": "Keyword", "DOUBLE": "Double", "INT": "Int", "TEXT": "Text"}
    return [
        arg
        for key in search_attributes.ALL
        for arg in ("--search-attribute", f"{key.name}={names[key.indexed_value_type.name]}")
    ]


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Adds any of our search attributes the server does not know yet (idempotent)."""
    try:
        known = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        existing = set(known.custom_attributes)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping server can't list
            raise
        existing = set()
    missing: dict[str, IndexedValueType.ValueType] = {
        key.name: _INDEXED_TYPES[key.indexed_value_type.name]
        for key in search_attributes.ALL
        if key.name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
        log.info("registered search attributes %s", sorted(missing))


@lru_cache
def _runtime_with_metrics(port: int, host: str = "127.0.0.1") -> Runtime:
    """One per process: the Prometheus endpoint binds its port once, however often we connect.
    Loopback by default: the SDK's metrics (task queues, schedule-to-start latencies) are for
    the scraper on this host, not for anyone who can reach the machine."""
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    )


async def connect(
    address: str,
    namespace: str,
    metrics_port: int | None = None,
    *,
    metrics_host: str = "127.0.0.1",
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client with our data converter; with ``metrics_port``, workers on it export metrics on
    ``metrics_host``; ``interceptors`` (tracing) apply to it and to the workers made from it."""
    runtime = _runtime_with_metrics(metrics_port, metrics_host) if metrics_port else None
    return await Client.connect(
        address,
        namespace=namespace,
        runtime=runtime,
        data_converter=DATA_CONVERTER,
        interceptors=interceptors,
    )


async def connect_when_up(
    address: str,
    namespace: str,
    metrics_port: int | None = None,
    *,
    metrics_host: str = "127.0.0.1",
    interceptors: Sequence[Interceptor] = (),
    stop: asyncio.Event | None = None,
    patience: float | None = None,
    first_delay: float = 0.5,
    max_delay: float = 15.0,
) -> Client | None:
    """Connects, waiting for Temporal as long as it takes (or ``patience`` seconds).

    An operator may start the API and the workers before Temporal, or Temporal may restart:
    the process says what it waits for and retries with backoff instead of exiting. Returns
    None when ``stop`` is set while waiting; raises the last error once ``patience`` runs out.
    """
    loop = asyncio.get_running_loop()
    deadline = None if patience is None else loop.time() + patience
    delay = first_delay
    while True:
        try:
            client = await connect(
                address,
                namespace,
                metrics_port,
                metrics_host=metrics_host,
                interceptors=interceptors,
            )
        except RuntimeError as err:  # the SDK's "Failed client connect: ..."
            if deadline is not None and loop.time() + delay > deadline:
                raise
            log.warning(
                "waiting for Temporal at %s (namespace %r): %s; retrying in %.1f s",
                address,
                namespace,
                err,
                delay,
            )
        else:
            if delay > first_delay:
                log.info("connected to Temporal at %s (namespace %r)", address, namespace)
            return client
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return None
        delay = min(delay * 2, max_delay)


__all__ = [
    "SearchAttributeKey",
    "connect",
    "connect_when_up",
    "register_search_attributes",
    "search_attribute_flags",
]
