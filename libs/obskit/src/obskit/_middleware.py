"""One plain ASGI middleware for what every request needs.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: it adds no task and no
copy of the body per request. For each HTTP request it

* binds a request id (the caller's ``X-Request-ID`` or a new one) to the log context
  and returns it, with the trace id, in ``X-Request-ID`` / ``X-Trace-Id``;
* refuses a body over ``max_body_bytes`` (413) and a body that is not JSON (415;
  a form on ``form_body_paths``, such as the OAuth2 token endpoint) before the app
  parses anything;
* starts the request's deadline (:mod:`obskit._deadline`): the smaller of the
  caller's ``Request-Timeout`` and ``request_budget_s``; a caller whose budget is
  already spent (``Request-Timeout: 0``) gets 504 ``deadline_exceeded`` at once.
  With ``deadline_from_caller=False`` (the public edge) the header is ignored;
* records ``http_server_request_duration_seconds`` by route template, with the
  trace id as exemplar, and ``http_server_active_requests``;
* writes one canonical log line, ``http.request`` (health and metrics polls only
  when they fail);
* turns an unhandled exception into a 500 with the JSON error body, never a trace.

With ``telemetry=False`` it neither measures nor logs requests; the rest stays.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obskit._deadline import deadline, parse_budget
from obskit._errors import error_response
from obskit._metrics import HTTP_SERVER_ACTIVE, HTTP_SERVER_DURATION, observe_with_exemplar
from obskit._telemetry import current_trace_id

log = structlog.get_logger("obskit.http")

_QUIET_PREFIXES = ("/health/", "/metrics")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM = "application/x-www-form-urlencoded"


class _BodyTooLarge(Exception):
    pass


def _is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == _FORM


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        telemetry: bool = True,
        request_budget_s: float | None = None,
        deadline_from_caller: bool = True,
        form_body_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.form_body_paths = frozenset(form_body_paths)
        self.max_body_bytes = max_body_bytes
        self.telemetry = telemetry
        self.request_budget_s = request_budget_s
        self.deadline_from_caller = deadline_from_caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        method: str = scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        response_started = False
        received = 0

        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes and not refused:
                # Answer 413 now: FastAPI would turn an error raised while it reads
                # the body into a vague 400. What the app sends afterwards is dropped.
                await self._too_large()(scope, receive, send_with_headers)
                refused = True
                raise _BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                extra = [(b"x-request-id", request_id.encode("latin-1"))]
                trace_id = current_trace_id()
                if trace_id:
                    extra.append((b"x-trace-id", trace_id.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if self.telemetry:
            HTTP_SERVER_ACTIVE.labels(method).inc()
        try:
            # A bad Request-Timeout is ignored (None), never an error of ours.
            caller_budget = (
                parse_budget(headers.get("request-timeout")) if self.deadline_from_caller else None
            )
            refusal = self._refusal(method, headers, scope["path"])
            if refusal is None and caller_budget == 0:
                refusal = error_response(
                    504, "deadline_exceeded", "The caller's time budget is already spent."
                )
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                with deadline(caller_budget), deadline(self.request_budget_s):
                    await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            pass  # already answered
        except Exception:
            log.exception("http.unhandled_error", http_request_method=method)
            if not response_started:
                response = error_response(500, "internal_error", "Something went wrong.")
                await response(scope, receive, send_with_headers)
        finally:
            if self.telemetry:
                self._record(scope, method, status, time.perf_counter() - start)

    def _record(self, scope: Scope, method: str, status: int, duration: float) -> None:
        """Measure the request and write its canonical log line."""
        HTTP_SERVER_ACTIVE.labels(method).dec()
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        observe_with_exemplar(HTTP_SERVER_DURATION, duration, method, template, str(status))
        path: str = scope["path"]
        if status >= 500 or not path.startswith(_QUIET_PREFIXES):
            log.info(
                "http.request",
                http_request_method=method,
                http_route=template,
                http_response_status_code=status,
                duration_ms=round(duration * 1000, 2),
            )

    def _too_large(self) -> ASGIApp:
        return error_response(
            413, "payload_too_large", f"The body exceeds {self.max_body_bytes} bytes."
        )

    def _refusal(self, method: str, headers: dict[str, str], path: str) -> ASGIApp | None:
        if method not in _BODY_METHODS:
            return None
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        content_type = headers.get("content-type", "")
        if path in self.form_body_paths:
            if has_body and not _is_form(content_type):
                return error_response(415, "unsupported_media_type", f"Send the body as {_FORM}.")
        elif has_body and not _is_json(content_type):
            return error_response(
                415, "unsupported_media_type", "Send the body as application/json."
            )
        return None
