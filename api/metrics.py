"""Request metrics for Prometheus, labelled by route template (never by raw path).

They are served on a port of their own (``WINBACK_API_METRICS_PORT``, default 9465), never on
the API's: the API port faces retailers and browsers, the metrics port only the scraper.

The middleware is pure ASGI: ``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``)
wraps every request and response in extra tasks and streams, which profiling showed as a visible
slice of an ingestion request; this one only watches the ``http.response.start`` message go by.
"""

import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from winback.carts.relay import QUEUED, CartRelay

REQUESTS = Counter("winback_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("winback_http_request_seconds", "HTTP request latency", ["method", "route"])

# Ingestion, the storefront's hot path: events taken per outcome and source, and how long an
# event that changed a workflow's course took from arrival to the signal or start being sent.
EVENTS = Counter(
    "winback_cart_events_total",
    "Cart events received, by source (api, client, batch) and outcome",
    ["source", "outcome"],
)
EVENT_TO_SIGNAL = Histogram(
    "winback_event_to_signal_seconds",
    "From an event's arrival to its workflow start or signal being accepted by Temporal",
    ["action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_signals(actions: list[str], started: float) -> None:
    """Times each start or signal an event caused, from the event's arrival (``started``, a
    ``time.perf_counter()``) to Temporal accepting it. A start handed to the relay
    (``"queued"``) is timed by the relay when it is sent."""
    elapsed = time.perf_counter() - started
    for action in actions:
        if action != QUEUED:
            EVENT_TO_SIGNAL.labels(action).observe(elapsed)


# The cart relay (``winback.carts.relay``): workflow starts sent after the 202, off the request
# path. Its depth and the age of its oldest untold cart are read at scrape time (``watch_relay``).
RELAY_DEPTH = Gauge(
    "winback_cart_relay_depth", "Carts handed to the relay and not yet told (waiting or running)"
)
RELAY_OLDEST = Gauge(
    "winback_cart_relay_oldest_seconds", "Age of the relay's oldest untold cart (its lag)"
)
RELAY_LAG = Histogram(
    "winback_cart_relay_lag_seconds",
    "From a cart's oldest untold event to the relay's tell being accepted by Temporal",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RELAY_OUTCOMES = Counter(
    "winback_cart_relay_outcomes_total",
    "Carts the relay told, or left to the worker's sweep (full, stopped, failed)",
    ["outcome"],
)


class RelayMetrics:
    """The relay's ``RelayObserver``: its tells land in the same event-to-signal histogram as
    the inline ones, so that metric still reads from an event's arrival."""

    def told(self, actions: list[str], since: float) -> None:
        RELAY_LAG.observe(time.perf_counter() - since)
        RELAY_OUTCOMES.labels("told").inc()
        observe_signals(actions, since)

    def left_to_sweep(self, reason: str) -> None:
        RELAY_OUTCOMES.labels(reason).inc()


def watch_relay(relay: CartRelay) -> None:
    """Points the relay gauges at this process's relay (one per API process)."""
    RELAY_DEPTH.set_function(lambda: relay.depth)
    RELAY_OLDEST.set_function(relay.oldest_age)


# Agents' tasks: how long a task waited in the inbox before an agent took it.
TASK_AGE_AT_CLAIM = Histogram(
    "winback_task_age_at_claim_seconds",
    "Age of an agent task when it was claimed",
    ["kind"],
    buckets=(5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600),
)


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
            REQUESTS.labels(method, template, str(status)).inc()


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves this process's metrics on ``host:port`` (a daemon thread), for ``winback api``
    and ``winback dev``."""
    start_http_server(port, addr=host)
