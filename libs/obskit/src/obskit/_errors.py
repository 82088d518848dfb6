"""Errors a service raises on purpose, and the one JSON shape every error takes.

Every 4xx and 5xx answer, from any service, has this body, so a client and a
learner only ever read one shape::

    {"error": {"code": "out_of_stock", "message": "…", "details": [...]}}

The exceptions, as a tree (each carries its HTTP status and error ``code``)::

    ServiceError                      500 internal_error
    ├── BadRequest                    400 bad_request
    ├── NotFound                      404 not_found
    ├── Conflict                      409 conflict
    ├── PayloadTooLarge               413 payload_too_large
    ├── UnsupportedMediaType          415 unsupported_media_type
    └── DownstreamError               502 bad_gateway       a dependency answered 5xx
        ├── DownstreamUnavailable     503 unavailable       it could not be reached
        │   ├── CircuitOpen           503 circuit_open      its breaker is open: not called
        │   └── BulkheadFull          503 bulkhead_full     too many calls to it in flight
        └── DownstreamTimeout         504 timeout           it did not answer in time
            └── DeadlineExceeded      504 deadline_exceeded our caller's budget is spent:
                                                            not called

``CircuitOpen`` and ``BulkheadFull`` are refusals of our own (no request left the
process), so a retry never follows them; they carry ``Retry-After``.

A database that is unreachable or whose pool stays full (``sqlalchemy`` timeout,
operational or interface errors) is overload, not a bug: 503 ``database_unavailable``.

A validation error of the request (FastAPI's ``RequestValidationError``) becomes
422 ``validation_error`` with the failing fields in ``details``, without echoing
the input back (it may be a card number).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("obskit.errors")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ServiceError(Exception):
    """Base of the errors a service raises to answer with a given status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code


class BadRequest(ServiceError):
    status_code, code = 400, "bad_request"


class NotFound(ServiceError):
    status_code, code = 404, "not_found"


class Conflict(ServiceError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code, code = 415, "unsupported_media_type"


class DownstreamError(ServiceError):
    status_code, code = 502, "bad_gateway"


class DownstreamUnavailable(DownstreamError):
    status_code, code = 503, "unavailable"


class DownstreamTimeout(DownstreamError):
    status_code, code = 504, "timeout"


class CircuitOpen(DownstreamUnavailable):
    status_code, code = 503, "circuit_open"


class BulkheadFull(DownstreamUnavailable):
    status_code, code = 503, "bulkhead_full"


class DeadlineExceeded(DownstreamTimeout):
    status_code, code = 504, "deadline_exceeded"


_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code, headers=headers)


_E = TypeVar("_E", bound=Exception)


def _handled(exc: Exception, kind: type[_E]) -> _E:
    """``exc`` as the exception its handler is registered for (Starlette types every
    handler's argument as ``Exception``)."""
    if not isinstance(exc, kind):
        raise TypeError(f"a {kind.__name__} handler was given a {type(exc).__name__}") from exc
    return exc


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    error = _handled(exc, ServiceError)
    return error_response(
        error.status_code, error.code, error.message, error.details, error.headers
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    error = _handled(exc, StarletteHTTPException)
    code = _CODES_BY_STATUS.get(error.status_code, "error")
    return error_response(error.status_code, code, str(error.detail), headers=error.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in _handled(exc, RequestValidationError).errors()
    ]
    return error_response(422, "validation_error", "The request is not valid.", details)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database.unavailable", error=type(exc).__name__)
    return error_response(
        503, "database_unavailable", "The database is not available.", headers={"retry-after": "1"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app answers take the :class:`ErrorBody` shape."""
    # Only a process that loaded SQLAlchemy can raise its errors (a service with a
    # database imports it with its models, before create_app). The gateway has none,
    # and importing SQLAlchemy just for these three classes would cost it ~17 MiB.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None:
        for database_error in (sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError):
            app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
