"""ServiceClient's resilience layers: retries, breaker, bulkhead and deadline, on fake peers.

The downstream is an ``httpx.MockTransport`` (the client's own logic) or an
in-process app (the deadline crossing two hops through the real middleware).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

import obskit
from obskit import (
    DEADLINE_HEADER,
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    DownstreamError,
    ServiceClient,
    ServiceSettings,
)
from obskit._deadline import deadline, remaining
from tests.support.apps import serve_in_process


class Peer:
    """A fake downstream: answers each request with the next status of a script."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(status, json={})


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., ServiceClient]]:
    """Build ServiceClients over a fake peer, each named apart so its metrics are its own."""
    clients: list[ServiceClient] = []

    def make(handler: Any, **settings: Any) -> ServiceClient:
        name = f"peer-{uuid.uuid4().hex[:8]}"
        transport = httpx.MockTransport(handler)
        client = ServiceClient(
            name, "http://peer", ServiceSettings(**settings), transport=transport
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def retries(client: ServiceClient, attempt: str) -> float:
    labels = {"downstream": client.peer_service, "attempt": attempt}
    return REGISTRY.get_sample_value("obslab_retry_attempts_total", labels) or 0.0


async def test_a_get_is_retried_up_to_its_attempts(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A GET answered 503 every time is tried retry_attempts times; each retry counted, logged."""
    peer = Peer(503)
    client = make_client(peer, retry_attempts=3)
    with capture_logs() as logs, pytest.raises(DownstreamError):
        await client.request("GET", "/things")
    assert len(peer.requests) == 3
    assert (retries(client, "1"), retries(client, "2"), retries(client, "3")) == (1, 1, 0)
    assert [e["attempt"] for e in logs if e["event"] == "retry.scheduled"] == [1, 2]


async def test_a_retry_that_succeeds_returns_the_answer(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A 502 then a 200: the caller gets the 200, after one retry."""
    peer = Peer(502, 200)
    client = make_client(peer)
    response = await client.request("GET", "/things")
    assert response.status_code == 200
    assert len(peer.requests) == 2


async def test_retries_and_transitions_are_events_on_the_current_span(
    make_client: Callable[..., ServiceClient],
) -> None:
    """Each retry and the breaker's opening add an event to the span the call is made in."""
    spans = InMemorySpanExporter()
    obskit.setup_tracing("kit-test").add_span_processor(SimpleSpanProcessor(spans))
    client = make_client(Peer(503), retry_attempts=3, breaker_minimum_calls=3)
    try:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("checkout"), pytest.raises(DownstreamError):
            await client.request("GET", "/things")
        (span,) = [s for s in spans.get_finished_spans() if s.name == "checkout"]
    finally:
        spans.shutdown()  # the provider is the process's: stop collecting into this one
    names = [event.name for event in span.events]
    assert names == ["retry.scheduled", "retry.scheduled", "breaker.opened"]
    assert span.events[2].attributes is not None
    assert span.events[2].attributes["downstream"] == client.peer_service


async def test_a_slow_answer_times_out_and_is_retried(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A GET slower than its per-call timeout is a 504 timeout, tried again, then answered."""
    answers = 0

    async def slow_then_fast(request: httpx.Request) -> httpx.Response:
        nonlocal answers
        answers += 1
        if answers == 1:
            await asyncio.sleep(30)  # cut off by the 0.05 s timeout long before
        return httpx.Response(200, json={})

    client = make_client(slow_then_fast)
    response = await client.request("GET", "/things", timeout=0.05)
    assert response.status_code == 200
    assert answers == 2
    failed = {"downstream": client.peer_service, "outcome": "failed"}
    assert REGISTRY.get_sample_value("obslab_breaker_calls_total", failed) == 1


async def test_a_post_without_idempotency_key_is_never_retried(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A POST that fails is tried once: repeating it could do its work twice."""
    peer = Peer(503)
    client = make_client(peer)
    with pytest.raises(DownstreamError):
        await client.request("POST", "/charges", json={})
    assert len(peer.requests) == 1
    assert retries(client, "1") == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"headers": {"Idempotency-Key": "k-1"}}, {"idempotent": True}],
    ids=["idempotency-key", "idempotent-by-design"],
)
async def test_a_post_safe_to_repeat_is_retried(
    make_client: Callable[..., ServiceClient], kwargs: dict[str, Any]
) -> None:
    """A POST with an Idempotency-Key, or declared idempotent, is retried like a GET."""
    peer = Peer(503, 201)
    client = make_client(peer)
    response = await client.request("POST", "/orders", json={}, **kwargs)
    assert response.status_code == 201
    assert len(peer.requests) == 2


