"""Credentials for tests: bearer tokens for the gateway's order routes, and service
tokens for calling an internal service directly (as another service would).

A gateway running in this process gets a token minted with its own settings; a
gateway running as a process (the lab, the e2e stack) is asked at its token
endpoint with the lab's demo client, as ``obslab token`` does. Those are cached per
URL until shortly before they expire, so a test suite asks a few times, not once
per order (the token endpoint is rate limited per address).
"""

from __future__ import annotations

import time

import httpx

import obskit
from gateway.auth import SCOPES, issue_token
from gateway.settings import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Settings

#: The test card of the simulated bank that always succeeds.
CARD_NUMBER = "4242424242424242"

_fetched: dict[str, tuple[str, float]] = {}


def service_headers(service: str, settings: obskit.ServiceSettings | None = None) -> dict[str, str]:
    """``Authorization`` for calling ``service`` directly, as the caller "tests".

    Signed with ``settings``' key, or the dev key every test and lab service uses.
    """
    key = (settings or obskit.ServiceSettings(environment="test")).service_token_key
    token = obskit.service_token(key.get_secret_value(), "tests", service)
    return {"authorization": f"Bearer {token}"}


def minted_headers(
    settings: Settings, scopes: frozenset[str] = frozenset(SCOPES)
) -> dict[str, str]:
    """``Authorization`` for a gateway in this process, signed with its own key."""
    token = issue_token(settings, "client:tests", scopes).access_token
    return {"authorization": f"Bearer {token}"}


def fetch_token(base_url: str, scope: str | None = None) -> str:
    """A token from ``base_url``'s token endpoint for the demo client (client credentials)."""
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = httpx.post(
        f"{base_url}/api/auth/token",
        data=form,
        auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def auth_headers(base_url: str) -> dict[str, str]:
    """``Authorization`` for the gateway (or edge) at ``base_url``, cached while fresh."""
    token, expires = _fetched.get(base_url, ("", 0.0))
    if time.monotonic() > expires:
        token = fetch_token(base_url)
        # Tokens live 300 s by default; take a new one well before that.
        _fetched[base_url] = (token, time.monotonic() + 120)
    return {"authorization": f"Bearer {token}"}
