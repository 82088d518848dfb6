"""Security headers on every answer of an instrumented app, CORS by allow-list, docs CSP."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

import obskit
from obskit._security import API_POLICY
from tests.support.apps import serve_in_process

ORIGIN = "https://shop.example"


class Item(BaseModel):
    quantity: int


def make_app(**settings: object) -> FastAPI:
    service = obskit.ServiceSettings(
        service_name="security-test", max_body_bytes=64, log_format="json", **settings
    )
    app = FastAPI(telemetry=obskit.fastapi_telemetry(service))
    obskit.instrument_service(app, service)

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/boom")
    async def read_boom() -> None:
        raise RuntimeError("boom")

    return app


def assert_secured(headers: httpx.Headers, *, hsts: bool = False) -> None:
    get = headers.get
    assert get("content-security-policy") == API_POLICY
    assert get("x-content-type-options") == "nosniff"
    assert get("x-frame-options") == "DENY"
    assert get("referrer-policy") == "no-referrer"
    assert (get("strict-transport-security") is not None) is hsts
    assert get("server") is None


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/items", {"json": {"quantity": 1}}, 200),
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/items", {}, 405),
        ("POST", "/items", {"content": b"x" * 100, "headers": {"content-type": "a/json"}}, 413),
        ("POST", "/items", {"content": b"q=1", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", "/items", {"json": {"quantity": "many"}}, 422),
        ("GET", "/boom", {}, 500),
        ("GET", "/health/live", {}, 200),
        ("GET", "/metrics", {}, 200),
    ],
)
async def test_every_answer_carries_the_security_headers(
    method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    """Success, the kit's refusals, JSON errors and a crash all carry the same headers."""
    async with serve_in_process(make_app()) as client:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert_secured(response.headers)


async def test_hsts_only_when_turned_on() -> None:
    """Strict-Transport-Security is sent only with ``hsts=True`` (TLS in front)."""
    async with serve_in_process(make_app(hsts=True)) as client:
        response = await client.get("/health/live")
    assert_secured(response.headers, hsts=True)


async def test_cors_answers_only_allowed_origins() -> None:
    """A preflight from an allowed origin is answered; another origin gets no CORS grant."""
    async with serve_in_process(make_app(cors_allow_origins=[ORIGIN])) as client:
        preflight = {"access-control-request-method": "POST"}
        allowed = await client.options("/items", headers={"origin": ORIGIN, **preflight})
        refused = await client.options(
            "/items", headers={"origin": "https://evil.example", **preflight}
        )
        simple = await client.get("/health/live", headers={"origin": ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert_secured(allowed.headers)


def test_a_wildcard_origin_is_refused() -> None:
    """``*`` is not an allow-list: the settings refuse it."""
    with pytest.raises(ValidationError, match="not a list"):
        obskit.ServiceSettings(cors_allow_origins=["*"])


async def test_docs_page_policy_allows_exactly_what_the_page_loads() -> None:
    """The docs page's CSP lists the CDN it loads from and its inline script by hash."""
    async with serve_in_process(make_app()) as client:
        response = await client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'sha256-" in directives["script-src"]
    for url in re.findall(r'<script src="([^"]+)"', response.text):
        assert url.startswith(tuple(directives["script-src"].split())), url
    for url in re.findall(r'rel="stylesheet" href="([^"]+)"', response.text):
        assert url.startswith(tuple(directives["style-src"].split())), url
    assert directives["frame-ancestors"] == "'none'"
