"""OpenTelemetry traces: an API request, through the Temporal client, into the workflow and its
activities, as one trace.

Off by default. ``WINBACK_OTEL_EXPORTER=console`` prints finished spans on stdout;
``WINBACK_OTEL_EXPORTER=otlp`` sends them over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``
(the standard variable; default ``http://localhost:4318``). ``WINBACK_OTEL_SERVICE_NAME`` names
the process (``winback-api``, ``winback-worker`` by default).

The pieces: ``TraceRequests`` (pure ASGI) opens a server span per API request; Temporal's
``TracingInterceptor`` (``temporalio.contrib.opentelemetry``), on the client, carries the current
span into the workflow start or signal headers, and on the worker (which inherits the client's
interceptors) opens the workflow's and each activity's spans under it. A tracer is made per
process (``configure_tracing``) rather than taken from the global provider, so tests can give an
in-memory exporter without touching global state.
"""

from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanProcessor,
)
from opentelemetry.trace import SpanKind, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.contrib.opentelemetry import TracingInterceptor

EXPORTERS = ("none", "console", "otlp")


@dataclass
class Tracing:
    """What a process traces with: ``tracer`` for its own spans, ``interceptors`` for the
    Temporal client (workers made from that client inherit them). Disabled: both empty."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    interceptors: list[Any] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _exporter(kind: str) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"unknown OpenTelemetry exporter {kind!r}: one of {', '.join(EXPORTERS)}")


def configure_tracing(
    exporter: str | None, service_name: str, *, processor: SpanProcessor | None = None
) -> Tracing:
    """A tracer for ``exporter`` (``console``, ``otlp``; ``none`` or None: off), or for the given
    span ``processor`` (tests: a ``SimpleSpanProcessor`` over an ``InMemorySpanExporter``)."""
    if processor is None and exporter in (None, "", "none"):
        return Tracing()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(str(exporter))))
    tracer = provider.get_tracer("winback")
    return Tracing(tracer=tracer, provider=provider, interceptors=[TracingInterceptor(tracer)])


class TraceRequests:
    """A server span per HTTP request, named by method and route template, made current so the
    Temporal client's spans (and so the workflow's) hang under it."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app, self.tracer = app, tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", kind=SpanKind.SERVER
        ) as span:

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])
            try:
                await self.app(scope, receive, watch)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)


__all__ = ["EXPORTERS", "TraceRequests", "Tracing", "configure_tracing", "trace"]
