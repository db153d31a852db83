"""Error responses in one place: bad input is a 4xx that says what is wrong, never a 500."""

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.body_limit import too_large
from winback.carts.events import EventIdConflict
from winback.platform.db import is_write_conflict
from winback.platform.errors import InputFieldError
from winback.tasks.commands import TaskNoLongerOpen, UpdateUnconfirmed
from workflows.errors import ErrorType

log = logging.getLogger(__name__)

# Why a workflow refused an agent's change (the ``type`` of the validator's ApplicationError).
# A type not listed here is still a refusal of the change as it stands: 409.
WORKFLOW_REJECTIONS: dict[str, int] = {
    ErrorType.TASK_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorType.TASK_CLOSED: status.HTTP_409_CONFLICT,
    ErrorType.TASK_CLAIMED: status.HTTP_409_CONFLICT,
    ErrorType.NOT_TASK_HOLDER: status.HTTP_403_FORBIDDEN,
    ErrorType.INVALID_OUTCOME: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ErrorType.INVALID_TASK_DATA: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


class FieldError(BaseModel):
    field: str = Field(description="Where in the request, e.g. `items.0.price` or `request`.")
    message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer has this shape."""

    detail: str = Field(description="What is wrong, for a person to read.")
    errors: list[FieldError] = Field(default_factory=list, description="One per bad field.")
    reason: str | None = Field(
        default=None, description="A workflow's refusal type (`TaskClaimed`, ...), if any."
    )


_DESCRIPTIONS = {
    400: "Bad request (a webhook body that is not what its provider sends)",
    401: "Missing or unknown credentials",
    403: "Credentials that may not do this",
    404: "Not found (or not this caller's)",
    409: "Conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input; `errors` names each field",
    429: "Too many requests; see `Retry-After`",
    503: "A dependency (the workflow service, the database) is busy or unavailable; retry "
    "after `Retry-After` seconds",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DESCRIPTIONS.items()
}


def error_response(
    code: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    *,
    reason: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    content: dict[str, Any] = {"detail": detail, "errors": errors or []}
    if reason is not None:
        content["reason"] = reason
    return JSONResponse(status_code=code, content=content, headers=dict(headers or {}))


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]  # only the source: a template's own `body` field stays named
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:  # a chunked body past the cap
            detail = too_large(request.app.state.settings.max_body_bytes)
        return error_response(exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _where(tuple(e["loc"])), "message": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, summary, errors)

    @app.exception_handler(InputFieldError)
    async def _event_field(_: Request, exc: InputFieldError) -> JSONResponse:
        return error_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{exc.field}: {exc}",
            [{"field": exc.field, "message": str(exc)}],
        )

    @app.exception_handler(EventIdConflict)
    async def _event_conflict(_: Request, exc: EventIdConflict) -> JSONResponse:
        return error_response(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        return error_response(
            status.HTTP_409_CONFLICT, "conflicts with a concurrent or earlier request; retry it"
        )

    @app.exception_handler(OperationalError)
    async def _database_busy(_: Request, exc: OperationalError) -> JSONResponse:
        # SQLite's write lock held past the busy timeout ("database is locked"), a PostgreSQL
        # deadlock, or the database unreachable. The failed transaction was rolled back (a 2xx
        # comes only after the commit), and every route that commits in steps is safe to send
        # again (an event or answer id, a task command that answers with the applied result;
        # a task change whose mirror write fails says so itself, see UpdateUnconfirmed).
        busy = is_write_conflict(exc)
        log.warning("database %s: %s", "busy" if busy else "error", exc.orig)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database is {'busy with other writes' if busy else 'unavailable'}; "
            "this request may be sent again after Retry-After seconds",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # What PostgreSQL refuses and SQLite takes: a NUL character in text, say.
        params = exc.params if isinstance(exc.params, Mapping) else {}
        fields = {
            re.sub(r"_\d+$", "", str(name))  # a WHERE parameter is named like `cart_id_1`
            for name, value in params.items()
            if isinstance(value, str) and "\x00" in value
        }
        return error_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{', '.join(sorted(fields)) or 'request'}: {exc.orig}",
        )

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_rejected(_: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            code = WORKFLOW_REJECTIONS.get(cause.type or "", status.HTTP_409_CONFLICT)
            return error_response(code, cause.message, reason=cause.type)
        # The update handler itself failed: not the caller's fault, and a retry may do.
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the workflow could not apply the change ({cause}); retry",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(TaskNoLongerOpen)
    async def _task_gone(_: Request, exc: TaskNoLongerOpen) -> JSONResponse:
        return error_response(
            status.HTTP_409_CONFLICT, "task is no longer open", reason="WorkflowClosed"
        )

    @app.exception_handler(UpdateUnconfirmed)
    async def _update_unconfirmed(_: Request, exc: UpdateUnconfirmed) -> JSONResponse:
        # Say "retry" only where a retry cannot do harm: a repeated claim or completion answers
        # with the applied result; a repeated release would be refused once it was applied.
        advice = (
            "retrying is safe: if it was applied, the retry answers with the result"
            if exc.safe_to_retry
            else f"read GET /v1/tasks/{exc.task_id} before retrying: it may have been applied"
        )
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={
                "detail": f"the workflow did not confirm the change in time; {advice}",
                "retry_safe": exc.safe_to_retry,
            },
            headers={"Retry-After": "5"} if exc.safe_to_retry else {},
        )

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def _update_timeout(
        _: Request, exc: WorkflowUpdateRPCTimeoutOrCancelledError
    ) -> JSONResponse:
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the workflow did not answer in time; retry",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"workflow service unavailable ({exc.status.name}); retry",
            headers={"Retry-After": "5"},
        )
