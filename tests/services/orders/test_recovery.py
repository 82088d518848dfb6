"""The checkout's recovery (orders.recovery) against real inventory, payments, PostgreSQL
and RabbitMQ: an order left pending by a dead process is ended by what its peers did, a
charge whose answer was lost is refunded, and a release a peer refused is done later."""

from __future__ import annotations

import uuid
from pathlib import Path

from aio_pika.abc import AbstractQueue
from fastapi import FastAPI
from prometheus_client import REGISTRY

from orders.main import create_app
from orders.models import OrderCreate
from orders.store import OrderStore
from payments.main import create_app as create_payments
from payments.settings import Settings as PaymentsSettings
from tests.services.orders.shop import (
    Downstreams,
    fetch,
    next_event,
    order_body,
    orders_settings,
    stock,
    wait_for,
)
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.backends import free_port

#: Short enough for a test to wait for: the budget must stay below it (settings check),
#: and the bank of these tests answers within what is left.
SETTLE = {"recovery_settle_s": 2.0, "request_budget_s": 1.0, "recovery_interval_s": 0.1}


def recovered(outcome: str) -> float:
    return REGISTRY.get_sample_value("obslab_orders_recovered_total", {"outcome": outcome}) or 0.0


async def pending_order(app: FastAPI, body: dict[str, object]) -> uuid.UUID:
    """A pending order as a checkout leaves it when its process dies right after storing it."""
    async with app.state.sessions() as session:
        order = await OrderStore(session).create_pending(
            OrderCreate.model_validate(body),
            None,
            "hash",
            app.state.recovery.settings.recovery_settle_s,
        )
    assert order is not None
    return order.id


async def order_status(database_url: str, order_id: uuid.UUID) -> tuple[str, str | None]:
    (row,) = await fetch(
        database_url, f"SELECT status, failure_reason FROM orders WHERE id = '{order_id}'"
    )
    return row["status"], row["failure_reason"]


