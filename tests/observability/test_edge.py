"""The edge (a real nginx with the lab's config) in front of two gateway replicas: what it
serves, what it never routes (/admin, /metrics), and its own refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import Settings
from obslab.native import lab, servers
from obslab.native.process import start_and_wait, stop_group
from obslab.repo import OBSERVABILITY
from tests.support.apps import serve_on_port
from tests.support.backends import free_port

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
#: What the edge must never route, however the path is spelled.
HIDDEN = [
    "/admin/chaos/faults",
    "/metrics",
    "/api/../admin/chaos/faults",
    "/api/%2e%2e/metrics",
    "/api/admin/chaos/faults",
    "/api/metrics",
    "/health/ready",
    "/docs",
]


@pytest.fixture(scope="module")
async def gateway_ports() -> AsyncIterator[tuple[int, int]]:
    """Two gateway replicas on ports (their services down: only the edge is under test)."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = Settings(catalog_url=nowhere, orders_url=nowhere, rate_limit_enabled=False)
    async with (
        serve_on_port(create_app(settings)) as first,
        serve_on_port(create_app(settings)) as second,
    ):
        yield int(first.rsplit(":", 1)[1]), int(second.rsplit(":", 1)[1])


def start_edge(tmp_path: Path, ports: tuple[int, int], changes: dict[str, str]) -> Iterator[str]:
    """nginx with the lab's rendered config (``changes`` replaced in it); its URL."""
    edge_port = free_port()
    conf = lab._render(
        OBSERVABILITY / "nginx" / "nginx.conf",
        tmp_path / "nginx" / "nginx.conf",
        {
            "edge_port": edge_port,
            "status_port": free_port(),
            "gateway_1_port": ports[0],
            "gateway_2_port": ports[1],
        },
    )
    text = conf.read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    conf.write_text(text)
    for folder in ("logs", "tmp"):
        (tmp_path / "nginx" / folder).mkdir(parents=True, exist_ok=True)
    process = start_and_wait(
        servers.nginx(conf, tmp_path / "nginx", edge_port), tmp_path / "nginx.log"
    )
    try:
        yield f"http://127.0.0.1:{edge_port}"
    finally:
        stop_group(process.pid)


@pytest.fixture
def edge(tmp_path: Path, gateway_ports: tuple[int, int]) -> Iterator[str]:
    """The edge as the lab runs it."""
    yield from start_edge(tmp_path, gateway_ports, {})


async def raw_get(url: str, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (httpx would resolve ``..``); (status, whole answer)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = (await asyncio.wait_for(reader.read(), 30)).decode("latin-1")
    writer.close()
    await writer.wait_closed()
    return int(answer.split(" ", 2)[1]), answer


def assert_secured(headers: httpx.Headers) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get_list(name) == [value], name  # once: never nginx's and the gateway's
    assert headers["server"] == "nginx"  # no version


async def test_the_edge_serves_the_api_with_the_gateways_headers(edge: str) -> None:
    """/api/ reaches a gateway (here: 503, its services are down), headers set once."""
    async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
        response = await client.get("/api/products")
    assert response.status_code == 503
    assert response.json()["error"]["code"] in {"unavailable", "circuit_open"}
    assert "x-request-id" in response.headers  # the gateway answered
    assert_secured(response.headers)


@pytest.mark.parametrize("path", HIDDEN)
async def test_admin_metrics_and_internals_are_never_routed(edge: str, path: str) -> None:
    """The admin API, /metrics, health and docs are 404 at the edge, however spelled."""
    status, answer = await raw_get(edge, path)
    assert status == 404, answer
    assert '"not_found"' in answer
    assert "x-request-id" not in answer.lower()  # nginx answered, no gateway saw it
    assert "X-Frame-Options: DENY" in answer


async def test_an_oversize_body_is_refused_at_the_edge_as_json(edge: str) -> None:
    """A body over 64k is 413 from nginx, in the JSON error shape, with the headers."""
    async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
        response = await client.post(
            "/api/orders", content=b"x" * 70_000, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert_secured(response.headers)


async def test_the_edge_limits_each_address(tmp_path: Path, gateway_ports: tuple[int, int]) -> None:
    """Past the per-address rate (made tiny here), nginx answers 429 JSON with Retry-After."""
    changes = {"rate=200r/s": "rate=1r/m", "burst=400": "burst=1"}
    for edge in start_edge(tmp_path, gateway_ports, changes):
        async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
            answers = [await client.get("/api/products") for _ in range(5)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused, [a.status_code for a in answers]
        assert refused[0].json()["error"]["code"] == "too_many_requests"
        assert refused[0].headers["retry-after"] == "1"
        assert_secured(refused[0].headers)


async def test_no_gateway_at_all_is_a_json_502(tmp_path: Path) -> None:
    """Both replicas down: nginx's own 502 is in the JSON error shape, with the headers."""
    for edge in start_edge(tmp_path, (free_port(), free_port()), {}):
        async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
            response = await client.get("/api/products")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "bad_gateway"
        assert_secured(response.headers)


async def test_a_silent_gateway_is_a_json_504(tmp_path: Path) -> None:
    """Replicas that accept and never answer (a read timeout made 1 s here): nginx's own
    504 is in the JSON error shape, with the headers."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until nginx gives up and closes
        writer.close()

    servers_ = [await asyncio.start_server(silent, "127.0.0.1", 0) for _ in range(2)]
    ports = tuple(server.sockets[0].getsockname()[1] for server in servers_)
    changes = {"proxy_connect_timeout 1s;": "proxy_connect_timeout 1s; proxy_read_timeout 1s;"}
    try:
        for edge in start_edge(tmp_path, (ports[0], ports[1]), changes):
            async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
                response = await client.get("/api/products")
            assert response.status_code == 504
            assert response.json()["error"]["code"] == "gateway_timeout"
            assert_secured(response.headers)
    finally:
        for server in servers_:
            server.close()
