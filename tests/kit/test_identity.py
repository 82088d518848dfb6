"""Service tokens between services: the ServiceClient signs one per call, an internal
service refuses calls without a valid one addressed to it."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import structlog
from fastapi import FastAPI
from pydantic import ValidationError

import obskit
from tests.support.apps import serve_in_process, serve_on_port

KEY = obskit.ServiceSettings(environment="test").service_token_key.get_secret_value()


def internal_app() -> FastAPI:
    settings = obskit.ServiceSettings(
        service_name="ledger", require_service_token=True, log_format="json"
    )
    app = FastAPI(telemetry=obskit.fastapi_telemetry(settings))
    obskit.instrument_service(app, settings)

    @app.get("/entries")
    async def list_entries() -> list[int]:
        return [1, 2]

    @app.get("/caller")
    async def read_caller() -> str | None:
        # What the request's log lines carry, from the log context.
        return structlog.contextvars.get_contextvars().get("caller")

    return app


def token(**changes: object) -> str:
    now = int(time.time())
    claims = {"iss": "orders", "sub": "service:orders", "aud": "ledger", "iat": now}
    claims |= {"exp": now + 60, "jti": uuid.uuid4().hex}
    claims |= changes
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, KEY)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="none"),
        pytest.param(f"Bearer {token(aud='payments')}", id="another-audience"),
        pytest.param(f"Bearer {token(exp=int(time.time()) - 60)}", id="expired"),
        pytest.param(f"Bearer {jwt.encode({'aud': 'ledger'}, 'k' * 40)}", id="another-key"),
        pytest.param(f"Bearer {token(iss=None)}", id="no-issuer"),
        pytest.param("Basic b3JkZXJzOng=", id="not-bearer"),
    ],
)
async def test_an_internal_service_refuses_calls_without_a_valid_token(
    authorization: str | None,
) -> None:
    """No token, or one for another service, expired, signed with another key or missing a
    claim: 401 ``invalid_token`` as JSON, before any route runs."""
    async with serve_in_process(internal_app(), identity=False) as client:
        headers = {"authorization": authorization} if authorization else {}
        response = await client.get("/entries", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert "invalid_token" in response.headers["www-authenticate"]


async def test_probes_scrapes_and_docs_need_no_token() -> None:
    """Health, metrics and the docs stay open: what watches a service has no token."""
    async with serve_in_process(internal_app(), identity=False) as client:
        for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


async def test_the_service_client_signs_a_token_the_callee_accepts() -> None:
    """A ServiceClient call carries a token for its downstream; the callee logs the caller."""
    app = internal_app()
    caller = obskit.ServiceSettings(service_name="orders", log_format="json")
    async with serve_on_port(app) as url:
        client = obskit.ServiceClient("ledger", url, caller)
        try:
            response = await client.request("GET", "/entries")
            logged = await client.request("GET", "/caller")
        finally:
            await client.aclose()
    assert response.status_code == 200
    assert response.json() == [1, 2]
    assert logged.json() == "orders"


def test_sent_token_names_caller_and_callee_and_expires_soon() -> None:
    """A service token says who calls whom, and lives a minute."""
    sent = obskit.service_token(KEY, "orders", "ledger")
    claims = jwt.decode(sent, KEY, algorithms=["HS256"], audience="ledger")
    assert (claims["iss"], claims["sub"]) == ("orders", "service:orders")
    assert claims["exp"] - claims["iat"] == 60


def test_production_refuses_the_dev_key() -> None:
    """In production the public dev service-token key is a startup error."""
    with pytest.raises(ValidationError, match="OBSLAB_SERVICE_TOKEN_KEY"):
        obskit.ServiceSettings(environment="production")
    key = "a-production-service-key-of-32-bytes!"
    assert obskit.ServiceSettings(environment="production", service_token_key=key)
