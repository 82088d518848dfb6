"""The one Prometheus client of the obslab command: instant queries (at a given time
when two must agree), counters' growth, exemplars and the alerts Prometheus holds; the
labs' checks, the chaos experiments' probes and the load runner read Prometheus through it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from obslab.errors import Unreachable


class Prometheus:
    """Prometheus' HTTP API; :class:`Unreachable` when it does not answer."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10, transport=transport)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise Unreachable(f"Prometheus at {self.url} does not answer: {exc}") from exc
        try:
            return dict(response.json())
        except ValueError:
            message = f"Prometheus answered {response.status_code}: {response.text[:200]}"
            raise ValueError(message) from None

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result vector of ``expr``; :class:`ValueError` with Prometheus' message
        when it refuses the query (bad PromQL)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        answer = self._get("/api/v1/query", params)
        if answer.get("status") != "success":
            raise ValueError(answer.get("error", "the query was refused"))
        if answer["data"].get("resultType") == "scalar":
            return [{"metric": {}, "value": answer["data"]["result"]}]
        return list(answer["data"]["result"])

    def value(self, expr: str, default: float = 0.0) -> float:
        """The value of a query that gives one number (``default`` when it gives nothing)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else default

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
        return list(self._get("/api/v1/query_exemplars", params).get("data") or [])

    def firing(self, alert: str) -> bool:
        """Whether Prometheus holds the alert ``alert`` firing now."""
        alerts = self._get("/api/v1/alerts")["data"]["alerts"]
        return any(a["labels"].get("alertname") == alert and a["state"] == "firing" for a in alerts)
