"""The lab's OTLP receiver: ``/v1/traces`` and ``/v1/logs`` over HTTP/protobuf, and
``/alerts``, the webhook Alertmanager delivers the lab's alerts to.

Every service of the native lab exports here, so traces and logs can be read
with ``obslab traces`` without Jaeger or Loki; Alertmanager's notifications land
here too, so ``obslab alerts`` shows what was delivered. It follows the OTLP/HTTP
specification where a client can tell: a payload it cannot use is answered with
the status OTLP names and a ``google.rpc.Status`` body, and the exporter drops
it rather than retrying (4xx); nothing stored before is touched.

=====================  ============================================================
malformed protobuf     400 Bad Request
not protobuf           415 Unsupported Media Type (OTLP/JSON is not supported here)
over max_body_bytes    413 Content Too Large (checked before and while reading)
=====================  ============================================================

A webhook body that is not Alertmanager's (version 4) is answered 400 with the JSON
error body every obslab service uses, ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obslab.telemetry.store import Store

PROTOBUF = "application/x-protobuf"


class ReceiverSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSLAB_TELEMETRY_", extra="ignore")

    host: str = "127.0.0.1"
    #: Not 4318, the standard OTLP port, so a real collector can run beside the lab.
    port: int = 14318
    database: Path = Path(".obslab/run/data/telemetry.sqlite3")
    #: Rows kept per table (spans, logs); the oldest received go first.
    max_rows: int = 100_000
    #: A bigger export is refused (413); one batch of 512 spans is about 300 KB.
    max_body_bytes: int = 8 * 1024 * 1024


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager notification (the fields ``obslab alerts`` needs)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    # Alertmanager's field names, as it sends them.
    startsAt: datetime
    endsAt: datetime
    fingerprint: str = Field(min_length=1, max_length=64)

    def stored(self) -> dict[str, Any]:
        """As the store keeps it: times in UTC, with microseconds, so they sort as text."""
        return self.model_dump() | {
            "startsAt": self.startsAt.astimezone(UTC).isoformat(timespec="microseconds"),
            "endsAt": self.endsAt.astimezone(UTC).isoformat(timespec="microseconds"),
        }


class WebhookNotification(BaseModel):
    """The body Alertmanager's webhook receiver POSTs (its version 4 payload)."""

    version: Literal["4"]
    receiver: str = Field(max_length=200)
    status: Literal["firing", "resolved"]
    # Alertmanager sends at most max_alerts per notification (0, unlimited, by default).
    alerts: list[WebhookAlert] = Field(max_length=1000)


#: Alertmanager's notifications are small: a few KB per group.
MAX_WEBHOOK_BYTES = 1024 * 1024


def _bad_request(message: str, details: list[dict[str, object]] | None = None) -> JSONResponse:
    error = {"code": "bad_request", "message": message, "details": details}
    return JSONResponse({"error": error}, status_code=400)


class PayloadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refusal(error: PayloadError) -> Response:
    code = code_pb2.RESOURCE_EXHAUSTED if error.status == 413 else code_pb2.INVALID_ARGUMENT
    body = status_pb2.Status(code=code, message=str(error)).SerializeToString()
    return Response(body, status_code=error.status, media_type=PROTOBUF)


async def _read_body(request: Request, limit: int, media_type: str = PROTOBUF) -> bytes:
    """The request's body, uncompressed; PayloadError when it is not usable bytes of
    ``media_type``."""
    if request.headers.get("content-type", "").split(";")[0].strip() != media_type:
        raise PayloadError(415, f"Send {'OTLP as ' if media_type == PROTOBUF else ''}{media_type}.")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadError(413, f"The body exceeds {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body has no length to check first
        size += len(chunk)
        if size > limit:
            raise PayloadError(413, f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "") == "gzip":
        # Bounded: a few KB of gzip can inflate to gigabytes.
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise PayloadError(400, f"Bad gzip body: {exc}") from exc
        if len(body) > limit:
            raise PayloadError(413, f"The uncompressed body exceeds {limit} bytes.")
        if not inflater.eof:
            raise PayloadError(400, "Truncated gzip body.")
    return body


def create_app(settings: ReceiverSettings) -> Starlette:
    store: Store | None = None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal store
        store = Store(settings.database, settings.max_rows)
        try:
            yield
        finally:
            store.close()

    def opened() -> Store:
        if store is None:  # Starlette runs the lifespan before any request
            raise RuntimeError("the receiver's store is not open: its lifespan did not run")
        return store

    async def export_traces(request: Request) -> Response:
        db = opened()
        try:
            body = await _read_body(request, settings.max_body_bytes)
            export = ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            return _refusal(PayloadError(400, f"Not an ExportTraceServiceRequest: {exc}"))
        except PayloadError as error:
            return _refusal(error)
        # SQLite blocks: write in a thread so the receiver keeps accepting exports.
        _, rejected = await asyncio.to_thread(db.add_spans, export)
        reply = ExportTraceServiceResponse()
        if rejected:
            reply.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=rejected, error_message="invalid trace or span id"
                )
            )
        return Response(reply.SerializeToString(), media_type=PROTOBUF)

    async def export_logs(request: Request) -> Response:
        db = opened()
        try:
            body = await _read_body(request, settings.max_body_bytes)
            export = ExportLogsServiceRequest.FromString(body)
        except DecodeError as exc:
            return _refusal(PayloadError(400, f"Not an ExportLogsServiceRequest: {exc}"))
        except PayloadError as error:
            return _refusal(error)
        await asyncio.to_thread(db.add_logs, export)
        return Response(ExportLogsServiceResponse().SerializeToString(), media_type=PROTOBUF)

    async def receive_alerts(request: Request) -> Response:
        db = opened()
        try:
            body = await _read_body(request, MAX_WEBHOOK_BYTES, "application/json")
            notification = WebhookNotification.model_validate_json(body)
        except PayloadError as error:
            return JSONResponse(
                {"error": {"code": "bad_request", "message": str(error), "details": None}},
                status_code=error.status,
            )
        except ValidationError as error:
            # The fields that failed, not the input: an annotation could hold anything.
            details: list[dict[str, object]] = [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()
            ]
            return _bad_request("Not an Alertmanager webhook notification.", details)
        alerts = [alert.stored() for alert in notification.alerts]
        stored = await asyncio.to_thread(
            db.add_alerts, alerts, notification.receiver, time.time_ns()
        )
        return JSONResponse({"stored": stored})

    async def read_health(_: Request) -> JSONResponse:
        db = opened()
        return JSONResponse(
            {
                "status": "ok",
                "spans": db.count("spans"),
                "logs": db.count("logs"),
                "alerts": db.count("alerts"),
            }
        )

    return Starlette(
        routes=[
            Route("/v1/traces", export_traces, methods=["POST"]),
            Route("/v1/logs", export_logs, methods=["POST"]),
            Route("/alerts", receive_alerts, methods=["POST"]),
            Route("/health/ready", read_health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
