"""OAuth2 at the gateway: the token endpoint, and every way a bearer token is refused."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError

from gateway.auth import issue_token
from gateway.main import create_app
from gateway.settings import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_USER, DEV_USER_PASSWORD, Settings
from tests.support.apps import serve_in_process

ORDER = {
    "items": [{"product_id": 1, "quantity": 1}],
    "card": {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"},
}
ORDER_PATH = f"/api/orders/{uuid.UUID(int=1)}"


@pytest.fixture
def settings(nowhere: str) -> Settings:
    """A gateway whose services are all down: a request that passes the token check gets 503."""
    return Settings(catalog_url=nowhere, orders_url=nowhere, rate_limit_enabled=False)


@pytest.fixture
async def anonymous(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of that gateway that sends no credential unless told to."""
    async with serve_in_process(create_app(settings)) as client:
        yield client


def claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    good = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": "client:tests",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        "scope": "orders:read orders:write",
    }
    return {k: v for k, v in {**good, **changes}.items() if v is not None}


def signed(settings: Settings, **changes: Any) -> str:
    return jwt.encode(claims(settings, **changes), settings.auth_signing_key.get_secret_value())


def unsigned(settings: Settings) -> str:
    """A token with ``alg: none`` and no signature, as an attacker would forge it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims(settings))}."


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_client_credentials_give_a_short_lived_token(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    """The demo client, with HTTP Basic or in the form, gets a signed JWT with every claim."""
    form = {"grant_type": "client_credentials"}
    basic = await anonymous.post(
        "/api/auth/token", data=form, auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET)
    )
    in_form = {**form, "client_id": DEV_CLIENT_ID, "client_secret": DEV_CLIENT_SECRET}
    posted = await anonymous.post("/api/auth/token", data=in_form)
    for response in (basic, posted):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        answer = response.json()
        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == settings.auth_token_ttl_s
        token = jwt.decode(
            answer["access_token"],
            settings.auth_signing_key.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.auth_audience,
        )
        assert token["iss"] == settings.auth_issuer
        assert token["sub"] == f"client:{DEV_CLIENT_ID}"
        assert token["exp"] - token["iat"] == settings.auth_token_ttl_s
        assert token["scope"] == "orders:read orders:write"
        assert jwt.get_unverified_header(answer["access_token"])["alg"] == "HS256"
    assert basic.json()["access_token"] != posted.json()["access_token"]  # each its own jti


async def test_password_grant_for_a_demo_user_with_a_narrower_scope(
    anonymous: httpx.AsyncClient,
) -> None:
    """A demo user's password gets a token; ``scope`` asks for less than everything."""
    form = {
        "grant_type": "password",
        "username": DEV_USER,
        "password": DEV_USER_PASSWORD,
        "scope": "orders:read",
    }
    response = await anonymous.post("/api/auth/token", data=form)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read"


