"""Checkout when payments fails or is slow: the breaker fails fast, the deadline cuts off."""

from __future__ import annotations

from pathlib import Path

import httpx
from aio_pika.abc import AbstractQueue
from prometheus_client import REGISTRY

from orders.main import create_app
from payments.main import create_app as create_payments
from payments.settings import Settings as PaymentsSettings
from tests.services.orders.shop import Downstreams, fetch, order_body, orders_settings, stock
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.backends import free_port


def refused_calls() -> float:
    labels = {"downstream": "payments", "outcome": "not_permitted"}
    return REGISTRY.get_sample_value("obslab_breaker_calls_total", labels) or 0.0


async def test_with_payments_down_the_breaker_opens_and_orders_fail_fast(
    database_url: str, downstreams: Downstreams, amqp_url: str, events: AbstractQueue
) -> None:
    """Once payments' breaker is open, an order fails 503 circuit_open without calling it."""
    settings = orders_settings(
        database_url,
        downstreams,
        amqp_url,
        payments_url=f"http://127.0.0.1:{free_port()}",
        breaker_window_size=4,
        breaker_minimum_calls=4,
        breaker_wait_open_s=600,  # stays open for the whole test
    )
    app = create_app(settings)
    async with serve_in_process(app) as orders:
        payments = app.state.payments
        codes = []
        for _ in range(4):  # each order tries payments up to 3 times: 4 failures open it
            response = await orders.post("/orders", json=order_body((6, 1, 100)))
            codes.append(response.json()["error"]["code"])
            if payments.breaker.state == "open":
                break
        assert payments.breaker.state == "open"
        assert set(codes) <= {"unavailable", "circuit_open"}
        before = refused_calls()
        response = await orders.post("/orders", json=order_body((6, 1, 100)))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "circuit_open"
    assert "retry-after" in response.headers
    assert refused_calls() == before + 1  # refused once, and not retried
    assert await stock(downstreams, 6) == 10  # every failed order gave its stock back
    rows = await fetch(database_url, "SELECT status, failure_reason FROM orders")
    assert {(r["status"], r["failure_reason"]) for r in rows} == {("failed", "payment_unavailable")}


async def test_a_slow_payment_is_cut_off_at_the_callers_budget(
    database_url: str, downstreams: Downstreams, amqp_url: str, tmp_path: Path
) -> None:
    """With a 0.5 s budget and a 2 s bank, the order fails 504 deadline_exceeded, stock released."""
    slow_bank = PaymentsSettings(
        data_dir=str(tmp_path), bank_latency_ms=2000, bank_latency_jitter=0, random_seed=1
    )
    async with serve_on_port(create_payments(slow_bank)) as payments_url:
        settings = orders_settings(database_url, downstreams, amqp_url, payments_url=payments_url)
        async with serve_in_process(create_app(settings)) as orders:
            response = await orders.post(
                "/orders", json=order_body((7, 2, 100)), headers={"Request-Timeout": "0.5"}
            )

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    # The release ran although the budget was spent: a compensation has no deadline.
    assert await stock(downstreams, 7) == 10
    (row,) = await fetch(database_url, "SELECT status, failure_reason FROM orders")
    assert (row["status"], row["failure_reason"]) == ("failed", "payment_unavailable")


async def test_orders_pass_their_budget_on(
    database_url: str, downstreams: Downstreams, amqp_url: str
) -> None:
    """The budget orders got is what inventory and payments are told, never more."""
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    settings = orders_settings(database_url, downstreams, amqp_url)
    app = create_app(settings)
    async with serve_in_process(app) as orders:
        for client in (app.state.inventory, app.state.payments):
            client.http.event_hooks["request"].append(spy)
        response = await orders.post(
            "/orders", json=order_body((8, 1, 100)), headers={"Request-Timeout": "4"}
        )
    assert response.status_code == 201
    budgets = [float(r.headers["Request-Timeout"]) for r in seen]
    assert len(budgets) == 2
    assert all(0 < b <= 4 for b in budgets)
