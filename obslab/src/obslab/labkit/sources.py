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
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from obslab.lab import LabSettings


class Unreachable(Exception):
    """A part of the stack did not answer: the lab is probably not up."""


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


class Prometheus:
    """Prometheus' HTTP API: instant queries, at a given time when two must agree."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result vector of ``expr``; :class:`ValueError` with Prometheus' message
        when it refuses the query (bad PromQL)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        try:
            response = self.http.get("/api/v1/query", params=params)
        except httpx.HTTPError as exc:
            raise Unreachable(f"Prometheus at {self.url} does not answer: {exc}") from exc
        answer = response.json()
        if answer.get("status") != "success":
            raise ValueError(answer.get("error", response.text[:200]))
        if answer["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": answer["data"]["result"]}]
        return list(answer["data"]["result"])

    def value(self, expr: str) -> float:
        """The value of a query that gives one number (0 when it gives nothing)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def grown(self, selector: str, since: float) -> float:
        """How much the counters ``selector`` picks grew since the time ``since``.

        Not ``increase()``: a series born after its first events (Prometheus scraped
        it first at 12) has grown by 12, where ``increase()`` sees no growth at all.
        A series with no sample at ``since`` counts from 0.
        """
        ago = max(1, int(time.time() - since))
        return self.value(
            f"(sum({selector}) or vector(0)) - (sum({selector} offset {ago}s) or vector(0))"
        )

    def exemplars(self, selector: str, start: float, end: float) -> list[dict[str, Any]]:
        """The exemplars of the series ``selector`` picks, between two times."""
        params = {"query": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        try:
            response = self.http.get("/api/v1/query_exemplars", params=params)
        except httpx.HTTPError as exc:
            raise Unreachable(f"Prometheus at {self.url} does not answer: {exc}") from exc
        return list(response.json().get("data") or [])


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
