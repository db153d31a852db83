"""Request metrics for Prometheus, labelled by route template (never by raw path).

They are served on a port of their own (``WINBACK_API_METRICS_PORT``, default 9465), never on
the API's: the API port faces retailers and browsers, the metrics port only the scraper.
"""

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram, start_http_server

REQUESTS = Counter("winback_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("winback_http_request_seconds", "HTTP request latency", ["method", "route"])


def install_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, template).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        return response


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves this process's metrics on ``host:port`` (a daemon thread), for ``winback api``
    and ``winback dev``."""
    start_http_server(port, addr=host)
