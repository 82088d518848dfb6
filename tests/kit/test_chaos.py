"""Fault injection: the fault model, its admin API and its guards, and each kind of
fault applied by a real app, with the faults in a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import ValidationError

import obskit
from catalog.main import create_app as create_catalog
from catalog.settings import Settings as CatalogSettings
from obskit._chaos import process
from payments.main import create_app as create_payments
from payments.settings import Settings as PaymentsSettings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.backends import free_port

TOKEN = "test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}


def make_app(redis_url: str, *, service: str = "chaos-test", token: str | None = TOKEN) -> FastAPI:
    settings = obskit.ServiceSettings(
        service_name=service,
        log_format="json",
        admin_token=token,
        redis_url=redis_url,
        chaos_refresh_s=0.1,
    )
    app = FastAPI(telemetry=obskit.fastapi_telemetry(settings))
    obskit.instrument_service(app, settings)

    # In a router of its own, as in every service (FastAPI keeps included routers apart).
    router = APIRouter()

    @router.post("/charges")
    async def create_charge() -> dict[str, str]:
        return {"status": "succeeded"}

    @router.get("/charges/{order_id}")
    async def read_charge(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    app.include_router(router)
    return app


@asynccontextmanager
async def client_from(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``host``, as the app sees it."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` until it holds, failing after 20 seconds (a generous deadline)."""
    async with asyncio.timeout(20):
        while not await condition():  # noqa: ASYNC110 (polling a service, no event to wait on)
            await asyncio.sleep(0.05)


def active(service: str, fault: str) -> float | None:
    return REGISTRY.get_sample_value("obslab_chaos_active", {"service": service, "fault": fault})


