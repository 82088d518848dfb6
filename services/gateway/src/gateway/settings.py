"""Settings of the gateway (``OBSLAB_*`` environment variables).

The secrets have well-known defaults so that the lab runs with no setup; they are
only good for ``OBSLAB_ENVIRONMENT=dev`` (or ``test``). In production a secret left
at its default is a startup error:

=============================  ===================================================
setting                        dev default (never use it anywhere else)
=============================  ===================================================
``OBSLAB_AUTH_SIGNING_KEY``    ``DEV_SIGNING_KEY``: signs and checks every token
``OBSLAB_AUTH_CLIENTS``        ``{"obslab-lab": DEV_CLIENT_SECRET}`` (JSON): the
                               client-credentials clients (labs, load generator)
``OBSLAB_AUTH_USERS``          ``{"demo": DEV_USER_PASSWORD}`` (JSON): the demo
                               users of the password grant
=============================  ===================================================

plus the kit's ``OBSLAB_SERVICE_TOKEN_KEY`` (the gateway signs its calls inward).
"""

import limits
from pydantic import Field, SecretStr, field_validator

from obskit import RedisSettings, ServiceSettings

DEV_SIGNING_KEY = "obslab-dev-signing-key-change-me-0123456789"
DEV_CLIENT_ID = "obslab-lab"
DEV_CLIENT_SECRET = "obslab-lab-dev-secret"
DEV_USER = "demo"
DEV_USER_PASSWORD = "demo-password"


class Settings(ServiceSettings, RedisSettings):
    """Where the services it calls live; its only state is a fallback copy of product reads."""

    service_name: str = "gateway"
    port: int = 8100
    catalog_url: str = "http://127.0.0.1:8101"
    orders_url: str = "http://127.0.0.1:8102"
    #: The public's Request-Timeout is not trusted: a client could trip our breakers with
    #: tiny budgets. The gateway's own request_budget_s is the budget of every request.
    deadline_from_caller: bool = False
    #: The public door: callers prove who they are with OAuth2 tokens (gateway.auth),
    #: not service tokens. Its own calls inward carry one.
    require_service_token: bool = False
    #: Product reads kept to answer from while catalog is down (see gateway.fallback).
    stale_products_max_entries: int = Field(default=256, ge=0, le=100_000)
    #: How old a kept read may be and still be served; past it, catalog down is a 503.
    stale_products_max_age_s: float = Field(default=3600.0, ge=0)

    # OAuth2 (see gateway.auth). The token endpoint takes a form, as RFC 6749 says.
    form_body_paths: tuple[str, ...] = ("/api/auth/token",)
    #: HS256 key: at least 32 bytes, as long as the hash (RFC 7518 section 3.2).
    auth_signing_key: SecretStr = Field(default=SecretStr(DEV_SIGNING_KEY), min_length=32)
    auth_issuer: str = "obslab-gateway"
    auth_audience: str = "obslab-shop"
    #: Short-lived: a leaked token is good for minutes; clients fetch another.
    auth_token_ttl_s: int = Field(default=300, ge=10, le=3600)
    #: Clock difference between the replica that signed and the one that checks.
    auth_leeway_s: int = Field(default=5, ge=0, le=60)
    auth_clients: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEV_CLIENT_ID: SecretStr(DEV_CLIENT_SECRET)}
    )
    auth_users: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEV_USER: SecretStr(DEV_USER_PASSWORD)}
    )

    # Rate limits (see gateway.ratelimit), in the ``limits`` notation: "100/second",
    # "20 per 10 seconds". Per client (token subject, else IP address) and per route,
    # counted in Redis (OBSLAB_REDIS_URL) so every replica shares them.
    rate_limit_enabled: bool = True
    #: Generous: the lab's load tests come from one client and one address.
    rate_limit_default: str = "100/second"
    #: Per route template: ``{"POST /api/auth/token": "5/minute"}`` (JSON).
    rate_limit_routes: dict[str, str] = Field(
        # Each guess of a secret is a token request: slow the guessing down.
        default_factory=lambda: {"POST /api/auth/token": "300/minute"}
    )

    @field_validator("rate_limit_default")
    @classmethod
    def _check_limit(cls, value: str) -> str:
        limits.parse(value)  # a ValueError that says what it could not read
        return value

    @field_validator("rate_limit_routes")
    @classmethod
    def _check_route_limits(cls, routes: dict[str, str]) -> dict[str, str]:
        for value in routes.values():
            limits.parse(value)
        return routes

    def public_dev_secrets(self) -> list[str]:
        """The kit's (the service token key) and the gateway's OAuth2 secrets."""
        dev = {DEV_SIGNING_KEY, DEV_CLIENT_SECRET, DEV_USER_PASSWORD}
        named = {
            "OBSLAB_AUTH_SIGNING_KEY": [self.auth_signing_key],
            "OBSLAB_AUTH_CLIENTS": list(self.auth_clients.values()),
            "OBSLAB_AUTH_USERS": list(self.auth_users.values()),
        }
        own = [
            name
            for name, secrets in named.items()
            if any(s.get_secret_value() in dev for s in secrets)
        ]
        return [*super().public_dev_secrets(), *own]