@pytest.mark.parametrize(
    ("form", "auth", "status", "code"),
    [
        ({"grant_type": "client_credentials"}, (DEV_CLIENT_ID, "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, None, 400, "invalid_request"),
        (
            {"grant_type": "password", "username": DEV_USER, "password": "x"},
            None,
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "password", "username": "nobody", "password": "x"},
            None,
            400,
            "invalid_grant",
        ),
        ({"grant_type": "authorization_code"}, None, 400, "unsupported_grant_type"),
        ({}, None, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            (DEV_CLIENT_ID, DEV_CLIENT_SECRET),
            400,
            "invalid_scope",
        ),
    ],
)
async def test_token_requests_refused(
    anonymous: httpx.AsyncClient,
    form: dict[str, str],
    auth: tuple[str, str] | None,
    status: int,
    code: str,
) -> None:
    """Wrong secrets, unknown grants and scopes get the RFC 6749 code in the JSON error body."""
    response = await anonymous.post("/api/auth/token", data=form, auth=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_token_endpoint_takes_a_form_not_json(anonymous: httpx.AsyncClient) -> None:
    """A JSON body at the token endpoint is 415: RFC 6749 says form."""
    response = await anonymous.post("/api/auth/token", json={"grant_type": "password"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_an_order_without_a_token_is_401(anonymous: httpx.AsyncClient) -> None:
    """No bearer token: 401 with a Bearer challenge and the JSON error body, and the
    trace id a learner needs to find the refusal's trace."""
    for response in (
        await anonymous.post("/api/orders", json=ORDER),
        await anonymous.get(ORDER_PATH),
        await anonymous.post("/api/orders", json=ORDER, headers={"authorization": "Basic eDp5"}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="obslab"'
        assert response.json()["error"]["code"] == "unauthorized"
        assert len(response.headers["x-trace-id"]) == 32


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: signed(s, exp=int(time.time()) - 60), id="expired"),
        pytest.param(
            lambda s: jwt.encode(claims(s), "another-key-of-thirty-two-bytes-or-more!"),
            id="wrongly-signed",
        ),
        pytest.param(lambda s: signed(s, aud="another-api"), id="wrong-audience"),
        pytest.param(lambda s: signed(s, iss="someone-else"), id="wrong-issuer"),
        pytest.param(unsigned, id="alg-none"),
        pytest.param(
            lambda s: jwt.encode(claims(s), s.auth_signing_key.get_secret_value(), "HS512"),
            id="another-algorithm",
            # The point is the algorithm; the dev key is short for HS512, and PyJWT says so.
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        pytest.param(lambda s: signed(s, jti=None), id="no-jti"),
        pytest.param(lambda s: signed(s, exp=None), id="no-expiry"),
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
    ],
)
async def test_a_bad_token_is_401_invalid_token(
    anonymous: httpx.AsyncClient, settings: Settings, forge: Any
) -> None:
    """Expired, wrongly signed, wrong audience or issuer, ``alg: none``, another algorithm
    or a missing claim: 401 ``invalid_token`` with the RFC 6750 challenge, as JSON."""
    headers = bearer(forge(settings))
    for response in (
        await anonymous.post("/api/orders", json=ORDER, headers=headers),
        await anonymous.get(ORDER_PATH, headers=headers),
    ):
        assert response.status_code == 401, response.text
        assert (
            response.headers["www-authenticate"] == 'Bearer realm="obslab", error="invalid_token"'
        )
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "invalid_token"


async def test_a_token_without_the_scope_is_403(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    """A valid token lacking the route's scope: 403 ``insufficient_scope``, naming it."""
    reader = bearer(issue_token(settings, "user:demo", frozenset({"orders:read"})).access_token)
    writer = bearer(issue_token(settings, "user:demo", frozenset({"orders:write"})).access_token)
    for response, scope in (
        (await anonymous.post("/api/orders", json=ORDER, headers=reader), "orders:write"),
        (await anonymous.get(ORDER_PATH, headers=writer), "orders:read"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
        assert f'scope="{scope}"' in response.headers["www-authenticate"]


async def test_a_good_token_passes_and_the_catalog_needs_none(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    """With a valid token the order reaches the (down) services: 503, not 401; products
    are public."""
    headers = bearer(signed(settings))
    assert (await anonymous.post("/api/orders", json=ORDER, headers=headers)).status_code == 503
    assert (await anonymous.get("/api/products")).status_code == 503


def test_production_refuses_the_dev_secrets() -> None:
    """Outside dev and test, a secret left at its public default is a startup error."""
    with pytest.raises(ValidationError, match="OBSLAB_AUTH_SIGNING_KEY"):
        Settings(environment="production")
    own = Settings(
        environment="production",
        auth_signing_key="a-production-key-of-at-least-32-bytes",
        auth_clients={"loadgen": "a-secret-of-our-own"},
        auth_users={},
        service_token_key="a-service-token-key-of-32-bytes-or-more",
    )
    assert own.environment == "production"


def test_a_short_signing_key_is_refused() -> None:
    """An HS256 key shorter than 32 bytes is refused in every environment."""
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="dev", auth_signing_key="short")
