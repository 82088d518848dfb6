"""The native lab's own trace and log store, read with `obslab traces`, `trace` and `logs`.

They use the shared ``lab`` fixture: started without ``--otlp`` (as ``make up`` is), so
every service exports to the lab's own receiver.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.backends import wait_for
from tests.support.lab import Lab, place_order

pytestmark = pytest.mark.e2e

SHOP = {"gateway", "orders", "inventory", "payments", "notifications"}


def read_json(lab: Lab, *args: str) -> Any:
    shown = lab.obslab(*args, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_an_order_is_one_trace_across_the_shop_in_the_lab_store(lab: Lab) -> None:
    """An order placed through the edge is one trace in the lab's store, with spans of
    gateway, orders, inventory, payments and notifications, each under its caller (the
    consumer under the producer), and log lines of at least four services."""
    assert lab.component("telemetry")["health"] == "healthy"
    response = place_order(lab.edge, 1)
    assert response.status_code == 201, response.text
    trace_id = response.headers["x-trace-id"]
    order = f"{lab.edge}/api/orders/{response.json()['id']}"
    headers = auth_headers(lab.edge)
    wait_for(
        lambda: httpx.get(order, headers=headers).json()["notified_at"] is not None,
        60,
        "order notified",
    )

    def services_in_store() -> set[str]:
        shown = lab.obslab("trace", trace_id, "--json")
        return {s["service"] for s in json.loads(shown.stdout)["spans"]} if shown.stdout else set()

    wait_for(lambda: services_in_store() >= SHOP, 60, "every service's spans in the store")
    spans = read_json(lab, "trace", trace_id)["spans"]
    by_id = {span["span_id"]: span for span in spans}
    root = spans[0]
    assert (root["service"], root["kind"], root["depth"]) == ("gateway", "server", 0)
    assert [s for s in spans if s["parent_span_id"] not in by_id] == [root]

    def ancestors(span: dict[str, Any]) -> list[dict[str, Any]]:
        chain = []
        while span["parent_span_id"] in by_id:
            span = by_id[span["parent_span_id"]]
            chain.append(span)
        return chain

    def served(service: str) -> dict[str, Any]:
        return next(s for s in spans if s["service"] == service and s["kind"] == "server")

    for callee in ("inventory", "payments"):
        assert "orders" in {s["service"] for s in ancestors(served(callee))}
    assert "gateway" in {s["service"] for s in ancestors(served("orders"))}
    consumed = next(s for s in spans if s["service"] == "notifications" and s["kind"] == "consumer")
    assert ("orders", "producer") in {(s["service"], s["kind"]) for s in ancestors(consumed)}

    listed = read_json(lab, "traces", "--service", "notifications", "--limit", "100")
    ours = next(t for t in listed if t["trace_id"] == trace_id)
    assert ours["route"] == "/api/orders" and ours["root_service"] == "gateway"
    assert set(ours["services"]) >= SHOP and not ours["error"]

    def logging_services() -> set[str]:
        return {line["service"] for line in read_json(lab, "logs", "--trace", trace_id)}

    wait_for(lambda: len(logging_services() & SHOP) >= 4, 60, "log lines of four services")
    lines = read_json(lab, "logs", "--trace", trace_id)
    assert [line["time_ns"] for line in lines] == sorted(line["time_ns"] for line in lines)
    assert lab.obslab("trace", trace_id).returncode == 0  # the waterfall renders