async def test_a_pending_order_whose_stock_and_charge_were_made_is_confirmed(
    database_url: str, downstreams: Downstreams, amqp_url: str, events: AbstractQueue
) -> None:
    """An order its process left pending after reserving and charging is confirmed by the
    recovery once it settles, with its OrderPlaced, as the checkout would have."""
    app = create_app(orders_settings(database_url, downstreams, amqp_url, **SETTLE))
    before = recovered("confirmed")
    async with serve_in_process(app):
        order_id = await pending_order(app, order_body((2, 3, 100)))
        lines = [{"product_id": 2, "quantity": 3}]
        reserve = {"order_id": str(order_id), "items": lines}
        assert (await downstreams.inventory.post("/reservations", json=reserve)).status_code == 201
        card = {"number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
        charge = {"order_id": str(order_id), "amount_cents": 300, "currency": "USD", "card": card}
        assert (await downstreams.payments.post("/charges", json=charge)).status_code == 201

        async def confirmed() -> bool:
            return (await order_status(database_url, order_id))[0] == "confirmed"

        await wait_for(confirmed, "the recovered order confirmed")
        event = await next_event(events)
    assert (event["type"], event["order_id"]) == ("order.placed", str(order_id))
    assert await stock(downstreams, 2) == 7
    assert recovered("confirmed") == before + 1
    assert not await fetch(database_url, "SELECT * FROM checkout_jobs")


async def test_a_pending_order_never_charged_is_failed_and_its_stock_released(
    database_url: str, downstreams: Downstreams, amqp_url: str
) -> None:
    """An order left pending after its reservation but before any charge is failed
    (checkout_interrupted) and its stock given back."""
    app = create_app(orders_settings(database_url, downstreams, amqp_url, **SETTLE))
    async with serve_in_process(app):
        order_id = await pending_order(app, order_body((3, 4, 100)))
        reserve = {"order_id": str(order_id), "items": [{"product_id": 3, "quantity": 4}]}
        assert (await downstreams.inventory.post("/reservations", json=reserve)).status_code == 201
        assert await stock(downstreams, 3) == 6

        async def released() -> bool:
            jobs = await fetch(database_url, "SELECT * FROM checkout_jobs")
            return not jobs and await stock(downstreams, 3) == 10

        await wait_for(released, "the interrupted order's stock back")
    assert await order_status(database_url, order_id) == ("failed", "checkout_interrupted")


async def test_a_charge_whose_answer_was_lost_is_refunded(
    database_url: str, downstreams: Downstreams, amqp_url: str, tmp_path: Path
) -> None:
    """A charge the bank made after orders stopped waiting (its outcome unknown at the
    checkout) is refunded once the order settles: no money is kept for a failed order."""
    slow_bank = PaymentsSettings(
        data_dir=str(tmp_path), bank_latency_ms=800, bank_latency_jitter=0, random_seed=1
    )
    async with serve_on_port(create_payments(slow_bank)) as payments_url:
        settings = orders_settings(
            database_url, downstreams, amqp_url, payments_url=payments_url, **SETTLE
        )
        async with serve_in_process(create_app(settings)) as orders:
            response = await orders.post(
                "/orders", json=order_body((4, 1, 250)), headers={"Request-Timeout": "0.5"}
            )
            assert response.status_code == 504
            (row,) = await fetch(database_url, "SELECT id FROM orders")
            charge_url = f"{payments_url}/charges/{row['id']}"

            async def refunded() -> bool:
                answer = await downstreams.payments.get(charge_url)
                return answer.status_code == 200 and answer.json()["status"] == "refunded"

            await wait_for(refunded, "the late charge refunded")
            await wait_for(
                lambda: _no_jobs(database_url), "the compensation done after the settle time"
            )
    assert await stock(downstreams, 4) == 10


def _retries() -> float:
    return sum(
        REGISTRY.get_sample_value("obslab_checkout_job_retries_total", {"kind": kind}) or 0.0
        for kind in ("resolve", "compensate")
    )


async def _no_jobs(database_url: str) -> bool:
    return not await fetch(database_url, "SELECT * FROM checkout_jobs")


async def test_a_release_a_peer_refused_is_done_when_it_is_back(
    database_url: str, downstreams: Downstreams, amqp_url: str
) -> None:
    """An interrupted order whose inventory does not answer is retried (counted, the error
    kept on its job) until inventory is back; then it is failed, its stock released."""
    dead_inventory = f"http://127.0.0.1:{free_port()}"
    settings = orders_settings(database_url, downstreams, amqp_url, **SETTLE)
    app = create_app(settings)
    async with serve_in_process(app):
        recovery = app.state.recovery
        order_id = await pending_order(app, order_body((5, 2, 100)))
        reserve = {"order_id": str(order_id), "items": [{"product_id": 5, "quantity": 2}]}
        assert (await downstreams.inventory.post("/reservations", json=reserve)).status_code == 201
        # Inventory unreachable (the reservation stands): the recovery cannot release.
        real_inventory = recovery.inventory.http.base_url
        recovery.inventory.http.base_url = dead_inventory

        retries = _retries()

        async def retried() -> bool:
            jobs = await fetch(database_url, "SELECT attempts, last_error FROM checkout_jobs")
            return bool(jobs) and jobs[0]["attempts"] >= 2 and jobs[0]["last_error"] is not None

        await wait_for(retried, "the job retried")
        assert _retries() > retries
        assert await stock(downstreams, 5) == 8
        recovery.inventory.http.base_url = real_inventory
        # The breaker to inventory opened meanwhile: it lets a trial call through soon.
        await wait_for(lambda: _no_jobs(database_url), "the job done", within_s=60)
    assert await stock(downstreams, 5) == 10
    assert await order_status(database_url, order_id) == ("failed", "checkout_interrupted")