async def test_a_500_is_not_retried(make_client: Callable[..., ServiceClient]) -> None:
    """A 500 is a bug downstream, not a passing failure: no retry."""
    peer = Peer(500)
    client = make_client(peer)
    with pytest.raises(DownstreamError):
        await client.request("GET", "/things")
    assert len(peer.requests) == 1


async def test_a_downstream_refusal_is_not_retried(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A peer's 503 circuit_open is not retried, nor held against the peer by our breaker."""
    requests: list[httpx.Request] = []

    def refusing_peer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = {"error": {"code": "circuit_open", "message": "open"}}
        return httpx.Response(503, json=body, headers={"Retry-After": "4"})

    client = make_client(refusing_peer, breaker_minimum_calls=1)
    with pytest.raises(DownstreamError) as failed:
        await client.request("GET", "/things")
    # Passed on as it is: the caller learns why, and when to come back.
    assert (failed.value.status_code, failed.value.code) == (503, "circuit_open")
    assert failed.value.headers == {"Retry-After": "4"}
    assert len(requests) == 1
    assert client.breaker.state == "closed"  # the peer is healthy: its dependency is not


async def test_a_4xx_is_an_answer_not_a_failure(make_client: Callable[..., ServiceClient]) -> None:
    """A 404 comes back to the caller, is not retried, and counts as a success for the breaker."""
    peer = Peer(404)
    client = make_client(peer, breaker_minimum_calls=1)
    assert (await client.request("GET", "/things/9")).status_code == 404
    assert len(peer.requests) == 1
    assert client.breaker.state == "closed"


async def test_retries_stop_at_the_breaker(make_client: Callable[..., ServiceClient]) -> None:
    """Once the breaker opens mid-retries, the retry stops; later calls never reach the peer."""
    peer = Peer(503)
    client = make_client(peer, retry_attempts=5, breaker_window_size=2, breaker_minimum_calls=2)
    with pytest.raises(CircuitOpen) as refused:
        await client.request("GET", "/things")
    assert len(peer.requests) == 2  # two failures opened it; the third try was refused
    assert refused.value.status_code == 503
    assert refused.value.code == "circuit_open"
    with pytest.raises(CircuitOpen):
        await client.request("GET", "/things")
    assert len(peer.requests) == 2
    assert retries(client, "2") == 1  # the refused retry was scheduled, then not made
    assert retries(client, "3") == 0


async def test_the_retry_budget_dries_up_retries(make_client: Callable[..., ServiceClient]) -> None:
    """With 4 tokens, two failures spend the budget: then each call is tried once only."""
    peer = Peer(503)
    client = make_client(peer, retry_attempts=3, retry_budget_tokens=4, breaker_minimum_calls=100)
    with pytest.raises(DownstreamError):
        await client.request("GET", "/things")
    assert len(peer.requests) == 2  # 4 → 3 tokens: retry; 3 → 2: no more (half of 4)
    with pytest.raises(DownstreamError):
        await client.request("GET", "/things")
    assert len(peer.requests) == 3


async def test_a_full_bulkhead_refuses_at_once(make_client: Callable[..., ServiceClient]) -> None:
    """With one call in flight and a limit of one, the next is refused without reaching the peer."""
    entered, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow_peer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        entered.set()
        await release.wait()
        return httpx.Response(200, json={})

    client = make_client(slow_peer, bulkhead_max_calls=1)
    first = asyncio.create_task(client.request("GET", "/things"))
    async with asyncio.timeout(30):
        await entered.wait()
    with pytest.raises(BulkheadFull) as refused:
        await client.request("GET", "/things")
    assert (refused.value.status_code, refused.value.code) == (503, "bulkhead_full")
    rejected = {"downstream": client.peer_service}
    assert REGISTRY.get_sample_value("obslab_bulkhead_rejected_total", rejected) == 1
    release.set()
    assert (await first).status_code == 200
    assert calls == 1
    assert client.bulkhead.in_use == 0


async def test_the_budget_left_travels_in_the_header(
    make_client: Callable[..., ServiceClient],
) -> None:
    """Within a 2 s budget, the peer is told a little less than 2 s; with none, a little
    less than the per-call timeout."""
    peer = Peer(200)
    client = make_client(peer, http_timeout_s=5.0)
    with deadline(2.0):
        await client.request("GET", "/things")
    await client.request("GET", "/things")
    sent = [float(r.headers[DEADLINE_HEADER]) for r in peer.requests]
    assert 0 < sent[0] <= 2.0 - 0.05
    assert sent[1] == 5.0 - 0.05  # what we wait, less the headroom for the peer to give up


async def test_a_spent_budget_makes_no_call(make_client: Callable[..., ServiceClient]) -> None:
    """When the request's budget is spent, the client refuses (504) and the peer sees nothing."""
    peer = Peer(200)
    client = make_client(peer)
    with deadline(0), pytest.raises(DeadlineExceeded) as refused:
        await client.request("GET", "/things")
    assert (refused.value.status_code, refused.value.code) == (504, "deadline_exceeded")
    assert peer.requests == []


async def test_a_compensation_runs_without_the_deadline(
    make_client: Callable[..., ServiceClient],
) -> None:
    """A call made with within_deadline=False goes out even when the budget is spent."""
    peer = Peer(200)
    client = make_client(peer)
    with deadline(0):
        await client.request("POST", "/release", within_deadline=False)
    assert len(peer.requests) == 1


async def test_with_resilience_off_the_client_only_calls(
    make_client: Callable[..., ServiceClient],
) -> None:
    """resilience=False: no retry, no deadline header, no breaker (the bench's baseline)."""
    peer = Peer(503)
    client = make_client(peer, resilience=False, breaker_minimum_calls=1)
    for _ in range(3):
        with pytest.raises(DownstreamError):
            await client.request("GET", "/things")
    assert len(peer.requests) == 3
    assert DEADLINE_HEADER not in peer.requests[0].headers


def hop(
    name: str, next_hop: ServiceClient | None, seen: dict[str, Any], *, edge: bool = False
) -> FastAPI:
    """A service that records the budget it got, and calls ``next_hop`` if it has one."""
    settings = ServiceSettings(
        service_name=name, request_budget_s=10.0, deadline_from_caller=not edge
    )
    app = FastAPI(telemetry=obskit.fastapi_telemetry(settings))
    obskit.instrument_service(app, settings)

    @app.get("/work")
    async def read_work(request: Request) -> dict[str, str]:
        seen[name] = {"header": request.headers.get(DEADLINE_HEADER), "left": remaining()}
        if next_hop is not None:
            await next_hop.request("GET", "/work")
        return {"ok": name}

    return app


async def test_the_deadline_crosses_two_hops() -> None:
    """A → B → C: each hop starts with what its caller will still wait, never more."""
    seen: dict[str, Any] = {}
    settings = ServiceSettings()
    async with serve_in_process(hop("c", None, seen)) as c:
        to_c = ServiceClient("c", "http://c", settings, transport=c._transport)
        async with serve_in_process(hop("b", to_c, seen)) as b:
            response = await b.get("/work", headers={DEADLINE_HEADER: "3"})
        await to_c.aclose()
    assert response.status_code == 200
    assert seen["b"]["header"] == "3"
    assert 0 < seen["b"]["left"] <= 3.0
    assert 0 < float(seen["c"]["header"]) <= 3.0
    assert 0 < seen["c"]["left"] <= float(seen["c"]["header"])


async def test_a_hop_whose_downstream_hangs_gives_up_before_its_caller() -> None:
    """edge → b → c, c never answering: b's budget ends first, so the edge gets b's 504
    deadline_exceeded (a refusal) rather than its own timeout, and its breaker to b,
    which would open at the first failure, stays closed: only the hop next to the
    fault is blamed."""
    settings = ServiceSettings()
    c_settings = ServiceSettings(service_name="c")
    c = FastAPI(telemetry=obskit.fastapi_telemetry(c_settings))
    obskit.instrument_service(c, c_settings)

    @c.get("/work")
    async def read_work() -> None:
        await asyncio.Event().wait()  # hangs until cancelled

    async with serve_in_process(c) as c_client:
        to_c = ServiceClient("c", "http://c", settings, transport=c_client._transport)
        async with serve_in_process(hop("b", to_c, {})) as b_client:
            to_b = ServiceClient(
                "b",
                "http://b",
                ServiceSettings(breaker_minimum_calls=1, retry_attempts=1),
                transport=b_client._transport,
            )
            with deadline(1.0), pytest.raises(DownstreamError) as failed:
                await to_b.request("GET", "/work")
            await to_b.aclose()
        await to_c.aclose()
    assert (failed.value.status_code, failed.value.code) == (504, "deadline_exceeded")
    assert to_b.breaker.state == "closed"


async def test_a_caller_that_has_given_up_gets_504_and_nothing_runs() -> None:
    """Request-Timeout: 0 is answered 504 deadline_exceeded before the handler runs."""
    seen: dict[str, Any] = {}
    async with serve_in_process(hop("b", None, seen)) as b:
        response = await b.get("/work", headers={DEADLINE_HEADER: "0"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert seen == {}


async def test_the_public_edge_keeps_its_own_budget() -> None:
    """With deadline_from_caller off (the gateway), a caller's tiny budget is ignored."""
    seen: dict[str, Any] = {}
    async with serve_in_process(hop("edge", None, seen, edge=True)) as edge:
        response = await edge.get("/work", headers={DEADLINE_HEADER: "0"})
    assert response.status_code == 200
    assert seen["edge"]["left"] > 1.0  # the edge's own 10 s, not the caller's 0


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e9", "", "0x10", "1.23456", "2s"])
async def test_a_bad_deadline_header_is_ignored(value: str) -> None:
    """A Request-Timeout that is not a plain number of seconds is ignored: never a 4xx or
    500, and the service keeps its own 10 s budget (none of these values is read as 1 or 2)."""
    seen: dict[str, Any] = {}
    async with serve_in_process(hop("b", None, seen)) as b:
        response = await b.get("/work", headers={DEADLINE_HEADER: value})
    assert response.status_code == 200
    assert 5.0 < seen["b"]["left"] <= 10.0  # the service's own budget


async def test_a_deadline_header_with_spaces_around_is_read() -> None:
    """Spaces around the value are HTTP's optional whitespace, not part of it."""
    seen: dict[str, Any] = {}
    async with serve_in_process(hop("b", None, seen)) as b:
        response = await b.get("/work", headers={DEADLINE_HEADER: " 2 "})
    assert response.status_code == 200
    assert 0 < seen["b"]["left"] <= 2.0


async def test_each_retry_waits_a_full_jitter_of_a_doubling_capped_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait before retry n is drawn uniformly from [0, min(max, initial * 2^(n-1))]:
    the ceilings double, stop at the maximum, and the drawn wait is what is waited and
    logged. The random draw is recorded (it is the one thing made up here); the waits
    are real, a few milliseconds."""
    from obskit._retry import RetryBudget, RetryPolicy, call_with_retries

    obskit.set_retry_testing(False)  # the autouse fixture sets it back
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high / 2

    monkeypatch.setattr("obskit._retry.random.uniform", uniform)

    async def failing() -> None:
        raise ConnectionError("down")

    policy = RetryPolicy(attempts=5, wait_initial_s=0.001, wait_max_s=0.004)
    with capture_logs() as logs, pytest.raises(ConnectionError):
        await call_with_retries(
            "peer",
            failing,
            policy=policy,
            budget=RetryBudget(tokens=100, ratio=0.1),
            retryable=lambda exc: isinstance(exc, ConnectionError),
        )
    assert draws == [(0, 0.001), (0, 0.002), (0, 0.004), (0, 0.004)]
    waits = [log["wait_s"] for log in logs if log["event"] == "retry.scheduled"]
    assert waits == [round(high / 2, 3) for _, high in draws]
