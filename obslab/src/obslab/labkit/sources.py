"""Where a lab's check reads the live stack: Prometheus and Alertmanager through their
HTTP APIs, traces and logs through a :class:`Telemetry` backend.

In the native lab the traces and logs are in the lab receiver's store (what ``obslab
traces --json`` and ``obslab logs --trace`` print): :class:`NativeTelemetry`. In the
compose stack they are in Jaeger and Loki; a backend for them implements the same
three reads (the summaries and spans in the same shape as the store's), and
:func:`native_stack` is the one place that would choose it. Checks never open the
store or a backend's API themselves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from obslab.errors import Unreachable
from obslab.native.lab import LabSettings
from obslab.prometheus import Prometheus


class Telemetry(Protocol):
    """Traces, logs and delivered alerts, as the lab's store returns them
    (``obslab.telemetry.store``)."""

    def traces(
        self,
        *,
        service: str = "",
        route: str = "",
        min_ms: float = 0,
        errors: bool = False,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Recent traces, newest first: trace_id, route, root_service, services,
        start_ns, duration_ms, error."""
        ...

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every span of one trace: service, name, kind, start_ns, end_ns, attributes, events."""
        ...

    def logs(self, trace_id: str) -> list[dict[str, Any]]:
        """Every log record of one trace: time_ns, service, severity, body, attributes."""
        ...

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager delivered, newest first: alertname, status, starts_at …"""
        ...


class NativeTelemetry:
    """The native lab's store, opened read-only for each read (the receiver writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self, method: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        from obslab.telemetry.store import Store  # protobuf and sqlite: only when used

        if not self.path.exists():
            raise Unreachable(f"no trace store at {self.path}: is the lab up (make up)?")
        store = Store(self.path, readonly=True)
        try:
            return list(getattr(store, method)(*args, **kwargs))
        finally:
            store.close()

    def traces(self, **filters: Any) -> list[dict[str, Any]]:
        return self._read("traces", **filters)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return self._read("trace", trace_id)

    def logs(self, trace_id: str) -> list[dict[str, Any]]:
        return self._read("logs", trace_id)

    def alerts(self) -> list[dict[str, Any]]:
        return self._read("alerts", limit=500)


class Alertmanager:
    """Alertmanager's v2 API: the alerts it holds now, and silences (lab 12's
    acknowledgements: Alertmanager has no "ack", a silence is how on-call takes a page)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"Alertmanager at {self.url} does not answer: {exc}") from exc
        response.raise_for_status()
        return response

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v2/alerts").json())

    def silences(self) -> list[dict[str, Any]]:
        """Every silence it keeps, expired ones too: matchers, startsAt, createdBy …"""
        return list(self._call("GET", "/api/v2/silences").json())

    def silence(self, alertname: str, seconds: float, by: str, comment: str) -> str:
        """Silence one alert (by name) from now for ``seconds``; the silence's id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(seconds=seconds)).isoformat(),
            "createdBy": by,
            "comment": comment,
        }
        return str(self._call("POST", "/api/v2/silences", json=body).json()["silenceID"])

    def expire(self, silence_id: str) -> None:
        """End a silence now (one already expired or gone is left as it is)."""
        with contextlib.suppress(httpx.HTTPStatusError):
            self._call("DELETE", f"/api/v2/silence/{silence_id}")


@dataclass
class Stack:
    """The parts of the running lab a check reads, and the shop's public address."""

    edge: str
    prometheus: Prometheus
    alertmanager: Alertmanager
    telemetry: Telemetry


def native_stack(settings: LabSettings) -> Stack:
    """The native lab's stack (compose publishes the same ports, but keeps its traces
    and logs in Jaeger and Loki: a compose stack would pass their backend here)."""
    local = "http://127.0.0.1"
    return Stack(
        edge=f"{local}:{settings.edge_port}",
        prometheus=Prometheus(f"{local}:{settings.prometheus_port}"),
        alertmanager=Alertmanager(f"{local}:{settings.alertmanager_port}"),
        telemetry=NativeTelemetry(settings.path("data", "telemetry.sqlite3")),
    )
