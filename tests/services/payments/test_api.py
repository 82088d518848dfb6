"""Payments against real PostgreSQL and a simulated bank: charge once, keep no card number."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

import obskit
from payments.main import create_app
from payments.settings import Settings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.auth import service_headers

VISA = "4242424242424242"
DECLINED = "4000000000000002"


def bank_calls() -> float:
    """How many times the bank has been asked, whatever it answered."""
    return sum(
        REGISTRY.get_sample_value("obslab_bank_request_duration_seconds_count", {"outcome": o})
        or 0.0
        for o in ("approved", "declined", "error")
    )


def charge(number: str = VISA, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "order_id": str(uuid.uuid4()),
        "amount_cents": 4200,
        "currency": "USD",
        "card": {"number": number, "expiry": "12/99", "cvc": "123"},
    }
    return body | changes


@pytest.fixture
def app(database_url: str) -> FastAPI:
    return create_app(Settings(database_url=database_url, bank_latency_ms=1, random_seed=7))


@pytest.fixture
async def payments(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(app) as client:
        yield client


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans the process ends while the test runs."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    obskit.setup_tracing("payments").add_span_processor(processor)
    yield exporter
    processor.shutdown()  # the provider keeps the processor; a stopped one records nothing


async def test_charge_stores_only_brand_and_last4(
    payments: httpx.AsyncClient, database_url: str
) -> None:
    """A successful charge answers 201; the database keeps its last four digits, not the number."""
    body = charge("4242 4242 4242 4242")
    response = await payments.post("/charges", json=body)

    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "succeeded"
    assert created["order_id"] == body["order_id"]
    assert (created["card_brand"], created["card_last4"]) == ("visa", "4242")
    assert (await payments.get(f"/charges/{body['order_id']}")).json() == created

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT row_to_json(c)::text AS row FROM charges c")
    finally:
        await connection.close()
    assert len(rows) == 1
    assert "4242" in rows[0]["row"]
    assert VISA not in rows[0]["row"]


async def test_declined_card_is_a_402(payments: httpx.AsyncClient) -> None:
    """The always-declined test card answers 402 card_declined, and again on a repeat."""
    body = charge(DECLINED)
    first = await payments.post("/charges", json=body)
    calls = bank_calls()
    again = await payments.post("/charges", json=body)

    for response in (first, again):
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "card_declined"
    assert bank_calls() == calls
    assert (await payments.get(f"/charges/{body['order_id']}")).json()["status"] == "declined"


async def test_repeat_returns_the_stored_charge_without_the_bank(
    app: FastAPI, payments: httpx.AsyncClient
) -> None:
    """A second charge of the same order answers 200 from the database; the bank is not asked."""
    body = charge()
    first = await payments.post("/charges", json=body)
    app.state.bank.failure_rate = 1.0  # the bank would fail if it were asked
    calls = bank_calls()
    again = await payments.post("/charges", json=body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert bank_calls() == calls


async def test_bank_failure_is_a_503_and_stores_nothing(
    app: FastAPI, payments: httpx.AsyncClient
) -> None:
    """When the bank fails the answer is 503 bank_unavailable, and a later retry may charge."""
    app.state.bank.failure_rate = 1.0
    body = charge()
    failed = await payments.post("/charges", json=body)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "bank_unavailable"
    assert (await payments.get(f"/charges/{body['order_id']}")).status_code == 404

    app.state.bank.failure_rate = 0.0
    assert (await payments.post("/charges", json=body)).status_code == 201


async def test_a_bank_slower_than_its_timeout_charges_nothing(
    app: FastAPI, payments: httpx.AsyncClient
) -> None:
    """A bank answer slower than bank_timeout_s is none: 503 bank_unavailable after the
    timeout and nothing stored, so a charge that started ends within that time."""
    app.state.bank.latency_ms, app.state.bank.jitter, app.state.bank.timeout_s = 5000, 0, 0.2
    body = charge()
    failed = await payments.post("/charges", json=body)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "bank_unavailable"
    assert (await payments.get(f"/charges/{body['order_id']}")).status_code == 404


async def test_simultaneous_charges_of_one_order_reach_the_bank_once(database_url: str) -> None:
    """Five simultaneous charges of one order call the bank once and all return that charge."""
    # A slow, steady bank keeps the first charge in flight while the others arrive.
    settings = Settings(database_url=database_url, bank_latency_ms=200, bank_latency_jitter=0)
    body = charge()
    calls = bank_calls()
    async with (
        serve_on_port(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=service_headers("payments")) as client,
    ):
        answers = await asyncio.gather(*(client.post("/charges", json=body) for _ in range(5)))

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["charge_id"] for a in answers}) == 1
    assert bank_calls() == calls + 1


async def test_refund_is_idempotent(payments: httpx.AsyncClient) -> None:
    """A refund marks the charge refunded; refunding again answers the same."""
    body = charge()
    await payments.post("/charges", json=body)
    for _ in range(2):
        response = await payments.post(f"/charges/{body['order_id']}/refund")
        assert response.status_code == 200
        assert response.json()["status"] == "refunded"
    assert (await payments.get(f"/charges/{body['order_id']}")).json()["status"] == "refunded"


def refunds() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("obslab_refunds_total") or 0.0
    return count, REGISTRY.get_sample_value("obslab_refunded_cents_total") or 0.0


async def test_a_refund_is_counted_once(payments: httpx.AsyncClient) -> None:
    """obslab_refunds_total and obslab_refunded_cents_total count a refund once, however
    often it is asked for."""
    body = charge(amount_cents=1234)
    await payments.post("/charges", json=body)
    before = refunds()
    for _ in range(3):
        await payments.post(f"/charges/{body['order_id']}/refund")
    count, cents = refunds()
    assert (count - before[0], cents - before[1]) == (1, 1234)


async def test_declined_charge_cannot_be_refunded(payments: httpx.AsyncClient) -> None:
    """Refunding a declined charge is a 409 charge_not_refundable."""
    body = charge(DECLINED)
    await payments.post("/charges", json=body)
    response = await payments.post(f"/charges/{body['order_id']}/refund")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "charge_not_refundable"


@pytest.mark.parametrize("path", ["/charges/{id}", "/charges/{id}/refund"])
async def test_unknown_order_is_a_404(payments: httpx.AsyncClient, path: str) -> None:
    """An order that was never charged has no charge to read or refund."""
    url = path.format(id=uuid.uuid4())
    response = await (payments.get(url) if "refund" not in path else payments.post(url))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "charge_not_found"


@pytest.mark.parametrize(
    ("number", "card_changes"),
    [
        ("4242424242424241", {}),  # the check digit is wrong
        ("4242abcd42424242", {}),
        ("4242 4242 4242 4242 4242 4242", {}),  # too long
        ("42424242", {}),  # too short
        (VISA, {"expiry": "01/20"}),  # expired
        (VISA, {"expiry": "13/30"}),
        (VISA, {"cvc": "12"}),
        (VISA, {"cvc": "12a"}),
        (VISA, {"pin": "0000"}),
    ],
)
async def test_bad_card_is_a_422_that_does_not_echo_it(
    payments: httpx.AsyncClient, number: str, card_changes: dict[str, str]
) -> None:
    """A card that is malformed, invalid or expired is refused without quoting its number."""
    body = charge(number)
    body["card"] |= card_changes  # type: ignore[operator]
    response = await payments.post("/charges", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert number not in response.text
    assert number.replace(" ", "") not in response.text


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_cents": 0},
        {"amount_cents": 10_000_001},
        {"currency": "EUR"},
        {"order_id": "not-a-uuid"},
        {"card": None},
        {"tip_cents": 100},
    ],
)
async def test_bad_charge_is_a_422(payments: httpx.AsyncClient, changes: dict[str, object]) -> None:
    """Amounts out of range, other currencies, bad order ids and unknown fields are refused."""
    response = await payments.post("/charges", json=charge(**changes))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert VISA not in response.text


def _span_text(span: ReadableSpan) -> str:
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    return f"{span.name} {dict(span.attributes or {})} {events}"


async def test_card_number_reaches_no_log_span_or_metric(
    app: FastAPI, payments: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    """Through a success, a decline and a bank failure, no log, span or metric holds the number."""
    with structlog.testing.capture_logs() as logs:
        await payments.post("/charges", json=charge(VISA))
        await payments.post("/charges", json=charge(DECLINED))
        app.state.bank.failure_rate = 1.0
        await payments.post("/charges", json=charge(VISA))
    metrics = (await payments.get("/metrics")).text

    assert {"payment.succeeded", "payment.declined", "payment.bank_unavailable"} <= {
        log["event"] for log in logs
    }
    for number in (VISA, DECLINED):
        assert not [log for log in logs if number in repr(log)]
        assert not [s.name for s in spans.get_finished_spans() if number in _span_text(s)]
        assert number not in metrics

    bank_spans = [s for s in spans.get_finished_spans() if s.name == "bank.authorize"]
    assert len(bank_spans) == 3
    assert dict(bank_spans[0].attributes or {}) == {
        "payment.amount_cents": 4200,
        "payment.card.brand": "visa",
        "payment.bank.answer": "approved",
    }


async def test_sqlite_is_the_default_database(tmp_path) -> None:
    """Without a database URL, payments keeps its charges in SQLite under data_dir."""
    settings = Settings(data_dir=str(tmp_path), bank_latency_ms=1)
    async with serve_in_process(create_app(settings)) as client:
        body = charge()
        assert (await client.post("/charges", json=body)).status_code == 201
        assert (await client.post("/charges", json=body)).status_code == 200
    assert (tmp_path / "payments.sqlite3").exists()


async def test_ready_checks_the_database(payments: httpx.AsyncClient) -> None:
    """Readiness reports the one dependency payments owns, its database (not the bank)."""
    response = await payments.get("/health/ready")
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
