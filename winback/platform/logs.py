"""Structured logs: one JSON object per line, carrying the ids that say which cart and run.

Every process (``winback api``, ``winback worker``, ``winback dev``) logs through the standard
``logging`` module; ``configure_logging("json")`` puts this formatter on the root handler, so our
loggers, uvicorn's and the Temporal SDK's Python loggers all come out alike. Each line has
``ts``, ``level``, ``logger``, ``message`` and, where known:

- ``workflow_id``, ``run_id``, ``workflow_type``: inside a workflow (``workflow.logger`` puts
  them on the record) or an activity (from ``activity.info()``, for any logger);
- ``activity_type``, ``activity_id``, ``attempt``: inside an activity;
- ``retailer_id``, ``cart_id``: bound for the duration of a request or an activity with
  ``bind`` (a context variable: concurrent requests do not see each other's), or passed as
  ``extra={...}`` on one call.

``winback dev`` logs in the one-line human format unless ``WINBACK_LOG_FORMAT=json``; the
other commands log JSON unless ``WINBACK_LOG_FORMAT=text``.
"""

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

CONTEXT_FIELDS = ("retailer_id", "cart_id", "workflow_id", "run_id", "task_id", "case_id")
_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "winback_log_context", default=None
)
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Adds ``fields`` to every log line written in this context (request, activity)."""
    token = _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _bound.reset(token)


def bind_now(**fields: Any) -> None:
    """``bind`` for the rest of the current task (a request handler): no block to close."""
    _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v}})


def current_fields() -> dict[str, Any]:
    return dict(_bound.get() or {})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_temporal_fields(record))
        line.update(_bound.get() or {})
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("temporal_") and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _temporal_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ids the Temporal SDK's loggers put on the record, else the running activity's."""
    fields: dict[str, Any] = {}
    info = getattr(record, "temporal_workflow", None)
    if isinstance(info, dict):
        fields["workflow_id"] = info.get("workflow_id")
        fields["run_id"] = info.get("run_id")
        fields["workflow_type"] = info.get("workflow_type")
    if activity.in_activity():
        current = activity.info()
        fields.update(
            workflow_id=current.workflow_id,
            run_id=current.workflow_run_id,
            workflow_type=current.workflow_type,
            activity_type=current.activity_type,
            activity_id=current.activity_id,
            attempt=current.attempt,
        )
    return {k: v for k, v in fields.items() if v is not None}


def configure_logging(kind: str = "json", level: int = logging.INFO) -> None:
    """The root logger's one handler on stderr, JSON (default) or text."""
    handler = logging.StreamHandler()
    if kind == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class LogContextInterceptor(Interceptor):
    """Binds the activity's retailer and cart (read from its input's ``retailer_id`` and
    ``cart_id``, when it has them) to every log line the activity writes."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        fields: dict[str, Any] = {}
        for arg in input.args[:1]:
            for name in ("retailer_id", "cart_id", "task_id", "case_id"):
                value = arg.get(name) if isinstance(arg, dict) else getattr(arg, name, None)
                if isinstance(value, str | int):
                    fields[name] = value
        with bind(**fields):
            return await super().execute_activity(input)