# ----------------------------------------------------------------- the fault model


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"kind": "latency"}, "needs ms > 0"),
        ({"kind": "slow_dependency", "ms": 100}, "needs a dependency"),
        ({"kind": "worker_crash", "route": "/charges"}, "route is an event type"),
        ({"kind": "latency", "ms": 5, "route": "order.placed"}, "route is a path template"),
        ({"kind": "error", "dependency": "redis"}, "takes no dependency"),
        ({"kind": "error", "duration_s": 3601}, "less than or equal to 3600"),
        ({"kind": "error", "status": 200}, "greater than or equal to 400"),
        ({"kind": "error", "probability": 0}, "greater than 0"),
        ({"kind": "teleport"}, "Input should be"),
        ({"kind": "error", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused(body: dict[str, object], problem: str) -> None:
    """A fault missing what its kind needs, or with a parameter out of range, is refused."""
    with pytest.raises(ValidationError, match=problem):
        obskit.FaultCreate.model_validate(body)


def test_a_fault_expires_in_five_minutes_unless_told() -> None:
    """Without ``duration_s`` a fault lasts 5 minutes: nothing stays broken by accident."""
    assert obskit.FaultCreate(kind="error").duration_s == 300


# ----------------------------------------------------------------- the admin API's guards


async def test_without_an_admin_token_the_admin_api_is_off(redis_url: str) -> None:
    """No token configured: the admin API answers 404 admin_disabled, even with a token."""
    async with serve_in_process(make_app(redis_url, token=None)) as client:
        response = await client.get("/admin/chaos/faults", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "admin_disabled"


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": f"Basic {TOKEN}"}],
)
async def test_a_missing_or_wrong_admin_token_is_a_401(
    redis_url: str, headers: dict[str, str]
) -> None:
    """Without the admin token as a bearer token: 401 with the JSON error, nothing changed."""
    async with serve_in_process(make_app(redis_url)) as client:
        response = await client.post("/admin/chaos/faults", json={"kind": "error"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/admin/chaos/faults", headers=ADMIN)).json() == []


async def test_the_admin_api_refuses_a_public_network_even_with_the_token(
    redis_url: str,
) -> None:
    """A caller outside the private networks is refused with 403, token or not."""
    async with client_from(make_app(redis_url), "203.0.113.9") as client:
        response = await client.get("/admin/chaos/faults", headers=ADMIN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_the_admin_api_refuses_a_request_that_came_through_a_proxy(
    redis_url: str,
) -> None:
    """A request carrying X-Forwarded-For came through a proxy: 403, token or not."""
    async with serve_in_process(make_app(redis_url)) as client:
        response = await client.get(
            "/admin/chaos/faults", headers={**ADMIN, "x-forwarded-for": "10.0.0.1"}
        )
    assert response.status_code == 403


async def test_a_private_network_with_the_token_may_inject(redis_url: str) -> None:
    """From a private address (a compose network) with the token, a fault is created."""
    async with client_from(make_app(redis_url), "172.18.0.1") as client:
        response = await client.post("/admin/chaos/faults", json={"kind": "error"}, headers=ADMIN)
    assert response.status_code == 201


async def test_a_bad_fault_is_a_422_and_changes_nothing(redis_url: str) -> None:
    """An invalid fault body answers 422 with the JSON error, and no fault is stored."""
    async with serve_in_process(make_app(redis_url)) as client:
        response = await client.post(
            "/admin/chaos/faults", json={"kind": "latency", "ms": -5}, headers=ADMIN
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert (await client.get("/admin/chaos/faults", headers=ADMIN)).json() == []


async def test_the_admin_api_is_not_in_the_openapi_document(redis_url: str) -> None:
    """The admin routes are no part of the service's published API."""
    async with serve_in_process(make_app(redis_url)) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]


# ----------------------------------------------------------------- HTTP faults


async def test_an_error_fault_hits_only_its_route_until_cleared(redis_url: str) -> None:
    """An error fault on /charges answers its status there, not on other routes nor on
    health; obslab_chaos_active counts it; clearing it ends it."""
    async with serve_in_process(make_app(redis_url)) as client:
        created = await client.post(
            "/admin/chaos/faults",
            json={"kind": "error", "status": 503, "route": "/charges"},
            headers=ADMIN,
        )
        assert created.status_code == 201
        fault = created.json()
        assert fault["expires_at"] - fault["created_at"] == 300

        refused = await client.post("/charges")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "chaos_injected"
        assert (await client.get("/charges/abc")).status_code == 200
        assert (await client.get("/health/live")).status_code == 200
        assert active("chaos-test", "error") == 1

        listed = (await client.get("/admin/chaos/faults", headers=ADMIN)).json()
        assert [f["id"] for f in listed] == [fault["id"]]
        deleted = await client.delete(f"/admin/chaos/faults/{fault['id']}", headers=ADMIN)
        assert deleted.status_code == 204
        assert (await client.post("/charges")).status_code == 200
        assert active("chaos-test", "error") == 0
        missing = await client.delete(f"/admin/chaos/faults/{fault['id']}", headers=ADMIN)
        assert missing.status_code == 404


async def test_a_route_template_matches_every_path_of_it(redis_url: str) -> None:
    """A fault on /charges/{order_id} hits /charges/a and /charges/b, not /charges."""
    async with serve_in_process(make_app(redis_url)) as client:
        await client.post(
            "/admin/chaos/faults",
            json={"kind": "error", "status": 500, "route": "/charges/{order_id}"},
            headers=ADMIN,
        )
        assert (await client.get("/charges/a")).status_code == 500
        assert (await client.get("/charges/b")).status_code == 500
        assert (await client.post("/charges")).status_code == 200


async def test_a_fault_ends_by_itself_when_it_expires(redis_url: str) -> None:
    """A fault of one second stops being applied, and leaves the list, once it expires."""
    async with serve_in_process(make_app(redis_url)) as client:
        await client.post(
            "/admin/chaos/faults", json={"kind": "error", "duration_s": 1}, headers=ADMIN
        )
        assert (await client.post("/charges")).status_code == 503

        async def healed() -> bool:
            return (await client.post("/charges")).status_code == 200

        await eventually(healed)
        assert (await client.get("/admin/chaos/faults", headers=ADMIN)).json() == []


async def test_every_replica_of_a_service_applies_its_faults(redis_url: str) -> None:
    """A fault set through one replica is applied by another of the same service (and
    not by another service): the faults live in Redis, not in a process."""
    replica_1, replica_2 = make_app(redis_url), make_app(redis_url)
    other = make_app(redis_url, service="chaos-other")
    async with (
        serve_in_process(replica_1) as first,
        serve_in_process(replica_2) as second,
        serve_in_process(other) as third,
    ):
        await first.post("/admin/chaos/faults", json={"kind": "error"}, headers=ADMIN)

        async def second_hit() -> bool:
            return (await second.post("/charges")).status_code == 503

        await eventually(second_hit)
        assert (await third.post("/charges")).status_code == 200
        cleared = await second.delete("/admin/chaos/faults", headers=ADMIN)
        assert cleared.json() == {"cleared": 1}

        async def first_healed() -> bool:
            return (await first.post("/charges")).status_code == 200

        await eventually(first_healed)


async def test_an_injected_latency_is_on_the_span_and_logged_once(redis_url: str) -> None:
    """Each delayed request's span has a chaos.injected event; the log says it once."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    obskit.setup_tracing("chaos-test").add_span_processor(processor)
    try:
        async with serve_in_process(make_app(redis_url)) as client:
            await client.post(
                "/admin/chaos/faults",
                json={"kind": "latency", "ms": 5, "jitter_ms": 5},
                headers=ADMIN,
            )
            with structlog.testing.capture_logs() as logs:
                for _ in range(3):
                    assert (await client.post("/charges")).status_code == 200
    finally:
        processor.shutdown()
    events = [
        event
        for span in exporter.get_finished_spans()
        if span.name == "POST /charges"
        for event in span.events
        if event.name == "chaos.injected"
    ]
    assert len(events) == 3
    assert events[0].attributes is not None and events[0].attributes["chaos.fault"] == "latency"
    assert [log["fault"] for log in logs if log["event"] == "chaos.injected"] == ["latency"]


async def test_an_abort_drops_the_connection(redis_url: str) -> None:
    """An abort fault closes the connection mid-answer: the caller gets no response."""
    async with serve_on_port(make_app(redis_url)) as url, httpx.AsyncClient() as client:
        created = await client.post(
            f"{url}/admin/chaos/faults", json={"kind": "abort", "route": "/charges"}, headers=ADMIN
        )
        assert created.status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{url}/charges")
        assert (await client.get(f"{url}/charges/a")).status_code == 200


async def test_a_memory_leak_stops_at_its_cap_and_ends_with_its_fault(redis_url: str) -> None:
    """Each request keeps ``kb`` until ``cap_mb`` is held; clearing the fault frees it."""
    app = make_app(redis_url)
    async with serve_in_process(app) as client:
        await client.post(
            "/admin/chaos/faults",
            json={"kind": "memory_leak", "kb": 1024, "cap_mb": 2},
            headers=ADMIN,
        )
        for _ in range(4):
            await client.post("/charges")
        assert len(app.state.chaos._leaked) == 2
        await client.delete("/admin/chaos/faults", headers=ADMIN)
        assert app.state.chaos._leaked == []


async def test_a_cpu_fault_still_answers(redis_url: str) -> None:
    """A cpu fault burns the event loop but the request is still answered."""
    async with serve_in_process(make_app(redis_url)) as client:
        await client.post("/admin/chaos/faults", json={"kind": "cpu", "ms": 5}, headers=ADMIN)
        with structlog.testing.capture_logs() as logs:
            assert (await client.post("/charges")).status_code == 200
    assert [log["fault"] for log in logs if log["event"] == "chaos.injected"] == ["cpu"]


# ----------------------------------------------------------------- Redis down


async def test_without_redis_a_service_has_no_faults_and_still_serves() -> None:
    """With the fault store unreachable the service answers as usual, and the admin API
    says 503 chaos_store_unavailable instead of failing with a 500."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    async with serve_in_process(make_app(unreachable)) as client:
        assert (await client.post("/charges")).status_code == 200
        response = await client.post("/admin/chaos/faults", json={"kind": "error"}, headers=ADMIN)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "chaos_store_unavailable"


# ----------------------------------------------------------------- workers


async def test_worker_faults_slow_or_crash_the_consumer(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """worker_slowdown pauses before a message; worker_crash ends the process (replaced
    here by a recorder)."""
    crashes: list[str] = []
    monkeypatch.setattr(process, "crash", lambda: crashes.append("crash"))
    async with serve_in_process(make_app(redis_url, service="chaos-worker")) as client:
        await obskit.worker_faults("chaos-worker")
        assert crashes == []
        await client.post("/admin/chaos/faults", json={"kind": "worker_crash"}, headers=ADMIN)
        await client.post(
            "/admin/chaos/faults", json={"kind": "worker_slowdown", "ms": 5}, headers=ADMIN
        )
        with structlog.testing.capture_logs() as logs:
            await obskit.worker_faults("chaos-worker")
    assert crashes == ["crash"]
    assert {log["fault"] for log in logs if log["event"] == "chaos.injected"} == {
        "worker_crash",
        "worker_slowdown",
    }


async def test_a_worker_fault_with_an_event_type_hits_only_those_messages(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """worker_crash limited to order.failed (the routing key) crashes the worker on
    those messages only."""
    crashes: list[str] = []
    monkeypatch.setattr(process, "crash", lambda: crashes.append("crash"))
    async with serve_in_process(make_app(redis_url, service="chaos-worker")) as client:
        injected = await client.post(
            "/admin/chaos/faults",
            json={"kind": "worker_crash", "route": "order.failed"},
            headers=ADMIN,
        )
        assert injected.status_code == 201, injected.text
        await obskit.worker_faults("chaos-worker", "order.placed")
        assert crashes == []
        await obskit.worker_faults("chaos-worker", "order.failed")
        assert crashes == ["crash"]


# ----------------------------------------------------------------- dependency faults


def charge_body() -> dict[str, object]:
    return {
        "order_id": str(uuid.uuid4()),
        "amount_cents": 4200,
        "currency": "USD",
        "card": {"number": "4242424242424242", "expiry": "12/99", "cvc": "123"},
    }


def payments(database_url: str, redis_url: str) -> FastAPI:
    """Payments with chaos on, its faults read every 0.1 s, a bank that answers at once."""
    settings = PaymentsSettings(
        database_url=database_url,
        bank_latency_ms=1,
        admin_token=TOKEN,
        redis_url=redis_url,
        chaos_refresh_s=0.1,
    )
    return create_payments(settings)


async def test_a_database_outage_is_a_503_and_a_slow_database_still_answers(
    database_url: str, redis_url: str
) -> None:
    """With its database "down" payments answers 503 database_unavailable; with it slow,
    the charge is made and the fault logged."""
    async with serve_in_process(payments(database_url, redis_url)) as client:
        outage = await client.post(
            "/admin/chaos/faults",
            json={"kind": "dependency_outage", "dependency": "database"},
            headers=ADMIN,
        )
        refused = await client.post("/charges", json=charge_body())
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "database_unavailable"

        await client.delete(f"/admin/chaos/faults/{outage.json()['id']}", headers=ADMIN)
        await client.post(
            "/admin/chaos/faults",
            json={"kind": "slow_dependency", "dependency": "database", "ms": 5},
            headers=ADMIN,
        )
        with structlog.testing.capture_logs() as logs:
            assert (await client.post("/charges", json=charge_body())).status_code == 201
    assert [log["fault"] for log in logs if log["event"] == "chaos.injected"] == ["slow_dependency"]


async def test_a_database_fault_with_a_route_hits_only_that_routes_queries(
    database_url: str, redis_url: str
) -> None:
    """A database outage limited to GET /charges/{order_id} makes that route answer 503
    while POST /charges, on the same database, still charges."""
    async with serve_in_process(payments(database_url, redis_url)) as client:
        injected = await client.post(
            "/admin/chaos/faults",
            json={
                "kind": "dependency_outage",
                "dependency": "database",
                "route": "/charges/{order_id}",
            },
            headers=ADMIN,
        )
        assert injected.status_code == 201, injected.text
        body = charge_body()
        charged = await client.post("/charges", json=body)
        assert charged.status_code == 201, charged.text
        refused = await client.get(f"/charges/{body['order_id']}")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "database_unavailable"


async def test_a_slow_database_is_not_waited_for_past_the_callers_budget(
    database_url: str, redis_url: str
) -> None:
    """With every query 2 s slow and a caller that gives 0.3 s, payments answers 504
    deadline_exceeded after its first query (the injected wait cut at the budget) and
    makes no charge: the bank is never called for a caller who has given up."""
    async with serve_in_process(payments(database_url, redis_url)) as client:
        injected = await client.post(
            "/admin/chaos/faults",
            json={"kind": "slow_dependency", "dependency": "database", "ms": 2000},
            headers=ADMIN,
        )
        assert injected.status_code == 201, injected.text
        body = charge_body()
        late = await client.post("/charges", json=body, headers={"Request-Timeout": "0.3"})
        assert late.status_code == 504
        assert late.json()["error"] | {"message": ""} == {
            "code": "deadline_exceeded",
            "message": "",
            "details": [{"downstream": "database"}],
        }
        await client.delete("/admin/chaos/faults", headers=ADMIN)
        assert (await client.get(f"/charges/{body['order_id']}")).status_code == 404


async def test_a_charge_the_bank_made_is_stored_though_the_budget_ran_out(
    database_url: str,
) -> None:
    """The bank answers after the caller's budget is spent: what it did is stored all
    the same (without_deadline), so a retry finds the charge and no card is charged
    twice."""
    slow_bank = PaymentsSettings(
        database_url=database_url, bank_latency_ms=600, bank_latency_jitter=0
    )
    async with serve_in_process(create_payments(slow_bank)) as client:
        body = charge_body()
        await client.post("/charges", json=body, headers={"Request-Timeout": "0.2"})
        stored = await client.get(f"/charges/{body['order_id']}")
        assert stored.status_code == 200, stored.text
        assert stored.json()["status"] == "succeeded"
        again = await client.post("/charges", json=body)
        assert again.status_code == 200  # the stored charge: the bank is not called again


async def test_a_cache_outage_degrades_the_catalog_to_its_database(
    database_url: str, redis_url: str
) -> None:
    """With catalog's Redis "down", products are still served (from PostgreSQL) and the
    failed lookups are counted as cache errors."""
    settings = CatalogSettings(
        database_url=database_url, redis_url=redis_url, admin_token=TOKEN, chaos_refresh_s=0.1
    )

    def errors() -> float:
        labels = {"cache": "product", "result": "error"}
        return REGISTRY.get_sample_value("obslab_cache_requests_total", labels) or 0.0

    async with serve_in_process(create_catalog(settings)) as client:
        await client.post(
            "/admin/chaos/faults",
            json={"kind": "dependency_outage", "dependency": "redis"},
            headers=ADMIN,
        )
        before = errors()
        response = await client.get("/products/1")
    assert response.status_code == 200
    assert errors() > before
