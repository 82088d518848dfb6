"""The gateway's rate limits: per client and route, shared through Redis, failing open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from gateway.main import create_app
from gateway.settings import Settings
from tests.support.apps import serve_in_process
from tests.support.auth import minted_headers
from tests.support.backends import free_port

#: Tiny, so a test reaches the limit in a few requests and sees it lift within seconds.
LIMIT = "3 per 2 seconds"
PRODUCTS = "/api/products"

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def settings(redis_url: str, nowhere: str) -> Settings:
    """A tiny limit on product lists, counted in the tests' Redis; catalog down, so every
    list is a quick 503, limited all the same."""
    return Settings(
        catalog_url=nowhere,
        orders_url=nowhere,
        redis_url=redis_url,
        rate_limit_routes={f"GET {PRODUCTS}": LIMIT},
    )


@pytest.fixture
def limited(settings: Settings) -> GatewayFactory:
    """Start gateways (replicas) with those settings, changed by keyword."""

    def start(**changes: object) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serve_in_process(create_app(settings.model_copy(update=changes)))

    return start


def limited_count(route: str) -> float:
    return REGISTRY.get_sample_value("obslab_rate_limited_total", {"route": route}) or 0.0


async def until_refused(client: httpx.AsyncClient, **kwargs: object) -> httpx.Response:
    """Send product lists until one is refused (a window may turn over once meanwhile)."""
    for _ in range(20):
        response = await client.get(PRODUCTS, **kwargs)  # type: ignore[arg-type]
        if response.status_code == 429:
            return response
    raise AssertionError("never refused")


async def test_every_answer_says_where_the_client_stands(limited: GatewayFactory) -> None:
    """An answer under the limit carries RateLimit-Limit/-Remaining/-Reset."""
    async with limited() as client:
        response = await client.get(PRODUCTS)
    assert response.status_code == 503  # catalog is down; the limit applies regardless
    assert response.headers["ratelimit-limit"] == "3"
    assert int(response.headers["ratelimit-remaining"]) in (0, 1, 2)
    assert 1 <= int(response.headers["ratelimit-reset"]) <= 2


async def test_over_the_limit_is_429_with_headers_then_recovers(limited: GatewayFactory) -> None:
    """Past the limit: 429 ``too_many_requests`` with Retry-After and RateLimit-* headers, the
    security headers, counted by route; once the window has passed, requests go through again."""
    before = limited_count(PRODUCTS)
    async with limited() as client:
        refused = await until_refused(client)
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert int(refused.headers["ratelimit-reset"]) >= 1
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert limited_count(PRODUCTS) >= before + 1

        deadline = time.monotonic() + 15
        while (response := await client.get(PRODUCTS)).status_code == 429:
            assert time.monotonic() < deadline, "the limit never lifted"
            await asyncio.sleep(0.1)  # a poll interval, not a wait for the outcome
        assert response.status_code == 503


async def test_limits_are_per_client_and_per_route(
    limited: GatewayFactory, settings: Settings
) -> None:
    """One client over its limit leaves another client, and another route, unlimited."""
    async with limited() as client:
        await until_refused(client)  # this address is over the limit
        with_token = await client.get(PRODUCTS, headers=minted_headers(settings))
        other_route = await client.get(f"{PRODUCTS}/1")
    assert with_token.status_code == 503  # a token's subject is another client
    assert other_route.status_code == 503
    assert other_route.headers["ratelimit-limit"] == "100"  # the default limit


async def test_replicas_share_one_limit(limited: GatewayFactory) -> None:
    """A client over its limit at one replica is over it at the other too (Redis counts)."""
    async with limited() as first, limited() as second:
        await until_refused(first)
        assert (await second.get(PRODUCTS)).status_code == 429


async def test_a_redis_outage_fails_open(limited: GatewayFactory) -> None:
    """Without Redis, requests pass unlimited (no 500): logged once and counted."""
    errors = REGISTRY.get_sample_value("obslab_rate_limit_errors_total") or 0.0
    down = f"redis://127.0.0.1:{free_port()}/0"
    gateway = limited(redis_url=down)  # made first: making an app configures logging
    with capture_logs() as logs:
        async with gateway as client:
            answers = [await client.get(PRODUCTS) for _ in range(5)]
    assert [a.status_code for a in answers] == [503] * 5
    assert all("ratelimit-limit" not in a.headers for a in answers)
    assert (REGISTRY.get_sample_value("obslab_rate_limit_errors_total") or 0) >= errors + 1
    assert [e["event"] for e in logs].count("ratelimit.store_unavailable") == 1
